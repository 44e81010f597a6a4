/** The shape of a bench run's results (results.json), and the figures derived from the samples. */
import { PAGE_SIZE } from '../kernel.js';
import { type Case, type Group, MiB, formatSize } from './plan.js';
import { type Summary, median, summarize } from './stats.js';

/** One repetition of one case, as measured in the guest. */
export interface Sample {
  /** The timed span: mmap + touch for 'map', the whole loop otherwise. */
  ns: number;
  minorFaults: number;
  majorFaults: number;
  /** 'map' only: the parts of ns. */
  mmapNs?: number;
  touchNs?: number;
  /** Device strategies of 'map': ->fault calls the driver served (faults_served). */
  driverFaults?: number;
  /** 'seq' and 'random': the sum of the words read, as a decimal string. */
  checksum?: string;
}

export interface CaseResult extends Case {
  samples: Sample[];
  /** Of the samples' ns. */
  time: Summary;
  /** Median minor faults per sample. */
  faults: number;
  driverFaults?: number;
  /** 'seq': bytes read per sample; 'random': accesses per sample. */
  work: number;
}

export interface Environment {
  accelerator: string;
  /** The guest's `uname -r`. */
  kernel: string;
  cpus: number;
  /** null, or the -icount shift: then 1 ns of guest time is 2^shift guest instructions' worth. */
  icount: { shift: number; meaning: string } | null;
  qemu: string;
  hostCpu: string;
  clocksource: string;
  transparentHugepages: string;
  pageSize: number;
  /** The module's size parameter: the device buffer every device strategy maps. */
  moduleBufferBytes: number;
  /** false: the buffer is vmalloc'd and remapped page by page. */
  bufferContiguous: boolean;
  /** Median time of an empty timed span (two clock reads): the floor under every figure. */
  timerFloorNs: number;
  guestMemoryMiB: number;
  bootS: number;
}

export interface Target {
  name: string;
  /** What was compared, in words, with the figures. */
  detail: string;
  value: number;
  limit: number;
  /** 'min': value must be >= limit; 'max': value must be <= limit. */
  kind: 'min' | 'max';
  met: boolean;
}

export interface BenchResults {
  tool: 'mmapkit bench';
  version: 1;
  startedAt: string;
  durationS: number;
  environment: Environment;
  settings: { sizes: number[]; repeats: number; minReadBytes: number; randomCount: number };
  results: CaseResult[];
  targets: Target[];
  /** Anything that went wrong but did not stop the run (checksum mismatches, ...). */
  problems: string[];
}

export function caseResult(c: Case, samples: Sample[], work: number): CaseResult {
  const result: CaseResult = {
    ...c,
    samples,
    time: summarize(samples.map((sample) => sample.ns)),
    faults: median(samples.map((sample) => sample.minorFaults)),
    work,
  };
  const driver = samples.map((sample) => sample.driverFaults).filter((value): value is number => value !== undefined);
  if (driver.length > 0) result.driverFaults = median(driver);
  return result;
}

/** The figure a case is judged by, from its median time. */
export function figure(result: CaseResult): number {
  switch (result.group) {
    case 'map':
      return result.time.median / (result.size / PAGE_SIZE); // ns per page
    case 'seq':
      return result.work / (result.time.median / 1e9); // bytes per second
    case 'random':
      return result.time.median / result.work; // ns per access
  }
}

export const FIGURE_UNITS: Record<Group, string> = {
  map: 'ns per page',
  seq: 'bytes per second',
  random: 'ns per access',
};

export function find(results: readonly CaseResult[], group: Group, strategy: string, size: number): CaseResult | undefined {
  return results.find((r) => r.group === group && r.strategy === strategy && r.size === size);
}

/** The targets, judged on this run's own figures. A target whose figures are missing is reported as missed. */
export function judgeTargets(results: readonly CaseResult[], sizes: readonly number[], durationS: number): Target[] {
  const largest = sizes[sizes.length - 1] ?? 0;
  const targets: Target[] = [];

  const remap = find(results, 'seq', 'mmap-remap', largest);
  const anon = find(results, 'seq', 'anon', largest);
  const readRatio = remap !== undefined && anon !== undefined ? figure(remap) / figure(anon) : 0;
  targets.push({
    name: 'remap sequential read >= 0.9x anonymous memory',
    detail: `at ${formatSize(largest)}: ${formatRate(remap)} vs ${formatRate(anon)}`,
    value: readRatio,
    limit: 0.9,
    kind: 'min',
    met: readRatio >= 0.9,
  });

  const at = sizes.includes(64 * MiB) ? 64 * MiB : largest;
  const fault16 = find(results, 'map', 'fault-16', at);
  const remapMap = find(results, 'map', 'remap', at);
  const mapRatio = fault16 !== undefined && remapMap !== undefined ? fault16.time.median / remapMap.time.median : Infinity;
  targets.push({
    name: `fault-16 total mapping cost at ${formatSize(at)} within 2x of remap`,
    detail: `${formatMs(fault16)} vs ${formatMs(remapMap)}`,
    value: mapRatio,
    limit: 2,
    kind: 'max',
    met: mapRatio <= 2,
  });

  targets.push({
    name: 'whole bench, boot included, under 5 minutes',
    detail: `${durationS.toFixed(1)} s`,
    value: durationS,
    limit: 300,
    kind: 'max',
    met: durationS <= 300,
  });
  return targets;
}

const formatRate = (result: CaseResult | undefined): string =>
  result === undefined ? 'not measured' : `${(figure(result) / MiB).toFixed(0)} MiB/s`;
const formatMs = (result: CaseResult | undefined): string =>
  result === undefined ? 'not measured' : `${(result.time.median / 1e6).toFixed(2)} ms`;
