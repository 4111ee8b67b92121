/**
 * Hand-built packets for the packet filter tests: Ethernet frames with IPv4/IPv6, UDP, TCP, ICMP,
 * VLAN, ARP, IP options, fragments. Checksums are left at zero: filters never look at them.
 */
export interface TestPacket {
  name: string;
  /** From the Ethernet header. */
  bytes: Uint8Array;
  /** Length on the wire (>= bytes.length: truncated captures). */
  wirelen: number;
  /** Offset of the network header (for the L3 view); undefined when not IP. */
  l3: number | undefined;
}

const MAC_A = [0x02, 0, 0, 0, 0, 0x01];
const MAC_B = [0x02, 0, 0, 0, 0, 0x02];

const u16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];
const ip4 = (s: string): number[] => s.split('.').map(Number);
function ip6(s: string): number[] {
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => u16(parseInt(g || '0', 16)));
}

function eth(type: number, payload: number[], vlan?: number): number[] {
  return [...MAC_B, ...MAC_A, ...(vlan !== undefined ? [...u16(0x8100), ...u16(vlan)] : []), ...u16(type), ...payload];
}

function ipv4(proto: number, src: string, dst: string, payload: number[], o: { options?: number[]; frag?: number; ttl?: number } = {}): number[] {
  const opts = o.options ?? [];
  const ihl = 5 + opts.length / 4;
  const total = ihl * 4 + payload.length;
  return [0x40 | ihl, 0, ...u16(total), ...u16(0x1234), ...u16(o.frag ?? 0), o.ttl ?? 64, proto, 0, 0, ...ip4(src), ...ip4(dst), ...opts, ...payload];
}

function ipv6(next: number, src: string, dst: string, payload: number[]): number[] {
  return [0x60, 0, 0, 0, ...u16(payload.length), next, 64, ...ip6(src), ...ip6(dst), ...payload];
}

const udp = (sport: number, dport: number, data: number[]): number[] => [...u16(sport), ...u16(dport), ...u16(8 + data.length), 0, 0, ...data];
const tcp = (sport: number, dport: number, flags: number, data: number[] = []): number[] => [
  ...u16(sport), ...u16(dport), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, ...u16(65535), 0, 0, 0, 0, ...data,
];
const icmp = (type: number, code = 0): number[] => [type, code, 0, 0, ...u16(1), ...u16(1), ...new Array<number>(16).fill(0x61)];
const data = (n: number, seed = 1): number[] => Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

function pkt(name: string, frame: number[], l3: number | undefined, wirelen = frame.length): TestPacket {
  return { name, bytes: Uint8Array.from(frame), wirelen, l3 };
}

export function testPackets(): TestPacket[] {
  const big = eth(0x0800, ipv4(17, '10.0.0.1', '10.0.0.2', udp(1500, 53, data(560))));
  return [
    pkt('udp4 dns', eth(0x0800, ipv4(17, '10.0.0.1', '10.0.0.2', udp(1234, 53, [1, 2, 3, 4, ...data(16)]))), 14),
    pkt('udp4 mdns', eth(0x0800, ipv4(17, '10.0.0.3', '224.0.0.251', udp(5353, 5353, data(40)))), 14),
    pkt('udp4 1500', eth(0x0800, ipv4(17, '172.16.1.1', '10.0.0.9', udp(1500, 1999, data(3)))), 14),
    pkt('tcp4 syn', eth(0x0800, ipv4(6, '10.0.0.1', '192.168.1.5', tcp(40000, 80, 0x02))), 14),
    pkt('tcp4 psh-ack', eth(0x0800, ipv4(6, '192.168.1.5', '10.0.0.1', tcp(443, 40001, 0x18, data(100)))), 14),
    pkt('tcp4 fin', eth(0x0800, ipv4(6, '10.1.2.3', '10.0.0.2', tcp(22, 50000, 0x11))), 14),
    pkt('tcp4 options ssh', eth(0x0800, ipv4(6, '10.0.0.1', '10.0.0.2', tcp(50000, 22, 0x10, data(8)), { options: [1, 1, 1, 0] })), 14),
    pkt('icmp4 echo', eth(0x0800, ipv4(1, '10.0.0.1', '10.0.0.2', icmp(8))), 14),
    pkt('icmp4 reply', eth(0x0800, ipv4(1, '10.0.0.2', '10.0.0.1', icmp(0))), 14),
    pkt('icmp4 unreachable', eth(0x0800, ipv4(1, '10.0.0.254', '10.0.0.1', icmp(3, 3))), 14),
    pkt('udp4 fragment', eth(0x0800, ipv4(17, '10.0.0.1', '10.0.0.2', data(40), { frag: 0x00b9 })), 14),
    pkt('udp4 ttl0', eth(0x0800, ipv4(17, '10.0.0.1', '10.0.0.2', udp(7, 9, data(4)), { ttl: 0 })), 14),
    pkt('udp4 ttl1', eth(0x0800, ipv4(17, '10.0.0.1', '10.0.0.2', udp(33434, 33435, data(12)), { ttl: 1 })), 14),
    pkt('udp6 dns', eth(0x86dd, ipv6(17, '2001:db8::1', '2001:db8::2', udp(1234, 53, data(30)))), 14),
    pkt('tcp6 http', eth(0x86dd, ipv6(6, 'fe80::1', 'fe80::2', tcp(50000, 80, 0x02))), 14),
    pkt('icmp6 echo', eth(0x86dd, ipv6(58, '2001:db8::1', '2001:db8:1::5', icmp(128))), 14),
    pkt('vlan100 udp4', eth(0x0800, ipv4(17, '10.0.0.1', '10.0.0.2', udp(1234, 53, data(10))), 100), undefined),
    pkt('vlan200 tcp4', eth(0x0800, ipv4(6, '10.0.0.1', '10.0.0.2', tcp(1234, 80, 0x02)), 200), undefined),
    pkt('arp', eth(0x0806, [0, 1, 8, 0, 6, 4, 0, 1, ...MAC_A, ...ip4('10.0.0.1'), 0, 0, 0, 0, 0, 0, ...ip4('10.0.0.2')]), undefined),
    pkt('big udp4 (captured 256 of 602)', big.slice(0, 256), 14, big.length),
    pkt('truncated udp4 (20 bytes)', eth(0x0800, ipv4(17, '10.0.0.1', '10.0.0.2', udp(1234, 53, data(30)))).slice(0, 20), 14, 78),
    pkt('short frame', [...MAC_B, ...MAC_A], undefined, 14),
  ];
}

export const EXPRESSIONS = [
  'udp port 53',
  'host 10.0.0.2',
  'src host 10.0.0.1 and dst port 80',
  'net 192.168.0.0/16',
  'dst net 224.0.0.0/4',
  'portrange 1000-2000',
  'tcp portrange 400-500',
  'udp and (port 53 or port 5353)',
  'ip proto 17',
  'icmp',
  'icmp[icmptype] == icmp-echo',
  'icmp[icmptype] == icmp-echoreply or icmp[icmptype] == icmp-unreach',
  'tcp[tcpflags] & (tcp-syn|tcp-fin) != 0',
  'tcp[tcpflags] == tcp-syn',
  'tcp[13] & 2 = 2',
  'tcp port 22',
  'vlan',
  'vlan 100 and udp',
  'vlan and tcp port 80',
  'ip6',
  'ip6 and udp port 53',
  'ip6 net 2001:db8::/32',
  'icmp6',
  'icmp6 and ip6[40] == 128',
  'arp',
  'not ip',
  'len > 100',
  'len <= 64',
  'greater 500',
  'less 80',
  'ip[8] > 60',
  'ip[8] == 1',
  'ip[6:2] & 0x1fff != 0',
  'ip[0] & 0xf > 5',
  'ip[2:2] > 200',
  'ip[2:2] / 4 > 10',
  'ip[2:2] % 7 = 3',
  'ip[2:2] * 3 > 150',
  'ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2) > 0',
  'udp[4:2] ^ 0xff = 0xe7',
  'udp[8:4] = 0x01020304',
  'udp[8] = 1 and udp[300] = 0',
  'ether host 02:00:00:00:00:01',
  'ether[12:2] = 0x0800',
  'ether broadcast or ether multicast',
  'tcp or udp',
  'ip[2:2] > ip[8]',
  'ip[2:2] >= ip[8] + ip[9]',
  'ip[8] + ip[9] = ip[1] + ip[2]',
  'udp[udp[8]] = 5',
  'ip[(ip[8] + 1) & 7] > ip[(ip[9]&3)]',
  '-ip[8] + 100 > 40',
  'ip[2:2] & 0x0f | 3 = 3',
  'udp[8] << 2 > 4',
  'udp[8] >> 1 = 0',
  'ip[2:2] / ip[8] > 1',
  'ip[2:2] % ip[8] = 0',
  'ip[2:2] * ip[8] > 3000',
  'ip[8] ^ 0x40 = 0',
  'len - 20 > 40',
  'ip[8] - 1 = ip[9] - 17',
  'udp[8:2] = udp[10:2] - 0x0e0e',
  '',
];
