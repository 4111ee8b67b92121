/**
 * Where the ct and nft blocks are in a probe's records (nftct.layout.ts): after the header, the
 * packet room (snap length rounded to 8, when the probe collects packets) and the stack room
 * (64 addresses with stacks), ct first. Mirrors CT_ROOM/NFT_ROOM in capture.bpf.c.
 */
import { captureEvent, CaptureCollect } from '../progs/capture.layout.ts';
import { CT_BLOCK_BYTES } from '../progs/nftct.layout.ts';

const C = CaptureCollect.values;
const MAX_STACK_DEPTH = 64;

export function probeExtOffsets(collect: number, snaplen: number): { ctOff: number; nftOff: number } {
  const ext = captureEvent.size + (collect & C.skb ? (snaplen + 7) & ~7 : 0) + (collect & C.stack ? MAX_STACK_DEPTH * 8 : 0);
  const ctOff = collect & C.ct ? ext : -1;
  const nftOff = collect & C.nft ? ext + (ctOff >= 0 ? CT_BLOCK_BYTES : 0) : -1;
  return { ctOff, nftOff };
}
