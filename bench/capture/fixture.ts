/**
 * The writer benchmarks' input: synthetic records of a default capture (receive, transmit,
 * drop of one UDP datagram each, in turn) as one ring batch, and what the encoder needs to
 * decode it. Shared by bench/capture.ts (writer alone) and bench/capture/writer-profile.ts.
 */
import type { Schema } from 'apache-arrow';
import type { ProbeInfo } from '../../capture/decode.ts';
import { activeSections, captureSchema } from '../../capture/session.ts';
import type { DropReasons } from '../../capture/drop-reasons.ts';
import { makeBatch, udpFrame, type SyntheticRecord } from '../../capture/synthetic.ts';

export interface WriterFixture {
  probes: Map<number, ProbeInfo>;
  batch: ArrayBuffer;
  records: number;
  /** Every drop reason is NO_SOCKET: no kernel BTF needed. */
  reasons: DropReasons;
  /** The stream schema of a default capture with the auto collectors of a host with conntrack. */
  schema: Schema;
}

export function writerFixture(records = 3000): WriterFixture {
  const probes = new Map<number, ProbeInfo>([
    [1, { symbol: 'net:netif_receive_skb', probeType: 'raw_tracepoint', user: false, binary: undefined }],
    [2, { symbol: 'net:net_dev_start_xmit', probeType: 'raw_tracepoint', user: false, binary: undefined }],
    [3, { symbol: 'skb:kfree_skb', probeType: 'raw_tracepoint', user: false, binary: undefined }],
  ]);
  const recs: SyntheticRecord[] = [];
  for (let i = 0; i < records; i++) {
    recs.push({ ts: BigInt(i), probeId: 1 + (i % 3), cpu: i & 1, pid: 4242, comm: 'udpflood', origHead: 0xffff888100000000n + BigInt(i * 512), skb: 0xffff888200000000n, packet: udpFrame(32, 40000, 9, i), netns: { inum: 4026532177, cookie: 33n }, dev: { name: 'lo', ifindex: 1, rxIfindex: 1 }, dropReason: i % 3 === 2 ? 3 : undefined });
  }
  const reasons = { name: () => ({ subsys: undefined, reason: 'NO_SOCKET' }) } as unknown as DropReasons;
  const sections = activeSections(['skb', 'skb-drop', 'skb-tracking', 'dev', 'ns', 'ct'], probes.values());
  const schema = captureSchema(sections, { timestamp: 1n, retisVersion: 'bench', cmdline: 'bench', offsetSec: 0n, offsetNsec: 0n, kernelRelease: '', kernelVersion: '', hardwareName: '' });
  return { probes, batch: makeBatch(recs), records, reasons, schema };
}
