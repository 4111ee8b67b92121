/**
 * The VM suite, from the host: boot Debian's 6.1 kernel once (tests/vm/vmrun.sh, QEMU), run
 * tests/vm/guest.sh in it (the live BPF suites unchanged + tests/vm/suite), and check its report:
 * the paths this host cannot run (kprobe, kretprobe, fentry, fexit; the OVS datapath; nft traces;
 * head reallocation) must pass in the guest. The policy (REQUIRED, KNOWN) is in report.ts.
 *
 * Skipped, with the reason printed, when RETIS_SKIP_VM=1, inside the VM itself, without root, or
 * when QEMU/the kernel/busybox/openvswitch are missing (this file never installs anything:
 * `npm run test:vm` does). Bounded: the VM is killed after RETIS_VM_TIMEOUT seconds (default 900:
 * the retis-capture -c ovs test, tests/vm/suite/ovs-capture.vm-test.ts, adds ~4 min of TCG to the
 * suite, mostly the verifier on its 11 programs) so this file stays under 16 minutes even when the
 * guest hangs.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTests, REQUIRED, summarizeReport, verdict, type VitestReport } from './report.ts';
import { bundleCapture, coreReports, ROOT_DIR, runInVm, vmUnavailableReason, type VmRunResult } from './vm.ts';

const TIMEOUT_S = Number(process.env.RETIS_VM_TIMEOUT ?? 900);

function skipReason(): string | undefined {
  if (process.env.RETIS_SKIP_VM === '1') return 'RETIS_SKIP_VM=1';
  if (process.env.RETIS_IN_VM === '1') return 'already inside the VM';
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root (QEMU serves the host files to the guest with its own rights; the suite needs root\'s view): sudo npm test';
  const missing = vmUnavailableReason();
  if (missing) return missing;
  for (const f of ['build/bpf/selftest.bpf.o', 'build/native/retis_bpf.node']) {
    if (!existsSync(join(ROOT_DIR, f))) return `${f} missing: npm run build:bpf`;
  }
  return undefined;
}

const skip = skipReason();
if (skip) console.log(`SKIP VM suite (Debian 6.1 guest under QEMU): ${skip}`);

describe.skipIf(!!skip)('VM suite (Debian 6.1 kernel under QEMU)', () => {
  let res: VmRunResult;
  let report: VitestReport | undefined;
  let outDir: string;

  beforeAll(async () => {
    mkdirSync(join(ROOT_DIR, 'build', 'vm'), { recursive: true });
    const why = bundleCapture();
    if (why) console.log(`VM suite: capture bundle not built (${why}): the guest starts retis-capture through tsx`);
    outDir = mkdtempSync(join(ROOT_DIR, 'build', 'vm', 'out-'));
    res = await runInVm(['tests/vm/guest.sh'], {
      outDir,
      timeoutS: TIMEOUT_S,
      onLine: process.env.RETIS_VM_VERBOSE === '1' ? (l) => process.stderr.write(`vm| ${l}\n`) : undefined,
    });
    const p = join(outDir, 'vitest.json');
    if (existsSync(p)) report = JSON.parse(readFileSync(p, 'utf8')) as VitestReport;
  }, (TIMEOUT_S + 30) * 1000);

  afterAll(() => {
    if (!res) return;
    const s = (ms: number | undefined): string => (ms === undefined ? '?' : `${(ms / 1000).toFixed(1)} s`);
    const lines = [`VM: boot ${s(res.bootMs)} (guest uptime ${res.guestBootS ?? '?'} s), total ${s(res.wallMs)}, guest status ${res.status ?? res.vmError}`];
    if (report) lines.push(...summarizeReport(report));
    const cores = coreReports(outDir);
    lines.push(...cores.map((c) => `VM: a process crashed: ${c}`));
    console.log(lines.join('\n'));
    // Known failures make the guest's status 1: keep the evidence only when the verdict is bad.
    if (!res.vmError && report && verdict(report).ok && cores.length === 0) rmSync(outDir, { recursive: true, force: true });
    else console.log(`VM: kept ${outDir} (dmesg.txt, vitest.json${cores.length ? ', cores' : ''})`);
  });

  /** The guest console's last lines, for assertion messages. */
  const tail = (n = 60): string => res.output.split('\n').slice(-n).join('\n');

  it('boots the 6.1 guest and runs the suite to its end', () => {
    expect(res.vmError, `${res.vmError}\n--- guest console ---\n${tail()}`).toBeUndefined();
    expect(res.output).toMatch(/^guest: kernel 6\.1\./m);
    expect(report, `no vitest.json from the guest\n${tail()}`).toBeDefined();
  });

  for (const [file, title, what] of REQUIRED) {
    it(`in the guest: ${what}`, () => {
      const found = report ? findTests(report, file, title) : [];
      expect(found.length, `no test matching ${title} in ${file}\n${tail(20)}`).toBeGreaterThan(0);
      for (const t of found) expect(t.status, `${t.file} > ${t.fullName}: ${t.failureMessages.join('\n')}`).toBe('passed');
    });
  }

  it('no unexpected failure in the guest (known version/speed assumptions of tests/bpf are only reported)', () => {
    expect(report).toBeDefined();
    const v = verdict(report!);
    for (const k of v.known) console.log(`VM known failure: ${k}`);
    expect(v.unexpected).toEqual([]);
  });
});
