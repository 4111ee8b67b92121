/**
 * Indenting text writer with the semantics of Retis's display `Formatter`
 * (retis-events/src/display.rs), which decides where spaces go in multi-line output.
 *
 * Retis buffers what is written at one indentation level (a "chunk") and prefixes its
 * lines when the level changes or at the end:
 * - the chunk's first line gets the prefix only if the previous chunk ended with a
 *   newline (or it is the very first chunk), even when that first line is empty;
 * - every later line gets the prefix unless it is empty;
 * - the very first chunk of an event may carry an item char (`↳` in sorted series)
 *   two columns left of the text.
 * Some sections change the level part-way (stack traces, OVS flows) and the exact
 * spacing of those corner cases falls out of these rules, so we apply the same rules;
 * but we do it as text streams in rather than by buffering and splitting, which is
 * equivalent and cheaper (most writes hold no newline at all).
 */

/** Cached runs of spaces: levels are small (0..10), so build each once. */
const SPACES: string[] = [];
function spaces(n: number): string {
  let s = SPACES[n];
  if (s === undefined) {
    s = ' '.repeat(n);
    SPACES[n] = s;
  }
  return s;
}

/**
 * Indentation configuration of one event's rendering. `incLevel` / `resetLevel`
 * nest like Retis's FormatterConf.
 */
export class WriterConf {
  level: number;
  private saved: number[] = [];
  readonly item: string | undefined;

  constructor(level = 0, item?: string) {
    this.level = level;
    this.item = item;
  }

  incLevel(diff: number): void {
    this.saved.push(this.level);
    this.level += diff;
  }

  resetLevel(): void {
    const prev = this.saved.pop();
    if (prev !== undefined) this.level = prev;
  }
}

export class TextWriter {
  readonly conf: WriterConf;
  private out = '';
  /** Level of the current chunk. */
  private level: number;
  /** Whether the current chunk has received text yet. */
  private inChunk = false;
  /** True until the first chunk starts: only it gets the item char. */
  private first = true;
  /** The previous chunk ended with a newline: the next chunk's first line is prefixed. */
  private start = true;
  /** Inside a chunk, the last text written was a newline: a non-empty line needs the prefix. */
  private pending = false;

  constructor(conf: WriterConf) {
    this.conf = conf;
    this.level = conf.level;
  }

  write(s: string): void {
    if (this.conf.level !== this.level) {
      this.endChunk();
      this.level = this.conf.level;
    }
    if (s.length === 0) return;

    const level = this.level;
    if (!this.inChunk) {
      this.inChunk = true;
      if (this.start) {
        const item = this.first && level >= 2 ? this.conf.item : undefined;
        // The item char replaces the space two columns left of the text.
        this.out += item === undefined ? spaces(level) : spaces(level - 2) + item + ' ';
        this.start = false;
      }
      this.first = false;
      this.pending = false;
    }

    let from = 0;
    for (;;) {
      const nl = s.indexOf('\n', from);
      const end = nl === -1 ? s.length : nl;
      if (end > from) {
        if (this.pending) {
          this.out += spaces(level);
          this.pending = false;
        }
        this.out += from === 0 && end === s.length ? s : s.slice(from, end);
      }
      if (nl === -1) return;
      this.out += '\n';
      this.pending = true;
      from = nl + 1;
    }
  }

  private endChunk(): void {
    if (!this.inChunk) return;
    this.inChunk = false;
    this.start = this.pending;
    this.pending = false;
  }

  /** Everything written. */
  finish(): string {
    this.endChunk();
    return this.out;
  }
}
