/**
 * Live: ring buffer reader semantics with the benchmark producer (bench/ringbuf/bench.bpf.c),
 * which counts every attempted record in BPF, so "received + lost == attempted" can be checked
 * exactly.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect } from 'vitest';
import { closeAll, openResourceCount } from '../../bpf/lifecycle.ts';
import { bpfObjectPath, ROOT_DIR } from '../../bpf/native.ts';
import { BpfObject } from '../../bpf/object.ts';
import { readLosses, RingBatch, RingBufReader } from '../../bpf/ringbuf.ts';
import { benchRecord64 } from '../../bench/ringbuf/bench.layout.ts';
import { compileC, liveIt, liveSkipReason, sleep } from './helpers.ts';

const skipAll = liveSkipReason();
const gen = skipAll ? undefined : compileC(join(ROOT_DIR, 'bench', 'ringbuf', 'gen.c'), 'gen');
const skip = skipAll ?? (gen && 'skip' in gen ? gen.skip : undefined);
if (skip) console.log(`SKIP live ring buffer tests: ${skip}`);

/** The load generator: `burst` records per getppid() for `seconds` on each run(). */
class Producer {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly obj: BpfObject;
  readonly #lines: string[] = [];
  readonly #waiters: ((l: string) => void)[] = [];

  constructor(opts: { ringBytes: number; burst: number; seconds: number; wakeupBytes?: number }) {
    this.proc = spawn((gen as { path: string }).path, [String(opts.seconds)]);
    createInterface({ input: this.proc.stdout }).on('line', (l) => {
      const w = this.#waiters.shift();
      if (w) w(l);
      else this.#lines.push(l);
    });
    this.obj = BpfObject.open(bpfObjectPath('bench'), { layouts: [benchRecord64] });
    this.obj.map('retis_events').setMaxEntries(opts.ringBytes);
    this.obj.onlyPrograms(['bench_64']);
    this.obj.setConstants({ target_tgid: this.proc.pid!, burst: opts.burst, retis_probe_id: 7, retis_wakeup_bytes: opts.wakeupBytes ?? 0 });
  }

  line(): Promise<string> {
    const l = this.#lines.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((r) => this.#waiters.push(r));
  }

  async start(): Promise<void> {
    this.obj.setConstants({ target_syscall: Number(await this.line()) });
    this.obj.load();
    this.obj.attach('bench_64', { type: 'raw_tp', name: 'sys_enter' });
  }

  /** One generator run; resolves with the number of syscalls made. */
  async run(): Promise<number> {
    this.proc.stdin.write('g');
    return Number(await this.line());
  }

  attempts(): bigint {
    return this.obj.map('bench_attempts').lookupPerCpuU64(0).reduce((a, b) => a + b, 0n);
  }

  close(): void {
    this.proc.stdin.end();
    this.proc.kill();
    this.obj.close();
  }
}

describe('ring buffer reader (live, root)', () => {
  afterAll(() => closeAll());

  liveIt('batches records (one JS call per batch); flush drains; received + lost == attempted', skip, async () => {
    const p = new Producer({ ringBytes: 16 << 20, burst: 32, seconds: 0.3, wakeupBytes: 256 << 10 });
    try {
      await p.start();
      let records = 0;
      let calls = 0;
      let seqOk = true;
      const seq = benchRecord64.reader('seq');
      const reader = RingBufReader.open(p.obj.map('retis_events'), (b: RingBatch) => {
        calls++;
        records += b.count;
        let n = 0;
        b.forEach((v, off, size, ring) => {
          n++;
          if (size !== 64 || ring !== 0 || seq(v, off) <= 0n) seqOk = false;
        });
        if (n !== b.count) seqOk = false;
      });
      await p.run();
      await reader.flush();
      const attempts = p.attempts();
      const lost = readLosses(p.obj.map('retis_lost'), [7]);
      console.log(`ringbuf: ${records} records in ${calls} batches, lost ${lost.total}, stats ${JSON.stringify(reader.stats())}`);
      expect(seqOk).toBe(true);
      expect(BigInt(records) + lost.total).toBe(attempts);
      expect(records).toBeGreaterThan(10_000);
      expect(records / calls).toBeGreaterThan(100); // batches, not per-record calls
      expect(reader.stats().records).toBe(records);
      reader.close();
    } finally {
      p.close();
    }
  });

  liveIt('a slow consumer loses records, counted per probe and CPU, and received + lost == attempted', skip, async () => {
    // 16 KiB ring, 64 records per syscall, a handler that stalls: the ring must overflow.
    const p = new Producer({ ringBytes: 16 << 10, burst: 64, seconds: 0.2 });
    try {
      await p.start();
      let records = 0;
      const reader = RingBufReader.open(p.obj.map('retis_events'), (b) => {
        records += b.count;
        const until = Date.now() + 20;
        while (Date.now() < until) {
          // stall: the native thread blocks, the ring fills, BPF counts reservation failures
        }
      }, { queue: 1, batchBytes: 4096 });
      await p.run();
      await reader.flush();
      const lost = readLosses(p.obj.map('retis_lost'), [7, 8]);
      console.log(`ringbuf overflow: received ${records}, lost ${lost.total} ${JSON.stringify(lost.entries.map((e) => ({ ...e, lost: Number(e.lost) })))}`);
      expect(lost.total).toBeGreaterThan(0n);
      expect(lost.entries.every((e) => e.probeId === 7)).toBe(true); // attributed to the probe
      expect(BigInt(records) + lost.total).toBe(p.attempts());
      reader.close();
    } finally {
      p.close();
    }
  });

  liveIt('a throwing handler closes the reader and reports the error; everything closes cleanly', skip, async () => {
    const p = new Producer({ ringBytes: 1 << 20, burst: 4, seconds: 0.1 });
    try {
      await p.start();
      let reported: Error | undefined;
      let batches = 0;
      const reader = RingBufReader.open(p.obj.map('retis_events'), () => {
        batches++;
        throw new Error('decoder bug');
      }, { onError: (e) => (reported = e) });
      await p.run();
      await sleep(50);
      expect(reported?.message).toBe('decoder bug');
      expect(batches).toBe(1); // no delivery after the failure
      expect(reader.closed).toBe(true);
      await expect(reader.flush()).rejects.toThrow('decoder bug');
    } finally {
      p.close();
    }
    expect(openResourceCount()).toBe(0);
  });

  liveIt('at a high batch rate, batch buffers are reused at once: fresh allocations stay <= queue + 2', skip, async () => {
    // Small batches, many of them: buffers used to come back only through the external-buffer
    // finalizer (event loop, after GC), so most batches were freshly malloc'd.
    const p = new Producer({ ringBytes: 16 << 20, burst: 64, seconds: 0.5, wakeupBytes: 64 << 10 });
    const queue = 4;
    try {
      await p.start();
      let records = 0;
      let batches = 0;
      let ordered = true;
      const kept: RingBatch[] = [];
      const last = new Map<number, bigint>();
      const seq = benchRecord64.reader('seq');
      const cpu = benchRecord64.reader('cpu');
      const reader = RingBufReader.open(p.obj.map('retis_events'), (b) => {
        batches++;
        records += b.count;
        if (batches % 50 === 1) kept.push(b); // kept by mistake: must read as empty later
        b.forEach((v, off) => {
          // Per CPU, attempt numbers only grow: a reused buffer never mixes in other bytes.
          const c = cpu(v, off);
          const s = seq(v, off);
          if (s <= (last.get(c) ?? 0n)) ordered = false;
          last.set(c, s);
        });
      }, { batchBytes: 16 << 10, queue });
      await p.run();
      await reader.flush();
      const st = reader.stats();
      reader.close();
      const lost = readLosses(p.obj.map('retis_lost'), [7]);
      console.log(`ringbuf burst: ${records} records in ${batches} batches, lost ${lost.total}, stats ${JSON.stringify(st)}`);
      expect(batches).toBeGreaterThan(500);
      expect(ordered).toBe(true);
      expect(BigInt(records) + lost.total).toBe(p.attempts());
      expect(st.buffersAllocated).toBeGreaterThan(0);
      expect(st.buffersAllocated).toBeLessThanOrEqual(queue + 2);
      expect(kept.length).toBeGreaterThan(5);
      for (const k of kept) expect(k.buffer.byteLength).toBe(0);
    } finally {
      p.close();
    }
  });

  liveIt('batches are recycled after the callback unless keepBatches', skip, async () => {
    const p = new Producer({ ringBytes: 1 << 20, burst: 4, seconds: 0.05 });
    try {
      await p.start();
      const kept: RingBatch[] = [];
      const r1 = RingBufReader.open(p.obj.map('retis_events'), (b) => void kept.push(b));
      await p.run();
      await r1.flush();
      r1.close();
      expect(kept.length).toBeGreaterThan(0);
      // Detached: a kept batch can never show another batch's bytes.
      expect(kept[0]!.buffer.byteLength).toBe(0);
      const kept2: RingBatch[] = [];
      const r2 = RingBufReader.open(p.obj.map('retis_events'), (b) => void kept2.push(b), { keepBatches: true });
      await p.run();
      await r2.flush();
      r2.close();
      expect(kept2[0]!.buffer.byteLength).toBeGreaterThan(0);
      expect(kept2[0]!.decode(benchRecord64)[0]!.payload).toHaveLength(40);
    } finally {
      p.close();
    }
  });
});
