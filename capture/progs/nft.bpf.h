/* SPDX-License-Identifier: GPL-2.0 */
/*
 * nft collector, kprobe path: a kprobe (or fentry) on __nft_trace_packet, Retis's way
 * (collector/nft/bpf/nft_hook.bpf.c). With the nf_tables trace static key on (any
 * `meta nftrace set` expression loaded, e.g. the helper table), nf_tables calls it for every
 * traced rule, return and policy of every packet; it sees the verdict, chain, table and rule.
 *
 * Its arguments moved across kernels:
 *   <= 6.3: (struct nft_traceinfo *info, const struct nft_chain *chain, enum nft_trace_types type),
 *           info->pkt, info->rule, info->verdict
 *   >= 6.4: (const struct nft_pktinfo *pkt, const struct nft_verdict *verdict,
 *            const struct nft_rule_dp *rule, struct nft_traceinfo *info, enum nft_trace_types type),
 *           the chain found from the rule blob's trailing nft_rule_dp_last, or the base chain
 * User space finds each argument's position in BTF (cfg_nft_*_arg, -1: absent); the rest is read
 * through CO-RE flavours below. The program entry (capture_kprobe/fentry) gathers them into a
 * per-CPU slot, drops verdicts not asked for (--nft-verdicts, before any event work), and gets the
 * skb from the packet info; nft_fill() writes the nft block of the record.
 */
#ifndef __RETIS_NFT_BPF_H
#define __RETIS_NFT_BPF_H

#include "nftct.layout.h"

const volatile __s32 cfg_nft_info_arg = -1;
const volatile __s32 cfg_nft_pkt_arg = -1;
const volatile __s32 cfg_nft_chain_arg = -1;
const volatile __s32 cfg_nft_rule_arg = -1;
const volatile __s32 cfg_nft_verdict_arg = -1;
const volatile __s32 cfg_nft_type_arg = -1;
/* Bit (code + 5) set: report verdict code (NFT_RETURN -5 ... NF_REPEAT 4), as Retis. */
const volatile __u32 cfg_nft_verdicts = 0;

#define NFT_TRACETYPE_POLICY_ 1
#define NFT_TRACETYPE_RETURN_ 2
#define NFT_CONTINUE_ (-1)

/* <= 6.3 layout of struct nft_traceinfo. */
struct nft_traceinfo___old {
	const struct nft_pktinfo *pkt;
	const struct nft_base_chain *basechain;
	const struct nft_rule_dp *rule;
	const struct nft_verdict *verdict;
} __attribute__((preserve_access_index));

struct nft_rule_dp___bits {
	__u64 is_last : 1, dlen : 12, handle : 42;
} __attribute__((preserve_access_index));

struct nft_rule_dp_last___new {
	const struct nft_chain *chain;
} __attribute__((preserve_access_index));

/*
 * The slot is a plain array of u64, not a struct: clang attached CO-RE relocations to a local
 * struct's field loads once they fed a BPF_CORE_READ, which libbpf cannot resolve.
 */
struct retis_nft_args {
	__u64 v[8];
};
enum { NA_INFO, NA_PKT, NA_CHAIN, NA_RULE, NA_VERDICT, NA_TYPE, NA_CODE, NA_POLICY };
#define NA(a, f) ((a)->v[NA_##f])

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct retis_nft_args);
} nft_args_slot SEC(".maps");

static __always_inline struct retis_nft_args *nft_slot(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&nft_args_slot, &zero);
}

/* >= 6.4: the chain of a rule is in the nft_rule_dp_last after the chain's last rule. */
static __always_inline __u64 nft_chain_of_rule(__u64 rule)
{
	struct nft_rule_dp___bits *r = (void *)rule;

	/* Kernels before 6.4 pass the chain: this walk must not even be relocated there. */
	if (!bpf_core_type_exists(struct nft_rule_dp_last___new))
		return 0;
	for (int i = 0; i < 256; i++) {
		if (!r)
			return 0;
		if (BPF_CORE_READ_BITFIELD_PROBED(r, is_last)) {
			struct nft_rule_dp_last___new *last = (void *)r;

			return (__u64)BPF_CORE_READ(last, chain);
		}
		r = (void *)r + bpf_core_type_size(struct nft_rule_dp___bits) + BPF_CORE_READ_BITFIELD_PROBED(r, dlen);
	}
	return 0;
}

/*
 * Complete the arguments (pkt, rule, verdict, chain), decide whether this verdict is reported,
 * and return the packet's skb through *skb. false: no event.
 */
static __always_inline bool nft_prepare(struct retis_nft_args *a, struct sk_buff **skb)
{
	struct nft_traceinfo___old *old = (void *)NA(a, INFO);
	const struct nft_base_chain *base;
	__u32 shift;

	barrier_var(old);
	if (!NA(a, INFO))
		return false;
	if (!NA(a, PKT) && bpf_core_field_exists(old->pkt))
		NA(a, PKT) = (__u64)BPF_CORE_READ(old, pkt);
	if (cfg_nft_rule_arg < 0 && bpf_core_field_exists(old->rule))
		NA(a, RULE) = (__u64)BPF_CORE_READ(old, rule);
	if (!NA(a, VERDICT) && bpf_core_field_exists(old->verdict))
		NA(a, VERDICT) = (__u64)BPF_CORE_READ(old, verdict);
	/* Casts of slot fields go through locals: inside BPF_CORE_READ they would be relocated too. */
	struct nft_traceinfo *info = (void *)NA(a, INFO);

	/* barrier_var: else clang folds the slot load into the relocated access chain. */
	barrier_var(info);
	base = BPF_CORE_READ(info, basechain);
	if (!NA(a, CHAIN)) {
		if (!NA(a, RULE)) {
			if (!base)
				return false;
			NA(a, CHAIN) = (__u64)base + bpf_core_field_offset(struct nft_base_chain, chain);
		} else {
			NA(a, CHAIN) = nft_chain_of_rule(NA(a, RULE));
		}
	}
	if (!NA(a, CHAIN))
		return false;
	NA(a, POLICY) = NA(a, TYPE) == NFT_TRACETYPE_POLICY_;
	if (NA(a, POLICY))
		NA(a, CODE) = base ? BPF_CORE_READ(base, policy) : 0;
	else if (NA(a, VERDICT)) {
		struct nft_verdict *v = (void *)NA(a, VERDICT);

		barrier_var(v);
		NA(a, CODE) = BPF_CORE_READ(v, code);
	}
	else
		return false;
	shift = (__u32)((__s32)NA(a, CODE) + 5);
	if (shift >= 32 || !(cfg_nft_verdicts & (1U << shift)))
		return false;
	struct nft_pktinfo *pkt = (void *)NA(a, PKT);

	barrier_var(pkt);
	*skb = pkt ? BPF_CORE_READ(pkt, skb) : NULL;
	return true;
}

/* Write the nft block from the slot nft_prepare() filled. */
static __always_inline bool nft_fill(void *blk)
{
	struct retis_nft_event *e = blk;
	struct retis_nft_args *a = nft_slot();
	const struct nft_chain *chain;
	struct nft_rule_dp___bits *rule;
	const struct nft_verdict *v;
	char *name;

	if (!a || !NA(a, CHAIN))
		return false;
	chain = (void *)NA(a, CHAIN);
	rule = (void *)NA(a, RULE);
	v = (void *)NA(a, VERDICT);
	barrier_var(chain);
	barrier_var(rule);
	barrier_var(v);
	e->policy = NA(a, POLICY);
	e->verdict = (__s32)NA(a, CODE);
	name = BPF_CORE_READ(chain, table, name);
	bpf_probe_read_kernel_str(e->table_name, sizeof(e->table_name), name);
	name = BPF_CORE_READ(chain, name);
	bpf_probe_read_kernel_str(e->chain_name, sizeof(e->chain_name), name);
	e->verdict_chain_name[0] = 0;
	if (v) {
		name = BPF_CORE_READ(v, chain, name);
		if (name)
			bpf_probe_read_kernel_str(e->verdict_chain_name, sizeof(e->verdict_chain_name), name);
	}
	e->table_handle = BPF_CORE_READ(chain, table, handle);
	e->chain_handle = BPF_CORE_READ(chain, handle);
	/* As Retis: no handle for a missing or trailing rule, nor for an implicit return. */
	e->rule_handle = -1;
	if (rule && !BPF_CORE_READ_BITFIELD_PROBED(rule, is_last) &&
	    !(NA(a, TYPE) == NFT_TRACETYPE_RETURN_ && (__s32)NA(a, CODE) == NFT_CONTINUE_))
		e->rule_handle = BPF_CORE_READ_BITFIELD_PROBED(rule, handle);
	NA(a, CHAIN) = 0;
	return true;
}

#endif /* __RETIS_NFT_BPF_H */
