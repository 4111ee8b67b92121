/**
 * Rendering of Retis's own fixtures, compared with text Retis itself wrote: the
 * comment of every packet in test_events_packets.pcap is the multi-line rendering of
 * the matching event of test_events_packets.json (`retis pcap`).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { EventPrinter, formatEvent, formatSeries, formatUtc } from '../../analyze/format/event-text.ts';
import { COMPAT_DIR, parseSeries, pcapngComments, readEvents } from './util.ts';

const MULTI = { multiline: true, utc: false, printLl: false };
const SINGLE = { multiline: false, utc: false, printLl: false };

const events = readEvents(`${COMPAT_DIR}/test_events_packets.json`);
const withPacket = events.filter((e) => e.packet !== undefined);
const comments = pcapngComments(`${COMPAT_DIR}/test_events_packets.pcap`);

/** EPB timestamps (ns since the epoch) of the fixture: common.timestamp + monotonic offset. */
function pcapTimestamps(file: string): bigint[] {
  const b = readFileSync(file);
  const out: bigint[] = [];
  for (let o = 0; o + 12 <= b.length; o += b.readUInt32LE(o + 4)) {
    if (b.readUInt32LE(o) === 6) out.push((BigInt(b.readUInt32LE(o + 12)) << 32n) | BigInt(b.readUInt32LE(o + 16)));
  }
  return out;
}

describe('test_events_packets: text written by retis pcap', () => {
  it('has one comment per event with a packet', () => {
    expect(events).toHaveLength(27);
    expect(withPacket).toHaveLength(26);
    expect(comments).toHaveLength(26);
  });

  it.each(withPacket.map((ev, i) => [i, ev] as const))('event %i multi-line equals the pcap comment', (i, ev) => {
    expect(formatEvent(ev, MULTI)).toBe(comments[i]);
  });

  it('single-line output joins the same sections with spaces', () => {
    withPacket.forEach((ev, i) => expect(formatEvent(ev, SINGLE)).toBe(comments[i].replaceAll('\n  ', ' ')));
  });

  it('a few comments verbatim', () => {
    expect(comments[3]).toBe(
      '30419169125909 (6) [ping] 11330 [kr] ovs_dp_upcall #1baa83c42ba1ffff8e95c3b67c00 (skb ffff8e95d3009100)\n' +
        '  192.168.125.10 > 192.168.125.11 tos 0x0 ttl 64 id 41977 off 0 [DF] len 84 proto ICMP (1) type 8 code 0\n' +
        '  ns 0x1/4026531840 if 10 (veth-ns01-ovs) rxif 10\n' +
        '  skb [csum none hash 0x7e2c5976 len 98 priority 0 users 1 dataref 1]\n' +
        '  upcall_ret (6/30419169098548) ret 0',
    );
    expect(formatEvent(withPacket[14], MULTI)).toBe(
      '30419169457160 (6) [handler8] 985/995 [tp] skb:kfree_skb #1baa83c9f241ffff8e96eeea2600 (skb ffff8e95d3009600) drop (reason NO_SOCKET)\n' +
        '  192.168.125.11 > 192.168.125.10 tos 0x0 ttl 64 id 19491 off 0 len 84 proto ICMP (1) type 0 code 0\n' +
        '  ns 0x3/4026532741 if 11 (veth-ns01) rxif 11\n' +
        '  skb [csum complete (0xc0473fb8) hash 0x7e2c5976 len 64 priority 0 cloned users 1 dataref 2]\n' +
        '  ct_state REPLY status 0xa icmp orig [192.168.125.10 > 192.168.125.11 type 8 code 0 id 29004] reply [192.168.125.11 > 192.168.125.10 type 0 code 0 id 29004] zone 0 mark 0',
    );
  });

  it('link-layer info goes in front of the packet line', () => {
    const text = formatEvent(withPacket[0], { ...MULTI, printLl: true });
    expect(text.split('\n')[1]).toBe(
      '  a6:c2:11:71:59:45 > fa:5c:bd:8e:cc:01 ethertype IPv4 (0x0800) 192.168.125.10 > 192.168.125.11 tos 0x0 ttl 64 id 41977 off 0 [DF] len 84 proto ICMP (1) type 8 code 0',
    );
  });

  it('--utc dates match the pcap timestamps (ts + startup offset)', () => {
    const stamps = pcapTimestamps(`${COMPAT_DIR}/test_events_packets.pcap`);
    const printer = new EventPrinter({ multiline: false, utc: true, printLl: false });
    printer.event(events[0]);
    withPacket.forEach((ev, i) => {
      const ns = stamps[i];
      const iso = new Date(Number(ns / 1_000_000n)).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
      const micros = String((ns / 1000n) % 1_000_000n).padStart(6, '0');
      const date = `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${micros}`;
      const line = printer.event(ev);
      expect(line.slice(0, date.length + 1)).toBe(date + ' ');
      expect(line.endsWith('\n') && !line.endsWith('\n\n')).toBe(true);
    });
    expect(formatEvent(withPacket[0], { ...SINGLE, utc: true, monotonicOffsetNs: 1742309146691042000n }).slice(0, 27)).toBe(
      '2025-03-18 23:12:45.860103 ',
    );
  });
});

describe('startup events', () => {
  it('v1.6 startup (machine and cmdline filled as Retis compat does)', () => {
    expect(formatEvent(events[0], MULTI)).toBe(
      '30415793489711\n  collected with Retis v1.6.0\n  on machine unknown unknown unknown\n  cmdline unknown',
    );
    expect(formatEvent(events[0], SINGLE)).toBe(
      '30415793489711 collected with Retis v1.6.0 on machine unknown unknown unknown cmdline unknown',
    );
    // The startup event's own offset applies to itself.
    expect(formatEvent(events[0], { ...SINGLE, utc: true }).slice(0, 26)).toBe('2025-03-18 23:12:42.484531');
  });
});

describe('sorted series (test_events_sorted.json)', () => {
  const lines = readFileSync(`${COMPAT_DIR}/test_events_sorted.json`, 'utf8').split('\n').filter((l) => l !== '');
  const series = lines.map(parseSeries);

  it('continuation events are marked with ↳ and indented', () => {
    expect(formatSeries(series[2], MULTI)).toBe(
      '23868955262984 (2) [napi/phy0-8197] 1360 [tp] openvswitch:ovs_dp_upcall #15b56c998008ffff8c0aa653ba00 (skb ffff8c03aa978a00) n 0\n' +
        '  upcall (miss) port 3366920467 cpu 1\n' +
        '  ↳ 23868955276361 (3) [napi/phy0-8197] 1360 [kr] ovs_dp_upcall #15b56c998008ffff8c0aa653ba00 (skb ffff8c03aa978a00) n 1\n' +
        '      upcall_ret (1/23868955262984) ret 0',
    );
    expect(formatSeries(series[2], SINGLE)).toBe(
      '23868955262984 (2) [napi/phy0-8197] 1360 [tp] openvswitch:ovs_dp_upcall #15b56c998008ffff8c0aa653ba00 (skb ffff8c03aa978a00) n 0 upcall (miss) port 3366920467 cpu 1\n' +
        '  ↳ 23868955276361 (3) [napi/phy0-8197] 1360 [kr] ovs_dp_upcall #15b56c998008ffff8c0aa653ba00 (skb ffff8c03aa978a00) n 1 upcall_ret (1/23868955262984) ret 0',
    );
  });

  it('the whole `retis print` output of the sorted file', () => {
    const printer = new EventPrinter(MULTI);
    expect(series.map((s) => printer.series(s)).join('')).toBe(
      '23868643385852\n  collected with Retis v1.6.0\n  on machine unknown unknown unknown\n  cmdline unknown\n\n' +
        '23868643385999 (0) [napi/phy0-8197] 1360 [k] tcp_v4_rcv #15b55a02a28fffff8c08d4fed800 (skb ffff8c03b1dc0500) n 0\n\n' +
        '23868955262984 (2) [napi/phy0-8197] 1360 [tp] openvswitch:ovs_dp_upcall #15b56c998008ffff8c0aa653ba00 (skb ffff8c03aa978a00) n 0\n' +
        '  upcall (miss) port 3366920467 cpu 1\n' +
        '  ↳ 23868955276361 (3) [napi/phy0-8197] 1360 [kr] ovs_dp_upcall #15b56c998008ffff8c0aa653ba00 (skb ffff8c03aa978a00) n 1\n' +
        '      upcall_ret (1/23868955262984) ret 0\n\n' +
        '23868955449721 (0) [napi/phy0-8197] 1360 [tp] skb:kfree_skb #15b56c9c2a04ffff8c0a75bdb400 (skb ffff8c0527c39200) n 0 drop (reason NO_SOCKET)\n\n',
    );
  });
});

describe('formatUtc', () => {
  it('matches the JavaScript calendar over a wide range', () => {
    let x = 123456789n;
    for (let i = 0; i < 2000; i++) {
      // Deterministic pseudo-random epoch ns between 1970 and ~2200.
      x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
      const ns = x % 7_300_000_000_000_000_000n;
      const iso = new Date(Number(ns / 1_000_000n)).toISOString();
      const expected = `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String((ns / 1000n) % 1_000_000n).padStart(6, '0')}`;
      expect(formatUtc(ns)).toBe(expected);
    }
    expect(formatUtc(0n)).toBe('1970-01-01 00:00:00.000000');
    expect(formatUtc(951_782_400_999_999_999n)).toBe('2000-02-29 00:00:00.999999');
  });
});
