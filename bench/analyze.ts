/**
 * bench analyze: the offline half on N synthetic events, each figure beside a lower
 * bound measured in the same run on the same data.
 *
 *   npm run bench -- analyze --events 1000000 [--keep DIR]
 *   npm run bench -- analyze --parquet FILE      (steps 3-5 only, on a Parquet kept by an
 *                                                  earlier run: 10M events without re-reading
 *                                                  a 9 GB JSON file)
 *
 * 1. generate N realistic events (bench/gen) as Retis JSON (not timed);
 * 2. JSON ingest: retis-query's loader into DuckDB, best of 3, each in a fresh process (as
 *    a user's run: no memory left warm by a previous load)     → json_ingest_eps
 * 3. write our Parquet, then load it with our loader          → parquet_load_s
 *    bound: CREATE TABLE AS SELECT * FROM read_parquet(...)   → parquet_load_bound_s
 * 4. sort into series (tracking.sql, OVS aliasing included)   → sort_s
 *    bound: row_number() per tracking id over the Parquet     → sort_bound_s
 * 5. drops by reason (what `drops | count by reason` runs)    → drops_s
 *    bound: the same GROUP BY written by hand over the Parquet → drops_bound_s
 * The last line printed is one JSON object with every figure.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Db } from '../analyze/db.ts';
import { exportParquet } from '../analyze/export.ts';
import { loadInputs } from '../analyze/load/index.ts';
import { sqlString } from '../analyze/model/derive.ts';
import { buildSeries } from '../analyze/sort/series.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = process.hrtime.bigint();
  const r = await fn();
  return [r, Number(process.hrtime.bigint() - t) / 1e9];
}

/** Best of `n` runs: the lower bound and our figure are both taken the same way. */
async function best(n: number, fn: () => Promise<unknown>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < n; i++) min = Math.min(min, (await timed(fn))[1]);
  return min;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * Steps 3-5 on a Parquet of our schema: load (ours vs DuckDB alone), sort and drops, each
 * beside its bound. `before` holds the figures of the steps already run (JSON ingest).
 */
async function parquetSteps(parquet: string, before: Record<string, number>): Promise<Record<string, number>> {
  const [{ n }] = (await (async () => {
    const d = await Db.open();
    try {
      return await d.rows<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet(${sqlString(parquet)})`);
    } finally {
      d.close();
    }
  })()) as [{ n: bigint }];
  // Best of 3; loads of 5M events and more once (each is most of a minute).
  const rep = 3;
  const loadRep = n >= 5_000_000n ? 1 : 3;
  // Parquet load, ours vs DuckDB alone.
  const parquetLoad = await best(loadRep, async () => {
    const d = await Db.open();
    await loadInputs(d, [parquet]);
    d.close();
  });
  const parquetBound = await best(loadRep, async () => {
    const d = await Db.open();
    await d.run(`CREATE TABLE t AS SELECT * FROM read_parquet(${sqlString(parquet)})`);
    d.close();
  });

  // Sort and drops on a loaded table; bounds on the same Parquet with hand-written SQL.
  const db = await Db.open();
  await loadInputs(db, [parquet]);
  const sort = await best(rep, () => buildSeries(db));
  const sortBound = await best(rep, () =>
    db.run(`CREATE OR REPLACE TABLE bound AS
      SELECT seq, track_id, row_number() OVER (PARTITION BY track_id ORDER BY seq) AS idx
      FROM read_parquet(${sqlString(parquet)})`),
  );
  const dropsSql = `SELECT reason, count(*) AS count FROM events WHERE reason IS NOT NULL GROUP BY reason ORDER BY count DESC`;
  const drops = await best(rep, () => db.rows(dropsSql));
  const dropsBound = await best(rep, () =>
    db.rows(`SELECT "skb-drop".drop_reason AS reason, count(*) AS count FROM read_parquet(${sqlString(parquet)})
             WHERE "skb-drop" IS NOT NULL GROUP BY 1 ORDER BY 2 DESC`),
  );
  const [{ series }] = (await db.rows<{ series: bigint }>(
    `SELECT count(DISTINCT coalesce(series_tid, eid::UHUGEINT)) AS series FROM series_map`,
  )) as [{ series: bigint }];
  db.close();

  const r = round;
  return {
    events: Number(n),
    series: Number(series),
    ...before,
    parquet_bytes: fs.statSync(parquet).size,
    parquet_load_s: r(parquetLoad),
    parquet_load_bound_s: r(parquetBound),
    parquet_load_ratio: r(parquetLoad / parquetBound),
    sort_s: r(sort),
    sort_bound_s: r(sortBound),
    sort_ratio: r(sort / sortBound),
    drops_s: r(drops),
    drops_bound_s: r(dropsBound),
    drops_ratio: r(drops / dropsBound),
  };
}

export async function runAnalyzeBench(argv: string[]): Promise<Record<string, number>> {
  const arg = (name: string, def: string) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def;
  };
  const events = Number(arg('--events', '1000000'));
  const keep = arg('--keep', '');
  const given = arg('--parquet', '');
  if (given) return parquetSteps(path.resolve(given), {});
  const dir = keep || fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-bench-'));
  fs.mkdirSync(dir, { recursive: true });
  const json = path.join(dir, `events-${events}.json`);
  const parquet = path.join(dir, `events-${events}.parquet`);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  try {
    if (!fs.existsSync(json)) {
      log(`generating ${events} events → ${json}`);
      const [, g] = await timed(async () =>
        execFileSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/gen/generate.ts'), '--events', String(events), '--seed', '7', '-o', json], {
          stdio: ['ignore', 'ignore', 'inherit'],
        }),
      );
      log(`  generated in ${g.toFixed(1)} s`);
    }

    // JSON ingest, best of 3 fresh processes (ingestOnce below).
    let ingest = Infinity;
    for (let i = 0; i < 3; i++) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--ingest-once', json], { encoding: 'utf8' });
      const s = (JSON.parse(out.trim().split('\n').pop()!) as { s: number }).s;
      log(`json ingest ${i + 1}/3: ${s.toFixed(2)} s`);
      ingest = Math.min(ingest, s);
    }
    // The same load in this process, untimed, for the Parquet export.
    const db = await Db.open();
    await loadInputs(db, [json]);
    const [{ n }] = (await db.rows<{ n: bigint }>('SELECT count(*) AS n FROM events')) as [{ n: bigint }];
    log(`json ingest: ${n} rows in ${ingest.toFixed(2)} s (best of 3)`);
    const [, parquetWrite] = await timed(() => exportParquet(db, parquet));
    db.close();

    return await parquetSteps(parquet, {
      events: Number(n),
      json_bytes: fs.statSync(json).size,
      json_ingest_s: round(ingest),
      json_ingest_eps: Math.round(Number(n) / ingest),
      parquet_write_s: round(parquetWrite),
    });
  } finally {
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One timed JSON load into a fresh in-memory database (run in a child process). */
async function ingestOnce(json: string): Promise<number> {
  const db = await Db.open();
  const [, s] = await timed(() => loadInputs(db, [json]));
  db.close();
  return s;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--ingest-once');
  if (i >= 0) {
    process.stdout.write(`${JSON.stringify({ s: await ingestOnce(process.argv[i + 1]!) })}\n`);
  } else {
    const summary = await runAnalyzeBench(process.argv.slice(2));
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  }
}
