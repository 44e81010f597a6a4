/**
 * Hand-written SVG plots, no plotting library: line charts on log axes and
 * grouped bar charts. Elements carry data-* attributes (series, scale) so
 * tests, and anyone reading the file, can tell what is drawn.
 */

export interface Point {
  x: number;
  y: number;
}

export interface Series {
  name: string;
  points: Point[];
}

export interface LineChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Tick labels. */
  formatX: (x: number) => string;
  formatY: (y: number) => string;
  /** Lines under the title (what the figures are, the environment). */
  notes?: string[];
}

export interface BarGroup {
  label: string;
  bars: { name: string; value: number }[];
  /** The limit the bars are judged against, drawn as a dashed line across the group. */
  reference?: number;
}

export interface BarChart {
  title: string;
  yLabel: string;
  groups: BarGroup[];
  referenceName: string;
  formatY: (y: number) => string;
  notes?: string[];
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

const WIDTH = 900;
const HEIGHT = 540;
const MARGIN = { left: 90, right: 190, top: 70, bottom: 70 };
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const round = (value: number): string => (Math.round(value * 10) / 10).toString();

function text(x: number, y: number, content: string, attributes = ''): string {
  return `<text x="${round(x)}" y="${round(y)}"${attributes === '' ? '' : ` ${attributes}`}>${escapeXml(content)}</text>`;
}

function frame(title: string, notes: string[] | undefined, body: string[]): string {
  const header = [
    text(WIDTH / 2, 26, title, 'text-anchor="middle" font-size="17" font-weight="bold"'),
    ...(notes ?? []).map((note, i) => text(WIDTH / 2, 44 + i * 14, note, 'text-anchor="middle" font-size="11" fill="#555"')),
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    ...header,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Powers of ten from below `min` to above `max`. */
export function decadeTicks(min: number, max: number): number[] {
  const low = Math.floor(Math.log10(min));
  const high = Math.ceil(Math.log10(max));
  const ticks: number[] = [];
  for (let exponent = low; exponent <= Math.max(high, low + 1); exponent++) ticks.push(10 ** exponent);
  return ticks;
}

function legend(names: string[], dashedName?: string): string[] {
  const x = WIDTH - MARGIN.right + 20;
  const parts = names.flatMap((name, i) => {
    const y = MARGIN.top + 10 + i * 20;
    return [
      `<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="3"/>`,
      text(x + 30, y + 4, name),
    ];
  });
  if (dashedName !== undefined) {
    const y = MARGIN.top + 10 + names.length * 20;
    parts.push(`<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="black" stroke-width="2" stroke-dasharray="5,3"/>`);
    parts.push(text(x + 30, y + 4, dashedName));
  }
  return [`<g class="legend">`, ...parts, '</g>'];
}

/** The y axis, its gridlines, ticks and rotated label, then the plot's border: the same on every chart. */
function yAxisAndBorder(
  scale: 'log' | 'linear',
  ticks: readonly number[],
  py: (y: number) => number,
  formatY: (y: number) => string,
  label: string,
): string[] {
  const yMid = MARGIN.top + PLOT_H / 2;
  return [
    `<g class="axis" data-axis="y" data-scale="${scale}">`,
    ...ticks.flatMap((y) => [
      `<line x1="${MARGIN.left}" y1="${round(py(y))}" x2="${MARGIN.left + PLOT_W}" y2="${round(py(y))}" stroke="#ddd"/>`,
      text(MARGIN.left - 8, py(y) + 4, formatY(y), 'text-anchor="end" class="tick"'),
    ]),
    text(22, yMid, label, `text-anchor="middle" transform="rotate(-90 22 ${round(yMid)})"`),
    '</g>',
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${PLOT_W}" height="${PLOT_H}" fill="none" stroke="#333"/>`,
  ];
}

/** Both axes logarithmic: x in powers of the data's own x values, y in decades. */
export function lineChartSvg(chart: LineChart): string {
  const points = chart.series.flatMap((series) => series.points).filter((p) => p.x > 0 && p.y > 0);
  if (points.length === 0) return frame(chart.title, [...(chart.notes ?? []), 'no data'], []);
  const xs = [...new Set(points.map((p) => p.x))].sort((a, b) => a - b);
  const yTicks = decadeTicks(Math.min(...points.map((p) => p.y)), Math.max(...points.map((p) => p.y)));
  const [xMin, xMax] = [Math.log(xs[0]!), Math.log(xs[xs.length - 1]!)];
  const [yMin, yMax] = [Math.log(yTicks[0]!), Math.log(yTicks[yTicks.length - 1]!)];
  const px = (x: number): number =>
    MARGIN.left + (xMax === xMin ? PLOT_W / 2 : ((Math.log(x) - xMin) / (xMax - xMin)) * PLOT_W);
  const py = (y: number): number => MARGIN.top + PLOT_H - ((Math.log(y) - yMin) / (yMax - yMin)) * PLOT_H;

  const body: string[] = [];
  body.push(`<g class="axis" data-axis="x" data-scale="log">`);
  for (const x of xs) {
    body.push(`<line x1="${round(px(x))}" y1="${MARGIN.top}" x2="${round(px(x))}" y2="${MARGIN.top + PLOT_H}" stroke="#ddd"/>`);
    body.push(text(px(x), MARGIN.top + PLOT_H + 18, chart.formatX(x), 'text-anchor="middle" class="tick"'));
  }
  body.push(text(MARGIN.left + PLOT_W / 2, HEIGHT - 22, chart.xLabel, 'text-anchor="middle"'), '</g>');
  body.push(...yAxisAndBorder('log', yTicks, py, chart.formatY, chart.yLabel));

  chart.series.forEach((series, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const valid = series.points.filter((p) => p.x > 0 && p.y > 0).sort((a, b) => a.x - b.x);
    const coords = valid.map((p) => `${round(px(p.x))},${round(py(p.y))}`).join(' ');
    body.push(`<g class="series" data-series="${escapeXml(series.name)}">`);
    body.push(`<polyline points="${coords}" fill="none" stroke="${color}" stroke-width="2.5"/>`);
    for (const p of valid) {
      body.push(
        `<circle cx="${round(px(p.x))}" cy="${round(py(p.y))}" r="3.5" fill="${color}"><title>${escapeXml(
          `${series.name} ${chart.formatX(p.x)}: ${chart.formatY(p.y)}`,
        )}</title></circle>`,
      );
    }
    body.push('</g>');
  });
  body.push(...legend(chart.series.map((s) => s.name)));
  return frame(chart.title, chart.notes, body);
}

/** Bars per group on a linear axis from 0, with each group's reference as a dashed line. */
export function barChartSvg(chart: BarChart): string {
  const values = chart.groups.flatMap((g) => [...g.bars.map((b) => b.value), g.reference ?? 0]);
  const top = Math.max(...values, 0);
  if (chart.groups.length === 0 || top <= 0) return frame(chart.title, [...(chart.notes ?? []), 'no data'], []);
  const step = niceStep(top / 5);
  const yMax = Math.ceil((top * 1.05) / step) * step;
  const py = (y: number): number => MARGIN.top + PLOT_H - (y / yMax) * PLOT_H;
  const names = [...new Set(chart.groups.flatMap((g) => g.bars.map((b) => b.name)))];
  const groupW = PLOT_W / chart.groups.length;
  const barW = (groupW * 0.8) / names.length;

  const yTicks: number[] = [];
  for (let y = 0; y <= yMax + step / 2; y += step) yTicks.push(y);
  const body = yAxisAndBorder('linear', yTicks, py, chart.formatY, chart.yLabel);
  chart.groups.forEach((group, g) => {
    const x0 = MARGIN.left + g * groupW + groupW * 0.1;
    body.push(`<g class="group" data-group="${escapeXml(group.label)}">`);
    for (const bar of group.bars) {
      const i = names.indexOf(bar.name);
      const x = x0 + i * barW;
      const y = py(bar.value);
      body.push(
        `<rect class="bar" data-series="${escapeXml(bar.name)}" x="${round(x)}" y="${round(y)}" width="${round(barW * 0.9)}" height="${round(
          MARGIN.top + PLOT_H - y,
        )}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(`${bar.name} ${group.label}: ${chart.formatY(bar.value)}`)}</title></rect>`,
      );
    }
    if (group.reference !== undefined) {
      const y = round(py(group.reference));
      body.push(
        `<line class="reference" x1="${round(x0 - groupW * 0.05)}" y1="${y}" x2="${round(x0 + groupW * 0.85)}" y2="${y}" stroke="black" stroke-width="2" stroke-dasharray="5,3"/>`,
      );
    }
    body.push(text(x0 + groupW * 0.4, MARGIN.top + PLOT_H + 18, group.label, 'text-anchor="middle" class="tick"'), '</g>');
  });
  body.push(...legend(names, chart.referenceName));
  return frame(chart.title, chart.notes, body);
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
export function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const factor of [1, 2, 5, 10]) if (factor * power >= raw) return factor * power;
  return 10 * power;
}
