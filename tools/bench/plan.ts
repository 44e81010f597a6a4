/**
 * What `mmapkit bench` measures: the sizes, the strategies of each group
 * and the order they run in. Plain data, so the rest (running, tables,
 * plots) can be tested without a guest.
 */
import { readFileSync } from 'node:fs';
import { STATS_HEADER, maxSizeMib } from '../builder/header-names.js';
import { UserError } from '../exit-codes.js';
import { PAGE_SIZE } from '../kernel.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** 4 KiB to 64 MiB in powers of 4. */
export const DEFAULT_SIZES: readonly number[] = [4, 16, 64, 256, 1024, 4096, 16384, 65536].map((k) => k * KiB);
/** The module refuses larger buffers (MMAPKIT_MAX_SIZE_MIB in kmod/uapi/mmapkit.h). */
export const MAX_SIZE = maxSizeMib(readFileSync(STATS_HEADER, 'utf8')) * MiB;
/** Samples per figure: the median of 9 shrugs off the few a busy host disturbs, and the whole bench stays near 1.5 minutes. */
export const DEFAULT_REPEATS = 9;

export type Group = 'map' | 'seq' | 'random';

/** Mapping cost: mmap + first (write) touch of every page. */
export const MAP_STRATEGIES = ['remap', 'fault-1', 'fault-16', 'anon', 'tmpfs'] as const;
/** Sequential read of the whole buffer. */
export const SEQ_STRATEGIES = ['mmap-remap', 'mmap-fault', 'anon', 'read-4K', 'read-64K', 'read-1M'] as const;
/** Random 8-byte reads. */
export const RANDOM_STRATEGIES = ['mmap-remap', 'anon', 'pread'] as const;

export type MapStrategy = (typeof MAP_STRATEGIES)[number];
export type SeqStrategy = (typeof SEQ_STRATEGIES)[number];
export type RandomStrategy = (typeof RANDOM_STRATEGIES)[number];

export const STRATEGIES: Record<Group, readonly string[]> = {
  map: MAP_STRATEGIES,
  seq: SEQ_STRATEGIES,
  random: RANDOM_STRATEGIES,
};

export const GROUP_TITLES: Record<Group, string> = {
  map: 'mapping cost (mmap + first write of every page)',
  seq: 'sequential read of the whole buffer',
  random: 'random 8-byte reads',
};

/** What each strategy is, for the table's legend and the docs. */
export const STRATEGY_NOTES: Record<string, string> = {
  remap: '/dev/mmapkit-remap: every PTE made in ->mmap (remap_pfn_range)',
  'fault-1': '/dev/mmapkit-fault, fault_around=1: one PTE per ->fault',
  'fault-16': '/dev/mmapkit-fault, fault_around=16: up to 16 PTEs per ->fault (as TTM)',
  anon: 'private anonymous memory, 4 KiB pages (MADV_NOHUGEPAGE)',
  tmpfs: 'MAP_SHARED of a tmpfs file whose pages are already in memory',
  'mmap-remap': 'loads through a mapping of /dev/mmapkit-remap (pages already mapped)',
  'mmap-fault': 'loads through a mapping of /dev/mmapkit-fault (pages already mapped)',
  'read-4K': 'read() of /dev/mmapkit-remap into a 4 KiB buffer, then loads from it',
  'read-64K': 'the same with a 64 KiB buffer',
  'read-1M': 'the same with a 1 MiB buffer',
  pread: 'one 8-byte pread() of /dev/mmapkit-remap per access',
};

/** Bytes of a read() buffer strategy, or undefined for the others. */
export function readBufferSize(strategy: string): number | undefined {
  const match = /^read-(\d+)([KM])$/.exec(strategy);
  if (match === null) return undefined;
  return Number(match[1]) * (match[2] === 'K' ? KiB : MiB);
}

export interface Case {
  group: Group;
  strategy: string;
  size: number;
}

export interface Plan {
  sizes: number[];
  repeats: number;
  /** Each sequential-read sample reads at least this many bytes (passes over small buffers). */
  minReadBytes: number;
  /** Accesses per random-read sample. */
  randomCount: number;
  cases: Case[];
}

/** "4K", "64M", "1G", "4096": bytes. */
export function parseSize(text: string): number {
  const match = /^(\d+)\s*([KMG]?)(?:i?B)?$/i.exec(text.trim());
  if (match === null) throw new UserError(`'${text}' is not a size (examples: 4K, 64M, 4096)`);
  const unit = { '': 1, K: KiB, M: MiB, G: 1024 * MiB }[match[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  const bytes = Number(match[1]) * unit;
  if (bytes < PAGE_SIZE || bytes % PAGE_SIZE !== 0) {
    throw new UserError(`size ${text} must be a whole number of ${PAGE_SIZE / KiB} KiB pages`);
  }
  if (bytes > MAX_SIZE) throw new UserError(`size ${text} is larger than the module's ${MAX_SIZE / MiB} MiB buffer limit`);
  return bytes;
}

/** A comma-separated list of sizes, sorted and without duplicates. */
export function parseSizes(text: string): number[] {
  let sizes: number[];
  try {
    sizes = text.split(',').filter((part) => part.trim() !== '').map(parseSize);
  } catch (error) {
    throw error instanceof UserError ? new UserError(`--sizes: ${error.message}`) : error;
  }
  if (sizes.length === 0) throw new UserError('--sizes needs at least one size');
  return [...new Set(sizes)].sort((a, b) => a - b);
}

/** "4K", "64M": the shortest exact name of a size. */
export function formatSize(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB}M`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB}K`;
  return String(bytes);
}

export interface PlanOptions {
  sizes?: number[];
  repeats?: number;
  minReadBytes?: number;
  randomCount?: number;
}

/**
 * Every case, in the order they run: the mapping cases first (their write
 * touch clears each page's first word), then the reads over the filled
 * buffer. A read() buffer larger than the size is left out: it would be
 * the same read as a smaller one.
 */
export function makePlan(options: PlanOptions = {}): Plan {
  const sizes = options.sizes ?? [...DEFAULT_SIZES];
  const repeats = options.repeats ?? DEFAULT_REPEATS;
  if (!Number.isInteger(repeats) || repeats < 1) throw new UserError(`--repeat takes a positive integer, not '${repeats}'`);
  const cases: Case[] = [];
  for (const strategy of MAP_STRATEGIES) for (const size of sizes) cases.push({ group: 'map', strategy, size });
  for (const size of sizes) {
    for (const strategy of SEQ_STRATEGIES) {
      if ((readBufferSize(strategy) ?? 0) > size) continue;
      cases.push({ group: 'seq', strategy, size });
    }
  }
  for (const size of sizes) for (const strategy of RANDOM_STRATEGIES) cases.push({ group: 'random', strategy, size });
  return {
    sizes,
    repeats,
    minReadBytes: options.minReadBytes ?? 64 * MiB,
    randomCount: options.randomCount ?? 100_000,
    cases,
  };
}

/** Passes over a buffer of `size` bytes so a sample reads at least `minBytes`. */
export const passesFor = (size: number, minBytes: number): number => Math.max(1, Math.ceil(minBytes / size));
