import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Child processes, real files and a real Redis: keep parallelism modest
    // on a two-core machine.
    maxWorkers: 2,
  },
});
