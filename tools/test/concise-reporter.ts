/**
 * The reporter `mmapkit test` shows by default, after kunit.py: a line for
 * each case that failed, crashed or skipped with a reason, a progress line
 * while the cases run, and nothing for the cases that passed (`--verbose`
 * lists every case). Cases the run's filter left out are not listed at all.
 *
 * On a terminal the progress line is redrawn in place and statuses are
 * coloured. Into a pipe or a file nothing is redrawn and nothing coloured;
 * the progress line is printed at most every NON_TTY_PROGRESS_S, so that a
 * CI log shows the run is alive without a line per case.
 */
import path from 'node:path';
import type { Writable } from 'node:stream';
import type { Reporter, SerializedError, TestCase, TestModule, TestSpecification, Vitest } from 'vitest/node';
import { type CaseCounts, caseResult, describeCounts, fileSetupResult, unhandledErrorResult } from './case-results.js';
import { caseLines, isNotable } from './case-lines.js';
import { type Paint, colourEnabled, paint, rewritesLines } from '../cli/terminal.js';

const NON_TTY_PROGRESS_S = 30;

type ConsoleLog = Parameters<NonNullable<Reporter['onUserConsoleLog']>>[0];

export interface ConciseOptions {
  /** Where the lines go: stdout, or stderr when stdout carries a machine-readable report. */
  out: Writable;
  /** Every case, passed ones included. */
  verbose: boolean;
}

export class ConciseReporter implements Reporter {
  private readonly out: Writable;
  private readonly verbose: boolean;
  private readonly colour: Paint;
  private readonly inPlace: boolean;
  private readonly counts: CaseCounts = { passed: 0, failed: 0, skipped: 0, crashed: 0 };
  /** What each case printed, shown with it when it fails (or always, with --verbose). */
  private readonly logs = new Map<string, string[]>();
  private files = 0;
  private filesStarted = 0;
  private current = '';
  private progressShown = false;
  private finished = false;
  /** The run was given up before any case (abandon): nothing more is printed. */
  private abandoned = false;
  private lastProgressAt = Date.now();
  private vitest: Vitest | undefined;

  constructor({ out, verbose }: ConciseOptions) {
    this.out = out;
    this.verbose = verbose;
    this.colour = paint(colourEnabled(out));
    this.inPlace = rewritesLines(out);
  }

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
  }

  async onTestRunStart(specifications: ReadonlyArray<TestSpecification>): Promise<void> {
    // Vitest takes a run's shard of the files only after this: count them as it will.
    const vitest = this.vitest;
    const shard = vitest?.config.shard;
    const files = vitest !== undefined && shard !== undefined ? await new vitest.config.sequence.sequencer(vitest).shard([...specifications]) : specifications;
    this.files = files.length;
    this.lastProgressAt = Date.now();
  }

  onTestModuleStart(module: TestModule): void {
    this.filesStarted++;
    this.current = path.basename(module.moduleId);
    if (this.inPlace) this.drawProgress();
    else if (Date.now() - this.lastProgressAt >= NON_TTY_PROGRESS_S * 1000) {
      this.lastProgressAt = Date.now();
      this.print([`mmapkit: running ${this.progress()}`]);
    }
  }

  onUserConsoleLog(log: ConsoleLog): void {
    if (log.taskId === undefined) return;
    const lines = this.logs.get(log.taskId) ?? [];
    lines.push(...log.content.trimEnd().split('\n'));
    this.logs.set(log.taskId, lines);
  }

  onTestCaseResult(test: TestCase): void {
    const result = caseResult(test);
    if (result === undefined) return;
    this.counts[result.outcome]++;
    const logs = this.logs.get(test.id) ?? [];
    this.logs.delete(test.id);
    if (this.verbose || isNotable(result)) this.print(caseLines(result, this.colour, result.outcome === 'skipped' && !this.verbose ? [] : logs));
    else if (this.inPlace) this.drawProgress();
  }

  onTestModuleEnd(module: TestModule): void {
    const setup = fileSetupResult(module);
    if (setup === undefined) return;
    this.counts[setup.outcome]++;
    this.print(caseLines(setup, this.colour));
  }

  onTestRunEnd(_modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    this.finished = true;
    this.clearProgress();
    for (const error of unhandledErrors) this.print(caseLines(unhandledErrorResult(error), this.colour));
  }

  /**
   * `mmapkit test` gave the run up before any case ran (its targets did not come up): the files that were
   * waiting for the guest fail, and that is not this run's result, so it is not printed.
   */
  abandon(): void {
    this.clearProgress();
    this.abandoned = true;
  }

  private progress(): string {
    return `[${this.filesStarted}/${this.files}] ${this.current}: ${describeCounts(this.counts)}`;
  }

  /** Lines above the progress line, which is then drawn again below them. */
  private print(lines: string[]): void {
    if (this.abandoned) return;
    this.clearProgress();
    this.out.write(lines.map((line) => `${line}\n`).join(''));
    if (this.inPlace && !this.finished) this.drawProgress();
  }

  private drawProgress(): void {
    if (this.abandoned) return;
    const columns = (this.out as { columns?: number }).columns ?? 100;
    this.out.write(`\r\x1b[2K${this.colour.dim(this.progress().slice(0, columns - 1))}`);
    this.progressShown = true;
  }

  private clearProgress(): void {
    if (!this.progressShown) return;
    this.out.write('\r\x1b[2K');
    this.progressShown = false;
  }
}
