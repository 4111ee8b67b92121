/**
 * Live: clean shutdown (detach, close fds, stop the reader thread) on signals and when JS throws,
 * observed from a child process.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { ROOT_DIR } from '../../bpf/native.ts';
import { liveIt, liveSkipReason } from './helpers.ts';

const skip = liveSkipReason();
if (skip) console.log(`SKIP live shutdown tests: ${skip}`);

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the fixture; `onReady` is called when it prints "ready". */
function child(mode: string, onReady?: (pid: number) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT_DIR, 'tests', 'bpf', 'fixtures', 'shutdown-child.ts'), mode], {
      cwd: ROOT_DIR,
      env: { ...process.env, RETIS_BPF_TRACE_SHUTDOWN: '1' },
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (onReady && stdout.includes('ready\n')) {
        const f = onReady;
        onReady = undefined;
        f(p.pid!);
      }
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('shutdown (live, root)', () => {
  liveIt('SIGTERM with no application handler: everything closed, then the default exit', skip, async () => {
    const r = await child('signal', (pid) => process.kill(pid, 'SIGTERM'));
    expect(r.signal).toBe('SIGTERM');
    // reader + link + object
    expect(r.stderr).toMatch(/retis-ts: SIGTERM: closed 3 BPF resources/);
  }, 30_000);

  liveIt('an uncaught exception: the exit hook closes everything', skip, async () => {
    const r = await child('throw');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('boom');
    expect(r.stderr).toMatch(/retis-ts: exit: closed 3 BPF resources/);
    expect(r.stdout).toContain('exit code=1 open=0');
  }, 30_000);

  liveIt('a batch handler that throws (no onError): reader closed, error surfaces, exit cleans the rest', skip, async () => {
    const r = await child('handler-throw');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('handler boom');
    // The reader closed itself before rethrowing: only link + object were left for the exit hook.
    expect(r.stderr).toMatch(/retis-ts: exit: closed 2 BPF resources/);
    expect(r.stdout).toContain('open=0');
  }, 30_000);

  liveIt('an application SIGTERM handler owns the order: the BPF layer does not close under it', skip, async () => {
    const r = await child('app-handler', (pid) => setTimeout(() => process.kill(pid, 'SIGTERM'), 100));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('app: flushed with open=3 batches>0=true');
    expect(r.stdout).toContain('exit code=0 open=0');
    expect(r.stderr).not.toMatch(/SIGTERM: closed/);
  }, 30_000);
});
