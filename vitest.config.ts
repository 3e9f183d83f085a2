import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/e2e/**'],
          // A project does not inherit the root's timeout: under a loaded CI machine, 5 s is too short.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // One sandbox fleet for the whole run (started once, removed at the end, also on Ctrl-C).
          globalSetup: ['test/e2e/global-setup.ts'],
          // The files share the fleet's hosts: one file at a time.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
