/**
 * `retis pcap`: turn Retis events into a pcap-ng file, block for block what Retis 1.7
 * writes (retis/src/process/cli/pcap.rs), so files can be compared byte for byte:
 *
 *   SHB (no options)
 *   Custom copiable block 0xBAD: PEN 70000 + the JSON Schema of events (embedded verbatim)
 *   per probe, at its first packet: IDB, linktype Ethernet, snaplen 0xffff,
 *       if_name `{probe_type}/{symbol}`, if_description `Fake interface for probe …`, if_tsresol 9
 *   per event with a packet: EPB, epoch ns timestamp, options opt_comment (the event as
 *       multi-line text) then custom option 2988 (PEN 70000 + the event's JSON minus `packet`)
 *
 * Interfaces are probes, not network devices: Retis's choice, which lets Wireshark filter
 * by probe with `frame.interface_name`.
 */
import { readFileSync } from 'node:fs';
import { formatEvent } from '../format/event-text.ts';
import { eventToJson, type RetisEvent, type Section } from '../model/event.ts';
import {
  LINKTYPE_ETHERNET,
  OPT_CUSTOM_STR_COPY,
  PcapngWriter,
  VERDICT_LINUX_EBPF_TC,
  type CustomOption,
  type PacketOptions,
  type PcapngOutput,
} from './pcapng-writer.ts';

/** Private Enterprise Number Retis uses (not IANA-registered). */
export const RETIS_PEN = 70000;

export type ProbeType = 'kprobe' | 'kretprobe' | 'raw_tracepoint';

export interface PcapExportOptions {
  /**
   * Keep only events of this probe. `type` may be any spelling Retis's CLI accepts
   * (kprobe|k, kretprobe|kr, raw_tracepoint|tp); see parseProbeFilter for the `-p` string.
   */
  probe?: { type: string; target: string };
  /**
   * Add options Retis does not write (off by default, so files stay byte-identical to
   * Retis's): epb_packetid = skb-tracking.orig_head, and for events with a `skb-drop`
   * section an epb_verdict "Linux eBPF TC" = TC_ACT_SHOT, the closest standard verdict
   * meaning "the kernel dropped this packet".
   */
  extraOptions?: boolean;
  /** Write buffer size, see PcapngWriterOptions. */
  bufferSize?: number;
}

export interface PcapExportResult {
  /** Events matching the probe filter (with or without a packet): Retis's "event(s) were processed". */
  processed: number;
  /** Matching events without a `packet` section: Retis's "event(s) were skipped because of missing raw packet". */
  skipped: number;
  /** EPBs written. */
  packets: number;
  /** IDBs written (distinct probes seen with a packet). */
  interfaces: number;
}

/** Renders an event as Retis's multi-line text (no link layer, monotonic timestamps). */
export type EventFormatter = (ev: RetisEvent) => string;

/** The comment `retis pcap` puts on each packet: `retis print`'s default multi-line text. */
export const retisComment: EventFormatter = (ev) => formatEvent(ev, { multiline: true, utc: false, printLl: false });

/** Where to write: an output for a new PcapngWriter, or a factory. Used only at the first packet. */
export type PcapTarget = PcapngOutput | (() => PcapngWriter);

/** Thrown when a probe filter matched no event (message as Retis's). */
export class ProbeNotFoundError extends Error {
  constructor() {
    super('Probe not found in the events');
    this.name = 'ProbeNotFoundError';
  }
}

const PROBE_TYPES: Record<string, ProbeType> = {
  kprobe: 'kprobe',
  k: 'kprobe',
  kretprobe: 'kretprobe',
  kr: 'kretprobe',
  raw_tracepoint: 'raw_tracepoint',
  tp: 'raw_tracepoint',
};

/**
 * Parse a `-p [TYPE:]TARGET[/OPTIONS]` string as Retis's parse_cli_probe does: options
 * are validated then ignored (only `stack` exists); without ':' the type is kprobe; an
 * unknown TYPE with exactly one ':' in the whole string means the string is a
 * tracepoint name (`skb:kfree_skb`).
 */
export function parseProbeFilter(input: string): { type: ProbeType; target: string } {
  let probe = input;
  const slash = input.indexOf('/');
  if (slash >= 0) {
    probe = input.slice(0, slash);
    const opts = input.slice(slash + 1).split('/');
    if (opts[opts.length - 1] === '') {
      throw new Error("Empty options are not allowed. Check your option list doesn't terminate with '/'.");
    }
    const seen = new Set<string>();
    for (const o of opts) {
      if (o !== 'stack') throw new Error(`'${o}' is an invalid probe option.`);
      if (seen.has(o)) throw new Error(`duplicate options detected in ${input.slice(slash + 1)}.`);
      seen.add(o);
    }
  }
  const colon = probe.indexOf(':');
  if (colon < 0) return { type: 'kprobe', target: probe };
  const typeStr = probe.slice(0, colon);
  const type = PROBE_TYPES[typeStr];
  if (type !== undefined) return { type, target: probe.slice(colon + 1) };
  if (probe.split(':').length === 2) return { type: 'raw_tracepoint', target: probe };
  throw new Error(`Invalid TYPE ${typeStr}. See the help.`);
}

/**
 * The symbol name events carry for a probe target, as Retis's Symbol::from_name_no_inspect
 * computes it: `group:name` stays, `__tracepoint_x` becomes `x`, anything else is a function.
 */
function symbolName(target: string): string {
  if (target.includes(':')) return target;
  return target.startsWith('__tracepoint_') ? target.slice('__tracepoint_'.length) : target;
}

let schemaBytes: Uint8Array | undefined;
/**
 * Retis's event JSON Schema (schemars output, 25,522 bytes), extracted verbatim from
 * block 2 of Retis's test_events_packets.pcap: regenerating it byte-exact is not practical.
 * Read as bytes, not imported as JSON, so no re-serialisation can alter it.
 */
export function retisSchemaJson(): Uint8Array {
  schemaBytes ??= readFileSync(new URL('./retis-schema.json', import.meta.url));
  return schemaBytes;
}

const OMIT_PACKET: ReadonlySet<string> = new Set(['packet']);
/** TC_ACT_SHOT as the 8-byte little-endian value of a Linux eBPF TC verdict. */
const VERDICT_SHOT = new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0]);

const toBig = (v: unknown, what: string): bigint => {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  throw new TypeError(`${what} is not an integer`);
};

/**
 * Incremental exporter: feed events in file order with `push`, then call `finish`.
 * `exportPcap` wraps it for (async) iterables.
 */
export class RetisPcapExporter {
  private writer: PcapngWriter | undefined;
  private readonly ifaces = new Map<string, number>();
  /** clock_monotonic_offset in ns, from the last startup event (Retis uses 0 before any). */
  private tsOffset = 0n;
  private matched = false;
  private readonly filter: { type: ProbeType; symbol: string } | undefined;
  private readonly extra: boolean;
  // Reused for every packet: the exporter is single-threaded and the writer copies synchronously.
  private readonly custom: CustomOption = { code: OPT_CUSTOM_STR_COPY, pen: RETIS_PEN, value: '' };
  private readonly pktOpts: PacketOptions = { comment: '', custom: [this.custom] };
  readonly stats: PcapExportResult = { processed: 0, skipped: 0, packets: 0, interfaces: 0 };

  constructor(
    private readonly target: PcapTarget,
    private readonly format: EventFormatter,
    private readonly options: PcapExportOptions = {},
  ) {
    if (options.probe !== undefined) {
      const type = PROBE_TYPES[options.probe.type];
      if (type === undefined) throw new Error(`Invalid TYPE ${options.probe.type}. See the help.`);
      this.filter = { type, symbol: symbolName(options.probe.target) };
    }
    this.extra = options.extraOptions === true;
  }

  /** Process one event (in file order). */
  push(ev: RetisEvent): void {
    const kernel = ev.kernel;
    if (kernel === undefined) {
      // Only kernel events are exported; startup events (re)set the clock offset.
      const off = ev.startup?.clock_monotonic_offset as Section | undefined;
      if (off !== undefined) {
        this.tsOffset = toBig(off.sec, 'startup.clock_monotonic_offset.sec') * 1_000_000_000n + toBig(off.nsec, 'startup.clock_monotonic_offset.nsec');
      }
      return;
    }
    const probeType = String(kernel.probe_type);
    const symbol = String(kernel.symbol);
    if (this.filter !== undefined && (probeType !== this.filter.type || symbol !== this.filter.symbol)) return;
    this.matched = true;
    this.stats.processed++;

    const packet = ev.packet;
    if (packet === undefined) {
      this.stats.skipped++;
      return;
    }
    const data = packet.data;
    if (!(data instanceof Uint8Array)) throw new TypeError('packet.data must be a Uint8Array');

    const w = this.open();
    const name = `${probeType}/${symbol}`;
    let id = this.ifaces.get(name);
    if (id === undefined) {
      id = w.addInterface({
        linktype: LINKTYPE_ETHERNET,
        snaplen: 0xffff,
        name,
        description: `Fake interface for probe ${name}`,
        tsresol: 9,
      });
      this.ifaces.set(name, id);
      this.stats.interfaces++;
    }

    // Retis: TimeSpec(0, ts as i64) + offset, as i64, then `as u64`.
    const ts = BigInt.asUintN(64, BigInt.asIntN(64, toBig(ev.common.timestamp, 'common.timestamp')) + this.tsOffset);
    const o = this.pktOpts;
    // The comment renders the whole event, packet included; the JSON leaves the packet out
    // since the EPB already carries it.
    o.comment = this.format(ev);
    this.custom.value = eventToJson(ev, OMIT_PACKET);
    if (this.extra) {
      const tracking = ev['skb-tracking'];
      o.packetId = tracking === undefined ? undefined : toBig(tracking.orig_head, 'skb-tracking.orig_head');
      o.verdict = ev['skb-drop'] === undefined ? undefined : { type: VERDICT_LINUX_EBPF_TC, data: VERDICT_SHOT };
    }
    w.writePacket(id, ts, data, Number(packet.len), o);
    this.stats.packets++;
  }

  /**
   * Flush and close the output. Throws ProbeNotFoundError when a probe filter matched
   * nothing (then nothing was written, like Retis). If no event had a packet, no output
   * was ever opened: not even an SHB is written.
   */
  finish(): PcapExportResult {
    this.close();
    if (!this.matched) throw new ProbeNotFoundError();
    return { ...this.stats };
  }

  /** Close the output, if opened, without the matched check (for error paths). */
  close(): void {
    this.writer?.close();
  }

  private open(): PcapngWriter {
    if (this.writer !== undefined) return this.writer;
    const w =
      typeof this.target === 'function'
        ? this.target()
        : new PcapngWriter(this.target, this.options.bufferSize === undefined ? {} : { bufferSize: this.options.bufferSize });
    this.writer = w;
    w.writeCustomBlock(RETIS_PEN, retisSchemaJson(), true);
    return w;
  }
}

function isAsyncIterable<T>(x: Iterable<T> | AsyncIterable<T>): x is AsyncIterable<T> {
  return typeof (x as Partial<AsyncIterable<T>>)[Symbol.asyncIterator] === 'function';
}

/**
 * Export `events` (in file order) as `retis pcap` would. `format` renders an event's
 * comment: pass `retisComment` for Retis's output (injectable for tests and variants).
 * Resolves to the counts; rejects with ProbeNotFoundError if nothing matched the filter.
 * The output is closed (and flushed) whatever happens.
 */
export async function exportPcap(
  events: Iterable<RetisEvent> | AsyncIterable<RetisEvent>,
  target: PcapTarget,
  format: EventFormatter,
  options: PcapExportOptions = {},
): Promise<PcapExportResult> {
  const ex = new RetisPcapExporter(target, format, options);
  try {
    if (isAsyncIterable(events)) {
      for await (const ev of events) ex.push(ev);
    } else {
      // A plain loop for sync sources: `for await` would cost a microtask per event.
      for (const ev of events) ex.push(ev);
    }
  } catch (e) {
    ex.close();
    throw e;
  }
  return ex.finish();
}
