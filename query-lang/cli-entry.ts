/**
 * `retis-query QUERY [INPUT...]` and `retis-query --sql SQL [INPUT...]`: the command-line
 * entry of the query language, called by analyze/cli.ts.
 *
 * Exit codes: 0 ok, 1 user error (bad query, bad input; the message names the cause),
 * 2 usage error. Results go to stdout, errors to stderr: as text (the query line with a
 * caret under the culprit), or as JSON lines with `--format json`.
 */
import { Db, DbError } from '../analyze/db.ts';
import { InputError, loadInputs } from '../analyze/load/index.ts';
import { Out, type OutputFormat } from '../analyze/output.ts';
import { QueryError, renderIssuesJson, renderIssuesText, type QueryIssue } from './errors.ts';
import { executeQuery, explainText, parseQuery, prepareQuery, runSql } from './run.ts';

export interface QueryArgs {
  query?: string;
  sql?: string;
  inputs: string[];
  format: OutputFormat;
  explain: boolean;
  /** Retis text options (defaults: multi-line, monotonic timestamps, no link layer). */
  multiline?: boolean;
  utc?: boolean;
  printLl?: boolean;
  /** A DuckDB database file instead of memory. */
  db?: string;
}

const PROG = 'retis-query';

function report(issues: QueryIssue[], source: string, format: OutputFormat): void {
  process.stderr.write(`${format === 'json' ? renderIssuesJson(issues, source) : renderIssuesText(issues, source, { prog: PROG })}\n`);
}

function isEpipe(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'EPIPE';
}

export async function queryMain(args: QueryArgs): Promise<number> {
  if (args.query === undefined && args.sql === undefined) {
    process.stderr.write(`${PROG}: give a query, e.g. ${PROG} "drops | count by reason", or --sql "SQL"\n`);
    return 2;
  }
  if (args.query !== undefined && args.sql !== undefined) {
    process.stderr.write(`${PROG}: give either a query or --sql, not both\n`);
    return 2;
  }
  const text = args.query ?? args.sql!;
  // Syntax first: no need to load gigabytes to report a typo.
  if (args.query !== undefined) {
    try {
      parseQuery(args.query);
    } catch (e) {
      if (e instanceof QueryError) {
        report(e.issues, e.source, args.format);
        return 1;
      }
      throw e;
    }
  }
  // `retis-query ... | head` closes stdout early: stop quietly.
  let closed = false;
  const onError = (e: unknown) => {
    if (isEpipe(e)) closed = true;
  };
  process.stdout.on('error', onError);
  let db: Db | undefined;
  try {
    db = await Db.open(args.db ? { path: args.db } : {});
    const files = await loadInputs(db, args.inputs, { progress: true });
    const out = new Out(process.stdout);
    const exec = { format: args.format, out, files, multiline: args.multiline ?? true, utc: args.utc ?? false, printLl: args.printLl ?? false };
    if (args.sql !== undefined) {
      if (args.explain) {
        out.write(`${args.sql.trimEnd()}\n`);
        await out.flush();
        return 0;
      }
      await runSql(db, args.sql, exec);
      return 0;
    }
    const q = await prepareQuery(db, text, { eventColumns: args.format === 'table' || args.format === 'csv' ? 'flat' : 'all' });
    if (args.explain) {
      if (args.format === 'json') out.write(`${JSON.stringify({ sql: q.sql, params: q.params.map((p) => (typeof p === 'bigint' ? p.toString() : p)), mode: q.mode })}\n`);
      else out.write(`${explainText(q)}\n`);
      await out.flush();
      return 0;
    }
    await executeQuery(db, q, text, exec);
    return 0;
  } catch (e) {
    if (closed || isEpipe(e)) return 0;
    if (e instanceof QueryError) {
      report(e.issues, e.source, args.format);
      return 1;
    }
    if (e instanceof InputError) {
      report([{ code: 'input_error', path: e.file, line: e.line, message: e.message }], '', args.format);
      return 1;
    }
    if (e instanceof DbError) {
      report([{ code: 'runtime_error', message: e.message.split('\n')[0] ?? e.message }], '', args.format);
      return 1;
    }
    if (e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string' && /^E[A-Z]+$/.test((e as { code: string }).code)) {
      // File system errors (pcap output directory missing, permissions): one line.
      report([{ code: 'runtime_error', message: e.message }], '', args.format);
      return 1;
    }
    // A bug of ours: one line, not a stack trace (RETIS_QUERY_DEBUG=1 shows it).
    if (process.env.RETIS_QUERY_DEBUG) throw e;
    report([{ code: 'runtime_error', message: `internal error: ${e instanceof Error ? e.message : String(e)} (RETIS_QUERY_DEBUG=1 for details)` }], '', args.format);
    return 1;
  } finally {
    process.stdout.off('error', onError);
    db?.close();
  }
}
