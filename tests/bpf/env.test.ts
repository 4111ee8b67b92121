/**
 * Environment checks and error messages a user can act on: privileges, tracefs (mounted only when
 * system changes are allowed, and unmounted again), verifier rejections with the log tail.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkEnvironment, findTracefs, formatEnvReport } from '../../bpf/env.ts';
import { BpfError } from '../../bpf/errors.ts';
import { bpfObjectPath, ROOT_DIR } from '../../bpf/native.ts';
import { BpfObject } from '../../bpf/object.ts';
import { isRoot, liveIt, liveSkipReason } from './helpers.ts';

const live = liveSkipReason();

/** The error of loading one program of reject.bpf.o (which must fail). */
function loadError(program: string): BpfError {
  const obj = BpfObject.open(bpfObjectPath('reject'));
  try {
    obj.onlyPrograms([program]);
    obj.load();
  } catch (e) {
    expect(e).toBeInstanceOf(BpfError);
    return e as BpfError;
  } finally {
    obj.close();
  }
  throw new Error(`${program} loaded: it should have been rejected`);
}

describe('environment checks', () => {
  it('reports every check with a fix for each problem', () => {
    const r = checkEnvironment();
    console.log(formatEnvReport(r));
    const ids = r.checks.map((c) => c.id);
    for (const id of ['privileges', 'kernel', 'btf', 'native', 'tracefs', 'bpffs', 'lockdown']) expect(ids).toContain(id);
    for (const c of r.checks) if (!c.ok) expect(c.fix, `${c.id} has a fix`).toBeTruthy();
    if (isRoot) expect(r.checks.find((c) => c.id === 'privileges')?.ok).toBe(true);
  });

  liveIt('tracefs is mounted only with allowSystemChanges, and undo() unmounts it', live ?? (findTracefs() ? 'tracefs already mounted by someone else: not touching it' : undefined), () => {
    const without = checkEnvironment({ needTracefs: true });
    const t = without.checks.find((c) => c.id === 'tracefs')!;
    expect(t).toMatchObject({ ok: false, severity: 'error' });
    expect(t.fix).toMatch(/mount -t tracefs tracefs \/sys\/kernel\/tracing|--allow-system-changes/);
    expect(without.ok).toBe(false);
    const withChanges = checkEnvironment({ needTracefs: true, allowSystemChanges: true });
    try {
      expect(withChanges.tracefs).toBe('/sys/kernel/tracing');
      expect(withChanges.checks.find((c) => c.id === 'tracefs')?.changed).toMatch(/mount -t tracefs/);
    } finally {
      withChanges.undo();
    }
    expect(findTracefs()).toBeUndefined();
  });

  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find(existsSync);
  liveIt('not root: the environment check and the load error both say what to do', live ?? (setpriv ? undefined : 'setpriv (util-linux) not available'), () => {
    const r = spawnSync(setpriv!, ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--',
      process.execPath, '--import', 'tsx', join(ROOT_DIR, 'tests', 'bpf', 'fixtures', 'report-child.ts')], {
      cwd: ROOT_DIR, encoding: 'utf8', timeout: 30_000, env: { ...process.env, HOME: '/tmp', TSX_DISABLE_CACHE: '1' },
    });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { env: { id: string; message: string; fix: string }[]; load: { kind: string; message: string }; dropReasons: number };
    const priv = out.env.find((c) => c.id === 'privileges')!;
    expect(priv.message).toMatch(/missing CAP_BPF and CAP_PERFMON/);
    expect(priv.fix).toMatch(/sudo|setcap cap_bpf,cap_perfmon/);
    expect(out.load.kind).toBe('permission');
    expect(out.load.message).toMatch(/EPERM.*Run as root \(sudo\), or give the process CAP_BPF and CAP_PERFMON/);
    expect(out.dropReasons).toBeGreaterThan(10); // BTF is world-readable: analysis helpers still work
  }, 40_000);

  liveIt('a verifier rejection names the verifier and shows the tail of its log', live, () => {
    const e = loadError('reject_scalar_deref');
    console.log(e.message);
    expect(e.kind).toBe('verifier');
    expect(e.op).toBe('bpf_object__load');
    expect(e.verifierLog).toMatch(/invalid mem access 'scalar'/);
    expect(e.message).toMatch(/verifier rejected the program/);
    expect(e.message).toMatch(/verifier log \(tail\):\n {2}/);
    expect(e.message.split('\n').length).toBeLessThan(30);
  });

  liveIt('a verifier log far longer than a line buffer keeps its end: the error line', live, () => {
    // libbpf prints the whole verifier log as one message; it used to be cut to its first 4 KiB.
    const e = loadError('reject_long_log');
    expect(e.kind).toBe('verifier');
    expect(e.libbpfLog).toMatch(/prog 'reject_long_log': -- BEGIN PROG LOAD LOG --/);
    expect(e.libbpfLog).toMatch(/\.\.\. \[\d+ bytes cut by retis_bpf\] \.\.\./); // > 64 KiB: head + tail
    expect(e.libbpfLog).toMatch(/-- END PROG LOAD LOG --/);
    expect(e.libbpfLog.length).toBeGreaterThan(60 * 1024);
    const tail = e.verifierLog!.split('\n');
    console.log(`long verifier log, tail:\n${tail.slice(-6).join('\n')}`);
    // The verifier's error line is in the tail, followed only by its summary lines.
    const errLine = tail.findIndex((l) => /invalid mem access 'scalar'/.test(l));
    expect(errLine).toBeGreaterThanOrEqual(0);
    expect(tail.slice(errLine + 1).every((l) => /^(processed \d+ insns|verification time|stack depth|max_states|peak_states|mark_read)/.test(l))).toBe(true);
    expect(e.message).toMatch(/invalid mem access 'scalar'/);
  });

  liveIt('attach errors say what is wrong with the target', live, () => {
    const obj = BpfObject.open(bpfObjectPath('selftest'));
    try {
      obj.onlyPrograms(['selftest_raw_tp']);
      obj.load();
      expect(() => obj.attach('selftest_raw_tp', { type: 'raw_tp', name: 'no_such_tracepoint' })).toThrow(/ENOENT.*Raw tracepoint no_such_tracepoint does not exist/);
      expect(() => obj.setConstants({ nope: 1 })).toThrow(/No const volatile 'nope'/);
    } finally {
      obj.close();
    }
    const o2 = BpfObject.open(bpfObjectPath('selftest'));
    try {
      o2.onlyPrograms(['selftest_tp_btf']);
      expect(() => o2.setAttachTarget('selftest_tp_btf', 'no_such_tp')).toThrow(/ESRCH\. No BTF for attach target no_such_tp/);
    } finally {
      o2.close();
    }
  });
});
