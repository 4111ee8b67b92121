/**
 * Reader for Arrow IPC streams of our schema (`events.arrow`, written batch by batch by
 * retis-capture; columns in model/arrow-schema.ts: `seq` + the sections). DuckDB here has
 * no Arrow scanner (no arrow extension offline, no Arrow C API in the Node bindings), so
 * batches are decoded with apache-arrow in JS.
 *
 * A capture killed mid-write leaves a stream whose last batch is incomplete: every
 * complete batch is loaded and the cut is reported on stderr.
 *
 * Rows reach DuckDB as JSON lines through a temporary file read with the model's exact
 * column types, so u64 values and nested sections take the same typed path as Retis
 * files, and the flat columns are derived by the same SQL (model/derive.ts). This is the
 * crash-recovery path; a cleanly stopped capture is loaded from its Parquet file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RecordBatchReader } from 'apache-arrow';
import type { Db } from '../db.ts';
import { ARROW_COLUMNS, STARTUP_METADATA, startupMetaRow } from '../model/arrow-schema.ts';
import { registerZstdRle } from '../model/arrow-zeros.ts';
import { modelSelect, sqlString } from '../model/derive.ts';
import { useNativeJson } from './native-json.ts';
import { jsonKey, jsonText } from '../model/json.ts';
import { SCHEMA_VERSION, quoteIdent, sqlType, type FieldType } from '../model/schema.ts';
import { withProblem } from './table.ts';
import { InputError } from './errors.ts';
import type { InputFile } from './inputs.ts';
import type { RetisFileInfo } from './retis-json.ts';

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

/** An Arrow cell as a plain value: a StructRow as an object, a list Vector as an array. */
function plain(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number | bigint>);
  // An apache-arrow Vector (a list cell) has `data` and `type`; a StructRow has neither.
  if ('data' in v && 'type' in v) return Array.from(v as unknown as Iterable<unknown>, plain);
  const obj = (v as { toJSON?: () => Record<string, unknown> }).toJSON?.() ?? (v as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (const k in obj) out[k] = plain(obj[k]);
  return out;
}

/** Convert base64 back to bytes inside (possibly nested) BLOB fields. */
function blobFix(expr: string, t: FieldType): string {
  if (t === 'BLOB') return `from_base64(${expr})`;
  if (typeof t === 'string' || 'list' in t || !hasBlob(t)) return expr;
  const parts = t.struct.map((x) => `${sqlString(x.name)}: ${blobFix(`${expr}.${quoteIdent(x.name)}`, x.type)}`);
  return `CASE WHEN ${expr} IS NULL THEN NULL ELSE {${parts.join(', ')}} END`;
}

export async function insertArrow(db: Db, f: InputFile, base: bigint): Promise<RetisFileInfo> {
  let reader: RecordBatchReader;
  // retis-capture stores all-null columns as ZSTD frames of zeros.
  registerZstdRle();
  try {
    reader = RecordBatchReader.from(fs.readFileSync(f.path));
    reader.open();
  } catch (e) {
    throw new InputError(f.path, null, `not an Arrow IPC stream (${(e as Error).message})`);
  }
  const version = reader.schema?.metadata.get('retis_ts.schema_version');
  if (version === undefined) throw new InputError(f.path, null, 'Arrow stream without retis_ts.schema_version metadata: not a retis-ts capture');
  if (Number(version) > SCHEMA_VERSION) {
    throw new InputError(f.path, null, `written with event schema ${version}, newer than this retis-query reads (${SCHEMA_VERSION}): upgrade retis-ts`);
  }
  const names = new Set(reader.schema.fields.map((x) => x.name));
  if (!names.has('seq') || !names.has('common')) throw new InputError(f.path, null, 'Arrow stream lacks the seq and common columns of our schema');
  // The startup event in the schema metadata (retis-capture's compact stream): its row, seq 1.
  const startupText = names.has('startup') ? undefined : reader.schema.metadata.get(STARTUP_METADATA);
  let startupRow: ReturnType<typeof startupMetaRow> | undefined;
  if (startupText !== undefined) {
    try {
      startupRow = startupMetaRow(startupText);
    } catch (e) {
      throw new InputError(f.path, null, `bad ${STARTUP_METADATA} metadata (${(e as Error).message})`);
    }
    names.add('startup');
  }
  const present = ARROW_COLUMNS.filter((c) => names.has(c.name));

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-arrow-'));
  try {
    const ndjson = path.join(tmp, 'rows.json');
    const out = fs.openSync(ndjson, 'w', 0o600);
    let rows = 0;
    let offsetNs: bigint | null = null;
    let retisVersion = 'unknown';
    try {
      if (startupRow) {
        const r: Record<string, unknown> = startupRow;
        fs.writeSync(out, `{${present.map((c) => `${jsonKey(c.name)}${jsonText(r[c.name] ?? null)}`).join(',')}}\n`);
        rows++;
      }
      for (const batch of reader) {
        const vectors = present.map((c) => batch.getChild(c.name));
        const lines: string[] = [];
        for (let i = 0; i < batch.numRows; i++) {
          lines.push(`{${present.map((c, j) => `${jsonKey(c.name)}${jsonText(plain(vectors[j]?.get(i)))}`).join(',')}}`);
        }
        if (lines.length) fs.writeSync(out, `${lines.join('\n')}\n`);
        rows += batch.numRows;
      }
    } catch (e) {
      // A killed capture: the stream ends inside a batch. Everything before it is kept.
      process.stderr.write(`retis-query: ${f.path}: the stream ends inside a batch (${(e as Error).message}); loaded the ${rows} events of its complete batches\n`);
    } finally {
      fs.closeSync(out);
    }
    if (rows === 0) throw new InputError(f.path, null, 'no complete batch of events in this Arrow stream');
    const spec = `{${present.map((c) => `${sqlString(c.name)}: ${sqlString(sqlType(jsonType(c.type)))}`).join(', ')}}`;
    const raw = `read_json(${sqlString(ndjson)}, format = 'newline_delimited', columns = ${spec})`;
    const [startup] = !names.has('startup') ? [] : await db.rows<{ v: string | null; sec: bigint | null; nsec: bigint | null }>(
      `SELECT startup.retis_version AS v, startup.clock_monotonic_offset.sec AS sec, startup.clock_monotonic_offset.nsec AS nsec
       FROM ${raw} WHERE startup IS NOT NULL ORDER BY seq LIMIT 1`,
      undefined,
      `reading ${f.path}`,
    );
    if (startup) {
      retisVersion = startup.v ?? retisVersion;
      if (startup.sec !== null && startup.nsec !== null) offsetNs = startup.sec * 1_000_000_000n + startup.nsec;
    }
    // A writer may leave out sections it never fills (a capture without ovs, say): they are NULL.
    const sections = `SELECT seq AS _seq, NULL::UBIGINT AS _series, ${ARROW_COLUMNS.filter((c) => c.name !== 'seq')
      .map((c) => `${names.has(c.name) ? blobFix(quoteIdent(c.name), c.type) : `NULL::${sqlType(c.type)}`} AS ${quoteIdent(c.name)}`)
      .join(', ')} FROM ${raw}`;
    await db.run(
      `INSERT INTO events_base BY NAME SELECT seq + ${base} AS eid, * FROM (${withProblem(modelSelect(sections, { src: f.path, host: f.host, offsetNs }, { nativePacket: useNativeJson(db) }), false)})`,
      undefined,
      `reading ${f.path}`,
    );
    return { path: f.path, kind: 'events', version: retisVersion, compat: 2, offsetNs };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
