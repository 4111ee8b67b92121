/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reading an skb: field reads for both kinds of programs, its address as a number, and where its
 * packet starts. Shared by the capture's probes and the packet filters, which must agree on the
 * bytes they see.
 *
 * Include after retis/common.bpf.h.
 */
#ifndef __RETIS_SKB_BPF_H
#define __RETIS_SKB_BPF_H

/*
 * Field reads. BTF-typed programs (tp_btf, fentry, fexit) get trusted kernel pointers and read
 * them with plain loads; the others go through bpf_probe_read_kernel. `direct` is a literal at
 * every call site, so the compiler keeps only one of the two forms per program.
 */
#define RD(direct, p, f) ((direct) ? (p)->f : BPF_CORE_READ(p, f))
#define RD_BF(direct, p, f) ((direct) ? BPF_CORE_READ_BITFIELD(p, f) : BPF_CORE_READ_BITFIELD_PROBED(p, f))

/* A kernel pointer as a plain number. BTF-typed pointers stay pointers for the verifier through
 * casts, and hashing a pointer or passing it to a global function as a number is refused; a copy
 * through memory yields a scalar. */
static __always_inline __u64 scalar_of(void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

/* Offsets in skb->head can be unset (~0) or reset; see Retis's helpers.h. */
#define OFF_UNSET(x) ((x) == (__u16)~0U)

/* Where an skb's packet starts (Retis's process_packet). */
struct retis_skb_geo {
	unsigned char *start; /* first byte: the MAC header, or the network header when `l3` */
	long linear;          /* bytes of linear data (skb->len - skb->data_len) */
	long avail;           /* linear bytes from `start` on (may be <= 0) */
	__u32 wire;           /* packet length from `start` on */
	__u16 proto;          /* `l3` only: skb->protocol (__be16), what a fake Ethernet header carries */
	bool l3;              /* no valid MAC header: the packet starts at its network header */
};

/*
 * From the MAC header when it is valid, else from the network header (the caller then puts a fake
 * Ethernet header carrying skb->protocol before it). False when neither is valid.
 */
static __always_inline bool retis_skb_geometry(struct sk_buff *skb, bool direct, struct retis_skb_geo *g)
{
	unsigned char *head = RD(direct, skb, head);
	long headroom = (long)(RD(direct, skb, data) - head);
	__u16 mac = RD(direct, skb, mac_header);
	__u16 network = RD(direct, skb, network_header);
	__u32 len = RD(direct, skb, len);
	__u16 mac_len = RD(direct, skb, mac_len);
	bool net_valid = network && !OFF_UNSET(network);
	long off;

	g->linear = (long)len - (long)RD(direct, skb, data_len);
	if (!OFF_UNSET(mac) && !(net_valid && network == mac && mac_len == 0)) {
		off = (long)mac - headroom;
		g->start = head + mac;
		g->proto = 0;
		g->l3 = false;
	} else if (net_valid) {
		off = (long)network - headroom;
		g->start = head + network;
		g->proto = RD(direct, skb, protocol);
		g->l3 = true;
	} else {
		return false;
	}
	g->avail = g->linear - off;
	g->wire = len - off;
	return true;
}

#endif /* __RETIS_SKB_BPF_H */
