/**
 * Bob Jenkins' lookup3 hash as the Linux kernel implements it (include/linux/jhash.h),
 * which is also what Retis's OVS collector compiles into BPF
 * (retis/src/collect/collector/ovs/bpf/include/jhash.h).
 *
 * Retis derives an OVS upcall's `queue_id` from it: jhash(first 64 bytes of the packet,
 * zero-padded, length 64, initval 0), computed both in the kernel (kretprobe
 * queue_userspace_packet) and on the packet ovs-vswitchd receives (usdt recv_upcall), so
 * the synthetic generator must compute the very same value to produce files whose
 * kernel and userspace events correlate.
 *
 * All arithmetic is on uint32 via `| 0`/`>>> 0` and Math.imul-free add/sub (sums of two
 * uint32 fit in a double exactly, `| 0` wraps them). Words are read little-endian, as
 * `__get_unaligned_cpu32` does on x86_64.
 */

/** The kernel's JHASH_INITVAL, "an arbitrary initial parameter". */
export const JHASH_INITVAL = 0xdeadbeef;

/** Number of leading packet bytes Retis hashes (PACKET_HASH_SIZE in ovs_common.h). */
export const PACKET_HASH_SIZE = 64;

function rol32(w: number, s: number): number {
  return (w << s) | (w >>> (32 - s));
}

function le32(k: Uint8Array, i: number): number {
  return k[i] | (k[i + 1] << 8) | (k[i + 2] << 16) | (k[i + 3] << 24);
}

/**
 * jhash(key, length, initval) of include/linux/jhash.h. `length` bytes of `key` are
 * hashed (key must hold at least that many). Returns an unsigned 32-bit integer.
 */
export function jhash(key: Uint8Array, length: number = key.length, initval = 0): number {
  if (length > key.length) throw new RangeError(`jhash: length ${length} > key length ${key.length}`);
  let a = (JHASH_INITVAL + length + initval) | 0;
  let b = a;
  let c = a;
  let k = 0;
  let len = length;

  // All but the last block: affect some 32 bits of (a,b,c).
  while (len > 12) {
    a = (a + le32(key, k)) | 0;
    b = (b + le32(key, k + 4)) | 0;
    c = (c + le32(key, k + 8)) | 0;
    // __jhash_mix
    a = (a - c) | 0; a ^= rol32(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rol32(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rol32(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rol32(b, 4); b = (b + a) | 0;
    len -= 12;
    k += 12;
  }

  // Last block: affect all 32 bits of (c). Mirrors the kernel's fallthrough switch.
  if (len === 0) return c >>> 0;
  if (len >= 12) c = (c + (key[k + 11] << 24)) | 0;
  if (len >= 11) c = (c + (key[k + 10] << 16)) | 0;
  if (len >= 10) c = (c + (key[k + 9] << 8)) | 0;
  if (len >= 9) c = (c + key[k + 8]) | 0;
  if (len >= 8) b = (b + (key[k + 7] << 24)) | 0;
  if (len >= 7) b = (b + (key[k + 6] << 16)) | 0;
  if (len >= 6) b = (b + (key[k + 5] << 8)) | 0;
  if (len >= 5) b = (b + key[k + 4]) | 0;
  if (len >= 4) a = (a + (key[k + 3] << 24)) | 0;
  if (len >= 3) a = (a + (key[k + 2] << 16)) | 0;
  if (len >= 2) a = (a + (key[k + 1] << 8)) | 0;
  a = (a + key[k]) | 0;
  // __jhash_final
  c ^= b; c = (c - rol32(b, 14)) | 0;
  a ^= c; a = (a - rol32(c, 11)) | 0;
  b ^= a; b = (b - rol32(a, 25)) | 0;
  c ^= b; c = (c - rol32(b, 16)) | 0;
  a ^= c; a = (a - rol32(c, 4)) | 0;
  b ^= a; b = (b - rol32(a, 14)) | 0;
  c ^= b; c = (c - rol32(b, 24)) | 0;
  return c >>> 0;
}

// Reused scratch buffer: queue ids are computed once per upcall, so a per-call
// allocation would be wasted work on the generator's hot path.
const scratch = new Uint8Array(PACKET_HASH_SIZE);

/**
 * Retis's OVS queue_id of a packet (bytes from the Ethernet header on): its first 64
 * bytes, zero-padded when shorter, hashed with jhash(..., 64, 0) — hash_packet() in
 * retis/src/collect/collector/ovs/bpf/include/ovs_common.h.
 */
export function ovsQueueId(frame: Uint8Array): number {
  const n = Math.min(frame.length, PACKET_HASH_SIZE);
  scratch.fill(0);
  scratch.set(frame.subarray(0, n));
  return jhash(scratch, PACKET_HASH_SIZE, 0);
}
