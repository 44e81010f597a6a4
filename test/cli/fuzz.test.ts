/**
 * `mmapkit fuzz` as a user runs it: a short fuzz passes on each reference
 * device and records its seed and operation count; on a buggy fixture it
 * fails with a shrunk sequence that both forms of --replay reproduce. Kept
 * short (a few hundred operations, one boot per run): `mmapkit fuzz --ops
 * 10000` is the real thing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { fixtureProfile } from '../../tools/builder/fixtures.js';
import { type FuzzResults, seedPathArgument } from '../../tools/fuzz/results.js';
import { REPO_ROOT } from '../../tools/paths.js';
import { REFERENCE_DEVICE_PATHS } from '../../tools/reference-driver.js';
import { runCli } from './run-cli.js';

const RUN_TIMEOUT_MS = 300_000;
const dir = mkdtempSync(path.join(os.tmpdir(), 'mmapkit-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function fuzz(name: string, ...args: string[]): Promise<{ code: number | null; output: string; results: FuzzResults; file: string }> {
  const file = path.join(dir, `${name}.json`);
  const { code, stdout, stderr } = await runCli('fuzz', ...args, '--results', file);
  return { code, output: stdout + stderr, results: JSON.parse(readFileSync(file, 'utf8')) as FuzzResults, file };
}

describe('mmapkit fuzz', () => {
  it('passes on each reference device (one guest for all) and records the seed and the operations run', async () => {
    const { code, output, results } = await fuzz('reference', '--ops', '300', '--seed', '4242');
    expect(output).toMatch(/reference fault device: passed: \d+ operations in \d+ sequences, seed 4242/);
    expect(code).toBe(ExitCode.PASSED);
    expect(results.exitCode).toBe(ExitCode.PASSED);
    const devices = results.profiles.map((run) => run.device).sort();
    expect(devices).toEqual([REFERENCE_DEVICE_PATHS.fault, REFERENCE_DEVICE_PATHS.remap, REFERENCE_DEVICE_PATHS.ro]);
    for (const run of results.profiles) {
      expect(run, run.name).toMatchObject({ seed: 4242, outcome: 'passed', passed: true, kernelFindings: [] });
      expect(path.dirname(run.file)).toBe(path.join(REPO_ROOT, 'test', 'profiles'));
      expect(run.ops, run.name).toBeGreaterThanOrEqual(300);
    }
  }, RUN_TIMEOUT_MS);

  describe('on fixture-bug-nobounds (taxonomy #1: a mapping past the buffer is not refused)', () => {
    const profile = fixtureProfile('fixture-bug-nobounds');
    let first: Awaited<ReturnType<typeof fuzz>> | undefined;
    const failed = (): NonNullable<FuzzResults['profiles'][number]['failure']> => {
      const failure = first?.results.profiles[0]?.failure;
      if (failure === undefined) throw new Error('the first run recorded no failure');
      return failure;
    };

    it('fails with a shrunk sequence, printed with its seed', async () => {
      first = await fuzz('nobounds', '--profile', profile, '--ops', '400', '--seed', '7');
      expect(first.code).toBe(ExitCode.TESTS_FAILED);
      const [run] = first.results.profiles;
      expect(run).toMatchObject({ outcome: 'failed', seed: 7 });
      const failure = failed();
      expect(failure.error).toMatch(/past the region must fault/);
      expect(failure.steps.length).toBeGreaterThan(0);
      expect(failure.steps.length).toBeLessThanOrEqual(6);
      expect(failure.path).toMatch(/^\d+(:\d+)*$/);
      expect(first.output).toMatch(/fixture-bug-nobounds: FAILED after \d+ operations in \d+ sequences, seed 7/);
      expect(first.output).toContain('<- fails');
      expect(first.output).toContain(`--replay '${seedPathArgument(7, failure.path!, failure.replayPath)}'`);
    }, RUN_TIMEOUT_MS);

    it('--replay FILE reruns exactly the recorded sequence and fails the same way', async () => {
      const replayed = await fuzz('nobounds-replay-file', '--replay', first!.file);
      expect(replayed.code).toBe(ExitCode.TESTS_FAILED);
      const [run] = replayed.results.profiles;
      expect(run?.failure?.steps).toEqual(failed().steps);
      expect(run?.failure?.error).toBe(failed().error);
      expect(run?.replayOf).toBe(first!.file);
    }, RUN_TIMEOUT_MS);

    it('--replay SEED:PATH@REPLAYPATH reruns fast-check\'s counterexample and fails the same way', async () => {
      const replayed = await fuzz('nobounds-replay-path', '--profile', profile, '--replay', seedPathArgument(7, failed().path!, failed().replayPath));
      expect(replayed.code).toBe(ExitCode.TESTS_FAILED);
      expect(replayed.results.profiles[0]?.failure?.steps).toEqual(failed().steps);
    }, RUN_TIMEOUT_MS);
  });

  it('refuses a bad --ops, --seed or --replay before anything boots', async () => {
    for (const args of [['--ops', '0'], ['--seed', 'x'], ['--replay', 'nothing-here'], ['--replay', '1:2']]) {
      const { code, stdout, stderr } = await runCli('fuzz', ...args);
      expect(stderr, args.join(' ')).toMatch(/^mmapkit: error: .*(--ops|--seed|--replay)/m);
      expect(stdout).toBe('');
      expect(code).toBe(ExitCode.USAGE);
    }
  });
});
