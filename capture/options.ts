/**
 * retis-capture's command line (contract: shared spec cli.md). Parsing only: no kernel access here,
 * so `--help` and usage errors work anywhere. Usage errors are UsageError (exit 2); everything
 * about the system (privileges, probes, files) is checked later (exit 1).
 */
import { parseArgs } from 'node:util';

export const PROG = 'retis-capture';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CaptureOptions {
  collectors: string[] | undefined;
  probes: string[];
  packetFilter: string | undefined;
  metaFilter: string | undefined;
  profiles: string[];
  outDir: string;
  pcapng: boolean;
  parquet: boolean;
  cmd: string | undefined;
  durationMs: number | undefined;
  maxEvents: number | undefined;
  snaplen: number;
  print: boolean;
  allowSystemChanges: boolean;
  nftVerdicts: string[] | undefined;
  ovsTrack: boolean;
  skbSections: string[];
  stack: boolean;
  overwrite: boolean;
  ringMiB: number;
  batchEvents: number;
  batchMs: number;
  /** Benchmark only: emit each event this many times in BPF (measures the writer, not the stack). */
  benchRepeat: number;
  /**
   * Benchmark only: SIGUSR1 detaches the probes and SIGUSR2 attaches them again, each confirmed on
   * stderr ("probes detached" / "probes attached"): bench/capture measures on and off in windows
   * a fraction of a second apart, under the same load of a shared machine.
   */
  benchToggle: boolean;
  help: boolean;
  version: boolean;
}

export const DEFAULT_SNAPLEN = 255;
export const MAX_SNAPLEN = 4096;
export const SKB_SECTIONS = ['all', 'meta', 'dataref', 'gso'];
/** Accepted for Retis compatibility, without effect (always collected, or other collectors). */
export const SKB_SECTIONS_IGNORED = ['packet', 'vlan', 'eth', 'arp', 'ip', 'tcp', 'udp', 'icmp', 'dev', 'ns'];
export const NFT_VERDICTS = ['all', 'continue', 'break', 'jump', 'goto', 'return', 'drop', 'accept', 'stolen', 'queue', 'repeat'];

export const HELP = `Usage: ${PROG} [OPTIONS]

Trace packets through the kernel with eBPF and write what was seen to a capture
directory (Arrow IPC stream, optionally Parquet and pcap-ng) for retis-query.
Needs root (or CAP_BPF + CAP_PERFMON).

Collection:
  -c, --collectors LIST      comma-separated: skb, skb-drop, skb-tracking, dev, ns,
                             nft, ct, ovs. Default: every collector the running kernel
                             supports ("auto"; ovs when the openvswitch module is loaded)
  -p, --probe PROBE          probe to attach (repeatable): tp:GROUP:NAME,
                             raw_tp:GROUP:NAME, kprobe:FN, kretprobe:FN, fentry:FN,
                             fexit:FN, usdt:BINARY:PROVIDER:NAME, or FN (kprobe, else
                             fentry). Wildcards: tp:skb:*. Suffix /stack for stacks.
                             Default: tp:net:netif_receive_skb tp:net:net_dev_start_xmit
                             plus the collectors' probes (tp:skb:kfree_skb for skb-drop)
  -f, --filter-packet FILTER pcap-filter expression (libpcap syntax, e.g. 'udp port 53'):
                             only packets it matches start being followed; a followed
                             packet stays followed (NAT, encapsulation, drop)
  -m, --filter-meta FILTER   metadata filter over struct sk_buff (kernel BTF), e.g.
                             'sk_buff.mark == 0x100', 'sk_buff.dev.name == "eth0"';
                             same rule as -f (both must match when both are given)
      --profile NAME|FILE    Retis profile: built-in generic, ifdump, dropmon,
                             nft-dropmon, or a YAML file
      --skb-sections LIST    extra skb data: meta, dataref, gso, all (packet bytes and
                             VLAN acceleration are always collected)
      --snaplen BYTES        packet bytes kept per event, from L2 (default ${DEFAULT_SNAPLEN}, max ${MAX_SNAPLEN})
      --stack                kernel stack trace on every event
      --ovs-track            ovs collector: also follow upcalls through the running
                             ovs-vswitchd (USDT probes: OVS built with
                             --enable-usdt-probes): recv_upcall, flow put/exec
      --allow-system-changes mount tracefs when missing (for tp:GROUP:* wildcards and
                             classic tracepoints); with nft, add the table
                             inet retis_ts_<pid> setting 'meta nftrace set 1' (netlink
                             path: in each namespace with nftables rules). Undone at exit;
                             a crashed capture's table is removed by the next start
      --nft-verdicts LIST    nft verdicts to report: all, continue, break, jump, goto,
                             return, drop, accept, stolen, queue, repeat
                             (default drop,accept)

Output:
  -o, --out DIR              capture directory (default ./retis.capture): events.arrow,
                             capture.json, and the files below. Files are mode 0600
      --parquet              also write events.parquet when the capture stops cleanly
      --pcapng               also write packets.pcapng (one interface per probe, event
                             text as packet comment, tracking id as packet id)
      --print                print events as they come, Retis text format
      --overwrite            replace a capture already in DIR

Stopping (the first that happens; SIGINT/SIGTERM also stop cleanly):
      --cmd "COMMAND"        run COMMAND (sh -c) once attached; stop when it exits and
                             exit with its status
      --duration SECONDS     stop after this long
      --max-events N         stop after N events

Tuning:
      --ring-mib N           BPF ring buffer size in MiB (power of two, default 8)
      --batch-events N       events per Arrow record batch (default 16384)
      --batch-ms MS          write a partial batch after this long (default 200)

  -h, --help                 this help
      --version              version

Exit status: 0 ok (or --cmd's status), 1 capture error, 2 usage error.
`;

function positiveInt(name: string, v: string | undefined, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) throw new UsageError(`${name} needs a value`);
  if (!/^\d+$/.test(v)) throw new UsageError(`${name}: '${v}' is not a positive integer`);
  const n = Number(v);
  if (n <= 0 || n > max) throw new UsageError(`${name}: ${v} is out of range (1..${max})`);
  return n;
}

function list(v: string | undefined): string[] {
  return (v ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

export function parseCaptureArgs(argv: readonly string[]): CaptureOptions {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        collectors: { type: 'string', short: 'c' },
        probe: { type: 'string', short: 'p', multiple: true },
        'filter-packet': { type: 'string', short: 'f' },
        'filter-meta': { type: 'string', short: 'm' },
        profile: { type: 'string', multiple: true },
        out: { type: 'string', short: 'o' },
        pcapng: { type: 'boolean' },
        parquet: { type: 'boolean' },
        cmd: { type: 'string' },
        duration: { type: 'string' },
        'max-events': { type: 'string' },
        snaplen: { type: 'string' },
        print: { type: 'boolean' },
        'allow-system-changes': { type: 'boolean' },
        'nft-verdicts': { type: 'string' },
        'ovs-track': { type: 'boolean' },
        'skb-sections': { type: 'string' },
        stack: { type: 'boolean' },
        overwrite: { type: 'boolean' },
        'ring-mib': { type: 'string' },
        'batch-events': { type: 'string' },
        'batch-ms': { type: 'string' },
        'bench-repeat': { type: 'string' },
        'bench-toggle': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
      },
    }));
  } catch (e) {
    // node:util's messages name the option ("Unknown option '--foo'"); keep them, drop the code.
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (probes go after -p, a command after --cmd)`);
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const bool = (k: string): boolean => values[k] === true;

  const collectors = str('collectors') === undefined ? undefined : list(str('collectors'));
  if (collectors !== undefined && collectors.length === 0) throw new UsageError('-c needs at least one collector');

  let durationMs: number | undefined;
  const d = str('duration');
  if (d !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(d) || Number(d) <= 0) throw new UsageError(`--duration: '${d}' is not a positive number of seconds`);
    durationMs = Math.round(Number(d) * 1000);
  }
  const skbSections = list(str('skb-sections'));
  for (const s of skbSections) {
    if (!SKB_SECTIONS.includes(s) && !SKB_SECTIONS_IGNORED.includes(s)) {
      throw new UsageError(`--skb-sections: unknown section '${s}' (one of ${SKB_SECTIONS.join(', ')})`);
    }
  }
  const nft = str('nft-verdicts');
  const nftVerdicts = nft === undefined ? undefined : list(nft);
  for (const v of nftVerdicts ?? []) if (!NFT_VERDICTS.includes(v)) throw new UsageError(`--nft-verdicts: unknown verdict '${v}' (one of ${NFT_VERDICTS.join(', ')})`);
  const ring = str('ring-mib') === undefined ? 8 : positiveInt('--ring-mib', str('ring-mib'), 1024);
  if ((ring & (ring - 1)) !== 0) throw new UsageError(`--ring-mib: ${ring} is not a power of two`);
  const out = str('out');
  if (out === '') throw new UsageError('-o needs a directory');
  const cmd = str('cmd');
  if (cmd !== undefined && cmd.trim() === '') throw new UsageError('--cmd needs a command');

  return {
    collectors,
    probes: (values.probe as string[] | undefined) ?? [],
    packetFilter: str('filter-packet'),
    metaFilter: str('filter-meta'),
    profiles: (values.profile as string[] | undefined) ?? [],
    outDir: out ?? 'retis.capture',
    pcapng: bool('pcapng'),
    parquet: bool('parquet'),
    cmd,
    durationMs,
    maxEvents: str('max-events') === undefined ? undefined : positiveInt('--max-events', str('max-events')),
    snaplen: str('snaplen') === undefined ? DEFAULT_SNAPLEN : positiveInt('--snaplen', str('snaplen'), MAX_SNAPLEN),
    print: bool('print'),
    allowSystemChanges: bool('allow-system-changes'),
    nftVerdicts,
    ovsTrack: bool('ovs-track'),
    skbSections,
    stack: bool('stack'),
    overwrite: bool('overwrite'),
    ringMiB: ring,
    batchEvents: str('batch-events') === undefined ? 16384 : positiveInt('--batch-events', str('batch-events'), 1 << 20),
    batchMs: str('batch-ms') === undefined ? 200 : positiveInt('--batch-ms', str('batch-ms'), 60_000),
    benchRepeat: str('bench-repeat') === undefined ? 1 : positiveInt('--bench-repeat', str('bench-repeat'), 64),
    benchToggle: bool('bench-toggle'),
    help: bool('help'),
    version: bool('version'),
  };
}
