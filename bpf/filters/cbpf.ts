/**
 * Classic BPF (what libpcap's pcap_compile emits) -> eBPF for the packet filter placeholders.
 *
 * Semantics are libpcap's bpf_filter(): A and X are u32 and start at 0; loads are big-endian;
 * a load past the captured bytes, or a division by X == 0, ends the program with 0 (no match);
 * the program returns its verdict (0 = no match, else the snap length).
 *
 * Register mapping (contract in bpf/include/retis/filter.bpf.h): r1 = scratch buffer (packet
 * bytes at `base`, M[] at MEM_OFF), r2 = captured bytes, r3 = packet length; A = w4, X = w5,
 * r6/r7 temporaries. A and X use 32-bit ALU instructions, which zero-extend, so they always
 * hold u32 values, and compares use JMP32.
 *
 * The packet bytes live in a map value of known size, so every load needs two checks: one against
 * a constant, which gives the verifier its bounds, and one against r2, which gives cBPF's
 * semantics (the packet may be shorter than the buffer).
 */
import { ALU, Asm, END, FilterTooLargeError, JOP, SZ, type Label, type Reg } from './ebpf.ts';
import { FILTER_DATA, MEM_OFF } from './layout.ts';

export interface CbpfInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

// cBPF encoding (pcap/bpf.h): class, size, mode, op, src, rval, misc.
const C = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, RET: 0x06, MISC: 0x07 } as const;
const M = { IMM: 0x00, ABS: 0x20, IND: 0x40, MEM: 0x60, LEN: 0x80, MSH: 0xa0 } as const;
const cls = (c: number): number => c & 0x07;
const size = (c: number): number => c & 0x18;
const mode = (c: number): number => c & 0xe0;
const op = (c: number): number => c & 0xf0;
const srcX = (c: number): boolean => (c & 0x08) !== 0;
const rval = (c: number): number => c & 0x18;

export class CbpfError extends Error {
  override name = 'CbpfError';
}

/** Parse libpcap's `struct bpf_insn` array (u16 code, u8 jt, u8 jf, u32 k; host order = LE). */
export function decodeCbpf(bytes: Uint8Array): CbpfInsn[] {
  if (bytes.byteLength % 8 !== 0) throw new CbpfError(`classic BPF is ${bytes.byteLength} bytes, not a multiple of 8`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: CbpfInsn[] = [];
  for (let p = 0; p < bytes.byteLength; p += 8) {
    out.push({ code: dv.getUint16(p, true), jt: dv.getUint8(p + 2), jf: dv.getUint8(p + 3), k: dv.getUint32(p + 4, true) });
  }
  return out;
}

/** Readable form (bpf_image-like), for --debug output and test failures. */
export function cbpfToString(prog: readonly CbpfInsn[]): string {
  return prog.map((i, n) => `(${String(n).padStart(3, '0')}) code=0x${i.code.toString(16).padStart(2, '0')} jt=${i.jt} jf=${i.jf} k=0x${i.k.toString(16)}`).join('\n');
}

const A: Reg = 4;
const X: Reg = 5;
const T1: Reg = 6;
const T2: Reg = 7;
const BUF: Reg = 1;
const CAPLEN: Reg = 2;
const WIRELEN: Reg = 3;

export interface TranslateOptions {
  /** Offset of the filter's byte 0 in the buffer (0 for L2, FILTER_L3_OFF for L3). */
  base: number;
  /** Added to the captured and wire lengths first (an L2 program run over the L3 view's fake header). */
  lenAdjust?: number;
}

/** Which instructions can run (libpcap's optimizer leaves none unreachable, but the verifier refuses any). */
function reachable(prog: readonly CbpfInsn[]): boolean[] {
  const seen = new Array<boolean>(prog.length).fill(false);
  const stack = [0];
  while (stack.length) {
    const pc = stack.pop()!;
    if (pc < 0 || pc >= prog.length) throw new CbpfError(`jump to instruction ${pc}, outside the program (${prog.length} instructions)`);
    if (seen[pc]) continue;
    seen[pc] = true;
    const i = prog[pc]!;
    if (cls(i.code) === C.RET) continue;
    if (cls(i.code) === C.JMP) {
      if (op(i.code) === JOP.JA) stack.push(pc + 1 + i.k);
      else stack.push(pc + 1 + i.jt, pc + 1 + i.jf);
    } else {
      stack.push(pc + 1);
    }
  }
  return seen;
}

/** Translate a cBPF program into code for a packet filter placeholder (FILTER_ROOM instructions). */
export function translateCbpf(prog: readonly CbpfInsn[], o: TranslateOptions): Uint8Array {
  return translateCbpfAsm(prog, o).assemble();
}

export function translateCbpfAsm(prog: readonly CbpfInsn[], o: TranslateOptions): Asm {
  if (prog.length === 0) throw new CbpfError('empty classic BPF program');
  const a = new Asm();
  const at = (pc: number): Label => `pc${pc}`;
  const FAIL = 'fail';
  let failUsed = false;
  const fail = (): Label => {
    failUsed = true;
    return FAIL;
  };
  const live = reachable(prog);
  /**
   * A load that can never succeed (past FILTER_DATA): fail, but through a conditional jump the
   * verifier proves always taken, with a dummy value on the other edge. An unconditional jump
   * would leave the code of the next cBPF instruction unreachable, which the verifier refuses.
   */
  const alwaysFail = (dst: Reg): void => {
    a.jk(JOP.JGE, CAPLEN, 0, fail(), true);
    a.alu32(ALU.MOV, dst, 0);
  };

  if (o.lenAdjust) {
    a.alu64(ALU.ADD, CAPLEN, o.lenAdjust);
    a.alu64(ALU.ADD, WIRELEN, o.lenAdjust);
  }
  a.alu32(ALU.MOV, A, 0);
  a.alu32(ALU.MOV, X, 0);

  const width = (c: number): 1 | 2 | 4 => (size(c) === 0x10 ? 1 : size(c) === 0x08 ? 2 : 4);
  const ebpfSize = (w: 1 | 2 | 4): number => (w === 1 ? SZ.B : w === 2 ? SZ.H : SZ.W);
  const swap = (dst: Reg, w: 1 | 2 | 4): void => {
    if (w === 2) a.be(dst, 16);
    else if (w === 4) a.be(dst, 32);
  };
  /** dst = packet[k] (w bytes, big-endian), or fail. */
  const loadAbs = (dst: Reg, k: number, w: 1 | 2 | 4): void => {
    if (k > FILTER_DATA - w) {
      // Past what the probes copy: as a load past the captured bytes.
      alwaysFail(dst);
      return;
    }
    a.jk(JOP.JLT, CAPLEN, k + w, fail(), true);
    a.load(ebpfSize(w), dst, BUF, o.base + k);
    swap(dst, w);
  };
  const memOff = (k: number): number => {
    if (k >= 16) throw new CbpfError(`scratch memory slot M[${k}] does not exist (16 slots)`);
    return MEM_OFF + 4 * k;
  };
  const jumpTarget = (pc: number): Label => {
    if (pc >= prog.length) throw new CbpfError(`jump past the end of the program (to ${pc})`);
    return at(pc);
  };

  for (let pc = 0; pc < prog.length; pc++) {
    if (!live[pc]) continue;
    const i = prog[pc]!;
    const c = i.code;
    a.bind(at(pc));
    switch (cls(c)) {
      case C.LD:
      case C.LDX: {
        const dst = cls(c) === C.LD ? A : X;
        const m = mode(c);
        if (m === M.IMM) a.alu32(ALU.MOV, dst, i.k);
        else if (m === M.LEN) a.alu32r(ALU.MOV, dst, WIRELEN);
        else if (m === M.MEM) a.load(SZ.W, dst, BUF, memOff(i.k));
        else if (m === M.ABS && cls(c) === C.LD) loadAbs(A, i.k, width(c));
        else if (m === M.IND && cls(c) === C.LD) {
          const w = width(c);
          if (i.k > FILTER_DATA - w) {
            alwaysFail(A);
            break;
          }
          // T1 = X + k, in [k, FILTER_DATA - w] after the constant check (the verifier's bound).
          a.mov64(T1, X);
          a.alu64(ALU.ADD, T1, i.k);
          a.jk(JOP.JGT, T1, FILTER_DATA - w, fail(), true);
          a.mov64(T2, T1);
          a.alu64(ALU.ADD, T2, w);
          a.jr(JOP.JGT, T2, CAPLEN, fail(), true);
          a.mov64(T2, BUF);
          a.alu64r(ALU.ADD, T2, T1);
          a.load(ebpfSize(w), A, T2, o.base);
          swap(A, w);
        } else if (m === M.MSH && cls(c) === C.LDX && size(c) === 0x10) {
          // X = 4 * (P[k] & 0xf): the IPv4 header length.
          loadAbs(X, i.k, 1);
          a.alu32(ALU.AND, X, 0xf);
          a.alu32(ALU.LSH, X, 2);
        } else throw new CbpfError(`unsupported load 0x${c.toString(16)} at ${pc}`);
        break;
      }
      case C.ST:
        a.store(SZ.W, BUF, memOff(i.k), A);
        break;
      case C.STX:
        a.store(SZ.W, BUF, memOff(i.k), X);
        break;
      case C.ALU: {
        const o2 = op(c);
        if (o2 === ALU.NEG) {
          a.raw(0x04 | ALU.NEG, A, 0, 0, 0);
          break;
        }
        if (![ALU.ADD, ALU.SUB, ALU.MUL, ALU.DIV, ALU.OR, ALU.AND, ALU.LSH, ALU.RSH, ALU.MOD, ALU.XOR].includes(o2 as 0)) {
          throw new CbpfError(`unsupported ALU operation 0x${c.toString(16)} at ${pc}`);
        }
        if (srcX(c)) {
          if (o2 === ALU.DIV || o2 === ALU.MOD) a.jk(JOP.JEQ, X, 0, fail());
          a.alu32r(o2, A, X);
        } else {
          if ((o2 === ALU.DIV || o2 === ALU.MOD) && i.k === 0) alwaysFail(A);
          else if ((o2 === ALU.LSH || o2 === ALU.RSH) && i.k >= 32) a.alu32(ALU.MOV, A, 0);
          else a.alu32(o2, A, i.k);
        }
        break;
      }
      case C.JMP: {
        const o2 = op(c);
        if (o2 === JOP.JA) {
          a.ja(jumpTarget(pc + 1 + i.k));
          break;
        }
        if (![JOP.JEQ, JOP.JGT, JOP.JGE, JOP.JSET].includes(o2 as 0x10)) throw new CbpfError(`unsupported jump 0x${c.toString(16)} at ${pc}`);
        const t = pc + 1 + i.jt;
        const f = pc + 1 + i.jf;
        const emit = (cond: number, target: number): void => {
          if (srcX(c)) a.jr(cond, A, X, jumpTarget(target));
          else a.jk(cond, A, i.k, jumpTarget(target));
        };
        const inverse: Record<number, number> = { [JOP.JEQ]: JOP.JNE, [JOP.JGT]: JOP.JLE, [JOP.JGE]: JOP.JLT };
        if (t === f) a.ja(jumpTarget(t));
        else if (f === pc + 1) emit(o2, t);
        else if (t === pc + 1 && inverse[o2] !== undefined) emit(inverse[o2]!, f);
        else {
          emit(o2, t);
          a.ja(jumpTarget(f));
        }
        break;
      }
      case C.RET: {
        const r = rval(c);
        if (r === 0x10) a.alu32r(ALU.MOV, 0, A);
        else if (r === 0x08) a.alu32r(ALU.MOV, 0, X);
        else a.alu32(ALU.MOV, 0, i.k);
        a.ja(END);
        break;
      }
      case C.MISC:
        if ((c & 0xf8) === 0x00) a.alu32r(ALU.MOV, X, A); // TAX
        else if ((c & 0xf8) === 0x80) a.alu32r(ALU.MOV, A, X); // TXA
        else throw new CbpfError(`unsupported instruction 0x${c.toString(16)} at ${pc}`);
        break;
      default:
        throw new CbpfError(`unsupported instruction 0x${c.toString(16)} at ${pc}`);
    }
    // Falling off a non-jump into an unreachable next instruction cannot happen: cBPF programs end
    // with RET and every non-jump is followed by a reachable instruction.
  }
  if (failUsed) {
    a.bind(FAIL);
    a.alu32(ALU.MOV, 0, 0);
    a.ja(END);
  }
  return a;
}

export { FilterTooLargeError };
