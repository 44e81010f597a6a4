/**
 * `mmapkit test`: boots one guest, loads the module, lets vitest run the
 * conformance suite against it through the relay socket, and prints the
 * summary. The VM's end state decides the exit code before the test results
 * do: a crashed guest is not "some tests failed".
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExitCode } from './exit-codes.js';
import { REPO_ROOT } from './paths.js';
import { PROFILES_ENV, type Profile } from './profile.js';
import { describeFindings, printConsoleTail, reportEnd, say } from './report.js';
import { type GuestRunOptions, startGuest } from './vm/guest-run.js';
import { EXIT_CODE_OF } from './vm/outcome.js';
import { startRelay } from './vm/relay.js';
import { type CaseCounts, countCases, describeCounts } from './vitest-summary.js';

/** The environment variable the conformance suite's global setup reads to use our guest instead of booting one. */
export const GUEST_SOCKET_ENV = 'MMAPKIT_GUEST_SOCKET';

/** Explicit profiles run the profile cases only; the reference driver's own promises run with the default set. */
const PROFILE_CASES = 'test/conformance/cases/';

async function runVitest(socket: string, profiles: Profile[], onlyProfileCases: boolean): Promise<CaseCounts> {
  const { startVitest } = await import('vitest/node');
  process.env[GUEST_SOCKET_ENV] = socket;
  process.env[PROFILES_ENV] = JSON.stringify(profiles);
  const vitest = await startVitest('test', onlyProfileCases ? [PROFILE_CASES] : [], {
    run: true,
    watch: false,
    project: ['conformance'],
    root: REPO_ROOT,
    reporters: ['verbose'],
  });
  const counts = countCases(vitest.state.getTestModules(), vitest.state.getUnhandledErrors().length);
  await vitest.close();
  process.exitCode = undefined; // ours to decide, from the counts and the VM's end
  return counts;
}

export interface ConformanceTarget {
  profiles: Profile[];
  /** True when the user named the profiles: run only the profile cases, and load only their modules. */
  explicit: boolean;
}

export async function runConformance(options: GuestRunOptions, target: ConformanceTarget): Promise<number> {
  // The devices the profiles need (profile key qemuDevices); the default VM has none.
  const qemuDevices = [...new Set(target.profiles.flatMap((profile) => profile.qemuDevices))];
  const session = await startGuest({ ...options, loadModule: !target.explicit, ...(qemuDevices.length > 0 && { qemuDevices }) });
  const relayPath = path.join(os.tmpdir(), `mmapkit-relay-${process.pid}.sock`);
  const relay = await startRelay(relayPath, session.guest, session.ready!);
  let counts: CaseCounts;
  try {
    counts = await runVitest(relayPath, target.profiles, target.explicit);
  } finally {
    relay.close();
    rmSync(relayPath, { force: true });
  }
  const end = await session.stop();
  const nonFatal = session.findings();
  const boot = ((session.bootMs ?? 0) / 1000).toFixed(1);
  const devices = target.profiles.map((profile) => profile.device).join(' ');
  process.stdout.write(
    `\nconformance: ${describeCounts(counts)}` +
      `\nmmapkit: devices ${devices}, kernel ${session.ready?.kernel ?? '?'}, accelerator ${session.accel}, ` +
      `boot to guest agent ${boot} s, whole run ${process.uptime().toFixed(1)} s, ` +
      `kernel findings: ${describeFindings(nonFatal)}\n`,
  );
  if (end.state !== 'completed') {
    reportEnd(end, session);
    return EXIT_CODE_OF[end.state];
  }
  const failed = counts.failed > 0 || counts.passed === 0 || nonFatal.length > 0;
  if (nonFatal.length > 0) say('the guest kernel logged warnings or bad-page reports: see the findings above');
  if (failed) printConsoleTail(session);
  return failed ? ExitCode.TESTS_FAILED : ExitCode.PASSED;
}
