/**
 * tcpdump-like one-line rendering of a raw packet, byte-identical to Retis's
 * `RawPacket` display (retis-events/src/packet.rs, on top of pnet packet views).
 *
 * Parsing is best effort, as in Retis: text is produced while walking the layers and
 * a layer that cannot be decoded appends `... (truncated or incomplete packet)` or
 * `... (<what> not supported, use 'retis pcap')` to what was already written.
 *
 * Slices are passed as (start, end) offsets into the one buffer rather than
 * subarrays, and each layer reproduces pnet's bounds rules (minimum header size to
 * parse, payload clamped to the buffer, length fields taken from the headers) since
 * they decide which of those outcomes a short or inconsistent packet gets.
 */
import { HEX2, etypeName, hex010, hex06, ipv4At, ipv6At, macAt, protocolName, u16At, u32At } from './net.ts';

export interface PacketFormatOptions {
  /** Print link-layer information (Ethernet addresses, VLAN tags): `retis print -e`. */
  printLl: boolean;
}

const TRUNCATED = '... (truncated or incomplete packet)';
function notSupported(what: string): string {
  return `... (${what} not supported, use 'retis pcap')`;
}

/** A layer's outcome: undefined when fine, else the error text to append. */
type Outcome = string | undefined;

const ETH_VLAN = 0x8100;
const ETH_PBRIDGE = 0x88a8;
const ETH_QINQ = 0x9100;
const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_ARP = 0x0806;
const ETH_MACSEC = 0x88e5;
const ETH_TEB = 0x6558;

const IPPROTO_ICMP = 1;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_ESP = 50;
const IPPROTO_AH = 51;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_NONXT = 59;
const IPPROTO_SCTP = 132;

/** Minimum header sizes, below which pnet refuses to build a view. */
const MIN_TCP = 20;
const MIN_UDP = 8;
const MIN_SCTP = 12;

/**
 * IPv6 next-header values walked as generic extension headers (retis-pnet's
 * ExtensionIterable), with the names pnet's Display gives them for `exts [..]`.
 */
const IPV6_EXT_NAMES = new Map<number, string>([
  [0, 'Hopopt'],
  [43, 'Ipv6Route'],
  [44, 'Ipv6Frag'],
  [50, 'Esp'],
  [51, 'Ah'],
  [60, 'Ipv6Opts'],
  [135, 'MobilityHeader'],
  [139, 'Hip'],
  [140, 'Shim6'],
  [253, 'Test1'],
  [254, 'Test2'],
]);

/** TCP option names, by option kind. */
const TCP_OPT_NAMES = new Map<number, string>([
  [0, 'eol'],
  [1, 'nop'],
  [2, 'mss'],
  [3, 'wscale'],
  [4, 'sackOK'],
  [5, 'sack'],
  [6, 'echo'],
  [7, 'echoreply'],
  [8, 'TS'],
  [11, 'cc'],
  [12, 'ccnew'],
  [13, 'ccecho'],
  [19, 'md5'],
  [20, 'scps'],
  [28, 'uto'],
  [29, 'tcp-ao'],
  [30, 'mptcp'],
  [34, 'tfo'],
  [254, 'exp'],
]);

/** SCTP chunk types printed as a bare `[NAME]`. */
const SCTP_SIMPLE_CHUNKS: (string | undefined)[] = [];
for (const [n, name] of [
  [4, 'HEARTBEAT'],
  [5, 'HEARTBEAT_ACK'],
  [6, 'ABORT'],
  [7, 'SHUTDOWN'],
  [8, 'SHUTDOWN_ACK'],
  [9, 'ERROR'],
  [10, 'COOKIE_ECHO'],
  [11, 'COOKIE_ACK'],
  [12, 'ECNE'],
  [13, 'CWR'],
  [14, 'SHUTDOWN_COMPLETE'],
] as const)
  SCTP_SIMPLE_CHUNKS[n] = name;

const MACSEC_TCI_ES = 1 << 4;
const MACSEC_TCI_SC = 1 << 3;
const MACSEC_TCI_SCB = 1 << 2;
const MACSEC_TCI_E = 1 << 1;
const MACSEC_TCI_C = 1 << 0;

class PacketPrinter {
  out = '';

  constructor(
    private readonly d: Uint8Array,
    private readonly ll: boolean,
  ) {}

  ethernet(o: number, end: number): Outcome {
    if (end - o < 14) return TRUNCATED;
    const d = this.d;
    const etype = u16At(d, o + 12);
    const name = etypeName(etype);
    // Reported data may not be Ethernet at all; an unknown ethertype is the hint.
    if (name === undefined) return notSupported(`ethertype ${hex06(etype)}`);
    if (this.ll) this.out += `${macAt(d, o + 6)} > ${macAt(d, o)} ethertype ${name} (${hex06(etype)})`;
    return this.traverseVlan(etype, o + 14, end);
  }

  private traverseVlan(etype: number, o: number, end: number): Outcome {
    while (etype === ETH_VLAN || etype === ETH_PBRIDGE || etype === ETH_QINQ) {
      if (end - o < 4) return TRUNCATED;
      const inner = u16At(this.d, o + 2);
      if (this.ll) this.vlan(o, inner);
      etype = inner;
      o += 4;
    }
    return this.etype(etype, o, end);
  }

  private vlan(o: number, inner: number): void {
    const b = this.d[o];
    const vid = ((b & 0x0f) << 8) | this.d[o + 1];
    this.out += ` vlan ${vid} p ${b >> 5}${(b >> 4) & 1 ? ' DEI' : ''}`;
    const name = etypeName(inner);
    this.out += name === undefined ? ` ethertype (${hex06(inner)})` : ` ethertype ${name} (${hex06(inner)})`;
  }

  private etype(etype: number, o: number, end: number): Outcome {
    // With link-layer info printed, this is not the start of the output.
    if (this.ll) this.out += ' ';
    const len = end - o;
    switch (etype) {
      case ETH_MACSEC:
        return len < 6 ? TRUNCATED : this.macsec(o, end);
      case ETH_ARP:
        return len < 28 ? TRUNCATED : this.arp(o);
      case ETH_IPV4:
        return len < 20 ? TRUNCATED : this.ipv4(o, end);
      case ETH_IPV6:
        return len < 40 ? TRUNCATED : this.ipv6(o, end);
      default:
        return notSupported(`ethertype ${hex06(etype)}`);
    }
  }

  private arp(o: number): Outcome {
    const d = this.d;
    const op = u16At(d, o + 6);
    switch (op) {
      case 1: {
        this.out += `request who-has ${ipv4At(d, o + 24)}`;
        let zero = true;
        for (let i = 18; i < 24; i++) if (d[o + i] !== 0) zero = false;
        if (!zero) this.out += ` (${macAt(d, o + 18)})`;
        this.out += ` tell ${ipv4At(d, o + 14)}`;
        return undefined;
      }
      case 2:
        this.out += `reply ${ipv4At(d, o + 14)} is-at ${macAt(d, o + 8)}`;
        return undefined;
      case 3:
        this.out += `reverse request who-is ${macAt(d, o + 18)} tell ${macAt(d, o + 8)}`;
        return undefined;
      case 4:
        this.out += `reverse reply ${macAt(d, o + 18)} at ${ipv4At(d, o + 24)}`;
        return undefined;
      default:
        return notSupported(`ARP operation ${op}`);
    }
  }

  /** Source and destination ports, when the L4 header is big enough to be parsed. */
  private ports(proto: number, s: number, e: number): [number, number] | undefined {
    const len = e - s;
    const min = proto === IPPROTO_TCP ? MIN_TCP : proto === IPPROTO_UDP ? MIN_UDP : proto === IPPROTO_SCTP ? MIN_SCTP : -1;
    if (min < 0 || len < min) return undefined;
    return [u16At(this.d, s), u16At(this.d, s + 2)];
  }

  private ipv4(o: number, end: number): Outcome {
    const d = this.d;
    const hdrLen = (d[o] & 0x0f) * 4;
    const optLen = Math.max(hdrLen - 20, 0);
    const total = u16At(d, o + 2);
    const proto = d[o + 9];
    const l4Len = Math.max(total - hdrLen, 0);

    // Payload bounds: after the options, as long as the header says, clamped.
    let ps = o + 20 + optLen;
    let pe: number;
    if (end <= ps) ps = pe = end;
    else pe = Math.min(ps + l4Len, end);

    const src = ipv4At(d, o + 12);
    const dst = ipv4At(d, o + 16);
    const ports = this.ports(proto, ps, pe);
    this.out += ports ? `${src}.${ports[0]} > ${dst}.${ports[1]}` : `${src} > ${dst}`;

    const tos = d[o + 1];
    const ecn = tos & 3;
    const frag = ((d[o + 6] & 0x1f) << 8) | d[o + 7];
    this.out += ` tos 0x${(tos >> 2).toString(16)}${ecn === 1 ? ' ECT(1)' : ecn === 2 ? ' ECT(0)' : ecn === 3 ? ' CE' : ''} ttl ${d[o + 8]} id ${u16At(d, o + 4)} off ${frag * 8}`;

    // Retis's naming of the 3 flag bits, kept for identical output even though it is
    // swapped against tcpdump's: the reserved bit prints as `+` and MF as `rsvd`.
    const flags = d[o + 6] >> 5;
    if (flags !== 0) {
      let f = '';
      if (flags & 4) f = '+';
      if (flags & 2) f += f ? ',DF' : 'DF';
      if (flags & 1) f += f ? ',rsvd' : 'rsvd';
      this.out += ` [${f}]`;
    }

    // The header might not be fully filled yet, length unset.
    if (total > 0) this.out += ` len ${total}`;

    if (optLen > 0) {
      const opts = this.ipv4Options(o + 20, Math.min(o + 20 + optLen, end));
      if (opts !== '') this.out += ` opts [${opts}]`;
    }

    const name = protocolName(proto);
    this.out += name === undefined ? ` proto (${proto})` : ` proto ${name} (${proto})`;
    return this.protocol(proto, ps, pe, l4Len);
  }

  /**
   * IPv4 options as Retis lists them: the Debug form of pnet's option number
   * (`Ipv4OptionNumber(N)`), stopping at EOL which is only shown after others.
   */
  private ipv4Options(p: number, oe: number): string {
    const d = this.d;
    let opts = '';
    while (p < oe) {
      const num = d[p] & 0x1f;
      const hasLen = num === 0 || num === 1 ? 0 : 1;
      const lenByte = hasLen && p + 1 < oe ? d[p + 1] : 0;
      const size = 1 + hasLen + Math.max(lenByte - 2, 0);
      if (num === 0) {
        if (opts !== '') opts += ',Ipv4OptionNumber(0)';
        break;
      }
      opts += `${opts === '' ? '' : ','}Ipv4OptionNumber(${num})`;
      p += Math.min(size, oe - p);
    }
    return opts;
  }

  private ipv6(o: number, end: number): Outcome {
    const d = this.d;
    const tc = ((d[o] & 0x0f) << 4) | (d[o + 1] >> 4);
    const flow = ((d[o + 1] & 0x0f) << 16) | (d[o + 2] << 8) | d[o + 3];
    const plen = u16At(d, o + 4);
    const nh = d[o + 6];

    let ps = o + 40;
    let pe: number;
    if (end <= ps) ps = pe = end;
    else pe = Math.min(ps + plen, end);

    const src = ipv6At(d, o + 8);
    const dst = ipv6At(d, o + 24);
    // Ports come from the first header after IPv6, extensions not skipped.
    const ports = this.ports(nh, ps, pe);
    this.out += ports ? `${src}.${ports[0]} > ${dst}.${ports[1]}` : `${src} > ${dst}`;

    const ecn = tc & 3;
    this.out += `${ecn === 1 ? ' ECT(1)' : ecn === 2 ? ' ECT(0)' : ecn === 3 ? ' CE' : ''} ttl ${d[o + 7]} label 0x${flow.toString(16)}`;
    if (plen > 0) this.out += ` len ${plen}`;

    // Skip extension headers, each (hdr_ext_len + 1) * 8 bytes long.
    let proto = nh;
    let prev = nh;
    let len = plen;
    let p = ps;
    let exts = '';
    for (;;) {
      const extName = IPV6_EXT_NAMES.get(proto);
      if (extName === undefined || pe - p < 2) break;
      const size = (d[p + 1] + 1) * 8;
      exts += exts === '' ? extName : ',' + extName;
      prev = proto;
      proto = d[p];
      len = Math.max(len - size, 0);
      // Retis would panic on an extension running past the buffer; clamp instead.
      p = Math.min(p + size, pe);
    }
    if (exts !== '') this.out += ` exts [${exts}]`;

    // No next header: any payload is garbage.
    if (prev === IPPROTO_NONXT) return undefined;

    const name = protocolName(proto);
    this.out += name === undefined ? ` proto (${proto})` : ` proto ${name} (${proto})`;
    return this.protocol(proto, p, pe, len);
  }

  private macsec(s: number, e: number): Outcome {
    const d = this.d;
    const tci = d[s] >> 2;
    const sciLen = tci & MACSEC_TCI_SC ? 8 : 0;

    if (this.ll) {
      this.out += `an ${d[s] & 3} pn ${u32At(d, s + 2)}`;
      let flags = '';
      if (tci & MACSEC_TCI_E) flags += 'E';
      if (tci & MACSEC_TCI_C) flags += 'C';
      if (tci & MACSEC_TCI_ES) flags += 'S';
      if (tci & MACSEC_TCI_SCB) flags += 'B';
      if (tci & MACSEC_TCI_SC) flags += 'I';
      this.out += ` flags [${flags}]`;
      const sl = d[s + 1] & 0x3f;
      if (sl > 0) this.out += ` sl ${sl}`;
      if (tci & MACSEC_TCI_SC) {
        let sci = '';
        for (let i = s + 6, n = Math.min(s + 14, e); i < n; i++) sci += HEX2[d[i]];
        this.out += ` sci 0x${sci}`;
      }
    }

    if (tci & (MACSEC_TCI_E | MACSEC_TCI_C)) {
      // Encrypted or modified: nothing more to decode; give a hint if nothing was printed.
      if (!this.ll) this.out += '802.1AE MACsec frame';
      return undefined;
    }

    const ps = s + 6 + sciLen;
    // Retis would panic on fewer than 2 payload bytes; report truncation instead.
    if (e - ps < 2) return TRUNCATED;
    return this.traverseVlan(u16At(d, ps), ps + 2, e);
  }

  private protocol(proto: number, s: number, e: number, payloadLen: number): Outcome {
    const len = e - s;
    switch (proto) {
      case IPPROTO_UDP:
        return len < MIN_UDP ? TRUNCATED : this.udp(s, e);
      case IPPROTO_TCP:
        return len < MIN_TCP ? TRUNCATED : this.tcp(s, e, payloadLen);
      case IPPROTO_ICMP:
      case IPPROTO_ICMPV6:
        if (len < 4) return TRUNCATED;
        this.out += ` type ${this.d[s]} code ${this.d[s + 1]}`;
        return undefined;
      case IPPROTO_AH:
        return len < 12 ? TRUNCATED : this.ah(s, e, payloadLen);
      case IPPROTO_ESP:
        if (len < 8) return TRUNCATED;
        this.out += ` spi ${hex010(u32At(this.d, s))} seq 0x${u32At(this.d, s + 4).toString(16)}`;
        return undefined;
      case IPPROTO_SCTP:
        return len < MIN_SCTP ? TRUNCATED : this.sctp(s, e, payloadLen);
      default:
        return notSupported(`protocol 0x${proto.toString(16)}`);
    }
  }

  private udp(s: number, e: number): Outcome {
    const d = this.d;
    // Reported length excludes the UDP header.
    this.out += ` len ${Math.max(u16At(d, s + 4) - 8, 0)}`;
    const dport = u16At(d, s + 2);
    const ps = s + 8;
    if (dport === 4789 || dport === 8472) return e - ps < 8 ? TRUNCATED : this.vxlan(ps, e);
    if (dport === 6081) return e - ps < 8 ? TRUNCATED : this.geneve(ps, e);
    return undefined;
  }

  private tcp(s: number, e: number, payloadLen: number): Outcome {
    const d = this.d;
    const doff = d[s + 12] >> 4;
    const fl = d[s + 13];

    let flags = '';
    if (fl & 0x01) flags += 'F';
    if (fl & 0x02) flags += 'S';
    if (fl & 0x04) flags += 'R';
    if (fl & 0x08) flags += 'P';
    if (fl & 0x10) flags += '.';
    if (fl & 0x20) flags += 'U';
    if (fl & 0x40) flags += 'E';
    if (fl & 0x80) flags += 'W';
    // AccECN (RFC 7560) uses the lowest reserved bit.
    if (d[s + 12] & 1) flags += 'e';
    this.out += ` flags [${flags}]`;

    const seq = u32At(d, s + 4);
    const dataLen = Math.max(payloadLen - doff * 4, 0);
    // u32 arithmetic, wrapping as Retis's release build does.
    this.out += dataLen > 0 ? ` seq ${seq}:${(seq + dataLen) >>> 0}` : ` seq ${seq}`;
    if (fl & 0x10) this.out += ` ack ${u32At(d, s + 8)}`;
    this.out += ` win ${u16At(d, s + 14)}`;

    if (doff * 4 > 20) {
      this.out += ` [${this.tcpOptions(s + 20, Math.min(s + doff * 4, e))}]`;
    }
    return undefined;
  }

  private tcpOptions(p: number, oe: number): string {
    const d = this.d;
    let out = '';
    let first = true;
    while (p < oe) {
      const kind = d[p];
      const hasLen = kind === 0 || kind === 1 ? 0 : 1;
      const lenByte = hasLen && p + 1 < oe ? d[p + 1] : 0;
      const dataLen = lenByte >= 2 ? lenByte - 2 : 0;
      // Option payload bytes actually present in the buffer.
      const ps = p + 1 + hasLen;
      const pl = oe <= ps ? 0 : Math.min(dataLen, oe - ps);

      if (!first) out += ',';
      first = false;
      out += TCP_OPT_NAMES.get(kind) ?? '?';

      switch (kind) {
        case 2: // MSS
          if (pl >= 2) out += ` ${u16At(d, ps)}`;
          break;
        case 3: // window scale
          if (pl >= 1) out += ` ${d[ps]}`;
          break;
        case 5: // SACK blocks
          if (dataLen % 8 !== 0) {
            out += ' invalid';
          } else {
            out += ` ${dataLen / 8} `;
            for (let i = 0; i + 8 <= dataLen; i += 8) {
              if (i + 8 <= pl) out += `{${u32At(d, ps + i)}:${u32At(d, ps + i + 4)}}`;
            }
          }
          break;
        case 6:
        case 7:
        case 11:
        case 12:
        case 13:
          if (pl >= 4) out += ` ${u32At(d, ps)}`;
          break;
        case 8: // timestamps
          if (pl >= 8) out += ` val ${u32At(d, ps)} ecr ${u32At(d, ps + 4)}`;
          break;
        case 34: // TCP Fast Open
          if (dataLen === 0) {
            out += ' cookiereq';
          } else {
            out += ' cookie ';
            for (let i = 0; i < dataLen; i++) out += i < pl ? `0x${d[ps + i].toString(16)}` : '??';
          }
          break;
      }
      p += Math.min(1 + hasLen + dataLen, oe - p);
    }
    return out;
  }

  private ah(s: number, e: number, payloadLen: number): Outcome {
    const d = this.d;
    const lenField = d[s + 1];
    const icvLen = Math.max(lenField - 1, 0) * 4;
    let icv = '';
    for (let i = s + 12, n = Math.min(s + 12 + icvLen, e); i < n; i++) icv += HEX2[d[i]];
    this.out += ` spi ${hex010(u32At(d, s + 4))} seq 0x${u32At(d, s + 8).toString(16)} icv 0x${icv}`;

    const next = d[s];
    const name = protocolName(next);
    this.out += name === undefined ? ` proto (${next})` : ` proto ${name} (${next})`;
    const ps = Math.min(s + 12 + icvLen, e);
    return this.protocol(next, ps, e, Math.max(payloadLen - (lenField + 2) * 4, 0));
  }

  private sctp(s: number, e: number, payloadLen: number): Outcome {
    const d = this.d;
    this.out += ` vtag 0x${u32At(d, s + 4).toString(16)}`;

    let remaining = Math.max(payloadLen - 12, 0);
    let p = s + 12;
    while (p < e && e - p >= 4) {
      const type = d[p];
      const clen = u16At(d, p + 2);
      const padded = (clen + 3) & ~3;
      const cpl = Math.max(padded - 4, 0);
      const ps = p + 4;
      const pl = e <= ps ? 0 : Math.min(cpl, e - ps);

      switch (type) {
        case 1:
        case 2: {
          if (pl < 16) return TRUNCATED;
          const what = type === 1 ? 'INIT' : 'INIT_ACK';
          this.out += ` [${what} init_tag 0x${u32At(d, ps).toString(16)} rwnd ${u32At(d, ps + 4)} OS ${u16At(d, ps + 8)} MIS ${u16At(d, ps + 10)} init_TSN ${u32At(d, ps + 12)}]`;
          break;
        }
        case 0: {
          if (pl < 12) return TRUNCATED;
          const flags = d[p + 1];
          this.out += ' [DATA';
          if (flags & 0x07) {
            this.out += ` (${flags & 0x04 ? 'U' : ''}${flags & 0x02 ? 'B' : ''}${flags & 0x01 ? 'E' : ''})`;
          }
          this.out += ` TSN ${u32At(d, ps)} SID ${u16At(d, ps + 4)} SSEQ ${u16At(d, ps + 6)} PPID 0x${u32At(d, ps + 8).toString(16)}]`;
          break;
        }
        case 3:
          if (pl < 12) return TRUNCATED;
          this.out += ` [SACK cum_ack ${u32At(d, ps)} a_rwnd ${u32At(d, ps + 4)} #gap_acks ${u16At(d, ps + 8)} #dup_tsns ${u16At(d, ps + 10)}]`;
          break;
        default: {
          const name = SCTP_SIMPLE_CHUNKS[type];
          this.out += name === undefined ? ` [UNKNOWN:${type}]` : ` [${name}]`;
        }
      }

      remaining = Math.max(remaining - padded, 0);
      p += Math.min(4 + cpl, e - p);
    }

    // Chunks must account for the whole announced payload.
    return remaining !== 0 ? TRUNCATED : undefined;
  }

  private vxlan(s: number, e: number): Outcome {
    const d = this.d;
    const vni = (d[s + 4] << 16) | (d[s + 5] << 8) | d[s + 6];
    this.out += ` vxlan [${d[s] & 0x08 ? 'I' : ''}] vni 0x${vni.toString(16)} `;
    return this.ethernet(s + 8, e);
  }

  private geneve(s: number, e: number): Outcome {
    const d = this.d;
    const optLen = (d[s] & 0x3f) * 4;
    const proto = u16At(d, s + 2);
    const vni = (d[s + 4] << 16) | (d[s + 5] << 8) | d[s + 6];
    this.out += ` geneve [${d[s + 1] & 0x80 ? 'O' : ''}${d[s + 1] & 0x40 ? 'C' : ''}] vni 0x${vni.toString(16)}`;

    if (this.ll) {
      const name = etypeName(proto);
      this.out += name === undefined ? ` proto (${hex06(proto)})` : ` proto ${name} (${hex06(proto)})`;
    }

    if (optLen > 0) this.out += ` [${this.geneveOptions(s + 8, Math.min(s + 8 + optLen, e))}]`;

    this.out += ' ';
    const ps = Math.min(s + 8 + optLen, e);
    return proto === ETH_TEB ? this.ethernet(ps, e) : this.etype(proto, ps, e);
  }

  private geneveOptions(p: number, oe: number): string {
    const d = this.d;
    let out = '';
    while (p < oe && oe - p >= 4) {
      const cls = u16At(d, p);
      const type = d[p + 2];
      const len = (d[p + 3] & 0x1f) * 4;
      if (out !== '') out += ',';
      out += `class 0x${cls.toString(16)} type 0x${type.toString(16)}${type & 0x80 ? '(C)' : ''} len ${len}`;

      // Netdev class GRO hint option.
      const ps = p + 4;
      const pl = oe <= ps ? 0 : Math.min(len, oe - ps);
      if (cls === 0x100 && type === 0x1 && pl >= 4) {
        const b = d[ps];
        out += ` (proto ${b & 3} ${(b >> 2) & 1 ? 'v6' : 'v4'} nh ${d[ps + 1]} tp ${d[ps + 2]} hlen ${d[ps + 3]})`;
      }
      p += Math.min(4 + len, oe - p);
    }
    return out;
  }
}

/**
 * Render raw packet bytes (starting at the Ethernet header) as `retis print` does
 * in an event's packet line.
 */
export function formatPacket(data: Uint8Array, opts: PacketFormatOptions): string {
  const p = new PacketPrinter(data, opts.printLl);
  const err = p.ethernet(0, data.length);
  return err === undefined ? p.out : p.out + err;
}
