/**
 * The subcommands of retis-query: print, sort, pcap, stats. Each reads the loaded
 * `events` table and writes in the requested format (text is Retis's own).
 */
import path from 'node:path';
import type { Db } from './db.ts';
import type { CliArgs } from './cli.ts';
import type { LoadedFile } from './load/index.ts';
import { InputError } from './load/errors.ts';
import { downgradeEvent, eventFromRow, eventToJson, seriesToJson, type RetisEvent } from './model/event.ts';
import { EVENT_TABLE_COLUMNS, EVENT_TABLE_SQL } from './model/columns.ts';
import { Out, rowWriter } from './output.ts';
import { buildSeries, inputIsSorted, streamSeries } from './sort/series.ts';
import { formatEvent, formatSeries, type FormatOptions } from './format/event-text.ts';
import { exportPcap, parseProbeFilter, ProbeNotFoundError } from './pcap/retis-pcap.ts';
import fs from 'node:fs';
import { exportArrow, exportParquet } from './export.ts';

export interface CommandContext {
  db: Db;
  args: CliArgs;
  files: LoadedFile[];
  out: Out;
}

const EVENT_COLUMNS = [...EVENT_TABLE_COLUMNS];
const EVENT_COLUMNS_SQL = EVENT_TABLE_SQL;

function formatOptions(ctx: CommandContext): (src: string) => FormatOptions {
  const offsets = new Map(ctx.files.map((f) => [f.path, f.offsetNs]));
  const cache = new Map<string, FormatOptions>();
  return (src) => {
    let o = cache.get(src);
    if (!o) {
      const off = offsets.get(src);
      o = { multiline: ctx.args.multiline, utc: ctx.args.utc, printLl: ctx.args.printLl, ...(off != null ? { monotonicOffsetNs: off } : {}) };
      cache.set(src, o);
    }
    return o;
  };
}

function compatOf(ctx: CommandContext): Map<string, number> {
  return new Map(ctx.files.map((f) => [f.path, f.compat]));
}

export async function printCommand(ctx: CommandContext): Promise<number> {
  const { db, args, out } = ctx;
  if (args.format === 'table' || args.format === 'csv') {
    const w = rowWriter(args.format, EVENT_COLUMNS, out);
    for await (const rows of db.stream(`SELECT ${EVENT_COLUMNS_SQL} FROM events ORDER BY eid`)) await w.rows(rows);
    await w.end();
    return 0;
  }
  const opts = formatOptions(ctx);
  const compat = compatOf(ctx);
  const sorted = await inputIsSorted(db);
  if (sorted && args.format === 'text') {
    // A sorted file prints as series, as `retis print` does.
    for await (const s of streamSeries(db)) await out.write(`${formatSeries(s.events, opts(s.src))}\n\n`);
    return 0;
  }
  for await (const rows of db.stream('SELECT * FROM events ORDER BY eid')) {
    for (const row of rows) {
      const ev = eventFromRow(row);
      const src = row.src as string;
      if (args.format === 'json') await out.write(`${eventToJson(downgradeEvent(ev, compat.get(src) ?? 2))}\n`);
      else {
        const text = formatEvent(ev, opts(src));
        if (text.length > 0) await out.write(args.multiline ? `${text}\n\n` : `${text}\n`);
      }
    }
  }
  return 0;
}

export async function sortCommand(ctx: CommandContext): Promise<number> {
  const { db, args, out, files } = ctx;
  const sorted = await inputIsSorted(db);
  if (sorted) process.stderr.write('retis-query: input already sorted: keeping its series\n');
  else await buildSeries(db);
  if (args.format === 'table' || args.format === 'csv') {
    const cols = ['series', 'idx', ...EVENT_COLUMNS];
    const w = rowWriter(args.format, cols, out);
    const sql = sorted
      ? `SELECT series, seq AS idx, ${EVENT_COLUMNS_SQL} FROM events ORDER BY eid`
      : `SELECT dense_rank() OVER (ORDER BY m.k_ts, m.series_tid NULLS FIRST, CASE WHEN m.series_tid IS NULL THEN e.eid END) AS series,
                CASE WHEN m.series_tid IS NULL THEN NULL ELSE m.idx END AS idx, ${EVENT_COLUMNS_SQL.replace(/\b(eid|ts|cpu|comm|probe|reason|dev_name|ifindex|netns_inum|saddr|daddr|proto|sport|dport|len|track_id|skb_addr)\b/g, 'e.$1')}
         FROM events e JOIN series_map m USING (eid) ORDER BY series, e.eid`;
    for await (const rows of db.stream(sql)) await w.rows(rows);
    await w.end();
    return 0;
  }
  const compat = compatOf(ctx);
  let target: Out = out;
  let file: fs.WriteStream | undefined;
  const json = args.format === 'json' || args.out !== undefined;
  if (args.out !== undefined) {
    if (files.some((f) => path.resolve(f.path) === path.resolve(args.out!))) {
      throw new InputError(args.out, null, 'Cannot sort a file in-place. Please specify an output file that is different from the input file.');
    }
    file = fs.createWriteStream(args.out, { mode: 0o600 });
    target = new Out(file);
  }
  const opts = formatOptions(ctx);
  for await (const s of streamSeries(db)) {
    if (json) {
      const c = compat.get(s.src) ?? 2;
      await target.write(`${seriesToJson(s.events.map((e) => downgradeEvent(e, c)))}\n`);
    } else {
      await target.write(`${formatSeries(s.events, opts(s.src))}\n\n`);
    }
  }
  await target.flush();
  if (file) await new Promise<void>((resolve, reject) => file!.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return 0;
}

export async function pcapCommand(ctx: CommandContext): Promise<number> {
  const { db, args } = ctx;
  const probe = args.probe ? parseProbeFilter(args.probe) : undefined;
  async function* events(): AsyncGenerator<RetisEvent> {
    for await (const rows of db.stream('SELECT * FROM events ORDER BY eid')) for (const r of rows) yield eventFromRow(r);
  }
  const fmt = (ev: RetisEvent) => formatEvent(ev, { multiline: true, utc: false, printLl: false });
  try {
    const target = args.out === '-' ? 'stdout' : { path: args.out!, mode: 0o600 };
    const r = await exportPcap(events(), target, fmt, probe ? { probe } : {});
    if (r.skipped > 0) process.stderr.write(`retis-query: ${r.skipped} event(s) were skipped because of missing raw packet\n`);
    process.stderr.write(`retis-query: ${r.processed} event(s) were processed, ${r.packets} packet(s) written to ${args.out}\n`);
    if (args.format !== 'text' && args.out !== '-') {
      const w = rowWriter(args.format, ['file', 'processed', 'skipped', 'packets', 'interfaces'], ctx.out);
      await w.rows([{ file: args.out, ...r }]);
      await w.end();
    }
  } catch (e) {
    if (e instanceof ProbeNotFoundError) {
      process.stderr.write(`retis-query: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  return 0;
}

/** `%Y-%m-%d %H:%M:%S.%6f` in UTC of epoch ns. */
export function utcText(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const us = ((ns % 1_000_000_000n) / 1000n).toString().padStart(6, '0');
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${us}`;
}

export async function statsCommand(ctx: CommandContext): Promise<number> {
  const { db, args, out } = ctx;
  const probes = await db.rows<{ probe: string; count: bigint }>(
    `SELECT probe_type || '/' || symbol AS probe, count(*) AS count FROM events WHERE probe_type IS NOT NULL GROUP BY ALL ORDER BY count DESC, probe`,
  );
  const sectionNames = ['kernel', 'userspace', 'tracking', 'skb-tracking', 'skb-drop', 'packet', 'skb', 'netns', 'dev', 'ovs', 'ovs-detrace', 'nft', 'ct'];
  const sections = await db.rows<Record<string, bigint>>(
    `SELECT ${sectionNames.map((s) => `count(*) FILTER (WHERE "${s}" IS NOT NULL) AS "${s}"`).join(', ')} FROM events WHERE startup IS NULL`,
  );
  const cpus = await db.rows<{ cpu: number; count: bigint }>(`SELECT cpu, count(*) AS count FROM events WHERE cpu IS NOT NULL GROUP BY cpu ORDER BY cpu`);
  const [span] = await db.rows<{ n: bigint; first: bigint | null; last: bigint | null; first_ts: bigint | null; last_ts: bigint | null }>(
    `SELECT count(*) AS n, min(wall_ns) AS first, max(wall_ns) AS last, min(ts) AS first_ts, max(ts) AS last_ts FROM events WHERE startup IS NULL`,
  );
  const startups = await db.rows<{ src: string; version: string; cmdline: string | null; split: number | null }>(
    `SELECT src, startup.retis_version AS version, startup.cmdline AS cmdline, startup.split_file.id AS split FROM events WHERE startup IS NOT NULL ORDER BY eid`,
  );
  const sorted = await inputIsSorted(db);
  const nSeries = sorted ? (await db.rows<{ n: bigint }>(`SELECT count(DISTINCT (src, series)) AS n FROM events`))[0]!.n : null;
  const lost = await lostEvents(ctx);

  if (args.format !== 'text') {
    const rows: Record<string, unknown>[] = [];
    rows.push({ kind: 'events', key: 'total', count: span!.n });
    if (nSeries !== null) rows.push({ kind: 'series', key: 'total', count: nSeries });
    rows.push({ kind: 'time', key: 'first_ns', count: span!.first ?? span!.first_ts });
    rows.push({ kind: 'time', key: 'last_ns', count: span!.last ?? span!.last_ts });
    for (const p of probes) rows.push({ kind: 'probe', key: p.probe, count: p.count });
    for (const [k, v] of Object.entries(sections[0] ?? {})) if (v > 0n) rows.push({ kind: 'section', key: k, count: v });
    for (const c of cpus) rows.push({ kind: 'cpu', key: String(c.cpu), count: c.count });
    for (const l of lost) rows.push({ kind: 'lost', key: l.key, count: l.count });
    const w = rowWriter(args.format, ['kind', 'key', 'count'], out);
    await w.rows(rows);
    await w.end();
    return 0;
  }
  const lines: string[] = [];
  const first = startups[0];
  if (first) {
    lines.push(`Retis version: ${first.version}`);
    lines.push(`Retis cmdline: ${first.cmdline ?? 'unknown'}`);
  }
  for (const s of startups) if (s.split !== null && s.split !== undefined) lines.push('', `Split index: ${s.split}`);
  if (nSeries !== null) lines.push(`Number of series: ${nSeries}`);
  lines.push(`Number of events: ${span!.n}`);
  const when = (wall: bigint | null, mono: bigint | null) => (wall !== null ? utcText(wall) : mono !== null ? `${mono} (monotonic ns)` : 'n/a');
  if (span!.n > 0n) {
    lines.push(`First event at: ${when(span!.first, span!.first_ts)}`);
    lines.push(`Last event at: ${when(span!.last, span!.last_ts)}`);
  }
  lines.push('Probes:');
  for (const p of probes) lines.push(`  ${p.probe}: ${p.count}`);
  lines.push('Sections:');
  for (const [k, v] of Object.entries(sections[0] ?? {})) if (v > 0n) lines.push(`  ${k}: ${v}`);
  if (cpus.length > 0) {
    lines.push('CPUs:');
    for (const c of cpus) lines.push(`  ${c.cpu}: ${c.count}`);
  }
  if (lost.length > 0) {
    lines.push('Lost events:');
    for (const l of lost) lines.push(`  ${l.key}: ${l.count}`);
  }
  if (ctx.files.length > 1) lines.push(`Files: ${ctx.files.length}`);
  await out.write(`${lines.join('\n')}\n`);
  return 0;
}

/** Loss counts recorded by our captures (capture.json next to the events file). */
async function lostEvents(ctx: CommandContext): Promise<{ key: string; count: bigint }[]> {
  const out: { key: string; count: bigint }[] = [];
  for (const f of ctx.files) {
    const meta = path.join(path.dirname(f.path), 'capture.json');
    if (f.format === 'retis-json' || !fs.existsSync(meta)) continue;
    try {
      const m = JSON.parse(fs.readFileSync(meta, 'utf8')) as { counts?: { lost?: Record<string, unknown> } };
      const lost = m.counts?.lost ?? {};
      for (const [k, v] of Object.entries(lost)) {
        if (typeof v === 'number' || typeof v === 'string') out.push({ key: ctx.files.length > 1 ? `${f.host ?? f.path} ${k}` : k, count: BigInt(v) });
        else if (v && typeof v === 'object') {
          for (const [cpu, n] of Object.entries(v as Record<string, unknown>)) {
            if (typeof n === 'number' || typeof n === 'string') out.push({ key: `${k} cpu ${cpu}`, count: BigInt(n) });
          }
        }
      }
    } catch {
      // Metadata is optional; a broken one must not hide the events.
    }
  }
  return out;
}

export async function convertCommand(ctx: CommandContext): Promise<number> {
  const { db, args, files } = ctx;
  const out = args.out!;
  if (files.some((f) => path.resolve(f.path) === path.resolve(out))) throw new InputError(out, null, 'the output file is also an input');
  if (out.endsWith('.parquet')) await exportParquet(db, out);
  else await exportArrow(db, out);
  const [{ n }] = (await db.rows<{ n: bigint }>('SELECT count(*) AS n FROM events')) as [{ n: bigint }];
  process.stderr.write(`retis-query: ${n} event(s) written to ${out}\n`);
  return 0;
}
