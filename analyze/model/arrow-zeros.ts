/**
 * All-null columns of our Arrow streams, stored in a few bytes instead of 8 per row.
 *
 * Arrow needs a full-length values buffer even for a column that is null in every row of a batch
 * (a section whose collector runs but never fires, e.g. ct on a host without conntrack entries:
 * ~220 bytes per event). The IPC format's body compression lets each buffer be compressed or
 * not (uncompressed length -1): retis-capture compresses exactly the buffers it knows to be
 * zero-filled (the shared all-null buffers, {@link ZERO_BUFFERS}) as Zstandard frames made of
 * RLE blocks (13 bytes per 128 KiB), and writes every other buffer as it is, uncopied.
 *
 * Readers: any Arrow implementation with ZSTD support (pyarrow, arrow-rs, DuckDB's arrow
 * extension); apache-arrow JS has no codec of its own, so {@link registerZstdRle} gives it a
 * decoder of the raw and RLE blocks these streams contain (a compressed block is refused).
 */
import { CompressionType, compressionRegistry } from 'apache-arrow';

/** ArrayBuffers that are zero-filled and never written (NullBuffers): compressible by identity. */
export const ZERO_BUFFERS = new WeakSet<ArrayBufferLike>();

const MAGIC = 0xfd2fb528;
const MAX_BLOCK = 128 << 10;
const frames = new Map<number, Uint8Array>();

/**
 * A Zstandard frame of `data`: single segment, 4-byte content size, blocks of at most 128 KiB
 * (the format's limit), RLE where a block repeats one byte, else raw; no checksum.
 */
export function encodeZstdRle(data: Uint8Array): Uint8Array {
  const n = data.length;
  const blocks = Math.max(1, Math.ceil(n / MAX_BLOCK));
  const parts: { size: number; rle: boolean; at: number }[] = [];
  let bytes = 9;
  for (let i = 0; i < blocks; i++) {
    const at = i * MAX_BLOCK;
    const size = Math.min(n - at, MAX_BLOCK);
    const first = data[at] ?? 0;
    let rle = true;
    for (let k = at + 1; k < at + size && rle; k++) rle = data[k] === first;
    parts.push({ size, rle, at });
    bytes += 3 + (rle ? 1 : size);
  }
  const f = new Uint8Array(bytes);
  const v = new DataView(f.buffer);
  v.setUint32(0, MAGIC, true);
  f[4] = (2 << 6) | (1 << 5); // Frame_Content_Size 4 bytes, Single_Segment
  v.setUint32(5, n, true);
  let p = 9;
  parts.forEach((b, i) => {
    const header = (b.size << 3) | ((b.rle ? 1 : 0) << 1) | (i === parts.length - 1 ? 1 : 0);
    f[p] = header & 0xff;
    f[p + 1] = (header >> 8) & 0xff;
    f[p + 2] = (header >> 16) & 0xff;
    p += 3;
    if (b.rle) f[p++] = data[b.at] ?? 0;
    else {
      f.set(data.subarray(b.at, b.at + b.size), p);
      p += b.size;
    }
  });
  return f;
}

/** The frame of `n` zero bytes (13 bytes per 128 KiB), cached by size (batch sizes repeat). */
export function zeroFrame(n: number): Uint8Array {
  let f = frames.get(n);
  if (!f) {
    f = encodeZstdRle(new Uint8Array(n));
    if (frames.size < 64) frames.set(n, f);
  }
  return f;
}

/** Decode a Zstandard frame of raw and RLE blocks (what our writers produce). */
export function decodeZstdRle(src: Uint8Array): Uint8Array {
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (src.length < 6 || v.getUint32(0, true) !== MAGIC) throw new Error('not a Zstandard frame');
  const fhd = src[4]!;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const checksum = (fhd >> 2) & 1;
  if (fhd & 3) throw new Error('Zstandard frame with a dictionary');
  let p = 5 + (single ? 0 : 1);
  const fcsBytes = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
  let size = -1;
  if (fcsBytes === 1) size = src[p]!;
  else if (fcsBytes === 2) size = v.getUint16(p, true) + 256;
  else if (fcsBytes === 4) size = v.getUint32(p, true);
  else if (fcsBytes === 8) size = Number(v.getBigUint64(p, true));
  p += fcsBytes;
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    if (p + 3 > src.length) throw new Error('Zstandard frame cut short');
    const h = src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16);
    p += 3;
    const type = (h >> 1) & 3;
    const n = h >>> 3;
    if (type === 0) {
      if (p + n > src.length) throw new Error('Zstandard frame cut short');
      parts.push(src.subarray(p, p + n));
      p += n;
    } else if (type === 1) {
      parts.push(new Uint8Array(n).fill(src[p]!));
      p += 1;
    } else {
      throw new Error('compressed Zstandard block: not a stream written by retis-capture');
    }
    total += n;
    if (h & 1) break;
  }
  if (checksum) p += 4;
  if (size >= 0 && size !== total) throw new Error(`Zstandard frame of ${total} bytes, header says ${size}`);
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let o = 0;
  for (const x of parts) {
    out.set(x, o);
    o += x.length;
  }
  return out;
}

/** Let apache-arrow read (and write: zero-filled buffers only) ZSTD-compressed batches. */
export function registerZstdRle(): void {
  if (compressionRegistry.get(CompressionType.ZSTD)) return;
  compressionRegistry.set(CompressionType.ZSTD, {
    // Raw blocks are larger than their input: the writer then stores the buffer uncompressed.
    encode: encodeZstdRle,
    decode: decodeZstdRle,
  });
}
