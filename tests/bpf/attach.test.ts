/**
 * Live: every attach type this kernel supports fires on real traffic (made inside a private
 * network namespace, or by a test binary); every unsupported one is skipped with its reason
 * printed, and refused with that reason by the resolver.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Btf } from '../../bpf/btf.ts';
import { checkEnvironment, type EnvReport } from '../../bpf/env.ts';
import { probeFeatures, type Feature, type KernelFeatures } from '../../bpf/features.ts';
import { closeAll, openResourceCount } from '../../bpf/lifecycle.ts';
import { bpfObjectPath } from '../../bpf/native.ts';
import { ProbeSet } from '../../bpf/probe-set.ts';
import { resolveProbes, type ResolvedProbe } from '../../bpf/probe-spec.ts';
import type { ConstantValue } from '../../bpf/object.ts';
import { selftestEvent, SelftestKind } from '../../bpf/progs/selftest.layout.ts';
import { createNetns, liveIt, liveSkipReason, SELFTEST_PROGRAMS, usdtProvider, type Netns } from './helpers.ts';

const skipAll = liveSkipReason();
if (skipAll) console.log(`SKIP live attach tests: ${skipAll}`);

const features: KernelFeatures | undefined = skipAll ? undefined : probeFeatures();
if (features) {
  // The matrix, printed once: what this kernel supports and why not.
  for (const [k, v] of Object.entries(features)) if (typeof v === 'object') console.log(`feature ${k.padEnd(13)} ${v.supported ? 'yes' : 'NO '} ${v.reason}`);
}
const why = (f: (k: KernelFeatures) => Feature): string | undefined => skipAll ?? (f(features!).supported ? undefined : f(features!).reason);
const provider = skipAll ? undefined : usdtProvider();
const providerSkip = provider && 'skip' in provider ? provider.skip : undefined;

describe('attach types (live, root)', () => {
  let ns: Netns;
  let env: EnvReport;
  let btf: Btf;

  beforeAll(() => {
    if (skipAll) return;
    btf = Btf.vmlinux();
    // Classic tracepoints and wildcards need tracefs: mount it for the test, unmount after.
    env = checkEnvironment({ allowSystemChanges: true, needTracefs: true });
    ns = createNetns('att');
  });

  afterAll(() => {
    ns?.remove();
    env?.undo();
    closeAll();
  });

  type Ev = ReturnType<typeof selftestEvent.decode>;

  /** Load + attach `specs`, run `traffic`, then detach and drain: every event of the window. */
  async function run(
    specs: string[],
    traffic: () => void,
    opts: { constants?: (p: ResolvedProbe) => Record<string, ConstantValue>; programFor?: (p: ResolvedProbe) => string | undefined } = {},
  ): Promise<{ events: Ev[]; probes: ResolvedProbe[] }> {
    const probes = resolveProbes(specs, { features: features!, btf, tracefs: env.tracefs });
    const set = ProbeSet.load(probes, {
      object: bpfObjectPath('selftest'),
      programs: SELFTEST_PROGRAMS,
      layouts: [selftestEvent],
      ...(opts.constants ? { constants: opts.constants } : {}),
      ...(opts.programFor ? { programFor: opts.programFor } : {}),
    });
    try {
      const events: Ev[] = [];
      const reader = set.openReader((b) => void events.push(...b.decode(selftestEvent)));
      set.attach();
      traffic();
      set.detach();
      await reader.flush();
      reader.close();
      expect(set.losses().total).toBe(0n);
      return { events, probes };
    } finally {
      set.close();
    }
  }

  const inNs = (): Record<string, ConstantValue> => ({ skb_arg: 0, filter_netns: ns.inode });

  liveIt('tracepoint (perf event): tracepoint:skb:kfree_skb fires on drops in a netns', why((f) => f.tracepoint), async () => {
    const off = btf.memberPath('trace_event_raw_kfree_skb.skbaddr').offsets[0]!;
    const { events, probes } = await run(['tracepoint:skb:kfree_skb'], () => ns.udpToClosedPort(3), {
      constants: () => ({ skb_tp_offset: off, filter_netns: ns.inode }),
    });
    expect(probes[0]!.attach.type).toBe('tracepoint');
    // The datagrams die on lo (ifindex 1). Other frees in the netns may show up too (6.1
    // frees an skb in unix_stream_connect when the shell connects): not ours to count.
    const udp = events.filter((e) => e.ifindex === 1);
    expect(udp.length).toBeGreaterThanOrEqual(3);
    for (const e of events) expect(e).toMatchObject({ kind: SelftestKind.values.tracepoint, netns: ns.inode });
  });

  liveIt('raw_tp: raw_tp:skb:kfree_skb fires on drops in a netns', why((f) => f.rawTracepoint), async () => {
    const { events, probes } = await run(['raw_tp:skb:kfree_skb'], () => ns.udpToClosedPort(3), { constants: inNs });
    expect(probes[0]!.attach).toEqual({ type: 'raw_tp', name: 'kfree_skb' });
    expect(events.length).toBeGreaterThanOrEqual(3);
    for (const e of events) expect(e).toMatchObject({ kind: SelftestKind.values.raw_tp, netns: ns.inode });
  });

  liveIt('tp_btf: tp_btf:skb:kfree_skb fires on drops in a netns', why((f) => f.tpBtf), async () => {
    const { events } = await run(['tp_btf:skb:kfree_skb'], () => ns.udpToClosedPort(3), { constants: inNs });
    expect(events.length).toBeGreaterThanOrEqual(3);
    for (const e of events) expect(e).toMatchObject({ kind: SelftestKind.values.tp_btf, netns: ns.inode });
  });

  liveIt('tp_btf typed arguments: the drop reason is named with this kernel\'s BTF', why((f) => f.tpBtf), async () => {
    const { events } = await run(['tp:skb:kfree_skb'], () => ns.udpToClosedPort(2), {
      constants: () => ({ filter_netns: ns.inode }),
      programFor: () => 'selftest_kfree_skb',
    });
    const reasons = btf.dropReasons();
    // Every reason resolves to a name of this kernel; the datagrams' is NO_SOCKET (a 6.1
    // kernel adds a NOT_SPECIFIED free of the shell's unix-socket connect).
    for (const e of events) {
      expect(e.kind).toBe(SelftestKind.values.kfree_skb);
      expect(reasons.get(e.reason)).toBeDefined();
    }
    expect(events.filter((e) => reasons.get(e.reason) === 'NO_SOCKET').length).toBeGreaterThanOrEqual(2);
  });

  liveIt('tp: auto-selects the best attach type (tp:net:netif_receive_skb on ping)', skipAll, async () => {
    const { events, probes } = await run(['tp:net:netif_receive_skb'], () => ns.ping(3), { constants: inNs });
    const chosen = probes[0]!;
    console.log(`tp:net:netif_receive_skb attached as ${chosen.attach.type} (${chosen.why})`);
    expect(chosen.name).toBe('tp:net:netif_receive_skb');
    expect(events.length).toBeGreaterThanOrEqual(6); // 3 echo requests + 3 replies on lo
    for (const e of events) expect(e.netns).toBe(ns.inode);
  });

  liveIt('wildcards: tp:skb:* expands over the group and fires', skipAll, async () => {
    const { events, probes } = await run(['tp:skb:*'], () => ns.udpToClosedPort(2), { constants: inNs });
    expect(probes.length).toBeGreaterThan(1);
    expect(probes.map((p) => p.name)).toContain('tp:skb:kfree_skb');
    const ids = new Set(events.map((e) => e.probe_id));
    expect(ids.size).toBeGreaterThanOrEqual(1);
    expect(events.length).toBeGreaterThanOrEqual(2);
  }, 60_000);

  liveIt('kprobe: kprobe:ip_rcv fires on ping in a netns', why((f) => f.kprobe), async () => {
    const { events } = await run(['kprobe:ip_rcv'], () => ns.ping(2), { constants: inNs });
    expect(events.filter((e) => e.kind === SelftestKind.values.kprobe).length).toBeGreaterThanOrEqual(4);
  });

  liveIt('kretprobe: kretprobe:ip_rcv fires on ping', why((f) => f.kretprobe), async () => {
    const { events } = await run(['kretprobe:ip_rcv'], () => ns.ping(2));
    expect(events.filter((e) => e.kind === SelftestKind.values.kretprobe).length).toBeGreaterThanOrEqual(4);
  });

  liveIt('fentry: fentry:ip_rcv fires on ping in a netns', why((f) => f.fentry), async () => {
    const { events } = await run(['fentry:ip_rcv'], () => ns.ping(2), { constants: inNs });
    expect(events.filter((e) => e.kind === SelftestKind.values.fentry).length).toBeGreaterThanOrEqual(4);
  });

  liveIt('fexit: fexit:ip_rcv fires on ping', why((f) => f.fexit), async () => {
    const { events } = await run(['fexit:ip_rcv'], () => ns.ping(2));
    expect(events.filter((e) => e.kind === SelftestKind.values.fexit).length).toBeGreaterThanOrEqual(4);
  });

  const unsupported = skipAll ? [] : (['kprobe', 'kretprobe', 'fentry', 'fexit'] as const).filter((k) => !features![k].supported);
  liveIt(`unsupported types are refused with their reason (${unsupported.join(', ') || 'none here'})`, skipAll ?? (unsupported.length ? undefined : 'every kernel attach type is supported here'), () => {
    for (const k of unsupported) {
      expect(() => resolveProbes([`${k}:ip_rcv`], { features: features!, btf, tracefs: env.tracefs })).toThrow(features![k].reason);
    }
    // A bare function name falls back kprobe -> fentry and, with neither, explains both.
    if (unsupported.includes('kprobe') && unsupported.includes('fentry')) {
      expect(() => resolveProbes(['ip_rcv'], { features: features!, btf, tracefs: env.tracefs })).toThrow(/kprobe unavailable: .*; fentry unavailable: /);
    }
  });

  const user = (f: (k: KernelFeatures) => Feature): string | undefined => why(f) ?? providerSkip;
  const runProvider = (): void => void execFileSync((provider as { path: string }).path, ['5'], { timeout: 10_000 });
  const fromProvider = (events: Ev[]): Ev[] => events.filter((e) => e.comm === 'usdt-provider');

  liveIt('uprobe: fires on each call of a function in a test binary', user((f) => f.uprobe), async () => {
    const bin = (provider as { path: string }).path;
    const { events } = await run([`uprobe:${bin}:retis_test_func`], runProvider);
    expect(fromProvider(events).map((e) => e.arg0)).toEqual([1n, 2n, 3n, 4n, 5n]);
  });

  liveIt('uretprobe: sees the return values', user((f) => f.uretprobe), async () => {
    const bin = (provider as { path: string }).path;
    const { events } = await run([`uretprobe:${bin}:retis_test_func`], runProvider);
    expect(fromProvider(events).map((e) => e.arg0)).toEqual([3n, 5n, 7n, 9n, 11n]);
  });

  liveIt('usdt: usdt:BINARY:retis_test:hit fires with its argument', user((f) => f.usdt), async () => {
    const bin = (provider as { path: string }).path;
    const { events, probes } = await run([`usdt:${bin}:retis_test:hit`], runProvider);
    expect(probes[0]!.attach).toMatchObject({ type: 'usdt', provider: 'retis_test', name: 'hit' });
    const got = fromProvider(events);
    expect(got.map((e) => e.kind)).toEqual(Array(5).fill(SelftestKind.values.usdt));
    expect(got.map((e) => e.arg0)).toEqual([1n, 2n, 3n, 4n, 5n]);
  });

  it('leaves nothing open', () => {
    expect(openResourceCount()).toBe(0);
  });
});
