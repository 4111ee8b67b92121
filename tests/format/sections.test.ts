/**
 * Every section's text, on hand-built events. Expected strings follow the EventFmt
 * implementations in retis-events/src/*.rs, including their spacing quirks.
 */
import { describe, expect, it } from 'vitest';
import { EventPrinter, formatEvent, formatSeries } from '../../analyze/format/event-text.ts';
import type { RetisEvent, Section } from '../../analyze/model/event.ts';
import { parseEvent } from './util.ts';

const MULTI = { multiline: true, utc: false, printLl: false };
const SINGLE = { multiline: false, utc: false, printLl: false };

/** An event with common.timestamp 1 and the given sections. */
function ev(sections: Record<string, Section>): RetisEvent {
  return { common: { timestamp: 1n }, ...sections } as RetisEvent;
}
/** Text of a section on its own: the line(s) after the first, unindented. */
function sectionText(sections: Record<string, Section>, opts = MULTI): string {
  const text = formatEvent(ev(sections), opts);
  return opts.multiline ? text.slice(text.indexOf('\n') + 3) : text.slice(2);
}

describe('first line', () => {
  it('common: cpu, task, pid/tgid', () => {
    expect(formatEvent({ common: { timestamp: 42n } }, MULTI)).toBe('42');
    expect(formatEvent({ common: { timestamp: 42n, smp_id: 3 } }, MULTI)).toBe('42 (3)');
    expect(formatEvent({ common: { timestamp: 42n, task: { pid: 7, tgid: 7, comm: 'ping' } } }, MULTI)).toBe('42 [ping] 7');
    expect(formatEvent({ common: { timestamp: 42n, smp_id: 0, task: { pid: 985, tgid: 995, comm: 'handler8' } } }, MULTI)).toBe(
      '42 (0) [handler8] 985/995',
    );
  });

  it('kernel probe kinds; kernel wins over userspace', () => {
    const k = (probe_type: string): string => formatEvent(ev({ kernel: { symbol: 'f', probe_type } }), MULTI);
    expect(k('raw_tracepoint')).toBe('1 [tp] f');
    expect(k('kprobe')).toBe('1 [k] f');
    expect(k('kretprobe')).toBe('1 [kr] f');
    expect(k('uprobe')).toBe('1 [invalid] f');
    const user = { probe_type: 'usdt', symbol: 'dpif_recv:recv_upcall', ip: 0x55d0n, path: '/usr/sbin/ovs-vswitchd', pid: 985, tid: 990 };
    expect(formatEvent(ev({ userspace: user }), MULTI)).toBe('1 [u] dpif_recv:recv_upcall (ovs-vswitchd)');
    expect(formatEvent(ev({ userspace: { ...user, path: 'ovs-vswitchd' } }), MULTI)).toBe('1 [u] dpif_recv:recv_upcall');
    expect(formatEvent(ev({ kernel: { symbol: 'f', probe_type: 'kprobe' }, userspace: user }), MULTI)).toBe('1 [k] f');
  });

  it('tracking ids: u128 hex without padding; tracking wins over skb-tracking', () => {
    const skbTracking = { orig_head: 0xffff8c0aa653ba00n, timestamp: 23868955262984n, skb: 0xffff8c03aa978a00n };
    expect(formatEvent(ev({ 'skb-tracking': skbTracking }), MULTI)).toBe('1 #15b56c998008ffff8c0aa653ba00 (skb ffff8c03aa978a00)');
    expect(formatEvent(ev({ 'skb-tracking': { orig_head: 0x10n, timestamp: 1n, skb: 0x20n } }), MULTI)).toBe('1 #10000000000000010 (skb 20)');
    expect(formatEvent(ev({ 'skb-tracking': { orig_head: 0x10n, timestamp: 0n, skb: 0n } }), MULTI)).toBe('1 #10 (skb 0)');
    const tracking = { skb: { orig_head: 0xan, timestamp: 0xbn, skb: 0xcn }, idx: 3 };
    expect(formatEvent(ev({ tracking, 'skb-tracking': skbTracking }), MULTI)).toBe('1 #b000000000000000a (skb c) n 3');
  });

  it('drop reasons, core and subsystem', () => {
    expect(formatEvent(ev({ 'skb-drop': { drop_reason: 'NO_SOCKET' } }), MULTI)).toBe('1 drop (reason NO_SOCKET)');
    expect(formatEvent(ev({ 'skb-drop': { subsys: 'openvswitch', drop_reason: 'OVS_DROP_LAST_ACTION' } }), MULTI)).toBe(
      '1 drop (reason openvswitch/OVS_DROP_LAST_ACTION)',
    );
  });

  it('stack traces: indented 4 in multi-line, a list in single-line', () => {
    const e = ev({
      kernel: { symbol: 'skb:kfree_skb', probe_type: 'raw_tracepoint', stack_trace: ['kfree_skb_reason+0x1', 'ip_rcv+0x2'] },
      'skb-drop': { drop_reason: 'NO_SOCKET' },
      dev: { name: 'eth0', ifindex: 3 },
    });
    expect(formatEvent(e, MULTI)).toBe('1 [tp] skb:kfree_skb drop (reason NO_SOCKET)\n    kfree_skb_reason+0x1\n    ip_rcv+0x2\n  if 3 (eth0)');
    expect(formatEvent(e, SINGLE)).toBe('1 [tp] skb:kfree_skb drop (reason NO_SOCKET) [kfree_skb_reason+0x1, ip_rcv+0x2] if 3 (eth0)');
  });
});

describe('netns and dev', () => {
  it('share a line', () => {
    expect(sectionText({ netns: { cookie: 4096n, inum: 4026531840 }, dev: { name: 'eth0', ifindex: 2, rx_ifindex: 5 } })).toBe(
      'ns 0x1000/4026531840 if 2 (eth0) rxif 5',
    );
    expect(sectionText({ netns: { inum: 4026531840 } })).toBe('ns 4026531840');
    expect(sectionText({ dev: { name: '', ifindex: 2 } })).toBe('if 2');
  });
});

describe('skb', () => {
  const meta = { len: 100, data_len: 0, hash: 0, ip_summed: 0, csum: 0, csum_level: 0, priority: 0 };
  const dataRef = { nohdr: false, cloned: false, fclone: 0, users: 1, dataref: 1 };

  it('checksum states', () => {
    expect(sectionText({ skb: { meta: { ...meta, ip_summed: 1, csum_level: 2 } } })).toBe('skb [csum unnecessary (level 2) len 100 priority 0]');
    expect(sectionText({ skb: { meta: { ...meta, ip_summed: 2, csum: 0xc0473fb8 } } })).toBe('skb [csum complete (0xc0473fb8) len 100 priority 0]');
    expect(sectionText({ skb: { meta: { ...meta, ip_summed: 3, csum: (16 << 16) | 34 } } })).toBe(
      'skb [csum partial (start 34 off 16) len 100 priority 0]',
    );
    expect(sectionText({ skb: { meta: { ...meta, ip_summed: 7 } } })).toBe('skb [csum unknown (7) len 100 priority 0]');
  });

  it('optional meta and data_ref fields', () => {
    expect(sectionText({ skb: { meta: { ...meta, hash: 0xabc, data_len: 40, priority: 6 }, data_ref: dataRef } })).toBe(
      'skb [csum none hash 0xabc len 100 data_len 40 priority 6 users 1 dataref 1]',
    );
    expect(sectionText({ skb: { data_ref: { nohdr: true, cloned: true, fclone: 2, users: 2, dataref: 3 } } })).toBe(
      'skb [nohdr cloned fclone 2 users 2 dataref 3]',
    );
  });

  it('gso', () => {
    expect(sectionText({ skb: { gso: { flags: 0, frags: 0, size: 1448, segs: 0, type: 1 } } })).toBe('gso [type 0x1 size 1448]');
    expect(sectionText({ skb: { meta, gso: { flags: 2, frags: 3, size: 1448, segs: 4, type: 0x11 } } })).toBe(
      'skb [csum none len 100 priority 0] gso [type 0x11 flags 0x2 frags 3 segs 4 size 1448]',
    );
  });

  it('vlan_accel only with link-layer info; empty skb prints nothing', () => {
    const vlan = { proto: 0x8100, pcp: 3, dei: true, vid: 42 };
    expect(formatEvent(ev({ skb: { vlan_accel: vlan } }), MULTI)).toBe('1');
    expect(sectionText({ skb: { vlan_accel: vlan, meta } }, { ...MULTI, printLl: true })).toBe(
      'vlan_accel (ethertype 802.1Q (0x8100) vlan 42 p 3 DEI) skb [csum none len 100 priority 0]',
    );
    expect(sectionText({ skb: { vlan_accel: { proto: 0x1234, pcp: 0, dei: false, vid: 1 } } }, { ...MULTI, printLl: true })).toBe(
      'vlan_accel (ethertype (0x1234) vlan 1 p 0)',
    );
    expect(formatEvent(ev({ skb: {} }), MULTI)).toBe('1');
  });
});

describe('ovs', () => {
  const ovs = (o: Section): string => sectionText({ ovs: o });

  it('upcall family', () => {
    expect(ovs({ event_type: 'upcall', cmd: 2, port: 1, cpu: 2 })).toBe('upcall (action) port 1 cpu 2');
    expect(ovs({ event_type: 'upcall', cmd: 0, port: 1, cpu: 2 })).toBe('upcall (unspec) port 1 cpu 2');
    expect(ovs({ event_type: 'upcall', cmd: 3, port: 1, cpu: 2 })).toBe('upcall (exec) port 1 cpu 2');
    expect(ovs({ event_type: 'upcall', cmd: 9, port: 1, cpu: 2 })).toBe('upcall port 1 cpu 2');
    expect(
      ovs({ event_type: 'upcall_enqueue', ret: 0, cmd: 1, port: 4195744766, upcall_ts: 61096236973661n, upcall_cpu: 0, queue_id: 3316322986 }),
    ).toBe('upcall_enqueue (miss) (0/61096236973661) q 3316322986 ret 0');
    expect(ovs({ event_type: 'upcall_return', upcall_ts: 61096236973661n, upcall_cpu: 0, ret: -1 })).toBe('upcall_ret (0/61096236973661) ret -1');
  });

  it('userspace events', () => {
    expect(
      ovs({ event_type: 'recv_upcall', type: 1, pkt_size: 98, key_size: 200n, queue_id: 3316322986, batch_ts: 61096237019698n, batch_idx: 0 }),
    ).toBe('upcall_recv q 3316322986 pkt_size 98');
    const op = { event_type: 'flow_operation', queue_id: 3316322986, batch_ts: 61096237019698n, batch_idx: 2 };
    expect(ovs({ ...op, op_type: 'exec' })).toBe('flow_exec q 3316322986 ts 61096237019698 (2)');
    expect(ovs({ ...op, op_type: 'put' })).toBe('flow_put q 3316322986 ts 61096237019698 (2)');
  });

  it('actions', () => {
    const act = (a: Section): string => ovs({ event_type: 'action_execute', recirc_id: 0, ...a });
    expect(act({ action: 'output', port: 2, queue_id: 1361394472 })).toBe('exec oport 2 q 1361394472');
    expect(act({ action: 'recirc', id: 42 })).toBe('exec recirc 0x2a');
    expect(act({ action: 'drop', reason: 0, recirc_id: 32 })).toBe('[recirc_id 0x20] exec drop 0');
    expect(act({})).toBe('exec unspec');
    const simple: [string, string][] = [
      ['userspace', 'userspace'],
      ['set', 'tunnel_set'],
      ['push_vlan', 'push_vlan'],
      ['pop_vlan', 'pop_vlan'],
      ['sample', 'sample'],
      ['hash', 'hash'],
      ['push_mpls', 'push_mpls'],
      ['pop_mpls', 'pop_mpls'],
      ['set_masked', 'set_masked'],
      ['trunc', 'trunc'],
      ['push_eth', 'push_eth'],
      ['pop_eth', 'pop_eth'],
      ['ct_clear', 'ct_clear'],
      ['push_nsh', 'push_nsh'],
      ['pop_nsh', 'pop_nsh'],
      ['meter', 'meter'],
      ['clone', 'clone'],
      ['check_pkt_len', 'check_pkt_len'],
      ['add_mpls', 'add_mpls'],
      ['dec_ttl', 'dec_ttl'],
    ];
    for (const [action, text] of simple) expect(act({ action })).toBe(`exec ${text}`);
  });

  it('ct action: NAT ranges and flags', () => {
    const ct = (a: Section): string => ovs({ event_type: 'action_execute', action: 'ct', recirc_id: 0, ...a });
    // Retis's own JSON test event (flags: commit, ip4, nat src+dst, range map ips + proto).
    expect(
      ct({
        flags: 485,
        zone_id: 20,
        recirc_id: 34,
        nat: { dir: 'dst', max_addr: '10.244.1.30', max_port: 36900, min_addr: '10.244.1.3', min_port: 36895 },
      }),
    ).toBe('[recirc_id 0x22] exec ct zone 20 nat(dst=10.244.1.3-10.244.1.30:36895-36900) commit');
    expect(ct({ flags: 1 | 128 | 256, zone_id: 5, nat: { dir: 'src', min_addr: '10.0.0.1', max_addr: '10.0.0.1', min_port: 80, max_port: 80 } })).toBe(
      'exec ct zone 5 nat(src=10.0.0.1:80) commit',
    );
    // Ranges only print when their flag is set.
    expect(ct({ flags: 2 | 512 | 1024 | 2048, zone_id: 0, nat: { dir: 'src', min_addr: '10.0.0.1', max_addr: '10.0.0.2' } })).toBe(
      'exec ct zone 0 nat(src) force,persistent,hash,random',
    );
    expect(ct({ flags: 16, zone_id: 1, nat: {} })).toBe('exec ct zone 1 nat');
    expect(ct({ flags: 0, zone_id: 43210 })).toBe('exec ct zone 43210');
  });

  const ufid = [0x177746cc, 0x5e954c23, 0x8d4096d5, 0xbee7c6eb];
  const UFID = '177746cc-5e95-4c23-8d40-96d5bee7c6eb';
  const lookup = {
    event_type: 'flow_lookup',
    flow: 0xffff8c03aa978a00n,
    sf_acts: 0xffff8c03aa978b00n,
    ufid,
    n_mask_hit: 1,
    n_cache_hit: 0,
    dpflow: 'recirc_id(0),in_port(2)',
    ofpflows: ['table=0 actions=NORMAL', 'table=1 actions=drop'],
  };
  const nft = { table_name: 't', chain_name: 'c', verdict: 'accept', table_handle: 1n, chain_handle: 2n, policy: false };

  it('flow lookup: miss, and hit with flows indented under `openflow`', () => {
    expect(ovs({ event_type: 'flow_lookup', flow: 0n, sf_acts: 0n, ufid: [0, 0, 0, 0], n_mask_hit: 3, n_cache_hit: 1, dpflow: '', ofpflows: [] })).toBe(
      'flow miss mask 3 cache 1',
    );
    expect(formatEvent(ev({ ovs: lookup, nft }), MULTI)).toBe(
      `1\n  flow hit ufid ${UFID} mask 1 cache 0 flow ffff8c03aa978a00 sf_acts ffff8c03aa978b00\n` +
        '  odpflow recirc_id(0),in_port(2)\n  openflow\n      table=0 actions=NORMAL\n      table=1 actions=drop\n' +
        '  table t (1) chain c (2) accept',
    );
    expect(formatEvent(ev({ ovs: lookup }), SINGLE)).toBe(
      `1 flow hit ufid ${UFID} mask 1 cache 0 flow ffff8c03aa978a00 sf_acts ffff8c03aa978b00 odpflow recirc_id(0),in_port(2) openflow table=0 actions=NORMAL table=1 actions=drop`,
    );
    expect(ovs({ ...lookup, dpflow: '', ofpflows: [] })).toBe(`flow hit ufid ${UFID} mask 1 cache 0 flow ffff8c03aa978a00 sf_acts ffff8c03aa978b00`);
  });

  it('ovs-detrace: first flow glued to `openflow:` in multi-line (as Retis does)', () => {
    const detrace = { ufid, flow: lookup.flow, sf_acts: lookup.sf_acts, dpflow: lookup.dpflow, ofpflows: lookup.ofpflows };
    expect(formatEvent(ev({ 'ovs-detrace': detrace, nft }), MULTI)).toBe(
      `1\n  ufid:${UFID} recirc_id(0),in_port(2)\n  openflow:table=0 actions=NORMAL\n      table=1 actions=drop\n  table t (1) chain c (2) accept`,
    );
    expect(formatEvent(ev({ 'ovs-detrace': detrace }), SINGLE)).toBe(
      `1 ufid:${UFID} recirc_id(0),in_port(2) openflow: table=0 actions=NORMAL table=1 actions=drop`,
    );
  });
});

describe('nft', () => {
  it('rule, verdict chain and policy', () => {
    expect(
      sectionText({
        nft: {
          table_name: 'nft_test',
          chain_name: 'input_filter',
          verdict: 'jump',
          verdict_chain_name: 'input_ind1_hook',
          table_handle: 1n,
          chain_handle: 2n,
          rule_handle: 4n,
          policy: false,
        },
      }),
    ).toBe('table nft_test (1) chain input_filter (2) handle 4 jump chain input_ind1_hook');
    expect(
      sectionText({ nft: { table_name: 'nft_test', chain_name: 'input_filter', verdict: 'drop', table_handle: 1n, chain_handle: 2n, policy: true } }),
    ).toBe('table nft_test (1) chain input_filter (2) drop (policy)');
  });
});

describe('ct', () => {
  const tuple = (src: string, dst: string, proto: Section): Section => ({ ip: { src, dst, version: 'v4' }, proto });
  const tcpConn = {
    zone_id: 5,
    zone_dir: 'Original',
    orig: tuple('10.0.0.1', '10.0.0.2', { tcp: { sport: 40000, dport: 80 } }),
    reply: tuple('10.0.0.2', '10.0.0.1', { tcp: { sport: 80, dport: 40000 } }),
    proto_state: 'ESTABLISHED',
    labels: { hi: 1n, lo: 0xffn },
    ct_status: 0x18en,
  };
  const udpConn = {
    zone_id: 7,
    zone_dir: 'Reply',
    orig: tuple('10.0.0.1', '10.0.0.2', { udp: { sport: 53, dport: 53 } }),
    reply: tuple('10.0.0.2', '10.0.0.1', { udp: { sport: 53, dport: 53 } }),
    mark: 3,
    ct_status: 0x18an,
  };

  it('tcp with labels, and a parent connection', () => {
    const ct = { state: 'established', ...tcpConn, parent: udpConn };
    const base =
      'ct_state ESTABLISHED status 0x18e tcp (ESTABLISHED) orig [10.0.0.1.40000 > 10.0.0.2.80] reply [10.0.0.2.80 > 10.0.0.1.40000] orig-zone 5 labels 0x100000000000000ff';
    const parent = 'parent [status 0x18a udp orig [10.0.0.1.53 > 10.0.0.2.53] reply [10.0.0.2.53 > 10.0.0.1.53] reply-zone 7 mark 3]';
    expect(sectionText({ ct })).toBe(`${base}\n  \\ ${parent}`);
    expect(sectionText({ ct }, SINGLE)).toBe(`${base} ${parent}`);
  });

  it('states, unknown TCP state, zone direction None', () => {
    const { proto_state: _s, labels: _l, ...rest } = tcpConn;
    const ct = { ...rest, zone_dir: 'None', mark: 0 };
    // No zone text leaves the proto part's trailing space before ` mark`.
    expect(sectionText({ ct: { state: 'related_reply', ...ct } })).toBe(
      'ct_state RELATED_REPLY status 0x18e tcp (UNKNOWN) orig [10.0.0.1.40000 > 10.0.0.2.80] reply [10.0.0.2.80 > 10.0.0.1.40000]  mark 0',
    );
    const states: [string, string][] = [
      ['new', 'NEW'],
      ['related', 'RELATED'],
      ['reply', 'REPLY'],
      ['untracked', 'UNTRACKED'],
    ];
    for (const [state, text] of states) expect(sectionText({ ct: { state, ...udpConn } })).toMatch(new RegExp(`^ct_state ${text} status`));
  });

  it('sctp, and mismatching protocols print no tuple', () => {
    const sctp = {
      state: 'new',
      zone_id: 0,
      zone_dir: 'Default',
      orig: tuple('10.0.0.1', '10.0.0.2', { sctp: { sport: 1, dport: 2, vtag: 0xabc } }),
      reply: tuple('10.0.0.2', '10.0.0.1', { sctp: { sport: 2, dport: 1, vtag: 0xdef } }),
      proto_state: 'COOKIE_WAIT',
      ct_status: 0n,
    };
    expect(sectionText({ ct: sctp })).toBe(
      'ct_state NEW status 0x0 sctp (COOKIE_WAIT) orig [10.0.0.1.1 > 10.0.0.2.2 vtag 0xabc] reply [10.0.0.2.2 > 10.0.0.1.1 vtag 0xdef] zone 0',
    );
    const mixed = { ...sctp, reply: tuple('10.0.0.2', '10.0.0.1', { udp: { sport: 2, dport: 1 } }) };
    expect(sectionText({ ct: mixed })).toBe('ct_state NEW status 0x0 zone 0');
  });
});

describe('startup', () => {
  const startup = parseEvent(
    '{"common":{"timestamp":1000},"startup":{"retis_version":"v1.7.0","cmdline":"retis collect -o --out-rotate 1MB","clock_monotonic_offset":{"sec":1742309146,"nsec":691042000},"machine":{"kernel_release":"6.14.0","kernel_version":"#1 SMP PREEMPT_DYNAMIC","hardware_name":"x86_64"},"split_file":{"id":2,"policy":{"size":{"limit":1000000}}}}}',
  );

  it('split file id between machine and cmdline', () => {
    expect(formatEvent(startup, MULTI)).toBe(
      '1000\n  collected with Retis v1.7.0\n  on machine 6.14.0 #1 SMP PREEMPT_DYNAMIC x86_64\n  file id 2\n  cmdline retis collect -o --out-rotate 1MB',
    );
    expect(formatEvent(startup, { ...SINGLE, utc: true })).toBe(
      '2025-03-18 14:45:46.691043 collected with Retis v1.7.0 on machine 6.14.0 #1 SMP PREEMPT_DYNAMIC x86_64 file id 2 cmdline retis collect -o --out-rotate 1MB',
    );
  });

  it('the printer carries the offset to later events; --utc without offset prints raw', () => {
    const p = new EventPrinter({ ...MULTI, utc: true });
    expect(p.event({ common: { timestamp: 5n } })).toBe('5\n\n');
    p.event(startup);
    expect(p.event({ common: { timestamp: 2_000_000_000n } })).toBe('2025-03-18 14:45:48.691042\n\n');
    expect(formatEvent({ common: { timestamp: 5n } }, { ...SINGLE, utc: true })).toBe('5');
  });
});

describe('section order and series indentation', () => {
  const packet = {
    len: 42,
    capture_len: 42,
    data: Uint8Array.from([
      ...[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 6],
      ...[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2],
    ]),
  };
  const full: Record<string, Section> = {
    ct: {
      state: 'new',
      zone_id: 0,
      zone_dir: 'Default',
      orig: { ip: { src: 'a', dst: 'b', version: 'v4' }, proto: { udp: { sport: 1, dport: 2 } } },
      reply: { ip: { src: 'b', dst: 'a', version: 'v4' }, proto: { udp: { sport: 2, dport: 1 } } },
      ct_status: 8n,
    },
    nft: { table_name: 't', chain_name: 'c', verdict: 'drop', table_handle: 1n, chain_handle: 2n, rule_handle: 3n, policy: false },
    ovs: { event_type: 'upcall', cmd: 1, port: 3, cpu: 0 },
    skb: { data_ref: { nohdr: false, cloned: false, fclone: 0, users: 1, dataref: 1 } },
    dev: { name: 'eth0', ifindex: 2 },
    netns: { inum: 100 },
    packet,
    'skb-drop': { drop_reason: 'NETFILTER_DROP' },
    'skb-tracking': { orig_head: 0xffn, timestamp: 0x10n, skb: 0xeen },
    kernel: { symbol: 'skb:kfree_skb', probe_type: 'raw_tracepoint', stack_trace: ['a+0x1', 'b+0x2'] },
    common: { timestamp: 9n, smp_id: 1, task: { pid: 1, tgid: 1, comm: 'x' } },
  };
  const e = full as RetisEvent;
  const FULL_MULTI =
    '9 (1) [x] 1 [tp] skb:kfree_skb #1000000000000000ff (skb ee) drop (reason NETFILTER_DROP)\n' +
    '    a+0x1\n    b+0x2\n' +
    '  request who-has 10.0.0.2 tell 10.0.0.1\n' +
    '  ns 100 if 2 (eth0)\n' +
    '  skb [users 1 dataref 1]\n' +
    '  upcall (miss) port 3 cpu 0\n' +
    '  table t (1) chain c (2) handle 3 drop\n' +
    '  ct_state NEW status 0x8 udp orig [a.1 > b.2] reply [b.2 > a.1] zone 0';

  it('sections come in Retis order whatever the object key order', () => {
    expect(formatEvent(e, MULTI)).toBe(FULL_MULTI);
    expect(formatEvent(e, SINGLE)).toBe(
      '9 (1) [x] 1 [tp] skb:kfree_skb #1000000000000000ff (skb ee) drop (reason NETFILTER_DROP) [a+0x1, b+0x2] ' +
        'request who-has 10.0.0.2 tell 10.0.0.1 ns 100 if 2 (eth0) skb [users 1 dataref 1] upcall (miss) port 3 cpu 0 ' +
        'table t (1) chain c (2) handle 3 drop ct_state NEW status 0x8 udp orig [a.1 > b.2] reply [b.2 > a.1] zone 0',
    );
  });

  it('continuation events shift everything by 4, stack traces included', () => {
    const text = formatSeries([{ common: { timestamp: 8n } }, e], MULTI);
    const shifted = FULL_MULTI.split('\n')
      .map((l, i) => (i === 0 ? `  ↳ ${l}` : `    ${l}`))
      .join('\n');
    expect(text).toBe(`8\n${shifted}`);
    expect(text.split('\n')[2]).toBe('        a+0x1');
  });

  it('printer separators: blank line after multi-line events and series', () => {
    expect(new EventPrinter(MULTI).event(e)).toBe(FULL_MULTI + '\n\n');
    expect(new EventPrinter(SINGLE).event({ common: { timestamp: 3n } })).toBe('3\n');
    expect(new EventPrinter(SINGLE).series([{ common: { timestamp: 3n } }, { common: { timestamp: 4n } }])).toBe('3\n  ↳ 4\n\n');
    expect(new EventPrinter(MULTI).series([])).toBe('');
  });
});
