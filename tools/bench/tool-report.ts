/**
 * `mmapkit bench --tool`'s results (results.json) and its table: each figure
 * as median and spread over the boots, beside the machine's baseline
 * (tools/bench/baseline.ts) and, for each variant besides A, as a ratio to A.
 */
import { BASELINE_WORK } from './baseline.js';
import { type Summary, summarize } from './stats.js';
import { formatNs, formatSpread, renderGrid } from './table.js';
import { BOOT_PHASES, PHASE_TITLES } from './tool-phases.js';
import { ROUND_TRIPS, ROUND_TRIP_TITLES, type BootSample, type ToolSamples, type Variant } from './tool-run.js';

export interface ToolFigure {
  /** 'boot', a phase (tool-phases.ts BOOT_PHASES) or a round trip (tool-run.ts ROUND_TRIPS). */
  name: string;
  title: string;
  /** ns, per variant, in the variants' order; A first. */
  variants: { name: string; time: Summary; /** This variant's median over A's. */ ratio: number }[];
  /** A's median over the baseline's: what compares across machines. */
  perBaseline: number;
}

export interface ToolEnvironment {
  accelerator: string;
  kernel: string;
  qemu: string;
  hostCpu: string;
  /** os.loadavg() at the start and the end: the machine may be shared. */
  loadAverage: { start: number[]; end: number[] };
}

export interface ToolBenchResults {
  tool: 'mmapkit bench --tool';
  version: 1;
  startedAt: string;
  durationS: number;
  environment: ToolEnvironment;
  settings: { boots: number; requests: number; variants: Variant[] };
  baseline: { work: string; time: Summary };
  figures: ToolFigure[];
  samples: ToolSamples;
}

const S = 1e9;

/** The figures, boot first, then its phases, then the round trips. */
export function toolFigures(samples: ToolSamples): ToolFigure[] {
  const baseline = summarize(samples.baselineNs).median;
  const series: { name: string; title: string; values: (boots: BootSample[]) => number[] }[] = [
    { name: 'boot', title: 'boot to agent ready (host clock)', values: (boots) => boots.map((b) => b.hostBootS * S) },
    ...BOOT_PHASES.map((phase) => ({
      name: phase,
      title: `  ${PHASE_TITLES[phase]}`,
      values: (boots: BootSample[]) => boots.map((b) => b.phases[phase] * S),
    })),
    ...ROUND_TRIPS.map((kind) => ({
      name: kind,
      title: ROUND_TRIP_TITLES[kind],
      values: (boots: BootSample[]) => boots.flatMap((b) => b.roundTrips[kind]),
    })),
  ];
  const names = Object.keys(samples.boots);
  return series.map(({ name, title, values }) => {
    const times = names.map((variant) => ({ name: variant, time: summarize(values(samples.boots[variant] ?? [])) }));
    const a = times[0]!.time.median;
    return {
      name,
      title,
      variants: times.map((variant) => ({ ...variant, ratio: variant.time.median / a })),
      perBaseline: a / baseline,
    };
  });
}

export function baselineOf(samples: ToolSamples): ToolBenchResults['baseline'] {
  return { work: BASELINE_WORK, time: summarize(samples.baselineNs) };
}

const cell = (summary: Summary): string => `${formatNs(summary.median)} ${formatSpread(summary.spread)}`;

export function renderToolReport(results: ToolBenchResults): string {
  const { environment: env, settings, baseline } = results;
  const others = settings.variants.slice(1);
  const order = settings.variants.map((variant) => variant.name).join('');
  const lines = [
    `mmapkit bench --tool: kernel ${env.kernel}, accelerator ${env.accelerator}, ${env.hostCpu}, ` +
      `load average ${env.loadAverage.start[0]?.toFixed(1) ?? '?'} -> ${env.loadAverage.end[0]?.toFixed(1) ?? '?'}`,
    `median of ${settings.boots} boot${settings.boots === 1 ? '' : 's'}${others.length > 0 ? ` per variant, interleaved ${order}${order}...` : ''}, ` +
      `${settings.requests} requests of each kind per boot (${Math.max(1, Math.ceil(settings.requests / 10))} for exec), ±half the interquartile range`,
    `machine baseline: ${cell(baseline.time)} (${baseline.work}); xbaseline = A's median / baseline, to compare machines`,
  ];
  if (others.length > 0) lines.push('A: booted', ...others.map((variant) => `${variant.name}: ${variant.restore === true ? 'restored from the saved guest instead of booted' : `kernel command line + ${variant.kernelArgs.join(' ')}`}`));
  const header = ['figure', others.length > 0 ? 'A' : 'median', 'xbaseline', ...others.flatMap((variant) => [variant.name, `${variant.name}/A`])];
  const rows = results.figures.map((figure) => {
    const [a, ...rest] = figure.variants;
    return [
      figure.title,
      cell(a!.time),
      figure.perBaseline >= 10 ? figure.perBaseline.toFixed(1) : figure.perBaseline.toFixed(3),
      ...rest.flatMap((variant) => [cell(variant.time), variant.ratio.toFixed(3)]),
    ];
  });
  lines.push('', renderGrid([header, ...rows]));
  return `${lines.join('\n')}\n`;
}
