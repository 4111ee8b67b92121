/**
 * Variants of capture.bpf.c that bpf/build.mjs builds beside the generic object, each with some
 * per-probe constants fixed at compile time (-DRETIS_FIXED_<name>=<value>; the CFG_* macros of
 * capture.bpf.c). bpf/probe-set.ts loads a variant for a probe whose constants equal all its
 * fixed ones, the generic object for any other.
 *
 * Why: the verifier prunes the branches these constants decide either way, but leaves a load of
 * the constant at each use and the arithmetic on it; known to clang, they fold into the code
 * around them. For the default probes that is 1909 -> 1486 instructions and +0.01 on the
 * loopback flood's overhead ratio (capture/README.md). Each variant costs ~2.5 s of build and
 * ~500 KiB: one per configuration most captures run.
 */
import type { BpfVariant } from '../../bpf/native.ts';
import { collectBits, COLLECTORS, type CollectorName } from '../collectors.ts';
import { DEFAULT_SNAPLEN } from '../options.ts';

/** The transmit and receive probes of `retis-capture` without -c, --skb-sections, --snaplen. */
const defaults = (collectors: readonly CollectorName[]): BpfVariant['fixed'] => ({
  cfg_collect: collectBits(collectors, new Set()),
  cfg_snaplen: DEFAULT_SNAPLEN,
  // No part in freeing tracking entries (the drop and consume probes keep the generic object).
  cfg_tracking: 0,
});

export const variants: readonly BpfVariant[] = [
  // Without -c, every collector the kernel lets run (as Retis's `auto`); of those only ct
  // depends on the host (nf_conntrack loaded or not), nft and ovs set no bits here.
  { name: 'default', fixed: defaults(COLLECTORS) },
  { name: 'default-noct', fixed: defaults(COLLECTORS.filter((c) => c !== 'ct')) },
];
