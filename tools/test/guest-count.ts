/**
 * How many guests a conformance run shares out, and the project the races run in: what
 * vitest.config.ts needs to size the conformance projects, kept apart from the pool itself
 * (tools/test/guest-pool.ts), so that loading the config loads no QEMU code.
 */
import os from 'node:os';
import { UserError } from '../exit-codes.js';

/** The vitest project of the concurrency cases (vitest.config.ts): given the first guest alone. */
export const RACES_PROJECT = 'conformance-races';

/** How many guests a conformance run shares out (testGuestCount). */
export const TEST_GUESTS_ENV = 'MMAPKIT_TEST_GUESTS';

/** More would only take turns on this machine's CPUs; the files number a dozen. */
const MAX_TEST_GUESTS = 4;

/**
 * The guests a run boots: MMAPKIT_TEST_GUESTS, else two for a whole run where the host has two CPUs or
 * more, and one for a quick run (`quick`), whose 75 cases are less work than a second guest costs to
 * start and share the host with (docs/benchmarks.md, "Test files in two guests at once").
 */
export function testGuestCount(env: NodeJS.ProcessEnv = process.env, quick = false): number {
  const asked = env[TEST_GUESTS_ENV];
  if (asked === undefined || asked === '') return quick ? 1 : Math.min(2, Math.max(1, os.availableParallelism()));
  const count = Number(asked);
  if (!Number.isInteger(count) || count < 1 || count > MAX_TEST_GUESTS) throw new UserError(`${TEST_GUESTS_ENV}=${asked}: takes a whole number from 1 to ${MAX_TEST_GUESTS}`);
  return count;
}
