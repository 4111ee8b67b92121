/**
 * nftables trace events over netlink (NFNLGRP_NFTRACE): what `nft monitor trace` reads. The nft
 * collector's path on kernels where __nft_trace_packet cannot be probed (no kprobes, fentry
 * refused). The kernel emits one NFT_MSG_TRACE message per traced rule/return/policy evaluation
 * of a packet whose skb->nf_trace is set (`meta nftrace set 1`), in the network namespace the
 * packet is in: one socket per namespace.
 *
 * Node cannot open netlink sockets: the addon opens and binds one (nfnetlinkOpen) and the fd is
 * read here with fs.read on a libuv thread; the socket's receive timeout (100 ms) makes each read
 * return, so closing never races a blocked read.
 */
import fs from 'node:fs';
import { native } from '../../bpf/native.ts';

export const NFNLGRP_NFTRACE = 9;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_TRACE = 17;
const NLMSG_ERROR = 2;
const NLMSG_OVERRUN = 4;

// enum nft_trace_attributes
const A = { TABLE: 1, CHAIN: 2, RULE_HANDLE: 3, TYPE: 4, VERDICT: 5, ID: 6, LL_HEADER: 7, NETWORK_HEADER: 8, TRANSPORT_HEADER: 9, IIF: 10, IIFTYPE: 11, OIF: 12, OIFTYPE: 13, MARK: 14, NFPROTO: 15, POLICY: 16 } as const;
// enum nft_verdict_attributes
const NFTA_VERDICT_CODE = 1;
const NFTA_VERDICT_CHAIN = 2;

/** enum nft_trace_types */
export const TRACE_TYPE = { RULE: 3, RETURN: 2, POLICY: 1 } as const;

/** One NFT_MSG_TRACE message. */
export interface NftTrace {
  /** nfgenmsg.nfgen_family: the table's family (NFPROTO_*). */
  family: number;
  id: number;
  type: number;
  table: string;
  chain: string;
  ruleHandle: bigint | undefined;
  verdict: number | undefined;
  verdictChain: string | undefined;
  policy: number | undefined;
  iif: number | undefined;
  oif: number | undefined;
  nfproto: number | undefined;
  network: Uint8Array | undefined;
  transport: Uint8Array | undefined;
}

function str(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + off, end - off).toString('utf8');
}

/** Parse one datagram (possibly several messages). Malformed parts are counted, never thrown. */
export function parseTraceDatagram(b: Uint8Array, n: number): { traces: NftTrace[]; malformed: number; overrun: boolean } {
  const view = new DataView(b.buffer, b.byteOffset, n);
  const traces: NftTrace[] = [];
  let malformed = 0;
  let overrun = false;
  let p = 0;
  while (p + 16 <= n) {
    const len = view.getUint32(p, true);
    const type = view.getUint16(p + 4, true);
    if (len < 16 || p + len > n) {
      malformed++;
      break;
    }
    if (type === NLMSG_OVERRUN || type === NLMSG_ERROR) overrun ||= type === NLMSG_OVERRUN;
    else if (type === ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE) && len >= 20) {
      const t: NftTrace = {
        family: view.getUint8(p + 16), id: 0, type: 0, table: '', chain: '', ruleHandle: undefined, verdict: undefined, verdictChain: undefined,
        policy: undefined, iif: undefined, oif: undefined, nfproto: undefined, network: undefined, transport: undefined,
      };
      let a = p + 20;
      const end = p + len;
      while (a + 4 <= end) {
        const alen = view.getUint16(a, true);
        const atype = view.getUint16(a + 2, true) & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
        if (alen < 4 || a + alen > end) {
          malformed++;
          break;
        }
        const d = a + 4;
        const dl = alen - 4;
        switch (atype) {
          case A.TABLE: t.table = str(b, d, dl); break;
          case A.CHAIN: t.chain = str(b, d, dl); break;
          case A.RULE_HANDLE: if (dl >= 8) t.ruleHandle = view.getBigUint64(d, false); break;
          case A.TYPE: if (dl >= 4) t.type = view.getUint32(d, false); break;
          case A.ID: if (dl >= 4) t.id = view.getUint32(d, false); break;
          case A.IIF: if (dl >= 4) t.iif = view.getUint32(d, false); break;
          case A.OIF: if (dl >= 4) t.oif = view.getUint32(d, false); break;
          case A.NFPROTO: if (dl >= 4) t.nfproto = view.getUint32(d, false); break;
          case A.POLICY: if (dl >= 4) t.policy = view.getInt32(d, false); break;
          case A.NETWORK_HEADER: t.network = b.slice(d, d + dl); break;
          case A.TRANSPORT_HEADER: t.transport = b.slice(d, d + dl); break;
          case A.VERDICT: {
            let v = d;
            while (v + 4 <= d + dl) {
              const vl = view.getUint16(v, true);
              const vt = view.getUint16(v + 2, true) & 0x3fff;
              if (vl < 4 || v + vl > d + dl) break;
              if (vt === NFTA_VERDICT_CODE && vl >= 8) t.verdict = view.getInt32(v + 4, false);
              else if (vt === NFTA_VERDICT_CHAIN) t.verdictChain = str(b, v + 4, vl - 4);
              v += (vl + 3) & ~3;
            }
            break;
          }
          default:
            break;
        }
        a += (alen + 3) & ~3;
      }
      traces.push(t);
    }
    p += (len + 3) & ~3;
  }
  return { traces, malformed, overrun };
}

export interface TraceSocketStats {
  messages: number;
  traces: number;
  malformed: number;
  /** Receive buffer overflows (ENOBUFS): trace messages the kernel dropped. */
  overruns: number;
}

/** One NFNLGRP_NFTRACE socket in one network namespace, read until closed. */
export class TraceSocket {
  readonly stats: TraceSocketStats = { messages: 0, traces: 0, malformed: 0, overruns: 0 };
  private fd: number;
  private closing = false;
  private reading: Promise<void> = Promise.resolve();
  private readonly buf = Buffer.alloc(1 << 16);

  /**
   * @param netnsPath namespace file (/run/netns/NAME, /proc/PID/ns/net), or null for ours
   * @param onTrace called for each trace message, with the time it was read (CLOCK_MONOTONIC ns)
   */
  constructor(readonly netnsPath: string | null, readonly inum: number, private readonly onTrace: (t: NftTrace, recvNs: bigint, sock: TraceSocket) => void, private readonly onError: (e: Error) => void) {
    try {
      this.fd = native().nfnetlinkOpen(netnsPath, NFNLGRP_NFTRACE, 4 << 20);
    } catch (e) {
      throw new Error(`cannot listen to nftables trace events${netnsPath ? ` in ${netnsPath}` : ''}: ${(e as Error).message}`);
    }
  }

  start(): void {
    this.reading = new Promise((resolve) => {
      // After close() is asked, reading goes on until the socket is empty (a read times out):
      // messages already queued belong to the capture.
      const next = (drained = false): void => {
        if (this.closing && drained) return resolve();
        fs.read(this.fd, this.buf, 0, this.buf.length, null, (err, n) => {
          if (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return next(true);
            if (code === 'ENOBUFS') this.stats.overruns++;
            else if (code !== 'EAGAIN' && code !== 'EINTR' && code !== 'EWOULDBLOCK') {
              this.onError(new Error(`reading nftables trace events${this.netnsPath ? ` in ${this.netnsPath}` : ''}: ${err.message}`));
              return resolve();
            }
          } else if (n > 0) {
            const now = process.hrtime.bigint();
            this.stats.messages++;
            const r = parseTraceDatagram(this.buf, n);
            this.stats.malformed += r.malformed;
            if (r.overrun) this.stats.overruns++;
            for (const t of r.traces) {
              this.stats.traces++;
              this.onTrace(t, now, this);
            }
          }
          next();
        });
      };
      next();
    });
  }

  /** Stop reading (the pending read returns within the socket's 100 ms timeout) and close. */
  async close(): Promise<void> {
    if (this.fd < 0) return;
    this.closing = true;
    await this.reading;
    try {
      fs.closeSync(this.fd);
    } catch {
      // Already closed: nothing left to release.
    }
    this.fd = -1;
  }
}
