/**
 * Counting vitest's results, and a reporter that ends a run with one plain
 * line, "tests: N passed, N failed[, N skipped]", the form CI logs are read for.
 */
import type { Reporter, TestModule } from 'vitest/node';

export interface CaseCounts {
  passed: number;
  failed: number;
  skipped: number;
}

export function countCases(testModules: ReadonlyArray<TestModule>, unhandledErrors: number): CaseCounts {
  const counts: CaseCounts = { passed: 0, failed: unhandledErrors, skipped: 0 };
  for (const module of testModules) {
    // A file that failed to load or whose hooks threw has no failed test to show for it.
    if (module.state() === 'failed' && [...module.children.allTests('failed')].length === 0) counts.failed++;
    for (const test of module.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') counts.passed++;
      else if (state === 'failed') counts.failed++;
      else counts.skipped++;
    }
  }
  return counts;
}

export function describeCounts({ passed, failed, skipped }: CaseCounts): string {
  return `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
}

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    process.stdout.write(`\ntests: ${describeCounts(countCases(testModules, unhandledErrors.length))}\n`);
  }
}
