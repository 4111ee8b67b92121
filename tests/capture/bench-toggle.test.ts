/**
 * Live (root): retis-capture --bench-toggle, what bench/capture's overhead windows rely on:
 * SIGUSR1 detaches the probes (no event from traffic while detached), SIGUSR2 attaches them
 * again (events again), each confirmed on stderr, and the capture still stops cleanly.
 *
 * Traffic: pings on the loopback of a namespace made here, one size per phase.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { liveIt } from '../bpf/helpers.ts';
import { captureSkipReason, lazyNetns, loadRows, startCapture, until } from './run-capture.ts';

const skip = captureSkipReason(['ip', 'ping']);
if (skip) console.log(`SKIP bench toggle test: ${skip}`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-toggle-'));
const netns = lazyNetns('tog');

describe('capture: --bench-toggle', () => {
  afterAll(() => {
    netns.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  liveIt(
    'SIGUSR1 detaches the probes, SIGUSR2 attaches them again',
    skip,
    async () => {
      const ns = netns.name();
      const dir = path.join(tmp, 'cap');
      const cap = startCapture(['-o', dir, '--bench-toggle', '--duration', '60']);
      const said = (what: string): number => cap.stderr().split(what).length - 1;
      const ping = (size: number): void => void execFileSync('ip', ['netns', 'exec', ns, 'ping', '-c', '2', '-i', '0.05', '-W', '1', '-q', '-s', String(size), '127.0.0.1'], { timeout: 10_000 });
      await until(() => said('attached') > 0, 60_000, 'the capture to attach');
      ping(101); // attached
      cap.child.kill('SIGUSR1');
      await until(() => said('probes detached') === 1, 10_000, 'the detach confirmation');
      ping(202); // detached: not seen
      cap.child.kill('SIGUSR2');
      await until(() => said('probes attached') === 1, 10_000, 'the attach confirmation');
      ping(303); // attached again
      cap.child.kill('SIGINT');
      const run = await cap.done;
      expect(run.status, run.stderr).toBe(0);

      // The same events for the two attached phases' pings, none for the detached one's.
      const rows = await loadRows(dir, `SELECT len - 42 AS size, count(*) AS n FROM events WHERE proto = 'icmp' AND saddr = '127.0.0.1' GROUP BY 1 ORDER BY 1`);
      const bySize = Object.fromEntries(rows.map((r) => [Number(r.size), Number(r.n)]));
      expect(Object.keys(bySize)).toEqual(['101', '303']);
      expect(bySize[101]).toBeGreaterThanOrEqual(8); // 2 pings: request and reply, each sent and received
      expect(bySize[303]).toBe(bySize[101]);
    },
    120_000,
  );
});
