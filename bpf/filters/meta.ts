/**
 * -m/--filter-meta: Retis's metadata filter language, resolved over the running kernel's BTF and
 * compiled to eBPF for the meta placeholder (bpf/include/retis/filter.bpf.h).
 *
 * Grammar (Retis's, see the spec §5):
 *   expr    = primary (("and" | "&&" | "or" | "||") primary)*   same precedence, left to right,
 *                                                               short-circuit
 *   primary = term | "(" expr ")"
 *   term    = lhs (op rhs)?                     no op: `!= 0`
 *   op      = == != >= <= > <
 *   lhs     = "sk_buff" ("." ident)+            pointers are followed automatically
 *   ident   = name (":" mask (":" name)?)?      mask: ~? hex|bin|dec; the name casts the masked
 *                                               value to a pointer to that struct
 *   rhs     = number (0x.., 0b.., -?dec) | "string" | 'string'   (strings: == and != only)
 * e.g. `sk_buff.dev.name == "eth0"`, `sk_buff.mark & ...` as `sk_buff.mark:0xff == 1`,
 * `sk_buff._nfct:~0x7:nf_conn.mark == 3`, `sk_buff.pkt_type == 0 || sk_buff.cloned`.
 *
 * Generated code (r1 = scratch buffer, r2 = skb address on entry): r7 = buffer, r9 = skb,
 * r6 = the value being walked, r8 = the expression's result so far. Every kernel read goes through
 * bpf_probe_read_kernel into the buffer's meta area (offsets come from the running kernel's BTF,
 * so no CO-RE is needed); a failed read or a NULL pointer on the way makes the term false.
 */
import { Btf, type BtfType } from '../btf.ts';
import { ALU, Asm, END, HELPER, JOP, SZ, type Label, type Reg } from './ebpf.ts';
import { META_OFF, META_SIZE } from './layout.ts';

//// AST ////

export type CmpOp = '==' | '!=' | '>=' | '<=' | '>' | '<';

export interface MetaField {
  name: string;
  mask?: { value: bigint; invert: boolean };
  cast?: string;
}

export interface MetaTerm {
  kind: 'term';
  /** Text of the left-hand side, for messages. */
  text: string;
  root: string;
  fields: MetaField[];
  op: CmpOp | undefined;
  rhs: { kind: 'num'; value: bigint } | { kind: 'str'; value: string } | undefined;
}

export interface MetaChain {
  kind: 'chain';
  first: MetaExpr;
  rest: { op: 'and' | 'or'; expr: MetaExpr }[];
}

export type MetaExpr = MetaTerm | MetaChain;

export class MetaFilterSyntaxError extends Error {
  override name = 'MetaFilterSyntaxError';
}

/** The filter does not fit the running kernel (unknown struct/member, wrong type). */
export class MetaFilterResolveError extends Error {
  override name = 'MetaFilterResolveError';
}

//// LEXER + PARSER ////

type Tok =
  | { t: 'id'; v: string; pos: number }
  | { t: 'num'; v: bigint; text: string; pos: number }
  | { t: 'str'; v: string; pos: number }
  | { t: 'op'; v: string; pos: number };

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const fail = (msg: string, at = i): never => {
    throw new MetaFilterSyntaxError(`invalid meta filter '${src}': ${msg} at column ${at + 1}`);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const rest = src.slice(i);
    let m: RegExpExecArray | null;
    if ((m = /^(==|!=|>=|<=|&&|\|\||[<>().:~])/.exec(rest))) {
      out.push({ t: 'op', v: m[1]!, pos: i });
      i += m[1]!.length;
    } else if ((m = /^(-?0[xX][0-9a-fA-F]+|-?0[bB][01]+|-?[0-9]+)(?![A-Za-z_0-9])/.exec(rest))) {
      const text = m[1]!;
      const neg = text.startsWith('-');
      const body = neg ? text.slice(1) : text;
      const v = BigInt(/^0[bB]/.test(body) ? `0b${body.slice(2)}` : body);
      out.push({ t: 'num', v: neg ? -v : v, text, pos: i });
      i += text.length;
    } else if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest))) {
      out.push({ t: 'id', v: m[0], pos: i });
      i += m[0].length;
    } else if (c === '"' || c === "'") {
      const end = src.indexOf(c, i + 1);
      if (end < 0) fail(`unterminated string`);
      out.push({ t: 'str', v: src.slice(i + 1, end), pos: i });
      i = end + 1;
    } else {
      fail(`unexpected '${c}'`);
    }
  }
  return out;
}

export function parseMetaFilter(src: string): MetaExpr {
  const toks = lex(src);
  let p = 0;
  const fail = (msg: string): never => {
    const at = toks[p]?.pos ?? src.length;
    throw new MetaFilterSyntaxError(`invalid meta filter '${src}': ${msg} at column ${at + 1}`);
  };
  const peek = (): Tok | undefined => toks[p];
  const isOp = (v: string): boolean => {
    const t = peek();
    return t !== undefined && t.t === 'op' && t.v === v;
  };
  const logical = (): 'and' | 'or' | undefined => {
    const t = peek();
    if (!t) return undefined;
    if (t.t === 'op' && t.v === '&&') return 'and';
    if (t.t === 'op' && t.v === '||') return 'or';
    if (t.t === 'id' && (t.v === 'and' || t.v === 'or')) return t.v;
    return undefined;
  };

  const term = (): MetaTerm => {
    const start = peek();
    if (!start || start.t !== 'id') return fail(start ? 'expected a field such as sk_buff.mark' : 'expected a field such as sk_buff.mark, found the end');
    p++;
    const fields: MetaField[] = [];
    while (isOp('.')) {
      p++;
      const id = peek();
      if (!id || id.t !== 'id') return fail('expected a member name after "."');
      p++;
      const f: MetaField = { name: id.v };
      if (isOp(':')) {
        p++;
        let invert = false;
        if (isOp('~')) {
          invert = true;
          p++;
        }
        const n = peek();
        if (!n || n.t !== 'num' || n.v < 0n) return fail('expected a mask (hex, binary or decimal number) after ":"');
        p++;
        f.mask = { value: n.v, invert };
        if (isOp(':')) {
          p++;
          const c = peek();
          if (!c || c.t !== 'id') return fail('expected a type name to cast to after the mask');
          p++;
          f.cast = c.v;
        }
      }
      fields.push(f);
    }
    if (fields.length === 0) return fail(`expected "." and a member after '${start.v}'`);
    const endPos = peek()?.pos ?? src.length;
    const text = src.slice(start.pos, endPos).trim();
    let op: CmpOp | undefined;
    let rhs: MetaTerm['rhs'];
    const t = peek();
    if (t && t.t === 'op' && ['==', '!=', '>=', '<=', '>', '<'].includes(t.v)) {
      op = t.v as CmpOp;
      p++;
      const r = peek();
      if (!r) return fail(`expected a number or a string after '${op}'`);
      if (r.t === 'num') rhs = { kind: 'num', value: r.v };
      else if (r.t === 'str') {
        if (op !== '==' && op !== '!=') return fail(`strings can only be compared with == or !=, not ${op}`);
        rhs = { kind: 'str', value: r.v };
      } else return fail(`expected a number or a string after '${op}'`);
      p++;
    }
    return { kind: 'term', text, root: start.v, fields, op, rhs };
  };

  const primary = (): MetaExpr => {
    if (isOp('(')) {
      p++;
      const e = expr();
      if (!isOp(')')) return fail('expected ")"');
      p++;
      return e;
    }
    return term();
  };

  const expr = (): MetaExpr => {
    const first = primary();
    const rest: MetaChain['rest'] = [];
    for (let op = logical(); op; op = logical()) {
      p++;
      rest.push({ op, expr: primary() });
    }
    return rest.length ? { kind: 'chain', first, rest } : first;
  };

  if (toks.length === 0) fail('empty filter');
  const e = expr();
  if (p < toks.length) fail(`unexpected '${tokText(toks[p]!)}'`);
  return e;
}

function tokText(t: Tok): string {
  return t.t === 'num' ? t.text : t.t === 'str' ? JSON.stringify(t.v) : t.v;
}

//// RESOLUTION HELPERS ////

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

function didYouMean(name: string, candidates: readonly string[]): string {
  const close = candidates
    .map((c) => ({ c, d: editDistance(name, c) }))
    .filter((x) => x.d <= Math.max(2, Math.floor(name.length / 3)) || (name.length >= 3 && x.c.includes(name)))
    .sort((x, y) => x.d - y.d)
    .slice(0, 3)
    .map((x) => x.c);
  return close.length ? ` (did you mean ${close.join(', ')}?)` : '';
}

/** A struct/union by name in vmlinux, else in a loaded module's BTF (casts to e.g. nf_conn). */
function findStruct(btf: Btf, name: string, moduleBtf: () => Btf[]): { btf: Btf; id: number } | undefined {
  const bare = name.replace(/^(struct|union)\s+/, '');
  for (const b of [btf, ...moduleBtf()]) {
    const id = [...b.find(bare, 'struct'), ...b.find(bare, 'union')].find((i) => {
      const t = b.type(i);
      return (t.kind === 'struct' || t.kind === 'union') && t.size > 0;
    });
    if (id !== undefined) return { btf: b, id };
  }
  return undefined;
}

//// CODE GENERATION ////

const BUF: Reg = 7;
const SKB: Reg = 9;
const VAL: Reg = 6;
const RES: Reg = 8;

export interface MetaCompileOptions {
  /** BTF of loaded modules, for casts to their types (default: /sys/kernel/btf/*). */
  moduleBtf?: () => Btf[];
}

export function compileMetaFilter(e: MetaExpr, btf: Btf, o: MetaCompileOptions = {}): Uint8Array {
  return compileMetaFilterAsm(e, btf, o).assemble();
}

export function compileMetaFilterAsm(e: MetaExpr, btf: Btf, o: MetaCompileOptions = {}): Asm {
  let modules: Btf[] | undefined;
  const moduleBtf = o.moduleBtf ?? ((): Btf[] => (modules ??= Btf.moduleNames().flatMap((n) => Btf.module(n) ?? [])));
  const a = new Asm();
  a.mov64(BUF, 1);
  a.mov64(SKB, 2);
  compileExpr(a, e, btf, moduleBtf);
  a.mov64(0, RES);
  a.ja(END);
  return a;
}

function compileExpr(a: Asm, e: MetaExpr, btf: Btf, moduleBtf: () => Btf[]): void {
  if (e.kind === 'term') {
    compileTerm(a, e, btf, moduleBtf);
    return;
  }
  compileExpr(a, e.first, btf, moduleBtf);
  for (const { op, expr } of e.rest) {
    // Short-circuit: `and` skips when false so far, `or` when true so far.
    const skip = a.label('skip');
    a.jk(op === 'and' ? JOP.JEQ : JOP.JNE, RES, 0, skip, true);
    compileExpr(a, expr, btf, moduleBtf);
    a.bind(skip);
  }
}

/** VAL = `size` bytes (<= 8) read at VAL + off, zero-extended; a failed read goes to `fail`. */
function emitRead(a: Asm, off: number, size: number, fail: Label): void {
  a.storeImm(SZ.DW, BUF, META_OFF, 0);
  a.mov64(1, BUF);
  a.alu64(ALU.ADD, 1, META_OFF);
  a.alu64(ALU.MOV, 2, size);
  a.mov64(3, VAL);
  if (off) a.alu64(ALU.ADD, 3, off);
  a.call(HELPER.probe_read_kernel);
  a.jk(JOP.JNE, 0, 0, fail, true);
  a.load(SZ.DW, VAL, BUF, META_OFF);
}

const isCharType = (t: BtfType): boolean => t.kind === 'int' && t.size === 1;

function compileTerm(a: Asm, term: MetaTerm, btf: Btf, moduleBtf: () => Btf[]): void {
  const err = (msg: string): never => {
    throw new MetaFilterResolveError(`${term.text}: ${msg}`);
  };
  if (term.root !== 'sk_buff') err(`meta filters start at sk_buff (e.g. sk_buff.mark), not '${term.root}'`);
  const root = findStruct(btf, 'sk_buff', () => []);
  if (!root) return err('the kernel BTF has no struct sk_buff');

  const FALSE = a.label('false');
  const TRUE = a.label('true');
  const DONE = a.label('done');

  // Walk: VAL holds the address of a `cur` object, `off` bytes into it is where we are.
  let b: Btf = root.btf;
  let cur: BtfType = b.resolve(root.id);
  let off = 0;
  let where = 'sk_buff';
  let value: { type: BtfType; typeId: number; bitOffset: number; bits: number; masked: boolean } | undefined;
  a.mov64(VAL, SKB);

  for (let i = 0; i < term.fields.length; i++) {
    const f = term.fields[i]!;
    const last = i === term.fields.length - 1;
    if (cur.kind === 'ptr') {
      // Follow the pointer stored here.
      emitRead(a, off, 8, FALSE);
      a.jk(JOP.JEQ, VAL, 0, FALSE, true);
      off = 0;
      cur = b.resolve(cur.type);
    }
    if (cur.kind !== 'struct' && cur.kind !== 'union') {
      return err(`'${where}' is ${b.typeName(cur.id)}, not a struct: it has no member '${f.name}'`);
    }
    const found = b.member(cur.id, f.name);
    if (!found) {
      const names = b.memberNames(cur.id);
      return err(`${b.typeName(cur.id)} has no member '${f.name}'${didYouMean(f.name, names)}`);
    }
    const { member, bitOffset } = found;
    where = `${where}.${f.name}`;
    const mtype = b.resolve(member.type);
    const bits = member.bitfieldSize;
    const byte = bits > 0 ? Math.floor(bitOffset / 8) : bitOffset / 8;
    off += byte;
    if (f.mask || f.cast) {
      // Read the member as a number, mask it; a cast makes it a pointer to walk on.
      const size = bits > 0 ? Math.ceil(((bitOffset % 8) + bits) / 8) : b.sizeof(mtype.id);
      if (!(mtype.kind === 'int' || mtype.kind === 'ptr' || mtype.kind === 'enum' || mtype.kind === 'enum64') || size > 8 || size === 0) {
        return err(`'${where}' is ${b.typeName(member.type)}: only numbers and pointers can be masked`);
      }
      emitRead(a, off, size, FALSE);
      if (bits > 0) emitBitfield(a, bitOffset % 8, bits, false);
      if (f.mask) {
        const m = f.mask.invert ? BigInt.asUintN(64, ~f.mask.value) : f.mask.value;
        a.ldImm64(5, m);
        a.alu64r(ALU.AND, VAL, 5);
      }
      if (f.cast) {
        const target = findStruct(b, f.cast, moduleBtf);
        if (!target) return err(`no struct or union named '${f.cast}' in the kernel's BTF (vmlinux or loaded modules) to cast '${where}' to`);
        a.jk(JOP.JEQ, VAL, 0, FALSE, true);
        b = target.btf;
        cur = b.resolve(target.id);
        off = 0;
        where = `(${where}:${f.cast})`;
        if (last) return err(`'${where}' is a struct: name one of its members after the cast`);
        continue;
      }
      if (!last) return err(`a mask without a cast ends the field: '${where}' cannot be followed by '.${term.fields[i + 1]!.name}' (add ':TYPE' to cast)`);
      value = { type: mtype, typeId: member.type, bitOffset: 0, bits: 0, masked: true };
      break;
    }
    if (last) {
      value = { type: mtype, typeId: member.type, bitOffset: bitOffset % 8, bits, masked: false };
      break;
    }
    if (bits > 0) return err(`'${where}' is a bitfield: it has no members`);
    cur = mtype;
  }
  if (!value) return err('empty field');

  const t = value.type;
  const typeName = b.typeName(value.typeId);
  const isString = !value.masked && ((t.kind === 'array' && isCharType(b.resolve(t.elemType))) || (t.kind === 'ptr' && isCharType(b.resolve(t.type))));

  if (term.rhs?.kind === 'str') {
    if (!isString) return err(`'${where}' is ${typeName}, a number: compare it with a number, not the string "${term.rhs.value}"`);
    const lit = Buffer.from(term.rhs.value, 'utf8');
    let n: number;
    if (t.kind === 'array') {
      if (lit.length > t.nelems) return err(`"${term.rhs.value}" is longer than '${where}' (${typeName})`);
      n = Math.min(t.nelems, lit.length + 1);
      if (n > META_SIZE) return err(`strings of more than ${META_SIZE - 1} bytes are not supported`);
      emitReadBytes(a, off, n, FALSE, false);
    } else {
      if (lit.length + 2 > META_SIZE) return err(`strings of more than ${META_SIZE - 2} bytes are not supported`);
      emitRead(a, off, 8, FALSE);
      a.jk(JOP.JEQ, VAL, 0, FALSE, true);
      // bpf_probe_read_kernel_str always NUL-terminates within its size: read one byte more than
      // compared, so a longer string shows a non-NUL where the literal ends.
      n = lit.length + 1;
      emitReadBytes(a, 0, n + 1, FALSE, true);
    }
    const eq = term.op === '==';
    const mismatch = eq ? FALSE : TRUE;
    for (let i = 0; i < n; i++) {
      a.load(SZ.B, 5, BUF, META_OFF + i);
      a.jk(JOP.JNE, 5, i < lit.length ? lit[i]! : 0, mismatch, true);
    }
    if (eq) a.ja(TRUE);
    else a.ja(FALSE);
  } else {
    if (isString && term.rhs?.kind === 'num' && t.kind === 'array') {
      return err(`'${where}' is ${typeName}, a string: compare it with a string, e.g. == "eth0"`);
    }
    if (isString && !term.op && t.kind === 'array') return err(`'${where}' is ${typeName}, a string: compare it with == or != and a string`);
    if (!(t.kind === 'int' || t.kind === 'ptr' || t.kind === 'enum' || t.kind === 'enum64') && !value.masked) {
      return err(`'${where}' is ${typeName}: only numbers, pointers and strings can be compared`);
    }
    const size = value.masked ? 8 : value.bits > 0 ? Math.ceil((value.bitOffset + value.bits) / 8) : b.sizeof(t.id);
    const signed = !value.masked && ((t.kind === 'int' && t.signed) || ((t.kind === 'enum' || t.kind === 'enum64') && t.signed));
    if (!value.masked) {
      if (size > 8 || size === 0) return err(`'${where}' is ${typeName} (${size} bytes): only values up to 8 bytes can be compared`);
      emitRead(a, off, size, FALSE);
      if (value.bits > 0) emitBitfield(a, value.bitOffset, value.bits, signed);
      else if (signed && size < 8) {
        a.alu64(ALU.LSH, VAL, 64 - size * 8);
        a.alu64(ALU.ARSH, VAL, 64 - size * 8);
      }
    }
    const op = term.op ?? '!=';
    const rhs = term.rhs?.kind === 'num' ? term.rhs.value : 0n;
    const jop = {
      '==': JOP.JEQ,
      '!=': JOP.JNE,
      '>': signed ? JOP.JSGT : JOP.JGT,
      '>=': signed ? JOP.JSGE : JOP.JGE,
      '<': signed ? JOP.JSLT : JOP.JLT,
      '<=': signed ? JOP.JSLE : JOP.JLE,
    }[op];
    // Immediates are sign-extended to 64 bits: only small non-negative ones are safe as such.
    if (rhs >= 0n && rhs < 0x80000000n) a.jk(jop, VAL, Number(rhs), TRUE, true);
    else {
      a.ldImm64(5, rhs);
      a.jr(jop, VAL, 5, TRUE, true);
    }
  }
  a.bind(FALSE);
  a.alu64(ALU.MOV, RES, 0);
  a.ja(DONE);
  a.bind(TRUE);
  a.alu64(ALU.MOV, RES, 1);
  a.bind(DONE);
}

/** Extract a bitfield of VAL (loaded from its first byte): shift it to the top, then back down. */
function emitBitfield(a: Asm, bitOffset: number, bits: number, signed: boolean): void {
  const up = 64 - bitOffset - bits;
  if (up > 0) a.alu64(ALU.LSH, VAL, up);
  a.alu64(signed ? ALU.ARSH : ALU.RSH, VAL, 64 - bits);
}

/** `n` bytes at VAL + off into the meta area (`str`: bpf_probe_read_kernel_str, for char *). */
function emitReadBytes(a: Asm, off: number, n: number, fail: Label, str: boolean): void {
  a.mov64(1, BUF);
  a.alu64(ALU.ADD, 1, META_OFF);
  a.alu64(ALU.MOV, 2, n);
  a.mov64(3, VAL);
  if (off) a.alu64(ALU.ADD, 3, off);
  a.call(str ? HELPER.probe_read_kernel_str : HELPER.probe_read_kernel);
  if (str) a.jk(JOP.JSLT, 0, 0, fail, true);
  else a.jk(JOP.JNE, 0, 0, fail, true);
}
