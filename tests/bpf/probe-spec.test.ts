import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { Btf } from '../../bpf/btf.ts';
import type { Feature, KernelFeatures } from '../../bpf/features.ts';
import { formatProbeSpec, parseProbeSpec, ProbeResolveError, ProbeSpecError, resolveProbes, type ResolveContext } from '../../bpf/probe-spec.ts';

describe('parseProbeSpec', () => {
  const ok: [string, ReturnType<typeof parseProbeSpec>][] = [
    ['tp:skb:kfree_skb', { kind: 'tp', group: 'skb', name: 'kfree_skb' }],
    ['tp:skb:*', { kind: 'tp', group: 'skb', name: '*' }],
    ['tracepoint:net:netif_receive_skb', { kind: 'tracepoint', group: 'net', name: 'netif_receive_skb' }],
    ['raw_tp:skb:kfree_skb', { kind: 'raw_tp', group: 'skb', name: 'kfree_skb' }],
    ['raw_tp:kfree_skb', { kind: 'raw_tp', group: undefined, name: 'kfree_skb' }],
    ['tp_btf:kfree_skb', { kind: 'tp_btf', group: undefined, name: 'kfree_skb' }],
    ['kprobe:ip_rcv', { kind: 'kprobe', fn: 'ip_rcv' }],
    ['kretprobe:ip_rcv', { kind: 'kretprobe', fn: 'ip_rcv' }],
    ['fentry:tcp_v4_*', { kind: 'fentry', fn: 'tcp_v4_*' }],
    ['fexit:ip_rcv', { kind: 'fexit', fn: 'ip_rcv' }],
    ['uprobe:/usr/bin/ovs-vswitchd:dpif_recv', { kind: 'uprobe', binary: '/usr/bin/ovs-vswitchd', fn: 'dpif_recv' }],
    ['uretprobe:libc.so.6:malloc', { kind: 'uretprobe', binary: 'libc.so.6', fn: 'malloc' }],
    ['usdt:/usr/sbin/ovs-vswitchd:dpif_netlink_operate__:op_flow_put', { kind: 'usdt', binary: '/usr/sbin/ovs-vswitchd', provider: 'dpif_netlink_operate__', name: 'op_flow_put' }],
    ['usdt:/odd:path/bin:prov:name', { kind: 'usdt', binary: '/odd:path/bin', provider: 'prov', name: 'name' }],
    ['ip_rcv', { kind: 'function', fn: 'ip_rcv' }],
  ];
  it.each(ok)('parses %s', (input, spec) => {
    expect(parseProbeSpec(input)).toEqual(spec);
    expect(parseProbeSpec(formatProbeSpec(spec))).toEqual(spec);
  });

  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['tp:kfree_skb', /expected tp:GROUP:NAME/],
    ['tp:a:b:c', /expected tp:GROUP:NAME/],
    ['kprobe:', /missing function name/],
    ['kprobe:a:b', /expected kprobe:FUNCTION/],
    ['uprobe:fn', /expected uprobe:BINARY:FUNCTION/],
    ['usdt:bin:name', /expected usdt:BINARY:PROVIDER:NAME/],
    ['bogus:x', /unknown probe type 'bogus'/],
    ['tp:skb:kfree skb', /characters other than/],
  ];
  it.each(bad)('rejects %j', (input, re) => {
    expect(() => parseProbeSpec(input)).toThrow(ProbeSpecError);
    expect(() => parseProbeSpec(input)).toThrow(re);
  });
});

const hasBtf = existsSync('/sys/kernel/btf/vmlinux');
if (!hasBtf) console.log('SKIP resolveProbes tests: no kernel BTF');

describe.skipIf(!hasBtf)('resolveProbes (fake kernels)', () => {
  let tracefs: string;
  const y: Feature = { supported: true, reason: 'test: yes' };
  const n = (why: string): Feature => ({ supported: false, reason: why });
  const features = (over: Partial<KernelFeatures>): KernelFeatures => ({
    kernelRelease: 'test', btf: y, ringbuf: y, tracepoint: y, rawTracepoint: y, tpBtf: y, kprobe: y, kretprobe: y,
    fentry: y, fexit: y, uprobe: y, uretprobe: y, usdt: y, bpfCookie: y, directPacketLoads: y, ...over,
  });
  const ctx = (over: Partial<KernelFeatures>, withTracefs = true): ResolveContext => ({
    features: features(over), btf: Btf.vmlinux(), tracefs: withTracefs ? tracefs : undefined, kallsyms: () => new Set(['ip_rcv', 'udp_rcv']),
  });

  beforeAll(() => {
    // A fake tracefs: only the files resolution reads.
    tracefs = mkdtempSync(join(tmpdir(), 'rts-tracefs-'));
    for (const [g, e] of [['skb', 'kfree_skb'], ['skb', 'consume_skb'], ['skb', 'skb_copy_datagram_iovec'], ['net', 'netif_receive_skb'], ['net', 'net_dev_start_xmit']]) {
      mkdirSync(join(tracefs, 'events', g!, e!), { recursive: true });
      writeFileSync(join(tracefs, 'events', g!, e!, 'id'), '1\n');
    }
  });
  afterAll(() => rmSync(tracefs, { recursive: true, force: true }));

  it('tp: prefers tp_btf, then raw_tp, then a classic tracepoint', () => {
    const [a] = resolveProbes(['tp:skb:kfree_skb'], ctx({}));
    expect(a).toMatchObject({ name: 'tp:skb:kfree_skb', attach: { type: 'tp_btf' }, btfTarget: 'kfree_skb' });
    const [b] = resolveProbes(['tp:skb:kfree_skb'], ctx({ tpBtf: n('blocked') }));
    expect(b).toMatchObject({ name: 'tp:skb:kfree_skb', attach: { type: 'raw_tp', name: 'kfree_skb' } });
    expect(b!.why).toContain('blocked');
    const [c] = resolveProbes(['tp:skb:kfree_skb'], ctx({ tpBtf: n('x'), rawTracepoint: n('y') }));
    expect(c).toMatchObject({ attach: { type: 'tracepoint', group: 'skb', name: 'kfree_skb' } });
  });

  it('expands wildcards over a group with tracefs, and says why it cannot without', () => {
    const all = resolveProbes(['tp:skb:*'], ctx({}));
    expect(all.map((p) => p.name)).toEqual(['tp:skb:consume_skb', 'tp:skb:kfree_skb', 'tp:skb:skb_copy_datagram_iovec']);
    expect(() => resolveProbes(['tp:skb:*'], ctx({}, false))).toThrow(/need tracefs/);
    expect(resolveProbes(['tp:skb:kfree_skb', 'tp:skb:k*'], ctx({}))).toHaveLength(1); // deduplicated
  });

  it('points at the right group when the name is in another one', () => {
    expect(() => resolveProbes(['tp:net:kfree_skb'], ctx({}))).toThrow(/did you mean skb:kfree_skb/);
    expect(() => resolveProbes(['tp:skb:nope'], ctx({}))).toThrow(ProbeResolveError);
  });

  it('bare FN: kprobe when the kernel has kprobes, else fentry, else both reasons', () => {
    expect(resolveProbes(['ip_rcv'], ctx({}))[0]).toMatchObject({ name: 'kprobe:ip_rcv', attach: { type: 'kprobe', fn: 'ip_rcv' } });
    expect(resolveProbes(['ip_rcv'], ctx({ kprobe: n('no CONFIG_KPROBES') }))[0]).toMatchObject({ name: 'fentry:ip_rcv', attach: { type: 'fentry' }, btfTarget: 'ip_rcv' });
    const e = (() => {
      try {
        resolveProbes(['ip_rcv'], ctx({ kprobe: n('no CONFIG_KPROBES'), fentry: n('EPERM') }));
      } catch (err) {
        return err as Error;
      }
      return undefined;
    })();
    expect(e?.message).toMatch(/kprobe unavailable: no CONFIG_KPROBES; fentry unavailable: EPERM/);
  });

  it('explicit kprobe/fentry refuse with the feature reason', () => {
    expect(() => resolveProbes(['kprobe:ip_rcv'], ctx({ kprobe: n('no kprobe PMU') }))).toThrow(/kprobe unavailable: no kprobe PMU/);
    expect(() => resolveProbes(['fexit:ip_rcv'], ctx({ fexit: n('EPERM') }))).toThrow(/fexit unavailable: EPERM/);
    expect(() => resolveProbes(['kprobe:not_in_kallsyms'], ctx({}))).toThrow(/not a kernel function/);
    expect(() => resolveProbes(['fentry:not_a_real_function_x'], ctx({}))).toThrow(/has no BTF/);
  });

  it('user probes check the binary', () => {
    const [u] = resolveProbes(['uprobe:bash:main'], ctx({}));
    expect(u).toMatchObject({ attach: { type: 'uprobe', fn: 'main' } });
    expect((u!.attach as { binary: string }).binary).toMatch(/\/bash$/);
    expect(() => resolveProbes(['usdt:/nonexistent/bin:p:n'], ctx({}))).toThrow(/not found/);
    expect(() => resolveProbes(['usdt:bash:p:n'], ctx({ usdt: n('no uprobes') }))).toThrow(/usdt unavailable: no uprobes/);
  });
});
