/**
 * Running the real retis-capture in live tests: spawn it, collect its output, bound it in time;
 * wait for a condition; load what it wrote through the analyzer's loader.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Db } from '../../analyze/db.ts';
import { loadInputs } from '../../analyze/load/index.ts';
import { BUILD_DIR } from '../../bpf/native.ts';
import { createNetns, liveSkipReason, type Netns } from '../bpf/helpers.ts';
import { REPO_ROOT } from '../util/paths.ts';

/** The launcher: the bundle when it is built from the sources as they are, else tsx (capture/fresh-bundle.mjs). */
export const CAPTURE = path.join(REPO_ROOT, 'bin', 'retis-capture.js');

export interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface StartOptions {
  /** SIGKILL and reject after this long (default 60 s). */
  timeoutMs?: number;
  /** Added to the environment. */
  env?: NodeJS.ProcessEnv;
}

/** Start retis-capture; `done` settles when it has exited and said everything (or rejects after the timeout, killed). */
export function startCapture(args: string[], o: StartOptions = {}): { child: ChildProcess; done: Promise<Run>; stderr: () => string } {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const child = spawn(process.execPath, [CAPTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ? { ...process.env, ...o.env } : process.env });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    let grace: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      clearTimeout(grace);
      child.kill('SIGKILL');
      reject(new Error(`retis-capture ${args.join(' ')} did not finish in ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    const finish = (status: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      clearTimeout(grace);
      resolve({ status, signal, stdout, stderr });
    };
    child.on('error', reject);
    // On 'close', once its output is drained, so a failure shows all the capture said; but a
    // --cmd child that outlives it may hold the pipes: then 2 s after its exit.
    child.on('exit', (status, signal) => (grace = setTimeout(() => finish(status, signal), 2000)));
    child.on('close', finish);
  });
  return { child, done, stderr: () => stderr };
}

/** Run retis-capture to completion (bounded). */
export const runCapture = (args: string[], o: StartOptions = {}): Promise<Run> => startCapture(args, o).done;

/** Wait until `cond` holds (polling), or fail after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Load a capture (directory or file) into a fresh DuckDB and run one query. */
export async function loadRows(input: string, sql: string): Promise<Record<string, unknown>[]> {
  const db = await Db.open();
  try {
    await loadInputs(db, [input]);
    return await db.rows(sql);
  } finally {
    db.close();
  }
}

/**
 * Why the live capture tests of a file cannot run here (undefined: they can): not root, no
 * native build or capture.bpf.o, or one of `tools` missing from PATH.
 */
export function captureSkipReason(tools: readonly string[] = []): string | undefined {
  const base = liveSkipReason();
  if (base) return base;
  if (!fs.existsSync(path.join(BUILD_DIR, 'bpf', 'capture.bpf.o'))) return 'capture.bpf.o is not built (npm run build:bpf)';
  for (const tool of tools) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

/**
 * createNetns() (loopback up) on first use, so that skipped tests make none: `name()` creates it,
 * `remove()` (afterAll) deletes it if it was made. Live tests send their traffic there.
 */
export function lazyNetns(tag: string): { name: () => string; remove: () => void } {
  let ns: Netns | undefined;
  return {
    name: () => (ns ??= createNetns(tag)).name,
    remove: () => {
      ns?.remove();
      ns = undefined;
    },
  };
}
