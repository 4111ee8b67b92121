/**
 * Environment checks before a capture, each with a message that says what to do:
 * privileges (root or CAP_BPF+CAP_PERFMON), kernel BTF, tracefs and bpffs mounts, kernel lockdown,
 * the native build. Mounting tracefs/bpffs is a change to the system: only done when the caller
 * passes `allowSystemChanges` (retis-capture --allow-system-changes), and undone by `report.undo()`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { nativeStatus } from './native.ts';

export type EnvCheckId = 'platform' | 'privileges' | 'kernel' | 'btf' | 'native' | 'tracefs' | 'bpffs' | 'lockdown' | 'memlock';

export interface EnvCheck {
  id: EnvCheckId;
  ok: boolean;
  /** error: capture cannot work; warning: some probes/features will not; info: for the record. */
  severity: 'error' | 'warning' | 'info';
  message: string;
  /** What to run or change (present when !ok). */
  fix?: string;
  /** A system change this check made (e.g. mounted tracefs). */
  changed?: string;
}

export interface EnvOptions {
  /** Mount tracefs/bpffs/securityfs when missing (and record how to undo it). */
  allowSystemChanges?: boolean;
  /** tracefs is required (classic tracepoints, wildcard expansion): missing is an error, else a warning. */
  needTracefs?: boolean;
  /** bpffs is required (pinning): missing is an error, else info. */
  needBpffs?: boolean;
  /** Skip the native build check (e.g. a pure BTF query). */
  skipNative?: boolean;
}

export interface EnvReport {
  ok: boolean;
  checks: EnvCheck[];
  /** The tracefs mount point in use, if any (`/sys/kernel/tracing` or `/sys/kernel/debug/tracing`). */
  tracefs: string | undefined;
  /** Revert system changes made by the checks (unmount what we mounted). Idempotent. */
  undo(): void;
}

export class EnvError extends Error {
  override name = 'EnvError';
  constructor(readonly report: EnvReport) {
    super(formatEnvProblems(report));
  }
}

//// helpers ////

interface Mount {
  source: string;
  target: string;
  fstype: string;
}

export function readMounts(path = '/proc/self/mounts'): Mount[] {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [source = '', target = '', fstype = ''] = l.split(' ');
        // /proc/mounts escapes spaces as \040.
        return { source, target: target.replace(/\\040/g, ' '), fstype };
      });
  } catch {
    return [];
  }
}

/** Where tracefs is mounted (directly, or through debugfs), or undefined. */
export function findTracefs(mounts = readMounts()): string | undefined {
  for (const m of mounts) if (m.fstype === 'tracefs' && existsSync(`${m.target}/events`)) return m.target;
  for (const m of mounts) if (m.fstype === 'debugfs' && existsSync(`${m.target}/tracing/events`)) return `${m.target}/tracing`;
  return undefined;
}

function mount(fstype: string, target: string): string | undefined {
  const r = spawnSync('mount', ['-t', fstype, fstype, target], { encoding: 'utf8' });
  if (r.error) return `mount not runnable: ${r.error.message}`;
  if (r.status !== 0) return (r.stderr || r.stdout || `exit ${r.status}`).trim();
  return undefined;
}

function umount(target: string): string | undefined {
  const r = spawnSync('umount', [target], { encoding: 'utf8' });
  if (r.error) return r.error.message;
  return r.status === 0 ? undefined : (r.stderr || `exit ${r.status}`).trim();
}

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

/** Effective capabilities of this process (from /proc/self/status). */
export function effectiveCaps(): bigint {
  try {
    const m = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

const hasCap = (caps: bigint, n: number): boolean => ((caps >> BigInt(n)) & 1n) === 1n;

function kernelVersion(rel = release()): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

//// checks ////

/** Run every check. Never throws; see {@link assertEnvironment} for the throwing form. */
export function checkEnvironment(opts: EnvOptions = {}): EnvReport {
  const checks: EnvCheck[] = [];
  const undoList: (() => void)[] = [];
  const add = (c: EnvCheck): void => void checks.push(c);

  if (process.platform !== 'linux') {
    add({ id: 'platform', ok: false, severity: 'error', message: `capture needs Linux (this is ${process.platform})`, fix: 'capture on the Linux host and copy the capture directory here to analyze it' });
    return { ok: false, checks, tracefs: undefined, undo: () => {} };
  }

  // Privileges: root, or the split capabilities of kernels >= 5.8.
  const caps = effectiveCaps();
  const bpf = hasCap(caps, CAP_BPF) || hasCap(caps, CAP_SYS_ADMIN);
  const perfmon = hasCap(caps, CAP_PERFMON) || hasCap(caps, CAP_SYS_ADMIN);
  if (bpf && perfmon) {
    add({ id: 'privileges', ok: true, severity: 'info', message: `uid ${process.getuid?.()}, CAP_BPF+CAP_PERFMON${hasCap(caps, CAP_NET_ADMIN) ? '+CAP_NET_ADMIN' : ''} effective` });
  } else {
    const missing = [!bpf && 'CAP_BPF', !perfmon && 'CAP_PERFMON'].filter(Boolean).join(' and ');
    add({
      id: 'privileges', ok: false, severity: 'error',
      message: `not enough privileges to load BPF programs: missing ${missing} (uid ${process.getuid?.()})`,
      fix: 'run as root (sudo retis-capture ...), or: sudo setcap cap_bpf,cap_perfmon,cap_net_admin+ep "$(readlink -f "$(command -v node)")"',
    });
  }

  const [maj, min] = kernelVersion();
  const kernelOk = maj > 5 || (maj === 5 && min >= 8);
  add(kernelOk
    ? { id: 'kernel', ok: true, severity: 'info', message: `kernel ${release()}` }
    : { id: 'kernel', ok: false, severity: 'error', message: `kernel ${release()} is too old: BPF ring buffers need >= 5.8`, fix: 'capture on a newer kernel' });

  if (existsSync('/sys/kernel/btf/vmlinux')) {
    add({ id: 'btf', ok: true, severity: 'info', message: 'kernel BTF present (/sys/kernel/btf/vmlinux)' });
  } else {
    add({ id: 'btf', ok: false, severity: 'error', message: 'kernel BTF missing: /sys/kernel/btf/vmlinux does not exist', fix: 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y (all major distributions since ~2021)' });
  }

  if (!opts.skipNative) {
    const ns = nativeStatus();
    add(ns.available
      ? { id: 'native', ok: true, severity: 'info', message: `native addon loaded (libbpf ${ns.libbpf})` }
      : { id: 'native', ok: false, severity: 'error', message: ns.message, fix: 'apt-get install clang libbpf-dev libelf-dev bpftool, then npm run build:bpf' });
  }

  // tracefs: classic tracepoints resolve their id there; wildcards list events there.
  let mounts = readMounts();
  let tracefs = findTracefs(mounts);
  if (!tracefs && opts.allowSystemChanges) {
    const target = '/sys/kernel/tracing';
    const err = existsSync(target) ? mount('tracefs', target) : `${target} does not exist`;
    mounts = readMounts();
    tracefs = findTracefs(mounts);
    if (tracefs) {
      undoList.push(() => void umount(target));
      add({ id: 'tracefs', ok: true, severity: 'info', message: `tracefs mounted at ${target} (--allow-system-changes; unmounted at exit)`, changed: `mount -t tracefs tracefs ${target}` });
    } else {
      add({ id: 'tracefs', ok: false, severity: opts.needTracefs ? 'error' : 'warning', message: `tracefs is not mounted and mounting it failed: ${err}`, fix: 'mount -t tracefs tracefs /sys/kernel/tracing' });
    }
  } else if (tracefs) {
    add({ id: 'tracefs', ok: true, severity: 'info', message: `tracefs at ${tracefs}` });
  } else {
    add({
      id: 'tracefs', ok: false, severity: opts.needTracefs ? 'error' : 'warning',
      message: 'tracefs is not mounted: classic tracepoints and wildcard probes (tp:skb:*) cannot be resolved (tp_btf/raw_tp still work)',
      fix: 'mount -t tracefs tracefs /sys/kernel/tracing, or run retis-capture with --allow-system-changes',
    });
  }

  // bpffs: only needed to pin objects (we do not by default).
  const bpffs = mounts.find((m) => m.fstype === 'bpf');
  if (bpffs) {
    add({ id: 'bpffs', ok: true, severity: 'info', message: `bpffs at ${bpffs.target}` });
  } else if (opts.allowSystemChanges && opts.needBpffs) {
    const err = mount('bpf', '/sys/fs/bpf');
    if (!err) {
      undoList.push(() => void umount('/sys/fs/bpf'));
      add({ id: 'bpffs', ok: true, severity: 'info', message: 'bpffs mounted at /sys/fs/bpf (--allow-system-changes; unmounted at exit)', changed: 'mount -t bpf bpf /sys/fs/bpf' });
    } else {
      add({ id: 'bpffs', ok: false, severity: 'error', message: `bpffs is not mounted and mounting it failed: ${err}`, fix: 'mount -t bpf bpf /sys/fs/bpf' });
    }
  } else {
    add({
      id: 'bpffs', ok: !opts.needBpffs, severity: opts.needBpffs ? 'error' : 'info',
      message: `bpffs is not mounted at /sys/fs/bpf${opts.needBpffs ? '' : ' (not needed: nothing is pinned)'}`,
      fix: 'mount -t bpf bpf /sys/fs/bpf, or run retis-capture with --allow-system-changes',
    });
  }

  // Lockdown: "confidentiality" forbids reading kernel memory from BPF, which every probe does.
  let lockdown: string | undefined;
  const readLockdown = (): string | undefined => {
    try {
      return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/security/lockdown', 'utf8'))?.[1];
    } catch {
      return undefined;
    }
  };
  lockdown = readLockdown();
  if (lockdown === undefined && opts.allowSystemChanges && !mounts.some((m) => m.fstype === 'securityfs') && existsSync('/sys/kernel/security')) {
    // Mount only long enough to read the mode.
    if (!mount('securityfs', '/sys/kernel/security')) {
      lockdown = readLockdown();
      umount('/sys/kernel/security');
    }
  }
  if (lockdown === 'confidentiality') {
    add({ id: 'lockdown', ok: false, severity: 'error', message: 'kernel lockdown is in confidentiality mode: BPF cannot read kernel memory (bpf_probe_read_kernel is blocked)', fix: 'boot with lockdown=integrity (or none); with Secure Boot, disable lockdown via mokutil --disable-validation' });
  } else if (lockdown) {
    add({ id: 'lockdown', ok: true, severity: 'info', message: `kernel lockdown: ${lockdown}` });
  } else {
    add({ id: 'lockdown', ok: true, severity: 'info', message: 'kernel lockdown mode unknown (securityfs not mounted or no lockdown LSM); a "confidentiality" lockdown would make loads fail with EPERM' });
  }

  // memlock: kernels >= 5.11 account BPF memory to the cgroup; older ones need RLIMIT_MEMLOCK.
  if (!(maj > 5 || (maj === 5 && min >= 11))) {
    let limit = 'unknown';
    try {
      limit = /Max locked memory\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? limit;
    } catch {
      // keep unknown
    }
    add({ id: 'memlock', ok: limit === 'unlimited', severity: 'warning', message: `kernel < 5.11 charges BPF maps to RLIMIT_MEMLOCK (${limit} bytes)`, fix: 'ulimit -l unlimited (libbpf raises it when it can)' });
  }

  let undone = false;
  return {
    ok: checks.every((c) => c.ok || c.severity !== 'error'),
    checks,
    tracefs,
    undo() {
      if (undone) return;
      undone = true;
      for (const u of undoList.reverse()) u();
    },
  };
}

/** Like checkEnvironment, but throws {@link EnvError} (all problems with their fixes) when not ok. */
export function assertEnvironment(opts: EnvOptions = {}): EnvReport {
  const r = checkEnvironment(opts);
  if (!r.ok) {
    r.undo();
    throw new EnvError(r);
  }
  return r;
}

/** Problems (errors, then warnings) one per line with their fix. */
export function formatEnvProblems(r: Pick<EnvReport, 'checks'>): string {
  const bad = r.checks.filter((c) => !c.ok && c.severity !== 'info').sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
  return bad.map((c) => `${c.severity}: ${c.message}${c.fix ? `\n  fix: ${c.fix}` : ''}`).join('\n') || 'environment ok';
}

/** Every check, for `retis-capture --check` style output. */
export function formatEnvReport(r: Pick<EnvReport, 'checks'>): string {
  return r.checks.map((c) => `${c.ok ? 'ok  ' : c.severity === 'error' ? 'FAIL' : 'warn'} ${c.id.padEnd(10)} ${c.message}${!c.ok && c.fix ? `\n     fix: ${c.fix}` : ''}`).join('\n');
}
