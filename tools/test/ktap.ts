/**
 * A run's results as KTAP version 1 (Documentation/dev-tools/ktap.rst), the
 * format kunit, kselftest and KernelCI read: one subtest per describe block
 * (the profile and catalogue area; a file's own name for cases outside any
 * block), each case a test line, a skip's reason in its SKIP directive, and
 * failure messages, annotations, kernel log findings and crashes as "#"
 * diagnostic lines before the line they explain.
 *
 * KTAP has no "crashed" result: a crashed case is "not ok" with its CRASHED
 * message, so a KTAP parser counts it as failed. The kselftest-style Totals
 * line at the end gives crashed cases as errors.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type CaseResult, titleOf } from './case-results.js';
import type { ResultsFile } from './results-file.js';

const INDENT = '    ';

/** Test names end at "#" (it opens a directive) and at the line's end. */
const testName = (text: string): string => text.replace(/#/g, 'no.').replace(/\s+/g, ' ').trim();

const diagnostics = (texts: readonly string[]): string[] =>
  texts.flatMap((text) => text.split('\n')).map((line) => (line.trim() === '' ? '#' : `# ${line.trimEnd()}`));

interface Subtest {
  name: string;
  cases: CaseResult[];
}

/** The subtests in the order their first case ran. */
function subtestsOf(cases: readonly CaseResult[]): Subtest[] {
  const byKey = new Map<string, Subtest>();
  for (const result of cases) {
    const key = `${result.file}\0${result.suite}`;
    let subtest = byKey.get(key);
    if (subtest === undefined) {
      subtest = { name: testName(result.suite !== '' ? result.suite : path.basename(result.file)), cases: [] };
      byKey.set(key, subtest);
    }
    subtest.cases.push(result);
  }
  return [...byKey.values()];
}

function caseLines(result: CaseResult, number: number): string[] {
  const name = testName(titleOf(result));
  if (result.outcome === 'skipped') {
    return [...diagnostics(result.annotations), `ok ${number} ${name} # SKIP ${testName(result.messages.join('; '))}`.trimEnd()];
  }
  const failed = result.outcome === 'failed' || result.outcome === 'crashed';
  return [...diagnostics(result.annotations), ...(failed ? diagnostics(result.messages) : []), `${failed ? 'not ok' : 'ok'} ${number} ${name}`];
}

function subtestLines(subtest: Subtest, number: number): string[] {
  const inner = ['KTAP version 1', `# Subtest: ${subtest.name}`, `1..${subtest.cases.length}`, ...subtest.cases.flatMap((result, i) => caseLines(result, i + 1))];
  const outcomes = subtest.cases.map((result) => result.outcome);
  const result = outcomes.some((outcome) => outcome === 'failed' || outcome === 'crashed')
    ? `not ok ${number} ${subtest.name}`
    : outcomes.every((outcome) => outcome === 'skipped')
      ? `ok ${number} ${subtest.name} # SKIP`
      : `ok ${number} ${subtest.name}`;
  return [...inner.map((line) => INDENT + line), result];
}

export function ktapReport(results: ResultsFile): string {
  const subtests = subtestsOf(results.cases);
  const { passed, failed, skipped, crashed } = results.counts;
  const lines = [
    'KTAP version 1',
    `1..${subtests.length}`,
    ...subtests.flatMap((subtest, i) => subtestLines(subtest, i + 1)),
    `# mmapkit: kernel ${results.kernel ?? '?'}, devices ${results.profiles.map((profile) => profile.device).join(' ')}`,
    ...diagnostics(results.consoleFindings.map((finding) => `kernel log ${finding.kind}: ${finding.line}`)),
    ...diagnostics(results.crashes.map((crash) => `guest crashed or hung: ${crash.reason} (console: ${crash.consoleLog})`)),
    `# Totals: pass:${passed} fail:${failed} xfail:0 xpass:0 skip:${skipped} error:${crashed}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** The KTAP report, to stdout ('-') or a file. */
export function writeKtap(results: ResultsFile, destination: string): void {
  if (destination === '-') process.stdout.write(ktapReport(results));
  else {
    mkdirSync(path.dirname(destination), { recursive: true });
    writeFileSync(destination, ktapReport(results));
  }
}
