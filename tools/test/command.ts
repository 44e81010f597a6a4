/**
 * `mmapkit test`: boots a guest, loads the module, lets vitest run the
 * conformance suite against it through the relay socket, and prints the
 * summary and a JSON results file. A guest that crashes or hangs under a case
 * is replaced (tools/qemu/guest-supervisor.ts): that case is reported CRASHED
 * and the remaining cases go on. The exit code says the worst that happened:
 * a crash outranks failed cases, which outrank a pass.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExitCode } from '../exit-codes.js';
import { REPO_ROOT } from '../paths.js';
import { PROFILES_ENV, type Profile, profileFiles } from '../profile.js';
import { describeFindings, printConsoleTail, reportEnd, say } from '../messages.js';
import type { CrashRecord } from '../qemu/guest-supervisor.js';
import { type GuestRunOptions, shareGuest } from '../qemu/guest-run.js';
import { EXIT_CODE_OF, type SessionEnd } from '../qemu/outcome.js';
import { bringUp } from './preflight.js';
import { type CaseCounts, type CaseResult, KERNEL_FINDING, caseResults, countCases, describeCounts } from './vitest-summary.js';

/** The environment variable the conformance suite's global setup reads to use our guest instead of booting one. */
export const GUEST_SOCKET_ENV = 'MMAPKIT_GUEST_SOCKET';

/**
 * A guest that does not answer one request within this is presumed hung (a
 * livelocking fault handler, say): the case is reported CRASHED and the guest
 * replaced. Below vitest's 60 s test timeout, so that the hang is reported as
 * what it is rather than as a test timeout.
 */
export const CONFORMANCE_REQUEST_TIMEOUT_S = 20;

/** Explicit profiles run the profile cases only; the reference driver's own promises run with the default set. */
const PROFILE_CASES = 'test/conformance/cases/';

/** Vitest's built-in reporters that `--reporter` passes through. */
export const REPORTERS = ['default', 'verbose', 'dot', 'tap', 'tap-flat', 'junit', 'json', 'github-actions', 'hanging-process'] as const;
export type ReporterName = (typeof REPORTERS)[number];

export interface ConformanceTarget {
  profiles: Profile[];
  /** True when the user named the profiles: run only the profile cases, and load only their modules. */
  explicit: boolean;
}

export interface ReportOptions {
  /** Vitest reporters (default: verbose). */
  reporters?: ReporterName[];
  /** Where reporters such as junit and json write, instead of stdout. */
  outputFile?: string;
  /** The JSON results file (default: results.json in the run's directory under build/runs/). */
  resultsFile?: string;
  /** Only the cases tagged core (QUICK_TAG): the edit-build-run loop of `make run`. */
  quick?: boolean;
}

/** The vitest tag of the cases a quick run keeps (vitest.config.ts defines it). */
export const QUICK_TAG = 'core';

interface VitestOutcome {
  cases: CaseResult[];
  unhandledErrors: number;
}

async function runVitest(socket: string, target: ConformanceTarget, report: ReportOptions): Promise<VitestOutcome> {
  const { startVitest } = await import('vitest/node');
  process.env[GUEST_SOCKET_ENV] = socket;
  process.env[PROFILES_ENV] = JSON.stringify(target.profiles);
  const vitest = await startVitest('test', target.explicit ? [PROFILE_CASES] : [], {
    run: true,
    watch: false,
    project: ['conformance'],
    root: REPO_ROOT,
    reporters: report.reporters ?? ['verbose'],
    ...(report.outputFile !== undefined && { outputFile: path.resolve(report.outputFile) }),
    ...(report.quick === true && { tagsFilter: [QUICK_TAG] }),
  });
  const outcome = { cases: caseResults(vitest.state.getTestModules()), unhandledErrors: vitest.state.getUnhandledErrors().length };
  await vitest.close();
  process.exitCode = undefined; // ours to decide, from the counts and the VM's end
  return outcome;
}

/** Relative to the current directory when under it, else absolute. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') || relative === '' ? file : relative;
}

/** The worst thing that happened, as an exit code: no guest at the end, a crash or hang, failed cases. */
function exitCodeOf(end: SessionEnd, crashes: CrashRecord[], counts: CaseCounts, consoleFindings: number): number {
  if (end.state !== 'completed') return EXIT_CODE_OF[end.state];
  if (crashes.some((crash) => crash.state === 'guest-crashed')) return ExitCode.GUEST_CRASHED;
  if (crashes.length > 0) return EXIT_CODE_OF[crashes[0]!.state];
  const failed = counts.failed > 0 || counts.passed === 0 || consoleFindings > 0;
  return failed ? ExitCode.TESTS_FAILED : ExitCode.PASSED;
}

export async function runConformance(options: GuestRunOptions, target: ConformanceTarget, report: ReportOptions = {}): Promise<number> {
  // The devices the profiles need (profile key qemuDevices); the default VM has none.
  const qemuDevices = [...new Set(target.profiles.flatMap((profile) => profile.qemuDevices))];
  const hostFiles = target.profiles.flatMap(profileFiles);
  const shared = await shareGuest({
    ...options,
    loadModule: !target.explicit,
    requestTimeoutS: CONFORMANCE_REQUEST_TIMEOUT_S,
    ...(qemuDevices.length > 0 && { qemuDevices }),
    ...(hostFiles.length > 0 && { hostFiles }),
  });
  try {
    await bringUp((await shared.supervisor.session()).guest, target.profiles);
  } catch (error) {
    await shared.close();
    // A load that took the guest down is a crash, reported as one; anything else is the one line thrown.
    const [crash] = shared.supervisor.crashes;
    if (crash === undefined) throw error;
    say(`the guest crashed or hung while the targets were brought up, before any case: ${crash.reason} (console: ${crash.consoleLog})`);
    process.stderr.write(crash.excerpt.map((line) => `  ${line}\n`).join(''));
    return EXIT_CODE_OF[crash.state];
  }
  let outcome: VitestOutcome;
  try {
    outcome = await runVitest(shared.socket, target, report);
  } catch (error) {
    await shared.close();
    throw error;
  }
  const end = await shared.close();
  const { supervisor } = shared;
  const [first] = supervisor.sessions;
  const last = supervisor.sessions.at(-1)!;
  const consoleFindings = supervisor.sessions.flatMap((session) => session.findings());
  const counts = countCases(outcome.cases, outcome.unhandledErrors);
  const exitCode = exitCodeOf(supervisor.failure?.end ?? end, supervisor.crashes, counts, consoleFindings.length);

  const kernelFindings = outcome.cases.flatMap((result) =>
    result.annotations.filter((note) => note.startsWith(KERNEL_FINDING)).map((note) => ({ case: result.name, finding: note })),
  );
  for (const { case: name, finding } of kernelFindings) say(`${finding} [${name}]`);
  for (const crash of supervisor.crashes) say(`guest crashed or hung: ${crash.reason} (console: ${crash.consoleLog})`);
  if (supervisor.failure !== undefined) {
    // Their files could not even connect: vitest shows them skipped, but nothing decided that.
    const notRun = outcome.cases.filter((result) => result.outcome === 'skipped' && result.messages.length === 0).length;
    say(`no guest left after ${supervisor.crashes.length} crashes or hangs: the cases after that were not run (${notRun} shown as skipped)`);
  }

  const resultsFile = path.resolve(report.resultsFile ?? path.join(first!.runDir, 'results.json'));
  mkdirSync(path.dirname(resultsFile), { recursive: true });
  const boot = ((first!.bootMs ?? 0) / 1000).toFixed(1);
  writeFileSync(
    resultsFile,
    `${JSON.stringify(
      {
        kernel: first!.ready?.kernel,
        accelerator: first!.accel,
        bootSeconds: Number(boot),
        wallSeconds: Number(process.uptime().toFixed(1)),
        profiles: target.profiles.map(({ name, device }) => ({ name, device })),
        counts,
        exitCode,
        crashes: supervisor.crashes,
        kernelFindings,
        consoleFindings,
        cases: outcome.cases,
      },
      null,
      2,
    )}\n`,
  );

  const devices = target.profiles.map((profile) => profile.device).join(' ');
  process.stdout.write(
    `\nmmapkit: devices ${devices}, kernel ${first!.ready?.kernel ?? '?'}, accelerator ${first!.accel}, ` +
      `boot to guest agent ${boot} s, whole run ${process.uptime().toFixed(1)} s, ` +
      `guests booted ${supervisor.sessions.length}, kernel log findings: ${describeFindings(consoleFindings)}\n` +
      `mmapkit: results in ${displayPath(resultsFile)}\n` +
      (report.quick === true ? `mmapkit: quick run (the cases tagged ${QUICK_TAG}); the whole suite: mmapkit test, or make run FULL=1\n` : '') +
      `${describeCounts(counts)}\n`,
  );
  if (supervisor.failure !== undefined) reportEnd(supervisor.failure.end, supervisor.failure.session);
  else if (end.state !== 'completed') reportEnd(end, last);
  else if (exitCode === ExitCode.TESTS_FAILED) {
    if (consoleFindings.length > 0) say('the guest kernel logged warnings or bad-page reports: see the findings above');
    printConsoleTail(last);
  }
  return exitCode;
}
