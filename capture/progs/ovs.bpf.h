/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ovs collector, part 1 (included by capture.bpf.c before capture_ex()): the state OVS hooks
 * share across probes, the packet hash that links kernel and user-space events, and what a hook
 * leaves behind once its event is written. Part 2 (ovs_hooks.bpf.h) has the hooks themselves.
 *
 * Follows Retis's collector (collect/collector/ovs/bpf): an upcall's context (its timestamp and
 * CPU) is kept per task so the enqueue and return probes running inside ovs_dp_upcall() can name
 * the upcall they belong to; an enqueued packet is known to user space by `queue_id`, the jhash of
 * its first 64 bytes, which the USDT probes in ovs-vswitchd compute again on the received copy.
 *
 * OVS types live in the openvswitch module, absent from the vmlinux.h we build against: they are
 * declared here with the ___rts flavour suffix and preserve_access_index, and libbpf relocates
 * them against the module's BTF at load.
 */
#ifndef __RETIS_CAPTURE_OVS_BPF_H
#define __RETIS_CAPTURE_OVS_BPF_H

#include "ovs.layout.h"

/* Which OVS hook this probe instance is (enum retis_ovs_hook); 0: not an OVS probe. */
const volatile __u32 cfg_ovs = 0;
/* --ovs-track: 1, follow upcalls through ovs-vswitchd (USDT); 2 (tests only), also report upcalls
 * received whose enqueue was not seen (a stand-in ovs-vswitchd, no kernel datapath). */
const volatile __u8 cfg_ovs_track = 0;

#define OVS_HASH_BYTES 64
#define OVS_MAX_INFLIGHT 1024
/* An enqueued packet not executed within this long is not matched any more (lost upcall). */
#define OVS_UPCALL_MATCH_NS (10ULL * 1000000000ULL)

struct ovs_upcall_ctx {
	__u64 ts;
	__u64 skb;
	__u32 cpu;
};

struct ovs_enqueue_ctx {
	__u64 skb;
	__u64 upcall_info;
};

struct ovs_exec_ctx {
	__u64 skb;
	__u64 n_mask_hit; /* u32 * arguments of ovs_flow_tbl_lookup_stats */
	__u64 n_cache_hit;
	__u32 queue_id;
	__u8 command; /* executing a userspace flow_exec: actions carry queue_id */
};

/* Upcalls in progress, per task (see ovs_task_key). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OVS_MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, struct ovs_upcall_ctx);
} ovs_inflight_upcalls SEC(".maps");

/* queue_userspace_packet() arguments, from its entry to its return. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OVS_MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, struct ovs_enqueue_ctx);
} ovs_inflight_enqueue SEC(".maps");

/* Datapath processing in progress (ovs_dp_process_packet / ovs_execute_actions), per task. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OVS_MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, struct ovs_exec_ctx);
} ovs_inflight_exec SEC(".maps");

/*
 * queue_id -> enqueue time of packets sent to user space and not seen again yet. USDT recv_upcall
 * consumes them (--ovs-track); without it, ovs_execute_actions matches the packet ovs-vswitchd
 * sends back to execute against them (see ovs_hooks.bpf.h). LRU: upcalls lost in user space must
 * not fill it up.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} ovs_upcall_tracking SEC(".maps");

/* --ovs-track: queue_id of packets ovs-vswitchd asked to execute (op_flow_execute). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} ovs_flow_exec_tracking SEC(".maps");

struct ovs_hash_buf {
	__u8 data[OVS_HASH_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ovs_hash_buf);
} ovs_hash_scratch SEC(".maps");

/*
 * Key of the per-task maps. Retis uses the kernel stack base; the pid/tid pair identifies the
 * same thing for entry/return pairs except for the idle tasks, which all have pid 0 (softirqs
 * often run on them, on every CPU at once): those get one key per CPU.
 */
static __always_inline __u64 ovs_task_key(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	return id ? id : (1ULL << 63) | bpf_get_smp_processor_id();
}

static __always_inline __u32 ovs_rol32(__u32 w, __u32 s)
{
	return (w << s) | (w >> (32 - s));
}

#define OVS_JHASH_MIX(a, b, c)                                                                     \
	{                                                                                          \
		a -= c; a ^= ovs_rol32(c, 4); c += b;                                              \
		b -= a; b ^= ovs_rol32(a, 6); a += c;                                              \
		c -= b; c ^= ovs_rol32(b, 8); b += a;                                              \
		a -= c; a ^= ovs_rol32(c, 16); c += b;                                             \
		b -= a; b ^= ovs_rol32(a, 19); a += c;                                             \
		c -= b; c ^= ovs_rol32(b, 4); b += a;                                              \
	}

/*
 * The kernel's jhash(key, 64, 0) (Retis's jhash.h, OVS's USDT scripts): 5 blocks of 12 bytes, a
 * last block of 4. Words are little-endian loads, as __get_unaligned_cpu32 on x86/arm64.
 */
static __always_inline __u32 ovs_jhash64(const __u8 *k)
{
	const __u32 *w = (const __u32 *)k;
	__u32 a, b, c;

	a = b = c = 0xdeadbeef + OVS_HASH_BYTES;
#pragma unroll
	for (int i = 0; i < 5; i++) {
		a += w[3 * i];
		b += w[3 * i + 1];
		c += w[3 * i + 2];
		OVS_JHASH_MIX(a, b, c);
	}
	a += w[15];
	c ^= b; c -= ovs_rol32(b, 14);
	a ^= c; a -= ovs_rol32(c, 11);
	b ^= a; b -= ovs_rol32(a, 25);
	c ^= b; c -= ovs_rol32(b, 16);
	a ^= c; a -= ovs_rol32(c, 4);
	b ^= a; b -= ovs_rol32(a, 14);
	c ^= b; c -= ovs_rol32(b, 24);
	return c;
}

/* queue_id of a packet: jhash of its first 64 bytes from `data` (zero-padded). `user`: a user
 * space address (the USDT probes). Returns 0 when the scratch buffer is unavailable. */
static __always_inline __u32 ovs_hash_bytes(const void *data, __u64 size, bool user)
{
	__u32 zero = 0;
	struct ovs_hash_buf *buf = bpf_map_lookup_elem(&ovs_hash_scratch, &zero);

	if (!buf)
		return 0;
	__builtin_memset(buf->data, 0, sizeof(buf->data));
	if (size > OVS_HASH_BYTES)
		size = OVS_HASH_BYTES;
	barrier_var(size);
	if (size > 0) {
		if (user)
			bpf_probe_read_user(buf->data, size & (OVS_HASH_BYTES * 2 - 1), data);
		else
			bpf_probe_read_kernel(buf->data, size & (OVS_HASH_BYTES * 2 - 1), data);
	}
	return ovs_jhash64(buf->data);
}

/* Retis's hash_skb: the linear part from skb->data. */
static __always_inline __u32 ovs_hash_skb(struct sk_buff *skb)
{
	__u32 data_len = BPF_CORE_READ(skb, data_len);
	__u32 len = BPF_CORE_READ(skb, len);
	__u64 size = data_len ? (len - data_len) & 0xfffffff : len;

	return ovs_hash_bytes(BPF_CORE_READ(skb, data), size, false);
}

/*
 * --ovs-track: upcall batches of ovs-vswitchd's handler threads (Retis's ovs_operation.h, spec
 * §6). A handler receives up to 64 upcalls (recv_upcall), then runs their operations in order:
 * the first operation switches the batch to processing, and an operation type seen twice on one
 * upcall means the next upcall. One batch per handler thread, keyed by thread id (Retis maps
 * handler pids to array slots from user space; a hash map needs no such setup).
 */
#define OVS_BATCH_MAX 64

struct ovs_batch_upcall {
	__u32 queue_id;
	__u8 skip; /* its enqueue was not seen: no events for it */
	__u8 ops;  /* bits 1 << op_type of the operations done on it */
};

struct ovs_batch {
	__u64 leader_ts; /* time of the batch's first recv_upcall */
	struct ovs_batch_upcall up[OVS_BATCH_MAX];
	__u8 processing;
	__u8 current;
	__u8 total;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct ovs_batch);
} ovs_batches SEC(".maps");

/* A zeroed batch to create entries from (too large for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ovs_batch);
} ovs_batch_zero SEC(".maps");

static __always_inline struct ovs_batch *ovs_batch_get(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct ovs_batch *b = bpf_map_lookup_elem(&ovs_batches, &tid);
	struct ovs_batch *z;

	if (b)
		return b;
	z = bpf_map_lookup_elem(&ovs_batch_zero, &zero);
	if (!z)
		return NULL;
	bpf_map_update_elem(&ovs_batches, &tid, z, BPF_NOEXIST);
	return bpf_map_lookup_elem(&ovs_batches, &tid);
}

/* Before an OVS event is written: a batch leader's batch_ts is its own timestamp. */
static __always_inline void ovs_pre(struct retis_ovs_event *ovs, __u64 now)
{
	if (cfg_ovs == RETIS_OVS_HOOK_RECV_UPCALL && ovs->batch_ts == 0) {
		struct ovs_batch *b = ovs_batch_get();

		ovs->batch_ts = now;
		if (b)
			b->leader_ts = now;
	}
}

/* After an OVS event (written or lost): what later hooks need to find. */
static __always_inline void ovs_post(const struct retis_ovs_event *ovs, struct sk_buff *skb, __u64 now)
{
	if (cfg_ovs == RETIS_OVS_HOOK_UPCALL) {
		struct ovs_upcall_ctx u = { .ts = now, .skb = scalar_of(skb), .cpu = ovs->cpu };
		__u64 key = ovs_task_key();

		bpf_map_update_elem(&ovs_inflight_upcalls, &key, &u, BPF_ANY);
	} else if (cfg_ovs == RETIS_OVS_HOOK_ENQUEUE_RET && ovs->ret == 0) {
		__u32 q = ovs->queue_id;

		/* An entry already there is a packet with the same head still queued: keep the
		 * first, as Retis does (user space will see the older one first). */
		bpf_map_update_elem(&ovs_upcall_tracking, &q, &now, BPF_NOEXIST);
	} else if (cfg_ovs == RETIS_OVS_HOOK_OP_EXEC) {
		__u32 q = ovs->queue_id;

		/* The datapath will execute this packet: its actions carry the queue_id. */
		bpf_map_update_elem(&ovs_flow_exec_tracking, &q, &now, BPF_NOEXIST);
	}
}

#endif
