import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Files share the machine's Redis and PostgreSQL (each under its own prefix or
    // database); two workers keep a 2-core machine responsive.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
