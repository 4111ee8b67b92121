/**
 * The VM suite: run only inside the guest (tests/vm/guest.sh, under tests/vm/vmrun.sh), never by
 * the host's `npm test` (the root config includes tests/**\/*.test.ts; the VM-only files are named
 * *.vm-test.ts so it does not see them).
 *
 * It runs the live BPF suites unchanged (on the host, kprobe and fentry tests skip: no
 * CONFIG_KPROBES, trampolines refused) plus the VM-only files. Timeouts are ~3x the host's: under
 * TCG the guest runs 10-25x slower than the host, and node/vitest start-up dominates.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: [
      // Live kernel suites (pure ones -- layout, build -- prove nothing new in a VM).
      'tests/bpf/attach.test.ts',
      'tests/bpf/ringbuf.test.ts',
      'tests/bpf/env.test.ts',
      'tests/bpf/btf.test.ts',
      'tests/bpf/probe-spec.test.ts',
      'tests/bpf/shutdown.test.ts',
      'tests/vm/suite/**/*.vm-test.ts',
    ],
    testTimeout: 180_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    // One fork reused for every file: each new worker costs several seconds of node start-up under TCG.
    pool: 'forks',
    isolate: false,
  },
});
