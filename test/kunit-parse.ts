/**
 * The kernel's own KTAP parser, kunit.py parse (tools/testing/kunit in the
 * kernel source make setup unpacks), run on a report, and the counts it gives.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { KERNEL_SOURCE_DIR } from '../tools/paths.js';

export const KUNIT_PY = path.join(KERNEL_SOURCE_DIR, 'tools', 'testing', 'kunit', 'kunit.py');

export interface KunitCounts {
  passed: number;
  failed: number;
  skipped: number;
  crashed: number;
  /** Problems kunit.py found in the KTAP itself (wrong numbering, a missing result line, ...). */
  errors: number;
}

export interface KunitParse {
  counts: KunitCounts;
  /** What kunit.py printed. */
  output: string;
  /** 0 when every test passed or skipped. */
  status: number | null;
}

export function kunitParse(ktap: string): KunitParse {
  const run = spawnSync('python3', [KUNIT_PY, 'parse'], { input: ktap, encoding: 'utf8' });
  if (run.error !== undefined) throw run.error;
  const output = `${run.stdout}${run.stderr}`;
  // "Testing complete. Ran 66 tests: passed: 65, skipped: 1": kunit.py leaves out the zeroes.
  const summary = /Testing complete\. Ran \d+ tests:(.*)$/m.exec(output)?.[1];
  if (summary === undefined) throw new Error(`kunit.py parse printed no summary:\n${output}`);
  const counts: KunitCounts = { passed: 0, failed: 0, skipped: 0, crashed: 0, errors: 0 };
  for (const [, name, value] of summary.matchAll(/(\w+): (\d+)/g)) counts[name as keyof KunitCounts] = Number(value);
  return { counts, output, status: run.status };
}
