/**
 * Ring-buffer records (capture.layout.ts) to event-model columns.
 *
 * The hot path is native and declarative: CAPTURE_COLUMNS maps each Arrow column to a layout
 * field (and the section bits that make it present); capture/columns-plan.ts compiles that into
 * the program of the native column decoder (bpf/native/decoder.h), which runs on the ring reader
 * thread and fills whole batches of columns ("arenas") that JS only hands to the Arrow writer.
 * A new field: add it to the layout, set its section bit in capture.bpf.c, map it here.
 *
 * Rare sections (ct, nft, ovs: their collectors only) are blocks at per-probe offsets or at the
 * record end: the mapping gives them as `raw` sources, the native decoder copies them (only for
 * the rows that have them) with their row index, and JS builds their columns per batch with the
 * collectors' writers (RareSections).
 *
 * The slow path (`recordToEvent`) builds a RetisEvent (bigint u64, Uint8Array packet) from one
 * record, for --print and pcap-ng only.
 */
import type { Data, DataType, RecordBatch, Schema } from 'apache-arrow';
import { native, type DecoderHandle } from '../bpf/native.ts';
import { RECORD_HEADER_BYTES } from '../bpf/ringbuf.ts';
import type { RetisEvent, Section } from '../analyze/model/event.ts';
import { ColumnPlan, type ColumnMap, type RareColumns } from './columns-plan.ts';
import { ColumnSet, type NullBuffers, type U64Col, type VarCol } from './columns.ts';
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

/** The sections our captures write (a subset of the model: the rest would be all-null columns). */
export const CAPTURE_SECTIONS = ['seq', 'common', 'kernel', 'userspace', 'skb-tracking', 'skb-drop', 'packet', 'skb', 'netns', 'dev', 'nft', 'ct', 'ovs', 'startup'];

/** Per-probe strings given to the native decoder, in this order (`{ probe: N }` sources). */
const PROBE_SYMBOL = 0;
const PROBE_TYPE = 1;
const PROBE_PATH = 2;
/** Lookup tables (`{ lookup }` sources): drop reasons, slots subsystem and reason. */
const DROP_REASONS = 0;
/** Per-probe record offsets of raw blocks (`{ raw: { probeSlot } }` sources). */
const SLOT_CT = 0;
const SLOT_NFT = 1;
const MAX_STACK_BYTES = 64 * 8; // MAX_STACK_DEPTH of capture.bpf.c

type F = keyof typeof captureEvent.offsets & string;
const kernelOnly = { none: S.user };
const userOnly = { all: S.user };

/**
 * Arrow columns of a capture, from capture.layout.ts fields: the one place that says which
 * record field feeds which column and under which section bits. Columns not listed are null.
 */
export function captureColumns(snaplen: number): ColumnMap<F>[] {
  return [
    { path: 'seq', from: { seq: true } },
    { path: 'common.timestamp', from: { field: 'ts' } },
    { path: 'common.smp_id', from: { field: 'cpu' }, optional: true },
    { path: 'common.task', from: { struct: true } },
    { path: 'common.task.pid', from: { field: 'pid_tgid', mask: 0xffffffff } },
    { path: 'common.task.tgid', from: { field: 'pid_tgid', shift: 32 } },
    { path: 'common.task.comm', from: { cstring: 'comm' }, rowBytes: 16 },

    { path: 'kernel', from: { struct: true }, when: kernelOnly },
    { path: 'kernel.symbol', from: { probe: PROBE_SYMBOL }, when: kernelOnly, rowBytes: 40 },
    { path: 'kernel.probe_type', from: { probe: PROBE_TYPE }, when: kernelOnly, rowBytes: 16 },
    // Raw addresses; the List<Utf8> of names is made in JS (KernelSymbols), see EventEncoder.
    { path: 'kernel.stack_trace', from: { bytes: { length: 'stack_bytes', after: { length: 'cap_len', section: S.packet }, maxBytes: MAX_STACK_BYTES } }, when: { all: S.stack, none: S.user }, optional: true, rowBytes: 0 },

    { path: 'userspace', from: { struct: true }, when: userOnly },
    { path: 'userspace.probe_type', from: { probe: PROBE_TYPE }, when: userOnly, rowBytes: 0 },
    { path: 'userspace.symbol', from: { probe: PROBE_SYMBOL }, when: userOnly, rowBytes: 0 },
    { path: 'userspace.ip', from: { field: 'ip' }, when: userOnly },
    { path: 'userspace.path', from: { probe: PROBE_PATH }, when: userOnly, rowBytes: 0 },
    { path: 'userspace.pid', from: { field: 'pid_tgid', shift: 32 }, when: userOnly },
    { path: 'userspace.tid', from: { field: 'pid_tgid', mask: 0xffffffff }, when: userOnly },

    { path: 'skb-tracking', from: { struct: true }, when: { all: S.tracking } },
    { path: 'skb-tracking.orig_head', from: { field: 'orig_head' }, when: { all: S.tracking } },
    { path: 'skb-tracking.timestamp', from: { field: 'track_ts' }, when: { all: S.tracking } },
    { path: 'skb-tracking.skb', from: { field: 'skb' }, when: { all: S.tracking } },

    { path: 'skb-drop', from: { struct: true }, when: { all: S.drop } },
    { path: 'skb-drop.subsys', from: { lookup: { table: DROP_REASONS, slot: 0, field: 'drop_reason' } }, when: { all: S.drop }, optional: true, rowBytes: 4 },
    { path: 'skb-drop.drop_reason', from: { lookup: { table: DROP_REASONS, slot: 1, field: 'drop_reason' } }, when: { all: S.drop }, rowBytes: 8 },

    { path: 'packet', from: { struct: true }, when: { all: S.packet } },
    { path: 'packet.len', from: { field: 'pkt_len' }, when: { all: S.packet } },
    { path: 'packet.capture_len', from: { field: 'cap_len' }, when: { all: S.packet } },
    { path: 'packet.data', from: { bytes: { length: 'cap_len', maxBytes: snaplen } }, when: { all: S.packet }, rowBytes: Math.min(snaplen, 128) },

    { path: 'skb', from: { struct: true }, when: { any: S.vlan | S.meta | S.dataref | S.gso } },
    { path: 'skb.vlan_accel', from: { struct: true }, when: { all: S.vlan } },
    { path: 'skb.vlan_accel.proto', from: { field: 'vlan_proto', bigEndian: true }, when: { all: S.vlan } },
    { path: 'skb.vlan_accel.pcp', from: { field: 'vlan_tci', shift: 13, mask: 7 }, when: { all: S.vlan } },
    { path: 'skb.vlan_accel.dei', from: { field: 'vlan_tci', shift: 12, mask: 1 }, when: { all: S.vlan } },
    { path: 'skb.vlan_accel.vid', from: { field: 'vlan_tci', mask: 0xfff }, when: { all: S.vlan } },
    { path: 'skb.meta', from: { struct: true }, when: { all: S.meta } },
    { path: 'skb.meta.len', from: { field: 'len' }, when: { all: S.meta } },
    { path: 'skb.meta.data_len', from: { field: 'data_len' }, when: { all: S.meta } },
    { path: 'skb.meta.hash', from: { field: 'hash' }, when: { all: S.meta } },
    { path: 'skb.meta.ip_summed', from: { field: 'ip_summed' }, when: { all: S.meta } },
    { path: 'skb.meta.csum', from: { field: 'csum' }, when: { all: S.meta } },
    { path: 'skb.meta.csum_level', from: { field: 'csum_level' }, when: { all: S.meta } },
    { path: 'skb.meta.priority', from: { field: 'priority' }, when: { all: S.meta } },
    { path: 'skb.data_ref', from: { struct: true }, when: { all: S.dataref } },
    { path: 'skb.data_ref.nohdr', from: { field: 'nohdr' }, when: { all: S.dataref } },
    { path: 'skb.data_ref.cloned', from: { field: 'cloned' }, when: { all: S.dataref } },
    { path: 'skb.data_ref.fclone', from: { field: 'fclone' }, when: { all: S.dataref } },
    { path: 'skb.data_ref.users', from: { field: 'users' }, when: { all: S.dataref } },
    { path: 'skb.data_ref.dataref', from: { field: 'dataref' }, when: { all: S.dataref } },
    { path: 'skb.gso', from: { struct: true }, when: { all: S.gso } },
    { path: 'skb.gso.flags', from: { field: 'gso_flags' }, when: { all: S.gso } },
    { path: 'skb.gso.frags', from: { field: 'gso_frags' }, when: { all: S.gso } },
    { path: 'skb.gso.size', from: { field: 'gso_size' }, when: { all: S.gso } },
    { path: 'skb.gso.segs', from: { field: 'gso_segs' }, when: { all: S.gso } },
    { path: 'skb.gso.type', from: { field: 'gso_type' }, when: { all: S.gso } },

    { path: 'netns', from: { struct: true }, when: { all: S.netns } },
    { path: 'netns.inum', from: { field: 'netns_inum' }, when: { all: S.netns } },
    { path: 'netns.cookie', from: { field: 'netns_cookie' }, when: { all: S.netns | S.netns_cookie }, optional: true },

    { path: 'dev', from: { struct: true }, when: { all: S.dev } },
    { path: 'dev.name', from: { cstring: 'dev_name' }, when: { all: S.dev }, rowBytes: 8 },
    { path: 'dev.ifindex', from: { field: 'ifindex' }, when: { all: S.dev } },
    { path: 'dev.rx_ifindex', from: { field: 'rx_ifindex' }, when: { all: S.dev | S.rxif }, optional: true },

    // Rare sections: raw blocks, columns built in JS (RareSections).
    { path: 'ct', from: { raw: { probeSlot: SLOT_CT, bytes: CT_BLOCK_BYTES } }, when: { all: S.ct } },
    { path: 'nft', from: { raw: { probeSlot: SLOT_NFT, bytes: nftEvent.size } }, when: { all: S.nft } },
    { path: 'ovs', from: { raw: { end: true, bytes: OVS_BLOCK_BYTES } }, when: { all: S.ovs } },
  ];
}

/** Columns of the rare sections (ct, nft, ovs) of a batch, from their raw blocks. */
class RareSections implements RareColumns {
  private readonly set: ColumnSet;
  private readonly ct: CtColumns;
  private readonly nft: NftColumns;
  private readonly ovs: OvsColumn;
  constructor(schema: Schema, capacity: number, ctNames: CtNames) {
    this.set = new ColumnSet(schema, capacity);
    this.ct = new CtColumns(this.set, ctNames);
    this.nft = new NftColumns(this.set);
    this.ovs = this.set.custom('ovs', new OvsColumn());
  }
  begin(rows: number): void {
    this.set.reset();
    this.set.rows = rows;
  }
  write(path: string, row: number, view: DataView, off: number): void {
    if (path === 'ct') this.ct.write(row, view, off);
    else if (path === 'nft') this.nft.write(row, view, off);
    else if (path === 'ovs') this.ovs.set(row, ovsSection(view, off));
  }
  data(path: string, _type: DataType, rows: number): Data {
    if (rows !== this.set.rows) throw new Error('RareSections: rows changed since begin()');
    return this.set.column(path);
  }
}

/** Columns of the startup event (written from JS, once per capture). */
class StartupColumns extends ColumnSet {
  readonly seq: U64Col;
  readonly ts: U64Col;
  readonly startup;
  readonly suVersion: VarCol;
  readonly suCmdline: VarCol;
  readonly suOffset;
  readonly suSec: U64Col;
  readonly suNsec: U64Col;
  readonly suMachine;
  readonly suRelease: VarCol;
  readonly suKVersion: VarCol;
  readonly suHardware: VarCol;
  constructor(schema: Schema, nulls: NullBuffers) {
    super(schema, 1, nulls);
    this.seq = this.u64('seq');
    this.ts = this.u64('common.timestamp');
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

/** A complete batch of rows, ready to be written (valid during the onBatch call only). */
export interface EventBatch {
  readonly rows: number;
  recordBatch(): RecordBatch;
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
  /** A batch is complete: write it (its memory is reused after this returns). */
  onBatch: (batch: EventBatch) => void;
  /** Per written record (slow path: --print, pcap-ng). */
  onEvent?: ((view: DataView, offset: number, size: number) => void) | undefined;
  /** TCP/SCTP conntrack state names (ct collector). */
  ctNames?: CtNames | undefined;
}

/**
 * Decodes ring records into column batches with the native column decoder: on the ring reader
 * thread (`decoder` handed to the reader, batches to {@link EventEncoder.writeArena}), or
 * synchronously from raw ring batches ({@link EventEncoder.decode}: --print/pcap-ng, tests).
 */
export class EventEncoder {
  readonly plan: ColumnPlan;
  readonly decoder: DecoderHandle;
  private readonly startupCols: StartupColumns;
  private seqNo = 0;
  /** Arena of the synchronous path (allocated on first use). */
  private arena: ArrayBuffer | undefined;
  private readonly reasonBytes = new Map<number, (Uint8Array | null)[]>();

  constructor(private readonly o: EncoderOptions) {
    const symbols = o.symbols;
    const lists = new Map<string, (raw: Uint8Array, push: (item: Uint8Array) => void) => void>();
    if (symbols) {
      lists.set('kernel.stack_trace', (raw, push) => {
        const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        let i = 0;
        while (i + 8 <= raw.length && symbols.isTracer(v.getBigUint64(i, true))) i += 8;
        for (; i + 8 <= raw.length; i += 8) push(symbols.bytes(v.getBigUint64(i, true)));
      });
    }
    const probeOffsets = new Map<number, number[]>();
    for (const [id, p] of o.probes) {
      const offs: number[] = [];
      offs[SLOT_CT] = p.ctOff ?? -1;
      offs[SLOT_NFT] = p.nftOff ?? -1;
      if (offs.some((x) => x >= 0)) probeOffsets.set(id, offs);
    }
    let max = 0;
    for (const id of o.probes.keys()) max = Math.max(max, id);
    const probes: (Uint8Array[] | null)[] = Array.from({ length: max + 1 }, () => null);
    for (const [id, p] of o.probes) probes[id] = [utf8.encode(p.symbol), utf8.encode(p.probeType), utf8.encode(p.binary ?? '')];
    this.plan = new ColumnPlan({
      probeStrings: probes,
      layout: captureEvent,
      probeField: 'probe_id',
      sectionsField: 'sections',
      schema: o.schema,
      columns: captureColumns(o.snaplen),
      capacity: o.batchRows,
      lookups: new Map([[DROP_REASONS, (raw: number) => this.reasonOf(raw)]]),
      lists,
      probeOffsets,
      rare: new RareSections(o.schema, o.batchRows, o.ctNames ?? new CtNames(undefined)),
    });
    this.startupCols = new StartupColumns(o.schema, this.plan.nulls);
    // The startup event takes seq 1: the decoder numbers records from 2.
    this.decoder = native().decoderCreate(this.plan.program, probes, o.maxEvents >= Number.MAX_SAFE_INTEGER ? -1 : o.maxEvents, 1);
  }

  private stats(): ReturnType<ReturnType<typeof native>['decoderStats']> {
    return native().decoderStats(this.decoder);
  }

  /** Events written (startup excluded). */
  get events(): number {
    return this.stats().events;
  }

  /** Records received after --max-events was reached (not written). */
  get ignored(): number {
    return this.stats().ignored;
  }

  /** Records not understood (size or probe id): a bug or a stale object; counted, never silent. */
  get malformed(): number {
    return this.stats().malformed;
  }

  get done(): boolean {
    return this.stats().events >= this.o.maxEvents;
  }

  /**
   * The startup event as the first row of the stream (its own batch, written by flush()), for a
   * schema with the startup column; a capture's schema carries it in its metadata instead
   * (captureSchema), and then this does nothing.
   */
  writeStartup(s: StartupInfo): void {
    const c = this.startupCols;
    if (!c.has('startup')) return;
    c.seq.setNumber(0, ++this.seqNo);
    c.ts.setBig(0, s.timestamp);
    c.startup.set(0);
    c.suVersion.set(0, utf8.encode(s.retisVersion));
    c.suCmdline.set(0, utf8.encode(s.cmdline));
    c.suOffset.set(0);
    c.suSec.setBig(0, s.offsetSec);
    c.suNsec.setBig(0, s.offsetNsec);
    c.suMachine.set(0);
    c.suRelease.set(0, utf8.encode(s.kernelRelease));
    c.suKVersion.set(0, utf8.encode(s.kernelVersion));
    c.suHardware.set(0, utf8.encode(s.hardwareName));
    c.rows = 1;
  }

  /** Hand pending rows (startup event, synchronous arena) to onBatch. */
  flush(): void {
    const c = this.startupCols;
    if (c.rows > 0) {
      this.o.onBatch(c);
      c.reset();
    }
    if (this.arena && this.plan.rows(this.arena) > 0) {
      this.writeArena(this.arena);
      native().decoderInitArena(this.decoder, this.arena);
    }
  }

  /** One arena from the decoder (reader thread batch, or the synchronous one): write it. */
  writeArena(arena: ArrayBuffer): void {
    const plan = this.plan;
    const decoder = this.decoder;
    this.o.onBatch({
      rows: plan.rows(arena),
      recordBatch: () =>
        plan.recordBatch(arena, (table, key) => {
          if (table === DROP_REASONS) native().decoderSetLookup(decoder, table, key, this.reasonOf(key));
        }),
    });
  }

  perProbeEvents(): Map<number, number> {
    const out = new Map<number, number>();
    this.stats().perProbe.forEach((n, id) => {
      if (n > 0) out.set(id, n);
    });
    return out;
  }

  private reasonOf(raw: number): (Uint8Array | null)[] {
    let r = this.reasonBytes.get(raw);
    if (r === undefined) {
      const n = this.o.dropReasons.name(raw);
      r = [n.subsys === undefined ? null : utf8.encode(n.subsys), utf8.encode(n.reason)];
      this.reasonBytes.set(raw, r);
    }
    return r;
  }

  /**
   * Decode a raw ring batch (records back to back: u32 size, u32 ring, payload, pad to 8) on
   * this thread. With `onEvent`, records go one at a time so only written ones are reported.
   */
  decode(buffer: ArrayBuffer): void {
    const n = native();
    if (!this.arena) {
      this.arena = new ArrayBuffer(this.plan.arenaBytes);
      n.decoderInitArena(this.decoder, this.arena);
    }
    const arena = this.arena;
    const onEvent = this.o.onEvent;
    const end = buffer.byteLength;
    const view = onEvent ? new DataView(buffer) : undefined;
    let p = 0;
    while (p < end) {
      const before = this.plan.rows(arena);
      const next = onEvent ? Math.min(end, p + RECORD_HEADER_BYTES + ((view!.getUint32(p, true) + 7) & ~7)) : end;
      const q = n.decoderDecode(this.decoder, arena, buffer, p, next);
      if (q === p) {
        if (this.plan.rows(arena) === 0) break; // trailing bytes shorter than a record header
        // Arena full before this record: write it, retry on an empty one.
        this.writeArena(arena);
        n.decoderInitArena(this.decoder, arena);
        continue;
      }
      if (onEvent && this.plan.rows(arena) === before + 1) onEvent(view!, p + RECORD_HEADER_BYTES, view!.getUint32(p, true));
      p = q;
    }
  }

  /**
   * Warm the JS side of a batch (Arrow assembly, writer) on synthetic records, so the first
   * real batches do not run in the interpreter while the ring fills.
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
          ? { ...base, origHead: 1n << 63n, dropReason: i % 4 === 3 ? 0x20001 : 3, packet: new Uint8Array(60), netns: { inum: 1, cookie: 1n }, dev: { name: 'lo', ifindex: 1, rxIfindex: 1 }, vlan: { proto: 0x8100, tci: 0x1001 }, ip: 1n }
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
