/**
 * The native reader of Retis JSON event files (analyze/native/retis_json.c): a DuckDB table
 * function, `retis_json_events`, that parses the lines in C on every DuckDB thread and writes
 * the sections straight into vectors. It replaces only read_json: the rows it yields have the
 * same columns as the read_json relation of retis-json.ts (sections, lazy sections as text,
 * packet bytes already decoded), and the flat columns and shape checks are the same SQL.
 *
 * Optional: built by `npm ci` (bpf/build.mjs) when a C compiler is there. Without it, or when
 * it meets anything it does not fully understand in a file (it then fails rather than guess),
 * the loader reads that file with read_json as before.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from '../db.ts';
import { isLazy, lazyColumn } from '../model/lazy.ts';
import { SECTIONS, quoteIdent, type FieldType } from '../model/schema.ts';
import { CHECKS, NO_COMMON } from './validate.ts';

interface RetisJsonAddon {
  register(connection: unknown): void;
  duckdbVersion(): string;
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ADDON = process.env.RETIS_JSON_ADDON ?? path.join(ROOT, 'build', 'native', 'retis_json.node');

let addon: RetisJsonAddon | null | undefined;
let loadError: string | null = null;

/** The addon, or null (not built, refused to load, or RETIS_NATIVE_JSON=0). */
export function nativeJsonAddon(): RetisJsonAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.env.RETIS_NATIVE_JSON === '0') {
    loadError = 'disabled by RETIS_NATIVE_JSON=0';
    return null;
  }
  if (!fs.existsSync(ADDON)) {
    loadError = `${ADDON} not built`;
    return null;
  }
  try {
    addon = createRequire(import.meta.url)(ADDON) as RetisJsonAddon;
  } catch (e) {
    loadError = `${ADDON}: ${(e as Error).message}`;
  }
  return addon;
}

/** Why the native reader is not in use (null when it is). */
export function nativeJsonUnavailable(): string | null {
  return nativeJsonAddon() ? null : loadError;
}

/** Test hook: force the read_json path (false) or the default (true). */
let enabled = true;
export function setNativeJson(on: boolean): void {
  enabled = on;
}

/**
 * Bytes per chunk a thread claims. 16 MB: ~60 chunks for 1M events (938 MB), so both
 * threads stay busy to the end; tests set it small so a file spans many chunks.
 */
let chunkBytes = 16 * 1024 * 1024;
export function setNativeChunkBytes(n: number): void {
  chunkBytes = n;
}

const registered = new WeakSet<Db>();

/** Register retis_json_events on `db`'s connection; false when the reader is unavailable. */
export function useNativeJson(db: Db): boolean {
  if (!enabled) return false;
  const a = nativeJsonAddon();
  if (!a) return false;
  if (!registered.has(db)) {
    // node-api's DuckDBConnection keeps the bindings' handle in `connection` (not in its types).
    const handle = (db.conn as unknown as { connection: unknown }).connection;
    try {
      a.register(handle);
    } catch (e) {
      // E.g. a @duckdb/node-bindings release whose handle the addon does not recognise:
      // read_json then, as without the addon.
      addon = null;
      loadError = `cannot register on this DuckDB connection: ${(e as Error).message}`;
      return false;
    }
    registered.add(db);
  }
  return true;
}

/** The addon's type code of a model field (see the grammar in retis_json.c). */
function typeCode(t: FieldType): string {
  if (typeof t === 'string') {
    const codes: Record<string, string> = {
      BOOLEAN: 'b', TINYINT: 'i1', SMALLINT: 'i2', INTEGER: 'i4', BIGINT: 'i8',
      UTINYINT: 'u1', USMALLINT: 'u2', UINTEGER: 'u4', UBIGINT: 'u8',
      // BLOB fields are base64 strings in Retis JSON (packet.data).
      VARCHAR: 's', BLOB: 'x',
    };
    const c = codes[t];
    if (!c) throw new Error(`native JSON reader: no code for ${t}`);
    return c;
  }
  if ('list' in t) return `[${typeCode(t.list)}]`;
  return `{${t.struct.map((f) => `${f.name}=${typeCode(f.type)}`).join(',')}}`;
}

/**
 * The addon's schema: every section of the latest format, lazy ones as raw JSON text (with
 * their shape, walked only to see which fields the checks find present).
 */
const SCHEMA = SECTIONS.map((s) => `${s.name}=${isLazy(s.name) ? `r${typeCode(s.type)}` : typeCode(s.type)}`).join(';');

/** The shape checks (load/validate.ts), in their order, for the addon's `_problem`. */
const CHECK_LINES = [...CHECKS.map((c) => `${c.struct}|${c.fields.join(',')}|${c.subject}`), `common||${NO_COMMON}`].join('\n');

const sqlString = (s: string): string => `'${s.replaceAll("'", "''")}'`;

/**
 * `_seq`, `_series` and the section columns of an events file of the latest format, as
 * retisSectionsSelect gives them with lazy sections; `_seq` is the record number already,
 * and `_problem` is there too (what load/table.ts withProblem adds to read_json's rows).
 */
export function nativeSectionsSelect(file: string): string {
  const cols = SECTIONS.map((s) => (isLazy(s.name) ? `${quoteIdent(s.name)} AS ${lazyColumn(s.name)}` : quoteIdent(s.name)));
  return `SELECT _seq, NULL::UBIGINT AS _series, ${cols.join(', ')}, _problem
    FROM retis_json_events(${sqlString(file)}, ${sqlString(SCHEMA)}, ${chunkBytes}, ${sqlString(CHECK_LINES)})`;
}
