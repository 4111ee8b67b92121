/**
 * nft and ct collectors on real traffic (root), in the two-namespace topology of topology.ts:
 * - nft: per-packet drop verdicts with table, chain and handles, counted against the nftables
 *   counter, each in its packet's series (same tracking id as the packet's probe events);
 * - ct: a DNAT in B (forwarded back to A) shows conntrack NEW with the translated reply tuple,
 *   with the same tracking id before (netif_receive_skb in B) and after (xmit in B) NAT;
 * - the helper table of --allow-system-changes is removed after SIGTERM, and after kill -9 by the
 *   next start, which says so (stderr, capture.json); without it and without tracing rules the
 *   capture says why no nft event will come.
 * Traffic stays in the namespaces created here and is bounded (tens of datagrams).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { liveIt } from '../bpf/helpers.ts';
import { REPO_ROOT } from '../util/paths.ts';
import { captureSkipReason, loadRows, startCapture, type Run, until } from './run-capture.ts';
import { NFT_PORT, createTopology, type Topology } from './topology.ts';
import { runNftScenario } from './nft-scenario.ts';

const skip = captureSkipReason(['nft', 'ip', 'nsenter']);
if (skip) console.log(`SKIP nft/ct capture tests: ${skip}`);

const QUERY = path.join(REPO_ROOT, 'bin', 'retis-query.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-nftct-'));
const N_DROP = 40;
const N_NAT = 10;
const NAT_PORT = 8888;
const NAT_TO = 7779;

const start = (args: string[]): ReturnType<typeof startCapture> => startCapture(args, { timeoutMs: 90_000 });
const capture = (args: string[]): Promise<Run> => start(args).done;

/** Whether namespace `ns` (undefined: the host) has `table inet NAME`. */
function hasTable(ns: string | undefined, name: string): boolean {
  const argv = ['list', 'table', 'inet', name];
  const r = ns ? spawnSync('ip', ['netns', 'exec', ns, 'nft', ...argv]) : spawnSync('nft', argv);
  return r.status === 0;
}

const readJson = (p: string): Record<string, unknown> => JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>;

describe('retis-capture nft and ct collectors (root, two netns + veth)', () => {
  let t: Topology;
  const children = new Set<ChildProcess>();

  beforeAll(() => {
    if (skip) return;
    t = createTopology();
    // B forwards what its DNAT sends back to A (ct scenario); no ICMP redirects on the link.
    t.exec(t.b, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    t.exec(t.b, 'sysctl', ['-q', '-w', 'net.ipv4.conf.all.send_redirects=0']);
    t.exec(t.b, 'sysctl', ['-q', '-w', `net.ipv4.conf.${t.vethB}.send_redirects=0`]);
    t.exec(t.b, 'nft', [`add table ip rts_nat; add chain ip rts_nat pre { type nat hook prerouting priority -100; }; add rule ip rts_nat pre udp dport ${NAT_PORT} dnat to ${t.addrA}:${NAT_TO}`]);
  });

  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    t?.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  liveIt(
    'nft: one drop verdict per dropped packet (= nft counter), table/chain/handles, in the packet series',
    skip,
    async () => {
      const dir = path.join(tmp, 'nft');
      const before = t.nftDropped();
      const r = await capture(['-o', dir, '-c', 'skb,skb-tracking,skb-drop,dev,ns,nft', '--nft-verdicts', 'drop', '--allow-system-changes', '--cmd', `${t.sendScript(NFT_PORT, N_DROP)}; sleep 0.5`]);
      expect(r.status, r.stderr).toBe(0);
      const dropped = t.nftDropped() - before;
      expect(dropped).toBe(N_DROP);

      const meta = readJson(path.join(dir, 'capture.json'));
      const nft = meta.nft as { path: string; why: string; helper_table: string; counts: Record<string, number> };
      expect(['netlink', 'kprobe']).toContain(nft.path);
      expect(nft.why.length).toBeGreaterThan(10);
      const rows = await loadRows(
        dir,
        `SELECT eid, track_id, probe, nft.table_name AS tname, nft.chain_name AS cname, nft.verdict AS verdict, nft.table_handle AS th,
                nft.chain_handle AS ch, nft.rule_handle AS rh, nft.policy AS policy
         FROM events WHERE nft IS NOT NULL ORDER BY ts`,
      );
      const drops = rows.filter((x) => x.tname === 'rts_test');
      expect(drops.length).toBe(dropped);
      // Handles as nftables numbers them in B.
      const rs = JSON.parse(t.exec(t.b, 'nft', ['-j', '-a', 'list', 'table', 'inet', 'rts_test'])) as { nftables: Record<string, { handle?: number; name?: string; chain?: string; expr?: unknown[] }>[] };
      const tableHandle = rs.nftables.find((o) => o.table)!.table!.handle;
      const chainHandle = rs.nftables.find((o) => o.chain?.name === 'input')!.chain!.handle;
      const ruleHandle = rs.nftables.find((o) => o.rule?.chain === 'input')!.rule!.handle;
      for (const d of drops) {
        expect(d).toMatchObject({ cname: 'input', verdict: 'drop', policy: false });
        expect(Number(d.th)).toBe(tableHandle);
        expect(Number(d.ch)).toBe(chainHandle);
        expect(Number(d.rh)).toBe(ruleHandle);
        expect(d.track_id).not.toBeNull();
      }
      // Each verdict is in its packet's series: the tracking id of B's reception of that packet.
      const rx = await loadRows(dir, `SELECT track_id FROM events WHERE probe = 'tp:net:netif_receive_skb' AND dport = ${NFT_PORT} AND dev_name = '${t.vethB}'`);
      expect(rx.length).toBe(N_DROP);
      expect(new Set(drops.map((d) => String(d.track_id)))).toEqual(new Set(rx.map((x) => String(x.track_id))));
      if (nft.path === 'netlink') expect(nft.counts.matched).toBeGreaterThanOrEqual(N_DROP);
      // Helper table gone, in every namespace, state file too.
      const table = nft.helper_table.split(' ')[1]!;
      expect(hasTable(t.b, table)).toBe(false);
      expect(fs.readdirSync('/run/retis-ts').filter((f) => f.includes(table.replace('retis_ts_', '')))).toEqual([]);
      // Analyzer text output prints the section as Retis does.
      const q = spawnSync(process.execPath, [QUERY, 'print', dir], { encoding: 'utf8', timeout: 60_000 });
      expect(q.status, q.stderr).toBe(0);
      expect(q.stdout).toMatch(new RegExp(`table rts_test \\(${tableHandle}\\) chain input \\(${chainHandle}\\) handle ${ruleHandle} drop`));
      // --format json: Retis's nft section shape, nothing more.
      const j = spawnSync(process.execPath, [QUERY, "events | where nft.verdict == 'drop'", dir, '--format', 'json'], { encoding: 'utf8', timeout: 60_000 });
      expect(j.status, j.stderr).toBe(0);
      const lines = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);
      expect(lines.length).toBe(N_DROP);
      expect(Object.keys(lines[0]!.nft!)).toEqual(['table_name', 'chain_name', 'verdict', 'table_handle', 'chain_handle', 'rule_handle', 'policy']);
    },
    120_000,
  );

  liveIt(
    'nft --nft-verdicts all: jump, implicit-return continue, policy accept, drop, per packet in order (Retis test_nft.py)',
    skip,
    async () => {
      const r = await runNftScenario(t, path.join(tmp, 'jumps'), 10, 90_000);
      console.log(`nft path ${r.path}; first packet: ${r.perPacket[0]!.join(' ')}`);
    },
    120_000,
  );

  liveIt(
    'ct: DNAT shows ct NEW with the translated reply tuple, same tracking id before and after NAT',
    skip,
    async () => {
      const dir = path.join(tmp, 'ct');
      const send = `ip netns exec ${t.a} bash -c 'for i in $(seq 1 ${N_NAT}); do printf "rts%06d" $i > /dev/udp/${t.addrB}/${NAT_PORT}; done'`;
      const r = await capture(['-o', dir, '-c', 'skb,skb-tracking,dev,ns,ct', '--cmd', `${send}; sleep 0.2`]);
      expect(r.status, r.stderr).toBe(0);
      const before = await loadRows(dir, `SELECT track_id, ct FROM events WHERE probe = 'tp:net:netif_receive_skb' AND dev_name = '${t.vethB}' AND dport = ${NAT_PORT}`);
      const after = await loadRows(
        dir,
        `SELECT track_id, daddr, dport, ct.state AS state, ct.orig.ip.src AS osrc, ct.orig.ip.dst AS odst, ct.orig.proto.udp.dport AS odport,
                ct.reply.ip.src AS rsrc, ct.reply.ip.dst AS rdst, ct.reply.proto.udp.sport AS rsport, ct.zone_dir AS zdir, ct.ct_status AS status
         FROM events WHERE probe = 'tp:net:net_dev_start_xmit' AND dev_name = '${t.vethB}' AND dport = ${NAT_TO}`,
      );
      expect(before.length).toBe(N_NAT);
      expect(after.length).toBe(N_NAT);
      // Before NAT: no conntrack yet (reception precedes the prerouting hooks).
      expect(before.every((x) => x.ct === null)).toBe(true);
      for (const a of after) {
        expect(a).toMatchObject({ daddr: t.addrA, state: 'new', osrc: t.addrA, odst: t.addrB, odport: NAT_PORT, rsrc: t.addrA, rdst: t.addrA, rsport: NAT_TO, zdir: 'Default' });
        // IPS_DST_NAT | IPS_DST_NAT_DONE
        expect(BigInt(a.status as bigint) & 0x120n).toBe(0x120n);
      }
      expect(new Set(after.map((x) => String(x.track_id)))).toEqual(new Set(before.map((x) => String(x.track_id))));
      const j = spawnSync(process.execPath, [QUERY, `events | where ct.state == 'new'`, dir, '--format', 'json'], { encoding: 'utf8', timeout: 60_000 });
      expect(j.status, j.stderr).toBe(0);
      const ev = JSON.parse(j.stdout.trim().split('\n')[0]!) as { ct: Record<string, unknown> };
      expect(Object.keys(ev.ct)).toEqual(['state', 'zone_id', 'zone_dir', 'orig', 'reply', 'mark', 'ct_status']);
      expect(ev.ct.reply).toEqual({ ip: { src: t.addrA, dst: t.addrA, version: 'v4' }, proto: { udp: { sport: NAT_TO, dport: (ev.ct.orig as { proto: { udp: { sport: number } } }).proto.udp.sport } } });
      const p = spawnSync(process.execPath, [QUERY, 'print', dir], { encoding: 'utf8', timeout: 60_000 });
      expect(p.stdout).toMatch(new RegExp(`ct_state NEW status 0x[0-9a-f]+ udp orig \\[${t.addrA.replaceAll('.', '\\.')}\\.\\d+ > ${t.addrB.replaceAll('.', '\\.')}\\.${NAT_PORT}\\] reply \\[${t.addrA.replaceAll('.', '\\.')}\\.${NAT_TO} > `));
    },
    120_000,
  );

  liveIt(
    'helper table: removed after SIGTERM; after kill -9, removed by the next start, which reports it',
    skip,
    async () => {
      // SIGTERM
      const a = start(['-o', path.join(tmp, 'term'), '-c', 'skb,skb-tracking,nft', '--allow-system-changes', '--duration', '60']);
      children.add(a.child);
      await until(() => /probe\(s\) attached/.test(a.stderr()), 60_000, 'the capture to attach');
      const tableA = `retis_ts_${a.child.pid}`;
      // Installed where there are nftables rules to trace (B), not elsewhere (A has none).
      await until(() => hasTable(t.b, tableA), 10_000, 'the helper table in B');
      expect(hasTable(t.a, tableA)).toBe(false);
      a.child.kill('SIGTERM');
      const ra = await a.done;
      expect(ra.status, ra.stderr).toBe(0);
      expect(hasTable(undefined, tableA)).toBe(false);
      expect(hasTable(t.b, tableA)).toBe(false);
      expect(fs.existsSync(`/run/retis-ts/nft-helper.${a.child.pid}.json`)).toBe(false);

      // kill -9: the table stays until the next start.
      const b = start(['-o', path.join(tmp, 'killed'), '-c', 'skb,skb-tracking,nft', '--allow-system-changes', '--duration', '60']);
      children.add(b.child);
      await until(() => /probe\(s\) attached/.test(b.stderr()), 60_000, 'the capture to attach');
      const tableB = `retis_ts_${b.child.pid}`;
      await until(() => hasTable(t.b, tableB), 10_000, 'the helper table in B');
      b.child.kill('SIGKILL');
      await b.done;
      expect(hasTable(t.b, tableB)).toBe(true);
      const dir = path.join(tmp, 'next');
      const rc = await capture(['-o', dir, '-c', 'skb,nft', '--duration', '1']);
      expect(rc.status, rc.stderr).toBe(0);
      expect(rc.stderr).toContain(`removed the nft helper table inet ${tableB} in ${t.b}`);
      // Without --allow-system-changes and no tracing rule: says why nothing will come.
      expect(rc.stderr).toMatch(/no rule sets 'meta nftrace set 1', so .*no nft event will be reported.*--allow-system-changes/);
      expect(hasTable(t.b, tableB)).toBe(false);
      const meta = readJson(path.join(dir, 'capture.json'));
      const rec = (meta.nft as { helper_recovered: { removed: string[]; pids: number[] } }).helper_recovered;
      expect(rec.pids).toContain(b.child.pid);
      expect(rec.removed).toContain(`inet ${tableB} in ${t.b}`);
      expect((meta.notes as string[]).join('\n')).toContain(tableB);
    },
    180_000,
  );
});
