/**
 * mmapkit's command line. Parses arguments and hands each command to the
 * module that does it; every failure ends as one line and an exit code
 * (tools/exit-codes.ts), never a stack trace.
 */
import os from 'node:os';
import path from 'node:path';
import { BENCH_HELP, benchCommand } from './bench/command.js';
import { build } from './build/build.js';
import { buildFixtures, fixturesBuildDir } from './build/fixtures.js';
import type { GuestKernel } from './kernel.js';
import { lintKernels } from './lint/lint.js';
import { checkModule, loadProfile, profileFiles, referenceProfiles } from './profile.js';
import { ExitCode, UserError } from './exit-codes.js';
import { reportEnd, say } from './messages.js';
import { REPORTERS, type ReportOptions, type ReporterName, runConformance } from './test/command.js';
import { EXPLAIN_HELP, explainCommand } from './explain/command.js';
import { TRACE_HELP, traceCommand } from './trace/command.js';
import { loadTargetModule } from './test/preflight.js';
import { EXIT_CODE_OF, SessionEndedError } from './qemu/outcome.js';
import { VmSession } from './qemu/session.js';
import { VM_HELP, VM_OPTIONS, type VmFlags, ensureBuilt, forEachKernel, guestOptions, kernelOf, kernelsOf, parseOptions, withGuest } from './guest-command.js';
import { moduleObject } from './paths.js';
import { REFERENCE_DEVICE_PATHS } from './reference-driver.js';

const HELP: Record<string, string> = {
  main: `usage: mmapkit <command> [options]

Build a Linux driver's mmap path, boot it in QEMU and prove how it behaves.

Commands:
  build            build the module (against the guest kernel's headers), the addon and the guest agent; type-check
  vm run -- CMD    run CMD in the guest with the module loaded; exit with CMD's status
  vm shell         an interactive shell in the guest with the module loaded
  test             run the conformance suite against device profiles (default: the reference driver's)
  lint             checkpatch --strict, W=1 and sparse on kmod/; any report fails
  trace            record the kernel's mmap and page-fault path for a scenario with ftrace
  explain          walk the mmap path with live evidence; writes an HTML report
  bench            measure what a device mapping costs against anonymous memory and read()

Exit codes: 0 passed, 1 tests failed, 2 bad usage, 3 missing prerequisite or build failure,
120 guest kernel crashed, 121 boot failed, 124 timed out.
Run 'mmapkit <command> --help' for a command's options.`,
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
each profile's device, loading its module first, then prints a pass/fail
summary with the boot time and the accelerator used. Without --profile: the
reference driver's profiles (test/profiles/*.json) and the driver's own cases.
A case a profile rules out is skipped with the reason. If the guest kernel
crashes or hangs under a case, that case is reported CRASHED with the console
lines, a new guest is booted, the module reloaded, and the run goes on (exit 120
for a crash, 124 for a hang, even if every other case passed).
The last line is "N passed, N failed, N skipped, N crashed".
  --profile FILE      a device profile (JSON; see the README); repeatable
  --reporter NAME     vitest reporter: ${REPORTERS.join(', ')} (default verbose); repeatable
  --output-file FILE  where file-writing reporters (junit, json) write instead of stdout
  --results FILE      the JSON results file (default: results.json in the run's build/runs/ directory)
  --quick             only the core cases, one or two per catalogue area (what make run runs)
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

/** A command killed by a signal exits 128 + its number, as in a shell. */
function signalExitCode(signal: string | null): number {
  const number = signal !== null ? os.constants.signals[signal as NodeJS.Signals] : undefined;
  return 128 + (number ?? 0);
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
  const devices = profile !== undefined && profile.qemuDevices.length > 0 ? { qemuDevices: profile.qemuDevices } : {};
  const hostFiles = profile !== undefined ? profileFiles(profile) : [];
  const loadReference = !values['no-module'] && profile === undefined;
  const outcome = await withGuest({ ...options, ...devices, ...(hostFiles.length > 0 && { hostFiles }), loadModule: loadReference }, async (session) => {
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
    // An interactive shell has no run deadline unless one is asked for.
    runTimeoutS: options.runTimeoutS ?? 24 * 3600,
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
  });
  if (values.help) return help('test');
  const reporters = (values.reporter ?? []).map(reporterOf);
  const kernels = kernelsOf(values);
  return forEachKernel(kernels, (kernel) =>
    testOnKernel(kernel, values, {
      ...(reporters.length > 0 && { reporters }),
      ...(values['output-file'] !== undefined && { outputFile: perKernel(values['output-file'], kernel, kernels) }),
      ...(values.results !== undefined && { resultsFile: perKernel(values.results, kernel, kernels) }),
      quick: values.quick,
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
  await ensureBuilt(kernel);
  const fixtures = fixturesBuildDir(kernel.version) + path.sep;
  if (profiles.some((profile) => profile.module?.startsWith(fixtures) === true)) await buildFixtures(kernel, say);
  for (const profile of profiles) checkModule(profile, kernel.version);
  return runConformance(options, { profiles, explicit: files.length > 0 }, report);
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
  const text: Record<string, string> = { ...HELP, trace: TRACE_HELP, explain: EXPLAIN_HELP, bench: BENCH_HELP };
  process.stdout.write(`${text[topic] ?? HELP.main}\n`);
  return ExitCode.PASSED;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'build':
      return buildCommand(rest);
    case 'test':
      return testCommand(rest);
    case 'lint':
      return lintCommand(rest);
    case 'trace':
      return traceCommand(rest);
    case 'explain':
      return explainCommand(rest);
    case 'bench':
      return benchCommand(rest);
    case 'vm': {
      const [sub, ...vmArgs] = rest;
      if (sub === 'run') return vmRun(vmArgs);
      if (sub === 'shell') return vmShell(vmArgs);
      if (sub === undefined || sub === '-h' || sub === '--help') return help('main');
      throw new UserError(`unknown vm command '${sub}' (try: vm run, vm shell)`);
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      return help('main');
    default:
      throw new UserError(`unknown command '${command}' (try: mmapkit --help)`);
  }
}

function onSignal(signal: NodeJS.Signals, code: number): void {
  // process.exit runs the session module's exit hook, which kills QEMU's process group.
  process.on(signal, () => {
    say(`interrupted by ${signal}`);
    process.exit(code);
  });
}

onSignal('SIGINT', 130);
onSignal('SIGTERM', 143);
onSignal('SIGHUP', 129);

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
