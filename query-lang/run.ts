/**
 * The runner: text → compiled statement → rows on an output, against a loaded `Db`.
 *
 *   prepareQuery   parse and compile, fetching from the data the domains bare names need
 *   executeQuery   run a compiled query and write its result (events, rows, series, pcap)
 *   runSql         run raw SQL (`--sql`) and write its rows
 *
 * Everything a user can get wrong comes out as a `QueryError`; DuckDB failures at run
 * time become a `runtime_error` issue, never a stack trace.
 */
import fs from 'node:fs';
import { DbError, type Db, type Row } from '../analyze/db.ts';
import type { LoadedFile } from '../analyze/load/index.ts';
import { downgradeEvent, eventFromRow, eventToJson, seriesToJson, type RetisEvent } from '../analyze/model/event.ts';
import { Out, rowWriter, type OutputFormat } from '../analyze/output.ts';
import { buildSeries, streamSeries } from '../analyze/sort/series.ts';
import { formatEvent, formatSeries, type FormatOptions } from '../analyze/format/event-text.ts';
import { exportPcap } from '../analyze/pcap/retis-pcap.ts';
import { compile, type CompileOptions, type CompiledQuery } from './compile.ts';
import { Catalog, type Domain } from './domains.ts';
import { QueryError } from './errors.ts';
import type { Kind } from './fields.ts';
import { lex } from './lexer.ts';
import { parseTokens } from './parser.ts';
import { EVENT_TABLE_COLUMNS, EVENT_TABLE_SQL } from './sources.ts';
import { formatDurationNs } from './values.ts';
import { buildAst, type Query } from './visitor/ast.ts';

////  PARSE AND COMPILE  ////

/** Parse query text into its AST; throws QueryError. */
export function parseQuery(text: string): Query {
  const l = lex(text);
  if (l.issues.length > 0) throw new QueryError(l.issues.slice(0, 1), text);
  const p = parseTokens(l.tokens, text);
  if (!p.cst) throw new QueryError(p.issues, text);
  const a = buildAst(p.cst, text);
  if (!a.query) throw new QueryError(a.issues, text);
  return a.query;
}

/** Fetch the distinct values the data holds for each domain, into the catalog (one statement). */
export async function loadDomains(db: Db, catalog: Catalog, domains: readonly Domain[]): Promise<void> {
  const todo = domains.filter((d) => d.dataSql !== undefined && !catalog.hasData(d.key));
  if (todo.length === 0) return;
  const cols = todo.map((d, i) => `list(DISTINCT CAST(${d.dataSql} AS VARCHAR)) FILTER (WHERE ${d.dataSql} IS NOT NULL) AS d${i}`);
  const [row] = await db.rows(`SELECT ${cols.join(', ')} FROM events`, undefined, 'reading field values');
  todo.forEach((d, i) => {
    const v = row?.[`d${i}`];
    catalog.setData(d.key, Array.isArray(v) ? (v as unknown[]).filter((x): x is string => typeof x === 'string').sort() : []);
  });
}

/**
 * Parse and compile `text`. Bare names that only the data can confirm (`dev = eth0`,
 * `probe = kfree_skb`) are looked up in `events`, then the query is compiled again.
 * Throws QueryError.
 */
export async function prepareQuery(db: Db | null, text: string, opts: CompileOptions & { catalog?: Catalog } = {}): Promise<CompiledQuery> {
  const ast = parseQuery(text);
  const catalog = opts.catalog ?? new Catalog();
  for (;;) {
    const r = compile(ast, catalog, opts);
    if (r.ok) return r.query;
    const fetchable = r.pending.filter((d) => !catalog.hasData(d.key));
    if (fetchable.length === 0 || db === null) {
      if (r.issues.length > 0) throw new QueryError(r.issues, text);
      // Without a database, bare names we cannot check are taken as written.
      for (const d of r.pending) catalog.setData(d.key, []);
      if (db === null && r.pending.length > 0) continue;
      throw new QueryError([{ code: 'runtime_error', message: 'internal: compilation did not converge' }], text);
    }
    await withRuntimeErrors(text, () => loadDomains(db, catalog, fetchable));
  }
}

async function withRuntimeErrors<T>(text: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (e instanceof DbError) {
      const msg = (e.cause instanceof Error ? e.cause.message : String(e.cause)).replace(/^Failed to extract statements: /, '');
      throw new QueryError([{ code: 'runtime_error', message: `query failed: ${msg.split('\n')[0]}`, span: { start: 0, end: text.length } }], text);
    }
    throw e;
  }
}

/** `--explain`: the statement and its parameters, as text. */
export function explainText(q: CompiledQuery): string {
  const lines = [q.sql.trimEnd() + ';'];
  q.params.forEach((p, i) => lines.push(`-- $${i + 1} = ${typeof p === 'string' ? `'${p.replaceAll("'", "''")}'` : String(p)}`));
  if (q.needsSeries) lines.push('-- reads series_map (packet series, built from events first)');
  if (q.mode === 'series') lines.push('-- output: these events as packet series, in Retis text (| sort)');
  if (q.mode === 'pcap') lines.push(`-- output: these events' packets to ${q.pcapFile} (pcap-ng)`);
  return lines.join('\n');
}

////  EXECUTION  ////

export interface ExecuteOptions {
  format: OutputFormat;
  out: Out;
  /** The loaded files (monotonic offsets and Retis versions, for text and JSON of events). */
  files: readonly LoadedFile[];
  multiline?: boolean;
  utc?: boolean;
  printLl?: boolean;
  /** Where pcap summaries and notes go; default stderr. */
  log?: (line: string) => void;
}

async function seriesMapExists(db: Db): Promise<boolean> {
  const r = await db.rows<{ n: bigint }>(`SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = 'series_map' AND NOT temporary`);
  return (r[0]?.n ?? 0n) > 0n;
}

/** Build `series_map` unless it exists (it depends only on `events`, loaded once). */
export async function ensureSeries(db: Db): Promise<void> {
  if (!(await seriesMapExists(db))) await buildSeries(db);
}

function formatOptions(opts: ExecuteOptions): (src: string) => FormatOptions {
  const offsets = new Map(opts.files.map((f) => [f.path, f.offsetNs]));
  const cache = new Map<string, FormatOptions>();
  return (src) => {
    let o = cache.get(src);
    if (!o) {
      const off = offsets.get(src);
      o = { multiline: opts.multiline ?? true, utc: opts.utc ?? false, printLl: opts.printLl ?? false, ...(off != null ? { monotonicOffsetNs: off } : {}) };
      cache.set(src, o);
    }
    return o;
  };
}

function compatOf(opts: ExecuteOptions): (src: string) => number {
  const m = new Map(opts.files.map((f) => [f.path, f.compat]));
  return (src) => m.get(src) ?? 2;
}

/** ISO text (UTC, ns) of epoch nanoseconds. */
function isoNs(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return ns.toString();
  const frac = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0');
  return `${d.toISOString().slice(0, 19)}.${frac}Z`;
}

/** Cell text for humans (table and text formats): durations and dates readable. */
function humanCell(v: unknown, kind: Kind): unknown {
  if (v === null || v === undefined) return v;
  if (kind === 'duration' && (typeof v === 'bigint' || typeof v === 'number')) return formatDurationNs(v);
  if (kind === 'time' && typeof v === 'bigint') return isoNs(v);
  if (Array.isArray(v)) return v.map((x) => (x === null ? '' : String(x))).join(',');
  return v;
}

/** Run a compiled query and write its result. Throws QueryError on database errors. */
export async function executeQuery(db: Db, q: CompiledQuery, text: string, opts: ExecuteOptions): Promise<void> {
  await withRuntimeErrors(text, async () => {
    if (q.needsSeries) await ensureSeries(db);
    switch (q.mode) {
      case 'events':
        return writeEvents(db, q, opts);
      case 'rows':
        return writeRows(db, q, opts);
      case 'series':
        return writeSeries(db, q, opts);
      case 'pcap':
        return writePcap(db, q, opts);
    }
  });
}

async function writeEvents(db: Db, q: CompiledQuery, opts: ExecuteOptions): Promise<void> {
  const { out } = opts;
  if (opts.format === 'table' || opts.format === 'csv') {
    const w = rowWriter(opts.format, q.columns.map((c) => c.name), out);
    for await (const rows of db.stream(q.sql, q.params, 'running the query')) await w.rows(rows);
    await w.end();
    return;
  }
  const fmt = formatOptions(opts);
  const compat = compatOf(opts);
  const sep = (opts.multiline ?? true) ? '\n\n' : '\n';
  for await (const rows of db.stream(q.sql, q.params, 'running the query')) {
    for (const row of rows) {
      const src = row.src as string;
      const ev = eventFromRow(row);
      if (opts.format === 'json') await out.write(`${eventToJson(downgradeEvent(ev, compat(src)))}\n`);
      else {
        const t = formatEvent(ev, fmt(src));
        if (t.length > 0) await out.write(t + sep);
      }
    }
  }
  await out.flush();
}

async function writeRows(db: Db, q: CompiledQuery, opts: ExecuteOptions): Promise<void> {
  const human = opts.format === 'text' || opts.format === 'table';
  const names = q.columns.map((c) => c.name);
  const isHistogram = human && names.length === 2 && names[1] === 'count' && opts.format === 'text' && /\bAS _w\b/.test(q.sql);
  const cols = isHistogram ? [...names, ''] : names;
  const w = rowWriter(opts.format === 'text' ? 'table' : opts.format, cols, opts.out);
  if (isHistogram) {
    // Bars need the largest count: histograms are small, read them whole.
    const rows = await db.rows(q.sql, q.params, 'running the query');
    const max = rows.reduce((m, r) => Math.max(m, Number(r.count ?? 0)), 0);
    await w.rows(rows.map((r) => ({ ...humanRow(r, q), '': '█'.repeat(max > 0 ? Math.round((Number(r.count) * 40) / max) : 0) })));
  } else {
    for await (const rows of db.stream(q.sql, q.params, 'running the query')) await w.rows(human ? rows.map((r) => humanRow(r, q)) : rows);
  }
  await w.end();
}

function humanRow(r: Row, q: CompiledQuery): Row {
  const o: Row = {};
  for (const c of q.columns) o[c.name] = humanCell(r[c.name], c.kind);
  return o;
}

const SELECTION = '_rq_selection';

async function writeSeries(db: Db, q: CompiledQuery, opts: ExecuteOptions): Promise<void> {
  await ensureSeries(db);
  await db.run(`CREATE OR REPLACE TEMP TABLE ${SELECTION} AS ${q.sql}`, q.params, 'selecting events');
  try {
    const { out } = opts;
    if (opts.format === 'table' || opts.format === 'csv') {
      const cols = ['series', 'idx', ...EVENT_TABLE_COLUMNS];
      const w = rowWriter(opts.format, cols, out);
      const sql = `SELECT dense_rank() OVER (ORDER BY m.k_ts, m.series_tid NULLS FIRST, CASE WHEN m.series_tid IS NULL THEN eid END) AS series,
                          CASE WHEN m.series_tid IS NULL THEN NULL ELSE m.idx END AS idx, ${EVENT_TABLE_SQL}
                   FROM events JOIN series_map m USING (eid) WHERE eid IN (SELECT eid FROM ${SELECTION}) ORDER BY series, eid`;
      for await (const rows of db.stream(sql, undefined, 'reading packet series')) await w.rows(rows);
      await w.end();
      return;
    }
    const fmt = formatOptions(opts);
    const compat = compatOf(opts);
    const sep = (opts.multiline ?? true) ? '\n\n' : '\n';
    for await (const s of streamSeries(db, { where: `e.eid IN (SELECT eid FROM ${SELECTION})` })) {
      if (opts.format === 'json') {
        const c = compat(s.src);
        await out.write(`${seriesToJson(s.events.map((e) => downgradeEvent(e, c)))}\n`);
      } else {
        await out.write(formatSeries(s.events, fmt(s.src)) + sep);
      }
    }
    await out.flush();
  } finally {
    await db.run(`DROP TABLE IF EXISTS ${SELECTION}`);
  }
}

async function writePcap(db: Db, q: CompiledQuery, opts: ExecuteOptions): Promise<void> {
  const file = q.pcapFile!;
  async function* events(): AsyncGenerator<RetisEvent> {
    for await (const rows of db.stream(q.sql, q.params, 'selecting events')) for (const r of rows) yield eventFromRow(r);
  }
  const fmt = (ev: RetisEvent) => formatEvent(ev, { multiline: true, utc: false, printLl: false });
  const r = await exportPcap(events(), { path: file, mode: 0o600 }, fmt).catch((e: unknown) => {
    // No event matched (the exporter's "probe not found"): an empty selection.
    if (e instanceof Error && e.name === 'ProbeNotFoundError') return { processed: 0, skipped: 0, packets: 0, interfaces: 0 };
    throw e;
  });
  const summary = { file, events: r.processed, packets: r.packets, skipped: r.skipped };
  if (opts.format === 'json') {
    const w = rowWriter('json', Object.keys(summary), opts.out);
    await w.rows([summary]);
    await w.end();
  } else {
    (opts.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(
      r.packets === 0 && !fs.existsSync(file)
        ? `retis-query: no packet to write (${r.processed} event(s) selected, ${r.skipped} without a raw packet); ${file} not created`
        : `retis-query: ${r.packets} packet(s) written to ${file}${r.skipped > 0 ? ` (${r.skipped} event(s) without a raw packet skipped)` : ''}`,
    );
  }
}

/** Run raw SQL (`--sql`) and write its rows as flat rows. */
export async function runSql(db: Db, sql: string, opts: ExecuteOptions): Promise<void> {
  await withRuntimeErrors(sql, async () => {
    if (/\bseries_map\b/i.test(sql)) await ensureSeries(db);
    let result;
    try {
      result = await db.conn.stream(sql);
    } catch (e) {
      throw new DbError('running SQL', e);
    }
    const cols = result.columnNames();
    const w = rowWriter(opts.format === 'text' ? 'table' : opts.format, cols, opts.out);
    const it = result.yieldRowObjectJs();
    for (;;) {
      let next;
      try {
        next = await it.next();
      } catch (e) {
        throw new DbError('running SQL', e);
      }
      if (next.done) break;
      await w.rows(next.value as Row[]);
    }
    await w.end();
  });
}
