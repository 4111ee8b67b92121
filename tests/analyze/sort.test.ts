/**
 * Series reconstruction: skb tracking ids, clones, the OVS upcall chain that aliases the
 * re-injected packet into the original series, and Retis's output order — complete
 * whatever the interleaving.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Db } from '../../analyze/db.ts';
import { loadInputs } from '../../analyze/load/index.ts';
import { buildSeries, streamSeries } from '../../analyze/sort/series.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-sort-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const HEAD_A = 0xffff888100000000n;
const HEAD_B = 0xffff888200000000n;
const HEAD_C = 0xffff888300000000n;
const STARTUP =
  '{"common":{"timestamp":1},"startup":{"retis_version":"v1.7.0","cmdline":"t","clock_monotonic_offset":{"sec":0,"nsec":0},"machine":{"kernel_release":"r","kernel_version":"v","hardware_name":"h"}}}';

interface Ev {
  ts: number;
  sym: string;
  type?: string;
  track?: [number, bigint, bigint];
  ovs?: string;
  user?: boolean;
  cpu?: number;
}

function line(e: Ev): string {
  const parts = [`"common":{"timestamp":${e.ts},"smp_id":${e.cpu ?? 0}}`];
  if (e.user) parts.push(`"userspace":{"probe_type":"usdt","symbol":"${e.sym}","ip":4096,"path":"/usr/sbin/ovs-vswitchd","pid":10,"tid":11}`);
  else parts.push(`"kernel":{"symbol":"${e.sym}","probe_type":"${e.type ?? 'raw_tracepoint'}"}`);
  if (e.track) parts.push(`"skb-tracking":{"orig_head":${e.track[1]},"timestamp":${e.track[0]},"skb":${e.track[2]}}`);
  if (e.ovs) parts.push(`"ovs":${e.ovs}`);
  return `{${parts.join(',')}}`;
}

async function series(events: Ev[]): Promise<string[][]> {
  const file = path.join(tmp, `s${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, [STARTUP, ...events.map(line)].join('\n'));
  const db = await Db.open();
  try {
    await loadInputs(db, [file]);
    await buildSeries(db);
    const out: string[][] = [];
    for await (const s of streamSeries(db)) {
      out.push(
        s.events.map((e) => {
          const sym = (e.kernel?.symbol ?? e.userspace?.symbol ?? 'startup') as string;
          return e.tracking ? `${e.common.timestamp}:${sym}:${(e.tracking as { idx: number }).idx}` : `${e.common.timestamp}:${sym}`;
        }),
      );
    }
    return out;
  } finally {
    db.close();
  }
}

const A: [number, bigint, bigint] = [100, HEAD_A, 0xffff8881aaaa0000n];
const A_CLONE: [number, bigint, bigint] = [100, HEAD_A, 0xffff8881bbbb0000n];
const B: [number, bigint, bigint] = [115, HEAD_B, 0xffff8882aaaa0000n];
const C: [number, bigint, bigint] = [133, HEAD_C, 0xffff8883aaaa0000n];

describe('sort', () => {
  it('groups by tracking id (clones included), orders series by (timestamp, orig_head)', async () => {
    const got = await series([
      { ts: 100, sym: 'net:netif_receive_skb', track: A },
      { ts: 115, sym: 'net:netif_receive_skb', track: B },
      { ts: 120, sym: 'skb_clone', type: 'kprobe', track: A_CLONE },
      { ts: 130, sym: 'skb:kfree_skb', track: B },
      { ts: 140, sym: 'skb:consume_skb', track: A },
    ]);
    expect(got).toEqual([
      ['1:startup'],
      ['100:net:netif_receive_skb:0', '120:skb_clone:1', '140:skb:consume_skb:2'],
      ['115:net:netif_receive_skb:0', '130:skb:kfree_skb:1'],
    ]);
  });

  it('follows the OVS upcall chain into userspace and aliases the re-injected skb, whatever the interleaving', async () => {
    const got = await series([
      { ts: 100, sym: 'net:netif_receive_skb', track: A },
      { ts: 110, sym: 'openvswitch:ovs_dp_upcall', track: A, cpu: 1, ovs: '{"event_type":"upcall","cmd":1,"port":2,"cpu":1}' },
      { ts: 115, sym: 'net:netif_receive_skb', track: B },
      // The re-injected packet seen on another CPU before the action that created it is reported.
      { ts: 133, sym: 'net:netif_rx', track: C, cpu: 1 },
      { ts: 120, sym: 'queue_userspace_packet', type: 'kretprobe', track: A, ovs: '{"event_type":"upcall_enqueue","ret":0,"cmd":1,"port":2,"upcall_ts":110,"upcall_cpu":1,"queue_id":777}' },
      { ts: 125, sym: 'ovs_dp_upcall', type: 'kretprobe', track: A, ovs: '{"event_type":"upcall_return","upcall_ts":110,"upcall_cpu":1,"ret":0}' },
      { ts: 130, sym: 'dpif_recv:recv_upcall', user: true, ovs: '{"event_type":"recv_upcall","type":0,"pkt_size":98,"key_size":200,"queue_id":777,"batch_ts":130,"batch_idx":0}' },
      { ts: 131, sym: 'dpif_netlink_operate__:op_flow_put', user: true, ovs: '{"event_type":"flow_operation","op_type":"put","queue_id":777,"batch_ts":130,"batch_idx":0}' },
      { ts: 132, sym: 'dpif_netlink_operate__:op_flow_execute', user: true, ovs: '{"event_type":"flow_operation","op_type":"exec","queue_id":777,"batch_ts":130,"batch_idx":0}' },
      { ts: 134, sym: 'openvswitch:ovs_do_execute_action', track: C, ovs: '{"event_type":"action_execute","action":"output","port":3,"recirc_id":0,"queue_id":777}' },
      { ts: 140, sym: 'net:net_dev_start_xmit', track: C },
      { ts: 150, sym: 'skb:kfree_skb', track: B },
    ]);
    expect(got).toEqual([
      ['1:startup'],
      [
        '100:net:netif_receive_skb:0',
        '110:openvswitch:ovs_dp_upcall:1',
        '133:net:netif_rx:2',
        '120:queue_userspace_packet:3',
        '125:ovs_dp_upcall:4',
        '130:dpif_recv:recv_upcall:5',
        '131:dpif_netlink_operate__:op_flow_put:6',
        '132:dpif_netlink_operate__:op_flow_execute:7',
        '134:openvswitch:ovs_do_execute_action:8',
        '140:net:net_dev_start_xmit:9',
      ],
      ['115:net:netif_receive_skb:0', '150:skb:kfree_skb:1'],
    ]);
  });

  it('interleaves untracked events as Retis pops them (oldest first, untracked in arrival order)', async () => {
    const got = await series([
      { ts: 300, sym: 'untracked_a', type: 'kprobe' },
      { ts: 50, sym: 'untracked_b', type: 'kprobe' },
      { ts: 100, sym: 'net:netif_receive_skb', track: A },
      { ts: 400, sym: 'untracked_c', type: 'kprobe' },
      { ts: 115, sym: 'net:netif_receive_skb', track: B },
    ]);
    // Series A (100) and B (115) are older than untracked_a (300): they leave first;
    // untracked_b leaves right after untracked_a because untracked events keep their order.
    expect(got).toEqual([['1:startup'], ['100:net:netif_receive_skb:0'], ['115:net:netif_receive_skb:0'], ['300:untracked_a'], ['50:untracked_b'], ['400:untracked_c']]);
  });

  it('an enqueue whose upcall was not captured stays with its own skb', async () => {
    const got = await series([
      { ts: 120, sym: 'queue_userspace_packet', type: 'kretprobe', track: A, ovs: '{"event_type":"upcall_enqueue","ret":-11,"cmd":1,"port":2,"upcall_ts":99,"upcall_cpu":1,"queue_id":5}' },
    ]);
    expect(got).toEqual([['1:startup'], ['120:queue_userspace_packet:0']]);
  });
});
