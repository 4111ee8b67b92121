/**
 * Tiny packet builders for the format tests: headers laid out byte by byte, with
 * length fields computed unless given (checksums are left zero: Retis never reads them).
 */

export type Bytes = number[];

export const MAC1 = '02:00:00:00:00:01';
export const MAC2 = '02:00:00:00:00:02';

function u16(v: number): Bytes {
  return [(v >> 8) & 0xff, v & 0xff];
}
function u32(v: number): Bytes {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}
function mac(s: string): Bytes {
  return s.split(':').map((x) => parseInt(x, 16));
}
function ip4(s: string): Bytes {
  return s.split('.').map(Number);
}
/** IPv6 address from its full 8-group form (no `::`), e.g. '2001:db8:0:0:0:0:0:1'. */
function ip6(s: string): Bytes {
  return s.split(':').flatMap((g) => u16(parseInt(g, 16)));
}

export function bytes(...parts: (Bytes | number)[]): Bytes {
  return parts.flatMap((p) => (typeof p === 'number' ? [p] : p));
}

export function eth(etype: number, payload: Bytes, src = MAC1, dst = MAC2): Bytes {
  return [...mac(dst), ...mac(src), ...u16(etype), ...payload];
}

export function vlan(tci: { vid: number; pcp?: number; dei?: boolean }, etype: number, payload: Bytes): Bytes {
  const v = ((tci.pcp ?? 0) << 13) | ((tci.dei ? 1 : 0) << 12) | tci.vid;
  return [...u16(v), ...u16(etype), ...payload];
}

export interface Ip4Opts {
  src?: string;
  dst?: string;
  proto: number;
  tos?: number;
  ttl?: number;
  id?: number;
  /** 3 flag bits, as in the header (0b010 = DF). */
  flags?: number;
  /** Fragment offset in 8-byte units. */
  frag?: number;
  options?: Bytes;
  /** Override the total length field. */
  total?: number;
}

export function ipv4(o: Ip4Opts, payload: Bytes): Bytes {
  const opts = o.options ?? [];
  const hl = 20 + opts.length;
  return [
    0x40 | (hl / 4),
    o.tos ?? 0,
    ...u16(o.total ?? hl + payload.length),
    ...u16(o.id ?? 1),
    ...u16(((o.flags ?? 0) << 13) | (o.frag ?? 0)),
    o.ttl ?? 64,
    o.proto,
    0,
    0,
    ...ip4(o.src ?? '10.0.0.1'),
    ...ip4(o.dst ?? '10.0.0.2'),
    ...opts,
    ...payload,
  ];
}

export interface Ip6Opts {
  src?: string;
  dst?: string;
  nh: number;
  tc?: number;
  flow?: number;
  hop?: number;
  plen?: number;
}

export function ipv6(o: Ip6Opts, payload: Bytes): Bytes {
  const tc = o.tc ?? 0;
  const flow = o.flow ?? 0;
  return [
    0x60 | (tc >> 4),
    ((tc & 0xf) << 4) | ((flow >> 16) & 0xf),
    (flow >> 8) & 0xff,
    flow & 0xff,
    ...u16(o.plen ?? payload.length),
    o.nh,
    o.hop ?? 64,
    ...ip6(o.src ?? '2001:db8:0:0:0:0:0:1'),
    ...ip6(o.dst ?? '2001:db8:0:0:0:0:0:2'),
    ...payload,
  ];
}

export interface TcpOpts {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  flags: number;
  /** Low nibble of byte 12 (bit 0 = AccECN). */
  reserved?: number;
  win?: number;
  options?: Bytes;
}

export function tcp(o: TcpOpts, payload: Bytes = []): Bytes {
  const opts = o.options ?? [];
  const doff = (20 + opts.length) / 4;
  return [
    ...u16(o.sport),
    ...u16(o.dport),
    ...u32(o.seq ?? 0),
    ...u32(o.ack ?? 0),
    (doff << 4) | (o.reserved ?? 0),
    o.flags,
    ...u16(o.win ?? 0),
    0,
    0,
    0,
    0,
    ...opts,
    ...payload,
  ];
}

export function udp(sport: number, dport: number, payload: Bytes, len?: number): Bytes {
  return [...u16(sport), ...u16(dport), ...u16(len ?? 8 + payload.length), 0, 0, ...payload];
}

export function icmp(type: number, code: number): Bytes {
  return [type, code, 0, 0, 0, 1, 0, 1];
}

export interface ArpOpts {
  op: number;
  sha?: string;
  spa?: string;
  tha?: string;
  tpa?: string;
}

export function arp(o: ArpOpts): Bytes {
  return [
    ...u16(1),
    ...u16(0x0800),
    6,
    4,
    ...u16(o.op),
    ...mac(o.sha ?? MAC1),
    ...ip4(o.spa ?? '10.0.0.1'),
    ...mac(o.tha ?? '00:00:00:00:00:00'),
    ...ip4(o.tpa ?? '10.0.0.2'),
  ];
}

export { u16, u32 };

export function toBytes(b: Bytes): Uint8Array {
  return Uint8Array.from(b);
}
