/**
 * Reading vitest's results: one record per case (for the JSON results file),
 * counts by outcome, and a reporter that ends a run with one plain line,
 * "tests: N passed, N failed, N skipped, N crashed", the form CI logs are read for.
 * A case is "crashed" when the guest died under it: its error starts with the
 * relay's CRASHED_MARK (tools/qemu/relay.ts).
 */
import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { REPO_ROOT } from '../paths.js';
import { CRASHED_MARK } from '../qemu/relay.js';

export type CaseOutcome = 'passed' | 'failed' | 'skipped' | 'crashed';

export interface CaseResult {
  /** The test file, relative to the repository. */
  file: string;
  /** Describe blocks and title, joined with " > " (the profile's name comes first). */
  name: string;
  outcome: CaseOutcome;
  durationMs?: number;
  /** Failure messages, or the reason a case was skipped. */
  messages: string[];
  /** What the case annotated (e.g. a kernel finding: the kernel's behaviour, not the driver's). */
  annotations: string[];
  /**
   * For a case that allows more than one outcome (refused, or mapped and faulting past the end, say):
   * the one that ran, which its pass stands for.
   */
  branch?: string;
}

/** The prefix of an annotation that reports the kernel's own misbehaviour (e.g. catalogue E3). */
export const KERNEL_FINDING = 'kernel finding:';

/** The annotation type with which a case records which of its allowed outcomes ran (its `branch`). */
export const BRANCH_ANNOTATION = 'branch';

export interface CaseCounts {
  passed: number;
  failed: number;
  skipped: number;
  crashed: number;
}

export function caseResults(testModules: ReadonlyArray<TestModule>): CaseResult[] {
  const results: CaseResult[] = [];
  for (const module of testModules) {
    const file = path.relative(REPO_ROOT, module.moduleId);
    const tests = [...module.children.allTests()];
    // A file that failed to load or whose hooks threw has no failed test to show for it.
    if (module.state() === 'failed' && !tests.some((test) => test.result().state === 'failed')) {
      const messages = module.errors().map((error) => error.message);
      const outcome = messages.some((message) => message.startsWith(CRASHED_MARK)) ? 'crashed' : 'failed';
      results.push({ file, name: '(file setup)', outcome, messages, annotations: [] });
    }
    for (const test of tests) {
      // Left out by the run's filter (a quick run's tags), not by anything the case decided.
      if (test.options.mode === 'skip' || test.options.mode === 'todo') continue;
      const result = test.result();
      const diagnostic = test.diagnostic();
      const messages =
        result.state === 'failed'
          ? result.errors.map((error) => error.message)
          : result.state === 'skipped' && result.note !== undefined
            ? [result.note]
            : [];
      const outcome: CaseOutcome =
        result.state === 'failed'
          ? messages.some((message) => message.startsWith(CRASHED_MARK))
            ? 'crashed'
            : 'failed'
          : result.state === 'passed'
            ? 'passed'
            : 'skipped';
      const annotations = test.annotations();
      const branch = annotations.filter((annotation) => annotation.type === BRANCH_ANNOTATION).map((annotation) => annotation.message);
      results.push({
        file,
        name: test.fullName,
        outcome,
        ...(diagnostic !== undefined && { durationMs: Math.round(diagnostic.duration) }),
        messages,
        annotations: annotations.filter((annotation) => annotation.type !== BRANCH_ANNOTATION).map((annotation) => annotation.message),
        ...(branch.length > 0 && { branch: branch.join('; ') }),
      });
    }
  }
  return results;
}

export function countCases(results: ReadonlyArray<CaseResult>, unhandledErrors = 0): CaseCounts {
  const counts: CaseCounts = { passed: 0, failed: unhandledErrors, skipped: 0, crashed: 0 };
  for (const result of results) counts[result.outcome]++;
  return counts;
}

export function describeCounts({ passed, failed, skipped, crashed }: CaseCounts): string {
  return `${passed} passed, ${failed} failed, ${skipped} skipped, ${crashed} crashed`;
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    process.stdout.write(`\ntests: ${describeCounts(countCases(caseResults(testModules), unhandledErrors.length))}\n`);
  }
}
