/**
 * The `upcalls` source against ground truth: the synthetic OVS capture (fixtures/synthetic/
 * ovs-small.json, bench/gen/generate.ts: 13 upcalls, 8 executed, 2 failed enqueues with -EAGAIN,
 * 3 lost in userspace), as Retis JSON, as our Parquet (retis-query convert), and without its
 * userspace events (a capture without --ovs-track, where the executed actions carry the upcall's
 * queue_id as retis-capture's kernel hooks record them). Also Retis's own files (no enqueue:
 * nothing to pair, outcome unknown).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Truth } from '../../bench/gen/generate.ts';
import { compat, FIXTURES, REPO_ROOT } from '../util/paths.ts';
import { load, query, type Loaded } from './util.ts';

const SRC = path.join(FIXTURES, 'synthetic', 'ovs-small.json');
const truth = JSON.parse(fs.readFileSync(`${SRC}.truth.json`, 'utf8')) as Truth;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rq-upcalls-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The fixture without ovs-vswitchd's events (recv_upcall, flow_operation). */
function kernelOnly(): string {
  const out = path.join(tmp, 'kernel-only.json');
  const lines = fs.readFileSync(SRC, 'utf8').split('\n').filter((l) => l && !/"event_type":"(recv_upcall|flow_operation)"/.test(l));
  fs.writeFileSync(out, `${lines.join('\n')}\n`);
  return out;
}

function parquet(): string {
  const out = path.join(tmp, 'ovs-small.parquet');
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'retis-query.js'), 'convert', '-o', out, SRC], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`convert: ${r.stderr}`);
  return out;
}

const expectedOutcomes = (): Record<string, number> => {
  const u = truth.upcalls;
  const e: Record<string, number> = {};
  if (u.executed) e.executed = u.executed;
  if (u.enqueue_failed) e.enqueue_failed = u.enqueue_failed;
  if (u.lost_in_userspace) e.lost = u.lost_in_userspace;
  return e;
};

describe.each([
  ['Retis JSON', () => SRC, true],
  ['our Parquet', parquet, true],
  ['kernel events only (no --ovs-track)', kernelOnly, false],
] as const)('upcalls of the synthetic OVS capture: %s', (_name, input, userspace) => {
  let l: Loaded;
  beforeAll(async () => {
    l = await load([input()]);
  }, 120_000);
  afterAll(() => l?.db.close());

  it('one row per upcall, outcomes as the generator made them', async () => {
    expect(truth.upcalls.total).toBeGreaterThan(0);
    expect((await query(l, 'upcalls | count')).rows).toEqual([{ count: truth.upcalls.total }]);
    const r = await query(l, 'upcalls | count by outcome');
    expect(Object.fromEntries(r.rows.map((x) => [x.outcome, x.count]))).toEqual(expectedOutcomes());
  });

  it('failures: errno names of the failed enqueues', async () => {
    const r = await query(l, 'upcalls where outcome = enqueue_failed | count by error');
    expect(r.rows).toEqual(truth.upcalls.enqueue_failed ? [{ error: 'EAGAIN', count: truth.upcalls.enqueue_failed }] : []);
    const ok = await query(l, 'upcalls where outcome != enqueue_failed | fields error, enqueue_ret');
    for (const x of ok.rows) {
      expect(x.error).toBeNull();
      expect(x.enqueue_ret).toBe(0);
    }
  });

  it('each row: cpu, port, queue_id, enqueue, times in order, latency = exec_ts - upcall_ts, actions', async () => {
    const r = await query(l, 'upcalls | fields upcall_ts, cpu, port, queue_id, enqueues, enqueue_ret, return_ret, recv_ts, put_ts, exec_ts, latency, actions, outcome');
    expect(r.rows).toHaveLength(truth.upcalls.total);
    for (const x of r.rows) {
      expect(x.cpu).not.toBeNull();
      expect(x.port).not.toBeNull();
      expect(x.queue_id).not.toBeNull();
      expect(x.enqueues).toBe(1);
      expect(x.return_ret).toBe(x.enqueue_ret);
      if (x.outcome === 'executed') {
        expect(BigInt(x.latency as number)).toBe(BigInt(x.exec_ts as number) - BigInt(x.upcall_ts as number));
        expect(Number(x.latency)).toBeGreaterThan(0);
        expect(String(x.actions)).toMatch(/^(output:\d+|recirc:0x[0-9a-f]+|ct\(zone=\d+\)|drop:\d+|[a-z_]+)(,(output:\d+|recirc:0x[0-9a-f]+|ct\(zone=\d+\)|drop:\d+|[a-z_]+))*$/);
        if (userspace) {
          // ovs-vswitchd received it, then executed it (exec_ts = flow_operation exec).
          expect(Number(x.recv_ts)).toBeGreaterThan(Number(x.upcall_ts));
          expect(Number(x.exec_ts)).toBeGreaterThan(Number(x.recv_ts));
        } else {
          expect(x.recv_ts).toBeNull();
        }
      } else {
        expect(x.exec_ts).toBeNull();
        expect(x.latency).toBeNull();
        expect(x.actions).toBeNull();
      }
      if (x.outcome === 'lost') expect(userspace ? x.recv_ts : x.queue_id).not.toBeNull();
    }
  });

  it('upcalls | stats latency: the executed ones', async () => {
    const [s] = (await query(l, 'upcalls | stats latency')).rows;
    expect(s!.count).toBe(truth.upcalls.executed);
    expect(Number(s!.min)).toBeGreaterThan(0);
    expect(Number(s!.max)).toBeGreaterThanOrEqual(Number(s!.p50));
  });

  it('upcalls per second: histogram upcall_ts every 1s adds up', async () => {
    const r = await query(l, 'upcalls | histogram upcall_ts every 1s');
    expect(r.rows.length).toBeGreaterThan(0);
    expect(r.rows.reduce((n, x) => n + Number(x.count), 0)).toBe(truth.upcalls.total);
  });

  it('the series of an executed upcall holds the re-injected packet: upcall, enqueue, action_execute', async () => {
    // Tracks that contain an upcall: each has its enqueue and, when executed, the actions of the
    // packet ovs-vswitchd sent back (another skb, joined through queue_id).
    const r = await query(l, 'tracks where any(ovs.event_type = upcall) and any(ovs.event_type = action_execute) | count');
    expect(Number(r.rows[0]!.count)).toBe(truth.upcalls.executed);
  });
});

describe('upcalls of Retis files (no enqueue events)', () => {
  it('test_events_packets.json: two upcalls, returned 0, nothing to pair', async () => {
    const l = await load([compat('test_events_packets.json')]);
    try {
      const r = await query(l, 'upcalls | fields cpu, return_ret, error, actions, outcome');
      expect(r.rows).toEqual([
        { cpu: 6, return_ret: 0, error: null, actions: null, outcome: 'unknown' },
        { cpu: 6, return_ret: 0, error: null, actions: null, outcome: 'unknown' },
      ]);
    } finally {
      l.db.close();
    }
  });
});
