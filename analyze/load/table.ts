/**
 * The `events` table as queries see it, and the tables rows are stored in.
 *
 * Rows live in `events_base` (every section a STRUCT) or, when read from Retis JSON with
 * lazy sections (model/lazy.ts), in `events_lazy` (those sections as JSON text); both
 * hold `_problem`, the first shape problem of the row found at load (NULL when fine).
 * `events` is a view with exactly the model's columns, in the model's order; it converts
 * a lazy section's text to its STRUCT only when a query reads that section, for the rows
 * that reach it, and computes the flat columns that copy a section field (ALIAS_COLUMNS of
 * model/derive.ts), which neither table stores. A filter on one of them still reaches the
 * table scan (DuckDB pushes it through the view, onto the section's field). For
 * `events_lazy` it also computes the flat columns of LAZY_COMPUTED.
 */
import { FLAT_COLUMNS, SECTIONS, quoteIdent, sqlType } from '../model/schema.ts';
import { LAZY_SECTIONS, isLazy, lazyColumn, lazySectionExpr } from '../model/lazy.ts';
import { ALIAS_COLUMNS, PROBE_SQL, isAliasColumn } from '../model/derive.ts';
import { problemExpr, requiredPaths } from './validate.ts';

/** Flat columns stored in the tables: all but the alias columns, which the view computes. */
export const STORED_FLAT_COLUMNS = FLAT_COLUMNS.filter((c) => !isAliasColumn(c.name));

/**
 * Flat columns `events_lazy` does not store either (the view computes them, name → SQL over
 * its stored columns): the same for every row of a file (`src`, `host`: from `file_no`, the
 * file's number in this database, through the rt_file_src/rt_file_host macros of
 * load/index.ts), always NULL there (`series`: events files only), or cheap to derive when
 * read (`probe`, `proto`, `ovs_event`). Storing them was a quarter of the insert of 1M
 * Retis JSON events (a copy of the table: 1.05 s with them, 0.78 s without).
 */
export const LAZY_COMPUTED: Readonly<Record<string, string>> = {
  src: 'rt_file_src(file_no)',
  host: 'rt_file_host(file_no)',
  series: 'NULL::UBIGINT',
  probe: PROBE_SQL,
  proto: 'rt_proto_name(ethertype, ip_proto)',
  ovs_event: `json_extract_string(${lazyColumn('ovs')}, '$.event_type')`,
};

/** Stored flat columns of `events_lazy`. */
export const LAZY_STORED_FLAT_COLUMNS = STORED_FLAT_COLUMNS.filter((c) => !Object.hasOwn(LAZY_COMPUTED, c.name));

/** A flat column as the view selects it from `events_lazy`. */
const lazyFlatColumnExpr = (name: string): string =>
  Object.hasOwn(LAZY_COMPUTED, name) ? `${LAZY_COMPUTED[name]} AS ${quoteIdent(name)}` : flatColumnExpr(name);

/** A flat column as the view selects it: stored, or its section expression. */
export const flatColumnExpr = (name: string): string =>
  isAliasColumn(name) ? `${ALIAS_COLUMNS[name]} AS ${quoteIdent(name)}` : quoteIdent(name);

/** Rows whose sections are all STRUCTs: Parquet, Arrow, Retis JSON of older formats. */
export const EVENTS_BASE_SQL = `CREATE TABLE IF NOT EXISTS events_base (
  ${[...[...STORED_FLAT_COLUMNS, ...SECTIONS].map((c) => `${quoteIdent(c.name)} ${sqlType(c.type)}`), '_problem VARCHAR'].join(',\n  ')}
)`;

/**
 * Rows read from Retis JSON with lazy sections: those sections' text, and no STRUCT column
 * for them at all. A separate table because DuckDB appends to every leaf of a STRUCT column
 * even when the value is NULL: with the lazy sections' ~200 leaves in the same table, the
 * insert of 200k JSON events cost 4.4 s CPU of 18.7 (profiled), most of it NULL leaves.
 */
export const EVENTS_LAZY_SQL = `CREATE TABLE IF NOT EXISTS events_lazy (
  ${[
    ...[...LAZY_STORED_FLAT_COLUMNS, ...SECTIONS.filter((s) => !isLazy(s.name))].map((c) => `${quoteIdent(c.name)} ${sqlType(c.type)}`),
    'file_no UINTEGER',
    ...LAZY_SECTIONS.map((s) => `${lazyColumn(s)} VARCHAR`),
    '_problem VARCHAR',
  ].join(',\n  ')}
)`;

/** The model's columns over both tables; lazy sections typed only when read. */
export const EVENTS_VIEW_SQL = `CREATE VIEW IF NOT EXISTS events AS
SELECT ${[...FLAT_COLUMNS.map((c) => flatColumnExpr(c.name)), ...SECTIONS.map((s) => quoteIdent(s.name))].join(', ')} FROM events_base
UNION ALL
SELECT ${[
  ...FLAT_COLUMNS.map((c) => lazyFlatColumnExpr(c.name)),
  ...SECTIONS.map((s) => (isLazy(s.name) ? `${lazySectionExpr(s.name)} AS ${quoteIdent(s.name)}` : quoteIdent(s.name))),
].join(', ')} FROM events_lazy`;

/** What the loader checks and counts, over both tables. */
export const EVENTS_ROWS_SQL = `CREATE VIEW IF NOT EXISTS _event_rows AS
SELECT eid, src, seq, _problem FROM events_base UNION ALL SELECT eid, ${LAZY_COMPUTED.src} AS src, seq, _problem FROM events_lazy`;

/**
 * `select` (model rows with STRUCT sections) plus `_problem`. With `lazy`, the lazy
 * sections are JSON text columns: one json_type call per section, in a layer below,
 * gives the JSON type of every path the checks read (parsing each text once; a JSON null
 * counts as absent, as for typed sections). Types rather than the values: from_json with
 * JSON leaves re-serialised objects such as ct's tuples, twice the CPU (0.28 vs 0.13 s
 * per 200k events).
 */
export function withProblem(select: string, lazy: boolean): string {
  if (!lazy) return `SELECT *, ${problemExpr()} AS _problem FROM (${select})`;
  const v = (s: string) => quoteIdent(`_v_${s}`);
  const jsonPaths = (s: string) => `[${requiredPaths(s).map((p) => `'$.${p}'`).join(', ')}]`;
  const extracts = LAZY_SECTIONS.map((s) => `json_type(${lazyColumn(s)}, ${jsonPaths(s)}) AS ${v(s)}`);
  const ref = (path: string) => {
    const [section, ...rest] = path.split('.') as [string, ...string[]];
    if (!isLazy(section)) return [quoteIdent(section), ...rest].join('.');
    if (rest.length === 0) return lazyColumn(section);
    return `nullif(${v(section)}[${requiredPaths(section).indexOf(rest.join('.')) + 1}], 'NULL')`;
  };
  return `SELECT * EXCLUDE (${LAZY_SECTIONS.map(v).join(', ')}), ${problemExpr(ref)} AS _problem
    FROM (SELECT *, ${extracts.join(', ')} FROM (${select}))`;
}
