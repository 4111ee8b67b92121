/**
 * Ring-buffer records (capture.layout.ts) to event-model columns.
 *
 * The hot path (`EventEncoder.decode`) walks a batch with a DataView and writes every field
 * straight into preallocated typed arrays (capture/columns.ts): no object per event, u64 values as
 * two u32 halves, strings as byte copies (per-probe names and drop reasons are encoded once). A full
 * batch (rows, or packet bytes) is handed to `onBatch` and the columns are reused.
 *
 * The slow path (`recordToEvent`) builds a RetisEvent (bigint u64, Uint8Array packet) from one
 * record, for --print and pcap-ng only.
 */
import type { Schema } from 'apache-arrow';
import { RECORD_HEADER_BYTES } from '../bpf/ringbuf.ts';
import type { RetisEvent, Section } from '../analyze/model/event.ts';
import { ColumnSet, type ListUtf8Col, type U64Col, type Validity, type VarCol } from './columns.ts';
import type { DropReasons } from './drop-reasons.ts';
import type { KernelSymbols } from './symbols.ts';
import { captureEvent, CaptureSection } from './progs/capture.layout.ts';
import { CT_BLOCK_BYTES, nftEvent } from './progs/nftct.layout.ts';
import { makeBatch, type SyntheticRecord } from './synthetic.ts';
import { CtColumns, CtNames, ctSection } from './ct/ct.ts';
import { NftColumns, nftSection } from './nft/section.ts';
import { OVS_BLOCK_BYTES, OvsColumn, ovsSection } from './ovs/decode.ts';

const O = captureEvent.offsets;
export const HEADER_BYTES = captureEvent.size;
const S = CaptureSection.values;
const utf8 = new TextEncoder();

/** What the decoder needs to know about each probe id. */
export interface ProbeInfo {
  symbol: string;
  probeType: string;
  user: boolean;
  binary: string | undefined;
  /** Offsets in the record of the ct and nft blocks (nftct.layout.ts), when the probe has them. */
  ctOff?: number | undefined;
  nftOff?: number | undefined;
}

interface ProbeBytes {
  ctOff: number;
  nftOff: number;
  user: boolean;
  symbol: Uint8Array;
  probeType: Uint8Array;
  path: Uint8Array;
}

/** The sections our captures write (a subset of the model: the rest would be all-null columns). */
export const CAPTURE_SECTIONS = ['seq', 'common', 'kernel', 'userspace', 'skb-tracking', 'skb-drop', 'packet', 'skb', 'netns', 'dev', 'nft', 'ct', 'ovs', 'startup'];

/** Column references of a capture batch, for the decoder's hot loop. */
export class EventColumns extends ColumnSet {
  readonly seq: U64Col;
  readonly ts: U64Col;
  readonly smp: Uint32Array;
  readonly smpValid: Validity;
  readonly task: Validity;
  readonly pid: Int32Array;
  readonly tgid: Int32Array;
  readonly comm: VarCol;
  readonly kernel: Validity;
  readonly symbol: VarCol;
  readonly probeType: VarCol;
  readonly stack: ListUtf8Col;
  readonly stackValid: Validity;
  readonly user: Validity;
  readonly uProbeType: VarCol;
  readonly uSymbol: VarCol;
  readonly uIp: U64Col;
  readonly uPath: VarCol;
  readonly uPid: Int32Array;
  readonly uTid: Int32Array;
  readonly tracking: Validity;
  readonly origHead: U64Col;
  readonly trackTs: U64Col;
  readonly skbAddr: U64Col;
  readonly drop: Validity;
  readonly subsys: VarCol;
  readonly subsysValid: Validity;
  readonly reason: VarCol;
  readonly packet: Validity;
  readonly pktLen: Uint32Array;
  readonly capLen: Uint32Array;
  readonly pktData: VarCol;
  readonly skb: Validity;
  readonly vlan: Validity;
  readonly vlanProto: Uint16Array;
  readonly vlanPcp: Uint8Array;
  readonly vlanDei: Uint8Array;
  readonly vlanVid: Uint16Array;
  readonly meta: Validity;
  readonly mLen: Uint32Array;
  readonly mDataLen: Uint32Array;
  readonly mHash: Uint32Array;
  readonly mIpSummed: Uint8Array;
  readonly mCsum: Uint32Array;
  readonly mCsumLevel: Uint8Array;
  readonly mPriority: Uint32Array;
  readonly dataRef: Validity;
  readonly drNohdr: Uint8Array;
  readonly drCloned: Uint8Array;
  readonly drFclone: Uint8Array;
  readonly drUsers: Uint8Array;
  readonly drDataref: Uint8Array;
  readonly gso: Validity;
  readonly gFlags: Uint8Array;
  readonly gFrags: Uint8Array;
  readonly gSize: Uint32Array;
  readonly gSegs: Uint32Array;
  readonly gType: Uint32Array;
  readonly netns: Validity;
  readonly nsCookie: U64Col;
  readonly nsCookieValid: Validity;
  readonly nsInum: Uint32Array;
  readonly dev: Validity;
  readonly devName: VarCol;
  readonly ifindex: Uint32Array;
  readonly rxIfindex: Uint32Array;
  readonly rxValid: Validity;
  readonly startup: Validity;
  readonly suVersion: VarCol;
  readonly suCmdline: VarCol;
  readonly suOffset: Validity;
  readonly suSec: U64Col;
  readonly suNsec: U64Col;
  readonly suMachine: Validity;
  readonly suRelease: VarCol;
  readonly suKVersion: VarCol;
  readonly suHardware: VarCol;
  /** ovs section (ovs collector): built from section objects, see capture/ovs/decode.ts. */
  readonly ovs: OvsColumn;

  constructor(schema: Schema, capacity: number, packetBytes: number, symbolBytes = 64) {
    super(schema, capacity);
    const u32 = (n: number): Uint32Array => new Uint32Array(n);
    const i32 = (n: number): Int32Array => new Int32Array(n);
    const u16 = (n: number): Uint16Array => new Uint16Array(n);
    const u8 = (n: number): Uint8Array => new Uint8Array(n);
    this.seq = this.u64('seq');
    this.ts = this.u64('common.timestamp');
    this.smp = this.fixed('common.smp_id', u32, true);
    this.smpValid = this.validity('common.smp_id');
    this.task = this.struct('common.task');
    this.pid = this.fixed('common.task.pid', i32);
    this.tgid = this.fixed('common.task.tgid', i32);
    this.comm = this.varlen('common.task.comm', 16);
    this.kernel = this.struct('kernel');
    this.symbol = this.varlen('kernel.symbol', symbolBytes);
    this.probeType = this.varlen('kernel.probe_type', 16);
    ({ col: this.stack, valid: this.stackValid } = this.list('kernel.stack_trace', 4096, 4096 * 48));
    this.user = this.struct('userspace');
    this.uProbeType = this.varlen('userspace.probe_type', 0);
    this.uSymbol = this.varlen('userspace.symbol', 0);
    this.uIp = this.u64('userspace.ip');
    this.uPath = this.varlen('userspace.path', 0);
    this.uPid = this.fixed('userspace.pid', i32);
    this.uTid = this.fixed('userspace.tid', i32);
    this.tracking = this.struct('skb-tracking');
    this.origHead = this.u64('skb-tracking.orig_head');
    this.trackTs = this.u64('skb-tracking.timestamp');
    this.skbAddr = this.u64('skb-tracking.skb');
    this.drop = this.struct('skb-drop');
    this.subsys = this.varlen('skb-drop.subsys', 32, true);
    this.subsysValid = this.validity('skb-drop.subsys');
    this.reason = this.varlen('skb-drop.drop_reason', 64);
    this.packet = this.struct('packet');
    this.pktLen = this.fixed('packet.len', u32);
    this.capLen = this.fixed('packet.capture_len', u32);
    this.pktData = this.varlen('packet.data', 0);
    this.pktData.bytes = new Uint8Array(packetBytes);
    this.skb = this.struct('skb');
    this.vlan = this.struct('skb.vlan_accel');
    this.vlanProto = this.fixed('skb.vlan_accel.proto', u16);
    this.vlanPcp = this.fixed('skb.vlan_accel.pcp', u8);
    this.vlanDei = this.bool('skb.vlan_accel.dei');
    this.vlanVid = this.fixed('skb.vlan_accel.vid', u16);
    this.meta = this.struct('skb.meta');
    this.mLen = this.fixed('skb.meta.len', u32);
    this.mDataLen = this.fixed('skb.meta.data_len', u32);
    this.mHash = this.fixed('skb.meta.hash', u32);
    this.mIpSummed = this.fixed('skb.meta.ip_summed', u8);
    this.mCsum = this.fixed('skb.meta.csum', u32);
    this.mCsumLevel = this.fixed('skb.meta.csum_level', u8);
    this.mPriority = this.fixed('skb.meta.priority', u32);
    this.dataRef = this.struct('skb.data_ref');
    this.drNohdr = this.bool('skb.data_ref.nohdr');
    this.drCloned = this.bool('skb.data_ref.cloned');
    this.drFclone = this.fixed('skb.data_ref.fclone', u8);
    this.drUsers = this.fixed('skb.data_ref.users', u8);
    this.drDataref = this.fixed('skb.data_ref.dataref', u8);
    this.gso = this.struct('skb.gso');
    this.gFlags = this.fixed('skb.gso.flags', u8);
    this.gFrags = this.fixed('skb.gso.frags', u8);
    this.gSize = this.fixed('skb.gso.size', u32);
    this.gSegs = this.fixed('skb.gso.segs', u32);
    this.gType = this.fixed('skb.gso.type', u32);
    this.netns = this.struct('netns');
    this.nsCookie = this.u64('netns.cookie', true);
    this.nsCookieValid = this.validity('netns.cookie');
    this.nsInum = this.fixed('netns.inum', u32);
    this.dev = this.struct('dev');
    this.devName = this.varlen('dev.name', 16);
    this.ifindex = this.fixed('dev.ifindex', u32);
    this.rxIfindex = this.fixed('dev.rx_ifindex', u32, true);
    this.rxValid = this.validity('dev.rx_ifindex');
    this.startup = this.struct('startup');
    this.suVersion = this.varlen('startup.retis_version', 0);
    this.suCmdline = this.varlen('startup.cmdline', 0);
    this.suOffset = this.struct('startup.clock_monotonic_offset');
    this.suSec = this.u64('startup.clock_monotonic_offset.sec');
    this.suNsec = this.u64('startup.clock_monotonic_offset.nsec');
    this.suMachine = this.struct('startup.machine');
    this.suRelease = this.varlen('startup.machine.kernel_release', 0);
    this.suKVersion = this.varlen('startup.machine.kernel_version', 0);
    this.suHardware = this.varlen('startup.machine.hardware_name', 0);
    this.ovs = this.custom('ovs', new OvsColumn());
  }
}

export interface StartupInfo {
  timestamp: bigint;
  retisVersion: string;
  cmdline: string;
  offsetSec: bigint;
  offsetNsec: bigint;
  kernelRelease: string;
  kernelVersion: string;
  hardwareName: string;
}

export function startupEvent(s: StartupInfo): RetisEvent {
  return {
    common: { timestamp: s.timestamp },
    startup: {
      retis_version: s.retisVersion,
      cmdline: s.cmdline,
      clock_monotonic_offset: { sec: s.offsetSec, nsec: s.offsetNsec },
      machine: { kernel_release: s.kernelRelease, kernel_version: s.kernelVersion, hardware_name: s.hardwareName },
    },
  };
}

export interface EncoderOptions {
  schema: Schema;
  probes: ReadonlyMap<number, ProbeInfo>;
  dropReasons: DropReasons;
  symbols: KernelSymbols | undefined;
  /** Rows per Arrow batch. */
  batchRows: number;
  /** Packet bytes per Arrow batch (a batch is cut earlier when they run out). */
  batchPacketBytes: number;
  /** Largest packet capture (--snaplen). */
  snaplen: number;
  /** Stop writing after this many events (--max-events); records past it are counted as ignored. */
  maxEvents: number;
  /** A batch is complete: write it (columns are reused after this returns). */
  onBatch: (cols: EventColumns) => void;
  /** Per written record (slow path: --print, pcap-ng). */
  onEvent?: ((view: DataView, offset: number, size: number) => void) | undefined;
  /** TCP/SCTP conntrack state names (ct collector). */
  ctNames?: CtNames | undefined;
}

/** Decodes ring batches into columns and cuts Arrow batches. */
export class EventEncoder {
  readonly cols: EventColumns;
  /** Events written (startup excluded). */
  events = 0;
  /** Records received after --max-events was reached (not written). */
  ignored = 0;
  /** Records not understood (size or probe id): a bug or a stale object; counted, never silent. */
  malformed = 0;
  private seqNo = 0;
  private readonly probeBytes: (ProbeBytes | undefined)[] = [];
  private readonly reasonBytes = new Map<number, { subsys: Uint8Array | null; reason: Uint8Array }>();
  private readonly perProbeCounts: Float64Array;
  private readonly ct: CtColumns;
  private readonly nft: NftColumns;

  constructor(private readonly o: EncoderOptions) {
    let max = 0;
    let symbolBytes = 16;
    for (const [id, p] of o.probes) {
      const pb = { ctOff: p.ctOff ?? -1, nftOff: p.nftOff ?? -1, user: p.user, symbol: utf8.encode(p.symbol), probeType: utf8.encode(p.probeType), path: utf8.encode(p.binary ?? '') };
      this.probeBytes[id] = pb;
      max = Math.max(max, id);
      symbolBytes = Math.max(symbolBytes, pb.symbol.length, pb.probeType.length);
    }
    this.cols = new EventColumns(o.schema, o.batchRows, Math.max(o.batchPacketBytes, o.snaplen * 4), symbolBytes);
    this.perProbeCounts = new Float64Array(max + 1);
    this.ct = new CtColumns(this.cols, o.ctNames ?? new CtNames(undefined));
    this.nft = new NftColumns(this.cols);
  }

  get done(): boolean {
    return this.events >= this.o.maxEvents;
  }

  /** The startup event: first row of the stream. */
  writeStartup(s: StartupInfo): void {
    const c = this.cols;
    const r = c.rows;
    c.seq.setNumber(r, ++this.seqNo);
    c.ts.setBig(r, s.timestamp);
    c.startup.set(r);
    c.suVersion.set(r, utf8.encode(s.retisVersion));
    c.suCmdline.set(r, utf8.encode(s.cmdline));
    c.suOffset.set(r);
    c.suSec.setBig(r, s.offsetSec);
    c.suNsec.setBig(r, s.offsetNsec);
    c.suMachine.set(r);
    c.suRelease.set(r, utf8.encode(s.kernelRelease));
    c.suKVersion.set(r, utf8.encode(s.kernelVersion));
    c.suHardware.set(r, utf8.encode(s.hardwareName));
    c.rows = r + 1;
  }

  /** Hand the current rows to onBatch (if any) and start a new batch. */
  flush(): void {
    if (this.cols.rows === 0) return;
    this.o.onBatch(this.cols);
    this.cols.reset();
  }

  perProbeEvents(): Map<number, number> {
    const out = new Map<number, number>();
    this.perProbeCounts.forEach((n, id) => {
      if (n > 0) out.set(id, n);
    });
    return out;
  }

  private reasonOf(raw: number): { subsys: Uint8Array | null; reason: Uint8Array } {
    let r = this.reasonBytes.get(raw);
    if (r === undefined) {
      const n = this.o.dropReasons.name(raw);
      r = { subsys: n.subsys === undefined ? null : utf8.encode(n.subsys), reason: utf8.encode(n.reason) };
      this.reasonBytes.set(raw, r);
    }
    return r;
  }

  /**
   * Decode every record of a ring batch (records back to back: u32 size, u32 ring, payload, pad
   * to 8). Written for V8: one function, typed arrays and bitmaps in locals, validity bits set
   * inline, string bytes copied by loops (no subarray per event), so nothing is allocated per
   * event and nothing is left to the inliner's budget.
   */
  decode(buffer: ArrayBuffer): void {
    const view = new DataView(buffer);
    const src = new Uint8Array(buffer);
    const end = buffer.byteLength;
    const c = this.cols;
    const cap = this.o.batchRows;
    const snaplen = this.o.snaplen;
    const maxEvents = this.o.maxEvents;
    const onEvent = this.o.onEvent;
    const probes = this.probeBytes;
    const counts = this.perProbeCounts;
    // Hot string columns: offsets written for every row, positions kept in locals.
    let comm = c.comm.bytes;
    let commOff = c.comm.offsets;
    let commPos = c.comm.pos;
    let sym = c.symbol.bytes;
    let symOff = c.symbol.offsets;
    let symPos = c.symbol.pos;
    let pt = c.probeType.bytes;
    let ptOff = c.probeType.offsets;
    let ptPos = c.probeType.pos;
    let pkt = c.pktData.bytes;
    let pktOff = c.pktData.offsets;
    let pktPos = c.pktData.pos;
    let dn = c.devName.bytes;
    let dnOff = c.devName.offsets;
    let dnPos = c.devName.pos;
    let rs = c.reason.bytes;
    let rsOff = c.reason.offsets;
    let rsPos = c.reason.pos;
    const seqH = c.seq.halves;
    const tsH = c.ts.halves;
    const smp = c.smp;
    const smpV = c.smpValid.bits;
    const taskV = c.task.bits;
    const pidA = c.pid;
    const tgidA = c.tgid;
    const kernV = c.kernel.bits;
    const trkV = c.tracking.bits;
    const headH = c.origHead.halves;
    const trkTsH = c.trackTs.halves;
    const skbH = c.skbAddr.halves;
    const dropV = c.drop.bits;
    const pktV = c.packet.bits;
    const pktLen = c.pktLen;
    const capLenA = c.capLen;
    const nsV = c.netns.bits;
    const nsInum = c.nsInum;
    const nsCookieH = c.nsCookie.halves;
    const nsCookieV = c.nsCookieValid.bits;
    const devV = c.dev.bits;
    const ifindex = c.ifindex;
    const rxIf = c.rxIfindex;
    const rxV = c.rxValid.bits;

    let p = 0;
    let row = c.rows;
    let events = this.events;
    let seq = this.seqNo;
    while (p < end) {
      const size = view.getUint32(p, true);
      const b = p + RECORD_HEADER_BYTES;
      p = b + ((size + 7) & ~7);
      if (events >= maxEvents) {
        this.ignored++;
        continue;
      }
      const probeId = size >= HEADER_BYTES ? view.getUint32(b + O.probe_id, true) : 0;
      const probe = probes[probeId];
      if (probe === undefined) {
        this.malformed++;
        continue;
      }
      const sections = view.getUint32(b + O.sections, true);
      const capLen = sections & S.packet ? view.getUint16(b + O.cap_len, true) : 0;
      const stackBytes = sections & S.stack ? view.getUint16(b + O.stack_bytes, true) : 0;
      if (HEADER_BYTES + capLen + stackBytes + (sections & S.ovs ? OVS_BLOCK_BYTES : 0) > size) {
        this.malformed++;
        continue;
      }
      // Cut the Arrow batch before this record if it would not fit.
      if (row === cap || pktPos + snaplen > pkt.length || (stackBytes > 0 && c.stack.items + 64 >= 4096)) {
        // (No closure for this: captured mutable locals would live in a context, not registers.)
        c.rows = row;
        c.comm.pos = commPos;
        c.symbol.pos = symPos;
        c.probeType.pos = ptPos;
        c.pktData.pos = pktPos;
        c.devName.pos = dnPos;
        c.reason.pos = rsPos;
        c.comm.covered = c.symbol.covered = c.probeType.covered = c.pktData.covered = c.devName.covered = c.reason.covered = row;
        this.seqNo = seq;
        this.flush();
        comm = c.comm.bytes;
        commOff = c.comm.offsets;
        commPos = c.comm.pos;
        sym = c.symbol.bytes;
        symOff = c.symbol.offsets;
        symPos = c.symbol.pos;
        pt = c.probeType.bytes;
        ptOff = c.probeType.offsets;
        ptPos = c.probeType.pos;
        pkt = c.pktData.bytes;
        pktOff = c.pktData.offsets;
        pktPos = c.pktData.pos;
        dn = c.devName.bytes;
        dnOff = c.devName.offsets;
        dnPos = c.devName.pos;
        rs = c.reason.bytes;
        rsOff = c.reason.offsets;
        rsPos = c.reason.pos;
        row = 0;
      }
      const r2 = row * 2;
      const byte = row >> 3;
      const bit = 1 << (row & 7);

      seq++;
      seqH[r2] = seq >>> 0;
      seqH[r2 + 1] = (seq / 0x1_0000_0000) >>> 0;
      tsH[r2] = view.getUint32(b + O.ts, true);
      tsH[r2 + 1] = view.getUint32(b + O.ts + 4, true);
      smp[row] = view.getUint32(b + O.cpu, true);
      smpV[byte]! |= bit;
      taskV[byte]! |= bit;
      const pid = view.getInt32(b + O.pid_tgid, true);
      const tgid = view.getInt32(b + O.pid_tgid + 4, true);
      pidA[row] = pid;
      tgidA[row] = tgid;
      for (let i = b + O.comm, e = i + 16; i < e; i++) {
        const ch = src[i]!;
        if (ch === 0) break;
        comm[commPos++] = ch;
      }
      commOff[row + 1] = commPos;

      if (!probe.user) {
        kernV[byte]! |= bit;
        const sb = probe.symbol;
        for (let i = 0; i < sb.length; i++) sym[symPos++] = sb[i]!;
        const tb = probe.probeType;
        for (let i = 0; i < tb.length; i++) pt[ptPos++] = tb[i]!;
        if (stackBytes > 0 && this.o.symbols) {
          const st = c.stack;
          const symbols = this.o.symbols;
          st.begin(row);
          const s0 = b + HEADER_BYTES + ((capLen + 7) & ~7);
          let i = 0;
          while (i < stackBytes && symbols.isTracer(view.getBigUint64(s0 + i, true))) i += 8;
          for (; i < stackBytes; i += 8) st.push(symbols.bytes(view.getBigUint64(s0 + i, true)));
          st.end(row);
          c.stackValid.set(row);
        }
      } else {
        c.user.set(row);
        c.uProbeType.set(row, probe.probeType);
        c.uSymbol.set(row, probe.symbol);
        c.uIp.copy(row, view, b + O.ip);
        c.uPath.set(row, probe.path);
        c.uPid[row] = tgid;
        c.uTid[row] = pid;
      }
      symOff[row + 1] = symPos;
      ptOff[row + 1] = ptPos;
      if (sections & S.tracking) {
        trkV[byte]! |= bit;
        headH[r2] = view.getUint32(b + O.orig_head, true);
        headH[r2 + 1] = view.getUint32(b + O.orig_head + 4, true);
        trkTsH[r2] = view.getUint32(b + O.track_ts, true);
        trkTsH[r2 + 1] = view.getUint32(b + O.track_ts + 4, true);
        skbH[r2] = view.getUint32(b + O.skb, true);
        skbH[r2 + 1] = view.getUint32(b + O.skb + 4, true);
      }
      if (sections & S.drop) {
        const r = this.reasonOf(view.getUint32(b + O.drop_reason, true));
        dropV[byte]! |= bit;
        if (r.subsys !== null) {
          c.subsys.set(row, r.subsys);
          c.subsysValid.set(row);
        }
        const rb = r.reason;
        for (let i = 0; i < rb.length; i++) rs[rsPos++] = rb[i]!;
      }
      rsOff[row + 1] = rsPos;
      if (sections & S.packet) {
        pktV[byte]! |= bit;
        pktLen[row] = view.getUint32(b + O.pkt_len, true);
        capLenA[row] = capLen;
        const s0 = b + HEADER_BYTES;
        if (capLen <= 512) for (let i = 0; i < capLen; i++) pkt[pktPos++] = src[s0 + i]!;
        else {
          pkt.set(src.subarray(s0, s0 + capLen), pktPos);
          pktPos += capLen;
        }
      }
      pktOff[row + 1] = pktPos;
      if (sections & (S.vlan | S.meta | S.dataref | S.gso)) this.skbSection(view, b, row, sections);
      if (sections & S.netns) {
        nsV[byte]! |= bit;
        nsInum[row] = view.getUint32(b + O.netns_inum, true);
        if (sections & S.netns_cookie) {
          nsCookieH[r2] = view.getUint32(b + O.netns_cookie, true);
          nsCookieH[r2 + 1] = view.getUint32(b + O.netns_cookie + 4, true);
          nsCookieV[byte]! |= bit;
        }
      }
      if (sections & S.dev) {
        devV[byte]! |= bit;
        for (let i = b + O.dev_name, e = i + 16; i < e; i++) {
          const ch = src[i]!;
          if (ch === 0) break;
          dn[dnPos++] = ch;
        }
        ifindex[row] = view.getUint32(b + O.ifindex, true);
        if (sections & S.rxif) {
          rxIf[row] = view.getUint32(b + O.rx_ifindex, true);
          rxV[byte]! |= bit;
        }
      }
      dnOff[row + 1] = dnPos;
      if (sections & (S.ct | S.nft)) this.nftCtSections(view, b, size, row, sections, probe);
      if (sections & S.ovs) c.ovs.set(row, ovsSection(view, b + size - OVS_BLOCK_BYTES));
      counts[probeId]!++;
      row++;
      events++;
      // Slow path (--print, pcap-ng): reads the record, never the columns.
      if (onEvent !== undefined) onEvent(view, b, size);
    }
    c.rows = row;
    c.comm.pos = commPos;
    c.symbol.pos = symPos;
    c.probeType.pos = ptPos;
    c.pktData.pos = pktPos;
    c.devName.pos = dnPos;
    c.reason.pos = rsPos;
    c.comm.covered = c.symbol.covered = c.probeType.covered = c.pktData.covered = c.devName.covered = c.reason.covered = row;
    this.events = events;
    this.seqNo = seq;
  }

  /**
   * Run every path of `decode` once on synthetic records, into throwaway columns, so V8 has type
   * feedback for all of them before it optimizes: otherwise the first drop, VLAN or full batch
   * seen at full rate deoptimizes the hot function and recompiles it (~150 ms in the interpreter
   * each time, with the ring filling meanwhile).
   */
  static warmUp(schema: Schema): void {
    const probes = new Map<number, ProbeInfo>([
      [1, { symbol: 'net:netif_receive_skb', probeType: 'raw_tracepoint', user: false, binary: undefined }],
      [2, { symbol: 'lab:hit', probeType: 'usdt', user: true, binary: '/bin/true' }],
    ]);
    const reasons = { name: (raw: number) => ({ subsys: raw > 0xffff ? 'openvswitch' : undefined, reason: 'NO_SOCKET' }) } as unknown as DropReasons;
    const enc = new EventEncoder({ schema, probes, dropReasons: reasons, symbols: undefined, batchRows: 8, batchPacketBytes: 4096, snaplen: 64, maxEvents: 1000, onBatch: (c) => void c.recordBatch() });
    const recs: SyntheticRecord[] = [];
    for (let i = 0; i < 40; i++) {
      const base: SyntheticRecord = { ts: BigInt(i), probeId: i % 7 === 6 ? 2 : 1, comm: 'warm' };
      recs.push(
        i % 2
          ? { ...base, origHead: 1n << 63n, dropReason: i % 4 === 3 ? 0x20001 : 3, packet: new Uint8Array(60), netns: { inum: 1, cookie: 1n }, dev: { name: 'lo', ifindex: 1, rxIfindex: 1 }, vlan: { proto: 0x8100, tci: 0x1001 }, meta: { len: 1, dataLen: 0, hash: 0, ipSummed: 0, csum: 0, csumLevel: 0, priority: 0 }, dataref: { nohdr: false, cloned: true, fclone: 0, users: 1, dataref: 1 }, gso: { flags: 0, frags: 0, size: 1, segs: 1, type: 0 }, ip: 1n }
          : i % 3
            ? { ...base, packet: new Uint8Array(20), dev: { name: 'eth0', ifindex: 2 } }
            : base,
      );
    }
    const batch = makeBatch(recs);
    enc.writeStartup({ timestamp: 1n, retisVersion: 'v', cmdline: '', offsetSec: 0n, offsetNsec: 0n, kernelRelease: '', kernelVersion: '', hardwareName: '' });
    for (let k = 0; k < 3; k++) enc.decode(batch);
    enc.flush();
  }

  /** ct and nft sections (their collectors only), out of the hot function. */
  private nftCtSections(view: DataView, b: number, size: number, row: number, sections: number, probe: ProbeBytes): void {
    if (sections & S.ct && probe.ctOff >= 0 && probe.ctOff + CT_BLOCK_BYTES <= size) this.ct.write(row, view, b + probe.ctOff);
    if (sections & S.nft && probe.nftOff >= 0 && probe.nftOff + nftEvent.size <= size) this.nft.write(row, view, b + probe.nftOff);
  }

  /** skb section (rarer: --skb-sections, VLAN acceleration), out of the hot function. */
  private skbSection(view: DataView, b: number, row: number, sections: number): void {
    const c = this.cols;
    c.skb.set(row);
    if (sections & S.vlan) {
      const proto = view.getUint16(b + O.vlan_proto, false); // __be16
      const tci = view.getUint16(b + O.vlan_tci, true);
      c.vlan.set(row);
      c.vlanProto[row] = proto;
      c.vlanPcp[row] = tci >> 13;
      if (tci & 0x1000) c.vlanDei[row >> 3]! |= 1 << (row & 7);
      c.vlanVid[row] = tci & 0xfff;
    }
    if (sections & S.meta) {
      c.meta.set(row);
      c.mLen[row] = view.getUint32(b + O.len, true);
      c.mDataLen[row] = view.getUint32(b + O.data_len, true);
      c.mHash[row] = view.getUint32(b + O.hash, true);
      c.mIpSummed[row] = view.getUint8(b + O.ip_summed);
      c.mCsum[row] = view.getUint32(b + O.csum, true);
      c.mCsumLevel[row] = view.getUint8(b + O.csum_level);
      c.mPriority[row] = view.getUint32(b + O.priority, true);
    }
    if (sections & S.dataref) {
      c.dataRef.set(row);
      if (view.getUint8(b + O.nohdr)) c.drNohdr[row >> 3]! |= 1 << (row & 7);
      if (view.getUint8(b + O.cloned)) c.drCloned[row >> 3]! |= 1 << (row & 7);
      c.drFclone[row] = view.getUint8(b + O.fclone);
      c.drUsers[row] = view.getUint8(b + O.users);
      c.drDataref[row] = view.getUint8(b + O.dataref);
    }
    if (sections & S.gso) {
      c.gso.set(row);
      c.gFlags[row] = view.getUint8(b + O.gso_flags);
      c.gFrags[row] = view.getUint8(b + O.gso_frags);
      c.gSize[row] = view.getUint32(b + O.gso_size, true);
      c.gSegs[row] = view.getUint32(b + O.gso_segs, true);
      c.gType[row] = view.getUint32(b + O.gso_type, true);
    }
  }
}

//// SLOW PATH: RetisEvent ////

/** Build the Retis event of one record (bigint u64s, packet bytes copied). */
export function recordToEvent(view: DataView, b: number, probes: ReadonlyMap<number, ProbeInfo>, dropReasons: DropReasons, symbols: KernelSymbols | undefined, ctNames?: CtNames, size = Infinity): RetisEvent {
  const u64 = (off: number): bigint => view.getBigUint64(b + off, true);
  const u32 = (off: number): number => view.getUint32(b + off, true);
  const u8 = (off: number): number => view.getUint8(b + off);
  const cstr = (off: number, max: number): string => {
    const a = new Uint8Array(view.buffer, view.byteOffset + b + off, max);
    const nul = a.indexOf(0);
    return Buffer.from(a.subarray(0, nul < 0 ? max : nul)).toString('utf8');
  };
  const probe = probes.get(u32(O.probe_id));
  const sections = u32(O.sections);
  const pid = view.getInt32(b + O.pid_tgid, true);
  const tgid = view.getInt32(b + O.pid_tgid + 4, true);
  const ev: RetisEvent = {
    common: { timestamp: u64(O.ts), smp_id: u32(O.cpu), task: { pid, tgid, comm: cstr(O.comm, 16) } },
  };
  const capLen = sections & S.packet ? view.getUint16(b + O.cap_len, true) : 0;
  if (probe && !probe.user) {
    const kernel: Section = { symbol: probe.symbol, probe_type: probe.probeType };
    if (sections & S.stack) {
      const n = view.getUint16(b + O.stack_bytes, true);
      const s0 = b + HEADER_BYTES + ((capLen + 7) & ~7);
      const trace: string[] = [];
      for (let i = 0; i < n; i += 8) {
        const a = view.getBigUint64(s0 + i, true);
        if (trace.length === 0 && symbols?.isTracer(a)) continue;
        trace.push(symbols ? symbols.format(a) : `0x${a.toString(16)}`);
      }
      kernel.stack_trace = trace;
    }
    ev.kernel = kernel;
  } else if (probe) {
    ev.userspace = { probe_type: probe.probeType, symbol: probe.symbol, ip: u64(O.ip), path: probe.binary ?? '', pid: tgid, tid: pid };
  }
  if (sections & S.tracking) ev['skb-tracking'] = { orig_head: u64(O.orig_head), timestamp: u64(O.track_ts), skb: u64(O.skb) };
  if (sections & S.drop) {
    const n = dropReasons.name(u32(O.drop_reason));
    ev['skb-drop'] = n.subsys === undefined ? { drop_reason: n.reason } : { subsys: n.subsys, drop_reason: n.reason };
  }
  if (sections & S.packet) {
    const start = view.byteOffset + b + HEADER_BYTES;
    ev.packet = { len: u32(O.pkt_len), capture_len: capLen, data: new Uint8Array(view.buffer.slice(start, start + capLen)) };
  }
  if (sections & (S.vlan | S.meta | S.dataref | S.gso)) {
    const skb: Section = {};
    if (sections & S.vlan) {
      const tci = view.getUint16(b + O.vlan_tci, true);
      skb.vlan_accel = { proto: view.getUint16(b + O.vlan_proto, false), pcp: tci >> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0xfff };
    }
    if (sections & S.meta) {
      skb.meta = { len: u32(O.len), data_len: u32(O.data_len), hash: u32(O.hash), ip_summed: u8(O.ip_summed), csum: u32(O.csum), csum_level: u8(O.csum_level), priority: u32(O.priority) };
    }
    if (sections & S.dataref) {
      skb.data_ref = { nohdr: u8(O.nohdr) !== 0, cloned: u8(O.cloned) !== 0, fclone: u8(O.fclone), users: u8(O.users), dataref: u8(O.dataref) };
    }
    if (sections & S.gso) {
      skb.gso = { flags: u8(O.gso_flags), frags: u8(O.gso_frags), size: u32(O.gso_size), segs: u32(O.gso_segs), type: u32(O.gso_type) };
    }
    ev.skb = skb;
  }
  if (sections & S.netns) ev.netns = sections & S.netns_cookie ? { cookie: u64(O.netns_cookie), inum: u32(O.netns_inum) } : { inum: u32(O.netns_inum) };
  if (sections & S.dev) {
    const dev: Section = { name: cstr(O.dev_name, 16), ifindex: u32(O.ifindex) };
    if (sections & S.rxif) dev.rx_ifindex = u32(O.rx_ifindex);
    ev.dev = dev;
  }
  const nftOff = probe?.nftOff ?? -1;
  if (sections & S.nft && nftOff >= 0 && nftOff + nftEvent.size <= size) ev.nft = nftSection(view, b + nftOff);
  const ctOff = probe?.ctOff ?? -1;
  if (sections & S.ct && ctOff >= 0 && ctOff + CT_BLOCK_BYTES <= size) {
    const ct = ctSection(view, b + ctOff, ctNames ?? new CtNames(undefined));
    if (ct) ev.ct = ct;
  }
  if (sections & S.ovs && size !== Infinity) {
    const ovs = ovsSection(view, b + size - OVS_BLOCK_BYTES);
    if (ovs) ev.ovs = ovs;
  }
  return ev;
}
