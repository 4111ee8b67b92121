/**
 * The guest's vitest JSON report (--reporter=json), read on the host, and the VM suite's policy:
 * what must pass in the guest (REQUIRED) and which failures of the unchanged tests/bpf suites are
 * known kernel-version/speed assumptions (KNOWN). Used by vm.test.ts and run.ts alike.
 */
import { relative } from 'node:path';
import { ROOT_DIR } from './vm.ts';

export type TestStatus = 'passed' | 'failed' | 'skipped' | 'pending' | 'todo' | 'disabled';

export interface VitestAssertion {
  ancestorTitles: string[];
  title: string;
  fullName: string;
  status: TestStatus;
  duration?: number | null;
  failureMessages: string[];
}

export interface VitestFile {
  name: string;
  status: string;
  message?: string;
  startTime?: number;
  endTime?: number;
  assertionResults: VitestAssertion[];
}

export interface VitestReport {
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  success: boolean;
  startTime?: number;
  testResults: VitestFile[];
}

export interface FoundTest extends VitestAssertion {
  file: string;
}

/** Every test with its file (relative to the repository). */
export function allTests(r: VitestReport): FoundTest[] {
  return r.testResults.flatMap((f) => f.assertionResults.map((a) => ({ ...a, file: relative(ROOT_DIR, f.name) })));
}

/** Tests of `file` whose title matches. */
export function findTests(r: VitestReport, file: string, title: RegExp): FoundTest[] {
  return allTests(r).filter((t) => t.file === file && title.test(t.title));
}

/** Per-file lines (passed/failed/skipped, seconds) and the failures with their first message line. */
export function summarizeReport(r: VitestReport): string[] {
  const out: string[] = [];
  for (const f of r.testResults) {
    const n = (st: TestStatus[]): number => f.assertionResults.filter((a) => st.includes(a.status)).length;
    const secs = f.startTime && f.endTime ? ` ${((f.endTime - f.startTime) / 1000).toFixed(1)} s` : '';
    out.push(`${relative(ROOT_DIR, f.name)}: ${n(['passed'])} passed, ${n(['failed'])} failed, ${n(['skipped', 'pending', 'todo'])} skipped${secs}${f.message ? ` (${f.message.split('\n')[0]})` : ''}`);
  }
  for (const t of allTests(r).filter((a) => a.status === 'failed')) {
    out.push(`FAILED ${t.file} > ${t.fullName}: ${(t.failureMessages[0] ?? '').split('\n')[0]}`);
  }
  out.push(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped of ${r.numTotalTests}`);
  return out;
}

/** Must pass in the guest: what the host cannot run. [file, title, what it proves]. */
export const REQUIRED: [string, RegExp, string][] = [
  ['tests/bpf/attach.test.ts', /^kprobe: /, 'kprobe attach (host: no CONFIG_KPROBES)'],
  ['tests/bpf/attach.test.ts', /^kretprobe: /, 'kretprobe attach'],
  ['tests/bpf/attach.test.ts', /^fentry: /, 'fentry attach (host: trampolines refused, EPERM)'],
  ['tests/bpf/attach.test.ts', /^fexit: /, 'fexit attach'],
  ['tests/bpf/attach.test.ts', /^uprobe: /, 'uprobe attach'],
  ['tests/bpf/attach.test.ts', /^usdt: /, 'USDT attach (stand-in provider)'],
  ['tests/bpf/ringbuf.test.ts', /^batches records/, 'ring buffer reader on the 6.1 kernel'],
  ['tests/vm/suite/ovs.vm-test.ts', /forwards pings/, 'OVS datapath: bridge between two namespaces, no upcall lost'],
  ['tests/vm/suite/ovs.vm-test.ts', /every Retis ovs collector hook/, 'OVS: upcall, enqueue, execute-action, flow lookup hooks fire'],
  ['tests/vm/suite/ovs-capture.vm-test.ts', /captured and correlated/, 'retis-capture -c ovs on the datapath: OVS events decoded, upcalls and series correlated'],
  ['tests/vm/suite/kernel-paths.vm-test.ts', /__nft_trace_packet/, 'nft: __nft_trace_packet fires'],
  ['tests/vm/suite/tracking-capture.vm-test.ts', /one tracking id per forwarded packet/, 'retis-capture skb-tracking across pskb_expand_head: one id from receive to transmit and free'],
  ['tests/vm/suite/nft-capture.vm-test.ts', /nft verdicts through kprobe:__nft_trace_packet/, 'retis-capture nft collector, kprobe path: verdicts per packet, in order, with tracking ids'],
  ['tests/vm/suite/nft-capture.vm-test.ts', /ct collector on 6\.1/, 'retis-capture ct collector on 6.1 (nf_conntrack module BTF): DNAT tuples'],
  ['tests/vm/suite/kernel-paths.vm-test.ts', /pskb_expand_head/, 'skb head reallocation (pskb_expand_head) and the free'],
];

/**
 * Failures of the unchanged live suites in the guest that come from the tests' own assumptions about
 * the kernel version or speed (owned by bpf/, reported there), not from our code or the VM. They
 * are printed, not fatal; any other failure is.
 */
export const KNOWN: [string, RegExp, string][] = [
  ['tests/bpf/btf.test.ts', /^parses vmlinux quickly/, '2 s budget; TCG runs 10-30x slower than the host'],
  ['tests/bpf/env.test.ts', /^not root:/, 'child node + tsx without cache takes longer than its 30 s timeout under TCG'],
  ['tests/bpf/shutdown.test.ts', /./, 'child node + tsx start-up takes ~15 s under TCG against a 20 s kill timer'],
];

export interface Verdict {
  ok: boolean;
  /** REQUIRED entries that did not pass (or are absent), with the reason. */
  required: string[];
  /** Failures not in KNOWN. */
  unexpected: string[];
  /** Failures in KNOWN, with the reason. */
  known: string[];
}

/** The policy of the VM suite: every REQUIRED test passed, and no failure outside KNOWN. */
export function verdict(r: VitestReport): Verdict {
  const required: string[] = [];
  for (const [file, title, what] of REQUIRED) {
    const found = findTests(r, file, title);
    if (found.length === 0) required.push(`${what}: no test matching ${title} in ${file}`);
    for (const t of found) if (t.status !== 'passed') required.push(`${what}: ${t.file} > ${t.title} ${t.status}`);
  }
  const knownWhy = (t: FoundTest): string | undefined => KNOWN.find(([f, re]) => t.file === f && re.test(t.title))?.[2];
  const unexpected: string[] = [];
  const known: string[] = [];
  for (const t of allTests(r).filter((a) => a.status === 'failed')) {
    const why = knownWhy(t);
    if (why) known.push(`${t.file} > ${t.title}: ${why}`);
    else unexpected.push(`${t.file} > ${t.fullName}: ${(t.failureMessages[0] ?? '').split('\n')[0]}`);
  }
  // Whole files that failed to load (syntax, import errors) have no test entries.
  for (const f of r.testResults) if (f.status === 'failed' && f.assertionResults.length === 0) unexpected.push(`${relative(ROOT_DIR, f.name)}: ${f.message ?? 'failed to run'}`);
  return { ok: required.length === 0 && unexpected.length === 0, required, unexpected, known };
}
