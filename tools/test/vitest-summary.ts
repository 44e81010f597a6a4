/**
 * The reporter `make test` ends with (vitest.config.ts): one plain line,
 * "tests: N passed, N failed, N skipped, N crashed", counted as `mmapkit test`
 * counts (tools/test/case-results.ts).
 */
import type { Reporter, SerializedError, TestModule } from 'vitest/node';
import { caseResults, countCases, describeCounts } from './case-results.js';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    process.stdout.write(`\ntests: ${describeCounts(countCases(caseResults(testModules, unhandledErrors).cases))}\n`);
  }
}
