/**
 * Which way the nft collector gets verdicts on this kernel, and why (recorded in capture.json):
 * - kprobe: Retis's way, a probe on __nft_trace_packet (kprobe, else fentry) reading the
 *   verdict, chain, table and rule from the kernel objects. Needs the symbol and a working
 *   kprobe or fentry attach type.
 * - netlink: the nf_tables trace events (NFNLGRP_NFTRACE) matched to packets in user space
 *   (collector.ts), for kernels without kprobes where fentry is refused.
 * RETIS_TS_NFT_PATH=netlink|kprobe forces one (tests: the netlink path on a kprobe kernel).
 */
import { kallsymsHas, type KernelFeatures } from '../../bpf/features.ts';

export type NftPath = { path: 'kprobe'; why: string } | { path: 'netlink'; why: string };

export const NFT_SYMBOL = '__nft_trace_packet';

export function chooseNftPath(features: KernelFeatures, hasSymbol: (name: string) => boolean = (name) => kallsymsHas(name)): NftPath {
  const forced = process.env.RETIS_TS_NFT_PATH;
  if (forced === 'netlink') return { path: 'netlink', why: 'forced by RETIS_TS_NFT_PATH=netlink' };
  if (forced === 'kprobe') return { path: 'kprobe', why: 'forced by RETIS_TS_NFT_PATH=kprobe' };
  // The attach types first: /proc/kallsyms takes the kernel ~65 ms to generate (5 MB), a tenth
  // of a capture's start, and no symbol helps a kernel that can probe neither way.
  const via = features.kprobe.supported ? 'kprobe' : features.fentry.supported ? 'fentry' : undefined;
  if (!via) return { path: 'netlink', why: `${NFT_SYMBOL} cannot be probed (kprobe: ${features.kprobe.reason}; fentry: ${features.fentry.reason}): nf_tables trace events over netlink` };
  if (!hasSymbol(NFT_SYMBOL)) return { path: 'netlink', why: `${NFT_SYMBOL} is not in /proc/kallsyms (inlined, or nf_tables not loaded): nf_tables trace events over netlink` };
  return { path: 'kprobe', why: via === 'kprobe' ? `kprobe on ${NFT_SYMBOL} (as Retis)` : `fentry on ${NFT_SYMBOL} (kprobes unavailable: ${features.kprobe.reason})` };
}
