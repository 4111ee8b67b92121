/**
 * A real Open vSwitch kernel datapath for the VM suite: ovsdb-server and ovs-vswitchd started here
 * with their database and logs under a fresh /tmp directory, one bridge joining two network
 * namespaces through veth pairs. Only for the guest: it loads the openvswitch module and uses the
 * default OVS run directory (/run/openvswitch, a tmpfs in the guest).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNetns, type Netns } from '../../bpf/helpers.ts';

export const OVS_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
export const OVS_RUNDIR = '/run/openvswitch';

/** Why OVS cannot be started here, or undefined. */
export function ovsSkipReason(): string | undefined {
  for (const tool of ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-dpctl', 'ovs-appctl']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} not found (apt-get install --no-install-recommends openvswitch-switch)`;
  }
  if (!existsSync(OVS_SCHEMA)) return `${OVS_SCHEMA} not found (openvswitch-common)`;
  return undefined;
}

function run(cmd: string, args: string[], timeoutMs = 30_000): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

export interface OvsPort {
  /** Host-side veth, an OVS port. */
  dev: string;
  ifindex: number;
  ns: Netns;
  ip: string;
}

export class OvsLab {
  readonly dir: string;
  readonly bridge = 'br-rts';
  readonly ports: OvsPort[] = [];
  #started: string[] = [];

  private constructor() {
    this.dir = mkdtempSync('/tmp/rts-ovs-');
  }

  /**
   * Start everything. Ports are configured in the database BEFORE ovs-vswitchd starts: under TCG,
   * adding ports to a running vswitchd left its per-CPU upcall handlers half set up in 5 of 6
   * trials ("lost:N" in ovs-dpctl show, every upcall dropped, no ping).
   */
  static start(nPorts = 2): OvsLab {
    const lab = new OvsLab();
    try {
      lab.#start(nPorts);
    } catch (e) {
      const logs = lab.logs();
      lab.stop();
      throw new Error(`${(e as Error).message}\n--- OVS logs ---\n${logs}`);
    }
    return lab;
  }

  #start(nPorts: number): void {
    run('modprobe', ['openvswitch']);
    mkdirSync(OVS_RUNDIR, { recursive: true });
    const db = join(this.dir, 'conf.db');
    run('ovsdb-tool', ['create', db, OVS_SCHEMA]);
    run('ovsdb-server', [db, `--remote=punix:${OVS_RUNDIR}/db.sock`, '--pidfile', '--detach', `--log-file=${join(this.dir, 'ovsdb-server.log')}`]);
    this.#started.push('ovsdb-server');
    const vsctl = (...a: string[]): string => run('ovs-vsctl', ['--no-wait', ...a]);
    vsctl('init');
    vsctl('add-br', this.bridge);
    for (let i = 1; i <= nPorts; i++) {
      const ns = createNetns('ovs');
      const dev = `rts-ovs${i}`;
      const ip = `10.199.0.${i}`;
      run('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
      run('ip', ['link', 'set', dev, 'up']);
      ns.exec('ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      ns.exec('ip', ['link', 'set', 'eth0', 'up']);
      vsctl('add-port', this.bridge, dev);
      const ifindex = Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8'));
      this.ports.push({ dev, ifindex, ns, ip });
    }
    run('ovs-vswitchd', ['--pidfile', '--detach', `--log-file=${join(this.dir, 'ovs-vswitchd.log')}`], 60_000);
    this.#started.push('ovs-vswitchd');
    // Ready = every port is in the kernel datapath (vswitchd creates ovs-system and adds them).
    const deadline = Date.now() + 60_000;
    for (;;) {
      const show = spawnSync('ovs-dpctl', ['show'], { encoding: 'utf8' }).stdout ?? '';
      if (this.ports.every((p) => show.includes(`: ${p.dev}`))) break;
      if (Date.now() > deadline) throw new Error(`ports not in the datapath after 60 s; ovs-dpctl show:\n${show}`);
      execFileSync('sleep', ['0.2']);
    }
  }

  /** `count` pings from port a's namespace to port b's address; returns ping's summary line. */
  ping(a: number, b: number, count: number): string {
    const out = this.ports[a]!.ns.exec('ping', ['-c', String(count), '-i', '0.2', '-W', '5', this.ports[b]!.ip], 60_000);
    return out.split('\n').find((l) => l.includes('packets transmitted')) ?? out;
  }

  /** Datapath statistics, e.g. `lookups: hit:3 missed:2 lost:0`. */
  dpStats(): { hit: number; missed: number; lost: number } {
    const show = run('ovs-dpctl', ['show']);
    const m = /lookups: hit:(\d+) missed:(\d+) lost:(\d+)/.exec(show);
    if (!m) throw new Error(`no lookups line in ovs-dpctl show:\n${show}`);
    return { hit: Number(m[1]), missed: Number(m[2]), lost: Number(m[3]) };
  }

  logs(): string {
    return ['ovsdb-server.log', 'ovs-vswitchd.log']
      .map((f) => join(this.dir, f))
      .filter((f) => existsSync(f))
      .map((f) => `${f}:\n${readFileSync(f, 'utf8').split('\n').slice(-30).join('\n')}`)
      .join('\n');
  }

  /** Stop the daemons, remove the namespaces, ports, bridge and datapath. Idempotent. */
  stop(): void {
    for (const d of this.#started.reverse()) spawnSync('ovs-appctl', ['-t', d, 'exit'], { timeout: 20_000 });
    this.#started = [];
    for (const p of this.ports) {
      spawnSync('ip', ['link', 'del', p.dev]);
      p.ns.remove();
    }
    this.ports.length = 0;
    // vswitchd leaves the kernel datapath behind on exit (by design: restarts keep forwarding).
    spawnSync('ovs-dpctl', ['del-dp', 'ovs-system']);
  }
}
