/**
 * VM only: retis-capture's skb-tracking across a head reallocation, as Retis tracks it, which the
 * development host cannot show (its tracking helpers on pskb_expand_head/skb_free_head are
 * kprobes or fentry: absent there). A ping forwarded by a router into an ipip tunnel needs more
 * headroom than it has, so ip_forward's skb_cow calls pskb_expand_head: the skb gets a new head.
 * Tracking ids are keyed by the head, so without the inv_head helper the packet would get a new
 * id after the reallocation. Checked: per forwarded packet, one id from the router's receive,
 * through pskb_expand_head, to the tunnel's transmit and the free; the ids are not shared
 * between packets.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { Db } from '../../../analyze/db.ts';
import { loadInputs } from '../../../analyze/load/index.ts';
import { createNetns, liveIt, type Netns } from '../../bpf/helpers.ts';
import { runCapture } from '../../capture/run-capture.ts';
import { vmSuiteSkipReason } from './probes.ts';
import { tunnelRouter } from './tunnel-lab.ts';

const skip = vmSuiteSkipReason();
if (skip) console.log(`SKIP VM tracking capture test: ${skip}`);

describe('retis-capture skb-tracking across pskb_expand_head (VM)', () => {
  let client: Netns;
  let router: Netns;
  const tmp = mkdtempSync('/tmp/rts-trackcap-');
  beforeAll(() => {
    if (skip) return;
    client = createNetns('tcli');
    router = createNetns('trtr');
    tunnelRouter(client, router, 211);
  });
  afterAll(() => {
    client?.remove();
    router?.remove();
    rmSync(tmp, { recursive: true, force: true });
  });

  liveIt('one tracking id per forwarded packet from receive through the head reallocation to transmit and free', skip, async () => {
    const dir = join(tmp, 'cap');
    const n = 3;
    // The tunnel leads nowhere: ping's failure (no reply) is expected, hence `; true`.
    const cmd = `ip netns exec ${client.name} ping -c ${n} -i 0.3 -W 1 -q 10.213.0.9; true`;
    const r = await runCapture(['-o', dir, '-c', 'skb,skb-tracking,dev,ns',
      '-p', 'tp:net:netif_receive_skb', '-p', 'tp:net:net_dev_start_xmit', '-p', 'kprobe:pskb_expand_head', '-p', 'tp:skb:consume_skb', '-p', 'tp:skb:kfree_skb',
      '--cmd', cmd], { timeoutMs: 480_000 });
    expect(r.status, `${r.signal ? `killed by ${r.signal}\n` : ''}${r.stderr}`).toBe(0);
    const meta = JSON.parse(readFileSync(join(dir, 'capture.json'), 'utf8')) as { probes: { probe: string; events: number }[] };
    expect(meta.probes.map((p) => p.probe)).toContain('kprobe:pskb_expand_head');

    const db = await Db.open();
    try {
      await loadInputs(db, [dir]);
      const inRouter = `netns_inum = ${router.inode}`;
      // Receive on the router: the plain ICMP echo request.
      const rx = await db.rows<{ id: string }>(`SELECT CAST(track_id AS VARCHAR) AS id FROM events WHERE ${inRouter} AND probe = 'tp:net:netif_receive_skb' AND dev_name = 'eth0r' AND daddr = '10.213.0.9' AND proto = 'icmp'`);
      // Transmit on the tunnel's underlay: the same packet inside an outer IPv4 header (proto 4).
      const tx = await db.rows<{ id: string }>(`SELECT CAST(track_id AS VARCHAR) AS id FROM events WHERE ${inRouter} AND probe = 'tp:net:net_dev_start_xmit' AND dev_name = 'dum0' AND daddr = '10.212.0.2'`);
      const expand = await db.rows<{ id: string }>(`SELECT CAST(track_id AS VARCHAR) AS id FROM events WHERE ${inRouter} AND probe = 'kprobe:pskb_expand_head' AND track_id IS NOT NULL`);
      const freed = await db.rows<{ id: string }>(`SELECT CAST(track_id AS VARCHAR) AS id FROM events WHERE probe IN ('tp:skb:consume_skb', 'tp:skb:kfree_skb') AND track_id IS NOT NULL`);
      console.log(`tracking in the guest: ${rx.length} received, ${expand.length} head reallocations, ${tx.length} sent into the tunnel, ${freed.length} frees`);
      expect(rx.length).toBe(n);
      expect(tx.length).toBe(n);
      const ids = new Set(rx.map((x) => x.id));
      // One id per packet (not shared), and the same ids after the head changed.
      expect(ids.size).toBe(n);
      expect(new Set(tx.map((x) => x.id))).toEqual(ids);
      // The reallocation is seen under the packet's id, and so is its free.
      for (const id of ids) {
        expect(expand.some((e) => e.id === id), `pskb_expand_head of ${id}`).toBe(true);
        expect(freed.some((e) => e.id === id), `free of ${id}`).toBe(true);
      }
    } finally {
      db.close();
    }
  }, 600_000);
});
