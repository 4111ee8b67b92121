/**
 * One capture, straight down as libbpf-bootstrap tools read: check the environment -> pick
 * collectors and resolve probes -> open and load -> create the output files -> start the ring
 * reader -> attach -> run until a stop condition -> detach, drain, finalize files -> summary.
 * Every failure on the way says what to do, and whatever was opened is closed in reverse order.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Dictionary, Field, Schema, Struct, Uint16 } from 'apache-arrow';
import { Btf } from '../bpf/btf.ts';
import { checkEnvironment, formatEnvProblems, type EnvReport } from '../bpf/env.ts';
import { probeFeatures } from '../bpf/features.ts';
import { nativeStatus } from '../bpf/native.ts';
import type { ProbeSet } from '../bpf/probe-set.ts';
import type { RingBufReader } from '../bpf/ringbuf.ts';
import { ARROW_COLUMNS, STARTUP_METADATA, arrowField, eventArrowSchema, startupMetaText, type StartupMeta } from '../analyze/model/arrow-schema.ts';
import { SCHEMA_VERSION } from '../analyze/model/schema.ts';
import { EventPrinter } from '../analyze/format/event-text.ts';
import { PcapngWriter } from '../analyze/pcap/pcapng-writer.ts';
import { ProbeNotFoundError, RetisPcapExporter, retisComment } from '../analyze/pcap/retis-pcap.ts';
import type { RetisEvent } from '../analyze/model/event.ts';
import { ArrowStreamFile } from './arrow-stream.ts';
import { COLLECTOR_INFO, DEFAULT_PROBES, selectCollectors, type CollectorName } from './collectors.ts';
import { CAPTURE_SECTIONS, EventEncoder, recordToEvent, startupEvent, type ProbeInfo, type StartupInfo } from './decode.ts';
import { DropReasons } from './drop-reasons.ts';
import { CAPTURE_JSON, writeCaptureJson, type CaptureMetadata, type ProbeRecord } from './metadata.ts';
import type { CaptureOptions } from './options.ts';
import { findOvsVswitchd, OvsTrackError } from './ovs/probes.ts';
import { attachProbes, loadProbes, planProbes, queryProbeName, type Plan, type ProbeSkip } from './probes.ts';
import { checkFilterSyntax, compileCaptureFilters, FilterResolveError, type CaptureFilters } from './filters.ts';
import { CaptureCollect } from './progs/capture.layout.ts';
import { KernelSymbols } from './symbols.ts';
import { RETIS_VERSION, RETIS_TS_VERSION } from './version.ts';
import { CtNames } from './ct/ct.ts';
import { NftNetlinkCollector, NFT_NETLINK_OFFSET, startNftKprobeHelper, type NftKprobeHelper } from './nft/collector.ts';
import { chooseNftPath, type NftPath } from './nft/path.ts';
import { DEFAULT_NFT_VERDICTS } from './nft/section.ts';
import { probeExtOffsets } from './nft/probes.ts';

/** A capture failure with a message for the user (exit 1). */
export class CaptureError extends Error {
  override name = 'CaptureError';
}

export const EVENTS_FILE = 'events.arrow';
export const PARQUET_FILE = 'events.parquet';
export const PCAPNG_FILE = 'packets.pcapng';
const OUR_FILES = [EVENTS_FILE, PARQUET_FILE, PCAPNG_FILE, CAPTURE_JSON];

/**
 * The Arrow schema of a capture: `seq` and the sections capture produces, with the model's types
 * (analyze/model/arrow-schema.ts); analyze/load/arrow.ts reads a section the stream leaves out
 * as NULL. With `startup`, the startup event goes to the schema metadata (STARTUP_METADATA)
 * instead of a column: a column present in one row costs its buffers in every batch.
 */
export function captureSchema(sections: readonly string[] = CAPTURE_SECTIONS, startup?: StartupInfo): Schema {
  const meta = new Map(eventArrowSchema().metadata);
  meta.set('retis_ts.producer', `retis-capture ${RETIS_TS_VERSION}`);
  if (startup) {
    const ev = startupEvent(startup);
    meta.set(STARTUP_METADATA, startupMetaText({ timestamp: startup.timestamp, ...(ev.startup as Omit<StartupMeta, 'timestamp'>) }));
  }
  const keep = (name: string): boolean => CAPTURE_SECTIONS.includes(name) && sections.includes(name) && !(startup && name === 'startup');
  return new Schema(ARROW_COLUMNS.filter((c) => keep(c.name)).map((c) => dictionaryEncoded(arrowField(c))), meta);
}

/**
 * Columns whose value is one of the probes' strings: dictionary-encoded over them (u16 probe id
 * per row; the dictionary is written once per stream). kernel.symbol and kernel.probe_type were
 * 39 bytes per event in bench/capture.
 */
const PROBE_DICTIONARY_COLUMNS = ['kernel.symbol', 'kernel.probe_type'];

function dictionaryEncoded(f: Field, prefix = ''): Field {
  const path = prefix + f.name;
  if (f.type instanceof Struct) return new Field(f.name, new Struct(f.type.children.map((c) => dictionaryEncoded(c, `${path}.`))), f.nullable, f.metadata);
  const id = PROBE_DICTIONARY_COLUMNS.indexOf(path);
  return id < 0 ? f : new Field(f.name, new Dictionary(f.type, new Uint16(), id), f.nullable, f.metadata);
}

/**
 * The sections this capture's collectors and probes can fill (the others would be all-null
 * columns: ~400 of 764 bytes per event in bench/capture before they were left out).
 */
export function activeSections(collectors: readonly CollectorName[], probes: Iterable<ProbeInfo>): string[] {
  const out = new Set(['seq', 'common']);
  for (const p of probes) out.add(p.user ? 'userspace' : 'kernel');
  for (const c of collectors) for (const s of COLLECTOR_INFO[c].sections) out.add(s);
  return CAPTURE_SECTIONS.filter((s) => out.has(s));
}

/**
 * Create (0700) or check the output directory; refuse to replace a capture unless asked.
 * Returns whether it created the directory (removed again if the capture fails before writing).
 */
export function prepareOutputDir(dir: string, overwrite: boolean): boolean {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dir);
  } catch {
    st = undefined;
  }
  if (st && !st.isDirectory()) throw new CaptureError(`${dir} exists and is not a directory: choose another -o DIR`);
  if (st) {
    const present = OUR_FILES.filter((f) => fs.existsSync(path.join(dir, f)));
    if (present.length > 0 && !overwrite) {
      throw new CaptureError(`${dir} already holds a capture (${present.join(', ')}): choose another -o DIR, or add --overwrite to replace it`);
    }
    for (const f of present) fs.rmSync(path.join(dir, f));
    return false;
  }
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new CaptureError(`cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return true;
}

/** Remove a directory this capture created if nothing was written in it. */
function removeIfEmpty(dir: string): void {
  try {
    if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
  } catch {
    // Not ours to worry about: it was empty or is gone.
  }
}

/** The running kernel's BTF, parsed for this capture only. Missing: BtfError with the fix. */
function kernelBtf(file = '/sys/kernel/btf/vmlinux'): Btf {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    return Btf.vmlinux(file); // throws BtfError saying why, with the fix
  }
  return Btf.parse(bytes);
}

/** CLOCK_REALTIME - CLOCK_MONOTONIC, as Retis's startup event records it. */
function monotonicOffset(): { sec: bigint; nsec: bigint; monoNow: bigint } {
  // hrtime is CLOCK_MONOTONIC (what bpf_ktime_get_ns returns); timeOrigin + now() is the wall clock
  // with sub-millisecond precision. Take the tightest of a few samples.
  let best: { off: bigint; gap: bigint; mono: bigint } | undefined;
  for (let i = 0; i < 5; i++) {
    const a = process.hrtime.bigint();
    const wallNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    const b = process.hrtime.bigint();
    const mono = (a + b) / 2n;
    if (!best || b - a < best.gap) best = { off: wallNs - mono, gap: b - a, mono };
  }
  const off = best!.off;
  return { sec: off / 1_000_000_000n, nsec: off % 1_000_000_000n, monoNow: best!.mono };
}

function fileSize(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

export interface SessionIO {
  /** Full command line, for the startup event and capture.json. */
  cmdline: string;
  stderr: (text: string) => void;
  /** Where --print writes (fd). */
  stdoutFd: number;
}

interface StopState {
  reason: string;
  error?: Error;
}

/**
 * A full GC once startup is done: parsing kernel BTF (probe resolution) grows the JS heap to
 * ~50 MiB of which ~15 stay live; V8 would otherwise keep the peak reserved for the whole capture.
 * `gc` is only exposed through a flag; setting it at run time and taking the function from a new
 * context is the documented way to reach it without a command-line flag.
 */
function compactHeap(): void {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as (() => void) | undefined;
    gc?.();
  } catch {
    // Not essential: the capture works the same, with a larger heap.
  }
}

/** RETIS_CAPTURE_TIMING=1: print how long each startup phase took (ms since process start). */
const timing = process.env.RETIS_CAPTURE_TIMING ? (phase: string): void => void process.stderr.write(`retis-capture: [${performance.now().toFixed(0)} ms] ${phase}\n`) : (): void => {};

export async function runCapture(opts: CaptureOptions, io: SessionIO): Promise<number> {
  const log = (s: string): void => io.stderr(`retis-capture: ${s}\n`);
  timing('start');

  checkFilterSyntax(opts.packetFilter, opts.metaFilter);
  //// Environment ////
  const env: EnvReport = checkEnvironment({ allowSystemChanges: opts.allowSystemChanges });
  if (!env.ok) throw new CaptureError(`cannot capture here:\n${formatEnvProblems(env)}`);
  try {
    return await captureIn(env, opts, io, log);
  } finally {
    env.undo();
  }
}

/**
 * Collectors and probes for this kernel. Uses our own parse of the kernel BTF rather than
 * Btf.vmlinux()'s process-wide cache, and keeps it local: once the probes are resolved it is
 * garbage (~15 MiB of names and index) that a long capture should not carry.
 */
function resolve(env: EnvReport, opts: CaptureOptions): { collectors: CollectorName[]; collectorsSkipped: { name: CollectorName; reason: string }[]; plan: Plan; dropReasons: DropReasons; filters: CaptureFilters | undefined; ctNames: CtNames; nftPath: NftPath | undefined } {
  const btf = kernelBtf();
  const features = probeFeatures({ btf });
  timing('btf + features');
  // Filters first: a bad expression is reported before anything is loaded.
  let filters: CaptureFilters | undefined;
  try {
    filters = compileCaptureFilters(opts.packetFilter, opts.metaFilter, () => btf);
  } catch (e) {
    if (e instanceof FilterResolveError) throw new CaptureError(e.message);
    throw e;
  }
  const { collectors, skipped } = selectCollectors(opts.collectors, btf, features);
  let nftPath = collectors.includes('nft') ? chooseNftPath(features) : undefined;
  // Auto mode takes nft only where Retis would (a probe on __nft_trace_packet). The netlink path
  // is ours, and it costs: its records are matched on the JS thread, so the reader cannot decode
  // into columns (bench/capture on this host: 92k vs 190k events/s, 362 vs 112 MiB RSS). It
  // runs when asked for (-c ...,nft).
  const auto = opts.collectors === undefined || opts.collectors.length === 0 || (opts.collectors.length === 1 && opts.collectors[0] === 'auto');
  if (auto && nftPath?.path === 'netlink') {
    collectors.splice(collectors.indexOf('nft'), 1);
    skipped.push({ name: 'nft', reason: `left out of auto mode: ${nftPath.why}; ask for it with -c ...,nft` });
    nftPath = undefined;
  }
  // On the netlink path nothing probes __nft_trace_packet: a -p for it (Retis's nft-dropmon
  // profile) is left out with the reason, and the default probes place the verdicts.
  const nftNotes: ProbeSkip[] = [];
  let userProbes = opts.probes;
  if (nftPath?.path === 'netlink') {
    userProbes = opts.probes.filter((p) => {
      const skipIt = /(^|:)__nft_trace_packet(\/|$)/.test(p);
      if (skipIt) nftNotes.push({ requested: p, reason: `not attached: the nft collector reads nf_tables trace events over netlink on this kernel (${nftPath.why})` });
      return !skipIt;
    });
  }
  const ovsBinary = ovsTrackBinary(opts, collectors);
  const plan = planProbes({
    nft: nftPath?.path === 'kprobe' ? { verdicts: opts.nftVerdicts ?? DEFAULT_NFT_VERDICTS } : undefined,
    btf,
    features,
    tracefs: env.tracefs,
    collectors,
    userProbes,
    defaultProbes: DEFAULT_PROBES,
    skbSections: new Set(opts.skbSections),
    stack: opts.stack,
    snaplen: opts.snaplen,
    ovsTrack: opts.ovsTrack,
    ovsBinary,
  });
  plan.notes.push(...nftNotes);
  return { collectors, collectorsSkipped: skipped, plan, dropReasons: new DropReasons(btf), filters, ctNames: new CtNames(btf), nftPath };
}

/** --ovs-track: the ovs-vswitchd binary whose USDT probes to attach (errors are user errors). */
function ovsTrackBinary(opts: CaptureOptions, collectors: readonly CollectorName[]): string | undefined {
  if (!opts.ovsTrack) return undefined;
  if (!collectors.includes('ovs')) throw new CaptureError('--ovs-track needs the ovs collector (-c ...,ovs), which is not running here');
  try {
    return findOvsVswitchd().binary;
  } catch (e) {
    if (e instanceof OvsTrackError) throw new CaptureError(e.message);
    throw e;
  }
}

async function captureIn(env: EnvReport, opts: CaptureOptions, io: SessionIO, log: (s: string) => void): Promise<number> {
  for (const c of env.checks) if (c.changed) log(`system change: ${c.changed} (undone at exit)`);

  //// Collectors and probes ////
  const { collectors, collectorsSkipped, plan, dropReasons, filters, ctNames, nftPath } = resolve(env, opts);
  const notes: ProbeSkip[] = [...plan.notes];
  timing('probes planned');
  if (opts.probes.length === 0) log(`no probe given: using ${DEFAULT_PROBES.join(', ')}${collectors.includes('skb-drop') ? ', tp:skb:kfree_skb' : ''}`);

  //// Output directory ////
  const dir = opts.outDir;
  const createdDir = prepareOutputDir(dir, opts.overwrite);

  //// Open + load ////
  let loaded: Awaited<ReturnType<typeof loadProbes>>;
  try {
    // Submits never wake the reader (it drains every pollMs); wakeupBytes only has to be non-zero.
    loaded = await loadProbes(plan, { snaplen: opts.snaplen, ringbufBytes: opts.ringMiB << 20, wakeupBytes: Math.min(1 << 20, (opts.ringMiB << 20) / 8), repeat: opts.benchRepeat, filters, ovsTrack: opts.ovsTrack, directPacketLoads: probeFeatures().directPacketLoads.supported });
  } catch (e) {
    if (createdDir) removeIfEmpty(dir);
    throw e;
  }
  const set: ProbeSet = loaded.set;
  notes.push(...loaded.notes);
  for (const line of filters?.summary ?? []) log(line);
  timing('probes loaded');
  const reader: { r: RingBufReader | undefined } = { r: undefined };
  let arrow: ArrowStreamFile | undefined;
  let child: ChildProcess | undefined;
  let nft: NftNetlinkCollector | undefined;
  let nftKprobe: NftKprobeHelper | undefined;
  try {
    const plans = loaded.plans;
    const probeInfos = new Map<number, ProbeInfo>();
    for (const [id, p] of plans) if (!p.silent) probeInfos.set(id, { symbol: p.symbol, probeType: p.probeType, user: p.user, binary: p.binary, ...probeExtOffsets(p.collect, opts.snaplen) });
    // nft verdicts from netlink traces: records built in user space, under a probe id of their own.
    const nftProbeId = Math.max(0, ...plans.keys()) + 1;
    if (nftPath?.path === 'netlink') probeInfos.set(nftProbeId, { symbol: 'nf_tables:nft_trace', probeType: 'raw_tracepoint', user: false, binary: undefined, nftOff: NFT_NETLINK_OFFSET });
    const needStack = [...plans.values()].some((p) => (p.collect & CaptureCollect.values.stack) !== 0);
    const symbols = needStack ? KernelSymbols.load() : undefined;

    //// Startup event: first record of every output (in the Arrow schema's metadata) ////
    const off = monotonicOffset();
    const startWall = new Date();
    const startup: StartupInfo = {
      timestamp: off.monoNow,
      retisVersion: RETIS_VERSION,
      cmdline: io.cmdline,
      offsetSec: off.sec,
      offsetNsec: off.nsec,
      kernelRelease: os.release(),
      kernelVersion: os.version(),
      hardwareName: os.machine(),
    };

    //// Output files ////
    const schema = captureSchema(activeSections(collectors, probeInfos.values()), startup);
    arrow = new ArrowStreamFile(path.join(dir, EVENTS_FILE), schema, opts.overwrite);
    const arrowFile = arrow;
    let pcapWriter: PcapngWriter | undefined;
    const pcapPath = path.join(dir, PCAPNG_FILE);
    const exporter = opts.pcapng
      ? new RetisPcapExporter(() => (pcapWriter = new PcapngWriter({ path: pcapPath, mode: 0o600 })), retisComment, { extraOptions: true })
      : undefined;
    const printer = opts.print ? new EventPrinter({ multiline: true, utc: false, printLl: false }) : undefined;
    let printBuf = '';
    let printing = opts.print;
    const slow = exporter !== undefined || printer !== undefined;

    const encoder = new EventEncoder({
      schema,
      probes: probeInfos,
      dropReasons,
      symbols,
      batchRows: opts.batchEvents,
      batchPacketBytes: 8 << 20,
      snaplen: opts.snaplen,
      maxEvents: opts.maxEvents ?? Number.MAX_SAFE_INTEGER,
      ctNames,
      onBatch: (batch) => {
        arrowFile.write(batch.recordBatch());
        pcapWriter?.flush();
      },
      onEvent: slow
        ? (view, off, size) => {
            const ev: RetisEvent = recordToEvent(view, off, probeInfos, dropReasons, symbols, ctNames, size);
            if (exporter) exporter.push(ev);
            if (printer && printing) printBuf += printer.event(ev);
          }
        : undefined,
    });

    timing('outputs open');
    exporter?.push(startupEvent(startup));

    const objectOf = new Map(set.probes.map((lp) => [lp.id, path.basename(lp.objectPath)]));
    const probeRecords = (): ProbeRecord[] =>
      [...plans.entries()].map(([id, p]) => ({
        id,
        name: p.resolved.name,
        probe: queryProbeName(p),
        requested: p.requested,
        role: p.silent ? 'tracking (internal, no events)' : p.role,
        attach: p.resolved.attach.type,
        why: p.resolved.why,
        symbol: p.symbol,
        probe_type: p.probeType,
        object: objectOf.get(id) ?? '',
        events: 0,
        attempted: 0,
        lost: 0,
      }));
    const meta: CaptureMetadata = {
      format: 'retis-ts capture',
      format_version: 1,
      status: 'running',
      host: { name: os.hostname(), kernel_release: os.release(), kernel_version: os.version(), machine: os.machine() },
      versions: {
        retis_ts: RETIS_TS_VERSION,
        retis_version: RETIS_VERSION,
        event_schema: SCHEMA_VERSION,
        node: process.version,
        libbpf: (() => {
          const s = nativeStatus();
          return s.available ? s.libbpf : 'unknown';
        })(),
      },
      cmdline: io.cmdline,
      start: { wall: startWall.toISOString(), monotonic_ns: String(off.monoNow) },
      stop: null,
      clock_monotonic_offset: { sec: Number(off.sec), nsec: Number(off.nsec) },
      attach_ms: 0,
      collectors: [...collectors],
      collectors_skipped: collectorsSkipped,
      probes: probeRecords(),
      probes_not_attached: notes,
      filters: { packet: opts.packetFilter ?? null, meta: opts.metaFilter ?? null },
      options: {
        snaplen: opts.snaplen,
        skb_sections: opts.skbSections,
        stack: opts.stack,
        ring_bytes: opts.ringMiB << 20,
        batch_events: opts.batchEvents,
        batch_ms: opts.batchMs,
        max_events: opts.maxEvents ?? null,
        duration_s: opts.durationMs === undefined ? null : opts.durationMs / 1000,
        cmd: opts.cmd ?? null,
      },
      files: { events: EVENTS_FILE, parquet: opts.parquet ? PARQUET_FILE : null, pcapng: opts.pcapng ? PCAPNG_FILE : null, bytes: {} },
      counts: { events: 0, lost: {}, lost_total: 0, attempted: 0, ignored: 0, malformed: 0, arrow_batches: 0 },
      resources: null,
      notes: [],
    };
    if (nftPath?.path === 'kprobe') {
      try {
        nftKprobe = startNftKprobeHelper(opts.allowSystemChanges, log);
      } catch (e) {
        throw new CaptureError(`nft collector: ${(e as Error).message}`);
      }
      meta.nft = { path: 'kprobe', why: nftPath.why, verdicts: opts.nftVerdicts ?? DEFAULT_NFT_VERDICTS, ...nftKprobe.info };
    }
    if (nftPath?.path === 'netlink') {
      try {
        nft = NftNetlinkCollector.start({ verdicts: opts.nftVerdicts ?? DEFAULT_NFT_VERDICTS, allowSystemChanges: opts.allowSystemChanges, probeId: nftProbeId, why: nftPath.why, log });
      } catch (e) {
        throw new CaptureError(`nft collector: ${(e as Error).message}`);
      }
      meta.nft = nft.info as unknown as Record<string, unknown>;
      if (nft.info.helper_recovered && nft.info.helper_recovered.removed.length > 0) meta.notes.push(`removed nft helper tables left by a crashed capture (pid ${nft.info.helper_recovered.pids.join(', ')}): ${nft.info.helper_recovered.removed.join('; ')}`);
      if (!collectors.includes('skb') || !collectors.includes('skb-tracking')) log('nft: netlink trace events are matched to packets through the skb and skb-tracking collectors: without them nft events have no tracking id');
      log(`nft: ${nftPath.why}; listening in ${nft.info.namespaces.length} namespace(s)${nft.info.helper_table ? `, helper table ${nft.info.helper_table} in ${nft.info.helper_namespaces.join(', ')}` : ''}`);
    } else if (nftPath?.path === 'kprobe') {
      log(`nft: ${nftPath.why}`);
    }
    const refreshCounts = (): void => {
      const byId = encoder.perProbeEvents();
      const lost: Record<string, Record<string, number>> = {};
      let lostTotal = 0;
      let attempted = 0;
      const records = probeRecords();
      const hits = set.map('capture_hits');
      const losses = set.losses();
      for (const r of records) {
        r.events = byId.get(r.id) ?? 0;
        r.attempted = Number(hits.lookupPerCpuU64(r.id).reduce((a, b) => a + b, 0n));
        attempted += r.attempted;
      }
      // Netlink nft events are written by user space: attempted = events + lost + ignored still.
      if (nft) attempted += nft.info.counts.written;
      for (const e of losses.entries) {
        const p = plans.get(e.probeId);
        // Keyed as retis-query names probes (its `probe` column), so stats lines match queries.
        const name = p ? queryProbeName(p) : String(e.probeId);
        const perCpu = (lost[name] ??= {});
        perCpu[String(e.cpu)] = (perCpu[String(e.cpu)] ?? 0) + Number(e.lost);
        lostTotal += Number(e.lost);
        const r = records.find((x) => x.id === e.probeId);
        if (r) r.lost += Number(e.lost);
      }
      meta.probes = records;
      meta.counts = { events: encoder.events, lost, lost_total: lostTotal, attempted, ignored: encoder.ignored, malformed: encoder.malformed, arrow_batches: arrowFile.batches };
      meta.files.bytes = { [EVENTS_FILE]: arrowFile.bytesWritten };
    };

    //// Stop machinery ////
    let stopResolve: ((s: StopState) => void) | undefined;
    const stopped = new Promise<StopState>((resolve) => (stopResolve = resolve));
    let stopping = false;
    const requestStop = (s: StopState): void => {
      if (stopping) return;
      stopping = true;
      stopResolve?.(s);
    };
    const writeStdout = (): void => {
      if (!printBuf) return;
      const text = printBuf;
      printBuf = '';
      try {
        fs.writeSync(io.stdoutFd, text);
      } catch (e) {
        // A closed pipe (retis-capture --print | head): stop printing and stop the capture, as tcpdump does.
        printing = false;
        if ((e as NodeJS.ErrnoException).code === 'EPIPE') requestStop({ reason: 'stdout closed' });
        else requestStop({ reason: 'stdout error', error: e as Error });
      }
    };

    //// Ring reader (started before attaching so the first events are read at once) ////
    const onError = (e: Error): void => requestStop({ reason: 'ring buffer reader failed', error: e });
    // Raw batches decoded on this thread when each record is needed: --print/pcap-ng, and the nft
    // netlink path (it indexes the probe events' packets, and its own records are decoded here
    // too: one decoding thread per decoder).
    reader.r = slow || nft
      ? set.openReader(
          (batch) => {
            nft?.indexBatch(batch.buffer);
            encoder.decode(batch.buffer);
            writeStdout();
            if (encoder.done) requestStop({ reason: `--max-events ${opts.maxEvents} reached` });
          },
          // Drain every 10 ms (submits never wake us); small batches and a short queue bound memory:
          // when JS falls behind, the ring fills and the BPF side counts the losses.
          { pollMs: 10, flushMs: 10, queue: 8, batchBytes: 256 << 10, onError },
        )
      : // Column mode: the reader thread decodes into column batches; JS only writes them. A batch
        // is cut at --batch-events rows or --batch-ms; two in flight bound memory (when the
        // writer falls behind, the ring fills and the BPF side counts the losses).
        set.openReader(
          (batch) => {
            encoder.writeArena(batch.buffer);
            if (encoder.done) requestStop({ reason: `--max-events ${opts.maxEvents} reached` });
          },
          { pollMs: 10, flushMs: opts.batchMs, queue: 2, decoder: encoder.decoder, onError },
        );

    timing('reader started');
    //// Attach ////
    notes.push(...attachProbes(set, plans));
    const attachMs = performance.now();

    meta.attach_ms = Math.round(attachMs);
    meta.probes_not_attached = notes;
    if (opts.benchToggle) {
      // Before anything says "attached": a SIGUSR1 that arrives while Node's default handler is
      // still in place opens the inspector instead (a bench run hung on it).
      process.on('SIGUSR1', () => {
        if (stopping) return;
        set.detach();
        log('probes detached');
      });
      process.on('SIGUSR2', () => {
        if (stopping) return;
        set.attach();
        log('probes attached');
      });
    }
    timing('attached');
    writeCaptureJson(dir, meta);
    timing('capture.json written');
    // Now that the probes record into the ring, tune the consumer: V8 type feedback for every
    // decode path, and the heap compacted after startup's BTF work. Events wait in the ring.
    EventEncoder.warmUp(schema);
    compactHeap();
    const emitting = [...plans.values()].filter((p) => !p.silent);
    log(`${emitting.length} probe(s) attached in ${Math.round(attachMs)} ms: ${emitting.map((p) => p.resolved.name).join(', ')}; writing ${path.join(dir, EVENTS_FILE)}`);
    for (const n of notes) log(`note: ${n.requested}: ${n.reason}`);

    //// Run ////
    const timers: NodeJS.Timeout[] = [];
    timers.push(setInterval(() => encoder.flush(), opts.batchMs));
    if (nft) {
      const n = nft;
      timers.push(
        setInterval(() => {
          const b = n.drain(false);
          if (b) {
            encoder.decode(b);
            writeStdout();
          }
        }, 100),
      );
    }
    timers.push(
      setInterval(() => {
        refreshCounts();
        writeCaptureJson(dir, meta);
        if (process.env.RETIS_CAPTURE_TIMING) {
          const m = process.memoryUsage();
          timing(`rss ${(m.rss / 1048576).toFixed(0)} MiB, heap ${(m.heapUsed / 1048576).toFixed(0)}/${(m.heapTotal / 1048576).toFixed(0)} MiB, external ${(m.external / 1048576).toFixed(0)} MiB, array buffers ${(m.arrayBuffers / 1048576).toFixed(0)} MiB`);
        }
      }, 2000),
    );
    if (opts.durationMs !== undefined) timers.push(setTimeout(() => requestStop({ reason: `--duration ${opts.durationMs! / 1000}s elapsed` }), opts.durationMs));
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) {
        // Second signal while finalizing: leave now; every flushed batch is already on disk.
        log(`${sig} again: exiting without finalizing (events.arrow holds every flushed batch)`);
        process.exit(sig === 'SIGINT' ? 130 : 143);
      }
      requestStop({ reason: sig });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let cmdStatus: number | undefined;
    if (opts.cmd !== undefined) {
      child = spawn('sh', ['-c', opts.cmd], { stdio: ['inherit', 'inherit', 'inherit'] });
      child.on('error', (e) => requestStop({ reason: `--cmd could not start: ${e.message}`, error: e }));
      child.on('exit', (code, signal) => {
        // Its status is ours only when its exit is what stopped the capture (not when we ended it).
        if (!stopping) cmdStatus = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1);
        requestStop({ reason: `command exited (${signal ? `signal ${signal}` : `status ${code}`})` });
      });
    }

    const stop = await stopped;

    //// Stop: detach, drain, finalize ////
    for (const t of timers) clearInterval(t);
    set.detach();
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    try {
      if (!reader.r.closed) await reader.r.flush();
    } catch (e) {
      stop.error ??= e as Error;
    }
    const rs = reader.r.stats();
    reader.r.close();
    if (nft) {
      // Every probe event is indexed now: resolve the trace messages still waiting.
      await nft.closeSockets();
      const b = nft.drain(true);
      if (b) encoder.decode(b);
      for (const f of nft.removeHelper()) log(`could not remove the nft helper table: ${f}`);
    }
    // Each finalization step is attempted even when one fails (disk full...): what can be
    // written is, and capture.json says what went wrong.
    const attempt = (what: string, fn: () => void): void => {
      try {
        fn();
      } catch (e) {
        stop.error ??= new Error(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    attempt('writing the last batch', () => encoder.flush());
    writeStdout();
    attempt('reading the loss counters', refreshCounts);
    attempt(`closing ${EVENTS_FILE}`, () => arrowFile.close());
    const stopWall = new Date();
    meta.stop = { wall: stopWall.toISOString(), monotonic_ns: String(process.hrtime.bigint()), reason: stop.reason };

    if (exporter) {
      try {
        exporter.finish();
      } catch (e) {
        // No kernel event at all (ProbeNotFoundError): below, an empty but valid file.
        if (!(e instanceof ProbeNotFoundError)) stop.error ??= e as Error;
      }
      attempt(`writing ${PCAPNG_FILE}`, () => {
        if (!pcapWriter) new PcapngWriter({ path: pcapPath, mode: 0o600 }).close();
      });
      meta.files.bytes[PCAPNG_FILE] = fileSize(pcapPath);
    }
    if (opts.parquet && !stop.error) {
      const t = performance.now();
      try {
        await writeParquet(path.join(dir, EVENTS_FILE), path.join(dir, PARQUET_FILE), dir);
        meta.files.bytes[PARQUET_FILE] = fileSize(path.join(dir, PARQUET_FILE));
        meta.notes.push(`parquet written in ${Math.round(performance.now() - t)} ms`);
      } catch (e) {
        stop.error ??= new Error(`writing ${PARQUET_FILE}: ${e instanceof Error ? e.message : String(e)} (${EVENTS_FILE} is complete: retis-query convert can make it later)`);
      }
    }
    meta.files.bytes[EVENTS_FILE] = fileSize(path.join(dir, EVENTS_FILE));
    const ru = process.resourceUsage();
    meta.resources = {
      peak_rss_mib: Math.round(ru.maxRSS / 1024),
      cpu_user_s: ru.userCPUTime / 1e6,
      cpu_system_s: ru.systemCPUTime / 1e6,
      reader: { records: rs.records, bytes: rs.bytes, batches: rs.batches, oversize: rs.oversize, pool_misses: rs.poolMisses },
    };
    meta.status = stop.error ? 'failed' : 'complete';
    if (stop.error) meta.notes.push(`error: ${stop.error.message}`);
    writeCaptureJson(dir, meta);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);

    //// Summary ////
    const c = meta.counts;
    const files = Object.entries(meta.files.bytes).map(([f, n]) => `${f} ${fmtBytes(n)}`).join(', ');
    log(`stopped (${stop.reason}): ${c.events} events written, ${c.lost_total} lost; ${files}, ${CAPTURE_JSON} in ${dir}`);
    for (const [probe, cpus] of Object.entries(c.lost)) {
      log(`  lost ${probe}: ${Object.entries(cpus).map(([cpu, n]) => `cpu ${cpu}: ${n}`).join(', ')} (ring buffer full: try --ring-mib ${opts.ringMiB * 4})`);
    }
    if (c.ignored > 0) log(`  ${c.ignored} events received after --max-events were not written`);
    if (c.malformed > 0) log(`  ${c.malformed} malformed records skipped (stale build? run npm run build:bpf)`);
    if (stop.error) throw new CaptureError(`${stop.reason}: ${stop.error.message}`);
    return cmdStatus ?? 0;
  } catch (e) {
    // Leave what is on disk readable; never leave probes attached.
    arrow?.abort();
    if (createdDir && !arrow) removeIfEmpty(dir);
    if (child && child.exitCode === null) child.kill('SIGTERM');
    throw e;
  } finally {
    // Idempotent: already done on a clean stop. The helper table must never outlive us.
    if (nft) for (const f of await nft.close()) log(`could not remove the nft helper table: ${f}`);
    if (nftKprobe) for (const f of nftKprobe.remove()) log(`could not remove the nft helper table: ${f}`);
    reader.r?.close();
    set.close();
  }
}

/** Parquet at clean stop: the analyzer's own loader and exporter (one code path), file 0600. */
async function writeParquet(arrowPath: string, parquetPath: string, dir: string): Promise<void> {
  const { Db } = await import('../analyze/db.ts');
  const { loadInputs } = await import('../analyze/load/index.ts');
  const { exportParquet } = await import('../analyze/export.ts');
  const db = await Db.open({ memoryLimit: '512MB', threads: 2 });
  try {
    // Larger-than-memory loads spill next to the capture, not into /tmp.
    await db.run(`SET temp_directory = '${path.join(dir, '.duckdb-tmp').replaceAll("'", "''")}'`);
    await loadInputs(db, [arrowPath]);
    await exportParquet(db, parquetPath);
  } finally {
    db.close();
    fs.rmSync(path.join(dir, '.duckdb-tmp'), { recursive: true, force: true });
  }
}

