/**
 * Column plans: from a record layout (capture.layout.ts) and a declarative mapping of Arrow
 * columns to layout fields (CAPTURE_COLUMNS in decode.ts), build
 * - the program the native column decoder runs (bpf/native/decoder.h): one operation per mapped
 *   column, offsets and types taken from the layout, element sizes from the Arrow schema;
 * - the arena: where each column buffer lives in one batch's memory;
 * - the Arrow assembly of an arena: typed-array views over the arena (no copy), all-null
 *   buffers for unmapped columns, and the few JS post-passes (names the native side did not
 *   know yet, stack symbolization).
 *
 * A new field is a layout entry plus a mapping entry: no decoder code to write, in C or in TS.
 */
import { Binary, Bool, Data, DataType, Dictionary, Int32, Int64, List, RecordBatch, Schema, Struct, Uint16, Uint32, Uint64, Uint8, Utf8, Vector, makeData, type Field as ArrowField } from 'apache-arrow';
import type { FieldSpec, Layout } from '../bpf/layout.ts';
import { NullBuffers } from './columns.ts';

//// MAPPING ////

/** Section condition: all `all` bits set, no `none` bit set, at least one `any` bit if given. */
export interface When {
  all?: number;
  none?: number;
  any?: number;
}

export type ColumnSource<F extends string> =
  /** A struct: its validity bit is set when `when` holds (structs not listed are all valid). */
  | { struct: true }
  /** Sequence number, counted by the decoder. */
  | { seq: true }
  /** A scalar field ((value >> shift) & mask); Bool columns get (…) != 0. */
  | { field: F; shift?: number; mask?: number; bigEndian?: boolean }
  /** A NUL-padded char array. */
  | { cstring: F }
  /** Bytes after the fixed header: `length` bytes, starting after the 8-aligned end of a
   * preceding variable part (`after`, present when its section bit is set). */
  | { bytes: { length: F; after?: { length: F; section: number }; maxBytes: number } }
  /** A per-probe constant string (index into the probe strings given to the decoder). */
  | { probe: number }
  /** A name looked up from a field's value (`table`, `slot` of the entry); JS resolves misses. */
  | { lookup: { table: number; slot: number; field: F } }
  /**
   * A raw block of a rare section, for a whole column built in JS ({@link RareColumns}): `bytes`
   * bytes at the record offset of the probe's offset slot `probeSlot` (PlanOptions.probeOffsets;
   * skipped when the probe has none or the record is too short), or the last `bytes` bytes of
   * the record (`end`; past its variable parts, else the record is malformed). The native decoder
   * copies it, for the rows whose `when` holds only, into the arena's raw area with the row index.
   */
  | { raw: { probeSlot: number; bytes: number } | { end: true; bytes: number } };

export interface ColumnMap<F extends string = string> {
  /** Arrow path, e.g. `common.task.comm`. */
  path: string;
  from: ColumnSource<F>;
  when?: When;
  /** The leaf has its own validity (set when written) inside its present parent. */
  optional?: boolean;
  /** Variable columns: bytes per row to reserve (the batch is cut earlier when they run out). */
  rowBytes?: number;
}

/**
 * Builds the columns of raw blocks (rare sections) for one batch: `begin`, then `write` for each
 * block in row order, then `data` for each raw column (views valid until the next `begin`).
 */
export interface RareColumns {
  begin(rows: number): void;
  write(path: string, row: number, view: DataView, offset: number, bytes: number): void;
  data(path: string, type: DataType, rows: number): Data;
}

/** Resolves a lookup key to the strings of its slots (null: absent). */
export type LookupResolver = (key: number) => readonly (Uint8Array | null)[];

export interface PlanOptions<F extends FieldSpec> {
  layout: Layout<F>;
  /** Field holding the probe id, and the one holding the section bits. */
  probeField: keyof F & string;
  sectionsField: keyof F & string;
  schema: Schema;
  columns: readonly ColumnMap<keyof F & string>[];
  /** Rows per batch. */
  capacity: number;
  /** Resolvers of lookup tables, by table number. */
  lookups: ReadonlyMap<number, LookupResolver>;
  /** List<Utf8> columns fed by a bytes source: turn one row's raw bytes into its items. */
  lists?: ReadonlyMap<string, (raw: Uint8Array, push: (item: Uint8Array) => void) => void>;
  /** Record offsets of raw blocks by probe id: [slot] (-1 or absent: the probe has none). */
  probeOffsets?: ReadonlyMap<number, readonly number[]>;
  /**
   * Per-probe strings by probe id (what the native decoder is given): a `probe` source whose
   * schema type is a Dictionary is written as the probe id, over a dictionary of these strings.
   */
  probeStrings?: readonly (readonly Uint8Array[] | null)[];
  /** Builder of the raw columns (required with `raw` sources). */
  rare?: RareColumns;
  /** Raw area bytes per batch (default: room for every raw block in 1/8 of the rows, at least one each). */
  rawBytes?: number;
}

//// PROGRAM FORMAT (mirrors bpf/native/decoder.h) ////

const MAGIC = 0x52444332;
const PLAN_HDR = 16;
const RAW_ENTRY_HDR = 8;
const NONE = 0xffffffff;
const MAX_MISS = 64;
const STR_MAX = 255;
const OP = { valid: 1, scalar: 2, bool: 3, cstr: 4, bytes: 5, probestr: 6, seq: 7, lookup: 8, raw: 9 } as const;
const H_ROWS = 0;
const H_MISSES = 1;
const H_VARPOS = 2;

type Kind = 'struct' | 'fixed' | 'bool' | 'var' | 'list' | 'dict';

interface VarDesc {
  offsets: number;
  bytes: number;
  cap: number;
  max: number;
}

interface LeafPlan {
  path: string;
  kind: Kind;
  type: DataType;
  /** fixed/dict: arena offset of the data; var/list: var index; bool: bitmap index. */
  at: number;
  /** Own validity bitmap index (optional leaves, structs). */
  valid: number | undefined;
  map: ColumnMap;
}

function typeAt(schema: Schema, path: string): DataType {
  let fields: ArrowField[] = schema.fields;
  let type: DataType | undefined;
  for (const p of path.split('.')) {
    const f = fields.find((x) => x.name === p);
    if (!f) throw new Error(`column ${path}: no '${p}' in the event schema`);
    type = f.type;
    fields = type instanceof Struct ? type.children : [];
  }
  return type!;
}

function elemSize(t: DataType, path: string): number {
  if (t instanceof Uint8) return 1;
  if (t instanceof Uint16) return 2;
  if (t instanceof Uint32 || t instanceof Int32) return 4;
  if (t instanceof Uint64 || t instanceof Int64) return 8;
  throw new Error(`column ${path}: ${String(t)} is not a fixed-width integer`);
}

const align8 = (n: number): number => (n + 7) & ~7;

/** A Utf8 vector of byte strings. */
function utf8Vector(items: readonly Uint8Array[]): Vector<Utf8> {
  const offsets = new Int32Array(items.length + 1);
  let n = 0;
  items.forEach((x, i) => (offsets[i + 1] = n += x.length));
  const data = new Uint8Array(n);
  items.forEach((x, i) => data.set(x, offsets[i]!));
  return new Vector([makeData({ type: new Utf8(), length: items.length, nullCount: 0, valueOffsets: offsets, data })]);
}

/** A compiled plan: the decoder program, and how to read an arena back as Arrow. */
export class ColumnPlan {
  readonly program: Uint32Array;
  readonly arenaBytes: number;
  readonly capacity: number;
  private readonly leaves = new Map<string, LeafPlan>();
  private readonly structs = new Map<string, number>();
  /** Structs with a mapped leaf below them (assembled from the arena, not all-null). */
  private readonly mappedStructs = new Set<string>();
  private readonly vars: VarDesc[] = [];
  private readonly bitmaps: number[] = [];
  /** All-null buffers and the dictionaries of this plan's batches (shared with the other column sets). */
  readonly nulls: NullBuffers;
  private readonly hiddenSections: number;
  /** Hidden u32 column of each lookup's key, by lookup leaf path. */
  private readonly lookupKeys = new Map<string, number>();
  private readonly headerWords: number;
  /** Raw columns: path by tag, and the raw area. */
  private readonly rawPaths: string[] = [];
  private readonly rawOff: number;
  private readonly rawWord: number;

  constructor(private readonly o: PlanOptions<FieldSpec>) {
    const layout = o.layout;
    const cap = o.capacity;
    this.capacity = cap;
    this.nulls = new NullBuffers(cap);
    const field = (name: string): { off: number; size: number } => {
      const f = layout.fields.find((x) => x.name === name);
      if (!f) throw new Error(`layout ${layout.name} has no field '${name}'`);
      return { off: f.offset, size: f.size / (f.length ?? 1) };
    };
    // Count columns first: the header size depends on them.
    let nvar = 0;
    let nbitmap = 0;
    // Columns of sections the schema leaves out (collectors not running) are not decoded.
    const present = new Set(o.schema.fields.map((x) => x.name));
    const columns = o.columns.filter((m) => present.has(m.path.split('.')[0]!));
    for (const m of columns) {
      const f = m.from;
      if ('struct' in f) nbitmap++;
      else if ('probe' in f && typeAt(o.schema, m.path) instanceof Dictionary) {
        // A fixed column of probe ids, no var.
      }
      else if ('cstring' in f || 'bytes' in f || 'probe' in f || 'lookup' in f) nvar++;
      else if ('field' in f && typeAt(o.schema, m.path) instanceof Bool) nbitmap++;
      if (m.optional) nbitmap++;
    }
    this.rawWord = H_VARPOS + nvar + nbitmap + 2 * MAX_MISS;
    this.headerWords = this.rawWord + 1;
    let off = align8(this.headerWords * 4);
    const headerBytes = off;
    // +8: the decoder moves fixed-width values 8 bytes at a time (see decoder.h).
    const alloc = (bytes: number): number => {
      const at = off;
      off = align8(off + bytes) + 8;
      return at;
    };
    const newBitmap = (): number => {
      this.bitmaps.push(alloc((cap + 7) >> 3));
      return this.bitmaps.length - 1;
    };
    const newVar = (rowBytes: number, max: number): number => {
      const bytes = Math.max(rowBytes * cap, max) + max;
      this.vars.push({ offsets: alloc((cap + 1) * 4), bytes: alloc(bytes), cap: bytes, max });
      return this.vars.length - 1;
    };
    const ops: number[] = [];
    const op = (kind: number, when: When | undefined, a: { src?: number; stype?: number; dst?: number; dsize?: number; shift?: number; mask?: number; valid?: number; aux?: number; aux2?: number }): void => {
      ops.push(kind, (when?.all ?? 0) | (when?.none ?? 0), when?.all ?? 0, when?.any ?? 0, a.src ?? 0, a.stype ?? 0, a.dst ?? 0, a.dsize ?? 0, a.shift ?? 0, a.mask ?? 0, a.valid ?? NONE, a.aux ?? 0, a.aux2 ?? 0);
    };
    // Hidden columns for the JS post-passes: sections of every row, lookup keys.
    const sec = field(o.sectionsField);
    this.hiddenSections = alloc(cap * 4);
    op(OP.scalar, undefined, { src: sec.off, stype: 4, dst: this.hiddenSections, dsize: 4 });

    let nslots = 0;
    let rawEntryBytes = 0;
    for (const m of columns) {
      const f = m.from;
      const type = typeAt(o.schema, m.path);
      if ('raw' in f) {
        if (!o.rare) throw new Error(`column ${m.path}: raw source without PlanOptions.rare`);
        if (m.optional) throw new Error(`column ${m.path}: a raw column's validity is its builder's`);
        const tag = this.rawPaths.length;
        this.rawPaths.push(m.path);
        const r = f.raw;
        if ('probeSlot' in r) nslots = Math.max(nslots, r.probeSlot + 1);
        rawEntryBytes += RAW_ENTRY_HDR + align8(r.bytes);
        op(OP.raw, m.when, { src: 'probeSlot' in r ? r.probeSlot : 0, stype: 'probeSlot' in r ? 0 : 1, dst: tag, dsize: r.bytes });
        continue;
      }
      const valid = m.optional ? newBitmap() : undefined;
      if ('struct' in f) {
        if (!(type instanceof Struct)) throw new Error(`column ${m.path}: not a struct in the event schema`);
        const b = newBitmap();
        this.structs.set(m.path, b);
        op(OP.valid, m.when, { valid: b });
        continue;
      }
      let leaf: LeafPlan;
      if ('seq' in f) {
        const at = alloc(cap * 8);
        op(OP.seq, m.when, { dst: at, valid });
        leaf = { path: m.path, kind: 'fixed', type, at, valid, map: m };
      } else if ('field' in f) {
        const src = field(f.field);
        const stype = src.size | (f.bigEndian ? 0x100 : 0);
        if (type instanceof Bool) {
          const b = newBitmap();
          op(OP.bool, m.when, { src: src.off, stype, dst: b, shift: f.shift, mask: f.mask, valid });
          leaf = { path: m.path, kind: 'bool', type, at: b, valid, map: m };
        } else {
          const dsize = elemSize(type, m.path);
          const at = alloc(cap * dsize);
          op(OP.scalar, m.when, { src: src.off, stype, dst: at, dsize, shift: f.shift, mask: f.mask, valid });
          leaf = { path: m.path, kind: 'fixed', type, at, valid, map: m };
        }
      } else if ('probe' in f && type instanceof Dictionary) {
        // The probe id indexes a dictionary of the probes' strings: 2 bytes a row, not the string.
        const dsize = elemSize(type.indices, m.path);
        const at = alloc(cap * dsize);
        const pf = field(o.probeField);
        op(OP.scalar, m.when, { src: pf.off, stype: pf.size, dst: at, dsize, valid });
        const strings = (o.probeStrings ?? []).map((p) => p?.[f.probe] ?? new Uint8Array(0));
        if (strings.length > 2 ** (8 * dsize)) throw new Error(`column ${m.path}: ${strings.length} probe ids do not fit its ${String(type.indices)} indices`);
        this.nulls.dictionaries.set(type, utf8Vector(strings));
        leaf = { path: m.path, kind: 'dict', type, at, valid, map: m };
      } else {
        const isList = type instanceof List;
        if (!isList && !(type instanceof Utf8 || type instanceof Binary)) throw new Error(`column ${m.path}: ${String(type)} is not Utf8/Binary`);
        let v: number;
        if ('cstring' in f) {
          const src = field(f.cstring);
          const n = layout.fields.find((x) => x.name === f.cstring)!.size;
          v = newVar(m.rowBytes ?? n, n);
          op(OP.cstr, m.when, { src: src.off, dst: v, aux: n, valid });
        } else if ('bytes' in f) {
          const len = field(f.bytes.length);
          v = newVar(m.rowBytes ?? f.bytes.maxBytes, f.bytes.maxBytes);
          const after = f.bytes.after;
          if (after && field(after.length).size !== len.size) throw new Error(`column ${m.path}: length fields of different sizes`);
          op(OP.bytes, m.when, { src: layout.size, stype: len.size, dst: v, aux: len.off, aux2: after ? field(after.length).off : NONE, shift: after?.section ?? 0, valid });
        } else if ('probe' in f) {
          v = newVar(m.rowBytes ?? 32, STR_MAX);
          op(OP.probestr, m.when, { dst: v, aux: f.probe, valid });
        } else {
          const src = field(f.lookup.field);
          v = newVar(m.rowBytes ?? 32, STR_MAX);
          const key = alloc(cap * 4);
          op(OP.scalar, undefined, { src: src.off, stype: src.size, dst: key, dsize: 4 });
          this.lookupKeys.set(m.path, key);
          op(OP.lookup, m.when, { src: src.off, stype: src.size, dst: v, aux: f.lookup.table, aux2: f.lookup.slot, valid });
        }
        leaf = { path: m.path, kind: isList ? 'list' : 'var', type, at: v, valid, map: m };
      }
      this.leaves.set(m.path, leaf);
      for (let i = m.path.indexOf('.'); i > 0; i = m.path.indexOf('.', i + 1)) this.mappedStructs.add(m.path.slice(0, i));
    }
    // Raw area: rare sections, a few rows per batch (the batch is cut earlier when it is full).
    const rawCap = rawEntryBytes === 0 ? 0 : Math.max(rawEntryBytes, o.rawBytes ?? rawEntryBytes * Math.max(1, cap >> 3));
    this.rawOff = rawCap === 0 ? 0 : alloc(rawCap);
    this.arenaBytes = off;
    const probe = field(o.probeField);
    let ntab = 0;
    const offsets: number[] = [];
    if (nslots > 0) {
      for (const id of o.probeOffsets?.keys() ?? []) ntab = Math.max(ntab, id + 1);
      for (let id = 0; id < ntab; id++) {
        const po = o.probeOffsets?.get(id);
        for (let k = 0; k < nslots; k++) {
          const v = po?.[k];
          offsets.push(v === undefined || v < 0 ? NONE : v);
        }
      }
    }
    const head = [MAGIC, cap, off, headerBytes, this.vars.length, this.bitmaps.length, ops.length / 13, layout.size, probe.off, sec.off, MAX_MISS, this.rawOff, rawCap, nslots, ntab, 0];
    if (head.length !== PLAN_HDR) throw new Error('plan header size');
    this.program = Uint32Array.from([...head, ...this.vars.flatMap((v) => [v.offsets, v.bytes, v.cap, v.max]), ...this.bitmaps, ...ops, ...offsets]);
  }

  /** Rows in an arena. */
  rows(arena: ArrayBuffer): number {
    return new Uint32Array(arena, 0, 1)[0]!;
  }

  /** The arena's rows as an Arrow record batch: views over the arena (write it before reuse). */
  recordBatch(arena: ArrayBuffer, onMiss?: (table: number, key: number) => void): RecordBatch {
    const h = new Uint32Array(arena, 0, this.headerWords);
    const n = h[H_ROWS]!;
    let rebuilt = h[H_MISSES]! > 0 ? this.resolveMisses(arena, h, n, onMiss) : undefined;
    if (this.rawPaths.length > 0) this.rare(arena, h, n, (rebuilt ??= new Map()));
    const s = this.o.schema;
    const children = s.fields.map((f) => this.data(arena, h, f.name, f.type, n, rebuilt));
    return new RecordBatch(s, makeData({ type: new Struct(s.fields), length: n, nullCount: 0, children }));
  }

  private count(h: Uint32Array, bitmap: number): number {
    return h[H_VARPOS + this.vars.length + bitmap]!;
  }

  private bits(arena: ArrayBuffer, bitmap: number, n: number): Uint8Array {
    return new Uint8Array(arena, this.bitmaps[bitmap]!, (n + 7) >> 3);
  }

  /** Raw blocks of this batch (rare sections) to their columns, built in JS. */
  private rare(arena: ArrayBuffer, h: Uint32Array, n: number, out: Map<string, Data>): void {
    const rare = this.o.rare!;
    const used = h[this.rawWord]!;
    if (used === 0) {
      for (const p of this.rawPaths) out.set(p, this.nulls.data(typeAt(this.o.schema, p), n));
      return;
    }
    rare.begin(n);
    const view = new DataView(arena, this.rawOff, used);
    for (let p = 0; p + RAW_ENTRY_HDR <= used; ) {
      const row = view.getUint32(p, true);
      const tag = view.getUint16(p + 4, true);
      const len = view.getUint16(p + 6, true);
      const path = this.rawPaths[tag];
      if (path !== undefined && row < n) rare.write(path, row, view, p + RAW_ENTRY_HDR, len);
      p += RAW_ENTRY_HDR + align8(len);
    }
    for (const p of new Set(this.rawPaths)) out.set(p, rare.data(p, typeAt(this.o.schema, p), n));
  }

  private data(arena: ArrayBuffer, h: Uint32Array, path: string, type: DataType, n: number, rebuilt: Map<string, Data> | undefined): Data {
    const r0 = rebuilt?.get(path);
    if (r0) return r0;
    if (type instanceof Struct) {
      const b = this.structs.get(path);
      const mapped = b !== undefined || this.mappedStructs.has(path);
      if (!mapped) return this.nulls.data(type, n);
      // Null in every row (a section no record of the batch had): the shared zero buffers, which
      // the stream stores compressed, rather than the arena's stale bytes.
      if (b !== undefined && this.count(h, b) === 0) return this.nulls.data(type, n);
      const children = type.children.map((c) => this.data(arena, h, `${path}.${c.name}`, c.type, n, rebuilt));
      return b === undefined
        ? makeData({ type, length: n, nullCount: 0, children })
        : makeData({ type, length: n, nullCount: n - this.count(h, b), nullBitmap: this.bits(arena, b, n), children });
    }
    const l = this.leaves.get(path);
    if (!l) return this.nulls.data(type, n);
    if (l.valid !== undefined && this.count(h, l.valid) === 0) return this.nulls.data(type, n);
    const nulls = l.valid === undefined ? { nullCount: 0 } : { nullCount: n - this.count(h, l.valid), nullBitmap: this.bits(arena, l.valid, n) };
    switch (l.kind) {
      case 'fixed': {
        const at = l.at;
        const data =
          type instanceof Uint64 ? new BigUint64Array(arena, at, n)
          : type instanceof Int64 ? new BigInt64Array(arena, at, n)
          : type instanceof Uint32 ? new Uint32Array(arena, at, n)
          : type instanceof Int32 ? new Int32Array(arena, at, n)
          : type instanceof Uint16 ? new Uint16Array(arena, at, n)
          : new Uint8Array(arena, at, n);
        return makeData({ type: type as Uint32, length: n, ...nulls, data } as never);
      }
      case 'bool':
        return makeData({ type: type as Bool, length: n, ...nulls, data: this.bits(arena, l.at, n) });
      case 'dict': {
        const d = type as Dictionary<Utf8, Uint16>;
        const data = new (d.indices.ArrayType as Uint16ArrayConstructor)(arena, l.at, n);
        // The same dictionary object in every batch: the stream writer emits it once.
        return makeData({ type: d, length: n, ...nulls, data, dictionary: this.nulls.dictionaries.get(type) as Vector<Utf8> });
      }
      case 'var': {
        const v = this.vars[l.at]!;
        const end = h[H_VARPOS + l.at]!;
        return makeData({ type: type as Utf8, length: n, ...nulls, valueOffsets: new Int32Array(arena, v.offsets, n + 1), data: new Uint8Array(arena, v.bytes, end) });
      }
      case 'list':
        return this.list(arena, h, l, type as List<Utf8>, n, nulls);
      default:
        throw new Error(`column ${path}: bad kind ${l.kind}`);
    }
  }

  /** List<Utf8> from raw bytes per row (stack addresses), through the plan's list hook. */
  private list(arena: ArrayBuffer, h: Uint32Array, l: LeafPlan, type: List<Utf8>, n: number, nulls: { nullCount: number; nullBitmap?: Uint8Array }): Data {
    const hook = this.o.lists?.get(l.path);
    const childType = type.children[0]!.type as Utf8;
    const v = this.vars[l.at]!;
    const rowOff = new Int32Array(arena, v.offsets, n + 1);
    const raw = new Uint8Array(arena, v.bytes, h[H_VARPOS + l.at]!);
    const listOff = new Int32Array(n + 1);
    const itemOff: number[] = [0];
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    const push = (item: Uint8Array): void => {
      chunks.push(item);
      bytes += item.length;
      itemOff.push(bytes);
    };
    for (let r = 0; r < n; r++) {
      if (hook && rowOff[r + 1]! > rowOff[r]!) hook(raw.subarray(rowOff[r]!, rowOff[r + 1]!), push);
      listOff[r + 1] = itemOff.length - 1;
    }
    const data = new Uint8Array(bytes);
    let p = 0;
    for (const c of chunks) {
      data.set(c, p);
      p += c.length;
    }
    const child = makeData({ type: childType, length: itemOff.length - 1, nullCount: 0, valueOffsets: Int32Array.from(itemOff), data });
    // Without a hook (no symbols), rows are null: a list the reader could not interpret.
    const nn = hook ? nulls : { nullCount: n, nullBitmap: new Uint8Array((n + 7) >> 3) };
    return makeData({ type, length: n, ...nn, valueOffsets: listOff, child });
  }

  /**
   * Some lookups missed in the native tables: resolve and add the keys (later batches hit), and
   * rebuild this batch's lookup columns in JS from the hidden key and sections columns.
   */
  private resolveMisses(arena: ArrayBuffer, h: Uint32Array, n: number, onMiss: ((table: number, key: number) => void) | undefined): Map<string, Data> {
    const listed = Math.min(h[H_MISSES]!, MAX_MISS);
    const missBase = H_VARPOS + this.vars.length + this.bitmaps.length;
    for (let i = 0; i < listed; i++) onMiss?.(h[missBase + 2 * i]!, h[missBase + 2 * i + 1]!);
    const sections = new Uint32Array(arena, this.hiddenSections, n);
    const out = new Map<string, Data>();
    for (const [path, keyAt] of this.lookupKeys) {
      const l = this.leaves.get(path)!;
      const f = l.map.from as { lookup: { table: number; slot: number } };
      const resolve = this.o.lookups.get(f.lookup.table);
      const keys = new Uint32Array(arena, keyAt, n);
      const when = l.map.when ?? {};
      const offsets = new Int32Array(n + 1);
      const valid = new Uint8Array((n + 7) >> 3);
      const parts: Uint8Array[] = [];
      let pos = 0;
      let nValid = 0;
      for (let r = 0; r < n; r++) {
        const s = sections[r]!;
        const ok = (s & ((when.all ?? 0) | (when.none ?? 0))) === (when.all ?? 0) && (!when.any || (s & when.any) !== 0);
        const str = ok && resolve ? (resolve(keys[r]!)[f.lookup.slot] ?? null) : null;
        if (str !== null) {
          parts.push(str);
          pos += str.length;
          valid[r >> 3]! |= 1 << (r & 7);
          nValid++;
        }
        offsets[r + 1] = pos;
      }
      const data = new Uint8Array(pos);
      let p = 0;
      for (const x of parts) {
        data.set(x, p);
        p += x.length;
      }
      const nulls = l.valid === undefined ? { nullCount: 0 } : { nullCount: n - nValid, nullBitmap: valid };
      out.set(path, makeData({ type: l.type as Utf8, length: n, ...nulls, valueOffsets: offsets, data }));
    }
    return out;
  }
}


