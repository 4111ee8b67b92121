/**
 * Shared helpers of the live BPF tests: skip reasons that are always printed, private network
 * namespaces that are always removed, small C programs compiled on demand.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'vitest';
import { BUILD_DIR, nativeStatus, ROOT_DIR } from '../../bpf/native.ts';

export const isRoot = process.getuid?.() === 0;

/** Why live tests cannot run here at all, or undefined. */
export function liveSkipReason(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (!isRoot) return 'not root (live BPF tests need root: sudo npm test)';
  const ns = nativeStatus();
  if (!ns.available) return ns.message;
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'kernel has no BTF (/sys/kernel/btf/vmlinux)';
  return undefined;
}

/**
 * `it`, or a skipped `it` whose title carries the reason, with the reason printed to the console:
 * a skip is never silent.
 */
export function liveIt(name: string, reason: string | undefined, fn: () => Promise<void> | void, timeout?: number): void {
  if (reason) {
    console.log(`SKIP ${name}: ${reason}`);
    it.skip(`${name} [skipped: ${reason}]`, () => {});
  } else {
    it(name, fn, timeout);
  }
}

//// network namespaces ////

let nsCounter = 0;

export interface Netns {
  name: string;
  /** Inode of the namespace (what BPF reads as net->ns.inum). */
  inode: number;
  /** Run a command inside the namespace (bounded by a timeout); returns stdout. */
  exec(cmd: string, args: string[], timeoutMs?: number): string;
  /** UDP datagrams to a closed port on the namespace's loopback: one kfree_skb(NO_SOCKET) each. */
  udpToClosedPort(count: number): void;
  /** ICMP echo on the namespace's loopback. */
  ping(count: number): void;
  remove(): void;
}

/** Create a fresh namespace with loopback up. Remove it with `remove()` (idempotent). */
export function createNetns(tag = 't'): Netns {
  const name = `rts-${tag}-${process.pid}-${++nsCounter}`;
  execFileSync('ip', ['netns', 'add', name]);
  let removed = false;
  const ns: Netns = {
    name,
    inode: 0,
    exec(cmd, args, timeoutMs = 10_000) {
      return execFileSync('ip', ['netns', 'exec', name, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
    },
    udpToClosedPort(count) {
      // bash's /dev/udp: no extra tool needed; port 9 (discard) has no listener in a new netns.
      ns.exec('bash', ['-c', `for i in $(seq ${count}); do echo x > /dev/udp/127.0.0.1/9; done`]);
    },
    ping(count) {
      ns.exec('ping', ['-c', String(count), '-i', '0.05', '-W', '1', '-q', '127.0.0.1']);
    },
    remove() {
      if (removed) return;
      removed = true;
      spawnSync('ip', ['netns', 'del', name]);
    },
  };
  try {
    ns.exec('ip', ['link', 'set', 'lo', 'up']);
    ns.inode = statSync(`/run/netns/${name}`).ino;
  } catch (e) {
    ns.remove();
    throw e;
  }
  return ns;
}

//// C helpers ////

/** Compile a C file into build/test/ (cached by mtime). Returns the path, or a skip reason. */
export function compileC(src: string, name: string, extra: string[] = []): { path: string } | { skip: string } {
  const out = join(BUILD_DIR, 'test', name);
  mkdirSync(join(BUILD_DIR, 'test'), { recursive: true });
  if (existsSync(out) && statSync(out).mtimeMs > statSync(src).mtimeMs) return { path: out };
  const r = spawnSync('cc', ['-O1', '-g', '-Wall', '-o', out, src, ...extra], { encoding: 'utf8' });
  if (r.error) return { skip: `no C compiler (cc): ${r.error.message}` };
  if (r.status !== 0) return { skip: `cannot compile ${src}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  return { path: out };
}

/** The USDT provider (sys/sdt.h from systemtap-sdt-dev), or why it cannot be built. */
export function usdtProvider(): { path: string } | { skip: string } {
  const r = compileC(join(ROOT_DIR, 'tests', 'bpf', 'fixtures', 'usdt-provider.c'), 'usdt-provider');
  if ('skip' in r && r.skip.includes('sdt.h')) return { skip: `sys/sdt.h missing (apt-get install systemtap-sdt-dev): ${r.skip}` };
  return r;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Program of selftest.bpf.c implementing each attach type. */
export const SELFTEST_PROGRAMS = {
  tracepoint: 'selftest_tracepoint',
  raw_tp: 'selftest_raw_tp',
  tp_btf: 'selftest_tp_btf',
  kprobe: 'selftest_kprobe',
  kretprobe: 'selftest_kretprobe',
  fentry: 'selftest_fentry',
  fexit: 'selftest_fexit',
  uprobe: 'selftest_uprobe',
  uretprobe: 'selftest_uretprobe',
  usdt: 'selftest_usdt',
} as const;
