/**
 * The cBPF -> eBPF translator against libpcap itself: every expression is compiled by libpcap (L2
 * and L3 variants), translated, loaded in the kernel inside the same placeholders the probes use
 * (tests/bpf/progs/filter_test.bpf.c) and run with BPF_PROG_TEST_RUN on every test packet; the
 * verdict must equal libpcap's bpf_filter() on the same bytes. Our filters see at most the first
 * FILTER_DATA bytes, so libpcap is given those bytes with the real wire length (its semantics for a
 * capture truncated there).
 *
 * Translation-only checks run anywhere the addon is built; kernel runs need root.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BpfObject } from '../../bpf/object.ts';
import { bpfObjectPath, nativeStatus, native } from '../../bpf/native.ts';
import { decodeCbpf, translateCbpf } from '../../bpf/filters/cbpf.ts';
import { matchAll } from '../../bpf/filters/ebpf.ts';
import { compilePacketFilter, PacketFilterError, pcapCompile } from '../../bpf/filters/packet.ts';
import { FILTER_DATA, FILTER_L2_MAGIC, FILTER_L3_MAGIC, FILTER_L3_OFF, FILTER_META_MAGIC, FILTER_ROOM, DLT_EN10MB } from '../../bpf/filters/layout.ts';
import { liveIt, liveSkipReason } from '../bpf/helpers.ts';
import { EXPRESSIONS, testPackets, type TestPacket } from './packets.ts';

/**
 * What the optimizer does not emit for our expressions, by hand: scratch memory through X, txa,
 * ret a (the verdict is A itself, compared exactly).
 */
const HAND_PROGRAM: [number, number, number, number][] = [
  [0x30, 0, 0, 23], // ldb [23]      A = IPv4 protocol
  [0x07, 0, 0, 0], //  tax
  [0x03, 0, 0, 3], //  stx M[3]
  [0x28, 0, 0, 16], // ldh [16]      A = IPv4 total length
  [0x02, 0, 0, 1], //  st M[1]
  [0x61, 0, 0, 3], //  ldx M[3]
  [0x87, 0, 0, 0], //  txa
  [0x0c, 0, 0, 0], //  add x         A = 2 * protocol
  [0x2d, 0, 2, 0], //  jgt x         (protocol != 0)
  [0x60, 0, 0, 1], //  ld M[1]
  [0x16, 0, 0, 0], //  ret a         verdict = total length
  [0x06, 0, 0, 0], //  ret #0
];

function handProgram(): Uint8Array {
  const b = new Uint8Array(HAND_PROGRAM.length * 8);
  const dv = new DataView(b.buffer);
  HAND_PROGRAM.forEach(([code, jt, jf, k], i) => {
    dv.setUint16(i * 8, code, true);
    dv.setUint8(i * 8 + 2, jt);
    dv.setUint8(i * 8 + 3, jf);
    dv.setUint32(i * 8 + 4, k, true);
  });
  return b;
}

const ns = nativeStatus();
const noAddon = ns.available ? undefined : ns.message;
const live = liveSkipReason();

/** Offsets in struct filter_test_in (filter_test.bpf.c). */
const IN_SIZE = 4 * 4 + 8 + 464 + 4096;
const BUF_AT = 24;

function input(variant: number, caplen: number, wirelen: number, bytes: Uint8Array, at: number): Uint8Array {
  const v = new Uint8Array(IN_SIZE);
  const dv = new DataView(v.buffer);
  dv.setUint32(0, caplen, true);
  dv.setUint32(4, wirelen, true);
  dv.setUint32(8, variant, true);
  v.set(bytes.subarray(0, FILTER_DATA), BUF_AT + at);
  return v;
}

describe('packet filter: libpcap + translation', () => {
  it.skipIf(noAddon)('reports libpcap errors verbatim', () => {
    expect(() => compilePacketFilter('udp prot 53')).toThrow(PacketFilterError);
    try {
      compilePacketFilter('host 10.0.0.300');
    } catch (e) {
      expect(e).toBeInstanceOf(PacketFilterError);
      const pe = e as PacketFilterError;
      expect(pe.pcapError).toMatch(/10\.0\.0\.300/);
      expect(pe.message).toBe(`invalid packet filter 'host 10.0.0.300': ${pe.pcapError}`);
    }
  });

  it.skipIf(noAddon)('translates every expression into a placeholder-sized program', () => {
    for (const e of EXPRESSIONS) {
      const f = compilePacketFilter(e);
      expect(f.l2.ebpf.length).toBe(FILTER_ROOM * 8);
      expect(f.l3.ebpf.length).toBe(FILTER_ROOM * 8);
    }
    expect(compilePacketFilter('ether host 02:00:00:00:00:01').l3.fallback).toBe(true);
    expect(compilePacketFilter('udp').l3.fallback).toBe(false);
  });

  it.skipIf(noAddon)('the expressions exercise every kind of instruction libpcap emits', () => {
    const seen = new Set<number>();
    for (const e of EXPRESSIONS) {
      const f = compilePacketFilter(e);
      for (const i of [...f.l2.cbpf, ...f.l3.cbpf]) seen.add(i.code);
    }
    const want: Record<string, number> = {
      'ld [k]': 0x20, 'ldh [k]': 0x28, 'ldb [k]': 0x30, 'ld [x+k]': 0x40, 'ldh [x+k]': 0x48, 'ldb [x+k]': 0x50,
      'ld #len': 0x80, 'ld M[k]': 0x60, 'ldxb 4*([k]&0xf)': 0xb1, 'st M[k]': 0x02,
      'add #k': 0x04, 'add x': 0x0c, 'sub #k': 0x14, 'sub x': 0x1c, 'mul #k': 0x24, 'mul x': 0x2c, 'div #k': 0x34, 'div x': 0x3c,
      'or #k': 0x44, 'and #k': 0x54, 'lsh #k': 0x64, 'rsh #k': 0x74, 'neg': 0x84, 'mod #k': 0x94, 'mod x': 0x9c, 'xor #k': 0xa4,
      'jeq #k': 0x15, 'jgt #k': 0x25, 'jge #k': 0x35, 'jset #k': 0x45, 'jgt x': 0x2d, 'jeq x': 0x1d, 'jge x': 0x3d,
      'ret #k': 0x06, 'tax': 0x07,
    };
    // ldx M[k], stx M[k], txa, ret a: not emitted by libpcap's optimizer for these; HAND_PROGRAM has them.
    const missing = Object.entries(want).filter(([, c]) => !seen.has(c)).map(([n]) => n);
    expect(missing).toEqual([]);
  });

  it('refuses malformed classic BPF', () => {
    expect(() => decodeCbpf(new Uint8Array(7))).toThrow(/multiple of 8/);
    // ja past the end
    const bad = new Uint8Array(8);
    bad[0] = 0x05;
    bad[4] = 3;
    expect(() => translateCbpf(decodeCbpf(bad), { base: 0 })).toThrow(/outside the program/);
  });
});

describe('packet filter: translated code in the kernel agrees with libpcap', () => {
  const packets = testPackets();
  let counts = { runs: 0, matches: 0 };
  beforeAll(() => {
    if (!live) BpfObject.enablePatching();
  });
  afterAll(() => {
    if (!live) console.log(`filter agreement: ${counts.runs} runs, ${counts.matches} matches, ${EXPRESSIONS.length} expressions x ${packets.length} packets x L2/L3`);
  });

  liveIt('every expression x packet, L2 and L3 variants', live, () => {
    counts = { runs: 0, matches: 0 };
    const failures: string[] = [];
    for (const expr of EXPRESSIONS) {
      const f = compilePacketFilter(expr);
      const obj = BpfObject.open(bpfObjectPath('filter_test'));
      try {
        obj.patchProgram('filter_test', FILTER_L2_MAGIC, f.l2.ebpf);
        obj.patchProgram('filter_test', FILTER_L3_MAGIC, f.l3.ebpf);
        obj.patchProgram('filter_test', FILTER_META_MAGIC, matchAll());
        obj.load();
        const map = obj.map('filter_test_in');
        const key = new Uint8Array(4);
        const l2code = native().pcapCompile(expr, DLT_EN10MB, 262144);
        const l3code = f.l3.fallback ? l2code : native().pcapCompile(expr, 12, 262144);
        const run = (p: TestPacket, variant: 2 | 3): void => {
          let view: Uint8Array;
          let wire: number;
          let ref: number;
          if (variant === 2) {
            view = p.bytes;
            wire = p.wirelen;
            ref = native().pcapFilter(l2code, view.subarray(0, FILTER_DATA), wire);
          } else {
            view = p.bytes.subarray(p.l3!);
            wire = p.wirelen - p.l3!;
            if (f.l3.fallback) {
              // The L2 program over the fake Ethernet header the probe writes: zero MACs.
              const fake = new Uint8Array(FILTER_L3_OFF + view.length);
              fake.set(p.bytes.subarray(12, 14), 12);
              fake.set(view, FILTER_L3_OFF);
              ref = native().pcapFilter(l2code, fake.subarray(0, FILTER_L3_OFF + FILTER_DATA), wire + FILTER_L3_OFF);
            } else {
              ref = native().pcapFilter(l3code, view.subarray(0, FILTER_DATA), wire);
            }
          }
          const caplen = Math.min(view.length, FILTER_DATA);
          const value = input(variant, caplen, wire, view, variant === 3 ? FILTER_L3_OFF : 0);
          if (variant === 3) value.set(p.bytes.subarray(12, 14), BUF_AT + 12);
          map.update(key, value);
          const got = obj.testRun('filter_test').retval >>> 0;
          counts.runs++;
          if (ref !== 0) counts.matches++;
          if ((got !== 0) !== (ref !== 0) || got !== ref) failures.push(`'${expr}' L${variant} on ${p.name}: ours ${got}, libpcap ${ref}`);
        };
        for (const p of packets) {
          run(p, 2);
          if (p.l3 !== undefined) run(p, 3);
        }
      } finally {
        obj.close();
      }
    }
    expect(failures).toEqual([]);
    // The set must exercise both outcomes broadly.
    expect(counts.matches).toBeGreaterThan(100);
    expect(counts.runs - counts.matches).toBeGreaterThan(100);
  }, 120_000);
});

describe('hand-written classic BPF in the kernel agrees with libpcap', () => {
  liveIt('scratch memory through X, txa, ret a', live, () => {
    BpfObject.enablePatching();
    const code = handProgram();
    const obj = BpfObject.open(bpfObjectPath('filter_test'));
    try {
      obj.patchProgram('filter_test', FILTER_L2_MAGIC, translateCbpf(decodeCbpf(code), { base: 0 }));
      obj.patchProgram('filter_test', FILTER_L3_MAGIC, matchAll());
      obj.patchProgram('filter_test', FILTER_META_MAGIC, matchAll());
      obj.load();
      const map = obj.map('filter_test_in');
      const verdicts = new Set<number>();
      for (const p of testPackets()) {
        const ref = native().pcapFilter(code, p.bytes.subarray(0, FILTER_DATA), p.wirelen);
        map.update(new Uint8Array(4), input(2, Math.min(p.bytes.length, FILTER_DATA), p.wirelen, p.bytes, 0));
        expect(obj.testRun('filter_test').retval >>> 0, p.name).toBe(ref);
        verdicts.add(ref);
      }
      expect(verdicts.size).toBeGreaterThan(5);
    } finally {
      obj.close();
    }
  });
});

describe('pcapCompile', () => {
  it.skipIf(noAddon)('compiles for Ethernet and raw IP', () => {
    expect(pcapCompile('udp', DLT_EN10MB).length).toBeGreaterThan(2);
    expect(() => pcapCompile('ether host 1:2:3:4:5:6', 12)).toThrow(PacketFilterError);
  });
});
