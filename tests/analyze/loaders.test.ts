/**
 * One contract, several loaders: a Retis JSON file, the same events converted to our
 * Parquet and to our Arrow stream must load into identical model rows. Plus the input
 * forms (split files, directories, globs, many hosts) and every compat version.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Db } from '../../analyze/db.ts';
import { exportArrow, exportParquet } from '../../analyze/export.ts';
import { loadInputs, resolveInputs } from '../../analyze/load/index.ts';
import { eventFromRow, eventToJson } from '../../analyze/model/event.ts';
import { ALIAS_COLUMNS } from '../../analyze/model/derive.ts';
import { LAZY_SECTIONS } from '../../analyze/model/lazy.ts';
import { LAZY_COMPUTED } from '../../analyze/load/table.ts';
import { FLAT_COLUMNS, SECTIONS, sqlType } from '../../analyze/model/schema.ts';
import { compat } from '../util/paths.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-loaders-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function withDb<T>(fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await Db.open();
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}

/** What a load produced: event JSON and flat columns, minus what names the file. */
async function snapshot(inputs: string[]): Promise<{ json: string[]; flat: Record<string, unknown>[] }> {
  return withDb(async (db) => {
    await loadInputs(db, inputs);
    const rows = await db.rows('SELECT * FROM events ORDER BY eid');
    const flatNames = FLAT_COLUMNS.map((c) => c.name).filter((n) => n !== 'src' && n !== 'host');
    return {
      json: rows.map((r) => eventToJson(eventFromRow(r))),
      flat: rows.map((r) => Object.fromEntries(flatNames.map((n) => [n, r[n]]))),
    };
  });
}

const SOURCES = ['test_events_packets.json', 'test_events.json'];

describe.each(SOURCES)('loader contract on %s', (name) => {
  let reference: Awaited<ReturnType<typeof snapshot>>;
  const parquet = path.join(tmp, `${name}.parquet`);
  const arrow = path.join(tmp, `${name}.arrow`);
  beforeAll(async () => {
    reference = await snapshot([compat(name)]);
    await withDb(async (db) => {
      await loadInputs(db, [compat(name)]);
      await exportParquet(db, parquet);
      await exportArrow(db, arrow);
    });
  });

  it('Retis JSON keeps every event, in order, with exact u64 values', () => {
    const lines = fs.readFileSync(compat(name), 'utf8').trim().split('\n');
    expect(reference.json).toHaveLength(lines.length);
    // u64 values above 2^53 survive digit for digit.
    for (const m of fs.readFileSync(compat(name), 'utf8').matchAll(/"(orig_head|skb)":(\d{17,})/g)) {
      expect(reference.json.join('\n')).toContain(`"${m[1]}":${m[2]}`);
    }
  });

  it.each([
    ['parquet', parquet],
    ['arrow', arrow],
  ])('our %s file loads into the same rows', async (_kind, file) => {
    const got = await snapshot([file]);
    expect(got.json).toEqual(reference.json);
    expect(got.flat).toEqual(reference.flat);
  });

  it('files we write are 0600 and carry the schema version', async () => {
    expect(fs.statSync(parquet).mode & 0o777).toBe(0o600);
    expect(fs.statSync(arrow).mode & 0o777).toBe(0o600);
    const kv = await withDb((db) => db.rows<{ k: string; v: string }>(`SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('${parquet}')`));
    expect(kv).toContainEqual({ k: 'retis_ts.schema_version', v: '1' });
  });
});

describe('flat columns', () => {
  it('are parsed from the raw packet and the sections', async () => {
    const rows = await withDb(async (db) => {
      await loadInputs(db, [compat('test_events_packets.json')]);
      return db.rows(`SELECT * EXCLUDE (src, host) FROM events WHERE seq = 2`);
    });
    const r = rows[0]!;
    expect(r).toMatchObject({
      seq: 2n,
      ts: 30419169061793n,
      wall_ns: 1742339565860103793n,
      cpu: 6,
      pid: 11330,
      comm: 'ping',
      probe_type: 'raw_tracepoint',
      probe: 'tp:net:net_dev_start_xmit',
      track_id: (0x1baa83c42ba1n << 64n) | 0xffff8e95c3b67c00n,
      skb_addr: 0xffff8e95d3009100n,
      dev_name: 'veth-ns01',
      ifindex: 11,
      netns_inum: 4026532741,
      len: 98,
      ethertype: 0x0800,
      saddr: '192.168.125.10',
      daddr: '192.168.125.11',
      ip_proto: 1,
      proto: 'icmp',
      sport: null,
      dport: null,
    });
  });

  it('copies of a section field are computed by the view, not stored; the view and Parquet keep the model', async () => {
    // The view reads them from events_lazy too, where lazy sections are JSON text.
    for (const expr of Object.values(ALIAS_COLUMNS)) {
      for (const s of LAZY_SECTIONS) expect(expr).not.toMatch(new RegExp(`(?<![\\w"-])"?${s}"?\\.`));
    }
    const file = path.join(tmp, 'alias.parquet');
    const model = [...FLAT_COLUMNS, ...SECTIONS].map((c) => ({ name: c.name, type: sqlType(c.type) }));
    await withDb(async (db) => {
      await loadInputs(db, [compat('test_events_packets.json')]);
      await exportParquet(db, file);
      await loadInputs(db, [file]);
      for (const table of ['events_base', 'events_lazy']) {
        const cols = (await db.rows<{ n: string }>(`SELECT column_name AS n FROM (DESCRIBE ${table})`)).map((r) => r.n);
        expect(cols.filter((c) => c in ALIAS_COLUMNS)).toEqual([]);
        // Nor does events_lazy store what is the same for a whole file or derived when read.
        if (table === 'events_lazy') expect(cols.filter((c) => c in LAZY_COMPUTED)).toEqual([]);
      }
      // Types as DuckDB spells them: a table made of the model's columns, described alike.
      await db.run(`CREATE TEMP TABLE _model (${model.map((c) => `"${c.name}" ${c.type}`).join(', ')})`);
      const describe = (rel: string) => db.rows(`SELECT column_name AS name, column_type AS type FROM (DESCRIBE ${rel})`);
      expect(await describe('events')).toEqual(await describe('_model'));
      const written = await db.rows<{ name: string }>(`SELECT column_name AS name FROM (DESCRIBE SELECT * FROM read_parquet('${file}'))`);
      expect(written.map((r) => r.name)).toEqual(model.map((c) => c.name).filter((n) => n !== 'eid' && n !== 'src'));
      // Both loads hold the same events: the JSON one in events_lazy, the Parquet one in events_base.
      const [{ n }] = await db.rows<{ n: bigint }>(
        `SELECT count(*) AS n FROM (SELECT * EXCLUDE (eid, src) FROM events WHERE src <> '${file}' EXCEPT ALL SELECT * EXCLUDE (eid, src) FROM events WHERE src = '${file}')`,
      );
      expect(n).toBe(0n);
    });
  });

  it('IPv6, VLAN and ports', async () => {
    // Ethernet + 802.1Q (vid 123) + IPv6 1111::1 → 1111::2 TCP 56164 → 80.
    const pkt = Buffer.from(
      'aeb04a6abfaf9e1d3d319e3b8100007b86dd6006f48a00280640' +
        '11110000000000000000000000000001' +
        '11110000000000000000000000000002' +
        'db6400500000000000000000a002fd20000000000204',
      'hex',
    );
    const file = path.join(tmp, 'v6.json');
    fs.writeFileSync(
      file,
      [
        '{"common":{"timestamp":1},"startup":{"retis_version":"v1.7.0","cmdline":"c","clock_monotonic_offset":{"sec":0,"nsec":0},"machine":{"kernel_release":"r","kernel_version":"v","hardware_name":"h"}}}',
        `{"common":{"timestamp":2},"kernel":{"symbol":"net:netif_receive_skb","probe_type":"raw_tracepoint"},"packet":{"len":${pkt.length},"capture_len":${pkt.length},"data":"${pkt.toString('base64')}"}}`,
      ].join('\n'),
    );
    const rows = await withDb(async (db) => {
      await loadInputs(db, [file]);
      return db.rows(`SELECT ethertype, saddr, daddr, proto, sport, dport FROM events WHERE seq = 2`);
    });
    expect(rows[0]).toEqual({ ethertype: 0x86dd, saddr: '1111::1', daddr: '1111::2', proto: 'tcp', sport: 56164, dport: 80 });
  });
});

const startup = (version: string, extra = '') =>
  `{"common":{"timestamp":10},"startup":{"retis_version":"${version}","clock_monotonic_offset":{"sec":5,"nsec":0}${extra}}}`;

describe('Retis versions (compat fixups)', () => {
  it('1.5 files: skb/packet, skb/dev, skb/ns move to their own sections; ct_status added', async () => {
    const file = path.join(tmp, 'v15.json');
    fs.writeFileSync(
      file,
      [
        startup('v1.5.2'),
        '{"common":{"timestamp":11},"kernel":{"symbol":"ip_rcv","probe_type":"kprobe"},"skb":{"packet":{"len":60,"capture_len":4,"packet":"AAECAw=="},"dev":{"name":"eth0","ifindex":2},"ns":{"netns":4026531840}},"ct":{"state":"new","zone_id":0,"zone_dir":"Default","orig":{"ip":{"src":"1.1.1.1","dst":"2.2.2.2","version":"v4"},"proto":{"tcp":{"sport":1,"dport":2}}},"reply":{"ip":{"src":"2.2.2.2","dst":"1.1.1.1","version":"v4"},"proto":{"tcp":{"sport":2,"dport":1}}},"tcp_state":"SYN_SENT"}}',
      ].join('\n'),
    );
    const rows = await withDb(async (db) => {
      const loaded = await loadInputs(db, [file]);
      expect(loaded[0]).toMatchObject({ compat: 0, version: 'v1.5.2' });
      return db.rows('SELECT packet, dev, netns, ct.ct_status AS st, ct.proto_state AS ps, startup.cmdline AS cmd FROM events ORDER BY eid');
    });
    expect(rows[0]!.cmd).toBe('unknown');
    expect(rows[1]).toMatchObject({
      packet: { len: 60, capture_len: 4 },
      dev: { name: 'eth0', ifindex: 2, rx_ifindex: null },
      netns: { cookie: null, inum: 4026531840 },
      st: 0n,
      ps: 'SYN_SENT',
    });
    expect(Buffer.from((rows[1]!.packet as { data: Uint8Array }).data).toString('hex')).toBe('00010203');
  });

  it('1.6 files: ct tcp_state becomes proto_state, startup gains machine/cmdline', async () => {
    const file = path.join(tmp, 'v16.json');
    fs.writeFileSync(file, [startup('v1.6.1-rc2'), '{"common":{"timestamp":11},"ct":{"state":"established","zone_id":1,"zone_dir":"Original","orig":{"ip":{"src":"a","dst":"b","version":"v4"},"proto":{"udp":{"sport":1,"dport":2}}},"reply":{"ip":{"src":"b","dst":"a","version":"v4"},"proto":{"udp":{"sport":2,"dport":1}}},"ct_status":10,"tcp_state":"ESTABLISHED"}}'].join('\n'));
    const rows = await withDb(async (db) => {
      await loadInputs(db, [file]);
      return db.rows('SELECT ct.proto_state AS ps, startup.machine.kernel_release AS kr FROM events ORDER BY eid');
    });
    expect(rows[0]!.kr).toBe('unknown');
    expect(rows[1]!.ps).toBe('ESTABLISHED');
  });

  it('1.7 files are read as they are; a 2.x file is refused naming the version', async () => {
    const ok = path.join(tmp, 'v17.json');
    fs.writeFileSync(ok, startup('v1.7.0', ',"cmdline":"retis collect","machine":{"kernel_release":"6.1","kernel_version":"#1","hardware_name":"x86_64"},"split_file":{"id":3,"policy":"size"}'));
    const rows = await withDb(async (db) => {
      await loadInputs(db, [ok]);
      return db.rows('SELECT startup.cmdline AS c, startup.split_file.id AS id FROM events');
    });
    expect(rows[0]).toEqual({ c: 'retis collect', id: 3 });
    const future = path.join(tmp, 'v2.json');
    fs.writeFileSync(future, startup('v2.0.0'));
    await expect(withDb((db) => loadInputs(db, [future]))).rejects.toThrow(/v2\.json:1: written by Retis v2\.0\.0, a format newer/);
  });
});

describe('inputs', () => {
  const write = (p: string, ts: number) => {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, `${startup('v1.7.0', ',"cmdline":"c","machine":{"kernel_release":"r","kernel_version":"v","hardware_name":"h"}')}\n{"common":{"timestamp":${ts}},"kernel":{"symbol":"skb:kfree_skb","probe_type":"raw_tracepoint"},"skb-drop":{"drop_reason":"NO_SOCKET"}}\n`);
  };

  it('FILE.. follows split files in order', async () => {
    for (let i = 0; i < 3; i++) write(path.join(tmp, 'split', `retis.data.${i}`), 100 + i);
    const specs = resolveInputs([path.join(tmp, 'split', 'retis.data.1..')]);
    expect(specs.map((s) => path.basename(s.path))).toEqual(['retis.data.1', 'retis.data.2']);
    const rows = await withDb(async (db) => {
      await loadInputs(db, [path.join(tmp, 'split', 'retis.data.1..')]);
      return db.rows('SELECT eid, ts FROM events WHERE startup IS NULL ORDER BY eid');
    });
    expect(rows.map((r) => r.ts)).toEqual([101n, 102n]);
  });

  it('a directory or glob of many hosts is one load, the host a column', async () => {
    write(path.join(tmp, 'hosts', 'hostA', 'retis.data'), 1000);
    write(path.join(tmp, 'hosts', 'hostB', 'retis.data'), 2000);
    for (const spec of [path.join(tmp, 'hosts'), path.join(tmp, 'hosts', '*', 'retis.data')]) {
      const rows = await withDb(async (db) => {
        await loadInputs(db, [spec]);
        // Latest-format Retis files: events_lazy, whose rows get src, host, probe from the view.
        return db.rows('SELECT host, src, probe, series, count(*) AS n FROM events WHERE reason IS NOT NULL GROUP BY ALL ORDER BY host');
      });
      const src = (h: string) => path.join(tmp, 'hosts', h, 'retis.data');
      expect(rows).toEqual([
        { host: 'hostA', src: src('hostA'), probe: 'tp:skb:kfree_skb', series: null, n: 1n },
        { host: 'hostB', src: src('hostB'), probe: 'tp:skb:kfree_skb', series: null, n: 1n },
      ]);
    }
  });

  it('a missing input is a clear error', async () => {
    await expect(withDb((db) => loadInputs(db, [path.join(tmp, 'nope.json')]))).rejects.toThrow(/nope\.json: no such file or directory/);
    await expect(withDb((db) => loadInputs(db, [path.join(tmp, 'nope-*.json')]))).rejects.toThrow(/no file matches this pattern/);
  });
});

describe('Arrow streams', () => {
  it('may leave out sections their writer never fills', async () => {
    const { RecordBatchStreamWriter, Table, vectorFromArray, Schema, Uint64 } = await import('apache-arrow');
    const { eventArrowSchema } = await import('../../analyze/model/arrow-schema.ts');
    const full = eventArrowSchema();
    const keep = ['seq', 'common'];
    const schema = new Schema(full.fields.filter((f) => keep.includes(f.name)), full.metadata);
    const common = full.fields.find((f) => f.name === 'common')!;
    const table = new Table(schema, {
      seq: vectorFromArray([1n, 2n], new Uint64()),
      common: vectorFromArray([{ timestamp: 10n, smp_id: 0, task: null }, { timestamp: 11n, smp_id: 1, task: null }], common.type),
    });
    const file = path.join(tmp, 'sparse.arrow');
    fs.writeFileSync(file, RecordBatchStreamWriter.writeAll(table).toUint8Array(true));
    const rows = await withDb(async (db) => {
      await loadInputs(db, [file]);
      return db.rows('SELECT ts, cpu, kernel, packet FROM events ORDER BY eid');
    });
    expect(rows).toEqual([
      { ts: 10n, cpu: 0, kernel: null, packet: null },
      { ts: 11n, cpu: 1, kernel: null, packet: null },
    ]);
  });
});
