import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BLOCK_CUSTOM_COPIABLE,
  BLOCK_CUSTOM_NOCOPY,
  EPB_FLAGS,
  EPB_PACKETID,
  EPB_VERDICT,
  IF_DESCRIPTION,
  IF_NAME,
  IF_TSRESOL,
  OPT_COMMENT,
  OPT_CUSTOM_BIN_NOCOPY,
  OPT_CUSTOM_STR_COPY,
  PcapngWriter,
  SHB_USERAPPL,
  VERDICT_LINUX_EBPF_TC,
} from '../../analyze/pcap/pcapng-writer.ts';
import { optionText, readPcapng, utf8, type Block } from './util.ts';

const dir = mkdtempSync(join(tmpdir(), 'retis-pcapng-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hasTool = (t: string): boolean => spawnSync(t, ['--version'], { stdio: 'ignore' }).status === 0;
const haveTshark = hasTool('tshark') && hasTool('capinfos');
const run = (cmd: string, args: string[]): string =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 });

/** Collect what a writer produces through the sink output. */
function capture(fn: (w: PcapngWriter) => void, bufferSize?: number): Uint8Array {
  const chunks: Buffer[] = [];
  const w = new PcapngWriter({ sink: (c) => chunks.push(Buffer.from(c)) }, bufferSize === undefined ? {} : { bufferSize });
  fn(w);
  w.close();
  return Buffer.concat(chunks);
}

const bytes = (n: number, seed = 0): Uint8Array => new Uint8Array(n).map((_, i) => (i * 7 + seed) & 0xff);
const epbs = (blocks: Block[]) => blocks.flatMap((b) => (b.kind === 'epb' ? [b] : []));
const idbs = (blocks: Block[]) => blocks.flatMap((b) => (b.kind === 'idb' ? [b] : []));

describe('PcapngWriter', () => {
  it('writes an SHB first, without options by default', () => {
    const f = capture(() => {});
    expect(Buffer.from(f).toString('hex')).toBe('0a0d0d0a1c0000004d3c2b1a01000000ffffffffffffffff1c000000');
    const [shb] = readPcapng(f);
    expect(shb).toMatchObject({ kind: 'shb', major: 1, minor: 0, sectionLength: -1n, options: [] });
  });

  it('writes SHB options when given', () => {
    const chunks: Buffer[] = [];
    const w = new PcapngWriter({ sink: (c) => chunks.push(Buffer.from(c)) }, { section: { userAppl: 'retis-ts', comment: 'hé' } });
    w.close();
    const [b] = readPcapng(Buffer.concat(chunks));
    if (b?.kind !== 'shb') throw new Error('no SHB');
    expect(optionText(b.options, SHB_USERAPPL)).toBe('retis-ts');
    expect(optionText(b.options, OPT_COMMENT)).toBe('hé');
  });

  it('round-trips interfaces, packets and options', () => {
    const d0 = bytes(61);
    const d1 = bytes(64, 3);
    const f = capture((w) => {
      expect(w.addInterface({ name: 'a', description: 'first', tsresol: 9, snaplen: 0xffff })).toBe(0);
      expect(w.addInterface({ name: 'bé', linktype: 113 })).toBe(1);
      w.writePacket(0, 1_742_339_565_860_103_793n, d0, 98, {
        comment: 'line1\nline2 ü',
        custom: [
          { pen: 70000, value: '{"a":1}' },
          { code: OPT_CUSTOM_BIN_NOCOPY, pen: 32473, value: new Uint8Array([1, 2, 3]) },
        ],
        flags: 0x1,
        packetId: 0xffff8e95c3b67c00n,
        verdict: { type: VERDICT_LINUX_EBPF_TC, data: new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0]) },
      });
      w.writePacket(1, 1_700_000_000_123_456, d1);
      w.writeCustomBlock(70000, 'xyz');
      w.writeCustomBlock(1, new Uint8Array([9, 9, 9, 9]), false);
      expect(w.interfaceCount).toBe(2);
    });
    const blocks = readPcapng(f);
    expect(blocks.map((b) => b.kind)).toEqual(['shb', 'idb', 'idb', 'epb', 'epb', 'custom', 'custom']);
    const [i0, i1] = idbs(blocks);
    expect(i0).toMatchObject({ linktype: 1, snaplen: 0xffff });
    expect(i0?.options.map((o) => o.code)).toEqual([IF_NAME, IF_DESCRIPTION, IF_TSRESOL]);
    expect(optionText(i0!.options, IF_NAME)).toBe('a');
    expect(optionText(i0!.options, IF_DESCRIPTION)).toBe('first');
    expect([...i0!.options[2]!.value]).toEqual([9]);
    expect(i1).toMatchObject({ linktype: 113, snaplen: 0 });
    expect(optionText(i1!.options, IF_NAME)).toBe('bé');

    const [p0, p1] = epbs(blocks);
    expect(p0).toMatchObject({ interfaceId: 0, timestamp: 1_742_339_565_860_103_793n, capLen: 61, origLen: 98 });
    expect([...p0!.data]).toEqual([...d0]);
    expect(p0!.options.map((o) => o.code)).toEqual([OPT_COMMENT, OPT_CUSTOM_STR_COPY, OPT_CUSTOM_BIN_NOCOPY, EPB_FLAGS, EPB_PACKETID, EPB_VERDICT]);
    expect(optionText(p0!.options, OPT_COMMENT)).toBe('line1\nline2 ü');
    const c0 = p0!.options[1]!.value;
    expect(Buffer.from(c0.subarray(0, 4)).readUInt32LE(0)).toBe(70000);
    expect(utf8(c0.subarray(4))).toBe('{"a":1}');
    expect([...p0!.options[2]!.value]).toEqual([0xd9, 0x7e, 0, 0, 1, 2, 3]);
    expect(Buffer.from(p0!.options[4]!.value).readBigUInt64LE(0)).toBe(0xffff8e95c3b67c00n);
    expect([...p0!.options[5]!.value]).toEqual([1, 2, 0, 0, 0, 0, 0, 0, 0]);
    // No options: no opt_endofopt either (the reader rejects a missing one otherwise).
    expect(p1).toMatchObject({ interfaceId: 1, timestamp: 1_700_000_000_123_456n, capLen: 64, origLen: 64, options: [] });
    expect(p1!.raw.totalLength).toBe(32 + 64);

    const customs = blocks.flatMap((b) => (b.kind === 'custom' ? [b] : []));
    expect(customs[0]).toMatchObject({ copiable: true, pen: 70000 });
    expect(customs[0]!.raw.type).toBe(BLOCK_CUSTOM_COPIABLE);
    expect([...customs[0]!.payload]).toEqual([0x78, 0x79, 0x7a, 0]); // zero-padded
    expect(customs[1]!.raw.type).toBe(BLOCK_CUSTOM_NOCOPY);
  });

  it('handles empty and awkward strings', () => {
    const emoji = '😀'.repeat(100); // surrogate pairs: 4 UTF-8 bytes per 2 UTF-16 units
    const f = capture((w) => {
      w.addInterface({ name: '' });
      w.writePacket(0, 0n, new Uint8Array(0), 0, { comment: '' });
      w.writePacket(0, 2n ** 64n - 1n, new Uint8Array(1), 1500, { comment: emoji });
    });
    const [a, b] = epbs(readPcapng(f));
    expect(optionText(a!.options, OPT_COMMENT)).toBe('');
    expect(a!.capLen).toBe(0);
    expect(b!.timestamp).toBe(2n ** 64n - 1n);
    expect(b!.origLen).toBe(1500);
    expect(optionText(b!.options, OPT_COMMENT)).toBe(emoji);
  });

  it('streams through a small buffer and grows it for blocks larger than the buffer', () => {
    const big = 'x'.repeat(60_000);
    const n = 2000;
    const f = capture((w) => {
      w.addInterface({ tsresol: 9 });
      for (let i = 0; i < n; i++) w.writePacket(0, BigInt(i), bytes(i % 300, i), 1000, i % 500 === 7 ? { comment: big } : { comment: `#${i}` });
    }, 4096);
    const ps = epbs(readPcapng(f));
    expect(ps).toHaveLength(n);
    ps.forEach((p, i) => {
      expect(p.timestamp).toBe(BigInt(i));
      expect(Buffer.compare(p.data, bytes(i % 300, i))).toBe(0);
      expect(optionText(p.options, OPT_COMMENT)).toBe(i % 500 === 7 ? big : `#${i}`);
    });
  });

  it('rejects an option longer than 65535 bytes and leaves the file well-formed', () => {
    const f = capture((w) => {
      w.addInterface({});
      w.writePacket(0, 1n, bytes(10), 10, { comment: 'ok' });
      // Too long once encoded (80,000 bytes): detected while writing, the block is dropped.
      expect(() => w.writePacket(0, 2n, bytes(10), 10, { comment: 'é'.repeat(40_000) })).toThrow(RangeError);
      // Too long already as a string: rejected before anything is written.
      expect(() => w.writePacket(0, 2n, bytes(10), 10, { comment: 'x'.repeat(70_000) })).toThrow(RangeError);
      expect(() => w.addInterface({ name: 'x'.repeat(70_000) })).toThrow(RangeError);
      expect(() => w.writePacket(0, 2n, bytes(10), 10, { custom: [{ pen: 1, value: new Uint8Array(65532) }] })).toThrow(RangeError);
      w.writePacket(0, 3n, bytes(10), 10, { comment: 'ok again', custom: [{ pen: 1, value: new Uint8Array(65531) }] });
    });
    const ps = epbs(readPcapng(f));
    expect(ps.map((p) => p.timestamp)).toEqual([1n, 3n]);
  });

  it('refuses writes after close', () => {
    const w = new PcapngWriter({ sink: () => {} });
    w.close();
    w.close();
    expect(() => w.writePacket(0, 0n, new Uint8Array(1))).toThrow(/closed/);
  });

  it('creates files with mode 0600 and truncates existing ones', () => {
    const path = join(dir, 'mode.pcapng');
    for (let k = 0; k < 2; k++) {
      const w = new PcapngWriter({ path });
      w.addInterface({});
      w.writePacket(0, 0n, bytes(k === 0 ? 500 : 20));
      w.close();
    }
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(epbs(readPcapng(readFileSync(path)))[0]?.capLen).toBe(20);
  });

  it('writes to stdout (a pipe) the same bytes as to a file', () => {
    const file = join(dir, 'child.pcapng');
    const child = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'stdout-child.ts'), file], {
      maxBuffer: 1 << 26,
    });
    expect(child.stderr.toString()).toBe('');
    expect(child.status).toBe(0);
    expect(child.stdout.length).toBeGreaterThan(1_000_000);
    expect(Buffer.compare(child.stdout, readFileSync(file))).toBe(0);
  });

  it.skipIf(!haveTshark)('is read back by tshark and capinfos', () => {
    const path = join(dir, 'tshark.pcapng');
    const w = new PcapngWriter({ path });
    w.addInterface({ name: 'kprobe/tcp_v4_rcv', description: 'd0', tsresol: 9, snaplen: 0xffff });
    w.addInterface({ name: 'raw_tracepoint/skb:kfree_skb', tsresol: 9 });
    // Ethernet + IPv4 + ICMP echo request header, enough for tshark to dissect.
    const pkt = Buffer.from('ffffffffffff0200000000010800450000540000400040010000c0a80001c0a800020800f7ff00000000', 'hex');
    for (let i = 0; i < 10; i++) {
      w.writePacket(i % 2, 1_700_000_000_000_000_000n + BigInt(i * 1001), pkt, 98, {
        comment: `packet ${i}\nsecond line`,
        custom: [{ pen: 70000, value: `{"i":${i}}` }],
        packetId: BigInt(i) + 0xffff000000000000n,
        ...(i % 2 === 1 ? { verdict: { type: VERDICT_LINUX_EBPF_TC, data: new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0]) } } : {}),
      });
    }
    w.close();
    const fields = run('tshark', ['-r', path, '-T', 'fields', '-E', 'separator=|', '-e', 'frame.interface_name', '-e', 'frame.time_epoch', '-e', 'frame.len', '-e', 'frame.cap_len', '-e', 'frame.packet_id', '-e', 'frame.verdict.ebpf_tc', '-e', 'ip.dst'])
      .trim()
      .split('\n');
    expect(fields).toHaveLength(10);
    expect(fields[0]).toBe('kprobe/tcp_v4_rcv|1700000000.000000000|98|42|18446462598732840960||192.168.0.2');
    expect(fields[3]).toBe('raw_tracepoint/skb:kfree_skb|1700000000.000003003|98|42|18446462598732840963|2|192.168.0.2');
    // Comments with newlines: tshark -T fields would escape them, the JSON output does not.
    const json = JSON.parse(run('tshark', ['-r', path, '-T', 'json', '-e', 'frame.comment'])) as { _source: { layers: { 'frame.comment': string[] } } }[];
    expect(json.map((p) => p._source.layers['frame.comment'][0])).toEqual(Array.from({ length: 10 }, (_, i) => `packet ${i}\nsecond line`));
    const info = run('capinfos', ['-M', path]);
    expect(info).toMatch(/Number of packets:\s+10\n/);
    expect(info).toMatch(/Number of interfaces in file:\s+2\n/);
    expect(info).toMatch(/Time precision = nanoseconds \(9\)/);
  });
});
