/**
 * Small networking text helpers shared by the packet decoder and the event
 * sections: address formatting as Rust's std / pnet print them, and the names
 * Retis gives to ethertypes and IP protocols (retis-events/src/helpers/net.rs).
 */

/** Two-digit lowercase hex of every byte value, built once. */
export const HEX2: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Rust `{:#06x}` (used for ethertypes): `0x` + at least 4 hex digits. */
export function hex06(v: number): string {
  return '0x' + v.toString(16).padStart(4, '0');
}

/** Rust `{:#010x}`: `0x` + at least 8 hex digits. */
export function hex010(v: number): string {
  return '0x' + v.toString(16).padStart(8, '0');
}

/** Ethertypes Retis names; others print as `ethertype (0x....)` or are unsupported. */
const ETYPE_NAMES = new Map<number, string>([
  [0x0800, 'IPv4'],
  [0x0806, 'ARP'],
  [0x6558, 'TEB'],
  [0x8035, 'Reverse ARP'],
  [0x809b, 'Appletalk'],
  [0x80f3, 'Appletalk ARP'],
  [0x8100, '802.1Q'],
  [0x86dd, 'IPv6'],
  [0x880b, 'PPP'],
  [0x8847, 'MPLS unicast'],
  [0x8848, 'MPLS multicast'],
  [0x8863, 'PPPoE D'],
  [0x8864, 'PPPoE S'],
  [0x888e, 'EAPOL'],
  [0x88a8, '802.1Q-QinQ'],
  [0x88e5, '802.1AE MACsec'],
  [0x88f7, 'PTP'],
  [0x9100, '802.1Q-9100'],
]);

export function etypeName(etype: number): string | undefined {
  return ETYPE_NAMES.get(etype);
}

/** IP protocol names Retis prints in `proto NAME (n)`. */
const PROTO_NAMES: (string | undefined)[] = [];
for (const [n, name] of [
  [1, 'ICMP'],
  [2, 'IGMP'],
  [4, 'IPIP'],
  [6, 'TCP'],
  [17, 'UDP'],
  [27, 'RDP'],
  [33, 'DCCP'],
  [41, 'IPv6'],
  [47, 'GRE'],
  [50, 'ESP'],
  [51, 'AH'],
  [58, 'ICMPv6'],
  [89, 'OSPF'],
  [112, 'VRRP'],
  [115, 'L2TP'],
  [132, 'SCTP'],
  [143, 'Ethernet'],
] as const)
  PROTO_NAMES[n] = name;

export function protocolName(proto: number): string | undefined {
  return PROTO_NAMES[proto];
}

export function macAt(d: Uint8Array, o: number): string {
  return `${HEX2[d[o]]}:${HEX2[d[o + 1]]}:${HEX2[d[o + 2]]}:${HEX2[d[o + 3]]}:${HEX2[d[o + 4]]}:${HEX2[d[o + 5]]}`;
}

export function ipv4At(d: Uint8Array, o: number): string {
  return `${d[o]}.${d[o + 1]}.${d[o + 2]}.${d[o + 3]}`;
}

/**
 * IPv6 text as Rust's `Ipv6Addr` Display writes it: IPv4-mapped addresses as
 * `::ffff:a.b.c.d`, otherwise the first longest run (length > 1) of zero groups
 * collapsed to `::`, groups in lowercase hex without leading zeros.
 */
export function ipv6At(d: Uint8Array, o: number): string {
  const g = new Array<number>(8);
  for (let i = 0; i < 8; i++) g[i] = (d[o + 2 * i] << 8) | d[o + 2 * i + 1];
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff)
    return `::ffff:${ipv4At(d, o + 12)}`;

  let bestStart = 0;
  let bestLen = 0;
  let curStart = 0;
  let curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (g[i] === 0) {
      if (curLen === 0) curStart = i;
      curLen++;
      if (curLen > bestLen) {
        bestLen = curLen;
        bestStart = curStart;
      }
    } else {
      curLen = 0;
    }
  }
  if (bestLen > 1) {
    return `${groups(g, 0, bestStart)}::${groups(g, bestStart + bestLen, 8)}`;
  }
  return groups(g, 0, 8);
}

function groups(g: number[], from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += (i === from ? '' : ':') + g[i].toString(16);
  return s;
}

/** Big-endian readers over a byte array. */
export function u16At(d: Uint8Array, o: number): number {
  return (d[o] << 8) | d[o + 1];
}

export function u32At(d: Uint8Array, o: number): number {
  return ((d[o] << 24) | (d[o + 1] << 16) | (d[o + 2] << 8) | d[o + 3]) >>> 0;
}
