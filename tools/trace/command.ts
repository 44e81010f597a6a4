/**
 * `mmapkit trace` and `mmapkit explain`: boot the guest, record scenarios
 * with ftrace (tools/trace/record.ts), print the trimmed call trees, and for
 * explain measure and write the step-by-step report with its claims table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { ExitCode, UserError } from '../exit-codes.js';
import { BUILD_DIR } from '../paths.js';
import { REFERENCE_DEVICE_PATHS } from '../reference-driver.js';
import type { GuestKernel } from '../kernel.js';
import { say } from '../report.js';
import type { VmSession } from '../vm/session.js';
import { VM_HELP, VM_OPTIONS, ensureBuilt, forEachKernel, guestOptions, kernelsOf, parseOptions, withGuest } from '../vm-command.js';
import { SCENARIOS, type ScenarioName } from '../../vm/scenario-types.js';
import { type KernelRun, compareKernels, renderComparisonText, sideOf } from './compare.js';
import { type ForkAfterCow, probeForkAfterCow } from './fork-probe.js';
import { renderComparisonHtml, renderHtml } from './html.js';
import { measureTargets, prepareTracing, recordScenario } from './record.js';
import { type ExplainEvidence, type RecordedTrace, buildReport, renderText } from './report.js';
import { describeRecording } from './trace-text.js';

const OUT_HELP = `
  --out DIR           where to save the raw traces and the report (default build/trace/<time>/)`;

export const TRACE_HELP = `usage: mmapkit trace [--device remap|fault|ro|PATH] [--scenario ${SCENARIOS.join('|')}] [--pages N] [options]

Boots the guest, runs the scenario in a process of its own and records it
with ftrace (function_graph limited to that process, graphs rooted at the
scenario's system call and at handle_mm_fault). Prints the kernel call tree
trimmed to the functions of the mmap path, with durations, and which page
faults hit the mapping; saves the raw trace next to it.
  --device D          remap (default), fault, ro, or a path in the guest (a file under /tmp is created)
  --scenario S        map (default): mmap only; touch: mmap, then read every page;
                      fork, mremap, munmap: that call on a touched mapping;
                      private-write: MAP_PRIVATE, then write one page (copy-on-write)
  --pages N           mapping length in pages (default 4)
${OUT_HELP}${VM_HELP}`;

export const EXPLAIN_HELP = `usage: mmapkit explain [--device remap|fault|ro] [options]

Walks the mmap path step by step (find a free range, create the VMA, link it,
call the driver's mmap, build page tables, fault on access, write back) with
live evidence from one guest run: traced kernel functions, the maps line and
decoded smaps VmFlags, a picture of the address space, driver PFNs against
pagemap, and minor-fault counts for the remap device, the fault device and a
tmpfs file. Then checks the articles' claims against those measurements.
Prints the report and writes it as one self-contained HTML file.
With --kernels (all, or a list such as 6.1,6.12), runs once per kernel, each
report in a directory of its own, then compares the kernels from those runs
(functions on one kernel's mmap or fault path only, the lock each fault ran
under, VmFlags, fork after copy-on-write, timings): printed, and written as
comparison.html next to the per-kernel directories.
  --device D          the device under study: remap (default), fault or ro
  --pages N           pages touched per target (default 8)
${OUT_HELP}${VM_HELP}`;

const OPTIONS = {
  device: { type: 'string', default: 'remap' },
  scenario: { type: 'string', default: 'map' },
  pages: { type: 'string' },
  out: { type: 'string' },
  ...VM_OPTIONS,
} as const satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parse>;

function parse(args: string[], allowed: (keyof typeof OPTIONS)[]) {
  const options = Object.fromEntries(allowed.map((name) => [name, OPTIONS[name]])) as Partial<typeof OPTIONS>;
  return parseOptions(args, options).values as {
    [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
  };
}

function pagesOf(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 256) throw new UserError(`--pages takes a whole number from 1 to 256, not '${value}'`);
  return parsed;
}

/** remap|fault|ro to the device node; any other value must be an absolute guest path. */
export function devicePath(value: string): string {
  if (value === 'remap' || value === 'fault' || value === 'ro') return REFERENCE_DEVICE_PATHS[value];
  if (value.startsWith('/')) return value;
  throw new UserError(`--device takes remap, fault, ro or an absolute path, not '${value}'`);
}

function outDir(values: Values, name: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const dir = values.out ?? path.join(BUILD_DIR, 'trace', `${stamp}-${process.pid}-${name}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const relative = (file: string): string => {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
};

/** Builds what is stale and runs `work` in a guest; a kernel warning during it fails the command. */
async function inGuest(values: Values, kernel: GuestKernel, work: (session: VmSession) => Promise<number>): Promise<number> {
  const options = guestOptions(values, kernel);
  await ensureBuilt(kernel);
  const outcome = await withGuest(options, work);
  if (!outcome.ok) return outcome.exitCode;
  const findings = outcome.session.findings();
  if (findings.length > 0) {
    say(`the guest kernel logged: ${findings.map((finding) => finding.line).join('; ')}`);
    return ExitCode.TESTS_FAILED;
  }
  return outcome.value;
}

export async function traceCommand(args: string[]): Promise<number> {
  const values = parse(args, ['device', 'scenario', 'pages', 'kernel', 'kernels', 'kdir', 'accel', 'boot-timeout', 'timeout', 'console', 'out', 'help']);
  if (values.help === true) {
    process.stdout.write(`${TRACE_HELP}\n`);
    return ExitCode.PASSED;
  }
  const target = devicePath(values.device ?? 'remap');
  const scenario = values.scenario as ScenarioName;
  if (!SCENARIOS.includes(scenario)) throw new UserError(`--scenario takes ${SCENARIOS.join(', ')}, not '${String(values.scenario)}'`);
  const pages = pagesOf(values.pages, 4);
  const kernels = kernelsOf(values);
  guestOptions(values, kernels[0]!); // bad VM options fail before anything boots
  const top = outDir(values, `${scenario}-${path.basename(target)}`);
  // With several kernels each gets a directory of its own, named by its release.
  const dirOf = (kernel: GuestKernel): string => (kernels.length > 1 ? ensureDir(path.join(top, kernel.version)) : top);
  return forEachKernel(kernels, (kernel) => traceOn(values, kernel, dirOf(kernel), scenario, target, pages));
}

const ensureDir = (dir: string): string => {
  mkdirSync(dir, { recursive: true });
  return dir;
};

function traceOn(values: Values, kernel: GuestKernel, dir: string, scenario: ScenarioName, target: string, pages: number): Promise<number> {
  return inGuest(values, kernel, async (session) => {
    await prepareTracing(session.guest);
    const create = !target.startsWith('/dev/') && target.startsWith('/tmp/');
    const recording = await recordScenario(session.guest, scenario, target, pages, create);
    const base = path.join(dir, `${scenario}-${path.basename(target)}`);
    writeFileSync(`${base}.trace`, recording.raw);
    writeFileSync(`${base}.json`, `${JSON.stringify(recording.result, null, 2)}\n`);
    const { lines } = describeRecording(recording.raw, recording.result, { rawPath: relative(`${base}.trace`) });
    process.stdout.write(`${lines.join('\n')}\n`);
    return ExitCode.PASSED;
  });
}

/** The regular file explain maps: on the guest's tmpfs /tmp. */
export const EXPLAIN_FILE = '/tmp/mmapkit-explain.dat';

export async function explainCommand(args: string[]): Promise<number> {
  const values = parse(args, ['device', 'pages', 'kernel', 'kernels', 'kdir', 'accel', 'boot-timeout', 'timeout', 'console', 'out', 'help']);
  if (values.help === true) {
    process.stdout.write(`${EXPLAIN_HELP}\n`);
    return ExitCode.PASSED;
  }
  const kind = values.device ?? 'remap';
  if (kind !== 'remap' && kind !== 'fault' && kind !== 'ro') throw new UserError(`--device takes remap, fault or ro, not '${kind}'`);
  const device = devicePath(kind);
  const pages = pagesOf(values.pages, 8);
  const kernels = kernelsOf(values);
  guestOptions(values, kernels[0]!); // bad VM options fail before anything boots
  const top = outDir(values, `explain-${kind}`);
  if (kernels.length === 1) {
    return inGuest(values, kernels[0]!, async (session) => {
      const { text, html } = await runExplain(session, device, pages, top);
      process.stdout.write(text);
      process.stdout.write(`\nreport: ${relative(html)}\n`);
      return ExitCode.PASSED;
    });
  }
  const runs: KernelRun[] = [];
  const code = await forEachKernel(kernels, (kernel) =>
    inGuest(values, kernel, async (session) => {
      const dir = ensureDir(path.join(top, kernel.version));
      const { text, html, evidence, faultTrace, forkAfterCow } = await runExplain(session, device, pages, dir, { compare: true });
      process.stdout.write(text);
      process.stdout.write(`\nreport: ${relative(html)}\n`);
      runs.push({
        kernel: evidence.kernel,
        evidence,
        report: html,
        ...(faultTrace !== undefined && { faultTrace }),
        ...(forkAfterCow !== undefined && { forkAfterCow }),
        ...(session.bootMs !== undefined && { bootMs: session.bootMs }),
      });
      return ExitCode.PASSED;
    }),
  );
  if (runs.length < 2) {
    say(`no kernel comparison: only ${runs.length} of ${kernels.length} kernels produced a report`);
    return code === ExitCode.PASSED ? ExitCode.TESTS_FAILED : code;
  }
  const comparison = compareKernels(runs.map(sideOf));
  const file = path.join(top, 'comparison.html');
  const reports = runs.flatMap((run) => (run.report === undefined ? [] : [{ kernel: run.kernel, href: path.relative(top, run.report) }]));
  writeFileSync(file, renderComparisonHtml(comparison, reports));
  writeFileSync(path.join(top, 'comparison.json'), `${JSON.stringify(comparison, null, 2)}\n`);
  process.stdout.write(`\n${renderComparisonText(comparison)}\ncomparison: ${relative(file)}\n`);
  return code;
}

/**
 * One explain run in a booted guest: traces the touch scenario on the device
 * and on a tmpfs file, measures every target, and writes evidence.json, the
 * raw traces and report.html into `dir`. Returns the terminal text and the
 * HTML file's path.
 */
export async function runExplain(
  session: VmSession,
  device: string,
  pages: number,
  dir: string,
  options: { compare?: boolean } = {},
): Promise<{ text: string; html: string; evidence: ExplainEvidence; faultTrace?: RecordedTrace; forkAfterCow?: ForkAfterCow }> {
  mkdirSync(dir, { recursive: true });
  await prepareTracing(session.guest);
  const deviceTrace = await recordScenario(session.guest, 'touch', device, 4);
  const fileTrace = await recordScenario(session.guest, 'touch', EXPLAIN_FILE, 4, true);
  // For a comparison the driver's ->fault path is needed even when the device under study is the remap one (no faults).
  const faultDevice = REFERENCE_DEVICE_PATHS.fault;
  const faultRecording = options.compare === true && device !== faultDevice ? await recordScenario(session.guest, 'touch', faultDevice, 4) : undefined;
  const forkAfterCow = options.compare === true ? await probeForkAfterCow(session.guest, REFERENCE_DEVICE_PATHS.remap) : undefined;
  const targets = [...new Set<string>([REFERENCE_DEVICE_PATHS.remap, REFERENCE_DEVICE_PATHS.fault, device]), EXPLAIN_FILE];
  const measure = await measureTargets(session.guest, targets, pages);
  const savePaths = {
    device: path.join(dir, `touch-${path.basename(device)}.trace`),
    file: path.join(dir, 'touch-tmpfs-file.trace'),
  };
  writeFileSync(savePaths.device, deviceTrace.raw);
  writeFileSync(savePaths.file, fileTrace.raw);
  let faultTrace: RecordedTrace | undefined;
  if (faultRecording !== undefined) {
    const faultPath = path.join(dir, `touch-${path.basename(faultDevice)}.trace`);
    writeFileSync(faultPath, faultRecording.raw);
    faultTrace = { raw: faultRecording.raw, result: faultRecording.result, path: relative(faultPath) };
  }
  if (forkAfterCow !== undefined) writeFileSync(path.join(dir, 'fork-after-cow.json'), `${JSON.stringify(forkAfterCow, null, 2)}\n`);
  const evidence: ExplainEvidence = {
    device,
    file: EXPLAIN_FILE,
    kernel: session.ready?.kernel ?? '?',
    deviceTrace: { raw: deviceTrace.raw, result: deviceTrace.result, path: relative(savePaths.device) },
    fileTrace: { raw: fileTrace.raw, result: fileTrace.result, path: relative(savePaths.file) },
    measure,
    when: new Date().toISOString(),
  };
  writeFileSync(path.join(dir, 'evidence.json'), `${JSON.stringify(evidence, null, 2)}\n`);
  const model = buildReport(evidence);
  const html = path.join(dir, 'report.html');
  writeFileSync(html, renderHtml(model));
  const raws = [savePaths.device, savePaths.file].map(relative).concat(faultTrace?.path ?? []);
  const text = `${renderText(model)}\nraw traces: ${raws.join(', ')}\n`;
  return { text, html, evidence, ...(faultTrace !== undefined && { faultTrace }), ...(forkAfterCow !== undefined && { forkAfterCow }) };
}
