/**
 * `mmapkit explain`: one guest run that records the mmap and fault paths
 * (as `mmapkit trace` does), measures every target, and writes the
 * step-by-step report with its claims table; with several kernels, the
 * comparison computed from their runs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExitCode, UserError } from '../exit-codes.js';
import { printHelp, say } from '../cli/messages.js';
import { REFERENCE_DEVICE_PATHS } from '../reference-driver.js';
import type { VmSession } from '../qemu/session.js';
import { VM_HELP, forEachKernel, guestOptions, kernelsOf } from '../cli/guest-command.js';
import { measureTargets, prepareTracing, recordScenario } from '../trace/record.js';
import { OUT_HELP, devicePath, ensureDir, inGuest, outDir, pagesOf, parse, relative } from '../trace/command.js';
import { type KernelRun, compareKernels, renderComparisonText, sideOf } from './compare.js';
import { type ForkAfterCow, probeForkAfterCow } from './fork-probe.js';
import { renderComparisonHtml, renderHtml } from './html.js';
import { type ExplainEvidence, type RecordedTrace, buildReport, renderText } from './report.js';

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

/** The regular file explain maps: on the guest's tmpfs /tmp. */
export const EXPLAIN_FILE = '/tmp/mmapkit-explain.dat';

export async function explainCommand(args: string[]): Promise<number> {
  const values = parse(args, ['device', 'pages', 'kernel', 'kernels', 'kdir', 'accel', 'boot-timeout', 'timeout', 'console', 'out', 'help']);
  if (values.help === true) {
    return printHelp(EXPLAIN_HELP);
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
