/**
 * Host side of the VM tests: what is missing and how to get it, installing it on demand, and
 * running a command in the VM (tests/vm/vmrun.sh) with its output, exit status and timings.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const VM_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT_DIR = join(VM_DIR, '..', '..');
export const VMRUN = join(VM_DIR, 'vmrun.sh');

/**
 * What the VM suite uses beyond the runner (qemu-system-x86, linux-image-amd64, busybox-static: those
 * are vmrun.sh's to check and install), found on the host root that the guest shares.
 */
export const SUITE_PACKAGES: Record<string, string> = {
  'openvswitch-switch': '/usr/sbin/ovsdb-server',
  iproute2: '/sbin/ip',
  'iputils-ping': '/bin/ping',
};

export interface Missing {
  /** Debian package, or "root". */
  pkg: string;
  why: string;
}

/** Every missing piece for running the VM suite (runner + suite packages). */
export function vmMissing(opts: { suite?: boolean } = {}): Missing[] {
  const out: Missing[] = [];
  if (process.platform !== 'linux') return [{ pkg: 'linux', why: `not Linux (${process.platform})` }];
  const r = spawnSync('bash', [VMRUN, '--check'], { encoding: 'utf8' });
  if (r.error) return [{ pkg: 'bash', why: r.error.message }];
  for (const line of r.stderr.split('\n')) {
    const m = /^vmrun: missing ([^:]+): (.*)$/.exec(line);
    if (m) out.push({ pkg: m[1]!, why: m[2]! });
  }
  if (r.status !== 0 && out.length === 0) out.push({ pkg: 'vmrun', why: r.stderr.trim() || `vmrun.sh --check exited ${r.status}` });
  if (opts.suite ?? true) {
    for (const [pkg, file] of Object.entries(SUITE_PACKAGES)) if (!existsSync(file)) out.push({ pkg, why: `${file} not found` });
  }
  return out;
}

export const installCommand = (pkgs: string[]): string => `apt-get install --no-install-recommends ${pkgs.join(' ')}`;

/** Why the VM cannot run here, in one line with the fix; undefined when it can. */
export function vmUnavailableReason(opts: { suite?: boolean } = {}): string | undefined {
  const missing = vmMissing(opts);
  if (missing.length === 0) return undefined;
  const pkgs = [...new Set(missing.map((m) => m.pkg).filter((p) => p !== 'root'))];
  const what = missing.map((m) => `${m.pkg} (${m.why})`).join(', ');
  return `missing ${what}${pkgs.length ? `; fix (root): ${installCommand(pkgs)}, or npm run test:vm installs them` : ''}`;
}

/**
 * Install what the VM suite needs with apt-get. Throws, with the command to run, when that is not
 * possible here (not root, no apt-get). The kernel package's postinst writes an (unused)
 * /boot/initrd.img and /vmlinuz symlinks; vmrun.sh refuses it on hosts with a bootloader.
 */
export function installVmPackages(log: (s: string) => void = (s) => process.stderr.write(s + '\n')): void {
  const missing = vmMissing();
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  if (pkgs.includes('root') || process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.map((m) => m.pkg).join(', ')}; installing needs root: ${installCommand(pkgs.filter((p) => p !== 'root'))}`);
  }
  if (spawnSync('sh', ['-c', 'command -v apt-get']).status !== 0) {
    throw new Error(`missing ${pkgs.join(', ')} and no apt-get here (the VM suite expects Debian 12)`);
  }
  // vmrun.sh installs its own pieces (and guards the host's boot configuration); the rest here.
  if (pkgs.some((p) => !(p in SUITE_PACKAGES))) {
    const r = spawnSync('bash', [VMRUN, '--install'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`tests/vm/vmrun.sh --install failed (status ${r.status}); see above`);
  }
  const rest = pkgs.filter((p) => p in SUITE_PACKAGES);
  if (rest.length) {
    log(`test:vm: apt-get install ${rest.join(' ')}`);
    // openvswitch-switch's postinst would start host daemons where an init system runs them; the
    // suite never uses host daemons (the guest starts its own), so a refusal is harmless.
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const args = ['install', '-y', '-q', '--no-install-recommends', ...rest];
    let r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.status !== 0) {
      spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'inherit', 'inherit'], env });
      r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    }
    if (r.status !== 0) throw new Error(`apt-get install ${rest.join(' ')} failed (status ${r.status}); see above`);
  }
  const still = vmMissing();
  if (still.length) throw new Error(`still missing after install: ${still.map((m) => `${m.pkg} (${m.why})`).join(', ')}`);
}

export interface VmRunOptions {
  /** Working directory of the command inside the guest (the same path as on the host). */
  cwd?: string;
  /** Host directory shared read-write; the guest sees it as $VMRUN_OUT. */
  outDir?: string;
  /** Host environment variables to pass in by name (RETIS_IN_VM=1 is always set). */
  passEnv?: string[];
  timeoutS?: number;
  smp?: number;
  mem?: string;
  /** Each console line as it arrives (host wall ms since start). Default: nothing. */
  onLine?: (line: string, ms: number) => void;
}

export interface VmRunResult {
  /** Exit status of the command in the guest; undefined when the VM itself failed. */
  status: number | undefined;
  /** vmrun's reason when the VM failed (timeout, crash, missing piece). */
  vmError: string | undefined;
  /** Guest console (command output, kernel errors). */
  output: string;
  /** Host wall ms: until the guest's "guest up" line, and in all. */
  bootMs: number | undefined;
  wallMs: number;
  /** Guest uptime at the end of its boot, as the guest reports it (s). */
  guestBootS: number | undefined;
}

/** Run `cmd` in a fresh VM. Never throws for a failing command: look at status / vmError. */
export function runInVm(cmd: string[], opts: VmRunOptions = {}): Promise<VmRunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (opts.outDir) env.VMRUN_OUT = opts.outDir;
  if (opts.passEnv?.length) env.VMRUN_ENV = opts.passEnv.join(' ');
  if (opts.timeoutS) env.VMRUN_TIMEOUT = String(opts.timeoutS);
  if (opts.smp) env.VMRUN_SMP = String(opts.smp);
  if (opts.mem) env.VMRUN_MEM = opts.mem;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [VMRUN, '--', ...cmd], { cwd: opts.cwd ?? ROOT_DIR, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: string[] = [];
    let err = '';
    let partial = '';
    let bootMs: number | undefined;
    let guestBootS: number | undefined;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const ms = performance.now() - t0;
        const up = /^vmrun: guest up after ([\d.]+)s/.exec(line);
        if (up && bootMs === undefined) {
          bootMs = ms;
          guestBootS = Number(up[1]);
        }
        out.push(line);
        opts.onLine?.(line, ms);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (partial) out.push(partial);
      const wallMs = performance.now() - t0;
      // vmrun.sh prints "vmrun: exit status N" only when the guest recorded N; anything else is the VM's failure.
      const st = /^vmrun: exit status (\d+)/m.exec(err);
      const vmError = st ? undefined : err.split('\n').filter((l) => l.startsWith('vmrun:')).join('\n') || `vmrun.sh ended with ${signal ?? `status ${code}`}: ${err.trim()}`;
      resolve({ status: st ? Number(st[1]) : undefined, vmError, output: out.join('\n'), bootMs, wallMs, guestBootS });
    });
  });
}

/**
 * Backtraces of the processes that crashed in the guest: guest.sh has the kernel write their
 * cores into the shared out directory as core.<path of the executable, '!' for '/'>.<pid>, and
 * the guest runs the host's binaries (its root is the host's), so the host's gdb reads them.
 * One text per core, its crashing thread's stack and the shared objects' addresses; a note
 * instead when gdb is missing.
 */
export function coreReports(outDir: string): string[] {
  if (!existsSync(outDir)) return [];
  const cores = readdirSync(outDir).filter((f) => /^core\./.test(f));
  return cores.map((f) => {
    const core = join(outDir, f);
    const exe = /^core\.(.+)\.\d+$/.exec(f)?.[1]?.replaceAll('!', '/') ?? '';
    const gdb = spawnSync('gdb', ['-batch', '-nx', '-ex', 'bt 40', '-ex', 'info threads', '-ex', 'info sharedlibrary', ...(exe ? [exe] : []), core], { encoding: 'utf8', timeout: 120_000, maxBuffer: 16 << 20 });
    if (gdb.error) return `${core}: a core from the guest (gdb not available here to read it: ${gdb.error.message})`;
    return `${core} (${exe || 'executable unknown'}):\n${gdb.stdout}${gdb.stderr}`;
  });
}

/**
 * Build the capture bundle, which bin/retis-capture.js runs when it is current (the guest's
 * capture tests start it): through tsx, each start compiles the sources, a minute under TCG.
 * Best effort: returns why it could not be built (retis-capture then runs through tsx).
 */
export function bundleCapture(): string | undefined {
  try {
    execFileSync('npm', ['run', '-s', 'bundle:capture'], { cwd: ROOT_DIR, stdio: 'pipe', timeout: 180_000 });
    return undefined;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}
