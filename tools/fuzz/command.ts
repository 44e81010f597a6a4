/**
 * `mmapkit fuzz`: model-based fuzzing of a device's mmap path. Boots one
 * guest, loads each profile's module and sends the agent one 'fuzz' request
 * per profile: the sequences run and shrink in the guest (guest/fuzz.ts),
 * against the model of what each mapping must show (guest/fuzz-model.ts).
 * After each profile the guest kernel's log is read; any finding fails it,
 * as the conformance suite's gate does.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FuzzReplay, FuzzReport, FuzzTarget } from '../../guest/fuzz-types.js';
import { describeStep } from '../../guest/fuzz-model.js';
import { ExitCode, UserError } from '../exit-codes.js';
import { buildFixtures, fixturesBuildDir } from '../builder/fixtures.js';
import { type Profile, checkModule, loadProfile, profilesVm, referenceProfiles } from '../profile.js';
import { REFERENCE_DEVICE_PATHS } from '../reference-driver.js';
import { findings, isSplitMmioPat } from '../qemu/console.js';
import { loadArgv, moduleName } from '../qemu/guest-modules.js';
import type { VmSession } from '../qemu/session.js';
import { loadTargetModule } from '../test/preflight.js';
import { printHelp, say } from '../cli/messages.js';
import { checkWritableFile } from '../cli/output-paths.js';
import { VM_HELP, VM_OPTIONS, ensureBuilt, guestOptions, kernelOf, parseOptions, positiveNumber, withGuest } from '../cli/guest-command.js';
import { type FuzzProfileResult, type FuzzResults, type ReplayPlan, replayPlan, seedPathArgument } from './results.js';

export const FUZZ_HELP = `usage: mmapkit fuzz [--profile FILE]... [--ops N] [--seed S] [--replay FILE|SEED:PATH[@REPLAYPATH]] [options]

Model-based fuzzing of each profile's device, in the guest: random sequences
of open/close, mmap (offsets and lengths at the region's edges: its first and
last page, one page past its end, offset 2^44, unaligned, zero), munmap,
mprotect, mremap, madvise, fork, reads and writes through the mappings
and through read()/write(), two threads first-touching fresh mappings at
the same moment (a writable device), and an attempt to unload the module
while a mapping outlives every fd (a profile with a "module"; it must be
refused), each checked against a model of what every
mapping must show and which outcomes the profile allows (the errno sets the
conformance cases allow). fast-check generates them; on a failure it shrinks
the sequence to a minimal one, printed with the seed and fast-check's path.
Any kernel log finding (BUG, WARNING, Oops, bad page) fails the profile.
  --profile FILE      a device profile (JSON; see the README); repeatable (one guest for all).
                      Default: the reference driver's remap, fault and read-only profiles
  --ops N             operations per profile (default 10000)
  --seed S            fast-check's seed (default: a random one, printed)
  --replay FILE       rerun, as they are, the failed sequences a results file recorded
                      (its profiles, or those of --profile)
  --replay SEED:PATH[@REPLAYPATH]
                      rerun fast-check's counterexample (seed, path, and the commands' replayPath,
                      as a failure prints it) on one --profile
  --results FILE      the JSON results file (default: results.json in the run's build/runs/ directory):
                      per profile the seed, the operations run, the outcome and the shrunk sequence
${VM_HELP}`;

const OPTIONS = {
  ...VM_OPTIONS,
  profile: { type: 'string', multiple: true },
  ops: { type: 'string' },
  seed: { type: 'string' },
  replay: { type: 'string' },
  results: { type: 'string' },
} as const;

export const DEFAULT_OPS = 10_000;

/** A request deadline that only a hung guest misses: generous per operation under TCG. */
const requestTimeoutMs = (ops: number): number => 300_000 + ops * 100;

export function seedOf(value: string | undefined): number {
  if (value === undefined) return Math.floor(Math.random() * 2 ** 31);
  const seed = Number(value);
  if (!Number.isSafeInteger(seed) || Math.abs(seed) >= 2 ** 31) throw new UserError(`--seed takes a whole number below 2^31 in size, not '${value}'`);
  return seed;
}

/**
 * What the guest's fuzz needs of a profile. A profile whose object a setup makes (guest/setup-api.ts)
 * is refused before the boot: the model knows a region of the node at a fixed offset, and opens the
 * node again at will, which such an object does not allow.
 */
export function fuzzTarget(profile: Profile): FuzzTarget {
  if (profile.setup !== undefined || profile.size === undefined) {
    throw new UserError(`${path.basename(profile.file)}: fuzz takes profiles of a fixed region of the node; this one has a "setup"`);
  }
  return fuzzTargetOf(profile, profile.size);
}

const fuzzTargetOf = (profile: Profile, size: number): FuzzTarget => ({
  // The lifetime case's rule: a profile that names a module is one the tool may try to unload.
  ...(profile.module !== undefined && { module: { name: moduleName(profile.module), load: loadArgv(profile.module, profile.moduleParams) } }),
  name: profile.name,
  device: profile.device,
  size,
  offset: profile.offset,
  writable: profile.writable,
  initial: profile.initial,
  private: profile.private,
  readWrite: profile.readWrite,
});

interface ProfileRun {
  profile: Profile;
  seed: number;
  replay?: FuzzReplay;
  /** How the user asked for the replay, for the report. */
  replayOf?: string;
}

function planRuns(files: string[], kernel: string, seed: number, plan: ReplayPlan | undefined, replayArg: string | undefined): ProfileRun[] {
  const load = (file: string): Profile => loadProfile(path.resolve(file), kernel);
  if (plan?.kind === 'path') {
    if (files.length !== 1) throw new UserError('--replay SEED:PATH reruns one profile: give exactly one --profile');
    return [{ profile: load(files[0]!), seed: plan.seed, replay: plan.replay, replayOf: replayArg! }];
  }
  if (plan?.kind === 'file') {
    const wanted = files.length > 0 ? files.map((file) => path.resolve(file)) : [...plan.runs.keys()];
    return wanted.map((file) => {
      const run = plan.runs.get(file);
      if (run === undefined) throw new UserError(`--replay: ${plan.file} records no failed sequence for ${file}`);
      return { profile: load(file), ...run, replayOf: plan.file };
    });
  }
  // /dev/mmapkit is the remap device under the skeleton's name: fuzzed once, as the remap profile.
  const profiles = files.length > 0 ? files.map(load) : referenceProfiles(kernel).filter((profile) => profile.device !== REFERENCE_DEVICE_PATHS.alias);
  return profiles.map((profile) => ({ profile, seed }));
}

export async function fuzzCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, OPTIONS);
  if (values.help) {
    return printHelp(FUZZ_HELP);
  }
  const ops = positiveNumber(values.ops, '--ops', 'whole number of operations') ?? DEFAULT_OPS;
  const seed = seedOf(values.seed);
  if (values.replay !== undefined && values.seed !== undefined) throw new UserError('--replay takes its seed from what it replays: leave out --seed');
  if (values.results !== undefined) checkWritableFile(values.results, '--results');
  const kernel = kernelOf(values);
  const options = guestOptions(values, kernel);
  const plan = values.replay !== undefined ? replayPlan(values.replay) : undefined;
  const runs = planRuns(values.profile ?? [], kernel.version, seed, plan, values.replay);
  const profiles = runs.map((run) => run.profile);
  await ensureBuilt(kernel);
  const fixtures = fixturesBuildDir(kernel.version) + path.sep;
  if (profiles.some((profile) => profile.module?.startsWith(fixtures) === true)) await buildFixtures(kernel, say);
  for (const profile of profiles) checkModule(profile, kernel.version);
  // A profile the fuzz cannot model is a usage error before the boot.
  for (const profile of profiles) fuzzTarget(profile);

  const outcome = await withGuest(
    { ...options, loadModule: false, ...profilesVm(profiles) },
    async (session) => {
      const results: FuzzProfileResult[] = [];
      for (const run of runs) results.push(await fuzzProfile(session, run, ops));
      return results;
    },
  );
  if (!outcome.ok) return outcome.exitCode;
  const { session, value: results } = outcome;
  const failed = results.filter((result) => result.outcome === 'failed').length;
  const exitCode = failed > 0 || session.findings().length > 0 ? ExitCode.TESTS_FAILED : ExitCode.PASSED;
  const file = path.resolve(values.results ?? path.join(session.runDir, 'results.json'));
  const record: FuzzResults = {
    kernel: session.ready?.kernel,
    accelerator: session.accel,
    bootSeconds: Number(((session.bootMs ?? 0) / 1000).toFixed(1)),
    wallSeconds: Number(process.uptime().toFixed(1)),
    opsPerProfile: ops,
    exitCode,
    profiles: results,
  };
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  for (const result of results.filter((each) => each.outcome === 'failed' && each.failure !== undefined && each.replayOf === undefined)) {
    const { path: at, replayPath } = result.failure!;
    const how = at !== undefined ? ` (or --profile ${relative(result.file)} --replay '${seedPathArgument(result.seed, at, replayPath)}')` : '';
    process.stdout.write(`replay ${result.name}: npx mmapkit fuzz --replay ${relative(file)}${how}\n`);
  }
  process.stdout.write(
    `fuzz: ${results.length - failed} passed, ${failed} failed; boot ${record.bootSeconds} s, whole run ${record.wallSeconds} s; results in ${relative(file)}\n`,
  );
  return exitCode;
}

const relative = (file: string): string => {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
};

async function fuzzProfile(session: VmSession, run: ProfileRun, ops: number): Promise<FuzzProfileResult> {
  const { profile, seed, replay } = run;
  const where = path.basename(profile.file);
  const { guest } = session;
  await loadTargetModule(guest, profile);
  const what = replay === undefined ? `${ops} operations, seed ${seed}` : `replaying ${'steps' in replay ? `${replay.steps.length} recorded operations` : `${seed}:${replay.path}`}`;
  say(`fuzz ${profile.name} (${where}, ${profile.device}): ${what}`);
  const { cursor } = await guest.kernelLog();
  const report: FuzzReport = await guest.request(
    'fuzz',
    { target: fuzzTarget(profile), ops, seed, ...(replay !== undefined && { replay }) },
    { timeoutMs: requestTimeoutMs(ops) },
  );
  const log = await guest.kernelLog(cursor);
  const found = findings(log.lines);
  for (const finding of found.filter((each) => isSplitMmioPat(each, profile.mmio))) {
    say(`kernel (catalogue F7, PAT on a split MMIO mapping; reported, not failed): ${finding.line}`);
  }
  const kernelFindings = [
    ...found.filter((each) => !isSplitMmioPat(each, profile.mmio)).map((each) => each.line),
    ...(log.lost > 0 ? [`${log.lost} kernel log records were overwritten before they could be read`] : []),
  ];
  const passed = report.passed && kernelFindings.length === 0;
  process.stdout.write(describeReport(profile, report, kernelFindings));
  return {
    ...report,
    name: profile.name,
    file: profile.file,
    device: profile.device,
    outcome: passed ? 'passed' : 'failed',
    kernelFindings,
    ...(run.replayOf !== undefined && { replayOf: run.replayOf }),
  };
}

/** A profile's verdict: one line when it passed; the shrunk sequence, the failing step last, when it failed. */
export function describeReport(profile: Pick<Profile, 'name'>, report: FuzzReport, kernelFindings: string[]): string {
  const seconds = (report.ms / 1000).toFixed(1);
  const lines: string[] = [];
  if (report.passed) {
    lines.push(`${profile.name}: passed: ${report.ops} operations in ${report.runs} sequences, seed ${report.seed} (${seconds} s in the guest)`);
  } else {
    const failure = report.failure!;
    lines.push(`${profile.name}: FAILED after ${report.ops} operations in ${report.runs} sequences, seed ${report.seed}`);
    const shrunk = failure.shrinks > 0 ? `shrunk in ${failure.shrinks} steps (${report.shrinkOps} operations) to` : 'the sequence,';
    lines.push(`  ${shrunk} ${failure.steps.length} operations${failure.path !== undefined ? `, fast-check path ${failure.path}` : ''}:`);
    failure.steps.forEach((step, index) => lines.push(`    ${String(index + 1).padStart(3)}. ${describeStep(step)}${index === failure.steps.length - 1 ? '   <- fails' : ''}`));
    lines.push(`  ${failure.error}`);
  }
  for (const line of kernelFindings) lines.push(`  kernel log: ${line}`);
  if (report.passed && kernelFindings.length > 0) lines[0] = `${profile.name}: FAILED: the guest kernel logged while it ran (seed ${report.seed})`;
  return lines.map((line) => `${line}\n`).join('');
}
