/**
 * `mmapkit trace`: boot the guest, record a scenario with ftrace
 * (tools/trace/record.ts) and print the trimmed call trees. The option
 * parsing and the guest wrapper here are shared with `mmapkit explain`
 * (tools/explain/command.ts), which records the same way.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { ExitCode, UserError } from '../exit-codes.js';
import { TRACE_DIR } from '../paths.js';
import { runName } from '../run-name.js';
import { REFERENCE_DEVICE_PATHS } from '../reference-driver.js';
import type { GuestKernel } from '../kernel.js';
import { printHelp, say } from '../cli/messages.js';
import { checkWritableDir } from '../cli/output-paths.js';
import type { VmSession } from '../qemu/session.js';
import { VM_HELP, VM_OPTIONS, ensureBuilt, forEachKernel, guestOptions, kernelsOf, parseOptions, withGuest } from '../cli/guest-command.js';
import { SCENARIOS, type ScenarioName } from '../../guest/scenario-types.js';
import { prepareTracing, recordScenario } from './record.js';
import { describeRecording } from './trace-text.js';

export const OUT_HELP = `
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

export const OPTIONS = {
  device: { type: 'string', default: 'remap' },
  scenario: { type: 'string', default: 'map' },
  pages: { type: 'string' },
  out: { type: 'string' },
  ...VM_OPTIONS,
} as const satisfies ParseArgsConfig['options'];

export type Values = ReturnType<typeof parse>;

export function parse(args: string[], allowed: (keyof typeof OPTIONS)[]) {
  const options = Object.fromEntries(allowed.map((name) => [name, OPTIONS[name]])) as Partial<typeof OPTIONS>;
  return parseOptions(args, options).values as {
    [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
  };
}

export function pagesOf(value: string | undefined, fallback: number): number {
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

/** The output directory, made now: an --out that cannot be written fails before the guest boots. */
export function outDir(values: Values, name: string): string {
  if (values.out !== undefined) {
    checkWritableDir(values.out, '--out');
    return values.out;
  }
  return ensureDir(path.join(TRACE_DIR, runName(name)));
}

export const relative = (file: string): string => {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
};

/** Builds what is stale and runs `work` in a guest; a kernel warning during it fails the command. */
export async function inGuest(values: Values, kernel: GuestKernel, work: (session: VmSession) => Promise<number>): Promise<number> {
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
    return printHelp(TRACE_HELP);
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

export const ensureDir = (dir: string): string => {
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

