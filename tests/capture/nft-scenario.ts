/**
 * The nft verdict scenario shared by the host test (netlink path, tests/capture/nft-ct.test.ts)
 * and the VM test (kprobe path, tests/vm/suite/nft-capture.vm-test.ts), modelled on Retis's
 * test_nft.py: in B, a base chain before the topology's drop rule jumps to two empty chains
 * (verdicts jump, continue for their implicit returns, then the accept policy), then rts_test
 * drops the datagram. Captured with --nft-verdicts all, each packet's series must hold that
 * sequence, with names, handles and tracking ids, and the drops must equal the nft counter.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { Db } from '../../analyze/db.ts';
import { loadInputs } from '../../analyze/load/index.ts';
import { runCapture } from './run-capture.ts';
import { NFT_PORT, type Topology } from './topology.ts';

export const JUMP_RULESET = `table inet nft_test {
  chain input_filter {
    type filter hook input priority -10; policy accept;
    jump input_ind1_hook
    jump input_ind2_hook
  }
  chain input_ind1_hook {
  }
  chain input_ind2_hook {
  }
}
`;

export interface ScenarioResult {
  path: string;
  perPacket: string[][];
  stderr: string;
}

/** Run the capture over `n` datagrams A -> B:NFT_PORT and check the verdicts. */
export async function runNftScenario(t: Topology, dir: string, n: number, timeoutMs: number): Promise<ScenarioResult> {
  spawnSync('ip', ['netns', 'exec', t.b, 'nft', 'delete', 'table', 'inet', 'nft_test']);
  const load = spawnSync('ip', ['netns', 'exec', t.b, 'nft', '-f', '-'], { input: JUMP_RULESET, encoding: 'utf8', timeout: 20_000 });
  if (load.status !== 0) throw new Error(`cannot load the jump ruleset: ${load.stderr || String(load.error)}`);
  const before = t.nftDropped();
  const r = await runCapture(['-o', dir, '-c', 'skb,skb-tracking,dev,ns,nft', '--nft-verdicts', 'all', '--allow-system-changes', '--cmd', `${t.sendScript(NFT_PORT, n)}; sleep 0.5`], { timeoutMs });
  // VM runs: keep the capture's stderr (with RETIS_BPF_DEBUG=2, the whole libbpf log) for the host.
  if (process.env.VMRUN_OUT && r.status !== 0) fs.writeFileSync(path.join(process.env.VMRUN_OUT, 'nft-capture-stderr.txt'), r.stderr);
  expect(r.status, `${r.signal ? `killed by ${r.signal}\n` : ''}${r.stderr.split('\n').filter((l) => !l.startsWith('libbpf:')).join('\n')}`).toBe(0);
  const dropped = t.nftDropped() - before;
  expect(dropped).toBe(n);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as { nft: { path: string } };
  const db = await Db.open();
  let rows: Record<string, unknown>[];
  try {
    await loadInputs(db, [dir]);
    rows = await db.rows(
      `SELECT track_id, probe, nft.table_name AS tname, nft.chain_name AS cname, nft.verdict AS verdict, nft.verdict_chain_name AS vchain,
              nft.rule_handle AS rh, nft.policy AS policy, nft.table_handle AS th, nft.chain_handle AS ch
       FROM events WHERE nft IS NOT NULL AND nft.table_name IN ('nft_test', 'rts_test') ORDER BY ts`,
    );
  } finally {
    db.close();
  }
  const byId = new Map<string, Record<string, unknown>[]>();
  for (const x of rows) {
    expect(x.track_id, JSON.stringify(x, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).not.toBeNull();
    byId.set(String(x.track_id), [...(byId.get(String(x.track_id)) ?? []), x]);
  }
  expect(byId.size).toBe(n);
  const perPacket: string[][] = [];
  for (const evs of byId.values()) {
    perPacket.push(evs.map((e) => `${String(e.cname)}:${String(e.verdict)}${e.policy ? '(policy)' : ''}`));
    const jumps = evs.filter((e) => e.verdict === 'jump');
    expect(jumps.map((e) => e.vchain)).toEqual(['input_ind1_hook', 'input_ind2_hook']);
    for (const j of jumps) {
      expect(j.cname).toBe('input_filter');
      expect(j.rh).not.toBeNull();
    }
    const conts = evs.filter((e) => e.verdict === 'continue');
    expect(conts.length).toBeGreaterThanOrEqual(2);
    for (const c of conts) expect(c.rh, JSON.stringify(c, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).toBeNull(); // implicit returns: no rule
    const pol = evs.filter((e) => e.policy === true);
    expect(pol.map((e) => `${String(e.cname)}:${String(e.verdict)}`)).toEqual(['input_filter:accept']);
    for (const p of pol) expect(p.rh).toBeNull();
    const drops = evs.filter((e) => e.verdict === 'drop');
    expect(drops.length).toBe(1);
    expect(drops[0]).toMatchObject({ tname: 'rts_test', cname: 'input', policy: false });
    expect(drops[0]!.rh).not.toBeNull();
    for (const e of evs) {
      expect(Number(e.th)).toBeGreaterThan(0);
      expect(Number(e.ch)).toBeGreaterThan(0);
    }
    // Order in the series: the jumps first, the drop last.
    expect(evs[0]!.verdict).toBe('jump');
    expect(evs[evs.length - 1]!.verdict).toBe('drop');
  }
  t.exec(t.b, 'nft', ['delete', 'table', 'inet', 'nft_test']);
  return { path: meta.nft.path, perPacket, stderr: r.stderr };
}
