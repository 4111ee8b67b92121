/**
 * Ring buffer throughput: records/s from BPF into JS, beside a C consumer of the same ring buffer.
 *
 *   npm run bench:ringbuf [-- --repeat 3 --seconds 2 --burst 16]   (root; needs npm run build:bpf)
 *
 * Producer: bench/ringbuf/bench.bpf.c on raw_tp/sys_enter emits `burst` records of 64 or 256 bytes
 * per syscall of the load generator (bench/ringbuf/gen.c, spinning on getppid()), through the same
 * reserve/loss-count/batched-wakeup code as the real probes. Consumers, one after the other, on the
 * very same ring buffer map:
 * - C: bench/ringbuf/c-consumer.c, libbpf ring_buffer + epoll, gets the map as inherited fd 3;
 * - JS: RingBufReader (native thread -> batches -> JS), decoding two fields of every record.
 * Rate = records received / (generator start .. everything drained). When a consumer is slower than
 * the producer, the ring fills and reservations fail: counted as lost, and received + lost must
 * equal the attempts counted in BPF (checked, printed as "exact").
 *
 * C and JS phases alternate, `repeat` times per size; the summary reports medians.
 * Last line on stdout: one JSON object with js_rps_64, c_rps_64, js_rps_256, c_rps_256 (+ details).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { BpfObject, type BpfMap } from '../bpf/object.ts';
import { bpfObjectPath, BUILD_DIR, nativeStatus, ROOT_DIR } from '../bpf/native.ts';
import { RECORD_HEADER_BYTES, RingBufReader } from '../bpf/ringbuf.ts';
import { benchRecord256, benchRecord64 } from './ringbuf/bench.layout.ts';

interface Args {
  repeat: number;
  seconds: number;
  burst: number;
  ringMiB: number;
  pollMs: number;
  wakeupKiB: number;
  sizes: number[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { repeat: 3, seconds: 2, burst: 16, ringMiB: 32, pollMs: 5, wakeupKiB: 1024, sizes: [64, 256] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${k} needs a positive number`);
      i++;
      return n;
    };
    if (k === '--seconds') a.seconds = num();
    else if (k === '--repeat') a.repeat = Math.floor(num());
    else if (k === '--burst') a.burst = Math.min(64, Math.floor(num()));
    else if (k === '--ring-mib') a.ringMiB = num();
    else if (k === '--poll-ms') a.pollMs = num();
    else if (k === '--wakeup-kib') a.wakeupKiB = num();
    else if (k === '--sizes') {
      a.sizes = (v ?? '').split(',').map(Number);
      i++;
    } else throw new Error(`unknown option ${k} (options: --repeat --seconds --burst --ring-mib --poll-ms --wakeup-kib --sizes 64,256)`);
  }
  return a;
}

const log = (s: string): void => void process.stderr.write(`${s}\n`);

/** Compile a C helper into build/bench/ when missing or older than its source. */
function compile(name: string, libs: string[]): string {
  const src = join(ROOT_DIR, 'bench', 'ringbuf', `${name}.c`);
  const out = join(BUILD_DIR, 'bench', name);
  mkdirSync(join(BUILD_DIR, 'bench'), { recursive: true });
  if (existsSync(out) && statSync(out).mtimeMs > statSync(src).mtimeMs) return out;
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', out, src, ...libs], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot compile ${src}: ${r.error?.message ?? r.stderr}`);
  return out;
}

/** Lines of a child's stdout, one at a time. */
class Lines {
  readonly #rl: Interface;
  readonly #queue: string[] = [];
  readonly #waiters: ((l: string) => void)[] = [];
  constructor(child: ChildProcessWithoutNullStreams, what: string) {
    this.#rl = createInterface({ input: child.stdout });
    this.#rl.on('line', (l) => {
      const w = this.#waiters.shift();
      if (w) w(l);
      else this.#queue.push(l);
    });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(`[${what}] ${d.toString()}`));
  }
  next(): Promise<string> {
    const l = this.#queue.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((res) => this.#waiters.push(res));
  }
}

/**
 * The JS consumer's per-record work, same as the C consumer's: read seq (as two u32, no BigInt)
 * and cpu of every record. Locals only: a closure-captured accumulator costs ~4x in V8.
 */
function decoder(seqOff: number, cpuOff: number): (v: DataView) => number {
  return (v) => {
    let sum = 0;
    const end = v.byteLength;
    for (let p = 0; p < end; ) {
      const size = v.getUint32(p, true);
      const off = p + RECORD_HEADER_BYTES;
      sum += v.getUint32(off + seqOff, true) + v.getUint32(off + seqOff + 4, true) * 4294967296 + v.getUint32(off + cpuOff, true);
      p += RECORD_HEADER_BYTES + ((size + 7) & ~7);
    }
    return sum;
  };
}

function sumPerCpu(map: BpfMap, key: number): bigint {
  return map.lookupPerCpuU64(key).reduce((a, b) => a + b, 0n);
}

interface PhaseResult {
  consumer: 'c' | 'js';
  size: number;
  received: number;
  lost: number;
  attempts: number;
  seconds: number;
  rps: number;
  exact: boolean;
  /** Consumer process CPU (all threads, user+sys) per record received. */
  cpuNsPerRecord: number;
  batches?: number;
  /** Batch buffers that had to be allocated (not recycled). */
  poolMisses?: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const ns = nativeStatus();
  if (!ns.available) throw new Error(ns.message);
  if (process.getuid?.() !== 0) log('warning: not root; loading BPF will probably fail (run with sudo)');
  const gen = compile('gen', []);
  const cConsumer = compile('c-consumer', ['-lbpf']);

  // One generator process for every phase: its tgid is a load-time constant of the producer.
  const genProc = spawn(gen, [String(args.seconds)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const genLines = new Lines(genProc, 'gen');
  const obj = BpfObject.open(bpfObjectPath('bench'), { layouts: [benchRecord64, benchRecord256] });
  const results: PhaseResult[] = [];
  try {
    obj.map('retis_events').setMaxEntries(args.ringMiB * 1024 * 1024);
    const syscallNr = Number(await genLines.next());
    obj.setConstants({ target_tgid: genProc.pid!, target_syscall: syscallNr, burst: args.burst, retis_probe_id: 1, retis_wakeup_bytes: args.wakeupKiB * 1024 });
    obj.load();
    const events = obj.map('retis_events');
    const attempts = obj.map('bench_attempts');
    const lostMap = obj.map('retis_lost');
    log(`ringbuf bench: ${cpus().length} CPUs, ${args.repeat} x (C, JS) per size, ring ${args.ringMiB} MiB, burst ${args.burst} records/syscall, ${args.seconds} s per phase, wakeup at ${args.wakeupKiB} KiB, poll ${args.pollMs} ms`);

    for (const size of args.sizes) {
      const prog = `bench_${size}`;
      const layout = size === 64 ? benchRecord64 : benchRecord256;
      const link = obj.attach(prog, { type: 'raw_tp', name: 'sys_enter' });
      try {
        for (let rep = 0; rep < args.repeat; rep++) for (const consumer of ['c', 'js'] as const) {
          const a0 = sumPerCpu(attempts, 0);
          const l0 = sumPerCpu(lostMap, 1);
          let received = 0;
          let batches: number | undefined;
          let poolMisses: number | undefined;
          let cpuUs = 0;
          let t0 = 0;
          let t1 = 0;
          if (consumer === 'c') {
            const c = spawn(cConsumer, [String(args.pollMs)], { stdio: ['pipe', 'pipe', 'pipe', events.fd] }) as unknown as ChildProcessWithoutNullStreams;
            const cl = new Lines(c, 'c-consumer');
            if ((await cl.next()) !== 'ready') throw new Error('c-consumer did not start');
            t0 = performance.now();
            genProc.stdin.write('g');
            await genLines.next();
            c.stdin.write('stop\n');
            const summary = JSON.parse(await cl.next()) as { records: number; cpu_us: number };
            t1 = performance.now();
            received = summary.records;
            cpuUs = summary.cpu_us;
          } else {
            let checksum = 0;
            const decode = decoder(layout.offsets.seq, layout.offsets.cpu);
            const reader = RingBufReader.open(events, (b) => {
              checksum += decode(b.view);
              received += b.count;
            }, { pollMs: args.pollMs, flushMs: args.pollMs });
            const cpu0 = process.cpuUsage();
            t0 = performance.now();
            genProc.stdin.write('g');
            await genLines.next();
            await reader.flush();
            const cpu = process.cpuUsage(cpu0);
            cpuUs = cpu.user + cpu.system;
            t1 = performance.now();
            const st = reader.stats();
            batches = st.batches;
            poolMisses = st.poolMisses;
            reader.close();
            if (checksum < 0) log('unreachable'); // keep the decode from being optimized away
          }
          const att = Number(sumPerCpu(attempts, 0) - a0);
          const lost = Number(sumPerCpu(lostMap, 1) - l0);
          const seconds = (t1 - t0) / 1000;
          const r: PhaseResult = { consumer, size, received, lost, attempts: att, seconds, rps: Math.round(received / seconds), exact: received + lost === att, cpuNsPerRecord: Number(((cpuUs * 1000) / Math.max(1, received)).toFixed(1)) };
          if (batches !== undefined) r.batches = batches;
          if (poolMisses !== undefined) r.poolMisses = poolMisses;
          results.push(r);
          log(`${String(size).padStart(4)} B  ${consumer.padEnd(2)}  ${(r.rps / 1e6).toFixed(2).padStart(6)} M rec/s  received ${received}  lost ${lost} (${((100 * lost) / Math.max(1, att)).toFixed(1)}%)  attempts ${att}  ${r.exact ? 'exact' : 'MISMATCH'}  ${r.cpuNsPerRecord} ns CPU/rec${batches !== undefined ? `  ${batches} batches` : ''}`);
        }
      } finally {
        link.destroy();
      }
    }
  } finally {
    genProc.stdin.end();
    obj.close();
  }
  // Medians over the repeats: this 2-vCPU VM is noisy (the same phase varies by +-30%).
  const get = (c: 'c' | 'js', s: number): number => {
    const v = results.filter((r) => r.consumer === c && r.size === s).map((r) => r.rps).sort((a, b) => a - b);
    return v.length ? v[Math.floor((v.length - 1) / 2)]! : 0;
  };
  const summary = {
    js_rps_64: get('js', 64),
    c_rps_64: get('c', 64),
    js_rps_256: get('js', 256),
    c_rps_256: get('c', 256),
    js_over_c_64: Number((get('js', 64) / Math.max(1, get('c', 64))).toFixed(3)),
    js_over_c_256: Number((get('js', 256) / Math.max(1, get('c', 256))).toFixed(3)),
    exact: results.every((r) => r.exact),
    burst: args.burst,
    seconds: args.seconds,
    repeat: args.repeat,
    stat: 'median',
    cpus: cpus().length,
    phases: results,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((e: unknown) => {
  log(`bench:ringbuf failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
