/**
 * The JSON results file every `mmapkit test` run writes, read back by
 * `mmapkit merge-results`; the verdict a run's counts give; and the summary
 * lines both commands end with, the last always the counts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ExitCode, UserError } from '../exit-codes.js';
import type { Finding } from '../qemu/console.js';
import type { CrashRecord } from '../qemu/guest-supervisor.js';
import { type CaseCounts, type CaseResult, describeCounts } from './case-results.js';

/** The vitest tag of the cases a quick run keeps (vitest.config.ts defines it). */
export const QUICK_TAG = 'core';

export interface KernelFindingRecord {
  case: string;
  finding: string;
}

export interface ResultsFile {
  kernel: string | undefined;
  accelerator: string;
  bootSeconds: number;
  wallSeconds: number;
  /** The guests the run shared its files between (tools/test/guest-pool.ts). */
  guests: number;
  /** Those and the guests that replaced a crashed one. */
  guestsBooted: number;
  profiles: { name: string; device: string }[];
  /** Only the cases tagged QUICK_TAG ran. */
  quick: boolean;
  /** "i/n" when the run was one shard of the suite (`--shard`); merged reports list theirs. */
  shard?: string;
  shards?: string[];
  counts: CaseCounts;
  /** Cases the run's filter left out (not tagged core in a quick run): neither run nor skipped. */
  notSelected: number;
  exitCode: number;
  crashes: CrashRecord[];
  kernelFindings: KernelFindingRecord[];
  consoleFindings: Finding[];
  cases: CaseResult[];
}

/** Failed cases, or a kernel that logged a warning, fail the run; so does a run where nothing passed. */
export function verdictOf(counts: CaseCounts, consoleFindings: number): number {
  const failed = counts.failed > 0 || counts.passed === 0 || consoleFindings > 0;
  return failed ? ExitCode.TESTS_FAILED : ExitCode.PASSED;
}

const FIELDS: Record<string, string> = {
  counts: 'object',
  notSelected: 'number',
  exitCode: 'number',
  crashes: 'object',
  kernelFindings: 'object',
  consoleFindings: 'object',
  cases: 'object',
  profiles: 'object',
};

/** A results file as written by `mmapkit test`; anything else is a usage error naming the file. */
export function readResultsFile(file: string): ResultsFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserError(`${file}: ${code === 'ENOENT' ? 'no such file' : code !== undefined ? code : 'not JSON'}`);
  }
  const record = parsed as Record<string, unknown>;
  for (const [field, type] of Object.entries(FIELDS)) {
    if (typeof record?.[field] !== type || record[field] === null) throw new UserError(`${file}: not an mmapkit test results file (no ${field})`);
  }
  return parsed as ResultsFile;
}

/** Relative to the current directory when under it, else absolute. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') || relative === '' ? file : relative;
}

/**
 * The lines a run ends with, short enough for a terminal, "mmapkit: " first
 * except the last: "N passed, N failed, N skipped, N crashed".
 */
export function summaryLines(results: ResultsFile, resultsPath: string | undefined): string[] {
  const guests = `${results.guestsBooted} guest${results.guestsBooted === 1 ? '' : 's'} booted`;
  const findings = results.consoleFindings;
  const lines = [
    `kernel ${results.kernel ?? '?'} (${results.accelerator}), boot to guest agent ${results.bootSeconds.toFixed(1)} s, ` +
      `whole run ${results.wallSeconds.toFixed(1)} s, ${guests}`,
    `devices ${results.profiles.map((profile) => profile.device).join(' ')}; kernel log findings: ${findings.length === 0 ? 'none' : findings.length}`,
    ...findings.map((finding) => `  ${finding.kind}: ${finding.line}`),
  ];
  if (results.shards !== undefined) lines.push(`merged shards ${results.shards.join(', ')}`);
  if (results.shard !== undefined) lines.push(`shard ${results.shard} of the test files (merge the shards: mmapkit merge-results FILE...)`);
  if (results.quick) {
    lines.push(`quick run: ${results.notSelected} cases not tagged ${QUICK_TAG} were not selected (all: without --quick, or make run FULL=1)`);
  } else if (results.notSelected > 0) {
    lines.push(`${results.notSelected} cases not selected`);
  }
  if (resultsPath !== undefined) lines.push(`results in ${displayPath(resultsPath)}`);
  return [...lines.map((line) => `mmapkit: ${line}`), describeCounts(results.counts)];
}
