/** In-process helpers for the query-language tests: a loaded database, a query, its output. */
import { Writable } from 'node:stream';
import { Db } from '../../analyze/db.ts';
import { loadInputs, type LoadedFile } from '../../analyze/load/index.ts';
import { Out, type OutputFormat } from '../../analyze/output.ts';
import { QueryError } from '../../query-lang/errors.ts';
import { Catalog } from '../../query-lang/domains.ts';
import { executeQuery, prepareQuery } from '../../query-lang/run.ts';

export interface Loaded {
  db: Db;
  files: LoadedFile[];
  /** One catalog per database, as one CLI run has (data values are fetched once). */
  catalog: Catalog;
}

export async function load(inputs: string[]): Promise<Loaded> {
  const db = await Db.open();
  const files = await loadInputs(db, inputs);
  return { db, files, catalog: new Catalog() };
}

/** Collects what is written to it. */
export class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

export interface QueryOutput {
  text: string;
  /** JSON lines parsed (format json only), big integers as strings. */
  rows: Record<string, unknown>[];
  log: string[];
}

/** Parse JSON keeping integers beyond 2^53 exact, as strings. */
export function parseJsonLine(line: string): Record<string, unknown> {
  return JSON.parse(line.replace(/([:,[]\s*)(-?\d{16,})(?=\s*[,}\]])/g, '$1"$2"')) as Record<string, unknown>;
}

/** Run a query on a loaded database; throws QueryError as the CLI would report it. */
export async function query(l: Loaded, text: string, format: OutputFormat = 'json'): Promise<QueryOutput> {
  const sink = new Sink();
  const out = new Out(sink);
  const log: string[] = [];
  const q = await prepareQuery(l.db, text, { catalog: l.catalog, eventColumns: format === 'table' || format === 'csv' ? 'flat' : 'all' });
  await executeQuery(l.db, q, text, { format, out, files: l.files, log: (s) => log.push(s) });
  await out.flush();
  const rows = format === 'json' ? sink.text.split('\n').filter(Boolean).map(parseJsonLine) : [];
  return { text: sink.text, rows, log };
}

/** The issues a query yields (empty when it runs). */
export async function issuesOf(l: Loaded, text: string): Promise<QueryError['issues']> {
  try {
    await query(l, text);
    return [];
  } catch (e) {
    if (e instanceof QueryError) return e.issues;
    throw e;
  }
}
