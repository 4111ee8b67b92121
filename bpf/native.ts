/**
 * Loading of the N-API addon (bpf/native/retis_bpf.c) and the typed shape of its functions.
 *
 * The addon is optional: only capture needs it. It is loaded lazily on first use, so importing
 * bpf/btf.ts, bpf/probe-spec.ts or bpf/layout.ts works on a machine without libbpf/clang (a
 * laptop, macOS). When it is missing, the error says how to get it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (bpf/..). */
export const ROOT_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD_DIR = join(ROOT_DIR, 'build');
export const NATIVE_HINT = 'apt-get install clang libbpf-dev libelf-dev libpcap-dev bpftool, then npm run build:bpf';

declare const handleBrand: unique symbol;
/** Opaque native handles (type-tagged externals: passing the wrong kind throws a TypeError). */
export type ObjectHandle = { readonly [handleBrand]: 'object' };
export type LinkHandle = { readonly [handleBrand]: 'link' };
export type ReaderHandle = { readonly [handleBrand]: 'reader' };
/** A column decoder (bpf/native/decoder.h): records to column arenas, driven by a program. */
export type DecoderHandle = { readonly [handleBrand]: 'decoder' };

/** Counters of a column decoder (exact once its reader is flushed/closed). */
export interface NativeDecoderStats {
  seq: number;
  events: number;
  ignored: number;
  malformed: number;
  /** Events decoded per probe id. */
  perProbe: Float64Array;
}

export interface NativeProgramInfo {
  name: string;
  section: string;
  type: number;
  expectedAttachType: number;
  autoload: boolean;
  fd: number;
}

export interface NativeMapInfo {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  fd: number;
}

export interface NativeRingOptions {
  /** 1: batches may outlive the callback (freed by GC); 0: detached after the callback. */
  keepBatches?: number;
  batchBytes?: number;
  pollMs?: number;
  flushMs?: number;
  queue?: number;
  /** Column mode: decode on the reader thread; batches are this decoder's arenas (count = rows). */
  decoder?: DecoderHandle;
}

/** Called once per batch on the JS thread. `err` != 0: the reader thread stopped on that errno. */
export type NativeBatchCallback = (batch: ArrayBuffer, count: number, flushSeq: number, err: number) => void;

/** Errors thrown by the addon carry these (see throw_errno in retis_bpf.c). */
export interface NativeErrorFields {
  op?: string;
  errno?: number;
  code?: string;
  libbpfLog?: string;
}

export interface NativeBinding {
  version(): string;
  objectOpen(path: string, opts: { name?: string; btfCustomPath?: string }): ObjectHandle;
  objectClose(h: ObjectHandle): void;
  objectLoad(h: ObjectHandle): void;
  /** bpf_object__load on a worker thread (objects verify in parallel); rejects like objectLoad throws. */
  objectLoadAsync(h: ObjectHandle): Promise<void>;
  /** glibc malloc_trim(0): give freed heap (all threads' arenas) back to the system. */
  mallocTrim(): boolean;
  objectPrograms(h: ObjectHandle): NativeProgramInfo[];
  objectMaps(h: ObjectHandle): NativeMapInfo[];
  objectBtf(h: ObjectHandle): Uint8Array | null;
  programSetAutoload(h: ObjectHandle, prog: string, on: boolean): void;
  programSetAttachTarget(h: ObjectHandle, prog: string, target: string): void;
  programFd(h: ObjectHandle, prog: string): number;
  mapFd(h: ObjectHandle, map: string): number;
  mapSetMaxEntries(h: ObjectHandle, map: string, n: number): void;
  mapReuseFd(h: ObjectHandle, map: string, fd: number): void;
  mapSetInitialValue(h: ObjectHandle, map: string, data: Uint8Array): void;
  mapInitialValue(h: ObjectHandle, map: string): Uint8Array | null;
  attachTracepoint(h: ObjectHandle, prog: string, group: string, name: string, cookie: bigint): LinkHandle;
  attachRawTracepoint(h: ObjectHandle, prog: string, name: string): LinkHandle;
  attachTrace(h: ObjectHandle, prog: string): LinkHandle;
  attachKprobe(h: ObjectHandle, prog: string, fn: string, retprobe: boolean, cookie: bigint): LinkHandle;
  attachUprobe(h: ObjectHandle, prog: string, retprobe: boolean, pid: number, binary: string, fn: string | null, offset: number, cookie: bigint): LinkHandle;
  attachUsdt(h: ObjectHandle, prog: string, pid: number, binary: string, provider: string, name: string, cookie: bigint): LinkHandle;
  linkDestroy(l: LinkHandle): void;
  mapLookup(fd: number, key: Uint8Array, valueSize: number): Uint8Array | null;
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags: number): void;
  mapDelete(fd: number, key: Uint8Array): void;
  numPossibleCpus(): number;
  probeProgType(type: number): number;
  probeMapType(type: number): number;
  probeHelper(progType: number, helper: number): number;
  /** `insns`: raw struct bpf_insn bytes to load instead of "r0 = 0; exit". */
  probeProgLoad(progType: number, expectedAttachType: number, attachBtfId: number, insns?: Uint8Array): { errno: number; log: string };
  ringbufOpen(mapFds: number[], opts: NativeRingOptions, cb: NativeBatchCallback): ReaderHandle;
  ringbufFlush(r: ReaderHandle): number;
  ringbufStats(r: ReaderHandle): { records: bigint; bytes: bigint; batches: bigint; oversize: bigint; buffersAllocated: bigint; poolMisses: bigint };
  ringbufClose(r: ReaderHandle): void;
  // Filters (bpf/native/filters.inc.c).
  /** Register the prog_prepare_load_fn handlers that apply patches (before opening objects). */
  insnPatchInit(): void;
  /** Before load: replace the placeholder region `call magic; nops` with `insns` (same length). */
  programSetPatch(h: ObjectHandle, prog: string, magic: number, insns: Uint8Array): void;
  programTestRun(h: ObjectHandle, prog: string, ctxIn: Uint8Array | null): { retval: number; durationNs: number };
  /** Classic BPF (8-byte struct bpf_insn) of a pcap-filter expression; throws with `.pcapError`. */
  pcapCompile(expr: string, linktype: number, snaplen: number): Uint8Array;
  /** libpcap's bpf_filter() verdict for a packet (0: no match). */
  pcapFilter(cbpf: Uint8Array, packet: Uint8Array, wirelen: number): number;
  /** A NETLINK_NETFILTER socket in the given network namespace (null: ours), joined to `group`; returns the fd. */
  nfnetlinkOpen(netnsPath: string | null, group: number, rcvbufBytes: number): number;
  /** `probes[id]`: the strings DOP_PROBESTR ops can copy, or null for an id no probe has. */
  decoderCreate(program: Uint32Array, probes: readonly (readonly Uint8Array[] | null)[], maxEvents: number, seq: number): DecoderHandle;
  decoderSetLookup(d: DecoderHandle, table: number, key: number, slots: readonly (Uint8Array | null)[]): boolean;
  decoderInitArena(d: DecoderHandle, arena: ArrayBuffer): void;
  decoderDecode(d: DecoderHandle, arena: ArrayBuffer, records: ArrayBuffer, offset: number, end: number | undefined): number;
  decoderStats(d: DecoderHandle): NativeDecoderStats;
}

/** The addon (or a BPF object) is not built / not loadable. `message` says how to fix it. */
export class NativeMissingError extends Error {
  override name = 'NativeMissingError';
  constructor(message: string, readonly reason: string) {
    super(message);
  }
}

export function addonPath(): string {
  return process.env.RETIS_BPF_ADDON ?? join(BUILD_DIR, 'native', 'retis_bpf.node');
}

/** What bpf/build.mjs recorded of its last run (bpf-build.json), if anything. */
function buildStatus(): { ok?: boolean; errors?: string[]; variants?: (BpfVariant & { source: string; object: string })[] } | undefined {
  try {
    return JSON.parse(readFileSync(join(BUILD_DIR, 'bpf-build.json'), 'utf8')) as ReturnType<typeof buildStatus>;
  } catch {
    return undefined; // No status file: never built.
  }
}

/** The last build's error, if bpf/build.mjs recorded one (for a more precise message). */
function lastBuildError(): string | undefined {
  const s = buildStatus();
  return !s?.ok && s?.errors?.length ? s.errors[0]!.split('\n')[0] : undefined;
}

let cached: NativeBinding | undefined;
let cachedError: NativeMissingError | undefined;

function load(): NativeBinding {
  if (process.platform !== 'linux') {
    throw new NativeMissingError(`native capture support needs Linux (this is ${process.platform}); analysis works without it`, 'platform');
  }
  const path = addonPath();
  if (!existsSync(path)) {
    const last = lastBuildError();
    throw new NativeMissingError(
      `native capture support is not built: ${NATIVE_HINT}${last ? ` (last build: ${last})` : ''}`,
      'not-built',
    );
  }
  try {
    return createRequire(import.meta.url)(path) as NativeBinding;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/libbpf\.so/.test(msg)) {
      throw new NativeMissingError(`native capture support cannot load libbpf (${msg.split('\n')[0]}): apt-get install libbpf1, or rebuild with npm run build:bpf`, 'libbpf-missing');
    }
    throw new NativeMissingError(`native capture support failed to load (${msg.split('\n')[0]}): rebuild with npm run build:bpf`, 'load-failed');
  }
}

/** The addon, loaded on first call. Throws {@link NativeMissingError} with the fix. */
export function native(): NativeBinding {
  if (cached) return cached;
  if (cachedError) throw cachedError;
  try {
    cached = load();
    return cached;
  } catch (e) {
    if (e instanceof NativeMissingError) cachedError = e;
    throw e;
  }
}

/** Whether capture can work here, and if not why (never throws). */
export function nativeStatus(): { available: true; libbpf: string } | { available: false; reason: string; message: string } {
  try {
    return { available: true, libbpf: native().version() };
  } catch (e) {
    if (e instanceof NativeMissingError) return { available: false, reason: e.reason, message: e.message };
    return { available: false, reason: 'load-failed', message: String(e) };
  }
}

/**
 * A build of a BPF object with some `.rodata` constants fixed at compile time (`<name>.variants.ts`
 * beside its source: bpf/build.mjs builds `<name>.<variant>.bpf.o` with -DRETIS_FIXED_<constant>).
 */
export interface BpfVariant {
  name: string;
  /** Constant name -> the value compiled in. */
  fixed: Readonly<Record<string, number>>;
}

/**
 * The variants of `<name>.bpf.o` the last build made, with their paths: what bpf-build.json
 * recorded (the values each object was compiled with), not what the sources say now. [] if none.
 */
export function bpfObjectVariants(name: string): (BpfVariant & { object: string })[] {
  return (buildStatus()?.variants ?? [])
    .filter((v) => v.source === name)
    .map((v) => ({ name: v.name, fixed: v.fixed, object: join(BUILD_DIR, 'bpf', v.object) }))
    .filter((v) => existsSync(v.object));
}

/** Path of a built BPF object (`build/bpf/<name>.bpf.o`); throws NativeMissingError if absent. */
export function bpfObjectPath(name: string): string {
  const p = join(BUILD_DIR, 'bpf', `${name}.bpf.o`);
  if (!existsSync(p)) {
    throw new NativeMissingError(`BPF object ${name}.bpf.o is not built: ${NATIVE_HINT}`, 'not-built');
  }
  return p;
}
