/**
 * SQL that derives the flat columns of the event model from its sections.
 *
 * One definition serves every reader: Retis JSON files, our Parquet and Arrow captures
 * all hold (or are converted to) section columns, and the flat columns are computed
 * here, inside DuckDB, rather than row by row in JavaScript.
 *
 * Packet fields come from the raw bytes (packet.data, Ethernet first): VLAN tags are
 * skipped, then IPv4/IPv6 addresses, the IP protocol and TCP/UDP/SCTP ports are read.
 */

/** Macros created once per connection (`CREATE OR REPLACE MACRO`). */
/** For each 8-bit mask of zero groups: the longest run (>= 2; first on ties) as start * 16 + length, else 0. */
const V6_BEST = Array.from({ length: 256 }, (_, m) => {
  let best = 0;
  let bestLen = 1;
  for (let i = 0; i < 8; i++) {
    let n = 0;
    while (i + n < 8 && m & (1 << (i + n))) n++;
    if (n > bestLen) {
      best = i * 16 + n;
      bestLen = n;
    }
  }
  return best.toString(16).padStart(2, '0');
}).join('');

export const PACKET_MACROS_SQL = `
CREATE OR REPLACE MACRO rt_u8(b, o) AS
  CASE WHEN octet_length(b) > o THEN b[o + 1 : o + 1]::BIT::UTINYINT END;
CREATE OR REPLACE MACRO rt_u16(b, o) AS
  CASE WHEN octet_length(b) >= o + 2 THEN b[o + 1 : o + 2]::BIT::USMALLINT END;
-- Offset of the L3 header: 14, or past one or two 802.1Q/802.1ad tags.
CREATE OR REPLACE MACRO rt_l3off(b) AS
  CASE WHEN rt_u16(b, 12) IN (33024, 34984, 37120)
       THEN CASE WHEN rt_u16(b, 16) IN (33024, 34984, 37120) THEN 22 ELSE 18 END
       ELSE 14 END;
CREATE OR REPLACE MACRO rt_etype(b, l3) AS rt_u16(b, l3 - 2);
-- IPv4 address at o as one 32-bit number (computed once per row, in a layer), then its
-- text: four 1-byte reads, each a BLOB slice cast through BIT, cost twice as much
-- (0.18 vs 0.09 s CPU for 200k addresses).
CREATE OR REPLACE MACRO rt_u32(b, o) AS
  CASE WHEN octet_length(b) >= o + 4 THEN b[o + 1 : o + 4]::BIT::UINTEGER END;
CREATE OR REPLACE MACRO rt_ipv4_text(a) AS
  concat_ws('.', a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
-- IPv6 text per RFC 5952 (lowercase, no leading zeros, the longest run of two or more
-- zero groups, the first on ties, as '::'), without regular expressions: the 16 bytes
-- become 32 hex digits once, a bit mask says which groups are zero, and a 256-entry
-- table (V6_BEST, computed in TypeScript) gives that mask's run as start * 16 + length.
-- The table is a string constant (two hex digits per entry): a 256-element list literal
-- is rebuilt for every row. Macro arguments are expanded at each use, so the group list
-- and the run are computed once per row in a layer of flatSelect (rt_v6groups, rt_v6run)
-- and rt_v6join only gets column references: with them passed as nested macro calls,
-- IPv6 text cost ~70 µs per address (10× the rest of the derivation together).
CREATE OR REPLACE MACRO rt_v6g(h, i) AS coalesce(nullif(ltrim(substr(h, 4 * i + 1, 4), '0'), ''), '0');
CREATE OR REPLACE MACRO rt_v6mask(h) AS
  (substr(h, 1, 4) = '0000')::INT + 2 * (substr(h, 5, 4) = '0000')::INT + 4 * (substr(h, 9, 4) = '0000')::INT
  + 8 * (substr(h, 13, 4) = '0000')::INT + 16 * (substr(h, 17, 4) = '0000')::INT + 32 * (substr(h, 21, 4) = '0000')::INT
  + 64 * (substr(h, 25, 4) = '0000')::INT + 128 * (substr(h, 29, 4) = '0000')::INT;
CREATE OR REPLACE MACRO rt_v6join(l, sl) AS
  CASE WHEN sl = 0 THEN array_to_string(l, ':')
       ELSE array_to_string(l[1 : sl // 16], ':') || '::' || array_to_string(l[sl // 16 + sl % 16 + 1 : 8], ':') END;
CREATE OR REPLACE MACRO rt_v6groups(h) AS
  [rt_v6g(h, 0), rt_v6g(h, 1), rt_v6g(h, 2), rt_v6g(h, 3), rt_v6g(h, 4), rt_v6g(h, 5), rt_v6g(h, 6), rt_v6g(h, 7)];
CREATE OR REPLACE MACRO rt_v6run(h) AS ('0x' || substr('${V6_BEST}', 2 * rt_v6mask(h) + 1, 2))::INT;
-- 32 lowercase hex digits of the 16 bytes at o (computed once per row, in a layer).
CREATE OR REPLACE MACRO rt_v6hex(b, o) AS
  CASE WHEN octet_length(b) >= o + 16 THEN lower(hex(b[o + 1 : o + 16])) END;
`;

/** The protocol name of an ethertype and IP protocol: the `events` view's `proto` for
 * `events_lazy` (load/table.ts), so created with every database, unlike the macros above
 * (only the loads without the analyzer's addon use those: ~15 ms saved per load). */
export const PROTO_NAME_MACRO_SQL = `
CREATE OR REPLACE MACRO rt_proto_name(et, p) AS
  CASE WHEN et = 2054 THEN 'arp'
       WHEN p IS NULL THEN NULL
       WHEN p = 6 THEN 'tcp' WHEN p = 17 THEN 'udp' WHEN p = 1 THEN 'icmp' WHEN p = 58 THEN 'icmpv6'
       WHEN p = 132 THEN 'sctp' WHEN p = 2 THEN 'igmp' WHEN p = 47 THEN 'gre' WHEN p = 50 THEN 'esp'
       WHEN p = 51 THEN 'ah' WHEN p = 4 THEN 'ipip' WHEN p = 41 THEN 'ipv6' WHEN p = 136 THEN 'udplite'
       ELSE p::VARCHAR END;
`;

/**
 * Flat columns that merely copy a section field: not stored (load/table.ts), the `events`
 * view computes them from their sections (name → SQL over the row's section columns; each
 * of the model's type already, so no cast). Storing them cost DuckDB's insert a column
 * each: `CREATE TABLE AS SELECT *` of 1M JSON events 1.3-1.55 s with them vs 0.9-1.15 s
 * without. Only non-lazy sections (model/lazy.ts) may be read here: the view reads these
 * columns from `events_lazy` too, where lazy sections are JSON text.
 */
export const ALIAS_COLUMNS: Readonly<Record<string, string>> = {
  ts: 'common.timestamp',
  cpu: 'common.smp_id',
  pid: 'common.task.pid',
  tgid: 'common.task.tgid',
  comm: 'common.task.comm',
  probe_type: 'coalesce(kernel.probe_type, userspace.probe_type)',
  symbol: 'coalesce(kernel.symbol, userspace.symbol)',
  skb_addr: '"skb-tracking".skb',
  reason: '"skb-drop".drop_reason',
  drop_subsys: '"skb-drop".subsys',
  dev_name: 'dev.name',
  ifindex: 'dev.ifindex',
  netns_inum: 'netns.inum',
  len: 'packet.len',
};

export const isAliasColumn = (name: string): boolean => Object.hasOwn(ALIAS_COLUMNS, name);

/** `probe` from the kernel/userspace sections (non-lazy: the view also computes it, load/table.ts). */
export const PROBE_SQL = `CASE WHEN kernel IS NOT NULL THEN
         CASE kernel.probe_type WHEN 'raw_tracepoint' THEN 'tp:' WHEN 'kprobe' THEN 'kprobe:'
              WHEN 'kretprobe' THEN 'kretprobe:' ELSE kernel.probe_type || ':' END || kernel.symbol
       WHEN userspace IS NOT NULL THEN userspace.probe_type || ':' || userspace.symbol END`;

/**
 * Select-list that turns a relation with section columns (and `_b`, the packet bytes,
 * `_l3`, their L3 offset, `_et` the ethertype, `_l4` the L4 offset or NULL, `_p` the IP
 * protocol, `_s4`/`_d4` the IPv4 addresses as numbers) into the stored flat columns (the
 * alias columns above are left to the view). See `flatSelect` for the layering.
 */
const flatFromSections = (ovsEvent: string, packetCols: string) => `
  ${PROBE_SQL} AS probe,
  ("skb-tracking".timestamp::UHUGEINT << 64) | "skb-tracking".orig_head::UHUGEINT AS track_id,
  ${ovsEvent} AS ovs_event,
  ${packetCols}`;

/** The packet's flat columns from the layers of flatSelect (the SQL macros). */
const PACKET_FROM_LAYERS = `_et AS ethertype,
  CASE _et WHEN 2048 THEN rt_ipv4_text(_s4) WHEN 34525 THEN rt_v6join(_s6l, _s6r) END AS saddr,
  CASE _et WHEN 2048 THEN rt_ipv4_text(_d4) WHEN 34525 THEN rt_v6join(_d6l, _d6r) END AS daddr,
  _p AS ip_proto,
  rt_proto_name(_et, _p) AS proto,
  CASE WHEN _p IN (6, 17, 132, 136) THEN rt_u16(_b, _l4) END AS sport,
  CASE WHEN _p IN (6, 17, 132, 136) THEN rt_u16(_b, _l4 + 2) END AS dport`;

/** The same columns from retis_packet (analyze/native), one call per row in a layer. */
const PACKET_FROM_NATIVE = ['ethertype', 'saddr', 'daddr', 'ip_proto', 'proto', 'sport', 'dport'].map((c) => `_pk.${c} AS ${c}`).join(', ');

export interface FlatOptions {
  /** SQL for ovs_event when `ovs` is not a STRUCT column of `inner` (lazy sections). */
  ovsEvent?: string;
  /**
   * Packet columns from the native retis_packet function (registered by the analyzer's
   * addon, load/native-json.ts) instead of the SQL macros above, which define them and
   * stay the oracle of tests/analyze/native-json.test.ts.
   */
  nativePacket?: boolean;
}

/**
 * Wrap `inner` (a SELECT yielding section columns plus any extra columns) into a SELECT
 * that adds the stored flat columns (all but ALIAS_COLUMNS). `extra` are select-list items
 * evaluated on the inner relation (e.g. `src`, `seq`); `drop` are inner helper columns left out of the result.
 */
export function flatSelect(inner: string, extra: string[], drop: string[] = [], opts: FlatOptions = {}): string {
  if (opts.nativePacket) {
    const l1 = `SELECT *, retis_packet(packet.data) AS _pk FROM (${inner})`;
    return `SELECT ${[...extra, flatFromSections(opts.ovsEvent ?? 'ovs.event_type', PACKET_FROM_NATIVE)].join(',\n  ')}, * EXCLUDE (${[...drop, '_pk'].join(', ')}) FROM (${l1})`;
  }
  // Layered so each packet offset is computed once per row, not once per use.
  const l1 = `SELECT *, packet.data AS _b FROM (${inner})`;
  const l2 = `SELECT *, rt_l3off(_b) AS _l3 FROM (${l1})`;
  const l3 = `SELECT *, rt_etype(_b, _l3) AS _et FROM (${l2})`;
  const l4 = `SELECT *,
      CASE _et WHEN 2048 THEN rt_u8(_b, _l3 + 9) WHEN 34525 THEN rt_u8(_b, _l3 + 6) END AS _p,
      CASE _et WHEN 2048 THEN
             CASE WHEN (rt_u16(_b, _l3 + 6) & 8191) = 0 THEN _l3 + 4 * (rt_u8(_b, _l3) & 15) END
           WHEN 34525 THEN _l3 + 40 END AS _l4,
      CASE WHEN _et = 2048 THEN rt_u32(_b, _l3 + 12) END AS _s4,
      CASE WHEN _et = 2048 THEN rt_u32(_b, _l3 + 16) END AS _d4,
      CASE WHEN _et = 34525 THEN rt_v6hex(_b, _l3 + 8) END AS _s6,
      CASE WHEN _et = 34525 THEN rt_v6hex(_b, _l3 + 24) END AS _d6
    FROM (${l3})`;
  const l5 = `SELECT *,
      CASE WHEN _s6 IS NOT NULL THEN rt_v6groups(_s6) END AS _s6l, CASE WHEN _s6 IS NOT NULL THEN rt_v6run(_s6) END AS _s6r,
      CASE WHEN _d6 IS NOT NULL THEN rt_v6groups(_d6) END AS _d6l, CASE WHEN _d6 IS NOT NULL THEN rt_v6run(_d6) END AS _d6r
    FROM (${l4})`;
  const helpers = ['_b', '_l3', '_et', '_p', '_l4', '_s4', '_d4', '_s6', '_d6', '_s6l', '_s6r', '_d6l', '_d6r'];
  return `SELECT ${[...extra, flatFromSections(opts.ovsEvent ?? 'ovs.event_type', PACKET_FROM_LAYERS)].join(',\n  ')}, * EXCLUDE (${[...drop, ...helpers].join(', ')}) FROM (${l5})`;
}

export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

export interface ModelSource {
  /** File the rows come from (the `src` column). */
  src: string;
  host: string | null;
  /** Monotonic → wall clock offset of the recording host, ns; NULL wall_ns without it. */
  offsetNs: bigint | null;
}

/**
 * Model rows from a relation holding `_seq`, `_series` and the section columns: adds
 * src, seq, series, host, wall_ns and the derived (stored) flat columns. Shared by every reader
 * whose files hold sections only (Retis JSON, our Arrow streams).
 */
export function modelSelect(sections: string, from: ModelSource, opts: FlatOptions = {}): string {
  const offset = from.offsetNs === null ? 'NULL' : `${from.offsetNs}`;
  return flatSelect(
    sections,
    [
      `${sqlString(from.src)} AS src`,
      `_seq::UBIGINT AS seq`,
      `_series::UBIGINT AS series`,
      `${from.host === null ? 'NULL' : sqlString(from.host)}::VARCHAR AS host`,
      `(common.timestamp::HUGEINT + ${offset})::BIGINT AS wall_ns`,
    ],
    ['_seq', '_series'],
    opts,
  );
}
