/**
 * Records of selftest.bpf.c: generic probes of every attach type, used by the live tests
 * (tests/bpf) and as a smoke test of a machine (`npm run build:bpf` then the tests).
 * The C header build/include/selftest.layout.h is generated from this file.
 */
import { defineEnum, defineLayout } from '../layout.ts';

/** Which program emitted the record. */
export const SelftestKind = defineEnum('retis_selftest_kind', {
  tracepoint: 1,
  raw_tp: 2,
  tp_btf: 3,
  kprobe: 4,
  kretprobe: 5,
  fentry: 6,
  fexit: 7,
  uprobe: 8,
  uretprobe: 9,
  usdt: 10,
  kfree_skb: 11,
});

export const selftestEvent = defineLayout(
  'retis_selftest_event',
  {
    ts: { type: 'u64', doc: 'bpf_ktime_get_ns()' },
    skb: { type: 'u64', doc: 'struct sk_buff * when the probe has one (skb_arg), else 0' },
    arg0: { type: 'u64', doc: 'first argument (kprobe/uprobe/usdt) or return value (ret probes)' },
    probe_id: 'u32',
    kind: { type: 'u32', doc: 'enum retis_selftest_kind' },
    cpu: 'u32',
    pid: { type: 'u32', doc: 'tgid of the current task' },
    netns: { type: 'u32', doc: 'netns inode of the skb (dev, else socket), 0 if none' },
    ifindex: 'u32',
    len: { type: 'u32', doc: 'skb->len' },
    reason: { type: 'u32', doc: 'enum skb_drop_reason (kfree_skb only)' },
    comm: { type: 'char', length: 16 },
  },
  'One event of a selftest probe.',
);
