/** The eBPF assembler: a whole program (feature probes) vs a filter region (probe placeholders). */
import { describe, expect, it } from 'vitest';
import { ALU, Asm, END, JOP, SZ } from '../../bpf/filters/ebpf.ts';

describe('Asm', () => {
  it('program(): the instructions alone, jumps resolved, ending with exit', () => {
    const a = new Asm();
    const done = a.label();
    a.load(SZ.DW, 2, 1, 8); // r2 = *(u64 *)(r1 + 8)
    a.jk(JOP.JEQ, 2, 0, done, true);
    a.alu64(ALU.MOV, 0, 7);
    a.bind(done);
    a.exit();
    const p = a.program();
    expect(p.length).toBe(4 * 8);
    const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    expect([p[0], p[1], dv.getInt16(2, true)]).toEqual([0x79, 0x12, 8]); // ldxdw r2, [r1 + 8]
    expect([p[8], dv.getInt16(10, true)]).toEqual([0x15, 1]); // jeq r2, 0, +1 (over the mov)
    expect([p[16], dv.getInt32(20, true)]).toEqual([0xb7, 7]); // mov64 r0, 7
    expect(p[24]).toBe(0x95); // exit
  });

  it('program() refuses a jump to END (only a filter region has one)', () => {
    const a = new Asm();
    a.ja(END);
    a.exit();
    expect(() => a.program()).toThrow(/no END/);
    expect(a.assemble(8).length).toBe(64);
  });
});
