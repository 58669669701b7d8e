import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', '.data/**', '.cache/**', '.scratch/**'],
    // One real stack (Temporal, MongoDB-wire, NATS, anvil) for the whole run, on random ports.
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup-env.ts'],
    // One file at a time: integration files start GPU-node processes of their own, and two
    // such files at once on a 2-core machine starve each other's heartbeats and time out.
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    // The JSON report lets .ci/run close with one plain count line.
    reporters: ['default', ['json', { outputFile: '.data/test-results.json' }]],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
  },
});
