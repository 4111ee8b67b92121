/**
 * Ground truth from the generator (bench/gen): the series, drops and probe counts the
 * analyzer finds in the synthetic fixtures equal what the generator says it wrote.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Db } from '../../analyze/db.ts';
import { loadInputs } from '../../analyze/load/index.ts';
import { buildSeries } from '../../analyze/sort/series.ts';
import { FIXTURES } from '../util/paths.ts';

interface Truth {
  events: number;
  series: number;
  drops_by_reason: Record<string, number>;
  probes: Record<string, number>;
}

describe.each(['ovs-small.json', 'mixed-small.json'])('synthetic %s', (name) => {
  const file = path.join(FIXTURES, 'synthetic', name);
  const truth = JSON.parse(fs.readFileSync(`${file}.truth.json`, 'utf8')) as Truth;

  it('sort finds exactly the generated series; drops and probes match the truth', async () => {
    const db = await Db.open();
    try {
      await loadInputs(db, [file]);
      await buildSeries(db);
      const [{ series }] = (await db.rows<{ series: bigint }>(
        `SELECT count(DISTINCT coalesce(series_tid::VARCHAR, 'u' || eid)) AS series FROM series_map`,
      )) as [{ series: bigint }];
      expect(Number(series)).toBe(truth.series);
      const drops = await db.rows<{ r: string; n: bigint }>(
        `SELECT coalesce(drop_subsys || '/', '') || reason AS r, count(*) AS n FROM events WHERE reason IS NOT NULL GROUP BY 1`,
      );
      expect(Object.fromEntries(drops.map((d) => [d.r, Number(d.n)]))).toEqual(truth.drops_by_reason);
      const probes = await db.rows<{ p: string; n: bigint }>(`SELECT probe_type || '/' || symbol AS p, count(*) AS n FROM events WHERE probe IS NOT NULL GROUP BY 1`);
      expect(Object.fromEntries(probes.map((d) => [d.p, Number(d.n)]))).toEqual(truth.probes);
      // Every series numbers its events 0..n-1 in arrival order.
      const [{ bad }] = (await db.rows<{ bad: bigint }>(
        `SELECT count(*) AS bad FROM (SELECT series_tid, max(idx) + 1 = count(*) AS ok FROM series_map WHERE series_tid IS NOT NULL GROUP BY 1) WHERE NOT ok`,
      )) as [{ bad: bigint }];
      expect(bad).toBe(0n);
    } finally {
      db.close();
    }
  });
});
