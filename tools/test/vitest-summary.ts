/**
 * The reporter `make test` ends with (vitest.config.ts): one plain line,
 * "tests: N passed, N failed, N skipped, N crashed", counted as `mmapkit test`
 * counts (tools/test/case-results.ts). Cases a filter (-t, a tag) left out,
 * which vitest's own summary calls skipped, are said apart just above it.
 */
import type { Reporter, SerializedError, TestModule } from 'vitest/node';
import { caseResults, countCases, describeCounts } from './case-results.js';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    const { cases, notSelected } = caseResults(testModules, unhandledErrors);
    const filtered = notSelected > 0 ? `tests: ${notSelected} cases not selected by the run's filters\n` : '';
    process.stdout.write(`\n${filtered}tests: ${describeCounts(countCases(cases))}\n`);
  }
}
