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
	__u32 variant; /* 2: L2, 3: L3, 4: meta */
	__u32 pad;
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
	}
	return -1;
}
