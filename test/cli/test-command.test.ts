/**
 * `mmapkit test` as `make run` runs it (--quick, the reference devices) and
 * as CI runs it: its own output into a pipe, vitest's junit reporter passed
 * through, the JSON results file and the final line, all agreeing with each
 * other; KTAP read by the kernel's kunit.py; and the run split into two
 * shards whose merged report counts what the whole run counts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { type CaseCounts, describeCounts } from '../../tools/test/case-results.js';
import { kunitParse } from '../kunit-parse.js';
import { type CliResult, runCli } from './run-cli.js';
import { scratchDir } from '../scratch-dir.js';

const dir = scratchDir('mmapkit-test-command-');

interface Results {
  counts: CaseCounts;
  notSelected: number;
  exitCode: number;
  profiles: { name: string; device: string }[];
  cases: { name: string; outcome: string }[];
}

const readResults = (file: string): Results => JSON.parse(readFileSync(file, 'utf8')) as Results;
const explain = (run: CliResult): string => `${run.stdout.slice(-3000)}\n${run.stderr.slice(-2000)}`;
const lastLine = (text: string): string | undefined => text.trimEnd().split('\n').at(-1);

/** kunit.py has no "crashed": it counts a crashed case as failed. */
function expectKunitCounts(ktap: string, counts: CaseCounts): void {
  const parsed = kunitParse(ktap);
  expect(parsed.output).not.toMatch(/\[ERROR\]/);
  expect(parsed.counts).toEqual({ passed: counts.passed, failed: counts.failed + counts.crashed, skipped: counts.skipped, crashed: 0, errors: 0 });
}

describe('usage errors, before any guest boots', () => {
  it.each([
    [['test', '--shard', '3/2'], /--shard takes i\/n/],
    [['test', '--shard', '99/99'], /--shard 99\/99: the suite has \d+ test files/],
    [['test', '--reporter', 'ktap', '--reporter', 'junit', '--output-file', 'x'], /--output-file is for one of/],
    [['merge-results'], /needs the results files/],
    [['merge-results', '--reporter', 'junit', 'x.json'], /takes ktap/],
  ])('mmapkit %j', async (args, message) => {
    const run = await runCli(...args);
    expect(run.code).toBe(ExitCode.USAGE);
    expect(run.stderr).toMatch(new RegExp(`^mmapkit: error: .*${message.source}`, 'm'));
    expect(run.stderr).not.toMatch(/booted/);
  });

  it('merge-results --help prints its usage', async () => {
    const run = await runCli('merge-results', '--help');
    expect(run.code).toBe(ExitCode.PASSED);
    expect(run.stdout).toMatch(/^usage: mmapkit merge-results/);
  });
});

/** The unsharded quick run, which the shards must add up to. */
let whole: Results | undefined;

describe('mmapkit test --quick', () => {
  it('prints a few plain lines into a pipe, and its final line, results file and junit report agree', async () => {
    const junit = path.join(dir(), 'junit.xml');
    const resultsFile = path.join(dir(), 'results.json');
    const run = await runCli('test', '--quick', '--reporter', 'junit', '--output-file', junit, '--results', resultsFile);
    expect(run.code, explain(run)).toBe(ExitCode.PASSED);

    const results = readResults(resultsFile);
    // /dev/mmapkit is the remap device under the skeleton's name: the quick run tests it once.
    expect(results.profiles.map((profile) => profile.device).sort()).toEqual(['/dev/mmapkit', '/dev/mmapkit-fault', '/dev/mmapkit-ro']);
    expect(results.exitCode).toBe(0);
    const { passed, failed, skipped, crashed } = results.counts;
    expect(passed).toBeGreaterThan(30);
    expect(results.cases).toHaveLength(passed + failed + skipped + crashed);
    // The cases not tagged core are not selected: counted apart, not skipped.
    expect(results.notSelected).toBeGreaterThan(0);
    expect(lastLine(run.stdout)).toBe(describeCounts(results.counts));

    // Into a pipe: no colour, no redrawn line, and not a line per passing case.
    expect(run.stdout).not.toContain('\x1b');
    expect(run.stdout).not.toContain('\r');
    expect(run.stdout.trimEnd().split('\n').length).toBeLessThanOrEqual(20);
    expect(run.stdout).toMatch(new RegExp(`quick run: ${results.notSelected} cases not tagged core were not selected`));

    // junit lists every collected case, those the quick run left out as skipped.
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toMatch(/^<\?xml/);
    const ran = [...xml.matchAll(/<testcase [^>]*>\s*(<skipped\/>)?/g)].filter((match) => match[1] === undefined);
    expect(ran).toHaveLength(passed);
    whole = results;
  });
});

describe('mmapkit test --quick --shard k/2 --reporter ktap, then mmapkit merge-results', () => {
  const shardFiles = (): string[] => [1, 2].map((index) => path.join(dir(), `shard-${index}.json`));

  it.each([1, 2])('shard %i/2 writes KTAP that kunit.py parse counts as the final line does', async (index) => {
    const run = await runCli('test', '--quick', '--shard', `${index}/2`, '--reporter', 'ktap', '--results', shardFiles()[index - 1]!);
    expect(run.code, explain(run)).toBe(ExitCode.PASSED);
    expect(run.stdout).toMatch(/^KTAP version 1\n/);
    const results = readResults(shardFiles()[index - 1]!);
    expect(lastLine(run.stdout)).toBe(describeCounts(results.counts));
    expectKunitCounts(run.stdout, results.counts);
  });

  it('merges the two shards into the counts, cases and exit code of the unsharded run', async () => {
    expect(whole, 'the unsharded quick run above did not finish').toBeDefined();
    const mergedFile = path.join(dir(), 'merged.json');
    const merge = await runCli('merge-results', '--reporter', 'ktap', '--results', mergedFile, ...shardFiles());
    expect(merge.code, explain(merge)).toBe(ExitCode.PASSED);
    expect(lastLine(merge.stdout)).toBe(describeCounts(whole!.counts));
    const merged = readResults(mergedFile);
    expect(merged.counts).toEqual(whole!.counts);
    expect(merged.notSelected).toBe(whole!.notSelected);
    expect(merged.cases.map((result) => result.name).sort()).toEqual(whole!.cases.map((result) => result.name).sort());
    expectKunitCounts(merge.stdout, whole!.counts);

    const incomplete = await runCli('merge-results', shardFiles()[0]!);
    expect(incomplete.code).toBe(ExitCode.USAGE);
    expect(incomplete.stderr).toMatch(/^mmapkit: error: shard 2\/2 is missing/m);
  });
});
