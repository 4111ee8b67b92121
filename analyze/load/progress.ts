/**
 * A one-line progress display on stderr for loads that take over a second, only when
 * stderr is a terminal (never in pipes, files or CI logs). DuckDB reports the running
 * query's progress; we poll it on a timer while the load's statement runs.
 */
import type { Db } from '../db.ts';

export class Progress {
  private readonly start = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private current = '';
  private shown = false;

  constructor(
    private readonly db: Db,
    private readonly files: number,
  ) {
    if (!process.stderr.isTTY) return;
    this.timer = setInterval(() => this.tick(), 200);
    this.timer.unref();
  }

  file(index: number, path: string): void {
    this.current = this.files > 1 ? `[${index + 1}/${this.files}] ${path}` : path;
  }

  private tick(): void {
    if (Date.now() - this.start < 1000) return;
    const p = this.db.conn.progress;
    const pct = p.percentage >= 0 ? `${p.percentage.toFixed(0).padStart(3)}%` : '  …';
    const cols = process.stderr.columns || 80;
    const text = `loading ${pct} ${this.current}`.slice(0, cols - 1);
    process.stderr.write(`\r${text}\x1b[K`);
    this.shown = true;
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.shown) process.stderr.write('\r\x1b[K');
  }
}
