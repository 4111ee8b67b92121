/**
 * Two hosts in network namespaces joined by a veth pair, for the live capture tests:
 *
 *   netns A (10.250.N.1, veth rtcaN)  <--veth-->  netns B (10.250.N.2, veth rtcbN)
 *
 * IPv6 is off and neighbours are static, so the only packets on the link are the ones a test
 * sends (receptions can be counted exactly against tcpdump). In B an nftables rule drops UDP to
 * NFT_PORT (with a counter); CLOSED_PORT has no listener (NO_SOCKET). Names are unique per test
 * process; `remove()` (idempotent) is called from afterAll and from a process exit hook, so the
 * namespaces go even when a test fails or is interrupted.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export const NFT_PORT = 7777;
export const CLOSED_PORT = 7778;

export interface Topology {
  a: string;
  b: string;
  vethA: string;
  vethB: string;
  addrA: string;
  addrB: string;
  /** Run in a namespace, bounded in time; returns stdout. */
  exec(ns: string, cmd: string, args: string[], timeoutMs?: number): string;
  /** Shell command sending `count` UDP datagrams "rtsNNNNNN" (N = 1..count) from A to B:port. */
  sendScript(port: number, count: number): string;
  /** Packets the nftables drop rule counted. */
  nftDropped(): number;
  remove(): void;
}

const live = new Set<Topology>();
let hooked = false;

export function createTopology(): Topology {
  const id = `${process.pid % 10000}${Math.floor(Math.random() * 90 + 10)}`;
  const net = 1 + (process.pid % 250);
  const a = `rtc-a-${id}`;
  const b = `rtc-b-${id}`;
  const vethA = `rtca${id}`.slice(0, 15);
  const vethB = `rtcb${id}`.slice(0, 15);
  const addrA = `10.250.${net}.1`;
  const addrB = `10.250.${net}.2`;
  let removed = false;
  const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  const t: Topology = {
    a, b, vethA, vethB, addrA, addrB,
    exec(ns, cmd, args, timeoutMs = 20_000) {
      return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
    },
    sendScript(port, count) {
      // bash's /dev/udp: one datagram per redirection, no helper binary; the payload numbers the packet.
      return `ip netns exec ${a} bash -c 'for i in $(seq 1 ${count}); do printf "rts%06d" $i > /dev/udp/${addrB}/${port}; done'`;
    },
    nftDropped() {
      const out = t.exec(b, 'nft', ['list', 'counter', 'inet', 'rts_test', 'dropped']);
      const m = /packets (\d+)/.exec(out);
      if (!m) throw new Error(`cannot read the nft counter: ${out}`);
      return Number(m[1]);
    },
    remove() {
      if (removed) return;
      removed = true;
      live.delete(t);
      spawnSync('ip', ['netns', 'del', a]);
      spawnSync('ip', ['netns', 'del', b]);
    },
  };
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const x of [...live]) x.remove();
    });
  }
  live.add(t);
  try {
    run('ip', ['netns', 'add', a]);
    run('ip', ['netns', 'add', b]);
    run('ip', ['link', 'add', vethA, 'netns', a, 'type', 'veth', 'peer', 'name', vethB, 'netns', b]);
    for (const [ns, dev, addr, peer] of [[a, vethA, addrA, addrB], [b, vethB, addrB, addrA]] as const) {
      t.exec(ns, 'sysctl', ['-q', '-w', `net.ipv6.conf.all.disable_ipv6=1`]);
      t.exec(ns, 'sysctl', ['-q', '-w', `net.ipv6.conf.default.disable_ipv6=1`]);
      t.exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
      t.exec(ns, 'ip', ['addr', 'add', `${addr}/24`, 'dev', dev]);
      t.exec(ns, 'ip', ['link', 'set', dev, 'up']);
      // Static neighbours: no ARP on the link, so every packet there is one a test sent.
      const mac = JSON.parse(t.exec(ns === a ? b : a, 'ip', ['-j', 'link', 'show', ns === a ? vethB : vethA])) as { address: string }[];
      t.exec(ns, 'ip', ['neigh', 'replace', peer, 'lladdr', mac[0]!.address, 'dev', dev, 'nud', 'permanent']);
    }
    execFileSync('ip', ['netns', 'exec', b, 'nft', '-f', '-'], { input: nftRuleset(), encoding: 'utf8', timeout: 10_000 });
  } catch (e) {
    t.remove();
    throw e;
  }
  return t;
}

/** The nftables ruleset of host B (fed through stdin by createTopology). */
export function nftRuleset(): string {
  return `table inet rts_test {
  counter dropped { }
  chain input {
    type filter hook input priority 0; policy accept;
    udp dport ${NFT_PORT} counter name dropped drop
  }
}
`;
}
