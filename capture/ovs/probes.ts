/**
 * The probes of the ovs collector (Retis's collect/collector/ovs): which kernel and user-space
 * hooks, in which role, and which are essential. The BPF side is capture/progs/ovs*.bpf.h; each
 * probe instance learns its role from the `cfg_ovs` constant (enum retis_ovs_hook).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { OvsHook } from '../progs/ovs.layout.ts';

const H = OvsHook.values;

/**
 * Test seam (tests/capture/ovs-track.test.ts): RETIS_CAPTURE_TEST_OVS_USDT_ONLY=1 lets the ovs
 * collector run without the openvswitch module, with only the USDT probes of --ovs-track, and
 * reports every upcall received (no kernel enqueue to match). It exists so the userspace half can
 * be tested live against a stand-in ovs-vswitchd on kernels without OVS; nothing else uses it.
 */
export function ovsTestUsdtOnly(): boolean {
  return process.env.RETIS_CAPTURE_TEST_OVS_USDT_ONLY === '1';
}

export interface OvsProbe {
  spec: string;
  hook: number;
  /** Entry half of a pair: maintains state, writes no event. */
  helper: boolean;
  /** The collector refuses to run without it. */
  required: boolean;
  /** What is missing without it (for the note). */
  what: string;
}

/** Hooks the collector cannot do without: the two datapath tracepoints. */
export function ovsRequired(hook: number): boolean {
  return hook === H.upcall || hook === H.exec_tp;
}

export interface OvsProbeOptions {
  /** --ovs-track */
  track: boolean;
  /** ovs-vswitchd binary for the USDT probes (--ovs-track). */
  binary: string | undefined;
}

/**
 * The OVS tracepoints are attached as raw tracepoints: they live in the openvswitch module, whose
 * BTF the resolver does not read (so no tp_btf), and Retis reports them as raw_tracepoint anyway.
 * The kprobe pairs need kprobes (absent on some kernels): without them the upcall, action and
 * packet events remain, the enqueue/return/lookup events go, with a note saying so.
 */
export function ovsProbes(o: OvsProbeOptions): OvsProbe[] {
  const k = (spec: string, hook: number, helper: boolean, what: string): OvsProbe => ({ spec, hook, helper, required: false, what });
  const kernel: OvsProbe[] = [
    { spec: 'raw_tp:openvswitch:ovs_dp_upcall', hook: H.upcall, helper: false, required: true, what: 'upcalls' },
    { spec: 'raw_tp:openvswitch:ovs_do_execute_action', hook: H.exec_tp, helper: false, required: true, what: 'executed actions' },
    k('kretprobe:ovs_dp_upcall', H.upcall_ret, false, 'upcall return values (upcall_return)'),
    k('kprobe:queue_userspace_packet', H.enqueue_entry, true, 'upcall enqueues (upcall_enqueue)'),
    k('kretprobe:queue_userspace_packet', H.enqueue_ret, false, 'upcall enqueues (upcall_enqueue)'),
    k('kprobe:ovs_dp_process_packet', H.process_packet, true, 'flow lookups (flow_lookup)'),
    k('kprobe:ovs_flow_tbl_lookup_stats', H.lookup_entry, true, 'flow lookup hit counters'),
    k('kretprobe:ovs_flow_tbl_lookup_stats', H.lookup_ret, false, 'flow lookups (flow_lookup)'),
    // Not only with --ovs-track (as in Retis): the packet ovs-vswitchd re-injects is also
    // recognised by the hash of the enqueued one, so its actions carry the upcall's queue_id.
    k('kprobe:ovs_execute_actions', H.exec_actions, true, 'queue ids of actions executed for ovs-vswitchd'),
  ];
  const out = ovsTestUsdtOnly() ? [] : kernel;
  if (o.track) {
    const bin = o.binary;
    if (bin !== undefined) {
      out.push(
        { spec: `usdt:${bin}:dpif_recv:recv_upcall`, hook: H.recv_upcall, helper: false, required: true, what: 'upcalls received by ovs-vswitchd' },
        { spec: `usdt:${bin}:dpif_netlink_operate__:op_flow_execute`, hook: H.op_exec, helper: false, required: true, what: 'flow executions by ovs-vswitchd' },
        { spec: `usdt:${bin}:dpif_netlink_operate__:op_flow_put`, hook: H.op_put, helper: false, required: true, what: 'flow installations by ovs-vswitchd' },
      );
    }
  }
  return out;
}

export class OvsTrackError extends Error {
  override name = 'OvsTrackError';
}

/**
 * The binary of the running ovs-vswitchd (for --ovs-track), checked for USDT notes. Throws
 * OvsTrackError saying what is wrong: not running, or built without --enable-usdt-probes.
 */
export function findOvsVswitchd(proc = '/proc'): { binary: string; pid: number } {
  // Several can run (containers, a test stand-in): prefer one built with USDT probes.
  const all: { binary: string; pid: number }[] = [];
  for (const d of readdirSync(proc)) {
    if (!/^\d+$/.test(d)) continue;
    let comm: string;
    try {
      comm = readFileSync(`${proc}/${d}/comm`, 'utf8').trim();
    } catch {
      continue; // gone, or not ours to read
    }
    if (comm !== 'ovs-vswitchd') continue;
    try {
      // The binary as seen from here: through the process' root, so a containerized one works.
      const exe = readlinkSync(`${proc}/${d}/exe`).replace(/ \(deleted\)$/, '');
      const sameRoot = readlinkSync(`${proc}/${d}/root`) === '/';
      all.push({ binary: sameRoot ? exe : `${proc}/${d}/root${exe}`, pid: Number(d) });
    } catch (e) {
      throw new OvsTrackError(`--ovs-track: cannot read ${proc}/${d}/exe of ovs-vswitchd (pid ${d}): ${(e as Error).message}`);
    }
  }
  const found = all.find((p) => hasUsdtNotes(p.binary)) ?? all[0];
  if (!found) throw new OvsTrackError('--ovs-track: ovs-vswitchd is not running (start Open vSwitch first: its USDT probes are attached in the running daemon)');
  if (!hasUsdtNotes(found.binary)) {
    throw new OvsTrackError(`--ovs-track: ${found.binary} (pid ${found.pid}) has no USDT probes: Open vSwitch must be built with --enable-usdt-probes (most distributions' packages are not)`);
  }
  return found;
}

/** Whether an ELF file has a .note.stapsdt section (USDT probes). */
export function hasUsdtNotes(path: string): boolean {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch {
    return false;
  }
  // ELF64 little-endian only (the machines we run on): section headers and their names.
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2) return false;
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  if (shoff === 0 || shoff + shnum * shentsize > buf.length || shstrndx >= shnum) return false;
  const strOff = Number(buf.readBigUInt64LE(shoff + shstrndx * shentsize + 0x18));
  for (let i = 0; i < shnum; i++) {
    const nameOff = buf.readUInt32LE(shoff + i * shentsize);
    const start = strOff + nameOff;
    const end = buf.indexOf(0, start);
    if (end > start && buf.toString('latin1', start, end) === '.note.stapsdt') return true;
  }
  return false;
}
