/**
 * Shape checks Retis's own deserializer makes: a present section must hold its required
 * fields (e.g. test_events_packets_invalid_ct.json's ct sections lack `ct_status`, which
 * Retis rejects). Checked in SQL over the loaded rows; the first violation is reported
 * with the file's line number.
 */

/** Section → required field paths (dot-separated inside the section), from Retis's schema. */
const REQUIRED: Record<string, string[]> = {
  common: ['timestamp'],
  kernel: ['symbol', 'probe_type'],
  userspace: ['probe_type', 'symbol', 'ip', 'path', 'pid', 'tid'],
  tracking: ['skb', 'idx'],
  'skb-tracking': ['orig_head', 'timestamp', 'skb'],
  'skb-drop': ['drop_reason'],
  packet: ['len', 'capture_len', 'data'],
  netns: ['inum'],
  dev: ['name', 'ifindex'],
  ovs: ['event_type'],
  'ovs-detrace': ['ufid', 'flow', 'sf_acts', 'dpflow', 'ofpflows'],
  nft: ['table_name', 'chain_name', 'verdict', 'table_handle', 'chain_handle', 'policy'],
  ct: ['state', 'zone_id', 'zone_dir', 'orig', 'reply', 'ct_status', 'orig.ip', 'orig.proto', 'reply.ip', 'reply.proto'],
  startup: ['retis_version', 'clock_monotonic_offset', 'machine'],
};

/** Sub-structs whose fields are all required when the sub-struct is present. */
const REQUIRED_SUB: Record<string, string[]> = {
  'common.task': ['pid', 'tgid', 'comm'],
  'skb.meta': ['len', 'data_len', 'hash', 'ip_summed', 'csum', 'csum_level', 'priority'],
  'skb.data_ref': ['nohdr', 'cloned', 'fclone', 'users', 'dataref'],
  'skb.gso': ['flags', 'frags', 'size', 'segs', 'type'],
  'skb.vlan_accel': ['proto', 'pcp', 'dei', 'vid'],
  'ct.parent': ['zone_id', 'zone_dir', 'orig', 'reply', 'ct_status'],
};

/**
 * How a check reads a value, given its dotted path (section first, e.g. `ct.orig.ip`): SQL
 * that is NULL exactly when the value is absent. Default: the section column's field.
 */
export type PathRef = (path: string) => string;

const columnRef: PathRef = (path) => {
  const [section, ...rest] = path.split('.');
  return [`"${section}"`, ...rest].join('.');
};

/**
 * A SQL expression giving the first problem of a row as text, or NULL when the row is fine.
 * `ref` says where values are read from (default: the section columns).
 */
/**
 * The checks in the order they are made (a row's first failing check is its problem): a
 * present (sub-)struct lacking a field gives `${subject} lacks required field "${field}"`;
 * the last check is that the event has a `common` section. One list for both evaluators:
 * problemExpr (SQL) and the native JSON reader (load/native-json.ts).
 */
export interface Check {
  struct: string;
  fields: string[];
  subject: string;
}
export const CHECKS: Check[] = [
  ...Object.entries(REQUIRED).map(([s, fields]) => ({ struct: s, fields, subject: `section "${s}"` })),
  ...Object.entries(REQUIRED_SUB).map(([sub, fields]) => ({ struct: sub, fields, subject: `"${sub}"` })),
];
export const NO_COMMON = 'event has no "common" section';

export function problemExpr(ref: PathRef = columnRef): string {
  // One WHEN per (sub-)struct, testing all its fields at once, and the field named only
  // for a row that has a problem: most rows have none, and a CASE with one WHEN per
  // field cost ~0.3 s CPU per 200k events at load.
  const cases = CHECKS.map(({ struct, fields, subject }) => {
    const missing = fields.map((f) => `${ref(`${struct}.${f}`)} IS NULL`);
    const which = fields.map((f, i) => `WHEN ${missing[i]} THEN '${subject} lacks required field "${f}"'`).join(' ');
    return `WHEN ${ref(struct)} IS NOT NULL AND (${missing.join(' OR ')}) THEN CASE ${which} END`;
  });
  cases.push(`WHEN common IS NULL THEN '${NO_COMMON}'`);
  return `CASE ${cases.join('\n  ')} END`;
}

/**
 * Dotted paths inside `section` that checks read: required fields, and the sub-structs
 * whose fields are required and those fields.
 */
export function requiredPaths(section: string): string[] {
  const paths = [...(REQUIRED[section] ?? [])];
  for (const [sub, fields] of Object.entries(REQUIRED_SUB)) {
    const [head, ...rest] = sub.split('.');
    if (head !== section) continue;
    if (!paths.includes(rest.join('.'))) paths.push(rest.join('.'));
    for (const f of fields) paths.push([...rest, f].join('.'));
  }
  return paths;
}
