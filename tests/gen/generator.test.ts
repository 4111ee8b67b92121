/**
 * The synthetic event generator (bench/gen/generate.ts): determinism, exact event
 * counts, Retis JSON shapes, packet bytes, OVS correlation, and — most importantly —
 * that FILE.truth.json agrees with an independent re-analysis of the produced lines.
 *
 * The checker below deliberately shares no code with the generator: it parses the
 * JSON text, re-implements Retis's sort tracking (retis/src/process/tracking.rs) and
 * event sorter (series.rs) from the spec, and counts drops / upcall outcomes itself.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  expectedStats,
  generateEvents,
  type GenOptions,
  RetisEventGenerator,
  type Truth,
  writeEventFile,
} from '../../bench/gen/generate.ts';
import { ovsQueueId } from '../../bench/gen/jhash.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const NATIVE_ORDER = [
  'common', 'kernel', 'userspace', 'tracking', 'skb-tracking', 'skb-drop', 'packet', 'skb',
  'netns', 'dev', 'ovs', 'ovs-detrace', 'nft', 'ct', 'startup',
];
const DROP_REASONS = ['NETFILTER_DROP', 'NO_SOCKET', 'OTHERHOST', 'PKT_TOO_SMALL', 'TCP_CSUM', 'openvswitch/OVS_DROP_LAST_ACTION'];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

function lines(opts: GenOptions): string[] {
  return [...generateEvents(opts)];
}
function obj(v: Json | undefined): Obj {
  if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) throw new Error(`not an object: ${JSON.stringify(v)}`);
  return v;
}
function num(v: Json | undefined): number {
  if (typeof v !== 'number') throw new Error(`not a number: ${JSON.stringify(v)}`);
  return v;
}
function str(v: Json | undefined): string {
  if (typeof v !== 'string') throw new Error(`not a string: ${JSON.stringify(v)}`);
  return v;
}

const TRK_RE = /"skb-tracking":\{"orig_head":(\d+),"timestamp":(\d+),"skb":(\d+)\}/;

// ---------------------------------------------------------------------------
// Independent re-analysis
// ---------------------------------------------------------------------------

interface Info {
  ts: bigint;
  head: bigint;
}
interface Analysis {
  events: number;
  packets: number;
  series: number;
  seriesByBuf: Record<string, number>;
  drops: Record<string, number>;
  upcalls: { total: number; executed: number; enqueue_failed: number; lost_in_userspace: number };
  probes: Record<string, number>;
  clones: number;
}

/** Retis's `sort` series count for a given --max-buffer (0 = unbounded), from scratch. */
function sortSeries(stream: { info: Info | null; ts: bigint }[], maxBuffer: number): number {
  const live = new Map<Info, number>();
  const untracked: bigint[] = [];
  let n = 0;
  let series = 0;
  const popOldest = (): void => {
    let oldest: Info | null = null;
    for (const k of live.keys()) {
      if (!oldest || k.ts < oldest.ts || (k.ts === oldest.ts && k.head < oldest.head)) oldest = k;
    }
    if (oldest && (untracked.length === 0 || oldest.ts < untracked[0])) {
      n -= live.get(oldest) as number;
      live.delete(oldest);
    } else {
      untracked.shift();
      n--;
    }
    series++;
  };
  for (const e of stream) {
    if (e.info) live.set(e.info, (live.get(e.info) ?? 0) + 1);
    else untracked.push(e.ts);
    n++;
    if (maxBuffer !== 0) while (n >= maxBuffer) popOldest();
  }
  while (n > 0) popOldest();
  return series;
}

function analyze(ls: string[], buffers: number[]): Analysis {
  const skbTracking = new Map<string, Info>();
  const upcallsInflight = new Map<string, Info>();
  const queues = new Map<number, Info>();
  const stream: { info: Info | null; ts: bigint }[] = [];
  const drops: Record<string, number> = {};
  const probes: Record<string, number> = {};
  const skbsPerId = new Map<string, Set<string>>();
  interface Up {
    failed: boolean;
    recv: boolean;
    exec: boolean;
    action: boolean;
  }
  const upcallRecords: Up[] = [];
  const byQueue = new Map<number, Up>();
  const pendingUpcall = new Map<string, Up>();

  ls.forEach((line, i) => {
    const ev = obj(JSON.parse(line) as Json);
    const ts = BigInt(num(obj(ev.common).timestamp));
    if (i === 0) {
      stream.push({ info: null, ts });
      return;
    }
    const m = TRK_RE.exec(line);
    const trkId = m ? `${m[2]}:${m[1]}` : null;
    if (m && trkId) {
      const set = skbsPerId.get(trkId) ?? new Set<string>();
      set.add(m[3]);
      skbsPerId.set(trkId, set);
    }
    const probe = ev.kernel ? `${str(obj(ev.kernel).probe_type)}/${str(obj(ev.kernel).symbol)}` : `${str(obj(ev.userspace).probe_type)}/${str(obj(ev.userspace).symbol)}`;
    probes[probe] = (probes[probe] ?? 0) + 1;
    if (ev['skb-drop']) {
      const d = obj(ev['skb-drop']);
      const k = d.subsys ? `${str(d.subsys)}/${str(d.drop_reason)}` : str(d.drop_reason);
      drops[k] = (drops[k] ?? 0) + 1;
    }

    // AddTracking::process_one, from the spec (§3).
    const processSkb = (): Info | null => {
      if (!m || !trkId) return null;
      let info = skbTracking.get(trkId);
      if (!info) {
        info = { ts: BigInt(m[2]), head: BigInt(m[1]) };
        skbTracking.set(trkId, info);
      }
      return info;
    };
    let info: Info | null;
    const ovs = ev.ovs ? obj(ev.ovs) : null;
    const type = ovs ? str(ovs.event_type) : '';
    if (type === 'upcall') {
      info = processSkb();
      if (info) upcallsInflight.set(`${ts}|${num(ovs?.cpu)}`, info);
      const rec: Up = { failed: false, recv: false, exec: false, action: false };
      upcallRecords.push(rec);
      pendingUpcall.set(`${ts}|${num(ovs?.cpu)}`, rec);
    } else if (type === 'upcall_return') {
      info = processSkb();
      upcallsInflight.delete(`${num(ovs?.upcall_ts)}|${num(ovs?.upcall_cpu)}`);
    } else if (type === 'upcall_enqueue') {
      const key = `${num(ovs?.upcall_ts)}|${num(ovs?.upcall_cpu)}`;
      const found = upcallsInflight.get(key);
      if (!found) throw new Error(`line ${i}: Enqueue without an associated upcall event.`);
      info = found;
      const q = num(ovs?.queue_id);
      queues.set(q, found);
      const rec = pendingUpcall.get(key) as Up;
      rec.failed = num(ovs?.ret) !== 0;
      byQueue.set(q, rec);
    } else if (type === 'recv_upcall' || type === 'flow_operation' || (type === 'action_execute' && ovs?.queue_id !== undefined)) {
      const q = num(ovs?.queue_id);
      const found = queues.get(q);
      if (!found) throw new Error(`line ${i}: Queue Id lookup failed for OVS userspace event: ${q}`);
      info = found;
      const rec = byQueue.get(q) as Up;
      if (type === 'recv_upcall') rec.recv = true;
      else if (type === 'flow_operation' && str(ovs?.op_type) === 'exec') rec.exec = true;
      else if (type === 'action_execute') {
        rec.action = true;
        if (trkId) skbTracking.set(trkId, found);
      }
    } else {
      info = processSkb();
    }
    stream.push({ info, ts });
  });

  const distinctInfos = new Set(stream.map((e) => e.info).filter((x): x is Info => x !== null));
  let clones = 0;
  for (const s of skbsPerId.values()) clones += s.size - 1;
  const upcalls = { total: upcallRecords.length, executed: 0, enqueue_failed: 0, lost_in_userspace: 0 };
  for (const r of upcallRecords) {
    if (r.failed) {
      expect(r.recv || r.exec || r.action).toBe(false);
      upcalls.enqueue_failed++;
    } else if (r.exec && r.action) upcalls.executed++;
    else if (r.recv && !r.exec && !r.action) upcalls.lost_in_userspace++;
    else throw new Error(`inconsistent upcall ${JSON.stringify(r)}`);
  }
  const seriesByBuf: Record<string, number> = {};
  for (const b of buffers) seriesByBuf[String(b)] = sortSeries(stream, b);
  return {
    events: ls.length - 1,
    packets: skbsPerId.size,
    series: stream.filter((e) => e.info === null).length + distinctInfos.size,
    seriesByBuf,
    drops,
    upcalls,
    probes,
    clones,
  };
}

// ---------------------------------------------------------------------------
// Packet checks
// ---------------------------------------------------------------------------

function csum16(b: Uint8Array, off: number, len: number, acc = 0): number {
  for (let i = 0; i + 1 < len; i += 2) acc += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) acc += b[off + len - 1] << 8;
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 65536);
  return acc;
}

// Hot-loop assertions: vitest's expect() per field made the 20k-event scan take ~30 s.
function need(cond: boolean, what: () => string): void {
  if (!cond) throw new Error(what());
}
function keysAre(o: Obj, keys: string[], what: string): void {
  const k = Object.keys(o);
  need(k.length === keys.length && k.every((x, i) => x === keys[i]), () => `${what}: keys ${k.join(',')} != ${keys.join(',')}`);
}

/**
 * Parses the captured frame; checks headers against each other and Retis's len fields.
 * `drop`: the reason this packet is eventually dropped for, if any (all its events carry
 * e.g. the corrupted checksum, only the last one has the skb-drop section).
 */
function checkPacket(ev: Obj, line: string, drop: string): void {
  const ctx = (): string => line.slice(0, 300);
  const p = obj(ev.packet);
  keysAre(p, ['len', 'capture_len', 'data'], 'packet');
  const data = Buffer.from(str(p.data), 'base64');
  const len = num(p.len);
  const cap = num(p.capture_len);
  need(data.length === cap && cap <= 255 && len >= cap, () => `packet lengths ${len}/${cap}/${data.length}: ${ctx()}`);
  let o = 12;
  let etype = data.readUInt16BE(o);
  if (etype === 0x8100) {
    need((data.readUInt16BE(14) & 0xfff) === 100, () => `vlan id: ${ctx()}`);
    o = 16;
    etype = data.readUInt16BE(o);
  }
  o += 2;
  const l2 = o;
  const tooSmall = drop === 'PKT_TOO_SMALL';
  let proto: number;
  let l4off: number;
  let l4len: number;
  let pseudo = 0;
  if (etype === 0x0800) {
    need(data[o] === 0x45, () => `IPv4 version/ihl: ${ctx()}`);
    need(csum16(data, o, 20) === 0xffff, () => `IPv4 header checksum: ${ctx()}`);
    const tot = data.readUInt16BE(o + 2);
    need(tooSmall ? tot > len - l2 : tot === len - l2, () => `IPv4 total length ${tot} vs len ${len}: ${ctx()}`);
    proto = data[o + 9];
    l4off = o + 20;
    l4len = tot - 20;
    pseudo = csum16(data, o + 12, 8) + proto + l4len;
  } else {
    need(etype === 0x86dd && data[o] >> 4 === 6, () => `ethertype ${etype}: ${ctx()}`);
    const plen = data.readUInt16BE(o + 4);
    need(tooSmall ? plen > len - l2 - 40 : plen === len - l2 - 40, () => `IPv6 payload length: ${ctx()}`);
    proto = data[o + 6];
    l4off = o + 40;
    l4len = plen;
    pseudo = csum16(data, o + 8, 32) + proto + l4len;
  }
  need([1, 6, 17, 58].includes(proto), () => `L4 protocol ${proto}: ${ctx()}`);
  const ipSummed = num(obj(obj(ev.skb).meta).ip_summed);
  // Whole packet captured and not left to offload: the L4 checksum can be verified.
  if (cap === len && ipSummed !== 3 && !tooSmall) {
    const ok = csum16(data, l4off, l4len, proto === 1 ? 0 : pseudo) === 0xffff;
    need(ok === (drop !== 'TCP_CSUM'), () => `L4 checksum ${ok ? 'valid' : 'invalid'} (${drop}): ${ctx()}`);
  }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe('synthetic Retis event generator', () => {
  const opts: GenOptions = { events: 20_000, seed: 42, ovsRatio: 0.15, dropRatio: 0.1, cloneRatio: 0.1 };
  const ls = lines(opts);
  const truthObj: Truth = expectedStats(opts);

  it('is deterministic for a seed and differs across seeds', () => {
    const digest = (xs: Iterable<string>): string => {
      const h = createHash('sha256');
      for (const x of xs) h.update(x).update('\n');
      return h.digest('hex');
    };
    expect(digest(generateEvents(opts))).toBe(digest(ls));
    expect(digest(generateEvents({ ...opts, seed: 43 }))).not.toBe(digest(ls));
    expect(expectedStats(opts)).toEqual(truthObj);
  });

  it('writes exactly the requested number of events after the startup line', () => {
    for (const n of [0, 1, 2, 3, 7, 57, 400]) {
      const g = new RetisEventGenerator({ events: n, seed: n + 1, ovsRatio: 0.5 });
      const out = [...g.lines()];
      expect(out.length).toBe(n + 1);
      expect(g.truth().events).toBe(n);
      expect(g.truth().lines).toBe(n + 1);
    }
    expect(ls.length).toBe(opts.events + 1);
  });

  it('emits a v1.7 startup event first', () => {
    const s = obj(JSON.parse(ls[0]) as Json);
    expect(Object.keys(s)).toEqual(['common', 'startup']);
    const st = obj(s.startup);
    expect(Object.keys(st)).toEqual(['retis_version', 'cmdline', 'clock_monotonic_offset', 'machine']);
    expect(st.retis_version).toBe('v1.7.0');
    expect(Object.keys(obj(st.clock_monotonic_offset))).toEqual(['sec', 'nsec']);
    expect(Object.keys(obj(st.machine))).toEqual(['kernel_release', 'kernel_version', 'hardware_name']);
    expect(obj(st.machine).hardware_name).toBe('x86_64');
    const t0 = num(obj(s.common).timestamp);
    for (const l of ls.slice(1, 100)) expect(num(obj(obj(JSON.parse(l) as Json).common).timestamp)).toBeGreaterThan(t0);
  });

  it('emits valid JSON in Retis shapes and native section order', () => {
    const dropOf = new Map<string, string>(); // tracking id -> drop reason
    for (const line of ls) {
      const d = /"drop_reason":"(\w+)"/.exec(line);
      const m = TRK_RE.exec(line);
      if (d && m) dropOf.set(m[1] + m[2], d[1]);
    }
    expect([...dropOf.values()]).toContain('TCP_CSUM');
    expect([...dropOf.values()]).toContain('PKT_TOO_SMALL');
    const ovsOrder: Record<string, string[]> = {
      upcall: ['event_type', 'cmd', 'port', 'cpu'],
      upcall_enqueue: ['event_type', 'ret', 'cmd', 'port', 'upcall_ts', 'upcall_cpu', 'queue_id'],
      upcall_return: ['event_type', 'upcall_ts', 'upcall_cpu', 'ret'],
      recv_upcall: ['event_type', 'type', 'pkt_size', 'key_size', 'queue_id', 'batch_ts', 'batch_idx'],
      flow_operation: ['event_type', 'op_type', 'queue_id', 'batch_ts', 'batch_idx'],
      flow_lookup: ['event_type', 'flow', 'sf_acts', 'ufid', 'n_mask_hit', 'n_cache_hit', 'dpflow', 'ofpflows'],
    };
    const seen = new Set<string>();
    for (const line of ls.slice(1)) {
      const ctx = (): string => line.slice(0, 300);
      need(/^[\x20-\x7e]*$/.test(line), () => `non-ASCII (the writer uses latin1): ${ctx()}`);
      const ev = obj(JSON.parse(line) as Json);
      const keys = Object.keys(ev);
      keys.forEach((k) => seen.add(k));
      const idx = keys.map((k) => NATIVE_ORDER.indexOf(k));
      need(idx.every((x, i) => x >= 0 && (i === 0 || x > idx[i - 1])), () => `section order ${keys.join()}`);
      const common = obj(ev.common);
      keysAre(common, ['timestamp', 'smp_id', 'task'], 'common');
      keysAre(obj(common.task), ['pid', 'tgid', 'comm'], 'task');
      need(Boolean(ev.kernel) !== Boolean(ev.userspace), () => `kernel xor userspace: ${ctx()}`);
      if (ev.kernel) {
        const k = obj(ev.kernel);
        keysAre(k, ['symbol', 'probe_type'], 'kernel');
        need(['raw_tracepoint', 'kprobe', 'kretprobe'].includes(str(k.probe_type)), ctx);
        // u64 values are exact bare integers above 2^53
        const m = TRK_RE.exec(line);
        need(m !== null, () => `skb-tracking: ${ctx()}`);
        const [, head, tts, skb] = m as RegExpExecArray;
        for (const v of [head, skb]) need(BigInt(v) >> 32n >= 0xffff8881n && BigInt(v) >> 32n <= 0xffff8890n, () => `u64 ${v}`);
        need(BigInt(tts) <= BigInt(num(common.timestamp)), () => `tracking ts after event ts: ${ctx()}`);
        const sk = obj(ev.skb);
        const sk0 = Object.keys(sk);
        need(sk0.includes('meta') && sk0.includes('data_ref'), ctx);
        keysAre(obj(sk.meta), ['len', 'data_len', 'hash', 'ip_summed', 'csum', 'csum_level', 'priority'], 'skb.meta');
        keysAre(obj(sk.data_ref), ['nohdr', 'cloned', 'fclone', 'users', 'dataref'], 'skb.data_ref');
        keysAre(obj(ev.netns), ['cookie', 'inum'], 'netns');
        const dk = Object.keys(obj(ev.dev));
        need(dk[0] === 'name' && dk[1] === 'ifindex' && (dk.length === 2 || dk[2] === 'rx_ifindex'), ctx);
        checkPacket(ev, line, dropOf.get(head + tts) ?? '');
      } else {
        const u = obj(ev.userspace);
        keysAre(u, ['probe_type', 'symbol', 'ip', 'path', 'pid', 'tid'], 'userspace');
        need(u.probe_type === 'usdt' && ev['skb-tracking'] === undefined && ev.packet === undefined, ctx);
      }
      if (ev.ovs) {
        const o = obj(ev.ovs);
        const type = str(o.event_type);
        const k = Object.keys(o);
        if (type === 'action_execute') {
          need(k[0] === 'event_type' && k[1] === 'action' && k.indexOf('recirc_id') > 1, ctx);
          need(o.queue_id === undefined || k[k.length - 1] === 'queue_id', ctx);
        } else {
          keysAre(o, ovsOrder[type], `ovs ${type}`);
        }
        if (type === 'upcall_enqueue') {
          // queue_id = jhash of the packet's first 64 bytes, as Retis computes it
          const data = Buffer.from(str(obj(ev.packet).data), 'base64');
          need(num(o.queue_id) === ovsQueueId(data), () => `queue_id != jhash(packet): ${ctx()}`);
        }
      }
      if (ev['skb-drop']) need(obj(ev.kernel).symbol === 'skb:kfree_skb', ctx);
      if (ev.ct) {
        const ck = Object.keys(obj(ev.ct));
        need(ck.slice(0, 5).join() === 'state,zone_id,zone_dir,orig,reply' && ck.slice(-2).join() === 'mark,ct_status', () => `ct keys ${ck.join()}`);
      }
      if (ev.nft) {
        const nk = Object.keys(obj(ev.nft));
        need(nk.slice(0, 3).join() === 'table_name,chain_name,verdict' && nk[nk.length - 1] === 'policy', () => `nft keys ${nk.join()}`);
      }
    }
    expect([...seen].sort()).toEqual(
      ['common', 'kernel', 'userspace', 'skb-tracking', 'skb-drop', 'packet', 'skb', 'netns', 'dev', 'ovs', 'nft', 'ct'].sort(),
    );
  });

  it('keeps time order per CPU and only small inversions across CPUs', () => {
    const lastPerCpu = new Map<number, number>();
    let max = 0;
    let inversions = 0;
    for (const line of ls.slice(1)) {
      const c = obj(obj(JSON.parse(line) as Json).common);
      const ts = num(c.timestamp);
      const cpu = num(c.smp_id);
      need(ts >= (lastPerCpu.get(cpu) ?? 0), () => `CPU ${cpu} went back in time: ${line.slice(0, 200)}`);
      lastPerCpu.set(cpu, ts);
      if (ts < max) inversions++;
      need(max - ts < 2_000, () => `inversion of ${max - ts} ns: ${line.slice(0, 200)}`);
      max = Math.max(max, ts);
    }
    expect(inversions).toBeGreaterThan(0); // Retis's multi-CPU merge is not perfectly sorted
    expect(lastPerCpu.size).toBeGreaterThan(4);
  });

  it('follows the OVS upcall chain in file order', () => {
    const seen = new Map<number, string[]>();
    for (const line of ls.slice(1)) {
      const ev = obj(JSON.parse(line) as Json);
      if (!ev.ovs) continue;
      const o = obj(ev.ovs);
      if (o.queue_id === undefined) continue;
      const t = str(o.event_type);
      const step = t === 'flow_operation' ? `op_${str(o.op_type)}` : t;
      const q = num(o.queue_id);
      const list = seen.get(q) ?? [];
      list.push(step);
      seen.set(q, list);
    }
    expect(seen.size).toBeGreaterThan(50);
    for (const [q, steps] of seen) {
      // A queue_id (hash of the first 64 bytes) may come back for a later identical
      // packet (e.g. IPv6 pure ACKs), but never while an earlier chain is still going.
      const s = steps.join(' ');
      expect(
        /^(upcall_enqueue( recv_upcall( op_put)?( op_exec( action_execute)+)?)? ?)+$/.test(s),
        `queue ${q}: ${s}`,
      ).toBe(true);
    }
  });

  it('has a truth file that matches an independent count of the events', () => {
    const a = analyze(ls, [0, 1000, 100]);
    const t = expectedStats({ ...opts, sortBuffers: [1000, 100] });
    expect(t.events).toBe(a.events);
    expect(t.packets).toBe(a.packets);
    expect(t.clones).toBe(a.clones);
    expect(t.series).toBe(a.series);
    expect(t.series).toBe(a.seriesByBuf['0']);
    expect(t.series_by_max_buffer).toEqual({ '1000': a.seriesByBuf['1000'], '100': a.seriesByBuf['100'] });
    expect(t.series_by_max_buffer['100']).toBeGreaterThan(t.series); // small buffers split series
    expect(t.drops_by_reason).toEqual(a.drops);
    expect(t.drops).toBe(Object.values(a.drops).reduce((x, y) => x + y, 0));
    expect(t.upcalls).toEqual(a.upcalls);
    expect(t.probes).toEqual(a.probes);
    // and the truth describes rich data
    expect(Object.keys(t.drops_by_reason).sort()).toEqual(DROP_REASONS);
    expect(t.upcalls.executed).toBeGreaterThan(0);
    expect(t.upcalls.enqueue_failed).toBeGreaterThan(0);
    expect(t.upcalls.lost_in_userspace).toBeGreaterThan(0);
    expect(t.upcalls.total).toBe(t.upcalls.executed + t.upcalls.enqueue_failed + t.upcalls.lost_in_userspace);
    expect(t.reinjected).toBe(t.upcalls.executed);
    expect(t.series).toBe(1 + t.packets - t.reinjected);
    expect(t.clones).toBeGreaterThan(0);
  });

  it('writeEventFile and the CLI write the same file and truth', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'retis-gen-'));
    try {
      const o: GenOptions = { events: 700, seed: 9, ovsRatio: 0.2, dropRatio: 0.1, cloneRatio: 0.1 };
      const expected = lines(o).join('\n') + '\n';
      const t1 = await writeEventFile(o, join(dir, 'lib.json'));
      expect(readFileSync(join(dir, 'lib.json'), 'utf8')).toBe(expected);
      expect(JSON.parse(readFileSync(join(dir, 'lib.json.truth.json'), 'utf8'))).toEqual(t1);
      execFileSync(
        'npx',
        ['tsx', 'bench/gen/generate.ts', '--events', '700', '--seed', '9', '--ovs-ratio', '0.2', '--drop-ratio', '0.1', '--clone-ratio', '0.1', '-o', join(dir, 'cli.json')],
        { cwd: ROOT, stdio: 'pipe' },
      );
      expect(readFileSync(join(dir, 'cli.json'), 'utf8')).toBe(expected);
      expect(JSON.parse(readFileSync(join(dir, 'cli.json.truth.json'), 'utf8'))).toEqual(t1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fixtures/synthetic', () => {
  // Must match fixtures/synthetic/README.md.
  const fixtures: { file: string; opts: GenOptions }[] = [
    { file: 'ovs-small.json', opts: { events: 200, seed: 10, ovsRatio: 0.6, dropRatio: 0.05, cloneRatio: 0.05 } },
    { file: 'mixed-small.json', opts: { events: 500, seed: 3, ovsRatio: 0.05, dropRatio: 0.25, cloneRatio: 0.15 } },
  ];
  for (const { file, opts } of fixtures) {
    const path = join(ROOT, 'fixtures', 'synthetic', file);
    it.skipIf(!existsSync(path))(`${file} is reproducible and its truth is right`, () => {
      const text = readFileSync(path, 'utf8');
      expect(text).toBe(lines(opts).join('\n') + '\n');
      const truth = JSON.parse(readFileSync(`${path}.truth.json`, 'utf8')) as Truth;
      expect(truth).toEqual(expectedStats(opts));
      const a = analyze(text.trimEnd().split('\n'), [0]);
      expect(truth.series).toBe(a.series);
      expect(truth.upcalls).toEqual(a.upcalls);
      expect(truth.drops_by_reason).toEqual(a.drops);
    });
  }

  it.skipIf(!existsSync(join(ROOT, 'fixtures', 'synthetic', 'ovs-small.json')))('cover the cases tests rely on', () => {
    const ovs = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'synthetic', 'ovs-small.json.truth.json'), 'utf8')) as Truth;
    expect(ovs.upcalls.executed).toBeGreaterThan(0);
    expect(ovs.upcalls.enqueue_failed).toBeGreaterThan(0);
    expect(ovs.upcalls.lost_in_userspace).toBeGreaterThan(0);
    const mixed = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'synthetic', 'mixed-small.json.truth.json'), 'utf8')) as Truth;
    expect(Object.keys(mixed.drops_by_reason).sort()).toEqual(DROP_REASONS);
    expect(mixed.clones).toBeGreaterThan(0);
    expect(mixed.upcalls.total).toBeGreaterThan(0);
  });
});
