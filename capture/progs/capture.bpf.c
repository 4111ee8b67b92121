// SPDX-License-Identifier: GPL-2.0
/*
 * retis-capture's probes: the skb, skb-drop, skb-tracking, dev and ns collectors of Retis in one
 * program per attach type. User space (capture/probes.ts) opens one instance of this object per
 * probe, enables only the program of the probe's attach type and sets the read-only `cfg_*`
 * constants below: where the skb, device and drop reason are among the probe's arguments, what to
 * collect, how the probe takes part in skb tracking. The verifier sees those constants as known
 * values, so branches a probe does not need are pruned and cost nothing.
 *
 * Every event is written in place in a per-CPU staging buffer (room of one size per probe:
 * header + snap length + stack room, see capture.layout.ts and capture_ex()), and staged records
 * go to the shared ring buffer in batches (stage_flush()), which never wake the reader (it drains
 * on a short timer). Records that find the ring full are counted lost per probe and CPU
 * (retis_lost), and attempts in capture_hits, so user space can prove that
 * written + lost == attempted.
 */
#include "retis/common.bpf.h"
#include "retis/skb.bpf.h"
#include <bpf/usdt.bpf.h>
#include "capture.layout.h"
#include "ct.bpf.h"
#include "nft.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define MAX_SNAPLEN 4096
#define MAX_STACK_DEPTH 64
#define ETH_HLEN 14
/* Retis's user-space GC drops tracking entries not seen for 60 s; we treat them as gone on lookup. */
#define TRACKING_STALE_NS (60ULL * 1000000000ULL)

/* Per-probe configuration (set before load, constants for the verifier). */
const volatile __s32 cfg_skb_arg = -1;    /* index of the struct sk_buff * argument */
const volatile __s32 cfg_dev_arg = -1;    /* index of a struct net_device * argument */
const volatile __s32 cfg_reason_arg = -1; /* index of the enum skb_drop_reason argument */
const volatile __s32 cfg_stolen_arg = -1; /* kfree_skb_partial: index of bool head_stolen */
const volatile __s32 cfg_skb_off = -1;    /* classic tracepoints: offsets in the trace record */
const volatile __s32 cfg_dev_off = -1;
const volatile __s32 cfg_reason_off = -1;
const volatile __u32 cfg_collect = 0;     /* enum retis_capture_collect bits */
const volatile __u32 cfg_tracking = 0;    /* enum retis_capture_tracking bits */
const volatile __u32 cfg_snaplen = 255;
/* Some probe indexes tracking entries by skb address (inv_head): look there too. */
const volatile __u8 cfg_skb_key = 0;
/* Benchmark knob (retis-capture --bench-repeat): emit each event this many times. */
const volatile __u32 cfg_repeat = 1;
/* BTF-typed programs may load packet bytes through skb->head (bpf/features.ts directPacketLoads). */
const volatile __u8 cfg_direct_pkt = 0;
/*
 * Variants (capture.variants.ts): bpf/build.mjs also builds this source with some of the constants
 * above fixed at compile time (-DRETIS_FIXED_<name>=<value>, for the CFG_* macros below: fixing
 * the others gained nothing measurable), and user space loads a variant for the probes whose
 * constants equal its fixed ones (bpf/probe-set.ts). The verifier prunes what the constants decide
 * either way, but leaves a load of the constant at each use and the arithmetic on it; known to
 * clang, they fold into the code around them (default probes: 1909 -> 1486 instructions, +0.01
 * on the loopback flood's overhead ratio, capture/README.md).
 */
#ifdef RETIS_FIXED_cfg_collect
#define CFG_COLLECT ((__u32)(RETIS_FIXED_cfg_collect))
#else
#define CFG_COLLECT cfg_collect
#endif
#ifdef RETIS_FIXED_cfg_tracking
#define CFG_TRACKING ((__u32)(RETIS_FIXED_cfg_tracking))
#else
#define CFG_TRACKING cfg_tracking
#endif
#ifdef RETIS_FIXED_cfg_snaplen
#define CFG_SNAPLEN ((__u32)(RETIS_FIXED_cfg_snaplen))
#else
#define CFG_SNAPLEN cfg_snaplen
#endif

struct tracking_info {
	__u64 timestamp; /* first seen */
	__u64 last_seen;
	__u64 orig_head;
};

/*
 * The tracking table: Retis keys a hash map by skb->head (or, transiently, by skb address after
 * a head change). Here the same keys index a 2-way set-associative table in an array map: the
 * verifier inlines array lookups, and no bucket lock or element allocation is taken per packet
 * (measured: a hash map insert cost ~350 ns per new packet on the test VM, this ~30 ns). A new
 * packet takes the free or else the least recently seen way of its set, so stale entries are
 * reclaimed as a side effect (Retis's user-space GC); a live packet is only evicted when two
 * newer ones land in its set.
 * Writers on two CPUs racing for one set can lose an update (a packet then gets a new id):
 * rare, and the price of taking no lock.
 */
#define TRACK_SETS (1 << 15) /* x 2 ways x 32 bytes = 2 MiB */

struct track_slot {
	__u64 key; /* skb->head or skb address; 0: free */
	struct tracking_info info;
};

struct track_set {
	struct track_slot way[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACK_SETS);
	__type(key, __u32);
	__type(value, struct track_set);
} tracking_map SEC(".maps");

static __always_inline struct track_set *track_set_of(__u64 key)
{
	/* Fibonacci hashing: heads are 64-byte aligned slab addresses, the high product bits mix them.
	 * 64 bits wide: the key may be typed as a pointer (see skb_head()), and the verifier refuses
	 * a 4-byte stack store of one; the map reads the low 4 bytes, the index. */
	__u64 idx = ((key * 0x9E3779B97F4A7C15ULL) >> 49) & (TRACK_SETS - 1);

	return bpf_map_lookup_elem(&tracking_map, &idx);
}

static __always_inline struct track_slot *track_find(struct track_set *set, __u64 key)
{
	if (set->way[0].key == key)
		return &set->way[0];
	if (set->way[1].key == key)
		return &set->way[1];
	return NULL;
}

static __always_inline void track_put(struct track_set *set, __u64 key, struct tracking_info *info)
{
	struct track_slot *s = &set->way[0];

	/* Replace: the same key, else a free way, else the least recently seen. */
	if (set->way[0].key == key || set->way[1].key == key)
		s = set->way[0].key == key ? &set->way[0] : &set->way[1];
	else if (set->way[0].key == 0)
		s = &set->way[0];
	else if (set->way[1].key == 0)
		s = &set->way[1];
	else
		s = set->way[0].info.last_seen <= set->way[1].info.last_seen ? &set->way[0] : &set->way[1];
	s->key = key;
	s->info = *info;
}

static __always_inline void track_del(__u64 key)
{
	struct track_set *set = track_set_of(key);
	struct track_slot *s = set ? track_find(set, key) : NULL;

	if (s)
		s->key = 0;
}

/* Events attempted per probe and CPU: written + lost must add up to this. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RETIS_MAX_PROBES);
	__type(key, __u32);
	__type(value, __u64);
} capture_hits SEC(".maps");

/* Kernels before 6.1 had a vlan_present bitfield instead of vlan_all. */
struct sk_buff___old {
	__u8 vlan_present : 1;
} __attribute__((preserve_access_index));

#define COLLECT(bit) ((CFG_COLLECT & RETIS_CAPTURE_COLLECT_##bit) != 0)
#define TRACKING(bit) ((CFG_TRACKING & RETIS_CAPTURE_TRACKING_##bit) != 0)

static __always_inline void count_hits(__u32 n)
{
	__u32 key = retis_probe_id;
	__u64 *cnt = bpf_map_lookup_elem(&capture_hits, &key);

	if (cnt)
		*cnt += n;
}

/* -f/-m: generated filters (bpf/filters/), run on packets not tracked yet. */
#define RETIS_FILTER_SKB
#include "retis/filter.bpf.h"

/* The ovs collector's state and helpers (capture/progs/ovs.bpf.h). */
#include "ovs.bpf.h"

/*
 * skb tracking, Retis's algorithm (core/tracking/bpf/include/skb_tracking.h): an skb is known by
 * its data head; its id is (first-seen timestamp, original head). Clones share the head, hence
 * the id. A head changed by pskb_expand_head is followed through the skb address (inv_head
 * probes). Entries go at free (free probes) and are considered stale after 60 s.
 */
static __always_inline bool track(struct sk_buff *skb, __u64 head, __u64 now, struct tracking_info *out,
				  bool direct, bool *filtered)
{
	__u64 addr = cfg_skb_key || TRACKING(INV_HEAD) ? scalar_of(skb) : 0;
	struct track_set *set = track_set_of(head);
	struct track_slot *ti;

	if (!set)
		return false;
	ti = track_find(set, head);
	if (!ti && cfg_skb_key) {
		struct track_set *aset = track_set_of(addr);
		struct track_slot *moved = aset ? track_find(aset, addr) : NULL;

		if (moved) {
			/* The head changed: index the entry by the new head from now on. */
			struct tracking_info info = moved->info;

			moved->key = 0;
			track_put(set, head, &info);
			ti = track_find(set, head);
		}
	}
	if (ti && now - ti->info.last_seen > TRACKING_STALE_NS)
		ti = NULL;
	if (!ti) {
		/* Filters decide only for packets not tracked yet: a followed packet stays followed
		 * through NAT, encapsulation, or a freed head. */
		if (!retis_filter_match(skb, direct)) {
			*filtered = true;
			return false;
		}
		if (TRACKING(NO_TRACKING))
			return false;
		out->timestamp = now;
		out->last_seen = now;
		out->orig_head = head;
		/* First seen when it is freed: no need to remember it. */
		if (!TRACKING(FREE) && !TRACKING(FREE_HEAD))
			track_put(set, head, out);
	} else {
		ti->info.last_seen = now;
		*out = ti->info;
	}
	if (TRACKING(INV_HEAD)) {
		struct track_set *aset = track_set_of(addr);

		if (aset)
			track_put(aset, addr, out);
	}
	return true;
}

/*
 * skb->head, the tracking key. BTF-typed programs load it directly instead of through
 * bpf_probe_read_kernel, which cost ~33 ns per call here (copy_from_kernel_nofault; bpf_stats on
 * the loopback flood with 10 extra reads per event), and every probe hit reads the head once.
 * The field points to bytes, not to a struct: 6.1 types the load as a scalar, recent kernels
 * (6.18) as untrusted read-only memory, a pointer whose arithmetic is unrestricted and which
 * privileged programs (CAP_PERFMON, required anyway) may compare and store like a number. The
 * one thing it refuses is a partial spill, hence the 64-bit map index in track_set_of().
 */
static __always_inline __u64 skb_head(struct sk_buff *skb, bool direct)
{
	return (__u64)RD(direct, skb, head);
}

/* After the event: forget skbs whose head is being freed. */
static __always_inline void untrack(struct sk_buff *skb, __u64 head, bool direct, bool stolen)
{
	if (TRACKING(FREE)) {
		/* The last reference of the skb is gone. Its head goes with it unless a clone still
		 * holds it (cloned and dataref > 1): then the clone's own free will remove it. */
		bool gone = true;

		if (cfg_skb_key)
			track_del(scalar_of(skb));
		if (RD_BF(direct, skb, cloned)) {
			unsigned char *h = (unsigned char *)head;
			struct skb_shared_info *si = (struct skb_shared_info *)(h + RD(direct, skb, end));
			int dataref = BPF_CORE_READ(si, dataref.counter);

			gone = (dataref & 0xffff) <= 1;
		}
		if (gone)
			track_del(head);
	} else if (TRACKING(FREE_HEAD) || (TRACKING(PARTIAL_FREE) && stolen)) {
		track_del(head);
	}
}

/* The packet bytes to capture (Retis's process_packet, retis_skb_geometry()): from the MAC header
 * when it is valid, else from the network header behind a fake Ethernet header carrying
 * skb->protocol. Linear data only. Returns the bytes to capture (fake header included), 0 for none. */
struct pkt_geo {
	unsigned char *src; /* first byte to copy */
	__u32 len;          /* packet.len */
	__u16 proto;        /* fake Ethernet header's ethertype (__be16), 0: real L2 */
};

static __always_inline long packet_geometry(struct sk_buff *skb, bool direct, struct pkt_geo *g)
{
	struct retis_skb_geo s;
	long size;

	if (!retis_skb_geometry(skb, direct, &s) || s.linear <= 0)
		return 0;
	if (!s.l3) {
		size = s.avail < CFG_SNAPLEN ? s.avail : CFG_SNAPLEN;
		g->src = s.start;
		g->len = s.wire;
		g->proto = 0;
		return size > 0 ? size : 0;
	}
	/* Without skb->protocol we cannot tell what the bytes are (Retis also parses the IP version
	 * here; the Tx paths we probe have the protocol set). */
	if (!s.proto)
		return 0;
	size = s.avail < (long)CFG_SNAPLEN - ETH_HLEN ? s.avail : (long)CFG_SNAPLEN - ETH_HLEN;
	if (size <= 0)
		return 0;
	g->src = s.start;
	g->len = s.wire + ETH_HLEN;
	g->proto = s.proto;
	return size + ETH_HLEN;
}

/* Packet room: the snap length rounded up to 8 (a load-time constant for the verifier). */
#define PKT_ROOM (COLLECT(SKB) ? ((CFG_SNAPLEN + 7) & ~7U) : 0)

/* Packet bytes copied with plain loads at most (see copy_pkt()): the default snap length's. */
#define DIRECT_COPY_MAX 256

/*
 * The packet bytes of a record's data area `data` (8-aligned, `room` bytes): the `n` bytes at
 * `src`, stored at data + l2 (l2: the fake Ethernet header's room, 0 or ETH_HLEN, which the caller
 * fills afterwards).
 * Where the verifier types skb->head as untrusted read-only memory (cfg_direct_pkt, BTF-typed
 * programs: `direct`), the first DIRECT_COPY_MAX bytes are read with plain 8-byte loads, which the
 * JIT makes fault-safe like bpf_probe_read_kernel without its call (~20 ns per event of a
 * loopback flood, bpf_stats). They copy whole words of the data area from l2 bytes before the
 * packet (bytes the fake header then covers), so that every store stays within the room (the
 * snap length rounded up to 8), and the last word is masked: no byte past the packet reaches
 * the record. Longer snap lengths and other kernels or program types use the helper.
 * Unrolled: a loop the verifier walks word by word cost ~200 ms of start per probe.
 */
static __always_inline void copy_pkt(__u8 *data, __u32 room, const unsigned char *src, __u64 l2, __u64 n, bool direct)
{
	__u64 done = 0;

	if (direct && cfg_direct_pkt) {
		const __u64 *from = (const __u64 *)(src - l2);
		__u64 total = l2 + n, words;

		if (total > room)
			total = room;
		words = total / 8;
		bool whole = words < DIRECT_COPY_MAX / 8;

		/* The masked last word before the loop, not after it: fewer paths for the verifier
		 * to walk from the loop's exits (3k fewer instructions verified per default probe). */
		if (whole) {
			__u64 tail = total & 7;

			if (tail)
				((__u64 *)data)[words] = from[words] & ((1ULL << (tail * 8)) - 1);
		}
#pragma unroll
		for (int i = 0; i < DIRECT_COPY_MAX / 8; i++) {
			/* The room test is what the verifier can decide (clang turns the other into
			 * i == words, which leaves it every word up to DIRECT_COPY_MAX to check). */
			if ((i + 1) * 8 > room || i >= words)
				break;
			((__u64 *)data)[i] = from[i];
		}
		if (whole)
			return;
		done = DIRECT_COPY_MAX - l2;
	}
	if (n > done)
		bpf_probe_read_kernel(data + l2 + done, n - done, src + done);
}

/*
 * Copy the packet (`cap` bytes described by `g`) and, with --stack, the stack after the packet's
 * 8-aligned end, into a record's data area of PKT_ROOM + stack bytes. Returns the stack bytes.
 * Sizes are clamped to the room right before each copy, in the callee, where clang cannot reuse
 * a copy whose bounds the verifier never saw checked.
 */
static __noinline long copy_data(void *ctx, __u8 *data, long cap, struct pkt_geo *g, bool direct)
{
	__u32 room = PKT_ROOM;
	__u64 off;

	if (room > 0 && cap > 0) {
		/* Without a valid MAC header: a fake Ethernet header carrying skb->protocol first. */
		__u64 l2 = g->proto ? ETH_HLEN : 0;
		__u64 n = cap > l2 ? cap - l2 : 0;

		if (n > room - l2)
			n = room - l2;
		copy_pkt(data, room, g->src, l2, n, direct);
		if (l2) {
			__builtin_memset(data, 0, 12);
			data[12] = g->proto & 0xff; /* __be16 as stored: first byte is the high byte */
			data[13] = g->proto >> 8;
		}
	}
	if (!COLLECT(STACK))
		return 0;
	off = (cap + 7) & ~7;
	if (off > room)
		off = room;
	long n = bpf_get_stack(ctx, data + off, MAX_STACK_DEPTH * 8, 0);
	return n > 0 ? n : 0;
}

static __always_inline void skb_sections(struct retis_capture_event *e, struct sk_buff *skb, bool direct)
{
	if (COLLECT(SKB)) {
		bool present = false;

		if (bpf_core_field_exists(skb->vlan_all)) {
			struct sk_buff *s = skb;

			/* As for vlan_present below: kernels before 6.2 have no vlan_all, and clang
			 * hoisted its (poisoned) offset above the check in kprobe programs (6.1 guest). */
			barrier_var(s);
			present = RD(direct, s, vlan_all) != 0;
		} else {
			struct sk_buff___old *old = (void *)skb;

			if (bpf_core_field_exists(old->vlan_present)) {
				/* On kernels without the field its offset relocation is poisoned:
				 * barrier_var keeps clang from computing it before the check. */
				barrier_var(old);
				present = BPF_CORE_READ_BITFIELD_PROBED(old, vlan_present);
			}
		}
		if (present) {
			e->vlan_proto = RD(direct, skb, vlan_proto);
			e->vlan_tci = RD(direct, skb, vlan_tci);
			e->sections |= RETIS_CAPTURE_SECTION_VLAN;
		}
	}
	if (COLLECT(META)) {
		e->len = RD(direct, skb, len);
		e->data_len = RD(direct, skb, data_len);
		e->hash = RD(direct, skb, hash);
		e->ip_summed = RD_BF(direct, skb, ip_summed);
		e->csum = RD(direct, skb, csum);
		e->csum_level = RD_BF(direct, skb, csum_level);
		e->priority = RD(direct, skb, priority);
		e->sections |= RETIS_CAPTURE_SECTION_META;
	}
	if (COLLECT(DATAREF) || COLLECT(GSO)) {
		unsigned char *head = RD(direct, skb, head);
		struct skb_shared_info *si = (struct skb_shared_info *)(head + RD(direct, skb, end));

		if (COLLECT(DATAREF)) {
			e->nohdr = RD_BF(direct, skb, nohdr);
			e->cloned = RD_BF(direct, skb, cloned);
			e->fclone = RD_BF(direct, skb, fclone);
			e->users = RD(direct, skb, users.refs.counter);
			e->dataref = BPF_CORE_READ(si, dataref.counter);
			e->sections |= RETIS_CAPTURE_SECTION_DATAREF;
		}
		/* See skb_is_gso(). */
		if (COLLECT(GSO)) {
			__u16 gso_size = BPF_CORE_READ(si, gso_size);

			if (gso_size) {
				e->gso_flags = bpf_core_field_exists(si->flags) ? BPF_CORE_READ(si, flags) : 0;
				e->gso_frags = BPF_CORE_READ(si, nr_frags);
				e->gso_size = gso_size;
				e->gso_segs = BPF_CORE_READ(si, gso_segs);
				e->gso_type = BPF_CORE_READ(si, gso_type);
				e->sections |= RETIS_CAPTURE_SECTION_GSO;
			}
		}
	}
}

/* The ns section from a struct net: its inum and, on kernels that have one, its cookie. */
static __always_inline void netns_fields(struct retis_capture_event *e, struct net *net, bool direct)
{
	e->netns_inum = RD(direct, net, ns.inum);
	e->sections |= RETIS_CAPTURE_SECTION_NETNS;
	if (bpf_core_field_exists(net->net_cookie)) {
		e->netns_cookie = RD(direct, net, net_cookie);
		e->sections |= RETIS_CAPTURE_SECTION_NETNS_COOKIE;
	}
}

/*
 * netns from the skb's socket, for an skb without a device. A global function (verified once,
 * see ct_fill()): inline, this rare branch made the verifier carry the states of both ways
 * through the rest of the program, ~50 ms of each probe's load for ~900 instructions. Helper
 * reads: a global function gets the skb as a plain number.
 */
__noinline int sk_netns(struct retis_capture_event *e, __u64 skb_addr)
{
	struct sk_buff *skb = (struct sk_buff *)skb_addr;
	struct net *net;

	if (!e)
		return 0;
	net = BPF_CORE_READ(skb, sk, __sk_common.skc_net.net);
	if (!net)
		return 0;
	netns_fields(e, net, false);
	return 1;
}

/* dev: the skb's device when there is an skb (what matters is where the packet is), else the
 * device argument. netns: from that device, else from the skb's socket. */
static __always_inline void dev_ns(struct retis_capture_event *e, struct sk_buff *skb, struct net_device *dev, bool direct)
{
	struct net *net = NULL;

	if (skb)
		dev = RD(direct, skb, dev);
	if (dev) {
		if (COLLECT(DEV)) {
			int ifindex = RD(direct, dev, ifindex);

			if (ifindex > 0) {
				e->ifindex = ifindex;
				if (direct) {
					/* Plain loads of the trusted net_device: no helper call. */
					__u64 *n = (__u64 *)dev->name;

					((__u64 *)e->dev_name)[0] = n[0];
					((__u64 *)e->dev_name)[1] = n[1];
				} else {
					bpf_probe_read_kernel_str(e->dev_name, sizeof(e->dev_name), dev->name);
				}
				e->sections |= RETIS_CAPTURE_SECTION_DEV;
				if (skb) {
					e->rx_ifindex = RD(direct, skb, skb_iif);
					if (e->rx_ifindex)
						e->sections |= RETIS_CAPTURE_SECTION_RXIF;
				}
			}
		}
		if (COLLECT(NS))
			net = RD(direct, dev, nd_net.net);
	} else if (skb && COLLECT(NS)) {
		sk_netns(e, scalar_of(skb));
	}
	if (net)
		netns_fields(e, net, direct);
}

/* Whether the skb may carry a conntrack entry. BTF-typed programs test skb->_nfct with a plain
 * load first: most packets of a flood have none (no conntrack rule in their namespace), and the
 * call into ct_fill plus its helper read of _nfct was ~7% of the probes' time there (perf). */
static __always_inline bool ct_maybe(struct sk_buff *skb, bool direct)
{
	if (!direct)
		return true;
	if (!bpf_core_field_exists(skb->_nfct))
		return false;
	/* On kernels without the field its relocation is poisoned: keep the load after the check. */
	barrier_var(skb);
	return skb->_nfct != 0;
}

/* Fill a record (everything but the packet bytes and the stack). */
static __always_inline void fill(struct retis_capture_event *e, struct sk_buff *skb, struct net_device *dev, long reason,
				 __u64 ip, bool direct, __u64 now, bool tracked, struct tracking_info *tinfo, long cap, struct pkt_geo *g)
{
	e->ts = now;
	e->probe_id = retis_probe_id;
	e->cpu = bpf_get_smp_processor_id();
	if (direct) {
		/* Two plain loads of the current task's comm instead of bpf_get_current_comm, whose
		 * strscpy_pad + strnlen + memset were ~4% of a loopback flood's CPU with the default
		 * capture (perf, tp_btf probes). The bytes after the NUL are not zeroed: the decoder
		 * stops at the first NUL (DOP_CSTR). A concurrent rename can tear it, as it can with
		 * the helper. */
		struct task_struct *t = bpf_get_current_task_btf();
		__u64 *c = (__u64 *)t->comm;

		((__u64 *)e->comm)[0] = c[0];
		((__u64 *)e->comm)[1] = c[1];
		/* bpf_get_current_pid_tgid()'s value from the same task, without the call. */
		e->pid_tgid = (__u64)t->tgid << 32 | (__u32)t->pid;
	} else {
		e->pid_tgid = bpf_get_current_pid_tgid();
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	e->sections = 0;
	e->cap_len = cap;
	e->stack_bytes = 0;
	if (tracked) {
		e->skb = (__u64)skb;
		e->track_ts = tinfo->timestamp;
		e->orig_head = tinfo->orig_head;
		e->sections |= RETIS_CAPTURE_SECTION_TRACKING;
	}
	if (reason >= 0 && COLLECT(DROP)) {
		e->drop_reason = reason;
		e->sections |= RETIS_CAPTURE_SECTION_DROP;
	}
	if (cap > 0) {
		e->pkt_len = g->len;
		e->sections |= RETIS_CAPTURE_SECTION_PACKET;
	}
	if (skb)
		skb_sections(e, skb, direct);
	if (skb || dev)
		dev_ns(e, skb, dev, direct);
	if (ip) {
		e->ip = ip;
		e->sections |= RETIS_CAPTURE_SECTION_USER;
	}
}

/*
 * Per-CPU staging. Records are written into a buffer of this CPU (hot in its cache) and moved to
 * the ring buffer in batches (up to STAGE_MAX_RECORDS records or STAGE_FLUSH_AT bytes): one
 * reservation, one copy and one commit per batch instead of per record. Written straight into
 * the ring, a record cost ~110 ns for its reservation and commit (a spin lock; a locked exchange
 * that waits for the record's stores to reach ring memory the consumer had read on another CPU)
 * plus ~25 ns per further cache line; staged, a probe run costs ~350 instead of ~440 ns
 * (bpf_stats, loopback flood, capture/README.md).
 *
 * A ring record is then a batch: frames { u32 len, u32 probe_id } each followed by a record of
 * `len` bytes, 8-aligned (the reader splits them, bpf/native/retis_bpf.c on_frames()). A record
 * whose only variable part is its packet is cut right after it. Runs that nest on a CPU (an
 * interrupt's probe inside a softirq's) each take the next level's buffer. A batch leaves when
 * it is full, when its oldest record is STAGE_FLUSH_NS old at the next event, or when user space
 * asks (capture_flush(), run on each CPU by the reader every 50 ms and at stop): a CPU that goes
 * quiet never keeps records.
 */
#define STAGE_BYTES (32768 - 16)
#define STAGE_LEVELS 4
#define STAGE_FLUSH_NS (20ULL * 1000000ULL)
/* A batch leaves once it holds this much: a bigger copy gains nothing and holds records longer. */
#define STAGE_FLUSH_AT (16 * 1024)

/* Records per batch at most: bounds the loss count's loop in stage_flush(). */
#define STAGE_MAX_RECORDS 64

struct retis_frame {
	__u32 len;      /* record bytes after this frame */
	__u32 probe_id; /* whose record: losses are counted per probe */
};

struct retis_stage {
	__u32 len;   /* bytes staged */
	__u16 count; /* records staged */
	__u16 depth; /* level 0 only: runs in progress on this CPU */
	__u64 first; /* timestamp of the oldest staged record */
	__u8 data[STAGE_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAGE_LEVELS);
	__type(key, __u32);
	__type(value, struct retis_stage);
} retis_stage SEC(".maps");

struct stage_walk {
	struct retis_stage *st;
	__u32 off;
};

/* bpf_loop() callback: count the record at w->off lost and step over it. */
static long stage_lost_one(__u32 i, void *ctx)
{
	struct stage_walk *w = ctx;
	struct retis_stage *st = w->st;
	__u32 off = w->off;

	if (off + sizeof(struct retis_frame) > st->len || off > STAGE_BYTES - sizeof(struct retis_frame))
		return 1;
	struct retis_frame *fr = (void *)st->data + off;

	retis_count_lost_of(fr->probe_id);
	w->off = off + sizeof(*fr) + ((fr->len + 7) & ~7);
	return 0;
}

/*
 * Move the staged records to the ring; when it is full they are lost, counted per probe. A global
 * function: verified once on its own, not again at every call site and state of its callers.
 */
__noinline int stage_flush(struct retis_stage *st)
{
	if (!st)
		return 0;
	__u32 len = st->len;

	if (len == 0 || len > STAGE_BYTES)
		return 0;
	if (bpf_ringbuf_output(&retis_events, st->data, len, retis_wakeup_bytes ? BPF_RB_NO_WAKEUP : 0)) {
		struct stage_walk w = { .st = st, .off = 0 };

		/* One callback verified once, not a loop unrolled by the verifier at every call. */
		if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_loop)) {
			bpf_loop(STAGE_MAX_RECORDS, stage_lost_one, &w, 0);
		} else {
			for (int i = 0; i < STAGE_MAX_RECORDS; i++)
				if (stage_lost_one(i, &w))
					break;
		}
	}
	st->len = 0;
	st->count = 0;
	return 0;
}

/* The largest record room of any probe (REC_ROOM below at its bounds). */
#define MAX_REC_ROOM                                                                               \
	(sizeof(struct retis_capture_event) + MAX_SNAPLEN + MAX_STACK_DEPTH * 8 + CT_BLOCK_BYTES + \
	 sizeof(struct retis_nft_event) + sizeof(struct retis_ovs_event))
/* The verifier does not tie copy_pkt()'s masked last word to the room below a snap length of
 * DIRECT_COPY_MAX (it allows one word more): a record's place keeps that much slack after it. */
#define REC_SLACK 8
/* stage_leave() flushes a batch once it holds STAGE_FLUSH_AT bytes or STAGE_MAX_RECORDS records,
 * so a buffer always has room for one more record when a run takes it. */
_Static_assert(STAGE_FLUSH_AT + sizeof(struct retis_frame) + MAX_REC_ROOM + REC_SLACK <= STAGE_BYTES,
	       "a staging buffer below STAGE_FLUSH_AT holds one more record of any probe");

/* Whether a buffer's oldest record has waited long enough: the batch leaves now. */
static __always_inline bool stage_stale(struct retis_stage *st, __u64 now)
{
	return now - st->first > STAGE_FLUSH_NS;
}

/* This run's staging buffer (room for one record, see above), or NULL (nested too deep: counted
 * lost). `base` (level 0, which keeps the depth) goes to stage_leave(). */
static __always_inline struct retis_stage *stage_enter(struct retis_stage **base)
{
	__u32 zero = 0, level;
	struct retis_stage *st;

	*base = bpf_map_lookup_elem(&retis_stage, &zero);
	if (!*base)
		return NULL;
	level = (*base)->depth++;
	/* Level 0 (no run interrupted here: the common case) is the buffer already at hand. */
	st = level == 0 ? *base : level < STAGE_LEVELS ? bpf_map_lookup_elem(&retis_stage, &level) : NULL;
	if (!st) {
		(*base)->depth--;
		retis_count_lost();
	}
	return st;
}

static __always_inline void stage_leave(struct retis_stage *base, struct retis_stage *st, __u32 end, __u64 now)
{
	if (st->len == 0)
		st->first = now;
	st->len = end;
	st->count++;
	if (end >= STAGE_FLUSH_AT || st->count >= STAGE_MAX_RECORDS || stage_stale(st, now))
		stage_flush(st);
	base->depth--;
}

#define STACK_ROOM (COLLECT(STACK) ? MAX_STACK_DEPTH * 8 : 0)
/* ct and nft blocks (nftct.layout.ts), after the stack room, when the probe collects them. */
#define CT_ROOM (COLLECT(CT) ? CT_BLOCK_BYTES : 0)
#define NFT_ROOM (COLLECT(NFT) ? sizeof(struct retis_nft_event) : 0)
/* OVS probes: their block goes last in the record (ovs.layout.ts), so nothing else moves. */
#define OVS_ROOM (cfg_ovs ? sizeof(struct retis_ovs_event) : 0)
#define REC_ROOM (sizeof(struct retis_capture_event) + PKT_ROOM + STACK_ROOM + CT_ROOM + NFT_ROOM + OVS_ROOM)
/* Sections stored after the packet room: a record with any of them keeps its whole room. */
#define TAIL_SECTIONS (RETIS_CAPTURE_SECTION_STACK | RETIS_CAPTURE_SECTION_CT | RETIS_CAPTURE_SECTION_NFT | RETIS_CAPTURE_SECTION_OVS)

/*
 * One probe hit. `skb`, `dev`: kernel pointers or NULL; `reason`: enum skb_drop_reason or -1;
 * `ip`: user probes' instruction pointer (0 for kernel probes).
 *
 * Records have room of one size per probe (header + snap length + stack room + the ct, nft and
 * ovs blocks of the probes that collect them, the ovs one last), taken in the staging buffer and
 * filled there: with variable sizes the verifier walked the whole event code once per size class
 * (probe loads took seconds). A record without stack, ct, nft or ovs block is then cut after its
 * packet bytes, so the ring and the reader carry only what was written.
 */
static __always_inline int capture_ex(void *ctx, struct sk_buff *skb, struct net_device *dev, long reason,
				      bool stolen, __u64 ip, bool direct, struct retis_ovs_event *ovs)
{
	struct tracking_info tinfo = {};
	struct pkt_geo geo = {};
	bool tracked = false, filtered = false;
	__u64 head = 0, now;
	long cap = 0;

	/* Internal free probe: only forget the packet, no event, no clock. */
	if (TRACKING(SILENT) && !TRACKING(INV_HEAD)) {
		if (skb && COLLECT(TRACKING)) {
			head = skb_head(skb, direct);
			if (head)
				untrack(skb, head, direct, stolen);
		}
		return 0;
	}
	now = bpf_ktime_get_ns();
	if (skb && COLLECT(TRACKING)) {
		head = skb_head(skb, direct);
		if (head)
			tracked = track(skb, head, now, &tinfo, direct, &filtered);
		else
			filtered = !retis_filter_match(skb, direct);
	} else if (!ip) {
		/* Kernel probes without tracking: every event is filtered (no skb: no match). */
		filtered = !retis_filter_match(skb, direct);
	}
	if (TRACKING(SILENT) || filtered)
		goto out;

	count_hits(cfg_repeat);
	if (cfg_ovs && ovs)
		ovs_pre(ovs, now);
	if (skb && COLLECT(SKB))
		cap = packet_geometry(skb, direct, &geo);
	for (__u32 i = 0; i < 64; i++) {
		if (i >= cfg_repeat)
			break;
		struct retis_stage *base, *st = stage_enter(&base);

		if (!st)
			continue;
		__u32 off = st->len;

		if (off > STAGE_BYTES - REC_ROOM - sizeof(struct retis_frame) - REC_SLACK)
			off = 0; /* cannot happen (MAX_REC_ROOM's assertion); tells the verifier */
		struct retis_frame *fr = (void *)st->data + off;
		struct retis_capture_event *e = (void *)(fr + 1);

		fill(e, skb, dev, reason, ip, direct, now, tracked, &tinfo, cap, &geo);
		if (COLLECT(CT) && skb && ct_maybe(skb, direct)) {
			struct retis_ct_block *ct = (void *)((__u8 *)(e + 1) + PKT_ROOM + STACK_ROOM);

			if (ct_fill(ct, scalar_of(skb)))
				e->sections |= RETIS_CAPTURE_SECTION_CT;
		}
		if (COLLECT(NFT) && nft_fill((__u8 *)(e + 1) + PKT_ROOM + STACK_ROOM + CT_ROOM))
			e->sections |= RETIS_CAPTURE_SECTION_NFT;
		long sb = copy_data(ctx, (__u8 *)(e + 1), cap, &geo, direct);

		if (sb > 0) {
			e->stack_bytes = sb;
			e->sections |= RETIS_CAPTURE_SECTION_STACK;
		}
		if (cfg_ovs && ovs) {
			*(struct retis_ovs_event *)((__u8 *)(e + 1) + PKT_ROOM + STACK_ROOM + CT_ROOM + NFT_ROOM) = *ovs;
			e->sections |= RETIS_CAPTURE_SECTION_OVS;
		}
		/* Records whose only variable part is the packet end right after it: the rest of the
		 * room (stack, ct, nft, ovs blocks) is neither copied nor read. */
		__u32 len = e->sections & TAIL_SECTIONS ? REC_ROOM : sizeof(*e) + ((cap + 7) & ~7);

		fr->len = len;
		fr->probe_id = retis_probe_id;
		stage_leave(base, st, off + sizeof(*fr) + len, now);
	}
	if (cfg_ovs && ovs)
		ovs_post(ovs, skb, now);
out:
	if (head)
		untrack(skb, head, direct, stolen);
	return 0;
}

static __always_inline int capture(void *ctx, struct sk_buff *skb, struct net_device *dev, long reason,
				   bool stolen, __u64 ip, bool direct)
{
	return capture_ex(ctx, skb, dev, reason, stolen, ip, direct, NULL);
}

/*
 * Argument n of a probe; `n` is a load-time constant, so only one case survives and the verifier
 * never sees an access past the prototype. barrier_var() keeps clang from merging the cases into
 * one load through a computed context pointer, which the verifier refuses ("dereference of
 * modified ctx ptr").
 */
#define ARG_CASE(i, expr)                                                                          \
	case i:                                                                                    \
		v = (expr);                                                                        \
		barrier_var(v);                                                                    \
		break

static __always_inline __u64 btf_arg(__u64 *ctx, __s32 n)
{
	__u64 v = 0;

	switch (n) {
	ARG_CASE(0, ctx[0]);
	ARG_CASE(1, ctx[1]);
	ARG_CASE(2, ctx[2]);
	ARG_CASE(3, ctx[3]);
	ARG_CASE(4, ctx[4]);
	ARG_CASE(5, ctx[5]);
	default: break;
	}
	return v;
}

static __always_inline __u64 raw_arg(struct bpf_raw_tracepoint_args *ctx, __s32 n)
{
	__u64 v = 0;

	switch (n) {
	ARG_CASE(0, ctx->args[0]);
	ARG_CASE(1, ctx->args[1]);
	ARG_CASE(2, ctx->args[2]);
	ARG_CASE(3, ctx->args[3]);
	ARG_CASE(4, ctx->args[4]);
	ARG_CASE(5, ctx->args[5]);
	default: break;
	}
	return v;
}

static __always_inline __u64 regs_arg(struct pt_regs *ctx, __s32 n)
{
	__u64 v = 0;

	switch (n) {
	ARG_CASE(0, PT_REGS_PARM1(ctx));
	ARG_CASE(1, PT_REGS_PARM2(ctx));
	ARG_CASE(2, PT_REGS_PARM3(ctx));
	ARG_CASE(3, PT_REGS_PARM4(ctx));
	ARG_CASE(4, PT_REGS_PARM5(ctx));
	default: break;
	}
	return v;
}

#include "ovs_hooks.bpf.h"

SEC("tp_btf")
int capture_tp_btf(__u64 *ctx)
{
	return capture(ctx, (struct sk_buff *)btf_arg(ctx, cfg_skb_arg), (struct net_device *)btf_arg(ctx, cfg_dev_arg),
		       cfg_reason_arg >= 0 ? (long)(__u32)btf_arg(ctx, cfg_reason_arg) : -1, false, 0, true);
}

SEC("raw_tp")
int capture_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	if (cfg_ovs)
		return ovs_raw_tp(ctx);
	return capture(ctx, (struct sk_buff *)raw_arg(ctx, cfg_skb_arg), (struct net_device *)raw_arg(ctx, cfg_dev_arg),
		       cfg_reason_arg >= 0 ? (long)(__u32)raw_arg(ctx, cfg_reason_arg) : -1, false, 0, false);
}

/* Classic (perf) tracepoint: arguments are fields of the trace record, at offsets from tracefs. */
SEC("tracepoint")
int capture_tracepoint(void *ctx)
{
	__u64 skb = 0, dev = 0;
	__u32 reason = 0;

	if (cfg_skb_off >= 0)
		bpf_probe_read_kernel(&skb, sizeof(skb), ctx + cfg_skb_off);
	if (cfg_dev_off >= 0)
		bpf_probe_read_kernel(&dev, sizeof(dev), ctx + cfg_dev_off);
	if (cfg_reason_off >= 0)
		bpf_probe_read_kernel(&reason, sizeof(reason), ctx + cfg_reason_off);
	return capture(ctx, (struct sk_buff *)skb, (struct net_device *)dev, cfg_reason_off >= 0 ? (long)reason : -1,
		       false, 0, false);
}

/* nft collector (nft.bpf.h): gather __nft_trace_packet's arguments, filter verdicts, find the skb. */
#define NFT_ENTRY(getarg)                                                                          \
	if (COLLECT(NFT)) {                                                                        \
		struct retis_nft_args *a = nft_slot();                                             \
		if (!a)                                                                            \
			return 0;                                                                  \
		NA(a, INFO) = getarg(ctx, cfg_nft_info_arg);                                           \
		NA(a, PKT) = getarg(ctx, cfg_nft_pkt_arg);                                             \
		NA(a, CHAIN) = getarg(ctx, cfg_nft_chain_arg);                                         \
		NA(a, RULE) = getarg(ctx, cfg_nft_rule_arg);                                           \
		NA(a, VERDICT) = getarg(ctx, cfg_nft_verdict_arg);                                     \
		NA(a, TYPE) = cfg_nft_type_arg >= 0 ? (__s64)(__u32)getarg(ctx, cfg_nft_type_arg) : 0; \
		if (!nft_prepare(a, &nft_skb))                                                     \
			return 0;                                                                  \
	}

SEC("kprobe")
int capture_kprobe(struct pt_regs *ctx)
{
	if (cfg_ovs)
		return ovs_kprobe(ctx);
	struct sk_buff *nft_skb = NULL;

	NFT_ENTRY(regs_arg);
	if (COLLECT(NFT))
		return capture(ctx, nft_skb, NULL, -1, false, 0, false);
	return capture(ctx, (struct sk_buff *)regs_arg(ctx, cfg_skb_arg), (struct net_device *)regs_arg(ctx, cfg_dev_arg),
		       cfg_reason_arg >= 0 ? (long)(__u32)regs_arg(ctx, cfg_reason_arg) : -1,
		       cfg_stolen_arg >= 0 ? (bool)regs_arg(ctx, cfg_stolen_arg) : false, 0, false);
}

/* Return probes: the arguments are gone (Retis only reports tracking ids of known skbs there). */
SEC("kretprobe")
int capture_kretprobe(struct pt_regs *ctx)
{
	if (cfg_ovs)
		return ovs_kretprobe(ctx);
	return capture(ctx, NULL, NULL, -1, false, 0, false);
}

SEC("fentry")
int capture_fentry(__u64 *ctx)
{
	struct sk_buff *nft_skb = NULL;

	NFT_ENTRY(btf_arg);
	/* The skb read from nft_pktinfo is not a trusted BTF pointer: read it with helpers. */
	if (COLLECT(NFT))
		return capture(ctx, nft_skb, NULL, -1, false, 0, false);
	return capture(ctx, (struct sk_buff *)btf_arg(ctx, cfg_skb_arg), (struct net_device *)btf_arg(ctx, cfg_dev_arg),
		       cfg_reason_arg >= 0 ? (long)(__u32)btf_arg(ctx, cfg_reason_arg) : -1,
		       cfg_stolen_arg >= 0 ? (bool)btf_arg(ctx, cfg_stolen_arg) : false, 0, true);
}

SEC("fexit")
int capture_fexit(__u64 *ctx)
{
	return capture(ctx, (struct sk_buff *)btf_arg(ctx, cfg_skb_arg), (struct net_device *)btf_arg(ctx, cfg_dev_arg),
		       cfg_reason_arg >= 0 ? (long)(__u32)btf_arg(ctx, cfg_reason_arg) : -1, false, 0, true);
}

SEC("uprobe")
int capture_uprobe(struct pt_regs *ctx)
{
	return capture(ctx, NULL, NULL, -1, false, PT_REGS_IP(ctx), false);
}

SEC("uretprobe")
int capture_uretprobe(struct pt_regs *ctx)
{
	return capture(ctx, NULL, NULL, -1, false, PT_REGS_IP(ctx), false);
}

SEC("usdt")
int capture_usdt(struct pt_regs *ctx)
{
	if (cfg_ovs)
		return ovs_usdt(ctx);
	return capture(ctx, NULL, NULL, -1, false, PT_REGS_IP(ctx), false);
}

/* capture_flush() for one level, unless a run it interrupted holds that level (level < d). */
static __always_inline void flush_level(struct retis_stage *base, __u32 level, __u32 d, bool all, __u64 now)
{
	struct retis_stage *st;

	if (level < d)
		return;
	st = bpf_map_lookup_elem(&retis_stage, &level);
	base->depth = level + 1;
	if (st && st->len && (all || stage_stale(st, now)))
		stage_flush(st);
}

/*
 * Flush this CPU's staged records (see stage_enter()), run by user space with
 * BPF_PROG_TEST_RUN on each CPU: args[0] != 0 flushes everything (stop), else only batches whose
 * oldest record is older than STAGE_FLUSH_NS. Levels in use by a run this one interrupted are
 * left to that run; while level L is flushed, a run interrupting the flush takes level L + 1.
 */
SEC("raw_tp")
int capture_flush(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	struct retis_stage *base = bpf_map_lookup_elem(&retis_stage, &zero);
	__u64 now = bpf_ktime_get_ns();
	bool all = ctx->args[0] != 0;

	if (!base)
		return 0;
	__u32 d = base->depth;

	/* Spelled out: 6.1's verifier calls a loop over the levels "infinite". */
	_Static_assert(STAGE_LEVELS == 4, "one flush_level() per level");
	flush_level(base, 0, d, all, now);
	flush_level(base, 1, d, all, now);
	flush_level(base, 2, d, all, now);
	flush_level(base, 3, d, all, now);
	base->depth = d;
	return 0;
}
