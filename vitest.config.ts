import { defineConfig } from 'vitest/config';

// Two projects: unit tests run anywhere with no server; integration tests share one real control plane,
// PostgreSQL and Redis that the global setup starts once per run.
export default defineConfig({
  test: {
    reporters: ['default', './test/harness/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            '{operator,crds,model,placement,views,queue,state,controllers,workloads,cmd,hack,charts}/**/*.test.ts',
          ],
          environment: 'node',
          // Unit tests run first; the integration group starts when they are done.
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/harness/global-setup.ts'],
          sequence: { groupOrder: 1 },
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
