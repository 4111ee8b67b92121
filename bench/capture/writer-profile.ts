// Ad-hoc: split the writer's CPU per event into decode / Arrow assembly / IPC write.
import fs from 'node:fs';
import { ArrowStreamFile } from '../../capture/arrow-stream.ts';
import { EventEncoder, type ProbeInfo } from '../../capture/decode.ts';
import type { DropReasons } from '../../capture/drop-reasons.ts';
import { captureSchema } from '../../capture/session.ts';
import { makeBatch, udpFrame, type SyntheticRecord } from '../../capture/synthetic.ts';

const probes = new Map<number, ProbeInfo>([
  [1, { symbol: 'net:netif_receive_skb', probeType: 'raw_tracepoint', user: false, binary: undefined }],
  [2, { symbol: 'net:net_dev_start_xmit', probeType: 'raw_tracepoint', user: false, binary: undefined }],
  [3, { symbol: 'skb:kfree_skb', probeType: 'raw_tracepoint', user: false, binary: undefined }],
]);
const recs: SyntheticRecord[] = [];
for (let i = 0; i < 3000; i++) {
  recs.push({ ts: BigInt(i), probeId: 1 + (i % 3), cpu: i & 1, pid: 4242, comm: 'udpflood', origHead: 0xffff888100000000n + BigInt(i * 512), skb: 0xffff888200000000n, packet: udpFrame(32, 40000, 9, i), netns: { inum: 4026532177, cookie: 33n }, dev: { name: 'lo', ifindex: 1, rxIfindex: 1 }, dropReason: i % 3 === 2 ? 3 : undefined });
}
const batch = makeBatch(recs);
const schema = captureSchema();
EventEncoder.warmUp(schema);
const out = process.argv[2] ?? '/tmp/capperf/w.arrow';
const file = new ArrowStreamFile(out, schema, true);
const reasons = { name: () => ({ subsys: undefined, reason: 'NO_SOCKET' }) } as unknown as DropReasons;
let tAsm = 0, tWrite = 0;
const enc = new EventEncoder({ schema, probes, dropReasons: reasons, symbols: undefined, batchRows: 16384, batchPacketBytes: 8 << 20, snaplen: 255, maxEvents: Number.MAX_SAFE_INTEGER, onBatch: (c) => {
  const a = performance.now(); const rb = c.recordBatch(); const b = performance.now(); file.write(rb); const d = performance.now(); tAsm += b - a; tWrite += d - b;
} });
const N = Number(process.argv[3] ?? 2_000_000);
const t0 = performance.now();
while (enc.events < N) enc.decode(batch);
enc.flush();
file.close();
const total = performance.now() - t0;
console.log(JSON.stringify({ events: enc.events, batchBytes: batch.byteLength, recs: recs.length, totalMs: total.toFixed(0), nsPerEvent: (total * 1e6 / enc.events).toFixed(0), decodeNs: ((total - tAsm - tWrite) * 1e6 / enc.events).toFixed(0), asmNs: (tAsm * 1e6 / enc.events).toFixed(0), writeNs: (tWrite * 1e6 / enc.events).toFixed(0), bytes: fs.statSync(out).size }));
