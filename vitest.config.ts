import { configDefaults, defineConfig } from 'vitest/config';
import PathOrderSequencer from './tools/test/vitest-order.js';

/**
 * CLI files that must not overlap another, run one at a time after the others: the concurrent-builds check
 * touches a kmod source and removes the built module, which would make a build in the other file do work
 * (cli.test.ts checks that a second build does none) or find no module; and the files whose verdict needs the guest's vCPUs to run when the guest asks: racing
 * faults, in the fuzz and in the racing fixture's runs (a racy ->fault shows only while both vCPUs really run
 * at once), and fbcon's cursor blink (a guest timer). Another lane's guest on a 2-core host takes those cores
 * away (make test, 2026-11-30: the fuzz missed fixture-bug-racyfault and the blink fell outside the region's
 * reads; with two busy host threads, the racing workers' faults overlapped about 3 times in 40 rounds instead
 * of about 400, 2026-12-01).
 */
const CLI_ALONE = ['test/cli/concurrency.test.ts', 'test/cli/fuzz.test.ts', 'test/cli/live-framebuffer.test.ts', 'test/cli/racing-fixtures.test.ts'];

/** How many CLI files run at once (MMAPKIT_TEST_LANES, default 2). */
const CLI_LANES = Number(process.env.MMAPKIT_TEST_LANES ?? 2);

export default defineConfig({
  test: {
    reporters: ['default', './tools/test/vitest-summary.ts'],
    sequence: { sequencer: PathOrderSequencer },
    // `mmapkit test --quick` (and `make run`) runs the cases tagged core: one or two per catalogue area.
    tags: [{ name: 'core', description: 'the quick conformance run: one or two cases per catalogue area' }],
    projects: [
      {
        extends: true,
        // Groups run one after another (sequence.groupOrder); unit and conformance files one at a time:
        // the conformance suite shares one guest between its files.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], maxWorkers: 1, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: {
          name: 'conformance',
          include: ['test/conformance/**/*.test.ts'],
          maxWorkers: 1,
          sequence: { groupOrder: 0 },
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
          exclude: [...configDefaults.exclude, ...CLI_ALONE],
          // Two files at once, each booting its own guests: a TCG guest keeps about one host CPU busy (its
          // boot and the agent are single-threaded), so two use the machine's two cores. Deadlines scale with
          // the boot each guest measures (tools/qemu/deadlines.ts), so the slower boots this brings are allowed for.
          maxWorkers: CLI_LANES,
          // One vCPU per guest in the lanes: two guests at once finish sooner so (0.83x), and two guests'
          // four vCPUs on two cores could not race anyway (docs/benchmarks.md, "Two guests of one vCPU, or of
          // two"). The races run in the conformance project and in cli-alone, on two.
          env: CLI_LANES > 1 ? { MMAPKIT_GUEST_CPUS: '1' } : {},
          sequence: { groupOrder: 1 },
          testTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'cli-alone',
          include: [...CLI_ALONE],
          maxWorkers: 1,
          sequence: { groupOrder: 2 },
          testTimeout: 180_000,
        },
      },
    ],
  },
});
