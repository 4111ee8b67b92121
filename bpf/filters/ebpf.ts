/**
 * A tiny eBPF assembler for the filter code generators: instructions with symbolic jump targets,
 * resolved once the code is laid out in its placeholder region (see bpf/include/retis/filter.bpf.h).
 */
import { FILTER_ROOM } from './layout.ts';

// Instruction classes, sizes, modes, operations (include/uapi/linux/bpf.h, bpf_common.h).
export const CLS = { LD: 0x00, LDX: 0x01, ST: 0x02, STX: 0x03, ALU: 0x04, JMP: 0x05, JMP32: 0x06, ALU64: 0x07 } as const;
export const SZ = { W: 0x00, H: 0x08, B: 0x10, DW: 0x18 } as const;
export const MODE = { IMM: 0x00, MEM: 0x60 } as const;
export const ALU = { ADD: 0x00, SUB: 0x10, MUL: 0x20, DIV: 0x30, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70, NEG: 0x80, MOD: 0x90, XOR: 0xa0, MOV: 0xb0, ARSH: 0xc0, END: 0xd0 } as const;
export const JOP = { JA: 0x00, JEQ: 0x10, JGT: 0x20, JGE: 0x30, JSET: 0x40, JNE: 0x50, JSGT: 0x60, JSGE: 0x70, CALL: 0x80, EXIT: 0x90, JLT: 0xa0, JLE: 0xb0, JSLT: 0xc0, JSLE: 0xd0 } as const;
export const SRC_K = 0x00;
export const SRC_X = 0x08;
export const TO_BE = 0x08;

/** Helper ids used by generated code. */
export const HELPER = { probe_read_kernel: 113, probe_read_kernel_str: 115 } as const;

export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
export type Label = string;
/** Where a jump goes: a label, or the end of the placeholder region (leave with r0 = verdict). */
export type Target = Label | typeof END;
export const END = Symbol('end of region');

interface Insn {
  code: number;
  dst: Reg;
  src: Reg;
  off: number;
  imm: number;
  /** Jump target to resolve into `off`. */
  target?: Target;
}

export class FilterTooLargeError extends Error {
  override name = 'FilterTooLargeError';
}

export class Asm {
  readonly #insns: Insn[] = [];
  readonly #labels = new Map<Label, number>();
  #next = 0;

  get length(): number {
    return this.#insns.length;
  }

  /** A fresh label name. */
  label(prefix = 'L'): Label {
    return `${prefix}${this.#next++}`;
  }

  /** Bind `l` to the next instruction. */
  bind(l: Label): void {
    if (this.#labels.has(l)) throw new Error(`label ${l} bound twice`);
    this.#labels.set(l, this.#insns.length);
  }

  isBound(l: Label): boolean {
    return this.#labels.has(l);
  }

  raw(code: number, dst: Reg, src: Reg, off: number, imm: number, target?: Target): void {
    const i: Insn = { code, dst, src, off, imm: imm | 0 };
    if (target !== undefined) i.target = target;
    this.#insns.push(i);
  }

  // 32-bit ALU (zero-extends the destination: how cBPF's A and X stay u32).
  alu32(op: number, dst: Reg, k: number): void {
    this.raw(CLS.ALU | op | SRC_K, dst, 0, 0, k);
  }
  alu32r(op: number, dst: Reg, src: Reg): void {
    this.raw(CLS.ALU | op | SRC_X, dst, src, 0, 0);
  }
  alu64(op: number, dst: Reg, k: number): void {
    this.raw(CLS.ALU64 | op | SRC_K, dst, 0, 0, k);
  }
  alu64r(op: number, dst: Reg, src: Reg): void {
    this.raw(CLS.ALU64 | op | SRC_X, dst, src, 0, 0);
  }
  mov64(dst: Reg, src: Reg): void {
    this.alu64r(ALU.MOV, dst, src);
  }
  /** dst = big-endian load conversion of its low `bits` (16/32/64). */
  be(dst: Reg, bits: 16 | 32 | 64): void {
    this.raw(CLS.ALU | ALU.END | TO_BE, dst, 0, 0, bits);
  }
  /** 64-bit immediate (two instruction slots). */
  ldImm64(dst: Reg, v: bigint): void {
    const u = BigInt.asUintN(64, v);
    this.raw(CLS.LD | SZ.DW | MODE.IMM, dst, 0, 0, Number(u & 0xffffffffn));
    this.raw(0, 0, 0, 0, Number(u >> 32n));
  }
  load(size: number, dst: Reg, base: Reg, off: number): void {
    this.raw(CLS.LDX | MODE.MEM | size, dst, base, off, 0);
  }
  store(size: number, base: Reg, off: number, src: Reg): void {
    this.raw(CLS.STX | MODE.MEM | size, base, src, off, 0);
  }
  storeImm(size: number, base: Reg, off: number, k: number): void {
    this.raw(CLS.ST | MODE.MEM | size, base, 0, off, k);
  }
  ja(t: Target): void {
    this.raw(CLS.JMP | JOP.JA, 0, 0, 0, 0, t);
  }
  /** if (dst op k) goto t; `wide`: 64-bit compare (JMP), else 32-bit (JMP32). */
  jk(op: number, dst: Reg, k: number, t: Target, wide = false): void {
    this.raw((wide ? CLS.JMP : CLS.JMP32) | op | SRC_K, dst, 0, 0, k, t);
  }
  jr(op: number, dst: Reg, src: Reg, t: Target, wide = false): void {
    this.raw((wide ? CLS.JMP : CLS.JMP32) | op | SRC_X, dst, src, 0, 0, t);
  }
  call(helper: number): void {
    this.raw(CLS.JMP | JOP.CALL, 0, 0, 0, helper);
  }

  exit(): void {
    this.raw(CLS.JMP | JOP.EXIT, 0, 0, 0, 0);
  }

  /**
   * The placeholder's replacement, FILTER_ROOM instructions: this code, then a tail that leaves the
   * region, then filler nops. Exits (END) jump to the tail, `w5 = 0; if w5 == 0 goto end`: the
   * verifier knows the branch is always taken, so the filler after it is dead code, which it
   * deletes in one piece. (Nops on the executed path would also be deleted, but one at a time,
   * each deletion moving the whole program: 6k of them cost ~300 ms per probe load.)
   * Throws FilterTooLargeError when the code does not fit.
   */
  assemble(room = FILTER_ROOM): Uint8Array {
    const n = this.#insns.length;
    if (n + 2 > room) throw new FilterTooLargeError(`the filter needs ${n + 2} eBPF instructions, more than the ${room} the probes reserve for it`);
    const out = this.#encode(room, n);
    const put = encoder(out);
    put(n, CLS.ALU | ALU.MOV | SRC_K, 5, 0, 0, 0);
    put(n + 1, CLS.JMP32 | JOP.JEQ | SRC_K, 5, 0, room - (n + 1) - 1, 0);
    // Filler: `ja +0` (code 0x05, all else zero), dead.
    for (let j = n + 2; j < room; j++) out[j * 8] = CLS.JMP | JOP.JA;
    return out;
  }

  /** This code alone as a whole program (it ends with its own exit; END is not a target here). */
  program(): Uint8Array {
    const n = this.#insns.length;
    return this.#encode(n, n);
  }

  /** `room` instruction slots, this code's `end` (= END) resolved, the rest left zero. */
  #encode(room: number, end: number): Uint8Array {
    const out = new Uint8Array(room * 8);
    const put = encoder(out);
    this.#insns.forEach((ins, j) => {
      let off = ins.off;
      if (ins.target !== undefined) {
        const dest = ins.target === END ? end : this.#labels.get(ins.target);
        if (dest === undefined) throw new Error(`unbound label ${String(ins.target)}`);
        if (dest >= room) throw new Error('a whole program has no END to jump to: end it with exit()');
        off = dest - j - 1;
        if (off < -32768 || off > 32767) throw new FilterTooLargeError('jump out of range');
      }
      put(j, ins.code, ins.dst, ins.src, off, ins.imm);
    });
    return out;
  }
}

/** Writes instruction `j` into `out` (struct bpf_insn, little-endian). */
function encoder(out: Uint8Array): (j: number, code: number, dst: Reg, src: Reg, off: number, imm: number) => void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  return (j, code, dst, src, off, imm) => {
    const p = j * 8;
    out[p] = code;
    out[p + 1] = (dst & 0xf) | ((src & 0xf) << 4);
    dv.setInt16(p + 2, off, true);
    dv.setInt32(p + 4, imm, true);
  };
}

/** Code that matches everything (r0 = 1). */
export function matchAll(): Uint8Array {
  const a = new Asm();
  a.alu32(ALU.MOV, 0, 1);
  return a.assemble();
}
