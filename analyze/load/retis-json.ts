/**
 * Reader for Retis JSON event files: `retis collect -o` output (one event object per
 * line, a startup event first) and `retis sort -o` output (one series array per line),
 * of every version Retis itself reads (1.5 → V0, 1.6 → V1, 1.7+ → V2).
 *
 * DuckDB's read_json parses the file with the model's types (u64 stays exact: UBIGINT),
 * Retis's compat fixups are applied in the SELECT, and the flat columns are derived by
 * the shared SQL in model/derive.ts. JavaScript only sniffs the first line (kind and
 * version) and, when DuckDB rejects the file, scans it to name the offending line.
 */
import fs from 'node:fs';
import { modelSelect, sqlString as sqlLiteral } from '../model/derive.ts';
import { isLazy, lazyColumn } from '../model/lazy.ts';
import { SECTIONS, sqlType, quoteIdent, type Field, type FieldType } from '../model/schema.ts';
import { InputError } from './errors.ts';
import { nativeSectionsSelect } from './native-json.ts';
import { LAZY_COMPUTED } from './table.ts';

export type RetisFileKind = 'events' | 'series';

export interface RetisFileInfo {
  path: string;
  kind: RetisFileKind;
  /** Retis version string as written (e.g. "v1.6.0"). */
  version: string;
  /** Compat level: 0 (1.5.x), 1 (1.6.x), 2 (1.7 and later). */
  compat: 0 | 1 | 2;
  /** Monotonic → wall clock offset in ns, from the startup event. */
  offsetNs: bigint | null;
}

export const LATEST_COMPAT = 2;

/** Parse "v1.6.0-rc1+git" the way Retis does: strip the `v`, cut at `-`/`+`, semver. */
export function compatLevel(version: string, path: string): 0 | 1 | 2 {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version.replace(/^v/, '').split(/[-+]/)[0] ?? '');
  if (!m) throw new InputError(path, 1, `cannot parse Retis version "${version}" of the startup event`);
  const [maj, min] = [Number(m[1]), Number(m[2])];
  if (maj > 1) {
    throw new InputError(path, 1, `written by Retis ${version}, a format newer than this reader knows (Retis 1.5 to 1.x)`);
  }
  if (maj === 1 && min >= 7) return 2;
  if (maj === 1 && min === 6) return 1;
  if (maj === 1 && min === 5) return 0;
  throw new InputError(path, 1, `Retis ${version} files are older than any version Retis reads (1.5.0)`);
}

function readFirstLine(path: string): string | null {
  const fd = fs.openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(1 << 16);
    let pos = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      const nl = buf.subarray(0, n).indexOf(10);
      if (nl >= 0) {
        chunks.push(Buffer.from(buf.subarray(0, nl)));
        break;
      }
      chunks.push(Buffer.from(buf.subarray(0, n)));
      pos += n;
    }
    if (chunks.length === 0) return null;
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Look at the first line: events or series, which version, which clock offset. */
export function sniffRetisFile(path: string): RetisFileInfo {
  const line = readFirstLine(path);
  if (line === null || line.trim() === '') throw new InputError(path, null, 'File is empty');
  let first: Json;
  try {
    first = JSON.parse(line) as Json;
  } catch (e) {
    throw new InputError(path, 1, `not a JSON line (${(e as Error).message})`);
  }
  let kind: RetisFileKind;
  let startup: Json | undefined;
  if (Array.isArray(first)) {
    kind = 'series';
    // Retis takes the version from the last element of the first series.
    const last = first[first.length - 1];
    startup = last && typeof last === 'object' && !Array.isArray(last) ? last.startup : undefined;
  } else if (first && typeof first === 'object') {
    kind = 'events';
    startup = first.startup;
  } else {
    throw new InputError(path, 1, 'expected a JSON object (an event) or array (a series)');
  }
  if (!startup || typeof startup !== 'object' || Array.isArray(startup) || typeof startup.retis_version !== 'string') {
    throw new InputError(path, 1, 'Cannot find version in startup event');
  }
  const version = startup.retis_version;
  const off = startup.clock_monotonic_offset;
  let offsetNs: bigint | null = null;
  if (off && typeof off === 'object' && !Array.isArray(off) && typeof off.sec === 'number' && typeof off.nsec === 'number') {
    offsetNs = BigInt(off.sec) * 1_000_000_000n + BigInt(off.nsec);
  }
  return { path, kind, version, compat: compatLevel(version, path), offsetNs };
}

// ---------------------------------------------------------------------------------------
// Column types used to read the JSON: the model, plus what older versions carry.

const field = (name: string, type: FieldType): Field => ({ name, type });

function withFields(t: FieldType, extra: Field[], replace: Record<string, FieldType> = {}): FieldType {
  if (typeof t === 'string' || !('struct' in t)) throw new Error('withFields: not a struct');
  return { struct: [...t.struct.map((x) => (x.name in replace ? field(x.name, replace[x.name]!) : x)), ...extra] };
}

const sectionType = (name: string): FieldType => SECTIONS.find((s) => s.name === name)!.type;
const ctType = sectionType('ct');
const ctParent = (ctType as { struct: Field[] }).struct.find((x) => x.name === 'parent')!.type;

/**
 * Types to read the JSON with: packet data is base64 text in JSON; V0/V1 keep older keys;
 * with `lazy`, the lazy sections are kept as their JSON text (model/lazy.ts).
 */
function readTypes(lazy = false): Field[] {
  const legacyPacket: FieldType = {
    struct: [field('len', 'UINTEGER'), field('capture_len', 'UINTEGER'), field('packet', 'VARCHAR'), field('raw', 'VARCHAR')],
  };
  const legacyNs: FieldType = { struct: [field('cookie', 'UBIGINT'), field('netns', 'UINTEGER'), field('inum', 'UINTEGER')] };
  const types: Record<string, FieldType> = {};
  for (const s of SECTIONS) types[s.name] = s.type;
  types.packet = withFields(sectionType('packet'), [], { data: 'VARCHAR' });
  types.skb = withFields(sectionType('skb'), [field('packet', legacyPacket), field('ns', legacyNs), field('dev', sectionType('dev'))]);
  types.ct = withFields(ctType, [field('tcp_state', 'VARCHAR')], { parent: withFields(ctParent, [field('tcp_state', 'VARCHAR')]) });
  // A VARCHAR column receives a JSON object's text as written.
  if (lazy) for (const s of SECTIONS) if (isLazy(s.name)) types[s.name] = 'VARCHAR';
  return Object.entries(types).map(([name, type]) => field(name, type));
}

export { sqlLiteral };

/**
 * Section expressions over the raw read relation, applying Retis's compat fixups for
 * files older than the latest format (spec §1.1), then cast to the model's types.
 */
function sectionExprs(compat: number, lazy = false): string[] {
  const model = (name: string) => sqlType(sectionType(name));
  const v0 = compat < 1;
  const v1 = compat < 2;
  const b64 = (x: string) => `from_base64(${x})`;
  const packetNew = `CASE WHEN packet IS NULL THEN NULL ELSE {'len': packet.len, 'capture_len': packet.capture_len, 'data': ${b64('packet.data')}} END`;
  // V0: skb/packet/packet → skb/packet/raw → packet/raw → packet/data.
  const packetOld = `CASE WHEN skb.packet IS NULL THEN NULL ELSE {'len': skb.packet.len, 'capture_len': skb.packet.capture_len, 'data': ${b64('coalesce(skb.packet.packet, skb.packet.raw)')}} END`;
  const netnsOld = `CASE WHEN skb.ns IS NULL THEN NULL ELSE {'cookie': skb.ns.cookie, 'inum': coalesce(skb.ns.netns, skb.ns.inum)} END`;
  const ctFix = (x: string, withStatus: boolean) =>
    `struct_update(${x}, proto_state := coalesce(${x}.tcp_state, ${x}.proto_state)${withStatus ? `, ct_status := coalesce(${x}.ct_status, 0)` : ''})`;
  const ct = v1
    ? `CASE WHEN ct IS NULL THEN NULL ELSE struct_update(${ctFix('ct', v0)}, parent := CASE WHEN ct.parent IS NULL THEN NULL ELSE ${ctFix('ct.parent', v0)} END) END`
    : 'ct';
  const startup = v1
    ? `CASE WHEN startup IS NULL THEN NULL ELSE struct_update(startup,
         cmdline := coalesce(startup.cmdline, 'unknown'),
         machine := coalesce(startup.machine, {'kernel_release': 'unknown', 'kernel_version': 'unknown', 'hardware_name': 'unknown'})) END`
    : 'startup';
  const expr: Record<string, string> = {
    packet: v0 ? `coalesce(${packetNew}, ${packetOld})` : packetNew,
    netns: v0 ? `coalesce(netns, ${netnsOld})` : 'netns',
    dev: v0 ? 'coalesce(dev, skb.dev)' : 'dev',
    ct,
    startup,
  };
  return SECTIONS.map((s) =>
    lazy && isLazy(s.name)
      ? `${quoteIdent(s.name)}::VARCHAR AS ${lazyColumn(s.name)}`
      : `(${expr[s.name] ?? quoteIdent(s.name)})::${model(s.name)} AS ${quoteIdent(s.name)}`,
  );
}

/**
 * The SELECT that reads one Retis file into model rows (sections + flat columns +
 * `src`, `seq`, `series`, `host`, `wall_ns`; `eid` is added by the loader).
 */
export function retisFileSelect(info: RetisFileInfo, host: string | null, ignoreErrors = false, native = false, nativePacket = native): string {
  const lazy = readsLazily(info);
  // The native reader yields the same relation as read_json's (load/native-json.ts).
  return modelSelect(
    native ? nativeSectionsSelect(info.path) : retisSectionsSelect(info, ignoreErrors, lazy),
    { src: info.path, host, offsetNs: info.offsetNs },
    // With lazy sections `ovs` is text: its event type as the view derives it (events_lazy
    // does not store it, load/index.ts lazyRows leaves it out).
    { ...(lazy ? { ovsEvent: LAZY_COMPUTED.ovs_event } : {}), nativePacket },
  );
}

/**
 * Event files of the latest format keep the lazy sections as JSON text (model/lazy.ts).
 * Older formats need them typed for Retis's compat fixups, and series files are small.
 */
export function readsLazily(info: RetisFileInfo): boolean {
  return info.kind === 'events' && info.compat === LATEST_COMPAT;
}

/**
 * Largest JSON line read, in bytes: an event, a series (a series line holds a whole series).
 * DuckDB reads a file in buffers of twice this size, one buffer per thread at a time, and
 * each buffer becomes one batch of the insert: a batch smaller than a row group (122,880
 * rows) is merged into others after the fact, copying it again. 128 MB buffers hold more
 * than a row group of ~1 kB events, and a 1 GB file still spreads over both threads
 * (200k events: 20% of the thread time in the insert instead of 23-25% with DuckDB's
 * default 16 MB; the 256 MB we used before made one buffer of most files: one thread).
 */
const EVENT_MAX_OBJECT = 64 * 1024 * 1024;
const SERIES_MAX_OBJECT = 256 * 1024 * 1024;

/**
 * The file's rows as `_seq`, `_series` and the model's section columns (fixups applied);
 * with `lazy`, the lazy sections as their JSON text columns instead. For events files
 * `_seq` is NULL: the loader numbers the rows once they are stored, in file order.
 */
export function retisSectionsSelect(info: RetisFileInfo, ignoreErrors = false, lazy = false): string {
  const path = sqlLiteral(info.path);
  const types = readTypes(lazy);
  const cols = `{${types.map((t) => `${sqlLiteral(t.name)}: ${sqlLiteral(sqlType(t.type))}`).join(', ')}}`;
  // ignore_errors keeps a row (all NULL) for each damaged line, so record numbers stay
  // line numbers and the validation step can name and drop those rows.
  const maxObject = info.kind === 'events' ? EVENT_MAX_OBJECT : SERIES_MAX_OBJECT;
  const opts = `format = 'newline_delimited', maximum_object_size = ${maxObject}${ignoreErrors ? ', ignore_errors = true' : ''}`;
  let raw: string;
  if (info.kind === 'events') {
    // No WITH ORDINALITY here: it is a streaming window, which runs the whole pipeline
    // (parse, derivation, insert) on one thread. `_seq` is left NULL and the loader
    // numbers the rows after its order-preserving insert (load/index.ts numberRows).
    raw = `SELECT NULL::UBIGINT AS _seq, NULL::UBIGINT AS _series, * FROM read_json(${path}, ${opts}, columns = ${cols})`;
  } else {
    // One series per line: unnest the array keeping (line, position) as arrival order.
    const arr = `read_json(${path}, ${opts}, records = false, columns = {'s': ${sqlLiteral(sqlType({ list: { struct: types } }))}}) WITH ORDINALITY`;
    raw = `SELECT row_number() OVER (ORDER BY _line, _pos) AS _seq, _line AS _series, unnest(_ev) FROM (
             SELECT ordinality AS _line, generate_subscripts(s, 1) AS _pos, unnest(s) AS _ev FROM ${arr})`;
  }
  return `SELECT _seq, _series, ${sectionExprs(info.compat, lazy).join(', ')} FROM (${raw})`;
}
