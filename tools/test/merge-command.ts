/**
 * `mmapkit merge-results FILE...`: the report of a run split with
 * `mmapkit test --shard i/n` (one shard per CI runner, say), from the shards'
 * JSON results files: the same case lines, summary and final line, and the
 * exit code the whole run would have had.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseOptions } from '../cli/guest-command.js';
import { checkWritableFile } from '../cli/output-paths.js';
import { colourEnabled, paint } from '../cli/terminal.js';
import { caseLines, isNotable } from './case-lines.js';
import { writeKtap } from './ktap.js';
import { mergeResults } from './merge.js';
import { readResultsFile, summaryLines } from './results-file.js';
import { UserError } from '../exit-codes.js';
import { printHelp } from '../cli/messages.js';

export const MERGE_HELP = `usage: mmapkit merge-results [options] FILE...

Merges the JSON results files of the shards of one run (mmapkit test --shard I/N
--results FILE, one per shard) into one report: a line for each case that failed,
crashed or was skipped with a reason, the summary, and the last line
"N passed, N failed, N skipped, N crashed", counted over every shard. Exits as
the unsharded run would have (0 passed, 1 failed, 120/121/124 if a shard's guest
crashed, did not boot or timed out). Every shard 1..N of one kernel must be given.
  --results FILE      also write the merged results file
  --reporter ktap     also print the merged results as KTAP version 1
  --output-file FILE  write the KTAP report to FILE instead of stdout
  --verbose           list every case, passed ones too
  -h, --help          this help`;

export function mergeCommand(args: string[]): number {
  const { values, positionals } = parseOptions(
    args,
    {
      results: { type: 'string' },
      reporter: { type: 'string' },
      'output-file': { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    true,
  );
  if (values.help) {
    return printHelp(MERGE_HELP);
  }
  if (values.reporter !== undefined && values.reporter !== 'ktap') throw new UserError(`merge-results --reporter takes ktap, not '${values.reporter}'`);
  if (values['output-file'] !== undefined && values.reporter === undefined) throw new UserError('--output-file is for --reporter ktap');
  if (values.results !== undefined) checkWritableFile(values.results, '--results');
  if (values['output-file'] !== undefined) checkWritableFile(values['output-file'], '--output-file');
  const merged = mergeResults(positionals.map((file) => ({ file, results: readResultsFile(file) })));

  const ktap = values.reporter === 'ktap' ? (values['output-file'] !== undefined ? path.resolve(values['output-file']) : '-') : undefined;
  // With KTAP on stdout the case lines go to stderr, as in `mmapkit test --reporter ktap`.
  const out = ktap === '-' ? process.stderr : process.stdout;
  const colour = paint(colourEnabled(out));
  const listed = merged.cases.filter((result) => values.verbose || isNotable(result));
  out.write(listed.flatMap((result) => caseLines(result, colour)).map((line) => `${line}\n`).join(''));

  const resultsFile = values.results !== undefined ? path.resolve(values.results) : undefined;
  if (resultsFile !== undefined) {
    mkdirSync(path.dirname(resultsFile), { recursive: true });
    writeFileSync(resultsFile, `${JSON.stringify(merged, null, 2)}\n`);
  }
  if (ktap !== undefined) writeKtap(merged, ktap);
  process.stdout.write(summaryLines(merged, resultsFile).map((line) => `${line}\n`).join(''));
  return merged.exitCode;
}
