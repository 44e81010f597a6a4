/**
 * The explain report, built from evidence recorded in the guest
 * (test/fixtures/trace/explain-*.json: `mmapkit explain --device remap` and
 * `--device fault`). The verdicts must follow the measurements: changing
 * what the driver did in the evidence changes them.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../tools/paths.js';
import { parseMaps } from '../../guest/procfs.js';
import { asciiPicture, placement, regionsOf, svgPicture } from '../../tools/explain/address-space.js';
import { verdictOf } from '../../tools/explain/claims.js';
import { renderHtml } from '../../tools/explain/html.js';
import { type ExplainEvidence, buildReport, renderText } from '../../tools/explain/report.js';

const evidence = (kind: 'remap' | 'fault'): ExplainEvidence =>
  JSON.parse(readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'trace', `explain-${kind}.json`), 'utf8')) as ExplainEvidence;

const verdict = (model: ReturnType<typeof buildReport>, id: string): string => model.claims.find((claim) => claim.id === id)!.verdict;

describe('verdictOf', () => {
  it('combines the device and the file', () => {
    expect(verdictOf(true, true)).toBe('holds');
    expect(verdictOf(true, false)).toBe('holds only for devices');
    expect(verdictOf(null, true)).toBe('holds only for files');
    expect(verdictOf(false, null)).toBe('does not hold');
  });
});

describe('claims from recorded runs', () => {
  it('remap device: no demand paging on the device, remap_pfn_range in its mmap', () => {
    const model = buildReport(evidence('remap'));
    expect(verdict(model, 'demand-paging')).toBe('holds only for files');
    expect(verdict(model, 'remap-pfn-range')).toBe('holds only for devices');
    expect(verdict(model, 'page-multiple')).toBe('does not hold');
    expect(verdict(model, 'page-cache')).toBe('holds only for devices');
    expect(verdict(model, 'file-grows')).toBe('holds only for files');
    expect(verdict(model, 'heap-stack')).toBe('holds');
    expect(verdict(model, 'after-close')).toBe('holds');
    expect(verdict(model, 'shared-pages')).toBe('holds');
    expect(verdict(model, 'no-copy')).toBe('holds');
    expect(verdict(model, 'write-back')).toBe('holds only for files');
    expect(model.claims.length).toBeGreaterThanOrEqual(10);
  });

  it('fault device: demand paging holds, its mmap builds no page tables', () => {
    const model = buildReport(evidence('fault'));
    expect(verdict(model, 'demand-paging')).toBe('holds');
    expect(verdict(model, 'remap-pfn-range')).toBe('does not hold');
  });

  it('a driver that stops faulting changes the demand-paging verdict', () => {
    const changed = evidence('fault');
    const device = changed.measure.targets.find((target) => target.target === changed.device)!;
    // As if ->mmap had populated every PTE: the first touch takes no fault.
    device.driverFaults = 0;
    device.firstTouchFaults = device.secondTouchFaults;
    expect(verdict(buildReport(changed), 'demand-paging')).toBe('holds only for files');
  });

  it('a driver whose mapping dies with the fd changes the after-close verdict', () => {
    const changed = evidence('remap');
    changed.measure.targets.find((target) => target.target === changed.device)!.afterClose = { ok: false, error: 'SIGBUS' };
    expect(verdict(buildReport(changed), 'after-close')).toBe('holds only for files');
  });

  it('a trace without remap_pfn_range under ->mmap changes the remap verdict', () => {
    const changed = evidence('remap');
    // The remap device's measurements with a trace in which ->mmap built no PTE (the fault device's).
    changed.deviceTrace.raw = evidence('fault').deviceTrace.raw;
    expect(verdict(buildReport(changed), 'remap-pfn-range')).toBe('does not hold');
  });
});

describe('the report', () => {
  it('walks the seven steps with the functions seen in the traces', () => {
    const model = buildReport(evidence('remap'));
    expect(model.steps.map((step) => step.title)).toEqual([
      '1. Find a free address range', '2. Create the VMA', "3. Link it into the process's tree", "4. Call the driver's mmap",
      '5. Build page tables', '6. Fault on access', '7. Write back',
    ]);
    const names = (n: number): string[] => model.steps[n]!.functions.map((f) => f.name);
    expect(names(0)).toContain('get_unmapped_area');
    expect(names(2)).toContain('vma_mas_store');
    expect(names(3)).toContain('mmapkit_mmap_remap');
    expect(names(4)).toContain('remap_pfn_range');
    const text = renderText(model);
    expect(text).toMatch(/VM_PFNMAP/);
    expect(text).toMatch(/not present, PFN hidden/);
    expect(text).toMatch(/Claims checked/);
  });

  it('is one self-contained HTML file with the picture, the walk and the claims', () => {
    const html = renderHtml(buildReport(evidence('fault')));
    expect(html).toMatch(/^<!DOCTYPE html>/);
    for (const id of ['space', 'walk', 'claims']) expect(html).toContain(`id="${id}"`);
    expect(html).toContain('<svg');
    expect(html).toContain('mmapkit_vma_fault');
    expect(html).not.toMatch(/<script|<link|\ssrc=|@import|url\(/i);
    expect(html.replace('http://www.w3.org/2000/svg', '')).not.toMatch(/https?:\/\//);
  });
});

describe('the address-space picture', () => {
  it('places the mapping between the heap and the stack', () => {
    const { measure, device } = evidence('remap');
    const target = measure.targets.find((each) => each.target === device)!;
    const regions = regionsOf(parseMaps(target.maps), BigInt(target.mapping.address));
    expect(regions.filter((region) => region.kind === 'target')).toHaveLength(1);
    expect(placement(regions).betweenHeapAndStack).toBe(true);
    const ascii = asciiPicture(regions).join('\n');
    expect(ascii).toMatch(/>> .*the mapping: \/dev\/mmapkit-remap/);
    expect(ascii).toMatch(/\[heap\]/);
    expect(ascii).toMatch(/\[stack\]/);
    expect(svgPicture(regions)).toMatch(/^<svg [^>]*>.*the mapping under study.*<\/svg>$/s);
  });
});
