/** A tiny pcap-ng reader for tests (little-endian sections only), independent of the writer. */

// ---------------------------------------------------------------------------------------
// Tiny pcap-ng reader (little-endian sections only)
// ---------------------------------------------------------------------------------------

export interface RawOption {
  code: number;
  value: Uint8Array;
}
export interface RawBlock {
  type: number;
  offset: number;
  totalLength: number;
  body: Uint8Array;
}
export type Block =
  | { kind: 'shb'; raw: RawBlock; major: number; minor: number; sectionLength: bigint; options: RawOption[] }
  | { kind: 'idb'; raw: RawBlock; linktype: number; snaplen: number; options: RawOption[] }
  | {
      kind: 'epb';
      raw: RawBlock;
      interfaceId: number;
      timestamp: bigint;
      capLen: number;
      origLen: number;
      data: Uint8Array;
      options: RawOption[];
    }
  | { kind: 'custom'; raw: RawBlock; copiable: boolean; pen: number; payload: Uint8Array }
  | { kind: 'other'; raw: RawBlock };

function parseOptions(b: Uint8Array, off: number): RawOption[] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: RawOption[] = [];
  while (off + 4 <= b.length) {
    const code = dv.getUint16(off, true);
    const len = dv.getUint16(off + 2, true);
    if (code === 0) {
      if (len !== 0) throw new Error('opt_endofopt with a length');
      off += 4;
      if (off !== b.length) throw new Error('data after opt_endofopt');
      return out;
    }
    const end = off + 4 + len;
    if (end > b.length) throw new Error(`option ${code} overruns its block`);
    out.push({ code, value: b.subarray(off + 4, end) });
    for (let p = end; p < ((end + 3) & ~3); p++) if (b[p] !== 0) throw new Error('non-zero option padding');
    off = (end + 3) & ~3;
  }
  if (off !== b.length) throw new Error('trailing bytes after options');
  // The spec wants opt_endofopt after options; tolerated missing only when there are none.
  if (out.length > 0) throw new Error('options without opt_endofopt');
  return out;
}

/** Split a pcap-ng file into blocks, checking lengths, trailers and padding. */
export function readPcapng(file: Uint8Array): Block[] {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const blocks: Block[] = [];
  let off = 0;
  while (off < file.length) {
    const type = dv.getUint32(off, true);
    const total = dv.getUint32(off + 4, true);
    if (total % 4 !== 0 || total < 12 || off + total > file.length) throw new Error(`bad block length ${total} at ${off}`);
    if (dv.getUint32(off + total - 4, true) !== total) throw new Error(`trailer length mismatch at ${off}`);
    const body = file.subarray(off + 8, off + total - 4);
    const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const raw: RawBlock = { type, offset: off, totalLength: total, body };
    if (type === 0x0a0d0d0a) {
      if (bv.getUint32(0, true) !== 0x1a2b3c4d) throw new Error('not a little-endian section');
      blocks.push({
        kind: 'shb',
        raw,
        major: bv.getUint16(4, true),
        minor: bv.getUint16(6, true),
        sectionLength: bv.getBigInt64(8, true),
        options: parseOptions(body, 16),
      });
    } else if (type === 1) {
      blocks.push({ kind: 'idb', raw, linktype: bv.getUint16(0, true), snaplen: bv.getUint32(4, true), options: parseOptions(body, 8) });
    } else if (type === 6) {
      const capLen = bv.getUint32(12, true);
      const dataEnd = 20 + capLen;
      for (let p = dataEnd; p < ((dataEnd + 3) & ~3); p++) if (body[p] !== 0) throw new Error('non-zero data padding');
      blocks.push({
        kind: 'epb',
        raw,
        interfaceId: bv.getUint32(0, true),
        timestamp: (BigInt(bv.getUint32(4, true)) << 32n) | BigInt(bv.getUint32(8, true)),
        capLen,
        origLen: bv.getUint32(16, true),
        data: body.subarray(20, dataEnd),
        options: parseOptions(body, (dataEnd + 3) & ~3),
      });
    } else if (type === 0xbad || type === 0x40000bad) {
      blocks.push({ kind: 'custom', raw, copiable: type === 0xbad, pen: bv.getUint32(0, true), payload: body.subarray(4) });
    } else {
      blocks.push({ kind: 'other', raw });
    }
    off += total;
  }
  return blocks;
}

export const utf8 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
export const optionText = (opts: RawOption[], code: number): string | undefined => {
  const o = opts.find((x) => x.code === code);
  return o === undefined ? undefined : utf8(o.value);
};

/** Comments (option 1) of every Enhanced Packet Block: Retis writes each event's text there. */
export function pcapngComments(file: Uint8Array): string[] {
  return readPcapng(file)
    .filter((b): b is Extract<Block, { kind: 'epb' }> => b.kind === 'epb')
    .map((b) => optionText(b.options, 1) ?? '');
}
