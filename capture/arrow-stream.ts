/**
 * Arrow IPC stream written synchronously, one `writev` per record batch.
 *
 * apache-arrow's RecordBatchStreamWriter hands its output to an async byte queue; a capture needs
 * every batch on disk as soon as it is complete (a `kill -9` must lose at most the batch being
 * written), so the queue is replaced by a sink that collects a batch's chunks and writes them in
 * one call. The file never holds a batch the reader cannot parse except, after a crash, the last.
 */
import fs from 'node:fs';
import { AsyncByteQueue, CompressionType, RecordBatchStreamWriter, type RecordBatch, type Schema } from 'apache-arrow';
import { ZERO_BUFFERS, registerZstdRle, zeroFrame } from '../analyze/model/arrow-zeros.ts';

/** Body-compression length prefix of a buffer stored as it is. */
const UNCOMPRESSED = new Uint8Array(new BigInt64Array([-1n]).buffer);
const EMPTY = new Uint8Array(0);
/** Padding bytes (< 8 a time), shared: chunks are only read, by the next writev. */
const PADDING = new Uint8Array(8);
/** Length prefixes of compressed buffers, by length (the same few sizes every batch). */
const prefixes = new Map<number, Uint8Array>();
function lengthPrefix(n: number): Uint8Array {
  let p = prefixes.get(n);
  if (!p) {
    p = new Uint8Array(new BigInt64Array([BigInt(n)]).buffer);
    if (prefixes.size < 256) prefixes.set(n, p);
  }
  return p;
}

/**
 * Writes batches with ZSTD body compression applied to the zero-filled buffers of all-null
 * columns only (analyze/model/arrow-zeros.ts): apache-arrow's own path would run the codec on
 * every buffer and copy each one it leaves uncompressed.
 */
class ZeroCompressingWriter extends RecordBatchStreamWriter {
  constructor() {
    registerZstdRle();
    super({ autoDestroy: false, compressionType: CompressionType.ZSTD });
  }
  protected override _compressBodyBuffers(buffers: ArrayBufferView[]): ReturnType<RecordBatchStreamWriter['_compressBodyBuffers']> {
    const out: ArrayBufferView[] = [];
    const regions: { offset: number; length: number }[] = [];
    let at = 0;
    for (const b of buffers) {
      if (b.byteLength === 0) {
        out.push(EMPTY, EMPTY);
        regions.push({ offset: at, length: 0 });
        continue;
      }
      let body: ArrayBufferView = b;
      let prefix: Uint8Array = UNCOMPRESSED;
      if (ZERO_BUFFERS.has(b.buffer)) {
        body = zeroFrame(b.byteLength);
        prefix = lengthPrefix(b.byteLength);
      }
      out.push(prefix, body);
      at = (at + 7) & ~7;
      regions.push({ offset: at, length: 8 + body.byteLength });
      at += 8 + body.byteLength;
    }
    return { byteLength: (at + 7) & ~7, bufferRegions: regions as never, buffers: out };
  }
  /**
   * The (prefix, body) pairs of _compressBodyBuffers straight to the sink: apache-arrow's loop
   * converts and pads every one of the ~400 chunks of a batch through generic helpers.
   */
  protected override _writeBodyBuffers(buffers: ArrayBufferView[]): this {
    if (this._compression === null || !this._started) return super._writeBodyBuffers(buffers);
    for (let i = 0; i + 1 < buffers.length; i += 2) {
      const prefix = buffers[i]!;
      const body = buffers[i + 1]!;
      const size = prefix.byteLength + body.byteLength;
      if (size === 0) continue;
      this._sink.write(prefix as Uint8Array);
      this._sink.write(body instanceof Uint8Array ? body : new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
      this._position += size;
      const pad = ((size + 7) & ~7) - size;
      if (pad > 0) this._writePadding(pad);
    }
    return this;
  }
  /** apache-arrow allocates a fresh zero array for every buffer's padding. */
  protected override _writePadding(nBytes: number): this {
    if (nBytes <= 0) return this;
    return nBytes <= PADDING.length ? this._write(PADDING.subarray(0, nBytes)) : super._writePadding(nBytes);
  }
}

/** Collects the writer's chunks instead of queueing them for an async reader. */
class ChunkSink extends AsyncByteQueue {
  chunks: Uint8Array[] = [];
  bytes = 0;
  override write(value: ArrayBufferView | ArrayBuffer | string): void {
    const u8 =
      value instanceof Uint8Array
        ? value
        : ArrayBuffer.isView(value)
          ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
          : typeof value === 'string'
            ? new TextEncoder().encode(value)
            : new Uint8Array(value);
    if (u8.byteLength === 0) return;
    this.chunks.push(u8);
    this.bytes += u8.byteLength;
  }
  take(): Uint8Array[] {
    const c = this.chunks;
    this.chunks = [];
    this.bytes = 0;
    return c;
  }
}

export class ArrowStreamFile {
  private readonly writer = new ZeroCompressingWriter();
  private readonly sink = new ChunkSink();
  private fd: number;
  /** Bytes written to the file so far. */
  bytesWritten = 0;
  batches = 0;

  /**
   * Create `path` (mode 0600, refusing an existing file unless `overwrite`) and write the schema.
   */
  constructor(readonly path: string, schema: Schema, overwrite = false) {
    this.fd = fs.openSync(path, overwrite ? 'w' : 'wx', 0o600);
    this.writer.reset(this.sink, schema);
    this.drain();
  }

  /** Append one record batch, on disk when this returns. */
  write(batch: RecordBatch): void {
    this.writer.write(batch);
    this.drain();
    this.batches++;
  }

  private drain(): void {
    const chunks = this.sink.take();
    if (chunks.length === 0) return;
    let total = 0;
    for (const c of chunks) total += c.byteLength;
    // writevSync writes everything or throws (libuv retries short writes of regular files).
    const n = fs.writevSync(this.fd, chunks);
    if (n !== total) throw new Error(`${this.path}: short write (${n} of ${total} bytes): disk full?`);
    this.bytesWritten += n;
  }

  /** Write the end-of-stream marker and close. */
  close(): void {
    if (this.fd < 0) return;
    try {
      this.writer.finish();
      this.drain();
    } finally {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }

  /** Close without the end-of-stream marker (error paths: what is written stays readable). */
  abort(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
