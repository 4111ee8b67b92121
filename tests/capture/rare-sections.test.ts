/**
 * Rare sections (ct, nft, ovs) on the native column decoder: their blocks are `raw` sources
 * (per-probe offsets, record end) copied with their row index into the arena's raw area, and
 * built in JS per batch. Hot path (EventEncoder -> Arrow -> loader) and slow path (recordToEvent)
 * must agree, with many rare rows per batch (the raw area fills and cuts batches early), probes
 * without the block, and records too short for their ovs block counted as malformed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Db } from '../../analyze/db.ts';
import { loadInputs } from '../../analyze/load/index.ts';
import { eventFromRow, eventToJson, type RetisEvent } from '../../analyze/model/event.ts';
import { ArrowStreamFile } from '../../capture/arrow-stream.ts';
import { EventEncoder, HEADER_BYTES, recordToEvent, type ProbeInfo } from '../../capture/decode.ts';
import type { DropReasons } from '../../capture/drop-reasons.ts';
import { writeNftBlock } from '../../capture/nft/section.ts';
import { captureEvent, CaptureSection } from '../../capture/progs/capture.layout.ts';
import { CT_BLOCK_BYTES, CtFlags, ctConn, ctHead, nftEvent } from '../../capture/progs/nftct.layout.ts';
import { OvsKind, ovsEvent } from '../../capture/progs/ovs.layout.ts';
import { captureSchema } from '../../capture/session.ts';
import { makeBatch, udpFrame, type SyntheticRecord } from '../../capture/synthetic.ts';
import { RECORD_HEADER_BYTES } from '../../bpf/ringbuf.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-rare-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const S = CaptureSection.values;
const F = CtFlags.values;
const C = ctConn.offsets;
const noReasons = { name: () => ({ subsys: undefined, reason: 'NOT_SPECIFIED' }) } as unknown as DropReasons;
const pkt = udpFrame(6); // 48 bytes: no padding before the blocks that follow it

const PROBES = new Map<number, ProbeInfo>([
  // ct then nft right after the header (no packet room).
  [1, { symbol: 'nf_conntrack_in', probeType: 'raw_tracepoint', user: false, binary: undefined, ctOff: HEADER_BYTES, nftOff: HEADER_BYTES + CT_BLOCK_BYTES }],
  // nft only, after a 48-byte packet room.
  [2, { symbol: '__nft_trace_packet', probeType: 'kprobe', user: false, binary: undefined, nftOff: HEADER_BYTES + pkt.length }],
  // ct and an ovs block at the end.
  [3, { symbol: 'openvswitch:ovs_do_execute_action', probeType: 'raw_tracepoint', user: false, binary: undefined, ctOff: HEADER_BYTES }],
  // No block offsets: a stray ct bit is ignored.
  [4, { symbol: 'net:netif_receive_skb', probeType: 'raw_tracepoint', user: false, binary: undefined }],
]);

function ctBlock(i: number): Uint8Array {
  const v = new DataView(new ArrayBuffer(CT_BLOCK_BYTES));
  v.setUint32(ctHead.offsets.state, i % 3, true);
  const parent = i % 4 === 0;
  v.setUint32(ctHead.offsets.parent, parent ? 1 : 0, true);
  for (const c of parent ? [ctHead.size, ctHead.size + ctConn.size] : [ctHead.size]) {
    v.setUint32(c + C.flags, F.dir_orig | F.ipv4 | F.udp | F.mark, true);
    [10, 0, 0, 1].forEach((x, k) => v.setUint8(c + C.o_src + k, x));
    [10, 0, 0, 2 + (i & 7)].forEach((x, k) => v.setUint8(c + C.o_dst + k, x));
    [10, 0, 0, 2 + (i & 7)].forEach((x, k) => v.setUint8(c + C.r_src + k, x));
    [10, 0, 0, 1].forEach((x, k) => v.setUint8(c + C.r_dst + k, x));
    v.setUint16(c + C.o_sdata, 40000 + i, false);
    v.setUint16(c + C.o_ddata, 53, false);
    v.setUint16(c + C.r_sdata, 53, false);
    v.setUint16(c + C.r_ddata, 40000 + i, false);
    v.setUint32(c + C.mark, i, true);
    v.setUint16(c + C.zone_id, i & 3, true);
    v.setBigUint64(c + C.status, BigInt(8 + i), true);
  }
  return new Uint8Array(v.buffer);
}

function nftBlock(i: number): Uint8Array {
  const b = new Uint8Array(nftEvent.size);
  writeNftBlock(b, 0, { tableName: `t${i % 5}`, chainName: `chain-${i}`, verdict: i % 3 === 0 ? -3 : i % 2, verdictChainName: i % 3 === 0 ? 'sub' : undefined, tableHandle: BigInt(i), chainHandle: 2n, ruleHandle: i % 2 ? BigInt(i) : undefined, policy: i % 2 === 0 });
  return b;
}

function ovsBlock(i: number): Uint8Array {
  const b = new Uint8Array(ovsEvent.size);
  const v = new DataView(b.buffer);
  v.setUint8(ovsEvent.offsets.kind, OvsKind.values.action_execute);
  v.setUint32(ovsEvent.offsets.action, 1, true);
  v.setUint32(ovsEvent.offsets.port, i, true);
  return b;
}

function records(n: number): SyntheticRecord[] {
  const out: SyntheticRecord[] = [];
  for (let i = 0; i < n; i++) {
    const base = { ts: BigInt(1000 + i), comm: 'rare' };
    switch (i % 6) {
      case 0:
        out.push({ ...base, probeId: 1, ext: [{ bytes: ctBlock(i), section: S.ct }, { bytes: nftBlock(i), section: S.nft }] });
        break;
      case 1:
        out.push({ ...base, probeId: 2, packet: pkt, ext: [{ bytes: nftBlock(i), section: S.nft }] });
        break;
      case 2:
        out.push({ ...base, probeId: 3, ext: [{ bytes: ctBlock(i), section: S.ct }], ovs: ovsBlock(i) });
        break;
      case 3:
        out.push({ ...base, probeId: 4, packet: pkt, ext: [{ bytes: ctBlock(i), section: S.ct }] });
        break;
      default:
        out.push({ ...base, probeId: 4, packet: pkt });
    }
  }
  return out;
}

describe('rare sections on the native decoder', () => {
  it('ct, nft and ovs through the hot path equal the slow path, batches cut when the raw area fills', async () => {
    const file = path.join(tmp, 'events.arrow');
    const schema = captureSchema();
    const arrow = new ArrowStreamFile(file, schema, true);
    const slow: RetisEvent[] = [];
    let batches = 0;
    const enc = new EventEncoder({
      schema, probes: PROBES, dropReasons: noReasons, symbols: undefined, batchRows: 64, batchPacketBytes: 1 << 16, snaplen: 255,
      maxEvents: Number.MAX_SAFE_INTEGER,
      onBatch: (c) => {
        batches++;
        arrow.write(c.recordBatch());
      },
      onEvent: (view, off, size) => slow.push(recordToEvent(view, off, PROBES, noReasons, undefined, undefined, size)),
    });
    const recs = records(600);
    enc.decode(makeBatch(recs));
    enc.flush();
    arrow.close();
    expect(enc.malformed).toBe(0);
    expect(enc.events).toBe(recs.length);
    // 64 rows a batch would be 10 batches: the raw area (1/8 of the rows' blocks) cuts earlier.
    expect(batches).toBeGreaterThan(12);
    expect(slow.filter((e) => e.ct).length).toBe(200);
    expect(slow.filter((e) => e.nft).length).toBe(200);
    expect(slow.filter((e) => e.ovs).length).toBe(100);

    const db = await Db.open();
    try {
      await loadInputs(db, [file]);
      const rows = await db.rows<Record<string, unknown>>('SELECT * FROM events ORDER BY eid');
      const loaded = rows.map((r) => eventToJson(eventFromRow(r)));
      expect(loaded).toEqual(slow.map((e) => eventToJson(e)));
    } finally {
      db.close();
    }
  });

  it('a record too short for its ovs block is malformed, the others decode', () => {
    const batch = makeBatch([
      { ts: 1n, probeId: 4, packet: pkt },
      { ts: 2n, probeId: 4, packet: pkt },
    ]);
    // Second record: the ovs bit without room for the block after the packet.
    const v = new DataView(batch);
    const sec = RECORD_HEADER_BYTES + ((v.getUint32(0, true) + 7) & ~7) + RECORD_HEADER_BYTES + captureEvent.offsets.sections;
    v.setUint32(sec, v.getUint32(sec, true) | S.ovs, true);
    let rows = 0;
    const enc = new EventEncoder({
      schema: captureSchema(), probes: PROBES, dropReasons: noReasons, symbols: undefined, batchRows: 8, batchPacketBytes: 4096, snaplen: 255,
      maxEvents: Number.MAX_SAFE_INTEGER, onBatch: (c) => void (rows += c.rows),
    });
    enc.decode(batch);
    enc.flush();
    expect(enc.malformed).toBe(1);
    expect(enc.events).toBe(1);
    expect(rows).toBe(1);
  });
});
