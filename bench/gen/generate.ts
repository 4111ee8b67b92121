/**
 * Synthetic Retis event files: fast, deterministic, realistic.
 *
 * Produces what `retis collect -o FILE` (Retis v1.7) would write on a busy host running
 * Open vSwitch: a startup event, then one JSON event per line, many packets in flight
 * at once, each seen at several probes, with OVS upcall round trips that correlate
 * exactly the way Retis's `sort` expects (spec §3, §6). Used as benchmark input (10M+
 * events) and as test fixtures, so alongside the events it computes the ground truth
 * (FILE.truth.json) that sort / drop / upcall analyses must reproduce.
 *
 * CLI:
 *   npx tsx bench/gen/generate.ts --events N [--seed S] [--ovs-ratio R] [--drop-ratio R]
 *                                 [--clone-ratio R] -o FILE
 * Library: generateEvents(opts), expectedStats(opts), writeEventFile(opts, path),
 * class RetisEventGenerator.
 *
 * Topology (fixed; only traffic is random):
 *   - the traced host: eth0 (ifindex 2) towards LAN peers and, via a gateway MAC,
 *     internet hosts; conntrack (firewalld-like) and nftables on host traffic;
 *   - an OVS bridge with four containers (netns ns01..ns04, veth pairs
 *     veth-ns0X (in the netns) <-> veth-ns0X-ovs (OVS port X+2)) and an uplink eth1
 *     (OVS port 1) trunking VLAN 100 to two external hosts;
 *   - a service VIP DNAT-ed by OVS conntrack (ct(commit,nat(dst=...))).
 *
 * Why it is fast: every fragment that does not change per event (task, probe,
 * skb-tracking, packet, skb, netns/dev, conntrack) is rendered once, as bytes, and events
 * are byte copies of them into slabs; packets are built once per packet (checksums via
 * prefix sums, only captured bytes materialised); events are merged into time order
 * through a heap holding only packets in flight, so memory stays bounded.
 */
import { open, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ovsQueueId } from './jhash.ts';

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export interface GenOptions {
  /** Number of events after the startup line (what `retis stats` calls "Number of events"). */
  events: number;
  /** PRNG seed (uint32). Same options + seed => byte-identical output. Default 1. */
  seed?: number;
  /** Probability that a packet arrival starts an OVS upcall batch (1-3 upcalls). Default 0.05. */
  ovsRatio?: number;
  /** Probability that a packet arrival is a packet that will be dropped. Default 0.05. */
  dropRatio?: number;
  /** Probability that a host-stack packet is also cloned to a packet socket (tcpdump). Default 0.05. */
  cloneRatio?: number;
  /**
   * `retis sort --max-buffer` values to simulate exactly (series counts depend on the
   * buffer because a flushed series that later gets more events is written twice).
   * Default [1000], Retis's default.
   */
  sortBuffers?: number[];
}

export interface UpcallTruth {
  /** openvswitch:ovs_dp_upcall events. */
  total: number;
  /** Upcalls whose packet userspace executed (flow_operation exec + action_execute with queue_id). */
  executed: number;
  /** Upcalls whose queue_userspace_packet returned -EAGAIN (no recv_upcall follows). */
  enqueue_failed: number;
  /** Upcalls received by ovs-vswitchd (recv_upcall) but never acted upon (no flow_operation). */
  lost_in_userspace: number;
}

export interface Truth {
  generator: string;
  options: { events: number; seed: number; ovs_ratio: number; drop_ratio: number; clone_ratio: number };
  /** Events after the startup line. */
  events: number;
  /** Lines in the file (events + the startup event). */
  lines: number;
  /** Distinct skb tracking ids ((timestamp << 64) | orig_head) in the file. */
  packets: number;
  /** Skbs re-injected by OVS userspace (new tracking id, aliased into the upcalled packet's series). */
  reinjected: number;
  /** Extra skbs sharing a tracking id with another skb (clones, different `skb` address). */
  clones: number;
  /**
   * Series `retis sort --max-buffer 0` (unbounded) produces: the startup event's own
   * series + one per tracking id, re-injected OVS skbs counted in their original series.
   */
  series: number;
  /** Exact series count for each simulated `retis sort --max-buffer N` (key = N). */
  series_by_max_buffer: Record<string, number>;
  /** kfree_skb events (all carry an skb-drop section). */
  drops: number;
  /** Keyed as `retis print` shows it: `REASON` or `subsys/REASON`. */
  drops_by_reason: Record<string, number>;
  upcalls: UpcallTruth;
  /** Events per probe, keyed like `retis stats`: `{probe_type}/{symbol}`. */
  probes: Record<string, number>;
  first_timestamp: number;
  last_timestamp: number;
}

const GENERATOR_ID = 'retis-ts bench/gen/generate.ts v1';

// ---------------------------------------------------------------------------
// PRNG: sfc32 (small, fast, good statistical quality, trivially seedable)
// ---------------------------------------------------------------------------

class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  float(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(arr: readonly T[]): T {
    return arr[Math.floor(this.float() * arr.length)];
  }

  /** Index drawn with the given (unnormalised) weights. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let r = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i];
      if (r < 0) return i;
    }
    return weights.length - 1;
  }

  /** Exponentially distributed integer with the given mean (>= 1). */
  exp(mean: number): number {
    return 1 + Math.floor(-Math.log(1 - this.float()) * mean);
  }
}

// ---------------------------------------------------------------------------
// Static topology: tasks, probes, interfaces, hosts
// ---------------------------------------------------------------------------

const NCPU = 8;
const CAPTURE = 255; // PACKET_CAPTURE_SIZE in Retis's skb hook
const TCP_MSS4 = 1448; // 1500 - 20 (IP) - 32 (TCP with timestamps)
const TCP_MSS6 = 1428;

/** Latin-1 bytes of an ASCII string (the generator emits only ASCII). */
function bytes(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}
const NONE: Uint8Array = new Uint8Array(0);

/**
 * Events are rendered straight to bytes, in slabs: building each line as a JS string
 * and then encoding it cost more than generating it (V8 ropes are slow to flatten), so
 * cached fragments are kept as bytes and numbers are printed digit by digit.
 */
const SLAB = 1 << 20;
/** Upper bound of one rendered event (the largest are ~1.6 KB). */
const MAX_EVENT = 8192;
class Arena {
  buf: Buffer = Buffer.allocUnsafe(SLAB);
  off = 0;

  /** Starts an event: makes sure it fits in the current slab, returns its start. */
  begin(): number {
    if (this.off + MAX_EVENT > this.buf.length) {
      this.buf = Buffer.allocUnsafe(SLAB);
      this.off = 0;
    }
    return this.off;
  }

  put(b: Uint8Array): void {
    this.buf.set(b, this.off);
    this.off += b.length;
  }

  /** Per-event strings (OVS/nft sections), ASCII. */
  str(s: string): void {
    if (s.length > MAX_EVENT / 2) throw new Error('internal: event fragment too long');
    this.off += this.buf.write(s, this.off, 'latin1');
  }

  /** Closes the event object and its line. */
  end(): void {
    this.buf[this.off++] = 0x7d; // '}'
    this.buf[this.off++] = 0x0a; // '\n'
  }

  /** A safe integer in decimal. */
  num(v: number): void {
    const b = this.buf;
    if (v < 0) {
      b[this.off++] = 45; // '-'
      v = -v;
    }
    let len = 1;
    for (let p = 10; p <= v; p *= 10) len++;
    let o = this.off + len;
    this.off = o;
    while (v >= 10) {
      const q = Math.floor(v / 10);
      b[--o] = 48 + (v - q * 10);
      v = q;
    }
    b[--o] = 48 + v;
  }
}

const B_COMMON = bytes('{"common":{"timestamp":');
const B_OVS = bytes('},"ovs":');

/**
 * A task, pre-rendered per CPU with the glue around it: everything between the
 * timestamp and the kernel/userspace section is one copy per event.
 */
interface Task {
  /** Per smp_id: `,"smp_id":N,"task":{...}},"kernel":` */
  kern: Uint8Array[];
  /** Per smp_id: `,"smp_id":N,"task":{...}},"userspace":` */
  user: Uint8Array[];
}
function task(pid: number, tgid: number, comm: string): Task {
  const t = `"task":{"pid":${pid},"tgid":${tgid},"comm":${JSON.stringify(comm)}}}`;
  const cpus = Array.from({ length: NCPU }, (_, c) => c);
  return {
    kern: cpus.map((c) => bytes(`,"smp_id":${c},${t},"kernel":`)),
    user: cpus.map((c) => bytes(`,"smp_id":${c},${t},"userspace":`)),
  };
}

const SWAPPER: Task[] = Array.from({ length: NCPU }, (_, c) => task(0, 0, `swapper/${c}`));
const KSOFTIRQD: Task[] = Array.from({ length: NCPU }, (_, c) => task(15 + 7 * c, 15 + 7 * c, `ksoftirqd/${c}`));
const TCPDUMP = task(7731, 7731, 'tcpdump');
const OVS_TGID = 1210;
const HANDLERS: { task: Task; tid: number }[] = Array.from({ length: NCPU }, (_, i) => ({
  task: task(1241 + i, OVS_TGID, `handler${i + 1}`),
  tid: 1241 + i,
}));

/** Probes. `name` is the `retis stats` key; `json` the rendered kernel/userspace section start. */
interface Probe {
  name: string;
  json: Uint8Array;
}
function kprobe(type: string, symbol: string): Probe {
  // trailing comma: skb-tracking always follows the kernel section
  return { name: `${type}/${symbol}`, json: bytes(`{"symbol":"${symbol}","probe_type":"${type}"},`) };
}
const PROBES: Probe[] = [];
function defProbe(p: Probe): number {
  PROBES.push(p);
  return PROBES.length - 1;
}
const P_RECV = defProbe(kprobe('raw_tracepoint', 'net:netif_receive_skb'));
const P_XMIT = defProbe(kprobe('raw_tracepoint', 'net:net_dev_start_xmit'));
const P_IP_RCV = defProbe(kprobe('kprobe', 'ip_rcv'));
const P_IPV6_RCV = defProbe(kprobe('kprobe', 'ipv6_rcv'));
const P_TCP4 = defProbe(kprobe('kprobe', 'tcp_v4_rcv'));
const P_TCP6 = defProbe(kprobe('kprobe', 'tcp_v6_rcv'));
const P_UDP4 = defProbe(kprobe('kprobe', 'udp_rcv'));
const P_UDP6 = defProbe(kprobe('kprobe', 'udpv6_rcv'));
const P_CONSUME = defProbe(kprobe('raw_tracepoint', 'skb:consume_skb'));
const P_KFREE = defProbe(kprobe('raw_tracepoint', 'skb:kfree_skb'));
const P_NFT = defProbe(kprobe('kprobe', '__nft_trace_packet'));
const P_UPCALL = defProbe(kprobe('raw_tracepoint', 'openvswitch:ovs_dp_upcall'));
const P_ENQUEUE = defProbe(kprobe('kretprobe', 'queue_userspace_packet'));
const P_UPCALL_RET = defProbe(kprobe('kretprobe', 'ovs_dp_upcall'));
const P_EXEC = defProbe(kprobe('raw_tracepoint', 'openvswitch:ovs_do_execute_action'));
const P_LOOKUP = defProbe(kprobe('kretprobe', 'ovs_flow_tbl_lookup_stats'));

// USDT probes of ovs-vswitchd: the userspace section carries the probe address (ip), the
// binary and pid (= tgid) / tid, in UserEvent's field order.
function usdt(symbol: string, ip: number): Probe {
  return {
    name: `usdt/${symbol}`,
    json: bytes(`{"probe_type":"usdt","symbol":"${symbol}","ip":${ip},"path":"/usr/sbin/ovs-vswitchd","pid":${OVS_TGID},"tid":`),
  };
}
const U_RECV = defProbe(usdt('dpif_recv:recv_upcall', 0x55c4a3f2b6e4));
const U_PUT = defProbe(usdt('dpif_netlink_operate__:op_flow_put', 0x55c4a3fd1a3c));
const U_EXEC = defProbe(usdt('dpif_netlink_operate__:op_flow_execute', 0x55c4a3fd1b90));

interface Iface {
  ifindex: number;
  /** `"netns":{...},"dev":{"name":..,"ifindex":N` — closed by devFrag(). */
  nsdev: string;
  /** Rendered `,"netns":{..},"dev":{..}`, per rx_ifindex (-1: none). */
  frags: Map<number, Uint8Array>;
}
function iface(name: string, ifindex: number, cookie: number, inum: number): Iface {
  return { ifindex, nsdev: `"netns":{"cookie":${cookie},"inum":${inum}},"dev":{"name":"${name}","ifindex":${ifindex}`, frags: new Map() };
}
/** The netns and dev sections of an interface, with rx_ifindex when the skb has one. */
function devFrag(i: Iface, rx?: number): Uint8Array {
  const key = rx ?? -1;
  let f = i.frags.get(key);
  if (f === undefined) {
    f = bytes(rx === undefined ? `,${i.nsdev}}` : `,${i.nsdev},"rx_ifindex":${rx}}`);
    i.frags.set(key, f);
  }
  return f;
}
const INIT_INUM = 4026531840;
const ETH0 = iface('eth0', 2, 1, INIT_INUM);
const ETH1 = iface('eth1', 3, 1, INIT_INUM);
const OVS_UPLINK_PORT = 1;
const VLAN_ID = 100;
const VLAN_ACCEL = `"vlan_accel":{"proto":33024,"pcp":0,"dei":false,"vid":${VLAN_ID}},`;

function mac(s: string): Uint8Array {
  return Uint8Array.from(s.split(':').map((x) => parseInt(x, 16)));
}
function ip4(s: string): Uint8Array {
  return Uint8Array.from(s.split('.').map((x) => parseInt(x, 10)));
}
/** Parses a (canonical, possibly `::`-compressed) IPv6 address. */
function ip6(s: string): Uint8Array {
  const [head, tail] = s.includes('::') ? s.split('::') : [s, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

type HostKind = 'local' | 'remote' | 'container' | 'external';
interface Host {
  kind: HostKind;
  mac: Uint8Array;
  /** MAC this host's frames carry on our link (the gateway's for internet hosts). */
  l2: Uint8Array;
  ip4: Uint8Array;
  ip6: Uint8Array;
  ip4s: string;
  ip6s: string;
  /** TTL / hop limit of its packets when they reach us. */
  ttl: number;
  apps: Task[];
  veth?: Iface;
  ovsIf?: Iface;
  ovsPort?: number;
}
function host(kind: HostKind, macS: string, v4: string, v6: string, ttl: number, apps: Task[], l2?: string): Host {
  const m = mac(macS);
  return { kind, mac: m, l2: l2 ? mac(l2) : m, ip4: ip4(v4), ip6: ip6(v6), ip4s: v4, ip6s: v6, ttl, apps };
}

const LOCAL = host('local', '52:54:00:3b:9c:10', '10.0.0.10', '2001:db8:1::10', 64, [
  task(1532, 1532, 'sshd'),
  task(2210, 2208, 'nginx'),
  task(98765, 98765, 'curl'),
  task(4322, 4321, 'iperf3'),
  task(812, 812, 'chronyd'),
  task(745, 745, 'systemd-resolve'),
  task(11330, 11330, 'ping'),
]);
const GW_MAC = '52:54:00:00:00:01';
const REMOTES: Host[] = [
  host('remote', '52:54:00:a1:00:21', '10.0.0.21', '2001:db8:1::21', 64, []),
  host('remote', '52:54:00:a1:00:22', '10.0.0.22', '2001:db8:1::22', 64, []),
  host('remote', '52:54:00:a1:00:23', '10.0.0.23', '2001:db8:1::23', 64, []),
  host('remote', '00:00:00:00:00:00', '93.184.216.34', '2606:2800:220:1::248', 53, [], GW_MAC),
  host('remote', '00:00:00:00:00:00', '140.82.112.4', '2606:4700::6810:84e5', 49, [], GW_MAC),
];
/** Destination of OTHERHOST drops: unicast frames for someone else seen in promiscuous mode. */
const OTHER = host('remote', '52:54:00:de:ad:99', '10.0.0.99', '2001:db8:1::99', 64, []);

const CONTAINER_APPS: Task[][] = [
  [task(3301, 3301, 'redis-server'), task(3305, 3305, 'curl')],
  [task(3402, 3402, 'postgres'), task(3410, 3410, 'ping')],
  [task(3510, 3510, 'python3'), task(3518, 3518, 'nc')],
  [task(3620, 3620, 'nginx'), task(3633, 3633, 'dig')],
];
const NS_INUMS = [4026532741, 4026532867, 4026532993, 4026533119];
const CONTAINERS: Host[] = CONTAINER_APPS.map((apps, i) => {
  const h = host(
    'container',
    `0a:58:c0:a8:7d:${(0x0a + i).toString(16).padStart(2, '0')}`,
    `192.168.125.${10 + i}`,
    `fd00:125::${(0x10 + i).toString(16)}`,
    64,
    apps,
  );
  h.ovsIf = iface(`veth-ns0${i + 1}-ovs`, 10 + 2 * i, 1, INIT_INUM);
  h.veth = iface(`veth-ns0${i + 1}`, 11 + 2 * i, 2 + i, NS_INUMS[i]);
  h.ovsPort = 3 + i;
  return h;
});
const EXTERNALS: Host[] = [
  host('external', '3c:fd:fe:9e:7a:05', '172.16.100.5', 'fd00:172:16::5', 64, []),
  host('external', '3c:fd:fe:9e:7a:06', '172.16.100.6', 'fd00:172:16::6', 64, []),
];
/** Service VIP that OVS conntrack DNATs to a backend container. */
const VIP = { ip4: ip4('10.96.0.10'), ip6: ip6('fd00:96::10'), ip4s: '10.96.0.10', ip6s: 'fd00:96::10', port: 80 };

// ---------------------------------------------------------------------------
// Kernel-ish addresses (u64 > 2^53, rendered exactly as decimal strings)
// ---------------------------------------------------------------------------

/**
 * A u64 base split as hi * 1e10 + lo so that `base + offset` (offset < 2^35) can be
 * printed exactly with plain doubles: BigInt arithmetic per skb was a visible cost.
 */
interface U64Base {
  lo: number;
  /** Decimal text of the high part for each possible carry (offsets < 2^35 < 4e10). */
  hiText: string[];
}
function u64Base(v: bigint): U64Base {
  const hi = Number(v / 10_000_000_000n);
  return { lo: Number(v % 10_000_000_000n), hiText: [0, 1, 2, 3, 4].map((c) => String(hi + c)) };
}
/** Exact decimal text of base + off (0 <= off < 2^35). */
function u64Str(b: U64Base, off: number): string {
  let lo = b.lo + off;
  let carry = 0;
  while (lo >= 1e10) {
    lo -= 1e10;
    carry++;
  }
  const ls = String(lo);
  return b.hiText[carry] + '0000000000'.slice(ls.length) + ls;
}
const HEAD_BASE = u64Base(0xffff888100000000n); // skb data heads: kmalloc'ed, 1 KiB steps
const SKB_BASE = u64Base(0xffff888600000000n); // struct sk_buff objects (skbuff_head_cache), 256 B steps
const FLOW_BASE = u64Base(0xffff888700000000n); // OVS sw_flow / sw_flow_actions objects

/** A bijection of [0, 2^24): consecutive counters -> scattered but never-repeating slots. */
function perm24(x: number): number {
  let y = Math.imul(x & 0xffffff, 0x2c1b3c6d | 1) & 0xffffff;
  y ^= y >>> 12;
  y = Math.imul(y, 0x297a2d39 | 1) & 0xffffff;
  y ^= y >>> 11;
  return y;
}

// ---------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_ICMP = 1; // ICMP or ICMPv6, depending on the flow's family

/** A packet as Retis captures it: bytes from the Ethernet header, at most 255 of them. */
interface Pkt {
  /** The captured bytes; only kept when asked for (upcalls hash them into queue_id). */
  bytes: Uint8Array | null;
  len: number;
  l3: number;
  l4: number;
  /** Rendered `,"packet":{...},"skb":` (the skb section always follows the packet). */
  frag: string;
}

type CsumMode = 'full' | 'partial' | 'bad';

interface FrameSpec {
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  srcIp: Uint8Array;
  dstIp: Uint8Array;
  vlan: number;
  v6: boolean;
  ttl: number;
  ipId: number;
  label: number;
  proto: number;
  sport: number;
  dport: number;
  flags: number;
  seq: number;
  ack: number;
  tsval: number;
  tsecr: number;
  icmpType: number;
  icmpId: number;
  icmpSeq: number;
  stampSec: number;
  stampUsec: number;
  payload: number;
  payloadOff: number;
  csum: CsumMode;
  /** Paged (GSO) packet: only the headers are in the linear area, so only they are captured. */
  headersOnly: boolean;
  /** Bytes the IPv4/IPv6 length field claims beyond the real packet (PKT_TOO_SMALL). */
  ipLenExtra: number;
  keepBytes: boolean;
}

// Frames are assembled in one reusable buffer: a typed-array allocation per packet
// showed up in profiles, and only upcalled packets need their bytes afterwards.
const FRAME_BUF = Buffer.alloc(2048);

function sum16(b: Uint8Array, off: number, len: number, acc: number): number {
  const end = off + (len & ~1);
  for (let i = off; i < end; i += 2) acc += (b[i] << 8) | b[i + 1];
  if (len & 1) acc += b[off + len - 1] << 8;
  return acc;
}
function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 65536);
  return acc;
}
function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
function put32le(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

function tcpHeaderLen(flags: number): number {
  // Linux SYNs carry mss,sackOK,TS,nop,wscale (20 bytes); later segments nop,nop,TS (12).
  return flags & TCP_SYN ? 40 : 32;
}

/**
 * TCP/UDP payload bytes come from one seeded random table; prefix sums of its 16-bit
 * words (for both byte alignments) give any payload's checksum contribution in O(1),
 * so a 1500-byte packet costs no more to build than the 255 bytes Retis captures.
 */
class PayloadTable {
  readonly bytes: Buffer;
  private readonly prefix: [Float64Array, Float64Array];

  constructor(rng: Rng, size: number) {
    this.bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4) put32(this.bytes, i, rng.u32());
    const half = size >> 1;
    this.prefix = [new Float64Array(half), new Float64Array(half)];
    for (let par = 0; par < 2; par++) {
      const pf = this.prefix[par];
      let acc = 0;
      for (let k = 0; k + 1 < half; k++) {
        const j = par + 2 * k;
        acc += (this.bytes[j] << 8) | this.bytes[j + 1];
        pf[k + 1] = acc;
      }
    }
  }

  /** Offset where an n-byte payload (n <= 2048) keyed by `key` starts. */
  start(key: number): number {
    return key % (this.bytes.length - 4096);
  }

  /** Sum of the big-endian 16-bit words of bytes[start, start+n) (odd tail zero-padded). */
  sum16(start: number, n: number): number {
    if (n > 4096) throw new Error('internal: payload too long for a full checksum');
    const par = start & 1;
    const k0 = (start - par) >> 1;
    const pf = this.prefix[par];
    let acc = pf[k0 + (n >> 1)] - pf[k0];
    if (n & 1) acc += this.bytes[start + n - 1] << 8;
    return acc;
  }
}

/**
 * Builds a real Ethernet frame (optionally 802.1Q-tagged) with correct IPv4 header
 * checksum and L4 checksum: complete for packets that crossed a wire, pseudo-header
 * only (what the kernel leaves for offload) for CHECKSUM_PARTIAL ones, corrupted for
 * TCP_CSUM drops. Only the bytes Retis would capture are materialised.
 */
function buildFrame(sp: FrameSpec, table: PayloadTable): Pkt {
  const l2 = sp.vlan ? 18 : 14;
  const l3h = sp.v6 ? 40 : 20;
  const l4h = sp.proto === PROTO_TCP ? tcpHeaderLen(sp.flags) : 8;
  const l4 = l4h + sp.payload;
  const l3 = l3h + l4;
  const len = l2 + l3;
  const hdr = l2 + l3h + l4h;
  const phys = sp.headersOnly ? hdr : Math.min(len, CAPTURE);
  const b = FRAME_BUF;
  b.fill(0, 0, hdr); // checksum, urgent pointer, TOS... must start at zero
  const payStart = table.start(sp.payloadOff);

  // Ethernet
  b.set(sp.dstMac, 0);
  b.set(sp.srcMac, 6);
  let o = 12;
  if (sp.vlan) {
    put16(b, 12, 0x8100);
    put16(b, 14, sp.vlan & 0x0fff);
    o = 16;
  }
  put16(b, o, sp.v6 ? 0x86dd : 0x0800);
  o += 2;

  // IP
  const l4proto = sp.proto === PROTO_ICMP ? (sp.v6 ? 58 : 1) : sp.proto;
  if (sp.v6) {
    put32(b, o, (6 << 28) | (sp.label & 0xfffff));
    put16(b, o + 4, l4 + sp.ipLenExtra);
    b[o + 6] = l4proto;
    b[o + 7] = sp.ttl;
    b.set(sp.srcIp, o + 8);
    b.set(sp.dstIp, o + 24);
  } else {
    b[o] = 0x45;
    b[o + 1] = 0;
    put16(b, o + 2, l3 + sp.ipLenExtra);
    put16(b, o + 4, sp.ipId);
    put16(b, o + 6, sp.proto === PROTO_UDP && sp.payload > 1400 ? 0 : 0x4000); // DF
    b[o + 8] = sp.ttl;
    b[o + 9] = l4proto;
    b.set(sp.srcIp, o + 12);
    b.set(sp.dstIp, o + 16);
    put16(b, o + 10, 0xffff ^ fold(sum16(b, o, 20, 0)));
  }
  o += l3h;

  // L4 header
  const l4Off = o;
  let csumOff: number;
  if (phys < l2 + l3h + l4h) throw new Error('internal: frame shorter than its headers');
  if (sp.proto === PROTO_TCP) {
    put16(b, o, sp.sport);
    put16(b, o + 2, sp.dport);
    put32(b, o + 4, sp.seq);
    put32(b, o + 8, sp.ack);
    b[o + 12] = (l4h / 4) << 4;
    b[o + 13] = sp.flags;
    put16(b, o + 14, sp.flags & TCP_SYN ? (sp.v6 ? 64800 : 64240) : 502);
    csumOff = o + 16;
    const p = o + 20;
    if (sp.flags & TCP_SYN) {
      put32(b, p, 0x02040000 | (sp.v6 ? 1440 : 1460)); // mss
      put32(b, p + 4, 0x0402080a); // sackOK, TS
      put32(b, p + 8, sp.tsval);
      put32(b, p + 12, sp.tsecr);
      put32(b, p + 16, 0x01030307); // nop, wscale 7
    } else {
      put32(b, p, 0x0101080a); // nop, nop, TS
      put32(b, p + 4, sp.tsval);
      put32(b, p + 8, sp.tsecr);
    }
  } else if (sp.proto === PROTO_UDP) {
    put16(b, o, sp.sport);
    put16(b, o + 2, sp.dport);
    put16(b, o + 4, l4);
    csumOff = o + 6;
  } else {
    b[o] = sp.icmpType;
    b[o + 1] = 0;
    put16(b, o + 4, sp.icmpId);
    put16(b, o + 6, sp.icmpSeq);
    csumOff = o + 2;
  }
  o += l4h;

  // Payload: ping's struct timeval + 0x10.. pattern, else bytes from the seeded table.
  const n = phys - o;
  if (sp.proto === PROTO_ICMP) {
    if (len > CAPTURE) throw new Error('internal: ICMP frames are built whole');
    for (let i = 0; i < n; i++) b[o + i] = i < 16 ? 0 : (i + 0x10 - 16) & 0xff;
    if (n >= 16) {
      put32le(b, o, sp.stampSec);
      put32le(b, o + 8, sp.stampUsec);
    }
  } else if (n > 0) {
    table.bytes.copy(b, o, payStart, payStart + n); // no view allocation, unlike subarray()
  }

  // L4 checksum
  let pseudo = 0;
  if (sp.proto !== PROTO_ICMP || sp.v6) {
    pseudo = sum16(sp.srcIp, 0, sp.srcIp.length, 0);
    pseudo = sum16(sp.dstIp, 0, sp.dstIp.length, pseudo);
    pseudo += l4proto + l4;
  }
  let check: number;
  if (sp.csum === 'partial' && sp.proto !== PROTO_ICMP) {
    check = fold(pseudo); // what tcp_v4_send_check & co leave for the NIC
  } else if (sp.proto === PROTO_ICMP) {
    check = 0xffff ^ fold(sum16(b, l4Off, l4, pseudo));
  } else {
    // Header words from the frame, payload words from the table's prefix sums (the
    // L4 header length is even, so payload words align with the segment's words).
    check = 0xffff ^ fold(table.sum16(payStart, sp.payload) + sum16(b, l4Off, l4h, pseudo));
    if (sp.proto === PROTO_UDP && check === 0) check = 0xffff;
    if (sp.csum === 'bad') check ^= 0x5a5a;
  }
  put16(b, csumOff, check);

  const cap = Math.min(phys, CAPTURE);
  const data = b.toString('base64', 0, cap);
  return {
    bytes: sp.keepBytes ? Uint8Array.prototype.slice.call(b, 0, cap) : null,
    len,
    l3,
    l4,
    frag: `,"packet":{"len":${len},"capture_len":${cap},"data":"${data}"},"skb":`,
  };
}

// ---------------------------------------------------------------------------
// Flows and their packets
// ---------------------------------------------------------------------------

type Cat = 'host' | 'ovs' | 'uplink';

interface Ep {
  host: Host;
  port: number;
  app: Task;
  cpu: number;
  seq: number;
  tsval: number;
  ipId: number;
}

interface DpFlow {
  flow: string;
  sfActs: string;
  ufid: string;
}
const NO_DP_FLOW: DpFlow = { flow: '0', sfActs: '0', ufid: '[0,0,0,0]' };
const NO_DP: [DpFlow, DpFlow] = [NO_DP_FLOW, NO_DP_FLOW];

interface Flow {
  cat: Cat;
  proto: number;
  v6: boolean;
  c: Ep;
  s: Ep;
  /** DNAT service flow (OVS ct with nat): the client talks to VIP:80. */
  svc: boolean;
  /** Host conntrack (firewalld-like) on host flows. */
  hostCt: boolean;
  /** OVS conntrack: ct(zone) + recirc on both directions. */
  ovsCt: { zone: number; recirc: [number, number] } | null;
  /** Rendered conntrack tuple part `"zone_id":..,"zone_dir":..,"orig":..,"reply":..`. */
  ctBase: string;
  n: number;
  life: number;
  label: [number, number];
  rss: [number, number];
  dp: [DpFlow, DpFlow];
  dpRecirc: [DpFlow, DpFlow];
  icmpId: number;
  icmpSeq: number;
  seenReply: boolean;
  done: boolean;
  /** Key size ovs-vswitchd reports for this flow's upcalls. */
  keySize: number;
}

/** One packet of a flow, as planned by the flow's little state machine. */
interface Plan {
  dir: 0 | 1;
  flags: number;
  payload: number;
  seq: number;
  ack: number;
  tsval: number;
  tsecr: number;
  ipId: number;
  icmpSeq: number;
  ctState: string;
  ctStatus: number;
  protoState: string;
  /** Rendered ct section, once needed. */
  ct: Uint8Array;
}

// ---------------------------------------------------------------------------
// Pending events, heap, sort simulation
// ---------------------------------------------------------------------------

/** The sort's TrackingInfo identity: BTreeMap key (skb.timestamp, orig_head). */
interface TrackInfo {
  ts: number;
  /** orig_head index: heads are HEAD_BASE + idx * 1024, so ordering by idx is exact. */
  head: number;
  /** Events buffered in each SortSim's live series for this TrackInfo (0 = none). */
  live: number[];
}

interface Pending {
  /** Merge key: timestamp + the CPU's delivery lag. */
  key: number;
  /** Commit order, breaks key ties deterministically. */
  seq: number;
  /** The rendered line, newline included: buf[start, end). */
  buf: Buffer;
  start: number;
  end: number;
  ti: TrackInfo | null;
  ts: number;
  probe: number;
}

function before(a: Pending, b: Pending): boolean {
  return a.key < b.key || (a.key === b.key && a.seq < b.seq);
}

/** A binary min-heap under `less`. */
class Heap<T> {
  private h: T[] = [];
  constructor(private readonly less: (a: T, b: T) => boolean) {}
  get size(): number {
    return this.h.length;
  }
  top(): T {
    return this.h[0] as T;
  }
  push(e: T): void {
    const h = this.h;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(e, h[p] as T)) break;
      h[i] = h[p] as T;
      i = p;
    }
    h[i] = e;
  }
  pop(): T {
    const h = this.h;
    const top = h[0] as T;
    const last = h.pop() as T;
    const n = h.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && this.less(h[r] as T, h[l] as T) ? r : l;
        if (!this.less(h[m] as T, last)) break;
        h[i] = h[m] as T;
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}

function tiLess(a: TrackInfo, b: TrackInfo): boolean {
  return a.ts < b.ts || (a.ts === b.ts && a.head < b.head);
}

/**
 * Exact replica of what `retis sort --max-buffer N` does to series boundaries
 * (retis/src/process/series.rs + cli/sort.rs): events join the buffered series of their
 * TrackingInfo; while >= N events are buffered the oldest series (by skb.timestamp,
 * orig_head) or untracked event is flushed. A flushed series that receives more
 * events later starts a new one, so the series count depends on N.
 */
class SortSim {
  private heap = new Heap<TrackInfo>(tiLess);
  private untracked: number[] = [];
  private uHead = 0;
  private n = 0;
  series = 0;

  /** `slot`: this simulation's index into TrackInfo.live. */
  constructor(
    private readonly maxBuffer: number,
    private readonly slot: number,
  ) {}

  add(ti: TrackInfo | null, ts: number): void {
    if (ti) {
      if (ti.live[this.slot]++ === 0) this.heap.push(ti);
    } else {
      this.untracked.push(ts);
    }
    this.n++;
    if (this.maxBuffer !== 0) while (this.n >= this.maxBuffer) this.popOldest();
  }

  finish(): number {
    while (this.n > 0) this.popOldest();
    return this.series;
  }

  private popOldest(): void {
    const hasU = this.uHead < this.untracked.length;
    if (this.heap.size > 0 && (!hasU || this.heap.top().ts < this.untracked[this.uHead])) {
      const ti = this.heap.pop();
      this.n -= ti.live[this.slot];
      ti.live[this.slot] = 0;
    } else {
      this.uHead++;
      this.n--;
      if (this.uHead > 4096 && this.uHead * 2 > this.untracked.length) {
        this.untracked = this.untracked.slice(this.uHead);
        this.uHead = 0;
      }
    }
    this.series++;
  }
}

// ---------------------------------------------------------------------------
// Journeys: all events of one packet (or one upcall batch), built at once
// ---------------------------------------------------------------------------

/** Mutable per-skb state rendered into each event's skb-tracking and skb sections. */
interface Skb {
  /** `"skb-tracking":{...}` text (kept to derive clones) and its bytes. */
  trkText: string;
  trk: Uint8Array;
  ti: TrackInfo;
  hash: number;
  ipSummed: number;
  csum: number;
  cloned: boolean;
  fclone: number;
  dataref: number;
  dataLen: number;
  vlan: string;
  gso: string;
  /** Last rendered packet + skb sections and the state they were rendered from (see skbSec). */
  memo: Uint8Array;
  mPkt: Pkt | null;
  mLen: number;
  mHash: number;
  mIps: number;
  mCsum: number;
  mRef: number;
  mVlan: string;
}

type UpcallOutcome = 'executed' | 'enqueue_failed' | 'lost_in_userspace';

class Journey {
  evs: Pending[] = [];
  drops: string[] = [];
  upcalls: UpcallOutcome[] = [];
  newIds = 0;
  reinjected = 0;
  clones = 0;
}

type DropKind = 'NO_SOCKET' | 'NETFILTER_DROP' | 'TCP_CSUM' | 'PKT_TOO_SMALL' | 'OTHERHOST' | 'OVS_DROP_LAST_ACTION';
const DROP_KINDS: DropKind[] = ['NO_SOCKET', 'NETFILTER_DROP', 'TCP_CSUM', 'PKT_TOO_SMALL', 'OTHERHOST', 'OVS_DROP_LAST_ACTION'];
const DROP_WEIGHTS = [25, 25, 10, 10, 15, 15];
const DROP_SECTIONS = new Map<DropKind, Uint8Array>(
  DROP_KINDS.map((k) => [
    k,
    bytes(k === 'OVS_DROP_LAST_ACTION' ? `,"skb-drop":{"subsys":"openvswitch","drop_reason":"${k}"}` : `,"skb-drop":{"drop_reason":"${k}"}`),
  ]),
);
function dropSection(k: DropKind): Uint8Array {
  return DROP_SECTIONS.get(k) as Uint8Array;
}
function dropKey(k: DropKind): string {
  return k === 'OVS_DROP_LAST_ACTION' ? `openvswitch/${k}` : k;
}

// Conntrack status bits (include/uapi/linux/netfilter/nf_conntrack_common.h).
const IPS_SEEN_REPLY = 0x2;
const IPS_ASSURED = 0x4;
const IPS_CONFIRMED = 0x8;
const IPS_DST_NAT = 0x20;
const IPS_SRC_NAT_DONE = 0x80;
const IPS_DST_NAT_DONE = 0x100;

// OVS ct action flags (retis-events ovs.rs R_OVS_CT_*).
const CT_COMMIT = 1 << 0;
const CT_IP4 = 1 << 2;
const CT_IP6 = 1 << 3;
const CT_NAT = 1 << 4;
const CT_NAT_DST = 1 << 6;
const CT_RANGE_MAP_IPS = 1 << 7;
const CT_RANGE_PROTO = 1 << 8;

// ---------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------

interface Resolved {
  events: number;
  seed: number;
  ovsRatio: number;
  dropRatio: number;
  cloneRatio: number;
  sortBuffers: number[];
}

function resolve(o: GenOptions): Resolved {
  const r: Resolved = {
    events: o.events,
    seed: (o.seed ?? 1) >>> 0,
    ovsRatio: o.ovsRatio ?? 0.05,
    dropRatio: o.dropRatio ?? 0.05,
    cloneRatio: o.cloneRatio ?? 0.05,
    sortBuffers: o.sortBuffers ?? [1000],
  };
  if (!Number.isInteger(r.events) || r.events < 0) throw new Error(`events must be a non-negative integer (got ${o.events})`);
  for (const [k, v] of [['ovs-ratio', r.ovsRatio], ['drop-ratio', r.dropRatio], ['clone-ratio', r.cloneRatio]] as const) {
    if (!(v >= 0 && v <= 1)) throw new Error(`${k} must be in [0, 1] (got ${v})`);
  }
  if (r.ovsRatio + r.dropRatio > 1) throw new Error('ovs-ratio + drop-ratio must not exceed 1');
  for (const b of r.sortBuffers) if (!Number.isInteger(b) || b < 0) throw new Error(`bad sort buffer ${b}`);
  return r;
}

/** Longest time between an upcall's enqueue and its last correlated event (generous). */
const MAX_UPCALL_SPAN_NS = 5_000_000;

export class RetisEventGenerator {
  private readonly o: Resolved;
  private readonly rng: Rng;
  private readonly payload: PayloadTable;
  private readonly lag: number[];
  private readonly portIds: number[];
  private readonly startupTs: number;
  private readonly offsetSec: number;
  private readonly offsetNsec: number;

  private heap = new Heap<Pending>(before);
  private arena = new Arena();
  private seq = 0;
  private committed = 0;
  private headCtr: number;
  private skbCtr: number;
  private flowCtr: number;
  private nextStart: number;
  private pools: Record<Cat, Flow[]>;
  /** queue_id -> [first enqueue ts, last correlated ts] of upcalls still relevant to the sort. */
  private inflightQ = new Map<number, [number, number]>();
  private journeys = 0;

  // truth
  private packets = 0;
  private reinjected = 0;
  private clones = 0;
  private drops = new Map<string, number>();
  private up: UpcallTruth = { total: 0, executed: 0, enqueue_failed: 0, lost_in_userspace: 0 };
  private probeCounts = new Array<number>(PROBES.length).fill(0);
  private sims: SortSim[];
  private firstTs = -1;
  private lastTs = 0;
  private started = false;
  private finished = false;

  constructor(opts: GenOptions) {
    this.o = resolve(opts);
    this.rng = new Rng(this.o.seed);
    const rng = this.rng;
    this.payload = new PayloadTable(rng, 1 << 17);
    // Per-CPU delivery delay: events reach the file roughly in time order, with small
    // inversions between CPUs only (never within one CPU, as per-CPU order is kept).
    this.lag = Array.from({ length: NCPU }, () => rng.int(0, 1500));
    this.portIds = Array.from({ length: NCPU }, () => rng.int(0x80000000, 0xfffffff0));
    this.startupTs = 30_000_000_000_000 + rng.int(0, 2_000_000_000) * 1000 + rng.int(0, 999);
    this.offsetSec = 1_742_000_000 + rng.int(0, 30_000_000);
    this.offsetNsec = rng.int(0, 999_999) * 1000;
    this.nextStart = this.startupTs + rng.int(50_000_000, 400_000_000);
    this.headCtr = rng.int(0, 0xffffff);
    this.skbCtr = rng.int(0, 0xffffff);
    this.flowCtr = rng.int(0, 0xffffff);
    this.pools = { host: [], ovs: [], uplink: [] };
    for (let i = 0; i < 48; i++) this.pools.host.push(this.newFlow('host'));
    for (let i = 0; i < 24; i++) this.pools.ovs.push(this.newFlow('ovs'));
    for (let i = 0; i < 8; i++) this.pools.uplink.push(this.newFlow('uplink'));
    this.sims = this.o.sortBuffers.map((b, i) => new SortSim(b, i));
  }

  /** The startup event line (first line of the file). */
  startupLine(): string {
    const cmdline =
      'retis collect --allow-system-changes --ovs-track -c skb,skb-tracking,skb-drop,dev,ns,ct,nft,ovs ' +
      '--skb-sections meta,dataref,gso -p tp:net:netif_receive_skb -p tp:net:net_dev_start_xmit ' +
      '-p kprobe:ip_rcv -p kprobe:ipv6_rcv -p kprobe:tcp_v4_rcv -p kprobe:tcp_v6_rcv -p kprobe:udp_rcv ' +
      '-p kprobe:udpv6_rcv -p tp:skb:consume_skb -o retis.data';
    return (
      `{"common":{"timestamp":${this.startupTs}},"startup":{"retis_version":"v1.7.0","cmdline":${JSON.stringify(cmdline)},` +
      `"clock_monotonic_offset":{"sec":${this.offsetSec},"nsec":${this.offsetNsec}},` +
      `"machine":{"kernel_release":"6.12.0-55.9.1.el10_0.x86_64","kernel_version":"#1 SMP PREEMPT_DYNAMIC Tue Apr 29 08:49:52 EDT 2025","hardware_name":"x86_64"}}}`
    );
  }

  /**
   * All lines of the file (no trailing newlines), startup event first. Single use: a
   * generator instance produces one file (then truth() describes it).
   */
  *lines(): Generator<string> {
    yield this.startupLine();
    for (const e of this.rawEvents()) yield e.buf.toString('latin1', e.start, e.end - 1);
  }

  /**
   * The events after the startup line, in file order, as rendered bytes (newline
   * included). Internal to this module's writers; single use (shared with lines()).
   */
  *rawEvents(): Generator<Pending> {
    if (this.started) throw new Error('RetisEventGenerator events can only be iterated once');
    this.started = true;
    const N = this.o.events;
    for (const s of this.sims) s.add(null, this.startupTs);
    const heap = this.heap;
    for (;;) {
      while (this.committed < N && (heap.size === 0 || this.nextStart <= heap.top().key)) {
        this.startJourney(this.nextStart);
        // Poisson-ish arrivals, ~3 us apart on average with occasional bursts.
        this.nextStart += this.rng.chance(0.2) ? this.rng.exp(300) : this.rng.exp(3500);
      }
      if (heap.size === 0) break;
      const e = heap.pop();
      for (const s of this.sims) s.add(e.ti, e.ts);
      if (this.firstTs < 0) this.firstTs = e.ts;
      if (e.ts > this.lastTs) this.lastTs = e.ts;
      yield e;
    }
    this.finished = true;
  }

  /** Ground truth; valid once lines() has been fully consumed. */
  truth(): Truth {
    if (!this.finished) throw new Error('truth() is only available after lines() is exhausted');
    const byReason: Record<string, number> = {};
    for (const k of [...this.drops.keys()].sort()) byReason[k] = this.drops.get(k) as number;
    let drops = 0;
    for (const v of this.drops.values()) drops += v;
    const probes: Record<string, number> = {};
    PROBES.map((p, i) => [p.name, this.probeCounts[i]] as const)
      .filter(([, c]) => c > 0)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .forEach(([n, c]) => (probes[n] = c));
    const byBuf: Record<string, number> = {};
    this.o.sortBuffers.forEach((b, i) => (byBuf[String(b)] = this.sims[i].finish()));
    return {
      generator: GENERATOR_ID,
      options: {
        events: this.o.events,
        seed: this.o.seed,
        ovs_ratio: this.o.ovsRatio,
        drop_ratio: this.o.dropRatio,
        clone_ratio: this.o.cloneRatio,
      },
      events: this.committed,
      lines: this.committed + 1,
      packets: this.packets,
      reinjected: this.reinjected,
      clones: this.clones,
      series: 1 + this.packets - this.reinjected,
      series_by_max_buffer: byBuf,
      drops,
      drops_by_reason: byReason,
      upcalls: { ...this.up },
      probes,
      first_timestamp: this.firstTs < 0 ? this.startupTs : this.firstTs,
      last_timestamp: this.lastTs || this.startupTs,
    };
  }

  // ----- journey scheduling -------------------------------------------------

  private startJourney(t: number): void {
    const remaining = this.o.events - this.committed;
    let j = this.buildJourney(t);
    // Keep the event count exact without truncating a packet's story (a half-written
    // upcall chain would change the truth): swap an oversized last journey for a
    // 1-2 event transmit that fits.
    if (j.evs.length > remaining) j = this.buildFiller(t, remaining);
    this.commit(j);
  }

  private commit(j: Journey): void {
    for (const e of j.evs) {
      e.seq = this.seq++;
      this.probeCounts[e.probe]++;
      this.heap.push(e);
    }
    this.committed += j.evs.length;
    this.packets += j.newIds;
    this.reinjected += j.reinjected;
    this.clones += j.clones;
    for (const d of j.drops) this.drops.set(d, (this.drops.get(d) ?? 0) + 1);
    for (const u of j.upcalls) {
      this.up.total++;
      this.up[u]++;
    }
    if (++this.journeys % 4096 === 0) this.pruneQueueIds(j.evs.length ? j.evs[0].ts : 0);
  }

  private buildJourney(t: number): Journey {
    const rng = this.rng;
    const j = new Journey();
    const r = rng.float();
    if (r < this.o.ovsRatio) {
      this.upcallBatch(j, t);
    } else if (r < this.o.ovsRatio + this.o.dropRatio) {
      this.dropJourney(j, t, DROP_KINDS[rng.weighted(DROP_WEIGHTS)]);
    } else {
      const cat: Cat = (['host', 'ovs', 'uplink'] as const)[rng.weighted([55, 30, 15])];
      const f = this.pickFlow(cat);
      const pl = this.nextPlan(f);
      const src = pl.dir === 0 ? f.c : f.s;
      if (cat === 'host') {
        if (src.host.kind === 'local') this.hostTx(j, f, pl, t, Infinity);
        else this.hostRx(j, f, pl, t, null);
      } else if (cat === 'ovs') {
        this.ovsFast(j, f, pl, t, false);
      } else if (src.host.kind === 'container') {
        this.uplinkEgress(j, f, pl, t);
      } else {
        this.uplinkIngress(j, f, pl, t);
      }
    }
    return j;
  }

  private buildFiller(t: number, budget: number): Journey {
    const j = new Journey();
    for (;;) {
      const f = this.pickFlow('host');
      const pl = this.nextPlan(f);
      if ((pl.dir === 0 ? f.c : f.s).host.kind !== 'local') continue;
      this.hostTx(j, f, pl, t, Math.min(budget, 2));
      return j;
    }
  }

  private pruneQueueIds(now: number): void {
    for (const [q, [, last]] of this.inflightQ) if (last + MAX_UPCALL_SPAN_NS < now) this.inflightQ.delete(q);
  }

  // ----- primitives ---------------------------------------------------------

  private dt(lo: number, hi: number): number {
    return this.rng.int(lo, hi);
  }

  private softirq(cpu: number): Task {
    const r = this.rng.float();
    return r < 0.75 ? SWAPPER[cpu] : r < 0.95 ? KSOFTIRQD[cpu] : this.rng.pick(LOCAL.apps);
  }

  private newSkb(j: Journey, ts: number, alias: TrackInfo | null): Skb {
    const idx = perm24(this.headCtr++);
    const head = u64Str(HEAD_BASE, idx * 1024);
    const trkText = `"skb-tracking":{"orig_head":${head},"timestamp":${ts},"skb":${this.skbAddr()}}`;
    const s: Skb = {
      trkText,
      trk: bytes(trkText),
      ti: alias ?? { ts, head: idx, live: new Array<number>(this.sims.length).fill(0) },
      hash: 0,
      ipSummed: 0,
      csum: 0,
      cloned: false,
      fclone: 0,
      dataref: 1,
      dataLen: 0,
      vlan: '',
      gso: '',
      memo: NONE,
      mPkt: null,
      mLen: 0,
      mHash: 0,
      mIps: 0,
      mCsum: 0,
      mRef: 0,
      mVlan: '',
    };
    j.newIds++;
    if (alias) j.reinjected++;
    return s;
  }

  /** A clone: same data (head, hence same tracking id), its own struct sk_buff. */
  private cloneSkb(j: Journey, s: Skb): Skb {
    s.cloned = true;
    s.dataref++;
    const trkText = s.trkText.replace(/"skb":\d+\}$/, `"skb":${this.skbAddr()}}`);
    j.clones++;
    return { ...s, trkText, trk: bytes(trkText), memo: NONE, mPkt: null };
  }

  private skbAddr(): string {
    return u64Str(SKB_BASE, perm24(this.skbCtr++) * 256);
  }

  private kernelPtr(): string {
    return u64Str(FLOW_BASE, perm24(this.flowCtr++) * 512);
  }

  /**
   * The packet and skb sections. Consecutive events of a packet mostly share them, so
   * the rendering is memoised on the packet and the skb fields that change during a
   * packet's life (fclone, dataLen and gso are fixed before its first event; cloned only
   * changes along with dataref).
   */
  private pktSkb(s: Skb, p: Pkt, metaLen: number): Uint8Array {
    if (
      s.mPkt === p &&
      s.mLen === metaLen &&
      s.mHash === s.hash &&
      s.mIps === s.ipSummed &&
      s.mCsum === s.csum &&
      s.mRef === s.dataref &&
      s.mVlan === s.vlan
    ) {
      return s.memo;
    }
    s.mPkt = p;
    s.mLen = metaLen;
    s.mHash = s.hash;
    s.mIps = s.ipSummed;
    s.mCsum = s.csum;
    s.mRef = s.dataref;
    s.mVlan = s.vlan;
    s.memo = bytes(
      `${p.frag}{${s.vlan}"meta":{"len":${metaLen},"data_len":${s.dataLen},"hash":${s.hash},"ip_summed":${s.ipSummed},` +
        `"csum":${s.csum},"csum_level":0,"priority":0},"data_ref":{"nohdr":false,"cloned":${s.cloned},` +
        `"fclone":${s.fclone},"users":1,"dataref":${s.dataref}}${s.gso}}`,
    );
    return s.memo;
  }

  /**
   * Appends a kernel event: common, kernel, skb-tracking, [skb-drop], packet, skb,
   * netns, dev, then `tail` (rendered `,"ovs":{..}` / `,"nft":{..}`) and `ct`.
   */
  private kev(
    j: Journey,
    ts: number,
    cpu: number,
    tk: Task,
    probe: number,
    s: Skb,
    p: Pkt,
    metaLen: number,
    dev: Uint8Array,
    drop: Uint8Array,
    tail: string,
    ct: Uint8Array = NONE,
  ): void {
    const pktSkb = this.pktSkb(s, p, metaLen);
    const a = this.arena;
    const start = a.begin();
    a.put(B_COMMON);
    a.num(ts);
    a.put(tk.kern[cpu]);
    a.put(PROBES[probe].json);
    a.put(s.trk);
    if (drop.length) a.put(drop);
    a.put(pktSkb);
    a.put(dev);
    if (tail.length) a.str(tail);
    if (ct.length) a.put(ct);
    a.end();
    j.evs.push({ key: ts + this.lag[cpu], seq: 0, ts, probe, ti: s.ti, buf: a.buf, start, end: a.off });
  }

  /** Appends an ovs-vswitchd USDT event (no skb: correlated by queue_id only). */
  private uev(j: Journey, ts: number, cpu: number, h: { task: Task; tid: number }, probe: number, ti: TrackInfo, ovs: string): void {
    const a = this.arena;
    const start = a.begin();
    a.put(B_COMMON);
    a.num(ts);
    a.put(h.task.user[cpu]);
    a.put(PROBES[probe].json);
    a.num(h.tid);
    a.put(B_OVS);
    a.str(ovs);
    a.end();
    j.evs.push({ key: ts + this.lag[cpu], seq: 0, ts, probe, ti, buf: a.buf, start, end: a.off });
  }

  // ----- flows --------------------------------------------------------------

  private pickFlow(cat: Cat): Flow {
    const pool = this.pools[cat];
    const i = Math.floor(this.rng.float() * pool.length);
    if (pool[i].done) pool[i] = this.newFlow(cat);
    return pool[i];
  }

  private ep(h: Host, port: number, app: Task): Ep {
    const rng = this.rng;
    return { host: h, port, app, cpu: rng.int(0, NCPU - 1), seq: rng.u32(), tsval: rng.u32(), ipId: rng.int(0, 0xffff) };
  }

  private dpFlow(): DpFlow {
    const r = this.rng;
    return { flow: this.kernelPtr(), sfActs: this.kernelPtr(), ufid: `[${r.u32()},${r.u32()},${r.u32()},${r.u32()}]` };
  }

  private newFlow(cat: Cat): Flow {
    const rng = this.rng;
    const proto = [PROTO_TCP, PROTO_UDP, PROTO_ICMP][rng.weighted([65, 25, 10])];
    const v6 = rng.chance(0.15);
    const eph = rng.int(32768, 60999);
    let c: Ep;
    let s: Ep;
    let svc = false;
    if (cat === 'host') {
      const remote = rng.pick(REMOTES);
      const localIsClient = proto === PROTO_UDP || rng.chance(0.5);
      if (localIsClient) {
        const [app, port] =
          proto === PROTO_TCP
            ? rng.pick([[LOCAL.apps[2], 443], [LOCAL.apps[3], 5201], [LOCAL.apps[2], 80]] as const)
            : proto === PROTO_UDP
              ? rng.pick([[LOCAL.apps[5], 53], [LOCAL.apps[4], 123]] as const)
              : [LOCAL.apps[6], 0];
        c = this.ep(LOCAL, eph, app);
        s = this.ep(remote, port, SWAPPER[0]);
      } else {
        const [app, port] = proto === PROTO_TCP ? rng.pick([[LOCAL.apps[0], 22], [LOCAL.apps[1], 443], [LOCAL.apps[1], 80]] as const) : [SWAPPER[0], 0];
        c = this.ep(remote, eph, SWAPPER[0]);
        s = this.ep(LOCAL, port, app);
        // Echo replies are sent by the kernel from the softirq that got the request.
        if (proto === PROTO_ICMP) s.app = SWAPPER[s.cpu];
      }
    } else if (cat === 'ovs') {
      const a = rng.int(0, CONTAINERS.length - 1);
      const b = (a + rng.int(1, CONTAINERS.length - 1)) % CONTAINERS.length;
      const ca = CONTAINERS[a];
      const cb = CONTAINERS[b];
      const port = proto === PROTO_TCP ? rng.pick([6379, 5432, 8080]) : proto === PROTO_UDP ? rng.pick([5353, 9999]) : 0;
      c = this.ep(ca, eph, ca.apps[proto === PROTO_ICMP ? 1 : 1 - (a & 1)]);
      s = this.ep(cb, port, cb.apps[0]);
      svc = proto === PROTO_TCP && rng.chance(0.3);
      if (svc) s.port = 8080;
    } else {
      const ci = rng.int(0, CONTAINERS.length - 1);
      const ch = CONTAINERS[ci];
      c = this.ep(ch, eph, ch.apps[1]);
      s = this.ep(rng.pick(EXTERNALS), proto === PROTO_TCP ? 443 : proto === PROTO_UDP ? 53 : 0, SWAPPER[0]);
    }
    const hostCt = cat === 'host' && !(proto === PROTO_ICMP && v6);
    const ovsCt =
      cat === 'ovs' && (svc || (!(proto === PROTO_ICMP && v6) && rng.chance(0.35)))
        ? { zone: rng.int(1, 64), recirc: [rng.int(1, 0xff), rng.int(1, 0xff)] as [number, number] }
        : null;
    const f: Flow = {
      cat,
      proto,
      v6,
      c,
      s,
      svc,
      hostCt,
      ovsCt,
      ctBase: '',
      n: 0,
      life: proto === PROTO_TCP ? rng.int(6, 40) : rng.int(2, 12) & ~1,
      label: [rng.int(1, 0xfffff), rng.int(1, 0xfffff)],
      rss: [rng.u32(), rng.u32()],
      // Datapath flows only exist for traffic crossing OVS (and recirc ones for ct flows).
      dp: cat === 'host' ? NO_DP : [this.dpFlow(), this.dpFlow()],
      dpRecirc: ovsCt ? [this.dpFlow(), this.dpFlow()] : NO_DP,
      icmpId: rng.int(1, 0xffff),
      icmpSeq: 0,
      seenReply: false,
      done: false,
      keySize: (v6 ? 352 : 312) + (ovsCt ? 48 : 0),
    };
    f.ctBase = this.ctBase(f);
    return f;
  }

  private ctTuple(f: Flow, src: string, dst: string, sport: number, dport: number, reply: boolean): string {
    const ip = `{"src":"${src}","dst":"${dst}","version":"${f.v6 ? 'v6' : 'v4'}"}`;
    const proto =
      f.proto === PROTO_TCP
        ? `{"tcp":{"sport":${sport},"dport":${dport}}}`
        : f.proto === PROTO_UDP
          ? `{"udp":{"sport":${sport},"dport":${dport}}}`
          : `{"icmp":{"code":0,"type":${reply ? 0 : 8},"id":${f.icmpId}}}`;
    return `{"ip":${ip},"proto":${proto}}`;
  }

  private ctBase(f: Flow): string {
    const zone = f.ovsCt ? f.ovsCt.zone : 0;
    const cs = f.v6 ? f.c.host.ip6s : f.c.host.ip4s;
    const ss = f.v6 ? f.s.host.ip6s : f.s.host.ip4s;
    const vs = f.svc ? (f.v6 ? VIP.ip6s : VIP.ip4s) : ss;
    const vport = f.svc ? VIP.port : f.s.port;
    const orig = this.ctTuple(f, cs, vs, f.c.port, vport, false);
    const reply = this.ctTuple(f, ss, cs, f.s.port, f.c.port, true);
    return `"zone_id":${zone},"zone_dir":"Default","orig":${orig},"reply":${reply}`;
  }

  /** Next packet of a flow: TCP handshake / data / teardown, UDP and ICMP request-response. */
  private nextPlan(f: Flow): Plan {
    const rng = this.rng;
    const n = f.n++;
    let dir: 0 | 1 = 0;
    let flags = 0;
    let payload = 0;
    let protoState = '';
    if (f.proto === PROTO_TCP) {
      const mss = f.v6 ? TCP_MSS6 : TCP_MSS4;
      if (n === 0) [dir, flags, protoState] = [0, TCP_SYN, 'SYN_SENT'];
      else if (n === 1) [dir, flags, protoState] = [1, TCP_SYN | TCP_ACK, 'SYN_RECV'];
      else if (n === 2) [dir, flags, protoState] = [0, TCP_ACK, 'ESTABLISHED'];
      else if (n >= f.life - 3) {
        const k = n - (f.life - 3);
        if (k === 0) [dir, flags, protoState] = [0, TCP_FIN | TCP_ACK, 'FIN_WAIT'];
        else if (k === 1) [dir, flags, protoState] = [1, TCP_FIN | TCP_ACK, 'LAST_ACK'];
        else [dir, flags, protoState] = [0, TCP_ACK, 'TIME_WAIT'];
      } else {
        protoState = 'ESTABLISHED';
        const r = rng.float();
        if (f.s.port === 5201) {
          // iperf3-like bulk upload: full segments from the client, ACKs back.
          if (r < 0.7) [dir, flags, payload] = [0, TCP_ACK, mss];
          else [dir, flags] = [1, TCP_ACK];
        } else if (r < 0.3) [dir, flags, payload] = [0, TCP_PSH | TCP_ACK, rng.int(40, 700)];
        else if (r < 0.75) {
          dir = 1;
          payload = rng.chance(0.6) ? mss : rng.int(100, mss);
          flags = payload < mss ? TCP_PSH | TCP_ACK : TCP_ACK;
        } else [dir, flags] = [0, TCP_ACK];
      }
    } else {
      dir = (n & 1) as 0 | 1;
      if (f.proto === PROTO_UDP) {
        const dns = f.s.port === 53;
        const ntp = f.s.port === 123;
        payload = ntp ? 48 : dns ? (dir === 0 ? rng.int(28, 60) : rng.int(60, 300)) : rng.int(20, 1200);
      } else {
        payload = 56;
        if (dir === 0) f.icmpSeq = (f.icmpSeq + 1) & 0xffff;
      }
    }
    if (n + 1 >= f.life) f.done = true;

    const src = dir === 0 ? f.c : f.s;
    const dst = dir === 0 ? f.s : f.c;
    const seq = src.seq;
    const ack = flags & TCP_ACK ? dst.seq : 0;
    if (f.proto === PROTO_TCP) src.seq = (src.seq + payload + (flags & (TCP_SYN | TCP_FIN) ? 1 : 0)) >>> 0;
    src.tsval = (src.tsval + rng.int(0, 40)) >>> 0;
    const tsecr = flags & TCP_SYN && dir === 0 ? 0 : dst.tsval;
    const ipId = src.ipId;
    src.ipId = (src.ipId + 1) & 0xffff;

    // Conntrack view after this packet went through the hooks.
    let ctState: string;
    let ctStatus = IPS_CONFIRMED;
    if (dir === 1) {
      ctState = 'reply';
      f.seenReply = true;
    } else ctState = n === 0 ? 'new' : 'established';
    if (f.seenReply) ctStatus |= IPS_SEEN_REPLY;
    if (f.seenReply && (f.proto !== PROTO_TCP || n >= 2)) ctStatus |= IPS_ASSURED;
    if (f.svc) ctStatus |= IPS_DST_NAT | IPS_DST_NAT_DONE | IPS_SRC_NAT_DONE;
    else if (f.hostCt) ctStatus |= IPS_DST_NAT_DONE | IPS_SRC_NAT_DONE; // null NAT bindings
    return { dir, flags, payload, seq, ack, tsval: src.tsval, tsecr, ipId, icmpSeq: f.icmpSeq, ctState, ctStatus, protoState, ct: NONE };
  }

  /** The ct section of a packet (memoised on its plan: all its events share it). */
  private ctFrag(f: Flow, pl: Plan, statusOverride?: number): Uint8Array {
    if (statusOverride === undefined && pl.ct !== NONE) return pl.ct;
    const ps = f.proto === PROTO_TCP ? `,"proto_state":"${pl.protoState}"` : '';
    const b = bytes(`,"ct":{"state":"${pl.ctState}",${f.ctBase}${ps},"mark":0,"ct_status":${statusOverride ?? pl.ctStatus}}`);
    if (statusOverride === undefined) pl.ct = b;
    return b;
  }

  /**
   * The frame of a planned packet. `post` selects the DNAT-ed view of service flows
   * (after OVS's ct(nat) action), `salt` perturbs the IP id / flow label (used to
   * avoid queue_id collisions between upcalls in flight).
   */
  private frame(
    f: Flow,
    pl: Plan,
    t: number,
    csum: CsumMode,
    o: { post?: boolean; vlan?: number; gsoSegs?: number; salt?: number; ipLenExtra?: number; dstOverride?: Host; keepBytes?: boolean } = {},
  ): Pkt {
    const srcEp = pl.dir === 0 ? f.c : f.s;
    const dstEp = pl.dir === 0 ? f.s : f.c;
    const dstHost = o.dstOverride ?? dstEp.host;
    let srcIp = f.v6 ? srcEp.host.ip6 : srcEp.host.ip4;
    let dstIp = f.v6 ? dstHost.ip6 : dstHost.ip4;
    let sport = srcEp.port;
    let dport = dstEp.port;
    if (f.svc) {
      // Client-side view is the VIP: before DNAT on the way in, after un-DNAT on the way back.
      if (pl.dir === 0 && !o.post) [dstIp, dport] = [f.v6 ? VIP.ip6 : VIP.ip4, VIP.port];
      if (pl.dir === 1 && o.post) [srcIp, sport] = [f.v6 ? VIP.ip6 : VIP.ip4, VIP.port];
    }
    const srcKind = srcEp.host.kind;
    const dstKind = dstHost.kind;
    const srcMac = srcKind === 'local' ? LOCAL.mac : srcEp.host.l2;
    const dstMac = dstKind === 'local' ? LOCAL.mac : dstHost.l2;
    const segs = o.gsoSegs ?? 1;
    const payload = pl.payload * segs;
    // ping's payload starts with gettimeofday(): realtime = monotonic + clock offset.
    const rtUs = Math.floor(t / 1000) + this.offsetNsec / 1000;
    const salt = o.salt ?? 0;
    return buildFrame(
      {
        srcMac,
        dstMac,
        srcIp,
        dstIp,
        vlan: o.vlan ?? 0,
        v6: f.v6,
        ttl: srcKind === 'remote' ? srcEp.host.ttl : 64,
        ipId: (pl.ipId + salt) & 0xffff,
        label: (f.label[pl.dir] ^ salt) & 0xfffff,
        proto: f.proto,
        sport,
        dport,
        flags: pl.flags,
        seq: pl.seq,
        ack: pl.ack,
        tsval: pl.tsval,
        tsecr: pl.tsecr,
        icmpType: f.v6 ? (pl.dir === 0 ? 128 : 129) : pl.dir === 0 ? 8 : 0,
        icmpId: f.icmpId,
        icmpSeq: (pl.icmpSeq + salt) & 0xffff,
        stampSec: this.offsetSec + Math.floor(rtUs / 1_000_000),
        stampUsec: rtUs % 1_000_000,
        payload,
        payloadOff: (pl.seq + f.rss[pl.dir]) >>> 0,
        csum,
        headersOnly: segs > 1,
        ipLenExtra: o.ipLenExtra ?? 0,
        keepBytes: o.keepBytes ?? false,
      },
      this.payload,
    );
  }

  private l4Probe(f: Flow): number {
    if (f.proto === PROTO_TCP) return f.v6 ? P_TCP6 : P_TCP4;
    return f.v6 ? P_UDP6 : P_UDP4;
  }

  private txCsum(f: Flow): CsumMode {
    return f.proto === PROTO_ICMP ? 'full' : 'partial';
  }

  /** skb checksum state of a locally built packet (TCP/UDP offloaded, ICMP done in software). */
  private txSkbState(s: Skb, f: Flow, pl: Plan): void {
    if (f.proto === PROTO_ICMP) {
      s.ipSummed = 0;
      s.csum = this.rng.u32();
    } else {
      s.ipSummed = 3; // CHECKSUM_PARTIAL: csum holds csum_start | csum_offset << 16
      s.csum = (66 + (f.v6 ? 40 : 20)) | ((f.proto === PROTO_TCP ? 16 : 6) << 16);
    }
    if (f.proto === PROTO_TCP) {
      s.hash = f.rss[pl.dir]; // sk->sk_txhash
      s.fclone = 2; // TCP transmits a fast clone of the write-queue skb
      s.cloned = true;
      s.dataref = 2;
    }
  }

  // ----- host stack ---------------------------------------------------------

  /** Remote -> local through eth0: RX, IP, L4, delivery (or a drop on the way). */
  private hostRx(j: Journey, f: Flow, pl: Plan, t0: number, drop: DropKind | null, dstOverride?: Host): void {
    const rng = this.rng;
    const p = this.frame(f, pl, t0, drop === 'TCP_CSUM' ? 'bad' : 'full', {
      ipLenExtra: drop === 'PKT_TOO_SMALL' ? rng.int(20, 400) : 0,
      dstOverride,
    });
    const cpu = f.rss[pl.dir] % NCPU; // RSS queue -> CPU
    const tk = this.softirq(cpu);
    const s = this.newSkb(j, t0, null);
    s.hash = f.rss[pl.dir];
    s.ipSummed = drop === 'TCP_CSUM' ? 0 : 1; // CHECKSUM_NONE lets the bad csum reach TCP
    const rx = devFrag(ETH0, ETH0.ifindex);
    let t = t0;
    this.kev(j, t, cpu, tk, P_RECV, s, p, p.l3, devFrag(ETH0), NONE, '');
    if (!drop && rng.chance(this.o.cloneRatio)) {
      // tcpdump on eth0: packet_rcv clones the shared skb; tcpdump frees the clone later.
      const c = this.cloneSkb(j, s);
      this.kev(j, t + this.dt(20_000, 400_000), rng.int(0, NCPU - 1), TCPDUMP, P_CONSUME, c, p, p.len, rx, NONE, '');
    }
    t += this.dt(300, 2500);
    this.kev(j, t, cpu, tk, f.v6 ? P_IPV6_RCV : P_IP_RCV, s, p, p.l3, rx, NONE, '');
    if (drop === 'OTHERHOST' || drop === 'PKT_TOO_SMALL') {
      this.kfree(j, t + this.dt(200, 1500), cpu, tk, s, p, p.l3, rx, drop, NONE);
      return;
    }
    const ct = f.hostCt && drop !== 'TCP_CSUM' ? this.ctFrag(f, pl, drop === 'NETFILTER_DROP' ? pl.ctStatus & ~IPS_CONFIRMED : undefined) : NONE;
    if (drop === 'NETFILTER_DROP') {
      t += this.dt(1000, 4000);
      const nft = rng.chance(0.5)
        ? `,"nft":{"table_name":"filter","chain_name":"input","verdict":"drop","table_handle":3,"chain_handle":1,"policy":true}`
        : `,"nft":{"table_name":"firewalld","chain_name":"filter_IN_public_deny","verdict":"drop","table_handle":7,"chain_handle":118,"rule_handle":${rng.int(120, 140)},"policy":false}`;
      this.kev(j, t, cpu, tk, P_NFT, s, p, p.l3, rx, NONE, nft, ct);
      this.kfree(j, t + this.dt(300, 1500), cpu, tk, s, p, p.l3, rx, drop, ct);
      return;
    }
    if (ct !== NONE && rng.chance(0.3)) {
      t += this.dt(1000, 4000);
      const nft = `,"nft":{"table_name":"firewalld","chain_name":"filter_IN_public_allow","verdict":"accept","table_handle":7,"chain_handle":112,"rule_handle":${rng.int(113, 119)},"policy":false}`;
      this.kev(j, t, cpu, tk, P_NFT, s, p, p.l3, rx, NONE, nft, ct);
    }
    if (f.proto !== PROTO_ICMP) {
      t += this.dt(800, 4000);
      this.kev(j, t, cpu, tk, this.l4Probe(f), s, p, p.l4, rx, NONE, '', ct);
    }
    if (drop === 'NO_SOCKET' || drop === 'TCP_CSUM') {
      this.kfree(j, t + this.dt(300, 3000), cpu, tk, s, p, p.l4, rx, drop, ct);
      return;
    }
    const dstEp = pl.dir === 0 ? f.s : f.c;
    this.deliverConsume(j, f, s, p, t, cpu, tk, dstEp, rx, ct);
  }

  /** Final consume of a delivered packet: softirq for ICMP / pure ACKs, the app for data, or untraced. */
  private deliverConsume(j: Journey, f: Flow, s: Skb, p: Pkt, t: number, cpu: number, tk: Task, dst: Ep, dev: Uint8Array, ct: Uint8Array): void {
    const rng = this.rng;
    if (f.proto === PROTO_ICMP) {
      if (rng.chance(0.9)) this.kev(j, t + this.dt(2000, 15000), cpu, tk, P_CONSUME, s, p, p.l4, dev, NONE, '', ct);
      return;
    }
    const r = rng.float();
    if (f.proto === PROTO_UDP || r < 0.4) {
      // recvmsg() in the receiving application, possibly on another CPU
      this.kev(j, t + this.dt(5000, 150_000), dst.cpu, dst.app, P_CONSUME, s, p, p.l4, dev, NONE, '', ct);
    } else if (r < 0.8) {
      this.kev(j, t + this.dt(1000, 8000), cpu, tk, P_CONSUME, s, p, p.l4, dev, NONE, '', ct);
    }
    // else: freed through __kfree_skb (no tracepoint), the series just ends
  }

  private kfree(j: Journey, t: number, cpu: number, tk: Task, s: Skb, p: Pkt, metaLen: number, dev: Uint8Array, drop: DropKind, ct: Uint8Array): void {
    j.drops.push(dropKey(drop));
    this.kev(j, t, cpu, tk, P_KFREE, s, p, metaLen, dev, dropSection(drop), '', ct);
  }

  /** Local -> remote through eth0 (the budget-limited variant also serves as filler). */
  private hostTx(j: Journey, f: Flow, pl: Plan, t0: number, maxEvents: number): void {
    const rng = this.rng;
    const src = pl.dir === 0 ? f.c : f.s;
    const mss = f.v6 ? TCP_MSS6 : TCP_MSS4;
    // iperf3 bulk sends go out as TSO super-packets: paged data, only headers captured.
    const segs = f.proto === PROTO_TCP && pl.payload === mss && rng.chance(0.6) ? rng.int(2, 12) : 1;
    const p = this.frame(f, pl, t0, this.txCsum(f), { gsoSegs: segs });
    const cpu = src.cpu;
    const s = this.newSkb(j, t0, null);
    this.txSkbState(s, f, pl);
    if (segs > 1) {
      s.dataLen = pl.payload * segs;
      s.gso = `,"gso":{"flags":0,"frags":${Math.min(17, segs)},"size":${mss},"segs":${segs},"type":${f.v6 ? 16 : 1}}`;
    }
    const ct = f.hostCt ? this.ctFrag(f, pl) : NONE;
    const dev = devFrag(ETH0);
    this.kev(j, t0, cpu, src.app, P_XMIT, s, p, p.len, dev, NONE, '', ct);
    if (maxEvents < 2) return;
    let budget = maxEvents - 1;
    if (budget >= 2 && rng.chance(this.o.cloneRatio)) {
      // tcpdump tap: dev_queue_xmit_nit() clones the skb before the driver gets it.
      const c = this.cloneSkb(j, s);
      this.kev(j, t0 + this.dt(15_000, 500_000), rng.int(0, NCPU - 1), TCPDUMP, P_CONSUME, c, p, p.len, dev, NONE, '', ct);
      budget--;
    }
    if (budget >= 1 && (maxEvents !== Infinity || rng.chance(0.85))) {
      // TX completion (napi) frees it on the same CPU.
      this.kev(j, t0 + this.dt(4000, 60_000), cpu, this.softirq(cpu), P_CONSUME, s, p, p.len, dev, NONE, '', ct);
    }
  }

  // ----- OVS ---------------------------------------------------------------

  private lookupFrag(d: DpFlow | null, rng: Rng): string {
    return d
      ? `,"ovs":{"event_type":"flow_lookup","flow":${d.flow},"sf_acts":${d.sfActs},"ufid":${d.ufid},"n_mask_hit":${rng.int(1, 4)},"n_cache_hit":${rng.int(0, 1)},"dpflow":"","ofpflows":[]}`
      : `,"ovs":{"event_type":"flow_lookup","flow":0,"sf_acts":0,"ufid":[0,0,0,0],"n_mask_hit":${rng.int(1, 6)},"n_cache_hit":0,"dpflow":"","ofpflows":[]}`;
  }

  /** The container's transmit and the arrival on its OVS port. Returns the time of the arrival. */
  private fromContainer(j: Journey, f: Flow, pl: Plan, s: Skb, p: Pkt, t0: number, cpu: number, tk: Task): number {
    const src = pl.dir === 0 ? f.c : f.s;
    this.kev(j, t0, cpu, tk, P_XMIT, s, p, p.len, devFrag(src.host.veth as Iface), NONE, '');
    const t = t0 + this.dt(2000, 15_000);
    this.kev(j, t, cpu, tk, P_RECV, s, p, p.l3, devFrag(src.host.ovsIf as Iface), NONE, '');
    return t;
  }

  /**
   * Datapath actions for a container -> container packet: output, or (conntrack flows)
   * ct + recirc, a second lookup, then output. `qid` is set when the actions run
   * because userspace executed an upcalled packet (every action event then carries it).
   */
  private actions(j: Journey, f: Flow, pl: Plan, s: Skb, pre: Pkt, post: Pkt, t: number, cpu: number, tk: Task, dev: Uint8Array, qid: number | null): { t: number; ct: Uint8Array } {
    const rng = this.rng;
    const q = qid === null ? '' : `,"queue_id":${qid}`;
    const dst = pl.dir === 0 ? f.s : f.c;
    const oc = f.ovsCt;
    let ct = NONE;
    let recirc = 0;
    if (oc) {
      const ipf = f.v6 ? CT_IP6 : CT_IP4;
      let act: string;
      if (f.svc && pl.dir === 0) {
        const a = f.v6 ? f.s.host.ip6s : f.s.host.ip4s;
        act =
          `"action":"ct","flags":${CT_COMMIT | ipf | CT_NAT | CT_NAT_DST | CT_RANGE_MAP_IPS | CT_RANGE_PROTO},"zone_id":${oc.zone},` +
          `"nat":{"dir":"dst","min_addr":"${a}","max_addr":"${a}","min_port":${f.s.port},"max_port":${f.s.port}}`;
      } else if (f.svc) {
        act = `"action":"ct","flags":${ipf | CT_NAT},"zone_id":${oc.zone},"nat":{}`;
      } else {
        act = `"action":"ct","flags":${(pl.dir === 0 ? CT_COMMIT : 0) | ipf},"zone_id":${oc.zone}`;
      }
      this.kev(j, t, cpu, tk, P_EXEC, s, pre, pre.len, dev, NONE, `,"ovs":{"event_type":"action_execute",${act},"recirc_id":0${q}}`);
      ct = this.ctFrag(f, pl);
      recirc = oc.recirc[pl.dir];
      t += this.dt(800, 3000);
      this.kev(j, t, cpu, tk, P_EXEC, s, post, post.len, dev, NONE, `,"ovs":{"event_type":"action_execute","action":"recirc","id":${recirc},"recirc_id":0${q}}`, ct);
      t += this.dt(1000, 4000);
      this.kev(j, t, cpu, tk, P_LOOKUP, s, post, post.len, dev, NONE, this.lookupFrag(f.dpRecirc[pl.dir], rng), ct);
      t += this.dt(500, 2000);
    }
    const out = `,"ovs":{"event_type":"action_execute","action":"output","port":${dst.host.ovsPort},"recirc_id":${recirc}${q}}`;
    this.kev(j, t, cpu, tk, P_EXEC, s, post, post.len, dev, NONE, out, ct);
    return { t, ct };
  }

  /** Out of the destination OVS port into the container: xmit, RX in its netns, IP, L4, consume. */
  private toContainer(j: Journey, f: Flow, pl: Plan, s: Skb, p: Pkt, t: number, cpu: number, tk: Task, rxIf: number | undefined, ct: Uint8Array): void {
    const dst = pl.dir === 0 ? f.s : f.c;
    const h = dst.host;
    t += this.dt(1000, 5000);
    this.kev(j, t, cpu, tk, P_XMIT, s, p, p.len, devFrag(h.ovsIf as Iface, rxIf), NONE, '', ct);
    // veth_xmit -> skb_scrub_packet(): conntrack and OVS state do not cross the netns.
    t += this.dt(2000, 10_000);
    const veth = h.veth as Iface;
    this.kev(j, t, cpu, tk, P_RECV, s, p, p.l3, devFrag(veth), NONE, '');
    const rx = devFrag(veth, veth.ifindex);
    t += this.dt(300, 2000);
    this.kev(j, t, cpu, tk, f.v6 ? P_IPV6_RCV : P_IP_RCV, s, p, p.l3, rx, NONE, '');
    if (f.proto !== PROTO_ICMP) {
      t += this.dt(800, 4000);
      this.kev(j, t, cpu, tk, this.l4Probe(f), s, p, p.l4, rx, NONE, '');
    }
    if (this.rng.chance(0.7)) this.deliverConsume(j, f, s, p, t, cpu, tk, dst, rx, NONE);
  }

  /** Container -> container on an installed datapath flow (no upcall). */
  private ovsFast(j: Journey, f: Flow, pl: Plan, t0: number, dropLast: boolean): void {
    const rng = this.rng;
    const src = pl.dir === 0 ? f.c : f.s;
    const pre = this.frame(f, pl, t0, this.txCsum(f));
    const post = f.svc ? this.frame(f, pl, t0, this.txCsum(f), { post: true }) : pre;
    const cpu = src.cpu;
    const tk = src.app;
    const s = this.newSkb(j, t0, null);
    this.txSkbState(s, f, pl);
    let t = this.fromContainer(j, f, pl, s, pre, t0, cpu, tk);
    const inIf = src.host.ovsIf as Iface;
    const dev = devFrag(inIf, inIf.ifindex);
    s.hash = f.rss[pl.dir]; // the datapath hashes the packet (skb_get_hash)
    t += this.dt(1000, 5000);
    this.kev(j, t, cpu, tk, P_LOOKUP, s, pre, pre.len, dev, NONE, this.lookupFrag(f.dp[pl.dir], rng));
    if (dropLast) {
      // A flow with no actions: the datapath frees the packet with OVS_DROP_LAST_ACTION.
      this.kfree(j, t + this.dt(500, 3000), cpu, tk, s, pre, pre.len, dev, 'OVS_DROP_LAST_ACTION', NONE);
      return;
    }
    const r = this.actions(j, f, pl, s, pre, post, t + this.dt(1000, 4000), cpu, tk, dev, null);
    this.toContainer(j, f, pl, s, post, r.t, cpu, tk, inIf.ifindex, r.ct);
  }

  /** Container -> external host: push_vlan then output on the eth1 trunk. */
  private uplinkEgress(j: Journey, f: Flow, pl: Plan, t0: number): void {
    const rng = this.rng;
    const src = f.c;
    const p = this.frame(f, pl, t0, this.txCsum(f));
    const cpu = src.cpu;
    const tk = src.app;
    const s = this.newSkb(j, t0, null);
    this.txSkbState(s, f, pl);
    let t = this.fromContainer(j, f, pl, s, p, t0, cpu, tk);
    const inIf = src.host.ovsIf as Iface;
    const dev = devFrag(inIf, inIf.ifindex);
    s.hash = f.rss[pl.dir];
    t += this.dt(1000, 5000);
    this.kev(j, t, cpu, tk, P_LOOKUP, s, p, p.len, dev, NONE, this.lookupFrag(f.dp[pl.dir], rng));
    t += this.dt(1000, 4000);
    this.kev(j, t, cpu, tk, P_EXEC, s, p, p.len, dev, NONE, `,"ovs":{"event_type":"action_execute","action":"push_vlan","recirc_id":0}`);
    s.vlan = VLAN_ACCEL; // the tag lives in skb->vlan_tci for now
    t += this.dt(500, 2000);
    this.kev(j, t, cpu, tk, P_EXEC, s, p, p.len, dev, NONE, `,"ovs":{"event_type":"action_execute","action":"output","port":${OVS_UPLINK_PORT},"recirc_id":0}`);
    // eth1 has no TX VLAN offload: validate_xmit_vlan() inserts the tag into the data,
    // reallocating the head (pskb_expand_head) — invisible in skb-tracking, which keeps
    // reporting the original head.
    const tagged = this.frame(f, pl, t0, this.txCsum(f), { vlan: VLAN_ID });
    s.vlan = '';
    t += this.dt(1000, 5000);
    const out = devFrag(ETH1, inIf.ifindex);
    this.kev(j, t, cpu, tk, P_XMIT, s, tagged, tagged.len, out, NONE, '');
    if (rng.chance(0.85)) this.kev(j, t + this.dt(4000, 60_000), cpu, this.softirq(cpu), P_CONSUME, s, tagged, tagged.len, out, NONE, '');
  }

  /** External host -> container: RX on eth1 with the tag in vlan_accel, pop_vlan, output. */
  private uplinkIngress(j: Journey, f: Flow, pl: Plan, t0: number): void {
    const rng = this.rng;
    const p = this.frame(f, pl, t0, 'full');
    const cpu = f.rss[pl.dir] % NCPU;
    const tk = this.softirq(cpu);
    const s = this.newSkb(j, t0, null);
    s.hash = f.rss[pl.dir];
    s.ipSummed = 1;
    s.vlan = VLAN_ACCEL;
    let t = t0;
    this.kev(j, t, cpu, tk, P_RECV, s, p, p.l3, devFrag(ETH1), NONE, '');
    const dev = devFrag(ETH1, ETH1.ifindex);
    t += this.dt(1000, 5000);
    this.kev(j, t, cpu, tk, P_LOOKUP, s, p, p.len, dev, NONE, this.lookupFrag(f.dp[pl.dir], rng));
    t += this.dt(1000, 4000);
    this.kev(j, t, cpu, tk, P_EXEC, s, p, p.len, dev, NONE, `,"ovs":{"event_type":"action_execute","action":"pop_vlan","recirc_id":0}`);
    s.vlan = '';
    t += this.dt(500, 2000);
    this.kev(j, t, cpu, tk, P_EXEC, s, p, p.len, dev, NONE, `,"ovs":{"event_type":"action_execute","action":"output","port":${f.c.host.ovsPort},"recirc_id":0}`);
    this.toContainer(j, f, pl, s, p, t, cpu, tk, ETH1.ifindex, NONE);
  }

  /**
   * A handler batch of 1-3 flow misses from one CPU (per-CPU upcall dispatch: one
   * handler per CPU), following the real chain of §6:
   *   kernel (CPU c, sender's context): xmit, RX on the OVS port, lookup miss,
   *     tp ovs_dp_upcall, kretprobe queue_userspace_packet (queue_id = jhash), kretprobe
   *     ovs_dp_upcall, consume of the original skb;
   *   ovs-vswitchd handler: usdt recv_upcall per received upcall, then per upcall
   *     op_flow_put / op_flow_execute;
   *   kernel (handler context): the executed packet is a NEW skb (new tracking id) whose
   *     action_execute events carry queue_id, then it reaches the destination container.
   */
  private upcallBatch(j: Journey, t0: number): void {
    const rng = this.rng;
    const k = rng.chance(0.15) ? rng.int(2, 3) : 1;
    const cpu = rng.int(0, NCPU - 1);
    const handler = HANDLERS[cpu];
    const port = this.portIds[cpu];
    interface Item {
      f: Flow;
      pl: Plan;
      /** The packet once queue_userspace_packet completed its checksum (what userspace gets). */
      full: Pkt;
      post: Pkt;
      s: Skb;
      qid: number;
      failed: boolean;
      outcome: UpcallOutcome;
      put: boolean;
      batchIdx: number;
    }
    const items: Item[] = [];
    let t = t0;
    let lastEnq = t0;
    for (let i = 0; i < k; i++) {
      const f = this.pickFlow('ovs');
      const pl = this.nextPlan(f);
      const src = pl.dir === 0 ? f.c : f.s;
      const tk = src.app;
      const failed = rng.chance(0.06);
      // Times of this packet's kernel-side events, fixed before the queue_id check.
      const tRecv = t + this.dt(2000, 15_000);
      const tLookup = tRecv + this.dt(1000, 5000);
      const tUp = tLookup + this.dt(5000, 20_000);
      const tEnq = tUp + this.dt(4000, 15_000);
      // queue_userspace_packet() completes CHECKSUM_PARTIAL checksums in place
      // (skb_csum_hwoffload_help) before the kretprobe hashes the packet: the queue_id,
      // the later kernel events and the packet userspace re-injects all see the full
      // checksum, the earlier events the partial one.
      // queue_id = jhash of the first 64 bytes: ensure no other upcall with the same id
      // is being correlated at the same time (Retis's queue map would mix them up).
      let salt = 0;
      let pre: Pkt;
      let full: Pkt;
      let qid: number;
      for (;;) {
        full = this.frame(f, pl, t, 'full', { salt, keepBytes: true });
        pre = this.txCsum(f) === 'full' ? full : this.frame(f, pl, t, this.txCsum(f), { salt });
        qid = ovsQueueId(full.bytes as Uint8Array);
        const other = this.inflightQ.get(qid);
        if (!other || other[1] < tEnq || other[0] > tEnq + MAX_UPCALL_SPAN_NS) break;
        salt++;
      }
      const post = f.svc ? this.frame(f, pl, t, 'full', { post: true, salt }) : full;
      const s = this.newSkb(j, t, null);
      this.txSkbState(s, f, pl);
      this.kev(j, t, cpu, tk, P_XMIT, s, pre, pre.len, devFrag(src.host.veth as Iface), NONE, '');
      const inIf = src.host.ovsIf as Iface;
      this.kev(j, tRecv, cpu, tk, P_RECV, s, pre, pre.l3, devFrag(inIf), NONE, '');
      const dev = devFrag(inIf, inIf.ifindex);
      s.hash = f.rss[pl.dir];
      this.kev(j, tLookup, cpu, tk, P_LOOKUP, s, pre, pre.len, dev, NONE, this.lookupFrag(null, rng));
      this.kev(j, tUp, cpu, tk, P_UPCALL, s, pre, pre.len, dev, NONE, `,"ovs":{"event_type":"upcall","cmd":1,"port":${port},"cpu":${cpu}}`);
      const ret = failed ? -11 : 0;
      s.ipSummed = 0; // skb_checksum_help(): CHECKSUM_NONE from now on
      this.kev(j, tEnq, cpu, tk, P_ENQUEUE, s, full, full.len, dev, NONE,
        `,"ovs":{"event_type":"upcall_enqueue","ret":${ret},"cmd":1,"port":${port},"upcall_ts":${tUp},"upcall_cpu":${cpu},"queue_id":${qid}}`);
      const tRet = tEnq + this.dt(3000, 20_000);
      this.kev(j, tRet, cpu, tk, P_UPCALL_RET, s, full, full.len, dev, NONE, `,"ovs":{"event_type":"upcall_return","upcall_ts":${tUp},"upcall_cpu":${cpu},"ret":${ret}}`);
      // ovs_dp_process_packet consumes the original skb on success and on -EAGAIN alike.
      this.kev(j, tRet + this.dt(1000, 5000), cpu, tk, P_CONSUME, s, full, full.len, dev, NONE, '');
      // Conservative window until the batch's last correlated event is known (below).
      this.inflightQ.set(qid, [tEnq, tEnq + MAX_UPCALL_SPAN_NS]);
      items.push({ f, pl, full, post, s, qid, failed, outcome: failed ? 'enqueue_failed' : 'executed', put: true, batchIdx: -1 });
      lastEnq = Math.max(lastEnq, tEnq);
      t = tRet + this.dt(2000, 20_000);
    }

    // Received upcalls, in enqueue (= netlink socket) order. The BPF batch tracker hands
    // operations to upcalls in order, moving on when an op type repeats, so the upcalls
    // with put+exec come first, exec-only next, and unanswered ones last — any other
    // order would make Retis itself misattribute operations.
    const recvd = items.filter((x) => !x.failed);
    const kinds = recvd.map(() => rng.weighted([82, 10, 8])).sort((a, b) => a - b);
    recvd.forEach((x, i) => {
      x.batchIdx = i;
      x.put = kinds[i] === 0;
      x.outcome = kinds[i] === 2 ? 'lost_in_userspace' : 'executed';
    });
    for (const x of items) j.upcalls.push(x.outcome);
    if (recvd.length === 0) {
      for (const x of items) (this.inflightQ.get(x.qid) as [number, number])[1] = lastEnq;
      return;
    }

    const hcpu = rng.int(0, NCPU - 1);
    let th = lastEnq + this.dt(20_000, 150_000);
    const batchTs = th;
    for (const x of recvd) {
      // recv_upcall's batch_idx is always 0: the tracker only advances while processing.
      this.uev(j, th, hcpu, handler, U_RECV, x.s.ti,
        `{"event_type":"recv_upcall","type":0,"pkt_size":${x.full.len},"key_size":${x.f.keySize},"queue_id":${x.qid},"batch_ts":${batchTs},"batch_idx":0}`);
      th += this.dt(800, 3000);
    }
    th += this.dt(10_000, 60_000);
    const executed = recvd.filter((x) => x.outcome === 'executed');
    for (const x of executed) {
      if (x.put) {
        this.uev(j, th, hcpu, handler, U_PUT, x.s.ti,
          `{"event_type":"flow_operation","op_type":"put","queue_id":${x.qid},"batch_ts":${batchTs},"batch_idx":${x.batchIdx}}`);
        th += this.dt(1500, 6000);
      }
      this.uev(j, th, hcpu, handler, U_EXEC, x.s.ti,
        `{"event_type":"flow_operation","op_type":"exec","queue_id":${x.qid},"batch_ts":${batchTs},"batch_idx":${x.batchIdx}}`);
      th += this.dt(1500, 6000);
    }
    let last = th;
    // The netlink OVS_PACKET_CMD_EXECUTE requests: a new skb per packet, actions tagged
    // with queue_id, then the packet reaches its destination, all in the handler's context.
    for (const x of executed) {
      const tx = th + this.dt(8000, 25_000);
      const ns = this.newSkb(j, tx - this.dt(1000, 6000), x.s.ti);
      ns.hash = x.s.hash;
      const src = x.pl.dir === 0 ? x.f.c : x.f.s;
      const r = this.actions(j, x.f, x.pl, ns, x.full, x.post, tx, hcpu, handler.task, devFrag(src.host.ovsIf as Iface), x.qid);
      this.toContainer(j, x.f, x.pl, ns, x.post, r.t, hcpu, handler.task, undefined, r.ct);
      th = r.t + this.dt(3000, 15_000);
      last = Math.max(last, r.t);
    }
    for (const x of items) {
      const e = this.inflightQ.get(x.qid);
      if (e) e[1] = last;
    }
  }

  // ----- drops -------------------------------------------------------------

  private dropJourney(j: Journey, t: number, kind: DropKind): void {
    const rng = this.rng;
    if (kind === 'OVS_DROP_LAST_ACTION') {
      const f = this.pickFlow('ovs');
      this.ovsFast(j, f, this.nextPlan(f), t, true);
      return;
    }
    // One-off packets from a remote host to us: a fresh flow that is never reused.
    const proto = kind === 'TCP_CSUM' ? PROTO_TCP : rng.chance(0.7) ? PROTO_TCP : PROTO_UDP;
    const f = this.newFlow('host');
    f.proto = proto;
    f.hostCt = true;
    const remote = rng.pick(REMOTES);
    f.c = this.ep(remote, rng.int(32768, 60999), SWAPPER[0]);
    const port =
      kind === 'NO_SOCKET' ? rng.pick(proto === PROTO_TCP ? [8081, 9090, 25] : [161, 5060, 33434])
      : kind === 'NETFILTER_DROP' ? rng.pick(proto === PROTO_TCP ? [3306, 23, 445] : [137, 1900])
      : proto === PROTO_TCP ? 443 : 53;
    f.s = this.ep(LOCAL, port, LOCAL.apps[1]);
    f.ctBase = this.ctBase(f);
    if (kind === 'TCP_CSUM') {
      f.n = 3; // a mid-connection segment from the remote side
      f.life = 1000;
    }
    let pl = this.nextPlan(f);
    while (pl.dir !== 0) pl = this.nextPlan(f);
    this.hostRx(j, f, pl, t, kind, kind === 'OTHERHOST' ? OTHER : undefined);
  }
}

// ---------------------------------------------------------------------------
// Library entry points
// ---------------------------------------------------------------------------

/** Lines of a synthetic Retis event file (startup event first), without newlines. */
export function generateEvents(opts: GenOptions): Iterable<string> {
  return new RetisEventGenerator(opts).lines();
}

/** The ground truth of generateEvents(opts) (runs the generator, discarding the lines). */
export function expectedStats(opts: GenOptions): Truth {
  const g = new RetisEventGenerator(opts);
  for (const _ of g.rawEvents()) {
    // only the side effects (truth accounting) matter here
  }
  return g.truth();
}

/**
 * Writes the event file to `path` and its ground truth to `path + '.truth.json'`.
 *
 * Rendered events are copied into a few 8 MiB buffers whose writes run on libuv's
 * thread pool while the next buffer is being generated:
 * on disks slower than the generator this overlaps the two, and memory stays bounded
 * (the buffers + the packets in flight).
 */
export async function writeEventFile(opts: GenOptions, path: string): Promise<Truth> {
  const g = new RetisEventGenerator(opts);
  const CHUNK = 8 << 20;
  const free: Buffer[] = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
  const pending: Promise<Buffer>[] = [];
  const fh = await open(path, 'w');
  try {
    const flush = (b: Buffer, n: number): void => {
      pending.push(fh.write(b, 0, n).then(() => b));
    };
    let buf = free.pop() as Buffer;
    let off = buf.write(`${g.startupLine()}\n`, 0, 'latin1');
    for (const e of g.rawEvents()) {
      const n = e.end - e.start;
      if (off + n > CHUNK) {
        flush(buf, off);
        buf = free.pop() ?? (await (pending.shift() as Promise<Buffer>));
        off = 0;
      }
      e.buf.copy(buf, off, e.start, e.end);
      off += n;
    }
    if (off > 0) flush(buf, off);
    await Promise.all(pending);
  } finally {
    await fh.close();
  }
  const truth = g.truth();
  await writeFile(`${path}.truth.json`, `${JSON.stringify(truth, null, 2)}\n`);
  return truth;
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

const USAGE =
  'usage: npx tsx bench/gen/generate.ts --events N [--seed S] [--ovs-ratio R] [--drop-ratio R] [--clone-ratio R] -o FILE';

function parseCli(argv: string[]): { opts: GenOptions; out: string } {
  const opts: GenOptions = { events: NaN };
  let out = '';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    const num = (): number => {
      const v = val();
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag}: not a number: ${v}`);
      return n;
    };
    switch (flag) {
      case '--events':
      case '-n':
        opts.events = num();
        break;
      case '--seed':
        opts.seed = num();
        break;
      case '--ovs-ratio':
        opts.ovsRatio = num();
        break;
      case '--drop-ratio':
        opts.dropRatio = num();
        break;
      case '--clone-ratio':
        opts.cloneRatio = num();
        break;
      case '-o':
      case '--out':
        out = val();
        break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${a}\n${USAGE}`);
    }
  }
  if (!Number.isFinite(opts.events)) throw new Error(`--events is required\n${USAGE}`);
  if (!out) throw new Error(`-o FILE is required\n${USAGE}`);
  return { opts, out };
}

async function main(): Promise<void> {
  let parsed: { opts: GenOptions; out: string };
  try {
    parsed = parseCli(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  const t0 = process.hrtime.bigint();
  const truth = await writeEventFile(parsed.opts, parsed.out);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stderr.write(
    `wrote ${parsed.out}: ${truth.events} events (+ startup), ${truth.packets} packets, ${truth.series} series, ` +
      `${truth.drops} drops, ${truth.upcalls.total} upcalls in ${secs.toFixed(2)} s ` +
      `(${Math.round(truth.events / secs)} events/s); truth in ${parsed.out}.truth.json\n`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
