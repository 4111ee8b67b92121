/**
 * -f/-m on real traffic (root): two hosts in network namespaces (tests/capture/topology.ts), UDP to
 * two ports. Each filter must keep exactly the packets it matches, each with its full series
 * (transmit in A, receive in B, the drop), and nothing else; a followed packet stays followed
 * where the filter no longer matches (the tracking rule). Bounded: a few dozen datagrams.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { liveIt } from '../bpf/helpers.ts';
import { captureSkipReason, loadRows, runCapture } from '../capture/run-capture.ts';
import { CLOSED_PORT, NFT_PORT, createTopology, type Topology } from '../capture/topology.ts';

const skip = captureSkipReason();
if (skip) console.log(`SKIP live filter tests: ${skip}`);

/** UDP to this port is dropped by nft in A's output hook, before the packet has a MAC header. */
const OUT_DROP_PORT = 7779;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-live-filters-'));

/** The rows of a capture's Arrow stream. */
const rows = (dir: string, sql: string): Promise<Record<string, unknown>[]> => loadRows(path.join(dir, 'events.arrow'), sql);

interface Series {
  ids: Set<string>;
  probes: string[];
}

/** UDP datagrams of the test by (dport, payload number), with their events in order. */
async function seriesByPacket(dir: string): Promise<{ packets: Map<string, Series>; other: number }> {
  const all = await rows(dir, `SELECT track_id, dport, probe, dev_name, reason, packet.data AS data FROM events WHERE startup IS NULL ORDER BY eid`);
  const packets = new Map<string, Series>();
  let other = 0;
  for (const r of all) {
    const data = r.data as Uint8Array | null;
    const payload = data && data.length >= 51 ? Buffer.from(data.subarray(42, 51)).toString('latin1') : '';
    if (!/^rts\d{6}$/.test(payload)) {
      other++;
      continue;
    }
    const key = `${r.dport}/${payload}`;
    const p = packets.get(key) ?? { ids: new Set<string>(), probes: [] };
    p.ids.add(String(r.track_id));
    p.probes.push(`${r.probe}@${r.dev_name ?? ''}${r.reason ? `:${r.reason}` : ''}`);
    packets.set(key, p);
  }
  return { packets, other };
}

describe('retis-capture -f/-m live (root, two netns + veth)', () => {
  let t: Topology;
  beforeAll(() => {
    if (skip) return;
    t = createTopology();
    // In A, mark datagrams to CLOSED_PORT (the -m test): meta mark is set at the output hook,
    // before the first probe (net_dev_start_xmit) sees them.
    t.exec(t.a, 'nft', ['add table inet rts_mark { chain out { type filter hook output priority 0; udp dport ' + CLOSED_PORT + ' meta mark set 0x42; }; }']);
    // And a conntrack mark on datagrams to NFT_PORT (the cast test: skb->_nfct -> struct nf_conn).
    // And a drop on A's output path: there the skb has no MAC header yet (the L3 variant runs).
    t.exec(t.a, 'nft', ['add table inet rts_outdrop { chain out { type filter hook output priority 0; udp dport ' + OUT_DROP_PORT + ' drop; }; }']);
    t.exec(t.a, 'nft', ['add table inet rts_ct { chain out { type filter hook output priority 0; udp dport ' + NFT_PORT + ' ct mark set 0x55; }; }']);
  });
  afterAll(() => {
    t?.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const send = (nNft: number, nClosed: number): string => {
    const script = path.join(tmp, `send-${nNft}-${nClosed}.sh`);
    fs.writeFileSync(script, `${t.sendScript(NFT_PORT, nNft)}\n${t.sendScript(CLOSED_PORT, nClosed)}\n`);
    return `sh ${script}`;
  };

  liveIt('-f keeps exactly the matching packets, each with its full series to the drop', skip, async () => {
    const dir = path.join(tmp, 'f');
    const r = await runCapture(['-o', dir, '-f', `udp port ${NFT_PORT}`, '--cmd', send(30, 40)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/L2\+L3 packet filter\(s\) loaded/);
    const { packets, other } = await seriesByPacket(dir);
    expect(other).toBe(0);
    expect(packets.size).toBe(30);
    for (const [key, p] of packets) {
      expect(key.startsWith(`${NFT_PORT}/`), key).toBe(true);
      expect(p.ids.size, key).toBe(1);
      expect(p.probes, key).toEqual([`tp:net:net_dev_start_xmit@${t.vethA}`, `tp:net:netif_receive_skb@${t.vethB}`, `tp:skb:kfree_skb@${t.vethB}:NETFILTER_DROP`]);
    }
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as { filters: { packet: string; meta: string | null } };
    expect(meta.filters).toEqual({ packet: `udp port ${NFT_PORT}`, meta: null });
  }, 90_000);

  liveIt('-m on a mark set by nft keeps exactly the marked packets (mark gone after the netns crossing: kept by tracking)', skip, async () => {
    const dir = path.join(tmp, 'm');
    const r = await runCapture(['-o', dir, '-m', 'sk_buff.mark == 0x42', '--cmd', send(20, 25)]);
    expect(r.status, r.stderr).toBe(0);
    const { packets, other } = await seriesByPacket(dir);
    expect(other).toBe(0);
    expect(packets.size).toBe(25);
    for (const [key, p] of packets) {
      expect(key.startsWith(`${CLOSED_PORT}/`), key).toBe(true);
      expect(p.ids.size, key).toBe(1);
      expect(p.probes, key).toEqual([`tp:net:net_dev_start_xmit@${t.vethA}`, `tp:net:netif_receive_skb@${t.vethB}`, `tp:skb:kfree_skb@${t.vethB}:NO_SOCKET`]);
    }
  }, 90_000);

  liveIt('-m through a masked pointer cast: sk_buff._nfct:~0x7:nf_conn.mark (ct mark set by nft)', skip, async () => {
    const dir = path.join(tmp, 'ct');
    const r = await runCapture(['-o', dir, '-m', 'sk_buff._nfct:~0x7:nf_conn.mark == 0x55', '--cmd', send(12, 10)]);
    expect(r.status, r.stderr).toBe(0);
    const { packets, other } = await seriesByPacket(dir);
    expect(other).toBe(0);
    expect(packets.size).toBe(12);
    for (const [key, p] of packets) {
      expect(key.startsWith(`${NFT_PORT}/`), key).toBe(true);
      expect(p.probes, key).toEqual([`tp:net:net_dev_start_xmit@${t.vethA}`, `tp:net:netif_receive_skb@${t.vethB}`, `tp:skb:kfree_skb@${t.vethB}:NETFILTER_DROP`]);
    }
  }, 90_000);

  liveIt('L3 variant on skbs without a MAC header (output-path drop), and the Ethernet-only fallback over the fake header', skip, async () => {
    const script = path.join(tmp, 'send-out.sh');
    // Every datagram is refused by the output hook (EPERM): the sender complains, that is expected.
    fs.writeFileSync(script, `${t.sendScript(OUT_DROP_PORT, 12)} 2>/dev/null; ${t.sendScript(CLOSED_PORT, 8)}; true\n`);
    for (const [name, filter, want] of [
      ['l3', `udp dst port ${OUT_DROP_PORT}`, 12],
      ['fallback', `ether dst 00:00:00:00:00:00 and udp dst port ${OUT_DROP_PORT}`, 12], // no raw-IP form: the L2 program over the fake header (zero MACs)
      ['fallback-mac', `ether src 02:00:00:00:00:01 and udp dst port ${OUT_DROP_PORT}`, 0], // fake header: zero MACs
    ] as const) {
      const dir = path.join(tmp, `out-${name}`);
      const r = await runCapture(['-o', dir, '-p', 'tp:skb:kfree_skb', '-f', filter, '--cmd', `sh ${script}`]);
      expect(r.status, r.stderr).toBe(0);
      const all = await rows(dir, `SELECT dport, reason, packet.data AS data FROM events WHERE startup IS NULL`);
      expect(all.length, `${name}: ${r.stderr}`).toBe(want);
      for (const e of all) {
        expect(e.dport).toBe(OUT_DROP_PORT);
        expect(e.reason).toBe('NETFILTER_DROP');
        // The packet starts at L3: the fake Ethernet header has zero MACs.
        expect([...(e.data as Uint8Array).subarray(0, 12)].every((b) => b === 0)).toBe(true);
      }
    }
  }, 120_000);

  liveIt("Retis's test_filter.py: -c skb,dev -f 'icmp and host B' -m 'sk_buff.dev.name == A-side veth' -p tp:net:netif_rx", skip, async () => {
    const dir = path.join(tmp, 'retis-compat');
    const r = await runCapture([
      '-o', dir, '-c', 'skb,dev', '-f', `icmp and host ${t.addrB}`, '-m', `sk_buff.dev.name == '${t.vethA}'`, '-p', 'tp:net:netif_rx',
      '--cmd', `ip netns exec ${t.a} ping -c 3 -i 0.2 -W 2 ${t.addrB}`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const all = await rows(dir, `SELECT probe, dev_name, packet.data AS data FROM events WHERE startup IS NULL`);
    // The echo replies, received on A's veth: 10.250.N.2 -> 10.250.N.1, ICMP type 0.
    expect(all.length).toBe(3);
    for (const e of all) {
      const d = e.data as Uint8Array;
      expect(e.probe).toBe('tp:net:netif_rx');
      expect(e.dev_name).toBe(t.vethA);
      expect([...d.subarray(26, 30)].join('.')).toBe(t.addrB);
      expect([...d.subarray(30, 34)].join('.')).toBe(t.addrA);
      expect(d[34]).toBe(0);
    }
    // The numeric variant: the netns inode through three pointers.
    const inum = t.exec(t.a, 'stat', ['-L', '-c', '%i', '/proc/self/ns/net']).trim();
    const dir2 = path.join(tmp, 'retis-compat-inum');
    const r2 = await runCapture([
      '-o', dir2, '-c', 'skb,dev', '-f', `icmp and host ${t.addrB}`, '-m', `sk_buff.dev.nd_net.net.ns.inum == ${inum}`, '-p', 'tp:net:netif_rx',
      '--cmd', `ip netns exec ${t.a} ping -c 3 -i 0.2 -W 2 ${t.addrB}`,
    ]);
    expect(r2.status, r2.stderr).toBe(0);
    const all2 = await rows(dir2, `SELECT dev_name FROM events WHERE startup IS NULL`);
    expect(all2.map((e) => e.dev_name)).toEqual([t.vethA, t.vethA, t.vethA]);
  }, 120_000);

  liveIt('a followed packet stays followed where the filter no longer matches; without tracking it does not', skip, async () => {
    const filter = `sk_buff.dev.name == "${t.vethA}" and sk_buff.mark:0xf0 == 0x40`;
    const tracked = path.join(tmp, 'tracked');
    let r = await runCapture(['-o', tracked, '-m', filter, '-f', 'udp', '--cmd', send(0, 15)]);
    expect(r.status, r.stderr).toBe(0);
    let s = await seriesByPacket(tracked);
    expect(s.other).toBe(0);
    expect(s.packets.size).toBe(15);
    for (const [key, p] of s.packets) expect(p.probes, key).toEqual([`tp:net:net_dev_start_xmit@${t.vethA}`, `tp:net:netif_receive_skb@${t.vethB}`, `tp:skb:kfree_skb@${t.vethB}:NO_SOCKET`]);

    const untracked = path.join(tmp, 'untracked');
    r = await runCapture(['-o', untracked, '-c', 'skb,skb-drop,dev', '-m', filter, '-f', 'udp', '--cmd', send(0, 15)]);
    expect(r.status, r.stderr).toBe(0);
    s = await seriesByPacket(untracked);
    expect(s.other).toBe(0);
    expect(s.packets.size).toBe(15);
    for (const [key, p] of s.packets) expect(p.probes, key).toEqual([`tp:net:net_dev_start_xmit@${t.vethA}`]);
  }, 120_000);

  liveIt('errors: libpcap\'s message and exit 2; unknown member exit 1 with a suggestion', skip, async () => {
    let r = await runCapture(['-o', path.join(tmp, 'e1'), '-f', 'udp prot 53', '--duration', '1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("-f: invalid pcap filter 'udp prot 53': can't parse filter expression: syntax error");
    r = await runCapture(['-o', path.join(tmp, 'e2'), '-m', 'sk_buff.mark = 1', '--duration', '1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/-m: invalid meta filter 'sk_buff.mark = 1': unexpected '=' at column 14/);
    r = await runCapture(['-o', path.join(tmp, 'e3'), '-m', 'sk_buff.mrak == 1', '--duration', '1']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("struct sk_buff has no member 'mrak' (did you mean mark?)");
    expect(fs.existsSync(path.join(tmp, 'e3', 'events.arrow'))).toBe(false);
  }, 60_000);
});
