import { configDefaults, defineConfig } from 'vitest/config';
import PathOrderSequencer from './tools/test/vitest-order.js';
import { RACES_PROJECT, TEST_GUESTS_ENV, testGuestCount } from './tools/test/guest-count.js';

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

/** The conformance file whose cases race two vCPUs' faults: run alone, after the others (project conformance-races). */
const CONFORMANCE_RACES = ['test/conformance/cases/11-concurrency.test.ts'];

/** The guests a conformance run shares out, one test worker each (tools/test/guest-pool.ts). */
const CONFORMANCE_GUESTS = testGuestCount();

/** What both conformance projects share: the guests, the case timeouts, one module graph per worker. */
const CONFORMANCE = {
  globalSetup: ['test/conformance/global-setup.ts'],
  // case-timeout.ts sets the case and hook timeouts from the shared guest's request deadline
  // (tools/qemu/deadlines.ts; the two below are their floors); byte-equality.ts compares bytes by memcmp.
  setupFiles: ['test/conformance/case-timeout.ts', 'test/byte-equality.ts'],
  // A worker runs its files one after another, in one module graph: a fresh one per file cost
  // about 0.2 s each, most of a quick run's overhead.
  isolate: false,
  testTimeout: 60_000,
  hookTimeout: 120_000,
};

export default defineConfig({
  test: {
    reporters: ['default', './tools/test/vitest-summary.ts'],
    sequence: { sequencer: PathOrderSequencer },
    // Each file's transform kept in node_modules/.experimental-vitest-cache, keyed by its content and the
    // config: a quick run transformed its files in 0.86 s of the main thread's time each run, 0.14 s so.
    experimental: { fsModuleCache: true },
    // `mmapkit test --quick` (and `make run`) runs the cases tagged core: one or two per catalogue area.
    tags: [{ name: 'core', description: 'the quick conformance run: one or two cases per catalogue area' }],
    projects: [
      {
        extends: true,
        // Groups run one after another (sequence.groupOrder); unit files one at a time.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], maxWorkers: 1, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: {
          name: 'conformance',
          include: ['test/conformance/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...CONFORMANCE_RACES],
          // One worker per guest of the run (tools/test/guest-pool.ts): each file runs in one guest, the
          // files one after another in each, half of them in each of two guests.
          maxWorkers: CONFORMANCE_GUESTS,
          sequence: { groupOrder: 0 },
          ...CONFORMANCE,
        },
      },
      {
        extends: true,
        test: {
          // The races, after every other conformance file, in the first guest (the one with two vCPUs)
          // while the others idle: racing faults overlap only while the host's CPUs are theirs.
          name: RACES_PROJECT,
          include: [...CONFORMANCE_RACES],
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
          ...CONFORMANCE,
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
          // two"). The races run in the conformance projects and in cli-alone, on two. A lane's `mmapkit test`
          // boots one guest, not a pool: the other lane has the other core.
          env: CLI_LANES > 1 ? { MMAPKIT_GUEST_CPUS: '1', [TEST_GUESTS_ENV]: '1' } : {},
          sequence: { groupOrder: 2 },
          testTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'cli-alone',
          include: [...CLI_ALONE],
          maxWorkers: 1,
          sequence: { groupOrder: 3 },
          testTimeout: 180_000,
        },
      },
    ],
  },
});
