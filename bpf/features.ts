/**
 * Kernel feature probing: which attach types work on *this* kernel, and why not when they don't.
 *
 * Config flags alone are not enough (a sandbox may refuse fentry with EPERM even as root while
 * tp_btf of the same program type loads), so where it matters we load the smallest program of
 * that type against a real target and keep the errno. Every result carries a reason, printed by
 * tests and `retis-capture` when it skips or refuses a probe: never a silent skip.
 */
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { Btf } from './btf.ts';
import { errnoName } from './errors.ts';
import { ALU, Asm, SZ } from './filters/ebpf.ts';
import { native, nativeStatus } from './native.ts';

export interface Feature {
  supported: boolean;
  /** Why (not): measured errno, missing file, config hint. */
  reason: string;
}

export interface KernelFeatures {
  kernelRelease: string;
  btf: Feature;
  ringbuf: Feature;
  /** Classic tracepoints (perf event). Attaching by name also needs tracefs (see env.ts). */
  tracepoint: Feature;
  rawTracepoint: Feature;
  tpBtf: Feature;
  kprobe: Feature;
  kretprobe: Feature;
  fentry: Feature;
  fexit: Feature;
  uprobe: Feature;
  uretprobe: Feature;
  usdt: Feature;
  /** bpf_get_attach_cookie() (per-attachment values for kprobe/uprobe/tracepoint). */
  bpfCookie: Feature;
  /**
   * BTF-typed programs (tp_btf, fentry) may load packet bytes through skb->head with plain
   * loads: the verifier types a member pointing to a non-struct type as untrusted read-only
   * memory (recent kernels: 6.18 does, 6.1 does not), the loads fault-safe like
   * bpf_probe_read_kernel but inline. Probed by loading such a program, not by version.
   */
  directPacketLoads: Feature;
}

// uapi enums (linux/bpf.h); stable numbers.
const PROG_KPROBE = 2;
const PROG_TRACEPOINT = 5;
const PROG_RAW_TRACEPOINT = 17;
const PROG_TRACING = 26;
const MAP_RINGBUF = 27;
const ATTACH_TRACE_RAW_TP = 23;
const ATTACH_TRACE_FENTRY = 24;
const ATTACH_TRACE_FEXIT = 25;
const FUNC_GET_ATTACH_COOKIE = 174;

const yes = (reason: string): Feature => ({ supported: true, reason });
const no = (reason: string): Feature => ({ supported: false, reason });

/** A PMU registered by the kernel (`kprobe`, `uprobe`, `tracepoint`): the perf attach path exists. */
export function hasPmu(name: string): boolean {
  return existsSync(`/sys/bus/event_source/devices/${name}/type`);
}

function probeTypeResult(r: number, what: string): Feature {
  if (r === 1) return yes(`${what}: program type loads`);
  if (r === 0) return no(`${what}: program type not supported by this kernel`);
  return no(`${what}: probe failed with ${errnoName(-r)}${-r === 1 ? ' (not root / no CAP_BPF)' : ''}`);
}

/** The verifier's reason in a load log: its last line before the statistics it ends with. */
function verifierReason(log: string): string {
  const lines = log.trim().split('\n').filter((l) => l && !/^(processed \d+ insns|verification time)/.test(l));
  return lines.pop() ?? '';
}

/** Load "r0=0; exit" as a tracing program against a BTF id: the real test for trampolines. */
function probeTracing(attachType: number, btfId: number, what: string): Feature {
  const r = native().probeProgLoad(PROG_TRACING, attachType, btfId);
  if (r.errno === 0) return yes(`${what}: test program loads`);
  const name = errnoName(r.errno);
  let why = `loading a ${what} program fails with ${name}`;
  if (name === 'EPERM') why += ' even as root: the kernel or a sandbox/LSM blocks BPF trampolines here';
  else if (name === 'ENOTSUPP' || name === 'EOPNOTSUPP') why += ': no BPF trampoline support (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS or arch)';
  else if (name === 'EINVAL') why += `: ${verifierReason(r.log) || 'kernel too old?'}`;
  return no(why);
}

/**
 * Whether a tp_btf program (on the tracepoint of BTF id `tpId`, whose first argument is the skb)
 * may read a packet word with plain loads: skb->head + skb->mac_header + 8. Kernels that type
 * skb->head as a scalar refuse the load ("invalid mem access 'scalar'").
 */
function probeDirectPacketLoads(btf: Btf, tpId: number): Feature {
  let head: number;
  let mac: number;
  try {
    head = btf.memberPath('sk_buff.head').offsets[0]!;
    mac = btf.memberPath('sk_buff.mac_header').offsets[0]!;
  } catch (e) {
    return no(`no sk_buff.head/mac_header in BTF: ${(e as Error).message}`);
  }
  const a = new Asm();
  a.load(SZ.DW, 2, 1, 0); // the skb (the tracepoint's first argument)
  a.load(SZ.DW, 3, 2, head);
  a.load(SZ.H, 4, 2, mac);
  a.alu64r(ALU.ADD, 3, 4);
  a.load(SZ.DW, 0, 3, 8);
  a.alu64(ALU.MOV, 0, 0);
  a.exit();
  const r = native().probeProgLoad(PROG_TRACING, ATTACH_TRACE_RAW_TP, tpId, a.program());
  if (r.errno === 0) return yes('tp_btf programs load packet bytes through skb->head directly');
  const why = verifierReason(r.log);
  return no(`packet bytes are read with bpf_probe_read_kernel: the verifier refuses plain loads through skb->head (${errnoName(r.errno)}${why ? `: ${why}` : ''})`);
}

/** First function of a list that has BTF (fentry probe target). */
function fentryTarget(btf: Btf): number | undefined {
  for (const fn of ['bpf_fentry_test1', 'ip_rcv', 'udp_rcv', 'kfree_skb_reason', 'do_sys_openat2']) {
    const [id] = btf.find(fn, 'func');
    if (id !== undefined) return id;
  }
  return undefined;
}

let cached: KernelFeatures | undefined;

/**
 * Probe the running kernel (cached for the process). Needs the addon for the load probes; without
 * it those features report "unknown" with the build hint. Root is needed for meaningful answers.
 */
export function probeFeatures(opts: { refresh?: boolean; btf?: Btf } = {}): KernelFeatures {
  if (cached && !opts.refresh) return cached;
  const kernelRelease = release();
  let btf: Btf | undefined = opts.btf;
  let btfFeature: Feature;
  try {
    btf ??= Btf.vmlinux();
    btfFeature = yes('/sys/kernel/btf/vmlinux present');
  } catch (e) {
    btfFeature = no(e instanceof Error ? e.message : String(e));
  }

  const ns = nativeStatus();
  const kprobePmu = hasPmu('kprobe') || existsSync('/sys/kernel/tracing/kprobe_events') || existsSync('/sys/kernel/debug/tracing/kprobe_events');
  const kprobe = kprobePmu
    ? yes('kprobe PMU present (/sys/bus/event_source/devices/kprobe)')
    : no('no kprobe support: /sys/bus/event_source/devices/kprobe and kprobe_events are missing (kernel built without CONFIG_KPROBES/CONFIG_KPROBE_EVENTS)');
  const uprobe = hasPmu('uprobe') || existsSync('/sys/kernel/tracing/uprobe_events')
    ? yes('uprobe PMU present (/sys/bus/event_source/devices/uprobe)')
    : no('no uprobe support: /sys/bus/event_source/devices/uprobe is missing (CONFIG_UPROBES/CONFIG_UPROBE_EVENTS off)');

  if (!ns.available) {
    const unknown = no(`unknown: ${ns.message}`);
    cached = {
      kernelRelease, btf: btfFeature, ringbuf: unknown, tracepoint: unknown, rawTracepoint: unknown, tpBtf: unknown,
      kprobe: kprobe.supported ? unknown : kprobe, kretprobe: kprobe.supported ? unknown : kprobe, fentry: unknown, fexit: unknown,
      uprobe: uprobe.supported ? unknown : uprobe, uretprobe: uprobe.supported ? unknown : uprobe, usdt: uprobe.supported ? unknown : uprobe, bpfCookie: unknown,
      directPacketLoads: unknown,
    };
    return cached;
  }
  const n = native();
  const ringbufR = n.probeMapType(MAP_RINGBUF);
  const ringbuf = ringbufR === 1 ? yes('BPF_MAP_TYPE_RINGBUF supported') : no(ringbufR === 0 ? 'no BPF ring buffer (kernel < 5.8)' : `ring buffer probe failed: ${errnoName(-ringbufR)}`);
  const tpType = probeTypeResult(n.probeProgType(PROG_TRACEPOINT), 'tracepoint');
  const tracepoint = tpType.supported && !hasPmu('tracepoint') ? no('tracepoint PMU missing (CONFIG_TRACEPOINTS/PERF_EVENTS off)') : tpType;
  const rawTracepoint = probeTypeResult(n.probeProgType(PROG_RAW_TRACEPOINT), 'raw_tp');
  const kprobeType = probeTypeResult(n.probeProgType(PROG_KPROBE), 'kprobe');
  const kp = kprobe.supported && !kprobeType.supported ? kprobeType : kprobe;
  const up = uprobe.supported && !kprobeType.supported ? kprobeType : uprobe;

  let tpBtf: Feature;
  let fentry: Feature;
  let fexit: Feature;
  let directPacketLoads: Feature;
  if (!btf) {
    tpBtf = fentry = fexit = directPacketLoads = no(`needs kernel BTF: ${btfFeature.reason}`);
  } else {
    const [skbTpId] = btf.find('btf_trace_kfree_skb', 'typedef');
    const [tpId] = skbTpId !== undefined ? [skbTpId] : btf.find('btf_trace_sched_switch', 'typedef');
    // The packet-load program loads only where tp_btf works: one load (~30 ms of every start)
    // answers both on recent kernels; elsewhere the smallest program tells tp_btf apart.
    const direct = skbTpId === undefined ? no('no skb:kfree_skb tracepoint in BTF to test on') : probeDirectPacketLoads(btf, skbTpId);
    tpBtf = direct.supported ? yes('tp_btf: test program loads') : tpId === undefined ? no('no btf_trace_* types in kernel BTF') : probeTracing(ATTACH_TRACE_RAW_TP, tpId, 'tp_btf');
    directPacketLoads = tpBtf.supported ? direct : tpBtf;
    const fnId = fentryTarget(btf);
    fentry = fnId === undefined ? no('no probe target function in BTF') : probeTracing(ATTACH_TRACE_FENTRY, fnId, 'fentry');
    fexit = fnId === undefined ? fentry : probeTracing(ATTACH_TRACE_FEXIT, fnId, 'fexit');
  }
  const cookieR = n.probeHelper(PROG_KPROBE, FUNC_GET_ATTACH_COOKIE);
  const bpfCookie = cookieR === 1 ? yes('bpf_get_attach_cookie available') : no(cookieR === 0 ? 'no bpf_get_attach_cookie (kernel < 5.15)' : `probe failed: ${errnoName(-cookieR)}`);

  cached = {
    kernelRelease,
    btf: btfFeature,
    ringbuf,
    tracepoint,
    rawTracepoint,
    tpBtf,
    kprobe: kp,
    kretprobe: kp,
    fentry,
    fexit,
    uprobe: up,
    uretprobe: up,
    usdt: up.supported ? yes(`uprobes work; libbpf ${n.version()} attaches USDT notes`) : up,
    bpfCookie,
    directPacketLoads,
  };
  return cached;
}

/** The text of a kallsyms file: lines "ADDR T name" or "ADDR t name\t[module]" ('' when it
 * cannot be read: no symbol is known then). */
function kallsymsText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Whether `/proc/kallsyms` lists `name` as a text symbol (what kallsymsFunctions(path).has(name)
 * says, false when the file cannot be read), without building the set of every function: the
 * default capture asks for one symbol (the nft collector's), and building the ~150k-name set
 * was ~100 ms of a capture's start on top of reading the file.
 */
export function kallsymsHas(name: string, path = '/proc/kallsyms'): boolean {
  const text = kallsymsText(path);
  // Find " T name" / " t name" followed by the end of the line or a tab (indexOf: a multi-line
  // regex over the ~10 MB text took 20-30 ms).
  for (const needle of [` T ${name}`, ` t ${name}`]) {
    for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
      const next = text.charCodeAt(at + needle.length);
      if (Number.isNaN(next) || next === 10 || next === 9) return true;
    }
  }
  return false;
}

/** Every text symbol of `/proc/kallsyms` (empty when the file cannot be read). */
export function kallsymsFunctions(path = '/proc/kallsyms'): Set<string> {
  const out = new Set<string>();
  for (const line of kallsymsText(path).split('\n')) {
    const sp1 = line.indexOf(' ');
    const t = line[sp1 + 1];
    if (t !== 'T' && t !== 't') continue;
    const rest = line.slice(sp1 + 3);
    const sp = rest.search(/[\s]/);
    out.add(sp < 0 ? rest : rest.slice(0, sp));
  }
  return out;
}
