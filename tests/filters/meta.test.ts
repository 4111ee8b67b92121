/**
 * Meta filter (-m): grammar, resolution over the running kernel's BTF (errors name the struct and
 * the member), and generated code run in the kernel (root) over fake kernel objects: a fake
 * sk_buff and net_device in a map value, linked by their kernel addresses, read by the generated
 * code with bpf_probe_read_kernel exactly as in the probes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Btf } from '../../bpf/btf.ts';
import { BpfObject } from '../../bpf/object.ts';
import { bpfObjectPath } from '../../bpf/native.ts';
import { matchAll } from '../../bpf/filters/ebpf.ts';
import { FILTER_L2_MAGIC, FILTER_L3_MAGIC, FILTER_META_MAGIC } from '../../bpf/filters/layout.ts';
import { compileMetaFilter, MetaFilterResolveError, MetaFilterSyntaxError, parseMetaFilter } from '../../bpf/filters/meta.ts';
import { liveIt, liveSkipReason } from '../bpf/helpers.ts';

const hasBtf = (() => {
  try {
    Btf.vmlinux();
    return true;
  } catch {
    return false;
  }
})();
const live = liveSkipReason();

describe('meta filter grammar', () => {
  it('parses Retis forms', () => {
    expect(parseMetaFilter('sk_buff.mark == 0x100')).toMatchObject({ kind: 'term', root: 'sk_buff', fields: [{ name: 'mark' }], op: '==', rhs: { kind: 'num', value: 0x100n } });
    expect(parseMetaFilter("sk_buff.dev.name == 'eth0'")).toMatchObject({ fields: [{ name: 'dev' }, { name: 'name' }], rhs: { kind: 'str', value: 'eth0' } });
    expect(parseMetaFilter('sk_buff._nfct:~0x7:nf_conn.mark')).toMatchObject({ fields: [{ name: '_nfct', mask: { value: 7n, invert: true }, cast: 'nf_conn' }, { name: 'mark' }], op: undefined });
    expect(parseMetaFilter('sk_buff.mark:0b11 == 1')).toMatchObject({ fields: [{ name: 'mark', mask: { value: 3n, invert: false } }] });
    expect(parseMetaFilter('sk_buff.priority > -1')).toMatchObject({ rhs: { value: -1n } });
    const chain = parseMetaFilter('sk_buff.pkt_type == 0x0 || sk_buff.mark == 0x100 && sk_buff.cloned');
    expect(chain).toMatchObject({ kind: 'chain', rest: [{ op: 'or' }, { op: 'and' }] });
    expect(parseMetaFilter('(sk_buff.mark == 1 or sk_buff.mark == 2) and sk_buff.len > 10')).toMatchObject({ kind: 'chain', first: { kind: 'chain' }, rest: [{ op: 'and' }] });
  });

  it('reports syntax errors with the column', () => {
    expect(() => parseMetaFilter('')).toThrow(MetaFilterSyntaxError);
    expect(() => parseMetaFilter('sk_buff.mark ==')).toThrow(/expected a number or a string after '=='/);
    expect(() => parseMetaFilter('sk_buff.dev.name > "eth0"')).toThrow(/strings can only be compared with == or !=/);
    expect(() => parseMetaFilter('sk_buff.mark == 1 and')).toThrow(/found the end/);
    expect(() => parseMetaFilter('sk_buff.mark == 1)')).toThrow(/unexpected '\)' at column 18/);
    expect(() => parseMetaFilter('(sk_buff.mark == 1')).toThrow(/expected "\)"/);
    expect(() => parseMetaFilter('sk_buff.mark = 1')).toThrow(/unexpected '='/);
    expect(() => parseMetaFilter('sk_buff')).toThrow(/expected "\." and a member/);
  });
});

describe.skipIf(!hasBtf)('meta filter resolution (kernel BTF)', () => {
  const btf = hasBtf ? Btf.vmlinux() : (undefined as unknown as Btf);
  const compile = (s: string): Uint8Array => compileMetaFilter(parseMetaFilter(s), btf, { moduleBtf: () => [] });

  it('compiles numbers, strings, bitfields, masks, pointers', () => {
    for (const s of ['sk_buff.mark == 0x100', 'sk_buff.dev.name == "eth0"', 'sk_buff.cloned', 'sk_buff.mark:0xff == 1', 'sk_buff.dev.nd_net.net.ns.inum == 4026531840', 'sk_buff.pkt_type == 0 || sk_buff.mark == 0x100 && sk_buff.cloned', 'sk_buff.dev.ifindex >= 2', 'sk_buff.sk']) {
      expect(compile(s).length, s).toBeGreaterThan(0);
    }
  });

  it('names the struct and the member that do not exist, with suggestions', () => {
    expect(() => compile('sk_buff.mrak == 1')).toThrow(MetaFilterResolveError);
    expect(() => compile('sk_buff.mrak == 1')).toThrow(/struct sk_buff has no member 'mrak' \(did you mean mark/);
    expect(() => compile('sk_buff.dev.nmae == "x"')).toThrow(/struct net_device has no member 'nmae' \(did you mean name/);
    expect(() => compile('skbuff.mark == 1')).toThrow(/start at sk_buff/);
    expect(() => compile('sk_buff._nfct:~0x7:no_such_struct.mark == 1')).toThrow(/no struct or union named 'no_such_struct'/);
  });

  it('refuses type mismatches clearly', () => {
    expect(() => compile('sk_buff.mark == "eth0"')).toThrow(/'sk_buff.mark' is __u32, a number: compare it with a number/);
    expect(() => compile('sk_buff.dev.name == 3')).toThrow(/'sk_buff.dev.name' is char\[16\], a string: compare it with a string/);
    expect(() => compile('sk_buff.dev.name == "a-very-long-interface-name"')).toThrow(/longer than/);
    expect(() => compile('sk_buff.cloned.x == 1')).toThrow(/bitfield/);
    expect(() => compile('sk_buff.mark.x == 1')).toThrow(/not a struct: it has no member 'x'/);
    expect(() => compile('sk_buff.dev == "x"')).toThrow(/a number/);
  });
});

describe('meta filter code in the kernel', () => {
  const FAKE_AT = 24 + 464; // struct filter_test_in: header 24, buf 464, then fake[4096]
  const DEV_AT = 1024; // fake net_device inside fake[] (fake sk_buff at 0, rtnl_link_ops at 256, a string at 512)
  let btf: Btf;
  beforeAll(() => {
    if (live) return;
    btf = Btf.vmlinux();
    BpfObject.enablePatching();
  });

  liveIt('numbers, strings through a pointer, masks, bitfields, and/or', live, () => {
    const off = (path: string): number => btf.memberPath(path).offsets[0]!;
    const markOff = off('sk_buff.mark');
    const devOff = off('sk_buff.dev');
    const nameOff = off('net_device.name');
    const ifindexOff = off('net_device.ifindex');
    const opsOff = off('net_device.rtnl_link_ops');
    const kindOff = off('rtnl_link_ops.kind');
    const OPS_AT = 256;
    const KIND_AT = 512;
    const cases: [string, boolean][] = [
      ['sk_buff.mark == 0x4201', true],
      ['sk_buff.mark == 0x4200', false],
      ['sk_buff.mark != 0x4200', true],
      ['sk_buff.mark:0xff == 1', true],
      ['sk_buff.mark:~0xff == 0x4200', true],
      ['sk_buff.mark > 0x4000 and sk_buff.mark < 0x5000', true],
      ['sk_buff.mark >= 0x4202', false],
      ['sk_buff.mark', true],
      ['sk_buff.dev.name == "veth-x1"', true],
      ['sk_buff.dev.name == "veth-x"', false],
      ['sk_buff.dev.name == "veth-x12"', false],
      ['sk_buff.dev.name != "eth0"', true],
      ['sk_buff.dev.ifindex == 77', true],
      ['sk_buff.dev.ifindex == 77 && sk_buff.mark == 1', false],
      ['sk_buff.mark == 1 || sk_buff.dev.ifindex == 77', true],
      ['(sk_buff.mark == 1 || sk_buff.mark == 2) && sk_buff.dev.ifindex == 77', false],
      ['sk_buff.dev.rtnl_link_ops.kind == "veth"', true], // char *: pointer, then the string
      ['sk_buff.dev.rtnl_link_ops.kind == "vet"', false],
      ['sk_buff.dev.rtnl_link_ops.kind != "bridge"', true],
      ['sk_buff.sk == 0', true],
      ['sk_buff.sk.sk_mark == 1', false], // NULL pointer on the way: no match
    ];
    for (const [expr, want] of cases) {
      const obj = BpfObject.open(bpfObjectPath('filter_test'));
      try {
        obj.patchProgram('filter_test', FILTER_L2_MAGIC, matchAll());
        obj.patchProgram('filter_test', FILTER_L3_MAGIC, matchAll());
        obj.patchProgram('filter_test', FILTER_META_MAGIC, compileMetaFilter(parseMetaFilter(expr), btf, { moduleBtf: () => [] }));
        obj.load();
        const map = obj.map('filter_test_in');
        const key = new Uint8Array(4);
        const v = new Uint8Array(map.info.valueSize);
        const dv = new DataView(v.buffer);
        dv.setUint32(8, 4, true); // variant: meta
        map.update(key, v);
        obj.testRun('filter_test'); // learns the kernel address of fake[]
        const self = new DataView(map.lookup(key)!.buffer).getBigUint64(16, true);
        dv.setUint32(FAKE_AT + markOff, 0x4201, true);
        dv.setBigUint64(FAKE_AT + devOff, self + BigInt(DEV_AT), true);
        v.set(Buffer.from('veth-x1\0'), FAKE_AT + DEV_AT + nameOff);
        dv.setInt32(FAKE_AT + DEV_AT + ifindexOff, 77, true);
        dv.setBigUint64(FAKE_AT + DEV_AT + opsOff, self + BigInt(OPS_AT), true);
        dv.setBigUint64(FAKE_AT + OPS_AT + kindOff, self + BigInt(KIND_AT), true);
        v.set(Buffer.from('veth\0'), FAKE_AT + KIND_AT);
        map.update(key, v);
        const got = obj.testRun('filter_test').retval;
        expect(got, expr).toBe(want ? 1 : 0);
      } finally {
        obj.close();
      }
    }
  }, 120_000);
});
