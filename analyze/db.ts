/**
 * A thin typed wrapper over one embedded DuckDB connection.
 *
 * Every statement goes through `run`/`rows`/`stream`, so DuckDB's errors reach the user
 * through one place (`DbError`) with the statement's purpose attached, never as a raw
 * native stack.
 */
import { DuckDBConnection, DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';

export type Params = DuckDBValue[] | Record<string, DuckDBValue>;
export type Row = Record<string, unknown>;

export class DbError extends Error {
  constructor(
    readonly purpose: string,
    override readonly cause: unknown,
  ) {
    super(`${purpose}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'DbError';
  }
}

async function throwOnFailure<T>(purpose: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw new DbError(purpose, e);
  }
}

export interface DbOptions {
  /** A DuckDB database file, for loads larger than memory; default in-memory. */
  path?: string;
  threads?: number;
  memoryLimit?: string;
}

export class Db {
  private constructor(
    private readonly instance: DuckDBInstance,
    readonly conn: DuckDBConnection,
  ) {}

  static async open(opts: DbOptions = {}): Promise<Db> {
    const config: Record<string, string> = {};
    if (opts.threads) config.threads = String(opts.threads);
    if (opts.memoryLimit) config.memory_limit = opts.memoryLimit;
    const instance = await throwOnFailure('opening DuckDB', () => DuckDBInstance.create(opts.path ?? ':memory:', config));
    const conn = await throwOnFailure('connecting to DuckDB', () => instance.connect());
    return new Db(instance, conn);
  }

  /** Run a statement for its effect. */
  async run(sql: string, params?: Params, purpose = 'running SQL'): Promise<void> {
    await throwOnFailure(purpose, () => this.conn.run(sql, params));
  }

  /** Run a query and return all rows as plain JS objects (bigint for 64-bit and wider integers). */
  async rows<T extends Row = Row>(sql: string, params?: Params, purpose = 'running a query'): Promise<T[]> {
    const reader = await throwOnFailure(purpose, () => this.conn.runAndReadAll(sql, params));
    return reader.getRowObjectsJS() as T[];
  }

  /** Run a query and yield its rows in chunks, without materialising the whole result. */
  async *stream<T extends Row = Row>(sql: string, params?: Params, purpose = 'running a query'): AsyncGenerator<T[]> {
    const result = await throwOnFailure(purpose, () => this.conn.stream(sql, params));
    const it = result.yieldRowObjectJs();
    for (;;) {
      const next = await throwOnFailure(purpose, () => it.next());
      if (next.done) return;
      yield next.value as T[];
    }
  }

  /** Column names of a query's result, without running it to completion. */
  async columns(sql: string, params?: Params): Promise<string[]> {
    const reader = await throwOnFailure('describing a query', () => this.conn.runAndReadAll(`DESCRIBE ${sql}`, params));
    return (reader.getRowObjectsJS() as { column_name: string }[]).map((r) => r.column_name);
  }

  close(): void {
    this.conn.closeSync();
    this.instance.closeSync();
  }
}
