/**
 * Probes for the VM suite through our binding (bpf/ ProbeSet) with the generic selftest programs
 * (bpf/progs/selftest.bpf.c): resolve specs for the running kernel, load, attach, make traffic,
 * detach, drain. Same pattern as tests/bpf/attach.test.ts, shared by the VM-only files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { Btf } from '../../../bpf/btf.ts';
import { checkEnvironment, type EnvReport } from '../../../bpf/env.ts';
import { kallsymsFunctions, probeFeatures, type KernelFeatures } from '../../../bpf/features.ts';
import { bpfObjectPath } from '../../../bpf/native.ts';
import type { ConstantValue } from '../../../bpf/object.ts';
import { ProbeSet } from '../../../bpf/probe-set.ts';
import { resolveProbes, type ResolvedProbe } from '../../../bpf/probe-spec.ts';
import { selftestEvent, SelftestKind } from '../../../bpf/progs/selftest.layout.ts';
import { liveSkipReason, SELFTEST_PROGRAMS } from '../../bpf/helpers.ts';

export type SelftestEvent = ReturnType<typeof selftestEvent.decode>;
export { SelftestKind };

/** Why the VM-only suite cannot run: outside the VM it would load modules and start daemons on the host. */
export function vmSuiteSkipReason(): string | undefined {
  if (process.env.RETIS_IN_VM !== '1') return 'VM-only test (RETIS_IN_VM != 1): run it with npm run test:vm';
  return liveSkipReason();
}

export interface Kernel {
  features: KernelFeatures;
  btf: Btf;
  env: EnvReport;
}

/** Kernel facts for resolution; tracefs mounted if needed (undo with env.undo()). */
export function openKernel(): Kernel {
  const btf = Btf.vmlinux();
  return { btf, features: probeFeatures({ btf }), env: checkEnvironment({ allowSystemChanges: true, needTracefs: true }) };
}

export function resolve(k: Kernel, specs: string[]): ResolvedProbe[] {
  // Read once per call, never kept: modules (openvswitch, nf_tables) load between calls.
  let kallsyms: Set<string> | undefined;
  return resolveProbes(specs, { features: k.features, btf: k.btf, tracefs: k.env.tracefs, kallsyms: () => (kallsyms ??= kallsymsFunctions()) });
}

/**
 * Byte offset of a field in a classic tracepoint's record, from tracefs's format file. For module
 * tracepoints (openvswitch) whose record struct is in the module's BTF, which bpf/btf.ts does not
 * read: "field:void * skbaddr;\toffset:16;\tsize:8;\tsigned:0;".
 */
export function tracepointFieldOffset(k: Kernel, group: string, name: string, field: string): number {
  if (!k.env.tracefs) throw new Error('tracefs is not mounted');
  const format = readFileSync(join(k.env.tracefs, 'events', group, name, 'format'), 'utf8');
  const m = new RegExp(`field:[^;]*\\b${field};\\s*offset:(\\d+);`).exec(format);
  if (!m) throw new Error(`no field ${field} in ${group}:${name}'s format:\n${format}`);
  return Number(m[1]);
}

export interface Capture {
  probes: ResolvedProbe[];
  /** Events by probe name (ResolvedProbe.name, e.g. "kretprobe:ovs_dp_upcall"). */
  byProbe: Map<string, SelftestEvent[]>;
  events: SelftestEvent[];
}

/**
 * Attach `specs` (constants per probe, e.g. which argument is the skb), run `traffic`, then detach
 * and drain: every event of that window, grouped by probe. No ring buffer loss is tolerated.
 */
export async function capture(
  k: Kernel,
  specs: string[],
  traffic: () => void,
  constants: (p: ResolvedProbe) => Record<string, ConstantValue> = () => ({}),
): Promise<Capture> {
  const probes = resolve(k, specs);
  const set = ProbeSet.load(probes, {
    object: bpfObjectPath('selftest'),
    programs: SELFTEST_PROGRAMS,
    layouts: [selftestEvent],
    constants,
  });
  try {
    const events: SelftestEvent[] = [];
    const reader = set.openReader((b) => void events.push(...b.decode(selftestEvent)));
    set.attach();
    try {
      traffic();
    } finally {
      set.detach();
      await reader.flush();
      reader.close();
    }
    expect(set.losses().total).toBe(0n);
    const names = new Map(set.probes.map((p) => [p.id, p.probe.name]));
    const byProbe = new Map<string, SelftestEvent[]>(probes.map((p) => [p.name, []]));
    for (const e of events) byProbe.get(names.get(e.probe_id)!)?.push(e);
    return { probes, byProbe, events };
  } finally {
    set.close();
  }
}

/** "name: count" per probe, for logs and assertion messages. */
export const counts = (c: Capture): string => [...c.byProbe].map(([n, es]) => `${n}=${es.length}`).join(' ');
