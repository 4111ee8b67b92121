/**
 * Literal values: what a token's text means. Addresses are normalised to the text the
 * event model holds (RFC 5952 for IPv6), CIDRs to inclusive ranges, MACs to hex,
 * durations to nanoseconds, dates to epoch nanoseconds.
 */

export type Value =
  | { type: 'int'; value: bigint }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'bool'; value: boolean }
  | { type: 'ip'; family: 4 | 6; text: string; num: bigint }
  | { type: 'cidr'; family: 4 | 6; prefix: number; lo: bigint; hi: bigint; text: string }
  | { type: 'mac'; hex: string; text: string }
  | { type: 'duration'; ns: bigint; text: string }
  | { type: 'time'; epochNs: bigint; text: string }
  | { type: 'probe'; text: string }
  | { type: 'track'; value: bigint; text: string };

export type ValueType = Value['type'];

/** Words for a value's type, in messages. */
export const VALUE_NOUN: Record<ValueType, string> = {
  int: 'a number',
  float: 'a number',
  string: 'a string',
  bool: 'a boolean',
  ip: 'an IP address',
  cidr: 'an address prefix',
  mac: 'a MAC address',
  duration: 'a duration',
  time: 'a date/time',
  probe: 'a probe name',
  track: 'a tracking id',
};

export class ValueError extends Error {}

export function parseIntLiteral(text: string): bigint {
  const neg = text.startsWith('-');
  const body = neg ? text.slice(1) : text;
  const v = BigInt(body);
  return neg ? -v : v;
}

export function parseNumber(text: string): Value {
  if (/^-?0[xX]/.test(text) || !text.includes('.')) return { type: 'int', value: parseIntLiteral(text) };
  return { type: 'float', value: Number(text) };
}

export function unquote(text: string): string {
  const body = text.slice(1, -1);
  return body.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r', '0': '\0' })[c] ?? c);
}

export function parseIpv4(text: string): bigint {
  const parts = text.split('.');
  if (parts.length !== 4) throw new ValueError(`'${text}' is not an IPv4 address`);
  let n = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new ValueError(`'${text}' is not an IPv4 address (each part is 0 to 255)`);
    n = (n << 8n) | BigInt(Number(p));
  }
  return n;
}

export function parseIpv6(text: string): bigint {
  const bad = () => new ValueError(`'${text}' is not an IPv6 address`);
  let s = text.toLowerCase();
  let tail: bigint[] = [];
  // Embedded IPv4 in the last 32 bits: ::ffff:10.0.0.1
  const m4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (m4) {
    const v4 = parseIpv4(m4[2]!);
    tail = [v4 >> 16n, v4 & 0xffffn];
    s = m4[1]!.endsWith('::') ? m4[1]! : m4[1]!.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) throw bad();
  const groups = (h: string): bigint[] =>
    h === ''
      ? []
      : h.split(':').map((g) => {
          if (!/^[0-9a-f]{1,4}$/.test(g)) throw bad();
          return BigInt(`0x${g}`);
        });
  const left = groups(halves[0]!);
  const right = [...(halves.length === 2 ? groups(halves[1]!) : []), ...tail];
  const total = left.length + right.length;
  if (halves.length === 1 ? total !== 8 : total > 7) throw bad();
  const all = [...left, ...new Array<bigint>(8 - total).fill(0n), ...right];
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** RFC 5952 text of an IPv6 number: lowercase, no leading zeros, longest zero run (≥ 2) as '::'. */
export function ipv6Text(n: bigint): string {
  const g = Array.from({ length: 8 }, (_, i) => Number((n >> BigInt(16 * (7 - i))) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function ipv4Text(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}

/** An address or a prefix (`10.0.0.0/8`, `fe80::/10`). A /32 (/128) is the address itself. */
export function parseAddress(text: string, family: 4 | 6): Value {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const num = family === 4 ? parseIpv4(addr) : parseIpv6(addr);
  const bits = family === 4 ? 32 : 128;
  const norm = family === 4 ? ipv4Text(num) : ipv6Text(num);
  if (slash < 0) return { type: 'ip', family, text: norm, num };
  const prefix = Number(text.slice(slash + 1));
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) throw new ValueError(`'${text}': the prefix length must be 0 to ${bits}`);
  if (prefix === bits) return { type: 'ip', family, text: norm, num };
  const hostBits = BigInt(bits - prefix);
  const lo = (num >> hostBits) << hostBits;
  const hi = lo | ((1n << hostBits) - 1n);
  return { type: 'cidr', family, prefix, lo, hi, text: `${family === 4 ? ipv4Text(lo) : ipv6Text(lo)}/${prefix}` };
}

export function parseMac(text: string): Value {
  const hex = text.replace(/[:-]/g, '').toLowerCase();
  return { type: 'mac', hex, text: hex.replace(/(..)(?!$)/g, '$1:') };
}

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  min: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

export function parseDuration(text: string): Value {
  const m = /^(\d+)(?:\.(\d+))?([a-zµ]+)$/.exec(text);
  if (!m) throw new ValueError(`'${text}' is not a duration`);
  const unit = UNIT_NS[m[3]!];
  if (unit === undefined) throw new ValueError(`'${text}': unknown unit (ns, us, ms, s, m, h)`);
  const frac = m[2] ?? '';
  const scale = 10n ** BigInt(frac.length);
  const ns = (BigInt(m[1]!) * scale + BigInt(frac || '0')) * unit;
  if (ns % scale !== 0n) throw new ValueError(`'${text}' is finer than a nanosecond`);
  return { type: 'duration', ns: ns / scale, text };
}

/** ISO 8601 date or date-time; no zone means UTC. */
export function parseDateTime(text: string): Value {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(text);
  if (!m) throw new ValueError(`'${text}' is not a date/time (e.g. 2024-05-01T10:00:00Z)`);
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const check = new Date(ms);
  if (Number.isNaN(ms) || check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
    throw new ValueError(`'${text}' is not a valid date/time`);
  }
  let ns = BigInt(ms) * 1_000_000n + BigInt(frac.padEnd(9, '0') || '0');
  if (zone && zone !== 'Z') {
    const zm = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
    const off = BigInt(Number(zm[2]) * 60 + Number(zm[3])) * 60_000_000_000n;
    ns = zm[1] === '+' ? ns - off : ns + off;
  }
  return { type: 'time', epochNs: ns, text };
}

const PROBE_PREFIX: Record<string, string> = {
  tp: 'tp',
  raw_tp: 'tp',
  raw_tracepoint: 'tp',
  kprobe: 'kprobe',
  k: 'kprobe',
  kretprobe: 'kretprobe',
  kr: 'kretprobe',
  fentry: 'fentry',
  fexit: 'fexit',
  usdt: 'usdt',
  u: 'usdt',
};

/** A probe in the spelling of the `probe` column: `raw_tp:`/`k:`/`kr:` become `tp:`/`kprobe:`/`kretprobe:`. */
export function normalizeProbe(text: string): string {
  const c = text.indexOf(':');
  if (c < 0) return text;
  const p = PROBE_PREFIX[text.slice(0, c).toLowerCase()];
  return p === undefined ? text : `${p}:${text.slice(c + 1)}`;
}

/** Human text of nanoseconds: 950ns, 12.5µs, 3.2ms, 1.25s. */
export function formatDurationNs(ns: bigint | number): string {
  const v = Number(ns);
  const a = Math.abs(v);
  const fmt = (x: number, u: string) => `${Number(x.toPrecision(4))}${u}`;
  if (a < 1e3) return `${v}ns`;
  if (a < 1e6) return fmt(v / 1e3, 'µs');
  if (a < 1e9) return fmt(v / 1e6, 'ms');
  return fmt(v / 1e9, 's');
}

/** Text of a value for messages. */
export function valueText(v: Value): string {
  switch (v.type) {
    case 'int':
      return v.value.toString();
    case 'float':
      return String(v.value);
    case 'string':
      return JSON.stringify(v.value);
    case 'bool':
      return String(v.value);
    default:
      return v.text;
  }
}
