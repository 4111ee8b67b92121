/**
 * Ring records -> Arrow stream -> the analyzer's loader, without a kernel: the hot path
 * (EventEncoder, columns) and the slow path (recordToEvent, used for --print and pcap-ng) must
 * produce the same Retis events, and the stream must load as the model (exact u64 values,
 * absent sections NULL, flat columns derived). Also: a stream cut mid-batch (kill -9) keeps its
 * complete batches.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Db } from '../../analyze/db.ts';
import { loadInputs } from '../../analyze/load/index.ts';
import { eventFromRow, eventToJson, type RetisEvent } from '../../analyze/model/event.ts';
import { Btf } from '../../bpf/btf.ts';
import { RECORD_HEADER_BYTES } from '../../bpf/ringbuf.ts';
import { ArrowStreamFile } from '../../capture/arrow-stream.ts';
import { EventEncoder, recordToEvent, startupEvent, type ProbeInfo, type StartupInfo } from '../../capture/decode.ts';
import { DropReasons } from '../../capture/drop-reasons.ts';
import { activeSections, captureSchema } from '../../capture/session.ts';
import { makeBatch, udpFrame, type SyntheticRecord } from '../../capture/synthetic.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-capture-encode-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PROBES = new Map<number, ProbeInfo>([
  [1, { symbol: 'net:netif_receive_skb', probeType: 'raw_tracepoint', user: false, binary: undefined }],
  [2, { symbol: 'skb:kfree_skb', probeType: 'raw_tracepoint', user: false, binary: undefined }],
  [3, { symbol: 'lab:hit', probeType: 'usdt', user: true, binary: '/usr/bin/provider' }],
]);

/** Drop reasons from a BTF-less fake: only the core enum matters here. */
function dropReasons(): DropReasons {
  try {
    return new DropReasons(Btf.vmlinux());
  } catch {
    return new DropReasons({ dropReasons: () => new Map([[2, 'NOT_SPECIFIED'], [3, 'NO_SOCKET']]), findType: () => undefined } as unknown as Btf);
  }
}

const STARTUP: StartupInfo = {
  timestamp: 1000n,
  retisVersion: 'v1.7.0+retis-ts.test',
  cmdline: 'retis-capture test',
  offsetSec: 1_700_000_000n,
  offsetNsec: 123_456_789n,
  kernelRelease: '6.18.0',
  kernelVersion: '#1 SMP',
  hardwareName: 'x86_64',
};

const HEAD = 0xffff_8881_0abc_d000n; // > 2^53: must survive exactly

function records(n: number, from = 0): SyntheticRecord[] {
  const out: SyntheticRecord[] = [];
  for (let i = from; i < from + n; i++) {
    const k = i % 5;
    const base: SyntheticRecord = { ts: 2000n + BigInt(i), probeId: 1, cpu: i % 2, pid: 4242, tgid: 4240, comm: `sender${i % 3}` };
    if (k === 0) out.push({ ...base, origHead: HEAD + BigInt(i * 256), skb: 0xffff_8882_0000_0100n, packet: udpFrame(8, 1000, 2000, i), netns: { inum: 4026531840, cookie: 1n }, dev: { name: 'veth0', ifindex: 7, rxIfindex: 7 } });
    else if (k === 1) out.push({ ...base, probeId: 2, origHead: HEAD, dropReason: 3, packet: udpFrame(0), pktLen: 1500, netns: { inum: 4026531841 } });
    else if (k === 2) out.push({ ...base, vlan: { proto: 0x8100, tci: (5 << 13) | 0x1000 | 123 }, meta: { len: 98, dataLen: 0, hash: 0x7e2c5976, ipSummed: 3, csum: 12, csumLevel: 1, priority: 6 }, dataref: { nohdr: false, cloned: true, fclone: 2, users: 1, dataref: 2 }, gso: { flags: 1, frags: 2, size: 1448, segs: 3, type: 1 }, dev: { name: 'eth0', ifindex: 2 } });
    else if (k === 3) out.push({ ...base, probeId: 3, ip: 0x5555_5555_1234n });
    else out.push({ ...base, probeId: 2, dropReason: (2 << 16) | 1 }); // a subsystem reason
  }
  return out;
}

/**
 * Encode batches into an Arrow file; returns the slow-path events, in order. `compact`: the
 * capture's form (only the given sections, startup event in the schema metadata).
 */
function encode(file: string, batches: ArrayBuffer[], o: { batchRows?: number; maxEvents?: number; compact?: readonly string[] } = {}): { events: RetisEvent[]; encoder: EventEncoder } {
  const schema = o.compact ? captureSchema(o.compact, STARTUP) : captureSchema();
  const arrow = new ArrowStreamFile(file, schema, true);
  const reasons = dropReasons();
  const events: RetisEvent[] = [startupEvent(STARTUP)];
  const encoder = new EventEncoder({
    schema,
    probes: PROBES,
    dropReasons: reasons,
    symbols: undefined,
    batchRows: o.batchRows ?? 64,
    batchPacketBytes: 4096,
    snaplen: 255,
    maxEvents: o.maxEvents ?? Number.MAX_SAFE_INTEGER,
    onBatch: (c) => arrow.write(c.recordBatch()),
    onEvent: (view, off) => events.push(recordToEvent(view, off, PROBES, reasons, undefined)),
  });
  encoder.writeStartup(STARTUP);
  encoder.flush();
  for (const b of batches) encoder.decode(b);
  encoder.flush();
  arrow.close();
  return { events, encoder };
}

async function load(file: string): Promise<{ rows: Record<string, unknown>[] }> {
  const db = await Db.open();
  try {
    await loadInputs(db, [file]);
    return { rows: await db.rows('SELECT * FROM events ORDER BY eid') };
  } finally {
    db.close();
  }
}

describe('capture encoding (no kernel)', () => {
  it('hot path and slow path give the same events, loadable as the model', async () => {
    const file = path.join(tmp, 'events.arrow');
    const recs = records(300);
    // Several ring batches, several Arrow batches (64 rows), packet bytes included.
    const { events, encoder } = encode(file, [makeBatch(recs.slice(0, 100)), makeBatch(recs.slice(100, 130)), makeBatch(recs.slice(130))]);
    expect(encoder.events).toBe(300);
    expect(encoder.malformed).toBe(0);
    const { rows } = await load(file);
    expect(rows).toHaveLength(301);
    const loaded = rows.map((r) => eventToJson(eventFromRow(r)));
    expect(loaded).toEqual(events.map((e) => eventToJson(e)));
    // seq is the record number from 1, startup first.
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => BigInt(i + 1)));
    expect(rows[0]!.startup).not.toBeNull();
    expect(rows[0]!.wall_ns).toBe(1_700_000_000_123_456_789n + 1000n);
  });

  it('keeps u64 exact, names drop reasons, leaves absent sections NULL, derives flat columns', async () => {
    const file = path.join(tmp, 'flat.arrow');
    encode(file, [makeBatch(records(5))]);
    const { rows } = await load(file);
    const [, rx, drop, skb, user, subsys] = rows;
    expect((rx!['skb-tracking'] as { orig_head: bigint }).orig_head).toBe(HEAD);
    expect(rx!.track_id).toBe((2000n << 64n) | HEAD);
    expect(rx!.saddr).toBe('10.0.0.1');
    expect(rx!.dport).toBe(2000);
    expect(rx!.proto).toBe('udp');
    expect(rx!.dev_name).toBe('veth0');
    expect(rx!.netns_inum).toBe(4026531840);
    expect(rx!.probe).toBe('tp:net:netif_receive_skb');
    expect(rx!.pid).toBe(4242);
    expect(rx!.tgid).toBe(4240);
    expect(drop!.reason).toBe('NO_SOCKET');
    expect(drop!.drop_subsys).toBeNull();
    expect((drop!.packet as { len: number }).len).toBe(1500);
    expect((drop!.netns as { cookie: unknown }).cookie).toBeNull();
    expect(drop!.dev).toBeNull();
    expect(skb!.packet).toBeNull();
    expect(skb!['skb-tracking']).toBeNull();
    const s = skb!.skb as { vlan_accel: { proto: number; pcp: number; dei: boolean; vid: number }; data_ref: { cloned: boolean; nohdr: boolean } };
    expect(s.vlan_accel).toEqual({ proto: 0x8100, pcp: 5, dei: true, vid: 123 });
    expect(s.data_ref.cloned).toBe(true);
    expect(s.data_ref.nohdr).toBe(false);
    expect(user!.kernel).toBeNull();
    expect(user!.userspace).toEqual({ probe_type: 'usdt', symbol: 'lab:hit', ip: 0x5555_5555_1234n, path: '/usr/bin/provider', pid: 4240, tid: 4242 });
    expect(subsys!.drop_subsys).toBe('openvswitch');
  });

  it('the compact stream (active sections, startup in the metadata) loads to the same rows', async () => {
    const full = path.join(tmp, 'full.arrow');
    const compact = path.join(tmp, 'compact.arrow');
    const recs = records(300);
    const batches = [makeBatch(recs.slice(0, 100)), makeBatch(recs.slice(100))];
    encode(full, batches);
    encode(compact, batches, { compact: activeSections(['skb', 'skb-drop', 'skb-tracking', 'dev', 'ns'], PROBES.values()) });
    expect(fs.statSync(compact).size).toBeLessThan(fs.statSync(full).size * 0.75);
    const a = (await load(full)).rows;
    const b = (await load(compact)).rows;
    expect(b).toHaveLength(301);
    const strip = (r: Record<string, unknown>): Record<string, unknown> => ({ ...r, src: null });
    expect(b.map(strip)).toEqual(a.map(strip));
    expect(b[0]!.startup).not.toBeNull();
    expect(b[0]!.wall_ns).toBe(1_700_000_000_123_456_789n + 1000n);
  });

  it('stops at --max-events and counts the rest as ignored', async () => {
    const file = path.join(tmp, 'max.arrow');
    const { encoder } = encode(file, [makeBatch(records(50))], { maxEvents: 20 });
    expect(encoder.events).toBe(20);
    expect(encoder.ignored).toBe(30);
    expect(encoder.done).toBe(true);
    expect((await load(file)).rows).toHaveLength(21);
  });

  it('counts malformed records (unknown probe, short record) instead of decoding them', () => {
    const file = path.join(tmp, 'bad.arrow');
    const good = makeBatch(records(2));
    const bad = makeBatch([{ ts: 1n, probeId: 99 }]);
    const short = new ArrayBuffer(RECORD_HEADER_BYTES + 8);
    new DataView(short).setUint32(0, 8, true);
    const { encoder } = encode(file, [good, bad, short]);
    expect(encoder.events).toBe(2);
    expect(encoder.malformed).toBe(2);
  });

  it('a stream cut inside a batch (kill -9) loads every complete batch', async () => {
    const file = path.join(tmp, 'cut.arrow');
    encode(file, [makeBatch(records(200))], { batchRows: 50 });
    const full = fs.readFileSync(file);
    // Drop the end-of-stream marker and half of the last batch.
    fs.writeFileSync(file, full.subarray(0, full.length - 2000));
    const { rows } = await load(file);
    expect(rows.length).toBeGreaterThanOrEqual(151);
    expect(rows.length).toBeLessThan(201);
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => BigInt(i + 1)));
  });
});
