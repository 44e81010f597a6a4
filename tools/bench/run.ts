/**
 * Runs a plan in a booted guest. The hot loops are the addon's bench*
 * functions (native/src/bench_*.cc), called through the agent; this file
 * only sets up each case, repeats it and collects the samples.
 */
import type { BenchTiming } from '../../native/index.js';
import { MODULE_NAME, REFERENCE_DEVICE_PATHS } from '../reference-driver.js';
import type { GuestClient } from '../qemu/guest-client.js';
import { PAGE_SIZE } from '../kernel.js';
import { type Case, type Plan, formatSize, passesFor, readBufferSize } from './plan.js';
import { type CaseResult, type Sample, caseResult } from './results.js';
import { median } from './stats.js';

export const TMPFS_FILE = '/tmp/mmapkit-bench.dat';
const FAULT_AROUND = `/sys/module/${MODULE_NAME}/parameters/fault_around`;
/** The pattern benchFill writes; any fixed value will do. */
const SEED = 0x6d6d6170;
const RANDOM_SEED = 12345;

const MAP_TARGETS: Record<string, { target: string; faultAround?: number }> = {
  remap: { target: REFERENCE_DEVICE_PATHS.remap },
  'fault-1': { target: REFERENCE_DEVICE_PATHS.fault, faultAround: 1 },
  'fault-16': { target: REFERENCE_DEVICE_PATHS.fault, faultAround: 16 },
  anon: { target: 'anon' },
  tmpfs: { target: TMPFS_FILE },
};

export interface RunProgress {
  /** One line per case, as it finishes. */
  caseDone(result: CaseResult, index: number, total: number): void;
  /** Setup steps (filling buffers, ...). */
  note(line: string): void;
}

interface Runner {
  guest: GuestClient;
  plan: Plan;
  problems: string[];
}

const sampleOf = (timing: BenchTiming): Sample => ({
  ns: timing.ns,
  minorFaults: timing.minorFaults,
  majorFaults: timing.majorFaults,
  checksum: timing.checksum.toString(),
});

async function setFaultAround(guest: GuestClient, pages: number): Promise<void> {
  await guest.run(['sh', '-c', `echo ${pages} > ${FAULT_AROUND}`]);
}

/** One warm-up (discarded), then `repeats` samples. */
async function repeat(plan: Plan, measure: () => Promise<Sample>): Promise<Sample[]> {
  await measure();
  const samples: Sample[] = [];
  for (let i = 0; i < plan.repeats; i++) samples.push(await measure());
  return samples;
}

async function mapCase(run: Runner, c: Case): Promise<CaseResult> {
  const { guest } = run;
  const { target, faultAround } = MAP_TARGETS[c.strategy]!;
  if (faultAround !== undefined) await setFaultAround(guest, faultAround);
  const statsFd = target.startsWith('/dev/') ? await guest.native.open(target, 0) : undefined;
  try {
    const samples = await repeat(run.plan, async () => {
      const before = statsFd !== undefined ? (await guest.native.deviceStats(statsFd)).faultsServed : 0n;
      const mapping = await guest.native.benchMapTouch(target, c.size, 'write');
      await guest.native.munmap(mapping.addr, BigInt(c.size));
      const sample: Sample = {
        ns: mapping.mmapNs + mapping.touchNs,
        mmapNs: mapping.mmapNs,
        touchNs: mapping.touchNs,
        minorFaults: mapping.minorFaults,
        majorFaults: mapping.majorFaults,
      };
      if (statsFd !== undefined) sample.driverFaults = Number((await guest.native.deviceStats(statsFd)).faultsServed - before);
      return sample;
    });
    return caseResult(c, samples, c.size / PAGE_SIZE);
  } finally {
    if (statsFd !== undefined) await guest.native.close(statsFd);
    if (faultAround !== undefined && faultAround !== 1) await setFaultAround(guest, 1);
  }
}

/** A mapping of `size` bytes holding the pattern, and how to undo it. */
async function patternMapping(guest: GuestClient, strategy: string, size: number): Promise<{ addr: bigint; done: () => Promise<void> }> {
  const target = strategy === 'anon' ? 'anon' : strategy === 'mmap-fault' ? REFERENCE_DEVICE_PATHS.fault : REFERENCE_DEVICE_PATHS.remap;
  // 'read' keeps the device's pattern; anonymous memory is written, then filled.
  const mapping = await guest.native.benchMapTouch(target, size, target === 'anon' ? 'write' : 'read');
  if (target === 'anon') await guest.native.benchFill(mapping.addr, size, SEED);
  return { addr: mapping.addr, done: () => guest.native.munmap(mapping.addr, BigInt(size)) };
}

async function seqCase(run: Runner, c: Case): Promise<CaseResult> {
  const { guest, plan } = run;
  const passes = passesFor(c.size, plan.minReadBytes);
  const bufferSize = readBufferSize(c.strategy);
  if (bufferSize !== undefined) {
    const fd = await guest.native.open(REFERENCE_DEVICE_PATHS.remap, 0);
    try {
      const samples = await repeat(plan, async () => sampleOf(await guest.native.benchReadSyscall(fd, c.size, bufferSize, passes)));
      return caseResult(c, samples, c.size * passes);
    } finally {
      await guest.native.close(fd);
    }
  }
  const mapping = await patternMapping(guest, c.strategy, c.size);
  try {
    const samples = await repeat(plan, async () => sampleOf(await guest.native.benchSequentialRead(mapping.addr, c.size, passes)));
    return caseResult(c, samples, c.size * passes);
  } finally {
    await mapping.done();
  }
}

async function randomCase(run: Runner, c: Case): Promise<CaseResult> {
  const { guest, plan } = run;
  const count = plan.randomCount;
  if (c.strategy === 'pread') {
    const fd = await guest.native.open(REFERENCE_DEVICE_PATHS.remap, 0);
    try {
      const samples = await repeat(plan, async () => sampleOf(await guest.native.benchPread(fd, c.size, count, RANDOM_SEED)));
      return caseResult(c, samples, count);
    } finally {
      await guest.native.close(fd);
    }
  }
  const mapping = await patternMapping(guest, c.strategy, c.size);
  try {
    const samples = await repeat(plan, async () =>
      sampleOf(await guest.native.benchRandomRead(mapping.addr, c.size, count, RANDOM_SEED)),
    );
    return caseResult(c, samples, count);
  } finally {
    await mapping.done();
  }
}

/** Fills the device buffer with the pattern, through a mapping of the remap device. */
async function fillDevice(guest: GuestClient, bytes: number): Promise<void> {
  const mapping = await guest.native.benchMapTouch(REFERENCE_DEVICE_PATHS.remap, bytes, 'write');
  try {
    await guest.native.benchFill(mapping.addr, bytes, SEED);
  } finally {
    await guest.native.munmap(mapping.addr, BigInt(bytes));
  }
}

/** Every case of one size and group must have read the same words: same checksum in every sample. */
function checkChecksums(results: readonly CaseResult[], problems: string[]): void {
  const groups = new Map<string, CaseResult[]>();
  for (const result of results) {
    if (result.group === 'map') continue;
    // Sequential samples of one size read the same bytes the same number of times.
    const key = `${result.group} ${result.size}`;
    groups.set(key, [...(groups.get(key) ?? []), result]);
  }
  for (const [key, members] of groups) {
    const sums = new Set(members.flatMap((member) => member.samples.map((sample) => sample.checksum)));
    if (sums.size > 1) {
      const [group, size] = key.split(' ');
      problems.push(
        `${group} at ${formatSize(Number(size))}: the strategies read different bytes (checksums ${[...sums].join(', ')})`,
      );
    }
  }
}

/** Median of an empty timed span: a zero-pass read is refused, so one 8-byte load stands in. */
export async function timerFloor(guest: GuestClient, repeats = 21): Promise<number> {
  const mapping = await guest.native.benchMapTouch('anon', PAGE_SIZE, 'write');
  try {
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) times.push((await guest.native.benchSequentialRead(mapping.addr, 8, 1)).ns);
    return median(times);
  } finally {
    await guest.native.munmap(mapping.addr, BigInt(PAGE_SIZE));
  }
}

/**
 * The module must be loaded with a buffer of at least the largest size, and
 * TMPFS_FILE must exist with that many bytes (runBench's caller does both).
 */
export async function runBench(guest: GuestClient, plan: Plan, progress: RunProgress): Promise<{ results: CaseResult[]; problems: string[] }> {
  const run: Runner = { guest, plan, problems: [] };
  const results: CaseResult[] = [];
  const largest = Math.max(...plan.sizes);
  let filled = false;
  let index = 0;
  for (const c of plan.cases) {
    if (c.group !== 'map' && !filled) {
      progress.note(`filling the device buffer with the read pattern (${formatSize(largest)})`);
      await fillDevice(guest, largest);
      filled = true;
    }
    const result = c.group === 'map' ? await mapCase(run, c) : c.group === 'seq' ? await seqCase(run, c) : await randomCase(run, c);
    results.push(result);
    progress.caseDone(result, ++index, plan.cases.length);
  }
  checkChecksums(results, run.problems);
  return { results, problems: run.problems };
}
