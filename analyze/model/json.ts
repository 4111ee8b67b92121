/**
 * JSON text of a value as our files and outputs need it: integers exact (bigint printed
 * bare, as Retis writes u64 values), bytes as base64, NULL and undefined as null.
 *
 * Built by string concatenation (V8 ropes, faster here than collecting parts); object keys
 * repeat, so their quoted form is cached; plain strings skip JSON.stringify.
 */
const quotedKeys = new Map<string, string>();

/** `"key":` */
export function jsonKey(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = `${JSON.stringify(k)}:`;
    quotedKeys.set(k, q);
  }
  return q;
}

// Characters that need escaping in JSON strings: quote, backslash, controls, surrogates.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

export function jsonString(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

export function jsonText(v: unknown): string {
  switch (typeof v) {
    case 'bigint':
    case 'boolean':
      return String(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'string':
      return jsonString(v);
    case 'undefined':
      return 'null';
  }
  if (v === null) return 'null';
  if (v instanceof Uint8Array) return `"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}"`;
  if (v instanceof Date) return jsonString(v.toISOString());
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + jsonText(v[i]);
    return `${out}]`;
  }
  let out = '{';
  let first = true;
  for (const k in v as Record<string, unknown>) {
    out += (first ? '' : ',') + jsonKey(k) + jsonText((v as Record<string, unknown>)[k]);
    first = false;
  }
  return `${out}}`;
}
