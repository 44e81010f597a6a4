/** `mmapkit test`: its options, then the conformance run (tools/test/command.ts) on each kernel asked for. */
import path from 'node:path';
import type { GuestKernel } from '../kernel.js';
import { UserError } from '../exit-codes.js';
import { buildFixtures, fixturesBuildDir } from '../builder/fixtures.js';
import { type Profile, checkModule, loadProfile, referenceProfiles } from '../profile.js';
import { moduleObject } from '../paths.js';
import { REFERENCE_DEVICE_PATHS } from '../reference-driver.js';
import { printHelp, say } from '../cli/messages.js';
import { checkWritableFile } from '../cli/output-paths.js';
import { VM_HELP, VM_OPTIONS, type VmFlags, ensureBuilt, forEachKernel, guestOptions, kernelsOf, parseOptions } from '../cli/guest-command.js';
import { REPORTERS, type ReportOptions, type ReporterName, checkReportOptions, runConformance, shardOf } from './command.js';

export const TEST_HELP = `usage: mmapkit test [--profile FILE]... [options]

Boots the guest and runs the conformance suite (test/conformance) against
each profile's device, loading its module first. Without --profile: the
reference driver's profiles (test/profiles/*.json) and the driver's own cases.
Prints a line for each case that failed, crashed or was skipped with a reason
(a case a profile rules out), a progress line while the cases run, and a
summary; the last line is "N passed, N failed, N skipped, N crashed". Cases a
quick run leaves out are counted as not selected, not as skipped. If the guest
kernel crashes or hangs under a case, that case is reported CRASHED with the
console lines, a new guest is booted, the module reloaded, and the run goes on
(exit 120 for a crash, 124 for a hang, even if every other case passed).
  --profile FILE      a device profile (JSON; see the README); repeatable
  --quick             only the core cases, one or two per catalogue area (what make run runs)
  --verbose           list every case, passed ones too
  --reporter NAME     also report as NAME (repeatable): ktap (KTAP version 1, for kunit.py parse
                      and KernelCI), or vitest's ${REPORTERS.slice(1, 6).join(', ')},
                      ${REPORTERS.slice(6).join(', ')}; one that writes to stdout
                      replaces the case lines
  --output-file FILE  where the one file-writing reporter (ktap, junit, json) writes instead of stdout
  --results FILE      the JSON results file (default: results.json in the run's build/runs/ directory)
  --shard I/N         run the I-th of N shards of the test files (vitest --shard), e.g. one per CI
                      runner; merge their results files with mmapkit merge-results
${VM_HELP}`;

export async function testCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, {
    ...VM_OPTIONS,
    profile: { type: 'string', multiple: true },
    reporter: { type: 'string', multiple: true },
    'output-file': { type: 'string' },
    results: { type: 'string' },
    quick: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    shard: { type: 'string' },
  });
  if (values.help) return printHelp(TEST_HELP);
  const reporters = (values.reporter ?? []).map(reporterOf);
  const shard = values.shard !== undefined ? shardOf(values.shard) : undefined;
  checkReportOptions({ reporters, ...(values['output-file'] !== undefined && { outputFile: values['output-file'] }) });
  if (values.results !== undefined) checkWritableFile(values.results, '--results');
  if (values['output-file'] !== undefined) checkWritableFile(values['output-file'], '--output-file');
  const kernels = kernelsOf(values);
  return forEachKernel(kernels, (kernel) =>
    testOnKernel(kernel, values, {
      ...(reporters.length > 0 && { reporters }),
      ...(values['output-file'] !== undefined && { outputFile: perKernel(values['output-file'], kernel, kernels) }),
      ...(values.results !== undefined && { resultsFile: perKernel(values.results, kernel, kernels) }),
      quick: values.quick,
      verbose: values.verbose,
      ...(shard !== undefined && { shard }),
    }),
  );
}

/** With several kernels, each writes its own file: results.json becomes results-<release>.json. */
function perKernel(file: string, kernel: GuestKernel, kernels: GuestKernel[]): string {
  if (kernels.length === 1) return file;
  const { dir, name, ext } = path.parse(file);
  return path.join(dir, `${name}-${kernel.version}${ext}`);
}

async function testOnKernel(kernel: GuestKernel, values: VmFlags & { profile?: string[] }, report: ReportOptions): Promise<number> {
  const options = guestOptions(values, kernel);
  const files = values.profile ?? [];
  // Bad profiles are found before anything is built or booted.
  const profiles =
    files.length > 0
      ? files.map((file) => loadProfile(path.resolve(file), kernel.version))
      : // /dev/mmapkit is the remap device under the skeleton's name: a quick run tests that device once.
        referenceProfiles(kernel.version).filter((profile) => !(report.quick === true && profile.device === REFERENCE_DEVICE_PATHS.remap));
  await ensureBuilt(kernel, 'host');
  const fixtures = fixturesBuildDir(kernel.version) + path.sep;
  const withFixtures = profiles.some((profile) => profile.module?.startsWith(fixtures) === true);
  if (withFixtures) {
    await ensureBuilt(kernel, 'module');
    await buildFixtures(kernel, say);
  }
  // The module, which only its load needs, builds while the guest boots: `make run` after an edit pays the
  // longer of the two, not both. The profiles that name it (the reference ones) are checked once it is built.
  const names = (profile: Profile): boolean => profile.module === moduleObject(kernel.version);
  for (const profile of profiles.filter((profile) => !names(profile))) checkModule(profile, kernel.version);
  const moduleBuilt = (withFixtures ? Promise.resolve() : ensureBuilt(kernel, 'module')).then(() => {
    for (const profile of profiles.filter(names)) checkModule(profile, kernel.version);
  });
  moduleBuilt.catch(() => undefined); // startGuest reports it
  try {
    return await runConformance({ ...options, moduleBuilt }, { profiles, explicit: files.length > 0 }, report);
  } finally {
    // A run that ended before the load (a usage error) leaves no build behind it.
    await moduleBuilt.catch(() => undefined);
  }
}

function reporterOf(name: string): ReporterName {
  const known: readonly string[] = REPORTERS;
  if (known.includes(name)) return name as ReporterName;
  throw new UserError(`--reporter takes one of ${REPORTERS.join(', ')}, not '${name}'`);
}
