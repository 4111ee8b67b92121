/**
 * The contract between generated filter code and its placeholders in
 * bpf/include/retis/filter.bpf.h (magic numbers, region size, scratch buffer layout). The C side
 * has _Static_asserts on the same offsets; tests/filters load the generated code in the kernel.
 */
export const FILTER_L2_MAGIC = 0x7e7f0002;
export const FILTER_L3_MAGIC = 0x7e7f0003;
export const FILTER_META_MAGIC = 0x7e7f0004;
/** Instructions per placeholder region. */
export const FILTER_ROOM = 2048;
/** Packet bytes a packet filter sees, from its offset 0. */
export const FILTER_DATA = 256;
/** Offset of the L3 view in buf->data (a fake Ethernet header precedes it). */
export const FILTER_L3_OFF = 14;
/** struct retis_filter_buf: data[272], mem[16] (u32), meta[128]. */
export const MEM_OFF = 272;
export const META_OFF = 336;
export const META_SIZE = 128;
export const BUF_SIZE = 464;

/** libpcap link types (pcap/dlt.h). */
export const DLT_EN10MB = 1;
/** DLT_RAW as Linux libpcap defines it: packets start at the IP header (v4 or v6). */
export const DLT_RAW = 12;
