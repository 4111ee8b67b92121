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
FROM events WHERE ovs_event IS NOT NULL;

-- An enqueue belongs to the upcall it names by (timestamp, cpu).
CREATE OR REPLACE TEMP TABLE _enq AS
SELECT e.eid, e.queue_id, u.track_id AS up_track
FROM _ovs e
JOIN (SELECT ts, cpu, any_value(track_id ORDER BY eid) AS track_id FROM _ovs WHERE et = 'upcall' GROUP BY ts, cpu) u
  ON u.ts = e.upcall_ts AND u.cpu = e.upcall_cpu
WHERE e.et = 'upcall_enqueue';

-- Userspace events and executed actions find their upcall through the latest enqueue of
-- the same queue id before them (queue_id = hash of the packet's first 64 bytes). "Before"
-- is by timestamp, not arrival order: every probe reads the same CLOCK_MONOTONIC, while
-- per-CPU buffers can deliver an enqueue after the userspace events that followed it.
CREATE OR REPLACE TEMP TABLE _enq_ts AS SELECT n.*, o.ts FROM _enq n JOIN _ovs o USING (eid);
CREATE OR REPLACE TEMP TABLE _qref AS
SELECT o.eid, o.et, o.track_id, q.up_track
FROM (SELECT * FROM _ovs WHERE queue_id IS NOT NULL AND et IN ('recv_upcall', 'flow_operation', 'action_execute')) o
ASOF JOIN _enq_ts q ON o.queue_id = q.queue_id AND o.ts >= q.ts;

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

-- Events found through an enqueue belong to their upcall's series.
CREATE OR REPLACE TEMP TABLE _via AS
SELECT eid, up_track FROM _qref WHERE up_track IS NOT NULL
UNION ALL SELECT eid, up_track FROM _enq;

-- Output order: Retis pops the series with the oldest key (timestamp, orig_head) unless
-- the oldest untracked event is older. Untracked events leave in arrival order, so an
-- untracked event goes before every series whose timestamp is not below the running
-- maximum of untracked timestamps up to it. (Untracked events are few: computed apart.)
CREATE OR REPLACE TEMP TABLE _untracked AS
SELECT eid, max(ts) OVER (ORDER BY eid ROWS UNBOUNDED PRECEDING) AS k_ts
FROM events WHERE track_id IS NULL AND eid NOT IN (SELECT eid FROM _via);

-- Each event's series is its upcall's (for events found through an enqueue), else its own
-- tracking id; either followed through aliases to the root. One window pass then numbers
-- each series' events in arrival order and finds the event whose skb-tracking section
-- becomes the series' `tracking.skb`: the first seen with the series' own id (its number
-- only: the section is fetched when series are printed).
CREATE OR REPLACE TABLE series_map AS
WITH m AS (
  SELECT e.eid, e.track_id, coalesce(rx.root, x.up_track, ra.root, e.track_id) AS series_tid
  FROM events e
  LEFT JOIN _via x ON x.eid = e.eid
  LEFT JOIN _root rx ON rx.tid = x.up_track
  LEFT JOIN _root ra ON ra.tid = e.track_id
)
SELECT m.eid, m.series_tid,
       CASE WHEN m.series_tid IS NOT NULL THEN
         first_value(CASE WHEN m.track_id = m.series_tid THEN m.eid END IGNORE NULLS) OVER w END AS root_eid,
       (row_number() OVER w - 1)::UINTEGER AS idx,
       coalesce(u.k_ts, (m.series_tid >> 64)::UBIGINT) AS k_ts,
       CASE WHEN m.series_tid IS NULL THEN 0 ELSE 1 END AS k_kind,
       CASE WHEN m.series_tid IS NULL THEN 0::UBIGINT ELSE (m.series_tid & 18446744073709551615::UHUGEINT)::UBIGINT END AS k_head
FROM m LEFT JOIN _untracked u ON u.eid = m.eid
WINDOW w AS (PARTITION BY m.series_tid ORDER BY m.eid ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING);

DROP TABLE _ovs; DROP TABLE _enq; DROP TABLE _enq_ts; DROP TABLE _qref; DROP TABLE _alias; DROP TABLE _root;
DROP TABLE _via; DROP TABLE _untracked;
