/**
 * Value domains: which bare names a field accepts (`reason = NO_SOCKET`, `proto = udp`,
 * `ct.state = established`), and where the list of valid names comes from — a fixed
 * list, the running kernel (BTF), the loaded data, or all three.
 *
 * The compiler is synchronous and reads domains through a `Catalog`; values that only
 * the data can confirm are fetched by the runner (`loadDomains`) and the query compiled
 * again, so the common case (a name from a fixed list) costs no database round trip.
 */
import { kernelDropReasons } from './btf.ts';

export interface Domain {
  /** Identity of the domain (the field it belongs to). */
  key: string;
  /** Values always accepted. */
  fixed?: readonly string[];
  /** The fixed list is all there is: never look at the data. */
  closed?: boolean;
  /** Also accept the running kernel's drop reasons. */
  kernelDropReasons?: boolean;
  /** SQL expression over `events` whose distinct values are valid too. */
  dataSql?: string;
  /** Bare names may also name a probe by its function/tracepoint: `kfree_skb` → `tp:skb:kfree_skb`. */
  probe?: boolean;
}

/**
 * Drop reasons of Linux 6.18 (enum skb_drop_reason, minus the SKB_DROP_REASON_ prefix):
 * known even where the kernel's BTF is not readable (another OS, an older kernel).
 */
export const DROP_REASONS: readonly string[] = (
  'NOT_DROPPED_YET CONSUMED NOT_SPECIFIED NO_SOCKET SOCKET_CLOSE SOCKET_FILTER SOCKET_RCVBUFF UNIX_DISCONNECT ' +
  'UNIX_SKIP_OOB PKT_TOO_SMALL TCP_CSUM UDP_CSUM NETFILTER_DROP OTHERHOST IP_CSUM IP_INHDR IP_RPFILTER ' +
  'UNICAST_IN_L2_MULTICAST XFRM_POLICY IP_NOPROTO PROTO_MEM TCP_AUTH_HDR TCP_MD5NOTFOUND TCP_MD5UNEXPECTED ' +
  'TCP_MD5FAILURE TCP_AONOTFOUND TCP_AOUNEXPECTED TCP_AOKEYNOTFOUND TCP_AOFAILURE SOCKET_BACKLOG TCP_FLAGS ' +
  'TCP_ABORT_ON_DATA TCP_ZEROWINDOW TCP_OLD_DATA TCP_OVERWINDOW TCP_OFOMERGE TCP_RFC7323_PAWS ' +
  'TCP_RFC7323_PAWS_ACK TCP_RFC7323_TW_PAWS TCP_RFC7323_TSECR TCP_LISTEN_OVERFLOW TCP_OLD_SEQUENCE ' +
  'TCP_INVALID_SEQUENCE TCP_INVALID_END_SEQUENCE TCP_INVALID_ACK_SEQUENCE TCP_RESET TCP_INVALID_SYN TCP_CLOSE ' +
  'TCP_FASTOPEN TCP_OLD_ACK TCP_TOO_OLD_ACK TCP_ACK_UNSENT_DATA TCP_OFO_QUEUE_PRUNE TCP_OFO_DROP ' +
  'IP_OUTNOROUTES BPF_CGROUP_EGRESS IPV6DISABLED NEIGH_CREATEFAIL NEIGH_FAILED NEIGH_QUEUEFULL NEIGH_DEAD ' +
  'NEIGH_HH_FILLFAIL TC_EGRESS SECURITY_HOOK QDISC_DROP QDISC_OVERLIMIT QDISC_CONGESTED CAKE_FLOOD ' +
  'FQ_BAND_LIMIT FQ_HORIZON_LIMIT FQ_FLOW_LIMIT CPU_BACKLOG XDP TC_INGRESS UNHANDLED_PROTO CSUM GSO_SEG ' +
  'UCOPY_FAULT DEV_HDR DEV_READY FULL_RING NOMEM HDR_TRUNC TAP_FILTER TAP_TXFILTER ICMP_CSUM INVALID_PROTO ' +
  'IP_INADDRERRORS IP_INNOROUTES IP_LOCAL_SOURCE IP_INVALID_SOURCE IP_LOCALNET IP_INVALID_DEST PKT_TOO_BIG ' +
  'DUP_FRAG FRAG_REASM_TIMEOUT FRAG_TOO_FAR TCP_MINTTL IPV6_BAD_EXTHDR IPV6_NDISC_FRAG IPV6_NDISC_HOP_LIMIT ' +
  'IPV6_NDISC_BAD_CODE IPV6_NDISC_BAD_OPTIONS IPV6_NDISC_NS_OTHERHOST QUEUE_PURGE TC_COOKIE_ERROR ' +
  'PACKET_SOCK_ERROR TC_CHAIN_NOTFOUND TC_RECLASSIFY_LOOP VXLAN_INVALID_HDR VXLAN_VNI_NOT_FOUND ' +
  'MAC_INVALID_SOURCE VXLAN_ENTRY_EXISTS NO_TX_TARGET IP_TUNNEL_ECN TUNNEL_TXINFO LOCAL_MAC ARP_PVLAN_DISABLE ' +
  'MAC_IEEE_MAC_CONTROL BRIDGE_INGRESS_STP_STATE CAN_RX_INVALID_FRAME CANFD_RX_INVALID_FRAME ' +
  'CANXL_RX_INVALID_FRAME PFMEMALLOC DUALPI2_STEP_DROP PSP_INPUT PSP_OUTPUT RECURSION_LIMIT'
).split(' ');

export const PROTOCOLS = ['tcp', 'udp', 'icmp', 'icmpv6', 'sctp', 'arp', 'igmp', 'gre', 'esp', 'ah', 'ipip', 'ipv6', 'udplite'] as const;
export const NFT_VERDICTS = ['continue', 'break', 'jump', 'goto', 'return', 'drop', 'accept', 'stolen', 'queue', 'repeat', 'stop', 'unknown'] as const;
export const CT_STATES = ['established', 'related', 'new', 'reply', 'related_reply', 'untracked'] as const;
export const PROBE_TYPES = ['raw_tracepoint', 'kprobe', 'kretprobe', 'usdt'] as const;
export const OVS_EVENT_TYPES = ['upcall', 'upcall_enqueue', 'upcall_return', 'recv_upcall', 'flow_operation', 'action_execute', 'flow_lookup'] as const;
export const OVS_ACTIONS = [
  'output', 'userspace', 'set', 'push_vlan', 'pop_vlan', 'sample', 'recirc', 'hash', 'push_mpls', 'pop_mpls', 'set_masked', 'ct',
  'trunc', 'push_eth', 'pop_eth', 'ct_clear', 'push_nsh', 'pop_nsh', 'meter', 'clone', 'check_pkt_len', 'add_mpls', 'dec_ttl', 'drop',
  'psample', 'unspec',
] as const;
export const FATES = ['dropped', 'transmitted', 'consumed', 'unknown'] as const;
export const UPCALL_OUTCOMES = ['executed', 'enqueue_failed', 'failed', 'lost', 'put', 'enqueued', 'unknown'] as const;

/** A domain made of the values a field takes in the data, plus `fixed`. */
export function dataDomain(key: string, dataSql: string, fixed?: readonly string[]): Domain {
  return fixed ? { key, dataSql, fixed } : { key, dataSql };
}

export const DOMAINS = {
  reason: { key: 'reason', fixed: DROP_REASONS, kernelDropReasons: true, dataSql: 'reason' } satisfies Domain,
  proto: { key: 'proto', fixed: PROTOCOLS, dataSql: 'proto' } satisfies Domain,
  probeType: { key: 'probe_type', fixed: PROBE_TYPES, dataSql: 'probe_type' } satisfies Domain,
  probe: { key: 'probe', dataSql: 'probe', probe: true } satisfies Domain,
  verdict: { key: 'nft.verdict', fixed: NFT_VERDICTS, dataSql: 'nft.verdict' } satisfies Domain,
  ctState: { key: 'ct.state', fixed: CT_STATES, dataSql: 'ct.state' } satisfies Domain,
  ovsEventType: { key: 'ovs.event_type', fixed: OVS_EVENT_TYPES, closed: true } satisfies Domain,
  ovsAction: { key: 'ovs.action', fixed: OVS_ACTIONS, dataSql: 'ovs.action' } satisfies Domain,
  opType: { key: 'ovs.op_type', fixed: ['put', 'exec'], closed: true } satisfies Domain,
  zoneDir: { key: 'ct.zone_dir', fixed: ['Original', 'Reply', 'Default', 'None'], closed: true } satisfies Domain,
  fate: { key: 'fate', fixed: FATES, closed: true } satisfies Domain,
  outcome: { key: 'outcome', fixed: UPCALL_OUTCOMES, closed: true } satisfies Domain,
};

export interface DomainValues {
  values: readonly string[];
  /** True when no further source (kernel, data) can add values. */
  complete: boolean;
}

/**
 * What the compiler knows of domains. `data` holds the values fetched from the loaded
 * events, per domain key; a domain whose key is there is complete.
 */
export class Catalog {
  private readonly data = new Map<string, readonly string[]>();
  private readonly kernelDone = new Set<string>();

  /** Values known so far; `complete` false means the kernel or the data may add more. */
  values(d: Domain): DomainValues {
    const out = new Set<string>(d.fixed ?? []);
    if (d.kernelDropReasons && this.kernelDone.has(d.key)) for (const r of kernelDropReasons() ?? []) out.add(r);
    const fromData = this.data.get(d.key);
    if (fromData) for (const v of fromData) out.add(v);
    const complete = d.closed === true || d.dataSql === undefined || fromData !== undefined;
    return { values: [...out], complete };
  }

  /** Consult the running kernel for `d` (cheap compared to the data, so done first). Returns true if that adds a source. */
  addKernel(d: Domain): boolean {
    if (!d.kernelDropReasons || this.kernelDone.has(d.key)) return false;
    this.kernelDone.add(d.key);
    return kernelDropReasons() !== null;
  }

  hasData(key: string): boolean {
    return this.data.has(key);
  }

  setData(key: string, values: readonly string[]): void {
    this.data.set(key, values);
  }
}

/** Look `name` up in `values`: exact match first, then a unique case-insensitive one. */
export function matchValue(name: string, values: readonly string[]): string | undefined {
  if (values.includes(name)) return name;
  const lower = name.toLowerCase();
  const hits = values.filter((v) => v.toLowerCase() === lower);
  return hits.length >= 1 ? hits[0] : undefined;
}

/** Probes in `values` whose function or tracepoint name is `name`: `kfree_skb` → `tp:skb:kfree_skb`. */
export function matchProbe(name: string, values: readonly string[]): string[] {
  const lower = name.toLowerCase();
  return values.filter((v) => {
    const last = v.slice(v.lastIndexOf(':') + 1).toLowerCase();
    return last === lower;
  });
}
