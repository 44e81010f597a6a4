/**
 * Reads the guest console: what the kernel and guest/init.sh printed. Pure
 * functions over text, so that recorded logs (a clean boot, an oops, a
 * panic, a hang) can be replayed in unit tests.
 */

export type FindingKind = 'panic' | 'oops' | 'bug' | 'warning' | 'bad-page' | 'pat';

export interface Finding {
  kind: FindingKind;
  /** The line that matched, without the timestamp. */
  line: string;
  /** Its index in the console's lines. */
  index: number;
}

/** The signatures ktest.pl, NIPA and the mmap catalogue look for, most severe first. */
const SIGNATURES: { kind: FindingKind; pattern: RegExp }[] = [
  { kind: 'panic', pattern: /Kernel panic - not syncing/ },
  { kind: 'oops', pattern: /\bOops: |general protection fault|BUG: unable to handle/ },
  { kind: 'bug', pattern: /kernel BUG at |\bBUG: |Unable to handle kernel/ },
  { kind: 'bad-page', pattern: /BUG: Bad page|Bad page (map|state)|Bad rss-counter/ },
  { kind: 'warning', pattern: /WARNING: CPU: \d+ PID: |\bWARNING: at / },
  // Memory-type conflicts from remap_pfn_range's PAT tracking (arch/x86/mm/pat/memtype.c).
  { kind: 'pat', pattern: /x86\/PAT: .*(conflicting memory types|freeing invalid memtype|map pfn expected mapping type|Invalid)/ },
];

/**
 * Catalogue F7: on x86 (6.1 and 6.12), unmapping part of a whole-VMA PFN map of MMIO makes PAT's
 * untrack_pfn free a sub-range of a memtype reserved whole (logged by memtype_free): the kernel's
 * own line, reported rather than failed, but only for a profile that says its region is MMIO.
 */
export const isSplitMmioPat = (finding: Finding, mmio: boolean): boolean =>
  mmio && finding.kind === 'pat' && /freeing invalid memtype/.test(finding.line);

/** These end the guest (oops=panic makes every oops a panic). */
export const FATAL_KINDS: ReadonlySet<FindingKind> = new Set(['panic', 'oops', 'bug']);

const TIMESTAMP = /^\[\s*\d+\.\d+\]\s?/;

/** Strips carriage returns and terminal escapes that SeaBIOS and the serial line leave. */
export function consoleLines(text: string): string[] {
  return text
    .replace(/\r/g, '')
    // eslint-disable-next-line no-control-regex
    .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '')
    .split('\n');
}

export function findings(lines: string[]): Finding[] {
  const found: Finding[] = [];
  lines.forEach((raw, index) => {
    const line = raw.replace(TIMESTAMP, '');
    const bad = SIGNATURES.find(
      ({ kind, pattern }) => pattern.test(line) && (kind !== 'bug' || !/Bad page|Bad rss-counter/.test(line)),
    );
    if (bad !== undefined) found.push({ kind: bad.kind, line, index });
  });
  return found;
}

/** The "mmapkit-init: FATAL: ..." line init prints before powering off, if any. */
export function initFailure(lines: string[]): string | undefined {
  const line = lines.find((candidate) => candidate.includes('mmapkit-init: FATAL: '));
  return line?.slice(line.indexOf('mmapkit-init: FATAL: ') + 'mmapkit-init: '.length);
}

/** The last lines worth showing a user after a failure. */
export function tail(lines: string[], count = 30): string[] {
  const trimmed = [...lines];
  while (trimmed.length > 0 && trimmed.at(-1)?.trim() === '') trimmed.pop();
  return trimmed.slice(-count);
}

/**
 * The lines that explain a crash: from the first fatal finding (or the line
 * before the panic) to the end, capped so a long stack does not flood.
 */
export function crashExcerpt(lines: string[], found: Finding[], max = 40): string[] {
  const first = found.find((finding) => FATAL_KINDS.has(finding.kind));
  if (first === undefined) return [];
  const start = Math.max(0, first.index - 2);
  return lines.slice(start, start + max);
}
