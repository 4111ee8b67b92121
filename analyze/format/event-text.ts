/**
 * `retis print` text rendering of events and sorted series, byte-identical to Retis
 * (retis-events/src/events.rs `Event::event_fmt`, retis/src/process/display.rs).
 *
 * Layout of one event: a first line with common, kernel|userspace, tracking|skb-tracking
 * and skb-drop; then the stack trace (indented 4), then at indent 2: packet, netns and
 * dev (sharing a line), skb, ovs, ovs-detrace, nft, ct, startup. Multi-line output puts
 * each of those on its own line; single-line output separates them with a space.
 */
import type { RetisEvent, Section } from '../model/event.ts';
import { formatPacket } from './packet.ts';
import {
  commonText,
  ctText,
  devText,
  kernelText,
  netnsText,
  nftText,
  skbCanFormat,
  skbDropText,
  skbText,
  skbTrackingText,
  startupText,
  trackingText,
  userText,
  writeOvs,
  writeOvsDetrace,
  writeStack,
  type CommonView,
  type CtView,
  type DevView,
  type KernelView,
  type NetnsView,
  type NftView,
  type OvsDetraceView,
  type OvsView,
  type SkbDropView,
  type SkbTrackingView,
  type SkbView,
  type StartupView,
  type TrackingView,
  type UserView,
} from './sections.ts';
import { TextWriter, WriterConf } from './writer.ts';

export interface FormatOptions {
  /** `--format multi-line` (Retis's default) vs `single-line`. */
  multiline: boolean;
  /** `--utc`: print wall-clock dates instead of raw monotonic timestamps. */
  utc: boolean;
  /** `-e`: print link-layer information (packet Ethernet/VLAN, skb vlan_accel). */
  printLl: boolean;
  /**
   * CLOCK_MONOTONIC → wall-clock offset in ns, from the file's startup event. Needed for
   * `utc`; without it timestamps print raw, as Retis does.
   */
  monotonicOffsetNs?: bigint;
}

/** Sections are typed views over the generic event value (see sections.ts). */
function view<T>(s: Section | undefined): T | undefined {
  return s as unknown as T | undefined;
}

/** The monotonic offset (ns) a startup event carries, if any. */
export function startupOffsetNs(ev: RetisEvent): bigint | undefined {
  const off = view<StartupView>(ev.startup)?.clock_monotonic_offset;
  if (off === undefined) return undefined;
  return BigInt(off.sec) * 1_000_000_000n + BigInt(off.nsec);
}

/* ---------------------------------------------------------------- time */

/** Zero-padded decimal, for date fields. */
function pad(v: number, n: number): string {
  return String(v).padStart(n, '0');
}

/**
 * `%Y-%m-%d %H:%M:%S.%6f` (chrono, UTC) of an epoch time in ns; the fraction is
 * truncated to microseconds. Civil date from days since the epoch (H. Hinnant's
 * algorithm), avoiding Date objects per event.
 */
export function formatUtc(epochNs: bigint): string {
  let sec = epochNs / 1_000_000_000n;
  let nsec = epochNs % 1_000_000_000n;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    sec -= 1n;
  }
  const s = Number(sec);
  const days = Math.floor(s / 86400);
  const sod = s - days * 86400;

  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);

  const hh = Math.floor(sod / 3600);
  const mm = Math.floor((sod % 3600) / 60);
  const ss = sod % 60;
  const us = Number(nsec / 1000n);
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)} ${pad(hh, 2)}:${pad(mm, 2)}:${pad(ss, 2)}.${pad(us, 6)}`;
}

function timeText(ts: bigint | number, opts: FormatOptions, offset: bigint | undefined): string {
  if (!opts.utc || offset === undefined) return String(ts);
  return formatUtc(BigInt(ts) + offset);
}

/* ---------------------------------------------------------------- one event */

/** Render one event into a writer whose conf sets the base indentation. */
function renderEvent(ev: RetisEvent, opts: FormatOptions, conf: WriterConf, offset: bigint | undefined): string {
  const w = new TextWriter(conf);
  const multiline = opts.multiline;

  // First line.
  const common = ev.common as unknown as CommonView;
  w.write(commonText(common, timeText(common.timestamp, opts, offset)));
  const kernel = view<KernelView>(ev.kernel);
  if (kernel !== undefined) w.write(' ' + kernelText(kernel));
  else if (ev.userspace !== undefined) w.write(' ' + userText(view<UserView>(ev.userspace)!));
  if (ev.tracking !== undefined) w.write(' ' + trackingText(view<TrackingView>(ev.tracking)!));
  else if (ev['skb-tracking'] !== undefined) w.write(' ' + skbTrackingText(view<SkbTrackingView>(ev['skb-tracking'])!));
  if (ev['skb-drop'] !== undefined) w.write(' ' + skbDropText(view<SkbDropView>(ev['skb-drop'])!));

  const sep = multiline ? '\n' : ' ';

  const stack = kernel?.stack_trace;
  if (stack !== undefined) {
    conf.incLevel(4);
    w.write(sep);
    writeStack(w, stack, multiline);
    conf.resetLevel();
  }

  conf.incLevel(2);

  // The packet comes first, it is Retis's main focus.
  const packet = ev.packet;
  if (packet !== undefined && packet.data instanceof Uint8Array) {
    w.write(sep + formatPacket(packet.data, opts));
  }

  // netns and dev are related: they share a line.
  const netns = view<NetnsView>(ev.netns);
  if (netns !== undefined) w.write(sep + netnsText(netns));
  const dev = view<DevView>(ev.dev);
  if (dev !== undefined) w.write((netns !== undefined ? ' ' : sep) + devText(dev));

  const skb = view<SkbView>(ev.skb);
  if (skb !== undefined && skbCanFormat(skb, opts.printLl)) w.write(sep + skbText(skb, opts.printLl));

  const ovs = view<OvsView>(ev.ovs);
  if (ovs !== undefined) {
    w.write(sep);
    writeOvs(w, ovs, multiline);
  }
  const detrace = view<OvsDetraceView>(ev['ovs-detrace']);
  if (detrace !== undefined) {
    w.write(sep);
    writeOvsDetrace(w, detrace, multiline);
  }
  const nft = view<NftView>(ev.nft);
  if (nft !== undefined) w.write(sep + nftText(nft));
  const ct = view<CtView>(ev.ct);
  if (ct !== undefined) w.write(sep + ctText(ct, multiline));
  const startup = view<StartupView>(ev.startup);
  if (startup !== undefined) w.write(sep + startupText(startup, multiline));

  conf.resetLevel();
  return w.finish();
}

/**
 * Text of one event, without a trailing newline (`retis print` adds "\n", plus a blank
 * line in multi-line mode). A startup event's own offset is used for its timestamp,
 * as `retis print` picks it up before printing the event.
 */
export function formatEvent(ev: RetisEvent, opts: FormatOptions): string {
  const offset = startupOffsetNs(ev) ?? opts.monotonicOffsetNs;
  return renderEvent(ev, opts, new WriterConf(), offset);
}

/**
 * Text of one sorted series: the first event as formatEvent does, each following one
 * indented 4 with `↳` marking its first line (continuation lines at 6). Events are
 * joined by "\n", without a trailing newline: `retis sort`/`print` then write "\n\n" (a
 * blank line after every series, in single-line format too; EventPrinter.series does
 * it). Startup events in the series update the offset for the events after them.
 */
export function formatSeries(events: RetisEvent[], opts: FormatOptions): string {
  let offset = opts.monotonicOffsetNs;
  let out = '';
  for (let i = 0; i < events.length; i++) {
    const ev = events[i];
    offset = startupOffsetNs(ev) ?? offset;
    const conf = i === 0 ? new WriterConf() : new WriterConf(4, '↳');
    out += (i === 0 ? '' : '\n') + renderEvent(ev, opts, conf, offset);
  }
  return out;
}

/**
 * Stateful printer giving the exact bytes `retis print` / `retis sort` write: it keeps
 * the monotonic offset of the last startup event seen across calls, and appends the
 * separators Retis puts after each event or series.
 */
export class EventPrinter {
  private offset: bigint | undefined;

  constructor(private readonly opts: FormatOptions) {
    this.offset = opts.monotonicOffsetNs;
  }

  /** One event from an event file: its text, "\n", and a blank line in multi-line mode. */
  event(ev: RetisEvent): string {
    this.offset = startupOffsetNs(ev) ?? this.offset;
    const text = renderEvent(ev, this.opts, new WriterConf(), this.offset);
    return text + (this.opts.multiline ? '\n\n' : '\n');
  }

  /** One series from a sorted file: each event followed by "\n", then a blank line. */
  series(events: RetisEvent[]): string {
    if (events.length === 0) return '';
    const text = formatSeries(events, { ...this.opts, monotonicOffsetNs: this.offset });
    for (const ev of events) this.offset = startupOffsetNs(ev) ?? this.offset;
    return text + '\n\n';
  }
}
