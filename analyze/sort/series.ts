/**
 * Packet series: Retis's `sort`, computed in DuckDB (tracking.sql) and streamed out in
 * series order. JavaScript only groups consecutive rows of the ordered result.
 */
import fs from 'node:fs';
import type { Db } from '../db.ts';
import { eventFromRow, type RetisEvent } from '../model/event.ts';

const TRACKING_SQL = fs.readFileSync(new URL('./tracking.sql', import.meta.url), 'utf8');

/** Build `series_map` for what is in `events`. Input already sorted (series files) keeps its series. */
export async function buildSeries(db: Db): Promise<void> {
  await db.run(TRACKING_SQL, undefined, 'reconstructing packet series');
}

/** True when every loaded event came from a sorted-series file. */
export async function inputIsSorted(db: Db): Promise<boolean> {
  const [r] = await db.rows<{ unsorted: bigint; total: bigint }>(
    `SELECT count(*) FILTER (WHERE series IS NULL) AS unsorted, count(*) AS total FROM events`,
  );
  return r!.total > 0n && r!.unsorted === 0n;
}

export interface SeriesOptions {
  /** SQL condition on `events` (alias e) selecting which events to emit; default all. */
  where?: string;
}

/**
 * Yield series in Retis's output order, each an array of events in arrival order with
 * their `tracking` section ({skb, idx}) filled in as `retis sort` writes it.
 */
export interface Series {
  /** File the series' first event came from (its version and clock apply). */
  src: string;
  events: RetisEvent[];
}

export async function* streamSeries(db: Db, opts: SeriesOptions = {}): AsyncGenerator<Series> {
  const sorted = await inputIsSorted(db);
  // _sk only tells series apart. It stays numeric: DuckDB 1.5 turns a UHUGEINT into text
  // at ~200 µs a value (measured), which made printing 1M events in series take minutes.
  // A tracking id is (timestamp << 64 | orig_head) >= 2^64, so it never equals an eid.
  const sql = sorted
    ? // Already sorted by Retis: keep its series and their order.
      `SELECT e.*, e.src || '#' || e.series AS _sk FROM events e ${opts.where ? `WHERE ${opts.where}` : ''} ORDER BY e.eid`
    : `SELECT e.* REPLACE (CASE WHEN m.series_tid IS NULL THEN NULL ELSE {'skb': r."skb-tracking", 'idx': m.idx} END AS tracking),
              coalesce(m.series_tid, e.eid::UHUGEINT) AS _sk
       FROM events e JOIN series_map m USING (eid) LEFT JOIN events r ON r.eid = m.root_eid
       ${opts.where ? `WHERE ${opts.where}` : ''}
       ORDER BY m.k_ts, m.series_tid NULLS FIRST, e.eid`;
  let current: Series | null = null;
  let key: unknown = undefined;
  for await (const rows of db.stream(sql, undefined, 'reading packet series')) {
    for (const row of rows) {
      if (row._sk !== key && current !== null) {
        yield current;
        current = null;
      }
      key = row._sk;
      current ??= { src: row.src as string, events: [] };
      current.events.push(eventFromRow(row));
    }
  }
  if (current !== null) yield current;
}
