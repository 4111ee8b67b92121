/** The event columns every table/csv rendering of events shows (print, sort, queries). */

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
