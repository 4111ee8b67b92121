/**
 * Sources: the relations a query starts from, as SQL over the event model.
 *
 *   events   every event                                  FROM events
 *   drops    events with a drop reason                    FROM events WHERE reason IS NOT NULL
 *   tracks   one row per packet series (needs series_map, built by analyze/sort)
 *   upcalls  one row per OVS kernel upcall, paired with what followed it
 */

export type SourceName = 'events' | 'drops' | 'tracks' | 'upcalls';
export const SOURCE_NAMES: readonly SourceName[] = ['events', 'drops', 'tracks', 'upcalls'];

export const SOURCE_DOCS: Record<SourceName, string> = {
  events: 'every event loaded, one row each',
  drops: 'events with a drop reason (skb-drop section)',
  tracks: 'one row per packet series, as `retis sort` groups them',
  upcalls: 'one row per OVS kernel upcall, with what became of it',
};

/** Symbols whose event, last in a series, means the packet left on that device. */
const XMIT_SYMBOLS = ['net:net_dev_start_xmit', 'net:net_dev_xmit', 'net:net_dev_queue', 'dev_hard_start_xmit', 'dev_queue_xmit', '__dev_queue_xmit', 'xmit_one'];
/** Symbols meaning the packet was delivered (a socket or the local stack took it). */
const CONSUME_SYMBOLS = [
  'skb:consume_skb',
  'consume_skb',
  'tcp_v4_rcv',
  'tcp_v6_rcv',
  'tcp_rcv_established',
  'udp_rcv',
  'udpv6_rcv',
  'udp_queue_rcv_skb',
  'udpv6_queue_rcv_skb',
  '__udp_enqueue_schedule_skb',
  'sock_queue_rcv_skb',
  'icmp_rcv',
  'icmpv6_rcv',
  'raw_rcv',
];

const list = (xs: readonly string[]) => xs.map((x) => `'${x}'`).join(', ');

/** Per event: does it show address translation? */
const NAT_EVENT_SQL = `(ovs.nat IS NOT NULL OR (ct.ct_status & 48) <> 0
            OR ct.orig.ip.src <> ct.reply.ip.dst OR ct.orig.ip.dst <> ct.reply.ip.src)`;

/**
 * The tracks relation. `extras` are further aggregates over the series' events
 * (`any(...)` and friends), `prefilter` a condition on `series_tid` applied before
 * aggregating (semi-joins from `any(...)` conjuncts).
 */
export function tracksSql(extras: readonly { sql: string; alias: string }[], prefilter: readonly string[]): string {
  const extraAgg = extras.map((x) => `,\n         ${x.sql} AS ${x.alias}`).join('');
  const extraOut = extras.map((x) => `, ${x.alias}`).join('');
  const pre = prefilter.map((p) => ` AND ${p}`).join('');
  return `(SELECT track, first_ts, last_ts, duration, events, probes, devs, netns, netns_crossed, nat,
         saddr, daddr, proto, sport, dport,
         CASE WHEN _drop IS NOT NULL THEN 'dropped' WHEN _consumed THEN 'consumed'
              WHEN _last_sym IN (${list(XMIT_SYMBOLS)}) THEN 'transmitted' ELSE 'unknown' END AS fate,
         _drop AS reason,
         CASE WHEN _drop IS NULL AND NOT _consumed AND _last_sym IN (${list(XMIT_SYMBOLS)}) THEN _last_dev END AS fate_dev${extraOut}
  FROM (SELECT m.series_tid AS track,
         min(ts) AS first_ts, max(ts) AS last_ts, max(ts)::BIGINT - min(ts)::BIGINT AS duration, count(*) AS events,
         list_sort(list(DISTINCT probe) FILTER (WHERE probe IS NOT NULL)) AS probes,
         list_sort(list(DISTINCT dev_name) FILTER (WHERE dev_name IS NOT NULL)) AS devs,
         list_sort(list(DISTINCT netns_inum) FILTER (WHERE netns_inum IS NOT NULL)) AS netns,
         count(DISTINCT netns_inum) > 1 AS netns_crossed,
         coalesce(bool_or(${NAT_EVENT_SQL}), false) AS nat,
         arg_min(saddr, eid) FILTER (WHERE saddr IS NOT NULL) AS saddr,
         arg_min(daddr, eid) FILTER (WHERE daddr IS NOT NULL) AS daddr,
         arg_min(proto, eid) FILTER (WHERE proto IS NOT NULL) AS proto,
         arg_min(sport, eid) FILTER (WHERE sport IS NOT NULL) AS sport,
         arg_min(dport, eid) FILTER (WHERE dport IS NOT NULL) AS dport,
         arg_max(reason, eid) FILTER (WHERE reason IS NOT NULL AND reason NOT IN ('CONSUMED', 'NOT_DROPPED_YET')) AS _drop,
         coalesce(bool_or(reason = 'CONSUMED' OR symbol IN (${list(CONSUME_SYMBOLS)})), false) AS _consumed,
         arg_max(symbol, eid) AS _last_sym,
         arg_max(dev_name, eid) AS _last_dev${extraAgg}
       FROM events JOIN series_map m USING (eid)
       WHERE m.series_tid IS NOT NULL${pre}
       GROUP BY m.series_tid))`;
}

/** The upcalls relation: each `upcall` event joined with its enqueue(s), return, and userspace handling. */
export const UPCALLS_SQL = `(SELECT u.track_id AS track, u.ts AS upcall_ts, u.ovs.cpu AS cpu, u.ovs.port AS port, u.dev_name AS dev,
         q.queue_id, coalesce(q.enqueues, 0) AS enqueues, q.enqueue_ret, r.return_ret,
         o.recv_ts, o.put_ts, o.exec_ts,
         o.exec_ts::BIGINT - u.ts::BIGINT AS latency,
         CASE WHEN o.exec_ts IS NOT NULL THEN 'executed'
              WHEN q.enqueue_ret < 0 OR r.return_ret < 0 THEN 'failed'
              WHEN o.put_ts IS NOT NULL THEN 'put'
              WHEN o.recv_ts IS NOT NULL THEN 'received'
              WHEN q.queue_id IS NOT NULL THEN 'enqueued'
              ELSE 'unknown' END AS outcome,
         u.eid AS _eid
  FROM (SELECT eid, ts, track_id, dev_name, ovs FROM events WHERE ovs.event_type = 'upcall') u
  LEFT JOIN (SELECT ovs.upcall_ts AS uts, ovs.upcall_cpu AS ucpu, arg_min(ovs.queue_id, eid) AS queue_id,
                    count(*) AS enqueues, min(ovs.ret) AS enqueue_ret
             FROM events WHERE ovs.event_type = 'upcall_enqueue' GROUP BY ALL) q
    ON q.uts = u.ts AND q.ucpu = u.ovs.cpu
  LEFT JOIN (SELECT ovs.upcall_ts AS uts, ovs.upcall_cpu AS ucpu, min(ovs.ret) AS return_ret
             FROM events WHERE ovs.event_type = 'upcall_return' GROUP BY ALL) r
    ON r.uts = u.ts AND r.ucpu = u.ovs.cpu
  LEFT JOIN (SELECT n.uts, n.ucpu,
                    min(o.ts) FILTER (WHERE o.et = 'recv_upcall') AS recv_ts,
                    min(o.ts) FILTER (WHERE o.et = 'flow_operation' AND o.op = 'put') AS put_ts,
                    min(o.ts) FILTER (WHERE o.et = 'flow_operation' AND o.op = 'exec') AS exec_ts
             FROM (SELECT eid, ts, ovs.event_type AS et, ovs.op_type AS op, ovs.queue_id AS qid
                   FROM events WHERE ovs.event_type IN ('recv_upcall', 'flow_operation')) o
             ASOF JOIN (SELECT eid, ovs.queue_id AS qid, ovs.upcall_ts AS uts, ovs.upcall_cpu AS ucpu
                        FROM events WHERE ovs.event_type = 'upcall_enqueue') n
               ON o.qid = n.qid AND o.eid >= n.eid
             GROUP BY n.uts, n.ucpu) o
    ON o.uts = u.ts AND o.ucpu = u.ovs.cpu)`;

/** Flat columns of events in table and csv output (as `retis-query print --format table`). */
export const EVENT_TABLE_COLUMNS = [
  'eid',
  'ts',
  'cpu',
  'comm',
  'probe',
  'track',
  'skb',
  'reason',
  'dev_name',
  'ifindex',
  'netns_inum',
  'saddr',
  'daddr',
  'proto',
  'sport',
  'dport',
  'len',
] as const;

export const EVENT_TABLE_SQL = `eid, ts, cpu, comm, probe,
  CASE WHEN track_id IS NULL THEN NULL ELSE lower(printf('%x', (track_id >> 64)::UBIGINT)) || lower(printf('%016x', (track_id & 18446744073709551615::UHUGEINT)::UBIGINT)) END AS track,
  CASE WHEN skb_addr IS NULL THEN NULL ELSE lower(printf('%x', skb_addr)) END AS skb,
  reason, dev_name, ifindex, netns_inum, saddr, daddr, proto, sport, dport, len`;
