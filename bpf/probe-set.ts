/**
 * A set of probes loaded from one BPF object file (or its variants, see ProbeSetOptions.variants).
 *
 * Each probe gets its own instance of the object, with:
 * - only the program of its attach type enabled (bpf_program__set_autoload): an attach type the
 *   kernel refuses (kprobe without CONFIG_KPROBES, fentry blocked) never even reaches the
 *   verifier, so it cannot fail the load of the others;
 * - its BTF attach target (tp_btf/fentry/fexit targets are fixed at load time);
 * - its probe id and other constants in `.rodata` (the verifier sees them as constants: dead
 *   branches cost nothing at run time);
 * - the shared maps (ring buffer, loss counters, ...) of the first instance, via bpf_map__reuse_fd.
 *
 * Load cost is ~10-40 ms per probe (CO-RE relocation against vmlinux BTF + verification).
 */
import { BpfError, toBpfError } from './errors.ts';
import type { Layout } from './layout.ts';
import { BpfObject, type BpfLink, type BpfMap, type ConstantValue } from './object.ts';
import type { AttachType, ResolvedProbe } from './probe-spec.ts';
import { availableParallelism } from 'node:os';
import { native } from './native.ts';
import { readLosses, RingBufReader, type LossReport, type RingBatch, type RingBufOptions } from './ringbuf.ts';

/** Program (by name in the object) implementing each attach type. */
export type ProbePrograms = Partial<Record<AttachType, string>>;

export interface ProbeSetOptions {
  /** Path of the .bpf.o (bpfObjectPath(name)). */
  object: string;
  /**
   * Builds of the same source with some constants fixed at compile time (bpfObjectVariants()):
   * a probe whose constants equal all of a variant's `fixed` ones loads that variant (the first
   * such), any other probe `object`. The shared maps are the same in each.
   */
  variants?: readonly { object: string; fixed: Readonly<Record<string, ConstantValue>> }[];
  programs: ProbePrograms;
  /** loadAsync: instances verified at once (default: the CPUs available). */
  loadParallelism?: number;
  /** Per-probe override of the program (e.g. a typed tp_btf program for one tracepoint). */
  programFor?: (probe: ResolvedProbe) => string | undefined;
  /** Extra `.rodata` constants per probe (retis_probe_id and retis_wakeup_bytes are set here). */
  constants?: (probe: ResolvedProbe, probeId: number) => Readonly<Record<string, ConstantValue>>;
  /** Maps shared by every instance (default: retis_events, retis_lost). Never share libbpf's USDT maps. */
  sharedMaps?: readonly string[];
  /** Ring buffer size in bytes (power of 2, multiple of the page size). */
  ringbufBytes?: number;
  /**
   * Wake the reader when unread data crosses this many bytes (default 256 KiB; 0: kernel default,
   * a wakeup whenever the reader caught up: lowest latency, most wakeups). The reader also drains
   * every `pollMs`, so this bounds work per wakeup, not latency.
   */
  wakeupBytes?: number;
  layouts?: readonly Layout[];
  firstProbeId?: number;
  /** Keep going when a probe fails to load/attach: it is recorded in `skipped` with the reason. */
  skipFailed?: boolean;
  /**
   * The object's producers stage records per CPU and write batches of frames (see
   * RingBufOptions.stageFlushFd): this program of the object moves what a CPU holds to the ring.
   * Loaded with the first instance, never attached; openReader() hands it to the reader.
   */
  stageFlush?: string;
  /** Last configuration step of each instance before load (e.g. BpfObject.patchProgram for filters). */
  beforeLoad?: (obj: BpfObject, probe: ResolvedProbe, program: string) => void;
}

export interface LoadedProbe {
  id: number;
  probe: ResolvedProbe;
  program: string;
  object: BpfObject;
  /** The file it was loaded from: ProbeSetOptions.object or one of its variants. */
  objectPath: string;
  link: BpfLink | undefined;
}

export interface SkippedProbe {
  probe: ResolvedProbe;
  reason: string;
  error: BpfError;
}

const DEFAULT_SHARED = ['retis_events', 'retis_lost'];

function withProbe(e: unknown, probe: ResolvedProbe, op: string): BpfError {
  const err = toBpfError(e, op, probe.name);
  if (!err.message.startsWith(`probe ${probe.name}`)) err.message = `probe ${probe.name}: ${err.message}`;
  return err;
}

export class ProbeSet {
  readonly #probes: LoadedProbe[] = [];
  readonly skipped: SkippedProbe[] = [];
  readonly #opts: ProbeSetOptions;
  #closed = false;
  /** Wall time spent loading, ms. */
  loadMs = 0;

  private constructor(opts: ProbeSetOptions) {
    this.#opts = opts;
  }

  /** Open and load one instance per probe. On failure (unless skipFailed) nothing stays loaded. */
  static load(probes: readonly ResolvedProbe[], opts: ProbeSetOptions): ProbeSet {
    const set = new ProbeSet(opts);
    const t0 = performance.now();
    try {
      let id = opts.firstProbeId ?? 1;
      for (const probe of probes) set.#loadOne(probe, id++);
    } catch (e) {
      set.close();
      throw e;
    }
    set.loadMs = performance.now() - t0;
    return set;
  }

  /**
   * load() with the instances verified in parallel on worker threads: the first one alone (it
   * creates the shared maps the others reuse), then all the others at once.
   */
  static async loadAsync(probes: readonly ResolvedProbe[], opts: ProbeSetOptions): Promise<ProbeSet> {
    const set = new ProbeSet(opts);
    const t0 = performance.now();
    let id = opts.firstProbeId ?? 1;
    const pending: { probe: ResolvedProbe; id: number; obj: BpfObject; program: string; objectPath: string; done: Promise<void> }[] = [];
    // As many loads at once as CPUs: more only adds peak memory (each libbpf load parses the
    // kernel BTF, ~30 MiB) without verifying any faster.
    const width = Math.max(1, Math.min(opts.loadParallelism ?? availableParallelism(), 8));
    let slots: Promise<void>[] = [];
    try {
      let i = 0;
      for (; i < probes.length && set.#probes.length === 0; i++) set.#loadOne(probes[i]!, id++);
      for (; i < probes.length; i++) {
        const probe = probes[i]!;
        const pid = id++;
        // Wait for a slot before preparing: an opened instance holds libbpf's parse of the
        // kernel BTF (setAttachTarget) until it is loaded.
        while (slots.length >= width) await Promise.race(slots);
        const prepared = set.#prepare(probe, pid);
        if (!prepared) continue;
        const done = prepared.obj.loadAsync();
        const slot: Promise<void> = done.then(
          () => void (slots = slots.filter((x) => x !== slot)),
          () => void (slots = slots.filter((x) => x !== slot)),
        );
        slots.push(slot);
        pending.push({ probe, id: pid, ...prepared, done });
      }
    } catch (e) {
      // Settle the loads already running before closing anything they use.
      await Promise.allSettled(pending.map((x) => x.done));
      for (const x of pending) x.obj.close();
      set.close();
      throw e;
    }
    const results = await Promise.allSettled(pending.map((x) => x.done));
    // The worker threads' libbpf work (a kernel BTF parse per instance) was freed into their own
    // malloc arenas: hand it back, or it stays in the capture's RSS for its whole life.
    if (pending.length > 0) native().mallocTrim();
    let failure: BpfError | undefined;
    results.forEach((r, k) => {
      const x = pending[k]!;
      if (r.status === 'fulfilled') {
        set.#probes.push({ id: x.id, probe: x.probe, program: x.program, object: x.obj, objectPath: x.objectPath, link: undefined });
        return;
      }
      x.obj.close();
      const err = withProbe(r.reason, x.probe, 'load');
      if (opts.skipFailed) set.skipped.push({ probe: x.probe, reason: err.message, error: err });
      else failure ??= err;
    });
    // Probe ids in load order, as load() gives them.
    set.#probes.sort((a, b) => a.id - b.id);
    if (failure) {
      set.close();
      throw failure;
    }
    set.loadMs = performance.now() - t0;
    return set;
  }

  /** Open and configure the instance of one probe, not loaded (undefined: skipped, noted). */
  #prepare(probe: ResolvedProbe, id: number): { obj: BpfObject; program: string; objectPath: string } | undefined {
    const o = this.#opts;
    const program = o.programFor?.(probe) ?? o.programs[probe.attach.type];
    if (!program) {
      throw new BpfError({ op: 'ProbeSet.load', target: probe.name, kind: 'invalid', hint: `No program for attach type ${probe.attach.type} in ${o.object} (ProbeSetOptions.programs).` });
    }
    const owner = this.#probes[0]?.object;
    let obj: BpfObject | undefined;
    try {
      const constants: Record<string, ConstantValue> = {
        retis_probe_id: id,
        retis_wakeup_bytes: o.wakeupBytes ?? 256 * 1024,
        ...(o.constants?.(probe, id) ?? {}),
      };
      const objectPath = o.variants?.find((v) => Object.entries(v.fixed).every(([k, x]) => constants[k] === x))?.object ?? o.object;
      obj = BpfObject.open(objectPath, owner ? {} : { layouts: o.layouts ?? [] });
      obj.onlyPrograms(owner || !o.stageFlush ? [program] : [program, o.stageFlush]);
      if (probe.btfTarget) obj.setAttachTarget(program, probe.btfTarget);
      obj.setConstants(constants);
      for (const name of o.sharedMaps ?? DEFAULT_SHARED) {
        if (owner) obj.map(name).reuseFd(owner.map(name).fd);
        else if (name === 'retis_events' && o.ringbufBytes) obj.map(name).setMaxEntries(o.ringbufBytes);
      }
      o.beforeLoad?.(obj, probe, program);
      return { obj, program, objectPath };
    } catch (e) {
      obj?.close();
      const err = withProbe(e, probe, 'load');
      if (!o.skipFailed) throw err;
      this.skipped.push({ probe, reason: err.message, error: err });
      return undefined;
    }
  }

  #loadOne(probe: ResolvedProbe, id: number): void {
    const prepared = this.#prepare(probe, id);
    if (!prepared) return;
    const { obj, program, objectPath } = prepared;
    try {
      obj.load();
      this.#probes.push({ id, probe, program, object: obj, objectPath, link: undefined });
    } catch (e) {
      obj.close();
      const err = withProbe(e, probe, 'load');
      if (!this.#opts.skipFailed) throw err;
      this.skipped.push({ probe, reason: err.message, error: err });
    }
  }

  get probes(): readonly LoadedProbe[] {
    return this.#probes;
  }

  /** A shared map (from the first instance). */
  map(name: string): BpfMap {
    const owner = this.#probes[0]?.object;
    if (!owner) throw new BpfError({ op: 'ProbeSet.map', target: name, kind: 'invalid', hint: 'No probe is loaded.' });
    return owner.map(name);
  }

  /** Attach every loaded probe. On failure (unless skipFailed), detaches what was attached. */
  attach(): void {
    for (const p of this.#probes) {
      if (p.link) continue;
      try {
        p.link = p.object.attach(p.program, p.probe.attach);
      } catch (e) {
        const err = withProbe(e, p.probe, 'attach');
        if (!this.#opts.skipFailed) {
          this.detach();
          throw err;
        }
        this.skipped.push({ probe: p.probe, reason: err.message, error: err });
      }
    }
  }

  /** Detach every probe (no new events); maps stay so a reader can drain. */
  detach(): void {
    for (const p of this.#probes) {
      if (!p.link) continue;
      const l = p.link;
      p.link = undefined;
      l.destroy();
    }
  }

  /** Read the shared ring buffer. */
  openReader(onBatch: (batch: RingBatch) => void, opts: RingBufOptions = {}): RingBufReader {
    const flush = this.#opts.stageFlush;
    const owner = this.#probes[0]?.object;
    const stage = flush && owner ? { stageFlushFd: owner.program(flush).fd } : {};
    return RingBufReader.open(this.map('retis_events'), onBatch, { ...opts, ...stage });
  }

  /** Reservation failures per probe and CPU, with probe names. */
  losses(): LossReport & { byProbe: Map<string, bigint> } {
    const r = readLosses(this.map('retis_lost'), this.#probes.map((p) => p.id));
    const names = new Map(this.#probes.map((p) => [p.id, p.probe.name]));
    const byProbe = new Map<string, bigint>();
    for (const e of r.entries) {
      const n = names.get(e.probeId) ?? String(e.probeId);
      byProbe.set(n, (byProbe.get(n) ?? 0n) + e.lost);
    }
    return { ...r, byProbe };
  }

  /** Detach and close every instance (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const errors: unknown[] = [];
    // Reverse order: the map owner (first instance) goes last.
    for (const p of [...this.#probes].reverse()) {
      try {
        p.object.close();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw errors[0];
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
