/**
 * The suite against drivers with known bugs (test/fixtures/kmod): it must
 * pass the correct one and fail each buggy one, naming the case that caught
 * the bug. Each run is `mmapkit test --profile <fixture>/profile.json`, as a
 * driver author would run it.
 */
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { fixtureProfile } from '../../tools/fixtures.js';
import { runCli } from './run-cli.js';

interface Expectation {
  fixture: string;
  /** The case that must fail (its title, as the verbose reporter prints it). */
  caughtBy: RegExp;
  /** 1: cases failed; a bug that then kills the guest may end the run as a crash or a timeout. */
  exitCodes: number[];
}

const BUGGY: Expectation[] = [
  { fixture: 'fixture-bug-nobounds', caughtBy: /a length one page past the region/, exitCodes: [ExitCode.TESTS_FAILED] },
  { fixture: 'fixture-bug-truncate', caughtBy: /offset 2\^44 \(pgoff 2\^32/, exitCodes: [ExitCode.TESTS_FAILED] },
  { fixture: 'fixture-bug-pageshared', caughtBy: /a write to a PROT_READ mapping raises SIGSEGV/, exitCodes: [ExitCode.TESTS_FAILED] },
  { fixture: 'fixture-bug-stale', caughtBy: /a whole-device map reads zero right after load/, exitCodes: [ExitCode.TESTS_FAILED] },
  { fixture: 'fixture-bug-dontexpand', caughtBy: /mremap cannot grow a mapping past the region/, exitCodes: [ExitCode.TESTS_FAILED] },
  { fixture: 'fixture-bug-cow', caughtBy: /MAP_PRIVATE with PROT_WRITE is refused/, exitCodes: [ExitCode.TESTS_FAILED, ExitCode.GUEST_CRASHED] },
  // Unloaded while mapped: the case fails, then the unmap touches freed module memory.
  {
    fixture: 'fixture-bug-noowner',
    caughtBy: /the module cannot be unloaded while a mapping outlives its fd/,
    exitCodes: [ExitCode.TESTS_FAILED, ExitCode.GUEST_CRASHED],
  },
  // The watchdog in the reading child catches it; later in-process touches hang until the request deadline.
  {
    fixture: 'fixture-bug-livelock',
    caughtBy: /a whole-device map reads zero right after load/,
    exitCodes: [ExitCode.TESTS_FAILED, ExitCode.TIMED_OUT],
  },
];

async function runProfile(profile: string): Promise<{ code: number | null; output: string }> {
  const { code, stdout, stderr } = await runCli('test', '--profile', profile);
  // eslint-disable-next-line no-control-regex
  return { code, output: (stdout + stderr).replace(/\x1b\[[0-9;]*m/g, '') };
}

/** The titles of the cases that failed, from the verbose reporter's "×" lines. */
const failedCases = (output: string): string[] =>
  output.split('\n').filter((line) => /^\s*×/.test(line)).map((line) => line.split(' > ').at(-1) ?? line);

describe('the conformance suite against fixture drivers', () => {
  it('passes the correct fixture', async () => {
    const { code, output } = await runProfile(fixtureProfile('fixture-correct'));
    expect(failedCases(output)).toEqual([]);
    expect(output).toMatch(/^conformance: \d+ passed, 0 failed/m);
    expect(code).toBe(ExitCode.PASSED);
  });

  it.each(BUGGY)('fails $fixture, naming the case that caught it', async ({ fixture, caughtBy, exitCodes }) => {
    const { code, output } = await runProfile(fixtureProfile(fixture));
    expect(exitCodes).toContain(code);
    expect(failedCases(output).some((title) => caughtBy.test(title))).toBe(true);
  });
});
