/**
 * bench query: the query language's two costs, each beside its bound.
 *
 *   npm run bench -- query [--events N] [--base B] [--runs R] [--keep DIR]
 *     --keep DIR keeps the generated JSON and the loaded database (a DuckDB file) there,
 *     and reuses them on the next run with the same N and B.
 *   npx tsx bench/query.ts --events 10000000
 *
 * 1. parse + compile time of typical queries (mean of many runs, no database): target
 *    under 1 ms each;
 * 2. on N events, each query as compiled beside the equivalent SQL written by hand
 *    (literal values, same result): target ratio ≤ 1.2.
 *
 * Data: B realistic events from bench/gen/generate.ts (Retis JSON, loaded by our loader),
 * then copied in SQL, shifted in time (timestamps, tracking ids, OVS upcall keys), up to
 * N events: the same mix of packets, drops and upcall round trips at any size, without
 * parsing gigabytes of JSON. Statements are timed in DuckDB up to a materialised result
 * (no JS conversion of rows), best of R runs. The last line on stdout is one JSON object.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DuckDBValue } from '@duckdb/node-api';
import { Db } from '../analyze/db.ts';
import { loadInputs } from '../analyze/load/index.ts';
import { ALIAS_COLUMNS } from '../analyze/model/derive.ts';
import { buildSeries } from '../analyze/sort/series.ts';
import { compile } from '../query-lang/compile.ts';
import { Catalog } from '../query-lang/domains.ts';
import { lex } from '../query-lang/lexer.ts';
import { parseTokens } from '../query-lang/parser.ts';
import { prepareQuery } from '../query-lang/run.ts';
import { buildAst } from '../query-lang/visitor/ast.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface QueryBenchOptions {
  /** Events in the database (default 1,000,000). */
  events?: number;
  /** Events generated and loaded as Retis JSON before copying (default min(events, 100,000)). */
  base?: number;
  /** Runs per statement, best taken (default 5). */
  runs?: number;
  /** Keep generated files in this directory (reused when present). */
  keep?: string;
  log?: (line: string) => void;
}

export interface QueryBenchCase {
  query: string;
  /** What a person would write in SQL for the same result. */
  hand: string;
}

/** The benchmarked queries (cli.md's own, on the generator's topology) and their hand-written SQL. */
export const CASES: QueryBenchCase[] = [
  {
    query: 'drops where reason = NETFILTER_DROP',
    hand: `SELECT * FROM events WHERE reason = 'NETFILTER_DROP' ORDER BY eid`,
  },
  {
    query: 'drops | count by reason',
    hand: `SELECT reason, count(*) AS count FROM events WHERE reason IS NOT NULL GROUP BY reason ORDER BY count DESC, reason`,
  },
  {
    query: 'events where dev = "veth-ns01" and proto = udp | count',
    hand: `SELECT count(*) AS count FROM events WHERE dev_name = 'veth-ns01' AND proto = 'udp'`,
  },
  {
    query: 'events where probe = "tp:net:netif_receive_skb" | count by dev',
    hand: `SELECT dev_name AS dev, count(*) AS count FROM events WHERE probe = 'tp:net:netif_receive_skb' GROUP BY dev_name ORDER BY count DESC, dev`,
  },
  {
    query: 'events where saddr in 10.0.0.0/8 and dport = 53 | count by saddr',
    hand: `SELECT saddr, count(*) AS count FROM events WHERE starts_with(saddr, '10.') AND dport = 53 GROUP BY saddr ORDER BY count DESC, saddr`,
  },
  {
    query: 'tracks where any(drop) | limit 5',
    hand: `WITH dropped AS (SELECT DISTINCT series_tid FROM events JOIN series_map USING (eid)
                 WHERE reason IS NOT NULL AND series_tid IS NOT NULL ORDER BY series_tid LIMIT 5),
t AS (SELECT series_tid, min(ts) AS first_ts, max(ts) AS last_ts, max(ts)::BIGINT - min(ts)::BIGINT AS duration, count(*) AS events,
       list_sort(list(DISTINCT probe) FILTER (WHERE probe IS NOT NULL)) AS probes,
       list_sort(list(DISTINCT dev_name) FILTER (WHERE dev_name IS NOT NULL)) AS devs,
       list_sort(list(DISTINCT netns_inum) FILTER (WHERE netns_inum IS NOT NULL)) AS netns,
       count(DISTINCT netns_inum) > 1 AS netns_crossed,
       coalesce(bool_or(ovs.nat IS NOT NULL OR (ct.ct_status & 48) <> 0 OR ct.orig.ip.src <> ct.reply.ip.dst OR ct.orig.ip.dst <> ct.reply.ip.src), false) AS nat,
       arg_min(saddr, eid) FILTER (WHERE saddr IS NOT NULL) AS saddr, arg_min(daddr, eid) FILTER (WHERE daddr IS NOT NULL) AS daddr,
       arg_min(proto, eid) FILTER (WHERE proto IS NOT NULL) AS proto, arg_min(sport, eid) FILTER (WHERE sport IS NOT NULL) AS sport,
       arg_min(dport, eid) FILTER (WHERE dport IS NOT NULL) AS dport,
       coalesce(bool_or(reason IS NOT NULL AND reason NOT IN ('CONSUMED', 'NOT_DROPPED_YET')), false) AS dropped,
       coalesce(bool_or(reason = 'CONSUMED' OR symbol IN ('skb:consume_skb', 'consume_skb', 'tcp_v4_rcv', 'tcp_v6_rcv', 'tcp_rcv_established', 'udp_rcv', 'udpv6_rcv', 'udp_queue_rcv_skb', 'udpv6_queue_rcv_skb', '__udp_enqueue_schedule_skb', 'sock_queue_rcv_skb', 'icmp_rcv', 'icmpv6_rcv', 'raw_rcv')), false) AS consumed,
       arg_max(symbol, eid) IN ('net:net_dev_start_xmit', 'net:net_dev_xmit', 'net:net_dev_queue', 'dev_hard_start_xmit', 'dev_queue_xmit', '__dev_queue_xmit', 'xmit_one') AS sent,
       arg_max(reason, eid) FILTER (WHERE reason IS NOT NULL AND reason NOT IN ('CONSUMED', 'NOT_DROPPED_YET')) AS reason,
       arg_max(dev_name, eid) AS last_dev
FROM events JOIN series_map USING (eid)
WHERE series_tid IN (SELECT series_tid FROM dropped)
GROUP BY series_tid)
SELECT lower(printf('%x', (series_tid >> 64)::UBIGINT)) || lower(printf('%016x', (series_tid & 18446744073709551615::UHUGEINT)::UBIGINT)) AS track,
       first_ts, last_ts, duration, events, probes, devs, netns, netns_crossed, nat, saddr, daddr, proto, sport, dport,
       CASE WHEN dropped THEN 'dropped' WHEN consumed THEN 'consumed' WHEN sent THEN 'transmitted' ELSE 'unknown' END AS fate,
       reason, CASE WHEN NOT dropped AND NOT consumed AND sent THEN last_dev END AS fate_dev
FROM t ORDER BY series_tid`,
  },
  {
    query: 'tracks | count by fate',
    hand: `SELECT fate, count(*) AS count FROM (
  SELECT CASE WHEN bool_or(reason IS NOT NULL AND reason NOT IN ('CONSUMED', 'NOT_DROPPED_YET')) THEN 'dropped'
              WHEN bool_or(reason = 'CONSUMED' OR symbol IN ('skb:consume_skb', 'consume_skb', 'tcp_v4_rcv', 'tcp_v6_rcv', 'tcp_rcv_established', 'udp_rcv', 'udpv6_rcv', 'udp_queue_rcv_skb', 'udpv6_queue_rcv_skb', '__udp_enqueue_schedule_skb', 'sock_queue_rcv_skb', 'icmp_rcv', 'icmpv6_rcv', 'raw_rcv')) THEN 'consumed'
              WHEN arg_max(symbol, eid) IN ('net:net_dev_start_xmit', 'net:net_dev_xmit', 'net:net_dev_queue', 'dev_hard_start_xmit', 'dev_queue_xmit', '__dev_queue_xmit', 'xmit_one') THEN 'transmitted'
              ELSE 'unknown' END AS fate
  FROM events JOIN series_map USING (eid) WHERE series_tid IS NOT NULL GROUP BY series_tid)
GROUP BY fate ORDER BY count DESC, fate`,
  },
  {
    query: 'upcalls | stats latency',
    hand: `WITH up AS (SELECT ts, ovs.cpu AS cpu FROM events WHERE ovs.event_type = 'upcall'),
enq AS (SELECT eid, ovs.queue_id AS qid, ovs.upcall_ts AS uts, ovs.upcall_cpu AS ucpu FROM events WHERE ovs.event_type = 'upcall_enqueue'),
ex AS (SELECT eid, ts, ovs.queue_id AS qid FROM events WHERE ovs.event_type = 'flow_operation' AND ovs.op_type = 'exec'),
done AS (SELECT enq.uts, enq.ucpu, min(ex.ts) AS exec_ts FROM ex ASOF JOIN enq ON ex.qid = enq.qid AND ex.eid >= enq.eid GROUP BY ALL),
lat AS (SELECT done.exec_ts::BIGINT - up.ts::BIGINT AS latency FROM up JOIN done ON done.uts = up.ts AND done.ucpu = up.cpu)
SELECT count(latency) AS count, min(latency) AS min, round(avg(latency), 2) AS avg, quantile_disc(latency, 0.5) AS p50,
       quantile_disc(latency, 0.9) AS p90, quantile_disc(latency, 0.99) AS p99, max(latency) AS max FROM lat`,
  },
];

/** Queries timed for parse + compile only (no database). */
export const COMPILE_ONLY: string[] = [
  'drops where reason = NETFILTER_DROP',
  'drops | count by reason',
  'events where dev = "veth0" and proto = udp | count',
  'events where probe = "tp:net:netif_receive_skb" | count by dev',
  'tracks where any(drop) | limit 5',
  'upcalls | stats latency',
  'events where saddr in 10.0.0.0/8 and not (dport in (53, 80, 443) or proto = icmp) | top 10 by daddr',
  'tracks where any(dev = "eth0") and all(proto = tcp) and duration > 5ms | fields track, duration, fate | order by duration desc | limit 20',
  'events where time >= 2024-05-01T10:00:00Z and len between 64 and 1500 | histogram len every 100',
];

/** Do both statements return the same rows (values compared as text, in order)? */
async function sameResult(db: Db, sql: string, params: DuckDBValue[], hand: string): Promise<boolean> {
  const text = (rows: Record<string, unknown>[]) => JSON.stringify(rows.map((r) => Object.values(r)), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  const a = await db.rows(`SELECT count(*) AS n, md5(string_agg(r::VARCHAR, '|' ORDER BY r::VARCHAR)) AS h FROM (${sql}) AS r`, params);
  const b = await db.rows(`SELECT count(*) AS n, md5(string_agg(r::VARCHAR, '|' ORDER BY r::VARCHAR)) AS h FROM (${hand}) AS r`);
  return text(a) === text(b);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** µs of lex + parse + AST + compile: the best of 25 batches of 100 runs, as statements are timed (best of runs). */
function compileMicros(text: string): number {
  const catalog = new Catalog();
  const once = () => {
    const l = lex(text);
    const p = parseTokens(l.tokens, text);
    if (!p.cst) throw new Error(`bench query does not parse: ${text}`);
    const a = buildAst(p.cst, text);
    if (!a.query) throw new Error(`bench query has issues: ${text}`);
    const r = compile(a.query, catalog);
    if (!r.ok) throw new Error(`bench query does not compile: ${text}: ${r.issues.map((i) => i.message).join('; ')}`);
  };
  for (let i = 0; i < 500; i++) once();
  const batches: number[] = [];
  for (let b = 0; b < 25; b++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) once();
    batches.push(Number(process.hrtime.bigint() - t) / 1e3 / 100);
  }
  return Math.min(...batches);
}

/**
 * Copy the first `base` events until there are `events`, each copy shifted in time (by
 * more than the capture's span) so that its packets are new ones: one INSERT for all copies.
 */
async function replicate(db: Db, base: number, events: number): Promise<void> {
  const [{ lo, hi }] = await db.rows<{ lo: bigint; hi: bigint }>(`SELECT min(ts) AS lo, max(ts) AS hi FROM events WHERE startup IS NULL`);
  const shift = BigInt(hi!) - BigInt(lo!) + 1_000_000_000n;
  const copies = Math.ceil(events / base);
  const d = `(k::UBIGINT * ${shift}::UBIGINT)`;
  await db.run('SET preserve_insertion_order = false');
  await db.run(
    `INSERT INTO events_base BY NAME SELECT * EXCLUDE (k, ${Object.keys(ALIAS_COLUMNS).join(', ')}) REPLACE (
       eid + k * ${base} AS eid,
       wall_ns + ${d}::BIGINT AS wall_ns,
       struct_update(common, "timestamp" := common.timestamp + ${d}) AS common,
       CASE WHEN "skb-tracking" IS NULL THEN NULL ELSE struct_update("skb-tracking", "timestamp" := "skb-tracking".timestamp + ${d}) END AS "skb-tracking",
       CASE WHEN track_id IS NULL THEN NULL ELSE track_id + (${d}::UHUGEINT << 64) END AS track_id,
       CASE WHEN ovs IS NULL THEN NULL ELSE struct_update(ovs, upcall_ts := ovs.upcall_ts + ${d}, batch_ts := ovs.batch_ts + ${d}) END AS ovs)
     FROM events, range(1, ${copies}) AS r(k)
     WHERE startup IS NULL AND eid <= ${base + 1} AND eid + k * ${base} <= ${events + 1}`,
  );
  await db.run('SET preserve_insertion_order = true');
}

/**
 * A database of `events` events: `base` generated ones (kept in `dir` as Retis JSON and
 * reused), copied up to `events`, with `series_map` built.
 */
export async function benchDatabase(o: { events: number; base: number; dir: string; log: (s: string) => void; file?: boolean }): Promise<Db> {
  const { events, base, dir, log } = o;
  // Queries always run in memory; with --keep, the built tables are also saved in a
  // DuckDB file and copied back in by later runs (faster than copying events again).
  const dbFile = o.file ? path.join(dir, `events-${events}-${base}.duckdb`) : undefined;
  const tables = ['events', 'series_map', 'files'];
  const db = await Db.open();
  try {
    if (dbFile && fs.existsSync(dbFile)) {
      log(`reading ${dbFile}`);
      const secs = await timed(async () => {
        await db.run(`ATTACH ${sqlString(dbFile)} AS kept (READ_ONLY)`);
        for (const t of tables) await db.run(`CREATE TABLE ${t} AS FROM kept.${t}`);
        await db.run('DETACH kept');
      });
      log(`  ${(secs / 1000).toFixed(1)} s`);
      return db;
    }
    const json = path.join(dir, `gen-${base}.json`);
    if (!fs.existsSync(json)) {
      log(`generating ${base} events → ${json}`);
      execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/gen/generate.ts'), '--events', String(base), '--seed', '7', '-o', json], {
        stdio: ['ignore', 'ignore', 'inherit'],
        cwd: ROOT,
      });
    }
    log(`loading ${json}`);
    log(`  ${((await timed(() => loadInputs(db, [json]))) / 1000).toFixed(1)} s`);
    if (events > base) {
      log(`copying up to ${events} events`);
      log(`  ${((await timed(() => replicate(db, base, events))) / 1000).toFixed(1)} s`);
    }
    log('building packet series');
    log(`  ${((await timed(() => buildSeries(db))) / 1000).toFixed(1)} s`);
    if (dbFile) {
      log(`saving ${dbFile}`);
      fs.rmSync(`${dbFile}.tmp`, { force: true });
      await db.run(`ATTACH ${sqlString(`${dbFile}.tmp`)} AS kept`);
      for (const t of tables) await db.run(`CREATE TABLE kept.${t} AS FROM ${t}`);
      await db.run('DETACH kept');
      fs.renameSync(`${dbFile}.tmp`, dbFile);
    }
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** SQL text of a string literal. */
function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

export interface QueryBenchResult {
  bench: 'query';
  events: number;
  compile_us: Record<string, number>;
  compile_us_max: number;
  /** `same`: the compiled query and the hand-written SQL return the same rows. */
  queries: { query: string; ms: number; hand_ms: number; ratio: number; same: boolean }[];
  ratio_max: number;
  ok: boolean;
}

export async function runQueryBench(opts: QueryBenchOptions = {}): Promise<QueryBenchResult> {
  const events = opts.events ?? 1_000_000;
  const base = Math.min(opts.base ?? 100_000, events);
  const runs = opts.runs ?? 5;
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const dir = opts.keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-bench-query-'));
  fs.mkdirSync(dir, { recursive: true });

  // 1. Parse + compile.
  const compileUs: Record<string, number> = {};
  for (const q of [...new Set([...COMPILE_ONLY, ...CASES.map((c) => c.query)])]) compileUs[q] = Math.round(compileMicros(q) * 10) / 10;
  const compileMax = Math.max(...Object.values(compileUs));
  log(`parse + compile: max ${compileMax} µs`);

  // 2. Data.
  const db = await benchDatabase({ events, base, dir, log, file: opts.keep !== undefined });
  try {
    // 3. Queries vs hand-written SQL, alternating, best of `runs`.
    const run = (sql: string, params?: DuckDBValue[]) => timed(() => db.conn.run(sql, params));
    const queries: QueryBenchResult['queries'] = [];
    for (const c of CASES) {
      const q = await prepareQuery(db, c.query);
      const same = await sameResult(db, q.sql, q.params as DuckDBValue[], c.hand);
      if (!same) log(`  warning: ${c.query}: the hand-written SQL gives other rows`);
      let ms = Infinity;
      let hand = Infinity;
      await run(q.sql, q.params as DuckDBValue[]);
      await run(c.hand);
      // Alternate, best of at least `runs` each; short statements get more runs (up to
      // 3 s in all) so that scheduling noise does not decide the ratio.
      let spent = 0;
      for (let i = 0; i < runs || (spent < 3000 && i < 60); i++) {
        const a = await run(q.sql, q.params as DuckDBValue[]);
        const b = await run(c.hand);
        ms = Math.min(ms, a);
        hand = Math.min(hand, b);
        spent += a + b;
      }
      const ratio = Math.round((ms / hand) * 100) / 100;
      queries.push({ query: c.query, ms: Math.round(ms * 10) / 10, hand_ms: Math.round(hand * 10) / 10, ratio, same });
      log(`  ${c.query}: ${ms.toFixed(1)} ms, by hand ${hand.toFixed(1)} ms (×${ratio})`);
    }
    const ratioMax = Math.max(...queries.map((q) => q.ratio));
    return {
      bench: 'query',
      events,
      compile_us: compileUs,
      compile_us_max: compileMax,
      queries,
      ratio_max: ratioMax,
      ok: compileMax < 1000 && ratioMax <= 1.2 && queries.every((q) => q.same),
    };
  } finally {
    db.close();
    if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (name: string): number | undefined => (arg(name) === undefined ? undefined : Number(arg(name)));
  const opts: QueryBenchOptions = {};
  const ev = num('--events');
  const base = num('--base');
  const runs = num('--runs');
  const keep = arg('--keep');
  if (ev !== undefined) opts.events = ev;
  if (base !== undefined) opts.base = base;
  if (runs !== undefined) opts.runs = runs;
  if (keep !== undefined) opts.keep = keep;
  const r = await runQueryBench(opts);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}
