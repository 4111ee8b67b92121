/**
 * Load inputs into the `events` table of an embedded DuckDB.
 *
 * One interface, several readers (Retis JSON, our Parquet, our Arrow stream): each
 * produces model rows through SQL, and this module owns the table, the global arrival
 * order (`eid`), shape validation and error reporting with line numbers.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import type { Db } from '../db.ts';
import { DbError } from '../db.ts';
import { ALIAS_COLUMNS, PACKET_MACROS_SQL, PROTO_NAME_MACRO_SQL } from '../model/derive.ts';
import { SCHEMA_VERSION, quoteIdent } from '../model/schema.ts';
import { InputError } from './errors.ts';
import { resolveInputs, type InputFile } from './inputs.ts';
import { readsLazily, retisFileSelect, sniffRetisFile, sqlLiteral, type RetisFileInfo } from './retis-json.ts';
import { EVENTS_BASE_SQL, EVENTS_LAZY_SQL, EVENTS_ROWS_SQL, EVENTS_VIEW_SQL, LAZY_COMPUTED, withProblem } from './table.ts';
import { Progress } from './progress.ts';
import { useNativeJson } from './native-json.ts';
import { insertArrow } from './arrow.ts';

export { InputError } from './errors.ts';
export { resolveInputs, type InputFile } from './inputs.ts';

export interface LoadedFile {
  path: string;
  format: InputFile['format'];
  host: string | null;
  kind: 'events' | 'series';
  version: string;
  compat: number;
  offsetNs: bigint | null;
  events: number;
}

export interface LoadOptions {
  /** Show a progress line on stderr when stderr is a TTY and a load takes over a second. */
  progress?: boolean;
  /**
   * Skip damaged lines of Retis files (not JSON, cut short, wrong types or shapes) with
   * a warning instead of failing: everything else in the file is loaded.
   */
  skipBadLines?: boolean;
}


const FILES_TABLE_SQL = `CREATE TABLE IF NOT EXISTS files (
  src VARCHAR, format VARCHAR, host VARCHAR, kind VARCHAR, version VARCHAR, compat INTEGER,
  offset_ns BIGINT, events UBIGINT, first_eid UBIGINT
)`;

/**
 * Files whose rows are in `events_lazy`, by `file_no` (per database): their path and host,
 * which that table does not store per row (load/table.ts LAZY_COMPUTED).
 */
const lazyFiles = new WeakMap<Db, { src: string; host: string | null }[]>();

/**
 * rt_file_src(file_no) and rt_file_host(file_no): the path and host of a file of
 * `events_lazy`, as list literals (DuckDB folds a constant list once per query: ~25 ms per
 * 1M rows that read them, whatever the number of files). Macros, so the views need not
 * change when a file is added.
 */
async function fileMacros(db: Db): Promise<void> {
  const files = lazyFiles.get(db) ?? [];
  const list = (xs: (string | null)[]) => (xs.length === 0 ? 'NULL' : `[${xs.map((x) => (x === null ? 'NULL' : sqlLiteral(x))).join(', ')}][n + 1]`);
  await db.run(
    `CREATE OR REPLACE MACRO rt_file_src(n) AS CAST(${list(files.map((f) => f.src))} AS VARCHAR);
     CREATE OR REPLACE MACRO rt_file_host(n) AS CAST(${list(files.map((f) => f.host))} AS VARCHAR);`,
    undefined,
    'creating file macros',
  );
}

/** Number a file whose rows go to `events_lazy` (the same number when it is read again). */
async function lazyFileNo(db: Db, src: string, host: string | null): Promise<number> {
  const files = lazyFiles.get(db) ?? [];
  lazyFiles.set(db, files);
  const known = files.findIndex((f) => f.src === src && f.host === host);
  if (known >= 0) return known;
  files.push({ src, host });
  await fileMacros(db);
  return files.length - 1;
}

/** Where a file's rows are: its table and the condition that selects them there. */
interface FileRows {
  table: 'events_base' | 'events_lazy';
  where: string;
  /** Its number in `events_lazy` (lazyFileNo), else null. */
  fileNo: number | null;
}

export async function prepareDb(db: Db): Promise<void> {
  // DuckDB's default, relied on by numberRows: inserts append rows in scan order.
  await db.run('SET preserve_insertion_order = true');
  // With the addon, retis_packet derives the packet columns (model/derive.ts flatSelect).
  if (!useNativeJson(db)) await db.run(PACKET_MACROS_SQL, undefined, 'creating packet macros');
  await db.run(PROTO_NAME_MACRO_SQL, undefined, 'creating packet macros');
  await fileMacros(db);
  await db.run(EVENTS_BASE_SQL, undefined, 'creating the events table');
  await db.run(EVENTS_LAZY_SQL, undefined, 'creating the events table');
  await db.run(EVENTS_VIEW_SQL, undefined, 'creating the events view');
  await db.run(EVENTS_ROWS_SQL, undefined, 'creating the events view');
  await db.run(FILES_TABLE_SQL, undefined, 'creating the files table');
}


/** Which 1-based line of `path` holds its `n`-th record (blank lines are not records). */
async function lineOfRecord(path: string, n: bigint): Promise<number | null> {
  const rl = readline.createInterface({ input: fs.createReadStream(path), crlfDelay: Infinity });
  let line = 0;
  let rec = 0n;
  for await (const l of rl) {
    line++;
    if (l.trim() !== '') rec++;
    if (rec === n) {
      rl.close();
      return line;
    }
  }
  return null;
}

/**
 * DuckDB rejected the file: find the first line that is not a JSON value of the expected
 * kind, so the message names it exactly (DuckDB's own line numbers are approximate).
 */
async function locateJsonError(info: RetisFileInfo, cause: unknown): Promise<InputError> {
  const rl = readline.createInterface({ input: fs.createReadStream(info.path), crlfDelay: Infinity });
  let line = 0;
  for await (const l of rl) {
    line++;
    if (l.trim() === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch (e) {
      rl.close();
      return new InputError(info.path, line, `not valid JSON (${(e as Error).message})`);
    }
    const isSeries = Array.isArray(v);
    if ((info.kind === 'series') !== isSeries || v === null || typeof v !== 'object') {
      rl.close();
      return new InputError(info.path, line, info.kind === 'series' ? 'expected a series (JSON array)' : 'expected an event (JSON object)');
    }
  }
  // Every line is JSON: a value of the wrong type or shape. DuckDB names the line (1-based).
  const msg = cause instanceof DbError && cause.cause instanceof Error ? cause.cause.message : String(cause);
  const m = /line (\d+): (.*)/s.exec(msg);
  if (m) return new InputError(info.path, Number(m[1]), `wrong type or shape: ${m[2]!.split('\n')[0]}`);
  return new InputError(info.path, null, msg.split('\n')[0] ?? msg);
}

/**
 * The native reader (load/native-json.ts) for an events file of the latest format: true when
 * it loaded the file, false when the file is left to read_json (reader unavailable, or it met
 * something it does not handle: it fails then, and nothing of the file was inserted).
 */
async function insertRetisNative(db: Db, f: InputFile, info: RetisFileInfo, base: bigint, rows: FileRows): Promise<boolean> {
  if (!readsLazily(info) || !useNativeJson(db)) return false;
  // The reader checks the shapes itself (`_problem`, from the same CHECKS as withProblem).
  const select = retisFileSelect(info, f.host, false, true);
  // The reader numbers the records itself (`seq`), so rows need not be stored in file order:
  // without preserve_insertion_order the insert runs on every thread. (DuckDB's C API gives
  // table functions no batch index, so keeping the order would make the whole load serial.)
  await db.run('SET preserve_insertion_order = false');
  try {
    await db.run(`INSERT INTO events_lazy BY NAME ${lazyRows(select, base, rows.fileNo!)}`, undefined, `reading ${f.path}`);
    nativeLoads.push(f.path);
    return true;
  } catch (e) {
    nativeFallbacks.push({ path: f.path, reason: e instanceof Error ? e.message : String(e) });
    return false;
  } finally {
    await db.run('SET preserve_insertion_order = true');
  }
}

/** Files the native reader handed to read_json, and why; files it loaded (tests read these). */
export const nativeFallbacks: { path: string; reason: string }[] = [];
export const nativeLoads: string[] = [];

/**
 * Model rows of `select` as `events_lazy` stores them: the flat columns it computes in the
 * view (LAZY_COMPUTED) left out, the file's number instead of its path and host.
 */
function lazyRows(select: string, base: bigint, fileNo: number): string {
  return `SELECT seq + ${base} AS eid, ${fileNo}::UINTEGER AS file_no, * EXCLUDE (${Object.keys(LAZY_COMPUTED).map(quoteIdent).join(', ')}) FROM (${select})`;
}

async function insertRetis(db: Db, f: InputFile, base: bigint, skipBad: boolean): Promise<[RetisFileInfo, FileRows]> {
  const info = sniffRetisFile(f.path);
  const lazy = readsLazily(info);
  const fileNo = lazy ? await lazyFileNo(db, f.path, f.host) : null;
  const rows: FileRows =
    fileNo !== null ? { table: 'events_lazy', where: `file_no = ${fileNo}`, fileNo } : { table: 'events_base', where: `src = ${sqlLiteral(f.path)}`, fileNo };
  if (!skipBad && (await insertRetisNative(db, f, info, base, rows))) return [info, rows];
  const select = withProblem(retisFileSelect(info, f.host, skipBad, false, useNativeJson(db)), lazy);
  try {
    await db.run(
      fileNo !== null ? `INSERT INTO events_lazy BY NAME ${lazyRows(select, base, fileNo)}` : `INSERT INTO events_base BY NAME SELECT seq + ${base} AS eid, * FROM (${select})`,
      undefined,
      `reading ${f.path}`,
    );
  } catch (e) {
    const err = await locateJsonError(info, e);
    throw new InputError(err.file, err.line, `${err.detail} (--skip-bad-lines loads the rest of the file)`);
  }
  if (info.kind === 'events') await numberRows(db, rows, base, f.path);
  return [info, rows];
}

/**
 * Give the rows just inserted from an events file (those of `path` with a NULL `seq`: the
 * reader leaves it so, see retisSectionsSelect) their record number and `eid`. The insert kept
 * file order (preserve_insertion_order, set in prepareDb: DuckDB's batch insert appends
 * in scan order even when both threads parse), so a new row's rowid minus the first new
 * rowid is its record number - 1. Numbering in the scan instead (WITH ORDINALITY, or
 * row_number() OVER ()) is a streaming window, which runs the whole load on one thread;
 * this UPDATE costs ~30 ms per 200k rows.
 */
async function numberRows(db: Db, { table, where }: FileRows, base: bigint, path: string): Promise<void> {
  const fresh = `${where} AND seq IS NULL`;
  await db.run(
    `UPDATE ${table} SET seq = rowid - r.first + 1, eid = rowid - r.first + 1 + ${base}
     FROM (SELECT min(rowid) AS first FROM ${table} WHERE ${fresh}) AS r WHERE ${fresh}`,
    undefined,
    `numbering the records of ${path}`,
  );
}

async function insertParquet(db: Db, f: InputFile, base: bigint): Promise<RetisFileInfo> {
  const p = sqlLiteral(f.path);
  let version: number | null = null;
  try {
    const kv = await db.rows<{ key: string; value: string }>(
      `SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata(${p})`,
      undefined,
      `reading ${f.path}`,
    );
    const v = kv.find((r) => r.key === 'retis_ts.schema_version');
    version = v ? Number(v.value) : null;
  } catch (e) {
    throw new InputError(f.path, null, `not a readable Parquet file (${(e as Error).message.split('\n')[0]})`);
  }
  if (version === null) throw new InputError(f.path, null, 'Parquet file without retis_ts.schema_version metadata: not a retis-ts capture');
  if (version > SCHEMA_VERSION) {
    throw new InputError(f.path, null, `written with event schema ${version}, newer than this retis-query reads (${SCHEMA_VERSION}): upgrade retis-ts`);
  }
  await db.run(
    // track_id is hex text in Parquet (no 128-bit integers there): rebuilt from its section.
    // The file's alias columns (copies of section fields) are not stored: the view computes them.
    `INSERT INTO events_base BY NAME ${withProblem(
      `SELECT seq + ${base} AS eid, ${p} AS src, * EXCLUDE (${Object.keys(ALIAS_COLUMNS).map(quoteIdent).join(', ')}) REPLACE (
         coalesce(host, ${f.host === null ? 'NULL' : sqlLiteral(f.host)}) AS host,
         ("skb-tracking".timestamp::UHUGEINT << 64) | "skb-tracking".orig_head::UHUGEINT AS track_id)
       FROM read_parquet(${p})`,
      false,
    )}`,
    undefined,
    `reading ${f.path}`,
  );
  const startup = await db.rows<{ v: string | null; off: bigint | null }>(
    `SELECT startup.retis_version AS v, (wall_ns - ts::BIGINT) AS off FROM events WHERE src = ${p} ORDER BY seq LIMIT 1`,
  );
  return { path: f.path, kind: 'events', version: startup[0]?.v ?? 'unknown', compat: 2, offsetNs: startup[0]?.off ?? null };
}

/** Load every input into `events`; returns what was loaded per file. */
export async function loadInputs(db: Db, specs: string[], opts: LoadOptions = {}): Promise<LoadedFile[]> {
  const files = resolveInputs(specs);
  await prepareDb(db);
  const loaded: LoadedFile[] = [];
  const progress = opts.progress ? new Progress(db, files.length) : null;
  try {
    for (const [i, f] of files.entries()) {
      progress?.file(i, f.path);
      const [{ n }] = await db.rows<{ n: bigint }>('SELECT coalesce(max(eid), 0) AS n FROM _event_rows');
      const base = n!;
      const src = sqlLiteral(f.path);
      const [info, { table, where: rowsOf }]: [RetisFileInfo, FileRows] =
        f.format === 'retis-json'
          ? await insertRetis(db, f, base, opts.skipBadLines === true)
          : [f.format === 'parquet' ? await insertParquet(db, f, base) : await insertArrow(db, f, base), { table: 'events_base', where: `src = ${src}`, fileNo: null }];
      const bad = await db.rows<{ seq: bigint; problem: string }>(
        `SELECT seq, _problem AS problem FROM ${table} WHERE ${rowsOf} AND _problem IS NOT NULL ORDER BY seq LIMIT 1`,
        undefined,
        `checking ${f.path}`,
      );
      if (bad.length > 0) {
        const { seq, problem } = bad[0]!;
        const line = f.format === 'retis-json' ? await lineOfRecord(f.path, seq) : null;
        const where = f.format === 'retis-json' ? problem : `record ${seq}: ${problem}`;
        if (!opts.skipBadLines) throw new InputError(f.path, line, `${where} (--skip-bad-lines loads the rest of the file)`);
        const damaged = `${rowsOf} AND _problem IS NOT NULL`;
        const [{ n: dropped }] = (await db.rows<{ n: bigint }>(`SELECT count(*) AS n FROM ${table} WHERE ${damaged}`)) as [{ n: bigint }];
        await db.run(`DELETE FROM ${table} WHERE ${damaged}`, undefined, `dropping damaged records of ${f.path}`);
        process.stderr.write(`retis-query: ${f.path}: skipped ${dropped} damaged record(s); first at ${line === null ? `record ${seq}` : `line ${line}`}: ${problem}\n`);
      }
      const [{ c }] = await db.rows<{ c: bigint }>(`SELECT count(*) AS c FROM ${table} WHERE ${rowsOf}`);
      if (c === 0n && f.format === 'retis-json') throw new InputError(f.path, null, 'File is empty');
      await db.run(`INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        f.path,
        f.format,
        f.host,
        info.kind,
        info.version,
        info.compat,
        info.offsetNs,
        c!,
        base + 1n,
      ]);
      loaded.push({ path: f.path, format: f.format, host: f.host, kind: info.kind, version: info.version, compat: info.compat, offsetNs: info.offsetNs, events: Number(c) });
    }
  } finally {
    progress?.done();
  }
  return loaded;
}
