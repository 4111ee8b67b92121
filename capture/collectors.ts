/**
 * Collectors, as Retis has them: which sections each produces, which probes it adds, and whether
 * the running kernel lets it run. `-c` lists them explicitly (a listed collector that cannot run is
 * an error saying why); without `-c` every collector whose requirements are met runs, as Retis's
 * `auto` does.
 */
import fs, { existsSync } from 'node:fs';
import type { Btf } from '../bpf/btf.ts';
import type { KernelFeatures } from '../bpf/features.ts';
import { ovsTestUsdtOnly } from './ovs/probes.ts';
import { CaptureCollect } from './progs/capture.layout.ts';

export const COLLECTORS = ['skb', 'skb-drop', 'skb-tracking', 'dev', 'ns', 'nft', 'ct', 'ovs'] as const;
export type CollectorName = (typeof COLLECTORS)[number];

export interface CollectorInfo {
  name: CollectorName;
  /** Sections its events carry. */
  sections: string[];
  /** Probes it needs in addition to the user's (Retis's collector probes). */
  probes: string[];
  about: string;
}

export const COLLECTOR_INFO: Record<CollectorName, CollectorInfo> = {
  skb: { name: 'skb', sections: ['packet', 'skb'], probes: [], about: 'packet bytes (up to --snaplen), VLAN acceleration; meta, data_ref, gso with --skb-sections' },
  'skb-drop': { name: 'skb-drop', sections: ['skb-drop'], probes: ['tp:skb:kfree_skb'], about: 'drop reason (enum skb_drop_reason of the running kernel) and subsystem' },
  'skb-tracking': { name: 'skb-tracking', sections: ['skb-tracking'], probes: [], about: 'one id per packet: first-seen timestamp + original head, shared by clones' },
  dev: { name: 'dev', sections: ['dev'], probes: [], about: 'network device name, ifindex, rx ifindex' },
  ns: { name: 'ns', sections: ['netns'], probes: [], about: 'network namespace cookie and inode number' },
  nft: { name: 'nft', sections: ['nft'], probes: ['kprobe:__nft_trace_packet'], about: 'nftables verdicts (kprobe on __nft_trace_packet, else nf_tables trace events over netlink; see --nft-verdicts, --allow-system-changes)' },
  ct: { name: 'ct', sections: ['ct'], probes: [], about: 'conntrack entry of the skb (skb->_nfct): state, tuples (NAT visible), zone, mark, labels, TCP/SCTP state, master' },
  ovs: {
    name: 'ovs',
    sections: ['ovs'],
    probes: ['raw_tp:openvswitch:ovs_dp_upcall', 'raw_tp:openvswitch:ovs_do_execute_action', 'kretprobe:ovs_dp_upcall', 'kprobe+kretprobe:queue_userspace_packet', 'kprobe:ovs_dp_process_packet', 'kprobe+kretprobe:ovs_flow_tbl_lookup_stats', 'kprobe:ovs_execute_actions (--ovs-track)'],
    about: 'Open vSwitch kernel datapath: upcalls, their enqueue and return, executed actions, flow lookups (the kprobe-based ones where the kernel has kprobes); ovs-vswitchd upcall handling with --ovs-track (USDT)',
  },
};

/** The cfg_collect bits (capture.bpf.c) of a probe that every collector in `collectors` reads. */
export function collectBits(collectors: readonly CollectorName[], skbSections: ReadonlySet<string>): number {
  const C = CaptureCollect.values;
  const has = (c: CollectorName): boolean => collectors.includes(c);
  let bits = 0;
  if (has('skb')) {
    bits |= C.skb;
    const all = skbSections.has('all');
    if (all || skbSections.has('meta')) bits |= C.meta;
    if (all || skbSections.has('dataref')) bits |= C.dataref;
    if (all || skbSections.has('gso')) bits |= C.gso;
  }
  if (has('skb-drop')) bits |= C.drop;
  if (has('skb-tracking')) bits |= C.tracking;
  if (has('dev')) bits |= C.dev;
  if (has('ns')) bits |= C.ns;
  if (has('ct')) bits |= C.ct;
  return bits;
}

/** Retis's default probes when the user gives none. */
export const DEFAULT_PROBES = ['tp:net:netif_receive_skb', 'tp:net:net_dev_start_xmit'];

export class CollectorError extends Error {
  override name = 'CollectorError';
}

/** Why a collector cannot run on this kernel, or undefined when it can. */
export function collectorUnavailable(name: CollectorName, btf: Btf, features: KernelFeatures): string | undefined {
  switch (name) {
    case 'skb-drop': {
      if (!btf.findType('skb_drop_reason', 'enum') && !btf.findType('skb_drop_reason', 'enum64')) {
        return 'this kernel has no drop reasons (enum skb_drop_reason, Linux >= 5.17)';
      }
      if (!btf.hasTracepoint('kfree_skb')) return 'the skb:kfree_skb tracepoint has no BTF on this kernel';
      if (!features.tpBtf.supported && !features.rawTracepoint.supported && !features.tracepoint.supported) {
        return `no tracepoint attach type works here (tp_btf: ${features.tpBtf.reason})`;
      }
      return undefined;
    }
    case 'ct':
      if (!btf.findType('nf_conn', 'struct') && !fs.existsSync('/sys/kernel/btf/nf_conntrack')) {
        return "'nf_conntrack' kernel module is likely not built-in or loaded (no struct nf_conn in the kernel BTF)";
      }
      return undefined;
    case 'nft':
      if (!btf.findType('nft_traceinfo', 'struct') && !fs.existsSync('/sys/kernel/btf/nf_tables')) {
        return "'nf_tables' kernel module is likely not built-in or loaded (modprobe nf_tables, or list any nft ruleset)";
      }
      return undefined;
    case 'ovs':
      return ovsUnavailable(btf, features);
    default:
      return undefined;
  }
}

/**
 * The ovs collector needs the openvswitch module's tracepoints (module loaded, or built in) and raw
 * tracepoints. Retis's wording: "'openvswitch' kernel module is likely not built-in or loaded".
 */
export function ovsUnavailable(btf: Btf, features: KernelFeatures, sys = '/sys'): string | undefined {
  if (ovsTestUsdtOnly()) return undefined;
  const loaded = existsSync(`${sys}/module/openvswitch`) || existsSync(`${sys}/kernel/btf/openvswitch`) || btf.hasTracepoint('ovs_dp_upcall');
  if (!loaded) return "the 'openvswitch' kernel module is not loaded (nor built in): modprobe openvswitch, or start Open vSwitch, then capture again";
  if (!features.rawTracepoint.supported) return `raw tracepoints are unavailable (${features.rawTracepoint.reason}), and the OVS tracepoints are read as raw tracepoints`;
  return undefined;
}

/**
 * The collectors to run: the explicit list (each must be able to run), or every implemented one
 * the kernel supports. Returns the list and, for auto mode, what was left out and why.
 */
export function selectCollectors(requested: readonly string[] | undefined, btf: Btf, features: KernelFeatures): { collectors: CollectorName[]; skipped: { name: CollectorName; reason: string }[] } {
  const skipped: { name: CollectorName; reason: string }[] = [];
  const auto = requested === undefined || requested.length === 0 || (requested.length === 1 && requested[0] === 'auto');
  if (auto) {
    const collectors: CollectorName[] = [];
    for (const c of COLLECTORS) {
      const why = collectorUnavailable(c, btf, features);
      if (why) skipped.push({ name: c, reason: why });
      else collectors.push(c);
    }
    return { collectors, skipped };
  }
  const out: CollectorName[] = [];
  for (const r of requested) {
    if (r === 'auto') throw new CollectorError("'auto' cannot be combined with collector names in -c");
    if (!(COLLECTORS as readonly string[]).includes(r)) throw new CollectorError(`unknown collector '${r}' (known: ${COLLECTORS.join(', ')})`);
    const c = r as CollectorName;
    const why = collectorUnavailable(c, btf, features);
    if (why) throw new CollectorError(`collector ${c} cannot run: ${why}`);
    if (!out.includes(c)) out.push(c);
  }
  return { collectors: out, skipped };
}
