/**
 * The shards of one `mmapkit test --shard i/n` run, merged into the results
 * of the whole run: the cases of every shard, counted again, and the exit code
 * the unsharded run would have had. Only a complete set of shards of one run
 * (same kernel, devices and selection, each of 1..n once) is merged: counts
 * from a partial set would read as a whole run that passed.
 */
import { ExitCode, UserError } from '../exit-codes.js';
import { countCases } from './case-results.js';
import { parseShard } from './shard.js';
import { type ResultsFile, verdictOf } from './results-file.js';

export interface ShardResults {
  /** The file it was read from, for messages. */
  file: string;
  results: ResultsFile;
}

const devicesOf = (results: ResultsFile): string => results.profiles.map((profile) => profile.device).join(' ');

function checkSameRun(shards: readonly ShardResults[]): void {
  const [first, ...others] = shards;
  for (const other of others) {
    const differ = (what: string, a: string, b: string): UserError =>
      new UserError(`${first!.file} and ${other.file} are not shards of one run: ${what} ${a} and ${b}`);
    if (other.results.kernel !== first!.results.kernel) throw differ('kernels', String(first!.results.kernel), String(other.results.kernel));
    if (devicesOf(other.results) !== devicesOf(first!.results)) throw differ('devices', devicesOf(first!.results), devicesOf(other.results));
    if (other.results.quick !== first!.results.quick) throw differ('selections', first!.results.quick ? 'quick' : 'all', other.results.quick ? 'quick' : 'all');
  }
}

/** The shards in order, each of 1..n exactly once. */
function orderShards(shards: readonly ShardResults[]): ShardResults[] {
  const parsed = shards.map((shard) => {
    const part = parseShard(shard.results.shard ?? '');
    if (part === undefined) throw new UserError(`${shard.file}: not a shard (its run had no --shard)`);
    return { shard, ...part };
  });
  const count = parsed[0]!.count;
  const odd = parsed.find((entry) => entry.count !== count);
  if (odd !== undefined) throw new UserError(`${odd.shard.file} is shard ${odd.shard.results.shard}, ${parsed[0]!.shard.file} one of ${count}`);
  const ordered: ShardResults[] = [];
  for (let index = 1; index <= count; index++) {
    const found = parsed.filter((entry) => entry.index === index);
    if (found.length === 0) throw new UserError(`shard ${index}/${count} is missing: merge all ${count} shards of the run`);
    if (found.length > 1) throw new UserError(`shard ${index}/${count} given twice: ${found.map((entry) => entry.shard.file).join(', ')}`);
    ordered.push(found[0]!.shard);
  }
  return ordered;
}

export function mergeResults(shards: readonly ShardResults[]): ResultsFile {
  if (shards.length === 0) throw new UserError('merge-results needs the results files of the shards: mmapkit merge-results FILE...');
  checkSameRun(shards);
  const all = orderShards(shards).map((shard) => shard.results);
  const first = all[0]!;
  const cases = all.flatMap((results) => results.cases);
  const counts = countCases(cases);
  const consoleFindings = all.flatMap((results) => results.consoleFindings);
  // A crash, hang or boot failure in any shard outranks what the merged counts say, as in one run.
  const worstEnd = Math.max(ExitCode.PASSED, ...all.map((results) => results.exitCode).filter((code) => code > ExitCode.TESTS_FAILED));
  return {
    kernel: first.kernel,
    accelerator: [...new Set(all.map((results) => results.accelerator))].join(', '),
    // The shards ran side by side: the slowest boot and the longest run are what the split run cost.
    bootSeconds: Math.max(...all.map((results) => results.bootSeconds)),
    wallSeconds: Math.max(...all.map((results) => results.wallSeconds)),
    guests: all.reduce((sum, results) => sum + results.guests, 0),
    guestsBooted: all.reduce((sum, results) => sum + results.guestsBooted, 0),
    profiles: first.profiles,
    quick: first.quick,
    shards: all.map((results) => results.shard!),
    counts,
    notSelected: all.reduce((sum, results) => sum + results.notSelected, 0),
    exitCode: worstEnd !== ExitCode.PASSED ? worstEnd : verdictOf(counts, consoleFindings.length),
    crashes: all.flatMap((results) => results.crashes),
    kernelFindings: all.flatMap((results) => results.kernelFindings),
    consoleFindings,
    cases,
  };
}
