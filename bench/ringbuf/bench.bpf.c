// SPDX-License-Identifier: GPL-2.0
/*
 * Ring buffer benchmark producer: on every syscall entry of the load generator (gen.c, spinning on
 * getppid()), emit `burst` records of 64 or 256 bytes into retis_events, the same ring buffer code
 * path (reserve, loss counting, batched wakeups) as the real probes.
 */
#include "retis/common.bpf.h"
#include "bench.layout.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 target_tgid = 0;
const volatile __u32 burst = 1;
const volatile __s64 target_syscall = -1;

/* Records attempted (reserved or lost), per CPU: received + lost must equal this. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_attempts SEC(".maps");

#define PRODUCE(rec_type)                                                                          \
	do {                                                                                       \
		__u32 zero = 0, cpu = bpf_get_smp_processor_id();                                  \
		__u64 *att, ts = bpf_ktime_get_ns();                                               \
                                                                                                   \
		if ((bpf_get_current_pid_tgid() >> 32) != target_tgid ||                           \
		    (long)ctx->args[1] != target_syscall)                                          \
			return 0;                                                                  \
		att = bpf_map_lookup_elem(&bench_attempts, &zero);                                 \
		if (!att)                                                                          \
			return 0;                                                                  \
		for (__u32 i = 0; i < 64; i++) {                                                   \
			if (i >= burst)                                                            \
				break;                                                             \
			struct rec_type *r = retis_reserve(sizeof(struct rec_type));               \
			*att += 1;                                                                 \
			if (!r)                                                                    \
				continue;                                                          \
			r->seq = *att;                                                             \
			r->ts = ts;                                                                \
			r->cpu = cpu;                                                              \
			r->burst_index = i;                                                        \
			retis_submit(r, sizeof(struct rec_type));                                  \
		}                                                                                  \
		return 0;                                                                          \
	} while (0)

SEC("raw_tp/sys_enter")
int bench_64(struct bpf_raw_tracepoint_args *ctx)
{
	PRODUCE(bench_record64);
}

SEC("raw_tp/sys_enter")
int bench_256(struct bpf_raw_tracepoint_args *ctx)
{
	PRODUCE(bench_record256);
}
