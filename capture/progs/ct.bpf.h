/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ct collector: the skb's conntrack entry (skb->_nfct), as Retis's ct hook reads it
 * (collector/ct/bpf/ct_hook.bpf.c): state from the ctinfo bits, zone, mark, labels, status, both
 * tuples, TCP/SCTP state, and the same for the master conntrack (expectations: FTP data, ...).
 * Written into the ct block of the record (nftct.layout.ts); user space turns it into the `ct`
 * section. Everything is read with CO-RE and guarded by existence checks, so the program loads on
 * kernels without conntrack zones, marks or labels (and without nf_conn at all).
 */
#ifndef __RETIS_CT_BPF_H
#define __RETIS_CT_BPF_H

#include "nftct.layout.h"

#define CT_NFCT_INFOMASK 7UL
#define CT_ZONE_DIR_ORIG (1 << 0)
#define CT_ZONE_DIR_REPL (1 << 1)
#define CT_ORIG tuplehash[0].tuple
#define CT_REPLY tuplehash[1].tuple
#define CT_NFPROTO_IPV4 2
#define CT_NFPROTO_IPV6 10
#define CT_IPPROTO_ICMP 1
#define CT_IPPROTO_TCP 6
#define CT_IPPROTO_UDP 17
#define CT_IPPROTO_SCTP 132

#define CT_BLOCK_BYTES (sizeof(struct retis_ct_head) + 2 * sizeof(struct retis_ct_conn))

static __always_inline bool ct_supported(__u16 l3, __u8 l4)
{
	return (l3 == CT_NFPROTO_IPV4 || l3 == CT_NFPROTO_IPV6) &&
	       (l4 == CT_IPPROTO_TCP || l4 == CT_IPPROTO_UDP || l4 == CT_IPPROTO_ICMP || l4 == CT_IPPROTO_SCTP);
}

/* See ctnetlink_dump_labels(): the labels live in a conntrack extension, when built in. */
static __always_inline void ct_labels(struct retis_ct_conn *c, struct nf_conn *ct)
{
	struct nf_ct_ext *ext;
	int id;
	__u8 off = 0;

	if (!bpf_core_enum_value_exists(enum nf_ct_ext_id, NF_CT_EXT_LABELS))
		return;
	ext = BPF_CORE_READ(ct, ext);
	if (!ext)
		return;
	id = bpf_core_enum_value(enum nf_ct_ext_id, NF_CT_EXT_LABELS);
	if (id < 0 || id >= 16)
		return;
	bpf_probe_read_kernel(&off, 1, (__u8 *)ext + bpf_core_field_offset(ext->offset) + id);
	if (off)
		bpf_probe_read_kernel(c->labels, sizeof(c->labels), (__u8 *)ext + off);
}

static __always_inline void ct_conn(struct retis_ct_conn *c, struct nf_conn *ct, __u16 l3, __u8 l4)
{
	__builtin_memset(c, 0, sizeof(*c));
	if (bpf_core_field_exists(ct->zone)) {
		__u8 dir = BPF_CORE_READ(ct, zone.dir);

		if (dir & CT_ZONE_DIR_ORIG)
			c->flags |= RETIS_CT_FLAGS_DIR_ORIG;
		if (dir & CT_ZONE_DIR_REPL)
			c->flags |= RETIS_CT_FLAGS_DIR_REPLY;
		c->zone_id = BPF_CORE_READ(ct, zone.id);
	}
	if (bpf_core_field_exists(ct->mark)) {
		c->mark = BPF_CORE_READ(ct, mark);
		c->flags |= RETIS_CT_FLAGS_MARK;
	}
	c->status = BPF_CORE_READ(ct, status);
	if (l3 == CT_NFPROTO_IPV4) {
		c->flags |= RETIS_CT_FLAGS_IPV4;
		bpf_core_read(c->o_src, 4, &ct->CT_ORIG.src.u3.ip);
		bpf_core_read(c->o_dst, 4, &ct->CT_ORIG.dst.u3.ip);
		bpf_core_read(c->r_src, 4, &ct->CT_REPLY.src.u3.ip);
		bpf_core_read(c->r_dst, 4, &ct->CT_REPLY.dst.u3.ip);
	} else {
		c->flags |= RETIS_CT_FLAGS_IPV6;
		bpf_core_read(c->o_src, 16, &ct->CT_ORIG.src.u3.ip6);
		bpf_core_read(c->o_dst, 16, &ct->CT_ORIG.dst.u3.ip6);
		bpf_core_read(c->r_src, 16, &ct->CT_REPLY.src.u3.ip6);
		bpf_core_read(c->r_dst, 16, &ct->CT_REPLY.dst.u3.ip6);
	}
	switch (l4) {
	case CT_IPPROTO_TCP:
	case CT_IPPROTO_UDP:
	case CT_IPPROTO_SCTP:
		/* The port is at the same place for the three (union nf_conntrack_man_proto). */
		c->flags |= l4 == CT_IPPROTO_TCP ? RETIS_CT_FLAGS_TCP : l4 == CT_IPPROTO_UDP ? RETIS_CT_FLAGS_UDP : RETIS_CT_FLAGS_SCTP;
		bpf_core_read(&c->o_sdata, 2, &ct->CT_ORIG.src.u.all);
		bpf_core_read(&c->o_ddata, 2, &ct->CT_ORIG.dst.u.all);
		bpf_core_read(&c->r_sdata, 2, &ct->CT_REPLY.src.u.all);
		bpf_core_read(&c->r_ddata, 2, &ct->CT_REPLY.dst.u.all);
		if (l4 == CT_IPPROTO_TCP) {
			c->proto_state = BPF_CORE_READ(ct, proto.tcp.state);
		} else if (l4 == CT_IPPROTO_SCTP) {
			c->proto_state = BPF_CORE_READ(ct, proto.sctp.state);
			c->vtag_o = BPF_CORE_READ(ct, proto.sctp.vtag[0]);
			c->vtag_r = BPF_CORE_READ(ct, proto.sctp.vtag[1]);
		}
		break;
	case CT_IPPROTO_ICMP:
		c->flags |= RETIS_CT_FLAGS_ICMP;
		bpf_core_read(&c->o_sdata, 2, &ct->CT_ORIG.src.u.icmp.id);
		c->o_ddata = ((__u16)BPF_CORE_READ(ct, CT_ORIG.dst.u.icmp.type) << 8) | (__u8)BPF_CORE_READ(ct, CT_ORIG.dst.u.icmp.code);
		bpf_core_read(&c->r_sdata, 2, &ct->CT_REPLY.src.u.icmp.id);
		c->r_ddata = ((__u16)BPF_CORE_READ(ct, CT_REPLY.dst.u.icmp.type) << 8) | (__u8)BPF_CORE_READ(ct, CT_REPLY.dst.u.icmp.code);
		break;
	}
	ct_labels(c, ct);
}

/* The ct block of a record: the packet's conntrack entry and, when it has one, its master. */
struct retis_ct_block {
	struct retis_ct_head head;
	struct retis_ct_conn conn[2];
};

_Static_assert(sizeof(struct retis_ct_block) == CT_BLOCK_BYTES, "ct block: padding between its parts");

/*
 * Fill the ct block `blk` for the skb at `skb_addr`; returns 0 when the skb has no (supported)
 * conntrack. A global function: the verifier checks it once per program, on its own, instead
 * of once per path that reaches the call (its two ct_conn() and their protocol cases were
 * ~34k of the 51k instructions verified per default probe, ~60 ms of each probe's load). The
 * price of that: its arguments are what a global function may take, memory of the block's
 * size (maybe NULL) and a plain number for the skb, read with helpers only. It also keeps its
 * locals out of the caller's frame, which the OVS hooks need (512-byte BPF stack).
 */
__noinline int ct_fill(struct retis_ct_block *blk, __u64 skb_addr)
{
	struct sk_buff *skb = (struct sk_buff *)skb_addr;
	struct nf_conn *ct, *master;
	unsigned long nfct;
	__u16 l3;
	__u8 l4;

	if (!blk || !bpf_core_field_exists(skb->_nfct) || !bpf_core_type_exists(struct nf_conn))
		return 0;
	nfct = BPF_CORE_READ(skb, _nfct);
	/* Untracked (ctinfo 7, no entry) and no conntrack at all: no section, as in Retis. */
	ct = (struct nf_conn *)(nfct & ~CT_NFCT_INFOMASK);
	if (!ct)
		return 0;
	l3 = BPF_CORE_READ(ct, CT_ORIG.src.l3num);
	l4 = BPF_CORE_READ(ct, CT_ORIG.dst.protonum);
	if (!ct_supported(l3, l4))
		return 0;
	blk->head.state = nfct & CT_NFCT_INFOMASK;
	blk->head.parent = 0;
	ct_conn(&blk->conn[0], ct, l3, l4);
	master = BPF_CORE_READ(ct, master);
	if (master) {
		l3 = BPF_CORE_READ(master, CT_ORIG.src.l3num);
		l4 = BPF_CORE_READ(master, CT_ORIG.dst.protonum);
		ct_conn(&blk->conn[1], master, l3, l4);
		blk->head.parent = 1;
	}
	return 1;
}

#endif /* __RETIS_CT_BPF_H */
