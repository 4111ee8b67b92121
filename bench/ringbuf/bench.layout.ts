/**
 * Records of the ring buffer benchmark (bench.bpf.c). 64 and 256 bytes exactly, so "records/s at
 * 64 B" means what it says. The C header build/include/bench.layout.h is generated from this file.
 */
import { defineLayout } from '../../bpf/layout.ts';

export const benchRecord64 = defineLayout('bench_record64', {
  seq: { type: 'u64', doc: 'attempt number on this CPU' },
  ts: 'u64',
  cpu: 'u32',
  burst_index: 'u32',
  payload: { type: 'u8', length: 40 },
});

export const benchRecord256 = defineLayout('bench_record256', {
  seq: 'u64',
  ts: 'u64',
  cpu: 'u32',
  burst_index: 'u32',
  payload: { type: 'u8', length: 232 },
});
