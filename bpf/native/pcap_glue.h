/* SPDX-License-Identifier: GPL-2.0 */
#ifndef RETIS_PCAP_GLUE_H
#define RETIS_PCAP_GLUE_H
#include <stddef.h>
#include <stdio.h>

/* Classic BPF of `expr` for `linktype` (DLT_*), optimized. 0, or -1 with libpcap's message in err. */
int retis_pcap_compile(const char *expr, int linktype, int snaplen, void **insns, size_t *len, char *err, size_t errlen);
/* libpcap's own interpreter (bpf_filter): the program's return value, 0 = no match. */
unsigned int retis_pcap_filter(const void *code, const unsigned char *pkt, unsigned int wirelen, unsigned int caplen);
#endif
