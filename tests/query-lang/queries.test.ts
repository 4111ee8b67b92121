/**
 * Query → expected rows, on Retis's own capture (26 packets through OVS) and on
 * generated captures whose ground truth is known (bench/gen).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeEventFile, type Truth } from '../../bench/gen/generate.ts';
import { compat, FIXTURES } from '../util/paths.ts';
import { load, query, type Loaded } from './util.ts';

/** [query, expected JSON lines (aggregates: exact rows in order)] on test_events_packets.json. */
const PACKETS: [string, Record<string, unknown>[]][] = [
  // The command-line contract's own queries.
  ['drops | count by reason', [{ reason: 'NO_SOCKET', count: 2 }]],
  ['events where dev = "veth-ns01" and proto = icmp | count', [{ count: 6 }]],
  ['events where dev = "veth0" and proto = udp | count', [{ count: 0 }]],
  [
    'events where probe = "tp:net:netif_receive_skb" | count by dev',
    [
      { dev: 'veth-ns01', count: 2 },
      { dev: 'veth-ns01-ovs', count: 2 },
      { dev: 'veth-ns02', count: 2 },
      { dev: 'veth-ns02-ovs', count: 2 },
    ],
  ],
  ['upcalls | stats latency', [{ count: 0, min: null, avg: null, p50: null, p90: null, p99: null, max: null }]],
  // Sources.
  ['events | count', [{ count: 27 }]],
  ['drops | count', [{ count: 2 }]],
  ['tracks | count', [{ count: 6 }]],
  ['upcalls | count', [{ count: 2 }]],
  // Where: operators, values, aliases, paths.
  ['events where saddr = 192.168.125.10 | count', [{ count: 12 }]],
  ['events where saddr != 192.168.125.10 | count', [{ count: 15 }]],
  ['events where not saddr = 192.168.125.10 | count', [{ count: 15 }]],
  ['events where saddr in 192.168.125.0/24 | count', [{ count: 26 }]],
  ['events where saddr in 192.168.125.8/30 | count', [{ count: 26 }]],
  ['events where saddr in 192.168.125.10/31 | count', [{ count: 26 }]],
  ['events where saddr in 192.168.125.11/32 | count', [{ count: 14 }]],
  ['events where saddr in 10.0.0.0/8 | count', [{ count: 0 }]],
  ['events where daddr in (192.168.125.11, 10.9.9.9) | count', [{ count: 12 }]],
  ['events where saddr in ::/0 | count', [{ count: 0 }]],
  ['events where src host 192.168.125.11 | count', [{ count: 14 }]],
  ['events where host 192.168.125.11 | count', [{ count: 26 }]],
  ['events where net 192.168.125.0/25 and not port 53 | count', [{ count: 26 }]],
  ['events where dev ~ "veth-ns0?" | count', [{ count: 10 }]],
  ['events where dev !~ "*-ovs" | count', [{ count: 11 }]],
  ['events where dev = veth-ns01 | count', [{ count: 6 }]],
  ['events where dev in (veth-ns01, "veth-ns02") | count', [{ count: 10 }]],
  ['events where ifindex between 10 and 11 | count', [{ count: 14 }]],
  ['events where ifindex not between 10 and 11 | count', [{ count: 13 }]],
  ['events where len >= 98 and len <= 0x62 | count', [{ count: 26 }]],
  ['events where netns = 4026532741 | count', [{ count: 6 }]],
  ['events where probe = kfree_skb | count', [{ count: 2 }]],
  ['events where probe = tp:skb:kfree_skb | count', [{ count: 2 }]],
  ['events where probe = raw_tp:skb:kfree_skb | count', [{ count: 2 }]],
  ['events where probe = kr:ovs_dp_upcall | count', [{ count: 2 }]],
  ['events where probe_type = kretprobe | count', [{ count: 2 }]],
  ['events where reason = no_socket | count', [{ count: 2 }]],
  ['events where reason = NETFILTER_DROP | count', [{ count: 0 }]],
  ['events where drop | count', [{ count: 2 }]],
  ['events where icmp | count', [{ count: 26 }]],
  ['events where udp or tcp | count', [{ count: 0 }]],
  ['events where ct.state = established or ct_state = new | count', [{ count: 2 }]],
  ['events where ct | count', [{ count: 6 }]],
  ['events where not ct | count', [{ count: 21 }]],
  ['events where ct.orig.ip.src = 192.168.125.10 and ct.reply.ip.src in 192.168.0.0/16 | count', [{ count: 6 }]],
  ['events where skb.meta.len > 80 | count', [{ count: 24 }]],
  ['events where skb_drop.drop_reason = NO_SOCKET | count', [{ count: 2 }]],
  ['events where ovs.event_type = upcall | fields eid, ovs.port', [{ eid: 4, 'ovs.port': 3319069055 }, { eid: 11, 'ovs.port': 3319069055 }]],
  ['events where tgid != pid | count', [{ count: 11 }]],
  ['events where comm = ping and cpu = 6 | count', [{ count: 15 }]],
  ['events where track = #1baa83c42ba1ffff8e95c3b67c00 | count', [{ count: 4 }]],
  ['events where track = 0x1baa83c42ba1ffff8e95c3b67c00 | count', [{ count: 4 }]],
  ['events where smac = fa:5c:bd:8e:cc:01 | count', [{ count: 14 }]],
  ['events where dmac = FA-5C-BD-8E-CC-01 | count', [{ count: 12 }]],
  ['events where time >= 2023-01-01T00:00:00Z | count', [{ count: 27 }]],
  ['events where time < 2000-01-01 | count', [{ count: 0 }]],
  ['events where elapsed between 3s and 4s | count', [{ count: 15 }]],
  ['events where ts > 30420000000000 | count', [{ count: 11 }]],
  ['events where seq <= 3 | fields seq, probe', [{ seq: 1, probe: null }, { seq: 2, probe: 'tp:net:net_dev_start_xmit' }, { seq: 3, probe: 'tp:net:netif_receive_skb' }]],
  // Stages.
  ['events where probe = kfree_skb | fields eid, ts, reason', [{ eid: 16, ts: 30419169457160, reason: 'NO_SOCKET' }, { eid: 27, ts: 30420178673616, reason: 'NO_SOCKET' }]],
  ['events | fields eid, dev as device | where device = "veth-ns02" | limit 2', [{ eid: 8, device: 'veth-ns02' }, { eid: 9, device: 'veth-ns02' }]],
  ['events | order by eid desc | limit 2 | fields eid', [{ eid: 27 }, { eid: 26 }]],
  ['events | count by cpu, comm', [{ cpu: 6, comm: 'ping', count: 15 }, { cpu: 6, comm: 'handler8', count: 11 }, { cpu: null, comm: null, count: 1 }]],
  ['events | count by proto | where count > 1', [{ proto: 'icmp', count: 26 }]],
  ['events | count by dev | order by dev | limit 2', [{ dev: 'veth-ns01', count: 6 }, { dev: 'veth-ns01-ovs', count: 8 }]],
  ['events | top 2 by comm', [{ comm: 'ping', count: 15 }, { comm: 'handler8', count: 11 }]],
  ['events | top 1 by ts | fields eid', [{ eid: 27 }]],
  ['events | count by dev | top 1', [{ dev: 'veth-ns01-ovs', count: 8 }]],
  ['events where len > 0 | stats len', [{ count: 26, min: 98, avg: 98, p50: 98, p90: 98, p99: 98, max: 98 }]],
  ['events | stats ifindex by dev | where dev = "veth-ns02"', [{ dev: 'veth-ns02', count: 4, min: 13, avg: 13, p50: 13, p90: 13, p99: 13, max: 13 }]],
  ['events | histogram ts every 100ms', [{ ts: 30415700000000, count: 1 }, { ts: 30419100000000, count: 15 }, { ts: 30420100000000, count: 11 }]],
  ['events | histogram len', [{ len: 98, count: 26 }]],
  ['events where ovs | count by ovs.event_type', [{ 'ovs.event_type': 'action_execute', count: 4 }, { 'ovs.event_type': 'upcall', count: 2 }, { 'ovs.event_type': 'upcall_return', count: 2 }]],
  // Tracks and series predicates.
  ['tracks | count by fate', [{ fate: 'unknown', count: 4 }, { fate: 'dropped', count: 2 }]],
  ['tracks where any(drop) | fields track, events, reason', [{ track: '1baa83c9f241ffff8e96eeea2600', events: 4, reason: 'NO_SOCKET' }, { track: '1baabff0d663ffff8e95c3b65000', events: 6, reason: 'NO_SOCKET' }]],
  ['tracks where any(drop) | limit 1 | fields track', [{ track: '1baa83c9f241ffff8e96eeea2600' }]],
  ['tracks | limit 1 | fields track, first(dev), last(probe)', [{ track: '1baa83c42ba1ffff8e95c3b67c00', 'first(dev)': 'veth-ns01', 'last(probe)': 'kretprobe:ovs_dp_upcall' }]],
  ['tracks where any(drop) and any(dev = "veth-ns02") | count', [{ count: 1 }]],
  ['tracks where any(drop) or any(ovs) | count', [{ count: 6 }]],
  ['tracks where not any(drop) | count', [{ count: 4 }]],
  ['tracks where all(proto = icmp) and netns_crossed | count', [{ count: 6 }]],
  ['tracks where first(dev) = veth-ns01 | count', [{ count: 2 }]],
  ['tracks where last(probe) = "tp:skb:kfree_skb" | count', [{ count: 2 }]],
  ['tracks where devs = "veth-ns02" and fate = unknown | count', [{ count: 3 }]],
  ['tracks where duration > 50us | count', [{ count: 3 }]],
  ['tracks where events >= 4 and saddr = 192.168.125.10 | count', [{ count: 2 }]],
  ['tracks | top 1 by events | fields track, events', [{ track: '1baabff0d663ffff8e95c3b65000', events: 6 }]],
  ['tracks | stats duration', [{ count: 6, min: 14099, avg: 59729, p50: 19009, p90: 194867, p99: 194867, max: 194867 }]],
  ['tracks where nat | count', [{ count: 0 }]],
  ['upcalls | fields upcall_ts, cpu, dev, outcome', [{ upcall_ts: 30419169098548, cpu: 6, dev: 'veth-ns01-ovs', outcome: 'unknown' }, { upcall_ts: 30419169364667, cpu: 6, dev: 'veth-ns02-ovs', outcome: 'unknown' }]],
  ['upcalls | count by outcome', [{ outcome: 'unknown', count: 2 }]],
];

describe('queries on test_events_packets.json', () => {
  let l: Loaded;
  beforeAll(async () => {
    l = await load([compat('test_events_packets.json')]);
  });
  afterAll(() => l.db.close());

  it.each(PACKETS)('%s', async (q, expected) => {
    const r = await query(l, q);
    expect(r.rows).toEqual(expected);
  });

  it('event rows come out as Retis JSON events, in arrival order', async () => {
    const r = await query(l, 'drops where reason = NO_SOCKET');
    expect(r.rows).toHaveLength(2);
    expect(Object.keys(r.rows[0]!)).toEqual(['common', 'kernel', 'skb-tracking', 'skb-drop', 'packet', 'skb', 'netns', 'dev', 'ct']);
    expect((r.rows[0]!.common as { timestamp: number }).timestamp).toBe(30419169457160);
    expect(r.text.split('\n')[0]).toMatch(/^\{"common":\{"timestamp":30419169457160,"smp_id":6,/);
  });

  it('text output of events is Retis text', async () => {
    const r = await query(l, 'drops | limit 1', 'text');
    expect(r.text.split('\n')[0]).toBe(
      '30419169457160 (6) [handler8] 985/995 [tp] skb:kfree_skb #1baa83c9f241ffff8e96eeea2600 (skb ffff8e95d3009600) drop (reason NO_SOCKET)',
    );
    expect(r.text.endsWith('\n\n')).toBe(true);
  });

  it('table output of events has the flat columns', async () => {
    const r = await query(l, 'drops | limit 1', 'table');
    expect(r.text.split('\n')[0]).toMatch(/^eid\s+ts\s+cpu\s+comm\s+probe\s+track\s+skb\s+reason\s+dev_name/);
    expect(r.text).toContain('1baa83c9f241ffff8e96eeea2600');
  });

  it('csv output of aggregates', async () => {
    const r = await query(l, 'events | count by comm', 'csv');
    expect(r.text).toBe('comm,count\nping,15\nhandler8,11\n,1\n');
  });

  it('text output of aggregates is a table, durations readable', async () => {
    const r = await query(l, 'tracks | stats duration', 'text');
    expect(r.text).toContain('14.1µs');
    expect(r.text.split('\n')[0]).toMatch(/^count\s+min\s+avg\s+p50\s+p90\s+p99\s+max$/);
  });

  it('histograms get bars in text', async () => {
    const r = await query(l, 'events | histogram ts every 100ms', 'text');
    expect(r.text).toContain('█'.repeat(40));
  });

  it('sort prints the selected events as Retis series', async () => {
    const r = await query(l, 'tracks where any(drop) | limit 1 | sort', 'text');
    const lines = r.text.split('\n');
    expect(lines[0]).toMatch(/^30419169443061 .* openvswitch:ovs_do_execute_action #1baa83c9f241ffff8e96eeea2600 .* n 0$/);
    expect(lines.filter((x) => x.startsWith('  ↳ '))).toHaveLength(3);
    const j = await query(l, 'drops | sort', 'json');
    // One series per line, each a JSON array with the tracking section sort adds.
    const series = j.text.trim().split('\n');
    expect(series).toHaveLength(2);
    expect(series[0]!.startsWith('[{')).toBe(true);
    expect(series[0]).toContain('"tracking":');
  });

  it('sort in table form numbers the series', async () => {
    const r = await query(l, 'events where dev = "veth-ns01" | sort', 'csv');
    const rows = r.text.trim().split('\n');
    expect(rows[0]).toBe('series,idx,eid,ts,cpu,comm,probe,track,skb,reason,dev_name,ifindex,netns_inum,saddr,daddr,proto,sport,dport,len');
    expect(rows).toHaveLength(7);
  });

  it('pcap writes the selected packets', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rq-pcap-')), 'drops.pcapng');
    const r = await query(l, `drops | pcap "${file}"`, 'json');
    expect(r.rows).toEqual([{ file, events: 2, packets: 2, skipped: 0 }]);
    const b = fs.readFileSync(file);
    expect(b.readUInt32LE(0)).toBe(0x0a0d0d0a);
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('600');
    const t = await query(l, `tracks where any(drop) | pcap "${file}"`, 'text');
    expect(t.log[0]).toBe(`retis-query: 10 packet(s) written to ${file}`);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });
});

describe('queries on test_events.json', () => {
  let l: Loaded;
  beforeAll(async () => {
    l = await load([compat('test_events.json')]);
  });
  afterAll(() => l.db.close());

  it.each([
    ['events | count', [{ count: 5 }]],
    ['drops | count by reason', [{ reason: 'NO_SOCKET', count: 1 }]],
    ['events where probe = tcp_v4_rcv | fields eid, probe', [{ eid: 2, probe: 'kprobe:tcp_v4_rcv' }]],
    ['upcalls | fields cpu, port, return_ret, outcome', [{ cpu: 1, port: 3366920467, return_ret: 0, outcome: 'unknown' }]],
  ] as [string, Record<string, unknown>[]][])('%s', async (q, expected) => {
    expect((await query(l, q)).rows).toEqual(expected);
  });
});

/** A generated capture: ground truth from the generator (fixtures/synthetic when present). */
describe('queries on a generated capture, against its ground truth', () => {
  let l: Loaded;
  let truth: Truth;
  let dir: string | undefined;
  beforeAll(async () => {
    const fixture = path.join(FIXTURES, 'synthetic', 'mixed-small.json');
    let file = fixture;
    if (fs.existsSync(fixture) && fs.existsSync(`${fixture}.truth.json`)) {
      truth = JSON.parse(fs.readFileSync(`${fixture}.truth.json`, 'utf8')) as Truth;
    } else {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rq-gen-'));
      file = path.join(dir, 'gen.json');
      truth = await writeEventFile({ events: 30_000, seed: 11 }, file);
    }
    l = await load([file]);
  }, 120_000);
  afterAll(() => {
    l?.db.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('events | count', async () => {
    expect((await query(l, 'events | count')).rows).toEqual([{ count: truth.lines }]);
  });

  it('drops | count by subsys, reason', async () => {
    const r = await query(l, 'drops | count by subsys, reason');
    const got = Object.fromEntries(r.rows.map((x) => [x.subsys ? `${x.subsys}/${x.reason}` : x.reason, x.count]));
    expect(got).toEqual(truth.drops_by_reason);
  });

  it('events | count by probe_type, symbol', async () => {
    const r = await query(l, 'events where probe | count by probe_type, symbol');
    expect(Object.fromEntries(r.rows.map((x) => [`${x.probe_type}/${x.symbol}`, x.count]))).toEqual(truth.probes);
  });

  it('tracks | count: one per series but the startup event', async () => {
    expect((await query(l, 'tracks | count')).rows).toEqual([{ count: truth.series - 1 }]);
  });

  it('tracks where any(drop) | count: every dropped packet', async () => {
    const r = await query(l, 'tracks where fate = dropped | count');
    const any = await query(l, 'tracks where any(drop) | count');
    expect(r.rows).toEqual(any.rows);
    expect(Number(r.rows[0]!.count)).toBeGreaterThan(0);
    expect(Number(r.rows[0]!.count)).toBeLessThanOrEqual(truth.drops);
  });

  it('upcalls | count by outcome', async () => {
    const r = await query(l, 'upcalls | count by outcome');
    const got = Object.fromEntries(r.rows.map((x) => [x.outcome, x.count]));
    const u = truth.upcalls;
    const expected: Record<string, number> = {};
    if (u.executed) expected.executed = u.executed;
    if (u.enqueue_failed) expected.enqueue_failed = u.enqueue_failed;
    if (u.lost_in_userspace) expected.lost = u.lost_in_userspace;
    expect(got).toEqual(expected);
  });

  it('upcalls | stats latency counts the executed upcalls, latencies positive', async () => {
    const [s] = (await query(l, 'upcalls | stats latency')).rows;
    expect(s!.count).toBe(truth.upcalls.executed);
    expect(Number(s!.min)).toBeGreaterThan(0);
    expect(Number(s!.p50)).toBeLessThanOrEqual(Number(s!.p90));
    expect(Number(s!.p99)).toBeLessThanOrEqual(Number(s!.max));
  });

  it('upcalls | count', async () => {
    expect((await query(l, 'upcalls | count')).rows).toEqual([{ count: truth.upcalls.total }]);
  });

  it('tracks of an upcall: any(ovs.event_type = upcall)', async () => {
    const r = await query(l, 'tracks where any(ovs.event_type = upcall) | count');
    expect(Number(r.rows[0]!.count)).toBe(truth.upcalls.total);
  });
});
