// Every citation of the semantics catalogue and of the bug taxonomy in the
// repository names a row that docs/catalogue.md or docs/bug-taxonomy.md
// defines, and nothing cites a kernel source line (tools/lint/citations.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CitationTargets, catalogueRows, citationProblems, taxonomyNumbers } from '../../tools/lint/citations.js';
import { REPO_ROOT } from '../../tools/paths.js';

const SCANNED = ['tools', 'guest', 'native', 'kmod', 'test', 'README.md', 'docs'];
/** This file: its strings are made-up citations, there to show the scanner fails. */
const THIS_FILE = 'test/unit/catalogue-citations.test.ts';
/** Recorded output (kernel logs, traces, explain evidence), kept verbatim as the kernel and the tools wrote it. */
const RECORDED = /^test\/fixtures\/(console|trace)\/|\.svg$/;

const read = (file: string): string => readFileSync(path.join(REPO_ROOT, file), 'utf8');
const isGitCheckout = existsSync(path.join(REPO_ROOT, '.git'));

function scannedFiles(): string[] {
  const tracked = execFileSync('git', ['ls-files', '-z', '--', ...SCANNED], { cwd: REPO_ROOT, encoding: 'utf8' });
  return tracked
    .split('\0')
    .filter((file) => file !== '' && file !== THIS_FILE && !RECORDED.test(file))
    .filter((file) => existsSync(path.join(REPO_ROOT, file)));
}

describe('the catalogue and the taxonomy', () => {
  const rows = catalogueRows(read('docs/catalogue.md'));
  const bugs = taxonomyNumbers(read('docs/bug-taxonomy.md'));

  it('define rows in every area of the catalogue, A to J', () => {
    const areas = new Set([...rows].map((row) => row[0]));
    expect([...areas].sort().join('')).toBe('ABCDEFGHIJ');
  });

  it('number the bugs from 1 without a gap', () => {
    expect(bugs.size).toBeGreaterThan(0);
    expect([...bugs].sort((a, b) => a - b)).toEqual(Array.from({ length: bugs.size }, (_, i) => i + 1));
  });

  it('are all that tracked code, tests and docs cite, by function and never by line', (ctx) => {
    ctx.skip(!isGitCheckout, 'not a git checkout: there is no list of tracked files to scan');
    const files = scannedFiles();
    expect(files.length).toBeGreaterThan(100);
    const problems = files.flatMap((file) =>
      citationProblems(read(file), { rows, bugs }).map(({ line, found, problem }) => `${file}:${line}: "${found}": ${problem}`),
    );
    expect(problems).toEqual([]);
  });
});

describe('the citation scanner', () => {
  const targets: CitationTargets = { rows: new Set(['A5', 'B3', 'C1', 'C2', 'C3', 'C4']), bugs: new Set([7, 8, 9]) };
  const problemsIn = (text: string): string[] => citationProblems(text, targets).map(({ problem }) => problem);

  it('reads the identifiers the two documents define from the first cell of their tables', () => {
    expect(catalogueRows('| Row | Case |\n|---|---|\n| A5 | x |\n| B12 | y |\nA7 in prose\n')).toEqual(new Set(['A5', 'B12']));
    expect(taxonomyNumbers('| # | Bug |\n| #7 | x |\n| #18 | y |\n')).toEqual(new Set([7, 18]));
  });

  it('accepts rows and bugs that exist: single, listed, as a range, across comment lines', () => {
    const text = [
      '// catalogue A5: ...; catalogue B3, C1 and C2; catalogue C1-C4; catalogue A5/B3',
      ' * a wrapped citation (catalogue',
      ' * A5; taxonomy #7, #8 and #9). Taxonomy #8 at the start of a sentence.',
      'poison 0xA5, a define FOO_A5, fixture-bug-x',
      '| A5 | a table whose first cell defines a row |',
    ].join('\n');
    expect(problemsIn(text)).toEqual([]);
  });

  it('fails on a row the catalogue lacks', () => {
    expect(problemsIn('// catalogue K9: a made-up row')).toEqual(['catalogue K9: no such row in docs/catalogue.md']);
    expect(problemsIn('(catalogue C3-C5)')).toEqual(['catalogue C5: no such row in docs/catalogue.md']);
    expect(problemsIn('catalogue A5-B3')).toEqual(['the range A5-B3 spans two areas: cite each row']);
  });

  it('fails on a bug the taxonomy lacks', () => {
    expect(problemsIn('/* taxonomy #8, #99 */')).toEqual(['taxonomy #99: no such bug in docs/bug-taxonomy.md']);
  });

  it('fails on a kernel source line number, on one line or split across a comment', () => {
    for (const text of ['(mm/memory.c:2515)', '(memtype.c:\n *   1132-1150)', 'at `:1351-1352`', 'include/linux/mm.h:422', '(line 1252)', '/boot/config-6.1.0-56-amd64:908']) {
      expect(problemsIn(text), text).toHaveLength(1);
    }
  });

  it('fails on a row or a bug named without its keyword, and on the catalogue outside the repository', () => {
    expect(problemsIn('// A5: the core checks')).toEqual(['a catalogue row without its keyword: write "catalogue A5"']);
    expect(problemsIn('(bug #7)')).toEqual(['a bug without its keyword: write "taxonomy #N"']);
    expect(problemsIn('(catalogue section 6)')).toEqual(['a section of the catalogue: cite its row']);
    expect(problemsIn('(shared/reference/mmap-semantics.md)')).toHaveLength(1);
  });

  it('leaves alone the file:line a kernel log line quotes', () => {
    expect(problemsIn('kernel BUG at mm/memory.c:2229!')).toEqual([]);
    expect(problemsIn('WARNING: CPU: 1 PID: 123 at mm/memory.c:2245 remap_pfn_range+0x1/0x2')).toEqual([]);
  });

  it('gives the line each problem starts on', () => {
    const found = citationProblems('first\nsecond, catalogue A5\nthird: catalogue Z1\n', targets);
    expect(found).toEqual([{ line: 3, found: 'catalogue Z1', problem: 'catalogue Z1: no such row in docs/catalogue.md' }]);
  });
});
