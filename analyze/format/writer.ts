/**
 * Indenting text writer: a port of the semantics of Retis's display `Formatter`
 * (retis-events/src/display.rs), which decides where spaces go in multi-line output.
 *
 * Why a port and not plain concatenation: Retis buffers what is written at one
 * indentation level and only prefixes lines when the level changes or at the end.
 * Text written at a level is prefixed with that many spaces at each line start, and
 * the very first chunk of an event can carry an item char (`↳` in sorted series) two
 * columns left of the text. Some sections change the level mid-way (stack traces,
 * OVS flows) and the exact spacing of those corner cases falls out of the buffering,
 * so we reproduce the buffering itself.
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
 * Indentation configuration shared by the sections of one event. `incLevel` /
 * `resetLevel` nest like Retis's FormatterConf.
 */
export class WriterConf {
  level: number;
  private saved: number[] = [];
  item: string | undefined;

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
  private buf = '';
  /** Level the buffered text was written at. */
  private level: number;
  /** True until the first chunk is flushed: only it gets the item char. */
  private first = true;
  /** True when the next output starts a line (and so needs a prefix). */
  private start = true;

  constructor(conf: WriterConf) {
    this.conf = conf;
    this.level = conf.level;
  }

  write(s: string): void {
    if (this.conf.level !== this.level) {
      if (this.buf.length !== 0) this.flush();
      this.level = this.conf.level;
    }
    this.buf += s;
  }

  private flush(): void {
    const buf = this.buf;
    if (buf.length === 0) return;
    const level = this.level;
    let prefix = spaces(level);
    const item = this.first && level >= 2 ? this.conf.item : undefined;
    this.first = false;

    let nl = buf.indexOf('\n');
    const firstLine = nl === -1 ? buf : buf.slice(0, nl);
    if (this.start) {
      this.start = false;
      // The item char replaces the space two columns left of the text.
      this.out += item === undefined ? prefix : spaces(level - 2) + item + ' ';
    }
    this.out += firstLine;
    prefix = spaces(level);

    while (nl !== -1) {
      const from = nl + 1;
      nl = buf.indexOf('\n', from);
      const line = nl === -1 ? buf.slice(from) : buf.slice(from, nl);
      this.out += '\n';
      if (line.length !== 0) this.out += prefix + line;
    }

    if (buf.charCodeAt(buf.length - 1) === 10) this.start = true;
    this.buf = '';
  }

  /** Flush what is pending and return everything written. */
  finish(): string {
    this.flush();
    return this.out;
  }
}
