import { defineConfig } from 'vitest/config';
import PathOrderSequencer from './tools/test/vitest-order.js';

export default defineConfig({
  test: {
    reporters: ['default', './tools/test/vitest-summary.ts'],
    sequence: { sequencer: PathOrderSequencer },
    // `mmapkit test --quick` (and `make run`) runs the cases tagged core: one or two per catalogue area.
    tags: [{ name: 'core', description: 'the quick conformance run: one or two cases per catalogue area' }],
    // Files run one after another: a VM under TCG needs both cores, and the
    // conformance suite shares one guest between its files.
    fileParallelism: false,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'conformance',
          include: ['test/conformance/**/*.test.ts'],
          globalSetup: ['test/conformance/global-setup.ts'],
          // Sets the case and hook timeouts from the shared guest's request deadline
          // (tools/qemu/deadlines.ts); the two below are their floors.
          setupFiles: ['test/conformance/case-timeout.ts'],
          // One worker for every file (they run one after another anyway): a fresh module
          // graph per file cost about 0.2 s each, most of a quick run's overhead.
          isolate: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'cli',
          include: ['test/cli/**/*.test.ts'],
          testTimeout: 180_000,
        },
      },
    ],
  },
});
