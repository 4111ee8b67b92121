import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineEnum, defineLayout, generateCHeader, layoutToC } from '../../bpf/layout.ts';
import { selftestEvent, SelftestKind } from '../../bpf/progs/selftest.layout.ts';

const padded = defineLayout('t_padded', {
  a: 'u8',
  b: 'u32',
  c: 'u16',
  d: 's64',
  name: { type: 'char', length: 5 },
  bytes: { type: 'u8', length: 3 },
  words: { type: 'u16', length: 2 },
});

describe('layout', () => {
  it('lays fields out with C natural alignment', () => {
    expect(padded.offsets).toEqual({ a: 0, b: 4, c: 8, d: 16, name: 24, bytes: 29, words: 32 });
    expect(padded.size).toBe(40);
    expect(padded.align).toBe(8);
    expect(selftestEvent.size).toBe(72);
  });

  it('round-trips values through the decoder', () => {
    const buf = new ArrayBuffer(8 + padded.size);
    const v = new DataView(buf);
    const base = 8;
    v.setUint8(base + 0, 200);
    v.setUint32(base + 4, 0xdeadbeef, true);
    v.setUint16(base + 8, 513, true);
    v.setBigInt64(base + 16, -5n, true);
    new Uint8Array(buf, base + 24, 5).set([0x65, 0x74, 0x68, 0x30, 0]);
    new Uint8Array(buf, base + 29, 3).set([1, 2, 3]);
    v.setUint16(base + 32, 7, true);
    v.setUint16(base + 34, 9, true);
    const d = padded.decode(v, base);
    expect(d).toEqual({ a: 200, b: 0xdeadbeef, c: 513, d: -5n, name: 'eth0', bytes: new Uint8Array([1, 2, 3]), words: [7, 9] });
    expect(padded.reader('d')(v, base)).toBe(-5n);
  });

  it('generates a C header with explicit padding and static asserts', () => {
    const c = layoutToC(padded);
    expect(c).toContain('__u8 __pad0[3];');
    expect(c).toContain('_Static_assert(sizeof(struct t_padded) == 40');
    expect(c).toContain('_Static_assert(__builtin_offsetof(struct t_padded, d) == 16');
    const h = generateCHeader({ SelftestKind, selftestEvent }, 'x.layout.ts');
    expect(h).toContain('RETIS_SELFTEST_KIND_USDT = 10,');
    expect(h).toContain('struct retis_selftest_event {');
  });

  it('the generated header compiles and its asserts hold for the host C compiler', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rts-layout-'));
    try {
      writeFileSync(join(dir, 'l.h'), generateCHeader({ padded, SelftestKind, selftestEvent }, 'test'));
      writeFileSync(join(dir, 'm.c'), '#include "l.h"\nint main(void) { struct t_padded p; struct retis_selftest_event e; return (int)sizeof(p) + (int)sizeof(e) - 112; }\n');
      const r = spawnSync('cc', ['-std=c11', '-Wall', '-Werror', '-c', '-o', join(dir, 'm.o'), join(dir, 'm.c')], { encoding: 'utf8' });
      if (r.error) {
        console.log(`SKIP header compile check: no C compiler (${r.error.message})`);
        return;
      }
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad definitions', () => {
    expect(() => defineLayout('bad name', { a: 'u8' })).toThrow(/not a C identifier/);
    expect(() => defineLayout('x', {})).toThrow(/no fields/);
    expect(() => defineLayout('x', { a: { type: 'char', length: 0 } })).toThrow(/positive integer/);
    expect(() => defineEnum('e', { A: 1.5 })).toThrow(/bad member/);
    expect(SelftestKind.nameOf(3)).toBe('tp_btf');
  });
});
