/**
 * Table and chain handles for nft events from netlink traces, which carry names only (the
 * kprobe path reads handles from the kernel objects). Read from `nft -j list ruleset` in the
 * trace's namespace, cached, and read again (at most once a second per namespace) when a name is
 * unknown: the ruleset may change during the capture.
 */
import type { Netns } from './netns.ts';
import { nftIn } from './netns.ts';

/** NFPROTO_* (nfgenmsg family) to nft's family names. */
export const FAMILIES: Record<number, string> = { 1: 'inet', 2: 'ip', 3: 'arp', 5: 'netdev', 7: 'bridge', 10: 'ip6' };

interface Handles {
  tables: Map<string, bigint>;
  chains: Map<string, bigint>;
  read: number;
}

type RulesetJson = { nftables?: Record<string, { family?: string; table?: string; name?: string; handle?: number }>[] };

export class RulesetHandles {
  private readonly byNs = new Map<number, Handles>();
  /** Reading failures, kept for capture.json. */
  readonly errors: string[] = [];

  private load(ns: Netns): Handles {
    const h: Handles = { tables: new Map(), chains: new Map(), read: Date.now() };
    const r = nftIn(ns, ['-j', 'list', 'ruleset']);
    if (r.status !== 0) {
      if (this.errors.length < 10) this.errors.push(`nft -j list ruleset in ${ns.name}: ${r.error?.message ?? r.stderr.trim()}`);
      return h;
    }
    let j: RulesetJson;
    try {
      j = JSON.parse(r.stdout) as RulesetJson;
    } catch (e) {
      if (this.errors.length < 10) this.errors.push(`nft -j list ruleset in ${ns.name}: ${(e as Error).message}`);
      return h;
    }
    for (const o of j.nftables ?? []) {
      if (o.table?.handle !== undefined) h.tables.set(`${o.table.family}:${o.table.name}`, BigInt(o.table.handle));
      else if (o.chain?.handle !== undefined) h.chains.set(`${o.chain.family}:${o.chain.table}:${o.chain.name}`, BigInt(o.chain.handle));
    }
    return h;
  }

  /** Handles of a table and chain; -1 when they cannot be found (removed meanwhile). */
  lookup(ns: Netns, family: number, table: string, chain: string): { table: bigint; chain: bigint } {
    const fam = FAMILIES[family] ?? String(family);
    const tk = `${fam}:${table}`;
    const ck = `${fam}:${table}:${chain}`;
    let h = this.byNs.get(ns.inum);
    if (!h || ((!h.tables.has(tk) || !h.chains.has(ck)) && Date.now() - h.read > 1000)) {
      h = this.load(ns);
      this.byNs.set(ns.inum, h);
    }
    return { table: h.tables.get(tk) ?? -1n, chain: h.chains.get(ck) ?? -1n };
  }
}
