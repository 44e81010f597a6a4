/**
 * `mmapkit bench`: boots a guest, loads the reference module with a buffer
 * as large as the largest size, runs the plan (tools/bench/plan.ts) in the
 * guest's native addon, and prints a table, then writes results.json and
 * SVG plots (default build/bench/<time>/).
 */
import path from 'node:path';
import { ExitCode, UserError } from '../exit-codes.js';
import { BENCH_DIR, moduleObject } from '../paths.js';
import { runStamp } from '../run-name.js';
import { describeFindings, printHelp, say } from '../cli/messages.js';
import { checkWritableDir } from '../cli/output-paths.js';
import type { AccelChoice } from '../qemu/accel.js';
import { loadModule } from '../qemu/guest-modules.js';
import type { VmSession } from '../qemu/session.js';
import {
  VM_HELP,
  VM_OPTIONS,
  type VmFlags,
  accelOf,
  ensureBuilt,
  guestOptions,
  kernelOf,
  parseOptions,
  positiveNumber,
  withGuest,
} from '../cli/guest-command.js';
import { DEFAULT_REPEATS, DEFAULT_SIZES, MiB, formatSize, makePlan, parseSizes } from './plan.js';
import { type BenchResults, type CaseResult, type Environment, figure, judgeTargets } from './results.js';
import { writeReport } from './report.js';
import { TMPFS_FILE, runBench, timerFloor } from './run.js';
import { hostFacts } from './host.js';
import { formatNs, formatRate, formatSpread, renderReport } from './table.js';
import { toolBenchCommand } from './tool-command.js';

/** -icount shift: 2^0 = 1 ns of guest time per instruction. */
export const ICOUNT_SHIFT = 0;
export const ICOUNT_MEANING =
  'QEMU counts guest instructions (-icount shift=0): every time is the number of instructions the guest ran, ' +
  'at 1 ns each, kernel and user alike. It does not model caches, TLBs or memory bandwidth, and says nothing ' +
  'of the host. Figures repeat from run to run to within about 1 % (more for the smallest sizes, where one mmap() ' +
  'call dominates): interrupts and host I/O still land at different instructions.';

export const BENCH_HELP = `usage: mmapkit bench [options]
       mmapkit bench --tool [options]   the tool's own speed: boot phases, agent round trips
                                        (mmapkit bench --tool --help)

Measures, in the guest, what mapping the reference driver's buffer costs and
how fast it reads, against anonymous memory, a tmpfs file and read()/pread():
  - mapping cost: mmap + first write of every page (remap device, fault device
    with fault_around 1 and 16, anonymous memory, tmpfs), per page and in total;
  - sequential read of the whole buffer: 8-byte loads through a mapping vs
    read() with 4 KiB, 64 KiB and 1 MiB buffers, vs anonymous memory (the limit);
  - random 8-byte reads: mapping vs pread();
  - page faults (getrusage) for each.
Each figure is repeated (after one discarded warm-up); the median and the
spread (interquartile range) are reported. Prints a table, and writes results.json and SVG plots.

Options:
  --sizes LIST        buffer sizes, e.g. 4K,64K,1M (default ${DEFAULT_SIZES.map(formatSize).join(',')}); at most 256M
  --repeat N          samples per figure (default ${DEFAULT_REPEATS})
  --out DIR           where results.json and the plots go (default build/bench/<time>/)
  --icount            run QEMU with instruction counting (TCG only): times become
                      instruction counts and repeat from run to run
${VM_HELP}

Exit codes: 0 measured (missed targets are reported, not failed), 1 the reads
disagreed on the bytes or the kernel logged a warning, 2 bad usage, 3 build or
setup failure, 120 guest crashed, 121 boot failed, 124 timed out.`;

const OPTIONS = {
  sizes: { type: 'string' },
  repeat: { type: 'string' },
  out: { type: 'string' },
  icount: { type: 'boolean', default: false },
  ...VM_OPTIONS,
} as const;

export interface BenchFlags {
  sizes: number[];
  repeats: number;
  out: string | undefined;
  icount: boolean;
  accel: AccelChoice;
  /** The kernel and VM options, as every VM command has them. */
  vm: VmFlags;
  help: boolean;
}

export function parseBenchArgs(args: string[]): BenchFlags {
  const { values } = parseOptions(args, OPTIONS);
  const accel = accelOf(values.accel);
  if (values.icount && accel === 'kvm') throw new UserError('--icount needs TCG: it cannot be combined with --accel kvm');
  return {
    sizes: values.sizes !== undefined ? parseSizes(values.sizes) : [...DEFAULT_SIZES],
    repeats: positiveNumber(values.repeat, '--repeat', 'whole number') ?? DEFAULT_REPEATS,
    out: values.out,
    icount: values.icount,
    accel,
    vm: values,
    help: values.help,
  };
}

/** build/bench/20261122-203015 */
export function defaultOutDir(now = new Date()): string {
  return path.join(BENCH_DIR, runStamp(now));
}

/** Guest RAM: the default 1 GiB, or more when the anonymous and tmpfs copies of a large buffer need it. */
export const guestMemoryMiB = (largest: number): number => Math.max(1024, 512 + Math.ceil((3 * largest) / MiB));

function progressLine(result: CaseResult, index: number, total: number): string {
  const value =
    result.group === 'map'
      ? `${formatNs(result.time.median)} (${formatNs(figure(result))}/page)`
      : result.group === 'seq'
        ? formatRate(figure(result))
        : `${formatNs(figure(result))}/access`;
  const faults = `${result.faults} fault${result.faults === 1 ? '' : 's'}`;
  const driver = result.driverFaults !== undefined ? `, ${result.driverFaults} ->fault` : '';
  return `bench [${index}/${total}] ${result.group} ${result.strategy} ${formatSize(result.size)}: ${value} ${formatSpread(result.time.spread)}, ${faults}${driver}`;
}

async function guestEnvironment(session: VmSession, memoryMiB: number, icount: boolean): Promise<Environment> {
  const guest = session.guest;
  const facts = (
    await guest.run([
      'sh',
      '-c',
      'uname -r; nproc; cat /sys/devices/system/clocksource/clocksource0/current_clocksource; ' +
        'cat /sys/kernel/mm/transparent_hugepage/enabled',
    ])
  ).split('\n');
  const fd = await guest.native.open('/dev/mmapkit-remap', 0);
  const info = await guest.native.deviceInfo(fd).finally(() => guest.native.close(fd));
  return {
    accelerator: session.accel,
    kernel: facts[0] ?? '?',
    cpus: Number(facts[1]),
    icount: icount ? { shift: ICOUNT_SHIFT, meaning: ICOUNT_MEANING } : null,
    ...hostFacts(),
    clocksource: facts[2] ?? '?',
    transparentHugepages: facts[3] ?? '?',
    pageSize: info.pageSize,
    moduleBufferBytes: Number(info.bufferSize),
    bufferContiguous: info.contiguous,
    timerFloorNs: await timerFloor(guest),
    guestMemoryMiB: memoryMiB,
    bootS: (session.bootMs ?? 0) / 1000,
  };
}

export async function benchCommand(args: string[]): Promise<number> {
  if (args.includes('--tool')) return toolBenchCommand(args.filter((arg) => arg !== '--tool'));
  const started = Date.now();
  const flags = parseBenchArgs(args);
  if (flags.help) {
    return printHelp(BENCH_HELP);
  }
  const plan = makePlan({ sizes: flags.sizes, repeats: flags.repeats });
  const largest = Math.max(...plan.sizes);
  const outDir = path.resolve(flags.out ?? defaultOutDir());
  if (flags.out !== undefined) checkWritableDir(outDir, '--out');
  const kernel = kernelOf(flags.vm);
  const options = guestOptions(flags.vm, kernel);
  await ensureBuilt(kernel);

  const memoryMiB = guestMemoryMiB(largest);
  const outcome = await withGuest(
    { ...options, loadModule: false, memoryMiB, icount: flags.icount ? ICOUNT_SHIFT : undefined },
    async (session) => {
      const guest = session.guest;
      await loadModule(guest, moduleObject(kernel.version), `size=${largest} fault_around=1`);
      // The tmpfs file's pages are made once, here: the mapping cost measures mapping pages already in memory.
      await guest.run(['dd', 'if=/dev/zero', `of=${TMPFS_FILE}`, 'bs=4K', `count=${largest / 4096}`, 'status=none']);
      const environment = await guestEnvironment(session, memoryMiB, flags.icount);
      if (flags.icount) say(`icount: ${ICOUNT_MEANING}`);
      say(`bench: ${plan.cases.length} cases x ${plan.repeats} repeats (+1 warm-up), sizes ${plan.sizes.map(formatSize).join(' ')}`);
      const { results, problems } = await runBench(guest, plan, {
        caseDone: (result, index, total) => say(progressLine(result, index, total)),
        note: (line) => say(`bench: ${line}`),
      });
      return { environment, results, problems };
    },
  );
  if (!outcome.ok) return outcome.exitCode;
  const { value: measured, session } = outcome;

  const durationS = (Date.now() - started) / 1000;
  const findings = session.findings();
  const problems = [...measured.problems, ...(findings.length > 0 ? [`kernel findings: ${describeFindings(findings)}`] : [])];
  const bench: BenchResults = {
    tool: 'mmapkit bench',
    version: 1,
    startedAt: new Date(started).toISOString(),
    durationS,
    environment: measured.environment,
    settings: { sizes: plan.sizes, repeats: plan.repeats, minReadBytes: plan.minReadBytes, randomCount: plan.randomCount },
    results: measured.results,
    targets: judgeTargets(measured.results, plan.sizes, durationS),
    problems,
  };
  const table = renderReport(bench);
  process.stdout.write(table);
  const written = writeReport(outDir, bench, table);
  say(`bench: wrote ${written.map((file) => path.basename(file)).join(', ')} in ${outDir}`);
  return problems.length > 0 ? ExitCode.TESTS_FAILED : ExitCode.PASSED;
}
