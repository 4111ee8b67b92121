/**
 * Retis profiles (`--profile NAME|FILE`): named sets of collect arguments, API version 1.0.
 *
 *   version: 1.0
 *   name: dropmon
 *   collect:
 *     - when: [{ type: version, version: ">=5.17" }, { type: symbol, name: kfree_skb }]  # optional
 *       args: { collectors: skb-drop,skb,dev,ns, probe: tp:skb:kfree_skb/stack }
 *
 * The first `collect` entry whose conditions all hold is applied: each arg becomes
 * `--key value` (`_` -> `-`, a list repeats the flag, null is a bare flag), appended after the
 * user's own arguments, as Retis does. A readable file path is loaded directly; a name is looked
 * up in $HOME/.config/retis/profiles, /usr/share/retis/profiles, /etc/retis/profiles (*.yaml,
 * *.yml, several documents per file), then among the built-ins (Retis's generic, ifdump,
 * dropmon, nft-dropmon).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Btf } from '../bpf/btf.ts';
import { kallsymsFunctions, probeFeatures } from '../bpf/features.ts';
import { type CaptureOptions, parseCaptureArgs } from './options.ts';

export class ProfileError extends Error {
  override name = 'ProfileError';
}

type Yaml = string | null | Yaml[] | { [k: string]: Yaml };

//// A small YAML reader: the subset profiles use ////

interface Line {
  indent: number;
  text: string;
  no: number;
}

function scalar(s: string): Yaml {
  const t = s.trim();
  if (t === '' || t === '~' || t === 'null') return null;
  if ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'"))) {
    return t.startsWith('"') ? (JSON.parse(t) as string) : t.slice(1, -1).replaceAll("''", "'");
  }
  if (t.startsWith('[') && t.endsWith(']')) {
    return t.slice(1, -1).split(',').map((x) => x.trim()).filter(Boolean).map((x) => scalar(x));
  }
  return t;
}

/** The first index of `s` outside quotes where `at` holds, or -1. */
function findUnquoted(s: string, at: (i: number) => boolean): number {
  let q: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === q) q = null;
    } else if (c === '"' || c === "'") q = c;
    else if (at(i)) return i;
  }
  return -1;
}

/** Strip a comment (a '#' after whitespace, outside quotes). */
function stripComment(s: string): string {
  const i = findUnquoted(s, (i) => s[i] === '#' && (i === 0 || /\s/.test(s[i - 1]!)));
  return i < 0 ? s : s.slice(0, i);
}

/** Split `key: value` at the first ': ' (or a trailing ':') outside quotes. */
function keyValue(s: string): [string, string] | undefined {
  const i = findUnquoted(s, (i) => s[i] === ':' && (i === s.length - 1 || s[i + 1] === ' '));
  if (i < 0) return undefined;
  const k = s.slice(0, i).trim();
  return [k.replace(/^["']|["']$/g, ''), s.slice(i + 1)];
}

function parseBlock(lines: Line[], start: number, indent: number, file: string): [Yaml, number] {
  const first = lines[start];
  if (!first || first.indent < indent) return [null, start];
  if (first.text.startsWith('- ') || first.text === '-') {
    const out: Yaml[] = [];
    let i = start;
    while (i < lines.length && lines[i]!.indent === first.indent && (lines[i]!.text.startsWith('- ') || lines[i]!.text === '-')) {
      const rest = lines[i]!.text.slice(1).trimStart();
      if (rest === '') {
        const [v, next] = parseBlock(lines, i + 1, first.indent + 1, file);
        out.push(v);
        i = next;
      } else if (keyValue(rest)) {
        // "- key: value" starts a mapping whose other keys sit at the column after "- ".
        const col = first.indent + (lines[i]!.text.length - rest.length);
        const synthetic: Line[] = [{ indent: col, text: rest, no: lines[i]!.no }];
        let j = i + 1;
        while (j < lines.length && lines[j]!.indent >= col) synthetic.push(lines[j++]!);
        const [v] = parseBlock(synthetic, 0, col, file);
        out.push(v);
        i = j;
      } else {
        out.push(scalar(rest));
        i++;
      }
    }
    return [out, i];
  }
  const out: { [k: string]: Yaml } = {};
  let i = start;
  while (i < lines.length && lines[i]!.indent === first.indent) {
    const l = lines[i]!;
    const kv = keyValue(l.text);
    if (!kv) throw new ProfileError(`${file}:${l.no}: expected 'key: value'`);
    const [k, v] = kv;
    if (v.trim() === '') {
      const next = lines[i + 1];
      if (next && (next.indent > l.indent || (next.indent === l.indent && next.text.startsWith('-')))) {
        const [val, n] = parseBlock(lines, i + 1, next.indent, file);
        out[k] = val;
        i = n;
        continue;
      }
      out[k] = null;
    } else out[k] = scalar(v);
    i++;
  }
  if (i < lines.length && lines[i]!.indent > first.indent) throw new ProfileError(`${file}:${lines[i]!.no}: unexpected indentation`);
  return [out, i];
}

/** Parse the YAML documents of a profile file. */
export function parseYamlDocuments(text: string, file = 'profile'): Yaml[] {
  const docs: Line[][] = [[]];
  text.split('\n').forEach((raw, idx) => {
    if (/^---\s*$/.test(raw)) {
      docs.push([]);
      return;
    }
    const s = stripComment(raw).replace(/\s+$/, '');
    if (s.trim() === '') return;
    if (/\t/.test(s.slice(0, s.length - s.trimStart().length))) throw new ProfileError(`${file}:${idx + 1}: tabs are not allowed for indentation`);
    docs[docs.length - 1]!.push({ indent: s.length - s.trimStart().length, text: s.trimStart(), no: idx + 1 });
  });
  return docs.filter((d) => d.length > 0).map((d) => {
    const [v, n] = parseBlock(d, 0, d[0]!.indent, file);
    if (n < d.length) throw new ProfileError(`${file}:${d[n]!.no}: unexpected content`);
    return v;
  });
}

//// Profiles ////

interface CollectEntry {
  name: string;
  when: { type: string; version?: string; name?: string; exists?: boolean }[];
  args: Record<string, Yaml>;
}

interface Profile {
  name: string;
  source: string;
  collect: CollectEntry[];
}

const GENERIC_PROBES = [
      'tp:net:netif_receive_skb', 'tp:net:netif_rx', 'tp:net:napi_gro_receive_entry', 'tp:net:napi_gro_frags_entry',
      'kprobe:arp_process', 'kprobe:ip_rcv', 'kprobe:ipv6_rcv', 'kprobe:tcp_v4_rcv', 'kprobe:tcp_v6_rcv', 'kprobe:tcp_gro_receive',
      'kprobe:tcp6_gro_receive', 'kprobe:tcp_rcv_established', 'kprobe:tcp_rcv_state_process', 'kprobe:__tcp_retransmit_skb',
      'kprobe:udp_rcv', 'kprobe:udpv6_rcv', 'kprobe:udp_gro_receive', 'kprobe:udp6_gro_receive', 'kprobe:icmp_rcv', 'kprobe:icmpv6_rcv',
      'tp:net:net_dev_queue', 'tp:net:net_dev_start_xmit', 'kprobe:ip_output', 'kprobe:ip6_output', 'kprobe:skb_scrub_packet',
];

/** Our own condition, for the built-ins only: kernel functions can be probed (kprobe or fentry). */
const FN_PROBES = { type: 'kernel-functions' };

/**
 * Retis's built-in profiles (retis/profiles/*.yaml), adapted to the running kernel: where kernel
 * functions cannot be probed (no kprobes, fentry refused), `generic` keeps its tracepoints and
 * `nft-dropmon` uses the nft collector's netlink path, with the default probes to place verdicts
 * in their packets' series and the drop tracepoint for the stack (its kprobe is where Retis takes it).
 */
const BUILTIN: Record<string, CollectEntry[]> = {
  generic: [
    { name: 'kernel functions probed', when: [FN_PROBES], args: { collectors: 'auto', probe: GENERIC_PROBES } },
    { name: 'tracepoints only (kernel functions cannot be probed here)', when: [], args: { collectors: 'auto', probe: GENERIC_PROBES.filter((p) => p.startsWith('tp:')) } },
  ],
  ifdump: [{ name: 'Default', when: [], args: { probe: ['tp:net:netif_receive_skb', 'tp:net:net_dev_start_xmit'] } }],
  dropmon: [{ name: 'Default', when: [], args: { collectors: 'skb-drop,skb,dev,ns', probe: 'tp:skb:kfree_skb/stack' } }],
  'nft-dropmon': [
    { name: 'kprobe on __nft_trace_packet', when: [FN_PROBES, { type: 'symbol', name: '__nft_trace_packet' }], args: { collectors: 'nft,skb,dev,ns', nft_verdicts: 'drop', probe: 'kprobe:__nft_trace_packet/stack' } },
    { name: 'nf_tables trace events (kernel functions cannot be probed here)', when: [], args: { collectors: 'nft,skb,skb-tracking,dev,ns', nft_verdicts: 'drop', probe: ['tp:net:netif_receive_skb', 'tp:net:net_dev_start_xmit', 'tp:skb:kfree_skb/stack'] } },
  ],
};

function asString(v: Yaml | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function toProfile(doc: Yaml, source: string): Profile | undefined {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new ProfileError(`${source}: a profile is a mapping (version, name, collect)`);
  const version = asString(doc.version);
  if (version !== '1.0' && version !== '1') throw new ProfileError(`${source}: unsupported profile version ${version ?? '(none)'} (1.0 is supported)`);
  const name = asString(doc.name);
  if (!name) throw new ProfileError(`${source}: profile without a name`);
  const collect: CollectEntry[] = [];
  const raw = doc.collect ?? [];
  if (!Array.isArray(raw)) throw new ProfileError(`${source}: 'collect' must be a list`);
  for (const e of raw) {
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new ProfileError(`${source}: each collect entry is a mapping`);
    const args = e.args ?? {};
    if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new ProfileError(`${source}: 'args' must be a mapping`);
    const when = (Array.isArray(e.when) ? e.when : []).map((w) => {
      if (w === null || typeof w !== 'object' || Array.isArray(w)) throw new ProfileError(`${source}: each 'when' condition is a mapping`);
      return { type: asString(w.type) ?? '', version: asString(w.version), name: asString(w.name), exists: w.exists === 'false' ? false : true };
    });
    collect.push({ name: asString(e.name) ?? 'Default', when, args });
  }
  return { name, source, collect };
}

function profileDirs(): string[] {
  return [path.join(os.homedir(), '.config', 'retis', 'profiles'), '/usr/share/retis/profiles', '/etc/retis/profiles'];
}

function loadFile(file: string): Profile[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ProfileError(`cannot read profile ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseYamlDocuments(text, file).flatMap((d) => toProfile(d, file) ?? []);
}

export function findProfile(nameOrFile: string): Profile {
  if (nameOrFile.includes('/') || fs.existsSync(nameOrFile)) {
    const all = loadFile(nameOrFile);
    if (all.length === 0) throw new ProfileError(`${nameOrFile}: no profile in this file`);
    return all[0]!;
  }
  for (const dir of profileDirs()) {
    let files: string[];
    try {
      files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
    } catch {
      continue;
    }
    for (const f of files) {
      const hit = loadFile(path.join(dir, f)).find((p) => p.name === nameOrFile);
      if (hit) return hit;
    }
  }
  const b = BUILTIN[nameOrFile];
  if (b) return { name: nameOrFile, source: 'built-in', collect: b };
  throw new ProfileError(`no profile named '${nameOrFile}' (built-in: ${Object.keys(BUILTIN).join(', ')}; or a YAML file path)`);
}

/** Semver-ish comparison of dotted numbers. */
function cmp(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Does `release` (e.g. 6.18.44-fc) satisfy ">=3.5.5, <6" style requirements? */
export function versionMatches(release: string, req: string): boolean {
  const v = (/^(\d+(?:\.\d+)*)/.exec(release)?.[1] ?? '0').split('.').map(Number);
  return req.split(',').every((part) => {
    const m = /^\s*(>=|<=|>|<|=|==|\^|~)?\s*v?(\d+(?:\.\d+)*)\s*$/.exec(part);
    if (!m) throw new ProfileError(`invalid version requirement '${part.trim()}'`);
    const r = m[2]!.split('.').map(Number);
    const c = cmp(v, r);
    switch (m[1] ?? '=') {
      case '>=': return c >= 0;
      case '<=': return c <= 0;
      case '>': return c > 0;
      case '<': return c < 0;
      case '^': return c >= 0 && v[0] === r[0];
      case '~': return c >= 0 && v[0] === r[0] && v[1] === r[1];
      default: return c === 0 || (r.length < 3 && r.every((x, i) => v[i] === x));
    }
  });
}

function symbolExists(name: string): boolean {
  try {
    const btf = Btf.vmlinux();
    if (btf.hasFunction(name) || btf.hasTracepoint(name.replace(/^.*:/, ''))) return true;
    // Module functions (nf_tables' __nft_trace_packet, openvswitch's): in kallsyms when loaded.
    return kallsymsFunctions().has(name);
  } catch {
    return false;
  }
}

let fnProbes: boolean | undefined;
function kernelFunctionsProbed(): boolean {
  if (fnProbes === undefined) {
    try {
      const f = probeFeatures({ btf: Btf.vmlinux() });
      fnProbes = f.kprobe.supported || f.fentry.supported;
    } catch {
      fnProbes = false;
    }
  }
  return fnProbes;
}

/** Argument list of a profile's first matching collect entry. */
export function profileArgs(p: Profile, release = os.release()): { entry: string; args: string[] } {
  for (const e of p.collect) {
    const ok = e.when.every((w) => {
      if (w.type === 'version') return versionMatches(release, w.version ?? '');
      if (w.type === 'symbol') return symbolExists(w.name ?? '') === (w.exists ?? true);
      if (w.type === FN_PROBES.type && p.source === 'built-in') return kernelFunctionsProbed();
      throw new ProfileError(`${p.source}: unknown condition type '${w.type}' (version, symbol)`);
    });
    if (!ok) continue;
    const args: string[] = [];
    for (const [k, v] of Object.entries(e.args)) {
      const flag = `--${k.replaceAll('_', '-')}`;
      if (v === null) args.push(flag);
      else if (Array.isArray(v)) for (const x of v) args.push(flag, String(x));
      else if (typeof v === 'object') throw new ProfileError(`${p.source}: argument ${k} cannot be a mapping`);
      else args.push(flag, v);
    }
    return { entry: e.name, args };
  }
  throw new ProfileError(`profile ${p.name} (${p.source}) has no collect entry for this kernel (${release})`);
}

/**
 * The options with every profile's arguments added after the user's, as Retis appends them:
 * lists (probes, skb sections) grow, flags are or-ed, and a single-valued option the user gave
 * (e.g. -c) wins over the profile's.
 */
export function applyProfiles(opts: CaptureOptions, argv: readonly string[]): CaptureOptions {
  void argv;
  const extra: string[] = [];
  for (const name of opts.profiles) extra.push(...profileArgs(findProfile(name)).args);
  let prof: CaptureOptions;
  try {
    prof = parseCaptureArgs(extra);
  } catch (e) {
    throw new ProfileError(`profile arguments rejected: ${(e as Error).message}`);
  }
  // `collectors: auto` in a profile means "every collector the kernel supports": same as no -c.
  const profCollectors = prof.collectors?.length === 1 && prof.collectors[0] === 'auto' ? undefined : prof.collectors;
  return {
    ...opts,
    collectors: opts.collectors ?? profCollectors,
    probes: [...opts.probes, ...prof.probes],
    skbSections: [...opts.skbSections, ...prof.skbSections],
    nftVerdicts: opts.nftVerdicts ?? prof.nftVerdicts,
    stack: opts.stack || prof.stack,
    ovsTrack: opts.ovsTrack || prof.ovsTrack,
    allowSystemChanges: opts.allowSystemChanges || prof.allowSystemChanges,
    packetFilter: opts.packetFilter ?? prof.packetFilter,
    metaFilter: opts.metaFilter ?? prof.metaFilter,
  };
}
