/**
 * `mmapkit test`: boots a guest, loads the module, lets vitest run the
 * conformance suite against it through the relay socket, and prints the
 * summary and a JSON results file. A guest that crashes or hangs under a case
 * is replaced (tools/qemu/guest-supervisor.ts): that case is reported CRASHED
 * and the remaining cases go on. The exit code says the worst that happened:
 * a crash outranks failed cases, which outrank a pass.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Reporter, Vitest } from 'vitest/node';
import { ExitCode, UserError } from '../exit-codes.js';
import { REPO_ROOT } from '../paths.js';
import { PROFILES_ENV, type Profile, profilesVm } from '../profile.js';
import { printConsoleTail, reportEnd, say } from '../cli/messages.js';
import type { CrashRecord } from '../qemu/guest-supervisor.js';
import { type GuestClient, GuestGoneError } from '../qemu/guest-client.js';
import type { GuestRunOptions, SharedGuest } from '../qemu/guest-run.js';
import { DEADLINE_FLOORS } from '../qemu/deadlines.js';
import { EXIT_CODE_OF, type SessionEnd } from '../qemu/outcome.js';
import { plainVitestOutput } from '../cli/terminal.js';
import { type CaseCounts, KERNEL_FINDING, type RunCases, caseResults, countCases } from './case-results.js';
import { ConciseReporter } from './concise-reporter.js';
import { writeKtap } from './ktap.js';
import { type Shard, parseShard, shardName } from './shard.js';
import { QUICK_TAG, type ResultsFile, summaryLines, verdictOf } from './results-file.js';
import { bringUp } from './preflight.js';
import { changedLines, recordRegions } from './region-record.js';
import { RACES_PROJECT, TEST_GUESTS_ENV, testGuestCount } from './guest-count.js';
import { type GuestPool, sharePool } from './guest-pool.js';
import { bundleSetups } from './setup-bundle.js';
import { DRIVER_FINDING } from './known-findings.js';

/** The environment variable the conformance suite's global setup reads to use our guests' relay sockets (a JSON list) instead of booting its own. */
export const GUEST_SOCKETS_ENV = 'MMAPKIT_GUEST_SOCKETS';

/**
 * The environment variable that gives the conformance files their case
 * timeout (ms): REQUEST_DEADLINES_PER_CASE request deadlines of the guest
 * they share (tools/qemu/deadlines.ts), known only once it booted.
 */
export const CASE_TIMEOUT_ENV = 'MMAPKIT_CASE_TIMEOUT_MS';

/** Explicit profiles run the profile cases only; the reference driver's own promises run with the default set. */
const PROFILE_CASES = 'test/conformance/cases/';

/** Vitest's built-in reporters that `--reporter` passes through. */
const VITEST_REPORTERS = ['default', 'verbose', 'dot', 'tap', 'tap-flat', 'junit', 'json', 'github-actions', 'hanging-process'] as const;
/** Ours (tools/test/ktap.ts), then vitest's. */
export const REPORTERS = ['ktap', ...VITEST_REPORTERS] as const;
export type ReporterName = (typeof REPORTERS)[number];
/** The reporters `--output-file` sends to a file; without it they write to stdout like the others. */
const FILE_REPORTERS: readonly ReporterName[] = ['ktap', 'junit', 'json'];

export interface ConformanceTarget {
  profiles: Profile[];
  /** True when the user named the profiles: run only the profile cases, and load only their modules. */
  explicit: boolean;
}


export interface ReportOptions {
  /** Extra reporters. mmapkit's own concise one is shown unless one of them takes stdout. */
  reporters?: ReporterName[];
  /** Where a file-writing reporter (ktap, junit, json) writes, instead of stdout. */
  outputFile?: string;
  /** The JSON results file (default: results.json in the run's directory under build/runs/). */
  resultsFile?: string;
  /** Only the cases tagged core (QUICK_TAG): the edit-build-run loop of `make run`. */
  quick?: boolean;
  /** The concise reporter lists every case, not only those that failed, crashed or skipped. */
  verbose?: boolean;
  /** Run one shard of the test files (vitest's --shard). */
  shard?: Shard;
}

/** --shard, checked here so that a bad value is a usage error before anything boots. */
export function shardOf(value: string): Shard {
  const shard = parseShard(value);
  if (shard === undefined) throw new UserError(`--shard takes i/n with 1 <= i <= n (e.g. 1/2), not '${value}'`);
  return shard;
}

/** Usage errors in the reporting options, found before anything is built or booted. */
export function checkReportOptions(report: ReportOptions): void {
  const fileReporters = (report.reporters ?? []).filter((name) => FILE_REPORTERS.includes(name));
  if (report.outputFile !== undefined && fileReporters.length !== 1) {
    throw new UserError(`--output-file is for one of ${FILE_REPORTERS.join(', ')}; given with ${fileReporters.length === 0 ? 'none' : fileReporters.join(' and ')}`);
  }
}

interface Reporting {
  /** What vitest reports through: the pass-through reporters and, unless one of them takes stdout, the concise one. */
  vitest: (ReporterName | Reporter)[];
  /** Where the KTAP report goes, if asked for: a file, or stdout ('-'). */
  ktap?: string;
}

function reportingOf(report: ReportOptions): Reporting {
  const requested = report.reporters ?? [];
  const toStdout = (name: ReporterName): boolean => !FILE_REPORTERS.includes(name) || report.outputFile === undefined;
  const passThrough = requested.filter((name) => name !== 'ktap');
  const ktap = requested.includes('ktap') ? (report.outputFile !== undefined ? path.resolve(report.outputFile) : '-') : undefined;
  // KTAP is written when the run is over: until then the concise lines go to stderr and leave stdout to it.
  const concise = passThrough.some(toStdout) ? [] : [new ConciseReporter({ out: ktap === '-' ? process.stderr : process.stdout, verbose: report.verbose === true })];
  return { vitest: [...passThrough, ...concise], ...(ktap !== undefined && { ktap }) };
}

interface VitestOutcome extends RunCases {
  counts: CaseCounts;
}

/** Vitest set up for the run; a shard count the suite cannot fill is a usage error. */
async function prepareVitest(target: ConformanceTarget, report: ReportOptions, reporters: Reporting['vitest']): Promise<{ vitest: Vitest; filters: string[] }> {
  plainVitestOutput();
  const { createVitest } = await import('vitest/node');
  const filters = target.explicit ? [PROFILE_CASES] : [];
  const shard = report.shard !== undefined ? shardName(report.shard) : undefined;
  const vitest = await createVitest('test', {
    run: true,
    watch: false,
    project: ['conformance', RACES_PROJECT],
    root: REPO_ROOT,
    reporters,
    ...(report.outputFile !== undefined && { outputFile: path.resolve(report.outputFile) }),
    ...(report.quick === true && { tagsFilter: [QUICK_TAG] }),
    ...(shard !== undefined && { shard }),
  });
  // Vitest's fork workers load modules from copies under each project's tmpDir (/tmp/<id>/ssr), which
  // vitest.close() removes; an interrupted run exits without it (tools/cli/interrupts.ts): this does.
  const tmpDirs = [vitest.getRootProject(), ...vitest.projects].map((project) => project.tmpDir);
  process.once('exit', () => {
    for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
  });
  if (report.shard !== undefined) {
    const files = (await vitest.globTestSpecifications(filters)).length;
    if (report.shard.count > files) {
      await vitest.close();
      throw new UserError(`--shard ${shard}: the suite has ${files} test files, so at most ${files} shards`);
    }
  }
  return { vitest, filters };
}

async function runVitest(vitest: Vitest, filters: string[], pool: GuestPool, target: ConformanceTarget): Promise<VitestOutcome> {
  process.env[GUEST_SOCKETS_ENV] = JSON.stringify(pool.sockets);
  process.env[CASE_TIMEOUT_ENV] = String(pool.caseTimeoutMs);
  process.env[PROFILES_ENV] = JSON.stringify(target.profiles);
  await vitest.start(filters);
  const run = caseResults(vitest.state.getTestModules(), vitest.state.getUnhandledErrors());
  process.exitCode = undefined; // ours to decide, from the counts and the VM's end
  return { ...run, counts: countCases(run.cases) };
}

/** The worst thing that happened, as an exit code: no guest at the end, a crash or hang, failed cases. */
function exitCodeOf(end: SessionEnd, crashes: CrashRecord[], counts: CaseCounts, consoleFindings: number): number {
  if (end.state !== 'completed') return EXIT_CODE_OF[end.state];
  if (crashes.some((crash) => crash.state === 'guest-crashed')) return ExitCode.GUEST_CRASHED;
  if (crashes.length > 0) return EXIT_CODE_OF[crashes[0]!.state];
  return verdictOf(counts, consoleFindings);
}

/**
 * One step of bringing the profiles' targets up before any case, in every
 * guest at once: opening each (tools/test/preflight.ts), so that a target
 * that never came up is one line, not a case per ->mmap; then recording each
 * region (tools/test/region-record.ts). A step that took a guest down is a
 * crash, reported as one: its exit code is returned.
 */
async function bringUpStep<T>(pool: GuestPool, step: (guest: GuestClient) => Promise<T>): Promise<{ values: T[] } | { crashed: number }> {
  const results = await Promise.allSettled(pool.guests.map((shared) => bringUpGuest(shared, step)));
  for (const result of results) if (result.status === 'fulfilled' && 'crashed' in result.value) return result.value;
  // Every guest fails a bad profile alike: the first guest's error says it.
  for (const result of results) if (result.status === 'rejected') throw result.reason;
  return { values: results.map((result) => (result as PromiseFulfilledResult<{ value: T }>).value.value) };
}

async function bringUpGuest<T>({ supervisor }: SharedGuest, step: (guest: GuestClient) => Promise<T>): Promise<{ value: T } | { crashed: number }> {
  const session = await supervisor.session();
  try {
    return { value: await step(session.guest) };
  } catch (error) {
    const crash = supervisor.crashes[0] ?? (error instanceof GuestGoneError ? await supervisor.crashOfWithin(session) : undefined);
    if (crash === undefined) throw error;
    say(`the guest crashed or hung while the targets were brought up, before any case: ${crash.reason} (console: ${crash.consoleLog})`);
    process.stderr.write(crash.excerpt.map((line) => `  ${line}\n`).join(''));
    return { crashed: EXIT_CODE_OF[crash.state] };
  }
}


/**
 * Gives a run up before any case: closing the guests' relays ends the files
 * that wait there at once, and what they report is not printed.
 */
async function abandonRun(reporting: Reporting, pool: GuestPool, running: Promise<VitestOutcome> | undefined): Promise<void> {
  for (const reporter of reporting.vitest) if (reporter instanceof ConciseReporter) reporter.abandon();
  await pool.close();
  await running?.catch(() => undefined);
}

export async function runConformance(options: GuestRunOptions, target: ConformanceTarget, report: ReportOptions = {}): Promise<number> {
  const guestCount = testGuestCount(process.env, report.quick); // a bad MMAPKIT_TEST_GUESTS is a usage error before anything starts
  // vitest.config.ts gives the conformance files one worker per guest: it reads the count from here.
  process.env[TEST_GUESTS_ENV] = String(guestCount);
  const reporting = reportingOf(report);
  // Vitest's own set-up (about 1 s: its import and createVitest) runs once the targets are up, beside
  // the regions' record, whose gaps leave the host idle, and its workers are still ready before the
  // record is; begun with the boot, it took the host's CPUs from the module's build and the restore,
  // the longest step before any case (docs/benchmarks.md). With --shard it runs first: a shard count
  // the suite cannot fill is a usage error found before anything boots.
  let preparing: ReturnType<typeof prepareVitest> | undefined;
  const prepare = (): ReturnType<typeof prepareVitest> => {
    preparing ??= prepareVitest(target, report, reporting.vitest);
    return preparing;
  };
  if (report.shard !== undefined) await prepare();
  let pool: GuestPool | undefined;
  let running: Promise<VitestOutcome> | undefined;
  let outcome: VitestOutcome;
  try {
    // Before the boot: a setup that does not bundle is a bad profile, and costs no guest.
    await bundleSetups(target.profiles);
    pool = await sharePool({
      ...options,
      loadModule: !target.explicit,
      // A hang is reported CRASHED and the guest replaced: a shorter floor than other commands' (deadlines.ts).
      requestFloorS: DEADLINE_FLOORS.conformanceRequestS,
      ...profilesVm(target.profiles),
    }, guestCount, true);
    const guests = pool;
    let step: Awaited<ReturnType<typeof bringUpStep>> = await bringUpStep(guests, (guest) => bringUp(guest, target.profiles));
    if ('values' in step) {
      // Vitest is set up and its test workers start while the regions are recorded; their
      // connections wait at the relays until then, so no case runs before.
      running = prepare().then(({ vitest, filters }) => runVitest(vitest, filters, guests, target));
      running.catch(() => undefined);
      // Before any case writes to them: what each region holds, and whether it holds still.
      const recorded = await bringUpStep(pool, (guest) => recordRegions(guest, target.profiles));
      if ('values' in recorded) for (const line of changedLines(target.profiles, recorded.values)) say(line);
      step = recorded;
    }
    if ('crashed' in step) {
      await abandonRun(reporting, pool, running);
      return step.crashed;
    }
    pool.admit();
    outcome = await running!;
  } catch (error) {
    if (pool !== undefined) await abandonRun(reporting, pool, running);
    throw error;
  } finally {
    await preparing?.then(({ vitest }) => vitest.close(), () => undefined);
  }
  const { end, session: last } = await pool.close();
  const [first] = pool.sessions;
  const consoleFindings = pool.sessions.flatMap((session) => session.findings());
  const { counts } = outcome;
  const failure = pool.failed?.supervisor.failure;
  const exitCode = exitCodeOf(failure?.end ?? end, pool.crashes, counts, consoleFindings.length);

  const kernelFindings = outcome.cases.flatMap((result) =>
    result.annotations.filter((note) => note.startsWith(KERNEL_FINDING)).map((note) => ({ case: result.name, finding: note })),
  );
  for (const { case: name, finding } of kernelFindings) say(`${finding} [${name}]`);
  // A profile's knownFindings (tools/test/known-findings.ts): each case that failed the known way, named.
  for (const result of outcome.cases) {
    for (const note of result.annotations.filter((annotation) => annotation.startsWith(DRIVER_FINDING))) say(`${note} [${result.name}]`);
  }
  for (const crash of pool.crashes) say(`guest crashed or hung: ${crash.reason} (console: ${crash.consoleLog})`);
  if (pool.failed !== undefined) {
    // Their files could not even connect: vitest shows them skipped, but nothing decided that.
    const notRun = outcome.cases.filter((result) => result.outcome === 'skipped' && result.messages.length === 0).length;
    const { supervisor } = pool.failed;
    const which = pool.guests.length > 1 ? 'a guest of the run could not go on' : 'no guest left';
    say(`${which} after ${supervisor.crashes.length} crashes or hangs: the cases left to it were not run (${notRun} shown as skipped)`);
  }

  const resultsFile = path.resolve(report.resultsFile ?? path.join(first!.runDir, 'results.json'));
  const results: ResultsFile = {
    kernel: first!.ready?.kernel,
    accelerator: first!.accel,
    bootSeconds: Number(((first!.bootMs ?? 0) / 1000).toFixed(1)),
    wallSeconds: Number(process.uptime().toFixed(1)),
    guests: pool.guests.length,
    guestsBooted: pool.sessions.length,
    profiles: target.profiles.map(({ name, device }) => ({ name, device })),
    quick: report.quick === true,
    ...(report.shard !== undefined && { shard: shardName(report.shard) }),
    counts,
    notSelected: outcome.notSelected,
    exitCode,
    crashes: pool.crashes,
    kernelFindings,
    consoleFindings,
    cases: outcome.cases,
  };
  mkdirSync(path.dirname(resultsFile), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  if (reporting.ktap !== undefined) writeKtap(results, reporting.ktap);
  process.stdout.write(summaryLines(results, resultsFile).map((line) => `${line}\n`).join(''));

  if (failure !== undefined) reportEnd(failure.end, failure.session);
  else if (end.state !== 'completed') reportEnd(end, last);
  else if (exitCode === ExitCode.TESTS_FAILED) {
    if (consoleFindings.length > 0) say('the guest kernel logged warnings or bad-page reports: see the findings above');
    printConsoleTail(last);
  }
  return exitCode;
}
