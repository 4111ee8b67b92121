/**
 * Text of each Retis event section, as its `EventFmt` implementation writes it
 * (retis-events/src/{common,kernel,user,skb_tracking,skb_drop,skb,ns,dev,ovs,nft,ct}.rs).
 *
 * Sections whose text stays at one indentation level return a string (which may
 * contain '\n': the writer indents continuation lines). Those that change the level
 * part-way (stack traces, OVS flows) write into the TextWriter themselves.
 *
 * Section objects are read through the typed views below: events reaching us were
 * produced by a Retis-schema parser, so the shapes hold; u64 fields are bigint but
 * accepted as number too.
 */
import { etypeName, hex06 } from './net.ts';
import type { TextWriter } from './writer.ts';

type U64 = bigint | number;

export interface TaskView {
  pid: number;
  tgid: number;
  comm: string;
}
export interface CommonView {
  timestamp: U64;
  smp_id?: number;
  task?: TaskView;
}
export interface KernelView {
  symbol: string;
  probe_type: string;
  stack_trace?: string[];
}
export interface UserView {
  probe_type: string;
  symbol: string;
  path: string;
}
export interface SkbTrackingView {
  orig_head: U64;
  timestamp: U64;
  skb: U64;
}
export interface TrackingView {
  skb: SkbTrackingView;
  idx: number;
}
export interface SkbDropView {
  subsys?: string;
  drop_reason: string;
}
export interface NetnsView {
  cookie?: U64;
  inum: number;
}
export interface DevView {
  name: string;
  ifindex: number;
  rx_ifindex?: number;
}
export interface SkbView {
  vlan_accel?: { proto: number; pcp: number; dei: boolean; vid: number };
  meta?: { len: number; data_len: number; hash: number; ip_summed: number; csum: number; csum_level: number; priority: number };
  data_ref?: { nohdr: boolean; cloned: boolean; fclone: number; users: number; dataref: number };
  gso?: { flags: number; frags: number; size: number; segs: number; type: number };
}
export interface NatView {
  dir?: string;
  min_addr?: string;
  max_addr?: string;
  min_port?: number;
  max_port?: number;
}
/** OVS section: the union of all `event_type` variants' (flattened) fields. */
export interface OvsView {
  event_type: string;
  cmd?: number;
  port?: number;
  cpu?: number;
  ret?: number;
  upcall_ts?: U64;
  upcall_cpu?: number;
  pkt_size?: number;
  op_type?: string;
  queue_id?: number;
  batch_ts?: U64;
  batch_idx?: number;
  action?: string;
  id?: number;
  flags?: number;
  zone_id?: number;
  nat?: NatView;
  reason?: number;
  recirc_id?: number;
  flow?: U64;
  sf_acts?: U64;
  ufid?: number[];
  n_mask_hit?: number;
  n_cache_hit?: number;
  dpflow?: string;
  ofpflows?: string[];
}
export interface OvsDetraceView {
  ufid: number[];
  dpflow: string;
  ofpflows: string[];
}
export interface NftView {
  table_name: string;
  chain_name: string;
  verdict: string;
  verdict_chain_name?: string;
  table_handle: U64;
  chain_handle: U64;
  rule_handle?: U64;
  policy: boolean;
}
interface CtTupleView {
  ip: { src: string; dst: string };
  proto: {
    tcp?: { sport: number; dport: number };
    udp?: { sport: number; dport: number };
    icmp?: { code: number; type: number; id: number };
    sctp?: { sport: number; dport: number; vtag: number };
  };
}
export interface CtConnView {
  zone_id: number;
  zone_dir: string;
  orig: CtTupleView;
  reply: CtTupleView;
  proto_state?: string;
  mark?: number;
  labels?: { hi: U64; lo: U64 };
  ct_status: U64;
}
export interface CtView extends CtConnView {
  state: string;
  parent?: CtConnView;
}
export interface StartupView {
  retis_version: string;
  cmdline?: string;
  clock_monotonic_offset?: { sec: U64; nsec: U64 };
  machine?: { kernel_release: string; kernel_version: string; hardware_name: string };
  split_file?: { id: number };
}

/* ---------------------------------------------------------------- first line */

export function commonText(c: CommonView, time: string): string {
  let s = time;
  if (c.smp_id !== undefined) s += ` (${c.smp_id})`;
  const t = c.task;
  if (t !== undefined) {
    s += ` [${t.comm}] `;
    if (t.tgid !== t.pid) s += `${t.pid}/`;
    s += t.tgid;
  }
  return s;
}

const PROBE_TYPE_TAGS: Record<string, string> = { raw_tracepoint: 'tp', kprobe: 'k', kretprobe: 'kr' };

export function kernelText(k: KernelView): string {
  return `[${PROBE_TYPE_TAGS[k.probe_type] ?? 'invalid'}] ${k.symbol}`;
}

export function userText(u: UserView): string {
  const slash = u.path.lastIndexOf('/');
  return slash === -1 ? `[u] ${u.symbol}` : `[u] ${u.symbol} (${u.path.slice(slash + 1)})`;
}

/** Tracking id `(timestamp << 64) | orig_head` in hex, without building the u128. */
function trackingIdHex(t: SkbTrackingView): string {
  const head = t.orig_head.toString(16);
  const ts = t.timestamp;
  return ts === 0n || ts === 0 ? head : ts.toString(16) + head.padStart(16, '0');
}

export function skbTrackingText(t: SkbTrackingView): string {
  return `#${trackingIdHex(t)} (skb ${t.skb.toString(16)})`;
}

export function trackingText(t: TrackingView): string {
  return `${skbTrackingText(t.skb)} n ${t.idx}`;
}

export function skbDropText(d: SkbDropView): string {
  return d.subsys === undefined ? `drop (reason ${d.drop_reason})` : `drop (reason ${d.subsys}/${d.drop_reason})`;
}

/** Stack trace: one symbol a line (multi-line), else a bracketed list. */
export function writeStack(w: TextWriter, stack: string[], multiline: boolean): void {
  w.write(multiline ? stack.join('\n') : `[${stack.join(', ')}]`);
}

/* ---------------------------------------------------------------- netns, dev, skb */

export function netnsText(n: NetnsView): string {
  return n.cookie === undefined ? `ns ${n.inum}` : `ns 0x${n.cookie.toString(16)}/${n.inum}`;
}

export function devText(d: DevView): string {
  let s = `if ${d.ifindex}`;
  if (d.name !== '') s += ` (${d.name})`;
  if (d.rx_ifindex !== undefined) s += ` rxif ${d.rx_ifindex}`;
  return s;
}

/** Whether the skb section prints anything (an empty `skb: {}` does not). */
export function skbCanFormat(s: SkbView, printLl: boolean): boolean {
  return (s.vlan_accel !== undefined && printLl) || s.meta !== undefined || s.data_ref !== undefined || s.gso !== undefined;
}

const CSUM_NONE = 0;
const CSUM_UNNECESSARY = 1;
const CSUM_COMPLETE = 2;
const CSUM_PARTIAL = 3;

export function skbText(s: SkbView, printLl: boolean): string {
  const parts: string[] = [];

  if (printLl && s.vlan_accel !== undefined) {
    const v = s.vlan_accel;
    const name = etypeName(v.proto);
    const etype = name === undefined ? `ethertype (${hex06(v.proto)})` : `ethertype ${name} (${hex06(v.proto)})`;
    parts.push(`vlan_accel (${etype} vlan ${v.vid} p ${v.pcp}${v.dei ? ' DEI' : ''})`);
  }

  const m = s.meta;
  const r = s.data_ref;
  if (m !== undefined || r !== undefined) {
    let t = 'skb [';
    if (m !== undefined) {
      t += 'csum ';
      switch (m.ip_summed) {
        case CSUM_NONE:
          t += 'none ';
          break;
        case CSUM_UNNECESSARY:
          t += `unnecessary (level ${m.csum_level}) `;
          break;
        case CSUM_COMPLETE:
          t += `complete (0x${m.csum.toString(16)}) `;
          break;
        case CSUM_PARTIAL:
          // csum holds (offset << 16) | start for CHECKSUM_PARTIAL.
          t += `partial (start ${m.csum & 0xffff} off ${m.csum >>> 16}) `;
          break;
        default:
          t += `unknown (${m.ip_summed}) `;
      }
      if (m.hash !== 0) t += `hash 0x${m.hash.toString(16)} `;
      t += `len ${m.len} `;
      if (m.data_len !== 0) t += `data_len ${m.data_len} `;
      t += `priority ${m.priority}`;
    }
    if (m !== undefined && r !== undefined) t += ' ';
    if (r !== undefined) {
      if (r.nohdr) t += 'nohdr ';
      if (r.cloned) t += 'cloned ';
      if (r.fclone > 0) t += `fclone ${r.fclone} `;
      t += `users ${r.users} dataref ${r.dataref}`;
    }
    parts.push(t + ']');
  }

  const g = s.gso;
  if (g !== undefined) {
    let t = `gso [type 0x${g.type.toString(16)} `;
    if (g.flags !== 0) t += `flags 0x${g.flags.toString(16)} `;
    if (g.frags !== 0) t += `frags ${g.frags} `;
    if (g.segs !== 0) t += `segs ${g.segs} `;
    parts.push(t + `size ${g.size}]`);
  }
  return parts.join(' ');
}

/* ---------------------------------------------------------------- ovs */

function upcallCmd(cmd: number | undefined): string {
  switch (cmd) {
    case 0:
      return ' (unspec)';
    case 1:
      return ' (miss)';
    case 2:
      return ' (action)';
    case 3:
      return ' (exec)';
    default:
      return '';
  }
}

/** Ufid as a UUID-like string, from its four u32 words. */
export function ufidText(u: number[]): string {
  const w = (i: number): number => u[i] ?? 0;
  const h = (v: number, n: number): string => v.toString(16).padStart(n, '0');
  return `${h(w(0), 8)}-${h(w(1) >>> 16, 4)}-${h(w(1) & 0xffff, 4)}-${h(w(2) >>> 16, 4)}-${h(w(2) & 0xffff, 4)}${h(w(3), 8)}`;
}

/** Argument-less action kinds and their printed name (`set` shows as tunnel_set). */
const SIMPLE_ACTIONS: Record<string, string> = {
  userspace: 'userspace',
  set: 'tunnel_set',
  push_vlan: 'push_vlan',
  pop_vlan: 'pop_vlan',
  sample: 'sample',
  hash: 'hash',
  push_mpls: 'push_mpls',
  pop_mpls: 'pop_mpls',
  set_masked: 'set_masked',
  trunc: 'trunc',
  push_eth: 'push_eth',
  pop_eth: 'pop_eth',
  ct_clear: 'ct_clear',
  push_nsh: 'push_nsh',
  pop_nsh: 'pop_nsh',
  meter: 'meter',
  clone: 'clone',
  check_pkt_len: 'check_pkt_len',
  add_mpls: 'add_mpls',
  dec_ttl: 'dec_ttl',
};

/** OVS ct action flag bits (R_OVS_CT_*). */
const CT_COMMIT = 1 << 0;
const CT_FORCE = 1 << 1;
const CT_NAT_RANGE_MAP_IPS = 1 << 7;
const CT_NAT_RANGE_PROTO_SPECIFIED = 1 << 8;
const CT_NAT_RANGE_PROTO_RANDOM = 1 << 9;
const CT_NAT_RANGE_PERSISTENT = 1 << 10;
const CT_NAT_RANGE_PROTO_RANDOM_FULLY = 1 << 11;

function ctActionText(o: OvsView): string {
  const flags = o.flags ?? 0;
  let s = ` ct zone ${o.zone_id ?? 0}`;
  const nat = o.nat;
  if (nat !== undefined) {
    s += ' nat';
    if (nat.dir !== undefined) {
      s += nat.dir === 'dst' ? '(dst' : '(src';
      if (flags & CT_NAT_RANGE_MAP_IPS && nat.min_addr !== undefined && nat.max_addr !== undefined) {
        s += nat.min_addr === nat.max_addr ? `=${nat.min_addr}` : `=${nat.min_addr}-${nat.max_addr}`;
      }
      if (flags & CT_NAT_RANGE_PROTO_SPECIFIED && nat.min_port !== undefined && nat.max_port !== undefined) {
        s += nat.min_port === nat.max_port ? `:${nat.min_port}` : `:${nat.min_port}-${nat.max_port}`;
      }
      s += ')';
    }
  }
  const f: string[] = [];
  if (flags & CT_COMMIT) f.push('commit');
  if (flags & CT_FORCE) f.push('force');
  if (flags & CT_NAT_RANGE_PERSISTENT) f.push('persistent');
  if (flags & CT_NAT_RANGE_PROTO_RANDOM) f.push('hash');
  if (flags & CT_NAT_RANGE_PROTO_RANDOM_FULLY) f.push('random');
  if (f.length > 0) s += ' ' + f.join(',');
  return s;
}

function actionText(o: OvsView): string {
  let s = o.recirc_id ? `[recirc_id 0x${o.recirc_id.toString(16)}] exec` : 'exec';
  const a = o.action;
  switch (a) {
    case 'output':
      s += ` oport ${o.port ?? 0}`;
      break;
    case 'recirc':
      s += ` recirc 0x${(o.id ?? 0).toString(16)}`;
      break;
    case 'ct':
      s += ctActionText(o);
      break;
    case 'drop':
      s += ` drop ${o.reason ?? 0}`;
      break;
    default: {
      const name = a === undefined ? undefined : SIMPLE_ACTIONS[a];
      s += name === undefined ? ' unspec' : ' ' + name;
    }
  }
  if (o.queue_id !== undefined) s += ` q ${o.queue_id}`;
  return s;
}

function writeLookup(w: TextWriter, o: OvsView, multiline: boolean): void {
  if (o.flow === undefined || o.flow === 0n || o.flow === 0) {
    w.write(`flow miss mask ${o.n_mask_hit ?? 0} cache ${o.n_cache_hit ?? 0}`);
    return;
  }
  const sep = multiline ? '\n' : ' ';
  let s = `flow hit ufid ${ufidText(o.ufid ?? [])} mask ${o.n_mask_hit ?? 0} cache ${o.n_cache_hit ?? 0} flow ${o.flow.toString(16)} sf_acts ${(o.sf_acts ?? 0).toString(16)}`;
  if (o.dpflow) s += `${sep}odpflow ${o.dpflow}`;
  const flows = o.ofpflows;
  if (flows === undefined || flows.length === 0) {
    w.write(s);
    return;
  }
  w.write(`${s}${sep}openflow${sep}`);
  // Flows are indented one more step under the `openflow` line.
  if (multiline) w.conf.incLevel(4);
  w.write(flows.join(sep));
  if (multiline) w.conf.resetLevel();
}

export function writeOvs(w: TextWriter, o: OvsView, multiline: boolean): void {
  switch (o.event_type) {
    case 'upcall':
      w.write(`upcall${upcallCmd(o.cmd)} port ${o.port} cpu ${o.cpu}`);
      return;
    case 'upcall_enqueue':
      w.write(`upcall_enqueue${upcallCmd(o.cmd)} (${o.upcall_cpu}/${o.upcall_ts}) q ${o.queue_id} ret ${o.ret}`);
      return;
    case 'upcall_return':
      w.write(`upcall_ret (${o.upcall_cpu}/${o.upcall_ts}) ret ${o.ret}`);
      return;
    case 'recv_upcall':
      w.write(`upcall_recv q ${o.queue_id} pkt_size ${o.pkt_size}`);
      return;
    case 'flow_operation': {
      const op = o.op_type === 'exec' || o.op_type === 'put' ? o.op_type : '?';
      w.write(`flow_${op} q ${o.queue_id} ts ${o.batch_ts} (${o.batch_idx})`);
      return;
    }
    case 'action_execute':
      w.write(actionText(o));
      return;
    case 'flow_lookup':
      writeLookup(w, o, multiline);
      return;
  }
}

export function writeOvsDetrace(w: TextWriter, o: OvsDetraceView, multiline: boolean): void {
  w.write(`ufid:${ufidText(o.ufid)} ${o.dpflow}`);
  if (multiline) {
    w.write('\nopenflow:');
    w.conf.incLevel(4);
    w.write(o.ofpflows.join('\n'));
    w.conf.resetLevel();
  } else {
    w.write(` openflow: ${o.ofpflows.join(' ')}`);
  }
}

/* ---------------------------------------------------------------- nft, ct */

export function nftText(n: NftView): string {
  let s = `table ${n.table_name} (${n.table_handle}) chain ${n.chain_name} (${n.chain_handle})`;
  if (n.rule_handle !== undefined) s += ` handle ${n.rule_handle}`;
  s += ` ${n.verdict}`;
  if (n.policy) s += ' (policy)';
  if (n.verdict_chain_name !== undefined) s += ` chain ${n.verdict_chain_name}`;
  return s;
}

const CT_STATES: Record<string, string> = {
  established: 'ESTABLISHED',
  related: 'RELATED',
  new: 'NEW',
  reply: 'REPLY',
  related_reply: 'RELATED_REPLY',
  untracked: 'UNTRACKED',
};

function ctConnText(c: CtConnView): string {
  let s = `status 0x${c.ct_status.toString(16)} `;
  const o = c.orig;
  const r = c.reply;
  const op = o.proto;
  const rp = r.proto;
  // The tuple is printed only when both directions carry the same protocol.
  if (op.tcp !== undefined && rp.tcp !== undefined) {
    s += `tcp (${c.proto_state ?? 'UNKNOWN'}) orig [${o.ip.src}.${op.tcp.sport} > ${o.ip.dst}.${op.tcp.dport}] reply [${r.ip.src}.${rp.tcp.sport} > ${r.ip.dst}.${rp.tcp.dport}] `;
  } else if (op.udp !== undefined && rp.udp !== undefined) {
    s += `udp orig [${o.ip.src}.${op.udp.sport} > ${o.ip.dst}.${op.udp.dport}] reply [${r.ip.src}.${rp.udp.sport} > ${r.ip.dst}.${rp.udp.dport}] `;
  } else if (op.icmp !== undefined && rp.icmp !== undefined) {
    s += `icmp orig [${o.ip.src} > ${o.ip.dst} type ${op.icmp.type} code ${op.icmp.code} id ${op.icmp.id}] reply [${r.ip.src} > ${r.ip.dst} type ${rp.icmp.type} code ${rp.icmp.code} id ${rp.icmp.id}] `;
  } else if (op.sctp !== undefined && rp.sctp !== undefined) {
    s += `sctp (${c.proto_state ?? 'UNKNOWN'}) orig [${o.ip.src}.${op.sctp.sport} > ${o.ip.dst}.${op.sctp.dport} vtag 0x${op.sctp.vtag.toString(16)}] reply [${r.ip.src}.${rp.sctp.sport} > ${r.ip.dst}.${rp.sctp.dport} vtag 0x${rp.sctp.vtag.toString(16)}] `;
  }
  switch (c.zone_dir) {
    case 'Original':
      s += `orig-zone ${c.zone_id}`;
      break;
    case 'Reply':
      s += `reply-zone ${c.zone_id}`;
      break;
    case 'Default':
      s += `zone ${c.zone_id}`;
      break;
  }
  if (c.mark !== undefined) s += ` mark ${c.mark}`;
  if (c.labels !== undefined) {
    const bits = (BigInt(c.labels.hi) << 64n) | BigInt(c.labels.lo);
    s += ` labels 0x${bits.toString(16)}`;
  }
  return s;
}

export function ctText(c: CtView, multiline: boolean): string {
  let s = `ct_state ${CT_STATES[c.state] ?? 'UNTRACKED'} ${ctConnText(c)}`;
  if (c.parent !== undefined) {
    // Multi-line output puts the parent on a continuation line starting with '\'.
    if (multiline) s += '\n\\';
    s += ` parent [${ctConnText(c.parent)}]`;
  }
  return s;
}

/* ---------------------------------------------------------------- startup */

export function startupText(s: StartupView, multiline: boolean): string {
  const sep = multiline ? '\n' : ' ';
  // Files older than v1.7 lack machine/cmdline; Retis's compat layer fills in "unknown".
  const m = s.machine;
  let t = `collected with Retis ${s.retis_version}`;
  t += `${sep}on machine ${m?.kernel_release ?? 'unknown'} ${m?.kernel_version ?? 'unknown'} ${m?.hardware_name ?? 'unknown'}`;
  if (s.split_file !== undefined) t += `${sep}file id ${s.split_file.id}`;
  return t + `${sep}cmdline ${s.cmdline ?? 'unknown'}`;
}
