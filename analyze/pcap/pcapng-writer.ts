/**
 * A small, fast pcap-ng writer (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html).
 *
 * Scope: what retis-ts needs to export packets — Section Header Block, Interface
 * Description Blocks, Enhanced Packet Blocks with options, and Custom Blocks. Always
 * little-endian, every block and option padded to 32 bits with zero bytes.
 *
 * Speed: blocks are serialised straight into one large reusable buffer and handed to
 * `fs.writeSync` when it fills up, so writing a packet allocates nothing but what the
 * caller's strings need. Variable-length parts (strings) are encoded in place with a
 * worst-case reservation and their lengths back-patched, which avoids measuring each
 * string twice.
 */
import * as fs from 'node:fs';

/** Block types (pcapng §4). */
export const BLOCK_SHB = 0x0a0d0d0a;
export const BLOCK_IDB = 0x00000001;
export const BLOCK_EPB = 0x00000006;
/** Custom Block that may be copied to new files by tools not understanding it. */
export const BLOCK_CUSTOM_COPIABLE = 0x00000bad;
/** Custom Block that must not be copied to new files. */
export const BLOCK_CUSTOM_NOCOPY = 0x40000bad;

/** Option codes. */
export const OPT_ENDOFOPT = 0;
export const OPT_COMMENT = 1;
/** Custom options (pcapng §3.5.1): string/binary, copiable or not. */
export const OPT_CUSTOM_STR_COPY = 2988;
export const OPT_CUSTOM_BIN_COPY = 2989;
export const OPT_CUSTOM_STR_NOCOPY = 19372;
export const OPT_CUSTOM_BIN_NOCOPY = 19373;
export const SHB_HARDWARE = 2;
export const SHB_OS = 3;
export const SHB_USERAPPL = 4;
export const IF_NAME = 2;
export const IF_DESCRIPTION = 3;
export const IF_TSRESOL = 9;
export const EPB_FLAGS = 2;
export const EPB_DROPCOUNT = 4;
export const EPB_PACKETID = 5;
export const EPB_VERDICT = 7;

/** epb_verdict types (pcapng §4.3.1). */
export const VERDICT_HARDWARE = 0;
export const VERDICT_LINUX_EBPF_TC = 1;
export const VERDICT_LINUX_EBPF_XDP = 2;

export const LINKTYPE_ETHERNET = 1;

/** Option values are length-prefixed by a u16. */
const MAX_OPTION_LEN = 0xffff;
const DEFAULT_BUFFER_SIZE = 4 << 20;

/** Where the bytes go. */
export type PcapngOutput =
  /** A file, created (mode 0o600 unless `mode` says otherwise) or truncated. */
  | { path: string; mode?: number }
  /** An open file descriptor; the writer never closes it. */
  | { fd: number }
  /** File descriptor 1. */
  | 'stdout'
  /** A callback; `chunk` is a view of the writer's buffer, only valid during the call. */
  | { sink: (chunk: Uint8Array) => void };

export interface SectionHeaderOptions {
  comment?: string;
  hardware?: string;
  os?: string;
  userAppl?: string;
}

export interface InterfaceDescription {
  /** LINKTYPE_* value; default Ethernet. */
  linktype?: number;
  /** 0 = no limit. Default 0. */
  snaplen?: number;
  name?: string;
  description?: string;
  comment?: string;
  /**
   * if_tsresol byte: 6 = µs (the format's default when absent), 9 = ns. Written only
   * when given. Timestamps passed to writePacket are in these units.
   */
  tsresol?: number;
}

/** A custom option (pcapng §3.5.1): Private Enterprise Number then the value. */
export interface CustomOption {
  /** One of the OPT_CUSTOM_* codes; default OPT_CUSTOM_STR_COPY (2988). */
  code?: number;
  pen: number;
  /** Strings are written as UTF-8. */
  value: string | Uint8Array;
}

export interface PacketOptions {
  /** opt_comment. */
  comment?: string;
  /** Custom options, written right after the comment and in this order. */
  custom?: readonly CustomOption[];
  /** epb_flags (u32). */
  flags?: number;
  /** epb_packetid (u64). */
  packetId?: bigint;
  /** epb_verdict: a type octet (VERDICT_*) followed by type-specific bytes. */
  verdict?: { type: number; data: Uint8Array };
}

export interface PcapngWriterOptions {
  /** Size of the write buffer (default 4 MiB). Larger blocks still work (the buffer grows). */
  bufferSize?: number;
  /** SHB options; the SHB itself is always written first. */
  section?: SectionHeaderOptions;
}

const pad4 = (n: number): number => (n + 3) & ~3;

/**
 * Writes one pcap-ng section: an SHB at construction, then whatever blocks are asked for.
 * Not thread-safe, synchronous (the I/O is `fs.writeSync`). Call `close()` at the end:
 * buffered blocks are only written out on `flush()`/`close()` or when the buffer fills.
 */
export class PcapngWriter {
  private buf: Buffer;
  private view: DataView;
  private pos = 0;
  private fd: number;
  private readonly ownsFd: boolean;
  private readonly sink: ((chunk: Uint8Array) => void) | undefined;
  private interfaces = 0;
  private closed = false;
  /** Start offset of the block being written, to drop it if it turns out invalid. */
  private blockStart = 0;
  /** Splits a bigint timestamp into 32-bit halves without allocating intermediate BigInts. */
  private readonly tsScratch = new DataView(new ArrayBuffer(8));
  /** Total bytes handed to the output so far (flushed or not). */
  bytesWritten = 0;

  constructor(output: PcapngOutput, options: PcapngWriterOptions = {}) {
    const size = Math.max(4096, options.bufferSize ?? DEFAULT_BUFFER_SIZE);
    // Own ArrayBuffer (not Buffer's shared pool) so block offsets stay 4-aligned in memory too.
    this.buf = Buffer.from(new ArrayBuffer(size));
    this.view = new DataView(this.buf.buffer);
    if (output === 'stdout') {
      this.fd = 1;
      this.ownsFd = false;
      this.sink = undefined;
    } else if ('sink' in output) {
      this.fd = -1;
      this.ownsFd = false;
      this.sink = output.sink;
    } else if ('fd' in output) {
      this.fd = output.fd;
      this.ownsFd = false;
      this.sink = undefined;
    } else {
      // 0o600: exports carry packet payloads and process names, keep them private.
      this.fd = fs.openSync(output.path, 'w', output.mode ?? 0o600);
      this.ownsFd = true;
      this.sink = undefined;
    }
    this.writeSectionHeader(options.section);
  }

  /** Number of IDBs written in the current section (= next interface id). */
  get interfaceCount(): number {
    return this.interfaces;
  }

  /**
   * Start a section: an SHB (version 1.0, section length unknown). Interface ids restart
   * at 0. Called by the constructor; call again only to start another section.
   */
  writeSectionHeader(opts: SectionHeaderOptions = {}): void {
    this.checkOpen();
    const start = this.beginBlock(BLOCK_SHB, 16 + this.stringOptionsReserve(opts.comment, opts.hardware, opts.os, opts.userAppl));
    const v = this.view;
    v.setUint32(start + 8, 0x1a2b3c4d, true); // byte-order magic
    v.setUint16(start + 12, 1, true);
    v.setUint16(start + 14, 0, true);
    v.setInt32(start + 16, -1, true); // section length: unknown (we stream)
    v.setInt32(start + 20, -1, true);
    this.pos = start + 24;
    let any = false;
    any = this.stringOption(OPT_COMMENT, opts.comment) || any;
    any = this.stringOption(SHB_HARDWARE, opts.hardware) || any;
    any = this.stringOption(SHB_OS, opts.os) || any;
    any = this.stringOption(SHB_USERAPPL, opts.userAppl) || any;
    if (any) this.endOfOptions();
    this.endBlock(start);
    this.interfaces = 0;
  }

  /** Write an IDB; returns its interface id (0, 1, … in order within the section). */
  addInterface(desc: InterfaceDescription = {}): number {
    this.checkOpen();
    const start = this.beginBlock(BLOCK_IDB, 8 + this.stringOptionsReserve(desc.name, desc.description, desc.comment) + 8);
    const v = this.view;
    v.setUint16(start + 8, desc.linktype ?? LINKTYPE_ETHERNET, true);
    v.setUint16(start + 10, 0, true);
    v.setUint32(start + 12, desc.snaplen ?? 0, true);
    this.pos = start + 16;
    let any = false;
    any = this.stringOption(OPT_COMMENT, desc.comment) || any;
    any = this.stringOption(IF_NAME, desc.name) || any;
    any = this.stringOption(IF_DESCRIPTION, desc.description) || any;
    if (desc.tsresol !== undefined) {
      const p = this.pos;
      v.setUint32(p, IF_TSRESOL | (1 << 16), true);
      v.setUint32(p + 4, desc.tsresol & 0xff, true); // value byte + 3 zero padding bytes
      this.pos = p + 8;
      any = true;
    }
    if (any) this.endOfOptions();
    this.endBlock(start);
    return this.interfaces++;
  }

  /**
   * Write an EPB. `timestamp` is in the interface's if_tsresol units since the epoch
   * (bigint for ns, a safe-integer number is fine too). `originalLength` defaults to the
   * captured length.
   */
  writePacket(
    interfaceId: number,
    timestamp: bigint | number,
    data: Uint8Array,
    originalLength: number = data.length,
    options?: PacketOptions,
  ): void {
    if (this.closed) this.checkOpen();
    const capLen = data.length;
    const dataLen = pad4(capLen);
    // Body: 20 fixed bytes, padded data, options at their worst-case size.
    const optReserve = options === undefined ? 0 : this.packetOptionsReserve(options);
    const start = this.beginBlock(BLOCK_EPB, 20 + dataLen + optReserve);
    const v = this.view;
    let hi: number;
    let lo: number;
    if (typeof timestamp === 'bigint') {
      const s = this.tsScratch;
      s.setBigUint64(0, timestamp, true);
      lo = s.getUint32(0, true);
      hi = s.getUint32(4, true);
    } else {
      hi = Math.floor(timestamp / 4294967296);
      lo = timestamp >>> 0;
    }
    v.setUint32(start + 8, interfaceId, true);
    v.setUint32(start + 12, hi, true);
    v.setUint32(start + 16, lo, true);
    v.setUint32(start + 20, capLen, true);
    v.setUint32(start + 24, originalLength, true);
    let p = start + 28;
    this.buf.set(data, p);
    p += capLen;
    // Zero the padding: the buffer is reused, stale bytes must not leak into the file.
    while (p < start + 28 + dataLen) this.buf[p++] = 0;
    this.pos = p;
    if (options !== undefined && this.packetOptions(options)) this.endOfOptions();
    this.endBlock(start);
  }

  /**
   * Write a Custom Block: `pen` then `payload` (strings as UTF-8), zero-padded to 32 bits.
   * Readers cannot tell padding from payload: payloads that care (JSON, text) are expected
   * to tolerate trailing NULs, as Retis's schema block does.
   */
  writeCustomBlock(pen: number, payload: string | Uint8Array, copiable = true): void {
    this.checkOpen();
    const reserve = typeof payload === 'string' ? payload.length * 3 : payload.length;
    const start = this.beginBlock(copiable ? BLOCK_CUSTOM_COPIABLE : BLOCK_CUSTOM_NOCOPY, 4 + pad4(reserve));
    this.view.setUint32(start + 8, pen, true);
    let p = start + 12;
    if (typeof payload === 'string') {
      p += this.buf.write(payload, p, 'utf8');
    } else {
      this.buf.set(payload, p);
      p += payload.length;
    }
    while (p & 3) this.buf[p++] = 0;
    this.pos = p;
    this.endBlock(start);
  }

  /** Hand everything buffered so far to the output. */
  flush(): void {
    if (this.pos === 0) return;
    this.output(this.buf.subarray(0, this.pos));
    this.pos = 0;
  }

  /** Flush and, if the writer opened the file, close it. Idempotent. */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
      if (this.ownsFd) fs.closeSync(this.fd);
    }
  }

  // --- internals ----------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new Error('pcap-ng writer is closed');
  }

  /**
   * Make room for a block whose body (between the 8-byte header and the 4-byte trailer)
   * is at most `bodyMax` bytes, write the type and return the block's start offset.
   */
  private beginBlock(type: number, bodyMax: number): number {
    const need = bodyMax + 12;
    if (this.pos + need > this.buf.length) {
      this.flush();
      if (need > this.buf.length) this.grow(need);
    }
    const start = this.pos;
    this.blockStart = start;
    this.view.setUint32(start, type, true);
    return start;
  }

  /** Back-patch the two total-length fields once the body is written (this.pos = body end). */
  private endBlock(start: number): void {
    const total = this.pos - start + 4;
    this.view.setUint32(start + 4, total, true);
    this.view.setUint32(this.pos, total, true);
    this.pos += 4;
    this.bytesWritten += total;
  }

  private grow(min: number): void {
    let size = this.buf.length;
    while (size < min) size *= 2;
    this.buf = Buffer.from(new ArrayBuffer(size));
    this.view = new DataView(this.buf.buffer);
  }

  /** Worst-case bytes for string options (UTF-8 is at most 3 bytes per UTF-16 unit) + opt_endofopt. */
  private stringOptionsReserve(...values: (string | undefined)[]): number {
    let n = 4;
    for (const s of values) if (s !== undefined) n += this.stringReserve(s);
    return n;
  }

  /**
   * Worst case for one string option. Rejects strings that cannot fit before anything is
   * reserved: a UTF-8 encoding is never shorter than the string's UTF-16 length.
   */
  private stringReserve(s: string, extra = 0): number {
    // Nothing is written yet: throw without touching the buffer.
    if (s.length + extra > MAX_OPTION_LEN) throw optionTooLong(s.length + extra);
    return 4 + extra + pad4(s.length * 3);
  }

  private packetOptionsReserve(o: PacketOptions): number {
    let n = 4; // opt_endofopt
    if (o.comment !== undefined) n += this.stringReserve(o.comment);
    if (o.custom !== undefined) {
      for (const c of o.custom) n += typeof c.value === 'string' ? this.stringReserve(c.value, 4) : 8 + pad4(c.value.length);
    }
    if (o.flags !== undefined) n += 8;
    if (o.packetId !== undefined) n += 12;
    if (o.verdict !== undefined) n += 4 + pad4(1 + o.verdict.data.length);
    return n;
  }

  /** Write the options of an EPB at this.pos; returns whether any was written. */
  private packetOptions(o: PacketOptions): boolean {
    let any = this.stringOption(OPT_COMMENT, o.comment);
    if (o.custom !== undefined) {
      for (const c of o.custom) this.customOption(c);
      any ||= o.custom.length > 0;
    }
    const v = this.view;
    if (o.flags !== undefined) {
      v.setUint32(this.pos, EPB_FLAGS | (4 << 16), true);
      v.setUint32(this.pos + 4, o.flags >>> 0, true);
      this.pos += 8;
      any = true;
    }
    if (o.packetId !== undefined) {
      v.setUint32(this.pos, EPB_PACKETID | (8 << 16), true);
      v.setBigUint64(this.pos + 4, BigInt.asUintN(64, o.packetId), true);
      this.pos += 12;
      any = true;
    }
    if (o.verdict !== undefined) {
      const len = 1 + o.verdict.data.length;
      this.checkOptionLength(len);
      v.setUint32(this.pos, EPB_VERDICT | (len << 16), true);
      let p = this.pos + 4;
      this.buf[p++] = o.verdict.type;
      this.buf.set(o.verdict.data, p);
      p += o.verdict.data.length;
      while (p & 3) this.buf[p++] = 0;
      this.pos = p;
      any = true;
    }
    return any;
  }

  /** Write a UTF-8 string option if `s` is defined; returns whether it did. */
  private stringOption(code: number, s: string | undefined): boolean {
    if (s === undefined) return false;
    const start = this.pos;
    let p = start + 4;
    const len = s.length === 0 ? 0 : this.buf.write(s, p, 'utf8');
    this.checkOptionLength(len);
    p += len;
    this.view.setUint32(start, code | (len << 16), true);
    while (p & 3) this.buf[p++] = 0;
    this.pos = p;
    return true;
  }

  private customOption(c: CustomOption): void {
    const start = this.pos;
    this.view.setUint32(start + 4, c.pen, true);
    let p = start + 8;
    if (typeof c.value === 'string') {
      p += c.value.length === 0 ? 0 : this.buf.write(c.value, p, 'utf8');
    } else {
      this.buf.set(c.value, p);
      p += c.value.length;
    }
    const len = p - start - 4; // PEN included
    this.checkOptionLength(len);
    this.view.setUint32(start, (c.code ?? OPT_CUSTOM_STR_COPY) | (len << 16), true);
    while (p & 3) this.buf[p++] = 0;
    this.pos = p;
  }

  private checkOptionLength(len: number): void {
    if (len > MAX_OPTION_LEN) {
      // The block is half-written in the buffer; drop it so the file stays well-formed.
      this.pos = this.blockStart;
      throw optionTooLong(len);
    }
  }

  private endOfOptions(): void {
    this.view.setUint32(this.pos, OPT_ENDOFOPT, true);
    this.pos += 4;
  }

  private output(chunk: Uint8Array): void {
    if (this.sink !== undefined) {
      this.sink(chunk);
      return;
    }
    writeAll(this.fd, chunk);
  }
}

function optionTooLong(len: number): RangeError {
  return new RangeError(`pcap-ng option value of at least ${len} bytes exceeds the 65535-byte limit`);
}

/**
 * `fs.writeSync` until everything is written. A pipe that Node (libuv) put in non-blocking
 * mode, typically our stdout, answers EAGAIN when full: wait a little and retry.
 */
function writeAll(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.length) {
    try {
      off += fs.writeSync(fd, chunk, off, chunk.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(sleepCell, 0, 0, 1);
    }
  }
}
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
