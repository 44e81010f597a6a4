/**
 * Citations of the mmap semantics catalogue (docs/catalogue.md: "catalogue A5",
 * "catalogue A4-A7", "catalogue B3, C1") and of the bug taxonomy
 * (docs/bug-taxonomy.md: "taxonomy #7", "taxonomy #8, #9"), checked against
 * the rows those files define. Also reported, because no check can follow
 * them: a kernel source line number (a file name, a colon and a number; the
 * function is cited instead, since lines differ between 6.1 and 6.12), a row
 * or a bug named without its keyword, and the catalogue's old home outside
 * the repository.
 */

/** What the two documents define. */
export interface CitationTargets {
  /** Catalogue row identifiers: an area letter and a number. */
  rows: ReadonlySet<string>;
  /** Taxonomy numbers: 1, ..., 18. */
  bugs: ReadonlySet<number>;
}

export interface CitationProblem {
  /** 1-based line of the text where the problem starts. */
  line: number;
  /** The text found. */
  found: string;
  problem: string;
}

/** The identifiers in the first cell of a table row: a row in the catalogue, `| #7 |` in the taxonomy. */
const firstCells = (markdown: string, cell: RegExp): string[] =>
  [...markdown.matchAll(new RegExp(`^\\|\\s*(${cell.source})\\s*\\|`, 'gm'))].map((match) => match[1] ?? '');

/** The row identifiers docs/catalogue.md defines. */
export function catalogueRows(markdown: string): Set<string> {
  return new Set(firstCells(markdown, /[A-Z]\d{1,2}/));
}

/** The bug numbers docs/bug-taxonomy.md defines. */
export function taxonomyNumbers(markdown: string): Set<number> {
  return new Set(firstCells(markdown, /#\d{1,3}/).map((cell) => Number(cell.slice(1))));
}

const ROW = String.raw`[A-Z]\d{1,2}(?:\s*-\s*[A-Z]?\d{1,2})?`;
const LIST_SEPARATOR = String.raw`\s*(?:,|/|\+|\band\b|\bor\b)\s*`;
const CATALOGUE_CITATION = new RegExp(String.raw`\bcatalogue\s+(${ROW}(?:${LIST_SEPARATOR}${ROW})*)\b`, 'gi');
const TAXONOMY_CITATION = new RegExp(String.raw`\btaxonomy\s+(#\d+(?:${LIST_SEPARATOR}#\d+)*)\b`, 'gi');

/** Forms that name a row, a bug or a source line in a way no check can follow. */
const UNCHECKABLE: { pattern: RegExp; problem: string }[] = [
  {
    pattern: /\b[\w./-]*\.(?:c|h|S|cc|cpp|ts|js|mk|sh)\s*:\s*\d+/g,
    problem: 'a source line number: cite the function and the series (e.g. "remap_pfn_range_internal, 6.1 and 6.12")',
  },
  { pattern: /(?<=[\s(`,;]):\d{2,}(?:\s*[-,]\s*\d+)*\b/g, problem: 'a line number of the file cited before: cite the function' },
  { pattern: /\blines?\s+\d+/gi, problem: 'a line number: cite the function (or the setting)' },
  { pattern: /\bconfig-[\w.+-]+:\d+/g, problem: 'a line of a kernel config: cite the option' },
  { pattern: /\bbugs?\s+#\d+/gi, problem: 'a bug without its keyword: write "taxonomy #N"' },
  { pattern: /(?<![\w-])[A-J]\d{1,2}(?!\w)/g, problem: 'a catalogue row without its keyword: write "catalogue A5"' },
  { pattern: /\b(?:catalogue|reference)(?:'s)?\s+(?:section|header)\b/gi, problem: 'a section of the catalogue: cite its row' },
  {
    pattern: /mmap-semantics\.md|semantics\sreference/g,
    problem: 'the catalogue outside the repository: cite docs/catalogue.md or docs/bug-taxonomy.md',
  },
];

/** A kernel log line quotes its own file:line ("kernel BUG at mm/memory.c:2229!"): data, not a citation. */
const KERNEL_LOG_QUOTE = /(?:\bBUG at|\bPID: \d+ at)\s+$/;

/** Comment leaders ("//", " * ", "# ") blanked out, so that a citation can run across lines of a comment. */
function withoutCommentLeaders(text: string): string {
  return text.replace(/^([ \t]*)(\/\/|\/\*\*?|\*|#)(?=\s|$)/gm, (_, indent: string, leader: string) => indent + ' '.repeat(leader.length));
}

/** The rows a range or list of rows names: "catalogue A4-A7" names four. */
function expandRows(list: string): { rows: string[]; problems: string[] } {
  const rows: string[] = [];
  const problems: string[] = [];
  for (const item of list.split(new RegExp(LIST_SEPARATOR)).map((part) => part.replace(/\s+/g, ''))) {
    const range = /^(?<letter>[A-Z])(?<first>\d{1,2})-(?<lastLetter>[A-Z])?(?<last>\d{1,2})$/.exec(item)?.groups;
    if (range === undefined) {
      rows.push(item);
      continue;
    }
    const { letter, first, lastLetter, last } = range;
    if (lastLetter !== undefined && lastLetter !== letter) {
      problems.push(`the range ${item} spans two areas: cite each row`);
      continue;
    }
    for (let n = Number(first); n <= Number(last); n++) rows.push(`${letter}${n}`);
  }
  return { rows, problems };
}

const lineOf = (text: string, index: number): number => text.slice(0, index).split('\n').length;

/** Blank a span, keeping the line breaks, so that later patterns do not see it again. */
const blank = (text: string, start: number, end: number): string =>
  text.slice(0, start) + text.slice(start, end).replace(/[^\n]/g, ' ') + text.slice(end);

/** Every problem with the catalogue and taxonomy citations in one file's text. */
export function citationProblems(text: string, targets: CitationTargets): CitationProblem[] {
  const problems: CitationProblem[] = [];
  let rest = withoutCommentLeaders(text);
  const report = (index: number, found: string, problem: string): void => {
    problems.push({ line: lineOf(text, index), found: found.replace(/\s+/g, ' ').trim(), problem });
  };

  for (const match of rest.matchAll(CATALOGUE_CITATION)) {
    const { rows, problems: rangeProblems } = expandRows(match[1] ?? '');
    for (const problem of rangeProblems) report(match.index, match[0], problem);
    for (const row of rows) {
      if (!targets.rows.has(row)) report(match.index, match[0], `catalogue ${row}: no such row in docs/catalogue.md`);
    }
    rest = blank(rest, match.index, match.index + match[0].length);
  }
  for (const match of rest.matchAll(TAXONOMY_CITATION)) {
    for (const bug of (match[1] ?? '').match(/\d+/g) ?? []) {
      if (!targets.bugs.has(Number(bug))) report(match.index, match[0], `taxonomy #${bug}: no such bug in docs/bug-taxonomy.md`);
    }
    rest = blank(rest, match.index, match.index + match[0].length);
  }
  // A table's first cell defines a row; it does not cite one.
  rest = rest.replace(/^\|\s*(?:[A-Z]\d{1,2}|#\d{1,3})\s*\|/gm, (cell) => cell.replace(/[^|]/g, ' '));

  for (const { pattern, problem } of UNCHECKABLE) {
    for (const match of rest.matchAll(pattern)) {
      if (KERNEL_LOG_QUOTE.test(rest.slice(Math.max(0, match.index - 40), match.index))) continue;
      report(match.index, match[0], problem);
    }
  }
  return problems.sort((a, b) => a.line - b.line);
}
