/**
 * Record blocks of the ct and nft collectors. They follow the fixed event header, the packet room
 * and the stack room of a record (capture.layout.ts): ct first (when the probe collects ct), then
 * nft (when it collects nft). Their offsets depend on the probe only (snap length, stack), so the
 * decoder gets them per probe (ProbeInfo.ctOff / nftOff) instead of from the header.
 *
 *   struct retis_ct_head   state (ctinfo: _nfct & 7), parent (1: conn[1] is the master conntrack)
 *   struct retis_ct_conn   conn[2]  (conn[0]: the skb's conntrack, conn[1]: its master)
 *   struct retis_nft_event (nft verdict, written by the kprobe path or by user space for the
 *                           netlink path)
 */
import { defineEnum, defineLayout } from '../../bpf/layout.ts';

/** Flags of a ct conn (Retis's ct_flags). */
export const CtFlags = defineEnum('retis_ct_flags', {
  dir_orig: 1 << 0,
  dir_reply: 1 << 1,
  ipv4: 1 << 2,
  ipv6: 1 << 3,
  tcp: 1 << 4,
  udp: 1 << 5,
  icmp: 1 << 6,
  sctp: 1 << 7,
  /** the kernel has nf_conn.mark (CONFIG_NF_CONNTRACK_MARK) */
  mark: 1 << 8,
});

export const ctHead = defineLayout('retis_ct_head', {
  state: { type: 'u32', doc: 'enum ip_conntrack_info: skb->_nfct & 7' },
  parent: { type: 'u32', doc: '1 when conn[1] holds the master conntrack' },
});

export const ctConn = defineLayout(
  'retis_ct_conn',
  {
    status: { type: 'u64', doc: 'nf_conn.status (IPS_* bits)' },
    labels: { type: 'u8', length: 16, doc: 'nf_conn_labels.bits, as in memory' },
    o_src: { type: 'u8', length: 16, doc: 'orig tuple source address (network order; IPv4 in the first 4 bytes)' },
    o_dst: { type: 'u8', length: 16 },
    r_src: { type: 'u8', length: 16 },
    r_dst: { type: 'u8', length: 16 },
    vtag_o: { type: 'u32', doc: 'SCTP verification tags (network order)' },
    vtag_r: 'u32',
    flags: { type: 'u32', doc: 'enum retis_ct_flags' },
    mark: 'u32',
    o_sdata: { type: 'u16', doc: 'source port / ICMP id, network order' },
    o_ddata: { type: 'u16', doc: 'destination port (network order) / ICMP type << 8 | code' },
    r_sdata: 'u16',
    r_ddata: 'u16',
    zone_id: 'u16',
    proto_state: { type: 'u8', doc: 'enum tcp_conntrack / sctp_conntrack' },
  },
  'One conntrack entry as Retis reports it (ct_event).',
);

/** Bytes of the ct block: head + base conn + parent conn. */
export const CT_BLOCK_BYTES = ctHead.size + 2 * ctConn.size;

export const NFT_NAME_BYTES = 128;

export const nftEvent = defineLayout(
  'retis_nft_event',
  {
    table_handle: 's64',
    chain_handle: 's64',
    rule_handle: { type: 's64', doc: '-1: none (policy, implicit return)' },
    verdict: { type: 's32', doc: 'raw verdict code (NF_DROP 0, NF_ACCEPT 1, NFT_CONTINUE -1, ...)' },
    policy: { type: 'u8', doc: '1: the base chain policy was applied' },
    table_name: { type: 'char', length: NFT_NAME_BYTES },
    chain_name: { type: 'char', length: NFT_NAME_BYTES },
    verdict_chain_name: { type: 'char', length: NFT_NAME_BYTES },
  },
  'One nftables verdict (Retis nft_event).',
);
