/**
 * nft collector, netlink path (kernels where __nft_trace_packet cannot be probed): trace
 * messages from every namespace, matched to the packets the BPF probes saw, written as events
 * with Retis's `nft` section in the packet's series.
 *
 * Matching. Trace IDs are a keyed siphash on recent kernels: they tie the messages of one packet
 * in one namespace together, not to an skb. So a trace is matched by packet content: the first
 * message of each base chain evaluation carries the network header and 20 transport bytes, and
 * the probes' events carry the packet from L2. The key is what NAT and forwarding leave alone:
 * IPv4 id + total length + protocol (IPv6: flow label + payload length + next header) and the
 * transport bytes after the ports/checksum (TCP seq/ack/flags, UDP length + payload, ICMP type,
 * sequence + payload). A message is resolved 300 ms after it was read (the ring reader drains
 * every 10 ms) against the probe events of the last 2 s with that key, preferring those seen in
 * the trace's namespace. The event copies the matched event's common, skb-tracking, netns and
 * dev sections; its timestamp is placed relative to the first event of the packet in that
 * namespace: just before it for locally generated packets (the output hook runs before any
 * device sees them), just after it for received ones (prerouting runs after netif_receive_skb),
 * ordered among the packet's other nft messages. Messages nothing matched are still written,
 * without skb-tracking, at the time they were read, and counted.
 */
import { RECORD_HEADER_BYTES } from '../../bpf/ringbuf.ts';
import { captureEvent, CaptureSection } from '../progs/capture.layout.ts';
import { nftEvent } from '../progs/nftct.layout.ts';
import { HELPER_FAMILY, HELPER_PREFIX, HELPER_TABLE, NftHelper, recoverHelper, userTraceRules, withUserTables, type RecoveryReport } from './helper.ts';
import { listNetns, type Netns } from './netns.ts';
import { TraceSocket, TRACE_TYPE, type NftTrace } from './netlink.ts';
import { RulesetHandles } from './ruleset.ts';
import { verdictAllowed, verdictBase, verdictMask, writeNftBlock } from './section.ts';

const O = captureEvent.offsets;
const S = CaptureSection.values;
const HEADER = captureEvent.size;
const WINDOW_NS = 2_000_000_000n;
const RESOLVE_AFTER_NS = 300_000_000n;
const MAX_INDEXED = 200_000;
/** Record size of an nft event written by user space: header + nft block. */
export const NFT_RECORD_BYTES = HEADER + nftEvent.size;
export const NFT_NETLINK_OFFSET = HEADER;

const hex = (b: Uint8Array, from: number, to: number): string => Buffer.from(b.buffer, b.byteOffset + from, Math.max(0, Math.min(to, b.length) - from)).toString('hex');

/** The L4 part of the key (see the module comment); `t` starts at the transport header. */
function l4Key(proto: number, t: Uint8Array, start: number, avail: number): string {
  const end = start + Math.min(20, avail);
  const v = t.subarray(start, end);
  switch (proto) {
    case 6: return `${hex(v, 4, 12)}.${hex(v, 13, 14)}`;
    case 17: return `${hex(v, 4, 6)}.${hex(v, 8, 20)}`;
    case 1:
    case 58: return `${hex(v, 0, 1)}.${hex(v, 6, 20)}`;
    default: return '';
  }
}

/** Key of an IP packet whose network header starts at `n` in `b` (transport at `t`, or right after the IP header). */
export function packetKey(b: Uint8Array, n: number, len: number, transport?: Uint8Array): string | undefined {
  if (len < 20) return undefined;
  const ver = b[n]! >> 4;
  if (ver === 4) {
    const ihl = (b[n]! & 0xf) * 4;
    const frag = ((b[n + 6]! << 8) | b[n + 7]!) & 0x3fff;
    if (frag !== 0 || ihl < 20) return undefined; // fragments: no transport header to key on
    const proto = b[n + 9]!;
    const base = `4.${hex(b, n + 4, n + 6)}.${hex(b, n + 2, n + 4)}.${proto}`;
    if (transport) return `${base}.${l4Key(proto, transport, 0, transport.length)}`;
    if (len < ihl) return undefined;
    return `${base}.${l4Key(proto, b, n + ihl, len - ihl)}`;
  }
  if (ver === 6 && len >= 40) {
    const nh = b[n + 6]!;
    const base = `6.${(b[n + 1]! & 0xf).toString(16)}${hex(b, n + 2, n + 4)}.${hex(b, n + 4, n + 6)}.${nh}`;
    if (transport) return `${base}.${l4Key(nh, transport, 0, transport.length)}`;
    return `${base}.${l4Key(nh, b, n + 40, len - 40)}`;
  }
  return undefined;
}

/** Key of a probe event's packet (from L2, possibly behind VLAN tags). */
function recordKey(src: Uint8Array, p: number, cap: number): string | undefined {
  let off = 12;
  let et = (src[p + off]! << 8) | src[p + off + 1]!;
  while ((et === 0x8100 || et === 0x88a8) && off + 6 <= cap) {
    off += 4;
    et = (src[p + off]! << 8) | src[p + off + 1]!;
  }
  if (et !== 0x0800 && et !== 0x86dd) return undefined;
  const n = p + off + 2;
  return packetKey(src, n, cap - off - 2);
}

interface Seen {
  ts: bigint;
  inum: number;
  header: Uint8Array;
}

interface Pending {
  t: NftTrace;
  recv: bigint;
  ns: Netns;
  key: string | undefined;
  /** Received packet (the first message had an input interface): after its first event, else before. */
  ingress: boolean;
}

export interface NftNetlinkInfo {
  path: 'netlink';
  why: string;
  verdicts: string[];
  helper_table: string | null;
  helper_namespaces: string[];
  helper_recovered: RecoveryReport | null;
  user_trace_rules: string[];
  namespaces: string[];
  counts: { traces: number; written: number; matched: number; unmatched: number; filtered: number; own_table: number; overruns: number; malformed: number };
  errors: string[];
}

export interface NftNetlinkOptions {
  verdicts: string[];
  allowSystemChanges: boolean;
  /** Probe id of the nft events' records (a virtual probe of the decoder). */
  probeId: number;
  why: string;
  log: (s: string) => void;
}

export class NftNetlinkCollector {
  private readonly sockets = new Map<number, TraceSocket>();
  private readonly helper: NftHelper | undefined;
  private readonly mask: number;
  private readonly handles = new RulesetHandles();
  private readonly index = new Map<string, Seen[]>();
  private readonly order: { ts: bigint; key: string }[] = [];
  private orderHead = 0;
  private readonly pending: Pending[] = [];
  /** Last key and ordinal per (namespace, trace id): messages without headers follow it. */
  private readonly byId = new Map<string, { key: string | undefined; recv: bigint; n: number; ingress: boolean }>();
  private rescan: NodeJS.Timeout | undefined;
  readonly info: NftNetlinkInfo;

  private constructor(private readonly o: NftNetlinkOptions, recovered: RecoveryReport | undefined) {
    this.mask = verdictMask(o.verdicts);
    this.info = {
      path: 'netlink', why: o.why, verdicts: o.verdicts,
      helper_table: o.allowSystemChanges ? `${HELPER_FAMILY} ${HELPER_TABLE}` : null, helper_namespaces: [], helper_recovered: recovered ?? null,
      user_trace_rules: [], namespaces: [],
      counts: { traces: 0, written: 0, matched: 0, unmatched: 0, filtered: 0, own_table: 0, overruns: 0, malformed: 0 },
      errors: [],
    };
    if (o.allowSystemChanges) this.helper = new NftHelper();
  }

  /** Recover a crashed capture's helper table, install ours (--allow-system-changes), listen. */
  static start(o: NftNetlinkOptions): NftNetlinkCollector {
    const recovered = recoverHelper();
    logRecovery(recovered, o.log);
    const c = new NftNetlinkCollector(o, recovered);
    try {
      c.scan();
      if (!c.helper) {
        c.info.user_trace_rules = userTraceRules(listNetns());
        if (c.info.user_trace_rules.length === 0) {
          o.log(`nft: no rule sets 'meta nftrace set 1', so no nft event will be reported: add such a rule, or use --allow-system-changes to let retis-capture add one (table ${HELPER_FAMILY} ${HELPER_TABLE}, removed at exit)`);
        }
      }
      // Namespaces created during the capture (ip netns add) are picked up within a second.
      c.rescan = setInterval(() => {
        try {
          c.scan();
        } catch (e) {
          if (c.info.errors.length < 20) c.info.errors.push((e as Error).message);
        }
      }, 1000);
      c.rescan.unref();
    } catch (e) {
      c.helper?.remove();
      for (const s of c.sockets.values()) void s.close();
      throw e;
    }
    return c;
  }

  private scan(): void {
    const list = listNetns();
    for (const ns of list) {
      if (this.sockets.has(ns.inum)) continue;
      let s: TraceSocket;
      try {
        s = new TraceSocket(ns.path, ns.inum, (t, recv) => this.onTrace(t, recv, ns), (e) => {
          if (this.info.errors.length < 20) this.info.errors.push(e.message);
        });
      } catch (e) {
        if (ns.path === null) throw e; // our own namespace: the collector cannot work
        continue; // a namespace being deleted
      }
      this.sockets.set(ns.inum, s);
      this.info.namespaces.push(ns.name);
      s.start();
    }
    if (this.helper) {
      // Listening first, then tracing: no trace is emitted to nobody. Only where there are
      // nftables rules to trace (checked again every second for the others).
      this.helper.install(withUserTables(list.filter((n) => !this.helper!.namespaces.some((h) => h.inum === n.inum))));
      this.info.helper_namespaces = this.helper.namespaces.map((n) => n.name);
    }
  }

  private onTrace(t: NftTrace, recv: bigint, ns: Netns): void {
    this.info.counts.traces++;
    const idKey = `${ns.inum}:${t.id}`;
    let ctx = this.byId.get(idKey);
    if (t.network) {
      // Only the first message of a base chain evaluation has the headers and interfaces; the
      // ordinal goes on across the packet's base chains in this namespace (same key, same id).
      const key = packetKey(t.network, 0, t.network.length, t.transport);
      const n = ctx && ctx.key === key && recv - ctx.recv < 1_000_000_000n ? ctx.n : 0;
      ctx = { key, recv, n, ingress: t.iif !== undefined };
      this.byId.set(idKey, ctx);
      if (this.byId.size > 10_000) for (const k of [...this.byId.keys()].slice(0, 5_000)) this.byId.delete(k);
    } else if (!ctx || recv - ctx.recv > 1_000_000_000n) {
      ctx = { key: undefined, recv, n: 0, ingress: t.iif !== undefined };
    }
    ctx.n++;
    if (t.family === 1 && t.table.startsWith(HELPER_PREFIX)) {
      this.info.counts.own_table++;
      return;
    }
    const code = t.type === TRACE_TYPE.POLICY ? t.policy : t.verdict;
    if (code === undefined || !verdictAllowed(verdictBase(code), this.mask)) {
      this.info.counts.filtered++;
      return;
    }
    this.pending.push({ t: { ...t, id: ctx.n }, recv, ns, key: ctx.key, ingress: ctx.ingress });
  }

  /** Index a ring batch's packets (called for every batch, before or after decoding it). */
  indexBatch(buffer: ArrayBuffer): void {
    const view = new DataView(buffer);
    const src = new Uint8Array(buffer);
    const end = buffer.byteLength;
    let p = 0;
    while (p < end) {
      const size = view.getUint32(p, true);
      const b = p + RECORD_HEADER_BYTES;
      p = b + ((size + 7) & ~7);
      if (size < HEADER) continue;
      const sections = view.getUint32(b + O.sections, true);
      if (!(sections & S.packet) || !(sections & S.tracking)) continue;
      const cap = view.getUint16(b + O.cap_len, true);
      if (cap < 34 || HEADER + cap > size) continue;
      const key = recordKey(src, b + HEADER, cap);
      if (key === undefined) continue;
      const ts = view.getBigUint64(b + O.ts, true);
      const seen: Seen = { ts, inum: sections & S.netns ? view.getUint32(b + O.netns_inum, true) : 0, header: src.slice(b, b + HEADER) };
      const list = this.index.get(key);
      if (list) list.push(seen);
      else this.index.set(key, [seen]);
      this.order.push({ ts, key });
      if (this.order.length - this.orderHead > MAX_INDEXED) this.forgetOldest();
    }
  }

  private forgetOldest(): void {
    const o = this.order[this.orderHead++]!;
    const list = this.index.get(o.key);
    if (list) {
      list.shift();
      if (list.length === 0) this.index.delete(o.key);
    }
    if (this.orderHead > 65536) {
      this.order.splice(0, this.orderHead);
      this.orderHead = 0;
    }
  }

  private prune(now: bigint): void {
    while (this.orderHead < this.order.length && now - this.order[this.orderHead]!.ts > WINDOW_NS * 2n) this.forgetOldest();
  }

  /**
   * Records (ring batch format) for the trace messages read at least 300 ms ago, or all of them
   * with `all` (end of capture). undefined when there is none.
   */
  drain(all: boolean): ArrayBuffer | undefined {
    const now = process.hrtime.bigint();
    let n = 0;
    while (n < this.pending.length && (all || now - this.pending[n]!.recv >= RESOLVE_AFTER_NS)) n++;
    if (n === 0) {
      this.prune(now);
      return undefined;
    }
    const batch = this.pending.splice(0, n);
    const stride = RECORD_HEADER_BYTES + ((NFT_RECORD_BYTES + 7) & ~7);
    const out = new Uint8Array(stride * batch.length);
    const view = new DataView(out.buffer);
    batch.forEach((pd, i) => {
      const base = i * stride;
      view.setUint32(base, NFT_RECORD_BYTES, true);
      this.writeRecord(out, view, base + RECORD_HEADER_BYTES, pd);
    });
    this.info.counts.written += batch.length;
    this.prune(now);
    return out.buffer;
  }

  private match(pd: Pending): Seen | undefined {
    if (pd.key === undefined) return undefined;
    const list = this.index.get(pd.key);
    if (!list) return undefined;
    let best: Seen | undefined;
    let bestSameNs = false;
    for (const s of list) {
      if (s.ts > pd.recv + 50_000_000n || pd.recv - s.ts > WINDOW_NS) continue;
      const sameNs = s.inum === pd.ns.inum;
      // First event of the packet in the trace's namespace; any namespace when none there.
      if (!best || (sameNs && !bestSameNs) || (sameNs === bestSameNs && s.ts < best.ts)) {
        best = s;
        bestSameNs = sameNs;
      }
    }
    return best;
  }

  private writeRecord(out: Uint8Array, view: DataView, b: number, pd: Pending): void {
    const m = this.match(pd);
    const t = pd.t;
    let sections = S.nft;
    if (m) {
      this.info.counts.matched++;
      out.set(m.header, b);
      sections |= view.getUint32(b + O.sections, true) & (S.tracking | S.netns | S.netns_cookie | S.dev | S.rxif);
      // Locally generated (no input interface): before the packet's first event there; else after.
      const ordinal = BigInt(Math.min(t.id, 999));
      view.setBigUint64(b + O.ts, pd.ingress ? m.ts + ordinal : m.ts - 1000n + ordinal, true);
    } else {
      this.info.counts.unmatched++;
      view.setBigUint64(b + O.ts, pd.recv, true);
      view.setUint32(b + O.netns_inum, pd.ns.inum, true);
      sections |= S.netns;
    }
    view.setUint32(b + O.probe_id, this.o.probeId, true);
    view.setUint32(b + O.sections, sections, true);
    view.setUint16(b + O.cap_len, 0, true);
    view.setUint16(b + O.stack_bytes, 0, true);
    const h = this.handles.lookup(pd.ns, t.family, t.table, t.chain);
    const policy = t.type === TRACE_TYPE.POLICY;
    writeNftBlock(out, b + HEADER, {
      tableName: t.table,
      chainName: t.chain,
      verdict: (policy ? t.policy : t.verdict) ?? 0,
      verdictChainName: t.verdictChain,
      tableHandle: h.table,
      chainHandle: h.chain,
      ruleHandle: policy ? undefined : t.ruleHandle === undefined ? undefined : BigInt.asIntN(64, t.ruleHandle),
      policy,
    });
  }

  /** Stop listening (pending messages stay for a final drain(true)). */
  async closeSockets(): Promise<void> {
    if (this.rescan) clearInterval(this.rescan);
    this.rescan = undefined;
    await Promise.all([...this.sockets.values()].map((s) => s.close()));
    for (const s of this.sockets.values()) {
      this.info.counts.overruns += s.stats.overruns;
      this.info.counts.malformed += s.stats.malformed;
    }
  }

  /** Remove the helper table (idempotent); returns failures with the manual fix. */
  removeHelper(): string[] {
    const failed = this.helper?.remove() ?? [];
    this.info.errors.push(...failed.map((f) => `helper table not removed: ${f}`));
    this.info.errors.push(...this.handles.errors);
    return failed;
  }

  async close(): Promise<string[]> {
    await this.closeSockets();
    return this.removeHelper();
  }
}

/** kprobe path: only the helper table (and the recovery of a crashed capture's). */
export interface NftKprobeHelper {
  info: { helper_table: string | null; helper_recovered: RecoveryReport | null; user_trace_rules: string[] };
  remove(): string[];
}

export function startNftKprobeHelper(allowSystemChanges: boolean, log: (s: string) => void): NftKprobeHelper {
  const recovered = recoverHelper();
  logRecovery(recovered, log);
  const info: NftKprobeHelper['info'] = { helper_table: null, helper_recovered: recovered ?? null, user_trace_rules: [] };
  let helper: NftHelper | undefined;
  if (allowSystemChanges) {
    helper = new NftHelper(false);
    helper.install([listNetns()[0]!]);
    info.helper_table = `${HELPER_FAMILY} ${HELPER_TABLE}`;
  } else {
    info.user_trace_rules = userTraceRules(listNetns());
    if (info.user_trace_rules.length === 0) {
      log(`nft: no rule sets 'meta nftrace set 1', so nftables tracing is off and no nft event will be reported: add such a rule, or use --allow-system-changes to let retis-capture add one (table ${HELPER_FAMILY} ${HELPER_TABLE}, removed at exit)`);
    }
  }
  return { info, remove: () => helper?.remove() ?? [] };
}

function logRecovery(r: RecoveryReport | undefined, log: (s: string) => void): void {
  if (!r) return;
  for (const x of r.removed) log(`removed the nft helper table ${x}, left by a capture that did not stop cleanly (pid ${r.pids.join(', ')})`);
  for (const f of r.failed) log(`could not remove a leftover nft helper table: ${f}`);
}
