/**
 * retis-capture without a kernel: option parsing and usage errors (exit 2), refusals with a
 * reason (exit 1), probe spellings, tracefs record offsets, drop reason names, stack symbols,
 * Retis profiles.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Btf } from '../../bpf/btf.ts';
import { DropReasons } from '../../capture/drop-reasons.ts';
import { DEFAULT_SNAPLEN, parseCaptureArgs, UsageError } from '../../capture/options.ts';
import { normalizeProbeArg, tracepointRecordOffsets } from '../../capture/probes.ts';
import { applyProfiles, findProfile, parseYamlDocuments, profileArgs, versionMatches } from '../../capture/profiles.ts';
import { KernelSymbols } from '../../capture/symbols.ts';
import { RETIS_TS_VERSION, RETIS_VERSION } from '../../capture/version.ts';
import { compat, REPO_ROOT } from '../util/paths.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retis-ts-capture-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'retis-capture.js'), ...args], { encoding: 'utf8', cwd: tmp, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('options', () => {
  it('parses the contract options with their defaults', () => {
    const o = parseCaptureArgs(['-c', 'skb,skb-drop', '-p', 'tp:net:netif_rx', '-p', 'skb:kfree_skb/stack', '-o', 'out', '--pcapng', '--parquet', '--cmd', 'ping -c1 x', '--duration', '1.5', '--max-events', '10', '--snaplen', '128', '--print', '--skb-sections', 'meta,gso', '--stack']);
    expect(o.collectors).toEqual(['skb', 'skb-drop']);
    expect(o.probes).toEqual(['tp:net:netif_rx', 'skb:kfree_skb/stack']);
    expect(o).toMatchObject({ outDir: 'out', pcapng: true, parquet: true, cmd: 'ping -c1 x', durationMs: 1500, maxEvents: 10, snaplen: 128, print: true, skbSections: ['meta', 'gso'], stack: true });
    const d = parseCaptureArgs([]);
    expect(d).toMatchObject({ collectors: undefined, probes: [], outDir: 'retis.capture', snaplen: DEFAULT_SNAPLEN, ringMiB: 8, overwrite: false });
  });

  it.each([
    [['--nope'], /Unknown option '--nope'/],
    [['extra'], /unexpected argument 'extra'/],
    [['--snaplen', '0'], /--snaplen: 0 is out of range/],
    [['--snaplen', '9999'], /out of range \(1\.\.4096\)/],
    [['--max-events', 'x'], /not a positive integer/],
    [['--duration', '-1'], /--duration/],
    [['--ring-mib', '12'], /not a power of two/],
    [['--skb-sections', 'l3'], /unknown section 'l3'/],
    [['--nft-verdicts', 'maybe'], /unknown verdict 'maybe'/],
    [['-c', ''], /-c needs at least one collector/],
  ])('refuses %j', (args, message) => {
    expect(() => parseCaptureArgs(args)).toThrow(UsageError);
    expect(() => parseCaptureArgs(args)).toThrow(message);
  });

  it('keeps its version in step with package.json, in the vX.Y.Z shape Retis files have', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(RETIS_TS_VERSION).toBe(pkg.version);
    expect(RETIS_VERSION).toMatch(/^v\d+\.\d+\.\d+\+retis-ts\./);
  });
});

describe('command line (exit codes)', () => {
  it('--help: exit 0, the contract options listed', () => {
    const r = cli(['--help']);
    expect(r.status).toBe(0);
    for (const opt of ['-c, --collectors', '-p, --probe', '-f, --filter-packet', '-m, --filter-meta', '--profile', '-o, --out', '--pcapng', '--parquet', '--cmd', '--duration', '--max-events', '--snaplen', '--print', '--allow-system-changes', '--skb-sections', '--stack']) {
      expect(r.stdout).toContain(opt);
    }
  });

  it('usage errors exit 2 with one line and a hint', () => {
    const r = cli(['--frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^retis-capture: Unknown option '--frobnicate'.*\nTry 'retis-capture --help'\.\n$/s);
  });

  it('malformed filters are usage errors (exit 2) before anything touches the system: libpcap\'s message verbatim', () => {
    let r = cli(['-f', 'udp prot 53']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain("retis-capture: -f: invalid pcap filter 'udp prot 53': can't parse filter expression: syntax error");
    r = cli(['-m', 'sk_buff.mark ==']);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain("retis-capture: -m: invalid meta filter 'sk_buff.mark ==': expected a number or a string after '=='");
  });

  it('options it cannot honour yet are refused with the reason (exit 1), not ignored', () => {
    for (const [args, msg] of [
      // Without the openvswitch module the ovs collector cannot run; with it, ovs-vswitchd must run with USDT probes.
      [['--ovs-track'], /--ovs-track( needs the ovs collector|: ovs-vswitchd is not running|: .* has no USDT probes)/],
    ] as const) {
      const r = cli([...args]);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(msg);
    }
  });
});

describe('probes', () => {
  it.each([
    ['tp:net:netif_rx', 'tp:net:netif_rx', false],
    ['skb:kfree_skb', 'tp:skb:kfree_skb', false],
    ['skb:kfree_skb/stack', 'tp:skb:kfree_skb', true],
    ['raw_tracepoint:net:netif_rx', 'tp:net:netif_rx', false],
    ['k:ip_rcv', 'kprobe:ip_rcv', false],
    ['kr:ip_rcv/stack', 'kretprobe:ip_rcv', true],
    ['ip_rcv', 'ip_rcv', false],
    ['usdt:/usr/sbin/ovs-vswitchd:dpif_recv:recv_upcall', 'usdt:/usr/sbin/ovs-vswitchd:dpif_recv:recv_upcall', false],
  ])('Retis spelling %s -> %s', (input, spec, stack) => {
    expect(normalizeProbeArg(input)).toEqual({ spec, stack });
  });

  it('refuses unknown probe options', () => {
    expect(() => normalizeProbeArg('tp:skb:kfree_skb/nope')).toThrow(/unknown probe option 'nope'/);
    expect(() => normalizeProbeArg('tp:skb:kfree_skb/')).toThrow(/empty probe option/);
  });

  it('reads skbaddr/reason offsets of a classic tracepoint from its tracefs format', () => {
    const dir = path.join(tmp, 'tracefs', 'events', 'skb', 'kfree_skb');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'format'),
      `name: kfree_skb\nID: 1\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:void * rx_sk;\toffset:24;\tsize:8;\tsigned:0;\n\tfield:unsigned short protocol;\toffset:32;\tsize:2;\tsigned:0;\n\tfield:enum skb_drop_reason reason;\toffset:36;\tsize:4;\tsigned:0;\n`,
    );
    expect(tracepointRecordOffsets(path.join(tmp, 'tracefs'), 'skb', 'kfree_skb')).toEqual({ skb: 8, dev: -1, reason: 36 });
    expect(tracepointRecordOffsets(undefined, 'skb', 'kfree_skb')).toEqual({ skb: -1, dev: -1, reason: -1 });
  });
});

describe('names', () => {
  const btfPath = '/sys/kernel/btf/vmlinux';
  it('drop reasons come from the running kernel (core names stripped, subsystems split)', () => {
    if (!fs.existsSync(btfPath)) {
      console.log(`SKIP drop reason names: ${btfPath} missing`);
      return;
    }
    const btf = Btf.vmlinux();
    const values = btf.enumValues('skb_drop_reason');
    const r = new DropReasons(btf);
    expect(r.name(values.get('SKB_DROP_REASON_NO_SOCKET')!)).toEqual({ subsys: undefined, reason: 'NO_SOCKET' });
    expect(r.name(values.get('SKB_DROP_REASON_NETFILTER_DROP')!)).toEqual({ subsys: undefined, reason: 'NETFILTER_DROP' });
    // openvswitch (subsystem 2): names from the module's BTF when loaded, else the number.
    const ovs = r.name((2 << 16) | 1);
    expect(ovs.subsys).toBe('openvswitch');
    expect(ovs.reason).toMatch(/^(OVS_DROP_\w+|1)$/);
    expect(r.name(0xfff0).reason).toBe(String(0xfff0));
  });

  it('stack addresses become function+offset from kallsyms', () => {
    const f = path.join(tmp, 'kallsyms');
    fs.writeFileSync(f, 'ffffffff81000000 T _stext\nffffffff81001000 t ip_rcv\nffffffff81002000 T kfree_skb_reason\nffffffffc0001000 t ovs_dp_upcall\t[openvswitch]\nffffffff81003000 d some_data\n');
    const s = KernelSymbols.load(f);
    expect(s.size).toBe(4);
    expect(s.format(0xffffffff81001a2bn)).toBe('ip_rcv+0xa2b');
    expect(s.format(0xffffffffc0001010n)).toBe('ovs_dp_upcall+0x10');
    expect(s.format(0x1000n)).toBe('0x1000');
    expect(new TextDecoder().decode(s.bytes(0xffffffff81002000n))).toBe('kfree_skb_reason+0x0');
    fs.appendFileSync(f, 'ffffffffa0000000 t bpf_prog_68e06814695f1034_capture_tp_btf\n');
    const t = KernelSymbols.load(f);
    expect(t.isTracer(0xffffffffa0000010n)).toBe(true);
    expect(t.isTracer(0xffffffff81001a2bn)).toBe(false);
  });
});

describe('profiles', () => {
  it("reads Retis's profile files (several documents, conditions, lists, null flags)", () => {
    const drop = parseYamlDocuments(fs.readFileSync(compat('profiles/drop.yaml'), 'utf8'));
    expect(drop).toHaveLength(2);
    expect(drop[0]).toEqual({ version: '1.0', name: 'dropmon', about: 'Drop monitor-like', collect: [{ args: { collectors: 'skb-drop,skb,dev,ns', probe: 'tp:skb:kfree_skb/stack' } }], pcap: [{ args: { probe: 'tp:skb:kfree_skb' } }] });
    const example = findProfile(compat('profiles/example.yaml'));
    expect(example.collect.map((c) => c.name)).toEqual(['A minimum kernel version that has a symbol', 'The specific kernel without a symbol', 'Most of old kernels', 'Recent kernels with a tracepoins', 'Default']);
    expect(example.collect[0]!.args).toEqual({ collectors: 'skb', 'ovs-track': null });
    expect(example.collect[1]!.when[1]).toEqual({ type: 'symbol', version: undefined, name: 'some_tracepoint', exists: false });
    const generic = findProfile(compat('profiles/generic.yaml'));
    expect(generic.collect[0]!.args.probe).toHaveLength(25);
  });

  it('applies the first matching entry as arguments after the user-given ones', () => {
    expect(profileArgs(findProfile('dropmon')).args).toEqual(['--collectors', 'skb-drop,skb,dev,ns', '--probe', 'tp:skb:kfree_skb/stack']);
    expect(profileArgs(findProfile(compat('profiles/example.yaml')), '3.10.0').args).toEqual(['--collectors', 'skb', '--skb-sections', 'l3']);
    const o = applyProfiles(parseCaptureArgs(['--profile', 'dropmon', '-p', 'tp:net:netif_rx', '-c', 'skb']), []);
    expect(o.probes).toEqual(['tp:net:netif_rx', 'tp:skb:kfree_skb/stack']);
    expect(o.collectors).toEqual(['skb']); // the user's -c wins
    expect(applyProfiles(parseCaptureArgs(['--profile', 'generic']), []).collectors).toBeUndefined(); // auto
    expect(() => findProfile('no-such-profile')).toThrow(/no profile named 'no-such-profile'/);
  });

  it('matches kernel version requirements as Retis does', () => {
    expect(versionMatches('6.18.44-fc', '>=3.5.5, <6')).toBe(false);
    expect(versionMatches('5.14.0-362.el9', '>=3.5.5, <6')).toBe(true);
    expect(versionMatches('4.6.1', '=4.6.1')).toBe(true);
    expect(versionMatches('4.6.2', '>4.6.1')).toBe(true);
    expect(() => versionMatches('6.1', 'soon')).toThrow(/invalid version requirement/);
  });
});
