/**
 * Gives the conformance files one booted guest with the reference module
 * loaded, and the profiles to test.
 * `mmapkit test` boots the guest itself and passes its relay socket in
 * MMAPKIT_GUEST_SOCKET; a plain `vitest run` boots one here. Either way the
 * test workers reach it through the socket provided as `guestSocket`.
 */
import type { TestProject } from 'vitest/node';
import { describeFindings } from '../../tools/cli/messages.js';
import { discoverKernel } from '../../tools/kernel.js';
import { PROFILES_ENV, type Profile, referenceProfiles } from '../../tools/profile.js';
import { CASE_TIMEOUT_ENV, GUEST_SOCKET_ENV } from '../../tools/test/command.js';
import { DEADLINE_FLOORS, caseTimeoutMs } from '../../tools/qemu/deadlines.js';
import { crashExcerpt, tail } from '../../tools/qemu/console.js';
import { shareGuest } from '../../tools/qemu/guest-run.js';
import type { AccelChoice } from '../../tools/qemu/accel.js';

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const kernel = discoverKernel({ kernel: process.env.MMAPKIT_KERNEL });
  const given = process.env[PROFILES_ENV];
  project.provide('profiles', given !== undefined ? (JSON.parse(given) as Profile[]) : referenceProfiles(kernel.version));
  const external = process.env[GUEST_SOCKET_ENV];
  if (external !== undefined) {
    project.provide('guestSocket', external);
    const given = Number(process.env[CASE_TIMEOUT_ENV]);
    project.provide('caseTimeoutMs', Number.isFinite(given) && given > 0 ? given : caseTimeoutMs(DEADLINE_FLOORS.conformanceRequestS));
    return undefined;
  }
  const shared = await shareGuest({
    kernel,
    accel: (process.env.MMAPKIT_ACCEL ?? 'tcg') as AccelChoice,
    requestFloorS: DEADLINE_FLOORS.conformanceRequestS,
    log: (line) => process.stderr.write(`mmapkit: ${line}\n`),
  });
  project.provide('guestSocket', shared.socket);
  project.provide('caseTimeoutMs', shared.caseTimeoutMs);
  return async () => {
    const end = await shared.close();
    const { crashes, sessions } = shared.supervisor;
    // The reference driver must never crash the guest: each crash fails the run, with its console lines.
    const problems = crashes.map((crash) => `${crash.reason} (console: ${crash.consoleLog})\n${crash.excerpt.join('\n')}`);
    const last = sessions.at(-1);
    if (end.state !== 'completed' && last !== undefined) {
      const lines = last.lines();
      const excerpt = crashExcerpt(lines, last.findings());
      problems.push(`${end.reason}\n${(excerpt.length > 0 ? excerpt : tail(lines)).join('\n')}`);
    }
    // Every case passing is not enough: the kernel must not have complained either.
    const findings = sessions.flatMap((session) => session.findings());
    if (findings.length > 0) problems.push(`the guest kernel logged: ${describeFindings(findings)} (console: ${last?.consoleLog ?? '?'})`);
    if (problems.length > 0) throw new Error(problems.join('\n'));
  };
}
