/**
 * nft and ct collectors, pure parts: netlink trace parsing, the packet key that matches traces to
 * probe events, --nft-verdicts masks, ct/nft blocks to Retis's sections, profiles' conditions.
 */
import { describe, expect, it } from 'vitest';
import { CtNames, ctSection } from '../../capture/ct/ct.ts';
import { packetKey } from '../../capture/nft/collector.ts';
import { parseTraceDatagram, TRACE_TYPE } from '../../capture/nft/netlink.ts';
import { nftSection, verdictAllowed, verdictMask, writeNftBlock } from '../../capture/nft/section.ts';
import { ctConn, ctHead, CT_BLOCK_BYTES, CtFlags, nftEvent } from '../../capture/progs/nftct.layout.ts';
import { findProfile, profileArgs } from '../../capture/profiles.ts';
import { compat } from '../util/paths.ts';

/** One NFT_MSG_TRACE datagram with the given attributes (type, payload). */
function traceMsg(attrs: [number, Uint8Array][], family = 1): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [t, p] of attrs) {
    const a = new Uint8Array((4 + p.length + 3) & ~3);
    new DataView(a.buffer).setUint16(0, 4 + p.length, true);
    new DataView(a.buffer).setUint16(2, t, true);
    a.set(p, 4);
    parts.push(a);
  }
  const body = Buffer.concat(parts);
  const m = new Uint8Array(20 + body.length);
  const v = new DataView(m.buffer);
  v.setUint32(0, m.length, true);
  v.setUint16(4, (10 << 8) | 17, true);
  m[16] = family;
  m.set(body, 20);
  return m;
}
const be32 = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n, false);
  return b;
};
const str = (s: string): Uint8Array => new TextEncoder().encode(`${s}\0`);

describe('nft netlink traces', () => {
  it('parses table, chain, rule handle, type, nested verdict, iif and headers', () => {
    const rh = new Uint8Array(8);
    new DataView(rh.buffer).setBigUint64(0, 7n, false);
    const verdict = Buffer.concat([Buffer.from([8, 0, 1, 0]), Buffer.from(be32(-3)), Buffer.from([8, 0, 2, 0]), Buffer.from('ind\0')]);
    const ip = Uint8Array.from([0x45, 0, 0, 37, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    const udp = Uint8Array.from([0x9c, 0x40, 0x1e, 0x61, 0, 17, 0, 0, ...Buffer.from('rts000001')]);
    const m = traceMsg([[1, str('filter')], [2, str('input')], [3, rh], [4, be32(TRACE_TYPE.RULE)], [5 | 0x8000, verdict], [6, be32(99)], [8, ip], [9, udp], [10, be32(2)]]);
    const { traces, malformed } = parseTraceDatagram(m, m.length);
    expect(malformed).toBe(0);
    expect(traces).toHaveLength(1);
    expect(traces[0]).toMatchObject({ family: 1, table: 'filter', chain: 'input', ruleHandle: 7n, type: 3, verdict: -3, verdictChain: 'ind', id: 99, iif: 2 });
    // The same packet seen by a probe (from L2, a different TTL and checksum after forwarding) has the same key.
    const frame = new Uint8Array(14 + 37);
    frame[12] = 0x08;
    frame.set(ip, 14);
    frame[14 + 8] = 63;
    frame.set(udp, 34);
    expect(packetKey(traces[0]!.network!, 0, 20, traces[0]!.transport)).toBe(packetKey(frame, 14, 37));
    // DNAT changes addresses and ports, not the key; another datagram has another one.
    const natted = frame.slice();
    natted[14 + 19] = 9;
    natted[36] = 0x1e;
    natted[37] = 0x63;
    expect(packetKey(natted, 14, 37)).toBe(packetKey(frame, 14, 37));
    const other = frame.slice();
    other[50] = 0x32;
    expect(packetKey(other, 14, 37)).not.toBe(packetKey(frame, 14, 37));
  });

  it('counts a truncated message as malformed instead of throwing', () => {
    const m = traceMsg([[1, str('t')]]);
    expect(parseTraceDatagram(m, m.length - 3).malformed).toBe(1);
  });

  it('--nft-verdicts masks as Retis (bit code + 5), default drop,accept', () => {
    const m = verdictMask(['drop', 'accept']);
    expect(verdictAllowed(0, m)).toBe(true);
    expect(verdictAllowed(1, m)).toBe(true);
    expect(verdictAllowed(-1, m)).toBe(false);
    const all = verdictMask(['all']);
    for (const c of [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4]) expect(verdictAllowed(c, all)).toBe(true);
    expect(() => verdictMask(['maybe'])).toThrow();
  });

  it('nft block -> Retis section: rule handle only when present, verdict chain for jumps', () => {
    const b = new Uint8Array(nftEvent.size);
    writeNftBlock(b, 0, { tableName: 't', chainName: 'c', verdict: -3, verdictChainName: 'x', tableHandle: 1n, chainHandle: 2n, ruleHandle: 5n, policy: false });
    expect(nftSection(new DataView(b.buffer), 0)).toEqual({ table_name: 't', chain_name: 'c', verdict: 'jump', verdict_chain_name: 'x', table_handle: 1n, chain_handle: 2n, rule_handle: 5n, policy: false });
    const p = new Uint8Array(nftEvent.size);
    writeNftBlock(p, 0, { tableName: 't', chainName: 'c', verdict: 0, verdictChainName: undefined, tableHandle: 1n, chainHandle: 2n, ruleHandle: undefined, policy: true });
    expect(nftSection(new DataView(p.buffer), 0)).toEqual({ table_name: 't', chain_name: 'c', verdict: 'drop', table_handle: 1n, chain_handle: 2n, policy: true });
  });
});

describe('ct block -> Retis ct section', () => {
  const F = CtFlags.values;
  const C = ctConn.offsets;
  function block(flags: number, fill: (v: DataView, c: number) => void, state = 2, parent = false): DataView {
    const v = new DataView(new ArrayBuffer(CT_BLOCK_BYTES));
    v.setUint32(ctHead.offsets.state, state, true);
    v.setUint32(ctHead.offsets.parent, parent ? 1 : 0, true);
    for (const c of parent ? [ctHead.size, ctHead.size + ctConn.size] : [ctHead.size]) {
      v.setUint32(c + C.flags, flags, true);
      fill(v, c);
    }
    return v;
  }
  it('IPv4 ICMP as in Retis fixtures (mark when the kernel has it, no labels when zero)', () => {
    const v = block(F.dir_orig | F.dir_reply | F.ipv4 | F.icmp | F.mark, (v, c) => {
      [192, 168, 125, 10].forEach((x, i) => v.setUint8(c + C.o_src + i, x));
      [192, 168, 125, 11].forEach((x, i) => v.setUint8(c + C.o_dst + i, x));
      [192, 168, 125, 11].forEach((x, i) => v.setUint8(c + C.r_src + i, x));
      [192, 168, 125, 10].forEach((x, i) => v.setUint8(c + C.r_dst + i, x));
      v.setUint16(c + C.o_sdata, 29004, false);
      v.setUint16(c + C.r_sdata, 29004, false);
      v.setUint16(c + C.o_ddata, 8 << 8, true);
      v.setBigUint64(c + C.status, 8n, true);
    });
    expect(JSON.stringify(ctSection(v, 0, new CtNames(undefined)), (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x))).toBe(
      '{"state":"new","zone_id":0,"zone_dir":"Default","orig":{"ip":{"src":"192.168.125.10","dst":"192.168.125.11","version":"v4"},"proto":{"icmp":{"code":0,"type":8,"id":29004}}},"reply":{"ip":{"src":"192.168.125.11","dst":"192.168.125.10","version":"v4"},"proto":{"icmp":{"code":0,"type":0,"id":29004}}},"mark":0,"ct_status":8}',
    );
  });
  it('IPv6 TCP with state name, labels, parent; no mark without the kernel field', () => {
    const names = new CtNames(undefined);
    names.tcp.set(3, 'ESTABLISHED');
    const v = block(F.dir_orig | F.ipv6 | F.tcp, (v, c) => {
      v.setUint16(c + C.o_src, 0xfd00, false);
      v.setUint8(c + C.o_src + 15, 1);
      v.setUint16(c + C.o_sdata, 40000, false);
      v.setUint16(c + C.o_ddata, 80, false);
      v.setUint8(c + C.proto_state, 3);
      v.setUint8(c + C.labels, 1);
    }, 0, true);
    const s = ctSection(v, 0, names)!;
    expect(s).toMatchObject({ state: 'established', zone_dir: 'Original', proto_state: 'ESTABLISHED', labels: { hi: 0n, lo: 1n } });
    expect(s.mark).toBeUndefined();
    expect((s.orig as { ip: { src: string } }).ip.src).toBe('fd00::1');
    expect((s.orig as { proto: unknown }).proto).toEqual({ tcp: { sport: 40000, dport: 80 } });
    expect((s.parent as { proto_state: string }).proto_state).toBe('ESTABLISHED');
    expect(Object.keys(s)).toEqual(['state', 'zone_id', 'zone_dir', 'orig', 'reply', 'proto_state', 'labels', 'ct_status', 'parent']);
  });
});

describe('Retis profile files', () => {
  const dir = compat('profiles');
  it('example.yaml: when conditions (version, symbol) pick the entry for the kernel', () => {
    const p = findProfile(`${dir}/example.yaml`);
    expect(profileArgs(p, '6.18.4').entry).toBe('Default');
    expect(profileArgs(p, '5.10.0')).toEqual({ entry: 'Most of old kernels', args: ['--collectors', 'skb', '--skb-sections', 'l3'] });
  });
  it('drop.yaml: several documents, the first is dropmon', () => {
    const p = findProfile(`${dir}/drop.yaml`);
    expect(p.name).toBe('dropmon');
    expect(profileArgs(p).args).toEqual(['--collectors', 'skb-drop,skb,dev,ns', '--probe', 'tp:skb:kfree_skb/stack']);
  });
});
