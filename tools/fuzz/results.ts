/**
 * `mmapkit fuzz`'s JSON results file and its `--replay` argument: a results
 * file whose failed profiles are rerun with their recorded sequences as they
 * are, or fast-check's `SEED:PATH` for one profile.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FuzzReplay, FuzzReport } from '../../guest/fuzz-types.js';
import { UserError } from '../exit-codes.js';

/** One profile's run, as the results file records it. */
export interface FuzzProfileResult extends FuzzReport {
  name: string;
  /** The profile file, absolute. */
  file: string;
  device: string;
  outcome: 'passed' | 'failed';
  /** Kernel log findings (BUG, WARNING, Oops, bad page, PAT) while it ran: any fails the run. */
  kernelFindings: string[];
  /** The replay it was, when it was one. */
  replayOf?: string;
}

export interface FuzzResults {
  kernel: string | undefined;
  accelerator: string;
  bootSeconds: number;
  wallSeconds: number;
  /** The operations asked for per profile (--ops). */
  opsPerProfile: number;
  exitCode: number;
  profiles: FuzzProfileResult[];
}

/** What --replay asks for: per profile file (absolute), the seed and how to rerun. */
export type ReplayPlan = { kind: 'file'; file: string; runs: Map<string, { seed: number; replay: FuzzReplay }> } | { kind: 'path'; seed: number; replay: FuzzReplay };

/**
 * fast-check's seed and counterexample path, and after '@' the commands' replayPath: fast-check
 * walks the path without running the property, so it needs the replayPath to shrink a command
 * list the way the run that found it did.
 */
const SEED_PATH = /^(-?\d+):(\d+(?::\d+)*)(?:@([A-Za-z0-9+/:=]+))?$/;

/** The --replay argument that asks fast-check for a failure again. */
export const seedPathArgument = (seed: number, path: string, replayPath: string | undefined): string =>
  `${seed}:${path}${replayPath !== undefined ? `@${replayPath}` : ''}`;

/** Reads --replay: a results file of an earlier fuzz, or SEED:PATH[@REPLAYPATH] (fast-check's seed, path and replayPath). */
export function replayPlan(value: string): ReplayPlan {
  const seedPath = SEED_PATH.exec(value);
  if (seedPath !== null && !existsSync(value)) {
    return { kind: 'path', seed: Number(seedPath[1]), replay: { path: seedPath[2]!, ...(seedPath[3] !== undefined && { replayPath: seedPath[3] }) } };
  }
  if (!existsSync(value)) throw new UserError(`--replay takes a fuzz results file or SEED:PATH[@REPLAYPATH] (as a failed fuzz prints it), not '${value}'`);
  let results: FuzzResults;
  try {
    results = JSON.parse(readFileSync(value, 'utf8')) as FuzzResults;
  } catch (error) {
    throw new UserError(`--replay: ${value} is not JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(results.profiles)) throw new UserError(`--replay: ${value} is not a fuzz results file (no "profiles")`);
  const runs = new Map<string, { seed: number; replay: FuzzReplay }>();
  for (const profile of results.profiles) {
    if (profile.failure !== undefined && profile.failure.steps.length > 0) runs.set(profile.file, { seed: profile.seed, replay: { steps: profile.failure.steps } });
  }
  if (runs.size === 0) throw new UserError(`--replay: ${value} records no failed sequence to replay`);
  return { kind: 'file', file: path.resolve(value), runs };
}
