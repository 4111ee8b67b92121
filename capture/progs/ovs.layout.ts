/**
 * The ovs collector's part of a capture record (capture/progs/ovs.bpf.h). Probes of the ovs
 * collector reserve this block at the very END of their record (after the packet and stack
 * room), so the rest of the record is laid out exactly as for every other probe and the decoder
 * finds it at `record size - ovsEvent.size` without knowing the probe's snap length or stack
 * room. Present when the record's sections have CaptureSection.ovs.
 *
 * One fixed struct holds every variant (Retis's `ovs` section is an enum tagged by event_type):
 * OVS events are a small fraction of a capture, so the unused fields cost ring bytes only on them.
 */
import { defineEnum, defineLayout } from '../../bpf/layout.ts';

/** Per-probe `cfg_ovs` constant: which OVS hook a probe instance is. 0: not an OVS probe. */
export const OvsHook = defineEnum('retis_ovs_hook', {
  /** raw_tp openvswitch:ovs_dp_upcall -> ovs `upcall` */
  upcall: 1,
  /** kretprobe ovs_dp_upcall -> `upcall_return` */
  upcall_ret: 2,
  /** kprobe queue_userspace_packet: remembers skb + upcall info (no event) */
  enqueue_entry: 3,
  /** kretprobe queue_userspace_packet -> `upcall_enqueue` */
  enqueue_ret: 4,
  /** raw_tp openvswitch:ovs_do_execute_action -> `action_execute` */
  exec_tp: 5,
  /** kprobe ovs_execute_actions: marks executions of a userspace flow_exec (no event; --ovs-track) */
  exec_actions: 6,
  /** kprobe ovs_dp_process_packet: remembers the skb for the flow lookup (no event) */
  process_packet: 7,
  /** kprobe ovs_flow_tbl_lookup_stats: remembers the hit counters' addresses (no event) */
  lookup_entry: 8,
  /** kretprobe ovs_flow_tbl_lookup_stats -> `flow_lookup` */
  lookup_ret: 9,
  /** usdt dpif_recv:recv_upcall -> `recv_upcall` */
  recv_upcall: 10,
  /** usdt dpif_netlink_operate__:op_flow_execute -> `flow_operation` exec */
  op_exec: 11,
  /** usdt dpif_netlink_operate__:op_flow_put -> `flow_operation` put */
  op_put: 12,
});

/** `kind` of a record's OVS block: Retis's event_type. */
export const OvsKind = defineEnum('retis_ovs_kind', {
  upcall: 1,
  upcall_enqueue: 2,
  upcall_return: 3,
  recv_upcall: 4,
  flow_operation: 5,
  action_execute: 6,
  flow_lookup: 7,
});

/** Bits of `flags`. */
export const OvsFlags = defineEnum('retis_ovs_flags', {
  /** action_execute: queue_id is set (the action runs a userspace flow_exec) */
  queue_id: 1 << 0,
  /** action_execute ct: min/max addresses are IPv6 */
  ct_ip6: 1 << 1,
});

export const ovsEvent = defineLayout(
  'retis_ovs_event',
  {
    upcall_ts: { type: 'u64', doc: 'upcall_enqueue/upcall_return: timestamp of the upcall event' },
    batch_ts: { type: 'u64', doc: 'recv_upcall/flow_operation: timestamp of the batch leader' },
    key_size: { type: 'u64', doc: 'recv_upcall: flow key size' },
    flow: { type: 'u64', doc: 'flow_lookup: struct sw_flow * (0: miss)' },
    sf_acts: { type: 'u64', doc: 'flow_lookup: struct sw_flow_actions *' },
    ufid: { type: 'u32', length: 4 },
    port: { type: 'u32', doc: 'upcall port id, or output action port' },
    cpu: 'u32',
    upcall_cpu: 'u32',
    ret: 's32',
    queue_id: 'u32',
    recirc_id: { type: 'u32', doc: 'action_execute: key->recirc_id' },
    arg: { type: 'u32', doc: 'action_execute: first u32 of the action attribute (recirc id, drop reason)' },
    ct_flags: { type: 'u32', doc: 'ct action: Retis R_OVS_CT_* bits' },
    type: { type: 'u32', doc: 'recv_upcall: upcall type' },
    pkt_size: 'u32',
    n_mask_hit: 'u32',
    n_cache_hit: 'u32',
    ct_min_addr: { type: 'u8', length: 16 },
    ct_max_addr: { type: 'u8', length: 16 },
    ct_zone: 'u16',
    ct_min_port: { type: 'u16', doc: 'network byte order' },
    ct_max_port: { type: 'u16', doc: 'network byte order' },
    kind: { type: 'u8', doc: 'enum retis_ovs_kind' },
    cmd: 'u8',
    action: { type: 'u8', doc: 'action_execute: nla_type of the action (enum ovs_action_attr)' },
    flags: { type: 'u8', doc: 'enum retis_ovs_flags bits' },
    op_type: { type: 'u8', doc: 'flow_operation: 0 exec, 1 put' },
    batch_idx: 'u8',
  },
  'The ovs collector block, at the end of the record (see ovs.layout.ts).',
);
