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

describe('pcapCompile', () => {
  it.skipIf(noAddon)('compiles for Ethernet and raw IP', () => {
    expect(pcapCompile('udp', DLT_EN10MB).length).toBeGreaterThan(2);
    expect(() => pcapCompile('ether host 1:2:3:4:5:6', 12)).toThrow(PacketFilterError);
  });
});
