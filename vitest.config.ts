import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Live kernel tests share netns names and the BPF subsystem: one file at a time is safer on 2 cores.
    fileParallelism: false,
  },
});
