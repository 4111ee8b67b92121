/**
 * capture.json: what a capture directory holds and how it was made. Written when the probes are
 * attached (status "running"), refreshed every few seconds with the counts, and rewritten at the
 * end ("complete" or "failed"), always atomically (temporary file + rename) and mode 0600. A
 * capture killed with -9 keeps the last refresh.
 *
 * retis-query reads `host.name` (the host column) and `counts.lost` ({probe: {cpu: n}}, the loss
 * lines of `stats`); the rest is for people.
 */
import fs from 'node:fs';
import path from 'node:path';

export const CAPTURE_JSON = 'capture.json';

export interface ProbeRecord {
  id: number;
  /** As attached (`raw_tp:net:netif_rx`). */
  name: string;
  /** As retis-query names it (`tp:net:netif_rx`): the key of counts.lost. */
  probe: string;
  requested: string;
  role: string;
  attach: string;
  why: string;
  symbol: string;
  probe_type: string;
  /** The BPF object it runs: capture.bpf.o, or a variant with its constants compiled in (capture.<variant>.bpf.o). */
  object: string;
  events: number;
  attempted: number;
  lost: number;
}

export interface CaptureMetadata {
  format: 'retis-ts capture';
  format_version: 1;
  status: 'running' | 'complete' | 'failed';
  host: { name: string; kernel_release: string; kernel_version: string; machine: string };
  versions: { retis_ts: string; retis_version: string; event_schema: number; node: string; libbpf: string };
  cmdline: string;
  start: { wall: string; monotonic_ns: string };
  stop: { wall: string; monotonic_ns: string; reason: string } | null;
  /** CLOCK_REALTIME - CLOCK_MONOTONIC at start (also in the startup event). */
  clock_monotonic_offset: { sec: number; nsec: number };
  attach_ms: number;
  collectors: string[];
  collectors_skipped: { name: string; reason: string }[];
  probes: ProbeRecord[];
  probes_not_attached: { requested: string; reason: string }[];
  filters: { packet: string | null; meta: string | null };
  options: { snaplen: number; skb_sections: string[]; stack: boolean; ring_bytes: number; batch_events: number; batch_ms: number; max_events: number | null; duration_s: number | null; cmd: string | null };
  files: { events: string; parquet: string | null; pcapng: string | null; bytes: Record<string, number> };
  counts: {
    /** Events written (startup event excluded). */
    events: number;
    /** Per probe (as retis-query's `probe` column names it), per CPU: events the ring had no room for. */
    lost: Record<string, Record<string, number>>;
    lost_total: number;
    /** Events the probes tried to emit: events + lost + ignored when nothing is unaccounted. */
    attempted: number;
    /** Received after --max-events was reached (not written). */
    ignored: number;
    malformed: number;
    arrow_batches: number;
  };
  /** What the capture cost: peak RSS and CPU of the process, ring reader counters. */
  resources: {
    peak_rss_mib: number;
    cpu_user_s: number;
    cpu_system_s: number;
    reader: { records: number; bytes: number; batches: number; oversize: number; pool_misses: number } | null;
  } | null;
  notes: string[];
  /** nft collector: which path (kprobe or netlink) and why, helper table, counts. */
  nft?: Record<string, unknown>;
}

/** Write capture.json atomically, mode 0600. */
export function writeCaptureJson(dir: string, meta: CaptureMetadata): void {
  const final = path.join(dir, CAPTURE_JSON);
  const tmp = path.join(dir, `.${CAPTURE_JSON}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, `${JSON.stringify(meta, null, 2)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, final);
}
