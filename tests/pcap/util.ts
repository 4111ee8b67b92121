/**
 * Test helpers for the pcap export: a bigint-exact JSON reader for Retis event files and
 * a tiny pcap-ng reader, independent from the writer under test.
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
export function eventFromJson(line: string): RetisEvent {
  const v = parseJsonExact(line);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new TypeError('event is not a JSON object');
  const ev: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) ev[k] = typed(x, SECTIONS.find((s) => s.name === k)?.type);
  return ev as unknown as RetisEvent;
}

/** All events of a JSON-lines event file, in file order. */
export function loadEvents(path: string): RetisEvent[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(eventFromJson);
}

// ---------------------------------------------------------------------------------------
// Tiny pcap-ng reader (little-endian sections only)
// ---------------------------------------------------------------------------------------

export interface RawOption {
  code: number;
  value: Uint8Array;
}
export interface RawBlock {
  type: number;
  offset: number;
  totalLength: number;
  body: Uint8Array;
}
export type Block =
  | { kind: 'shb'; raw: RawBlock; major: number; minor: number; sectionLength: bigint; options: RawOption[] }
  | { kind: 'idb'; raw: RawBlock; linktype: number; snaplen: number; options: RawOption[] }
  | {
      kind: 'epb';
      raw: RawBlock;
      interfaceId: number;
      timestamp: bigint;
      capLen: number;
      origLen: number;
      data: Uint8Array;
      options: RawOption[];
    }
  | { kind: 'custom'; raw: RawBlock; copiable: boolean; pen: number; payload: Uint8Array }
  | { kind: 'other'; raw: RawBlock };

function parseOptions(b: Uint8Array, off: number): RawOption[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: RawOption[] = [];
  while (off + 4 <= b.length) {
    const code = dv.getUint16(off, true);
    const len = dv.getUint16(off + 2, true);
    if (code === 0) {
      if (len !== 0) throw new Error('opt_endofopt with a length');
      off += 4;
      if (off !== b.length) throw new Error('data after opt_endofopt');
      return out;
    }
    const end = off + 4 + len;
    if (end > b.length) throw new Error(`option ${code} overruns its block`);
    out.push({ code, value: b.subarray(off + 4, end) });
    for (let p = end; p < ((end + 3) & ~3); p++) if (b[p] !== 0) throw new Error('non-zero option padding');
    off = (end + 3) & ~3;
  }
  if (off !== b.length) throw new Error('trailing bytes after options');
  // The spec wants opt_endofopt after options; tolerated missing only when there are none.
  if (out.length > 0) throw new Error('options without opt_endofopt');
  return out;
}

/** Split a pcap-ng file into blocks, checking lengths, trailers and padding. */
export function readPcapng(file: Uint8Array): Block[] {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const blocks: Block[] = [];
  let off = 0;
  while (off < file.length) {
    const type = dv.getUint32(off, true);
    const total = dv.getUint32(off + 4, true);
    if (total % 4 !== 0 || total < 12 || off + total > file.length) throw new Error(`bad block length ${total} at ${off}`);
    if (dv.getUint32(off + total - 4, true) !== total) throw new Error(`trailer length mismatch at ${off}`);
    const body = file.subarray(off + 8, off + total - 4);
    const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const raw: RawBlock = { type, offset: off, totalLength: total, body };
    if (type === 0x0a0d0d0a) {
      if (bv.getUint32(0, true) !== 0x1a2b3c4d) throw new Error('not a little-endian section');
      blocks.push({
        kind: 'shb',
        raw,
        major: bv.getUint16(4, true),
        minor: bv.getUint16(6, true),
        sectionLength: bv.getBigInt64(8, true),
        options: parseOptions(body, 16),
      });
    } else if (type === 1) {
      blocks.push({ kind: 'idb', raw, linktype: bv.getUint16(0, true), snaplen: bv.getUint32(4, true), options: parseOptions(body, 8) });
    } else if (type === 6) {
      const capLen = bv.getUint32(12, true);
      const dataEnd = 20 + capLen;
      for (let p = dataEnd; p < ((dataEnd + 3) & ~3); p++) if (body[p] !== 0) throw new Error('non-zero data padding');
      blocks.push({
        kind: 'epb',
        raw,
        interfaceId: bv.getUint32(0, true),
        timestamp: (BigInt(bv.getUint32(4, true)) << 32n) | BigInt(bv.getUint32(8, true)),
        capLen,
        origLen: bv.getUint32(16, true),
        data: body.subarray(20, dataEnd),
        options: parseOptions(body, (dataEnd + 3) & ~3),
      });
    } else if (type === 0xbad || type === 0x40000bad) {
      blocks.push({ kind: 'custom', raw, copiable: type === 0xbad, pen: bv.getUint32(0, true), payload: body.subarray(4) });
    } else {
      blocks.push({ kind: 'other', raw });
    }
    off += total;
  }
  return blocks;
}

export const utf8 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
export const optionText = (opts: RawOption[], code: number): string | undefined => {
  const o = opts.find((x) => x.code === code);
  return o === undefined ? undefined : utf8(o.value);
};
