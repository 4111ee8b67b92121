/**
 * Kernel addresses to `function+0xoffset` (kernel.stack_trace entries, as Retis writes them), from
 * /proc/kallsyms. Read once when --stack asks for stacks; addresses of a capture repeat a lot, so
 * each is resolved once and cached as UTF-8 bytes ready for the Arrow column.
 */
import fs from 'node:fs';

const TRACER_FRAME = /^(bpf_prog_[0-9a-f]+_|bpf_trace_run\d|__bpf_trace_|trace_call_bpf|__traceiter_|perf_trace_|bpf_trampoline_|__bpf_prog_enter|kprobe_ftrace_handler|kprobe_perf_func|kprobe_dispatcher|kretprobe_|__kretprobe_trampoline|pre_handler_kretprobe|aggr_pre_handler|opt_pre_handler|optimized_callback|ftrace_|arch_ftrace_)/;

export class KernelSymbols {
  private readonly addrs: BigUint64Array;
  private readonly names: string[];
  private readonly cache = new Map<bigint, Uint8Array>();
  private readonly tracer = new Map<bigint, boolean>();
  private readonly utf8 = new TextEncoder();

  private constructor(addrs: BigUint64Array, names: string[]) {
    this.addrs = addrs;
    this.names = names;
  }

  /**
   * Parse kallsyms. Without root every address reads as 0 (kptr_restrict): then the table is empty
   * and addresses print as hex, which is still an honest answer.
   */
  static load(path = '/proc/kallsyms'): KernelSymbols {
    let text = '';
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch {
      // No kallsyms: raw addresses.
    }
    const rows: [bigint, string][] = [];
    for (const line of text.split('\n')) {
      // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t fn	[module]"
      const sp1 = line.indexOf(' ');
      if (sp1 <= 0) continue;
      const type = line[sp1 + 1];
      if (type !== 'T' && type !== 't' && type !== 'W' && type !== 'w') continue;
      const addr = BigInt(`0x${line.slice(0, sp1)}`);
      if (addr === 0n) continue;
      const rest = line.slice(sp1 + 3);
      const tab = rest.indexOf('\t');
      rows.push([addr, tab < 0 ? rest : rest.slice(0, tab)]);
    }
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return new KernelSymbols(BigUint64Array.from(rows.map((r) => r[0])), rows.map((r) => r[1]));
  }

  get size(): number {
    return this.names.length;
  }

  /** `name+0xoff`, or the address in hex when no symbol covers it. */
  format(addr: bigint): string {
    const a = this.addrs;
    let lo = 0;
    let hi = a.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid]! <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return `0x${addr.toString(16)}`;
    return `${this.names[found]}+0x${(addr - a[found]!).toString(16)}`;
  }

  /**
   * Frames of the tracing machinery itself (our BPF program, the tracepoint/kprobe glue): a
   * stack is reported from the probed kernel code, as Retis shows it.
   */
  isTracer(addr: bigint): boolean {
    let t = this.tracer.get(addr);
    if (t === undefined) {
      t = TRACER_FRAME.test(this.format(addr));
      this.tracer.set(addr, t);
    }
    return t;
  }

  /** UTF-8 bytes of format(addr), cached. */
  bytes(addr: bigint): Uint8Array {
    let b = this.cache.get(addr);
    if (b === undefined) {
      b = this.utf8.encode(this.format(addr));
      this.cache.set(addr, b);
    }
    return b;
  }
}
