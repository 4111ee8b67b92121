/**
 * A Retis event as a JavaScript value: the object Retis writes as one JSON line, with
 * - u64/i64 and wider integers as `bigint` (addresses and tracking ids exceed 2^53),
 *   narrower integers as `number`;
 * - `packet.data` as raw bytes (`Uint8Array`), base64 only in JSON text;
 * - absent optional fields absent (never `null`), as Retis's skip_serializing_none does.
 *
 * Events come out of DuckDB rows (`eventFromRow`) and go to JSON text (`eventToJson`).
 */
import { jsonKey, jsonText } from './json.ts';
import { OVS_VARIANT_ORDER, SECTION_NAMES } from './schema.ts';

export type JsonScalar = string | number | bigint | boolean;
export type EventValue = JsonScalar | Uint8Array | EventValue[] | { [key: string]: EventValue };
export type Section = { [key: string]: EventValue };
export interface RetisEvent {
  common: Section & { timestamp: bigint };
  [section: string]: Section | undefined;
}

/** Drop nulls recursively; an all-null struct stays as `{}` (a present, empty section). */
function stripNulls(v: unknown): EventValue | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'object') return v as JsonScalar;
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map((x) => stripNulls(x) ?? null) as EventValue[];
  const out: { [k: string]: EventValue } = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const s = stripNulls(x);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

/** Build a RetisEvent from a row object whose section columns are named as in SECTIONS. */
export function eventFromRow(row: Record<string, unknown>): RetisEvent {
  const ev: Record<string, Section> = {};
  for (const name of SECTION_NAMES) {
    const s = stripNulls(row[name]);
    if (s !== undefined) ev[name] = s as Section;
  }
  return ev as unknown as RetisEvent;
}

function orderOvs(s: Section): Section {
  const order = OVS_VARIANT_ORDER[String(s.event_type)];
  if (!order) return s;
  const out: Section = { event_type: s.event_type };
  for (const k of order) if (k in s) out[k] = s[k];
  for (const k of Object.keys(s)) if (!(k in out)) out[k] = s[k];
  return out;
}

/**
 * Serialise an event as Retis does: sections in native order, OVS variant fields in
 * their struct order, integers exact (bigint printed bare), packet data base64.
 */
export function eventToJson(ev: RetisEvent, omit?: ReadonlySet<string>): string {
  let out = '{';
  let first = true;
  for (const name of SECTION_NAMES) {
    const s = ev[name];
    if (s === undefined || omit?.has(name)) continue;
    out += (first ? '' : ',') + jsonKey(name) + jsonText(name === 'ovs' ? orderOvs(s) : s);
    first = false;
  }
  return `${out}}`;
}

/**
 * Put an event back into the layout of the Retis version its file was written with:
 * the inverse of the compat fixups the reader applied (spec §1.1), so that JSON we write
 * for an older file is what Retis of that version writes (e.g. `sort` of a v1.6 file).
 * `compat` is the file's level: 0 (1.5), 1 (1.6), 2 (latest: unchanged).
 */
export function downgradeEvent(ev: RetisEvent, compat: number): RetisEvent {
  if (compat >= 2) return ev;
  const out: Record<string, Section | undefined> = { ...ev };
  // V2 list, reversed: Move ct/tcp_state ← proto_state; Remove startup cmdline, machine.
  const ctBack = (ct: Section): Section => {
    const { proto_state, parent, ...rest } = ct;
    const back: Section = { ...rest };
    if (proto_state !== undefined) back.tcp_state = proto_state;
    if (parent !== undefined) back.parent = ctBack(parent as Section);
    return back;
  };
  if (out.ct) out.ct = ctBack(out.ct);
  if (out.startup) {
    const { cmdline: _c, machine: _m, ...rest } = out.startup;
    out.startup = rest;
  }
  if (compat < 1) {
    // V1 list, reversed: packet/data → skb/packet/packet, dev → skb/dev, netns → skb/ns (inum → netns).
    const skb: Section = { ...(out.skb ?? {}) };
    if (out.packet) {
      const { data, ...p } = out.packet;
      skb.packet = { ...p, packet: data as EventValue };
      delete out.packet;
    }
    if (out.dev) {
      skb.dev = out.dev;
      delete out.dev;
    }
    if (out.netns) {
      const { inum, ...n } = out.netns;
      skb.ns = { ...n, netns: inum as EventValue };
      delete out.netns;
    }
    if (out.ct && out.ct.ct_status !== undefined) delete out.ct.ct_status;
    if (Object.keys(skb).length > 0 || out.skb) out.skb = skb;
  }
  return out as RetisEvent;
}

/** A series (one packet's events, as `retis sort` writes a line). */
export function seriesToJson(events: RetisEvent[]): string {
  return `[${events.map((e) => eventToJson(e)).join(',')}]`;
}

/** Tracking id (u128) of an skb-tracking section: timestamp << 64 | orig_head. */
export function trackingId(t: Section): bigint {
  return ((t.timestamp as bigint) << 64n) | (t.orig_head as bigint);
}
