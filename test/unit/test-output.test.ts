/**
 * What `mmapkit test` prints: colour only for a terminal (NO_COLOR and
 * FORCE_COLOR honoured), kunit.py-style case lines, and summary lines that
 * end with the counts.
 */
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../tools/paths.js';
import { caseLines, isNotable } from '../../tools/test/case-lines.js';
import { describeCounts } from '../../tools/test/case-results.js';
import { readResultsFile, summaryLines } from '../../tools/test/results-file.js';
import { colourEnabled, paint } from '../../tools/cli/terminal.js';

const recorded = readResultsFile(path.join(REPO_ROOT, 'test', 'fixtures', 'results', 'crash-and-skips.json'));
const tty = Object.assign(new PassThrough(), { isTTY: true });
const pipe = new PassThrough();

describe('colour', () => {
  it('is on for a terminal and off for a pipe, unless NO_COLOR or FORCE_COLOR say otherwise', () => {
    expect(colourEnabled(tty, { TERM: 'xterm' })).toBe(true);
    expect(colourEnabled(pipe, { TERM: 'xterm' })).toBe(false);
    expect(colourEnabled(tty, { TERM: 'dumb' })).toBe(false);
    expect(colourEnabled(tty, { TERM: 'xterm', NO_COLOR: '1' })).toBe(false);
    expect(colourEnabled(pipe, { FORCE_COLOR: '1' })).toBe(true);
    expect(colourEnabled(tty, { TERM: 'xterm', FORCE_COLOR: '0' })).toBe(false);
  });
});

describe('case lines', () => {
  const skipped = recorded.cases.find((result) => result.outcome === 'skipped')!;
  const crashed = recorded.cases.find((result) => result.outcome === 'crashed')!;

  it('lists what failed, crashed or skipped for a reason, not what passed', () => {
    expect(recorded.cases.filter(isNotable).map((result) => result.outcome).sort()).toEqual(['crashed', ...Array<string>(recorded.counts.skipped).fill('skipped')]);
  });

  it('gives a skip its reason as a KTAP SKIP directive does, on one line', () => {
    const lines = caseLines(skipped, paint(false));
    expect(lines).toEqual([`[SKIPPED] ${path.basename(skipped.file)} > ${skipped.name} # ${skipped.messages[0]}`]);
  });

  it('shows a crash with its messages, cut short, and no escape codes without colour', () => {
    const lines = caseLines(crashed, paint(false));
    expect(lines[0]).toBe(`[CRASHED] 4-lifetime.test.ts > ${crashed.name}`);
    expect(lines.some((line) => line.startsWith('    CRASHED: '))).toBe(true);
    expect(lines.at(-1)).toMatch(/^ {4}\.\.\. \d+ more lines in the results file$/);
    expect(lines.join('\n')).not.toContain('\x1b');
    expect(caseLines(crashed, paint(true))[0]).toContain('\x1b[31m[CRASHED]\x1b[39m');
  });
});

describe('summary lines', () => {
  it('end with the counts, and say where the results are', () => {
    const lines = summaryLines(recorded, path.join(process.cwd(), 'build', 'results.json'));
    expect(lines.at(-1)).toBe(describeCounts(recorded.counts));
    expect(lines).toContain('mmapkit: results in build/results.json');
    expect(lines.slice(0, -1).every((line) => line.startsWith('mmapkit: '))).toBe(true);
  });
});
