/**
 * jhash must be bit-exact with the kernel's include/linux/jhash.h (and Retis's BPF copy
 * of it), otherwise synthetic OVS queue_ids would not be what Retis computes.
 * References: Bob Jenkins' published lookup3 vectors (the kernel's jhash is lookup3's
 * hashlittle on little-endian machines) and, when gcc is available, the kernel
 * algorithm compiled from C on random inputs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jhash, ovsQueueId, PACKET_HASH_SIZE } from '../../bench/gen/jhash.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('jhash (lookup3 / include/linux/jhash.h)', () => {
  it('matches the published lookup3 test vectors', () => {
    // lookup3.c driver5(): hashlittle("", 0, 0) = 0xdeadbeef,
    // hashlittle("Four score and seven years ago", 30, 0) = 0x17770551, initval 1 = 0xcd628161.
    expect(jhash(new Uint8Array(0), 0, 0)).toBe(0xdeadbeef);
    const four = enc('Four score and seven years ago');
    expect(jhash(four, 30, 0)).toBe(0x17770551);
    expect(jhash(four, 30, 1)).toBe(0xcd628161);
  });

  it('matches values computed once from the kernel algorithm in C', () => {
    // bytes[i] = i * 7 + 3, hashed with lengths covering every tail case of the switch.
    const buf = Uint8Array.from({ length: 256 }, (_, i) => (i * 7 + 3) & 0xff);
    const expected: [number, number, number][] = [
      [0, 3735928559, 4041348455],
      [1, 3143674318, 983305055],
      [2, 3112032107, 4291773416],
      [3, 343598879, 1028885097],
      [4, 3714093036, 49772975],
      [5, 378850957, 1525659288],
      [8, 2502025430, 270809249],
      [11, 1541649921, 3013734322],
      [12, 3916110488, 3071369130],
      [13, 3541529494, 2066650102],
      [24, 3024662443, 3493041142],
      [25, 323191127, 1220691429],
      [63, 2010379403, 1228506036],
      [64, 2928831220, 481477270],
      [100, 4291423662, 168303404],
    ];
    for (const [len, h0, h1] of expected) {
      expect(jhash(buf, len, 0), `len ${len}`).toBe(h0);
      expect(jhash(buf, len, 0x12345678), `len ${len} initval`).toBe(h1);
    }
    expect(jhash(new Uint8Array(64), 64, 0)).toBe(3498479695);
  });

  const hasGcc = spawnSync('gcc', ['--version']).status === 0;
  it.skipIf(!hasGcc)('agrees with the kernel jhash compiled by gcc on random inputs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'jhash-'));
    try {
      // The kernel's code, verbatim modulo includes (u32 arithmetic, unaligned LE reads).
      const src = String.raw`
#include <stdio.h>
#include <stdint.h>
#include <string.h>
typedef uint32_t u32; typedef uint8_t u8;
static inline u32 rol32(u32 word, unsigned int shift) { return (word << (shift & 31)) | (word >> ((-shift) & 31)); }
#define __jhash_mix(a, b, c) { a -= c; a ^= rol32(c, 4); c += b; b -= a; b ^= rol32(a, 6); a += c; \
  c -= b; c ^= rol32(b, 8); b += a; a -= c; a ^= rol32(c, 16); c += b; b -= a; b ^= rol32(a, 19); a += c; \
  c -= b; c ^= rol32(b, 4); b += a; }
#define __jhash_final(a, b, c) { c ^= b; c -= rol32(b, 14); a ^= c; a -= rol32(c, 11); b ^= a; b -= rol32(a, 25); \
  c ^= b; c -= rol32(b, 16); a ^= c; a -= rol32(c, 4); b ^= a; b -= rol32(a, 14); c ^= b; c -= rol32(b, 24); }
#define JHASH_INITVAL 0xdeadbeef
static u32 get_unaligned_cpu32(const u8 *p) { u32 x; memcpy(&x, p, 4); return x; }
static u32 jhash(const void *key, u32 length, u32 initval) {
  u32 a, b, c; const u8 *k = key;
  a = b = c = JHASH_INITVAL + length + initval;
  while (length > 12) { a += get_unaligned_cpu32(k); b += get_unaligned_cpu32(k + 4); c += get_unaligned_cpu32(k + 8);
    __jhash_mix(a, b, c); length -= 12; k += 12; }
  switch (length) {
  case 12: c += (u32)k[11]<<24; /* fallthrough */ case 11: c += (u32)k[10]<<16; /* fallthrough */
  case 10: c += (u32)k[9]<<8; /* fallthrough */ case 9: c += k[8]; /* fallthrough */
  case 8: b += (u32)k[7]<<24; /* fallthrough */ case 7: b += (u32)k[6]<<16; /* fallthrough */
  case 6: b += (u32)k[5]<<8; /* fallthrough */ case 5: b += k[4]; /* fallthrough */
  case 4: a += (u32)k[3]<<24; /* fallthrough */ case 3: a += (u32)k[2]<<16; /* fallthrough */
  case 2: a += (u32)k[1]<<8; /* fallthrough */ case 1: a += k[0]; __jhash_final(a, b, c); break;
  case 0: break; }
  return c;
}
int main(void) {
  /* stdin lines: "<initval> <hex bytes>" ; stdout: hash per line */
  char line[4096]; u8 buf[2048];
  while (fgets(line, sizeof line, stdin)) {
    unsigned long iv; char hex[4000] = ""; int n = 0;
    if (sscanf(line, "%lu %3999s", &iv, hex) < 1) continue;
    if (strcmp(hex, "-") == 0) hex[0] = 0;
    for (char *p = hex; p[0] && p[1]; p += 2) { unsigned v; sscanf(p, "%2x", &v); buf[n++] = (u8)v; }
    printf("%u\n", jhash(buf, n, (u32)iv));
  }
  return 0;
}`;
      writeFileSync(join(dir, 'jhash.c'), src);
      execFileSync('gcc', ['-O2', '-o', join(dir, 'jhash'), join(dir, 'jhash.c')]);

      // Deterministic pseudo-random cases (xorshift32), all lengths 0..80 plus packet-sized.
      let x = 0x1234567;
      const next = (): number => {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return x >>> 0;
      };
      const cases: { iv: number; bytes: Uint8Array }[] = [];
      for (let len = 0; len <= 80; len++) {
        for (const iv of [0, next()]) cases.push({ iv, bytes: Uint8Array.from({ length: len }, () => next() & 0xff) });
      }
      for (let i = 0; i < 50; i++) cases.push({ iv: 0, bytes: Uint8Array.from({ length: PACKET_HASH_SIZE }, () => next() & 0xff) });
      const input = cases.map((c) => `${c.iv} ${c.bytes.length ? Buffer.from(c.bytes).toString('hex') : '-'}`).join('\n') + '\n';
      const out = execFileSync(join(dir, 'jhash'), { input }).toString().trim().split('\n').map(Number);
      expect(out).toHaveLength(cases.length);
      cases.forEach((c, i) => expect(jhash(c.bytes, c.bytes.length, c.iv), `case ${i}`).toBe(out[i]));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ovsQueueId hashes the first 64 bytes, zero-padded, with initval 0 (Retis hash_packet)', () => {
    const long = Uint8Array.from({ length: 150 }, (_, i) => (i * 31) & 0xff);
    expect(ovsQueueId(long)).toBe(jhash(long.subarray(0, 64), 64, 0));
    const short = Uint8Array.from({ length: 42 }, (_, i) => i + 1);
    const padded = new Uint8Array(64);
    padded.set(short);
    expect(ovsQueueId(short)).toBe(jhash(padded, 64, 0));
    // Bytes past 64 do not matter.
    const other = long.slice();
    other[100] ^= 0xff;
    expect(ovsQueueId(other)).toBe(ovsQueueId(long));
  });
});
