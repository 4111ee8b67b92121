/**
 * Test helpers for the text format: a JSON reader that keeps Retis integers exact
 * (u64 fields become bigint, per the event schema) and a reader for the per-packet
 * comments of a pcap-ng file (Retis writes each event's text rendering there).
 */
import { readFileSync } from 'node:fs';
import type { EventValue, RetisEvent } from '../../analyze/model/event.ts';
import { SECTIONS, type FieldType } from '../../analyze/model/schema.ts';

export const COMPAT_DIR = '/work/shared/compat/retis';

const WIDE = new Set(['BIGINT', 'UBIGINT', 'HUGEINT', 'UHUGEINT']);
const SECTION_TYPES = new Map<string, FieldType>(SECTIONS.map((s) => [s.name, s.type]));

/** Expected type of the value being parsed; 'ROOT' is the event object itself. */
type Hint = FieldType | 'ROOT' | undefined;

function childType(t: Hint, key: string): FieldType | undefined {
  if (t === 'ROOT') return SECTION_TYPES.get(key);
  if (t === undefined || typeof t === 'string' || !('struct' in t)) return undefined;
  return t.struct.find((f) => f.name === key)?.type;
}

function itemType(t: Hint): FieldType | undefined {
  return t !== undefined && typeof t !== 'string' && 'list' in t ? t.list : undefined;
}

const NUMBER = /-?\d+(\.\d+)?([eE][-+]?\d+)?/y;

/** Minimal JSON parser whose numbers and strings are typed from the schema. */
class JsonReader {
  private i = 0;
  constructor(private readonly s: string) {}

  parse(t: Hint): EventValue {
    this.ws();
    const c = this.s[this.i];
    if (c === '{') return this.object(t);
    if (c === '[') return this.array(t);
    if (c === '"') {
      const str = this.string();
      return t === 'BLOB' ? new Uint8Array(Buffer.from(str, 'base64')) : str;
    }
    if (this.s.startsWith('true', this.i)) {
      this.i += 4;
      return true;
    }
    if (this.s.startsWith('false', this.i)) {
      this.i += 5;
      return false;
    }
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) throw new Error(`bad JSON at ${this.i}`);
    this.i = NUMBER.lastIndex;
    const raw = m[0];
    if (typeof t === 'string' && WIDE.has(t)) return BigInt(raw);
    const n = Number(raw);
    return Number.isSafeInteger(n) || raw.includes('.') ? n : BigInt(raw);
  }

  private object(t: Hint): EventValue {
    const out: { [k: string]: EventValue } = {};
    this.i++;
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      const key = this.string();
      this.ws();
      this.i++; // ':'
      const v = this.parseOrNull(childType(t, key));
      if (v !== null) out[key] = v;
      this.ws();
      if (this.s[this.i++] === '}') return out;
    }
  }

  private array(t: Hint): EventValue {
    const out: EventValue[] = [];
    this.i++;
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.parse(itemType(t)));
      this.ws();
      if (this.s[this.i++] === ']') return out;
    }
  }

  private parseOrNull(t: Hint): EventValue | null {
    this.ws();
    if (this.s.startsWith('null', this.i)) {
      this.i += 4;
      return null;
    }
    return this.parse(t);
  }

  private string(): string {
    const start = this.i;
    this.i++;
    while (this.s[this.i] !== '"') this.i += this.s[this.i] === '\\' ? 2 : 1;
    this.i++;
    return JSON.parse(this.s.slice(start, this.i)) as string;
  }

  private ws(): void {
    for (let c = this.s.charCodeAt(this.i); c === 32 || c === 9 || c === 10 || c === 13; c = this.s.charCodeAt(++this.i));
  }
}

/** Parse one event JSON object (a line of an event file). */
export function parseEvent(json: string): RetisEvent {
  return new JsonReader(json).parse('ROOT') as unknown as RetisEvent;
}

/** Parse a series line (JSON array of events). */
export function parseSeries(json: string): RetisEvent[] {
  const s = json.trim();
  if (!s.startsWith('[')) throw new Error('not a series');
  // Split on top-level objects by parsing each one through the event reader.
  const events: RetisEvent[] = [];
  let depth = 0;
  let start = -1;
  let inStr = false;
  for (let i = 1; i < s.length - 1; i++) {
    const c = s[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}') {
      if (--depth === 0) events.push(parseEvent(s.slice(start, i + 1)));
    }
  }
  return events;
}

export function readEvents(file: string): RetisEvent[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(parseEvent);
}

/** Comments (option 1) of every Enhanced Packet Block of a little-endian pcap-ng file. */
export function pcapngComments(file: string): string[] {
  const b = readFileSync(file);
  const out: string[] = [];
  let o = 0;
  while (o + 12 <= b.length) {
    const type = b.readUInt32LE(o);
    const len = b.readUInt32LE(o + 4);
    if (type === 6) {
      const capLen = b.readUInt32LE(o + 20);
      let p = o + 28 + ((capLen + 3) & ~3);
      const end = o + len - 4;
      let comment = '';
      while (p + 4 <= end) {
        const code = b.readUInt16LE(p);
        const olen = b.readUInt16LE(p + 2);
        if (code === 0) break;
        if (code === 1) comment = b.toString('utf8', p + 4, p + 4 + olen);
        p += 4 + ((olen + 3) & ~3);
      }
      out.push(comment);
    }
    o += len;
  }
  return out;
}

/** Bytes from a base64 string (test packets are quoted from Retis's tests that way). */
export function b64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** Bytes from a hex string; whitespace ignored. */
export function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}
