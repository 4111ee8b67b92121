// SPDX-License-Identifier: GPL-2.0
/*
 * Runs generated filter code in the kernel for tests (tests/filters): the same placeholders as the
 * probes (retis/filter.bpf.h), fed from a map by BPF_PROG_TEST_RUN. `fake` holds fake kernel
 * objects for the meta filter; its kernel address is written to `self` on every run so the test
 * can link them with pointers.
 */
#include "retis/common.bpf.h"
#include "retis/filter.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct filter_test_in {
	__u32 caplen;
	__u32 wirelen;
	__u32 variant; /* 2: L2, 3: L3, 4: meta, 5-8: bench (see bench_one) */
	__u32 pad;     /* bench: iterations */
	__u64 self;
	struct retis_filter_buf buf;
	__u8 fake[4096];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct filter_test_in);
} filter_test_in SEC(".maps");

/* Per-iteration cost (bench/filter.ts): variant 5 copies the packet bytes into the per-CPU
 * scratch as the probes do, then runs the L2 filter; 6 only copies; 7 runs the meta filter on
 * fake[]; 8 does nothing (loop overhead). `pad` iterations; returns the mean ns per iteration. */
struct bench_ctx {
	struct filter_test_in *in;
	__u64 addr;
	__u32 variant;
};

static long bench_one(__u32 i, void *data)
{
	struct bench_ctx *c = data;
	struct filter_test_in *in = c->in;
	struct retis_filter_buf *buf;
	__u32 key = 0;
	__u32 n = in->caplen;

	buf = bpf_map_lookup_elem(&retis_filter_scratch, &key);
	if (!buf)
		return 1;
	if (c->variant == 5 || c->variant == 6) {
		if (n > RETIS_FILTER_DATA)
			n = RETIS_FILTER_DATA;
		bpf_probe_read_kernel(buf->data, n, in->buf.data);
		if (c->variant == 5)
			retis_filter_l2(buf, n, in->wirelen);
	} else if (c->variant == 7) {
		retis_filter_meta_prog(buf, c->addr);
	}
	return 0;
}

SEC("raw_tp")
int filter_test(void *ctx)
{
	struct filter_test_in *in;
	__u32 key = 0;
	__u64 addr = 0;
	void *p;

	in = bpf_map_lookup_elem(&filter_test_in, &key);
	if (!in)
		return -1;
	p = in->fake;
	bpf_probe_read_kernel(&addr, sizeof(addr), &p);
	in->self = addr;
	switch (in->variant) {
	case 2:
		return retis_filter_l2(&in->buf, in->caplen, in->wirelen);
	case 3:
		return retis_filter_l3(&in->buf, in->caplen, in->wirelen);
	case 4:
		return retis_filter_meta_prog(&in->buf, addr);
	case 5:
	case 6:
	case 7:
	case 8: {
		struct bench_ctx c = { .in = in, .addr = addr, .variant = in->variant };
		__u32 iters = in->pad ? in->pad : 1;
		__u64 t0 = bpf_ktime_get_ns();

		bpf_loop(iters, bench_one, &c, 0);
		return (bpf_ktime_get_ns() - t0) / iters;
	}
	}
	return -1;
}
