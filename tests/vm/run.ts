/**
 * npm run test:vm [-- CMD [ARGS...]]
 *
 * Without a command: install what is missing (apt-get, as root), build the BPF objects if needed,
 * boot the 6.1 guest and run the VM suite in it (tests/vm/guest.sh), then print a summary.
 * With a command: run that command in the guest instead (cwd: the repository), e.g.
 *   npm run test:vm -- uname -r
 *   npm run test:vm -- tests/vm/guest.sh tests/vm/suite/ovs.vm-test.ts     (one file of the suite)
 * Exit status: the command's own; 125 when the VM could not run (the reason is printed).
 * Env: RETIS_VM_SMP, RETIS_VM_TIMEOUT (s), plus vmrun.sh's own VMRUN_* (see its header).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { bundleCapture, coreReports, installVmPackages, ROOT_DIR, runInVm } from './vm.ts';
import { summarizeReport, verdict, type VitestReport } from './report.ts';

const fail = (msg: string): never => {
  process.stderr.write(`test:vm: ${msg}\n`);
  process.exit(125);
};

if (process.env.RETIS_IN_VM === '1') fail('already inside the VM (RETIS_IN_VM=1): run the command directly');
if (process.platform !== 'linux') fail(`the VM runner needs Linux (this is ${process.platform})`);
if (process.getuid?.() !== 0) fail('run as root: QEMU serves the host files to the guest with its own rights, and apt-get installs what is missing');

const args = process.argv.slice(2);
const suite = args.length === 0;

try {
  installVmPackages();
} catch (e) {
  fail((e as Error).message);
}

if (suite) {
  // The guest would compile them too, 10-25x slower: build on the host (the guest shares build/).
  const need = ['build/bpf/selftest.bpf.o', 'build/bpf/bench.bpf.o', 'build/native/retis_bpf.node'];
  if (need.some((f) => !existsSync(join(ROOT_DIR, f)))) {
    process.stderr.write('test:vm: BPF objects or addon missing: npm run build:bpf\n');
    const r = spawnSync('npm', ['run', 'build:bpf'], { cwd: ROOT_DIR, stdio: 'inherit' });
    if (r.status !== 0) fail('npm run build:bpf failed (see above; bpf/README.md lists its packages)');
  }
  const why = bundleCapture();
  if (why) process.stderr.write(`test:vm: capture bundle not built (${why}): the guest starts retis-capture through tsx\n`);
}

mkdirSync(join(ROOT_DIR, 'build', 'vm'), { recursive: true });
const outDir = mkdtempSync(join(ROOT_DIR, 'build', 'vm', 'out-'));
const cmd = suite ? ['tests/vm/guest.sh'] : args;
const timeoutS = Number(process.env.RETIS_VM_TIMEOUT ?? 900);
const smp = process.env.RETIS_VM_SMP ? Number(process.env.RETIS_VM_SMP) : undefined;

const res = await runInVm(cmd, {
  outDir,
  timeoutS,
  ...(smp ? { smp } : {}),
  passEnv: ['CI', 'RETIS_BPF_DEBUG'].filter((v) => v in process.env),
  onLine: (line) => process.stdout.write(line + '\n'),
});

const s = (ms: number | undefined): string => (ms === undefined ? '?' : `${(ms / 1000).toFixed(1)} s`);
const lines = [`test:vm: boot ${s(res.bootMs)} (guest uptime ${res.guestBootS ?? '?'} s), total ${s(res.wallMs)}`];
const reportPath = join(outDir, 'vitest.json');
let status = res.status;
if (suite && existsSync(reportPath)) {
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as VitestReport;
  lines.push(...summarizeReport(report).map((l) => `test:vm: ${l}`));
  // Same policy as tests/vm/vm.test.ts: the guest exits 1 on the known failures of tests/bpf
  // (kernel-version and speed assumptions, docs/vm.md); they are listed but do not fail the run.
  const v = verdict(report);
  lines.push(...v.known.map((k) => `test:vm: known failure: ${k}`));
  lines.push(...v.required.map((k) => `test:vm: REQUIRED did not pass: ${k}`));
  lines.push(...v.unexpected.map((k) => `test:vm: UNEXPECTED failure: ${k}`));
  if (status !== undefined) status = v.ok ? 0 : 1;
  lines.push(`test:vm: ${v.ok ? 'OK' : 'FAILED'} (guest vitest status ${res.status})`);
}
if (res.vmError) lines.push(`test:vm: VM failed: ${res.vmError}`);
const cores = coreReports(outDir);
lines.push(...cores.map((c) => `test:vm: a process crashed: ${c}`));
process.stderr.write(lines.join('\n') + '\n');

if (status === 0 && cores.length === 0) rmSync(outDir, { recursive: true, force: true });
else process.stderr.write(`test:vm: kept ${outDir} (guest dmesg.txt${suite ? ', vitest.json' : ''}${cores.length ? ', cores' : ''})\n`);
process.exit(status ?? 125);
