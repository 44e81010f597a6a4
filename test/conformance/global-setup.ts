/**
 * Gives the conformance files their guests, the reference module loaded in
 * each, and the profiles to test.
 * `mmapkit test` boots the guests itself and passes their relay sockets in
 * MMAPKIT_GUEST_SOCKETS; a plain `vitest run` boots them here and records
 * every profile's region in each before any file runs. Either way the
 * test workers reach them through the sockets provided as `guestSockets`,
 * one guest per worker (tools/test/guest-pool.ts); the races project is given
 * the first guest alone.
 */
import type { TestProject } from 'vitest/node';
import { describeFindings } from '../../tools/cli/messages.js';
import { type GuestKernel, discoverKernel } from '../../tools/kernel.js';
import { PROFILES_ENV, type Profile, referenceProfiles } from '../../tools/profile.js';
import { CASE_TIMEOUT_ENV, GUEST_SOCKETS_ENV } from '../../tools/test/command.js';
import { changedLines, recordRegions } from '../../tools/test/region-record.js';
import { RACES_PROJECT, testGuestCount } from '../../tools/test/guest-count.js';
import { type GuestPool, sharePool } from '../../tools/test/guest-pool.js';
import { DEADLINE_FLOORS, caseTimeoutMs } from '../../tools/qemu/deadlines.js';
import { crashExcerpt, tail } from '../../tools/qemu/console.js';
import type { AccelChoice } from '../../tools/qemu/accel.js';

/**
 * Both conformance projects run their global setup in vitest's one main
 * process, each from its own module instance: the pool they share is kept
 * on globalThis, and closed by the last project's teardown.
 */
const SHARED = Symbol.for('mmapkit.conformance-pool');
interface Shared {
  pool: Promise<GuestPool>;
  users: number;
}
type WithShared = typeof globalThis & { [SHARED]?: Shared };

/** The sockets a project's workers connect to: every guest, or for the races the first (the one with two vCPUs). */
const socketsFor = (project: TestProject, sockets: string[]): string[] => (project.name === RACES_PROJECT ? sockets.slice(0, 1) : sockets);

/**
 * The guests, each with every profile's region recorded, the profiles side
 * by side, as `mmapkit test` does (tools/test/command.ts runConformance): left to each guest's first
 * file, the records would be made one profile after another, about 2.5 s each.
 */
async function preparedPool(kernel: GuestKernel, profiles: readonly Profile[]): Promise<GuestPool> {
  const log = (line: string): void => void process.stderr.write(`mmapkit: ${line}\n`);
  const accel = (process.env.MMAPKIT_ACCEL ?? 'tcg') as AccelChoice;
  const pool = await sharePool({ kernel, accel, requestFloorS: DEADLINE_FLOORS.conformanceRequestS, log }, testGuestCount());
  try {
    const changes = await Promise.all(pool.guests.map(async ({ supervisor }) => recordRegions((await supervisor.session()).guest, profiles)));
    for (const line of changedLines(profiles, changes)) log(line);
    return pool;
  } catch (error) {
    await pool.close();
    throw error;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const kernel = discoverKernel({ kernel: process.env.MMAPKIT_KERNEL });
  const given = process.env[PROFILES_ENV];
  const profiles = given !== undefined ? (JSON.parse(given) as Profile[]) : referenceProfiles(kernel.version);
  project.provide('profiles', profiles);
  const external = process.env[GUEST_SOCKETS_ENV];
  if (external !== undefined) {
    project.provide('guestSockets', socketsFor(project, JSON.parse(external) as string[]));
    const given = Number(process.env[CASE_TIMEOUT_ENV]);
    project.provide('caseTimeoutMs', Number.isFinite(given) && given > 0 ? given : caseTimeoutMs(DEADLINE_FLOORS.conformanceRequestS));
    return undefined;
  }
  const global = globalThis as WithShared;
  const shared = (global[SHARED] ??= { pool: preparedPool(kernel, profiles), users: 0 });
  shared.users++;
  let pool: GuestPool;
  try {
    pool = await shared.pool;
  } catch (error) {
    delete global[SHARED]; // a later run in this process (watch mode) boots afresh
    throw error;
  }
  project.provide('guestSockets', socketsFor(project, pool.sockets));
  project.provide('caseTimeoutMs', pool.caseTimeoutMs);
  return async () => {
    if (--shared.users > 0) return;
    delete global[SHARED];
    const { end, session: last } = await pool.close();
    const { crashes, sessions } = pool;
    // The reference driver must never crash the guest: each crash fails the run, with its console lines.
    const problems = crashes.map((crash) => `${crash.reason} (console: ${crash.consoleLog})\n${crash.excerpt.join('\n')}`);
    if (end.state !== 'completed') {
      const lines = last.lines();
      const excerpt = crashExcerpt(lines, last.findings());
      problems.push(`${end.reason}\n${(excerpt.length > 0 ? excerpt : tail(lines)).join('\n')}`);
    }
    // Every case passing is not enough: the kernel must not have complained either.
    const findings = sessions.flatMap((session) => session.findings());
    if (findings.length > 0) problems.push(`the guest kernel logged: ${describeFindings(findings)} (console: ${sessions.filter((session) => session.findings().length > 0).map((session) => session.consoleLog).join(', ')})`);
    if (problems.length > 0) throw new Error(problems.join('\n'));
  };
}
