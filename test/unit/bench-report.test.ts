/** The table, the target judgement and the SVG plots, from a made-up run. */
import { describe, expect, it } from 'vitest';
import { type Case, KiB, MiB, makePlan } from '../../tools/bench/plan.js';
import { PAGE_SIZE } from '../../tools/kernel.js';
import { charts } from '../../tools/bench/report.js';
import { type BenchResults, type CaseResult, caseResult, judgeTargets } from '../../tools/bench/results.js';
import { barChartSvg, decadeTicks, escapeXml, lineChartSvg, niceStep } from '../../tools/bench/svg.js';
import { formatNs, formatRate, renderGrid, renderReport } from '../../tools/bench/table.js';

const SIZES = [4 * KiB, 64 * KiB, MiB, 64 * MiB];

/** A fake result: cost grows with size; the remap device reads as fast as anonymous memory. */
function fake(c: Case): CaseResult {
  const pages = c.size / PAGE_SIZE;
  const perPage: Record<string, number> = { remap: 300, 'fault-1': 2000, 'fault-16': 400, anon: 5000, tmpfs: 2500 };
  if (c.group === 'map') {
    const ns = 20_000 + pages * perPage[c.strategy]!;
    const samples = [1, 1.1, 0.9].map((k) => ({ ns: ns * k, minorFaults: c.strategy === 'remap' ? 0 : pages, majorFaults: 0 }));
    return caseResult(c, samples, pages);
  }
  if (c.group === 'seq') {
    const rate = c.strategy.startsWith('read') ? 0.5 : 8; // GiB/s
    const ns = (64 * MiB) / (rate * 1024 ** 3) * 1e9;
    return caseResult(c, [{ ns, minorFaults: 0, majorFaults: 0, checksum: '1' }], 64 * MiB);
  }
  const ns = c.strategy === 'pread' ? 1e8 : 5e5;
  return caseResult(c, [{ ns, minorFaults: 0, majorFaults: 0, checksum: '2' }], 100_000);
}

function fakeRun(): BenchResults {
  const plan = makePlan({ sizes: SIZES, repeats: 3 });
  const results = plan.cases.map(fake);
  return {
    tool: 'mmapkit bench',
    version: 1,
    startedAt: '2026-01-01T00:00:00.000Z',
    durationS: 61,
    environment: {
      accelerator: 'tcg', kernel: '6.1.0-test', cpus: 2, icount: null, qemu: 'QEMU 7.2', hostCpu: 'test',
      clocksource: 'tsc', transparentHugepages: 'always', pageSize: 4096, moduleBufferBytes: 64 * MiB,
      bufferContiguous: false, timerFloorNs: 2000, guestMemoryMiB: 1024, bootS: 2.5,
    },
    settings: { sizes: SIZES, repeats: 3, minReadBytes: 64 * MiB, randomCount: 100_000 },
    results,
    targets: judgeTargets(results, SIZES, 61),
    problems: [],
  };
}

describe('bench figures and table', () => {
  it('formats times and rates with three significant digits', () => {
    expect(formatNs(950)).toBe('950 ns');
    expect(formatNs(12_345)).toBe('12.3 µs');
    expect(formatNs(4_560_000)).toBe('4.56 ms');
    expect(formatRate(8 * 1024 ** 3)).toBe('8.00 GiB/s');
    expect(formatRate(512 * MiB)).toBe('512 MiB/s');
    expect(renderGrid([['a', 'bb'], ['ccc', 'd']])).toBe('a    bb\nccc   d');
  });

  it('judges the targets on the run\'s own figures', () => {
    const run = fakeRun();
    const [read, mapping, time] = run.targets;
    expect(read).toMatchObject({ met: true, value: 1 });
    // fault-16 at 64 MiB: 20 µs + 16384 * 400 ns against 20 µs + 16384 * 300 ns.
    expect(mapping!.value).toBeCloseTo((20_000 + 16384 * 400) / (20_000 + 16384 * 300));
    expect(mapping!.met).toBe(true);
    expect(time).toMatchObject({ met: true, value: 61 });
    const missing = judgeTargets([], SIZES, 400);
    expect(missing.every((target) => !target.met)).toBe(true);
  });

  it('prints a table per group with every size and strategy, the environment and the targets', () => {
    const text = renderReport(fakeRun());
    expect(text).toMatch(/kernel 6\.1\.0-test, accelerator tcg, 2 CPUs/);
    for (const title of ['mapping cost', 'sequential read', 'random 8-byte reads', 'targets:']) expect(text).toContain(title);
    expect(text).toMatch(/^64M\s+/m);
    expect(text).toMatch(/fault-16/);
    expect(text).toMatch(/met {4}remap sequential read/);
    expect(text).toMatch(/\(16384\)/); // faults of the 64 MiB cases
  });
});

/** Elements of a kind and their attributes, read back from the SVG text. */
function elements(svg: string, tag: string): Record<string, string>[] {
  return [...svg.matchAll(new RegExp(`<${tag}\\b([^>]*)>`, 'g'))].map((match) =>
    Object.fromEntries([...match[1]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((attr) => [attr[1]!, attr[2]!])),
  );
}

describe('bench SVG plots', () => {
  it('mapping cost: one polyline per strategy, on log axes, cost per page falling with size', () => {
    const svg = charts(fakeRun())['mapping-cost-per-page.svg']!;
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    const axes = elements(svg, 'g').filter((g) => g.class === 'axis');
    expect(axes.map((g) => [g['data-axis'], g['data-scale']])).toEqual([['x', 'log'], ['y', 'log']]);
    const series = elements(svg, 'g').filter((g) => g.class === 'series').map((g) => g['data-series']);
    expect(series).toEqual(['remap', 'fault-1', 'fault-16', 'anon', 'tmpfs']);
    const lines = elements(svg, 'polyline');
    expect(lines).toHaveLength(5);
    for (const line of lines) {
      const points = line.points!.split(' ').map((p) => p.split(',').map(Number));
      expect(points).toHaveLength(SIZES.length);
      // x grows with size; y (SVG grows downwards) shows the per-page cost falling.
      for (let i = 1; i < points.length; i++) {
        expect(points[i]![0]!).toBeGreaterThan(points[i - 1]![0]!);
        expect(points[i]![1]!).toBeGreaterThan(points[i - 1]![1]!);
      }
    }
    // Equal steps of 16x in size are equal steps on the x axis: it is logarithmic.
    const xs = lines[0]!.points!.split(' ').map((p) => Number(p.split(',')[0]));
    expect(xs[1]! - xs[0]!).toBeCloseTo(xs[2]! - xs[1]!, 0);
    expect(svg).toContain('>64M<');
  });

  it('read throughput: bars per size and strategy, with the anonymous-memory limit as a dashed line', () => {
    const svg = charts(fakeRun())['read-throughput.svg']!;
    const bars = elements(svg, 'rect').filter((r) => r.class === 'bar');
    // 4K: 3 strategies; 64K: 4; 1M and 64M: 5 (anon is the reference line, not a bar).
    expect(bars).toHaveLength(3 + 4 + 5 + 5);
    expect(new Set(bars.map((b) => b['data-series']))).toEqual(new Set(['mmap-remap', 'mmap-fault', 'read-4K', 'read-64K', 'read-1M']));
    const references = elements(svg, 'line').filter((l) => l.class === 'reference');
    expect(references).toHaveLength(SIZES.length);
    // The remap bar reaches the reference line: same throughput in the fake run.
    const firstRemap = bars.find((b) => b['data-series'] === 'mmap-remap')!;
    expect(Number(firstRemap.y)).toBeCloseTo(Number(references[0]!.y1), 0);
    expect(elements(svg, 'g').find((g) => g['data-axis'] === 'y')!['data-scale']).toBe('linear');
  });

  it('charts keep working without data, and escape text', () => {
    expect(lineChartSvg({ title: 'a < b', xLabel: 'x', yLabel: 'y', series: [], formatX: String, formatY: String })).toContain('a &lt; b');
    expect(barChartSvg({ title: 't', yLabel: 'y', groups: [], referenceName: 'r', formatY: String })).toContain('no data');
    expect(escapeXml('"&"')).toBe('&quot;&amp;&quot;');
    expect(decadeTicks(150, 9000)).toEqual([100, 1000, 10000]);
    expect(niceStep(1.7)).toBe(2);
    expect(niceStep(0.3)).toBe(0.5);
  });
});
