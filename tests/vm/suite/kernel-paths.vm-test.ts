/**
 * VM only: kernel paths Retis's collectors hook that the development host cannot reach (no kprobes,
 * fentry refused), proven reachable through our binding on real traffic in the 6.1 guest:
 * - nft verdicts: kprobe __nft_trace_packet (Retis's nft collector), fired by a `meta nftrace set 1`
 *   rule like the Retis_Table that `retis collect --allow-system-changes` creates;
 * - skb-tracking across a head reallocation: kprobe/kretprobe + fentry pskb_expand_head on a
 *   packet forwarded into an ipip tunnel (a forwarded ping has 16 bytes of headroom, the tunnel
 *   needs ~48, so ip_forward's skb_cow reallocates the head), then the frees of that skb.
 */
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { closeAll } from '../../../bpf/lifecycle.ts';
import { createNetns, liveIt, type Netns } from '../../bpf/helpers.ts';
import { capture, counts, openKernel, SelftestKind, vmSuiteSkipReason, type Kernel } from './probes.ts';
import { tunnelRouter } from './tunnel-lab.ts';

const skip = vmSuiteSkipReason();
if (skip) console.log(`SKIP VM kernel path tests: ${skip}`);

describe('kernel paths for skb-tracking and nft (VM)', () => {
  let k: Kernel;
  const nss: Netns[] = [];
  beforeAll(() => {
    if (skip) return;
    k = openKernel();
  });
  afterAll(() => {
    for (const ns of nss) ns.remove();
    k?.env.undo();
    closeAll();
  });

  liveIt('nft: kprobe:__nft_trace_packet fires for packets marked by meta nftrace set 1', skip, async () => {
    const ns = createNetns('nft');
    nss.push(ns);
    // One traced chain on output: every rule evaluation and the verdict go through __nft_trace_packet.
    ns.exec('sh', ['-c', 'nft add table inet rts && nft add chain inet rts out "{ type filter hook output priority 0; }" && nft add rule inet rts out meta nftrace set 1 && nft add rule inet rts out counter accept']);
    const c = await capture(k, ['kprobe:__nft_trace_packet', 'kprobe:nft_do_chain'], () => ns.ping(3));
    console.log(`nft hooks: ${counts(c)}`);
    // Per packet: the nftrace rule, the counter rule and the accept verdict (3 echo requests, 3 replies on lo).
    expect(c.byProbe.get('kprobe:nft_do_chain')!.length).toBeGreaterThanOrEqual(6);
    const traced = c.byProbe.get('kprobe:__nft_trace_packet')!;
    expect(traced.length, counts(c)).toBeGreaterThanOrEqual(6);
    expect(traced.every((e) => e.kind === SelftestKind.values.kprobe)).toBe(true);
  }, 300_000);

  liveIt('skb-tracking: pskb_expand_head reallocates the head of a forwarded skb, which is then freed', skip, async () => {
    // client --veth--> router --ipip (over a dummy)--> nowhere. The router forwards into the tunnel.
    const client = createNetns('cli');
    const router = createNetns('rtr');
    nss.push(client, router);
    tunnelRouter(client, router, 201);
    const specs = ['kprobe:pskb_expand_head', 'kretprobe:pskb_expand_head', 'fentry:pskb_expand_head', 'tp:skb:kfree_skb', 'tp:skb:consume_skb'];
    const c = await capture(k, specs, () => {
      // No reply can come back (the tunnel leads nowhere): ping's failure is expected.
      try {
        client.exec('ping', ['-c', '3', '-i', '0.2', '-W', '1', '10.203.0.9'], 30_000);
      } catch { /* 100% packet loss: exit status 1 */ }
    }, (p) => ({
      // The skb is argument 0 of pskb_expand_head and of both tracepoints; keep only the router's.
      ...(p.attach.type === 'kretprobe' ? {} : { skb_arg: 0 }),
      ...(p.name.startsWith('tp:') || p.attach.type === 'kretprobe' ? {} : { filter_netns: router.inode }),
    }));
    console.log(`skb hooks: ${counts(c)}`);
    const expanded = c.byProbe.get('kprobe:pskb_expand_head')!;
    // 3 echo requests of 84 bytes (IP header + ICMP, the Ethernet header already pulled) forwarded by the router.
    const fwd = expanded.filter((e) => e.len === 84);
    expect(fwd.length, counts(c)).toBeGreaterThanOrEqual(3);
    expect(c.byProbe.get('fentry:pskb_expand_head')!.filter((e) => e.len === 84).length).toBeGreaterThanOrEqual(3);
    expect(c.byProbe.get('kretprobe:pskb_expand_head')!.some((e) => e.arg0 === 0n)).toBe(true);
    // The same skb (its address survives the head change) is freed afterwards: dropped or consumed.
    const freed = new Set([...c.byProbe.get('tp:skb:kfree_skb')!, ...c.byProbe.get('tp:skb:consume_skb')!].map((e) => e.skb));
    expect(fwd.filter((e) => freed.has(e.skb)).length).toBeGreaterThanOrEqual(1);
  }, 300_000);
});
