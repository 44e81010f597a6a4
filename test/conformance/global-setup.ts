/**
 * Gives the conformance files one booted guest with the reference module
 * loaded, and the profiles to test.
 * `mmapkit test` boots the guest itself and passes its relay socket in
 * MMAPKIT_GUEST_SOCKET; a plain `vitest run` boots one here. Either way the
 * test workers reach it through the socket provided as `guestSocket`.
 */
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { describeFindings } from '../../tools/report.js';
import { discoverKernel } from '../../tools/kernel.js';
import { PROFILES_ENV, type Profile, referenceProfiles } from '../../tools/profile.js';
import { GUEST_SOCKET_ENV } from '../../tools/test-command.js';
import { crashExcerpt, tail } from '../../tools/vm/console.js';
import { startGuest } from '../../tools/vm/guest-run.js';
import { startRelay } from '../../tools/vm/relay.js';
import type { AccelChoice } from '../../tools/vm/session.js';

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const kernel = discoverKernel({ kernel: process.env.MMAPKIT_KERNEL });
  const given = process.env[PROFILES_ENV];
  project.provide('profiles', given !== undefined ? (JSON.parse(given) as Profile[]) : referenceProfiles(kernel.version));
  const external = process.env[GUEST_SOCKET_ENV];
  if (external !== undefined) {
    project.provide('guestSocket', external);
    return undefined;
  }
  const session = await startGuest({
    kernel,
    accel: (process.env.MMAPKIT_ACCEL ?? 'tcg') as AccelChoice,
    log: (line) => process.stderr.write(`mmapkit: ${line}\n`),
  });
  const socket = path.join(os.tmpdir(), `mmapkit-relay-${process.pid}.sock`);
  const relay = await startRelay(socket, session.guest, session.ready!);
  project.provide('guestSocket', socket);
  return async () => {
    relay.close();
    rmSync(socket, { force: true });
    const end = await session.stop();
    const lines = session.lines();
    if (end.state !== 'completed') {
      const excerpt = crashExcerpt(lines, session.findings());
      throw new Error(`${end.reason}\n${(excerpt.length > 0 ? excerpt : tail(lines)).join('\n')}`);
    }
    // Every case passing is not enough: the kernel must not have complained either.
    if (session.findings().length > 0) {
      throw new Error(`the guest kernel logged: ${describeFindings(session.findings())} (console: ${session.consoleLog})`);
    }
  };
}
