/**
 * Retis JSON for tests, independent of the loader under test: integers beyond 2^53 stay
 * exact (bigint), and events get the model's types (64-bit fields as bigint even when
 * small, packet data as bytes).
 */
import { readFileSync } from 'node:fs';
import type { RetisEvent } from '../../analyze/model/event.ts';
import { SECTIONS, type FieldType } from '../../analyze/model/schema.ts';

// ---------------------------------------------------------------------------------------
// JSON with exact integers
// ---------------------------------------------------------------------------------------

export type Json = null | boolean | number | bigint | string | Json[] | { [k: string]: Json };

const LITERALS: [string, Json][] = [
  ['true', true],
  ['false', false],
  ['null', null],
];

/**
 * Parse JSON text. Integers beyond Number.MAX_SAFE_INTEGER become bigint (JSON.parse would
 * round them); object keys keep their text order (none of Retis's keys is an array index).
 */
export function parseJsonExact(text: string): Json {
  let i = 0;
  const ws = (): void => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return;
    }
  };
  const fail = (what: string): never => {
    throw new SyntaxError(`JSON: ${what} at offset ${i}`);
  };
  const value = (): Json => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: { [k: string]: Json } = {};
      ws();
      if (text[i] === '}') {
        i++;
        return o;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected key');
        const k = str();
        ws();
        if (text[i++] !== ':') fail('expected ":"');
        o[k] = value();
        ws();
        const d = text[i++];
        if (d === '}') return o;
        if (d !== ',') fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const a: Json[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        const d = text[i++];
        if (d === ']') return a;
        if (d !== ',') fail('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    for (const [word, v] of LITERALS) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m === null) return fail('unexpected character');
    i += m[0].length;
    if (m[1] === undefined && m[2] === undefined) {
      const n = Number(m[0]);
      return Number.isSafeInteger(n) ? n : BigInt(m[0]);
    }
    return Number(m[0]);
  };
  const str = (): string => {
    // Find the closing quote, then let JSON.parse handle escapes of just this string.
    let j = i + 1;
    for (;;) {
      const c = text.charCodeAt(j);
      if (Number.isNaN(c)) fail('unterminated string');
      if (c === 0x5c) j += 2;
      else if (c === 0x22) break;
      else j++;
    }
    const s = JSON.parse(text.slice(i, j + 1)) as string;
    i = j + 1;
    return s;
  };
  const v = value();
  ws();
  if (i !== text.length) fail('trailing data');
  return v;
}

const WIDE = new Set(['BIGINT', 'UBIGINT', 'HUGEINT', 'UHUGEINT']);

/**
 * Give a parsed value the model's types: 64-bit and wider schema fields as bigint even when
 * small, `packet.data` base64 as bytes. Unknown fields are kept as parsed.
 */
function typed(v: Json, t: FieldType | undefined): unknown {
  if (t === undefined) return v;
  if (typeof t === 'string') {
    if (WIDE.has(t) && typeof v === 'number') return BigInt(v);
    if (t === 'BLOB' && typeof v === 'string') return new Uint8Array(Buffer.from(v, 'base64'));
    return v;
  }
  if ('list' in t) return Array.isArray(v) ? v.map((x) => typed(x, t.list)) : v;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = typed(x, t.struct.find((f) => f.name === k)?.type);
  return out;
}

/** One event line as a RetisEvent (section keys in file order). */
export function parseEvent(line: string): RetisEvent {
  return eventOf(parseJsonExact(line));
}

/** A parsed JSON object as a RetisEvent with the model's types. */
function eventOf(v: Json): RetisEvent {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TypeError('event is not a JSON object');
  const ev: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) ev[k] = typed(x, SECTIONS.find((s) => s.name === k)?.type);
  return ev as unknown as RetisEvent;
}

/** All events of a JSON-lines event file, in file order. */
export function readEvents(path: string): RetisEvent[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(parseEvent);
}

/** A series line (JSON array of events), as `retis sort -o` writes them. */
export function parseSeries(line: string): RetisEvent[] {
  const v = parseJsonExact(line);
  if (!Array.isArray(v)) throw new TypeError('series is not a JSON array');
  return v.map(eventOf);
}
