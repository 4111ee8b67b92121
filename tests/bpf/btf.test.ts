import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Btf, BtfError } from '../../bpf/btf.ts';

const hasBtf = existsSync('/sys/kernel/btf/vmlinux');
if (!hasBtf) console.log('SKIP btf tests: /sys/kernel/btf/vmlinux missing (kernel without BTF)');

function bpftoolRaw(): string | undefined {
  try {
    return execFileSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'raw'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  } catch {
    return undefined;
  }
}

describe.skipIf(!hasBtf)('btf (running kernel)', () => {
  const btf = hasBtf ? Btf.vmlinux() : (undefined as never);

  it('parses vmlinux quickly', () => {
    const t0 = performance.now();
    const fresh = Btf.parse(new Uint8Array(execFileSync('cat', ['/sys/kernel/btf/vmlinux'], { maxBuffer: 1 << 30 })));
    expect(fresh.typeCount).toBeGreaterThan(10_000);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('resolves drop reason names of this kernel', () => {
    const r = btf.dropReasons();
    const byName = new Map([...r].map(([v, n]) => [n, v]));
    // Values move between kernels (NOT_SPECIFIED is 1 on 6.1, 2 once SKB_CONSUMED came
    // first): check against bpftool's reading of the same BTF where it is installed.
    const m = /'SKB_DROP_REASON_NOT_SPECIFIED' val=(\d+)/.exec(bpftoolRaw() ?? '');
    if (m) expect(byName.get('NOT_SPECIFIED')).toBe(Number(m[1]));
    else expect(byName.get('NOT_SPECIFIED')).toBeLessThan(byName.get('NO_SOCKET')!);
    expect(byName.has('NO_SOCKET')).toBe(true);
    expect(byName.has('NETFILTER_DROP')).toBe(true);
    expect([...r.values()].some((n) => n.startsWith('SKB_DROP_REASON_'))).toBe(false);
  });

  it('resolves member paths through pointers and anonymous unions', () => {
    const inum = btf.memberPath('sk_buff.dev.nd_net.net.ns.inum');
    expect(inum.offsets).toHaveLength(3); // skb -> dev -> net -> inum
    expect(inum.size).toBe(4);
    expect(inum.kind).toBe('int');
    const mark = btf.memberPath('sk_buff.mark'); // lives in an anonymous union
    expect(mark.offsets).toHaveLength(1);
    expect(mark.typeName).toBe('__u32');
    const pkt = btf.memberPath('sk_buff.pkt_type'); // a bitfield
    expect(pkt.bitfieldSize).toBe(3);
    expect(() => btf.memberPath('sk_buff.nope')).toThrow(BtfError);
    expect(() => btf.memberPath('sk_buff.nope')).toThrow(/has no member 'nope' \(members: next, prev, dev/);
    expect(() => btf.memberPath('no_such_struct.x')).toThrow(/no struct or union named/);
  });

  it('agrees with bpftool on member offsets', () => {
    const raw = bpftoolRaw();
    if (!raw) {
      console.log('SKIP bpftool cross-check: bpftool not available');
      return;
    }
    // "[N] STRUCT 'sk_buff' size=232 vlen=..." followed by "\t'mark' type_id=.. bits_offset=..."
    const start = raw.indexOf("STRUCT 'sk_buff' size=");
    const block = raw.slice(start, raw.indexOf('\n[', start));
    const size = Number(/size=(\d+)/.exec(block)?.[1]);
    const st = btf.findType('sk_buff', 'struct')!;
    expect(st.size).toBe(size);
    // Direct members (not inside the anonymous unions, which bpftool lists as separate types).
    for (const m of ['len', 'data_len', 'head', 'data']) {
      const bits = Number(new RegExp(`'${m}' type_id=\\d+ bits_offset=(\\d+)`).exec(block)?.[1]);
      expect(Number.isFinite(bits)).toBe(true);
      expect(btf.memberPath(`sk_buff.${m}`).offsets[0]).toBe(bits / 8);
    }
  });

  it('knows functions and tracepoints', () => {
    expect(btf.hasFunction('ip_rcv')).toBe(true);
    expect(btf.hasFunction('surely_not_a_kernel_function')).toBe(false);
    expect(btf.hasTracepoint('kfree_skb')).toBe(true);
    expect(btf.hasTracepoint('netif_receive_skb')).toBe(true);
    const args = btf.tracepointArgs('kfree_skb')!;
    expect(args[0]!.typeName).toBe('struct sk_buff *');
    expect(args.some((a) => a.typeName === 'enum skb_drop_reason')).toBe(true);
    expect(btf.functionParams('ip_rcv')?.[0]?.name).toBe('skb');
  });
});

describe('btf (synthetic)', () => {
  it('rejects garbage with a clear error', () => {
    expect(() => Btf.parse(new Uint8Array(32))).toThrow(/bad BTF magic/);
    expect(() => Btf.parse(new Uint8Array(4))).toThrow(/too short/);
  });
  it('explains a missing vmlinux BTF', () => {
    expect(() => Btf.vmlinux('/nonexistent/vmlinux')).toThrow(/built without BTF \(CONFIG_DEBUG_INFO_BTF=y/);
  });
});
