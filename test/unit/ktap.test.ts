/**
 * The KTAP report, read by the kernel's own parser: recorded results files
 * (test/fixtures/results) go through the KTAP writer and kunit.py parse
 * (from the kernel source make setup unpacks) must find no error in it and
 * count what our final line counts. KTAP has no "crashed": kunit.py counts a
 * crashed case as failed.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../tools/paths.js';
import { countCases } from '../../tools/test/case-results.js';
import { ktapReport } from '../../tools/test/ktap.js';
import { type ResultsFile, readResultsFile } from '../../tools/test/results-file.js';
import { KUNIT_PY, kunitParse } from '../kunit-parse.js';

const RECORDED = ['crash-and-skips.json', 'failures.json'];
const recorded = (name: string): ResultsFile => readResultsFile(path.join(REPO_ROOT, 'test', 'fixtures', 'results', name));

describe('KTAP through kunit.py parse', () => {
  it('has the kernel source tree with kunit.py (make setup unpacks it)', () => {
    expect(existsSync(KUNIT_PY), `${KUNIT_PY} is missing: run make setup`).toBe(true);
  });

  it('covers every outcome across the recorded runs', () => {
    const outcomes = new Set(RECORDED.flatMap((name) => recorded(name).cases.map((result) => result.outcome)));
    expect([...outcomes].sort()).toEqual(['crashed', 'failed', 'passed', 'skipped']);
  });

  it.each(RECORDED)('%s: kunit.py reads it without error and counts as our final line does', (name) => {
    const results = recorded(name);
    const ours = countCases(results.cases);
    expect(ours).toEqual(results.counts);
    const { counts, output, status } = kunitParse(ktapReport(results));
    expect(output).not.toMatch(/\[ERROR\]/);
    expect(counts).toEqual({ passed: ours.passed, failed: ours.failed + ours.crashed, skipped: ours.skipped, crashed: 0, errors: 0 });
    expect(status).toBe(ours.failed + ours.crashed > 0 ? 1 : 0);
  });

  it('gives skip reasons in SKIP directives, and failures, crashes and kernel log findings as diagnostics', () => {
    const crash = ktapReport(recorded('crash-and-skips.json'));
    expect(crash).toMatch(/^KTAP version 1\n1\.\.\d+\n/);
    expect(crash).toMatch(/^ {4}ok \d+ read\(\) and write\(\) at an offset mirror the mapping # SKIP the profile says read\(\)\/write\(\) do not mirror the mapping$/m);
    expect(crash).toMatch(/^ {4}# CRASHED: .*\n(?: {4}#.*\n)* {4}not ok \d+ the module cannot be unloaded while a mapping outlives its fd$/m);
    expect(crash).toMatch(/^# kernel log oops: BUG: unable to handle page fault/m);
    expect(crash).toMatch(/^# guest crashed or hung: guest kernel crashed: /m);
    expect(crash).toMatch(/^ {4}# kernel finding: fork fails with ENOMEM/m);
    const failures = ktapReport(recorded('failures.json'));
    expect(failures).toMatch(/^ {4}# expected 'ok' to be 'SIGBUS' .*\n {4}not ok \d+ a length one page past the region$/m);
    expect(failures).toMatch(/^not ok \d+ fixture-bug-nobounds: bounds/m);
  });

  it('keeps a "#" in a case title from ending the test name', () => {
    const results = recorded('failures.json');
    const [first, ...rest] = results.cases;
    const renamed = { ...first!, name: `${first!.suite} > pages #1 and #2 of the region` };
    const { counts } = kunitParse(ktapReport({ ...results, cases: [renamed, ...rest] }));
    expect(counts.errors).toBe(0);
    expect(counts.passed + counts.failed + counts.skipped).toBe(results.cases.length);
  });
});
