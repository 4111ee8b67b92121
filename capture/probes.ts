/**
 * From probe specs to loaded, attached probes: resolve each `-p` for this kernel (bpf/probe-spec.ts
 * picks tp_btf, raw_tp, a classic tracepoint, kprobe or fentry and says why), find where the skb,
 * device and drop reason are among its arguments (BTF, or the tracefs record format for classic
 * tracepoints), decide its part in skb tracking, then load one instance of capture.bpf.o per probe
 * with those answers as constants.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Btf as BtfClass, type Btf } from '../bpf/btf.ts';
import { BpfError } from '../bpf/errors.ts';
import { kallsymsFunctions, type KernelFeatures } from '../bpf/features.ts';
import { bpfObjectPath, bpfObjectVariants } from '../bpf/native.ts';
import { BpfObject } from '../bpf/object.ts';
import { ProbeSet, type ProbePrograms } from '../bpf/probe-set.ts';
import { parseProbeSpec, resolveProbes, listTracefsEvents, ProbeResolveError, ProbeSpecError, type ResolvedProbe } from '../bpf/probe-spec.ts';
import { collectBits, type CollectorName } from './collectors.ts';
import { captureEvent, CaptureCollect, CaptureTracking } from './progs/capture.layout.ts';
import { NFT_SYMBOL } from './nft/path.ts';
import { verdictMask } from './nft/section.ts';

export interface NftProbeConfig {
  info: number;
  pkt: number;
  chain: number;
  rule: number;
  verdict: number;
  type: number;
  mask: number;
}

/** Where __nft_trace_packet's arguments are on this kernel (see capture/progs/nft.bpf.h). */
export function nftProbeConfig(btf: Btf, verdicts: readonly string[]): NftProbeConfig {
  // nf_tables is often a module: its functions are in the module's split BTF.
  let src: Btf | undefined = btf.hasFunction(NFT_SYMBOL) ? btf : undefined;
  if (!src) {
    try {
      src = BtfClass.module('nf_tables');
    } catch {
      src = undefined;
    }
  }
  const types = src?.functionParams(NFT_SYMBOL)?.map((a) => bare(src.typeName(a.type))) ?? [];
  const at = (t: string): number => types.indexOf(t);
  const cfg = {
    info: at('struct nft_traceinfo *'), pkt: at('struct nft_pktinfo *'), chain: at('struct nft_chain *'),
    rule: at('struct nft_rule_dp *'), verdict: at('struct nft_verdict *'), type: at('enum nft_trace_types'), mask: verdictMask(verdicts),
  };
  if (cfg.info < 0) throw new ProbePlanError(`${NFT_SYMBOL} has no struct nft_traceinfo * argument on this kernel (${types.join(', ') || 'no BTF prototype'}): the nft collector cannot use it`);
  return cfg;
}
import { ovsProbes, ovsRequired, ovsTestUsdtOnly } from './ovs/probes.ts';

export const CAPTURE_PROGRAMS: ProbePrograms = {
  tp_btf: 'capture_tp_btf',
  raw_tp: 'capture_raw_tp',
  tracepoint: 'capture_tracepoint',
  kprobe: 'capture_kprobe',
  kretprobe: 'capture_kretprobe',
  fentry: 'capture_fentry',
  fexit: 'capture_fexit',
  uprobe: 'capture_uprobe',
  uretprobe: 'capture_uretprobe',
  usdt: 'capture_usdt',
};

/** Maps every probe instance shares with the first one. */
export const SHARED_MAPS = [
  'retis_events', 'retis_lost', 'retis_stage', 'tracking_map', 'capture_hits',
  // ovs collector (capture/progs/ovs.bpf.h): per-task context between its probes, queue ids
  'ovs_inflight_upcalls', 'ovs_inflight_enqueue', 'ovs_inflight_exec', 'ovs_upcall_tracking', 'ovs_flow_exec_tracking', 'ovs_batches',
];

/** Where a probe's data is among its arguments (-1: absent). */
export interface ArgIndices {
  skb: number;
  dev: number;
  reason: number;
  stolen: number;
}

export type ProbeRole = 'default' | 'user' | 'collector' | 'tracking';

export interface ProbePlan {
  resolved: ResolvedProbe;
  /** What the user typed (or which collector added it). */
  requested: string;
  role: ProbeRole;
  /** kernel.symbol (`net:netif_receive_skb`, `ip_rcv`) or userspace.symbol (`provider:name`). */
  symbol: string;
  /** kernel.probe_type as Retis writes it, or userspace.probe_type. */
  probeType: string;
  /** Events carry a `userspace` section instead of `kernel`. */
  user: boolean;
  /** userspace.path (the binary). */
  binary: string | undefined;
  args: ArgIndices;
  /** Classic tracepoints: byte offsets in the trace record. */
  recordOffsets: { skb: number; dev: number; reason: number };
  collect: number;
  tracking: number;
  /** Internal tracking helper: emits nothing. */
  silent: boolean;
  /** nft collector's __nft_trace_packet probe: argument positions and verdict mask. */
  nft?: NftProbeConfig | undefined;
  /** OVS hook kind (enum retis_ovs_hook, capture/progs/ovs.layout.ts); 0: not an OVS probe. */
  ovs: number;
}

/**
 * The probe as retis-query names it (its `probe` column, derived from kernel.probe_type and
 * symbol): `tp:net:netif_receive_skb` whatever the attach mechanism, `kprobe:FN`, `usdt:P:N`.
 */
export function queryProbeName(p: Pick<ProbePlan, 'probeType' | 'symbol'>): string {
  return `${p.probeType === 'raw_tracepoint' ? 'tp' : p.probeType}:${p.symbol}`;
}

export class ProbePlanError extends Error {
  override name = 'ProbePlanError';
}

/** Retis's tracking hints per target (core/tracking/skb_tracking.rs). */
function trackingHints(kind: ResolvedProbe['attach']['type'], target: string): number {
  const T = CaptureTracking.values;
  const isTp = kind === 'tp_btf' || kind === 'raw_tp' || kind === 'tracepoint';
  if (isTp) {
    if (target === 'kfree_skb' || target === 'consume_skb') return T.free;
    if (target === 'net_dev_xmit') return T.no_tracking; // may see an skb the driver already freed
    return 0;
  }
  if (kind === 'kretprobe' || kind === 'fexit') return T.no_tracking;
  switch (target) {
    case 'skb_free_head':
      return T.free_head;
    case 'kfree_skb_partial':
      return T.partial_free;
    case 'pskb_expand_head':
      return T.inv_head;
    case 'skb_release_head_state':
    case 'kfree_skbmem':
      return T.no_tracking;
    default:
      return 0;
  }
}

const bare = (t: string): string => t.replace(/^const\s+/, '').replace(/\s+/g, ' ').trim();

/** Arguments of a tracepoint or function, as type names. */
function argTypes(btf: Btf, p: ResolvedProbe): string[] | undefined {
  switch (p.attach.type) {
    case 'tp_btf':
    case 'raw_tp':
      return btf.tracepointArgs(p.target)?.map((a) => bare(a.typeName));
    case 'kprobe':
    case 'fentry':
    case 'fexit':
    case 'kretprobe':
      return btf.functionParams(p.target)?.map((a) => bare(btf.typeName(a.type)));
    default:
      return undefined;
  }
}

/** Offsets of skbaddr/reason in a classic tracepoint's record (tracefs `format` file). */
export function tracepointRecordOffsets(tracefs: string | undefined, group: string, name: string): { skb: number; dev: number; reason: number } {
  const out = { skb: -1, dev: -1, reason: -1 };
  if (!tracefs) return out;
  let text: string;
  try {
    text = fs.readFileSync(path.join(tracefs, 'events', group, name, 'format'), 'utf8');
  } catch {
    return out;
  }
  for (const m of text.matchAll(/field:([^;]*?)\s*(\w+)(\[[^\]]*\])?;\s*offset:(\d+);\s*size:(\d+);/g)) {
    const type = m[1]!.trim();
    const field = m[2]!;
    const off = Number(m[4]);
    const size = Number(m[5]);
    if (out.skb < 0 && size === 8 && (field === 'skbaddr' || field === 'skb') && type.includes('*')) out.skb = off;
    else if (out.reason < 0 && field === 'reason' && type.includes('skb_drop_reason')) out.reason = off;
  }
  return out;
}

/** Tracepoint groups of well-known networking tracepoints, for specs given without one. */
const KNOWN_GROUPS: Record<string, string> = {
  kfree_skb: 'skb', consume_skb: 'skb', skb_copy_datagram_iovec: 'skb',
  netif_receive_skb: 'net', net_dev_start_xmit: 'net', net_dev_xmit: 'net', net_dev_queue: 'net', netif_rx: 'net',
  napi_gro_receive_entry: 'net', napi_gro_frags_entry: 'net', netif_receive_skb_entry: 'net', netif_rx_entry: 'net',
  napi_poll: 'napi', ovs_dp_upcall: 'openvswitch', ovs_do_execute_action: 'openvswitch',
};

function tracepointGroup(p: ResolvedProbe, tracefs: string | undefined): string | undefined {
  if (p.attach.type === 'tracepoint') return p.attach.group;
  const m = /^(?:tp|raw_tp|tp_btf):([^:]+):[^:]+$/.exec(p.name);
  if (m) return m[1];
  if (tracefs) {
    const found = listTracefsEvents(tracefs, '*', p.target);
    if (found.length === 1) return found[0]![0];
  }
  return KNOWN_GROUPS[p.target];
}

/**
 * Normalize Retis's `-p` spellings into ours: `k:FN` / `kr:FN`, `raw_tracepoint:G:N`, a bare
 * `GROUP:NAME` (Retis reads it as a tracepoint), and the `/stack` option suffix.
 */
export function normalizeProbeArg(input: string): { spec: string; stack: boolean } {
  let s = input.trim();
  let stack = false;
  const slash = s.indexOf('/');
  // usdt/uprobe binaries are paths: only a trailing option list after the last ':' counts.
  const lastColon = s.lastIndexOf(':');
  if (slash >= 0 && slash > lastColon) {
    const opts = s.slice(slash + 1).split('/');
    for (const o of opts) {
      if (o === 'stack') stack = true;
      else throw new ProbeSpecError(input, o === '' ? 'empty probe option' : `unknown probe option '${o}' (only 'stack')`);
    }
    s = s.slice(0, slash);
  }
  const colon = s.indexOf(':');
  if (colon > 0) {
    const type = s.slice(0, colon);
    const rest = s.slice(colon + 1);
    if (type === 'k') s = `kprobe:${rest}`;
    else if (type === 'kr') s = `kretprobe:${rest}`;
    else if (type === 'raw_tracepoint') s = `tp:${rest}`;
    else if (!/^(tp|tracepoint|raw_tp|tp_btf|kprobe|kretprobe|fentry|fexit|uprobe|uretprobe|usdt)$/.test(type) && s.split(':').length === 2) s = `tp:${s}`;
  }
  return { spec: s, stack };
}

export interface PlanOptions {
  btf: Btf;
  features: KernelFeatures;
  tracefs: string | undefined;
  collectors: readonly CollectorName[];
  /** `-p` values (Retis forms accepted); empty: the default probes. */
  userProbes: readonly string[];
  defaultProbes: readonly string[];
  /** --skb-sections (meta, dataref, gso, all). */
  skbSections: ReadonlySet<string>;
  /** --stack: stack traces on every probe. */
  stack: boolean;
  snaplen: number;
  /** nft collector on its kprobe path: --nft-verdicts. */
  nft?: { verdicts: readonly string[] } | undefined;
  /** --ovs-track: the ovs collector also follows upcalls through ovs-vswitchd (USDT). */
  ovsTrack?: boolean;
  /** --ovs-track: the ovs-vswitchd binary (default: the running one's). */
  ovsBinary?: string | undefined;
}

export interface ProbeSkip {
  requested: string;
  reason: string;
}

export interface Plan {
  probes: ProbePlan[];
  /** User probes not attached, and optional helpers that cannot work here, with the reason. */
  notes: ProbeSkip[];
}

/** Resolve and describe every probe of the capture. Throws ProbePlanError (user error) with the reason. */
export function planProbes(o: PlanOptions): Plan {
  const has = (c: CollectorName): boolean => o.collectors.includes(c);
  const C = CaptureCollect.values;
  const baseCollect = collectBits(o.collectors, o.skbSections);

  const kallsyms = ((): (() => Set<string>) => {
    let cache: Set<string> | undefined;
    return () => (cache ??= kallsymsFunctions());
  })();
  const ctx = { features: o.features, btf: o.btf, tracefs: o.tracefs, kallsyms };
  const notes: ProbeSkip[] = [];
  const plans = new Map<string, ProbePlan>();

  const add = (input: string, role: ProbeRole, stackOpt: boolean, extra = 0, ovs = 0, helper = false): void => {
    const { spec, stack } = normalizeProbeArg(input);
    let resolved: ResolvedProbe[];
    try {
      resolved = resolveProbes([parseProbeSpec(spec)], ctx);
    } catch (e) {
      if (e instanceof ProbeResolveError || e instanceof ProbeSpecError) throw new ProbePlanError(e.message);
      throw e;
    }
    for (const r of resolved) {
      const existing = plans.get(r.name);
      if (existing) {
        // Asked twice (e.g. -p tp:skb:kfree_skb with skb-drop): one probe, the most visible role.
        if (existing.silent && role !== 'tracking') {
          existing.silent = false;
          existing.role = role;
          existing.tracking &= ~CaptureTracking.values.silent;
        }
        if (stack || stackOpt) existing.collect |= C.stack;
        existing.collect |= extra;
        continue;
      }
      const plan = describe(r, input, role, o, baseCollect | extra | (stack || stackOpt || o.stack ? C.stack : 0), ovs, helper);
      if (typeof plan === 'string') {
        notes.push({ requested: input, reason: plan });
        continue;
      }
      plans.set(r.name, plan);
    }
  };

  if (o.nft) {
    // First, so that a user's -p kprobe:__nft_trace_packet (nft-dropmon) lands on this probe.
    add(NFT_SYMBOL, 'collector', false, C.nft);
    const p = plans.get(`kprobe:${NFT_SYMBOL}`) ?? plans.get(`fentry:${NFT_SYMBOL}`);
    if (p) p.nft = nftProbeConfig(o.btf, o.nft.verdicts);
  }
  const user = o.userProbes.length > 0;
  for (const p of user ? o.userProbes : o.defaultProbes) add(p, user ? 'user' : 'default', false);
  if (has('skb-drop')) add('tp:skb:kfree_skb', 'collector', false);
  if (has('ovs')) {
    // Required probes throw (the collector cannot work without them); optional ones (kprobes,
    // USDT) that cannot be attached here are noted with the reason.
    for (const p of ovsProbes({ track: o.ovsTrack === true, binary: o.ovsBinary })) {
      try {
        add(p.spec, 'collector', false, 0, p.hook, p.helper);
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        if (p.required) throw new ProbePlanError(`the ovs collector needs ${p.spec}: ${why}`);
        notes.push({ requested: p.spec, reason: `ovs collector: ${p.what} not collected: ${why}` });
      }
    }
  }

  if (has('skb-tracking')) {
    // Retis forgets an skb when its head is freed (kprobe skb_free_head). Tracepoints see the last
    // reference go (kfree_skb, consume_skb); kprobes/fentry, when the kernel has them, also see
    // heads freed elsewhere, moved (pskb_expand_head) or stolen (kfree_skb_partial).
    for (const t of ['tp:skb:kfree_skb', 'tp:skb:consume_skb']) {
      try {
        add(t, 'tracking', false);
      } catch (e) {
        notes.push({ requested: t, reason: `skb-tracking helper not available: ${e instanceof Error ? e.message : String(e)}` });
      }
    }
    const missing: string[] = [];
    let why = '';
    for (const fn of ['skb_free_head', 'pskb_expand_head', 'kfree_skb_partial']) {
      try {
        add(fn, 'tracking', false);
      } catch (e) {
        missing.push(fn);
        why ||= e instanceof Error ? e.message.replace(/^cannot probe '[^']*': /, '') : String(e);
      }
    }
    if (missing.length > 0) {
      notes.push({
        requested: `skb-tracking helpers ${missing.join(', ')}`,
        reason: `not attached, so packets are forgotten when skb:kfree_skb/consume_skb see their last reference go (or after 60 s unseen), and a head moved or stolen inside those functions starts a new id (${why.split(';')[0]})`,
      });
    }
  }

  // One line per wildcard for the tracepoints it matched that have nothing to read.
  const unreadable = new Map<string, string[]>();
  const kept: ProbeSkip[] = [];
  for (const n of notes) {
    const m = /^no probe was attached to (\S+): /.exec(n.reason);
    if (m) unreadable.set(n.requested, [...(unreadable.get(n.requested) ?? []), m[1]!]);
    else kept.push(n);
  }
  notes.length = 0;
  for (const [requested, names] of unreadable) {
    notes.push({ requested, reason: `not attached to ${names.join(', ')}: no struct sk_buff * or struct net_device * argument (nothing a collector can read)` });
  }
  notes.push(...kept);

  const probes = [...plans.values()];
  const emitting = probes.filter((p) => !p.silent);
  if (emitting.length === 0) {
    const why = notes.map((n) => `${n.requested}: ${n.reason}`).join('; ');
    throw new ProbePlanError(`no probe to attach${why ? ` (${why})` : ''}`);
  }
  return { probes, notes };
}

function describe(r: ResolvedProbe, requested: string, role: ProbeRole, o: PlanOptions, collect: number, ovs = 0, helper = false): ProbePlan | string {
  const kind = r.attach.type;
  const user = kind === 'uprobe' || kind === 'uretprobe' || kind === 'usdt';
  const args: ArgIndices = { skb: -1, dev: -1, reason: -1, stolen: -1 };
  let recordOffsets = { skb: -1, dev: -1, reason: -1 };
  let symbol: string;
  let probeType: string;
  let binary: string | undefined;

  if (user) {
    const a = r.attach as { binary: string; fn?: string; provider?: string; name?: string };
    binary = a.binary;
    symbol = kind === 'usdt' ? `${a.provider}:${a.name}` : (a.fn ?? r.target);
    probeType = kind;
  } else {
    const types = argTypes(o.btf, r);
    if (types) {
      args.skb = types.indexOf('struct sk_buff *');
      args.dev = types.indexOf('struct net_device *');
      args.reason = types.indexOf('enum skb_drop_reason');
      if (r.target === 'kfree_skb_partial') args.stolen = 1;
    }
    if (kind === 'tracepoint') {
      const g = tracepointGroup(r, o.tracefs) ?? '';
      recordOffsets = tracepointRecordOffsets(o.tracefs, g, r.target);
    }
    const isTp = kind === 'tp_btf' || kind === 'raw_tp' || kind === 'tracepoint';
    if (isTp) {
      const g = tracepointGroup(r, o.tracefs);
      symbol = g ? `${g}:${r.target}` : r.target;
      probeType = 'raw_tracepoint';
    } else {
      symbol = r.target;
      // Retis has kprobes only: fentry/fexit events read as their kprobe equivalents.
      probeType = kind === 'kretprobe' || kind === 'fexit' ? 'kretprobe' : 'kprobe';
    }
    const hasSkb = args.skb >= 0 || recordOffsets.skb >= 0;
    const hasDev = args.dev >= 0;
    // Retis attaches a probe only where a collector can read something (struct sk_buff *,
    // struct net_device *); return probes report the call itself.
    if (!hasSkb && !hasDev && kind !== 'kretprobe' && kind !== 'fexit' && (role === 'user' || role === 'default')) {
      return `no probe was attached to ${symbol}: none of its arguments is a struct sk_buff * or struct net_device * (nothing a collector can read)`;
    }
  }

  if (ovs !== 0) {
    // OVS hooks find their skb themselves (an argument, or what their entry probe remembered).
    if (kind === 'raw_tp' || kind === 'tp_btf' || kind === 'tracepoint') args.skb = 1;
    const tracking = helper ? 0 : trackingHints(kind, r.target);
    return { resolved: r, requested, role, symbol, probeType, user, binary, args, recordOffsets, collect: helper ? 0 : collect, tracking, silent: helper, ovs };
  }
  const silent = role === 'tracking';
  let tracking = user ? 0 : trackingHints(kind, r.target);
  if (silent) {
    // A helper only matters if it changes tracking state.
    if (!(tracking & (CaptureTracking.values.free | CaptureTracking.values.free_head | CaptureTracking.values.inv_head | CaptureTracking.values.partial_free))) {
      return `not a tracking helper`;
    }
    tracking |= CaptureTracking.values.silent;
  }
  return {
    resolved: r, requested, role, symbol, probeType, user, binary, args, recordOffsets,
    collect: silent ? collect & CaptureCollect.values.tracking : collect,
    tracking, silent, ovs: 0,
  };
}

export interface LoadOptions {
  snaplen: number;
  ringbufBytes: number;
  wakeupBytes: number;
  repeat: number;
  /** -f/-m compiled (capture/filters.ts): code for the placeholders, and which filters run. */
  filters?: ProbeFilters | undefined;
  /** --ovs-track (cfg_ovs_track). */
  ovsTrack?: boolean;
  /** BTF-typed programs read packet bytes with plain loads (features.directPacketLoads). */
  directPacketLoads?: boolean;
}

export interface ProbeFilters {
  packet: boolean;
  meta: boolean;
  patches: readonly { magic: number; insns: Uint8Array }[];
}

/**
 * Open and load one instance per probe (bpf/probe-set.ts). Optional tracking helpers that fail to
 * load are dropped with their reason in `notes`; any other failure closes everything and throws.
 */
export async function loadProbes(plan: Plan, o: LoadOptions): Promise<{ set: ProbeSet; plans: Map<number, ProbePlan>; notes: ProbeSkip[] }> {
  const byName = new Map(plan.probes.map((p) => [p.resolved.name, p]));
  const skbKey = plan.probes.some((p) => p.tracking & CaptureTracking.values.inv_head) ? 1 : 0;
  const filters = o.filters && (o.filters.packet || o.filters.meta) ? o.filters : undefined;
  // Patching needs libbpf section handlers registered before the objects are opened.
  if (filters) BpfObject.enablePatching();
  // In parallel: verifying one instance per probe is most of the start time.
  const set = await ProbeSet.loadAsync(
    plan.probes.map((p) => p.resolved),
    {
      object: bpfObjectPath('capture'),
      // capture.variants.ts: the default probes' constants compiled in. RETIS_TS_BPF_VARIANTS=off
      // loads the generic object for every probe (to rule a variant out).
      variants: process.env.RETIS_TS_BPF_VARIANTS === 'off' ? [] : bpfObjectVariants('capture'),
      programs: CAPTURE_PROGRAMS,
      sharedMaps: SHARED_MAPS,
      stageFlush: 'capture_flush',
      ringbufBytes: o.ringbufBytes,
      wakeupBytes: o.wakeupBytes,
      layouts: [captureEvent],
      skipFailed: true,
      constants: (probe) => {
        const p = byName.get(probe.name)!;
        return {
          cfg_skb_arg: p.args.skb,
          cfg_dev_arg: p.args.dev,
          cfg_reason_arg: p.args.reason,
          cfg_stolen_arg: p.args.stolen,
          cfg_skb_off: p.recordOffsets.skb,
          cfg_dev_off: p.recordOffsets.dev,
          cfg_reason_off: p.recordOffsets.reason,
          cfg_collect: p.collect,
          cfg_tracking: p.tracking,
          cfg_snaplen: o.snaplen,
          cfg_skb_key: skbKey,
          cfg_repeat: o.repeat,
          cfg_direct_pkt: o.directPacketLoads ? 1 : 0,
          ...(filters ? { cfg_filter_packet: filters.packet, cfg_filter_meta: filters.meta } : {}),
          cfg_nft_info_arg: p.nft?.info ?? -1,
          cfg_nft_pkt_arg: p.nft?.pkt ?? -1,
          cfg_nft_chain_arg: p.nft?.chain ?? -1,
          cfg_nft_rule_arg: p.nft?.rule ?? -1,
          cfg_nft_verdict_arg: p.nft?.verdict ?? -1,
          cfg_nft_type_arg: p.nft?.type ?? -1,
          cfg_nft_verdicts: p.nft?.mask ?? 0,
          cfg_ovs: p.ovs,
          cfg_ovs_track: o.ovsTrack ? (ovsTestUsdtOnly() ? 2 : 1) : 0,
        };
      },
      beforeLoad: filters
        ? (obj, _probe, program) => {
            for (const p of filters.patches) obj.patchProgram(program, p.magic, p.insns);
          }
        : undefined,
    },
  );
  const notes: ProbeSkip[] = [];
  const fatal: string[] = [];
  for (const s of set.skipped) {
    const p = byName.get(s.probe.name);
    if (p?.role === 'tracking') notes.push({ requested: p.requested, reason: `skb-tracking helper not loaded: ${s.reason}` });
    else if (p && p.ovs !== 0 && !ovsRequired(p.ovs)) notes.push({ requested: p.requested, reason: `ovs collector probe not loaded: ${s.reason}` });
    else fatal.push(s.reason);
  }
  if (fatal.length > 0) {
    set.close();
    throw new BpfError({ op: 'loading probes', kind: set.skipped[0]!.error.kind, hint: fatal.join('\n'), detail: undefined });
  }
  const plans = new Map<number, ProbePlan>();
  for (const lp of set.probes) plans.set(lp.id, byName.get(lp.probe.name)!);
  return { set, plans, notes };
}

/** Attach every loaded probe; a tracking helper that fails is dropped (noted), anything else throws. */
export function attachProbes(set: ProbeSet, plans: Map<number, ProbePlan>): ProbeSkip[] {
  const before = set.skipped.length;
  set.attach();
  const notes: ProbeSkip[] = [];
  const fatal: string[] = [];
  for (const s of set.skipped.slice(before)) {
    const p = [...plans.values()].find((x) => x.resolved.name === s.probe.name);
    if (p?.role === 'tracking') notes.push({ requested: p.requested, reason: `skb-tracking helper not attached: ${s.reason}` });
    else if (p && p.ovs !== 0 && !ovsRequired(p.ovs)) notes.push({ requested: p.requested, reason: `ovs collector probe not attached: ${s.reason}` });
    else fatal.push(s.reason);
  }
  if (fatal.length > 0) {
    set.detach();
    throw new BpfError({ op: 'attaching probes', kind: set.skipped[before]!.error.kind, hint: fatal.join('\n') });
  }
  return notes;
}
