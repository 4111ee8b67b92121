/**
 * --ovs-track, live, against a stand-in ovs-vswitchd (tests/capture/fixtures/ovs-vswitchd-standin.c)
 * firing OVS's USDT probes with OVS's argument layouts. The host has no openvswitch module, so the
 * capture runs in the collector's USDT-only test mode (RETIS_CAPTURE_TEST_OVS_USDT_ONLY=1: no
 * kernel hooks, every received upcall reported). Checked against the stand-in's known script:
 * - recv_upcall's queue_id is the jhash of the packet's first 64 bytes, zero-padded (the same
 *   value the kernel enqueue probe computes, bench/gen/jhash.ts = Retis = OVS's scripts), its
 *   pkt_size / key_size / type the probe's arguments;
 * - per-handler batches: batch_ts is the timestamp of the batch's first recv_upcall, each
 *   handler thread has its own batch, operations are attributed to upcalls in order, moving on
 *   when an operation type repeats (spec §6), a new recv_upcall after processing starts a batch;
 * - the events carry a userspace section (usdt, provider:name, binary, pid/tid).
 * Also: --ovs-track errors when ovs-vswitchd is not running.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { Db } from '../../analyze/db.ts';
import { loadInputs } from '../../analyze/load/index.ts';
import { ovsQueueId } from '../../bench/gen/jhash.ts';
import { compileC, liveIt, liveSkipReason } from '../bpf/helpers.ts';
import { REPO_ROOT } from '../util/paths.ts';
import { runCapture, type Run } from './run-capture.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-ovs-track-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

function standin(): { path: string } | { skip: string } {
  const r = compileC(path.join(REPO_ROOT, 'tests', 'capture', 'fixtures', 'ovs-vswitchd-standin.c'), 'ovs-vswitchd', ['-pthread']);
  if ('skip' in r && r.skip.includes('sdt.h')) return { skip: `sys/sdt.h missing (apt-get install systemtap-sdt-dev): ${r.skip}` };
  return r;
}

const live = liveSkipReason();
const built = live ? undefined : standin();
const skip = live ?? (built && 'skip' in built ? built.skip : undefined);
const running = (): boolean => spawnSync('pgrep', ['-x', 'ovs-vswitchd']).status === 0;

/** The stand-in's packet i (see the C file). */
function packet(i: number): Uint8Array {
  const len = i === 3 ? 42 : 60 + 10 * i;
  return Uint8Array.from({ length: len }, (_, k) => (i * 31 + k * 7) & 0xff);
}

const run = (args: string[], env: NodeJS.ProcessEnv): Promise<Run> => runCapture(args, { env, timeoutMs: 120_000 });

type Row = {
  et: string;
  ts: bigint;
  tid: number;
  pid: number;
  sym: string;
  pt: string;
  path: string;
  qid: number;
  bts: bigint;
  bidx: number;
  op: string | null;
  size: number | null;
  ksize: bigint | null;
  type: number | null;
};

describe('--ovs-track (USDT in ovs-vswitchd)', () => {
  liveIt('refused with the reason when ovs-vswitchd is not running', skip ?? (running() ? 'an ovs-vswitchd is running here' : undefined), async () => {
    const r = await run(['-c', 'ovs', '--ovs-track', '-o', path.join(tmp, 'none'), '--duration', '1'], { RETIS_CAPTURE_TEST_OVS_USDT_ONLY: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--ovs-track: ovs-vswitchd is not running/);
  });

  liveIt('recv_upcall and flow operations of a stand-in ovs-vswitchd: queue ids, batches, userspace section', skip ?? (running() ? 'an ovs-vswitchd is running here' : undefined), async () => {
    const bin = (built as { path: string }).path;
    const sd = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(sd);
    await new Promise<void>((resolve, reject) => {
      sd.stdout!.once('data', () => resolve());
      sd.once('exit', (c) => reject(new Error(`stand-in exited ${c} before being ready`)));
    });
    const exited = new Promise<number | null>((resolve) => sd.once('exit', (c) => resolve(c)));
    const dir = path.join(tmp, 'cap');
    const r = await run(['-c', 'ovs', '--ovs-track', '-o', dir, '--print', '--cmd', `kill -USR1 ${sd.pid}; sleep 0.5`], { RETIS_CAPTURE_TEST_OVS_USDT_ONLY: '1' });
    expect(r.status, r.stderr).toBe(0);
    expect(await exited).toBe(0);
    expect(r.stdout).toMatch(/\[u\] dpif_recv:recv_upcall \(ovs-vswitchd\)/);
    expect(r.stdout).toMatch(/upcall_recv q \d+ pkt_size 60/);

    const db = await Db.open();
    let rows: Row[];
    try {
      await loadInputs(db, [dir]);
      rows = await db.rows<Row>(`SELECT ovs.event_type AS et, common.timestamp AS ts, userspace.tid AS tid, userspace.pid AS pid,
          userspace.symbol AS sym, userspace.probe_type AS pt, userspace.path AS path, ovs.queue_id AS qid,
          ovs.batch_ts AS bts, ovs.batch_idx AS bidx, ovs.op_type AS op, ovs.pkt_size AS size, ovs.key_size AS ksize, ovs.type AS type
        FROM events WHERE ovs IS NOT NULL ORDER BY common.timestamp`);
    } finally {
      db.close();
    }
    const q = Array.from({ length: 6 }, (_, i) => ovsQueueId(packet(i)));
    expect(new Set(q).size).toBe(6);
    const show = (x: Row): string => `${x.et}${x.op ? `/${x.op}` : ''} q${q.indexOf(x.qid)} idx${x.bidx} tid${x.tid}`;
    console.log(rows.map(show).join('\n'));
    expect(rows.map((x) => `${x.et}${x.op ? `/${x.op}` : ''} q${q.indexOf(x.qid)} idx${x.bidx}`)).toEqual([
      'recv_upcall q0 idx0', 'recv_upcall q1 idx0', 'recv_upcall q2 idx0',
      'flow_operation/put q0 idx0', 'flow_operation/exec q0 idx0', 'flow_operation/exec q1 idx1',
      'recv_upcall q3 idx0', 'flow_operation/put q3 idx0', 'flow_operation/exec q3 idx0',
      'recv_upcall q4 idx0', 'recv_upcall q5 idx0',
      'flow_operation/put q4 idx0', 'flow_operation/exec q4 idx0', 'flow_operation/put q5 idx1', 'flow_operation/exec q5 idx1',
    ]);
    for (const x of rows) {
      expect(x.pid).toBe(sd.pid);
      expect(x.pt).toBe('usdt');
      expect(x.path).toBe(bin);
      expect(x.sym).toBe(x.et === 'recv_upcall' ? 'dpif_recv:recv_upcall' : x.op === 'put' ? 'dpif_netlink_operate__:op_flow_put' : 'dpif_netlink_operate__:op_flow_execute');
    }
    for (const x of rows.filter((r) => r.et === 'recv_upcall')) {
      const i = q.indexOf(x.qid);
      expect(x.size).toBe(packet(i).length);
      expect(x.ksize).toBe(180n);
      expect(x.type).toBe(0);
    }
    // Batches: handler A's two batches, handler B's one; batch_ts = the leader's timestamp.
    const leaders = rows.filter((x) => x.et === 'recv_upcall' && [0, 3, 4].includes(q.indexOf(x.qid)));
    const batchOf = (i: number): bigint => leaders.find((x) => q.indexOf(x.qid) === i)!.ts;
    const expectBatch = (qs: number[], leader: number): void => {
      for (const x of rows.filter((r) => qs.includes(q.indexOf(r.qid)))) expect(x.bts, show(x)).toBe(batchOf(leader));
    };
    expectBatch([0, 1, 2], 0);
    expectBatch([3], 3);
    expectBatch([4, 5], 4);
    const tids = new Set(rows.map((x) => x.tid));
    expect(tids.size).toBe(2);
  }, 180_000);
});
