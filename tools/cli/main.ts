/**
 * mmapkit's command line. Parses arguments and hands each command to the
 * module that does it; every failure ends as one line and an exit code
 * (tools/exit-codes.ts), never a stack trace.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH_HELP, benchCommand } from '../bench/command.js';
import { build } from '../builder/build.js';
import { buildFixtures, fixturesBuildDir } from '../builder/fixtures.js';
import type { GuestKernel } from '../kernel.js';
import { lintKernels } from '../lint/lint.js';
import { type Profile, checkModule, loadProfile, profilesVm, referenceProfiles } from '../profile.js';
import { ExitCode, UserError } from '../exit-codes.js';
import { exitOnInterrupt, signalExitCode } from './interrupts.js';
import { reportEnd, say } from './messages.js';
import { REPORTERS, type ReportOptions, type ReporterName, checkReportOptions, runConformance, shardOf } from '../test/command.js';
import { MERGE_HELP, mergeCommand } from '../test/merge-command.js';
import { EXPLAIN_HELP, explainCommand } from '../explain/command.js';
import { TRACE_HELP, traceCommand } from '../trace/command.js';
import { FUZZ_HELP, fuzzCommand } from '../fuzz/command.js';
import { loadTargetModule } from '../test/preflight.js';
import { EXIT_CODE_OF, SessionEndedError } from '../qemu/outcome.js';
import { VmSession } from '../qemu/session.js';
import { VM_HELP, VM_OPTIONS, type VmFlags, ensureBuilt, forEachKernel, guestOptions, kernelOf, kernelsOf, parseOptions, withGuest } from './guest-command.js';
import { checkWritableFile } from './output-paths.js';
import { MAIN_USAGE, moduleObject } from '../paths.js';
import { REFERENCE_DEVICE_PATHS } from '../reference-driver.js';

const HELP: Record<string, string> = {
  // Plain text, so that bin/mmapkit.js can print it before `make setup` too.
  main: readFileSync(MAIN_USAGE, 'utf8').trimEnd(),
  build: `usage: mmapkit build [--kernel K | --kernels all|LIST] [--kdir DIR] [--verbose]

Builds kmod/ against the guest kernel's headers, the native addon, the guest
agent bundle, and type-checks the TypeScript. Steps whose inputs did not change
are skipped.
  --verbose           show the compilers' full output`,
  'vm run': `usage: mmapkit vm run [options] -- CMD [ARG...]

Boots the guest, loads the module, runs CMD (as root in the guest, which sees
/usr and the checkout read-only, a tmpfs /tmp, and writes only to
$MMAPKIT_OUT), streams its output and exits with its status.
  --no-module         do not load the module first
  --profile FILE      boot the VM a device profile needs (its qemuDevices) and
                      load the profile's module instead of the reference one
${VM_HELP}`,
  'vm shell': `usage: mmapkit vm shell [options]

An interactive shell in the guest, with the module loaded. 'exit' powers the guest off.
  --no-module         do not load the module first
${VM_HELP}`,
  lint: `usage: mmapkit lint [--kernel K | --kernels all|LIST] [--kdir DIR]

Kernel-side lint of kmod/: checkpatch.pl --strict (from the kernel source that
make setup unpacks), a W=1 build and sparse (C=2). Any warning fails.`,
  test: `usage: mmapkit test [--profile FILE]... [options]

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
${VM_HELP}`,
};

async function buildCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, {
    kernel: VM_OPTIONS.kernel,
    kernels: VM_OPTIONS.kernels,
    kdir: VM_OPTIONS.kdir,
    verbose: { type: 'boolean', default: false },
    help: VM_OPTIONS.help,
  });
  if (values.help) return help('build');
  for (const kernel of kernelsOf(values)) {
    say(`guest kernel ${kernel.version} (headers ${kernel.headers})`);
    await build({ kernel, verbose: values.verbose, log: say });
  }
  return ExitCode.PASSED;
}

async function vmRun(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    args,
    { ...VM_OPTIONS, 'no-module': { type: 'boolean', default: false }, profile: { type: 'string' } },
    true,
  );
  if (values.help) return help('vm run');
  if (positionals.length === 0) throw new UserError('vm run needs a command: mmapkit vm run -- CMD [ARG...]');
  return forEachKernel(kernelsOf(values), (kernel) => vmRunOn(kernel, values, positionals));
}

async function vmRunOn(kernel: GuestKernel, values: VmFlags & { profile?: string; 'no-module'?: boolean }, positionals: string[]): Promise<number> {
  const options = guestOptions(values, kernel);
  const profile = values.profile !== undefined ? loadProfile(path.resolve(values.profile), kernel.version) : undefined;
  await ensureBuilt(kernel);
  if (profile !== undefined) checkModule(profile, kernel.version);
  const loadReference = !values['no-module'] && profile === undefined;
  const outcome = await withGuest({ ...options, ...profilesVm(profile !== undefined ? [profile] : []), loadModule: loadReference }, async (session) => {
    if (profile !== undefined && !values['no-module']) await loadTargetModule(session.guest, profile);
    const result = await session.guest.exec(positionals, {
      timeoutMs: 0, // the run's own deadline (--timeout) bounds the command
      onOutput: (event) => (event.stream === 'stdout' ? process.stdout : process.stderr).write(event.data),
    });
    return result.code ?? signalExitCode(result.signal);
  });
  return outcome.ok ? outcome.value : outcome.exitCode;
}

async function vmShell(args: string[]): Promise<number> {
  const { values } = parseOptions(args, { ...VM_OPTIONS, 'no-module': { type: 'boolean', default: false } });
  if (values.help) return help('vm shell');
  const kernel = kernelOf(values);
  const options = guestOptions(values, kernel);
  await ensureBuilt(kernel);
  say('starting the guest; type `exit` to power it off');
  const session = await VmSession.boot({
    ...options,
    mode: 'shell',
    ...(!values['no-module'] && { insmod: moduleObject(kernel.version) }),
  });
  const end = await session.ended;
  if (end.state === 'guest-crashed' || end.state === 'timed-out') {
    reportEnd(end, session);
    return EXIT_CODE_OF[end.state];
  }
  return ExitCode.PASSED;
}

async function testCommand(args: string[]): Promise<number> {
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
  if (values.help) return help('test');
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

async function lintCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, { kernel: VM_OPTIONS.kernel, kernels: VM_OPTIONS.kernels, kdir: VM_OPTIONS.kdir, help: VM_OPTIONS.help });
  if (values.help) return help('lint');
  const problems = await lintKernels(kernelsOf(values), say);
  return problems === 0 ? ExitCode.PASSED : ExitCode.TESTS_FAILED;
}

function help(topic: string): number {
  const text: Record<string, string> = { ...HELP, trace: TRACE_HELP, explain: EXPLAIN_HELP, bench: BENCH_HELP, fuzz: FUZZ_HELP, 'merge-results': MERGE_HELP };
  process.stdout.write(`${text[topic] ?? HELP.main}\n`);
  return ExitCode.PASSED;
}

/** Every command, by the word that names it; `vm` takes a second word. */
const COMMANDS: Record<string, (args: string[]) => number | Promise<number>> = {
  build: buildCommand,
  test: testCommand,
  lint: lintCommand,
  trace: traceCommand,
  explain: explainCommand,
  bench: benchCommand,
  fuzz: fuzzCommand,
  'merge-results': mergeCommand,
  vm: async ([sub, ...args]) => {
    if (sub === 'run') return vmRun(args);
    if (sub === 'shell') return vmShell(args);
    if (sub === undefined || sub === '-h' || sub === '--help') return help('main');
    throw new UserError(`unknown vm command '${sub}' (try: vm run, vm shell)`);
  },
};

async function main([command, ...rest]: string[]): Promise<number> {
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') return help('main');
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (run === undefined) throw new UserError(`unknown command '${command}' (try: mmapkit --help)`);
  return run(rest);
}

exitOnInterrupt(say);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof SessionEndedError) {
      reportEnd(error.end, error.session);
      process.exit(error.end.state === 'completed' ? ExitCode.BOOT_FAILED : EXIT_CODE_OF[error.end.state]);
    }
    if (error instanceof UserError) {
      say(`error: ${error.message}`);
      process.exit(error.exitCode);
    }
    const message = error instanceof Error ? error.message : String(error);
    say(`error: ${message}`);
    if (process.env.MMAPKIT_DEBUG !== undefined && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n`);
    process.exit(ExitCode.SETUP);
  },
);
