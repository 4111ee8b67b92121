/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet (-f) and metadata (-m) filters: placeholders for code generated in user space.
 *
 * Each filter is a __noinline subprogram whose body is a placeholder region: `call MAGIC` then
 * RETIS_FILTER_ROOM - 1 nops (`goto +0`). User space (bpf/filters/) translates the filter into at
 * most RETIS_FILTER_ROOM eBPF instructions, and the addon writes them over the region right before
 * the program is loaded (libbpf prog_prepare_load_fn: the instructions are final there, subprograms
 * appended and CO-RE relocated). The region keeps its length, so no jump or BTF line info around
 * it moves. Generated code starts at the region's start and leaves with r0 = verdict through a
 * branch the verifier knows is always taken to the end of the region, so the leftover nops are
 * dead code it deletes in one piece (privileged loads): they cost nothing at run time. A probe
 * without a filter never calls these (cfg_filter_* are 0: dead code too), so unpatched
 * placeholders never run.
 *
 * Register contract of the generated code (keep in sync with bpf/filters/layout.ts):
 *   packet filters: r1 = struct retis_filter_buf *, r2 = bytes valid in buf->data (from the
 *     filter's offset 0), r3 = packet length (cBPF `len`); r1-r3 are read only; r4-r9 scratch.
 *   meta filter: r1 = struct retis_filter_buf *, r2 = the skb's address; r0-r9 free (helpers).
 *
 * The L3 variant sees the packet from the network header at buf->data + RETIS_FILTER_L3_OFF; the
 * bytes before it hold a fake Ethernet header (zero MACs, skb->protocol), so a filter that only
 * compiles for Ethernet can run there too.
 */
#ifndef __RETIS_FILTER_BPF_H
#define __RETIS_FILTER_BPF_H

#define RETIS_FILTER_L2_MAGIC 0x7e7f0002
#define RETIS_FILTER_L3_MAGIC 0x7e7f0003
#define RETIS_FILTER_META_MAGIC 0x7e7f0004
#define RETIS_FILTER_ROOM 2048  /* instructions per placeholder */
#define RETIS_FILTER_DATA 256   /* packet bytes a packet filter sees (from L2, or from L3) */
#define RETIS_FILTER_L3_OFF 14  /* where L3 packets start in buf->data (after a fake Ethernet header) */

struct retis_filter_buf {
	__u8 data[RETIS_FILTER_L3_OFF + RETIS_FILTER_DATA + 2]; /* 272 */
	__u32 mem[16];                                          /* cBPF scratch memory M[] */
	__u8 meta[128];                                         /* meta filter: values read from the kernel */
};

_Static_assert(__builtin_offsetof(struct retis_filter_buf, mem) == 272, "bpf/filters/layout.ts: MEM_OFF");
_Static_assert(__builtin_offsetof(struct retis_filter_buf, meta) == 336, "bpf/filters/layout.ts: META_OFF");
_Static_assert(sizeof(struct retis_filter_buf) == 464, "bpf/filters/layout.ts: BUF_SIZE");

/* Per-CPU scratch: packet bytes are copied here once per untracked packet (one helper call), and
 * the generated code reads them with plain bounds-checked loads. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct retis_filter_buf);
} retis_filter_scratch SEC(".maps");

/* Set by user space with the filters (see capture/probes.ts). */
const volatile __u8 cfg_filter_packet = 0; /* 1: run the packet filter on untracked packets */
const volatile __u8 cfg_filter_meta = 0;   /* 1: run the meta filter on untracked packets */

#define __RETIS_S(v) #v
#define RETIS_S(v) __RETIS_S(v)
#define RETIS_FILTER_REGION(magic)                                                                 \
	"call " RETIS_S(magic) ";"                                                                 \
	".rept " RETIS_S(RETIS_FILTER_ROOM) " - 1;"                                               \
	"goto +0;"                                                                                 \
	".endr;"

/*
 * The three placeholders. Inputs are pinned to r1-r3 and declared modified ("+r"), r4-r9
 * clobbered, so clang keeps nothing it needs there across the region.
 */
static __noinline __u64 retis_filter_l2(struct retis_filter_buf *buf, __u64 caplen, __u64 wirelen)
{
	register __u64 r0 asm("r0");
	register void *r1 asm("r1") = buf;
	register __u64 r2 asm("r2") = caplen;
	register __u64 r3 asm("r3") = wirelen;

	asm volatile(RETIS_FILTER_REGION(RETIS_FILTER_L2_MAGIC)
		     : "=r"(r0), "+r"(r1), "+r"(r2), "+r"(r3)
		     :
		     : "r4", "r5", "r6", "r7", "r8", "r9", "memory");
	return r0;
}

static __noinline __u64 retis_filter_l3(struct retis_filter_buf *buf, __u64 caplen, __u64 wirelen)
{
	register __u64 r0 asm("r0");
	register void *r1 asm("r1") = buf;
	register __u64 r2 asm("r2") = caplen;
	register __u64 r3 asm("r3") = wirelen;

	asm volatile(RETIS_FILTER_REGION(RETIS_FILTER_L3_MAGIC)
		     : "=r"(r0), "+r"(r1), "+r"(r2), "+r"(r3)
		     :
		     : "r4", "r5", "r6", "r7", "r8", "r9", "memory");
	return r0;
}

static __noinline __u64 retis_filter_meta_prog(struct retis_filter_buf *buf, __u64 skb)
{
	register __u64 r0 asm("r0");
	register void *r1 asm("r1") = buf;
	register __u64 r2 asm("r2") = skb;

	asm volatile(RETIS_FILTER_REGION(RETIS_FILTER_META_MAGIC)
		     : "=r"(r0), "+r"(r1), "+r"(r2)
		     :
		     : "r3", "r4", "r5", "r6", "r7", "r8", "r9", "memory");
	return r0;
}

#ifdef RETIS_FILTER_SKB
/*
 * The packet filter on an skb, on the bytes the capture copies (retis/skb.bpf.h, include it
 * first): the L2 program from a valid MAC header, else the L3 program from the network header.
 * Linear data only, at most RETIS_FILTER_DATA bytes: a load past them is a non-match, as a cBPF
 * load past the captured bytes.
 */
static __always_inline bool retis_filter_packet(struct retis_filter_buf *buf, struct sk_buff *skb, bool direct)
{
	struct retis_skb_geo g;
	__u32 to;
	long n;

	if (!retis_skb_geometry(skb, direct, &g))
		return false;
	n = g.avail;
	if (n < 0)
		n = 0;
	if (n > RETIS_FILTER_DATA)
		n = RETIS_FILTER_DATA;
	to = g.l3 ? RETIS_FILTER_L3_OFF : 0;
	if (bpf_probe_read_kernel(buf->data + to, n, g.start))
		return false;
	if (!g.l3)
		return retis_filter_l2(buf, n, g.wire) != 0;
	__builtin_memset(buf->data, 0, 12);
	buf->data[12] = g.proto & 0xff; /* __be16 as stored */
	buf->data[13] = g.proto >> 8;
	return retis_filter_l3(buf, n, g.wire) != 0;
}

/* Whether an skb not tracked yet is one to follow: every configured filter matches it. */
static __always_inline bool retis_filter_match(struct sk_buff *skb, bool direct)
{
	struct retis_filter_buf *buf;
	__u32 key = 0;

	if (!cfg_filter_packet && !cfg_filter_meta)
		return true;
	if (!skb)
		return false;
	buf = bpf_map_lookup_elem(&retis_filter_scratch, &key);
	if (!buf)
		return false;
	if (cfg_filter_packet && !retis_filter_packet(buf, skb, direct))
		return false;
	if (cfg_filter_meta) {
		/* The address as a number: the generated code only hands it to bpf_probe_read_kernel. */
		if (!retis_filter_meta_prog(buf, scalar_of(skb)))
			return false;
	}
	return true;
}
#endif /* RETIS_FILTER_SKB */

#endif /* __RETIS_FILTER_BPF_H */
