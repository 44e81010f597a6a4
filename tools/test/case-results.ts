/**
 * Reading vitest's results: one record per case, and the counts every output
 * of a run shares (the final line, the JSON results file, KTAP, a merged
 * report). A case is "crashed" when the guest died under it: its error starts
 * with the relay's CRASHED_MARK (tools/qemu/relay.ts).
 *
 * Cases the run's filter left out (a quick run keeps the cases tagged core)
 * were never selected: they are counted apart, as notSelected, and not as
 * skipped, which is kept for cases that decided to skip and said why.
 */
import path from 'node:path';
import type { TestCase, TestModule } from 'vitest/node';
import { REPO_ROOT } from '../paths.js';
import { CRASHED_MARK } from '../qemu/relay.js';

export type CaseOutcome = 'passed' | 'failed' | 'skipped' | 'crashed';

export interface CaseResult {
  /** The test file, relative to the repository. */
  file: string;
  /** The describe blocks around the case, joined with " > " (the profile's name comes first); "" at top level. */
  suite: string;
  /** Describe blocks and title, joined with " > ". */
  name: string;
  outcome: CaseOutcome;
  durationMs?: number;
  /** Failure messages, or the reason a case was skipped. */
  messages: string[];
  /** What the case annotated (e.g. a kernel finding: the kernel's behaviour, not the driver's). */
  annotations: string[];
}

/** The prefix of an annotation that reports the kernel's own misbehaviour (e.g. catalogue E3). */
export const KERNEL_FINDING = 'kernel finding:';

export interface CaseCounts {
  passed: number;
  failed: number;
  skipped: number;
  crashed: number;
}

export interface RunCases {
  cases: CaseResult[];
  /** Cases the run's filter left out: counted, never listed. */
  notSelected: number;
}

const fileOf = (module: TestModule): string => path.relative(REPO_ROOT, module.moduleId);

const outcomeOfFailure = (messages: string[]): CaseOutcome => (messages.some((message) => message.startsWith(CRASHED_MARK)) ? 'crashed' : 'failed');

/** The case's own title: its name without the describe blocks. */
export const titleOf = (result: CaseResult): string => (result.suite === '' ? result.name : result.name.slice(result.suite.length + ' > '.length));

/** A file that failed to load, or whose hooks threw, has no failed case to show for it: it gets a record of its own. */
export function fileSetupResult(module: TestModule): CaseResult | undefined {
  const tests = [...module.children.allTests()];
  if (module.state() !== 'failed' || tests.some((test) => test.result().state === 'failed')) return undefined;
  const messages = module.errors().map((error) => error.message);
  return { file: fileOf(module), suite: '', name: '(file setup)', outcome: outcomeOfFailure(messages), messages, annotations: [] };
}

/** The record of a finished case; undefined for a case the run's filter left out. */
export function caseResult(test: TestCase): CaseResult | undefined {
  if (test.options.mode === 'skip' || test.options.mode === 'todo') return undefined;
  const result = test.result();
  const diagnostic = test.diagnostic();
  const messages =
    result.state === 'failed'
      ? result.errors.map((error) => error.message)
      : result.state === 'skipped' && result.note !== undefined
        ? [result.note]
        : [];
  const outcome: CaseOutcome = result.state === 'failed' ? outcomeOfFailure(messages) : result.state === 'passed' ? 'passed' : 'skipped';
  return {
    file: fileOf(test.module),
    suite: test.parent.type === 'suite' ? test.parent.fullName : '',
    name: test.fullName,
    outcome,
    ...(diagnostic !== undefined && { durationMs: Math.round(diagnostic.duration) }),
    messages,
    annotations: test.annotations().map((annotation) => annotation.message),
  };
}

/** An error outside any case still fails the run: it gets a record of its own, so that counts are counts of records. */
export function unhandledErrorResult(error: unknown): CaseResult {
  const message = (error as { message?: unknown } | undefined)?.message;
  return { file: '(vitest)', suite: '', name: '(unhandled error)', outcome: 'failed', messages: [typeof message === 'string' ? message : String(error)], annotations: [] };
}

export function caseResults(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown> = []): RunCases {
  const cases: CaseResult[] = [];
  let notSelected = 0;
  for (const module of testModules) {
    const setup = fileSetupResult(module);
    if (setup !== undefined) cases.push(setup);
    for (const test of module.children.allTests()) {
      const result = caseResult(test);
      if (result === undefined) notSelected++;
      else cases.push(result);
    }
  }
  cases.push(...unhandledErrors.map(unhandledErrorResult));
  return { cases, notSelected };
}

export function countCases(results: ReadonlyArray<CaseResult>): CaseCounts {
  const counts: CaseCounts = { passed: 0, failed: 0, skipped: 0, crashed: 0 };
  for (const result of results) counts[result.outcome]++;
  return counts;
}

/** The final line of every run: the form CI logs are read for. */
export function describeCounts({ passed, failed, skipped, crashed }: CaseCounts): string {
  return `${passed} passed, ${failed} failed, ${skipped} skipped, ${crashed} crashed`;
}
