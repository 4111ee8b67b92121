// SPDX-License-Identifier: GPL-2.0
/*
 * libpcap calls for the addon, in their own translation unit: libpcap's <pcap/bpf.h> and libbpf
 * both define `struct bpf_program` and `struct bpf_insn` (classic vs extended BPF), so they cannot
 * meet in one file. Only plain C types cross this boundary.
 */
#include <stdlib.h>
#include <string.h>
#include <pcap/pcap.h>

#include "pcap_glue.h"

int retis_pcap_compile(const char *expr, int linktype, int snaplen, void **insns, size_t *len, char *err, size_t errlen)
{
	struct bpf_program fp;
	pcap_t *p = pcap_open_dead(linktype, snaplen);
	int ret = -1;

	*insns = NULL;
	*len = 0;
	if (!p) {
		snprintf(err, errlen, "pcap_open_dead failed (out of memory?)");
		return -1;
	}
	if (pcap_compile(p, &fp, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
		snprintf(err, errlen, "%s", pcap_geterr(p));
		goto out;
	}
	*len = fp.bf_len * sizeof(struct bpf_insn);
	*insns = malloc(*len ? *len : 1);
	if (!*insns) {
		snprintf(err, errlen, "out of memory");
		pcap_freecode(&fp);
		goto out;
	}
	memcpy(*insns, fp.bf_insns, *len);
	pcap_freecode(&fp);
	ret = 0;
out:
	pcap_close(p);
	return ret;
}

unsigned int retis_pcap_filter(const void *code, const unsigned char *pkt, unsigned int wirelen, unsigned int caplen)
{
	return bpf_filter((const struct bpf_insn *)code, pkt, wirelen, caplen);
}
