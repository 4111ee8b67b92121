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
import { liveIt } from '../../bpf/helpers.ts';
import { runNftScenario } from '../../capture/nft-scenario.ts';
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
    const r = await runNftScenario(t, dir, 5, 400_000);
    delete process.env.RETIS_BPF_DEBUG;
    console.log(`nft path ${r.path}; first packet: ${r.perPacket[0]!.join(' ')}`);
    expect(r.path).toBe('kprobe');
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'capture.json'), 'utf8')) as { nft: { why: string; helper_table: string }; probes: { probe: string; events: number }[] };
    expect(meta.nft.why).toMatch(/kprobe on __nft_trace_packet/);
    const probe = meta.probes.find((p) => p.probe === 'kprobe:__nft_trace_packet');
    expect(probe?.events).toBeGreaterThanOrEqual(5 * 7);
    const table = meta.nft.helper_table.split(' ')[1]!;
    expect(spawnSync('nft', ['list', 'table', 'inet', table]).status).not.toBe(0);
  }, 500_000);
});
