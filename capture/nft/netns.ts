/**
 * Network namespaces the nft collector listens in (trace events are per namespace): ours and the
 * named ones (/run/netns, what `ip netns` manages), told apart by inode. Commands run in one with
 * nsenter(1), bounded in time.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface Netns {
  /** Namespace file to enter, or null for the capture's own namespace. */
  path: string | null;
  /** What to call it in messages: "host" or the `ip netns` name. */
  name: string;
  inum: number;
}

const NETNS_DIR = '/run/netns';

function inode(p: string): number | undefined {
  try {
    return fs.statSync(p).ino;
  } catch {
    return undefined;
  }
}

export function ownNetns(): Netns {
  return { path: null, name: 'host', inum: inode('/proc/self/ns/net') ?? 0 };
}

/** Our namespace and the named ones, each once. */
export function listNetns(): Netns[] {
  const own = ownNetns();
  const out: Netns[] = [own];
  const seen = new Set([own.inum]);
  let names: string[] = [];
  try {
    names = fs.readdirSync(NETNS_DIR).sort();
  } catch {
    // No named namespaces.
  }
  for (const n of names) {
    const p = path.join(NETNS_DIR, n);
    const ino = inode(p);
    // A name whose bind mount is gone has the inode of an ordinary file: nsfs inodes are > 2^28.
    if (ino === undefined || seen.has(ino) || ino < 1 << 28) continue;
    seen.add(ino);
    out.push({ path: p, name: n, inum: ino });
  }
  return out;
}

/** Run `nft ARGS` in a namespace; returns status, stdout, stderr. */
export function nftIn(ns: Pick<Netns, 'path'>, args: string[], input?: string): { status: number | null; stdout: string; stderr: string; error?: Error } {
  const [cmd, argv] = ns.path === null ? ['nft', args] : ['nsenter', [`--net=${ns.path}`, 'nft', ...args]];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 10_000, input, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ...(r.error ? { error: r.error } : {}) };
}
