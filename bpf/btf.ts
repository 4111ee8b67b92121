/**
 * BTF (BPF Type Format) reader in plain TypeScript: no native code, so it also works on a laptop
 * that only analyzes captures. Used for
 * - names of the running kernel's enums (skb_drop_reason changes between kernels: resolve at capture);
 * - struct member offsets and types (meta filter: `sk_buff.dev.nd_net.net.ns.inum`);
 * - whether a function (fentry/kprobe target) or a BTF tracepoint (`btf_trace_<name>`) exists;
 * - the record structs of our own BPF objects (layout cross-check, see layout.ts).
 *
 * Format: https://docs.kernel.org/bpf/btf.html. Parsing /sys/kernel/btf/vmlinux (~5.5 MB, ~150k
 * types) takes a few tens of ms: types are indexed by offset once, decoded lazily, names indexed on
 * first lookup.
 */
import { readFileSync, readdirSync } from 'node:fs';

//// TYPES ////

export type BtfKind =
  | 'void' | 'int' | 'ptr' | 'array' | 'struct' | 'union' | 'enum' | 'fwd' | 'typedef' | 'volatile'
  | 'const' | 'restrict' | 'func' | 'func_proto' | 'var' | 'datasec' | 'float' | 'decl_tag'
  | 'type_tag' | 'enum64';

const KINDS: readonly BtfKind[] = [
  'void', 'int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef', 'volatile', 'const',
  'restrict', 'func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64',
];

export interface BtfMember { name: string; type: number; bitOffset: number; bitfieldSize: number }
export interface BtfEnumMember { name: string; value: bigint }
export interface BtfParam { name: string; type: number }

interface Base { id: number; name: string }
export type BtfType =
  | (Base & { kind: 'void' })
  | (Base & { kind: 'int'; size: number; bits: number; bitOffset: number; signed: boolean; char: boolean; bool: boolean })
  | (Base & { kind: 'ptr' | 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag'; type: number })
  | (Base & { kind: 'array'; elemType: number; indexType: number; nelems: number })
  | (Base & { kind: 'struct' | 'union'; size: number; members: BtfMember[] })
  | (Base & { kind: 'enum' | 'enum64'; size: number; signed: boolean; values: BtfEnumMember[] })
  | (Base & { kind: 'fwd'; union: boolean })
  | (Base & { kind: 'func'; type: number; linkage: number })
  | (Base & { kind: 'func_proto'; returnType: number; params: BtfParam[] })
  | (Base & { kind: 'var'; type: number; linkage: number })
  | (Base & { kind: 'datasec'; size: number; vars: { type: number; offset: number; size: number }[] })
  | (Base & { kind: 'float'; size: number })
  | (Base & { kind: 'decl_tag'; type: number; componentIdx: number });

// Intersection (not Extract): variants sharing a shape list several kinds ('struct' | 'union').
export type BtfTypeOf<K extends BtfKind> = BtfType & { kind: K };

/** Result of {@link Btf.memberPath}: how to reach a (possibly nested, through pointers) member. */
export interface MemberAccess {
  /** Dotted path as given, e.g. `sk_buff.dev.nd_net.net.ns.inum`. */
  readonly path: string;
  /**
   * Byte offsets to walk from the root object: add `offsets[0]`; for every following entry, read the
   * pointer stored there and add the next offset. `offsets.length - 1` dereferences in total.
   */
  readonly offsets: readonly number[];
  /** Final member bit offset inside its byte (non-zero only for bitfields) and bitfield width (0 if none). */
  readonly bitOffset: number;
  readonly bitfieldSize: number;
  /** Final member type id (modifiers and typedefs stripped), its kind, C spelling and byte size. */
  readonly typeId: number;
  readonly kind: BtfKind;
  readonly typeName: string;
  readonly size: number;
  readonly signed: boolean;
}

//// PARSER ////

const BTF_MAGIC = 0xeb9f;

/** 32-bit FNV-1a of some bytes (BTF name index). */
function fnv1a(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

export class BtfError extends Error {
  override name = 'BtfError';
}

export class Btf {
  /** First type id of this BTF (1 for vmlinux, base count for split/module BTF). */
  readonly firstId: number;
  readonly base: Btf | undefined;
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  private readonly typesStart: number;
  private readonly strStart: number;
  private readonly strLen: number;
  private readonly strBase: number;
  private readonly offsets: Uint32Array;
  private readonly kinds: Uint8Array;
  private readonly cache = new Map<number, BtfType>();
  private nameHashes: Map<number, number | number[]> | undefined;
  private static readonly decoder = new TextDecoder();

  private constructor(bytes: Uint8Array, base: Btf | undefined) {
    this.base = base;
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.byteLength < 24) throw new BtfError('BTF blob too short');
    const magic = this.view.getUint16(0, true);
    if (magic !== BTF_MAGIC) {
      throw new BtfError(magic === 0x9feb ? 'big-endian BTF is not supported' : `bad BTF magic 0x${magic.toString(16)}`);
    }
    const hdrLen = this.view.getUint32(4, true);
    const typeOff = this.view.getUint32(8, true);
    const typeLen = this.view.getUint32(12, true);
    const strOff = this.view.getUint32(16, true);
    this.strLen = this.view.getUint32(20, true);
    this.typesStart = hdrLen + typeOff;
    this.strStart = hdrLen + strOff;
    if (this.typesStart + typeLen > bytes.byteLength || this.strStart + this.strLen > bytes.byteLength) {
      throw new BtfError('BTF header sections exceed the blob (truncated file?)');
    }
    this.firstId = base ? base.typeCount : 1;
    this.strBase = base ? base.strBase + base.strLen : 0;
    // One pass to find where each type record starts; everything else is decoded on demand.
    const offs: number[] = [];
    const kinds: number[] = [];
    let p = this.typesStart;
    const end = this.typesStart + typeLen;
    while (p < end) {
      const info = this.view.getUint32(p + 4, true);
      const kind = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      offs.push(p);
      kinds.push(kind);
      p += 12;
      switch (kind) {
        case 1: case 14: case 17: p += 4; break; // int, var, decl_tag
        case 3: p += 12; break; // array
        case 4: case 5: p += 12 * vlen; break; // struct, union
        case 6: p += 8 * vlen; break; // enum
        case 13: p += 8 * vlen; break; // func_proto
        case 15: p += 12 * vlen; break; // datasec
        case 19: p += 12 * vlen; break; // enum64
        case 2: case 7: case 8: case 9: case 10: case 11: case 12: case 16: case 18: break;
        default: throw new BtfError(`unknown BTF kind ${kind} at offset ${p - 12} (BTF newer than this reader?)`);
      }
    }
    this.offsets = Uint32Array.from(offs);
    this.kinds = Uint8Array.from(kinds);
  }

  /** Parse a BTF blob. Pass `base` for split BTF (kernel module BTF is split on vmlinux). */
  static parse(bytes: Uint8Array, base?: Btf): Btf {
    return new Btf(bytes, base);
  }

  private static vmlinuxCache = new Map<string, Btf>();

  /** The running kernel's BTF (cached per path). Throws BtfError with a fix when it is missing. */
  static vmlinux(path = '/sys/kernel/btf/vmlinux'): Btf {
    let btf = Btf.vmlinuxCache.get(path);
    if (!btf) {
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new BtfError(
          code === 'ENOENT'
            ? `${path} not found: this kernel was built without BTF (CONFIG_DEBUG_INFO_BTF=y is required for CO-RE capture)`
            : `cannot read ${path}: ${code ?? String(e)}`,
        );
      }
      btf = new Btf(bytes, undefined);
      Btf.vmlinuxCache.set(path, btf);
    }
    return btf;
  }

  /** BTF of a loaded kernel module (split on vmlinux), or undefined if the module has none. */
  static module(name: string, dir = '/sys/kernel/btf'): Btf | undefined {
    try {
      return new Btf(readFileSync(`${dir}/${name}`), Btf.vmlinux(`${dir}/vmlinux`));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Names of the modules exposing BTF under /sys/kernel/btf. */
  static moduleNames(dir = '/sys/kernel/btf'): string[] {
    try {
      return readdirSync(dir).filter((n) => n !== 'vmlinux');
    } catch {
      return [];
    }
  }

  /** Total type count including the base (ids are `0 .. typeCount-1`, 0 is void). */
  get typeCount(): number {
    return this.firstId + this.offsets.length;
  }

  //// lookups ////

  private str(off: number): string {
    if (off < this.strBase) {
      if (!this.base) throw new BtfError(`string offset ${off} below this BTF`);
      return this.base.str(off);
    }
    const start = this.strStart + off - this.strBase;
    let end = start;
    const b = this.bytes;
    while (end < this.strStart + this.strLen && b[end] !== 0) end++;
    return Btf.decoder.decode(b.subarray(start, end));
  }

  /** The type with this id (0 = void). */
  type(id: number): BtfType {
    if (id === 0) return { id: 0, name: '', kind: 'void' };
    if (id < this.firstId) {
      if (!this.base) throw new BtfError(`type id ${id} out of range`);
      return this.base.type(id);
    }
    const cached = this.cache.get(id);
    if (cached) return cached;
    const idx = id - this.firstId;
    if (idx >= this.offsets.length) throw new BtfError(`type id ${id} out of range (${this.typeCount} types)`);
    const t = this.decode(id, this.offsets[idx]!);
    this.cache.set(id, t);
    return t;
  }

  private decode(id: number, p: number): BtfType {
    const v = this.view;
    const name = this.str(v.getUint32(p, true));
    const info = v.getUint32(p + 4, true);
    const kind = KINDS[(info >>> 24) & 0x1f]!;
    const vlen = info & 0xffff;
    const kflag = info >>> 31 === 1;
    const sizeOrType = v.getUint32(p + 8, true);
    const q = p + 12;
    switch (kind) {
      case 'int': {
        const enc = v.getUint32(q, true);
        const e = (enc >>> 24) & 0x0f;
        return { id, name, kind, size: sizeOrType, bits: enc & 0xff, bitOffset: (enc >>> 16) & 0xff, signed: (e & 1) !== 0, char: (e & 2) !== 0, bool: (e & 4) !== 0 };
      }
      case 'ptr': case 'typedef': case 'volatile': case 'const': case 'restrict': case 'type_tag':
        return { id, name, kind, type: sizeOrType };
      case 'array':
        return { id, name, kind, elemType: v.getUint32(q, true), indexType: v.getUint32(q + 4, true), nelems: v.getUint32(q + 8, true) };
      case 'struct': case 'union': {
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++) {
          const m = q + 12 * i;
          const off = v.getUint32(m + 8, true);
          members.push({
            name: this.str(v.getUint32(m, true)),
            type: v.getUint32(m + 4, true),
            bitOffset: kflag ? off & 0xffffff : off,
            bitfieldSize: kflag ? off >>> 24 : 0,
          });
        }
        return { id, name, kind, size: sizeOrType, members };
      }
      case 'enum': {
        const values: BtfEnumMember[] = [];
        for (let i = 0; i < vlen; i++) {
          const m = q + 8 * i;
          const raw = kflag ? v.getInt32(m + 4, true) : v.getUint32(m + 4, true);
          values.push({ name: this.str(v.getUint32(m, true)), value: BigInt(raw) });
        }
        return { id, name, kind, size: sizeOrType, signed: kflag, values };
      }
      case 'enum64': {
        const values: BtfEnumMember[] = [];
        for (let i = 0; i < vlen; i++) {
          const m = q + 12 * i;
          const u = (BigInt(v.getUint32(m + 8, true)) << 32n) | BigInt(v.getUint32(m + 4, true));
          values.push({ name: this.str(v.getUint32(m, true)), value: kflag ? BigInt.asIntN(64, u) : u });
        }
        return { id, name, kind, size: sizeOrType, signed: kflag, values };
      }
      case 'fwd':
        return { id, name, kind, union: kflag };
      case 'func':
        return { id, name, kind, type: sizeOrType, linkage: vlen };
      case 'func_proto': {
        const params: BtfParam[] = [];
        for (let i = 0; i < vlen; i++) params.push({ name: this.str(v.getUint32(q + 8 * i, true)), type: v.getUint32(q + 8 * i + 4, true) });
        return { id, name, kind, returnType: sizeOrType, params };
      }
      case 'var':
        return { id, name, kind, type: sizeOrType, linkage: v.getUint32(q, true) };
      case 'datasec': {
        const vars = [];
        for (let i = 0; i < vlen; i++) {
          const m = q + 12 * i;
          vars.push({ type: v.getUint32(m, true), offset: v.getUint32(m + 4, true), size: v.getUint32(m + 8, true) });
        }
        return { id, name, kind, size: sizeOrType, vars };
      }
      case 'float':
        return { id, name, kind, size: sizeOrType };
      case 'decl_tag':
        return { id, name, kind, type: sizeOrType, componentIdx: v.getInt32(q, true) };
      case 'void':
        return { id, name, kind };
    }
  }

  /** Bytes of the NUL-terminated string at `off` (this BTF's numbering, base strings included). */
  private strBytes(off: number): Uint8Array {
    if (off < this.strBase) return this.base!.strBytes(off);
    const start = this.strStart + off - this.strBase;
    const end = this.bytes.indexOf(0, start);
    return this.bytes.subarray(start, end < 0 || end > this.strStart + this.strLen ? this.strStart + this.strLen : end);
  }

  /**
   * Type ids by a hash of their name's bytes: built with integer work only (FNV-1a over the
   * bytes), where a Map of decoded names cost ~150 ms and as much garbage at every start.
   */
  private hashIndex(): Map<number, number | number[]> {
    if (!this.nameHashes) {
      const idx = new Map<number, number | number[]>();
      const v = this.view;
      for (let i = 0; i < this.offsets.length; i++) {
        const nameOff = v.getUint32(this.offsets[i]!, true);
        if (nameOff === 0) continue;
        const h = fnv1a(this.strBytes(nameOff));
        const id = this.firstId + i;
        const cur = idx.get(h);
        if (cur === undefined) idx.set(h, id);
        else if (typeof cur === 'number') idx.set(h, [cur, id]);
        else cur.push(id);
      }
      this.nameHashes = idx;
    }
    return this.nameHashes;
  }

  /** Ids of the types with this name (optionally of one kind), this BTF first then its base. */
  find(name: string, kind?: BtfKind): number[] {
    const own: number[] = [];
    if (name !== '') {
      const want = Buffer.from(name, 'utf8');
      const ids = this.hashIndex().get(fnv1a(want));
      for (const id of typeof ids === 'number' ? [ids] : (ids ?? [])) {
        if (kind !== undefined && KINDS[this.kinds[id - this.firstId]!] !== kind) continue;
        if (want.equals(this.strBytes(this.view.getUint32(this.offsets[id - this.firstId]!, true)))) own.push(id);
      }
    }
    return this.base ? [...own, ...this.base.find(name, kind)] : own;
  }

  /** The first type of that name and kind, or undefined. */
  findType<K extends BtfKind>(name: string, kind: K): BtfTypeOf<K> | undefined {
    const [id] = this.find(name, kind);
    return id === undefined ? undefined : (this.type(id) as BtfTypeOf<K>);
  }

  /** Strip typedef/const/volatile/restrict/type_tag. */
  resolve(id: number): BtfType {
    let t = this.type(id);
    for (let hops = 0; hops < 64; hops++) {
      if (t.kind === 'typedef' || t.kind === 'const' || t.kind === 'volatile' || t.kind === 'restrict' || t.kind === 'type_tag') {
        t = this.type(t.type);
      } else return t;
    }
    throw new BtfError(`type ${id}: modifier chain too long (cyclic BTF?)`);
  }

  /** Byte size of a type (pointers are 8 on the 64-bit kernels we support). */
  sizeof(id: number): number {
    const t = this.resolve(id);
    switch (t.kind) {
      case 'int': case 'struct': case 'union': case 'enum': case 'enum64': case 'float': case 'datasec': return t.size;
      case 'ptr': return 8;
      case 'array': return t.nelems * this.sizeof(t.elemType);
      default: return 0;
    }
  }

  /** C spelling of a type, for messages (`struct sk_buff *`, `unsigned int`, `char[16]`). */
  typeName(id: number): string {
    const t = this.type(id);
    switch (t.kind) {
      case 'void': return 'void';
      case 'int': case 'float': case 'typedef': return t.name;
      case 'struct': case 'union': case 'enum': return `${t.kind} ${t.name || '(anon)'}`;
      case 'enum64': return `enum ${t.name || '(anon)'}`;
      case 'fwd': return `${t.union ? 'union' : 'struct'} ${t.name}`;
      case 'ptr': return `${this.typeName(t.type)} *`;
      case 'const': case 'volatile': case 'restrict': return `${t.kind} ${this.typeName(t.type)}`;
      case 'type_tag': return this.typeName(t.type);
      case 'array': return `${this.typeName(t.elemType)}[${t.nelems}]`;
      case 'func_proto': return `${this.typeName(t.returnType)} (*)(${t.params.map((p) => this.typeName(p.type)).join(', ')})`;
      default: return `${t.kind} ${t.name}`;
    }
  }

  //// kernel helpers ////

  /**
   * Members of an enum as name -> value (numbers; enum values beyond 2^53 throw). Searches enum and
   * enum64 kinds, since newer kernels may emit either.
   */
  enumValues(name: string): Map<string, number> {
    const t = this.findType(name, 'enum') ?? this.findType(name, 'enum64');
    if (!t) throw new BtfError(`enum ${name} not found in BTF`);
    const out = new Map<string, number>();
    for (const m of t.values) {
      if (m.value > BigInt(Number.MAX_SAFE_INTEGER) || m.value < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new BtfError(`enum ${name}: ${m.name} does not fit a JS number`);
      }
      out.set(m.name, Number(m.value));
    }
    return out;
  }

  /**
   * Drop reason names of the running kernel: value -> short name (`NETFILTER_DROP`), as Retis and
   * perf print them. The enum is not UAPI and moves between kernels, so resolve it at capture time.
   */
  dropReasons(): Map<number, string> {
    const out = new Map<number, string>();
    for (const [k, v] of this.enumValues('skb_drop_reason')) {
      if (k === 'SKB_DROP_REASON_MAX' || k === 'SKB_DROP_REASON_SUBSYS_MASK') continue;
      if (!out.has(v)) out.set(v, k.replace(/^SKB_DROP_REASON_/, ''));
    }
    return out;
  }

  /** Whether a kernel function has BTF (a necessary condition for fentry/fexit). */
  hasFunction(name: string): boolean {
    return this.find(name, 'func').length > 0;
  }

  /** Parameters of a kernel function (BTF FUNC -> FUNC_PROTO). */
  functionParams(name: string): BtfParam[] | undefined {
    const f = this.findType(name, 'func');
    if (!f) return undefined;
    const proto = this.type(f.type);
    return proto.kind === 'func_proto' ? proto.params : undefined;
  }

  /** Whether a tracepoint can be attached with tp_btf/raw_tp (`btf_trace_<name>` typedef exists). */
  hasTracepoint(name: string): boolean {
    return this.find(`btf_trace_${name}`, 'typedef').length > 0;
  }

  /** Typed tracepoint arguments (the hidden leading `void *__data` is dropped). */
  tracepointArgs(name: string): { name: string; type: number; typeName: string }[] | undefined {
    const td = this.findType(`btf_trace_${name}`, 'typedef');
    if (!td) return undefined;
    const ptr = this.resolve(td.type);
    if (ptr.kind !== 'ptr') return undefined;
    const proto = this.resolve(ptr.type);
    if (proto.kind !== 'func_proto') return undefined;
    return proto.params.slice(1).map((p) => ({ name: p.name, type: p.type, typeName: this.typeName(p.type) }));
  }

  /** All tracepoint names known to BTF (`btf_trace_*`), without their group. */
  tracepointNames(): string[] {
    const out: string[] = [];
    const prefix = Buffer.from('btf_trace_', 'utf8');
    const v = this.view;
    for (let i = 0; i < this.offsets.length; i++) {
      const nameOff = v.getUint32(this.offsets[i]!, true);
      if (nameOff === 0) continue;
      const b = this.strBytes(nameOff);
      if (b.length > prefix.length && prefix.equals(b.subarray(0, prefix.length))) out.push(this.str(nameOff).slice(10));
    }
    return this.base ? [...out, ...this.base.tracepointNames()] : out;
  }

  /** Direct (and anonymous-nested) member lookup: returns the member with its absolute bit offset. */
  member(structId: number, name: string): { member: BtfMember; bitOffset: number } | undefined {
    const t = this.resolve(structId);
    if (t.kind !== 'struct' && t.kind !== 'union') return undefined;
    for (const m of t.members) {
      if (m.name === name) return { member: m, bitOffset: m.bitOffset };
      if (m.name === '') {
        // Anonymous struct/union: its members are accessed as if they were ours (C11 semantics).
        const inner = this.member(m.type, name);
        if (inner) return { member: inner.member, bitOffset: m.bitOffset + inner.bitOffset };
      }
    }
    return undefined;
  }

  /**
   * Resolve `struct.member.member...` (e.g. `sk_buff.dev.nd_net.net.ns.inum`), following pointers.
   * The first component names a struct (or union); each following one a member, searched through
   * anonymous members. Throws BtfError naming the component that does not exist and what does.
   */
  memberPath(path: string): MemberAccess {
    const parts = path.split('.');
    const root = parts.shift();
    if (!root || parts.length === 0) throw new BtfError(`'${path}': expected STRUCT.MEMBER[.MEMBER...]`);
    const rootIds = [...this.find(root, 'struct'), ...this.find(root, 'union')];
    if (rootIds.length === 0) throw new BtfError(`'${path}': no struct or union named '${root}' in BTF`);
    let cur = this.resolve(rootIds[0]!);
    const offsets: number[] = [0];
    let where = root;
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i]!;
      if (cur.kind === 'ptr') {
        // Walking through a pointer: the next offsets are relative to the pointee.
        cur = this.resolve(cur.type);
        offsets.push(0);
      }
      if (cur.kind !== 'struct' && cur.kind !== 'union') {
        throw new BtfError(`'${path}': '${where}' is ${this.typeName(cur.id)}, not a struct, so it has no member '${name}'`);
      }
      const found = this.member(cur.id, name);
      if (!found) {
        const names = this.memberNames(cur.id);
        throw new BtfError(`'${path}': ${this.typeName(cur.id)} has no member '${name}' (members: ${names.slice(0, 40).join(', ')}${names.length > 40 ? ', ...' : ''})`);
      }
      const { member, bitOffset } = found;
      const last = i === parts.length - 1;
      if (member.bitfieldSize > 0 && !last) throw new BtfError(`'${path}': bitfield '${name}' has no members`);
      const byte = member.bitfieldSize > 0 ? Math.floor(bitOffset / 8) : bitOffset / 8;
      offsets[offsets.length - 1]! += byte;
      where = `${where}.${name}`;
      cur = this.resolve(member.type);
      if (last) {
        const signed = (cur.kind === 'int' && cur.signed) || ((cur.kind === 'enum' || cur.kind === 'enum64') && cur.signed);
        return {
          path,
          offsets,
          bitOffset: member.bitfieldSize > 0 ? bitOffset % 8 : 0,
          bitfieldSize: member.bitfieldSize,
          typeId: cur.id,
          kind: cur.kind,
          typeName: this.typeName(member.type),
          size: this.sizeof(cur.id),
          signed,
        };
      }
    }
    throw new BtfError(`'${path}': empty member path`);
  }

  /** Member names of a struct/union, anonymous members flattened. */
  memberNames(structId: number): string[] {
    const t = this.resolve(structId);
    if (t.kind !== 'struct' && t.kind !== 'union') return [];
    return t.members.flatMap((m) => (m.name === '' ? this.memberNames(m.type) : [m.name]));
  }
}

/** Convenience: drop reason names of the running kernel (value -> name). */
export function dropReasonNames(btf: Btf = Btf.vmlinux()): Map<number, string> {
  return btf.dropReasons();
}
