/**
 * A picture of a process's address space from /proc/PID/maps: where the
 * studied mapping landed relative to the program, the heap, the libraries
 * and the stack. ASCII for the terminal, SVG for the HTML report. The
 * address axis is not to scale (the gaps span terabytes): regions are drawn
 * in address order, highest first, with the gap sizes written beside them.
 */
import type { MapsEntry } from '../../guest/procfs.js';

export type RegionKind = 'program' | 'heap' | 'anon' | 'library' | 'file' | 'device' | 'stack' | 'vdso' | 'target';

export interface Region {
  kind: RegionKind;
  label: string;
  start: bigint;
  end: bigint;
  count: number;
  /** Bytes actually mapped (less than end - start when merged VMAs have gaps between them). */
  bytes: bigint;
}

function kindOf(entry: MapsEntry, program: string | undefined, target: bigint): RegionKind {
  if (entry.start === target) return 'target';
  if (entry.path === '[heap]') return 'heap';
  if (entry.path === '[stack]') return 'stack';
  if (/^\[(vdso|vvar|vsyscall)\]$/.test(entry.path)) return 'vdso';
  if (entry.path === '') return 'anon';
  if (entry.path === program) return 'program';
  if (entry.path.startsWith('/dev/')) return 'device';
  if (/\.so(\.|$)/.test(entry.path) || entry.path.endsWith('.node')) return 'library';
  return 'file';
}

const LABELS: Record<RegionKind, string> = {
  program: 'program',
  heap: '[heap]',
  anon: 'anonymous memory',
  library: 'shared libraries',
  file: 'mapped files',
  device: 'other device mappings',
  stack: '[stack]',
  vdso: 'vdso/vvar',
  target: 'the mapping',
};

const MERGE_GAP = 64n << 20n;

/** Adjacent entries of the same kind merged, lowest address first. */
export function regionsOf(entries: MapsEntry[], target: bigint): Region[] {
  const program = entries[0]?.path;
  const regions: Region[] = [];
  for (const entry of [...entries].sort((a, b) => (a.start < b.start ? -1 : 1))) {
    const kind = kindOf(entry, program, target);
    const last = regions[regions.length - 1];
    // Merge neighbours of one kind only across small gaps: the picture must not hide a large one.
    // Scattered anonymous VMAs (the JavaScript heap's reservations) are merged anyway, as "N VMAs over X".
    const close = last !== undefined && (entry.start - last.end <= MERGE_GAP || kind === 'anon');
    if (last !== undefined && close && last.kind === kind && kind !== 'target' && kind !== 'heap' && kind !== 'stack') {
      last.end = entry.end;
      last.count++;
      last.bytes += entry.end - entry.start;
    } else {
      const label = kind === 'target' ? `the mapping: ${entry.path}` : kind === 'program' ? `program ${entry.path}` : LABELS[kind];
      regions.push({ kind, label, start: entry.start, end: entry.end, count: 1, bytes: entry.end - entry.start });
    }
  }
  return regions;
}

export function humanBytes(bytes: bigint): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

const hex = (value: bigint): string => `0x${value.toString(16).padStart(12, '0')}`;

/** Where the mapping is, in words: between which regions. */
export function placement(regions: Region[]): { below?: Region; above?: Region; betweenHeapAndStack: boolean } {
  const index = regions.findIndex((region) => region.kind === 'target');
  const target = regions[index];
  const heap = regions.find((region) => region.kind === 'heap');
  const stack = regions.find((region) => region.kind === 'stack');
  return {
    ...(index > 0 && { below: regions[index - 1] }),
    ...(index >= 0 && index < regions.length - 1 && { above: regions[index + 1] }),
    betweenHeapAndStack: target !== undefined && heap !== undefined && stack !== undefined && heap.end <= target.start && target.end <= stack.start,
  };
}

const spread = (region: Region): string => {
  if (region.count === 1) return '';
  const span = region.end - region.start;
  return span > region.bytes + (64n << 20n) ? ` (${region.count} VMAs spread over ${humanBytes(span)})` : ` (${region.count} VMAs)`;
};

/** The address space as text, highest address first. */
export function asciiPicture(regions: Region[]): string[] {
  const lines: string[] = [];
  const ordered = [...regions].reverse();
  ordered.forEach((region, i) => {
    const mark = region.kind === 'target' ? '>>' : '  ';
    lines.push(`${mark} ${hex(region.start)}-${hex(region.end)} ${humanBytes(region.bytes).padStart(9)}  ${region.label}${spread(region)}${region.kind === 'target' ? '  <<' : ''}`);
    const next = ordered[i + 1];
    if (next !== undefined && next.end < region.start) lines.push(`   ${' '.repeat(27)}${`gap ${humanBytes(region.start - next.end)}`.padStart(12)}`);
  });
  return lines;
}

const COLORS: Record<RegionKind, string> = {
  program: '#8fb3d9',
  heap: '#9bd49b',
  anon: '#d9d9d9',
  library: '#c9b3e6',
  file: '#e6d3a3',
  device: '#f0c0a0',
  stack: '#f2a0a0',
  vdso: '#bbbbbb',
  target: '#ff8c1a',
};

const escapeXml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The address space as an inline SVG, highest address at the top. */
export function svgPicture(regions: Region[]): string {
  const ordered = [...regions].reverse();
  const rowHeight = 26;
  const gapHeight = 14;
  let y = 10;
  const parts: string[] = [];
  ordered.forEach((region, i) => {
    const target = region.kind === 'target';
    parts.push(
      `<rect x="150" y="${y}" width="260" height="${rowHeight}" rx="3" fill="${COLORS[region.kind]}" stroke="${target ? '#b34700' : '#666'}" stroke-width="${target ? 3 : 1}"/>`,
      `<text x="160" y="${y + 17}" font-size="12"${target ? ' font-weight="bold"' : ''}>${escapeXml(region.label.length > 38 ? `${region.label.slice(0, 36)}…` : region.label)}</text>`,
      `<text x="144" y="${y + rowHeight - 2}" font-size="10" text-anchor="end" font-family="monospace">${hex(region.start)}</text>`,
      `<text x="418" y="${y + 17}" font-size="11">${escapeXml(`${humanBytes(region.bytes)}${spread(region)}`)}</text>`,
    );
    if (target) parts.push(`<text x="520" y="${y + 17}" font-size="12" font-weight="bold" fill="#b34700">◀ the mapping under study</text>`);
    y += rowHeight;
    const next = ordered[i + 1];
    if (next !== undefined && next.end < region.start) {
      parts.push(`<text x="280" y="${y + 11}" font-size="10" text-anchor="middle" fill="#777">⋮ gap ${escapeXml(humanBytes(region.start - next.end))}</text>`);
      y += gapHeight;
    }
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="760" height="${y + 10}" role="img" aria-label="address space">${parts.join('')}</svg>`;
}
