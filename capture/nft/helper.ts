/**
 * The helper table of --allow-system-changes: `table inet retis_ts_<pid>` (one per capture, so
 * concurrent captures never remove each other's) with base chains on the
 * prerouting and output hooks, first of all chains, setting `meta nftrace set 1` so that every
 * packet is traced by every later chain (the nf_trace bit stays on the skb). Retis does the same
 * with `inet Retis_Table`; there, the table only has to exist (its kprobe sees untraced packets
 * too), here traces are only emitted for packets carrying nf_trace, so the chains must run.
 *
 * It is ALWAYS removed: at the end of the capture (any stop: --cmd, --duration, SIGINT/SIGTERM,
 * errors), by an exit hook as a last resort, and, after a crash or kill -9, at the next start:
 * before installing anything, a state file written before the first change names the namespaces
 * that got the table; a start that finds it with its owner gone removes those tables and reports
 * it (stderr and capture.json).
 */
import fs from 'node:fs';
import path from 'node:path';
import { listNetns, nftIn, ownNetns, type Netns } from './netns.ts';

export const HELPER_FAMILY = 'inet';
/** Prefix of the helper tables' names: retis_ts_<pid of the capture>. */
export const HELPER_PREFIX = 'retis_ts_';
export const HELPER_TABLE = `${HELPER_PREFIX}${process.pid}`;
export const STATE_DIR = '/run/retis-ts';
/** State file of the capture with this pid. */
export const helperStatePath = (pid: number): string => path.join(STATE_DIR, `nft-helper.${pid}.json`);
const HELPER_STATE = helperStatePath(process.pid);

interface HelperState {
  pid: number;
  started: string;
  table: string;
  netns: { path: string | null; name: string; inum: number }[];
}

/**
 * kprobe path: a chain on no hook, as Retis's Retis_Table: loading the nftrace expression turns
 * the trace static key on, so __nft_trace_packet runs for every packet, and our chain never runs
 * (no events of its own).
 */
const rulesetKprobe = (): string => `table ${HELPER_FAMILY} ${HELPER_TABLE} {
  comment "retis-capture --allow-system-changes: enables nftables tracing for the nft collector; removed when the capture stops"
  chain trace {
    meta nftrace set 1
  }
}
`;

const ruleset = (): string => `table ${HELPER_FAMILY} ${HELPER_TABLE} {
  comment "retis-capture --allow-system-changes: traces packets for the nft collector; removed when the capture stops"
  chain prerouting {
    type filter hook prerouting priority -2147483648; policy accept;
    meta nftrace set 1 accept
  }
  chain output {
    type filter hook output priority -2147483648; policy accept;
    meta nftrace set 1 accept
  }
}
`;

export class NftHelperError extends Error {
  override name = 'NftHelperError';
}

function readStates(): { file: string; s: HelperState }[] {
  let files: string[];
  try {
    files = fs.readdirSync(STATE_DIR).filter((f) => /^nft-helper\.\d+\.json$/.test(f));
  } catch {
    return [];
  }
  const out: { file: string; s: HelperState }[] = [];
  for (const f of files) {
    try {
      out.push({ file: path.join(STATE_DIR, f), s: JSON.parse(fs.readFileSync(path.join(STATE_DIR, f), 'utf8')) as HelperState });
    } catch {
      // Half-written by a capture killed while writing it (rename makes that unlikely): skip.
    }
  }
  return out;
}

function writeState(s: HelperState): void {
  fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const tmp = `${HELPER_STATE}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(s, null, 2), { mode: 0o600 });
  fs.renameSync(tmp, HELPER_STATE);
}

/** Whether `pid` is a live retis-capture (not a recycled pid). */
function captureAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /retis-capture|capture\/entry|capture\/cli/.test(cmd);
  } catch {
    return false;
  }
}

function hasHelper(ns: Pick<Netns, 'path'>, table: string): boolean {
  return nftIn(ns, ['list', 'table', HELPER_FAMILY, table]).status === 0;
}

function deleteHelper(ns: Netns, table: string): string | undefined {
  if (!hasHelper(ns, table)) return undefined;
  const r = nftIn(ns, ['delete', 'table', HELPER_FAMILY, table]);
  if (r.status !== 0) return `${ns.name}: ${r.error?.message ?? r.stderr.trim()} (remove it with: ${ns.path ? `nsenter --net=${ns.path} ` : ''}nft delete table ${HELPER_FAMILY} ${table})`;
  return undefined;
}

/** Where a namespace of the state file is now (null path: ours), or undefined when it is gone. */
function stillThere(n: HelperState['netns'][number]): Netns | undefined {
  if (n.path === null) {
    const own = ownNetns();
    return own.inum === n.inum ? own : undefined;
  }
  try {
    return fs.statSync(n.path).ino === n.inum ? { path: n.path, name: n.name, inum: n.inum } : undefined;
  } catch {
    return undefined;
  }
}

export interface RecoveryReport {
  /** Leftover helper tables removed: "inet retis_ts_<pid> in <namespace>". */
  removed: string[];
  /** Leftovers that could not be removed (with how to do it by hand). */
  failed: string[];
  /** pids of the captures that left them. */
  pids: number[];
}

/**
 * Remove what crashed captures left (see the module comment): the tables named by state files
 * whose capture is gone. Captures still running keep theirs. Returns undefined when there was
 * nothing to do.
 */
export function recoverHelper(): RecoveryReport | undefined {
  const report: RecoveryReport = { removed: [], failed: [], pids: [] };
  for (const { file, s } of readStates()) {
    if (captureAlive(s.pid)) continue;
    const table = s.table.replace(/^\S+\s+/, '');
    if (!table.startsWith(HELPER_PREFIX)) continue;
    report.pids.push(s.pid);
    let failed = false;
    for (const n of s.netns) {
      const ns = stillThere(n);
      if (!ns) continue; // the namespace is gone, and its tables with it
      if (!hasHelper(ns, table)) continue;
      const err = deleteHelper(ns, table);
      if (err) {
        report.failed.push(err);
        failed = true;
      } else report.removed.push(`${HELPER_FAMILY} ${table} in ${ns.name}`);
    }
    if (!failed) fs.rmSync(file, { force: true });
  }
  return report.pids.length > 0 ? report : undefined;
}

/** The installed helper: namespaces that have it, added as namespaces appear. */
export class NftHelper {
  private readonly installed = new Map<number, Netns>();
  private exitHook: (() => void) | undefined;
  private removed = false;

  /** @param hooks netlink path: chains on prerouting/output marking packets; kprobe path: a hookless chain. */
  constructor(private readonly hooks = true) {
    // Last resort (an exception escaping everything, process.exit from elsewhere).
    this.exitHook = () => void this.remove();
    process.on('exit', this.exitHook);
  }

  get namespaces(): Netns[] {
    return [...this.installed.values()];
  }

  /** Install in every namespace of `list` that does not have it yet. Throws NftHelperError. */
  install(list: Netns[] = listNetns()): Netns[] {
    const added: Netns[] = [];
    const todo = list.filter((n) => !this.installed.has(n.inum));
    if (todo.length === 0) return added;
    // The state file names a namespace before it is changed: a crash in between is recovered.
    writeState({ pid: process.pid, started: new Date().toISOString(), table: `${HELPER_FAMILY} ${HELPER_TABLE}`, netns: [...this.namespaces, ...todo].map((n) => ({ path: n.path, name: n.name, inum: n.inum })) });
    for (const ns of todo) {
      const r = nftIn(ns, ['-f', '-'], this.hooks ? ruleset() : rulesetKprobe());
      if (r.status !== 0) {
        if (ns.path === null) throw new NftHelperError(`cannot install the nft helper table ${HELPER_FAMILY} ${HELPER_TABLE}: ${r.error?.message ?? r.stderr.trim()} (is nft installed, are we root?)`);
        continue; // a namespace being deleted: not fatal
      }
      this.installed.set(ns.inum, ns);
      added.push(ns);
    }
    return added;
  }

  /** Remove the table everywhere it was installed; returns what failed (with the manual fix). */
  remove(): string[] {
    if (this.removed) return [];
    this.removed = true;
    if (this.exitHook) process.removeListener('exit', this.exitHook);
    const failed: string[] = [];
    for (const ns of this.installed.values()) {
      const still = stillThere(ns);
      if (!still) continue;
      const err = deleteHelper(still, HELPER_TABLE);
      if (err) failed.push(err);
    }
    if (failed.length === 0) fs.rmSync(HELPER_STATE, { force: true });
    return failed;
  }
}

/**
 * Namespaces with nftables tables other than helper tables: the only ones where tracing can
 * report anything. The helper goes there only, so namespaces without rules (a benchmark's flood,
 * another tool's lab) never pay for trace messages.
 */
export function withUserTables(list: Netns[]): Netns[] {
  return list.filter((ns) => {
    const r = nftIn(ns, ['list', 'tables']);
    return r.status === 0 && r.stdout.split('\n').some((l) => /^table /.test(l) && !l.includes(` ${HELPER_PREFIX}`));
  });
}

/** Whether any namespace has a rule setting nftrace (the user's own tracing rule). */
export function userTraceRules(list: Netns[]): string[] {
  const out: string[] = [];
  for (const ns of list) {
    const r = nftIn(ns, ['list', 'ruleset']);
    if (r.status === 0 && /nftrace set 1/.test(r.stdout)) out.push(ns.name);
  }
  return out;
}
