/**
 * Compatibility with Retis on its own files: sort, print, pcap and stats agree with what
 * Retis wrote or would write for the same input.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseJsonExact } from '../pcap/util.ts';
import { retisQuery } from '../util/cli.ts';
import { compat } from '../util/paths.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-compat-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');
/** JSON lines as exact values (key order and number spelling aside). */
const jsonLines = (s: string) => lines(s).map(parseJsonExact);
const SORTED = () => jsonLines(fs.readFileSync(compat('test_events_sorted.json'), 'utf8'));

describe('retis-query sort', () => {
  it('writes the series of test_events.json exactly as retis sort did (test_events_sorted.json)', () => {
    const r = retisQuery(['sort', '--format', 'json', compat('test_events.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(jsonLines(r.stdout)).toEqual(SORTED());
  });

  it('prints series in the ↳ continuation format with tracking idx', () => {
    const r = retisQuery(['sort', compat('test_events.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      [
        '23868955262984 (2) [napi/phy0-8197] 1360 [tp] openvswitch:ovs_dp_upcall #15b56c998008ffff8c0aa653ba00 (skb ffff8c03aa978a00) n 0',
        '  upcall (miss) port 3366920467 cpu 1',
        '  ↳ 23868955276361 (3) [napi/phy0-8197] 1360 [kr] ovs_dp_upcall #15b56c998008ffff8c0aa653ba00 (skb ffff8c03aa978a00) n 1',
        '      upcall_ret (1/23868955262984) ret 0',
        '',
      ].join('\n'),
    );
    // The compat-filled startup event is its own series, first.
    expect(r.stdout.startsWith('23868643385852\n  collected with Retis v1.6.0\n  on machine unknown unknown unknown\n  cmdline unknown\n\n')).toBe(true);
  });

  it('-o writes the series file, 0600, and refuses to sort in place', () => {
    const out = path.join(tmp, 'sorted.json');
    const r = retisQuery(['sort', compat('test_events.json'), '-o', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    expect(jsonLines(fs.readFileSync(out, 'utf8'))).toEqual(SORTED());
    const copy = path.join(tmp, 'in.json');
    fs.copyFileSync(compat('test_events.json'), copy);
    const again = retisQuery(['sort', copy, '-o', copy]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/Cannot sort a file in-place/);
  });

  it('reads a sorted file back: its series are kept', () => {
    const r = retisQuery(['sort', '--format', 'json', compat('test_events_sorted.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(jsonLines(r.stdout)).toEqual(SORTED());
    expect(r.stderr).toMatch(/already sorted/);
  });
});

describe('retis-query print', () => {
  it('prints Retis text, multi-line with a blank line after each event', () => {
    const r = retisQuery(['print', compat('test_events_packets.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      [
        '30419169125909 (6) [ping] 11330 [kr] ovs_dp_upcall #1baa83c42ba1ffff8e95c3b67c00 (skb ffff8e95d3009100)',
        '  192.168.125.10 > 192.168.125.11 tos 0x0 ttl 64 id 41977 off 0 [DF] len 84 proto ICMP (1) type 8 code 0',
        '  ns 0x1/4026531840 if 10 (veth-ns01-ovs) rxif 10',
        '  skb [csum none hash 0x7e2c5976 len 98 priority 0 users 1 dataref 1]',
        '  upcall_ret (6/30419169098548) ret 0',
        '',
      ].join('\n'),
    );
    expect(r.stdout).toContain(
      'ct_state NEW status 0x8 icmp orig [192.168.125.10 > 192.168.125.11 type 8 code 0 id 29004] reply [192.168.125.11 > 192.168.125.10 type 0 code 0 id 29004] zone 0 mark 0',
    );
    expect(r.stdout).toContain('30419169372774 (6) [handler8] 985/995 [kr] ovs_dp_upcall');
  });

  it('single-line, --utc and -e', () => {
    const r = retisQuery(['print', '--format', 'single-line', '--utc', '-e', compat('test_events_packets.json')]);
    expect(r.status, r.stderr).toBe(0);
    const out = lines(r.stdout);
    expect(out).toHaveLength(27);
    // 30419169061793 ns monotonic + 1742309146.691042000 s offset.
    expect(out[1]).toMatch(/^2025-03-18 23:12:45\.860103 \(6\) \[ping\] 11330 \[tp\] net:net_dev_start_xmit /);
    expect(out[1]).toMatch(/ a6:c2:11:71:59:45 > fa:5c:bd:8e:cc:01 ethertype IPv4 \(0x0800\) 192\.168\.125\.10 > 192\.168\.125\.11 /);
  });

  it('--format json writes the events back as Retis wrote them (same JSON, exact u64)', () => {
    const src = compat('test_events_packets.json');
    const r = retisQuery(['print', '--format', 'json', src]);
    expect(r.status, r.stderr).toBe(0);
    expect(jsonLines(r.stdout)).toEqual(jsonLines(fs.readFileSync(src, 'utf8')));
    // Addresses above 2^53 are printed digit for digit.
    expect(r.stdout).toContain('"orig_head":18446619372617628672');
  });
});

describe('retis-query pcap', () => {
  it('writes the same pcap-ng file, byte for byte, as retis pcap', () => {
    const out = path.join(tmp, 'packets.pcapng');
    const r = retisQuery(['pcap', '-o', out, compat('test_events_packets.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
    expect(Buffer.compare(fs.readFileSync(out), fs.readFileSync(compat('test_events_packets.pcap')))).toBe(0);
  });

  it('filters by probe and fails clearly when the probe is absent', () => {
    const out = path.join(tmp, 'upcall.pcapng');
    const r = retisQuery(['pcap', '--probe', 'kretprobe:ovs_dp_upcall', '-o', out, compat('test_events_packets.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/2 event\(s\) were processed/);
    const none = retisQuery(['pcap', '--probe', 'tp:net:netif_rx', '-o', path.join(tmp, 'none.pcapng'), compat('test_events_packets.json')]);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/Probe not found in the events/);
  });
});

describe('retis-query stats', () => {
  it('prints Retis stats lines plus sections, CPUs', () => {
    const r = retisQuery(['stats', compat('test_events_packets.json')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('Retis version: v1.6.0\nRetis cmdline: unknown\n');
    expect(r.stdout).toContain('Number of events: 26\n');
    expect(r.stdout).toContain('First event at: 2025-03-18 23:12:45.860103\nLast event at: 2025-03-18 23:12:46.869715\n');
    expect(r.stdout).toContain('Probes:\n  raw_tracepoint/net:net_dev_start_xmit: 8\n  raw_tracepoint/net:netif_receive_skb: 8\n');
    expect(r.stdout).toContain('  skb-drop: 2\n');
  });

  it('counts series of a sorted file, and writes json rows', () => {
    const r = retisQuery(['stats', compat('test_events_sorted.json')]);
    expect(r.stdout).toContain('Number of series: 4\nNumber of events: 4\n');
    const j = retisQuery(['stats', '--format', 'json', compat('test_events_packets.json')]);
    const rows = lines(j.stdout).map((l) => JSON.parse(l) as { kind: string; key: string; count: number });
    expect(rows).toContainEqual({ kind: 'probe', key: 'kretprobe/ovs_dp_upcall', count: 2 });
    expect(rows).toContainEqual({ kind: 'events', key: 'total', count: 26 });
  });
});
