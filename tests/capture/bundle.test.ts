/**
 * The shipped form: `npm run bundle:capture` makes one file, dist/retis-capture.mjs, that runs
 * with plain node (no tsx, no TypeScript sources), finds the addon and BPF objects in build/, and
 * loads DuckDB only for --parquet.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../util/paths.ts';

const bundle = path.join(REPO_ROOT, 'dist', 'retis-capture.mjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-capture-bundle-'));
fs.chmodSync(tmp, 0o755);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('bundled retis-capture', () => {
  beforeAll(() => {
    execFileSync('npm', ['run', '-s', 'bundle:capture'], { cwd: REPO_ROOT, stdio: 'pipe', timeout: 120_000 });
  }, 120_000);

  it('is one self-contained file that runs --help and --version with plain node', () => {
    expect(fs.statSync(bundle).mode & 0o111).not.toBe(0);
    const text = fs.readFileSync(bundle, 'utf8');
    // Run as a program, node gets the young-generation cap (capture/bundle.mjs says why).
    expect(text.startsWith('#!/usr/bin/env -S node --max-semi-space-size=4\n')).toBe(true);
    const direct = spawnSync(bundle, ['--version'], { cwd: tmp, encoding: 'utf8' });
    expect(direct.status, direct.stderr).toBe(0);
    expect(text).not.toMatch(/from ["']tsx/);
    expect(text).not.toMatch(/\.ts["']\)/); // no TypeScript sources imported at run time
    // DuckDB (native, big) is required lazily, never imported at the top.
    expect(text).not.toMatch(/^import .*@duckdb/m);
    // Run from an empty directory, with no node_modules beside it.
    const help = spawnSync(process.execPath, [bundle, '--help'], { cwd: tmp, encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: retis-capture/);
    const version = spawnSync(process.execPath, [bundle, '--version'], { cwd: tmp, encoding: 'utf8' });
    expect(version.stdout).toMatch(/^retis-capture \d+\.\d+\.\d+ \(events in Retis v1\.7\.0\+retis-ts/);
    expect(spawnSync(process.execPath, [bundle, '--snaplen', 'big'], { cwd: tmp, encoding: 'utf8' }).status).toBe(2);
    expect(fs.existsSync(path.join(REPO_ROOT, 'dist', 'retis-schema.json'))).toBe(true);
  });

  it('without privileges: exit 1 naming what is missing and the fix', () => {
    if (process.getuid?.() !== 0) {
      const r = spawnSync(process.execPath, [bundle, '-o', path.join(tmp, 'x'), '--cmd', 'true'], { cwd: tmp, encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/not enough privileges/);
      return;
    }
    if (spawnSync('setpriv', ['--version']).status !== 0) {
      console.log('SKIP unprivileged run: setpriv is not installed');
      return;
    }
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bundle, '-o', path.join(tmp, 'x'), '--cmd', 'true'], { cwd: tmp, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: tmp } });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/not enough privileges to load BPF programs: missing CAP_BPF and CAP_PERFMON/);
    expect(r.stderr).toMatch(/fix: run as root/);
    expect(fs.existsSync(path.join(tmp, 'x'))).toBe(false);
  });
});
