/**
 * Merging the results files of a sharded run: a recorded run cut into shards
 * by test file, as vitest's --shard cuts it, merges back into the same cases,
 * counts and exit code; an incomplete or mixed set of shards is refused.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../tools/exit-codes.js';
import { REPO_ROOT } from '../../tools/paths.js';
import { countCases } from '../../tools/test/case-results.js';
import { type ShardResults, mergeResults } from '../../tools/test/merge.js';
import { type ResultsFile, readResultsFile } from '../../tools/test/results-file.js';

const recorded = (name: string): ResultsFile => readResultsFile(path.join(REPO_ROOT, 'test', 'fixtures', 'results', name));

/** The run as `count` shards, each file's cases in one of them. */
function shardsOf(results: ResultsFile, count: number, exitCodes: number[] = []): ShardResults[] {
  const files = [...new Set(results.cases.map((result) => result.file))];
  return Array.from({ length: count }, (_, i) => {
    const cases = results.cases.filter((result) => files.indexOf(result.file) % count === i);
    const findings = i === 0 ? results.consoleFindings : [];
    return {
      file: `shard-${i + 1}.json`,
      results: {
        ...results,
        shard: `${i + 1}/${count}`,
        cases,
        counts: countCases(cases),
        notSelected: i === 0 ? results.notSelected : 0,
        consoleFindings: findings,
        crashes: i === 0 ? results.crashes : [],
        exitCode: exitCodes[i] ?? ExitCode.PASSED,
      },
    };
  });
}

describe('mergeResults', () => {
  it.each(['failures.json', 'crash-and-skips.json'])('%s cut into shards merges back into the same cases and counts', (name) => {
    const whole = recorded(name);
    const exitCodes = whole.exitCode > ExitCode.TESTS_FAILED ? [whole.exitCode] : [];
    const merged = mergeResults(shardsOf(whole, 3, exitCodes).reverse());
    expect(merged.counts).toEqual(whole.counts);
    expect(merged.notSelected).toBe(whole.notSelected);
    expect(merged.cases.map((result) => result.name).sort()).toEqual(whole.cases.map((result) => result.name).sort());
    expect(merged.shards).toEqual(['1/3', '2/3', '3/3']);
    expect(merged.exitCode).toBe(whole.exitCode);
  });

  it('judges the merged cases: a failed case in any shard fails it, a shard that passed nothing alone does not', () => {
    const whole = recorded('failures.json');
    expect(mergeResults(shardsOf(whole, 2)).exitCode).toBe(ExitCode.TESTS_FAILED);
    const passing = whole.cases.map((result) => ({ ...result, outcome: 'passed' as const }));
    const [one, two] = shardsOf({ ...whole, cases: passing }, 2);
    const empty = { ...two!, results: { ...two!.results, cases: [], counts: countCases([]), exitCode: ExitCode.TESTS_FAILED } };
    expect(mergeResults([one!, empty]).exitCode).toBe(ExitCode.PASSED);
  });

  it('refuses a missing, repeated or foreign shard', () => {
    const whole = recorded('failures.json');
    const [one, two] = shardsOf(whole, 2);
    expect(() => mergeResults([one!])).toThrow(/shard 2\/2 is missing/);
    expect(() => mergeResults([one!, one!, two!])).toThrow(/shard 1\/2 given twice/);
    expect(() => mergeResults([one!, { ...two!, results: { ...two!.results, kernel: '6.12.0-0-amd64' } }])).toThrow(/not shards of one run: kernels/);
    expect(() => mergeResults([one!, { ...two!, results: { ...two!.results, quick: false } }])).toThrow(/selections/);
    expect(() => mergeResults([{ file: 'whole.json', results: whole }])).toThrow(/whole\.json: not a shard/);
    expect(() => mergeResults([])).toThrow(/needs the results files/);
  });
});
