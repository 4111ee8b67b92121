/**
 * Row output in the formats every command offers: table (aligned columns), csv (RFC 4180),
 * json (JSON Lines, one flat object per row, integers exact). Text (Retis's format) is
 * per command; for plain aggregate rows text is the table.
 */
import type { Writable } from 'node:stream';
import { jsonText } from './model/json.ts';

export type OutputFormat = 'text' | 'table' | 'json' | 'csv';
export const OUTPUT_FORMATS: OutputFormat[] = ['text', 'table', 'json', 'csv'];

/** A buffered writer over stdout or a file stream; flushes in large chunks, honours backpressure. */
export class Out {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly stream: Writable = process.stdout) {}

  write(s: string): void | Promise<void> {
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= 1 << 16) return this.flush();
  }

  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const chunk = this.parts.join('');
    this.parts = [];
    this.size = 0;
    if (!this.stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => reject(e);
        this.stream.once('error', onErr);
        this.stream.once('drain', () => {
          this.stream.off('error', onErr);
          resolve();
        });
      });
    }
  }
}

/** JSON text of a value: bigint exact, bytes as base64, nested values as JSON. */
export const jsonValue = jsonText;

/** Display text of a value in table/csv cells. */
export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return jsonValue(v);
}

function csvCell(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export interface RowWriter {
  rows(rows: Record<string, unknown>[]): Promise<void>;
  end(): Promise<void>;
}

/**
 * A writer for flat rows. The table format must see every row to size its columns, so it
 * buffers; json and csv stream.
 */
export function rowWriter(format: OutputFormat, columns: string[], out: Out): RowWriter {
  if (format === 'json') {
    return {
      async rows(rows) {
        for (const r of rows) await out.write(`{${columns.map((c) => `${JSON.stringify(c)}:${jsonValue(r[c])}`).join(',')}}\n`);
      },
      end: () => out.flush(),
    };
  }
  if (format === 'csv') {
    let header = false;
    return {
      async rows(rows) {
        if (!header) {
          await out.write(`${columns.map(csvCell).join(',')}\n`);
          header = true;
        }
        for (const r of rows) await out.write(`${columns.map((c) => csvCell(cellText(r[c]))).join(',')}\n`);
      },
      async end() {
        if (!header) await out.write(`${columns.map(csvCell).join(',')}\n`);
        await out.flush();
      },
    };
  }
  const cells: string[][] = [];
  return {
    async rows(rows) {
      for (const r of rows) cells.push(columns.map((c) => cellText(r[c])));
    },
    async end() {
      const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
      const numeric = columns.map((_, i) => cells.length > 0 && cells.every((row) => row[i] === '' || /^-?\d+(\.\d+)?$/.test(row[i]!)));
      const line = (row: string[]) =>
        row
          .map((s, i) => (numeric[i] ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd();
      await out.write(`${line(columns)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
      for (const row of cells) await out.write(`${line(row)}\n`);
      await out.flush();
    },
  };
}
