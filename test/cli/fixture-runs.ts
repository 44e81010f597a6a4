/**
 * The suite against drivers with known bugs (test/fixtures/kmod): it must
 * pass the correct one and fail each buggy one, naming the case that caught
 * the bug. Each run is `mmapkit test --profile <fixture>/profile.json ...`, as
 * a driver author would run it. One file per kernel series
 * (fixtures-SERIES.test.ts), so that the two run side by side.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { fixtureProfile } from '../../tools/builder/fixtures.js';
import { runCli } from './run-cli.js';

interface Expectation {
  fixture: string;
  /** The case that must fail (its title, as the verbose reporter prints it). */
  caughtBy: RegExp;
  /** 1: cases failed; 120: the bug also crashed the guest (reported, and the run went on); 124: it hung it. */
  exitCodes: number[];
  /**
   * The in-process accesses that hang on the bug are stopped by the addon's watchdog (native/src/fault_guard.h):
   * they fail with ETIMEDOUT, and the guest answers on, is neither presumed hung nor replaced.
   */
  stoppedByWatchdog?: boolean;
  /**
   * Run the whole suite on the default series, not only the core cases: for the bugs that crash or hang the
   * guest, so that the runner's recovery is shown to give every later case its result.
   */
  wholeSuite?: boolean;
  /**
   * Caught only while the guest's vCPUs run at once: its run is racing-fixtures.test.ts, which make test runs
   * alone, since another lane's guest takes the host's CPUs (the case then skips: no race was run).
   */
  racing?: boolean;
}

const BUGGY: Expectation[] = [
  { fixture: 'fixture-bug-nobounds', caughtBy: /a length one page past the region/, exitCodes: [ExitCode.TESTS_FAILED] },
  { fixture: 'fixture-bug-truncate', caughtBy: /offset 2\^44 \(pgoff 2\^32/, exitCodes: [ExitCode.TESTS_FAILED] },
  { fixture: 'fixture-bug-pageshared', caughtBy: /a write to a PROT_READ mapping raises SIGSEGV/, exitCodes: [ExitCode.TESTS_FAILED] },
  { fixture: 'fixture-bug-stale', caughtBy: /a whole-device map reads zero right after load/, exitCodes: [ExitCode.TESTS_FAILED] },
  // Only visible because the guest boots with init_on_alloc=0 page_poison=1 (qemu-args.ts LEAK_REVEALING).
  { fixture: 'fixture-bug-uninit', caughtBy: /a whole-device map reads zero right after load/, exitCodes: [ExitCode.TESTS_FAILED] },
  // Only two faults at once show it: the single-threaded cases pass it.
  {
    fixture: 'fixture-bug-racyfault',
    caughtBy: /threads faulting distinct pages at the same moment each see their own page/,
    exitCodes: [ExitCode.TESTS_FAILED],
    racing: true,
  },
  { fixture: 'fixture-bug-dontexpand', caughtBy: /mremap cannot grow a mapping past the region/, exitCodes: [ExitCode.TESTS_FAILED] },
  { fixture: 'fixture-bug-cow', caughtBy: /MAP_PRIVATE with PROT_WRITE is refused/, exitCodes: [ExitCode.TESTS_FAILED, ExitCode.GUEST_CRASHED], wholeSuite: true },
  // Wiped by its own ->close when the child's copy goes: a count that ->open never raised reaches zero.
  { fixture: 'fixture-bug-unbalanced', caughtBy: /a fork whose child exits leaves the parent's mapping its whole content/, exitCodes: [ExitCode.TESTS_FAILED] },
  // Wiped by the ->release of a second file while the mapping (holding the first) lives.
  { fixture: 'fixture-bug-release', caughtBy: /the last close\(\) of every fd leaves the mapping its whole content/, exitCodes: [ExitCode.TESTS_FAILED] },
  // Unloaded while mapped: the case fails, then the unmap touches freed module memory and the guest dies.
  {
    fixture: 'fixture-bug-noowner',
    caughtBy: /the module cannot be unloaded while a mapping outlives its fd/,
    exitCodes: [ExitCode.TESTS_FAILED, ExitCode.GUEST_CRASHED],
    wholeSuite: true,
  },
  // The alarm in the reading child catches it; a later in-process touch is stopped by the addon's watchdog.
  {
    fixture: 'fixture-bug-livelock',
    caughtBy: /a whole-device map reads zero right after load/,
    exitCodes: [ExitCode.TESTS_FAILED],
    stoppedByWatchdog: true,
    wholeSuite: true,
  },
];

interface Results {
  counts: { passed: number; failed: number; skipped: number; crashed: number };
  exitCode: number;
  guests: number;
  guestsBooted: number;
  crashes: { state: string; reason: string }[];
  cases: { name: string; outcome: string; messages: string[] }[];
}

interface Run {
  code: number | null;
  output: string;
  results: Results;
}

/** One `mmapkit test` of the given profiles (one guest, more after a crash), judged by its exit code and results file. */
async function runProfiles(profiles: string[], kernel: KernelRun): Promise<Run> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mmapkit-fixture-'));
  try {
    const file = path.join(dir, 'results.json');
    const args = ['test', '--kernel', kernel.series, ...profiles.flatMap((profile) => ['--profile', profile]), '--results', file, ...(kernel.quick ? ['--quick'] : [])];
    const { code, stdout, stderr } = await runCli(...args);
    // eslint-disable-next-line no-control-regex
    const output = (stdout + stderr).replace(/\x1b\[[0-9;]*m/g, '');
    return { code, output, results: JSON.parse(readFileSync(file, 'utf8')) as Results };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A whole profile run under TCG, with a crashing fixture's reboots; the shared run has several profiles. */
const RUN_TIMEOUT_MS = 600_000;
const SHARED_RUN_TIMEOUT_MS = 1_200_000;

const isCase = (result: { name: string }): boolean => result.name !== '(file setup)';
/** A profile's cases (named "PROFILE: suite > title"), without the entries for test files whose setup failed (no guest left to connect to). */
const casesOf = (results: Results, fixture: string): Results['cases'] => results.cases.filter((result) => isCase(result) && result.name.startsWith(`${fixture}: `));

const title = (name: string): string => name.split(' > ').at(-1) ?? name;
const notPassed = (cases: Results['cases']): Results['cases'] => cases.filter((result) => result.outcome === 'failed' || result.outcome === 'crashed');

/** On an unexpected end, say how the run ended: a crash's reason and the console's last lines are the evidence. */
const howItEnded = ({ output, results }: Run): string =>
  [...results.crashes.map((crash) => `${crash.state}: ${crash.reason}`), output.split('\n').slice(-25).join('\n')].join('\n');

export interface KernelRun {
  series: string;
  /**
   * Only the core cases, where a fixture does not ask for the whole suite: each case that catches a
   * fixture's bug is one of them. The correct fixture always gets the run it is given here.
   */
  quick: boolean;
}

/**
 * A fixture runs alone when its bug can take the guest down (so its exit code is its own) or when the whole
 * suite is asked for; the others share one quick run, each judged by its own cases: booting a guest per
 * fixture cost more than their core cases.
 */
const ALONE = BUGGY.filter((expectation) => expectation.wholeSuite === true);
const RACING = BUGGY.filter((expectation) => expectation.racing === true);
const SHARED = BUGGY.filter((expectation) => expectation.wholeSuite !== true && expectation.racing !== true);

/** The fixture's bug is named by a failed case of its own. */
function expectCaught(cases: Results['cases'], { fixture, caughtBy }: Expectation): void {
  const caught = notPassed(cases).filter((result) => caughtBy.test(title(result.name)));
  expect(caught, `${fixture} failed: ${notPassed(cases).map((result) => result.name).join('; ')}`).not.toEqual([]);
}

/**
 * On 6.1 the correct fixture passes the whole suite (no case accuses a correct driver), and the fixtures that
 * crash or hang the guest run it whole too; every other bug, and all of them on 6.12, is shown caught by the
 * core cases, which is all `make run` runs.
 */
export function describeFixtureRuns(kernel: KernelRun): void {
  describe(`the conformance suite against fixture drivers on ${kernel.series} (quick: ${kernel.quick})`, () => {
    /** The number of cases a profile gets in the correct fixture's run, for the runs of the same selection. */
    let casesInARun = 0;

    it('passes the correct fixture', async () => {
      const run = await runProfiles([fixtureProfile('fixture-correct')], kernel);
      const { code, output, results } = run;
      expect(notPassed(results.cases)).toEqual([]);
      expect(output).toMatch(/^\d+ passed, 0 failed, \d+ skipped, 0 crashed$/m);
      expect(output).toMatch(new RegExp(`kernel ${kernel.series.replace('.', '\\.')}\\.`));
      expect(code, howItEnded(run)).toBe(ExitCode.PASSED);
      casesInARun = casesOf(results, 'fixture-correct').length;
      expect(casesInARun).toBeGreaterThan(0);
    }, RUN_TIMEOUT_MS);

    it.each(ALONE)('fails $fixture in a run of its own, naming the case that caught it', async (expectation) => {
      const { fixture, exitCodes, stoppedByWatchdog } = expectation;
      const run = await runProfiles([fixtureProfile(fixture)], kernel);
      const { code, output, results } = run;
      expect(exitCodes, howItEnded(run)).toContain(code);
      expect(results.exitCode).toBe(code);
      expectCaught(casesOf(results, fixture), expectation);
      // A crash or hang is reported as such, and the run went on: every case has a result.
      if (code === ExitCode.GUEST_CRASHED || code === ExitCode.TIMED_OUT) {
        expect(results.crashes.length).toBeGreaterThan(0);
        expect(results.counts.crashed).toBeGreaterThan(0);
        expect(output).toMatch(/CRASHED: /);
      }
      if (stoppedByWatchdog === true) {
        const stopped = results.cases.filter((result) => result.messages.some((message) => /^ETIMEDOUT: no progress at 0x[0-9a-f]+ for \d+ ms through \d+ faults/.test(message)));
        expect(stopped, 'no case failed on the watchdog\'s ETIMEDOUT').not.toEqual([]);
        expect(results.crashes).toEqual([]);
        expect(results.guestsBooted).toBe(results.guests); // none replaced
      }
      expect(casesOf(results, fixture)).toHaveLength(casesInARun);
    }, RUN_TIMEOUT_MS);

    describe(`the other ${SHARED.length} buggy fixtures, in one quick run`, () => {
      let shared: Run | undefined;
      beforeAll(async () => {
        shared = await runProfiles(SHARED.map(({ fixture }) => fixtureProfile(fixture)), { ...kernel, quick: true });
      }, SHARED_RUN_TIMEOUT_MS);

      it('ends as failed cases do, with no crash', () => {
        expect(shared!.code, howItEnded(shared!)).toBe(ExitCode.TESTS_FAILED);
        expect(shared!.results.exitCode).toBe(ExitCode.TESTS_FAILED);
        expect(shared!.results.crashes).toEqual([]);
        // Every profile got the whole quick selection: no case of one was lost to another's bug.
        const counts = SHARED.map(({ fixture }) => casesOf(shared!.results, fixture).length);
        expect(new Set(counts), counts.join(', ')).toEqual(new Set([counts[0]]));
        expect(counts[0]).toBeGreaterThan(0);
        if (kernel.quick) expect(counts[0]).toBe(casesInARun);
      });

      it.each(SHARED)('fails $fixture, naming the case that caught it', (expectation) => {
        expectCaught(casesOf(shared!.results, expectation.fixture), expectation);
      });
    });
  });
}

/** The fixtures whose bug shows only in a race, each in a quick run of its own on each series. */
export function describeRacingFixtureRuns(series: string[]): void {
  describe.each(series)('fixture drivers with a race on %s', (name) => {
    it.each(RACING)('fails $fixture, naming the case that caught it', async (expectation) => {
      const run = await runProfiles([fixtureProfile(expectation.fixture)], { series: name, quick: true });
      expect(expectation.exitCodes, howItEnded(run)).toContain(run.code);
      expectCaught(casesOf(run.results, expectation.fixture), expectation);
    }, RUN_TIMEOUT_MS);
  });
}
