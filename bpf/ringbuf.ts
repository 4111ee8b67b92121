/**
 * Ring buffer reader: records from BPF ring buffers, delivered to JS in batches.
 *
 * A native thread (bpf/native/retis_bpf.c) waits on the rings, drains them into ~1 MiB batches and
 * hands each batch to the JS thread as one ArrayBuffer (zero copy). One JS call per batch, never
 * per record: that is what makes millions of records/s possible in JS. When the handler is slower
 * than the producers, the native thread blocks on a bounded queue, the rings fill up, and the BPF
 * side counts reservation failures per probe and CPU ({@link readLosses}): losses are visible,
 * never silent.
 *
 * Semantics (after cilium/ebpf's ringbuf.Reader):
 * - batches arrive on `onBatch` in ring order per ring;
 * - {@link RingBufReader.flush} resolves once every record committed before the call has been
 *   handed to `onBatch` (drain, then acknowledge);
 * - {@link RingBufReader.close} stops at once: records not yet delivered are dropped (flush first
 *   for a graceful stop). If `onBatch` throws, the reader closes itself and reports the error to
 *   `onError` (or rethrows it as an uncaught exception if there is none, after closing).
 */
import { BpfError, check, errnoName } from './errors.ts';
import type { Decoded, FieldSpec, Layout } from './layout.ts';
import { CLOSE_RANK, track, untrack } from './lifecycle.ts';
import { native, type DecoderHandle, type ReaderHandle } from './native.ts';
import type { BpfMap } from './object.ts';

/** Per-record header in a batch: u32 size, u32 ring index; payload follows, padded to 8 bytes. */
export const RECORD_HEADER_BYTES = 8;

/**
 * One batch of records. By default valid only during the `onBatch` call: its memory goes back to
 * the reader right after, and a kept reference reads as a detached (empty) buffer, never as other
 * data. Open the reader with `keepBatches: true` to keep batches (zero copy, freed by GC).
 */
export class RingBatch {
  readonly view: DataView;
  constructor(readonly buffer: ArrayBuffer, readonly count: number) {
    this.view = new DataView(buffer);
  }

  get byteLength(): number {
    return this.buffer.byteLength;
  }

  /**
   * Visit each record: `offset` is where its payload starts in `view`, `size` its length in
   * bytes, `ring` the index of its ring buffer in the reader's map list. The hot path: no
   * allocation per record.
   */
  forEach(fn: (view: DataView, offset: number, size: number, ring: number) => void): void {
    const v = this.view;
    const end = this.buffer.byteLength;
    let p = 0;
    while (p < end) {
      const size = v.getUint32(p, true);
      const ring = v.getUint32(p + 4, true);
      fn(v, p + RECORD_HEADER_BYTES, size, ring);
      p += RECORD_HEADER_BYTES + ((size + 7) & ~7);
    }
  }

  /** Decode every record with a layout (records shorter than the layout are an error). */
  decode<F extends FieldSpec>(layout: Layout<F>): Decoded<F>[] {
    const out: Decoded<F>[] = [];
    this.forEach((v, off, size) => {
      if (size < layout.size) throw new RangeError(`record of ${size} bytes is shorter than ${layout.name} (${layout.size})`);
      out.push(layout.decode(v, off));
    });
    return out;
  }
}

export interface RingBufOptions {
  /**
   * Keep batches past the callback (e.g. zero-copy into Arrow). Default false: each batch is
   * recycled after its callback, which is faster (no GC-paced buffer churn) and safe (detached).
   */
  keepBatches?: boolean;
  /** Bytes per batch (default 1 MiB). Bigger: fewer JS calls; smaller: lower memory per batch. */
  batchBytes?: number;
  /** Drain interval when the BPF side does not wake us (default 10 ms). */
  pollMs?: number;
  /** Deliver a partial batch when its first record is this old (default 10 ms). */
  flushMs?: number;
  /** Batches queued towards JS before the native thread blocks (default 16). */
  queue?: number;
  /** Called with the handler's error (reader already closed) or the reader thread's failure. */
  onError?: (err: Error) => void;
  /**
   * Column mode: the reader thread decodes every record with this decoder, and each batch is one
   * of its arenas (`count` = rows) instead of records; `batchBytes` is then ignored.
   */
  decoder?: DecoderHandle;
  /**
   * Staged producers: each ring record is a batch of frames { u32 len, u32 probe id } + record
   * (8-aligned), and this BPF_PROG_TEST_RUN-able program (raw_tp; args[0] != 0: everything)
   * moves the records a CPU still holds to the ring. The reader runs it on every CPU each
   * `stageFlushMs` (default 50) and before answering flush().
   */
  stageFlushFd?: number;
  stageFlushMs?: number;
}

export interface RingBufStats {
  records: number;
  bytes: number;
  batches: number;
  /** Records larger than a batch (each got a batch of its own). */
  oversize: number;
  /**
   * Batch buffers this reader had to allocate because none was free in the pool. Without
   * `keepBatches` it stays at most `queue` + 2 whatever the rate (buffers are reused).
   */
  buffersAllocated: number;
  /** Batch buffers allocated because none was free for reuse (process-wide). */
  poolMisses: number;
}

export class RingBufReader {
  #handle: ReaderHandle | undefined;
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  readonly #onBatch: (batch: RingBatch) => void;
  readonly #onError: ((err: Error) => void) | undefined;
  #error: Error | undefined;

  private constructor(maps: readonly BpfMap[], onBatch: (batch: RingBatch) => void, opts: RingBufOptions) {
    this.#onBatch = onBatch;
    this.#onError = opts.onError;
    const fds = maps.map((m) => {
      if (m.info.type !== 27 /* BPF_MAP_TYPE_RINGBUF */) {
        throw new BpfError({ op: 'RingBufReader.open', target: m.name, kind: 'invalid', hint: `Map '${m.name}' is not a ring buffer (type ${m.info.type}).` });
      }
      const fd = m.fd;
      if (fd < 0) throw new BpfError({ op: 'RingBufReader.open', target: m.name, kind: 'invalid', hint: 'Load the object before opening its ring buffer.' });
      return fd;
    });
    const nopts: { keepBatches: number; batchBytes?: number; pollMs?: number; flushMs?: number; queue?: number; decoder?: DecoderHandle; stageFlushFd?: number; stageFlushMs?: number } = { keepBatches: opts.keepBatches ? 1 : 0 };
    if (opts.stageFlushFd !== undefined) nopts.stageFlushFd = opts.stageFlushFd;
    if (opts.stageFlushMs !== undefined) nopts.stageFlushMs = opts.stageFlushMs;
    if (opts.decoder !== undefined) nopts.decoder = opts.decoder;
    if (opts.batchBytes !== undefined) nopts.batchBytes = opts.batchBytes;
    if (opts.pollMs !== undefined) nopts.pollMs = opts.pollMs;
    if (opts.flushMs !== undefined) nopts.flushMs = opts.flushMs;
    if (opts.queue !== undefined) nopts.queue = opts.queue;
    this.#handle = check('ring_buffer__new', maps.map((m) => m.name).join(','), () =>
      native().ringbufOpen(fds, nopts, (ab, count, flushSeq, err) => this.#deliver(ab, count, flushSeq, err)),
    );
    track(this, CLOSE_RANK.reader);
  }

  /** Start reading one or more ring buffer maps (loaded). `onBatch` runs on the JS thread. */
  static open(maps: BpfMap | readonly BpfMap[], onBatch: (batch: RingBatch) => void, opts: RingBufOptions = {}): RingBufReader {
    return new RingBufReader(Array.isArray(maps) ? maps : [maps as BpfMap], onBatch, opts);
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  #deliver(ab: ArrayBuffer, count: number, flushSeq: number, err: number): void {
    if (!this.#handle) return;
    try {
      if (count > 0) this.#onBatch(new RingBatch(ab, count));
    } catch (e) {
      this.#fail(e instanceof Error ? e : new Error(String(e)), true);
      return;
    }
    if (err) {
      this.#fail(new BpfError({ op: 'ring buffer reader thread', errno: err, kind: 'other', hint: `Reading stopped (${errnoName(err)}); records after this point were not read.` }), false);
      return;
    }
    if (flushSeq) {
      // Sequence numbers only grow (modulo 2^32): this batch completes every flush up to flushSeq.
      for (const [seq, p] of this.#pending) {
        if (((flushSeq - seq) | 0) >= 0) {
          this.#pending.delete(seq);
          p.resolve();
        }
      }
    }
  }

  #fail(e: Error, fromHandler: boolean): void {
    this.#error = e;
    this.close();
    if (this.#onError) this.#onError(e);
    else if (fromHandler) {
      // No one to tell: do not swallow it. Resources are already closed.
      queueMicrotask(() => {
        throw e;
      });
    } else process.stderr.write(`retis-ts: ${e.message}\n`);
  }

  /** Resolve once every record committed before this call has been passed to `onBatch`. */
  flush(): Promise<void> {
    const h = this.#handle;
    if (!h) return Promise.reject(this.#error ?? new BpfError({ op: 'flush', kind: 'closed', hint: 'The reader is closed.' }));
    const seq = check('ringbufFlush', undefined, () => native().ringbufFlush(h));
    return new Promise((resolve, reject) => this.#pending.set(seq, { resolve, reject }));
  }

  stats(): RingBufStats {
    const h = this.#handle;
    if (!h) return { records: 0, bytes: 0, batches: 0, oversize: 0, buffersAllocated: 0, poolMisses: 0 };
    const s = native().ringbufStats(h);
    return { records: Number(s.records), bytes: Number(s.bytes), batches: Number(s.batches), oversize: Number(s.oversize), buffersAllocated: Number(s.buffersAllocated), poolMisses: Number(s.poolMisses) };
  }

  /** Stop the reader thread and free the rings' mappings (idempotent, synchronous). */
  close(): void {
    const h = this.#handle;
    if (!h) return;
    this.#handle = undefined;
    untrack(this);
    try {
      check('ringbufClose', undefined, () => native().ringbufClose(h));
    } finally {
      const err = this.#error ?? new BpfError({ op: 'flush', kind: 'closed', hint: 'The reader was closed before the flush completed.' });
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

//// LOSSES ////

export interface LossReport {
  /** Sum over probes and CPUs. */
  total: bigint;
  /** Non-zero entries only: probe id, CPU, reservations that failed. */
  entries: { probeId: number; cpu: number; lost: bigint }[];
}

/**
 * Read the per-probe, per-CPU reservation failure counters (`retis_lost`, see
 * bpf/include/retis/ringbuf.bpf.h) for the given probe ids.
 */
export function readLosses(lostMap: BpfMap, probeIds: Iterable<number>): LossReport {
  const entries: LossReport['entries'] = [];
  let total = 0n;
  for (const id of probeIds) {
    lostMap.lookupPerCpuU64(id).forEach((lost, cpu) => {
      if (lost > 0n) {
        entries.push({ probeId: id, cpu, lost });
        total += lost;
      }
    });
  }
  return { total, entries };
}
