/**
 * Probe specifications as users type them (`-p` of retis-capture), and their resolution into
 * concrete attachments for the running kernel.
 *
 *   tp:GROUP:NAME            tracepoint; attached as tp_btf (typed args) when the kernel allows,
 *                            else raw_tp, else a classic perf tracepoint. Wildcards: tp:skb:*
 *   tracepoint:GROUP:NAME    force a classic (perf event) tracepoint
 *   raw_tp:[GROUP:]NAME      force a raw tracepoint
 *   tp_btf:[GROUP:]NAME      force a BTF tracepoint
 *   kprobe:FN  kretprobe:FN  fentry:FN  fexit:FN
 *   uprobe:BINARY:FN  uretprobe:BINARY:FN
 *   usdt:BINARY:PROVIDER:NAME
 *   FN                       a kernel function: kprobe, falling back to fentry without kprobes
 *
 * Parsing is pure (works anywhere); resolution reads the kernel (BTF, tracefs, kallsyms) and the
 * probed features, and explains each choice and each refusal.
 */
import { accessSync, constants as fsConstants, existsSync, readdirSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Btf } from './btf.ts';
import type { KernelFeatures } from './features.ts';
import type { AttachTarget } from './object.ts';

//// SPEC ////

export type ProbeSpec =
  | { kind: 'tp'; group: string; name: string }
  | { kind: 'tracepoint'; group: string; name: string }
  | { kind: 'raw_tp' | 'tp_btf'; group: string | undefined; name: string }
  | { kind: 'kprobe' | 'kretprobe' | 'fentry' | 'fexit'; fn: string }
  | { kind: 'uprobe' | 'uretprobe'; binary: string; fn: string }
  | { kind: 'usdt'; binary: string; provider: string; name: string }
  | { kind: 'function'; fn: string };

export type ProbeKind = ProbeSpec['kind'];

export class ProbeSpecError extends Error {
  override name = 'ProbeSpecError';
  constructor(readonly input: string, message: string) {
    super(`invalid probe '${input}': ${message}`);
  }
}

/** Identifier with optional glob characters (`*`, `?`). */
const NAME = /^[A-Za-z0-9_.*?-]+$/;
const KINDS = ['tp', 'tracepoint', 'raw_tp', 'tp_btf', 'kprobe', 'kretprobe', 'fentry', 'fexit', 'uprobe', 'uretprobe', 'usdt'] as const;

function need(input: string, what: string, v: string | undefined): string {
  if (!v) throw new ProbeSpecError(input, `missing ${what}`);
  if (!NAME.test(v)) throw new ProbeSpecError(input, `${what} '${v}' has characters other than letters, digits, _ . - * ?`);
  return v;
}

/** Parse one probe specification. Throws {@link ProbeSpecError} saying what is wrong. */
export function parseProbeSpec(input: string): ProbeSpec {
  const s = input.trim();
  if (!s) throw new ProbeSpecError(input, 'empty');
  const colon = s.indexOf(':');
  if (colon < 0) return { kind: 'function', fn: need(input, 'function name', s) };
  const kind = s.slice(0, colon);
  const rest = s.slice(colon + 1);
  const parts = rest.split(':');
  switch (kind) {
    case 'tp':
    case 'tracepoint': {
      if (parts.length !== 2) throw new ProbeSpecError(input, `expected ${kind}:GROUP:NAME (e.g. ${kind}:skb:kfree_skb)`);
      return { kind, group: need(input, 'tracepoint group', parts[0]), name: need(input, 'tracepoint name', parts[1]) };
    }
    case 'raw_tp':
    case 'tp_btf': {
      if (parts.length === 1) return { kind, group: undefined, name: need(input, 'tracepoint name', parts[0]) };
      if (parts.length !== 2) throw new ProbeSpecError(input, `expected ${kind}:[GROUP:]NAME`);
      return { kind, group: need(input, 'tracepoint group', parts[0]), name: need(input, 'tracepoint name', parts[1]) };
    }
    case 'kprobe':
    case 'kretprobe':
    case 'fentry':
    case 'fexit': {
      if (parts.length !== 1) throw new ProbeSpecError(input, `expected ${kind}:FUNCTION`);
      return { kind, fn: need(input, 'function name', parts[0]) };
    }
    case 'uprobe':
    case 'uretprobe': {
      // The binary may itself contain ':' (rare): the function is the last component.
      if (parts.length < 2) throw new ProbeSpecError(input, `expected ${kind}:BINARY:FUNCTION`);
      const fn = parts.pop()!;
      const binary = parts.join(':');
      if (!binary) throw new ProbeSpecError(input, 'missing binary');
      return { kind, binary, fn: need(input, 'function name', fn) };
    }
    case 'usdt': {
      if (parts.length < 3) throw new ProbeSpecError(input, 'expected usdt:BINARY:PROVIDER:NAME');
      const name = parts.pop()!;
      const provider = parts.pop()!;
      const binary = parts.join(':');
      if (!binary) throw new ProbeSpecError(input, 'missing binary');
      return { kind, binary, provider: need(input, 'USDT provider', provider), name: need(input, 'USDT name', name) };
    }
    default:
      throw new ProbeSpecError(input, `unknown probe type '${kind}' (expected one of ${KINDS.join(', ')}, or a bare function name)`);
  }
}

/** Canonical text of a spec (what is stored in captures as the probe name). */
export function formatProbeSpec(p: ProbeSpec): string {
  switch (p.kind) {
    case 'tp': case 'tracepoint': return `${p.kind}:${p.group}:${p.name}`;
    case 'raw_tp': case 'tp_btf': return p.group ? `${p.kind}:${p.group}:${p.name}` : `${p.kind}:${p.name}`;
    case 'kprobe': case 'kretprobe': case 'fentry': case 'fexit': return `${p.kind}:${p.fn}`;
    case 'uprobe': case 'uretprobe': return `${p.kind}:${p.binary}:${p.fn}`;
    case 'usdt': return `usdt:${p.binary}:${p.provider}:${p.name}`;
    case 'function': return p.fn;
  }
}

//// RESOLUTION ////

/** Attach mechanisms as resolved (AttachTarget types). */
export type AttachType = AttachTarget['type'];

export interface ResolvedProbe {
  /** Canonical, user-facing probe name (`tp:skb:kfree_skb`, `kprobe:ip_rcv`). */
  name: string;
  /** What the user typed (a wildcard expands into several resolved probes). */
  requested: string;
  /** How it is attached. */
  attach: AttachTarget;
  /**
   * BTF attach target to set before load (tp_btf: tracepoint name; fentry/fexit: function),
   * undefined for the others.
   */
  btfTarget: string | undefined;
  /** Kernel tracepoint/function name, or binary:function for user probes. */
  target: string;
  /** Why this attach type was chosen (e.g. "tp_btf: typed arguments"). */
  why: string;
}

export interface ResolveContext {
  features: KernelFeatures;
  btf: Btf;
  /** tracefs mount (env.ts findTracefs), for classic tracepoints, groups and wildcards. */
  tracefs: string | undefined;
  /** Kernel text symbols for kprobes (features.ts kallsymsFunctions), loaded lazily. */
  kallsyms?: () => Set<string>;
  /** Refuse wildcards expanding to more than this many probes (default 512). */
  maxExpansion?: number;
}

export class ProbeResolveError extends Error {
  override name = 'ProbeResolveError';
  constructor(readonly input: string, message: string) {
    super(`cannot probe '${input}': ${message}`);
  }
}

const isGlob = (s: string): boolean => /[*?]/.test(s);

/** Glob (`*`, `?`) to an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`);
}

/** Tracepoints under tracefs as [group, name] (matching the globs). */
export function listTracefsEvents(tracefs: string, group = '*', name = '*'): [string, string][] {
  const g = globToRegExp(group);
  const n = globToRegExp(name);
  const out: [string, string][] = [];
  let groups: string[];
  try {
    groups = readdirSync(join(tracefs, 'events'));
  } catch {
    return out;
  }
  for (const grp of groups.sort()) {
    if (!g.test(grp)) continue;
    let names: string[];
    try {
      names = readdirSync(join(tracefs, 'events', grp));
    } catch {
      continue; // a file such as "enable", or unreadable
    }
    for (const nm of names.sort()) {
      if (n.test(nm) && existsSync(join(tracefs, 'events', grp, nm, 'id'))) out.push([grp, nm]);
    }
  }
  return out;
}

/** Find a binary like the shell does when it has no '/'. */
export function resolveBinary(bin: string): string | undefined {
  const ok = (p: string): boolean => {
    try {
      accessSync(p, fsConstants.R_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (bin.includes('/') || isAbsolute(bin)) return ok(bin) ? bin : undefined;
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (d && ok(join(d, bin))) return join(d, bin);
  }
  return undefined;
}

/** Pick the attach mechanism of one tracepoint (already expanded, no globs). */
function resolveTracepoint(input: string, kind: 'tp' | 'tracepoint' | 'raw_tp' | 'tp_btf', group: string | undefined, name: string, ctx: ResolveContext): ResolvedProbe {
  const { features: f, btf } = ctx;
  const inBtf = btf.hasTracepoint(name);
  const inTracefs = ctx.tracefs && group ? existsSync(join(ctx.tracefs, 'events', group, name, 'id')) : undefined;
  const display = group ? `tp:${group}:${name}` : `tp:${name}`;
  if (inTracefs === false) {
    // Right name in another group is a common slip (tp:net:kfree_skb): say where it lives.
    const elsewhere = listTracefsEvents(ctx.tracefs!, '*', name).map(([g, n]) => `${g}:${n}`);
    throw new ProbeResolveError(input, `no tracepoint ${group}:${name} on this kernel${elsewhere.length ? ` (did you mean ${elsewhere.join(', ')}?)` : inBtf ? '' : ' (not in tracefs, not in BTF)'}`);
  }
  // An explicit raw_tp needs only the name (module tracepoints, e.g. openvswitch's, are not in
  // vmlinux BTF): without tracefs to check it, attaching says whether it exists.
  if (!inBtf && inTracefs === undefined && kind !== 'tracepoint' && kind !== 'raw_tp') {
    throw new ProbeResolveError(input, `no tracepoint ${name} in this kernel's BTF${ctx.tracefs ? '' : ' (tracefs not mounted, so classic tracepoints cannot be checked)'}`);
  }
  const base = { requested: input, target: name };
  if (kind === 'tp_btf' || (kind === 'tp' && inBtf && f.tpBtf.supported)) {
    if (!inBtf) throw new ProbeResolveError(input, `tracepoint ${name} has no BTF type (btf_trace_${name}): use tracepoint:${group ?? 'GROUP'}:${name}`);
    if (!f.tpBtf.supported) throw new ProbeResolveError(input, `tp_btf unsupported: ${f.tpBtf.reason}`);
    return { ...base, name: kind === 'tp' ? display : formatProbeSpec({ kind, group, name }), attach: { type: 'tp_btf' }, btfTarget: name, why: 'tp_btf: typed arguments from BTF' };
  }
  if (kind === 'raw_tp' || (kind === 'tp' && inBtf && f.rawTracepoint.supported)) {
    if (!f.rawTracepoint.supported) throw new ProbeResolveError(input, `raw_tp unsupported: ${f.rawTracepoint.reason}`);
    return {
      ...base, name: kind === 'tp' ? display : formatProbeSpec({ kind, group, name }), attach: { type: 'raw_tp', name }, btfTarget: undefined,
      why: kind === 'raw_tp' ? 'raw_tp: requested' : `raw_tp: tp_btf unavailable (${f.tpBtf.reason})`,
    };
  }
  // Classic perf tracepoint: needs the group and tracefs (libbpf reads the event id there).
  if (!group) throw new ProbeResolveError(input, 'a classic tracepoint needs its group: tracepoint:GROUP:NAME');
  if (!f.tracepoint.supported) throw new ProbeResolveError(input, `tracepoints unsupported: ${f.tracepoint.reason}`);
  if (!ctx.tracefs) throw new ProbeResolveError(input, 'tracefs is not mounted (needed for classic tracepoints): mount -t tracefs tracefs /sys/kernel/tracing, or --allow-system-changes');
  if (!inTracefs) throw new ProbeResolveError(input, `no tracepoint ${group}:${name} in ${ctx.tracefs}/events`);
  return {
    ...base, name: kind === 'tp' ? display : `tracepoint:${group}:${name}`, attach: { type: 'tracepoint', group, name }, btfTarget: undefined,
    why: kind === 'tracepoint' ? 'tracepoint: requested' : 'tracepoint: no BTF for it (tp_btf/raw_tp impossible)',
  };
}

function expandTracepoints(input: string, group: string | undefined, name: string, ctx: ResolveContext): [string | undefined, string][] {
  if (!isGlob(name) && !(group && isGlob(group))) return [[group, name]];
  if (ctx.tracefs) {
    const found = listTracefsEvents(ctx.tracefs, group ?? '*', name);
    if (found.length === 0) throw new ProbeResolveError(input, `no tracepoint matches ${group ?? '*'}:${name} in ${ctx.tracefs}/events`);
    return found;
  }
  if (group) {
    throw new ProbeResolveError(input, `wildcards over a tracepoint group need tracefs to know the group's members: mount -t tracefs tracefs /sys/kernel/tracing, or --allow-system-changes`);
  }
  const re = globToRegExp(name);
  const found = ctx.btf.tracepointNames().filter((n) => re.test(n)).sort();
  if (found.length === 0) throw new ProbeResolveError(input, `no tracepoint in BTF matches ${name}`);
  return found.map((n) => [undefined, n]);
}

function expandFunctions(input: string, fn: string, universe: () => Iterable<string>): string[] {
  if (!isGlob(fn)) return [fn];
  const re = globToRegExp(fn);
  const out = [...new Set([...universe()].filter((n) => re.test(n)))].sort();
  if (out.length === 0) throw new ProbeResolveError(input, `no function matches ${fn}`);
  return out;
}

function btfFunctions(btf: Btf): () => Iterable<string> {
  return () => {
    const names: string[] = [];
    for (let id = 1; id < btf.typeCount; id++) {
      const t = btf.type(id);
      if (t.kind === 'func') names.push(t.name);
    }
    return names;
  };
}

function resolveFunction(input: string, kind: 'kprobe' | 'kretprobe' | 'fentry' | 'fexit' | 'function', fn: string, ctx: ResolveContext): ResolvedProbe {
  const { features: f, btf } = ctx;
  const base = { requested: input, target: fn };
  const tryKprobe = (k: 'kprobe' | 'kretprobe'): ResolvedProbe | string => {
    const feat = k === 'kprobe' ? f.kprobe : f.kretprobe;
    if (!feat.supported) return `${k} unavailable: ${feat.reason}`;
    const syms = ctx.kallsyms?.();
    if (syms && syms.size > 0 && !syms.has(fn)) return `${fn} is not a kernel function in /proc/kallsyms (inlined, renamed or module not loaded)`;
    return { ...base, name: `${k}:${fn}`, attach: { type: k, fn }, btfTarget: undefined, why: kind === 'function' ? 'kprobe: kernel supports kprobes' : `${k}: requested` };
  };
  const tryFentry = (k: 'fentry' | 'fexit'): ResolvedProbe | string => {
    const feat = k === 'fentry' ? f.fentry : f.fexit;
    if (!feat.supported) return `${k} unavailable: ${feat.reason}`;
    if (!btf.hasFunction(fn)) return `${fn} has no BTF (not a traceable kernel function)`;
    return { ...base, name: `${k}:${fn}`, attach: { type: k }, btfTarget: fn, why: kind === 'function' ? 'fentry: no kprobes on this kernel' : `${k}: requested` };
  };
  if (kind === 'kprobe' || kind === 'kretprobe') {
    const r = tryKprobe(kind);
    if (typeof r === 'string') throw new ProbeResolveError(input, r);
    return r;
  }
  if (kind === 'fentry' || kind === 'fexit') {
    const r = tryFentry(kind);
    if (typeof r === 'string') throw new ProbeResolveError(input, r);
    return r;
  }
  const k = tryKprobe('kprobe');
  if (typeof k !== 'string') return k;
  const e = tryFentry('fentry');
  if (typeof e !== 'string') return e;
  const tp = btf.hasTracepoint(fn) ? ` (there is a tracepoint of that name: tp:GROUP:${fn})` : '';
  throw new ProbeResolveError(input, `${k}; ${e}${tp}`);
}

/**
 * Resolve specs into concrete probes for this kernel. Wildcards expand; duplicates (same name) are
 * dropped. Throws {@link ProbeResolveError} / {@link ProbeSpecError} on the first bad spec.
 */
export function resolveProbes(specs: readonly (string | ProbeSpec)[], ctx: ResolveContext): ResolvedProbe[] {
  const out = new Map<string, ResolvedProbe>();
  const max = ctx.maxExpansion ?? 512;
  for (const s of specs) {
    const spec = typeof s === 'string' ? parseProbeSpec(s) : s;
    const input = typeof s === 'string' ? s : formatProbeSpec(s);
    const resolved: ResolvedProbe[] = [];
    switch (spec.kind) {
      case 'tp': case 'tracepoint': case 'raw_tp': case 'tp_btf': {
        const list = expandTracepoints(input, spec.group, spec.name, ctx);
        if (list.length > max) throw new ProbeResolveError(input, `expands to ${list.length} tracepoints (limit ${max}): narrow the pattern`);
        for (const [g, n] of list) resolved.push(resolveTracepoint(input, spec.kind, g, n, ctx));
        break;
      }
      case 'kprobe': case 'kretprobe': case 'fentry': case 'fexit': case 'function': {
        const universe = spec.kind === 'fentry' || spec.kind === 'fexit' ? btfFunctions(ctx.btf) : () => ctx.kallsyms?.() ?? btfFunctions(ctx.btf)();
        const list = expandFunctions(input, spec.fn, universe);
        if (list.length > max) throw new ProbeResolveError(input, `expands to ${list.length} functions (limit ${max}): narrow the pattern`);
        for (const fn of list) resolved.push(resolveFunction(input, spec.kind, fn, ctx));
        break;
      }
      case 'uprobe': case 'uretprobe': {
        const feat = spec.kind === 'uprobe' ? ctx.features.uprobe : ctx.features.uretprobe;
        if (!feat.supported) throw new ProbeResolveError(input, `${spec.kind} unavailable: ${feat.reason}`);
        const bin = resolveBinary(spec.binary);
        if (!bin) throw new ProbeResolveError(input, `binary '${spec.binary}' not found or not readable`);
        if (isGlob(spec.fn)) throw new ProbeResolveError(input, 'wildcards are not supported for uprobes');
        resolved.push({ name: `${spec.kind}:${bin}:${spec.fn}`, requested: input, attach: { type: spec.kind, binary: bin, fn: spec.fn }, btfTarget: undefined, target: `${bin}:${spec.fn}`, why: `${spec.kind}: requested` });
        break;
      }
      case 'usdt': {
        if (!ctx.features.usdt.supported) throw new ProbeResolveError(input, `usdt unavailable: ${ctx.features.usdt.reason}`);
        const bin = resolveBinary(spec.binary);
        if (!bin) throw new ProbeResolveError(input, `binary '${spec.binary}' not found or not readable`);
        if (isGlob(spec.provider) || isGlob(spec.name)) throw new ProbeResolveError(input, 'wildcards are not supported for USDT probes');
        resolved.push({
          name: `usdt:${bin}:${spec.provider}:${spec.name}`, requested: input,
          attach: { type: 'usdt', binary: bin, provider: spec.provider, name: spec.name }, btfTarget: undefined,
          target: `${bin}:${spec.provider}:${spec.name}`, why: 'usdt: requested',
        });
        break;
      }
    }
    for (const r of resolved) if (!out.has(r.name)) out.set(r.name, r);
  }
  return [...out.values()];
}
