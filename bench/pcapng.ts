/**
 * Micro-benchmark of PcapngWriter: 1M EPBs of 100-byte packets, without options, with a
 * ~320-byte comment, and Retis-style (comment + ~560-byte custom JSON option), each to a
 * temporary file (includes page-cache/disk cost, which dominates with options) and to
 * /dev/null (the writer's own cost plus write syscalls). Strings are prepared beforehand
 * so only the writer is measured.
 *
 *   npx tsx bench/pcapng.ts [packets]
 *
 * Prints one line per case, then a JSON summary as the last line.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapngWriter, type PacketOptions } from '../analyze/pcap/pcapng-writer.ts';

const N = Number(process.argv[2] ?? 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'bench-pcapng-'));

const data = new Uint8Array(100).map((_, i) => i);
// A pool of distinct strings, cycled: realistic sizes without measuring string building.
const POOL = 1024;
const comments = Array.from(
  { length: POOL },
  (_, i) =>
    `${30419169061793 + i} (6) [ping] 11330 [tp] net:net_dev_start_xmit #1baa83c42ba1ffff8e95c3b67c00 (skb ffff8e95d3009100)\n` +
    `  192.168.125.10 > 192.168.125.11 tos 0x0 ttl 64 id ${41977 + i} off 0 [DF] len 84 proto ICMP (1) type 8 code 0\n` +
    `  ns 0x3/4026532741 if 11 (veth-ns01)\n  skb [csum none len 98 priority 0 users 1 dataref 1]`,
);
const jsons = Array.from(
  { length: POOL },
  (_, i) =>
    `{"common":{"timestamp":${30419169061793 + i},"smp_id":6,"task":{"pid":11330,"tgid":11330,"comm":"ping"}},` +
    `"kernel":{"symbol":"net:net_dev_start_xmit","probe_type":"raw_tracepoint"},` +
    `"skb-tracking":{"orig_head":18446619372617628672,"timestamp":30419169061793,"skb":18446619372874141952},` +
    `"skb":{"meta":{"len":98,"data_len":0,"hash":0,"ip_summed":0,"csum":2770033380,"csum_level":0,"priority":0},` +
    `"data_ref":{"nohdr":false,"cloned":false,"fclone":0,"users":1,"dataref":1}},"netns":{"cookie":3,"inum":4026532741},` +
    `"dev":{"name":"veth-ns01","ifindex":11}}`,
);

interface Result {
  case: string;
  target: 'file' | 'null';
  packets: number;
  seconds: number;
  pps: number;
  mbps: number;
  bytes: number;
}

function run(name: string, target: 'file' | 'null', opts: (i: number) => PacketOptions | undefined): Result {
  const path = target === 'null' ? '/dev/null' : join(dir, `${name}.pcapng`);
  const t0 = process.hrtime.bigint();
  const w = new PcapngWriter({ path });
  const id = w.addInterface({ name: 'raw_tracepoint/net:net_dev_start_xmit', tsresol: 9, snaplen: 0xffff });
  let ts = 1_742_339_565_860_103_793n;
  for (let i = 0; i < N; i++) {
    w.writePacket(id, ts, data, 100, opts(i));
    ts += 1000n;
  }
  w.close();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const bytes = w.bytesWritten;
  if (target === 'file') {
    if (statSync(path).size !== bytes) throw new Error('short write');
    rmSync(path);
  }
  const r = { case: name, target, packets: N, seconds, pps: Math.round(N / seconds), mbps: Math.round(bytes / seconds / 1e6), bytes };
  console.log(`${`${name} > ${target}`.padEnd(20)} ${r.pps.toLocaleString('en').padStart(11)} packets/s  ${String(r.mbps).padStart(5)} MB/s  ${(bytes / 1e6).toFixed(0)} MB in ${seconds.toFixed(2)} s`);
  return r;
}

const custom = { pen: 70000, value: '' };
const retisOpts: PacketOptions = { comment: '', custom: [custom] };
const commentOpts: PacketOptions = { comment: '' };

try {
  const cases: [string, (i: number) => PacketOptions | undefined][] = [
    ['no-options', () => undefined],
    [
      'comment',
      (i) => {
        commentOpts.comment = comments[i & (POOL - 1)];
        return commentOpts;
      },
    ],
    [
      'retis',
      (i) => {
        retisOpts.comment = comments[i & (POOL - 1)];
        custom.value = jsons[i & (POOL - 1)]!;
        return retisOpts;
      },
    ],
  ];
  for (const [name, f] of cases) run(name, 'null', f); // warm-up: JIT, page cache
  const results: Result[] = [];
  for (const target of ['file', 'null'] as const) for (const [name, f] of cases) results.push(run(name, target, f));
  console.log(JSON.stringify({ bench: 'pcapng', node: process.version, results }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
