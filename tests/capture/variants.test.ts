/**
 * Live (root): probes loaded from a variant of capture.bpf.c (capture/progs/capture.variants.ts:
 * some constants compiled in) record what the generic object records. Pairs of captures (the
 * defaults; the default collectors but ct) run at once over the same traffic, each pair one with
 * the variants and one without (RETIS_TS_BPF_VARIANTS=off); every event of that traffic must be
 * the same in both, but for what each capture's own clock decides (timestamps, tracking ids'
 * first-seen times).
 *
 * Traffic, on the loopback of a namespace made here: pings (transmit and receive), UDP datagrams
 * to a closed port (dropped, ICMP unreachable back), a TCP connection refused (RST).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { bpfObjectVariants } from '../../bpf/native.ts';
import { collectBits, type CollectorName } from '../../capture/collectors.ts';
import { liveIt } from '../bpf/helpers.ts';
import { captureSkipReason, lazyNetns, loadRows, startCapture, until } from './run-capture.ts';

const skip = captureSkipReason(['ip', 'ping', 'bash']) ?? (bpfObjectVariants('capture').length === 0 ? 'no variant of capture.bpf.o is built (bpf-build.json lists none)' : undefined);
if (skip) console.log(`SKIP capture variants tests: ${skip}`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-variants-'));
const lo = lazyNetns('var');

interface Meta {
  collectors: CollectorName[];
  options: { snaplen: number };
  probes: { name: string; object: string }[];
}

/** Every field of the traffic's events but the clock's, one string per event, sorted. */
async function events(dir: string, inum: number): Promise<string[]> {
  const rows = await loadRows(
    dir,
    `SELECT probe, cpu, pid, tgid, comm, skb_addr, "skb-tracking".orig_head AS orig_head, reason, drop_subsys,
            dev::VARCHAR AS dev, netns::VARCHAR AS netns, skb::VARCHAR AS skb, packet::VARCHAR AS packet, ct::VARCHAR AS ct
     FROM events WHERE netns_inum = ${inum}`,
  );
  return rows.map((r) => JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).sort();
}

describe('capture: variants of capture.bpf.c', () => {
  afterAll(() => {
    lo.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  // Each pair: the same options with and without variants (RETIS_TS_BPF_VARIANTS=off).
  const pairs = [
    { name: 'defaults', args: [] as string[] },
    { name: 'without ct', args: ['-c', 'skb,skb-drop,skb-tracking,dev,ns'] },
  ];

  liveIt(
    'the default probes run a variant and record what the generic object records',
    skip,
    async () => {
      const ns = lo.name();
      const inum = Number(execFileSync('ip', ['netns', 'exec', ns, 'stat', '-L', '-c', '%i', '/proc/self/ns/net'], { encoding: 'utf8' }).trim());
      const runs = pairs.flatMap((p, i) =>
        (['variant', 'generic'] as const).map((kind) => {
          const dir = path.join(tmp, `${i}-${kind}`);
          const env = kind === 'generic' ? { RETIS_TS_BPF_VARIANTS: 'off' } : {};
          return { pair: p.name, kind, dir, cap: startCapture(['-o', dir, ...p.args], { timeoutMs: 150_000, env }) };
        }),
      );
      // Under an emulated CPU (the 6.1 guest of tests/vm) a start takes ~40 s.
      await until(() => runs.every((r) => r.cap.stderr().includes('attached')), 120_000, 'the captures to attach');
      const script = [
        'ping -c 4 -i 0.05 -q 127.0.0.1 >/dev/null',
        'for i in 1 2 3 4 5; do printf x$i > /dev/udp/127.0.0.1/7799; done',
        '{ exec 3<>/dev/tcp/127.0.0.1/7798; } 2>/dev/null || :',
      ].join('; ');
      execFileSync('ip', ['netns', 'exec', ns, 'bash', '-c', script], { timeout: 20_000 });
      for (const r of runs) r.cap.child.kill('SIGINT');
      for (const r of runs) {
        const run = await r.cap.done;
        expect(run.status, run.stderr).toBe(0);
      }

      const meta = (dir: string): Meta => JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as Meta;
      for (const p of pairs) {
        const [variant, generic] = (['variant', 'generic'] as const).map((k) => runs.find((r) => r.pair === p.name && r.kind === k)!);
        const v = meta(variant!.dir);
        const g = meta(generic!.dir);
        expect(g.probes.every((x) => x.object === 'capture.bpf.o'), `${p.name}: ${JSON.stringify(g.probes)}`).toBe(true);
        // Each variant is for a set of collectors at the default snap length.
        const def = bpfObjectVariants('capture').find((x) => x.fixed.cfg_collect === collectBits(v.collectors, new Set()) && x.fixed.cfg_snaplen === v.options.snaplen);
        const objects = Object.fromEntries(v.probes.map((x) => [x.name, x.object]));
        if (def) {
          expect(objects['tp:net:netif_receive_skb'], p.name).toBe(`capture.${def.name}.bpf.o`);
          expect(objects['tp:net:net_dev_start_xmit'], p.name).toBe(`capture.${def.name}.bpf.o`);
        } else {
          // Only the defaults may lack one (a kernel whose default collectors are none of them).
          expect(p.name, `no variant for -c ${v.collectors.join(',')}`).toBe('defaults');
          console.log(`NOTE capture variants: no variant for this kernel's default collectors (${v.collectors.join(', ')}): generic object everywhere`);
        }
        // The drop probe frees tracking entries (cfg_tracking != 0): no variant fixes that.
        expect(objects['tp:skb:kfree_skb'], p.name).toBe('capture.bpf.o');

        const a = await events(variant!.dir, inum);
        const b = await events(generic!.dir, inum);
        // 4 echo requests and replies (2 events each), 5 datagrams and their ICMP errors, SYN + RST.
        expect(a.length, p.name).toBeGreaterThanOrEqual(20);
        expect(a, p.name).toEqual(b);
      }
    },
    200_000,
  );
});
