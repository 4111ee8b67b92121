/**
 * Packet line rendering. The first three cases are Retis's own unit tests
 * (retis-events/src/packet.rs); the others are built packets whose expected text was
 * derived by hand from Retis's formatting code and pnet's bounds rules.
 */
import { describe, expect, it } from 'vitest';
import { formatPacket } from '../../analyze/format/packet.ts';
import { b64 } from './util.ts';
import { MAC1, MAC2, arp, bytes, eth, icmp, ipv4, ipv6, tcp, toBytes, u16, u32, udp, vlan, type Bytes } from './build.ts';

const fmt = (b: Bytes | Uint8Array, printLl = false): string =>
  formatPacket(b instanceof Uint8Array ? b : toBytes(b), { printLl });

const LL = `${MAC1} > ${MAC2}`;
const ICMP4 = (o: Partial<Parameters<typeof ipv4>[0]> = {}): Bytes => ipv4({ proto: 1, ...o }, icmp(8, 0));
const ICMP4_TEXT = '10.0.0.1 > 10.0.0.2 tos 0x0 ttl 64 id 1 off 0 len 28 proto ICMP (1) type 8 code 0';

describe('Retis unit-test packets', () => {
  it('ICMP in Geneve', () => {
    const p = b64(
      'ukoiHKOOzikYufsvCABFAACGORIAAEAR2VIKACoBCgAqAkL5F8EAcmiGAABlWAAAAQAO2mLRzBfW99tozRgIAEUAAFRH90AAQAGIrwoAKwEKACsCCAA5rgUFAAE5cv5nAAAAAL+eAwAAAAAAEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nw==',
    );
    expect(fmt(p)).toBe(
      '10.0.42.1.17145 > 10.0.42.2.6081 tos 0x0 ttl 64 id 14610 off 0 len 134 proto UDP (17) len 106 geneve [] vni 0x1 10.0.43.1 > 10.0.43.2 tos 0x0 ttl 64 id 18423 off 0 [DF] len 84 proto ICMP (1) type 8 code 0',
    );
  });

  it('TCP over IPv6 with link-layer info', () => {
    const p = b64(
      'rrBKar+vnh09MZ47ht1gBvSKACgGQBERAAAAAAAAAAAAAAAAAAEREQAAAAAAAAAAAAAAAAAC22QAULIRwcAAAAAAoAL9ICJTAAACBAWgBAIIClP9HoIAAAAAAQMDBw==',
    );
    expect(fmt(p, true)).toBe(
      '9e:1d:3d:31:9e:3b > ae:b0:4a:6a:bf:af ethertype IPv6 (0x86dd) 1111::1.56164 > 1111::2.80 ttl 64 label 0x6f48a len 40 proto TCP (6) flags [S] seq 2987508160 win 64800 [mss 1440,sackOK,TS val 1409097346 ecr 0,nop,wscale 7]',
    );
  });

  it('SCTP INIT', () => {
    const p = b64(
      'Oh7dUvtE6h3Fhm4TCABFAgBEAABAAECE0jEKACoBCgAqAoVME8QAAAAAAAAAAAEAACTFizMuAAGgAAAK///40kCcAAwABgAFAACAAAAEwAAABA==',
    );
    expect(fmt(p)).toBe(
      '10.0.42.1.34124 > 10.0.42.2.5060 tos 0x0 ECT(0) ttl 64 id 0 off 0 [DF] len 68 proto SCTP (132) vtag 0x0 [INIT init_tag 0xc58b332e rwnd 106496 OS 10 MIS 65535 init_TSN 4174528668]',
    );
  });
});

describe('Ethernet and VLAN', () => {
  it('prints link-layer info only with printLl', () => {
    expect(fmt(eth(0x0800, ICMP4()))).toBe(ICMP4_TEXT);
    expect(fmt(eth(0x0800, ICMP4()), true)).toBe(`${LL} ethertype IPv4 (0x0800) ${ICMP4_TEXT}`);
  });

  it('802.1Q tag with priority and DEI', () => {
    const p = eth(0x8100, vlan({ vid: 100, pcp: 5, dei: true }, 0x0800, ICMP4()));
    expect(fmt(p)).toBe(ICMP4_TEXT);
    expect(fmt(p, true)).toBe(`${LL} ethertype 802.1Q (0x8100) vlan 100 p 5 DEI ethertype IPv4 (0x0800) ${ICMP4_TEXT}`);
  });

  it('QinQ: 802.1ad outer tag, 802.1Q inner tag', () => {
    const p = eth(0x88a8, vlan({ vid: 10 }, 0x8100, vlan({ vid: 20, pcp: 1 }, 0x0800, ICMP4())));
    expect(fmt(p, true)).toBe(
      `${LL} ethertype 802.1Q-QinQ (0x88a8) vlan 10 p 0 ethertype 802.1Q (0x8100) vlan 20 p 1 ethertype IPv4 (0x0800) ${ICMP4_TEXT}`,
    );
  });

  it('unsupported ethertypes', () => {
    const lldp = eth(0x88cc, [1, 2, 3, 4]);
    expect(fmt(lldp)).toBe("... (ethertype 0x88cc not supported, use 'retis pcap')");
    expect(fmt(lldp, true)).toBe("... (ethertype 0x88cc not supported, use 'retis pcap')");
    // Behind a VLAN tag the outer layers are already printed with -e.
    const tagged = eth(0x8100, vlan({ vid: 1 }, 0x88cc, [1, 2, 3, 4]));
    expect(fmt(tagged)).toBe("... (ethertype 0x88cc not supported, use 'retis pcap')");
    expect(fmt(tagged, true)).toBe(
      `${LL} ethertype 802.1Q (0x8100) vlan 1 p 0 ethertype (0x88cc) ... (ethertype 0x88cc not supported, use 'retis pcap')`,
    );
    // Named but not decoded (MPLS).
    expect(fmt(eth(0x8847, [0, 0, 0, 0]), true)).toBe(
      `${LL} ethertype MPLS unicast (0x8847) ... (ethertype 0x8847 not supported, use 'retis pcap')`,
    );
  });

  it('truncated headers', () => {
    expect(fmt([1, 2, 3])).toBe('... (truncated or incomplete packet)');
    expect(fmt(new Uint8Array(0))).toBe('... (truncated or incomplete packet)');
    expect(fmt(eth(0x0800, ICMP4().slice(0, 10)), true)).toBe(`${LL} ethertype IPv4 (0x0800) ... (truncated or incomplete packet)`);
    expect(fmt(eth(0x8100, [0, 1]), true)).toBe(`${LL} ethertype 802.1Q (0x8100)... (truncated or incomplete packet)`);
  });
});

describe('ARP', () => {
  it('request, with and without target hardware address', () => {
    expect(fmt(eth(0x0806, arp({ op: 1 })))).toBe('request who-has 10.0.0.2 tell 10.0.0.1');
    expect(fmt(eth(0x0806, arp({ op: 1, tha: 'ff:ff:ff:ff:ff:ff' })), true)).toBe(
      `${LL} ethertype ARP (0x0806) request who-has 10.0.0.2 (ff:ff:ff:ff:ff:ff) tell 10.0.0.1`,
    );
  });

  it('reply and reverse ARP', () => {
    expect(fmt(eth(0x0806, arp({ op: 2, sha: MAC2, spa: '10.0.0.2' })))).toBe('reply 10.0.0.2 is-at 02:00:00:00:00:02');
    expect(fmt(eth(0x0806, arp({ op: 3, tha: '0a:0b:0c:0d:0e:0f' })))).toBe(
      'reverse request who-is 0a:0b:0c:0d:0e:0f tell 02:00:00:00:00:01',
    );
    expect(fmt(eth(0x0806, arp({ op: 4, tha: '0a:0b:0c:0d:0e:0f', tpa: '10.0.0.9' })))).toBe(
      'reverse reply 0a:0b:0c:0d:0e:0f at 10.0.0.9',
    );
  });

  it('unknown operation and short ARP', () => {
    expect(fmt(eth(0x0806, arp({ op: 5 })))).toBe("... (ARP operation 5 not supported, use 'retis pcap')");
    expect(fmt(eth(0x0806, arp({ op: 1 }).slice(0, 27)))).toBe('... (truncated or incomplete packet)');
  });
});

describe('IPv4', () => {
  it('tos, ECN, fragment offset and flag naming', () => {
    const p = eth(0x0800, ipv4({ proto: 17, tos: 0xbb, flags: 0b001, frag: 100, options: [0x94, 4, 0, 0] }, udp(1234, 53, [])));
    expect(fmt(p)).toBe(
      '10.0.0.1.1234 > 10.0.0.2.53 tos 0x2e CE ttl 64 id 1 off 800 [rsvd] len 32 opts [Ipv4OptionNumber(20)] proto UDP (17) len 0',
    );
    const df = eth(0x0800, ipv4({ proto: 1, tos: 0x01, flags: 0b110, ttl: 1, id: 65535 }, icmp(0, 0)));
    expect(fmt(df)).toBe('10.0.0.1 > 10.0.0.2 tos 0x0 ECT(1) ttl 1 id 65535 off 0 [+,DF] len 28 proto ICMP (1) type 0 code 0');
    const all = eth(0x0800, ipv4({ proto: 1, tos: 0x12, flags: 0b111 }, icmp(0, 0)));
    expect(fmt(all)).toBe('10.0.0.1 > 10.0.0.2 tos 0x4 ECT(0) ttl 64 id 1 off 0 [+,DF,rsvd] len 28 proto ICMP (1) type 0 code 0');
  });

  it('options list: EOL shown only after other options', () => {
    const nops = eth(0x0800, ipv4({ proto: 1, options: [1, 1, 0, 0] }, icmp(8, 0)));
    expect(fmt(nops)).toBe(
      '10.0.0.1 > 10.0.0.2 tos 0x0 ttl 64 id 1 off 0 len 32 opts [Ipv4OptionNumber(1),Ipv4OptionNumber(1),Ipv4OptionNumber(0)] proto ICMP (1) type 8 code 0',
    );
    const eol = eth(0x0800, ipv4({ proto: 1, options: [0, 0, 0, 0] }, icmp(8, 0)));
    expect(fmt(eol)).toBe('10.0.0.1 > 10.0.0.2 tos 0x0 ttl 64 id 1 off 0 len 32 proto ICMP (1) type 8 code 0');
    // Record route (7) with its length, then timestamp (0x44 -> 4).
    const rr = eth(0x0800, ipv4({ proto: 1, options: [7, 7, 4, 0, 0, 0, 0, 0x44, 4, 5, 0, 0] }, icmp(8, 0)));
    expect(fmt(rr)).toBe(
      '10.0.0.1 > 10.0.0.2 tos 0x0 ttl 64 id 1 off 0 len 40 opts [Ipv4OptionNumber(7),Ipv4OptionNumber(4),Ipv4OptionNumber(0)] proto ICMP (1) type 8 code 0',
    );
  });

  it('unset total length is not printed', () => {
    expect(fmt(eth(0x0800, ipv4({ proto: 1, total: 0 }, icmp(8, 0))))).toBe(
      '10.0.0.1 > 10.0.0.2 tos 0x0 ttl 64 id 1 off 0 proto ICMP (1)... (truncated or incomplete packet)',
    );
  });

  it('unsupported and unnamed protocols', () => {
    expect(fmt(eth(0x0800, ipv4({ proto: 47 }, [0, 0, 8, 0])))).toBe(
      "10.0.0.1 > 10.0.0.2 tos 0x0 ttl 64 id 1 off 0 len 24 proto GRE (47)... (protocol 0x2f not supported, use 'retis pcap')",
    );
    expect(fmt(eth(0x0800, ipv4({ proto: 200 }, [])))).toBe(
      "10.0.0.1 > 10.0.0.2 tos 0x0 ttl 64 id 1 off 0 len 20 proto (200)... (protocol 0xc8 not supported, use 'retis pcap')",
    );
  });

  it('L4 header cut by the capture: no ports, truncated', () => {
    const full = eth(0x0800, ipv4({ proto: 6 }, tcp({ sport: 1, dport: 2, flags: 2 })));
    expect(fmt(full.slice(0, 14 + 30))).toBe(
      '10.0.0.1 > 10.0.0.2 tos 0x0 ttl 64 id 1 off 0 len 40 proto TCP (6)... (truncated or incomplete packet)',
    );
  });
});

describe('TCP', () => {
  const ip = (seg: Bytes): Bytes => eth(0x0800, ipv4({ proto: 6, flags: 0b010 }, seg));
  const HDR = '10.0.0.1.40000 > 10.0.0.2.80 tos 0x0 ttl 64 id 1 off 0 [DF]';

  it('payload range, ack and timestamps', () => {
    const seg = tcp(
      { sport: 40000, dport: 80, seq: 1000, ack: 2000, flags: 0x18, win: 512, options: [1, 1, 8, 10, ...u32(1), ...u32(2)] },
      [0x68, 0x65, 0x6c, 0x6c, 0x6f],
    );
    expect(fmt(ip(seg))).toBe(`${HDR} len 57 proto TCP (6) flags [P.] seq 1000:1005 ack 2000 win 512 [nop,nop,TS val 1 ecr 2]`);
  });

  it('every flag, sequence wrap-around, SACK blocks', () => {
    const seg = tcp(
      {
        sport: 40000,
        dport: 80,
        seq: 0xffffffff,
        ack: 7,
        flags: 0xff,
        reserved: 1,
        win: 1,
        options: [5, 18, ...u32(1), ...u32(2), ...u32(3), ...u32(4), 1, 1],
      },
      [1, 2, 3],
    );
    expect(fmt(ip(seg))).toBe(`${HDR} len 63 proto TCP (6) flags [FSRP.UEWe] seq 4294967295:2 ack 7 win 1 [sack 2 {1:2}{3:4},nop,nop]`);
  });

  it('SYN options as Linux sends them; no ack without ACK flag', () => {
    const seg = tcp({
      sport: 40000,
      dport: 80,
      seq: 42,
      ack: 99,
      flags: 0x02,
      win: 64240,
      options: [2, 4, 0x05, 0xb4, 4, 2, 8, 10, ...u32(1), ...u32(0), 1, 3, 3, 7],
    });
    expect(fmt(ip(seg))).toBe(`${HDR} len 60 proto TCP (6) flags [S] seq 42 win 64240 [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7]`);
  });

  it('fast open, unknown kinds, invalid SACK, EOL padding', () => {
    const seg = tcp({
      sport: 40000,
      dport: 80,
      flags: 0x02,
      options: [34, 2, 34, 6, 0x0a, 0x1b, 0x00, 0xff, 99, 2, 5, 5, 1, 2, 3, 0, 0, 0, 0, 0],
    });
    expect(fmt(ip(seg))).toBe(
      `${HDR} len 60 proto TCP (6) flags [S] seq 0 win 0 [tfo cookiereq,tfo cookie 0xa0x1b0x00xff,?,sack invalid,eol,eol,eol,eol,eol]`,
    );
  });

  it('echo, connection count, md5 and user timeout options', () => {
    const seg = tcp({
      sport: 40000,
      dport: 80,
      flags: 0x10,
      options: [6, 6, ...u32(42), 11, 6, ...u32(7), 19, 18, ...new Array<number>(16).fill(0), 28, 4, 0, 1, 1, 1],
    });
    expect(fmt(ip(seg))).toBe(`${HDR} len 76 proto TCP (6) flags [.] seq 0 ack 0 win 0 [echo 42,cc 7,md5,uto,nop,nop]`);
  });

  it('options cut by the capture keep what is present', () => {
    const seg = tcp({ sport: 40000, dport: 80, flags: 0x02, options: [2, 4, 0x05, 0xb4, 8, 10, ...u32(1), ...u32(0), 1, 1] });
    // Cut in the middle of the timestamp option: its values are not printed.
    const p = ip(seg).slice(0, 14 + 20 + 20 + 8);
    expect(fmt(p)).toBe('10.0.0.1.40000 > 10.0.0.2.80 tos 0x0 ttl 64 id 1 off 0 [DF] len 56 proto TCP (6) flags [S] seq 0 win 0 [mss 1460,TS]');
  });
});

describe('UDP and tunnels', () => {
  const inner = eth(0x0806, arp({ op: 1, spa: '10.1.0.1', tpa: '10.1.0.2' }), '02:00:00:00:00:0b', '02:00:00:00:00:0c');

  it('plain UDP length excludes the header', () => {
    expect(fmt(eth(0x0800, ipv4({ proto: 17 }, udp(5353, 5353, [1, 2, 3]))))).toBe(
      '10.0.0.1.5353 > 10.0.0.2.5353 tos 0x0 ttl 64 id 1 off 0 len 31 proto UDP (17) len 3',
    );
  });

  it('VXLAN on 4789 and 8472', () => {
    const vx = bytes(0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, inner);
    expect(fmt(eth(0x0800, ipv4({ proto: 17 }, udp(5000, 4789, vx))))).toBe(
      '10.0.0.1.5000 > 10.0.0.2.4789 tos 0x0 ttl 64 id 1 off 0 len 78 proto UDP (17) len 50 vxlan [I] vni 0x123456 request who-has 10.1.0.2 tell 10.1.0.1',
    );
    const noI = bytes(0, 0, 0, 0, 0, 0, 5, 0, inner);
    expect(fmt(eth(0x0800, ipv4({ proto: 17 }, udp(5000, 8472, noI))), true)).toBe(
      `${LL} ethertype IPv4 (0x0800) 10.0.0.1.5000 > 10.0.0.2.8472 tos 0x0 ttl 64 id 1 off 0 len 78 proto UDP (17) len 50 vxlan [] vni 0x5 02:00:00:00:00:0b > 02:00:00:00:00:0c ethertype ARP (0x0806) request who-has 10.1.0.2 tell 10.1.0.1`,
    );
    // Too short to hold the inner Ethernet header.
    expect(fmt(eth(0x0800, ipv4({ proto: 17 }, udp(5000, 4789, bytes(0x08, 0, 0, 0, 0, 0, 1, 0, 1, 2)))))).toBe(
      '10.0.0.1.5000 > 10.0.0.2.4789 tos 0x0 ttl 64 id 1 off 0 len 38 proto UDP (17) len 10 vxlan [I] vni 0x1 ... (truncated or incomplete packet)',
    );
  });

  it('Geneve with options, flags and a TEB payload', () => {
    const innerIp = eth(0x0800, ipv4({ proto: 1, src: '10.1.0.1', dst: '10.1.0.2' }, icmp(8, 0)), '02:00:00:00:00:0b', '02:00:00:00:00:0c');
    const opts = bytes(...u16(0x0100), 0x01, 1, 0x06, 14, 34, 54, ...u16(0xffff), 0x80, 0);
    const gnv = bytes(0x03, 0xc0, ...u16(0x6558), 0, 0, 1, 0, opts, innerIp);
    const p = eth(0x0800, ipv4({ proto: 17 }, udp(5000, 6081, gnv)));
    const innerText = '10.1.0.1 > 10.1.0.2 tos 0x0 ttl 64 id 1 off 0 len 28 proto ICMP (1) type 8 code 0';
    const optText = '[class 0x100 type 0x1 len 4 (proto 2 v6 nh 14 tp 34 hlen 54),class 0xffff type 0x80(C) len 0]';
    expect(fmt(p)).toBe(
      `10.0.0.1.5000 > 10.0.0.2.6081 tos 0x0 ttl 64 id 1 off 0 len 90 proto UDP (17) len 62 geneve [OC] vni 0x1 ${optText} ${innerText}`,
    );
    expect(fmt(p, true)).toBe(
      `${LL} ethertype IPv4 (0x0800) 10.0.0.1.5000 > 10.0.0.2.6081 tos 0x0 ttl 64 id 1 off 0 len 90 proto UDP (17) len 62 geneve [OC] vni 0x1 proto TEB (0x6558) ${optText} 02:00:00:00:00:0b > 02:00:00:00:00:0c ethertype IPv4 (0x0800) ${innerText}`,
    );
  });

  it('Geneve carrying IPv4 directly: -e doubles the space before it', () => {
    const gnv = bytes(0, 0, ...u16(0x0800), 0, 0, 2, 0, ipv4({ proto: 1, src: '10.1.0.1', dst: '10.1.0.2' }, icmp(8, 0)));
    const p = eth(0x0800, ipv4({ proto: 17 }, udp(5000, 6081, gnv)));
    const innerText = '10.1.0.1 > 10.1.0.2 tos 0x0 ttl 64 id 1 off 0 len 28 proto ICMP (1) type 8 code 0';
    expect(fmt(p)).toBe(`10.0.0.1.5000 > 10.0.0.2.6081 tos 0x0 ttl 64 id 1 off 0 len 64 proto UDP (17) len 36 geneve [] vni 0x2 ${innerText}`);
    expect(fmt(p, true)).toBe(
      `${LL} ethertype IPv4 (0x0800) 10.0.0.1.5000 > 10.0.0.2.6081 tos 0x0 ttl 64 id 1 off 0 len 64 proto UDP (17) len 36 geneve [] vni 0x2 proto IPv4 (0x0800)  ${innerText}`,
    );
  });
});

describe('IPv6', () => {
  it('extension headers, ECN and flow label', () => {
    const hbh = [44, 0, 0, 0, 0, 0, 0, 0];
    const frag = [58, 0, 0, 0, 0, 0, 0, 1];
    const p = eth(
      0x86dd,
      ipv6({ nh: 0, tc: 0x02, flow: 0x12345, hop: 255, dst: 'ff02:0:0:0:0:1:ff00:1' }, bytes(hbh, frag, 128, 0, 0, 0, 0, 1, 0, 1)),
    );
    expect(fmt(p)).toBe('2001:db8::1 > ff02::1:ff00:1 ECT(0) ttl 255 label 0x12345 len 24 exts [Hopopt,Ipv6Frag] proto ICMPv6 (58) type 128 code 0');
  });

  it('ports are read only when L4 directly follows the IPv6 header', () => {
    const p = eth(0x86dd, ipv6({ nh: 0 }, bytes(17, 0, 0, 0, 0, 0, 0, 0, udp(53, 53, []))));
    expect(fmt(p)).toBe('2001:db8::1 > 2001:db8::2 ttl 64 label 0x0 len 16 exts [Hopopt] proto UDP (17) len 0');
  });

  it('no next header: nothing after the header', () => {
    const p = eth(0x86dd, ipv6({ nh: 59, src: '0:0:0:0:0:0:0:1', dst: '0:0:0:0:0:ffff:a00:1', tc: 0xff }, []), MAC1, MAC2);
    expect(fmt(p, true)).toBe(`${LL} ethertype IPv6 (0x86dd) ::1 > ::ffff:10.0.0.1 CE ttl 64 label 0x0`);
  });

  it('address compression picks the first longest zero run', () => {
    const p = eth(0x86dd, ipv6({ nh: 58, src: '1:0:0:2:0:0:0:3', dst: '1:0:0:2:0:0:3:4' }, [1, 0, 0, 0]));
    expect(fmt(p)).toBe('1:0:0:2::3 > 1::2:0:0:3:4 ttl 64 label 0x0 len 4 proto ICMPv6 (58) type 1 code 0');
    const q = eth(0x86dd, ipv6({ nh: 58, src: '1:2:3:4:5:6:0:8', dst: '0:0:0:0:0:0:0:0' }, [1, 0, 0, 0]));
    expect(fmt(q)).toBe('1:2:3:4:5:6:0:8 > :: ttl 64 label 0x0 len 4 proto ICMPv6 (58) type 1 code 0');
  });

  it('truncated IPv6 header', () => {
    expect(fmt(eth(0x86dd, new Array<number>(39).fill(0)))).toBe('... (truncated or incomplete packet)');
  });
});

describe('SCTP, AH, ESP', () => {
  const sctpHdr = bytes(...u16(5000), ...u16(5001), ...u32(0xdeadbeef), 0, 0, 0, 0);
  const data = bytes(0, 0x03, ...u16(19), ...u32(1), ...u16(2), ...u16(3), ...u32(0x33), 0x61, 0x62, 0x63, 0);
  const sack = bytes(3, 0, ...u16(16), ...u32(10), ...u32(1000), ...u16(0), ...u16(0));
  const HDR = '10.0.0.1.5000 > 10.0.0.2.5001 tos 0x0 ttl 64 id 1 off 0';

  it('DATA and SACK chunks', () => {
    const p = eth(0x0800, ipv4({ proto: 132 }, bytes(sctpHdr, data, sack)));
    expect(fmt(p)).toBe(
      `${HDR} len 68 proto SCTP (132) vtag 0xdeadbeef [DATA (BE) TSN 1 SID 2 SSEQ 3 PPID 0x33] [SACK cum_ack 10 a_rwnd 1000 #gap_acks 0 #dup_tsns 0]`,
    );
  });

  it('simple and unknown chunks; missing bytes are truncation', () => {
    const p = eth(0x0800, ipv4({ proto: 132, total: 60 }, bytes(sctpHdr, 4, 0, 0, 4, 200, 0, 0, 4, 14, 0, 0, 4)));
    expect(fmt(p)).toBe(
      `${HDR} len 60 proto SCTP (132) vtag 0xdeadbeef [HEARTBEAT] [UNKNOWN:200] [SHUTDOWN_COMPLETE]... (truncated or incomplete packet)`,
    );
  });

  it('AH then ICMP; ESP', () => {
    const ah = bytes(1, 4, 0, 0, ...u32(0x100), ...u32(5), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, icmp(8, 0));
    expect(fmt(eth(0x0800, ipv4({ proto: 51 }, ah)))).toBe(
      '10.0.0.1 > 10.0.0.2 tos 0x0 ttl 64 id 1 off 0 len 52 proto AH (51) spi 0x00000100 seq 0x5 icv 0x0102030405060708090a0b0c proto ICMP (1) type 8 code 0',
    );
    const esp = bytes(...u32(0x1234), ...u32(16), 0xaa, 0xbb);
    expect(fmt(eth(0x0800, ipv4({ proto: 50 }, esp)))).toBe(
      '10.0.0.1 > 10.0.0.2 tos 0x0 ttl 64 id 1 off 0 len 30 proto ESP (50) spi 0x00001234 seq 0x10',
    );
  });
});

describe('MACsec', () => {
  it('cleartext frame with SCI', () => {
    const p = eth(0x88e5, bytes(0x21, 0, ...u32(7), 1, 2, 3, 4, 5, 6, 7, 8, ...u16(0x0800), ICMP4()));
    expect(fmt(p)).toBe(ICMP4_TEXT);
    expect(fmt(p, true)).toBe(`${LL} ethertype 802.1AE MACsec (0x88e5) an 1 pn 7 flags [I] sci 0x0102030405060708 ${ICMP4_TEXT}`);
  });

  it('encrypted frame', () => {
    const p = eth(0x88e5, bytes(0x0c, 0x2a, ...u32(7), 0xde, 0xad));
    expect(fmt(p)).toBe('802.1AE MACsec frame');
    expect(fmt(p, true)).toBe(`${LL} ethertype 802.1AE MACsec (0x88e5) an 0 pn 7 flags [EC] sl 42`);
  });
});

describe('robustness', () => {
  it('never throws nor prints undefined/NaN on mutated or cut packets', () => {
    const seeds: Bytes[] = [
      eth(0x8100, vlan({ vid: 1 }, 0x0800, ipv4({ proto: 6, options: [1, 1, 7, 3] }, tcp({ sport: 1, dport: 2, flags: 0x12, options: [2, 4, 5, 0xb4, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0] })))),
      eth(0x86dd, ipv6({ nh: 0 }, bytes(43, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, udp(1, 6081, bytes(1, 0, ...u16(0x6558), 0, 0, 1, 0, 1, 0, 1, 1, 6, 1, 1, 1, eth(0x0806, arp({ op: 1 }))))))),
      eth(0x0800, ipv4({ proto: 132 }, bytes(0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 20, ...new Array<number>(16).fill(1)))),
      eth(0x88e5, bytes(0x20, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, ...u16(0x86dd), ipv6({ nh: 51 }, bytes(58, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 128, 0, 0, 0)))),
      eth(0x0800, ipv4({ proto: 17 }, udp(1, 4789, bytes(8, 0, 0, 0, 0, 0, 1, 0, eth(0x0800, ipv4({ proto: 51 }, bytes(50, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0))))))),
    ];
    let x = 0x12345678;
    const rnd = (n: number): number => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return x % n;
    };
    for (let i = 0; i < 20000; i++) {
      const p = seeds[i % seeds.length].slice(0, rnd(200));
      for (let m = rnd(4); m > 0 && p.length > 0; m--) p[rnd(p.length)] = rnd(256);
      for (const ll of [false, true]) {
        const text = fmt(p, ll);
        expect(text).not.toMatch(/undefined|NaN/);
      }
    }
  });
});
