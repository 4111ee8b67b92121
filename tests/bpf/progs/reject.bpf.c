// SPDX-License-Identifier: GPL-2.0
/* Programs the verifier must reject: the live tests check that the error names the verifier and
 * carries the tail of its log. Never loaded outside tests. */
#include "retis/common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Dereferences a value read from kernel memory as if it were a pointer: "invalid mem access". */
SEC("raw_tp/kfree_skb")
int reject_scalar_deref(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (void *)ctx->args[0]);
	return *(volatile __u32 *)v;
}

/* The same error after a few thousand instructions: the verifier log (one libbpf message) is far
 * longer than 64 KiB, so the test checks that the error line at its very end is kept. */
SEC("raw_tp/kfree_skb")
int reject_long_log(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (void *)ctx->args[0]);
#pragma clang loop unroll(full)
	for (int i = 0; i < 3000; i++) {
		v = v * 3 + i;
		asm volatile("" : "+r"(v));
	}
	return *(volatile __u32 *)v;
}
