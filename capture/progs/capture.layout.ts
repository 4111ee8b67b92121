/**
 * Records of capture.bpf.c: one fixed header per event, then the variable parts.
 *
 *   struct retis_capture_event            (this layout, `size` bytes, 8-aligned)
 *   u8  packet[cap_len]                   when sections & PACKET (L2 first; fake Ethernet header if none)
 *   pad to 8
 *   u64 stack[stack_bytes / 8]            when sections & STACK (kernel return addresses, innermost first)
 *
 * `sections` says which Retis sections the record carries (CaptureSection bits): a field whose
 * section bit is clear is garbage, not zero. A record without stack, ct, nft or ovs block ends
 * after its packet bytes (8-aligned). In the ring, records travel in batches, each record behind
 * a frame { u32 len, u32 probe_id } (capture.bpf.c stage_flush(); split by the reader). The C
 * header build/include/capture.layout.h is generated from this file by bpf/build.mjs.
 */
import { defineEnum, defineLayout } from '../../bpf/layout.ts';

/** Bits of `sections`: which Retis sections (and optional fields) the record holds. */
export const CaptureSection = defineEnum('retis_capture_section', {
  /** skb-tracking: track_ts, orig_head, skb */
  tracking: 1 << 0,
  /** skb-drop: drop_reason */
  drop: 1 << 1,
  /** packet: pkt_len, cap_len + bytes after the header */
  packet: 1 << 2,
  /** skb.vlan_accel: vlan_proto, vlan_tci */
  vlan: 1 << 3,
  /** skb.meta */
  meta: 1 << 4,
  /** skb.data_ref */
  dataref: 1 << 5,
  /** skb.gso */
  gso: 1 << 6,
  /** dev: dev_name, ifindex */
  dev: 1 << 7,
  /** dev.rx_ifindex */
  rxif: 1 << 8,
  /** netns: netns_inum */
  netns: 1 << 9,
  /** netns.cookie */
  netns_cookie: 1 << 10,
  /** kernel.stack_trace: stack_bytes of addresses after the packet */
  stack: 1 << 11,
  /** userspace section (uprobe/usdt): ip; pid/tid from pid_tgid */
  user: 1 << 12,
  /** ct block (nftct.layout.ts) at ProbeInfo.ctOff */
  ct: 1 << 24,
  /** nft block (nftct.layout.ts) at ProbeInfo.nftOff */
  nft: 1 << 25,
  /** ovs: the record ends with a struct retis_ovs_event (capture/progs/ovs.layout.ts) */
  ovs: 1 << 13,
});

/** Bits of the per-probe `cfg_collect` constant: what the probe collects. */
export const CaptureCollect = defineEnum('retis_capture_collect', {
  /** packet bytes and VLAN acceleration (skb collector) */
  skb: 1 << 0,
  /** skb.meta (--skb-sections meta) */
  meta: 1 << 1,
  /** skb.data_ref (--skb-sections dataref) */
  dataref: 1 << 2,
  /** skb.gso (--skb-sections gso) */
  gso: 1 << 3,
  drop: 1 << 4,
  tracking: 1 << 5,
  dev: 1 << 6,
  ns: 1 << 7,
  stack: 1 << 8,
  /** conntrack of the skb (ct collector): a ct block after the stack room */
  ct: 1 << 24,
  /** nft verdict (nft collector, __nft_trace_packet): an nft block after the ct block */
  nft: 1 << 25,
});

/** Bits of the per-probe `cfg_tracking` constant (Retis's tracking_config). */
export const CaptureTracking = defineEnum('retis_capture_tracking', {
  /** Report existing tracking ids only, never create one (the skb may already be freed). */
  no_tracking: 1 << 0,
  /** The probe sees the last reference of an skb dropped (skb:kfree_skb, skb:consume_skb): forget it. */
  free: 1 << 1,
  /** The function invalidates the skb head (pskb_expand_head): also index the entry by skb address. */
  inv_head: 1 << 2,
  /** The function frees the head itself (skb_free_head): forget it unconditionally. */
  free_head: 1 << 3,
  /** kfree_skb_partial: forget only when argument 1 (head_stolen) is true. */
  partial_free: 1 << 4,
  /** Internal helper probe: maintain tracking, emit no event. */
  silent: 1 << 5,
});

export const captureEvent = defineLayout(
  'retis_capture_event',
  {
    ts: { type: 'u64', doc: 'bpf_ktime_get_ns(): CLOCK_MONOTONIC' },
    skb: { type: 'u64', doc: 'struct sk_buff * (skb-tracking.skb)' },
    track_ts: { type: 'u64', doc: 'skb-tracking.timestamp: when the packet was first seen' },
    orig_head: { type: 'u64', doc: 'skb-tracking.orig_head: skb->head when first seen' },
    netns_cookie: 'u64',
    pid_tgid: { type: 'u64', doc: 'bpf_get_current_pid_tgid(): tgid << 32 | pid' },
    ip: { type: 'u64', doc: 'user probes: instruction pointer' },
    probe_id: 'u32',
    sections: { type: 'u32', doc: 'enum retis_capture_section bits' },
    cpu: 'u32',
    drop_reason: { type: 'u32', doc: 'enum skb_drop_reason of the running kernel (subsystem << 16 | reason)' },
    netns_inum: 'u32',
    ifindex: 'u32',
    rx_ifindex: { type: 'u32', doc: 'skb->skb_iif' },
    len: { type: 'u32', doc: 'skb->len' },
    data_len: 'u32',
    hash: 'u32',
    csum: 'u32',
    priority: 'u32',
    gso_size: 'u32',
    gso_segs: 'u32',
    gso_type: 'u32',
    pkt_len: { type: 'u32', doc: 'packet.len: length from L2 (fake Ethernet header included)' },
    // comm and dev_name 8-aligned (offsets 120, 136): BPF writes each as two u64 stores; at odd
    // offsets clang split those into 16 byte stores with shifts apiece (JIT dump).
    comm: { type: 'char', length: 16 },
    dev_name: { type: 'char', length: 16 },
    cap_len: { type: 'u16', doc: 'packet bytes following the header' },
    stack_bytes: { type: 'u16', doc: 'stack addresses following the packet (8-aligned)' },
    vlan_proto: { type: 'u16', doc: 'network byte order, as in the skb' },
    vlan_tci: 'u16',
    ip_summed: 'u8',
    csum_level: 'u8',
    nohdr: 'u8',
    cloned: 'u8',
    fclone: 'u8',
    users: 'u8',
    dataref: 'u8',
    gso_flags: 'u8',
    gso_frags: 'u8',
  },
  'One capture event: fixed part. Packet bytes and stack addresses follow (see capture.layout.ts).',
);
