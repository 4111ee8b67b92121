/**
 * The Zstandard frames of all-null columns (analyze/model/arrow-zeros.ts): RLE and raw blocks
 * round-trip, the format's 128 KiB block limit holds, the real zstd tool reads them, and what
 * the reader cannot decode (compressed blocks) is refused, not misread.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { decodeZstdRle, encodeZstdRle, zeroFrame } from '../../analyze/model/arrow-zeros.ts';

describe('ZSTD RLE frames of all-null Arrow buffers', () => {
  it('round-trips zero, uniform and mixed buffers across block boundaries', () => {
    const mixed = new Uint8Array(300_000);
    mixed.fill(7, 140_000, 150_000);
    for (const a of [new Uint8Array(1), new Uint8Array(131_072), new Uint8Array(131_073).fill(255), mixed]) {
      expect(Buffer.from(decodeZstdRle(encodeZstdRle(a))).equals(Buffer.from(a))).toBe(true);
    }
    // 16384 rows of u64 nulls: 128 KiB in 13 bytes.
    expect(zeroFrame(131_072).length).toBe(13);
    expect(Buffer.from(decodeZstdRle(zeroFrame(300_001))).equals(Buffer.alloc(300_001))).toBe(true);
  });

  it('the zstd tool decodes them', () => {
    const a = new Uint8Array(200_000);
    a.fill(3, 0, 10);
    const z = spawnSync('zstd', ['-dc'], { input: encodeZstdRle(a) });
    if (z.error) return; // zstd not installed: nothing to compare with
    expect(z.status).toBe(0);
    expect(Buffer.from(z.stdout).equals(Buffer.from(a))).toBe(true);
  });

  it('refuses compressed blocks and cut frames', () => {
    const f = Uint8Array.from(zeroFrame(64));
    f[9] = (64 << 3) | (2 << 1) | 1; // block type 2: compressed
    expect(() => decodeZstdRle(f)).toThrow(/compressed Zstandard block/);
    expect(() => decodeZstdRle(zeroFrame(64).subarray(0, 10))).toThrow(/cut short/);
    expect(() => decodeZstdRle(new Uint8Array(16))).toThrow(/not a Zstandard frame/);
  });
});
