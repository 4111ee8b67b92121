/**
 * Synthetic ring-buffer batches of capture.bpf.c records (capture.layout.ts): what the BPF side
 * would write, without a kernel. Used to warm the decoder up (decode.ts), by the tests, and by
 * bench/capture.ts to measure the writer alone.
 */
import { RECORD_HEADER_BYTES } from '../bpf/ringbuf.ts';
import { captureEvent, CaptureSection } from './progs/capture.layout.ts';

const O = captureEvent.offsets;
const S = CaptureSection.values;

export interface SyntheticRecord {
  ts: bigint;
  probeId: number;
  cpu?: number;
  pid?: number;
  tgid?: number;
  comm?: string;
  skb?: bigint;
  trackTs?: bigint;
  origHead?: bigint;
  dropReason?: number;
  packet?: Uint8Array;
  pktLen?: number;
  netns?: { inum: number; cookie?: bigint };
  dev?: { name: string; ifindex: number; rxIfindex?: number };
  vlan?: { proto: number; tci: number };
  meta?: { len: number; dataLen: number; hash: number; ipSummed: number; csum: number; csumLevel: number; priority: number };
  dataref?: { nohdr: boolean; cloned: boolean; fclone: number; users: number; dataref: number };
  gso?: { flags: number; frags: number; size: number; segs: number; type: number };
  stack?: bigint[];
  ip?: bigint;
  /** ovs collector block (capture/progs/ovs.layout.ts bytes), written at the record's end. */
  ovs?: Uint8Array;
  /**
   * Blocks after the packet and stack parts, back to back (ct, nft: the probe's ProbeInfo.ctOff
   * and nftOff must say where), each setting its section bit.
   */
  ext?: { bytes: Uint8Array; section: number }[];
}

function recordSize(r: SyntheticRecord): number {
  const cap = r.packet?.length ?? 0;
  return captureEvent.size + ((cap + 7) & ~7) + (r.stack?.length ?? 0) * 8 + (r.ext ?? []).reduce((a, x) => a + x.bytes.length, 0) + (r.ovs?.length ?? 0);
}

/** One batch as the native reader delivers it: u32 size, u32 ring, payload, pad to 8. */
export function makeBatch(records: readonly SyntheticRecord[]): ArrayBuffer {
  const total = records.reduce((n, r) => n + RECORD_HEADER_BYTES + ((recordSize(r) + 7) & ~7), 0);
  const buf = new ArrayBuffer(total);
  const v = new DataView(buf);
  const u8 = new Uint8Array(buf);
  let p = 0;
  for (const r of records) {
    const size = recordSize(r);
    v.setUint32(p, size, true);
    v.setUint32(p + 4, 0, true);
    const b = p + RECORD_HEADER_BYTES;
    let sections = 0;
    v.setBigUint64(b + O.ts, r.ts, true);
    v.setUint32(b + O.probe_id, r.probeId, true);
    v.setUint32(b + O.cpu, r.cpu ?? 0, true);
    v.setUint32(b + O.pid_tgid, r.pid ?? 1, true);
    v.setUint32(b + O.pid_tgid + 4, r.tgid ?? r.pid ?? 1, true);
    u8.set(new TextEncoder().encode((r.comm ?? 'test').slice(0, 15)), b + O.comm);
    if (r.origHead !== undefined) {
      sections |= S.tracking;
      v.setBigUint64(b + O.skb, r.skb ?? 0n, true);
      v.setBigUint64(b + O.track_ts, r.trackTs ?? r.ts, true);
      v.setBigUint64(b + O.orig_head, r.origHead, true);
    }
    if (r.dropReason !== undefined) {
      sections |= S.drop;
      v.setUint32(b + O.drop_reason, r.dropReason, true);
    }
    if (r.packet) {
      sections |= S.packet;
      v.setUint32(b + O.pkt_len, r.pktLen ?? r.packet.length, true);
      v.setUint16(b + O.cap_len, r.packet.length, true);
      u8.set(r.packet, b + captureEvent.size);
    }
    if (r.netns) {
      sections |= S.netns;
      v.setUint32(b + O.netns_inum, r.netns.inum, true);
      if (r.netns.cookie !== undefined) {
        sections |= S.netns_cookie;
        v.setBigUint64(b + O.netns_cookie, r.netns.cookie, true);
      }
    }
    if (r.dev) {
      sections |= S.dev;
      u8.set(new TextEncoder().encode(r.dev.name.slice(0, 15)), b + O.dev_name);
      v.setUint32(b + O.ifindex, r.dev.ifindex, true);
      if (r.dev.rxIfindex !== undefined) {
        sections |= S.rxif;
        v.setUint32(b + O.rx_ifindex, r.dev.rxIfindex, true);
      }
    }
    if (r.vlan) {
      sections |= S.vlan;
      v.setUint16(b + O.vlan_proto, r.vlan.proto, false); // __be16 as in the skb
      v.setUint16(b + O.vlan_tci, r.vlan.tci, true);
    }
    if (r.meta) {
      sections |= S.meta;
      const m = r.meta;
      v.setUint32(b + O.len, m.len, true);
      v.setUint32(b + O.data_len, m.dataLen, true);
      v.setUint32(b + O.hash, m.hash, true);
      v.setUint8(b + O.ip_summed, m.ipSummed);
      v.setUint32(b + O.csum, m.csum, true);
      v.setUint8(b + O.csum_level, m.csumLevel);
      v.setUint32(b + O.priority, m.priority, true);
    }
    if (r.dataref) {
      sections |= S.dataref;
      const d = r.dataref;
      v.setUint8(b + O.nohdr, d.nohdr ? 1 : 0);
      v.setUint8(b + O.cloned, d.cloned ? 1 : 0);
      v.setUint8(b + O.fclone, d.fclone);
      v.setUint8(b + O.users, d.users);
      v.setUint8(b + O.dataref, d.dataref);
    }
    if (r.gso) {
      sections |= S.gso;
      const g = r.gso;
      v.setUint8(b + O.gso_flags, g.flags);
      v.setUint8(b + O.gso_frags, g.frags);
      v.setUint32(b + O.gso_size, g.size, true);
      v.setUint32(b + O.gso_segs, g.segs, true);
      v.setUint32(b + O.gso_type, g.type, true);
    }
    if (r.stack) {
      sections |= S.stack;
      v.setUint16(b + O.stack_bytes, r.stack.length * 8, true);
      const s0 = b + captureEvent.size + (((r.packet?.length ?? 0) + 7) & ~7);
      r.stack.forEach((a, i) => v.setBigUint64(s0 + i * 8, a, true));
    }
    if (r.ip !== undefined) {
      sections |= S.user;
      v.setBigUint64(b + O.ip, r.ip, true);
    }
    let e0 = b + captureEvent.size + (((r.packet?.length ?? 0) + 7) & ~7) + (r.stack?.length ?? 0) * 8;
    for (const x of r.ext ?? []) {
      sections |= x.section;
      u8.set(x.bytes, e0);
      e0 += x.bytes.length;
    }
    if (r.ovs) {
      sections |= S.ovs;
      u8.set(r.ovs, b + size - r.ovs.length);
    }
    v.setUint32(b + O.sections, sections, true);
    p += RECORD_HEADER_BYTES + ((size + 7) & ~7);
  }
  return buf;
}

/** A UDP/IPv4 Ethernet frame of `payload` bytes (enough for the text formatter and the flat columns). */
export function udpFrame(payload: number, sport = 40000, dport = 9, seq = 0): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + payload);
  const v = new DataView(f.buffer);
  v.setUint16(12, 0x0800);
  f[14] = 0x45;
  v.setUint16(16, 20 + 8 + payload);
  f[22] = 64;
  f[23] = 17;
  f.set([10, 0, 0, 1], 26);
  f.set([10, 0, 0, 2], 30);
  v.setUint16(34, sport);
  v.setUint16(36, dport);
  v.setUint16(38, 8 + payload);
  if (payload >= 4) v.setUint32(42, seq);
  return f;
}
