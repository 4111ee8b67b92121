/**
 * Preallocated column buffers for one Arrow record batch of events, filled row by row by the
 * decoder (capture/decode.ts) without creating a JS object per event, then handed to Arrow as
 * typed-array views (no copy).
 *
 * The shape comes from the event model (analyze/model/arrow-schema.ts): `seq` and the Retis
 * sections the collectors produce. Leaves are registered by path (`common.task.comm`); a leaf or
 * struct that nobody registered is written as all-null, so the batch always matches the schema.
 *
 * Null handling, chosen to keep the hot path short:
 * - every struct (section) has a validity bitmap, set per row when present;
 * - a leaf gets its own bitmap only when it is optional inside its section (e.g. `netns.cookie`);
 *   otherwise it is "valid" wherever written and its parent's bitmap masks the rest (Arrow leaves
 *   the value of a child under a null parent unspecified);
 * - u64 columns are written as two u32 halves (no BigInt per event).
 */
import { Binary, Bool, Data, DataType, Dictionary, Int32, Int64, List, RecordBatch, Schema, Struct, Uint16, Uint32, Uint64, Uint8, Utf8, Vector, makeData, type Field as ArrowField } from 'apache-arrow';
import { ZERO_BUFFERS } from '../analyze/model/arrow-zeros.ts';

/** A validity bitmap. Hot paths set bits directly (`bits[row >> 3] |= 1 << (row & 7)`); the
 * valid count is computed when the batch is assembled. */
export class Validity {
  readonly bits: Uint8Array;
  constructor(capacity: number) {
    this.bits = new Uint8Array((capacity + 7) >> 3);
  }
  set(row: number): void {
    this.bits[row >> 3]! |= 1 << (row & 7);
  }
  /** Set bits among the first `rows`. */
  count(rows: number): number {
    const b = this.bits;
    const full = rows >> 3;
    let n = 0;
    for (let i = 0; i < full; i++) n += POPCOUNT[b[i]!]!;
    const rest = rows & 7;
    if (rest) n += POPCOUNT[b[full]! & ((1 << rest) - 1)]!;
    return n;
  }
  reset(rows: number): void {
    this.bits.fill(0, 0, (rows + 7) >> 3);
  }
}

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, i) => {
  let n = 0;
  for (let x = i; x; x >>= 1) n += x & 1;
  return n;
});

/** u64/i64 column: 8 bytes per row, written as two little-endian u32 halves. */
export class U64Col {
  readonly halves: Uint32Array;
  readonly buffer: ArrayBuffer;
  constructor(capacity: number) {
    this.buffer = new ArrayBuffer(capacity * 8);
    this.halves = new Uint32Array(this.buffer);
  }
  /** Copy 8 bytes from a little-endian record field. */
  copy(row: number, view: DataView, offset: number): void {
    this.halves[row * 2] = view.getUint32(offset, true);
    this.halves[row * 2 + 1] = view.getUint32(offset + 4, true);
  }
  setNumber(row: number, v: number): void {
    this.halves[row * 2] = v >>> 0;
    this.halves[row * 2 + 1] = Math.floor(v / 0x1_0000_0000) >>> 0;
  }
  setBig(row: number, v: bigint): void {
    const u = BigInt.asUintN(64, v);
    this.halves[row * 2] = Number(u & 0xffff_ffffn);
    this.halves[row * 2 + 1] = Number(u >> 32n);
  }
}

/** Variable-length bytes (Utf8 or Binary): offsets + data, with gap filling for skipped rows. */
export class VarCol {
  readonly offsets: Int32Array;
  bytes: Uint8Array;
  /** Bytes used. */
  pos = 0;
  /** Rows whose end offset is written (offsets[0..covered] valid). */
  covered = 0;
  constructor(capacity: number, bytesCapacity: number) {
    this.offsets = new Int32Array(capacity + 1);
    this.bytes = new Uint8Array(bytesCapacity);
  }
  /** Close rows up to (not including) `row` as empty. */
  fillTo(row: number): void {
    const o = this.offsets;
    const p = this.pos;
    for (let r = this.covered; r < row; r++) o[r + 1] = p;
    if (row > this.covered) this.covered = row;
  }
  /** Bytes `src[start, end)` as the value of `row` (rows must be written in increasing order). */
  setBytes(row: number, src: Uint8Array, start: number, end: number): void {
    if (this.covered < row) this.fillTo(row);
    const n = end - start;
    if (this.pos + n > this.bytes.length) this.grow(this.pos + n);
    const b = this.bytes;
    let p = this.pos;
    // Short values (names): a loop beats creating a subarray view per call.
    if (n <= 32) for (let i = start; i < end; i++) b[p++] = src[i]!;
    else {
      b.set(src.subarray(start, end), p);
      p += n;
    }
    this.pos = p;
    this.offsets[row + 1] = p;
    this.covered = row + 1;
  }
  /** A NUL-terminated char[max] field of a record. */
  setCString(row: number, src: Uint8Array, start: number, max: number): void {
    let end = start;
    const stop = start + max;
    while (end < stop && src[end] !== 0) end++;
    this.setBytes(row, src, start, end);
  }
  set(row: number, value: Uint8Array): void {
    this.setBytes(row, value, 0, value.length);
  }
  private grow(min: number): void {
    const next = new Uint8Array(Math.max(min, this.bytes.length * 2));
    next.set(this.bytes.subarray(0, this.pos));
    this.bytes = next;
  }
  reset(): void {
    this.pos = 0;
    this.covered = 0;
    this.offsets[0] = 0;
  }
}

/** List<Utf8> (kernel.stack_trace): list offsets over a child VarCol. */
export class ListUtf8Col {
  readonly offsets: Int32Array;
  readonly child: VarCol;
  /** Child values used. */
  items = 0;
  covered = 0;
  constructor(capacity: number, itemsCapacity: number, bytesCapacity: number) {
    this.offsets = new Int32Array(capacity + 1);
    this.child = new VarCol(itemsCapacity, bytesCapacity);
  }
  fillTo(row: number): void {
    for (let r = this.covered; r < row; r++) this.offsets[r + 1] = this.items;
    if (row > this.covered) this.covered = row;
  }
  /** Start `row`; push its items with push(), then end(row). */
  push(value: Uint8Array): void {
    if (this.items + 1 >= this.child.offsets.length) return; // full: the row keeps what fits
    this.child.set(this.items++, value);
  }
  end(row: number): void {
    if (this.covered < row) this.fillTo(row);
    this.offsets[row + 1] = this.items;
    this.covered = row + 1;
  }
  begin(row: number): void {
    if (this.covered < row) this.fillTo(row);
  }
  reset(): void {
    this.items = 0;
    this.covered = 0;
    this.child.reset();
  }
}

export type Leaf =
  | { kind: 'u64'; col: U64Col; valid?: Validity }
  | { kind: 'fixed'; values: Uint8Array | Uint16Array | Uint32Array | Int32Array; valid?: Validity }
  | { kind: 'bool'; bits: Uint8Array; valid?: Validity }
  | { kind: 'var'; col: VarCol; valid?: Validity }
  | { kind: 'list'; col: ListUtf8Col; valid?: Validity };

/** A column built by its owner when the batch is cut (rare sections: capture/ovs/decode.ts). */
export interface CustomColumn {
  readonly empty: boolean;
  build(type: DataType, n: number): Data;
  reset(): void;
}

/** Zero-filled buffers for all-null leaves, shared by every batch. */
export class NullBuffers {
  private readonly zeros: ArrayBuffer;
  /**
   * Dictionaries of dictionary-encoded columns, by type: an all-null batch must carry the same
   * dictionary object as the others, or the stream writer emits a replacement dictionary.
   */
  readonly dictionaries = new Map<DataType, Vector>();
  constructor(readonly capacity: number) {
    // Largest need: 8 bytes per row (u64), or capacity+1 offsets of 4 bytes.
    this.zeros = new ArrayBuffer((capacity + 1) * 8);
    // Never written: the Arrow writer stores views of it as a few bytes (arrow-zeros.ts).
    ZERO_BUFFERS.add(this.zeros);
  }
  /** Last all-null Data of each type: full batches ask for the same length again and again. */
  private readonly made = new Map<DataType, Data>();

  data(type: DataType, n: number): Data {
    const last = this.made.get(type);
    if (last?.length === n) return last;
    const d = this.make(type, n);
    this.made.set(type, d);
    return d;
  }

  private make(type: DataType, n: number): Data {
    const bitmap = new Uint8Array(this.zeros, 0, (n + 7) >> 3);
    if (type instanceof Struct) {
      return makeData({ type, length: n, nullCount: n, nullBitmap: bitmap, children: type.children.map((c) => this.data(c.type, n)) });
    }
    if (type instanceof Utf8 || type instanceof Binary) {
      return makeData({ type: type as Utf8, length: n, nullCount: n, nullBitmap: bitmap, valueOffsets: new Int32Array(this.zeros, 0, n + 1), data: new Uint8Array(0) });
    }
    if (type instanceof List) {
      return makeData({ type, length: n, nullCount: n, nullBitmap: bitmap, valueOffsets: new Int32Array(this.zeros, 0, n + 1), child: this.data(type.children[0]!.type, 0) });
    }
    if (type instanceof Dictionary) {
      const dictionary = this.dictionaries.get(type) ?? new Vector([this.data(type.dictionary, 0)]);
      return makeData({ type, length: n, nullCount: n, nullBitmap: bitmap, data: new (type.indices.ArrayType as Uint16ArrayConstructor)(this.zeros, 0, n), dictionary });
    }
    if (type instanceof Bool) return makeData({ type, length: n, nullCount: n, nullBitmap: bitmap, data: new Uint8Array(this.zeros, 0, (n + 7) >> 3) });
    if (type instanceof Uint64) return makeData({ type, length: n, nullCount: n, nullBitmap: bitmap, data: new BigUint64Array(this.zeros, 0, n) });
    if (type instanceof Int64) return makeData({ type, length: n, nullCount: n, nullBitmap: bitmap, data: new BigInt64Array(this.zeros, 0, n) });
    if (type instanceof Uint32) return makeData({ type, length: n, nullCount: n, nullBitmap: bitmap, data: new Uint32Array(this.zeros, 0, n) });
    if (type instanceof Int32) return makeData({ type, length: n, nullCount: n, nullBitmap: bitmap, data: new Int32Array(this.zeros, 0, n) });
    if (type instanceof Uint16) return makeData({ type, length: n, nullCount: n, nullBitmap: bitmap, data: new Uint16Array(this.zeros, 0, n) });
    if (type instanceof Uint8) return makeData({ type, length: n, nullCount: n, nullBitmap: bitmap, data: new Uint8Array(this.zeros, 0, n) });
    throw new Error(`no null buffers for Arrow type ${String(type)}`);
  }
}

/**
 * Columns of one batch: leaves and struct validities by path, and the Arrow assembly. Subclasses
 * (EventColumns in decode.ts) keep direct references to the leaves they fill.
 */
export class ColumnSet {
  rows = 0;
  readonly leaves = new Map<string, Leaf>();
  readonly structs = new Map<string, Validity>();
  readonly customs = new Map<string, CustomColumn>();
  private readonly nulls: NullBuffers;

  /** `nulls`: shared with the batches' other writer (its dictionaries), else our own. */
  constructor(readonly schema: Schema, readonly capacity: number, nulls?: NullBuffers) {
    this.nulls = nulls && nulls.capacity >= capacity ? nulls : new NullBuffers(capacity);
  }

  /**
   * Whether the schema has the top-level column of `path`. Columns of sections the schema leaves
   * out are still allocated (the decoder writes them unconditionally) but never assembled.
   */
  has(path: string): boolean {
    const top = path.split('.')[0];
    return this.schema.fields.some((f) => f.name === top);
  }

  /** Validity of a struct (section or nested struct), created on first use. */
  struct(path: string): Validity {
    let v = this.structs.get(path);
    if (!v) {
      v = new Validity(this.capacity);
      if (!this.has(path)) return v;
      this.typeAt(path, 'struct');
      this.structs.set(path, v);
    }
    return v;
  }

  u64(path: string, optional = false): U64Col {
    const col = new U64Col(this.capacity);
    if (!this.has(path)) return col;
    this.typeAt(path, 'u64');
    this.leaves.set(path, { kind: 'u64', col, ...(optional ? { valid: new Validity(this.capacity) } : {}) });
    return col;
  }

  fixed<T extends Uint8Array | Uint16Array | Uint32Array | Int32Array>(path: string, make: (n: number) => T, optional = false): T {
    const values = make(this.capacity);
    if (!this.has(path)) return values;
    this.typeAt(path, 'fixed');
    this.leaves.set(path, { kind: 'fixed', values, ...(optional ? { valid: new Validity(this.capacity) } : {}) });
    return values;
  }

  bool(path: string): Uint8Array {
    const bits = new Uint8Array((this.capacity + 7) >> 3);
    if (!this.has(path)) return bits;
    this.typeAt(path, 'bool');
    this.leaves.set(path, { kind: 'bool', bits });
    return bits;
  }

  varlen(path: string, bytesPerRow: number, optional = false): VarCol {
    const col = new VarCol(this.capacity, Math.max(64, this.capacity * bytesPerRow));
    if (!this.has(path)) return col;
    this.typeAt(path, 'var');
    this.leaves.set(path, { kind: 'var', col, ...(optional ? { valid: new Validity(this.capacity) } : {}) });
    return col;
  }

  list(path: string, itemsCapacity: number, bytesCapacity: number): { col: ListUtf8Col; valid: Validity } {
    const col = new ListUtf8Col(this.capacity, itemsCapacity, bytesCapacity);
    const valid = new Validity(this.capacity);
    if (!this.has(path)) return { col, valid };
    this.typeAt(path, 'list');
    this.leaves.set(path, { kind: 'list', col, valid });
    return { col, valid };
  }

  /** A whole column (any type) built by `c` at assembly time; all-null while `c.empty`. */
  custom<T extends CustomColumn>(path: string, c: T): T {
    if (this.has(path)) this.customs.set(path, c);
    return c;
  }

  /** Validity bitmap of an optional leaf registered with `optional = true`. */
  validity(path: string): Validity {
    const l = this.leaves.get(path);
    if (!this.has(path)) return new Validity(this.capacity);
    if (!l?.valid) throw new Error(`column ${path} is not registered as optional`);
    return l.valid;
  }

  /** Check a path exists in the schema with a compatible type (catches typos at startup). */
  private typeAt(path: string, kind: 'struct' | 'u64' | 'fixed' | 'bool' | 'var' | 'list'): DataType {
    const parts = path.split('.');
    let fields: ArrowField[] = this.schema.fields;
    let type: DataType | undefined;
    for (const p of parts) {
      const f = fields.find((x) => x.name === p);
      if (!f) throw new Error(`column ${path}: no '${p}' in the event schema`);
      type = f.type;
      fields = type instanceof Struct ? type.children : [];
    }
    const ok =
      kind === 'struct' ? type instanceof Struct
      : kind === 'u64' ? type instanceof Uint64 || type instanceof Int64
      : kind === 'bool' ? type instanceof Bool
      : kind === 'var' ? type instanceof Utf8 || type instanceof Binary
      : kind === 'list' ? type instanceof List
      : type instanceof Uint8 || type instanceof Uint16 || type instanceof Uint32 || type instanceof Int32;
    if (!ok) throw new Error(`column ${path} is ${String(type)} in the event schema, not ${kind}`);
    return type!;
  }

  /** Clear for the next batch. */
  reset(): void {
    const n = this.rows;
    for (const v of this.structs.values()) v.reset(n);
    for (const c of this.customs.values()) c.reset();
    for (const l of this.leaves.values()) {
      l.valid?.reset(n);
      if (l.kind === 'var' || l.kind === 'list') l.col.reset();
      else if (l.kind === 'bool') l.bits.fill(0, 0, (n + 7) >> 3);
    }
    this.rows = 0;
  }

  /** The current rows of one top-level column (views over our buffers: use it before reset). */
  column(name: string): Data {
    const f = this.schema.fields.find((x) => x.name === name);
    if (!f) throw new Error(`column ${name}: not in the event schema`);
    return this.data(name, f.type, this.rows);
  }

  /** The current rows as an Arrow record batch (views over our buffers: write it before reset). */
  recordBatch(): RecordBatch {
    const n = this.rows;
    const children = this.schema.fields.map((f) => this.data(f.name, f.type, n));
    const type = new Struct(this.schema.fields);
    return new RecordBatch(this.schema, makeData({ type, length: n, nullCount: 0, children }));
  }

  private data(path: string, type: DataType, n: number): Data {
    const custom = this.customs.get(path);
    if (custom) return custom.empty ? this.nulls.data(type, n) : custom.build(type, n);
    if (type instanceof Struct) {
      const v = this.structs.get(path);
      const anyLeaf = v !== undefined || [...this.leaves.keys()].some((k) => k.startsWith(`${path}.`));
      if (!anyLeaf) return this.nulls.data(type, n);
      const valid = v?.count(n);
      // Null in every row: the shared zero buffers, stored compressed.
      if (valid === 0) return this.nulls.data(type, n);
      const children = type.children.map((c) => this.data(`${path}.${c.name}`, c.type, n));
      return v
        ? makeData({ type, length: n, nullCount: n - valid!, nullBitmap: v.bits.subarray(0, (n + 7) >> 3), children })
        : makeData({ type, length: n, nullCount: 0, children });
    }
    const l = this.leaves.get(path);
    if (!l) return this.nulls.data(type, n);
    const valid = l.valid;
    const nullProps = valid ? { nullCount: n - valid.count(n), nullBitmap: valid.bits.subarray(0, (n + 7) >> 3) } : { nullCount: 0 };
    switch (l.kind) {
      case 'u64':
        return makeData({
          type: type as Uint64,
          length: n,
          ...nullProps,
          data: type instanceof Int64 ? new BigInt64Array(l.col.buffer, 0, n) : new BigUint64Array(l.col.buffer, 0, n),
        } as never);
      case 'fixed':
        return makeData({ type: type as Uint32, length: n, ...nullProps, data: l.values.subarray(0, n) } as never);
      case 'bool':
        return makeData({ type: type as Bool, length: n, ...nullProps, data: l.bits.subarray(0, (n + 7) >> 3) });
      case 'var': {
        l.col.fillTo(n);
        return makeData({ type: type as Utf8, length: n, ...nullProps, valueOffsets: l.col.offsets.subarray(0, n + 1), data: l.col.bytes.subarray(0, l.col.pos) });
      }
      case 'list': {
        l.col.fillTo(n);
        const child = l.col.child;
        const items = l.col.items;
        child.fillTo(items);
        const childType = (type as List).children[0]!.type as Utf8;
        const childData = makeData({ type: childType, length: items, nullCount: 0, valueOffsets: child.offsets.subarray(0, items + 1), data: child.bytes.subarray(0, child.pos) });
        return makeData({ type: type as List<Utf8>, length: n, ...nullProps, valueOffsets: l.col.offsets.subarray(0, n + 1), child: childData });
      }
    }
  }
}
