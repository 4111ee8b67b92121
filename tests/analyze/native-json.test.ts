/**
 * The native JSON reader (analyze/native, load/native-json.ts) against read_json, the oracle:
 * every Retis JSON fixture, a generated file and damaged files load to exactly the same rows
 * (every column, seq/eid/_problem included) or fail with exactly the same message, with
 * chunks small enough that files span many of them and lines cross chunk boundaries.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeEventFile } from '../../bench/gen/generate.ts';
import { Db } from '../../analyze/db.ts';
import { loadInputs, nativeFallbacks, nativeLoads } from '../../analyze/load/index.ts';
import { nativeJsonUnavailable, setNativeChunkBytes, setNativeJson } from '../../analyze/load/native-json.ts';
import { COMPAT_DIR, FIXTURES, REPO_ROOT } from '../util/paths.ts';

const BUILT = fs.existsSync(path.join(REPO_ROOT, 'build', 'native', 'retis_json.node'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-native-json-'));
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
  setNativeJson(true);
  setNativeChunkBytes(16 * 1024 * 1024);
});

interface Outcome {
  rows: string[];
  files: string;
  error: string | null;
}

/** Load `files` with one reader; every stored row as text, in seq order, or the error. */
async function load(files: string[], native: boolean): Promise<Outcome> {
  setNativeJson(native);
  const db = await Db.open();
  let error: string | null = null;
  try {
    await loadInputs(db, files);
  } catch (e) {
    error = (e as Error).message;
  }
  // Rows stay stored when a shape check fails: their `_problem` texts are compared too.
  try {
    const rows = await db.rows<{ r: string }>(
      `SELECT t::VARCHAR AS r FROM (SELECT * FROM events_lazy UNION ALL BY NAME SELECT * FROM events_base) t ORDER BY eid`,
    );
    const f = await db.rows('SELECT * FROM files ORDER BY src');
    return { rows: rows.map((x) => x.r), files: JSON.stringify(f, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v)), error };
  } finally {
    db.close();
  }
}

async function expectSame(files: string[], chunk: number): Promise<void> {
  setNativeChunkBytes(chunk);
  const sql = await load(files, false);
  const native = await load(files, true);
  expect(native.error).toBe(sql.error);
  expect(native.files).toBe(sql.files);
  expect(native.rows.length).toBe(sql.rows.length);
  const firstDiff = native.rows.findIndex((r, i) => r !== sql.rows[i]);
  expect(firstDiff === -1 ? null : { native: native.rows[firstDiff], sql: sql.rows[firstDiff] }).toBeNull();
}

const STARTUP =
  '{"common":{"timestamp":1},"startup":{"retis_version":"v1.7.0","cmdline":"t","clock_monotonic_offset":{"sec":0,"nsec":0},"machine":{"kernel_release":"r","kernel_version":"v","hardware_name":"h"}}}';
const EVENT = (ts: number) => `{"common":{"timestamp":${ts}},"kernel":{"symbol":"skb:kfree_skb","probe_type":"raw_tracepoint"},"skb-drop":{"drop_reason":"NO_SOCKET"}}`;

/** Files the native reader must load as read_json does, or hand to it (damaged, odd). */
const ODD: Record<string, string> = {
  truncated: `${STARTUP}\n${EVENT(2)}\n{"common":{"timest`,
  nonjson: `${STARTUP}\n${EVENT(2)}\nhello world\n${EVENT(3)}\n`,
  wrongtype: `${STARTUP}\n${EVENT(2)}\n{"common":{"timestamp":"soon"}}\n`,
  array: `${STARTUP}\n[1,2]\n`,
  multiline: `${STARTUP}\n{"common":\n{"timestamp":1}}\n${EVENT(3)}\n`,
  blank_lines: `\n${STARTUP}\n\n  \n${EVENT(2)}\n\r\n${EVENT(3)}`,
  escapes: `${STARTUP}\n{"common":{"timestamp":5,"task":{"pid":-3,"tgid":2147483647,"comm":"a\\u00e9\\ud83d\\ude00\\"\\\\\\/\\n\\t"}},"kernel":{"symbol":"x\\u0041","probe_type":"kprobe","stack_trace":["a","\\u2603",""]}}\n`,
  unknown_keys: `${STARTUP}\n{"zz":{"a":[1,{"b":null}]},"common":{"timestamp":9223372036854775807,"zz":1.5e3,"smp_id":4294967295},"dev":{"name":"eth0","ifindex":3,"x":true}}\n`,
  nulls: `${STARTUP}\n{"common":{"timestamp":null},"packet":null,"ct":null,"dev":{"name":null,"ifindex":1}}\n`,
  no_common: `${STARTUP}\n{"kernel":{"symbol":"s","probe_type":"kprobe"}}\n`,
  out_of_range: `${STARTUP}\n{"common":{"timestamp":7,"smp_id":4294967296}}\n`,
  float: `${STARTUP}\n{"common":{"timestamp":7.0}}\n`,
  negative_unsigned: `${STARTUP}\n{"common":{"timestamp":-7}}\n`,
  duplicate_key: `${STARTUP}\n{"common":{"timestamp":7,"timestamp":8}}\n`,
  lazy_ct: `${STARTUP}\n{"common":{"timestamp":7},"ct":{"state":"established","zone_id":0,"zone_dir":"default","orig":{"ip":{"src":"1.2.3.4","dst":"5.6.7.8","version":"v4"},"proto":{"tcp":{"sport":1,"dport":2}}},"reply":{"ip":{"src":"5.6.7.8","dst":"1.2.3.4","version":"v4"},"proto":{"tcp":{"sport":2,"dport":1}}},"ct_status":14}}\n`,
  lazy_ct_spaced: `${STARTUP}\n{"common":{"timestamp":7},"ct": { "state" : "x" ,"zone_id":1.0}}\n`,
  lazy_ct_missing: `${STARTUP}\n{"common":{"timestamp":7},"ct":{"state":"x"}}\n`,
  packet_bad_base64: `${STARTUP}\n{"common":{"timestamp":7},"packet":{"len":1,"capture_len":1,"data":"QR=="}}\n`,
  packet_bad_base64_mid: `${STARTUP}\n{"common":{"timestamp":7},"packet":{"len":6,"capture_len":6,"data":"QU@DQUJD"}}\n`,
  packet_pad_mid: `${STARTUP}\n{"common":{"timestamp":7},"packet":{"len":6,"capture_len":6,"data":"QUJ=QUJD"}}\n`,
  packet_long: `${STARTUP}\n{"common":{"timestamp":7},"packet":{"len":300,"capture_len":300,"data":"${Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) & 255)).toString('base64')}"}}\n{"common":{"timestamp":8},"packet":{"len":193,"capture_len":193,"data":"${Buffer.alloc(193, 0xab).toString('base64')}"}}\n`,
  packet_missing_len: `${STARTUP}\n{"common":{"timestamp":7},"packet":{"capture_len":1,"data":"QQ=="}}\n`,
  packet_ipv6: `${STARTUP}\n{"common":{"timestamp":7},"packet":{"len":94,"capture_len":94,"data":"CljAqH0KCljAqH0Nht1gBRq3ACgGQP0AASUAAAAAAAAAAAAAABP9AAElAAAAAAAAAAAAAAAQoDsY68dHas8AAAAAoAL9IPycAAACBAWgBAIICqhHqZgAAAAAAQMDBw=="}}\n`,
  packets: packetEvents(),
  problems: [
    STARTUP,
    '{"common":{"timestamp":1,"task":{"pid":1,"comm":"x"}},"skb":{"meta":{"len":1}}}',
    '{"common":{"timestamp":2},"skb":{"meta":{"len":1},"gso":{"flags":1}}}',
    '{"common":{"timestamp":3},"ct":{"state":"new","zone_id":0,"zone_dir":"default","orig":{"ip":null,"proto":{}},"reply":{"ip":{},"proto":{}},"ct_status":1}}',
    '{"common":{"timestamp":4},"ct":{"state":"new","zone_id":0,"zone_dir":"default","orig":{"ip":{},"proto":{}},"reply":{"ip":{},"proto":{}},"ct_status":1,"parent":{"zone_id":1}}}',
    '{"common":{"timestamp":5},"ovs":{"cmd":1},"nft":{"table_name":"t","chain_name":null}}',
    '{"common":{"timestamp":6},"startup":{"retis_version":"v1.7.0"},"tracking":{"idx":1}}',
    '{"common":{"timestamp":7},"ovs-detrace":{"ufid":[1],"flow":1,"sf_acts":1,"dpflow":"d","ofpflows":null},"dev":{"ifindex":1}}',
    '{"common":{"timestamp":8},"userspace":{"probe_type":"usdt","symbol":"s","ip":1,"path":"p","pid":1},"netns":{"cookie":1}}',
    '{"kernel":{"symbol":"s"},"packet":{"len":1,"data":""},"skb-drop":{},"skb-tracking":{"orig_head":1}}',
    '{"common":{"timestamp":9},"skb":{"vlan_accel":{"proto":1,"pcp":1,"dei":true},"data_ref":{"nohdr":true}}}',
    '',
  ].join('\n'),
  u64_edges: `${STARTUP}\n{"common":{"timestamp":7},"skb-tracking":{"orig_head":18446744073709551615,"timestamp":10000000000000000000,"skb":9999999999999999999}}\n`,
  u64_overflow: `${STARTUP}\n{"common":{"timestamp":7},"skb-tracking":{"orig_head":18446744073709551616,"timestamp":1,"skb":1}}\n`,
  bad_utf8: `${STARTUP}\n{"common":{"timestamp":7,"task":{"pid":1,"tgid":1,"comm":"\xff"}}}\n`,
  widths: widthEvents(),
  u64_20_nines: `${STARTUP}\n{"common":{"timestamp":7},"skb-tracking":{"orig_head":99999999999999999999,"timestamp":1,"skb":1}}\n`,
  u64_many_digits: `${STARTUP}\n{"common":{"timestamp":7},"skb-tracking":{"orig_head":1${'0'.repeat(40)},"timestamp":1,"skb":1}}\n`,
  i32_overflow: `${STARTUP}\n{"common":{"timestamp":7,"task":{"pid":-2147483649,"tgid":1,"comm":"c"}}}\n`,
};

/**
 * Integers of every width (1..20 digits, word edges of the 8-byte digit scan) and strings of
 * every length 0..40 with an escape or a non-ASCII character at each position (word edges of
 * the string scan), the last line without its newline (the scans' short tails).
 */
function widthEvents(): string {
  const max = '18446744073709551615';
  const lines = [STARTUP];
  let ts = 10;
  for (let d = 1; d <= 20; d++) {
    const a = max.slice(0, d), b = d < 20 ? '9'.repeat(d) : max, c = `1${'0'.repeat(d - 1)}`;
    const pid = d <= 10 ? (d === 10 ? '-2147483648' : `-${'7'.repeat(d)}`) : '0';
    lines.push(`{"common":{"timestamp":${ts++},"smp_id":${d <= 9 ? a.slice(0, Math.min(d, 9)) : 1},"task":{"pid":${pid},"tgid":${d <= 9 ? b : 0},"comm":"c"}},"skb-tracking":{"orig_head":${a},"timestamp":${b},"skb":${c}}}`);
  }
  const text = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ';
  for (let n = 0; n <= 40; n++) {
    const plain = text.slice(0, n);
    lines.push(`{"common":{"timestamp":${ts++},"task":{"pid":1,"tgid":1,"comm":"${plain}"}},"kernel":{"symbol":"${plain}","probe_type":"k"}}`);
    for (let k = 0; k < n; k++) {
      const esc = `${plain.slice(0, k)}\\"${plain.slice(k + 1)}`;
      const uni = `${plain.slice(0, k)}\\u00e9${plain.slice(k + 1)}`;
      const raw = `${plain.slice(0, k)}\xc3\xa9${plain.slice(k + 1)}`;
      lines.push(`{"common":{"timestamp":${ts++},"task":{"pid":1,"tgid":1,"comm":"${esc}"}},"kernel":{"symbol":"${raw}","probe_type":"${uni}"}}`);
    }
  }
  lines.push(`{"common":{"timestamp":${ts++}},"skb-tracking":{"orig_head":1,"timestamp":22,"skb":12345}}`);
  return lines.join('\n');
}

/** Packets cut at every length: the packet columns (retis_packet vs the SQL macros) of every prefix. */
function packetEvents(): string {
  const hex = (h: string) => Buffer.from(h.replace(/\s/g, ''), 'hex');
  const eth = (et: string) => `0a58c0a87d0a0a58c0a87d0c${et}`;
  const v4 = (proto: string, frag = '4000') => `450000541c46${frag}40${proto}0000c0a87d0cc0a87d0a`;
  const ports = 'a3b20050000000010000000050020000';
  const bases = [
    eth('0800') + v4('06') + ports, // IPv4 TCP
    eth('0800') + v4('11', '2001') + ports, // IPv4 UDP fragment
    eth('0800') + v4('2f') + ports, // GRE
    eth('0800') + v4('fe') + ports, // unknown protocol number
    `${eth('8100')}0064` + `0800${v4('84')}${ports}`, // VLAN, SCTP
    `${eth('88a8')}0064` + `8100006486dd` + `6000000000140640` + `fd000125000000000000000000000013` + `00000000000000000001000000000000` + ports, // QinQ IPv6
    eth('86dd') + `6000000000141140` + `20010db8000000000000000000000001` + `00000000000000000000000000000000` + ports, // IPv6 UDP, ::
    eth('86dd') + `6000000000143a40` + `20010db8000100000000000100000000` + `fe800000000000000000000000000000` + ports, // ICMPv6, ties
    `${eth('0806')}0001080006040001`, // ARP
  ].map(hex);
  const lines = [STARTUP];
  let ts = 10;
  for (const b of bases) {
    for (let n = 0; n <= b.length; n++) {
      const data = b.subarray(0, n).toString('base64');
      lines.push(`{"common":{"timestamp":${ts++}},"packet":{"len":${b.length},"capture_len":${n},"data":"${data}"}}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const NATIVE_OK = ['problems', 'packets', 'u64_edges', 'blank_lines', 'escapes', 'unknown_keys', 'nulls', 'no_common', 'lazy_ct', 'lazy_ct_missing', 'packet_missing_len', 'packet_ipv6', 'widths', 'packet_long'];

// Not built (no C compiler at npm ci): retis-query reads with read_json only; say so, not silently.
if (!BUILT) console.log('SKIP native JSON reader tests: build/native/retis_json.node is not built (npm run build:bpf builds it); only the read_json path runs here');

describe('native JSON reader', () => {
  it.skipIf(!BUILT)('is used when built (not silently replaced by read_json)', async () => {
    expect(nativeJsonUnavailable()).toBeNull();
    setNativeJson(true);
    const before = nativeLoads.length;
    const db = await Db.open();
    await loadInputs(db, [path.join(FIXTURES, 'synthetic', 'mixed-small.json')]);
    db.close();
    expect(nativeLoads.length).toBe(before + 1);
  });

  describe.skipIf(!BUILT)('gives exactly read_json\'s rows', () => {
    const fixtures = [
      ...fs.readdirSync(COMPAT_DIR).filter((f) => f.endsWith('.json')).map((f) => path.join(COMPAT_DIR, f)),
      ...fs.readdirSync(path.join(FIXTURES, 'synthetic')).filter((f) => f.endsWith('.json') && !f.endsWith('.truth.json')).map((f) => path.join(FIXTURES, 'synthetic', f)),
    ];
    it.each(fixtures.map((f) => [path.basename(f), f]))('%s', async (_name, f) => {
      await expectSame([f], 4096);
    });

    // Retis's own files are 1.6 (read_json with compat fixups): as 1.7 files they take the
    // native path, and read_json of the latest format is the oracle.
    it.each(fixtures.filter((f) => f.startsWith(COMPAT_DIR)).map((f) => [path.basename(f), f]))('%s as a v1.7 file', async (name, f) => {
      const p = path.join(tmp, `v17-${name}`);
      fs.writeFileSync(p, fs.readFileSync(f, 'utf8').replace('"retis_version":"v1.6.0"', '"retis_version":"v1.7.0"'));
      await expectSame([p], 4096);
      // (a series file stays with read_json)
      if (name !== 'test_events_sorted.json') expect(nativeLoads).toContain(p);
    });

    it.each(Object.keys(ODD))('odd input: %s', async (name) => {
      const p = path.join(tmp, `${name}.json`);
      fs.writeFileSync(p, Buffer.from(ODD[name]!, 'latin1'));
      await expectSame([p], 64);
      // Valid input the reader handles itself must not be left to read_json.
      if (NATIVE_OK.includes(name)) expect(nativeFallbacks.filter((x) => x.path === p)).toEqual([]);
    });

    let generated = '';
    beforeAll(async () => {
      generated = path.join(tmp, 'gen-20k.json');
      await writeEventFile({ events: 20_000, seed: 11, ovsRatio: 0.2, dropRatio: 0.1 }, generated);
    });
    it.each([1, 1000, 65536, 1 << 20, 64 << 20])('20k generated events, chunks of %i bytes, with fixtures', async (chunk) => {
      await expectSame([generated, path.join(COMPAT_DIR, 'test_events_packets.json')], chunk);
      expect(nativeFallbacks.filter((x) => x.path === generated)).toEqual([]);
    }, 120_000);
  });
});
