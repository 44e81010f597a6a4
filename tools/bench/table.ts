/** The terminal tables: one per group, sizes down, strategies across, medians with their spread. */
import { type Group, GROUP_TITLES, MiB, STRATEGIES, STRATEGY_NOTES, formatSize } from './plan.js';
import { type BenchResults, type CaseResult, figure, find } from './results.js';

/** 950 ns, 12.3 µs, 4.56 ms, 1.23 s: three significant digits. */
export function formatNs(ns: number): string {
  const units: [number, string][] = [
    [1e9, 's'],
    [1e6, 'ms'],
    [1e3, 'µs'],
  ];
  for (const [scale, unit] of units) if (Math.abs(ns) >= scale) return `${significant(ns / scale)} ${unit}`;
  return `${significant(ns)} ns`;
}

/** Bytes per second as MiB/s or GiB/s. */
export function formatRate(bytesPerSecond: number): string {
  const mib = bytesPerSecond / MiB;
  return mib >= 1024 ? `${significant(mib / 1024)} GiB/s` : `${significant(mib)} MiB/s`;
}

export const formatSpread = (spread: number): string => `±${Math.round((spread * 100) / 2)}%`;

function significant(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Columns padded to their widest cell; the first column left-aligned, the others right-aligned. */
export function renderGrid(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const cellOf: Record<Group, (result: CaseResult) => string> = {
  map: (r) => `${formatNs(figure(r))} ${formatSpread(r.time.spread)}`,
  seq: (r) => `${formatRate(figure(r))} ${formatSpread(r.time.spread)}`,
  random: (r) => `${formatNs(figure(r))} ${formatSpread(r.time.spread)}`,
};

/** One group's table: a row per size, a column per strategy. */
export function groupTable(results: readonly CaseResult[], group: Group, sizes: readonly number[]): string {
  const strategies = STRATEGIES[group];
  const rows: string[][] = [['size', ...strategies]];
  for (const size of sizes) {
    rows.push([formatSize(size), ...strategies.map((s) => {
      const result = find(results, group, s, size);
      return result === undefined ? '-' : cellOf[group](result);
    })]);
  }
  return renderGrid(rows);
}

/** Mapping cost in total, with the minor page faults behind it (getrusage) in brackets. */
export function mapDetailTable(results: readonly CaseResult[], sizes: readonly number[]): string {
  const strategies = STRATEGIES.map;
  const rows: string[][] = [['size', ...strategies]];
  for (const size of sizes) {
    rows.push([
      formatSize(size),
      ...strategies.map((s) => {
        const r = find(results, 'map', s, size);
        return r === undefined ? '-' : `${formatNs(r.time.median)} (${r.faults})`;
      }),
    ]);
  }
  return renderGrid(rows);
}

/** The whole terminal report. */
export function renderReport(bench: BenchResults): string {
  const { environment: env, settings } = bench;
  const sizes = settings.sizes;
  const lines: string[] = [];
  lines.push(
    `mmapkit bench: kernel ${env.kernel}, accelerator ${env.accelerator}${env.icount !== null ? ` (icount shift=${env.icount.shift})` : ''}, ` +
      `${env.cpus} CPU${env.cpus === 1 ? '' : 's'}, median of ${settings.repeats} repeats ±half the interquartile range, ` +
      `device buffer ${formatSize(env.moduleBufferBytes)} ${env.bufferContiguous ? 'contiguous' : 'vmalloc'}, timer floor ${formatNs(env.timerFloorNs)}`,
  );
  if (env.icount !== null) lines.push(`icount: ${env.icount.meaning}`);
  lines.push('', `== ${GROUP_TITLES.map}: per page`, groupTable(bench.results, 'map', sizes));
  lines.push('', `== ${GROUP_TITLES.map}: total (minor page faults, getrusage)`, mapDetailTable(bench.results, sizes));
  lines.push('', `== ${GROUP_TITLES.seq}: throughput`, groupTable(bench.results, 'seq', sizes));
  lines.push('', `== ${GROUP_TITLES.random}: time per access (${settings.randomCount} accesses per sample)`, groupTable(bench.results, 'random', sizes));
  lines.push('', 'strategies:');
  for (const [name, note] of Object.entries(STRATEGY_NOTES)) lines.push(`  ${name.padEnd(10)} ${note}`);
  lines.push('', 'targets:');
  for (const target of bench.targets) {
    const value = target.name.includes('minutes') ? `${target.value.toFixed(0)} s` : `${target.value.toFixed(2)}x`;
    lines.push(`  ${target.met ? 'met   ' : 'MISSED'} ${target.name}: ${value} (${target.detail})`);
  }
  for (const problem of bench.problems) lines.push(`problem: ${problem}`);
  return `${lines.join('\n')}\n`;
}
