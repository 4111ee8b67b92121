-- Series reconstruction (Retis `sort`, spec §3), complete: every event of a packet is
-- grouped whatever the interleaving, with no buffer limit, in one pass of set operations.
--
-- Input: the `events` table. Output: table `series_map(eid, series_tid, root_eid, idx,
-- k_ts)`, one row per event; `series_tid` is the tracking id of the series the event
-- belongs to (NULL: an untracked event, a series of its own), `idx` its position in the
-- series, and (k_ts, series_tid NULLS FIRST, eid) the output order of series: for a
-- tracked series k_ts is series_tid's high half, so series_tid orders by orig_head.

-- The OVS chain is worked on the few events it concerns (a fifth of them) and joined
-- back to the full table once, in series_map below. Intermediate results stay narrow:
-- DuckDB appends a filtered result to a table column by column at ~30 ms per column per
-- 190k rows (measured), so the chain is one statement of CTEs and only its outcome
-- (_link: eid, up_track, act, track_id) is a table.
--
-- `ovs` reads events_base directly for the Parquet/Arrow rows: through the `events` view
-- (a UNION ALL) DuckDB reads the whole ovs STRUCT (~30 leaves, lists among them) instead
-- of the four fields used, which made this scan 10x slower (0.21 vs 0.02 s at 1M events).
-- Rows loaded from Retis JSON (events_lazy) still go through the view, which parses their
-- ovs text; with none loaded, the semi-join's empty build side ends that branch at once.
-- events_base stores no `ts` (the view's alias of common.timestamp, ALIAS_COLUMNS in
-- model/derive.ts): read from its section here. flow_lookup and upcall_return (a third of
-- OVS events) are not read by the chain. The kinds stay strings: DuckDB pushes each
-- reader's filter into the CTE, so a kind code computed there with a CASE was evaluated
-- twice per row (0.24 s of thread time at 1M).
--
-- An enqueue belongs to the upcall it names by (timestamp, cpu). Userspace events and
-- executed actions find their upcall through the latest enqueue of the same queue id
-- before them (queue_id = hash of the packet's first 64 bytes). "Before" is by timestamp,
-- not arrival order: every probe reads the same CLOCK_MONOTONIC, while per-CPU buffers can
-- deliver an enqueue after the userspace events that followed it.
CREATE OR REPLACE TEMP TABLE _link AS
WITH ovs AS MATERIALIZED (
  SELECT eid, common.timestamp AS ts, track_id, ovs_event AS et,
         ovs.cpu AS cpu, ovs.upcall_ts AS upcall_ts, ovs.upcall_cpu AS upcall_cpu, ovs.queue_id AS queue_id
  FROM events_base
  WHERE ovs_event IS NOT NULL AND ovs_event <> 'flow_lookup' AND ovs_event <> 'upcall_return'
  UNION ALL
  SELECT eid, ts, track_id, ovs_event, ovs.cpu, ovs.upcall_ts, ovs.upcall_cpu, ovs.queue_id
  FROM events
  WHERE ovs_event IS NOT NULL AND ovs_event <> 'flow_lookup' AND ovs_event <> 'upcall_return'
    AND eid IN (SELECT eid FROM events_lazy WHERE "_json_ovs" IS NOT NULL)
),
enq AS MATERIALIZED (
  SELECT e.eid, e.ts, e.queue_id, u.track_id AS up_track
  FROM (SELECT eid, ts, queue_id, upcall_ts, upcall_cpu FROM ovs WHERE et = 'upcall_enqueue') e
  JOIN (SELECT ts, cpu, any_value(track_id ORDER BY eid) AS track_id FROM ovs WHERE et = 'upcall' GROUP BY ts, cpu) u
    ON u.ts = e.upcall_ts AND u.cpu = e.upcall_cpu
)
SELECT o.eid, o.act, o.track_id, q.up_track
FROM (SELECT eid, ts, queue_id, et = 'action_execute' AS act, track_id FROM ovs
      WHERE et <> 'upcall' AND et <> 'upcall_enqueue' AND queue_id IS NOT NULL) o
ASOF JOIN enq q ON o.queue_id = q.queue_id AND o.ts >= q.ts
UNION ALL
SELECT eid, false, NULL, up_track FROM enq;

-- The skb an executed action runs on is the packet re-injected by ovs-vswitchd: its
-- tracking id is an alias of the upcall's series. Aliases can chain (the re-injected
-- packet upcalls again), so each id is followed to its root.
CREATE OR REPLACE TEMP TABLE _alias AS
SELECT DISTINCT track_id AS tid, up_track AS parent
FROM _link WHERE act AND track_id IS NOT NULL AND up_track IS NOT NULL AND track_id <> up_track;

CREATE OR REPLACE TEMP TABLE _root AS
WITH RECURSIVE walk(tid, cur, depth) AS (
  SELECT tid, parent, 1 FROM _alias
  UNION ALL
  SELECT w.tid, a.parent, w.depth + 1 FROM walk w JOIN _alias a ON a.tid = w.cur WHERE w.depth < 64
)
SELECT tid, arg_max(cur, depth) AS root FROM walk GROUP BY tid;

-- Output order: Retis pops the series with the oldest key (timestamp, orig_head) unless
-- the oldest untracked event is older. Untracked events leave in arrival order, so an
-- untracked event goes before every series whose timestamp is not below the running
-- maximum of untracked timestamps up to it. (Untracked events are few: computed apart.)
-- The few events with a per-event fact (found through an enqueue, or untracked) are one
-- small table keyed by eid (the sets are disjoint), so the full scan below probes one
-- hash table by eid and one (aliases, tiny) by tracking id.
CREATE OR REPLACE TEMP TABLE _byeid AS
-- Events found through an enqueue belong to their upcall's series (followed to its root).
WITH via AS MATERIALIZED (
  SELECT x.eid, coalesce(r.root, x.up_track) AS via_tid
  FROM _link x LEFT JOIN _root r ON r.tid = x.up_track
  WHERE x.up_track IS NOT NULL
)
SELECT eid, via_tid, NULL::UBIGINT AS k_ts FROM via
UNION ALL
SELECT eid, NULL::UHUGEINT, max(ts) OVER (ORDER BY eid ROWS UNBOUNDED PRECEDING)
FROM events e WHERE track_id IS NULL AND NOT EXISTS (SELECT 1 FROM via v WHERE v.eid = e.eid);

-- Each tracked event's series is its upcall's (for events found through an enqueue), else
-- its own tracking id followed through aliases to the root. One window pass numbers each
-- series' events in arrival order and finds the event whose skb-tracking section becomes
-- the series' `tracking.skb`: the first seen with the series' own id (its number only: the
-- section is fetched when series are printed). That is a min() over the whole partition,
-- which DuckDB computes once per partition (first_value IGNORE NULLS is per row).
-- Untracked events (each a series of its own) stay out of the window and come from _byeid,
-- so the rows sorted carry no per-event ordering key. The window's input and output are
-- kept narrow: every column carried costs in the sort and in the table append.
CREATE OR REPLACE TABLE series_map AS
SELECT eid, series_tid,
       min(CASE WHEN track_id = series_tid THEN eid END) OVER w AS root_eid,
       (row_number() OVER w - 1)::UINTEGER AS idx,
       (series_tid >> 64)::UBIGINT AS k_ts
FROM (
  SELECT e.eid, e.track_id, coalesce(b.via_tid, ra.root, e.track_id) AS series_tid
  FROM events e
  LEFT JOIN _byeid b ON b.eid = e.eid
  LEFT JOIN _root ra ON ra.tid = e.track_id
  WHERE e.track_id IS NOT NULL OR b.via_tid IS NOT NULL
)
WINDOW w AS (PARTITION BY series_tid ORDER BY eid ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
UNION ALL
SELECT eid, NULL, NULL, 0::UINTEGER, k_ts FROM _byeid WHERE via_tid IS NULL;

DROP TABLE _link; DROP TABLE _alias; DROP TABLE _root; DROP TABLE _byeid;
