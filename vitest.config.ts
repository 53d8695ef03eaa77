import { defineConfig } from 'vitest/config';

// Two projects: unit tests run anywhere with no server; integration tests share one real control plane,
// PostgreSQL and Redis that the global setup starts once per run.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{operator,crds,controllers,workloads,hack}/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Tests share one control plane; each gets its own namespace, so files may run side by side.
          fileParallelism: true,
          maxWorkers: 2,
        },
      },
    ],
  },
});
