/**
 * Filter benchmark (root; npm run build:bpf first):
 *
 *   npm run bench -- filter [--seconds 3] [--rounds 2]
 *
 * A loopback UDP flood to a closed port in a private network namespace (bench/capture/udpflood.c,
 * every datagram ends in kfree_skb), traced by retis-capture's default probes
 * (net_dev_start_xmit, netif_receive_skb, kfree_skb: three probe hits per datagram), with:
 *   - no filter: every hit becomes an event (the writer's cost included);
 *   - `-f 'udp port 1'`: rejects every datagram (port 9 is flooded): per hit, the probe copies the
 *     packet's first bytes and runs the translated filter, then gives up: no event, no tracking;
 *   - `-m 'sk_buff.mark == 0x7e7f'`: rejects every datagram through the meta filter;
 *   - no capture at all (baseline).
 * First, the in-kernel cost per untracked probe hit (perHitCost: copy, packet filter, meta filter).
 * Rounds alternate the configurations to spread the noise of a shared machine; the summary takes
 * the median round of each configuration.
 * Progress on stderr; the last stdout line is one JSON object:
 *   { pps_baseline, pps_nofilter, pps_reject_all, pps_meta_reject_all, ratio, ... }
 * with ratio = pps_reject_all / pps_nofilter (> 1: rejecting in the kernel is cheaper than
 * producing the events) and reject_vs_baseline = pps_reject_all / pps_baseline (the in-kernel
 * cost of running the filter on every hit).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Btf } from '../bpf/btf.ts';
import { compileMetaFilter, parseMetaFilter } from '../bpf/filters/meta.ts';
import { compilePacketFilter } from '../bpf/filters/packet.ts';
import { matchAll } from '../bpf/filters/ebpf.ts';
import { FILTER_L2_MAGIC, FILTER_L3_MAGIC, FILTER_META_MAGIC } from '../bpf/filters/layout.ts';
import { BUILD_DIR, ROOT_DIR, bpfObjectPath, nativeStatus } from '../bpf/native.ts';
import { BpfObject } from '../bpf/object.ts';
import { udpFrame } from '../capture/synthetic.ts';
import { median } from './median.ts';

const log = (s: string): void => void process.stderr.write(`bench filter: ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function fail(why: string): never {
  log(`cannot run: ${why}`);
  process.stdout.write(`${JSON.stringify({ skipped: why })}\n`);
  process.exit(1);
}

function parseArgs(argv: string[]): { seconds: number; rounds: number } {
  const a = { seconds: 3, rounds: 2 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = Number(argv[++i]);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${k} needs a positive number`);
    if (k === '--seconds') a.seconds = v;
    else if (k === '--rounds') a.rounds = Math.floor(v);
    else throw new Error(`unknown option ${k} (--seconds --rounds)`);
  }
  return a;
}

function flood(ns: string, bin: string, seconds: number): number {
  const out = execFileSync('ip', ['netns', 'exec', ns, bin, '9', String(seconds), '32'], { encoding: 'utf8', timeout: (seconds + 20) * 1000 });
  const m = /sent (\d+) seconds ([\d.]+)/.exec(out);
  if (!m) throw new Error(`udpflood said: ${out}`);
  return Number(m[1]) / Number(m[2]);
}

interface Running {
  stop: () => Promise<{ status: number | null; stderr: string }>;
}

async function startCapture(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [path.join(ROOT_DIR, 'bin', 'retis-capture.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const end = Date.now() + 120_000;
  while (!/probe\(s\) attached/.test(stderr)) {
    if (child.exitCode !== null || Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`capture did not attach:\n${stderr}`);
    }
    await sleep(20);
  }
  return {
    stop: async () => {
      child.kill('SIGINT');
      return { status: await exited, stderr };
    },
  };
}

/**
 * In-kernel cost per probe hit, without the flood's noise: the test program of tests/filters
 * (tests/bpf/progs/filter_test.bpf.c) loops with bpf_loop over what a probe does for an untracked
 * packet (copy the first 256 bytes into the per-CPU scratch, run the translated filter) and
 * returns ns per iteration; the minimum of a few runs is kept.
 */
function perHitCost(packetFilter: string, metaFilter: string): Record<string, number> {
  BpfObject.enablePatching();
  const obj = BpfObject.open(bpfObjectPath('filter_test'));
  try {
    obj.patchProgram('filter_test', FILTER_L2_MAGIC, compilePacketFilter(packetFilter).l2.ebpf);
    obj.patchProgram('filter_test', FILTER_L3_MAGIC, matchAll());
    obj.patchProgram('filter_test', FILTER_META_MAGIC, compileMetaFilter(parseMetaFilter(metaFilter), Btf.vmlinux(), { moduleBtf: () => [] }));
    obj.load();
    const map = obj.map('filter_test_in');
    const frame = new Uint8Array(600);
    frame.set(udpFrame(600 - 42, 40000, 53));
    const run = (variant: number, iters: number): number => {
      const v = new Uint8Array(map.info.valueSize);
      const dv = new DataView(v.buffer);
      dv.setUint32(0, 256, true); // caplen: the probes copy at most 256 bytes
      dv.setUint32(4, frame.length, true);
      dv.setUint32(8, variant, true);
      dv.setUint32(12, iters, true);
      v.set(frame.subarray(0, 256), 24);
      map.update(new Uint8Array(4), v);
      let best = Infinity;
      for (let i = 0; i < 7; i++) best = Math.min(best, obj.testRun('filter_test').retval >>> 0);
      return best;
    };
    const loop = run(8, 100_000);
    const copy = run(6, 100_000);
    const copyFilter = run(5, 100_000);
    const meta = run(7, 100_000);
    return {
      ns_loop: loop,
      ns_copy256: copy - loop,
      ns_packet_filter: copyFilter - copy,
      ns_copy_and_packet_filter: copyFilter - loop,
      ns_meta_filter: meta - loop,
    };
  } finally {
    obj.close();
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) fail('needs root (sudo npm run bench -- filter)');
  const st = nativeStatus();
  if (!st.available) fail(st.message);
  if (!fs.existsSync(path.join(BUILD_DIR, 'bpf', 'capture.bpf.o'))) fail('capture.bpf.o is not built: npm run build:bpf');
  const flooder = path.join(BUILD_DIR, 'bench', 'udpflood');
  fs.mkdirSync(path.dirname(flooder), { recursive: true });
  const cc = spawnSync('cc', ['-O2', '-Wall', '-o', flooder, path.join(ROOT_DIR, 'bench', 'capture', 'udpflood.c')], { encoding: 'utf8' });
  if (cc.status !== 0) fail(`cannot compile udpflood.c: ${cc.error?.message ?? cc.stderr}`);

  let perHit: Record<string, number> = {};
  try {
    perHit = perHitCost('udp port 53', 'sk_buff.mark == 0x7e7f');
    log(`per untracked hit, in the kernel: copy 256 B ${perHit.ns_copy256} ns, 'udp port 53' ${perHit.ns_packet_filter} ns, meta 'sk_buff.mark == 0x7e7f' ${perHit.ns_meta_filter} ns (bpf_loop overhead ${perHit.ns_loop} ns subtracted)`);
  } catch (e) {
    // bpf_loop needs Linux 5.17; the flood half still runs.
    log(`per-hit cost not measured: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }

  const ns = `rts-bfilter-${process.pid}`;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-bench-filter-'));
  process.on('exit', () => {
    spawnSync('ip', ['netns', 'del', ns]);
    fs.rmSync(work, { recursive: true, force: true });
  });
  for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => process.exit(130));
  execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  log(`namespace ${ns}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);

  const configs: { key: string; args: string[] | undefined }[] = [
    { key: 'baseline', args: undefined },
    { key: 'nofilter', args: [] },
    { key: 'reject_all', args: ['-f', 'udp port 1'] },
    { key: 'meta_reject_all', args: ['-m', 'sk_buff.mark == 0x7e7f'] },
  ];
  const pps = new Map<string, number[]>();
  const events = new Map<string, number[]>();
  for (let round = 0; round < a.rounds; round++) {
    for (const c of round % 2 ? [...configs].reverse() : configs) {
      let rate: number;
      if (!c.args) {
        rate = flood(ns, flooder, a.seconds);
      } else {
        const dir = path.join(work, `${c.key}-${round}`);
        const cap = await startCapture(['-o', dir, ...c.args]);
        rate = flood(ns, flooder, a.seconds);
        const r = await cap.stop();
        if (r.status !== 0) throw new Error(`capture ${c.key} exited ${r.status}:\n${r.stderr}`);
        const meta = JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as { counts: { events: number; lost_total: number } };
        (events.get(c.key) ?? events.set(c.key, []).get(c.key)!).push(meta.counts.events);
        log(`round ${round + 1} ${c.key}: ${Math.round(rate)} pkt/s, ${meta.counts.events} events, ${meta.counts.lost_total} lost`);
      }
      if (!c.args) log(`round ${round + 1} ${c.key}: ${Math.round(rate)} pkt/s`);
      (pps.get(c.key) ?? pps.set(c.key, []).get(c.key)!).push(rate);
    }
  }
  // Median of the rounds: on a shared machine one round can be hit by a neighbour's burst.
  const medianPps = (k: string): number => {
    const v = pps.get(k) ?? [];
    return v.length === 0 ? 0 : Math.round(median(v));
  };
  const rounds = (k: string): number[] => (pps.get(k) ?? []).map((x) => Math.round(x));
  const summary = {
    bench: 'filter',
    seconds: a.seconds,
    rounds: a.rounds,
    cpus: os.cpus().length,
    pps_baseline: medianPps('baseline'),
    pps_nofilter: medianPps('nofilter'),
    pps_reject_all: medianPps('reject_all'),
    pps_meta_reject_all: medianPps('meta_reject_all'),
    pps_rounds: { baseline: rounds('baseline'), nofilter: rounds('nofilter'), reject_all: rounds('reject_all'), meta_reject_all: rounds('meta_reject_all') },
    load_average: os.loadavg().map((x) => Number(x.toFixed(1))),
    events_nofilter: events.get('nofilter') ?? [],
    events_reject_all: events.get('reject_all') ?? [],
    events_meta_reject_all: events.get('meta_reject_all') ?? [],
    ...perHit,
    ratio: Number((medianPps('reject_all') / medianPps('nofilter')).toFixed(3)),
    meta_ratio: Number((medianPps('meta_reject_all') / medianPps('nofilter')).toFixed(3)),
    reject_vs_baseline: Number((medianPps('reject_all') / medianPps('baseline')).toFixed(3)),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((e: unknown) => {
  log(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.stdout.write(`${JSON.stringify({ error: e instanceof Error ? e.message : String(e) })}\n`);
  process.exit(1);
});
