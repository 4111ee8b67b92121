/**
 * Errors of the BPF layer, in words a user can act on: what failed (operation + target), the errno
 * name, what to do, and for verifier rejections the tail of the verifier log.
 *
 * Native calls throw plain Errors with `op`, `errno`, `libbpfLog` (bpf/native/retis_bpf.c);
 * {@link toBpfError} turns them into {@link BpfError}.
 */
import { constants } from 'node:os';
import { NativeMissingError, type NativeErrorFields } from './native.ts';

export type BpfErrorKind =
  | 'permission' // EPERM/EACCES outside the verifier: privileges, lockdown, sandbox
  | 'verifier' // the verifier rejected a program (log attached)
  | 'not-found' // no such tracepoint/function/binary/probe/map
  | 'unsupported' // kernel lacks the feature
  | 'busy' // EBUSY/EEXIST: already attached
  | 'resource' // ENOMEM/E2BIG/ENOSPC/EMFILE
  | 'stale-build' // object built from another layout
  | 'closed' // used after close()
  | 'invalid' // bad input
  | 'other';

const ERRNO_NAMES = new Map<number, string>();
for (const [name, num] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(num)) ERRNO_NAMES.set(num, name);
// Kernel-internal codes that leak out of bpf(2) and perf_event_open(2).
ERRNO_NAMES.set(524, 'ENOTSUPP');
ERRNO_NAMES.set(95, 'EOPNOTSUPP');

/** `1` -> `EPERM`. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(Math.abs(errno)) ?? `errno ${Math.abs(errno)}`;
}

export function errnoNumber(name: string): number | undefined {
  if (name === 'ENOTSUPP') return 524;
  return (constants.errno as Record<string, number>)[name];
}

/** The verifier's message for a rejected program (between libbpf's BEGIN/END markers), last lines. */
export function verifierLogTail(libbpfLog: string, lines = 20): string | undefined {
  const begin = libbpfLog.lastIndexOf('-- BEGIN PROG LOAD LOG --');
  if (begin < 0) return undefined;
  const endIdx = libbpfLog.indexOf('-- END PROG LOAD LOG --', begin);
  const body = libbpfLog.slice(begin + '-- BEGIN PROG LOAD LOG --'.length, endIdx < 0 ? undefined : endIdx);
  const all = body.split('\n').map((l) => l.trimEnd()).filter((l) => l.length > 0);
  // libbpf prefixes the END marker line with "libbpf: prog 'x': "; drop that residue.
  if (all.length && /libbpf: prog '.*': $/.test(`${all[all.length - 1]} `)) all.pop();
  return all.slice(-lines).join('\n');
}

export interface BpfErrorInit {
  op: string;
  target?: string | undefined;
  errno?: number | undefined;
  kind: BpfErrorKind;
  hint: string;
  libbpfLog?: string | undefined;
  detail?: string | undefined;
  cause?: unknown;
}

export class BpfError extends Error {
  override name = 'BpfError';
  /** libbpf/syscall operation that failed, e.g. `bpf_object__load`. */
  readonly op: string;
  /** What it was about: probe, program or object name. */
  readonly target: string | undefined;
  readonly errno: number | undefined;
  /** `EPERM`, `ENOENT`... */
  readonly code: string | undefined;
  readonly kind: BpfErrorKind;
  /** What to do about it. */
  readonly hint: string;
  /** Everything libbpf printed during the failed call. */
  readonly libbpfLog: string;
  /** Last lines of the verifier log when the kernel rejected a program. */
  readonly verifierLog: string | undefined;

  constructor(init: BpfErrorInit) {
    const code = init.errno ? errnoName(init.errno) : undefined;
    const verifierLog = init.libbpfLog ? verifierLogTail(init.libbpfLog) : undefined;
    const what = `${init.op}${init.target ? ` (${init.target})` : ''}`;
    let message = `${what} failed${code ? `: ${code}` : ''}${init.detail ? `: ${init.detail}` : ''}. ${init.hint}`;
    if (verifierLog && (init.kind === 'verifier' || init.kind === 'permission' || init.kind === 'invalid')) {
      message += `\nverifier log (tail):\n${verifierLog.replace(/^/gm, '  ')}`;
    }
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.op = init.op;
    this.target = init.target;
    this.errno = init.errno;
    this.code = code;
    this.kind = init.kind;
    this.hint = init.hint;
    this.libbpfLog = init.libbpfLog ?? '';
    this.verifierLog = verifierLog;
  }
}

const PRIV_HINT =
  'Run as root (sudo), or give the process CAP_BPF and CAP_PERFMON (plus CAP_NET_ADMIN for network hooks).';

/** Hint and kind for an (operation, errno) pair. */
function classify(op: string, errno: number | undefined, log: string, target: string | undefined): { kind: BpfErrorKind; hint: string } {
  const name = errno ? errnoName(errno) : '';
  const t = target ?? 'the target';
  const hasVerifierLog = log.includes('-- BEGIN PROG LOAD LOG --') && verifierLogTail(log, 1) !== '';
  if (op === 'bpf_object__open_file') {
    if (name === 'ENOENT') return { kind: 'not-found', hint: `The object file does not exist: npm run build:bpf builds it into build/bpf/.` };
    return { kind: 'invalid', hint: 'The object file is not a valid BPF ELF object for this libbpf: rebuild it with npm run build:bpf.' };
  }
  if (op === 'bpf_object__load') {
    if (log.includes('failed to find valid kernel BTF') || log.includes('vmlinux BTF')) {
      return { kind: 'unsupported', hint: 'The kernel has no BTF (/sys/kernel/btf/vmlinux): CO-RE programs need CONFIG_DEBUG_INFO_BTF=y.' };
    }
    if (/failed to resolve CO-RE relocation|relo #\d+: .*(failed|not found)|<invalid CO-RE relocation>/.test(log)) {
      // Name the relocation: the field or type is what tells a user (or a bug report) what is missing.
      const which = /failed to resolve CO-RE relocation ([^\n]+)/.exec(log)?.[1];
      return { kind: 'unsupported', hint: `A kernel type or field the program reads does not exist on this kernel (CO-RE relocation failed${which ? `: ${which.trim()}` : '; see the libbpf log for which one'}).` };
    }
    if (/failed to find kernel BTF type ID of '([^']+)'/.test(log)) {
      const fn = /failed to find kernel BTF type ID of '([^']+)'/.exec(log)?.[1];
      return { kind: 'not-found', hint: `The attach target '${fn}' does not exist in this kernel's BTF (check the function/tracepoint name).` };
    }
    if (name === 'EPERM' && !hasVerifierLog) {
      return {
        kind: 'permission',
        hint: `The kernel refused the program before verification. ${PRIV_HINT} If already root: kernel lockdown, an LSM or a sandbox blocks this program type (fentry/fexit are commonly blocked: use a tracepoint, tp_btf or raw_tp instead).`,
      };
    }
    if (name === 'EACCES' || name === 'EINVAL' || name === 'EPERM' || hasVerifierLog) {
      if (hasVerifierLog) return { kind: 'verifier', hint: 'The BPF verifier rejected the program; the last lines of its log say why.' };
      return { kind: 'invalid', hint: 'The kernel rejected the program or its BTF (see the libbpf log).' };
    }
    if (name === 'E2BIG') return { kind: 'resource', hint: 'The program is too large or complex for this kernel verifier (reduce loops/inlining).' };
    if (name === 'ENOTSUPP' || name === 'EOPNOTSUPP') return { kind: 'unsupported', hint: 'This kernel does not support a feature the program needs (program type, helper or map type).' };
    if (name === 'ENOMEM') return { kind: 'resource', hint: 'Not enough locked memory for maps: lower the ring buffer size, or raise RLIMIT_MEMLOCK (ulimit -l) on kernels < 5.11.' };
    if (name === 'ESRCH') return { kind: 'not-found', hint: 'A kernel symbol or type the program needs was not found.' };
  }
  if (op.startsWith('bpf_program__attach')) {
    if (name === 'EPERM' || name === 'EACCES') return { kind: 'permission', hint: `${PRIV_HINT} If already root, lockdown or a sandbox may forbid this attach type.` };
    if (name === 'EBUSY' || name === 'EEXIST') return { kind: 'busy', hint: `${t} is already attached by this program.` };
    if (name === 'ENOTSUPP' || name === 'EOPNOTSUPP') return { kind: 'unsupported', hint: 'The kernel does not support this attach type.' };
    if (op.endsWith('attach_tracepoint') && name === 'ENOENT') {
      return { kind: 'not-found', hint: `Tracepoint ${t} does not exist, or tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing, or let retis-capture do it with --allow-system-changes).` };
    }
    if (op.endsWith('attach_raw_tracepoint') && name === 'ENOENT') return { kind: 'not-found', hint: `Raw tracepoint ${t} does not exist on this kernel.` };
    if ((op.endsWith('attach_kprobe') || op.endsWith('attach_kretprobe')) && name === 'ENOENT') {
      return { kind: 'not-found', hint: `Function ${t} does not exist or cannot be probed (inlined, static, or notrace); check /proc/kallsyms.` };
    }
    if (op.endsWith('attach_kprobe') || op.endsWith('attach_kretprobe')) {
      return { kind: 'unsupported', hint: 'kprobes are not available on this kernel (CONFIG_KPROBES/KPROBE_EVENTS off): use a tracepoint or fentry.' };
    }
    if (op.endsWith('attach_usdt') && (name === 'ENOENT' || name === 'ESRCH')) {
      return { kind: 'not-found', hint: `No USDT note ${t} (list the binary's probes with: readelf -n BINARY | grep -A4 stapsdt).` };
    }
    if ((op.endsWith('attach_uprobe') || op.endsWith('attach_uretprobe')) && (name === 'ENOENT' || name === 'ESRCH')) {
      return { kind: 'not-found', hint: `Binary or function not found for ${t} (the function must be in the binary's symbol table: nm -D/-C BINARY).` };
    }
    if (name === 'ENOENT') return { kind: 'not-found', hint: `${t} does not exist on this kernel.` };
  }
  if (op === 'bpf_program__set_attach_target') {
    return { kind: 'not-found', hint: `No BTF for attach target ${t} on this kernel (function/tracepoint name wrong, or not in BTF).` };
  }
  if (name === 'EPERM' || name === 'EACCES') return { kind: 'permission', hint: PRIV_HINT };
  if (name === 'ENOENT') return { kind: 'not-found', hint: `${t} was not found.` };
  if (name === 'ENOMEM' || name === 'EMFILE' || name === 'ENFILE') return { kind: 'resource', hint: 'Out of memory or file descriptors (ulimit -n).' };
  if (name === 'ENOTSUPP' || name === 'EOPNOTSUPP') return { kind: 'unsupported', hint: 'Not supported by this kernel.' };
  return { kind: 'other', hint: 'See the libbpf log for details (RETIS_BPF_DEBUG=1 keeps libbpf debug lines).' };
}

function isNativeError(e: unknown): e is Error & NativeErrorFields {
  return e instanceof Error && typeof (e as NativeErrorFields).op === 'string';
}

/**
 * Wrap whatever a native call threw into a BpfError. `op` is the default operation name when the
 * error does not carry one; `target` names what the user asked for (probe, program).
 */
export function toBpfError(e: unknown, op: string, target?: string): BpfError {
  if (e instanceof BpfError) return e;
  if (isNativeError(e)) {
    const log = e.libbpfLog ?? '';
    const nop = e.op ?? op;
    const { kind, hint } = classify(nop, e.errno, log, target);
    // libbpf names the program that failed to load: say which one.
    const prog = /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(log)?.[1];
    return new BpfError({ op: nop, target, errno: e.errno, kind, hint, libbpfLog: log, cause: e, detail: prog ? `program ${prog}` : undefined });
  }
  const msg = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown })?.code;
  if (code === 'ERR_BPF_CLOSED') return new BpfError({ op, target, kind: 'closed', hint: 'The object or reader was already closed.', detail: msg, cause: e });
  if (code === 'ERR_BPF_NO_PROGRAM' || code === 'ERR_BPF_NO_MAP') return new BpfError({ op, target, kind: 'not-found', hint: 'Check the name against the object (bpftool prog/map list of the .o, or BpfObject.programs()).', detail: msg, cause: e });
  return new BpfError({ op, target, kind: e instanceof TypeError ? 'invalid' : 'other', hint: 'Unexpected error from the native binding.', detail: msg, cause: e });
}

/** Run a native call; rethrow as BpfError (a missing addon stays a NativeMissingError: its message is the fix). */
export function check<T>(op: string, target: string | undefined, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof NativeMissingError) throw e;
    throw toBpfError(e, op, target);
  }
}
