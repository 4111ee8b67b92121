/**
 * Record layouts: the one definition of every record the BPF side writes into a ring buffer.
 *
 * A layout is declared once in TypeScript (`*.layout.ts` files, see bpf/README.md). From it:
 * - `bpf/build.mjs` generates the C header the BPF programs include (`build/include/<name>.layout.h`),
 *   with explicit padding and `_Static_assert`s on every offset and on the size, so the C compiler
 *   refuses to build a program whose struct drifted from this definition;
 * - the TS decoder below reads records with the same offsets;
 * - {@link verifyLayoutAgainstBtf} (used by `BpfObject`) checks, at open time, that the object file
 *   was built from this very definition (catches a stale `build/`).
 *
 * Only fixed-size little-endian scalars and arrays of them are supported: ring-buffer records are
 * flat on purpose (no pointers, no unions), which keeps the decoder a handful of DataView reads.
 */

//// TYPES ////

export type ScalarType = 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64';

/** A field: a scalar, a fixed array of scalars, or a NUL-padded char array decoded as a string. */
export type FieldType =
  | ScalarType
  | { readonly type: ScalarType; readonly doc?: string }
  | { readonly type: ScalarType; readonly length: number; readonly doc?: string }
  | { readonly type: 'char'; readonly length: number; readonly doc?: string };

export type FieldSpec = { readonly [name: string]: FieldType };

type BigScalar = 'u64' | 's64';

/** The JS value a field decodes to: 64-bit integers are bigint, narrower ones number. */
export type FieldValue<T extends FieldType> = T extends BigScalar
  ? bigint
  : T extends ScalarType
    ? number
    : T extends { type: 'char' }
      ? string
      : T extends { type: 'u8'; length: number }
        ? Uint8Array
        : T extends { type: BigScalar; length: number }
          ? bigint[]
          : T extends { type: ScalarType; length: number }
            ? number[]
            : T extends { type: BigScalar }
              ? bigint
              : number;

export type Decoded<F extends FieldSpec> = { -readonly [K in keyof F]: FieldValue<F[K]> };

export interface FieldInfo {
  readonly name: string;
  /** Element type (`char` for strings). */
  readonly type: ScalarType | 'char';
  /** Array length, or undefined for a scalar. */
  readonly length: number | undefined;
  readonly offset: number;
  readonly size: number;
  readonly align: number;
  readonly doc: string | undefined;
}

export type FieldReader<T> = (view: DataView, base: number) => T;

const LAYOUT_BRAND: unique symbol = Symbol.for('retis.bpf.layout');
const ENUM_BRAND: unique symbol = Symbol.for('retis.bpf.enum');

export interface Layout<F extends FieldSpec = FieldSpec> {
  readonly [LAYOUT_BRAND]: true;
  /** C struct name (without `struct`). */
  readonly name: string;
  readonly doc: string | undefined;
  readonly fields: readonly FieldInfo[];
  /** sizeof(struct): last field end rounded up to the struct alignment. */
  readonly size: number;
  readonly align: number;
  readonly offsets: { readonly [K in keyof F]: number };
  /** Decode one record starting at `base` (byte offset into `view`). Byte arrays are copies. */
  decode(view: DataView, base?: number): Decoded<F>;
  /** A reader for one field: the hot-path way to decode a column without building objects. */
  reader<K extends keyof F & string>(field: K): FieldReader<FieldValue<F[K]>>;
}

export interface EnumDef<V extends { readonly [name: string]: number } = { readonly [name: string]: number }> {
  readonly [ENUM_BRAND]: true;
  /** C enum name; members are emitted as `<NAME>_<MEMBER>` in upper case. */
  readonly name: string;
  readonly values: V;
  /** Reverse lookup: numeric value to member name. */
  nameOf(value: number): string | undefined;
}

//// DEFINITION ////

const SCALAR_SIZE: Record<ScalarType, number> = { u8: 1, s8: 1, u16: 2, s16: 2, u32: 4, s32: 4, u64: 8, s64: 8 };
const C_IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function normalize(name: string, t: FieldType): { type: ScalarType | 'char'; length: number | undefined; doc: string | undefined } {
  if (typeof t === 'string') return { type: t, length: undefined, doc: undefined };
  const length = 'length' in t ? t.length : undefined;
  if (length !== undefined && (!Number.isInteger(length) || length <= 0)) {
    throw new Error(`layout field '${name}': array length must be a positive integer, got ${length}`);
  }
  if (t.type === 'char' && length === undefined) throw new Error(`layout field '${name}': char needs a length`);
  if (t.type !== 'char' && !(t.type in SCALAR_SIZE)) throw new Error(`layout field '${name}': unknown type '${String(t.type)}'`);
  return { type: t.type, length, doc: t.doc };
}

function scalarReader(type: ScalarType, off: number): FieldReader<number | bigint> {
  switch (type) {
    case 'u8': return (v, b) => v.getUint8(b + off);
    case 's8': return (v, b) => v.getInt8(b + off);
    case 'u16': return (v, b) => v.getUint16(b + off, true);
    case 's16': return (v, b) => v.getInt16(b + off, true);
    case 'u32': return (v, b) => v.getUint32(b + off, true);
    case 's32': return (v, b) => v.getInt32(b + off, true);
    case 'u64': return (v, b) => v.getBigUint64(b + off, true);
    case 's64': return (v, b) => v.getBigInt64(b + off, true);
  }
}

const utf8 = new TextDecoder('utf-8');

function fieldReader(f: FieldInfo): FieldReader<unknown> {
  const off = f.offset;
  if (f.type === 'char') {
    const len = f.size;
    return (v, b) => {
      const bytes = new Uint8Array(v.buffer, v.byteOffset + b + off, len);
      const nul = bytes.indexOf(0);
      return utf8.decode(nul < 0 ? bytes : bytes.subarray(0, nul));
    };
  }
  if (f.length === undefined) return scalarReader(f.type, off);
  if (f.type === 'u8') {
    const len = f.length;
    // A copy: ring batches are recycled after their callback, a view would not survive it.
    return (v, b) => new Uint8Array(v.buffer, v.byteOffset + b + off, len).slice();
  }
  const elem = SCALAR_SIZE[f.type];
  const readers = Array.from({ length: f.length }, (_, i) => scalarReader(f.type as ScalarType, off + i * elem));
  return (v, b) => readers.map((r) => r(v, b));
}

/**
 * Declare a record layout. Fields are laid out in declaration order with C natural alignment;
 * the generated header makes every gap an explicit `__pad` member, so C and TS agree byte for byte.
 *
 * @example
 * export const dropEvent = defineLayout('retis_drop_event', {
 *   ts: 'u64', skb: 'u64', reason: 'u32', ifindex: 'u32', comm: { type: 'char', length: 16 },
 * });
 */
export function defineLayout<const F extends FieldSpec>(name: string, spec: F, doc?: string): Layout<F> {
  if (!C_IDENT.test(name)) throw new Error(`layout name '${name}' is not a C identifier`);
  const fields: FieldInfo[] = [];
  let off = 0;
  let align = 1;
  for (const [fname, ftype] of Object.entries(spec)) {
    if (!C_IDENT.test(fname) || fname.startsWith('__pad')) throw new Error(`layout '${name}': bad field name '${fname}'`);
    const n = normalize(fname, ftype);
    const elem = n.type === 'char' ? 1 : SCALAR_SIZE[n.type];
    const size = elem * (n.length ?? 1);
    off = Math.ceil(off / elem) * elem;
    fields.push({ name: fname, type: n.type, length: n.length, offset: off, size, align: elem, doc: n.doc });
    off += size;
    align = Math.max(align, elem);
  }
  if (fields.length === 0) throw new Error(`layout '${name}' has no fields`);
  const size = Math.ceil(off / align) * align;
  const offsets = Object.fromEntries(fields.map((f) => [f.name, f.offset])) as { [K in keyof F]: number };
  const readers = new Map(fields.map((f) => [f.name, fieldReader(f)]));
  const entries = [...readers.entries()];
  return {
    [LAYOUT_BRAND]: true,
    name,
    doc,
    fields,
    size,
    align,
    offsets,
    decode(view, base = 0) {
      const out: Record<string, unknown> = {};
      for (const [k, r] of entries) out[k] = r(view, base);
      return out as Decoded<F>;
    },
    reader(field) {
      const r = readers.get(field);
      if (!r) throw new Error(`layout '${name}' has no field '${field}'`);
      return r as FieldReader<never>;
    },
  };
}

/** Declare constants shared by C (an `enum`) and TS (a frozen object + reverse lookup). */
export function defineEnum<const V extends { readonly [name: string]: number }>(name: string, values: V): EnumDef<V> {
  if (!C_IDENT.test(name)) throw new Error(`enum name '${name}' is not a C identifier`);
  const reverse = new Map<number, string>();
  for (const [k, v] of Object.entries(values)) {
    if (!C_IDENT.test(k) || !Number.isInteger(v)) throw new Error(`enum '${name}': bad member ${k}=${v}`);
    reverse.set(v, k);
  }
  return { [ENUM_BRAND]: true, name, values: Object.freeze({ ...values }), nameOf: (v) => reverse.get(v) };
}

export function isLayout(x: unknown): x is Layout {
  return typeof x === 'object' && x !== null && (x as { [LAYOUT_BRAND]?: unknown })[LAYOUT_BRAND] === true;
}

export function isEnumDef(x: unknown): x is EnumDef {
  return typeof x === 'object' && x !== null && (x as { [ENUM_BRAND]?: unknown })[ENUM_BRAND] === true;
}

//// C HEADER GENERATION ////

const C_TYPE: Record<ScalarType | 'char', string> = {
  u8: '__u8', u16: '__u16', u32: '__u32', u64: '__u64', s8: '__s8', s16: '__s16', s32: '__s32', s64: '__s64', char: 'char',
};

function comment(doc: string | undefined, indent = ''): string {
  return doc ? `${indent}/* ${doc.replace(/\*\//g, '* /')} */\n` : '';
}

/** The C declaration of one layout (explicit padding + static asserts). */
export function layoutToC(l: Layout): string {
  let out = comment(l.doc) + `struct ${l.name} {\n`;
  let pos = 0;
  let pad = 0;
  const padTo = (target: number): void => {
    if (target > pos) out += `\t__u8 __pad${pad++}[${target - pos}];\n`;
    pos = target;
  };
  for (const f of l.fields) {
    padTo(f.offset);
    const dims = f.length === undefined ? '' : `[${f.length}]`;
    out += `\t${C_TYPE[f.type]} ${f.name}${dims};${f.doc ? ` /* ${f.doc.replace(/\*\//g, '* /')} */` : ''}\n`;
    pos = f.offset + f.size;
  }
  padTo(l.size);
  out += '};\n';
  out += `_Static_assert(sizeof(struct ${l.name}) == ${l.size}, "layout ${l.name}: size drifted from its .layout.ts");\n`;
  for (const f of l.fields) {
    out += `_Static_assert(__builtin_offsetof(struct ${l.name}, ${f.name}) == ${f.offset}, "layout ${l.name}.${f.name}: offset drifted");\n`;
  }
  return out;
}

export function enumToC(e: EnumDef): string {
  const prefix = e.name.toUpperCase();
  const members = Object.entries(e.values).map(([k, v]) => `\t${prefix}_${k.toUpperCase()} = ${v},`);
  return `enum ${e.name} {\n${members.join('\n')}\n};\n`;
}

/**
 * The whole generated header for one `*.layout.ts` module: every exported layout and enum, in
 * export order. `source` is named in the banner so a reader knows what to edit instead.
 */
export function generateCHeader(moduleExports: Record<string, unknown>, source: string): string {
  const guard = `__RETIS_LAYOUT_${source.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}`;
  const parts: string[] = [];
  for (const v of Object.values(moduleExports)) {
    if (isEnumDef(v)) parts.push(enumToC(v));
    else if (isLayout(v)) parts.push(layoutToC(v));
  }
  return (
    `/* Generated from ${source} by bpf/build.mjs: do not edit, edit the .layout.ts file. */\n` +
    `#ifndef ${guard}\n#define ${guard}\n\n` +
    // BPF programs get __u8.. from vmlinux.h; user-space C (bench consumer) from linux/types.h.
    `#ifndef __VMLINUX_H__\n#include <linux/types.h>\n#endif\n\n` +
    parts.join('\n') +
    `\n#endif /* ${guard} */\n`
  );
}
