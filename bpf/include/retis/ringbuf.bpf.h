/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Ring buffer output shared by every retis-ts BPF program.
 *
 * - One ring buffer map, `retis_events`, per object (sized from user space with
 *   bpf_map__set_max_entries before load; objects of one capture share it via bpf_map__reuse_fd).
 * - Reserve failures (ring full: the consumer is behind) are counted per probe and per CPU in
 *   `retis_lost`, a per-CPU array indexed by `retis_probe_id`. User space reads and reports them:
 *   losses are never silent.
 * - Wakeups are batched: records are submitted with BPF_RB_NO_WAKEUP and a wakeup is forced only
 *   when the unconsumed data *crosses* `retis_wakeup_bytes`. The consumer also drains on a short
 *   timer, so nothing waits longer than its poll interval. Forcing a wakeup on every submit while
 *   above the threshold (instead of on the crossing) was measured to slow producers 7x when the
 *   consumer lags (irq_work storm), see docs/feasibility-bpf.md.
 *
 * Include after vmlinux.h and <bpf/bpf_helpers.h>.
 */
#ifndef __RETIS_RINGBUF_BPF_H
#define __RETIS_RINGBUF_BPF_H

#ifndef RETIS_RINGBUF_DEFAULT_SIZE
#define RETIS_RINGBUF_DEFAULT_SIZE (4 * 1024 * 1024)
#endif
#ifndef RETIS_MAX_PROBES
#define RETIS_MAX_PROBES 1024
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RETIS_RINGBUF_DEFAULT_SIZE);
} retis_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RETIS_MAX_PROBES);
	__type(key, __u32);
	__type(value, __u64);
} retis_lost SEC(".maps");

/* Set per object instance from user space before load (read-only once loaded: the verifier
 * treats them as constants and prunes dead branches). */
const volatile __u32 retis_probe_id = 0;
/* 0: let the kernel decide (wake on every submit when the consumer caught up). */
const volatile __u64 retis_wakeup_bytes = 0;

/* One record of probe `probe` lost (e.g. a staged record, counted when its batch is refused). */
static __always_inline void retis_count_lost_of(__u32 probe)
{
	__u64 *cnt = bpf_map_lookup_elem(&retis_lost, &probe);

	if (cnt)
		*cnt += 1; /* per-CPU slot: no atomic needed */
}

static __always_inline void retis_count_lost(void)
{
	retis_count_lost_of(retis_probe_id);
}

/* Reserve `size` bytes (must be a compile-time constant) or count a loss and return NULL. */
#define retis_reserve(size)                                                    \
	({                                                                     \
		void *__p = bpf_ringbuf_reserve(&retis_events, (size), 0);     \
		if (!__p)                                                      \
			retis_count_lost();                                    \
		__p;                                                           \
	})

static __always_inline void retis_submit(void *rec, __u64 size)
{
	__u64 flags = 0;

	if (retis_wakeup_bytes) {
		/* AVAIL_DATA = producer - consumer position; it includes our record (reserved). */
		__u64 avail = bpf_ringbuf_query(&retis_events, BPF_RB_AVAIL_DATA);
		__u64 before = avail > size + 8 ? avail - size - 8 : 0;

		flags = (avail >= retis_wakeup_bytes && before < retis_wakeup_bytes) ?
				BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	bpf_ringbuf_submit(rec, flags);
}

#endif /* __RETIS_RINGBUF_BPF_H */
