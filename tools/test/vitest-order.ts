/**
 * Runs test files in the order of their paths, not vitest's default (slowest
 * and recently failed first), so that a conformance run is the same sequence
 * of cases every time and a failure can be reproduced as it happened.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

export default class PathOrderSequencer extends BaseSequencer {
  override sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return Promise.resolve([...files].sort((a, b) => a.moduleId.localeCompare(b.moduleId)));
  }
}
