// SPDX-License-Identifier: GPL-2.0
/*
 * Generic probes, one program per attach type, each emitting a retis_selftest_event.
 *
 * User space opens one object instance per probe, enables (autoload) only the program of the
 * chosen attach type and sets the read-only config below, so an attach type the kernel refuses
 * (kprobe without CONFIG_KPROBES, fentry blocked) never fails the load of the others.
 */
#include "retis/common.bpf.h"
#include <bpf/usdt.bpf.h>
#include "selftest.layout.h"

char LICENSE[] SEC("license") = "GPL";

/* Which argument is the struct sk_buff * (-1: none). For tp_btf/raw_tp/fentry/kprobe. */
const volatile __s32 skb_arg = -1;
/* Classic tracepoints: byte offset of the skb pointer in the tracepoint record (-1: none). */
const volatile __s32 skb_tp_offset = -1;
/* Only emit events whose skb is in this netns inode (0: all). */
const volatile __u32 filter_netns = 0;

static __always_inline int emit(__u32 kind, __u64 skb_addr, __u64 arg0, __u32 reason)
{
	struct sk_buff *skb = (struct sk_buff *)skb_addr;
	__u32 netns = 0, ifindex = 0, len = 0;

	if (skb) {
		netns = retis_skb_netns(skb);
		ifindex = BPF_CORE_READ(skb, dev, ifindex);
		len = BPF_CORE_READ(skb, len);
	}
	if (filter_netns && netns != filter_netns)
		return 0;

	struct retis_selftest_event *e = retis_reserve(sizeof(*e));
	if (!e)
		return 0;
	e->ts = bpf_ktime_get_ns();
	e->skb = skb_addr;
	e->arg0 = arg0;
	e->probe_id = retis_probe_id;
	e->kind = kind;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->netns = netns;
	e->ifindex = ifindex;
	e->len = len;
	e->reason = reason;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	retis_submit(e, sizeof(*e));
	return 0;
}

/* Argument n of a BTF-typed program (tp_btf, fentry, fexit). `skb_arg` is a load-time constant,
 * so the verifier only sees the branch actually taken (and never an access past the prototype). */
static __always_inline __u64 btf_arg(__u64 *ctx, __s32 n)
{
	switch (n) {
	case 0: return ctx[0];
	case 1: return ctx[1];
	case 2: return ctx[2];
	case 3: return ctx[3];
	default: return 0;
	}
}

SEC("tracepoint")
int selftest_tracepoint(void *ctx)
{
	__u64 skb = 0;

	if (skb_tp_offset >= 0)
		bpf_probe_read_kernel(&skb, sizeof(skb), ctx + skb_tp_offset);
	return emit(RETIS_SELFTEST_KIND_TRACEPOINT, skb, 0, 0);
}

SEC("raw_tp")
int selftest_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 skb = 0;

	switch (skb_arg) {
	case 0: skb = ctx->args[0]; break;
	case 1: skb = ctx->args[1]; break;
	case 2: skb = ctx->args[2]; break;
	default: break;
	}
	return emit(RETIS_SELFTEST_KIND_RAW_TP, skb, 0, 0);
}

SEC("tp_btf")
int selftest_tp_btf(__u64 *ctx)
{
	return emit(RETIS_SELFTEST_KIND_TP_BTF, skb_arg >= 0 ? btf_arg(ctx, skb_arg) : 0, 0, 0);
}

/* Typed arguments: the reason is an enum whose values differ between kernels; user space maps
 * it to a name with the running kernel's BTF (bpf/btf.ts dropReasons()). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(selftest_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	return emit(RETIS_SELFTEST_KIND_KFREE_SKB, (__u64)skb, (__u64)location, reason);
}

SEC("kprobe")
int selftest_kprobe(struct pt_regs *ctx)
{
	__u64 a0 = PT_REGS_PARM1(ctx);

	return emit(RETIS_SELFTEST_KIND_KPROBE, skb_arg == 0 ? a0 : 0, a0, 0);
}

SEC("kretprobe")
int selftest_kretprobe(struct pt_regs *ctx)
{
	return emit(RETIS_SELFTEST_KIND_KRETPROBE, 0, PT_REGS_RC(ctx), 0);
}

SEC("fentry")
int selftest_fentry(__u64 *ctx)
{
	return emit(RETIS_SELFTEST_KIND_FENTRY, skb_arg >= 0 ? btf_arg(ctx, skb_arg) : 0, ctx[0], 0);
}

SEC("fexit")
int selftest_fexit(__u64 *ctx)
{
	return emit(RETIS_SELFTEST_KIND_FEXIT, skb_arg >= 0 ? btf_arg(ctx, skb_arg) : 0, ctx[0], 0);
}

SEC("uprobe")
int selftest_uprobe(struct pt_regs *ctx)
{
	return emit(RETIS_SELFTEST_KIND_UPROBE, 0, PT_REGS_PARM1(ctx), 0);
}

SEC("uretprobe")
int selftest_uretprobe(struct pt_regs *ctx)
{
	return emit(RETIS_SELFTEST_KIND_URETPROBE, 0, PT_REGS_RC(ctx), 0);
}

SEC("usdt")
int selftest_usdt(struct pt_regs *ctx)
{
	long a0 = 0;

	bpf_usdt_arg(ctx, 0, &a0);
	return emit(RETIS_SELFTEST_KIND_USDT, 0, (__u64)a0, 0);
}
