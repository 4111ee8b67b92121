/**
 * The native build is optional: the install hook never fails, the analyzer side works without it,
 * and capture says exactly what to install. Also: the offline build itself works.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT_DIR } from '../../bpf/native.ts';
import { variants } from '../../capture/progs/capture.variants.ts';

const build = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(ROOT_DIR, 'bpf', 'build.mjs'), ...args], { cwd: ROOT_DIR, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });

describe('native build', () => {
  it('install hook (--optional) without clang: exit 0 and one clear line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rts-build-'));
    try {
      const r = build(['--optional', `--build-dir=${dir}`], { CLANG: '/nonexistent/clang' });
      expect(r.status).toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^retis-ts: native capture support not built \(.*clang not found\): apt-get install clang libbpf-dev libelf-dev.*then npm run build:bpf/);
      const status = JSON.parse(readFileSync(join(dir, 'bpf-build.json'), 'utf8')) as { ok: boolean };
      expect(status.ok).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('npm run build:bpf without clang: exit 1 with the fix', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rts-build-'));
    try {
      const r = build([`--build-dir=${dir}`], { CLANG: '/nonexistent/clang' });
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/native build failed: .*clang not found\n {2}fix: apt-get install clang/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without the addon: analysis helpers work, capture says how to get it', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT_DIR, 'tests', 'bpf', 'fixtures', 'report-child.ts')], {
      cwd: ROOT_DIR, encoding: 'utf8', timeout: 30_000, env: { ...process.env, RETIS_BPF_ADDON: '/nonexistent/retis_bpf.node' },
    });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { native: { available: boolean; message: string }; spec: unknown; load: { missing: string }; env: { id: string; message: string }[] };
    expect(out.native.available).toBe(false);
    expect(out.native.message).toMatch(/^native capture support is not built: apt-get install clang libbpf-dev libelf-dev.*, then npm run build:bpf/);
    expect(out.spec).toEqual({ kind: 'tp', group: 'skb', name: 'kfree_skb' });
    expect(out.load.missing).toMatch(/npm run build:bpf/);
    expect(out.env.find((c) => c.id === 'native')?.message).toMatch(/not built/);
  });

  const hasClang = spawnSync('clang', ['--version']).status === 0;
  if (!hasClang) console.log('SKIP offline full build test: clang not installed');
  it.skipIf(!hasClang)('builds BPF objects and the addon offline (node-gyp with local Node headers)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rts-build-'));
    try {
      const r = build([`--build-dir=${dir}`]);
      expect(r.stderr).toMatch(/native capture support built/);
      expect(r.status).toBe(0);
      for (const f of ['bpf/selftest.bpf.o', 'bpf/bench.bpf.o', 'bpf/capture.bpf.o', 'bpf/capture.default.bpf.o', 'native/retis_bpf.node', 'include/vmlinux.h', 'include/selftest.layout.h']) {
        expect(existsSync(join(dir, f)), f).toBe(true);
      }
      const status = JSON.parse(readFileSync(join(dir, 'bpf-build.json'), 'utf8')) as { ok: boolean; nodedir: string | null; variants: unknown[] };
      expect(status.ok).toBe(true);
      expect(status.nodedir).not.toBeNull(); // never downloads headers
      // capture.variants.ts's variants, with the values compiled into each object.
      expect(status.variants).toEqual(variants.map((v) => ({ source: 'capture', name: v.name, object: `capture.${v.name}.bpf.o`, fixed: v.fixed })));

      // Up to date: nothing recompiled. A variant built with other values than the file's now: rebuilt.
      const obj = join(dir, 'bpf', 'capture.default.bpf.o');
      const before = statSync(obj).mtimeMs;
      expect(build([`--build-dir=${dir}`, '--only=bpf']).status).toBe(0);
      expect(statSync(obj).mtimeMs).toBe(before);
      writeFileSync(`${obj}.defines`, '-DRETIS_FIXED_cfg_snaplen=60');
      expect(build([`--build-dir=${dir}`, '--only=bpf']).status).toBe(0);
      expect(statSync(obj).mtimeMs).toBeGreaterThan(before);
      expect(readFileSync(`${obj}.defines`, 'utf8')).toMatch(/-DRETIS_FIXED_cfg_snaplen=255/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
