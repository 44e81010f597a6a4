/**
 * How one case reads on the terminal, in the manner of kunit.py: a status in
 * brackets, where the case is (file > describe blocks > title), a skip's
 * reason after "# " as in a KTAP SKIP directive, and a failure's messages
 * indented below, cut short (the results file keeps them whole).
 */
import path from 'node:path';
import type { CaseOutcome, CaseResult } from './case-results.js';
import type { Paint } from '../cli/terminal.js';

const STATUS: Record<CaseOutcome, string> = { passed: '[PASSED]', failed: '[FAILED]', skipped: '[SKIPPED]', crashed: '[CRASHED]' };

/** Beyond this, a failure's text is in the results file. */
const MAX_MESSAGE_LINES = 20;

/** Worth a line of its own without --verbose: what failed or crashed, and what skipped for a stated reason. */
export const isNotable = (result: CaseResult): boolean =>
  result.outcome === 'failed' || result.outcome === 'crashed' || (result.outcome === 'skipped' && result.messages.length > 0);

export function caseLines(result: CaseResult, colour: Paint, logs: readonly string[] = []): string[] {
  const tint = result.outcome === 'passed' ? colour.green : result.outcome === 'skipped' ? colour.yellow : colour.red;
  const where = `${path.basename(result.file)} > ${result.name}`;
  if (result.outcome === 'skipped' || result.outcome === 'passed') {
    const reason = result.outcome === 'skipped' && result.messages.length > 0 ? ` # ${result.messages.join('; ')}` : '';
    const time = result.outcome === 'passed' && result.durationMs !== undefined ? colour.dim(` (${result.durationMs} ms)`) : '';
    return [`${tint(STATUS[result.outcome])} ${where}${colour.dim(reason)}${time}`, ...indent(logs)];
  }
  const text = result.messages.flatMap((message) => message.split('\n'));
  const shown = text.slice(0, MAX_MESSAGE_LINES);
  const more = text.length - shown.length;
  return [
    `${tint(STATUS[result.outcome])} ${where}`,
    ...indent(shown),
    ...(more > 0 ? [`    ... ${more} more lines in the results file`] : []),
    ...indent(logs),
  ];
}

const indent = (lines: readonly string[]): string[] => lines.map((line) => `    ${line}`);
