/**
 * `retis pcap` compatibility: export Retis's own test events and compare with the pcap-ng
 * file Retis 1.7 produced from them (shared/compat/retis/test_events_packets.pcap).
 */
import { COMPAT_DIR } from '../util/paths.ts';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventToJson, type RetisEvent } from '../../analyze/model/event.ts';
import { EPB_PACKETID, EPB_VERDICT, OPT_COMMENT, OPT_CUSTOM_STR_COPY } from '../../analyze/pcap/pcapng-writer.ts';
import {
  exportPcap,
  parseProbeFilter,
  ProbeNotFoundError,
  RETIS_PEN,
  retisComment,
  retisSchemaJson,
  type EventFormatter,
  type PcapExportOptions,
} from '../../analyze/pcap/retis-pcap.ts';
import { loadEvents, optionText, parseJsonExact, readPcapng, utf8, type Block, type Json } from './util.ts';

const COMPAT = COMPAT_DIR;
const FIXTURE_PCAP = join(COMPAT, 'test_events_packets.pcap');
const FIXTURE_JSON = join(COMPAT, 'test_events_packets.json');

const dir = mkdtempSync(join(tmpdir(), 'retis-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const haveTshark = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
const tshark = (args: string[]): string =>
  execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 });

const fixture = readFileSync(FIXTURE_PCAP);
const fixtureBlocks = readPcapng(fixture);
type Epb = Extract<Block, { kind: 'epb' }>;
const epbs = (blocks: Block[]): Epb[] => blocks.flatMap((b) => (b.kind === 'epb' ? [b] : []));
const customJson = (p: Epb): string => {
  const o = p.options.find((x) => x.code === OPT_CUSTOM_STR_COPY);
  if (o === undefined) throw new Error('no Retis custom option');
  expect(Buffer.from(o.value).readUInt32LE(0)).toBe(RETIS_PEN);
  return utf8(o.value.subarray(4));
};
const fixtureEpbs = epbs(fixtureBlocks);

/**
 * Stand-in formatter: the comment Retis wrote for the event with the same JSON. Keeps the
 * block-layout tests independent of the text formatter (analyze/format/event-text.ts).
 */
const fixtureComments = new Map(fixtureEpbs.map((p) => [customJson(p), optionText(p.options, OPT_COMMENT) ?? '']));
const commentFromFixture: EventFormatter = (ev) => {
  const c = fixtureComments.get(eventToJson(ev, new Set(['packet'])));
  if (c === undefined) throw new Error(`no fixture comment for event at ${ev.common.timestamp}`);
  return c;
};

let n = 0;
async function exportTo(events: Iterable<RetisEvent> | AsyncIterable<RetisEvent>, format: EventFormatter, opts?: PcapExportOptions) {
  const path = join(dir, `out-${n++}.pcapng`);
  const result = await exportPcap(events, { path }, format, opts);
  return { path, result, bytes: existsSync(path) ? readFileSync(path) : undefined };
}

/** Describe the first difference between two pcap-ng files, block by block. */
function firstDifference(a: Uint8Array, b: Uint8Array): string | undefined {
  if (Buffer.compare(a, b) === 0) return undefined;
  const ba = readPcapng(a);
  const bb = readPcapng(b);
  for (let i = 0; i < Math.min(ba.length, bb.length); i++) {
    const x = ba[i]!;
    const y = bb[i]!;
    if (Buffer.compare(x.raw.body, y.raw.body) === 0 && x.raw.type === y.raw.type) continue;
    let detail = '';
    if (x.kind === 'epb' && y.kind === 'epb') {
      for (const code of new Set([...x.options, ...y.options].map((o) => o.code))) {
        const ox = x.options.find((o) => o.code === code);
        const oy = y.options.find((o) => o.code === code);
        if (ox && oy && Buffer.compare(ox.value, oy.value) === 0) continue;
        detail += ` option ${code}: ours ${JSON.stringify(ox && utf8(ox.value))} vs Retis ${JSON.stringify(oy && utf8(oy.value))};`;
      }
      if (Buffer.compare(x.data, y.data) !== 0) detail += ' packet data differs;';
      if (x.timestamp !== y.timestamp) detail += ` timestamp ${x.timestamp} vs ${y.timestamp};`;
    }
    return `block ${i} (${x.kind}, offset ${x.raw.offset}) differs from Retis's (${y.kind}, offset ${y.raw.offset}):${detail}`;
  }
  return `block count ${ba.length} vs Retis ${bb.length}`;
}

/** Where two JSON texts order object keys differently (paths like `ct.orig`). */
function keyOrderDiffs(ours: string, retis: string): string[] {
  const out: string[] = [];
  const walk = (a: Json, b: Json, path: string): void => {
    if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return;
    if (Array.isArray(a) || Array.isArray(b)) {
      if (Array.isArray(a) && Array.isArray(b)) a.forEach((x, i) => walk(x, b[i] ?? null, `${path}[${i}]`));
      return;
    }
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.join() !== kb.join()) out.push(`${path || '(top)'}: ours [${ka}] vs Retis [${kb}]`);
    for (const k of ka) if (k in b) walk(a[k]!, b[k]!, path ? `${path}.${k}` : k);
  };
  walk(parseJsonExact(ours), parseJsonExact(retis), '');
  return out;
}

const events = loadEvents(FIXTURE_JSON);

describe('retis pcap compatibility (test_events_packets)', () => {
  it('loads the fixture with exact 64-bit integers', () => {
    expect(events).toHaveLength(27);
    const t = events[1]!['skb-tracking']!;
    expect(t.orig_head).toBe(18446619372617628672n);
    expect(events[1]!.common.timestamp).toBe(30419169061793n);
    expect(events[1]!.packet!.data).toBeInstanceOf(Uint8Array);
  });

  it('embeds the schema block of the fixture verbatim', () => {
    const b = fixtureBlocks[1];
    if (b?.kind !== 'custom') throw new Error('fixture block 2 is not a custom block');
    expect(b.pen).toBe(RETIS_PEN);
    // The fixture pads the payload with NULs to 32 bits; the schema is the rest.
    const schema = retisSchemaJson();
    expect(Buffer.compare(b.payload.subarray(0, schema.length), schema)).toBe(0);
    expect([...b.payload.subarray(schema.length)].every((x) => x === 0)).toBe(true);
    expect(JSON.parse(utf8(schema)).title).toBe('Retis Metadata');
  });

  it("eventToJson gives Retis's custom-option JSON (key order included)", () => {
    const ours = events.filter((e) => e.packet !== undefined).map((e) => eventToJson(e, new Set(['packet'])));
    const retis = fixtureEpbs.map(customJson);
    expect(ours).toHaveLength(retis.length);
    const report = ours.flatMap((o, i) => (o === retis[i] ? [] : [`event ${i}: ${keyOrderDiffs(o, retis[i]!).join('; ') || 'values differ'}`]));
    expect(report).toEqual([]);
  });

  it('writes the fixture byte for byte (comments taken from the fixture)', async () => {
    const { result, bytes } = await exportTo(events, commentFromFixture);
    expect(result).toEqual({ processed: 26, skipped: 0, packets: 26, interfaces: 6 });
    expect(bytes!.length).toBe(fixture.length);
    expect(firstDifference(bytes!, fixture)).toBeUndefined();
  });

  it('gives the same bytes from an async iterable', async () => {
    async function* gen() {
      for (const e of events) {
        await Promise.resolve();
        yield e;
      }
    }
    const { bytes } = await exportTo(gen(), commentFromFixture);
    expect(Buffer.compare(bytes!, fixture)).toBe(0);
  });

  it.skipIf(!haveTshark)('reads the same through tshark (blocks, interfaces, timestamps, lengths, bytes, comments)', async () => {
    const { path } = await exportTo(events, retisComment);
    const fields = (f: string) =>
      tshark(['-r', f, '-T', 'fields', '-e', 'frame.interface_name', '-e', 'frame.time_epoch', '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'frame.comment']);
    const ours = fields(path);
    expect(ours.trim().split('\n')).toHaveLength(27); // tshark 4.0 lists the schema block as frame 1
    expect(ours).toBe(fields(FIXTURE_PCAP));
    expect(ours).toContain('raw_tracepoint/net:net_dev_start_xmit\t1742339565.860103793\t98\t98\t30419169061793 (6) [ping] 11330');
    expect(tshark(['-r', path, '-x'])).toBe(tshark(['-r', FIXTURE_PCAP, '-x']));
    const verbose = tshark(['-r', path, '-V']);
    expect(verbose).toBe(tshark(['-r', FIXTURE_PCAP, '-V']));
    // Retis's CI expects 26 with a newer Wireshark; 4.0 does not dissect custom options,
    // so only require the same count as the fixture.
    const count = (s: string) => s.split('\n').filter((l) => l.includes('Retis Metadata')).length;
    expect(count(verbose)).toBe(count(tshark(['-r', FIXTURE_PCAP, '-V'])));
    const info = execFileSync('capinfos', ['-M', path], { encoding: 'utf8' });
    expect(info).toMatch(/Number of packets:\s+26\n/);
    expect(info).toMatch(/Number of interfaces in file:\s+6\n/);
  });

  it('renders the same comments as Retis with the real formatter, and the same file', async () => {
    const { bytes } = await exportTo(events, retisComment);
    const ours = epbs(readPcapng(bytes!)).map((p) => optionText(p.options, OPT_COMMENT));
    const retis = fixtureEpbs.map((p) => optionText(p.options, OPT_COMMENT));
    const diffs = ours.flatMap((c, i) => (c === retis[i] ? [] : [`event ${i}:\n  ours : ${JSON.stringify(c)}\n  Retis: ${JSON.stringify(retis[i])}`]));
    expect(diffs.join('\n')).toBe('');
    expect(firstDifference(bytes!, fixture)).toBeUndefined();
  });
});

describe('retis pcap probe filter and edge cases', () => {
  const probeTimestamps = (bytes: Uint8Array) => epbs(readPcapng(bytes)).map((p) => p.timestamp);

  it("keeps only kretprobe:ovs_dp_upcall events, as Retis's unit test expects", async () => {
    for (const probe of [parseProbeFilter('kretprobe:ovs_dp_upcall'), parseProbeFilter('kr:ovs_dp_upcall'), { type: 'kr', target: 'ovs_dp_upcall' }]) {
      const { result, bytes } = await exportTo(events, commentFromFixture, { probe });
      expect(result).toEqual({ processed: 2, skipped: 0, packets: 2, interfaces: 1 });
      const blocks = readPcapng(bytes!);
      expect(blocks.map((b) => b.kind)).toEqual(['shb', 'custom', 'idb', 'epb', 'epb']);
      const idb = blocks[2]!;
      if (idb.kind !== 'idb') throw new Error('no IDB');
      expect(optionText(idb.options, 2)).toBe('kretprobe/ovs_dp_upcall');
      expect(optionText(idb.options, 3)).toBe('Fake interface for probe kretprobe/ovs_dp_upcall');
      expect(probeTimestamps(bytes!)).toEqual([1742339565860167909n, 1742339565860414774n]);
      const ps = epbs(blocks);
      expect(ps.every((p) => p.interfaceId === 0)).toBe(true);
      // Same EPB bytes as in the full fixture, apart from the interface id.
      const ref = fixtureEpbs.filter((p) => p.timestamp === 1742339565860167909n || p.timestamp === 1742339565860414774n);
      ps.forEach((p, i) => expect(Buffer.compare(p.raw.body.subarray(4), ref[i]!.raw.body.subarray(4))).toBe(0));
    }
  });

  it('parses a one-colon target of unknown type as a raw tracepoint', async () => {
    const a = await exportTo(events, commentFromFixture, { probe: parseProbeFilter('net:netif_receive_skb') });
    const b = await exportTo(events, commentFromFixture, { probe: parseProbeFilter('tp:net:netif_receive_skb') });
    expect(a.result.packets).toBe(8);
    expect(Buffer.compare(a.bytes!, b.bytes!)).toBe(0);
    const drops = await exportTo(events, commentFromFixture, { probe: parseProbeFilter('skb:kfree_skb/stack') });
    expect(drops.result).toEqual({ processed: 2, skipped: 0, packets: 2, interfaces: 1 });
  });

  it('fails with "Probe not found in the events" and writes nothing when no event matches', async () => {
    const path = join(dir, 'nomatch.pcapng');
    // No ':' → kprobe, and the events only have the kretprobe.
    await expect(exportPcap(events, { path }, commentFromFixture, { probe: parseProbeFilter('ovs_dp_upcall') })).rejects.toThrow(ProbeNotFoundError);
    await expect(exportPcap(events, { path }, commentFromFixture, { probe: parseProbeFilter('ovs_dp_upcall') })).rejects.toThrow('Probe not found in the events');
    expect(existsSync(path)).toBe(false);
    // Events without any kernel section never match either (Retis's no_probes test).
    await expect(exportPcap(loadEvents(join(COMPAT, 'test_events_bench_no_probes.json')), { path }, commentFromFixture)).rejects.toThrow(ProbeNotFoundError);
    expect(existsSync(path)).toBe(false);
  });

  it('creates no output at all when no matching event has a packet', async () => {
    const bench = loadEvents(join(COMPAT, 'test_events_bench.json'));
    const { result, bytes } = await exportTo(bench, () => 'unused');
    expect(result).toEqual({ processed: 4, skipped: 4, packets: 0, interfaces: 0 });
    expect(bytes).toBeUndefined();
  });

  it('counts skipped events and uses raw monotonic timestamps without a startup event', async () => {
    const noStartup = events.slice(1, 4);
    const { packet: _drop, ...withoutPacket } = events[4]!;
    const input = [...noStartup, withoutPacket as RetisEvent];
    const { result, bytes } = await exportTo(input, commentFromFixture);
    expect(result).toEqual({ processed: 4, skipped: 1, packets: 3, interfaces: 3 });
    expect(probeTimestamps(bytes!)).toEqual(noStartup.map((e) => e.common.timestamp));
  });

  it('adds epb_packetid and epb_verdict only with extraOptions', async () => {
    const { bytes, path } = await exportTo(events, commentFromFixture, { extraOptions: true });
    const ps = epbs(readPcapng(bytes!));
    const withPacket = events.filter((e) => e.packet !== undefined);
    ps.forEach((p, i) => {
      const ev = withPacket[i]!;
      expect(p.options.map((o) => o.code)).toEqual(ev['skb-drop'] ? [OPT_COMMENT, OPT_CUSTOM_STR_COPY, EPB_PACKETID, EPB_VERDICT] : [OPT_COMMENT, OPT_CUSTOM_STR_COPY, EPB_PACKETID]);
      expect(Buffer.from(p.options[2]!.value).readBigUInt64LE(0)).toBe(ev['skb-tracking']!.orig_head);
    });
    if (haveTshark) {
      const rows = tshark(['-r', path, '-Y', 'frame.verdict', '-T', 'fields', '-e', 'frame.interface_name', '-e', 'frame.packet_id', '-e', 'frame.verdict.ebpf_tc']);
      const drops = withPacket.filter((e) => e['skb-drop'] !== undefined);
      expect(drops).toHaveLength(2);
      expect(rows).toBe(drops.map((e) => `raw_tracepoint/skb:kfree_skb\t${e['skb-tracking']!.orig_head}\t2\n`).join(''));
    }
  });
});

describe('parseProbeFilter', () => {
  it('follows Retis parse_cli_probe', () => {
    expect(parseProbeFilter('consume_skb')).toEqual({ type: 'kprobe', target: 'consume_skb' });
    expect(parseProbeFilter('k:kfree_skb_reason')).toEqual({ type: 'kprobe', target: 'kfree_skb_reason' });
    expect(parseProbeFilter('kretprobe:tcp_sendmsg')).toEqual({ type: 'kretprobe', target: 'tcp_sendmsg' });
    expect(parseProbeFilter('tp:skb:kfree_skb')).toEqual({ type: 'raw_tracepoint', target: 'skb:kfree_skb' });
    expect(parseProbeFilter('raw_tracepoint:net:netif_rx')).toEqual({ type: 'raw_tracepoint', target: 'net:netif_rx' });
    expect(parseProbeFilter('skb:kfree_skb')).toEqual({ type: 'raw_tracepoint', target: 'skb:kfree_skb' });
    expect(parseProbeFilter('skb:kfree_skb/stack')).toEqual({ type: 'raw_tracepoint', target: 'skb:kfree_skb' });
    expect(() => parseProbeFilter('foo:skb:kfree_skb')).toThrow('Invalid TYPE foo. See the help.');
    expect(() => parseProbeFilter('kfree_skb/')).toThrow(/Empty options are not allowed/);
    expect(() => parseProbeFilter('kfree_skb/bar')).toThrow("'bar' is an invalid probe option.");
    expect(() => parseProbeFilter('kfree_skb/stack/stack')).toThrow('duplicate options detected in stack/stack.');
  });

  it('strips a __tracepoint_ prefix from targets, as Retis resolves symbol names', async () => {
    const { result } = await exportTo(events, commentFromFixture, { probe: { type: 'kr', target: '__tracepoint_ovs_dp_upcall' } });
    expect(result.packets).toBe(2);
  });
});
