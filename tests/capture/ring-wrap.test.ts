/**
 * The ring reader maps the data area once (bpf/native/retis_bpf.c ring_map) and copies the record
 * that runs past its end (ring_record). With a 1 MiB ring and a one-second loopback flood the ring
 * wraps hundreds of times: every record must still decode to one of the two packets the flood
 * makes (the UDP datagram to a closed port and the ICMP error it draws), with no gap in `seq`.
 *
 * Traffic: udpflood (bench/capture/udpflood.c) for 1 s on the loopback of a namespace this file
 * creates. Skipped, with the reason printed, when not root, without the native build or a C compiler.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { liveIt } from '../bpf/helpers.ts';
import { REPO_ROOT } from '../util/paths.ts';
import { captureSkipReason, loadRows, lazyNetns, startCapture, until } from './run-capture.ts';

const skip = captureSkipReason(['cc', 'ip']);
if (skip) console.log(`SKIP ring wrap test: ${skip}`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-ring-wrap-'));
const lo = lazyNetns('wrap');

describe('ring reader: records that wrap around the ring end', () => {
  afterAll(() => {
    lo.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  liveIt(
    'a 1 MiB ring wrapped many times: every record decodes, seq has no gap',
    skip,
    async () => {
      const flood = path.join(tmp, 'udpflood');
      execFileSync('cc', ['-O2', '-o', flood, path.join(REPO_ROOT, 'bench', 'capture', 'udpflood.c')]);
      const ns = lo.name();
      const dir = path.join(tmp, 'cap');
      const cap = startCapture(['-o', dir, '--ring-mib', '1', '-p', 'tp:net:*', '-p', 'tp:skb:*', '--duration', '30'], { timeoutMs: 90_000 });
      await until(() => cap.stderr().includes('attached'), 60_000, 'the capture to attach');
      execFileSync('ip', ['netns', 'exec', ns, flood, '9', '1', '32'], { timeout: 20_000 });
      cap.child.kill('SIGINT');
      const run = await cap.done;
      expect(run.status, run.stderr).toBe(0);

      const [r] = await loadRows(
        dir,
        `SELECT count(*) AS n,
                count(*) FILTER (WHERE packet IS NOT NULL) AS packets,
                count(*) FILTER (WHERE proto = 'udp' AND dport = 9 AND len = 74 AND saddr = '127.0.0.1') AS udp,
                count(*) FILTER (WHERE proto = 'icmp' AND len = 102 AND saddr = '127.0.0.1') AS icmp,
                max(seq) - min(seq) + 1 - count(*) AS gaps
         FROM events`,
      );
      const n = Number(r!.n);
      // ~250-byte records in batches of up to 64: 20k records fill a 1 MiB ring about five times.
      expect(n).toBeGreaterThan(20_000);
      expect(Number(r!.gaps)).toBe(0);
      // Every packet row is one of the two the flood makes: a badly joined wrapped record
      // would show up as another length, protocol or address.
      expect(Number(r!.udp) + Number(r!.icmp)).toBe(Number(r!.packets));
      expect(Number(r!.packets)).toBeGreaterThan(n * 0.99);
    },
    120_000,
  );
});
