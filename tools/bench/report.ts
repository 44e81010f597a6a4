/** Writes a run's results: results.json and the SVG plots next to it. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Group, STRATEGIES, formatSize } from './plan.js';
import { type BenchResults, type CaseResult, figure, find } from './results.js';
import { type BarGroup, barChartSvg, lineChartSvg } from './svg.js';
import { formatNs, formatRate } from './table.js';

const GiB = 1024 ** 3;

/** JSON with BigInt-free content (samples hold checksums as strings already). */
export const resultsJson = (bench: object): string => `${JSON.stringify(bench, null, 2)}\n`;

/** The environment, in one line under each plot's title. */
function environmentNote(bench: BenchResults): string {
  const env = bench.environment;
  const icount = env.icount !== null ? `, icount shift=${env.icount.shift} (times count guest instructions)` : '';
  return `kernel ${env.kernel}, ${env.accelerator}${icount}, ${env.cpus} CPU${env.cpus === 1 ? '' : 's'}, median of ${bench.settings.repeats}`;
}

function seriesOf(results: readonly CaseResult[], group: Group, sizes: readonly number[], value: (r: CaseResult) => number) {
  return STRATEGIES[group].map((strategy) => ({
    name: strategy,
    points: sizes.flatMap((size) => {
      const result = find(results, group, strategy, size);
      return result === undefined ? [] : [{ x: size, y: value(result) }];
    }),
  })).filter((series) => series.points.length > 0);
}

/** File name -> SVG text. */
export function charts(bench: BenchResults): Record<string, string> {
  const { results } = bench;
  const sizes = bench.settings.sizes;
  const note = environmentNote(bench);
  const files: Record<string, string> = {};
  /** A time per buffer size, one line per strategy of `group`. */
  const timeBySize = (title: string, remark: string, yLabel: string, group: Group, value: (r: CaseResult) => number): string =>
    lineChartSvg({
      title,
      notes: [note, remark],
      xLabel: 'buffer size (log scale)',
      yLabel,
      series: seriesOf(results, group, sizes, value),
      formatX: formatSize,
      formatY: formatNs,
    });

  files['mapping-cost-per-page.svg'] = timeBySize(
    'Mapping cost per page: mmap + first write of every page',
    'lower is better; a flat line costs the same per page at every size',
    'time per page (log scale)',
    'map',
    figure,
  );
  files['mapping-cost-total.svg'] = timeBySize(
    'Mapping cost in total: mmap + first write of every page',
    'lower is better',
    'total time (log scale)',
    'map',
    (r) => r.time.median,
  );

  const groups: BarGroup[] = sizes.flatMap((size) => {
    const bars = STRATEGIES.seq
      .filter((strategy) => strategy !== 'anon')
      .flatMap((strategy) => {
        const result = find(results, 'seq', strategy, size);
        return result === undefined ? [] : [{ name: strategy, value: figure(result) / GiB }];
      });
    const anon = find(results, 'seq', 'anon', size);
    if (bars.length === 0 && anon === undefined) return [];
    return [{ label: formatSize(size), bars, ...(anon !== undefined && { reference: figure(anon) / GiB }) }];
  });
  files['read-throughput.svg'] = barChartSvg({
    title: 'Sequential read throughput against anonymous memory',
    notes: [note, 'higher is better; the dashed line is anonymous memory read the same way (the limit)'],
    yLabel: 'GiB/s',
    groups,
    referenceName: 'anon (limit)',
    formatY: (gib) => (gib === 0 ? '0' : formatRate(gib * GiB)),
  });

  files['random-access.svg'] = timeBySize(
    'Random 8-byte reads: mapping vs pread()',
    'lower is better',
    'time per access (log scale)',
    'random',
    figure,
  );
  return files;
}

/** Writes each file name -> content into `dir`; returns the paths written. */
export function writeFiles(dir: string, files: Record<string, string>): string[] {
  mkdirSync(dir, { recursive: true });
  return Object.entries(files).map(([name, content]) => {
    const file = path.join(dir, name);
    writeFileSync(file, content);
    return file;
  });
}

/** Writes results.json and the plots into `dir`; returns the paths written. */
export function writeReport(dir: string, bench: BenchResults, table: string): string[] {
  return writeFiles(dir, { 'results.json': resultsJson(bench), 'table.txt': table, ...charts(bench) });
}
