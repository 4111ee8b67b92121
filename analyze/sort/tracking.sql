-- Series reconstruction (Retis `sort`, spec §3), complete: every event of a packet is
-- grouped whatever the interleaving, with no buffer limit, in one pass of set operations.
--
-- Input: the `events` table. Output: table `series_map(eid, series_tid, root_eid, idx,
-- k_ts, k_kind, k_head)`, one row per event; `series_tid` is the tracking id of the series
-- the event belongs to (NULL: an untracked event, a series of its own), `idx` its position
-- in the series, and (k_ts, k_kind, k_head, eid) the output order of series.

CREATE OR REPLACE TEMP TABLE _ovs AS
SELECT eid, ts, track_id, ovs.event_type AS et, ovs.cpu AS cpu, ovs.upcall_ts AS upcall_ts,
       ovs.upcall_cpu AS upcall_cpu, ovs.queue_id AS queue_id
FROM events
-- Only the kinds the chain below reads (flow_lookup and upcall_return are a third of OVS
-- events): the filter runs below the view, before any ovs section is built.
WHERE ovs_event IN ('upcall', 'upcall_enqueue', 'recv_upcall', 'flow_operation', 'action_execute');

-- An enqueue belongs to the upcall it names by (timestamp, cpu).
CREATE OR REPLACE TEMP TABLE _enq AS
SELECT e.eid, e.ts, e.queue_id, u.track_id AS up_track
FROM _ovs e
JOIN (SELECT ts, cpu, any_value(track_id ORDER BY eid) AS track_id FROM _ovs WHERE et = 'upcall' GROUP BY ts, cpu) u
  ON u.ts = e.upcall_ts AND u.cpu = e.upcall_cpu
WHERE e.et = 'upcall_enqueue';

-- Userspace events and executed actions find their upcall through the latest enqueue of
-- the same queue id before them (queue_id = hash of the packet's first 64 bytes). "Before"
-- is by timestamp, not arrival order: every probe reads the same CLOCK_MONOTONIC, while
-- per-CPU buffers can deliver an enqueue after the userspace events that followed it.
CREATE OR REPLACE TEMP TABLE _qref AS
SELECT o.eid, o.et, o.track_id, q.up_track
FROM (SELECT * FROM _ovs WHERE queue_id IS NOT NULL AND et IN ('recv_upcall', 'flow_operation', 'action_execute')) o
ASOF JOIN _enq q ON o.queue_id = q.queue_id AND o.ts >= q.ts;

-- The skb an executed action runs on is the packet re-injected by ovs-vswitchd: its
-- tracking id is an alias of the upcall's series. Aliases can chain (the re-injected
-- packet upcalls again), so each id is followed to its root.
CREATE OR REPLACE TEMP TABLE _alias AS
SELECT DISTINCT track_id AS tid, up_track AS parent
FROM _qref WHERE et = 'action_execute' AND track_id IS NOT NULL AND up_track IS NOT NULL AND track_id <> up_track;

CREATE OR REPLACE TEMP TABLE _root AS
WITH RECURSIVE walk(tid, cur, depth) AS (
  SELECT tid, parent, 1 FROM _alias
  UNION ALL
  SELECT w.tid, a.parent, w.depth + 1 FROM walk w JOIN _alias a ON a.tid = w.cur WHERE w.depth < 64
)
SELECT tid, arg_max(cur, depth) AS root FROM walk GROUP BY tid;

-- Events found through an enqueue belong to their upcall's series (followed to its root).
CREATE OR REPLACE TEMP TABLE _via AS
SELECT x.eid, coalesce(r.root, x.up_track) AS via_tid
FROM (SELECT eid, up_track FROM _qref WHERE up_track IS NOT NULL UNION ALL SELECT eid, up_track FROM _enq) x
LEFT JOIN _root r ON r.tid = x.up_track;

-- Output order: Retis pops the series with the oldest key (timestamp, orig_head) unless
-- the oldest untracked event is older. Untracked events leave in arrival order, so an
-- untracked event goes before every series whose timestamp is not below the running
-- maximum of untracked timestamps up to it. (Untracked events are few: computed apart.)
-- The few events with a per-event fact (found through an enqueue, or untracked) are one
-- small table keyed by eid (the sets are disjoint), so the full scan below probes one
-- hash table by eid and one (aliases, tiny) by tracking id.
CREATE OR REPLACE TEMP TABLE _byeid AS
SELECT eid, via_tid, NULL::UBIGINT AS k_ts FROM _via
UNION ALL
SELECT eid, NULL::UHUGEINT, max(ts) OVER (ORDER BY eid ROWS UNBOUNDED PRECEDING)
FROM events e WHERE track_id IS NULL AND NOT EXISTS (SELECT 1 FROM _via v WHERE v.eid = e.eid);

-- Each event's series is its upcall's (for events found through an enqueue), else its own
-- tracking id followed through aliases to the root. One window pass numbers each series'
-- events in arrival order and finds the event whose skb-tracking section becomes the
-- series' `tracking.skb`: the first seen with the series' own id (its number only: the
-- section is fetched when series are printed). That is a min() over the whole partition,
-- which DuckDB computes once per partition (first_value IGNORE NULLS is per row).
CREATE OR REPLACE TABLE series_map AS
WITH m AS (
  SELECT e.eid, e.track_id, coalesce(b.via_tid, ra.root, e.track_id) AS series_tid, b.k_ts AS u_ts
  FROM events e
  LEFT JOIN _byeid b ON b.eid = e.eid
  LEFT JOIN _root ra ON ra.tid = e.track_id
)
SELECT eid, series_tid,
       CASE WHEN series_tid IS NOT NULL THEN min(CASE WHEN track_id = series_tid THEN eid END) OVER w END AS root_eid,
       (row_number() OVER w - 1)::UINTEGER AS idx,
       coalesce(u_ts, (series_tid >> 64)::UBIGINT) AS k_ts,
       CASE WHEN series_tid IS NULL THEN 0 ELSE 1 END AS k_kind,
       CASE WHEN series_tid IS NULL THEN 0::UBIGINT ELSE (series_tid & 18446744073709551615::UHUGEINT)::UBIGINT END AS k_head
FROM m
WINDOW w AS (PARTITION BY series_tid ORDER BY eid ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING);

DROP TABLE _ovs; DROP TABLE _enq; DROP TABLE _qref; DROP TABLE _alias; DROP TABLE _root;
DROP TABLE _via; DROP TABLE _byeid;
