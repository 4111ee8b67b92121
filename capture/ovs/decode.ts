/**
 * The ovs collector's block of a capture record (capture/progs/ovs.layout.ts) as Retis's `ovs`
 * section: event_type and the variant's fields, as retis-events' ovs.rs serialises them.
 *
 * OVS events are a small share of a capture (upcalls are flow misses; actions run once per
 * datapath action), so they are decoded into plain section objects and the `ovs` Arrow column is
 * built from those with apache-arrow's builders when the batch is cut (OvsColumn), rather than
 * through the typed-array hot path of capture/decode.ts.
 */
import { makeBuilder, type Data, type DataType } from 'apache-arrow';
import type { Section } from '../../analyze/model/event.ts';
import { OvsFlags, OvsKind, ovsEvent } from '../progs/ovs.layout.ts';

export const OVS_BLOCK_BYTES = ovsEvent.size;
const O = ovsEvent.offsets;
const K = OvsKind.values;

/**
 * enum ovs_action_attr (include/uapi/linux/openvswitch.h: numbers are ABI) to Retis's action tag.
 * OVS_ACTION_ATTR_SET_TO_MASKED is kernel-internal (after __OVS_ACTION_ATTR_MAX) and never reaches
 * the tracepoint under that number on the kernels we know; unknown numbers leave `action` out, as
 * Retis does (its text shows "unspec").
 */
export const OVS_ACTIONS: readonly (string | undefined)[] = [
  undefined, // OVS_ACTION_ATTR_UNSPEC
  'output',
  'userspace',
  'set',
  'push_vlan',
  'pop_vlan',
  'sample',
  'recirc',
  'hash',
  'push_mpls',
  'pop_mpls',
  'set_masked',
  'ct',
  'trunc',
  'push_eth',
  'pop_eth',
  'ct_clear',
  'push_nsh',
  'pop_nsh',
  'meter',
  'clone',
  'check_pkt_len',
  'add_mpls',
  'dec_ttl',
  'drop',
];

/** Retis's R_OVS_CT_* bits (retis-events ovs.rs). */
const CT_NAT_SRC = 1 << 5;
const CT_NAT_DST = 1 << 6;
const CT_RANGE_MAP_IPS = 1 << 7;
const CT_RANGE_PROTO_SPECIFIED = 1 << 8;

function ipText(view: DataView, off: number, v6: boolean): string {
  if (!v6) return `${view.getUint8(off)}.${view.getUint8(off + 1)}.${view.getUint8(off + 2)}.${view.getUint8(off + 3)}`;
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(view.getUint16(off + i, false).toString(16));
  // RFC 5952 compression of the longest run of zero words.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}

/** The `ovs` section of the block at `base` (record offset + size - OVS_BLOCK_BYTES). */
export function ovsSection(view: DataView, base: number): Section | undefined {
  const u32 = (f: number): number => view.getUint32(base + f, true);
  const u64 = (f: number): bigint => view.getBigUint64(base + f, true);
  const u8 = (f: number): number => view.getUint8(base + f);
  const kind = u8(O.kind);
  switch (kind) {
    case K.upcall:
      return { event_type: 'upcall', cmd: u8(O.cmd), port: u32(O.port), cpu: u32(O.cpu) };
    case K.upcall_enqueue:
      return {
        event_type: 'upcall_enqueue', ret: view.getInt32(base + O.ret, true), cmd: u8(O.cmd), port: u32(O.port),
        upcall_ts: u64(O.upcall_ts), upcall_cpu: u32(O.upcall_cpu), queue_id: u32(O.queue_id),
      };
    case K.upcall_return:
      return { event_type: 'upcall_return', upcall_ts: u64(O.upcall_ts), upcall_cpu: u32(O.upcall_cpu), ret: view.getInt32(base + O.ret, true) };
    case K.recv_upcall:
      return {
        event_type: 'recv_upcall', type: u32(O.type), pkt_size: u32(O.pkt_size), key_size: u64(O.key_size),
        queue_id: u32(O.queue_id), batch_ts: u64(O.batch_ts), batch_idx: u8(O.batch_idx),
      };
    case K.flow_operation:
      return { event_type: 'flow_operation', op_type: u8(O.op_type) === 1 ? 'put' : 'exec', queue_id: u32(O.queue_id), batch_ts: u64(O.batch_ts), batch_idx: u8(O.batch_idx) };
    case K.action_execute: {
      const s: Section = { event_type: 'action_execute' };
      const action = OVS_ACTIONS[u8(O.action)];
      if (action !== undefined) s.action = action;
      if (action === 'output') s.port = u32(O.port);
      else if (action === 'recirc') s.id = u32(O.arg);
      else if (action === 'drop') s.reason = u32(O.arg);
      else if (action === 'ct') {
        const flags = u32(O.ct_flags);
        s.flags = flags;
        s.zone_id = view.getUint16(base + O.ct_zone, true);
        if (flags & (CT_NAT_SRC | CT_NAT_DST | CT_RANGE_MAP_IPS | CT_RANGE_PROTO_SPECIFIED)) {
          const nat: Section = {};
          if (flags & CT_NAT_SRC) nat.dir = 'src';
          else if (flags & CT_NAT_DST) nat.dir = 'dst';
          if (flags & CT_RANGE_MAP_IPS) {
            const v6 = (u8(O.flags) & OvsFlags.values.ct_ip6) !== 0;
            nat.min_addr = ipText(view, base + O.ct_min_addr, v6);
            nat.max_addr = ipText(view, base + O.ct_max_addr, v6);
          }
          if (flags & CT_RANGE_PROTO_SPECIFIED) {
            nat.min_port = view.getUint16(base + O.ct_min_port, false); // __be16 in the kernel
            nat.max_port = view.getUint16(base + O.ct_max_port, false);
          }
          s.nat = nat;
        }
      }
      s.recirc_id = u32(O.recirc_id);
      if (u8(O.flags) & OvsFlags.values.queue_id) s.queue_id = u32(O.queue_id);
      return s;
    }
    case K.flow_lookup:
      return {
        event_type: 'flow_lookup', flow: u64(O.flow), sf_acts: u64(O.sf_acts),
        ufid: [u32(O.ufid), u32(O.ufid + 4), u32(O.ufid + 8), u32(O.ufid + 12)],
        n_mask_hit: u32(O.n_mask_hit), n_cache_hit: u32(O.n_cache_hit), dpflow: '', ofpflows: [],
      };
    default:
      return undefined;
  }
}

/**
 * The `ovs` column of a batch: sections by row, assembled by Arrow's builders. Registered on the
 * ColumnSet as a custom leaf (columns.ts); rows without an OVS event are null.
 */
export class OvsColumn {
  private rows: (Section | undefined)[] = [];
  private any = false;

  set(row: number, s: Section | undefined): void {
    if (s === undefined) return;
    this.rows[row] = s;
    this.any = true;
  }

  get empty(): boolean {
    return !this.any;
  }

  build(type: DataType, n: number): Data {
    const b = makeBuilder({ type, nullValues: [null, undefined] });
    for (let i = 0; i < n; i++) b.append(this.rows[i] ?? null);
    return b.finish().flush();
  }

  reset(): void {
    if (this.any) this.rows = [];
    this.any = false;
  }
}
