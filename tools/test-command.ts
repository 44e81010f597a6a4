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
import { REFERENCE_DEVICE_PATHS } from './reference-driver.js';
import { describeFindings, printConsoleTail, reportEnd, say } from './report.js';
import { type GuestRunOptions, startGuest } from './vm/guest-run.js';
import { EXIT_CODE_OF } from './vm/outcome.js';
import { startRelay } from './vm/relay.js';

/** The environment variable the conformance suite's global setup reads to use our guest instead of booting one. */
export const GUEST_SOCKET_ENV = 'MMAPKIT_GUEST_SOCKET';

export interface CaseCounts {
  passed: number;
  failed: number;
  skipped: number;
}

async function runVitest(socket: string): Promise<CaseCounts> {
  const { startVitest } = await import('vitest/node');
  process.env[GUEST_SOCKET_ENV] = socket;
  const vitest = await startVitest('test', [], {
    run: true,
    watch: false,
    project: ['conformance'],
    root: REPO_ROOT,
    reporters: ['verbose'],
  });
  const counts: CaseCounts = { passed: 0, failed: 0, skipped: 0 };
  for (const module of vitest.state.getTestModules()) {
    for (const test of module.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') counts.passed++;
      else if (state === 'failed') counts.failed++;
      else counts.skipped++;
    }
    if (module.state() === 'failed' && [...module.children.allTests()].length === 0) counts.failed++;
  }
  if (vitest.state.getUnhandledErrors().length > 0) counts.failed++;
  await vitest.close();
  process.exitCode = undefined; // ours to decide, from the counts and the VM's end
  return counts;
}

export async function runConformance(options: GuestRunOptions): Promise<number> {
  const session = await startGuest(options);
  const relayPath = path.join(os.tmpdir(), `mmapkit-relay-${process.pid}.sock`);
  const relay = await startRelay(relayPath, session.guest, session.ready!);
  let counts: CaseCounts;
  try {
    counts = await runVitest(relayPath);
  } finally {
    relay.close();
    rmSync(relayPath, { force: true });
  }
  const end = await session.stop();
  const nonFatal = session.findings();
  const boot = ((session.bootMs ?? 0) / 1000).toFixed(1);
  process.stdout.write(
    `\nconformance: ${counts.passed} passed, ${counts.failed} failed` +
      (counts.skipped > 0 ? `, ${counts.skipped} skipped` : '') +
      `\nmmapkit: devices ${Object.values(REFERENCE_DEVICE_PATHS).join(' ')}, kernel ${session.ready?.kernel ?? '?'}, accelerator ${session.accel}, ` +
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
