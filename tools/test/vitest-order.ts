/**
 * Runs test files in the order of their paths, not vitest's default (slowest
 * and recently failed first), so that a conformance run is the same sequence
 * of cases every time and a failure can be reproduced as it happened.
 *
 * The exception: the CLI files that boot the most guests start first. The CLI
 * files run in two lanes (vitest.config.ts), and a long file started last
 * leaves the other lane idle at the end; vitest's own duration cache is empty
 * on a fresh clone, which is where `make test` runs in CI.
 */
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The longest CLI files, longest first (6.3, 5.8, 3.2 and 2.2 minutes in the CI run of 2026-12-01, b2c4eb0). */
const LONGEST_FIRST = ['test/cli/real-drivers.test.ts', 'test/cli/fixtures-6.1.test.ts', 'test/cli/fixtures-6.12.test.ts', 'test/cli/kernel-matrix.test.ts'];

const rank = (file: TestSpecification): number => {
  const at = LONGEST_FIRST.indexOf(path.relative(file.project.config.root, file.moduleId));
  return at === -1 ? LONGEST_FIRST.length : at;
};

export default class PathOrderSequencer extends BaseSequencer {
  override sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return Promise.resolve([...files].sort((a, b) => rank(a) - rank(b) || a.moduleId.localeCompare(b.moduleId)));
  }
}
