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
/**
 * `x` is one of `xs`. list_contains rather than IN: DuckDB rewrites a long IN list into a
 * join, which costs more to plan than this costs to run.
 */
const oneOf = (x: string, xs: readonly string[]) => `list_contains([${list(xs)}], ${x})`;

/** Per event: does it show address translation? */
const NAT_EVENT_SQL = `(ovs.nat IS NOT NULL OR (ct.ct_status & 48) <> 0
            OR ct.orig.ip.src <> ct.reply.ip.dst OR ct.orig.ip.dst <> ct.reply.ip.src)`;

const DROPPED_SQL = `reason IS NOT NULL AND reason NOT IN ('CONSUMED', 'NOT_DROPPED_YET')`;

/** Aggregates over a series' events (alias → SQL), and which of them each tracks column needs. */
const TRACK_AGGREGATES: Record<string, string> = {
  first_ts: 'min(ts)',
  last_ts: 'max(ts)',
  duration: 'max(ts)::BIGINT - min(ts)::BIGINT',
  events: 'count(*)',
  probes: 'list_sort(list(DISTINCT probe) FILTER (WHERE probe IS NOT NULL))',
  devs: 'list_sort(list(DISTINCT dev_name) FILTER (WHERE dev_name IS NOT NULL))',
  netns: 'list_sort(list(DISTINCT netns_inum) FILTER (WHERE netns_inum IS NOT NULL))',
  netns_crossed: 'count(DISTINCT netns_inum) > 1',
  nat: `coalesce(bool_or(${NAT_EVENT_SQL}), false)`,
  saddr: 'arg_min(saddr, eid) FILTER (WHERE saddr IS NOT NULL)',
  daddr: 'arg_min(daddr, eid) FILTER (WHERE daddr IS NOT NULL)',
  proto: 'arg_min(proto, eid) FILTER (WHERE proto IS NOT NULL)',
  sport: 'arg_min(sport, eid) FILTER (WHERE sport IS NOT NULL)',
  dport: 'arg_min(dport, eid) FILTER (WHERE dport IS NOT NULL)',
  _dropped: `coalesce(bool_or(${DROPPED_SQL}), false)`,
  _drop: `arg_max(reason, eid) FILTER (WHERE ${DROPPED_SQL})`,
  _consumed: `coalesce(bool_or(reason = 'CONSUMED' OR ${oneOf('symbol', CONSUME_SYMBOLS)}), false)`,
  _last_sym: 'arg_max(symbol, eid)',
  _last_dev: 'arg_max(dev_name, eid)',
};

const TRANSMITTED = oneOf('_last_sym', XMIT_SYMBOLS);
/** Columns computed from the aggregates: SQL and the aggregates they read. */
const TRACK_DERIVED: Record<string, { sql: string; needs: string[] }> = {
  fate: {
    sql: `CASE WHEN _dropped THEN 'dropped' WHEN _consumed THEN 'consumed' WHEN ${TRANSMITTED} THEN 'transmitted' ELSE 'unknown' END`,
    needs: ['_dropped', '_consumed', '_last_sym'],
  },
  reason: { sql: '_drop', needs: ['_drop'] },
  fate_dev: { sql: `CASE WHEN NOT _dropped AND NOT _consumed AND ${TRANSMITTED} THEN _last_dev END`, needs: ['_dropped', '_consumed', '_last_sym', '_last_dev'] },
};

/** Every column of the tracks relation, in output order. */
export const TRACK_COLUMN_NAMES = ['track', ...Object.keys(TRACK_AGGREGATES).filter((k) => !k.startsWith('_')), ...Object.keys(TRACK_DERIVED)];

/**
 * The tracks relation: one row per packet series of `series_map`, with the columns in
 * `used` (undefined: all). `extras` are further aggregates over the series' events
 * (`any(...)` and friends). `prefilter` are event conditions a series must have an event
 * matching (`any(c)` conjuncts), applied as a semi-join before aggregating so that only
 * those series are aggregated; `limit` (a SQL expression) keeps only the first series.
 */
export function tracksSql(
  used: ReadonlySet<string> | undefined,
  extras: readonly { sql: string; alias: string }[],
  prefilter: readonly string[],
  limit: string | null,
): string {
  const cols = TRACK_COLUMN_NAMES.filter((c) => c !== 'track' && (!used || used.has(c)));
  const aggs = new Set<string>();
  for (const c of cols) {
    if (c in TRACK_AGGREGATES) aggs.add(c);
    else for (const n of TRACK_DERIVED[c]!.needs) aggs.add(n);
  }
  const inner = [...Object.keys(TRACK_AGGREGATES).filter((a) => aggs.has(a)).map((a) => `${TRACK_AGGREGATES[a]} AS ${a}`), ...extras.map((x) => `${x.sql} AS ${x.alias}`)];
  const outer = ['track', ...cols.map((c) => (c in TRACK_DERIVED ? `${TRACK_DERIVED[c]!.sql} AS ${c}` : c)), ...extras.map((x) => x.alias)];
  // Without a prefilter, untracked events (series_tid NULL) are left out here; with one,
  // its IN already leaves them out (and a second condition would keep DuckDB from pushing
  // the semi-join into the scan).
  let pre = 'm.series_tid IS NOT NULL';
  if (prefilter.length > 0 || limit !== null) {
    const sets =
      prefilter.length > 0
        ? prefilter.map((c) => `SELECT series_tid FROM events JOIN series_map USING (eid) WHERE series_tid IS NOT NULL AND ${c}`)
        : ['SELECT series_tid FROM series_map WHERE series_tid IS NOT NULL'];
    const set = sets.join('\n         INTERSECT ');
    pre =
      limit === null
        ? `m.series_tid IN (${set})`
        : sets.length === 1
          ? `m.series_tid IN (${sets[0]!.replace(/^SELECT /, 'SELECT DISTINCT ')} ORDER BY series_tid LIMIT ${limit})`
          : `m.series_tid IN (SELECT series_tid FROM (${set}) ORDER BY series_tid LIMIT ${limit})`;
  }
  return `(SELECT ${outer.join(',\n         ')}
  FROM (SELECT m.series_tid AS track${inner.map((x) => `,\n         ${x}`).join('')}
       FROM events JOIN series_map m USING (eid)
       WHERE ${pre}
       GROUP BY m.series_tid))`;
}

/** Columns of the upcalls relation, and what each needs beyond the upcall event itself. */
const UPCALL_NEEDS: Record<string, readonly ('enq' | 'ret' | 'recv' | 'put' | 'exec' | 'act' | 'seen')[]> = {
  queue_id: ['enq'],
  enqueues: ['enq'],
  enqueue_ret: ['enq'],
  return_ret: ['ret'],
  error: ['enq', 'ret'],
  recv_ts: ['recv'],
  put_ts: ['put'],
  exec_ts: ['exec', 'act'],
  latency: ['exec', 'act'],
  actions: ['act'],
  outcome: ['enq', 'ret', 'recv', 'put', 'exec', 'act', 'seen'],
};

/** errno names of the errors queue_userspace_packet / ovs_dp_upcall return (negated). */
const ERRNO: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 11: 'EAGAIN', 12: 'ENOMEM', 22: 'EINVAL', 28: 'ENOSPC', 32: 'EPIPE', 90: 'EMSGSIZE',
  105: 'ENOBUFS', 107: 'ENOTCONN', 111: 'ECONNREFUSED',
};

/** One executed action as text: `output:2`, `recirc:0x22`, `ct(zone=5)`, `drop:0`, `userspace`. */
const ACTION_TEXT = `CASE o.act
      WHEN 'output' THEN 'output:' || o.aport
      WHEN 'recirc' THEN 'recirc:0x' || lower(printf('%x', o.aid))
      WHEN 'drop' THEN 'drop:' || o.areason
      WHEN 'ct' THEN 'ct(zone=' || coalesce(o.azone, 0) || ')'
      ELSE coalesce(o.act, 'unspec') END`;

/**
 * The upcalls relation: each `upcall` event joined with its enqueue(s) (by upcall
 * timestamp and CPU, as Retis pairs them), its return, and what became of it: ovs-vswitchd's
 * handling (userspace events, --ovs-track) and the actions the datapath executed on the packet
 * it sent back (action_execute carrying the upcall's queue_id). Userspace events and actions find
 * their enqueue through the queue id, the latest enqueue of that id before them, as in
 * analyze/sort/tracking.sql. Only the parts the query reads (`used` column names; undefined =
 * all) are joined.
 *
 * exec_ts is ovs-vswitchd's flow_exec (usdt) when captured, else the first action the datapath
 * ran for it: latency = exec_ts - upcall_ts is the miss's cost up to its packet being forwarded.
 * outcome: executed; enqueue_failed (queue_userspace_packet failed: `error` says why);
 * failed (ovs_dp_upcall failed, no enqueue seen); lost (enqueued, or received by ovs-vswitchd,
 * and never executed, in a capture that sees executions); put (flow installed, no execution
 * seen); enqueued (the capture cannot see what followed); unknown (no enqueue seen).
 */
export function upcallsSql(used?: ReadonlySet<string>): string {
  const need = new Set<string>();
  for (const [col, parts] of Object.entries(UPCALL_NEEDS)) if (!used || used.has(col)) for (const p of parts) need.add(p);
  const enq = need.has('enq');
  const ret = need.has('ret');
  const ops = (['recv', 'put', 'exec', 'act'] as const).filter((p) => need.has(p));
  const opTypes = [
    ...(ops.includes('recv') ? ["'recv_upcall'"] : []),
    ...(ops.some((o) => o === 'put' || o === 'exec') ? ["'flow_operation'"] : []),
    ...(ops.includes('act') ? ["'action_execute'"] : []),
  ];
  const opAgg: Record<(typeof ops)[number], string> = {
    recv: `min(o.ts) FILTER (WHERE o.et = 'recv_upcall') AS recv_ts`,
    put: `min(o.ts) FILTER (WHERE o.et = 'flow_operation' AND o.op = 'put') AS put_ts`,
    exec: `min(o.ts) FILTER (WHERE o.et = 'flow_operation' AND o.op = 'exec') AS exec_ts`,
    act: `min(o.ts) FILTER (WHERE o.et = 'action_execute') AS act_ts,
                    string_agg(${ACTION_TEXT}, ',' ORDER BY o.eid) FILTER (WHERE o.et = 'action_execute') AS actions`,
  };
  const opFilter = `ovs.event_type IN (${opTypes.join(', ')})`;
  const col = (present: boolean, sql: string, name: string, type: string) => (present ? `${sql} AS ${name}` : `NULL::${type} AS ${name}`);
  const has = (p: 'recv' | 'put' | 'exec' | 'act') => ops.includes(p);
  const execTs = has('exec') && has('act') ? 'coalesce(o.exec_ts, o.act_ts)' : has('exec') ? 'o.exec_ts' : has('act') ? 'o.act_ts' : 'NULL::UBIGINT';
  const errno = (v: string) => `CASE WHEN ${v} < 0 THEN CASE -${v} ${Object.entries(ERRNO).map(([n, name]) => `WHEN ${n} THEN '${name}'`).join(' ')} ELSE 'E' || (-${v}) END END`;
  const all = enq && ret && ops.length === 4 && need.has('seen');
  return `(SELECT u.track_id AS track, u.ts AS upcall_ts, u.ovs.cpu AS cpu, u.ovs.port AS port, u.dev_name AS dev,
         ${col(enq, 'q.queue_id', 'queue_id', 'UINTEGER')}, ${col(enq, 'coalesce(q.enqueues, 0)', 'enqueues', 'BIGINT')}, ${col(enq, 'q.enqueue_ret', 'enqueue_ret', 'INTEGER')},
         ${col(ret, 'r.return_ret', 'return_ret', 'INTEGER')},
         ${col(enq && ret, `coalesce(${errno('q.enqueue_ret')}, ${errno('r.return_ret')})`, 'error', 'VARCHAR')},
         ${col(has('recv'), 'o.recv_ts', 'recv_ts', 'UBIGINT')}, ${col(has('put'), 'o.put_ts', 'put_ts', 'UBIGINT')}, ${col(has('exec') || has('act'), execTs, 'exec_ts', 'UBIGINT')},
         ${col(has('exec') || has('act'), `${execTs}::BIGINT - u.ts::BIGINT`, 'latency', 'BIGINT')},
         ${col(has('act'), 'o.actions', 'actions', 'VARCHAR')},
         ${col(
           all,
           `CASE WHEN ${execTs} IS NOT NULL THEN 'executed'
              WHEN q.enqueue_ret < 0 THEN 'enqueue_failed'
              WHEN r.return_ret < 0 THEN 'failed'
              WHEN o.put_ts IS NOT NULL THEN 'put'
              WHEN o.recv_ts IS NOT NULL THEN 'lost'
              WHEN q.queue_id IS NOT NULL AND _seen.seen THEN 'lost'
              WHEN q.queue_id IS NOT NULL THEN 'enqueued'
              ELSE 'unknown' END`,
           'outcome',
           'VARCHAR',
         )},
         u.eid AS _eid
  FROM (SELECT eid, ts, track_id, dev_name, ovs FROM events WHERE ovs.event_type = 'upcall') u${
    all
      ? `
  -- Whether the capture sees what happens after an enqueue (userspace events, or actions
  -- tagged with a queue id): only then is an upcall without an execution lost.
  CROSS JOIN (SELECT count(*) > 0 AS seen FROM events
              WHERE ovs.event_type IN ('recv_upcall', 'flow_operation')
                 OR (ovs.event_type = 'action_execute' AND ovs.queue_id IS NOT NULL)) _seen`
      : ''
  }${
    enq
      ? `
  LEFT JOIN (SELECT ovs.upcall_ts AS uts, ovs.upcall_cpu AS ucpu, arg_min(ovs.queue_id, eid) AS queue_id,
                    count(*) AS enqueues, min(ovs.ret) AS enqueue_ret
             FROM events WHERE ovs.event_type = 'upcall_enqueue' GROUP BY ALL) q
    ON q.uts = u.ts AND q.ucpu = u.ovs.cpu`
      : ''
  }${
    ret
      ? `
  LEFT JOIN (SELECT ovs.upcall_ts AS uts, ovs.upcall_cpu AS ucpu, min(ovs.ret) AS return_ret
             FROM events WHERE ovs.event_type = 'upcall_return' GROUP BY ALL) r
    ON r.uts = u.ts AND r.ucpu = u.ovs.cpu`
      : ''
  }${
    ops.length > 0
      ? `
  LEFT JOIN (SELECT n.uts, n.ucpu, ${ops.map((p) => opAgg[p]).join(', ')}
             FROM (SELECT eid, ts, ovs.event_type AS et, ovs.op_type AS op, ovs.queue_id AS qid,
                          ovs.action AS act, ovs.port AS aport, ovs.id AS aid, ovs.reason AS areason, ovs.zone_id AS azone
                   FROM events WHERE ${opFilter} AND ovs.queue_id IS NOT NULL) o
             ASOF JOIN (SELECT eid, ovs.queue_id AS qid, ovs.upcall_ts AS uts, ovs.upcall_cpu AS ucpu
                        FROM events WHERE ovs.event_type = 'upcall_enqueue') n
               ON o.qid = n.qid AND o.eid >= n.eid
             GROUP BY n.uts, n.ucpu) o
    ON o.uts = u.ts AND o.ucpu = u.ovs.cpu`
      : ''
  })`;
}

export { EVENT_TABLE_COLUMNS, EVENT_TABLE_SQL } from '../analyze/model/columns.ts';
