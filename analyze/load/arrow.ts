/**
 * Reader for Arrow IPC streams of our schema (`events.arrow`, written batch by batch by
 * retis-capture). DuckDB here has no Arrow scanner (no arrow extension offline, no Arrow
 * C API in the Node bindings), so batches are decoded with apache-arrow in JS.
 *
 * A capture killed mid-write leaves a stream whose last batch is incomplete: every
 * complete batch is loaded, and the loss is reported on stderr.
 *
 * Rows are handed to DuckDB as JSON lines through a temporary file read with the model's
 * exact column types (so u64 and nested sections take the same typed path as Retis
 * files). This is the crash-recovery path; clean captures are loaded from Parquet.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RecordBatchReader, type Table } from 'apache-arrow';
import type { Db } from '../db.ts';
import { FLAT_COLUMNS, SECTIONS, SCHEMA_VERSION, quoteIdent, sqlType, type Field, type FieldType } from '../model/schema.ts';
import { InputError } from './errors.ts';
import type { InputFile } from './inputs.ts';
import { sqlLiteral, type RetisFileInfo } from './retis-json.ts';

/** Replace BLOB by VARCHAR (base64 in the JSON hand-over). */
function jsonType(t: FieldType): FieldType {
  if (t === 'BLOB') return 'VARCHAR';
  if (typeof t === 'string') return t;
  if ('list' in t) return { list: jsonType(t.list) };
  return { struct: t.struct.map((x) => ({ name: x.name, type: jsonType(x.type) })) };
}

function hasBlob(t: FieldType): boolean {
  if (t === 'BLOB') return true;
  if (typeof t === 'string') return false;
  if ('list' in t) return hasBlob(t.list);
  return t.struct.some((x) => hasBlob(x.type));
}

function toJsonValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'bigint':
    case 'number':
    case 'boolean':
      return String(v);
    case 'string':
      return JSON.stringify(v);
  }
  if (v instanceof Uint8Array) return `"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}"`;
  if (ArrayBuffer.isView(v)) return `[${Array.from(v as unknown as ArrayLike<number | bigint>, toJsonValue).join(',')}]`;
  if (Array.isArray(v)) return `[${v.map(toJsonValue).join(',')}]`;
  const obj = v as { toJSON?: () => unknown; toArray?: () => unknown };
  if (typeof obj.toArray === 'function' && !('toJSON' in obj && typeof (obj as { get?: unknown }).get !== 'function')) {
    const arr = obj.toArray();
    if (Array.isArray(arr) || ArrayBuffer.isView(arr)) return toJsonValue(arr);
  }
  const plain = typeof obj.toJSON === 'function' ? obj.toJSON() : v;
  return `{${Object.entries(plain as Record<string, unknown>)
    .map(([k, x]) => `${JSON.stringify(k)}:${toJsonValue(x)}`)
    .join(',')}}`;
}

/** Convert a blob column from base64 back to bytes, keeping struct nesting. */
function blobFix(expr: string, t: FieldType): string {
  if (t === 'BLOB') return `from_base64(${expr})`;
  if (typeof t === 'string' || 'list' in t || !hasBlob(t)) return expr;
  const parts = t.struct.map((x) => `${sqlLiteral(x.name)}: ${blobFix(`${expr}.${quoteIdent(x.name)}`, x.type)}`);
  return `CASE WHEN ${expr} IS NULL THEN NULL ELSE {${parts.join(', ')}} END`;
}

export async function arrowFileSelect(db: Db, f: InputFile, base: bigint): Promise<RetisFileInfo> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-arrow-'));
  const ndjson = path.join(tmp, 'rows.json');
  const out = fs.openSync(ndjson, 'w', 0o600);
  const columns: Field[] = [...FLAT_COLUMNS, ...SECTIONS];
  let rows = 0;
  let truncated: string | null = null;
  try {
    let reader: RecordBatchReader;
    try {
      reader = RecordBatchReader.from(fs.readFileSync(f.path));
      reader.open();
    } catch (e) {
      throw new InputError(f.path, null, `not an Arrow IPC stream (${(e as Error).message})`);
    }
    const meta = reader.schema?.metadata;
    const version = meta?.get('retis_ts.schema_version');
    if (version === undefined) throw new InputError(f.path, null, 'Arrow stream without retis_ts.schema_version metadata: not a retis-ts capture');
    if (Number(version) > SCHEMA_VERSION) {
      throw new InputError(f.path, null, `written with event schema ${version}, newer than this retis-query reads (${SCHEMA_VERSION}): upgrade retis-ts`);
    }
    const names = new Set(reader.schema.fields.map((x) => x.name));
    const present = columns.filter((c) => names.has(c.name));
    try {
      for (const batch of reader) {
        const vectors = present.map((c) => batch.getChild(c.name));
        const lines: string[] = [];
        for (let i = 0; i < batch.numRows; i++) {
          lines.push(`{${present.map((c, j) => `${JSON.stringify(c.name)}:${toJsonValue(vectors[j]?.get(i))}`).join(',')}}`);
        }
        if (lines.length) fs.writeSync(out, `${lines.join('\n')}\n`);
        rows += batch.numRows;
      }
    } catch (e) {
      // A killed capture: the last batch is cut short. Everything before it is loaded.
      truncated = (e as Error).message;
    }
    fs.closeSync(out);
    if (truncated !== null) {
      process.stderr.write(`retis-query: ${f.path}: stream ends inside a batch (${truncated}); loaded the ${rows} events of its complete batches\n`);
    }
    if (rows > 0) {
      const spec = `{${present.map((c) => `${sqlLiteral(c.name)}: ${sqlLiteral(sqlType(jsonType(c.type)))}`).join(', ')}}`;
      const select = present.map((c) => `${blobFix(quoteIdent(c.name), c.type)} AS ${quoteIdent(c.name)}`).join(', ');
      await db.run(
        `INSERT INTO events BY NAME SELECT * REPLACE (seq + ${base} AS eid, ${sqlLiteral(f.path)} AS src, coalesce(host, ${sqlLiteral(f.host ?? '')}) AS host)
         FROM (SELECT ${select} FROM read_json(${sqlLiteral(ndjson)}, format = 'newline_delimited', columns = ${spec}))`,
        undefined,
        `reading ${f.path}`,
      );
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const startup = await db.rows<{ v: string | null; off: bigint | null }>(
    `SELECT startup.retis_version AS v, (wall_ns - ts::BIGINT) AS off FROM events WHERE src = ${sqlLiteral(f.path)} ORDER BY seq LIMIT 1`,
  );
  return { path: f.path, kind: 'events', version: startup[0]?.v ?? 'unknown', compat: 2, offsetNs: startup[0]?.off ?? null };
}

export type { Table };
