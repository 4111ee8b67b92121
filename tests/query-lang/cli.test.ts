/**
 * The command-line contract (shared/spec/cli.md): the queries it lists, as a user types
 * them, through bin/retis-query.js; --format, --explain, --sql.
 */
import { describe, expect, it } from 'vitest';
import { retisQuery } from '../util/cli.ts';
import { compat } from '../util/paths.ts';

const PACKETS = compat('test_events_packets.json');

describe('retis-query QUERY', () => {
  it('drops where reason = NETFILTER_DROP (none in this capture: no output, exit 0)', () => {
    const r = retisQuery(['drops where reason = NETFILTER_DROP', PACKETS]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('drops where reason = NO_SOCKET: Retis text', () => {
    const r = retisQuery(['drops where reason = NO_SOCKET', PACKETS]);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n\n').filter(Boolean)).toHaveLength(2);
    expect(r.stdout).toMatch(/^30419169457160 \(6\) \[handler8\] 985\/995 \[tp\] skb:kfree_skb /);
  });

  it('drops | count by reason --format json', () => {
    const r = retisQuery(['drops | count by reason', PACKETS, '--format', 'json']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('{"reason":"NO_SOCKET","count":2}\n');
  });

  it('events where dev = "veth0" and proto = udp | count', () => {
    const r = retisQuery(['events where dev = "veth0" and proto = udp | count', PACKETS]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('count\n-----\n    0\n');
  });

  it('events where probe = "tp:net:netif_receive_skb" | count by dev --format csv', () => {
    const r = retisQuery(['events where probe = "tp:net:netif_receive_skb" | count by dev', PACKETS, '--format', 'csv']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('dev,count\nveth-ns01,2\nveth-ns01-ovs,2\nveth-ns02,2\nveth-ns02-ovs,2\n');
  });

  it('tracks where any(drop) | limit 5 --format json', () => {
    const r = retisQuery(['tracks where any(drop) | limit 5', PACKETS, '--format', 'json']);
    expect(r.status).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((x) => [x.track, x.fate, x.reason])).toEqual([
      ['1baa83c9f241ffff8e96eeea2600', 'dropped', 'NO_SOCKET'],
      ['1baabff0d663ffff8e95c3b65000', 'dropped', 'NO_SOCKET'],
    ]);
  });

  it('upcalls | stats latency', () => {
    const r = retisQuery(['upcalls | stats latency', PACKETS, '--format', 'json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ count: 0, min: null, avg: null, p50: null, p90: null, p99: null, max: null });
  });

  it('--format json of events: Retis JSON events', () => {
    const r = retisQuery(['drops | limit 1', PACKETS, '--format', 'json']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\{"common":\{"timestamp":30419169457160,"smp_id":6,"task":\{"pid":985,"tgid":995,"comm":"handler8"\}\},"kernel":\{"symbol":"skb:kfree_skb","probe_type":"raw_tracepoint"\},"skb-tracking":/);
  });

  it('--explain prints the SQL and its parameters, runs nothing', () => {
    const r = retisQuery(['drops where reason = NETFILTER_DROP', PACKETS, '--explain']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe("SELECT * FROM events\nWHERE (reason IS NOT NULL) AND (\"reason\" = $1)\nORDER BY eid;\n-- $1 = 'NETFILTER_DROP'\n");
  });

  it('--explain --format json', () => {
    const r = retisQuery(['events | count', PACKETS, '--explain', '--format', 'json']);
    expect(JSON.parse(r.stdout)).toEqual({ sql: 'SELECT "count" FROM (SELECT count(*) AS count\nFROM events) AS _q1', params: [], mode: 'rows' });
  });
});

describe('retis-query --sql', () => {
  it('runs SQL on the events table', () => {
    const r = retisQuery(['--sql', 'SELECT probe, count(*) AS n FROM events WHERE probe IS NOT NULL GROUP BY ALL ORDER BY n DESC, probe LIMIT 2', PACKETS, '--format', 'csv']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('probe,n\ntp:net:net_dev_start_xmit,8\ntp:net:netif_receive_skb,8\n');
  });

  it('series_map is there when the SQL reads it', () => {
    const r = retisQuery(['--sql', 'SELECT count(DISTINCT series_tid) AS series FROM series_map', PACKETS, '--format', 'json']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('{"series":6}\n');
  });
});
