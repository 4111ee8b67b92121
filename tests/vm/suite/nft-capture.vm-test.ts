/**
 * VM only: retis-capture's nft collector on its kprobe path (Retis's way: a kprobe on
 * __nft_trace_packet), which the development host cannot run (no kprobes, fentry refused; there
 * the collector uses the netlink trace events, tests/capture/nft-ct.test.ts). Same scenario as
 * on the host (tests/capture/nft-scenario.ts, after Retis's test_nft.py): jumps, implicit
 * returns, the policy and the drop, per packet and in order, counted against the nft counter.
 */
import { afterAll, beforeAll, describe, expect } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Db } from '../../../analyze/db.ts';
import { loadInputs } from '../../../analyze/load/index.ts';
import { liveIt } from '../../bpf/helpers.ts';
import { runNftScenario } from '../../capture/nft-scenario.ts';
import { runCapture } from '../../capture/run-capture.ts';
import { createTopology, type Topology } from '../../capture/topology.ts';
import { vmSuiteSkipReason } from './probes.ts';

const skip = vmSuiteSkipReason();
if (skip) console.log(`SKIP VM nft capture test: ${skip}`);

describe('retis-capture nft collector, kprobe path (VM)', () => {
  let t: Topology;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-vm-nft-'));
  beforeAll(() => {
    if (skip) return;
    // Under TCG, the first ruleset load (nf_tables and expression modules) takes longer than
    // topology.ts's 10 s bound: load the modules once here, with time to spare.
    const warm = spawnSync('nft', ['-f', '-'], { input: 'table inet rts_warm {\n counter c {\n }\n chain x {\n type filter hook input priority 0; policy accept;\n udp dport 1 counter name c drop\n jump y\n }\n chain y {\n }\n}\n', encoding: 'utf8', timeout: 180_000 });
    if (warm.status !== 0) throw new Error(`cannot load nf_tables: ${warm.stderr}`);
    spawnSync('nft', ['delete', 'table', 'inet', 'rts_warm'], { timeout: 60_000 });
    t = createTopology();
  });
  afterAll(() => {
    t?.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  liveIt('nft verdicts through kprobe:__nft_trace_packet, per packet, with tracking ids; helper table removed', skip, async () => {
    const dir = path.join(tmp, 'nft');
    process.env.RETIS_BPF_DEBUG = '2'; // on failure the whole libbpf log lands in $VMRUN_OUT
    let r: Awaited<ReturnType<typeof runNftScenario>>;
    try {
      r = await runNftScenario(t, dir, 5, 400_000);
    } finally {
      // Also when it fails: the files after this one share the process (one fork) and its env.
      delete process.env.RETIS_BPF_DEBUG;
    }
    console.log(`nft path ${r.path}; first packet: ${r.perPacket[0]!.join(' ')}`);
    expect(r.path).toBe('kprobe');
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as { nft: { why: string; helper_table: string }; probes: { probe: string; events: number }[] };
    expect(meta.nft.why).toMatch(/kprobe on __nft_trace_packet/);
    const probe = meta.probes.find((p) => p.probe === 'kprobe:__nft_trace_packet');
    expect(probe?.events).toBeGreaterThanOrEqual(5 * 7);
    const table = meta.nft.helper_table.split(' ')[1]!;
    expect(spawnSync('nft', ['list', 'table', 'inet', table]).status).not.toBe(0);
  }, 500_000);

  liveIt('ct collector on 6.1 (nf_conntrack a module: CO-RE against module BTF): DNAT, ct NEW, translated reply', skip, async () => {
    t.exec(t.b, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    t.exec(t.b, 'sysctl', ['-q', '-w', 'net.ipv4.conf.all.send_redirects=0']);
    t.exec(t.b, 'sysctl', ['-q', '-w', `net.ipv4.conf.${t.vethB}.send_redirects=0`]);
    const load = spawnSync('ip', ['netns', 'exec', t.b, 'nft', `add table ip rts_nat; add chain ip rts_nat pre { type nat hook prerouting priority -100; }; add rule ip rts_nat pre udp dport 8888 dnat to ${t.addrA}:7779`], { encoding: 'utf8', timeout: 180_000 });
    expect(load.status, load.stderr).toBe(0);
    const dir = path.join(tmp, 'ct');
    const n = 3;
    const send = `ip netns exec ${t.a} bash -c 'for i in $(seq 1 ${n}); do printf "rts%06d" $i > /dev/udp/${t.addrB}/8888; done'`;
    const r = await runCapture(['-o', dir, '-c', 'skb,skb-tracking,dev,ns,ct', '--cmd', `${send}; sleep 0.5`], { timeoutMs: 400_000 });
    expect(r.status, `${r.signal ? `killed by ${r.signal}\n` : ''}${r.stderr}`).toBe(0);
    const db = await Db.open();
    try {
      await loadInputs(db, [dir]);
      const after = await db.rows(`SELECT track_id, ct.state AS state, ct.orig.proto.udp.dport AS odport, ct.reply.ip.src AS rsrc, ct.reply.proto.udp.sport AS rsport FROM events WHERE probe = 'tp:net:net_dev_start_xmit' AND dev_name = '${t.vethB}' AND dport = 7779`);
      const before = await db.rows(`SELECT track_id FROM events WHERE probe = 'tp:net:netif_receive_skb' AND dev_name = '${t.vethB}' AND dport = 8888`);
      console.log(`ct in the guest: ${JSON.stringify(after[0], (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
      expect(after.length).toBe(n);
      for (const a of after) expect(a).toMatchObject({ state: 'new', odport: 8888, rsrc: t.addrA, rsport: 7779 });
      expect(new Set(after.map((x) => String(x.track_id)))).toEqual(new Set(before.map((x) => String(x.track_id))));
    } finally {
      db.close();
    }
  }, 500_000);
});
