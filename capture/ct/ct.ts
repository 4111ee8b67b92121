/**
 * ct collector, user-space half: the ct block of a record (capture/progs/ct.bpf.h,
 * nftct.layout.ts) to Retis's `ct` section, both as Arrow columns (hot path) and as an object
 * (--print, pcap-ng). The shape is Retis's CtEvent exactly: state, flattened conn fields
 * (zone_id, zone_dir, orig, reply, proto_state for TCP/SCTP, mark when the kernel has it, labels
 * when non-zero, ct_status), parent for the master conntrack.
 */
import type { Btf } from '../../bpf/btf.ts';
import type { Section } from '../../analyze/model/event.ts';
import type { ColumnSet, U64Col, Validity, VarCol } from '../columns.ts';
import { ctConn, ctHead, CtFlags } from '../progs/nftct.layout.ts';

const F = CtFlags.values;
const CO = ctConn.offsets;
const utf8 = new TextEncoder();

/** enum ip_conntrack_info values as Retis names them (include/uapi/.../nf_conntrack_common.h). */
export const CT_STATES: Record<number, string> = { 0: 'established', 1: 'related', 2: 'new', 3: 'reply', 4: 'related_reply', 7: 'untracked' };

/** TCP/SCTP conntrack state names of the running kernel (enum members minus their prefix). */
export class CtNames {
  readonly tcp = new Map<number, string>();
  readonly sctp = new Map<number, string>();
  constructor(btf: Btf | undefined) {
    if (!btf) return;
    for (const [en, prefix, out] of [['tcp_conntrack', 'TCP_CONNTRACK_', this.tcp], ['sctp_conntrack', 'SCTP_CONNTRACK_', this.sctp]] as const) {
      try {
        for (const [k, v] of btf.enumValues(en)) if (!out.has(v)) out.set(v, k.startsWith(prefix) ? k.slice(prefix.length) : k);
      } catch {
        // Not in this kernel's BTF (conntrack not built): states are written as numbers, as Retis does.
      }
    }
  }
  protoState(flags: number, raw: number): string | undefined {
    if (flags & F.tcp) return this.tcp.get(raw) ?? String(raw);
    if (flags & F.sctp) return this.sctp.get(raw) ?? String(raw);
    return undefined;
  }
}

function ipText(view: DataView, off: number, v4: boolean): string {
  if (v4) return `${view.getUint8(off)}.${view.getUint8(off + 1)}.${view.getUint8(off + 2)}.${view.getUint8(off + 3)}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(view.getUint16(off + i * 2, false));
  // RFC 5952: the longest run (>= 2) of zero words becomes '::'.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

function zoneDir(flags: number): string {
  const both = F.dir_orig | F.dir_reply;
  if ((flags & both) === both) return 'Default';
  if (flags & F.dir_orig) return 'Original';
  if (flags & F.dir_reply) return 'Reply';
  return 'None';
}

interface TupleValues {
  src: string;
  dst: string;
  version: string;
  proto: 'tcp' | 'udp' | 'icmp' | 'sctp';
  sport: number;
  dport: number;
  type: number;
  code: number;
  id: number;
  vtag: number;
}

function tuple(view: DataView, c: number, orig: boolean): TupleValues | undefined {
  const flags = view.getUint32(c + CO.flags, true);
  const v4 = (flags & F.ipv4) !== 0;
  if (!v4 && !(flags & F.ipv6)) return undefined;
  const proto = flags & F.tcp ? 'tcp' : flags & F.udp ? 'udp' : flags & F.icmp ? 'icmp' : flags & F.sctp ? 'sctp' : undefined;
  if (!proto) return undefined;
  const sdata = c + (orig ? CO.o_sdata : CO.r_sdata);
  const ddata = c + (orig ? CO.o_ddata : CO.r_ddata);
  const d = view.getUint16(ddata, true); // ICMP: type << 8 | code, host order
  return {
    src: ipText(view, c + (orig ? CO.o_src : CO.r_src), v4),
    dst: ipText(view, c + (orig ? CO.o_dst : CO.r_dst), v4),
    version: v4 ? 'v4' : 'v6',
    proto,
    sport: view.getUint16(sdata, false),
    dport: view.getUint16(ddata, false),
    type: d >> 8,
    code: d & 0xff,
    id: view.getUint16(sdata, false),
    vtag: view.getUint32(c + (orig ? CO.vtag_o : CO.vtag_r), false),
  };
}

function tupleSection(t: TupleValues): Section {
  const proto: Section =
    t.proto === 'icmp' ? { icmp: { code: t.code, type: t.type, id: t.id } }
    : t.proto === 'sctp' ? { sctp: { sport: t.sport, dport: t.dport, vtag: t.vtag } }
    : { [t.proto]: { sport: t.sport, dport: t.dport } };
  return { ip: { src: t.src, dst: t.dst, version: t.version }, proto };
}

function labelsOf(view: DataView, c: number): { hi: bigint; lo: bigint } | undefined {
  // Retis: u128::from_ne_bytes(labels), split in hi/lo halves.
  const lo = view.getBigUint64(c + CO.labels, true);
  const hi = view.getBigUint64(c + CO.labels + 8, true);
  return lo === 0n && hi === 0n ? undefined : { hi, lo };
}

function connSection(view: DataView, c: number, names: CtNames): Section | undefined {
  const o = tuple(view, c, true);
  const r = tuple(view, c, false);
  if (!o || !r) return undefined;
  const flags = view.getUint32(c + CO.flags, true);
  const s: Section = { zone_id: view.getUint16(c + CO.zone_id, true), zone_dir: zoneDir(flags), orig: tupleSection(o), reply: tupleSection(r) };
  const ps = names.protoState(flags, view.getUint8(c + CO.proto_state));
  if (ps !== undefined) s.proto_state = ps;
  if (flags & F.mark) s.mark = view.getUint32(c + CO.mark, true);
  const labels = labelsOf(view, c);
  if (labels) s.labels = labels;
  s.ct_status = view.getBigUint64(c + CO.status, true);
  return s;
}

/** The `ct` section of the ct block at `off` (slow path). */
export function ctSection(view: DataView, off: number, names: CtNames): Section | undefined {
  const state = CT_STATES[view.getUint32(off + ctHead.offsets.state, true)];
  if (state === undefined) return undefined;
  const base = connSection(view, off + ctHead.size, names);
  if (!base) return undefined;
  const s: Section = { state, ...base };
  if (view.getUint32(off + ctHead.offsets.parent, true)) {
    const p = connSection(view, off + ctHead.size + ctConn.size, names);
    if (p) s.parent = p;
  }
  return s;
}

//// Columns ////

class TupleCols {
  readonly ip: Validity;
  readonly src: VarCol;
  readonly dst: VarCol;
  readonly version: VarCol;
  readonly proto: Validity;
  readonly tcp: Validity;
  readonly tcpS: Uint16Array;
  readonly tcpD: Uint16Array;
  readonly udp: Validity;
  readonly udpS: Uint16Array;
  readonly udpD: Uint16Array;
  readonly icmp: Validity;
  readonly icmpCode: Uint8Array;
  readonly icmpType: Uint8Array;
  readonly icmpId: Uint16Array;
  readonly sctp: Validity;
  readonly sctpS: Uint16Array;
  readonly sctpD: Uint16Array;
  readonly sctpV: Uint32Array;
  constructor(readonly t: Validity, c: ColumnSet, p: string) {
    const u16 = (n: number): Uint16Array => new Uint16Array(n);
    const u8 = (n: number): Uint8Array => new Uint8Array(n);
    const u32 = (n: number): Uint32Array => new Uint32Array(n);
    this.ip = c.struct(`${p}.ip`);
    this.src = c.varlen(`${p}.ip.src`, 0);
    this.dst = c.varlen(`${p}.ip.dst`, 0);
    this.version = c.varlen(`${p}.ip.version`, 0);
    this.proto = c.struct(`${p}.proto`);
    this.tcp = c.struct(`${p}.proto.tcp`);
    this.tcpS = c.fixed(`${p}.proto.tcp.sport`, u16);
    this.tcpD = c.fixed(`${p}.proto.tcp.dport`, u16);
    this.udp = c.struct(`${p}.proto.udp`);
    this.udpS = c.fixed(`${p}.proto.udp.sport`, u16);
    this.udpD = c.fixed(`${p}.proto.udp.dport`, u16);
    this.icmp = c.struct(`${p}.proto.icmp`);
    this.icmpCode = c.fixed(`${p}.proto.icmp.code`, u8);
    this.icmpType = c.fixed(`${p}.proto.icmp.type`, u8);
    this.icmpId = c.fixed(`${p}.proto.icmp.id`, u16);
    this.sctp = c.struct(`${p}.proto.sctp`);
    this.sctpS = c.fixed(`${p}.proto.sctp.sport`, u16);
    this.sctpD = c.fixed(`${p}.proto.sctp.dport`, u16);
    this.sctpV = c.fixed(`${p}.proto.sctp.vtag`, u32);
  }
  write(row: number, t: TupleValues): void {
    this.t.set(row);
    this.ip.set(row);
    this.src.set(row, utf8.encode(t.src));
    this.dst.set(row, utf8.encode(t.dst));
    this.version.set(row, t.version === 'v4' ? V4 : V6);
    this.proto.set(row);
    switch (t.proto) {
      case 'tcp':
        this.tcp.set(row);
        this.tcpS[row] = t.sport;
        this.tcpD[row] = t.dport;
        break;
      case 'udp':
        this.udp.set(row);
        this.udpS[row] = t.sport;
        this.udpD[row] = t.dport;
        break;
      case 'icmp':
        this.icmp.set(row);
        this.icmpCode[row] = t.code;
        this.icmpType[row] = t.type;
        this.icmpId[row] = t.id;
        break;
      case 'sctp':
        this.sctp.set(row);
        this.sctpS[row] = t.sport;
        this.sctpD[row] = t.dport;
        this.sctpV[row] = t.vtag;
        break;
    }
  }
}

const V4 = utf8.encode('v4');
const V6 = utf8.encode('v6');

class ConnCols {
  readonly zoneId: Uint16Array;
  readonly zoneDir: VarCol;
  readonly orig: TupleCols;
  readonly reply: TupleCols;
  readonly protoState: VarCol;
  readonly protoStateValid: Validity;
  readonly mark: Uint32Array;
  readonly markValid: Validity;
  readonly labels: Validity;
  readonly labelsHi: U64Col;
  readonly labelsLo: U64Col;
  readonly status: U64Col;
  constructor(c: ColumnSet, p: string) {
    this.zoneId = c.fixed(`${p}.zone_id`, (n) => new Uint16Array(n));
    this.zoneDir = c.varlen(`${p}.zone_dir`, 0);
    this.orig = new TupleCols(c.struct(`${p}.orig`), c, `${p}.orig`);
    this.reply = new TupleCols(c.struct(`${p}.reply`), c, `${p}.reply`);
    this.protoState = c.varlen(`${p}.proto_state`, 0, true);
    this.protoStateValid = c.validity(`${p}.proto_state`);
    this.mark = c.fixed(`${p}.mark`, (n) => new Uint32Array(n), true);
    this.markValid = c.validity(`${p}.mark`);
    this.labels = c.struct(`${p}.labels`);
    this.labelsHi = c.u64(`${p}.labels.hi`);
    this.labelsLo = c.u64(`${p}.labels.lo`);
    this.status = c.u64(`${p}.ct_status`);
  }
  /** Returns false when the conn cannot be decoded (nothing written). */
  write(row: number, view: DataView, c: number, names: CtNames): boolean {
    const o = tuple(view, c, true);
    const r = tuple(view, c, false);
    if (!o || !r) return false;
    const flags = view.getUint32(c + CO.flags, true);
    this.zoneId[row] = view.getUint16(c + CO.zone_id, true);
    this.zoneDir.set(row, utf8.encode(zoneDir(flags)));
    this.orig.write(row, o);
    this.reply.write(row, r);
    const ps = names.protoState(flags, view.getUint8(c + CO.proto_state));
    if (ps !== undefined) {
      this.protoState.set(row, utf8.encode(ps));
      this.protoStateValid.set(row);
    }
    if (flags & F.mark) {
      this.mark[row] = view.getUint32(c + CO.mark, true);
      this.markValid.set(row);
    }
    const labels = labelsOf(view, c);
    if (labels) {
      this.labels.set(row);
      this.labelsHi.setBig(row, labels.hi);
      this.labelsLo.setBig(row, labels.lo);
    }
    this.status.copy(row, view, c + CO.status);
    return true;
  }
}

/** The `ct` columns of a batch (registered on the decoder's ColumnSet). */
export class CtColumns {
  private readonly section: Validity;
  private readonly state: VarCol;
  private readonly base: ConnCols;
  private readonly parent: ConnCols;
  private readonly parentValid: Validity;
  private readonly stateBytes = new Map<number, Uint8Array>();
  constructor(c: ColumnSet, private readonly names: CtNames) {
    this.section = c.struct('ct');
    this.state = c.varlen('ct.state', 0);
    this.base = new ConnCols(c, 'ct');
    this.parentValid = c.struct('ct.parent');
    this.parent = new ConnCols(c, 'ct.parent');
    for (const [k, v] of Object.entries(CT_STATES)) this.stateBytes.set(Number(k), utf8.encode(v));
  }
  /** Write the ct block at `off` as row `row`'s ct section. */
  write(row: number, view: DataView, off: number): void {
    const st = this.stateBytes.get(view.getUint32(off + ctHead.offsets.state, true));
    if (st === undefined) return;
    // Decode first (no partial row): the base conn must be valid for the section to exist.
    if (tuple(view, off + ctHead.size, true) === undefined) return;
    this.section.set(row);
    this.state.set(row, st);
    this.base.write(row, view, off + ctHead.size, this.names);
    if (view.getUint32(off + ctHead.offsets.parent, true) && this.parent.write(row, view, off + ctHead.size + ctConn.size, this.names)) this.parentValid.set(row);
  }
}
