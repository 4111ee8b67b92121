/**
 * The probes stage records per CPU and move them to the ring in batches (capture.bpf.c
 * stage_flush(); the reader splits them, bpf/native/retis_bpf.c on_frames()). Two promises of
 * that design, checked live:
 * - a CPU that goes quiet keeps nothing: the reader runs capture_flush on every CPU every 50 ms,
 *   so one ping's events are printed while the capture still runs;
 * - a batch that finds the ring full is lost record by record, counted against each record's
 *   probe: attempted = written + lost per probe, with the consumer stopped during a flood.
 *
 * Traffic: one ping and a 1 s udpflood (bench/capture/udpflood.c) on the loopback of a namespace
 * this file creates. Skipped, with the reason printed, when not root, without the native build,
 * ping or a C compiler.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { liveIt } from '../bpf/helpers.ts';
import { REPO_ROOT } from '../util/paths.ts';
import { captureSkipReason, lazyNetns, startCapture, until } from './run-capture.ts';

const skip = captureSkipReason(['cc', 'ip', 'ping']);
if (skip) console.log(`SKIP staging tests: ${skip}`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-staging-'));
const lo = lazyNetns('stage');
const netns = lo.name;

interface ProbeCounts {
  name: string;
  events: number;
  attempted: number;
  lost: number;
}

describe('capture: per-CPU staging of records', () => {
  afterAll(() => {
    lo.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  liveIt(
    "a quiet CPU's records reach the reader while the capture runs",
    skip,
    async () => {
      const n = netns();
      const cap = startCapture(['-o', path.join(tmp, 'quiet'), '--print'], { timeoutMs: 60_000 });
      let out = '';
      cap.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await until(() => cap.stderr().includes('attached'), 30_000, 'the capture to attach');
      // One echo request and its reply, then nothing: the staged events must not wait for more.
      execFileSync('ip', ['netns', 'exec', n, 'ping', '-c', '1', '-W', '1', '127.0.0.1'], { timeout: 10_000 });
      const sent = Date.now();
      await until(() => (out.match(/ICMP/g) ?? []).length >= 4, 3_000, `the ping's events to be printed (printed so far:\n${out})`);
      const waited = Date.now() - sent;
      cap.child.kill('SIGINT');
      const run = await cap.done;
      expect(run.status, run.stderr).toBe(0);
      // Reader flush every 50 ms + drain + print: well under a second.
      expect(waited).toBeLessThan(1_500);
    },
    60_000,
  );

  liveIt(
    'a full ring: every staged record it refuses is counted lost, per probe',
    skip,
    async () => {
      const n = netns();
      const flood = path.join(tmp, 'udpflood');
      execFileSync('cc', ['-O2', '-o', flood, path.join(REPO_ROOT, 'bench', 'capture', 'udpflood.c')]);
      const dir = path.join(tmp, 'full');
      const cap = startCapture(['-o', dir, '--ring-mib', '1'], { timeoutMs: 60_000 });
      await until(() => cap.stderr().includes('attached'), 30_000, 'the capture to attach');
      // The consumer stops reading: the 1 MiB ring fills within milliseconds of the flood.
      process.kill(cap.child.pid!, 'SIGSTOP');
      try {
        execFileSync('ip', ['netns', 'exec', n, flood, '9', '1', '32', 'sink'], { timeout: 20_000 });
      } finally {
        process.kill(cap.child.pid!, 'SIGCONT');
      }
      cap.child.kill('SIGINT');
      const run = await cap.done;
      expect(run.status, run.stderr).toBe(0);
      const meta = JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as {
        counts: { events: number; lost_total: number; attempted: number; ignored: number };
        probes: ProbeCounts[];
      };
      const c = meta.counts;
      expect(c.lost_total).toBeGreaterThan(10_000);
      expect(c.attempted).toBe(c.events + c.lost_total + c.ignored);
      // The flood's three event probes each lost records, and each probe's own books balance.
      const busy = meta.probes.filter((p) => p.attempted > 0);
      for (const name of ['net_dev_start_xmit', 'netif_receive_skb', 'kfree_skb']) {
        const p = busy.find((x) => x.name.includes(name));
        expect(p, `${name} in ${JSON.stringify(busy)}`).toBeDefined();
        expect(p!.lost, name).toBeGreaterThan(0);
      }
      for (const p of busy) expect(p.events + p.lost, p.name).toBe(p.attempted);
    },
    90_000,
  );
});
