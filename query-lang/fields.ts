/**
 * Fields: every name a query can use, what SQL it stands for and what values it takes.
 *
 * Three families of rows have fields of their own:
 *  - events (`events`, `drops`): the flat columns of the event model, aliases for what
 *    people type (`dev`, `netns`, `track`), and every section field by its path
 *    (`nft.verdict`, `ct.orig.ip.src`, `skb.meta.len`), read from the model's schema;
 *  - tracks: one row per packet series (see sources.ts);
 *  - upcalls: one row per OVS upcall.
 * Aggregating stages (`count by`, `stats`, ...) produce rows whose fields are their columns.
 *
 * docs/query-language.md lists these tables; `fieldTables()` prints them.
 */
import { FLAT_COLUMNS, SECTIONS, quoteIdent, type Field, type FieldType } from '../analyze/model/schema.ts';
import { DOMAINS, dataDomain, type Domain } from './domains.ts';

/** How values of a field are compared and shown. */
export type Kind =
  | 'int'
  | 'float'
  | 'string'
  | 'addr'
  | 'mac'
  | 'bool'
  | 'duration'
  | 'ts'
  | 'time'
  | 'track'
  | 'list'
  | 'struct'
  | 'bytes';

export const NUMERIC_KINDS: ReadonlySet<Kind> = new Set(['int', 'float', 'duration', 'ts', 'time', 'track']);

export interface FieldDef {
  /** The name as written in queries (and the column name in output). */
  name: string;
  /** SQL expression over the relation the field belongs to. */
  sql: string;
  /** DuckDB type of `sql`: values are cast to it so that comparisons stay on the column's type. */
  type: string;
  kind: Kind;
  /** Bare names this field accepts as values. */
  domain?: Domain;
  /** A quantity (`top N by` takes the largest) rather than a category (`top N by` counts). */
  measure?: boolean;
  /** For lists: the elements. */
  elem?: { type: string; kind: Kind; domain?: Domain };
  /** Output form: hex text for tracking ids and addresses, colon text for MACs. */
  display?: 'track' | 'hex' | 'mac';
  /** For `ts`: the wall-clock expression a date is compared with. */
  wallSql?: string;
  /** For sections: their fields' names. */
  children?: string[];
  doc: string;
  example?: string;
}

/** A set of fields, as seen from one relation. */
export interface Scope {
  readonly name: 'events' | 'tracks' | 'upcalls' | 'rows';
  resolve(path: readonly string[]): FieldDef | undefined;
  /** Every name, for did-you-mean. */
  names(): string[];
  /** Tracks only: the scope of the events inside a series, for any()/all()/first()/last(). */
  readonly events?: Scope;
}

////  EVENT FIELDS  ////

/** Retis's text of a tracking id: hex timestamp then 16 hex digits of orig_head. */
const TRACK_HEX = (x: string) =>
  `CASE WHEN ${x} IS NOT NULL THEN lower(printf('%x', (${x} >> 64)::UBIGINT)) || lower(printf('%016x', (${x} & 18446744073709551615::UHUGEINT)::UBIGINT)) END`;

/** SQL turning a field's value into its output form. */
export function displaySql(f: Pick<FieldDef, 'display'>, x: string): string {
  switch (f.display) {
    case 'track':
      return TRACK_HEX(x);
    case 'hex':
      return `lower(printf('%x', ${x}))`;
    case 'mac':
      return `lower(concat_ws(':', ${[1, 3, 5, 7, 9, 11].map((i) => `substr(${x}, ${i}, 2)`).join(', ')}))`;
    default:
      return x;
  }
}

function flatType(name: string): string {
  const c = FLAT_COLUMNS.find((f) => f.name === name);
  if (!c || typeof c.type !== 'string') throw new Error(`internal: no flat column ${name}`);
  return c.type;
}

function flatDoc(name: string): string {
  return FLAT_COLUMNS.find((f) => f.name === name)?.doc ?? '';
}

type Extra = Partial<FieldDef>;

/** A flat column of the model. */
function flat(name: string, kind: Kind, extra: Extra = {}): FieldDef {
  return { name, sql: quoteIdent(name), type: flatType(name), kind, doc: flatDoc(name), ...extra };
}

const MAC_SQL = (first: number) =>
  `CASE WHEN octet_length(packet.data) >= ${first + 5} THEN hex(packet.data[${first}:${first + 5}]) END`;

/**
 * Event fields by name. Aliases point at the same SQL as the column they stand for.
 * Order is the order of the docs table.
 */
export const EVENT_FIELDS: readonly FieldDef[] = [
  flat('probe', 'string', { domain: DOMAINS.probe, example: 'probe = "tp:net:netif_receive_skb"', doc: 'probe as users type it: tp:GROUP:NAME, kprobe:FN, kretprobe:FN, usdt:SYMBOL; a bare function name matches it too (probe = kfree_skb)' }),
  flat('reason', 'string', { domain: DOMAINS.reason, example: 'reason = NETFILTER_DROP', doc: 'drop reason (skb-drop.drop_reason), e.g. NO_SOCKET' }),
  { ...flat('dev_name', 'string'), name: 'dev', domain: dataDomain('dev', 'dev_name'), example: 'dev = "eth0"', doc: 'network device name (dev.name)' },
  flat('ifindex', 'int', { example: 'ifindex = 2' }),
  { ...flat('netns_inum', 'int'), name: 'netns', example: 'netns = 4026531840', doc: 'network namespace inode number (netns.inum)' },
  flat('comm', 'string', { domain: dataDomain('comm', 'comm'), example: 'comm = "ping"' }),
  flat('pid', 'int', { example: 'pid = 1360' }),
  flat('tgid', 'int', { example: 'tgid = 995' }),
  flat('cpu', 'int', { example: 'cpu = 2' }),
  flat('saddr', 'addr', { example: 'saddr in 10.0.0.0/8' }),
  flat('daddr', 'addr', { example: 'daddr = fe80::1' }),
  flat('sport', 'int', { example: 'sport = 53' }),
  flat('dport', 'int', { example: 'dport between 1 and 1023' }),
  flat('proto', 'string', { domain: DOMAINS.proto, example: 'proto = udp' }),
  flat('len', 'int', { measure: true, example: 'len > 1400' }),
  { ...flat('track_id', 'track'), name: 'track', display: 'track', example: 'track = #1baa83c42ba1ffff8e95c3b67c00', doc: 'tracking id of the packet (skb-tracking: timestamp << 64 | orig_head); write it as Retis prints it, #hex' },
  flat('ts', 'ts', { wallSql: 'wall_ns', measure: true, example: 'ts >= 23868955262984', doc: 'event time: CLOCK_MONOTONIC ns of the recording host (compared with a date, the wall clock is used)' }),
  { ...flat('wall_ns', 'time'), name: 'time', measure: true, example: 'time >= 2024-05-01T10:00:00Z', doc: 'event wall-clock time, epoch ns (needs the startup event)' },
  {
    name: 'elapsed',
    sql: '(ts::BIGINT - (SELECT min(ts) FROM events)::BIGINT)',
    type: 'BIGINT',
    kind: 'duration',
    measure: true,
    example: 'elapsed < 2s',
    doc: 'time since the first loaded event',
  },
  { name: 'drop', sql: '(reason IS NOT NULL)', type: 'BOOLEAN', kind: 'bool', example: 'drop', doc: 'true for a drop event (one with a drop reason)' },
  { name: 'smac', sql: MAC_SQL(7), type: 'VARCHAR', kind: 'mac', display: 'mac', example: 'smac = 0a:58:0a:f4:01:1e', doc: 'source MAC address, from the raw packet' },
  { name: 'dmac', sql: MAC_SQL(1), type: 'VARCHAR', kind: 'mac', display: 'mac', example: 'dmac = ff:ff:ff:ff:ff:ff', doc: 'destination MAC address, from the raw packet' },
  { name: 'verdict', sql: 'nft.verdict', type: 'VARCHAR', kind: 'string', domain: DOMAINS.verdict, example: 'verdict = drop', doc: 'nftables verdict (nft.verdict)' },
  { name: 'ct_state', sql: 'ct.state', type: 'VARCHAR', kind: 'string', domain: DOMAINS.ctState, example: 'ct_state = established', doc: 'conntrack state (ct.state)' },
  { ...flat('drop_subsys', 'string'), name: 'subsys', domain: dataDomain('subsys', 'drop_subsys'), example: 'subsys = "openvswitch"', doc: 'drop reason subsystem (skb-drop.subsys; empty for core reasons)' },
  flat('probe_type', 'string', { domain: DOMAINS.probeType, example: 'probe_type = kretprobe' }),
  flat('symbol', 'string', { domain: dataDomain('symbol', 'symbol'), example: 'symbol = "net:netif_receive_skb"' }),
  { ...flat('skb_addr', 'int'), display: 'hex', example: 'skb_addr = 0xffff8e95d3009100' },
  flat('ethertype', 'int', { example: 'ethertype = 0x86dd' }),
  flat('ip_proto', 'int', { example: 'ip_proto = 17' }),
  flat('eid', 'int', { example: 'eid <= 1000' }),
  flat('seq', 'int', { example: 'seq = 1' }),
  flat('series', 'int', { example: 'series = 3' }),
  flat('src', 'string', { domain: dataDomain('src', 'src'), example: 'src ~ "*node1*"' }),
  flat('host', 'string', { domain: dataDomain('host', 'host'), example: 'host = "node1"' }),
  // Long names of the aliased columns.
  { ...flat('dev_name', 'string'), domain: dataDomain('dev', 'dev_name'), doc: 'same as dev' },
  { ...flat('netns_inum', 'int'), doc: 'same as netns' },
  { ...flat('track_id', 'track'), display: 'track', doc: 'same as track' },
  { ...flat('wall_ns', 'time'), measure: true, doc: 'same as time' },
  { ...flat('drop_subsys', 'string'), domain: dataDomain('subsys', 'drop_subsys'), doc: 'same as subsys' },
  { ...flat('reason', 'string'), name: 'drop_reason', domain: DOMAINS.reason, doc: 'same as reason' },
];

const EVENT_BY_NAME = new Map(EVENT_FIELDS.map((f) => [f.name, f]));

/** Kinds and domains of section fields that the schema's types do not tell. */
function sectionKind(path: string, type: FieldType): Pick<FieldDef, 'kind' | 'domain' | 'measure'> {
  if (/\.ip\.(src|dst)$/.test(path) || /^ovs\.nat\.(min|max)_addr$/.test(path)) return { kind: 'addr' };
  if (/^(common\.timestamp|skb-tracking\.timestamp|tracking\.skb\.timestamp|ovs\.upcall_ts|ovs\.batch_ts)$/.test(path)) return { kind: 'ts', measure: true };
  const domains: Record<string, Domain> = {
    'skb-drop.drop_reason': DOMAINS.reason,
    'kernel.probe_type': DOMAINS.probeType,
    'userspace.probe_type': DOMAINS.probeType,
    'nft.verdict': DOMAINS.verdict,
    'ct.state': DOMAINS.ctState,
    'ovs.event_type': DOMAINS.ovsEventType,
    'ovs.action': DOMAINS.ovsAction,
    'ovs.op_type': DOMAINS.opType,
    'ct.zone_dir': DOMAINS.zoneDir,
    'ct.parent.zone_dir': DOMAINS.zoneDir,
  };
  if (typeof type === 'string') {
    if (type === 'VARCHAR') return { kind: 'string', domain: domains[path] ?? dataDomain(path, sectionSql(path.split('.'))) };
    if (type === 'BOOLEAN') return { kind: 'bool' };
    if (type === 'BLOB') return { kind: 'bytes' };
    return { kind: 'int', measure: /(^|\.)(len|data_len|size|pkt_size|key_size|capture_len|segs)$/.test(path) };
  }
  return { kind: 'list' in type ? 'list' : 'struct' };
}

function sectionSql(path: readonly string[]): string {
  return path.map(quoteIdent).join('.');
}

function typeText(t: FieldType): string {
  if (typeof t === 'string') return t;
  if ('list' in t) return `${typeText(t.list)}[]`;
  return 'STRUCT';
}

/** Every section field by dotted path, sections themselves included. */
const SECTION_FIELDS: Map<string, FieldDef> = (() => {
  const out = new Map<string, FieldDef>();
  const walk = (prefix: string[], f: Field) => {
    const path = [...prefix, f.name];
    const key = path.join('.');
    const k = sectionKind(key, f.type);
    const def: FieldDef = { name: key, sql: sectionSql(path), type: typeText(f.type), ...k, doc: f.doc ?? '' };
    if (typeof f.type !== 'string' && 'list' in f.type && typeof f.type.list === 'string') {
      def.elem = { type: f.type.list, kind: f.type.list === 'VARCHAR' ? 'string' : 'int' };
    }
    if (typeof f.type !== 'string' && 'struct' in f.type) def.children = f.type.struct.map((c) => c.name);
    out.set(key, def);
    if (typeof f.type !== 'string' && 'struct' in f.type) for (const c of f.type.struct) walk(path, c);
  };
  for (const s of SECTIONS) walk([], s);
  return out;
})();

const SECTION_NAMES = new Set(SECTIONS.map((s) => s.name));

/** `skb_drop` → `skb-drop`: section names are kebab-case, people type either. */
function sectionAlias(seg: string): string {
  if (SECTION_NAMES.has(seg)) return seg;
  const kebab = seg.replace(/_/g, '-');
  return SECTION_NAMES.has(kebab) ? kebab : seg;
}

export const eventScope: Scope = {
  name: 'events',
  resolve(path) {
    if (path.length === 1) {
      const f = EVENT_BY_NAME.get(path[0]!);
      if (f) return f;
    }
    const key = [sectionAlias(path[0]!), ...path.slice(1)].join('.');
    return SECTION_FIELDS.get(key);
  },
  names() {
    return [...EVENT_BY_NAME.keys(), ...SECTION_FIELDS.keys()];
  },
};

////  TRACKS AND UPCALLS  ////

/** A field of a relation we build (tracks, upcalls, aggregate rows): a column of it. */
export function column(name: string, type: string, kind: Kind, doc: string, extra: Extra = {}): FieldDef {
  return { name, sql: quoteIdent(name), type, kind, doc, ...extra };
}

export const TRACK_FIELDS: readonly FieldDef[] = [
  column('track', 'UHUGEINT', 'track', 'tracking id of the series (#hex in Retis text)', { display: 'track', example: 'track = #1baa83c42ba1ffff8e95c3b67c00' }),
  column('first_ts', 'UBIGINT', 'ts', 'timestamp of the first event', { measure: true, example: 'first_ts > 30419169098548' }),
  column('last_ts', 'UBIGINT', 'ts', 'timestamp of the last event', { measure: true }),
  column('duration', 'BIGINT', 'duration', 'last_ts − first_ts', { measure: true, example: 'duration > 5ms' }),
  column('events', 'BIGINT', 'int', 'number of events in the series', { measure: true, example: 'events >= 10' }),
  column('probes', 'VARCHAR[]', 'list', 'probes seen (sorted)', { elem: { type: 'VARCHAR', kind: 'string', domain: DOMAINS.probe }, example: 'probes = "tp:skb:kfree_skb"' }),
  column('devs', 'VARCHAR[]', 'list', 'devices seen (sorted)', { elem: { type: 'VARCHAR', kind: 'string', domain: dataDomain('dev', 'dev_name') }, example: 'devs = "eth0"' }),
  column('netns', 'UINTEGER[]', 'list', 'network namespaces seen (sorted)', { elem: { type: 'UINTEGER', kind: 'int' }, example: 'netns = 4026531840' }),
  column('netns_crossed', 'BOOLEAN', 'bool', 'true when the packet was seen in more than one netns', { example: 'netns_crossed' }),
  column('nat', 'BOOLEAN', 'bool', 'true when NAT was seen: conntrack NAT status bits, reply tuple not mirroring the original, or an OVS ct action with nat', { example: 'nat' }),
  column('saddr', 'VARCHAR', 'addr', 'first source address seen', { example: 'saddr in 10.0.0.0/8' }),
  column('daddr', 'VARCHAR', 'addr', 'first destination address seen'),
  column('proto', 'VARCHAR', 'string', 'first protocol seen', { domain: DOMAINS.proto, example: 'proto = tcp' }),
  column('sport', 'USMALLINT', 'int', 'first source port seen'),
  column('dport', 'USMALLINT', 'int', 'first destination port seen', { example: 'dport = 443' }),
  column('fate', 'VARCHAR', 'string', 'dropped (a drop event), consumed (consume_skb or a socket receive), transmitted (last seen leaving a device), or unknown', { domain: DOMAINS.fate, example: 'fate = dropped' }),
  column('reason', 'VARCHAR', 'string', 'drop reason, when dropped', { domain: DOMAINS.reason, example: 'reason = NO_SOCKET' }),
  column('fate_dev', 'VARCHAR', 'string', 'device the packet was last transmitted on, when transmitted', { domain: dataDomain('dev', 'dev_name'), example: 'fate_dev = "eth0"' }),
];

export const UPCALL_FIELDS: readonly FieldDef[] = [
  column('track', 'UHUGEINT', 'track', 'tracking id of the packet that caused the upcall', { display: 'track' }),
  column('upcall_ts', 'UBIGINT', 'ts', 'time of the upcall (tp:openvswitch:ovs_dp_upcall)', { measure: true }),
  column('cpu', 'UINTEGER', 'int', 'CPU of the upcall (the key Retis pairs upcall events on)', { example: 'cpu = 1' }),
  column('port', 'UINTEGER', 'int', 'Netlink port id of the upcall', { example: 'port = 3366920467' }),
  column('dev', 'VARCHAR', 'string', 'device the packet came in on', { domain: dataDomain('dev', 'dev_name') }),
  column('queue_id', 'UINTEGER', 'int', 'queue id (hash of the packet) of the first enqueue'),
  column('enqueues', 'BIGINT', 'int', 'number of upcall_enqueue events (GSO segments make several)'),
  column('enqueue_ret', 'INTEGER', 'int', 'worst return value of queue_userspace_packet (0 = ok)', { example: 'enqueue_ret != 0' }),
  column('return_ret', 'INTEGER', 'int', 'return value of ovs_dp_upcall'),
  column('error', 'VARCHAR', 'string', 'errno name of a failed enqueue (else of a failed upcall), e.g. EAGAIN when the handler socket is full', { example: 'error = "EAGAIN"' }),
  column('recv_ts', 'UBIGINT', 'ts', 'when ovs-vswitchd received it (usdt recv_upcall)', { measure: true }),
  column('put_ts', 'UBIGINT', 'ts', 'when ovs-vswitchd installed the flow (flow_operation put)', { measure: true }),
  column('exec_ts', 'UBIGINT', 'ts', 'when the packet was executed: ovs-vswitchd\'s flow_operation exec (--ovs-track), else the first action the datapath ran on the packet it sent back', { measure: true }),
  column('latency', 'BIGINT', 'duration', 'exec_ts − upcall_ts', { measure: true, example: 'latency > 1ms' }),
  column('actions', 'VARCHAR', 'string', 'actions executed on the packet sent back, in order: output:2,recirc:0x1,ct(zone=5),drop:0,userspace...', { example: 'actions = "output:2"' }),
  column('outcome', 'VARCHAR', 'string', 'executed; enqueue_failed (see error); failed (ovs_dp_upcall failed, no enqueue seen); lost (enqueued or received, never executed, in a capture that sees executions); put (flow installed, no execution seen); enqueued (what followed is not in the capture); unknown (no enqueue seen)', { domain: DOMAINS.outcome, example: 'outcome = executed' }),
];

const UPCALL_ALIASES: Record<string, string> = { latency_ns: 'latency' };
const TRACK_ALIASES: Record<string, string> = { dev: 'devs', probe: 'probes', drop_reason: 'reason', track_id: 'track', start: 'first_ts', end: 'last_ts' };

export function tableScope(name: 'tracks' | 'upcalls', fields: readonly FieldDef[], aliases: Record<string, string>, events?: Scope): Scope {
  const byName = new Map(fields.map((f) => [f.name, f]));
  return {
    name,
    resolve(path) {
      if (path.length !== 1) return undefined;
      return byName.get(path[0]!) ?? byName.get(aliases[path[0]!] ?? '');
    },
    names() {
      return [...byName.keys()];
    },
    ...(events ? { events } : {}),
  };
}

export const trackScope: Scope = tableScope('tracks', TRACK_FIELDS, TRACK_ALIASES, eventScope);
export const upcallScope: Scope = tableScope('upcalls', UPCALL_FIELDS, UPCALL_ALIASES);

/** Fields of aggregate rows: one per output column, referenced by name. */
export function rowScope(columns: readonly FieldDef[]): Scope {
  const byName = new Map(columns.map((c) => [c.name, c]));
  return {
    name: 'rows',
    resolve(path) {
      return byName.get(path.join('.'));
    },
    names() {
      return [...byName.keys()];
    },
  };
}

export { SECTION_FIELDS };
