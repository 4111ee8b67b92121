/**
 * -f/--filter-packet: a pcap-filter expression, compiled by libpcap (through the addon) to classic
 * BPF twice, as Retis does: for Ethernet (the L2 variant, run on skbs with a MAC header) and for
 * raw IP (the L3 variant, run on skbs that start at the network header, e.g. early on Tx).
 * Both are translated to eBPF for the probes' placeholders (cbpf.ts).
 *
 * An expression that only makes sense with an Ethernet header (`ether host ...`) does not compile
 * for raw IP: the L3 variant then runs the L2 program over the fake Ethernet header the probe
 * writes in front of the network header (zero MACs, skb->protocol as ethertype).
 */
import { native } from '../native.ts';
import { decodeCbpf, translateCbpf, type CbpfInsn } from './cbpf.ts';
import { DLT_EN10MB, DLT_RAW, FILTER_L3_OFF, FILTER_L2_MAGIC, FILTER_L3_MAGIC } from './layout.ts';

/** libpcap refused the expression: `pcapError` is its message, verbatim. */
export class PacketFilterError extends Error {
  override name = 'PacketFilterError';
  constructor(readonly expression: string, readonly pcapError: string) {
    super(`invalid packet filter '${expression}': ${pcapError}`);
  }
}

export interface CompiledPacketFilter {
  expression: string;
  l2: { cbpf: CbpfInsn[]; ebpf: Uint8Array };
  /** `fallback`: the L3 variant is the L2 program over a fake Ethernet header. */
  l3: { cbpf: CbpfInsn[]; ebpf: Uint8Array; fallback: boolean };
}

/** Snap length given to libpcap: large, so that `ret #snaplen` is never 0 for a matching packet. */
const PCAP_SNAPLEN = 262144;

/** Classic BPF of `expression` for a link type (throws PacketFilterError with libpcap's message). */
export function pcapCompile(expression: string, linktype: number): CbpfInsn[] {
  try {
    return decodeCbpf(native().pcapCompile(expression, linktype, PCAP_SNAPLEN));
  } catch (e) {
    const pcapError = (e as { pcapError?: unknown }).pcapError;
    if (typeof pcapError === 'string') throw new PacketFilterError(expression, pcapError);
    throw e;
  }
}

export function compilePacketFilter(expression: string): CompiledPacketFilter {
  const l2 = pcapCompile(expression, DLT_EN10MB);
  let l3: CbpfInsn[];
  let fallback = false;
  try {
    l3 = pcapCompile(expression, DLT_RAW);
  } catch (e) {
    if (!(e instanceof PacketFilterError)) throw e;
    l3 = l2;
    fallback = true;
  }
  return {
    expression,
    l2: { cbpf: l2, ebpf: translateCbpf(l2, { base: 0 }) },
    l3: {
      cbpf: l3,
      fallback,
      ebpf: fallback ? translateCbpf(l2, { base: 0, lenAdjust: FILTER_L3_OFF }) : translateCbpf(l3, { base: FILTER_L3_OFF }),
    },
  };
}

/** Placeholder patches (magic -> code) for a compiled packet filter. */
export function packetFilterPatches(f: CompiledPacketFilter): { magic: number; insns: Uint8Array }[] {
  return [
    { magic: FILTER_L2_MAGIC, insns: f.l2.ebpf },
    { magic: FILTER_L3_MAGIC, insns: f.l3.ebpf },
  ];
}
