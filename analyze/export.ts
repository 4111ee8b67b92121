/**
 * Write loaded events as files of our schema:
 * - Parquet: every model column (flat + sections), for DuckDB, Spark, Trino...; the
 *   u128 track_id, which Parquet cannot hold, is written as 32 lowercase hex digits
 *   (zero-padded, so text order is numeric order). Key-value metadata records the schema
 *   version.
 * - Arrow IPC stream: `seq` + sections (model/arrow-schema.ts), as retis-capture writes.
 * Files are created 0600: they hold packet payloads. Rows go out in table order without
 * a sort (a sort of every column, packets included, would dominate the write): `seq`
 * carries arrival order, so no reader depends on row order.
 */
import fs from 'node:fs';
import { RecordBatch, RecordBatchStreamWriter, Struct, makeData, vectorFromArray, type Vector } from 'apache-arrow';
import type { Db } from './db.ts';
import { ARROW_COLUMNS, arrowType, eventArrowSchema } from './model/arrow-schema.ts';
import { sqlString } from './model/derive.ts';
import { SCHEMA_VERSION, quoteIdent } from './model/schema.ts';

/** SQL of the Parquet column list: the model less per-load columns, track_id as hex. */
export const PARQUET_SELECT = `* EXCLUDE (eid, src) REPLACE (
  CASE WHEN track_id IS NULL THEN NULL ELSE lower(lpad(hex(track_id), 32, '0')) END AS track_id)`;

export async function exportParquet(db: Db, file: string, where = 'TRUE'): Promise<void> {
  // DuckDB creates the file itself, honouring the umask: narrow it so the file is never
  // readable by others, even for a moment.
  const umask = process.umask(0o077);
  try {
    await db.run(
    `COPY (SELECT ${PARQUET_SELECT} FROM events WHERE ${where})
     TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880,
                            KV_METADATA {'retis_ts.schema_version': '${SCHEMA_VERSION}'})`,
    undefined,
    `writing ${file}`,
    );
  } finally {
    process.umask(umask);
  }
  fs.chmodSync(file, 0o600);
}

/** Write events as an Arrow IPC stream, one record batch per DuckDB chunk. */
export async function exportArrow(db: Db, file: string, where = 'TRUE'): Promise<void> {
  const schema = eventArrowSchema();
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    const writer = new RecordBatchStreamWriter();
    const drain = (async () => {
      for await (const chunk of writer) fs.writeSync(fd, chunk);
    })();
    writer.reset(undefined, schema);
    const cols = ARROW_COLUMNS.map((c) => quoteIdent(c.name)).join(', ');
    let pending: Record<string, unknown>[] = [];
    const flush = () => {
      if (pending.length === 0) return;
      const children = ARROW_COLUMNS.map((c) => vectorFromArray(pending.map((r) => r[c.name] ?? null), arrowType(c.type)) as Vector);
      const data = makeData({ type: new Struct(schema.fields), length: pending.length, nullCount: 0, children: children.map((v) => v.data[0]!) });
      writer.write(new RecordBatch(schema, data));
      pending = [];
    };
    for await (const rows of db.stream(`SELECT ${cols} FROM events WHERE ${where}`)) {
      pending.push(...rows);
      if (pending.length >= 65536) flush();
    }
    flush();
    writer.finish();
    await drain;
  } finally {
    fs.closeSync(fd);
  }
}
