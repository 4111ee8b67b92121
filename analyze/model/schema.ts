/**
 * The event model: one columnar schema for every event, whatever its source.
 *
 * Sections are nullable STRUCT columns named after Retis sections (kebab-case, as in
 * Retis event files) and laid out in Retis's own field order, so that serialising a
 * row back to JSON gives the same key order `retis` writes. Flat columns next to them
 * hold what queries hit most; they are derived from the sections at load time.
 *
 * This file is the single definition: the JSON reader's column types, the Parquet
 * files we write, the JSON writer's key order and docs/event-model.md all come from it.
 */

/** Bumped whenever a column is added, removed or changes type. Recorded in every file we write. */
export const SCHEMA_VERSION = 1;

export type Scalar =
  | 'BOOLEAN'
  | 'TINYINT'
  | 'UTINYINT'
  | 'SMALLINT'
  | 'USMALLINT'
  | 'INTEGER'
  | 'UINTEGER'
  | 'BIGINT'
  | 'UBIGINT'
  | 'HUGEINT'
  | 'UHUGEINT'
  | 'VARCHAR'
  | 'BLOB';

export type FieldType = Scalar | { struct: Field[] } | { list: FieldType };
export interface Field {
  name: string;
  type: FieldType;
  doc?: string;
}

const f = (name: string, type: FieldType, doc?: string): Field => (doc ? { name, type, doc } : { name, type });
const struct = (...fields: Field[]): FieldType => ({ struct: fields });
const list = (t: FieldType): FieldType => ({ list: t });

const skbTracking = struct(f('orig_head', 'UBIGINT'), f('timestamp', 'UBIGINT'), f('skb', 'UBIGINT'));
const timespec = struct(f('sec', 'BIGINT'), f('nsec', 'BIGINT'));
const ctTuple = struct(
  f('ip', struct(f('src', 'VARCHAR'), f('dst', 'VARCHAR'), f('version', 'VARCHAR'))),
  f(
    'proto',
    struct(
      f('tcp', struct(f('sport', 'USMALLINT'), f('dport', 'USMALLINT'))),
      f('udp', struct(f('sport', 'USMALLINT'), f('dport', 'USMALLINT'))),
      f('icmp', struct(f('code', 'UTINYINT'), f('type', 'UTINYINT'), f('id', 'USMALLINT'))),
      f('sctp', struct(f('sport', 'USMALLINT'), f('dport', 'USMALLINT'), f('vtag', 'UINTEGER'))),
    ),
  ),
);
const u128 = struct(f('hi', 'UBIGINT'), f('lo', 'UBIGINT'));
const ctConnFields = (): Field[] => [
  f('zone_id', 'USMALLINT'),
  f('zone_dir', 'VARCHAR'),
  f('orig', ctTuple),
  f('reply', ctTuple),
  f('proto_state', 'VARCHAR'),
  f('mark', 'UINTEGER'),
  f('labels', u128),
  f('ct_status', 'UBIGINT'),
];

/**
 * OVS is an internally tagged enum in Retis (`event_type`), its variants' fields
 * flattened. We hold the union of all variants' fields; a field's meaning depends on
 * event_type and the JSON writer emits only the fields present.
 */
const ovs = struct(
  f('event_type', 'VARCHAR'),
  // upcall, upcall_enqueue, upcall_return
  f('cmd', 'UTINYINT'),
  f('port', 'UINTEGER', 'upcall port, or output action port'),
  f('cpu', 'UINTEGER'),
  f('ret', 'INTEGER'),
  f('upcall_ts', 'UBIGINT'),
  f('upcall_cpu', 'UINTEGER'),
  // recv_upcall, flow_operation
  f('type', 'UINTEGER'),
  f('pkt_size', 'UINTEGER'),
  f('key_size', 'UBIGINT'),
  f('op_type', 'VARCHAR'),
  f('queue_id', 'UINTEGER'),
  f('batch_ts', 'UBIGINT'),
  f('batch_idx', 'UTINYINT'),
  // action_execute
  f('action', 'VARCHAR'),
  f('id', 'UINTEGER', 'recirc action id'),
  f('flags', 'UINTEGER', 'ct action flags'),
  f('zone_id', 'USMALLINT', 'ct action zone'),
  f(
    'nat',
    struct(
      f('dir', 'VARCHAR'),
      f('min_addr', 'VARCHAR'),
      f('max_addr', 'VARCHAR'),
      f('min_port', 'USMALLINT'),
      f('max_port', 'USMALLINT'),
    ),
  ),
  f('reason', 'UINTEGER', 'drop action reason'),
  f('recirc_id', 'UINTEGER'),
  // flow_lookup
  f('flow', 'UBIGINT'),
  f('sf_acts', 'UBIGINT'),
  f('ufid', list('UINTEGER')),
  f('n_mask_hit', 'UINTEGER'),
  f('n_cache_hit', 'UINTEGER'),
  f('dpflow', 'VARCHAR'),
  f('ofpflows', list('VARCHAR')),
);

/** Native JSON key order of each OVS variant (Retis struct order), after `event_type`. */
export const OVS_VARIANT_ORDER: Record<string, string[]> = {
  upcall: ['cmd', 'port', 'cpu'],
  upcall_enqueue: ['ret', 'cmd', 'port', 'upcall_ts', 'upcall_cpu', 'queue_id'],
  upcall_return: ['upcall_ts', 'upcall_cpu', 'ret'],
  recv_upcall: ['type', 'pkt_size', 'key_size', 'queue_id', 'batch_ts', 'batch_idx'],
  flow_operation: ['op_type', 'queue_id', 'batch_ts', 'batch_idx'],
  action_execute: ['action', 'port', 'id', 'flags', 'zone_id', 'nat', 'reason', 'recirc_id', 'queue_id'],
  flow_lookup: ['flow', 'sf_acts', 'ufid', 'n_mask_hit', 'n_cache_hit', 'dpflow', 'ofpflows'],
};

/** Retis sections, in Retis's native serialisation order. */
export const SECTIONS: Field[] = [
  f(
    'common',
    struct(
      f('timestamp', 'UBIGINT', 'CLOCK_MONOTONIC ns'),
      f('smp_id', 'UINTEGER'),
      f('task', struct(f('pid', 'INTEGER'), f('tgid', 'INTEGER'), f('comm', 'VARCHAR'))),
    ),
  ),
  f('kernel', struct(f('symbol', 'VARCHAR'), f('probe_type', 'VARCHAR'), f('stack_trace', list('VARCHAR')))),
  f(
    'userspace',
    struct(
      f('probe_type', 'VARCHAR'),
      f('symbol', 'VARCHAR'),
      f('ip', 'UBIGINT'),
      f('path', 'VARCHAR'),
      f('pid', 'INTEGER'),
      f('tid', 'INTEGER'),
    ),
  ),
  f('tracking', struct(f('skb', skbTracking), f('idx', 'UINTEGER')), 'added by sort only'),
  f('skb-tracking', skbTracking),
  f('skb-drop', struct(f('subsys', 'VARCHAR'), f('drop_reason', 'VARCHAR'))),
  f('packet', struct(f('len', 'UINTEGER'), f('capture_len', 'UINTEGER'), f('data', 'BLOB')), 'data: raw bytes from L2'),
  f(
    'skb',
    struct(
      f('vlan_accel', struct(f('proto', 'USMALLINT'), f('pcp', 'UTINYINT'), f('dei', 'BOOLEAN'), f('vid', 'USMALLINT'))),
      f(
        'meta',
        struct(
          f('len', 'UINTEGER'),
          f('data_len', 'UINTEGER'),
          f('hash', 'UINTEGER'),
          f('ip_summed', 'UTINYINT'),
          f('csum', 'UINTEGER'),
          f('csum_level', 'UTINYINT'),
          f('priority', 'UINTEGER'),
        ),
      ),
      f(
        'data_ref',
        struct(
          f('nohdr', 'BOOLEAN'),
          f('cloned', 'BOOLEAN'),
          f('fclone', 'UTINYINT'),
          f('users', 'UTINYINT'),
          f('dataref', 'UTINYINT'),
        ),
      ),
      f(
        'gso',
        struct(f('flags', 'UTINYINT'), f('frags', 'UTINYINT'), f('size', 'UINTEGER'), f('segs', 'UINTEGER'), f('type', 'UINTEGER')),
      ),
    ),
  ),
  f('netns', struct(f('cookie', 'UBIGINT'), f('inum', 'UINTEGER'))),
  f('dev', struct(f('name', 'VARCHAR'), f('ifindex', 'UINTEGER'), f('rx_ifindex', 'UINTEGER'))),
  f('ovs', ovs),
  f(
    'ovs-detrace',
    struct(f('ufid', list('UINTEGER')), f('flow', 'UBIGINT'), f('sf_acts', 'UBIGINT'), f('dpflow', 'VARCHAR'), f('ofpflows', list('VARCHAR'))),
  ),
  f(
    'nft',
    struct(
      f('table_name', 'VARCHAR'),
      f('chain_name', 'VARCHAR'),
      f('verdict', 'VARCHAR'),
      f('verdict_chain_name', 'VARCHAR'),
      f('table_handle', 'BIGINT'),
      f('chain_handle', 'BIGINT'),
      f('rule_handle', 'BIGINT'),
      f('policy', 'BOOLEAN'),
    ),
  ),
  f('ct', struct(f('state', 'VARCHAR'), ...ctConnFields(), f('parent', struct(...ctConnFields())))),
  f(
    'startup',
    struct(
      f('retis_version', 'VARCHAR'),
      f('cmdline', 'VARCHAR'),
      f('clock_monotonic_offset', timespec),
      f('machine', struct(f('kernel_release', 'VARCHAR'), f('kernel_version', 'VARCHAR'), f('hardware_name', 'VARCHAR'))),
      f('split_file', struct(f('id', 'UINTEGER'), f('policy', 'VARCHAR'))),
    ),
  ),
];

export const SECTION_NAMES: string[] = SECTIONS.map((s) => s.name);

/**
 * Flat columns, derived from the sections at load (or capture) time. `doc` is what
 * docs/event-model.md says of each.
 */
export const FLAT_COLUMNS: Field[] = [
  f('eid', 'UBIGINT', 'global arrival order over all inputs of a load (files in name order, then line order)'),
  f('seq', 'UBIGINT', 'arrival order inside its file: the record number, from 1'),
  f('series', 'UBIGINT', 'for events read from a sorted-series file: the line (series) they came in; else NULL'),
  f('src', 'VARCHAR', 'file the event was read from'),
  f('host', 'VARCHAR', 'host that recorded the event (capture.json host, else the capture directory name)'),
  f('ts', 'UBIGINT', 'common.timestamp: CLOCK_MONOTONIC ns of the recording host'),
  f('wall_ns', 'BIGINT', 'ts + the file\'s monotonic→wall clock offset: epoch ns (NULL without a startup event)'),
  f('cpu', 'UINTEGER', 'common.smp_id'),
  f('pid', 'INTEGER', 'common.task.pid'),
  f('tgid', 'INTEGER', 'common.task.tgid'),
  f('comm', 'VARCHAR', 'common.task.comm'),
  f('probe_type', 'VARCHAR', 'kernel.probe_type or userspace.probe_type (raw_tracepoint, kprobe, kretprobe, usdt)'),
  f('symbol', 'VARCHAR', 'kernel.symbol or userspace.symbol'),
  f('probe', 'VARCHAR', 'probe as users type it: tp:GROUP:NAME, kprobe:FN, kretprobe:FN, usdt:SYMBOL'),
  f('track_id', 'UHUGEINT', 'skb-tracking id: timestamp << 64 | orig_head'),
  f('skb_addr', 'UBIGINT', 'skb-tracking.skb: tells clones apart'),
  f('reason', 'VARCHAR', 'skb-drop.drop_reason'),
  f('drop_subsys', 'VARCHAR', 'skb-drop.subsys (NULL for core reasons)'),
  f('ovs_event', 'VARCHAR', 'ovs.event_type: upcall, upcall_enqueue, upcall_return, recv_upcall, flow_operation, action_execute, flow_lookup'),
  f('dev_name', 'VARCHAR', 'dev.name (the section is `dev`)'),
  f('ifindex', 'UINTEGER', 'dev.ifindex'),
  f('netns_inum', 'UINTEGER', 'netns.inum (the section is `netns`)'),
  f('len', 'UINTEGER', 'packet.len: length on the wire'),
  f('ethertype', 'USMALLINT', 'innermost ethertype after VLAN tags, from the raw packet'),
  f('saddr', 'VARCHAR', 'IPv4/IPv6 source address, from the raw packet'),
  f('daddr', 'VARCHAR', 'IPv4/IPv6 destination address'),
  f('ip_proto', 'UTINYINT', 'IP protocol number'),
  f('proto', 'VARCHAR', 'protocol name: tcp, udp, icmp, icmpv6, sctp, arp, ... (else the number)'),
  f('sport', 'USMALLINT', 'TCP/UDP/SCTP source port'),
  f('dport', 'USMALLINT', 'TCP/UDP/SCTP destination port'),
];

/** DuckDB SQL type text of a field type, e.g. `STRUCT("a" UBIGINT, "b" VARCHAR[])`. */
export function sqlType(t: FieldType): string {
  if (typeof t === 'string') return t;
  if ('list' in t) return `${sqlType(t.list)}[]`;
  return `STRUCT(${t.struct.map((x) => `${quoteIdent(x.name)} ${sqlType(x.type)}`).join(', ')})`;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function findSection(name: string): Field | undefined {
  return SECTIONS.find((s) => s.name === name);
}
