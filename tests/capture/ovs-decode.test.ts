/**
 * The ovs collector's record block (capture/progs/ovs.layout.ts) through both decoding paths
 * (hot: EventEncoder -> Arrow -> loader; slow: recordToEvent for --print/pcap-ng): each variant
 * must come out as Retis's `ovs` section (retis-events ovs.rs field names and values), and the
 * other sections of the record must be unaffected by the block at its end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Db } from '../../analyze/db.ts';
import { loadInputs } from '../../analyze/load/index.ts';
import { eventFromRow, eventToJson, type RetisEvent } from '../../analyze/model/event.ts';
import { ArrowStreamFile } from '../../capture/arrow-stream.ts';
import { EventEncoder, recordToEvent, type ProbeInfo } from '../../capture/decode.ts';
import type { DropReasons } from '../../capture/drop-reasons.ts';
import { OVS_ACTIONS, ovsSection } from '../../capture/ovs/decode.ts';
import { OvsFlags, OvsKind, ovsEvent } from '../../capture/progs/ovs.layout.ts';
import { captureSchema } from '../../capture/session.ts';
import { ovsUnavailable } from '../../capture/collectors.ts';
import { hasUsdtNotes, ovsProbes } from '../../capture/ovs/probes.ts';
import type { Btf } from '../../bpf/btf.ts';
import type { KernelFeatures } from '../../bpf/features.ts';
import { BUILD_DIR } from '../../bpf/native.ts';
import { makeBatch, udpFrame, type SyntheticRecord } from '../../capture/synthetic.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-ovs-decode-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const O = ovsEvent.offsets;
const K = OvsKind.values;

/** An OVS block with the given fields (numbers, bigints, byte arrays by layout field name). */
function block(f: Partial<Record<keyof typeof O, number | bigint | number[]>>): Uint8Array {
  const b = new Uint8Array(ovsEvent.size);
  const v = new DataView(b.buffer);
  for (const fi of ovsEvent.fields) {
    const val = f[fi.name as keyof typeof O];
    if (val === undefined) continue;
    if (Array.isArray(val)) {
      const elem = fi.size / (fi.length ?? 1);
      val.forEach((x, i) => (elem === 4 ? v.setUint32(fi.offset + 4 * i, x, true) : v.setUint8(fi.offset + i, x)));
    } else if (typeof val === 'bigint') v.setBigUint64(fi.offset, val, true);
    else if (fi.type === 's32') v.setInt32(fi.offset, val, true);
    else if (fi.size === 4) v.setUint32(fi.offset, val, true);
    else if (fi.size === 2) v.setUint16(fi.offset, val, fi.name.endsWith('_port') ? false : true);
    else v.setUint8(fi.offset, val);
  }
  return b;
}

const PROBES = new Map<number, ProbeInfo>([
  [1, { symbol: 'openvswitch:ovs_dp_upcall', probeType: 'raw_tracepoint', user: false, binary: undefined }],
  [2, { symbol: 'queue_userspace_packet', probeType: 'kretprobe', user: false, binary: undefined }],
  [3, { symbol: 'openvswitch:ovs_do_execute_action', probeType: 'raw_tracepoint', user: false, binary: undefined }],
  [4, { symbol: 'ovs_flow_tbl_lookup_stats', probeType: 'kretprobe', user: false, binary: undefined }],
  [5, { symbol: 'ovs_dp_upcall', probeType: 'kretprobe', user: false, binary: undefined }],
  [6, { symbol: 'dpif_recv:recv_upcall', probeType: 'usdt', user: true, binary: '/usr/sbin/ovs-vswitchd' }],
]);
const noReasons = { name: () => ({ subsys: undefined, reason: 'NOT_SPECIFIED' }) } as unknown as DropReasons;

const HEAD = 0xffff_8881_0abc_d000n;
const pkt = udpFrame(20);
const trk = { origHead: HEAD, skb: 0xffff_8882_0000_0100n, trackTs: 5000n, packet: pkt };

/** Each record and the ovs section it must decode to. */
const CASES: [SyntheticRecord, Record<string, unknown>][] = [
  [{ ts: 5000n, probeId: 1, ...trk, ovs: block({ kind: K.upcall, cmd: 1, port: 3366920467, cpu: 1 }) }, { event_type: 'upcall', cmd: 1, port: 3366920467, cpu: 1 }],
  [
    { ts: 5100n, probeId: 2, ...trk, ovs: block({ kind: K.upcall_enqueue, ret: -11, cmd: 1, port: 7, upcall_ts: 5000n, upcall_cpu: 1, queue_id: 0xdeadbeef }) },
    { event_type: 'upcall_enqueue', ret: -11, cmd: 1, port: 7, upcall_ts: 5000, upcall_cpu: 1, queue_id: 0xdeadbeef },
  ],
  [{ ts: 5200n, probeId: 5, ...trk, ovs: block({ kind: K.upcall_return, upcall_ts: 5000n, upcall_cpu: 1, ret: 0 }) }, { event_type: 'upcall_return', upcall_ts: 5000, upcall_cpu: 1, ret: 0 }],
  [{ ts: 5300n, probeId: 3, ...trk, ovs: block({ kind: K.action_execute, action: 1, port: 2, recirc_id: 0 }) }, { event_type: 'action_execute', action: 'output', port: 2, recirc_id: 0 }],
  [
    { ts: 5400n, probeId: 3, ...trk, ovs: block({ kind: K.action_execute, action: 7, arg: 0x22, recirc_id: 3, flags: OvsFlags.values.queue_id, queue_id: 1361394472 }) },
    { event_type: 'action_execute', action: 'recirc', id: 0x22, recirc_id: 3, queue_id: 1361394472 },
  ],
  [{ ts: 5450n, probeId: 3, ...trk, ovs: block({ kind: K.action_execute, action: 24, arg: 0x30004, recirc_id: 0 }) }, { event_type: 'action_execute', action: 'drop', reason: 0x30004, recirc_id: 0 }],
  [{ ts: 5460n, probeId: 3, ...trk, ovs: block({ kind: K.action_execute, action: 2, recirc_id: 0 }) }, { event_type: 'action_execute', action: 'userspace', recirc_id: 0 }],
  [{ ts: 5470n, probeId: 3, ...trk, ovs: block({ kind: K.action_execute, action: 99, recirc_id: 1 }) }, { event_type: 'action_execute', recirc_id: 1 }],
  [
    // ct(commit, zone=20, nat(dst=10.244.1.3-10.244.1.30:36895-36900)): Retis's example, flags as the kernel sets them (commit, ip4, nat, nat_dst, map_ips, proto_specified)
    {
      ts: 5500n, probeId: 3, ...trk,
      ovs: block({ kind: K.action_execute, action: 12, recirc_id: 34, ct_flags: 469, ct_zone: 20, ct_min_addr: [10, 244, 1, 3], ct_max_addr: [10, 244, 1, 30], ct_min_port: 36895, ct_max_port: 36900 }),
    },
    { event_type: 'action_execute', action: 'ct', flags: 469, zone_id: 20, nat: { dir: 'dst', min_addr: '10.244.1.3', max_addr: '10.244.1.30', min_port: 36895, max_port: 36900 }, recirc_id: 34 },
  ],
  [
    { ts: 5600n, probeId: 4, ...trk, ovs: block({ kind: K.flow_lookup, flow: 0xffff_8881_1111_2222n, sf_acts: 0xffff_8881_3333_4444n, ufid: [1, 2, 3, 0xfffffffe], n_mask_hit: 2, n_cache_hit: 1 }) },
    { event_type: 'flow_lookup', flow: 0xffff_8881_1111_2222n, sf_acts: 0xffff_8881_3333_4444n, ufid: [1, 2, 3, 0xfffffffe], n_mask_hit: 2, n_cache_hit: 1, dpflow: '', ofpflows: [] },
  ],
  [
    { ts: 5700n, probeId: 6, ip: 0x55_5555n, ovs: block({ kind: K.recv_upcall, type: 0, pkt_size: 62, key_size: 180n, queue_id: 42, batch_ts: 5650n, batch_idx: 2 }) },
    { event_type: 'recv_upcall', type: 0, pkt_size: 62, key_size: 180, queue_id: 42, batch_ts: 5650, batch_idx: 2 },
  ],
  [
    { ts: 5800n, probeId: 6, ip: 0x55_5555n, ovs: block({ kind: K.flow_operation, op_type: 1, queue_id: 42, batch_ts: 5650n, batch_idx: 2 }) },
    { event_type: 'flow_operation', op_type: 'put', queue_id: 42, batch_ts: 5650, batch_idx: 2 },
  ],
];

/** JSON-comparable (bigints as numbers where exact, else strings as eventToJson does). */
const norm = (x: unknown): unknown => JSON.parse(JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v)));

describe('ovs collector records', () => {
  it('the action table follows enum ovs_action_attr (uapi numbers)', () => {
    expect(OVS_ACTIONS[1]).toBe('output');
    expect(OVS_ACTIONS[7]).toBe('recirc');
    expect(OVS_ACTIONS[12]).toBe('ct');
    expect(OVS_ACTIONS[16]).toBe('ct_clear');
    expect(OVS_ACTIONS[23]).toBe('dec_ttl');
    expect(OVS_ACTIONS[24]).toBe('drop');
  });

  it('every variant decodes as Retis writes it, through both paths, other sections intact', async () => {
    const file = path.join(tmp, 'events.arrow');
    const schema = captureSchema();
    const arrow = new ArrowStreamFile(file, schema, true);
    const slow: RetisEvent[] = [];
    const enc = new EventEncoder({
      schema, probes: PROBES, dropReasons: noReasons, symbols: undefined, batchRows: 5, batchPacketBytes: 4096, snaplen: 255,
      maxEvents: Number.MAX_SAFE_INTEGER, onBatch: (c) => arrow.write(c.recordBatch()),
      onEvent: (view, off, size) => slow.push(recordToEvent(view, off, PROBES, noReasons, undefined, undefined, size)),
    });
    // A non-OVS record between OVS ones: its ovs column stays null.
    const recs = [...CASES.map(([r]) => r)];
    recs.splice(3, 0, { ts: 5250n, probeId: 1, ...trk });
    enc.decode(makeBatch(recs));
    enc.flush();
    arrow.close();
    expect(enc.malformed).toBe(0);
    expect(enc.events).toBe(recs.length);

    const expected = CASES.map(([, s]) => norm(s));
    const slowOvs = slow.filter((e) => e.ovs).map((e) => norm(e.ovs));
    expect(slowOvs).toEqual(expected);
    expect(slow[3]!.ovs).toBeUndefined();

    const db = await Db.open();
    try {
      await loadInputs(db, [file]);
      const rows = await db.rows<Record<string, unknown>>('SELECT * FROM events ORDER BY eid');
      const events = rows.map((r) => eventFromRow(r));
      const loadedJson = events.map((e) => eventToJson(e));
      expect(loadedJson).toEqual(slow.map((e) => eventToJson(e)));
      // Packet and tracking sections of OVS events survive the block at the record end.
      expect(events[0]!.packet).toBeDefined();
      expect((events[0]!['skb-tracking'] as Record<string, unknown>).orig_head).toBe(HEAD);
      const et = await db.rows<{ e: string | null }>('SELECT ovs_event AS e FROM events ORDER BY eid');
      expect(et.map((r) => r.e)).toEqual(recs.map((r) => (r.ovs ? String(ovsSection(new DataView(r.ovs.buffer), 0)!.event_type) : null)));
    } finally {
      db.close();
    }
  });
});

describe('ovs collector availability and probes', () => {
  const btf = { hasTracepoint: () => false } as unknown as Btf;
  const features = { rawTracepoint: { supported: true, reason: '' } } as unknown as KernelFeatures;

  it('needs the openvswitch module (or built in), with a message saying so', () => {
    const sys = fs.mkdtempSync(path.join(tmp, 'sys-'));
    expect(ovsUnavailable(btf, features, sys)).toMatch(/the 'openvswitch' kernel module is not loaded \(nor built in\): modprobe openvswitch/);
    fs.mkdirSync(path.join(sys, 'module', 'openvswitch'), { recursive: true });
    expect(ovsUnavailable(btf, features, sys)).toBeUndefined();
    const noRaw = { rawTracepoint: { supported: false, reason: 'EPERM' } } as unknown as KernelFeatures;
    expect(ovsUnavailable(btf, noRaw, sys)).toMatch(/raw tracepoints are unavailable \(EPERM\)/);
    // Built in: the tracepoint is in vmlinux BTF.
    expect(ovsUnavailable({ hasTracepoint: (n: string) => n === 'ovs_dp_upcall' } as unknown as Btf, features, path.join(tmp, 'none'))).toBeUndefined();
  });

  it('probes: the two tracepoints required, kprobe pairs optional, USDT with --ovs-track', () => {
    const plain = ovsProbes({ track: false, binary: undefined });
    expect(plain.filter((p) => p.required).map((p) => p.spec)).toEqual(['raw_tp:openvswitch:ovs_dp_upcall', 'raw_tp:openvswitch:ovs_do_execute_action']);
    expect(plain.map((p) => p.spec)).toContain('kretprobe:queue_userspace_packet');
    expect(plain.some((p) => p.spec.startsWith('usdt:'))).toBe(false);
    const track = ovsProbes({ track: true, binary: '/usr/sbin/ovs-vswitchd' });
    expect(track.filter((p) => p.spec.startsWith('usdt:')).map((p) => p.spec)).toEqual([
      'usdt:/usr/sbin/ovs-vswitchd:dpif_recv:recv_upcall',
      'usdt:/usr/sbin/ovs-vswitchd:dpif_netlink_operate__:op_flow_execute',
      'usdt:/usr/sbin/ovs-vswitchd:dpif_netlink_operate__:op_flow_put',
    ]);
    expect(track.filter((p) => p.helper).every((p) => p.spec.startsWith('kprobe:'))).toBe(true);
  });

  it('USDT notes are found in ELF files that have them only', () => {
    // The --ovs-track test's stand-in (built by tests/capture/ovs-track.test.ts) has them.
    const standin = path.join(BUILD_DIR, 'test', 'ovs-vswitchd');
    if (fs.existsSync(standin)) expect(hasUsdtNotes(standin)).toBe(true);
    expect(hasUsdtNotes('/nonexistent')).toBe(false);
    expect(hasUsdtNotes('/bin/true')).toBe(false);
  });
});
