/**
 * The conformance suite on both guest kernel series, as a user runs it.
 * The conformance project already runs the whole suite on the default 6.1
 * kernel; here the whole suite runs on 6.12 with the reference profiles, and
 * `--kernels all` (the quick cases on each series) shows the per-kernel
 * summaries and the combined verdict. The in-kernel drivers run on both series
 * in real-drivers.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { SUPPORTED_SERIES, installedSeries } from '../../tools/kernel.js';
import { runCli } from './run-cli.js';

const SUMMARY = /^(\d+) passed, (\d+) failed, (\d+) skipped, (\d+) crashed$/gm;
const REFERENCE_PROFILES = ['mmapkit-remap', 'mmapkit-fault', 'mmapkit-ro'].flatMap((name) => ['--profile', `test/profiles/${name}.json`]);
const RUN_TIMEOUT_MS = 600_000;

const explain = (result: { stdout: string; stderr: string }): string => `${result.stdout.slice(-4000)}\n${result.stderr.slice(-2000)}`;

describe('the kernel matrix', () => {
  it('has both series installed (make setup installs 6.1 and 6.12)', () => {
    expect(installedSeries()).toEqual(expect.arrayContaining([...SUPPORTED_SERIES]));
  });

  it(
    'every reference profile passes the whole suite on 6.12',
    async () => {
      const result = await runCli('test', '--kernel', '6.12', ...REFERENCE_PROFILES);
      expect(result.code, explain(result)).toBe(ExitCode.PASSED);
      const [summary] = [...result.stdout.matchAll(SUMMARY)];
      expect(Number(summary?.[1])).toBeGreaterThan(200);
      expect(Number(summary?.[2])).toBe(0);
      expect(Number(summary?.[4])).toBe(0);
      expect(result.stdout).toMatch(/kernel 6\.12\./);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'vm run --kernels all runs the command on each series and exits with the worst status',
    async () => {
      const passing = await runCli('vm', 'run', '--kernels', 'all', '--', 'uname', '-r');
      expect(passing.code, explain(passing)).toBe(0);
      expect(passing.stdout).toMatch(/^6\.1\.\S+$/m);
      expect(passing.stdout).toMatch(/^6\.12\.\S+$/m);
      expect(passing.stdout).toMatch(/^all kernels: passed$/m);
      const failing = await runCli('vm', 'run', '--kernels', '6.12', '--', 'false');
      expect(failing.code).toBe(1);
    },
    RUN_TIMEOUT_MS,
  );

  it(
    '--kernels all runs once per series, prints a summary for each and the combined verdict',
    async () => {
      const result = await runCli('test', '--kernels', 'all', '--quick', ...REFERENCE_PROFILES);
      expect(result.code, explain(result)).toBe(ExitCode.PASSED);
      expect(result.stdout).toMatch(/^=== kernel 6\.1\.\S+ \(series 6\.1\) ===$/m);
      expect(result.stdout).toMatch(/^=== kernel 6\.12\.\S+ \(series 6\.12\) ===$/m);
      const summaries = [...result.stdout.matchAll(SUMMARY)];
      expect(summaries).toHaveLength(2);
      for (const summary of summaries) {
        expect(Number(summary[1])).toBeGreaterThan(0);
        expect([Number(summary[2]), Number(summary[4])]).toEqual([0, 0]);
      }
      expect(result.stdout).toMatch(/^all kernels: passed$/m);
    },
    RUN_TIMEOUT_MS,
  );
});
