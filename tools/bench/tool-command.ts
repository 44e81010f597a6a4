/**
 * `mmapkit bench --tool`: the speed of mmapkit itself. Boots the guest
 * several times, times each boot's phases and the agent's round trips
 * (tools/bench/tool-run.ts), and prints them beside the machine's own
 * baseline; with --variant, compares boots with extra kernel command-line
 * words against boots without, interleaved. Writes results.json and
 * table.txt (default build/bench/<time>/).
 */
import os from 'node:os';
import path from 'node:path';
import { ExitCode, UserError } from '../exit-codes.js';
import { printHelp, say } from '../cli/messages.js';
import { checkWritableDir } from '../cli/output-paths.js';
import { VM_HELP, VM_OPTIONS, type VmFlags, ensureBuilt, guestOptions, kernelOf, parseOptions, positiveNumber } from '../cli/guest-command.js';
import { defaultOutDir } from './command.js';
import { hostFacts } from './host.js';
import { resultsJson, writeFiles } from './report.js';
import { type ToolBenchResults, baselineOf, renderToolReport, toolFigures } from './tool-report.js';
import { type Variant, runToolBench } from './tool-run.js';

export const DEFAULT_BOOTS = 5;
export const DEFAULT_REQUESTS = 100;
const VARIANT_NAMES = 'ABCDEFGH';

export const TOOL_BENCH_HELP = `usage: mmapkit bench --tool [options]

Measures mmapkit itself: boots the guest N times and, for each boot, times
its phases from the guest's own timestamps (QEMU start to the guest clock's
zero, kernel to /init, init.sh's set-up, the virtio and 9p modules, the 9p
mounts, node's start to the agent's ready message), then times round trips
to the agent: a no-op request, an addon call, a kernel log read and a process
started in the guest. Each figure: median and ± half the interquartile range
over the boots, beside the machine's baseline (a fixed SHA-256 workload on the
host, timed before every boot) and as a multiple of it, so that runs on
different machines compare as ratios. Writes results.json and table.txt.

Options:
  --boots N           boots per variant (default ${DEFAULT_BOOTS})
  --requests N        requests of each kind per boot (default ${DEFAULT_REQUESTS}; a tenth as many execs)
  --variant WORDS     also boot a variant (B, then C, ... if repeated) with these words
                      added to the kernel command line, interleaved with A (ABAB...,
                      ABCABC...), and print each variant's median over A's per figure
  --restored          also restore the guest from its saved state (the default outside
                      this benchmark, MMAPKIT_SNAPSHOT) as one more variant, interleaved
                      with the boots; every other variant boots cold
  --out DIR           where results.json and table.txt go (default build/bench/<time>/)
${VM_HELP}

Exit codes: 0 measured, 2 bad usage, 3 build or setup failure, 120 guest
crashed, 121 boot failed, 124 timed out.`;

const OPTIONS = {
  boots: { type: 'string' },
  requests: { type: 'string' },
  variant: { type: 'string', multiple: true },
  restored: { type: 'boolean' },
  out: { type: 'string' },
  ...VM_OPTIONS,
} as const;

export interface ToolBenchFlags {
  boots: number;
  requests: number;
  variants: Variant[];
  out: string | undefined;
  vm: VmFlags;
  help: boolean;
}

export function parseToolBenchArgs(args: string[]): ToolBenchFlags {
  const { values } = parseOptions(args, OPTIONS);
  const variants: Variant[] = [{ name: 'A', kernelArgs: [] }];
  for (const words of values.variant ?? []) {
    const kernelArgs = words.trim().split(/\s+/).filter((word) => word !== '');
    if (kernelArgs.length === 0) throw new UserError('--variant takes kernel command-line words, not an empty string');
    if (variants.length === VARIANT_NAMES.length) throw new UserError(`at most ${VARIANT_NAMES.length - 1} --variant options`);
    variants.push({ name: VARIANT_NAMES[variants.length]!, kernelArgs });
  }
  if (values.restored === true) {
    if (variants.length === VARIANT_NAMES.length) throw new UserError(`at most ${VARIANT_NAMES.length - 1} variants, --restored included`);
    variants.push({ name: VARIANT_NAMES[variants.length]!, kernelArgs: [], restore: true });
  }
  return {
    boots: positiveNumber(values.boots, '--boots', 'whole number') ?? DEFAULT_BOOTS,
    requests: positiveNumber(values.requests, '--requests', 'whole number') ?? DEFAULT_REQUESTS,
    variants,
    out: values.out,
    vm: values,
    help: values.help,
  };
}

export async function toolBenchCommand(args: string[]): Promise<number> {
  const started = Date.now();
  const flags = parseToolBenchArgs(args);
  if (flags.help) {
    return printHelp(TOOL_BENCH_HELP);
  }
  const outDir = path.resolve(flags.out ?? defaultOutDir());
  if (flags.out !== undefined) checkWritableDir(outDir, '--out');
  const kernel = kernelOf(flags.vm);
  const options = guestOptions(flags.vm, kernel);
  await ensureBuilt(kernel);

  const loadStart = os.loadavg();
  say(`bench --tool: ${flags.boots} boot${flags.boots === 1 ? '' : 's'} of ${flags.variants.map((v) => v.name).join(' and ')}`);
  const samples = await runToolBench(options, flags.variants, flags.boots, flags.requests);
  if ('exitCode' in samples) return samples.exitCode;
  const results: ToolBenchResults = {
    tool: 'mmapkit bench --tool',
    version: 1,
    startedAt: new Date(started).toISOString(),
    durationS: (Date.now() - started) / 1000,
    environment: {
      accelerator: options.accel,
      kernel: kernel.version,
      ...hostFacts(),
      loadAverage: { start: loadStart, end: os.loadavg() },
    },
    settings: { boots: flags.boots, requests: flags.requests, variants: flags.variants },
    baseline: baselineOf(samples),
    figures: toolFigures(samples),
    samples,
  };
  const table = renderToolReport(results);
  process.stdout.write(table);
  const written = writeFiles(outDir, { 'results.json': resultsJson(results), 'table.txt': table });
  say(`bench --tool: wrote ${written.map((file) => path.basename(file)).join(', ')} in ${outDir}`);
  return ExitCode.PASSED;
}
