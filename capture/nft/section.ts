/**
 * nft collector: the nft block of a record (nftct.layout.ts; written by the __nft_trace_packet
 * kprobe, or by user space from a netlink trace) to Retis's `nft` section: table_name,
 * chain_name, verdict, verdict_chain_name (jump/goto only), table_handle, chain_handle,
 * rule_handle (absent for policies and implicit returns), policy.
 */
import type { Section } from '../../analyze/model/event.ts';
import type { ColumnSet, U64Col, Validity, VarCol } from '../columns.ts';
import { nftEvent } from '../progs/nftct.layout.ts';

const NO = nftEvent.offsets;
const utf8 = new TextEncoder();

/** Verdict codes as Retis names them (nft.rs; NF_* and NFT_* values of the kernel UAPI). */
export const VERDICTS: Record<number, string> = {
  [-1]: 'continue', [-2]: 'break', [-3]: 'jump', [-4]: 'goto', [-5]: 'return',
  0: 'drop', 1: 'accept', 2: 'stolen', 3: 'queue', 4: 'repeat', 5: 'stop',
};

/** Retis's --nft-verdicts default. */
export const DEFAULT_NFT_VERDICTS = ['drop', 'accept'];

/** --nft-verdicts as the mask Retis uses: bit (code + 5) for codes -5..4. */
export function verdictMask(list: readonly string[]): number {
  let m = 0;
  for (const v of list) {
    if (v === 'all') return (1 << 10) - 1;
    const code = Object.entries(VERDICTS).find(([, n]) => n === v)?.[0];
    if (code === undefined || v === 'stop') throw new Error(`unknown nft verdict '${v}'`);
    m |= 1 << (Number(code) + 5);
  }
  return m;
}

export function verdictAllowed(code: number, mask: number): boolean {
  const shift = code + 5;
  return shift >= 0 && shift < 31 && (mask & (1 << shift)) !== 0;
}

/** Verdict codes on the wire may carry data in their high bits (NF_QUEUE_NR, NF_DROP_ERR). */
export function verdictBase(code: number): number {
  return code >= 0 ? code & 0xff : code;
}

function cstr(view: DataView, off: number, max: number): string {
  const a = new Uint8Array(view.buffer, view.byteOffset + off, max);
  const nul = a.indexOf(0);
  return Buffer.from(a.subarray(0, nul < 0 ? max : nul)).toString('utf8');
}

function verdictName(code: number): string {
  return VERDICTS[verdictBase(code)] ?? 'unknown';
}

/** The `nft` section of the nft block at `off` (slow path). */
export function nftSection(view: DataView, off: number): Section {
  const verdict = view.getInt32(off + NO.verdict, true);
  const name = verdictName(verdict);
  const s: Section = {
    table_name: cstr(view, off + NO.table_name, 128),
    chain_name: cstr(view, off + NO.chain_name, 128),
    verdict: name,
  };
  const vc = cstr(view, off + NO.verdict_chain_name, 128);
  if ((name === 'jump' || name === 'goto') && vc) s.verdict_chain_name = vc;
  s.table_handle = view.getBigInt64(off + NO.table_handle, true);
  s.chain_handle = view.getBigInt64(off + NO.chain_handle, true);
  const rh = view.getBigInt64(off + NO.rule_handle, true);
  if (rh >= 0n) s.rule_handle = rh;
  s.policy = view.getUint8(off + NO.policy) !== 0;
  return s;
}

/** What goes in an nft block (user space builds it for the netlink path). */
export interface NftVerdict {
  tableName: string;
  chainName: string;
  verdict: number;
  verdictChainName: string | undefined;
  tableHandle: bigint;
  chainHandle: bigint;
  ruleHandle: bigint | undefined;
  policy: boolean;
}

/** Write an nft block at `off` of `bytes` (nftEvent.size bytes, zeroed by the caller). */
export function writeNftBlock(bytes: Uint8Array, off: number, v: NftVerdict): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setBigInt64(off + NO.table_handle, v.tableHandle, true);
  view.setBigInt64(off + NO.chain_handle, v.chainHandle, true);
  view.setBigInt64(off + NO.rule_handle, v.ruleHandle ?? -1n, true);
  view.setInt32(off + NO.verdict, v.verdict, true);
  view.setUint8(off + NO.policy, v.policy ? 1 : 0);
  const put = (field: number, s: string | undefined): void => {
    if (!s) return;
    const b = utf8.encode(s).subarray(0, 127);
    bytes.set(b, off + field);
  };
  put(NO.table_name, v.tableName);
  put(NO.chain_name, v.chainName);
  put(NO.verdict_chain_name, v.verdictChainName);
}

/** The `nft` columns of a batch. */
export class NftColumns {
  private readonly section: Validity;
  private readonly table: VarCol;
  private readonly chain: VarCol;
  private readonly verdict: VarCol;
  private readonly vchain: VarCol;
  private readonly vchainValid: Validity;
  private readonly tHandle: U64Col;
  private readonly cHandle: U64Col;
  private readonly rHandle: U64Col;
  private readonly rHandleValid: Validity;
  private readonly policy: Uint8Array;
  constructor(c: ColumnSet) {
    this.section = c.struct('nft');
    this.table = c.varlen('nft.table_name', 0);
    this.chain = c.varlen('nft.chain_name', 0);
    this.verdict = c.varlen('nft.verdict', 0);
    this.vchain = c.varlen('nft.verdict_chain_name', 0, true);
    this.vchainValid = c.validity('nft.verdict_chain_name');
    this.tHandle = c.u64('nft.table_handle');
    this.cHandle = c.u64('nft.chain_handle');
    this.rHandle = c.u64('nft.rule_handle', true);
    this.rHandleValid = c.validity('nft.rule_handle');
    this.policy = c.bool('nft.policy');
  }
  write(row: number, view: DataView, off: number): void {
    const s = nftSection(view, off);
    this.section.set(row);
    this.table.set(row, utf8.encode(s.table_name as string));
    this.chain.set(row, utf8.encode(s.chain_name as string));
    this.verdict.set(row, utf8.encode(s.verdict as string));
    if (s.verdict_chain_name !== undefined) {
      this.vchain.set(row, utf8.encode(s.verdict_chain_name as string));
      this.vchainValid.set(row);
    }
    this.tHandle.setBig(row, s.table_handle as bigint);
    this.cHandle.setBig(row, s.chain_handle as bigint);
    if (s.rule_handle !== undefined) {
      this.rHandle.setBig(row, s.rule_handle as bigint);
      this.rHandleValid.set(row);
    }
    if (s.policy) this.policy[row >> 3]! |= 1 << (row & 7);
  }
}
