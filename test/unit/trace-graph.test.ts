/**
 * The function_graph parser and the tree trimming, on traces recorded in the
 * mmapkit guest (Debian 6.1, TCG) by `mmapkit trace` and saved under
 * test/fixtures/trace/.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../tools/paths.js';
import { findCall, namesIn, parseFunctionGraph } from '../../tools/trace/graph.js';
import { describeRecording } from '../../tools/trace/trace-text.js';
import { analyseTrace, callPath, renderTree, trimTree } from '../../tools/trace/tree.js';
import type { TraceScenarioResult } from '../../guest/scenario-types.js';

const fixture = (name: string): string => readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'trace', name), 'utf8');
const result = (name: string): TraceScenarioResult => JSON.parse(fixture(`${name}.json`)) as TraceScenarioResult;

describe('parseFunctionGraph', () => {
  it('builds the mmap call tree of the remap device down to remap_pfn_range_internal', () => {
    const parsed = parseFunctionGraph(fixture('map-mmapkit-remap.trace'));
    const mmap = parsed.items.find((item) => item.type === 'call' && item.node.name === '__x64_sys_mmap');
    expect(mmap?.type).toBe('call');
    if (mmap?.type !== 'call') return;
    expect(callPath(mmap.node, 'remap_pfn_range_internal')).toEqual([
      '__x64_sys_mmap', 'ksys_mmap_pgoff', 'vm_mmap_pgoff', 'do_mmap', 'mmap_region', 'mmap_file',
      'mmapkit_mmap_remap', 'mmapkit_remap_vma', 'remap_pfn_range', 'remap_pfn_range_internal',
    ]);
    const driver = findCall(mmap.node, 'mmapkit_mmap_remap')!.node;
    expect(driver.module).toBe('mmapkit');
    expect(driver.durationUs).toBeGreaterThan(0);
    expect(mmap.node.durationUs).toBeGreaterThan(driver.durationUs!);
    expect(parsed.tasks).toHaveLength(1);
  });

  it('keeps markers and fault events as top-level comments', () => {
    const parsed = parseFunctionGraph(fixture('touch-mmapkit-fault.trace'));
    const comments = parsed.items.flatMap((item) => (item.type === 'comment' ? [item.text] : []));
    expect(comments.some((text) => text.startsWith('mmapkit: mapped 0x'))).toBe(true);
    expect(comments.some((text) => text.startsWith('page_fault_user: address=0x'))).toBe(true);
  });

  it('keeps one stack per task, so a traced fork parses into both processes', () => {
    const parsed = parseFunctionGraph(fixture('fork-mmapkit-remap.trace'));
    expect(parsed.tasks).toHaveLength(2);
    const roots = parsed.items.flatMap((item) => (item.type === 'call' ? [item] : []));
    const clone = roots.find((item) => item.node.name === '__x64_sys_clone')!;
    const exit = roots.find((item) => item.node.name === '__x64_sys_exit_group')!;
    expect(clone.task).not.toBe(exit.task);
    expect(namesIn(clone.node).has('mmapkit_vma_open')).toBe(true);
    expect(namesIn(exit.node).has('mmapkit_vma_close')).toBe(true);
  });

  it('parses lines with and without the task column, and ignores orphan closes', () => {
    const text = [
      '# tracer: function_graph',
      ' 0) ! 349.151 us  |  is_vmalloc_addr();',
      ' 0)   3.000 us    |  }',
      ' 0)               |  handle_mm_fault() {',
      ' 0)               |    __handle_mm_fault() {',
      ' 0)   1.500 us    |      mmapkit_vma_fault [mmapkit]();',
      ' 0)   5.000 us    |    }',
      ' 0) # 1234.5 us   |  } /* handle_mm_fault */',
      ' ------------------------------------------',
      ' 1)  node-12  =>  node-13 ',
    ].join('\n');
    const parsed = parseFunctionGraph(text);
    const calls = parsed.items.flatMap((item) => (item.type === 'call' ? [item.node] : []));
    expect(calls.map((node) => node.name)).toEqual(['is_vmalloc_addr', 'handle_mm_fault']);
    expect(calls[1]!.durationUs).toBe(1234.5);
    expect(findCall(calls[1]!, 'mmapkit_vma_fault')?.node.module).toBe('mmapkit');
    expect(parsed.skipped).toBe(0);
  });
});

describe('analyseTrace', () => {
  it('sorts the faults of the fault device into those on the mapping (through ->fault) and the process own', () => {
    const analysis = analyseTrace(parseFunctionGraph(fixture('touch-mmapkit-fault.trace')));
    const onMapping = analysis.faults.filter((fault) => fault.inMapping);
    expect(onMapping).toHaveLength(4);
    for (const fault of onMapping) {
      expect(callPath(fault.node, 'mmapkit_vma_fault')).toEqual(['handle_mm_fault', '__handle_mm_fault', 'do_fault', '__do_fault', 'mmapkit_vma_fault']);
      expect(namesIn(fault.node).has('vmf_insert_pfn')).toBe(true);
    }
    expect(analysis.faults.length).toBeGreaterThan(onMapping.length);
  });

  it('finds no fault on a touched remap mapping', () => {
    const analysis = analyseTrace(parseFunctionGraph(fixture('touch-mmapkit-remap.trace')));
    expect(analysis.ranges).toHaveLength(1);
    expect(analysis.faults.filter((fault) => fault.inMapping)).toHaveLength(0);
  });
});

describe('trimTree and renderTree', () => {
  it('drops functions off the mmap path and merges runs of leaves', () => {
    const analysis = analyseTrace(parseFunctionGraph(fixture('map-mmapkit-remap.trace')));
    const trimmed = trimTree(analysis.syscalls[0]!.node)!;
    const names = namesIn(trimmed);
    expect(names.has('security_mmap_file')).toBe(false);
    expect(names.has('mmapkit_mmap_remap')).toBe(true);
    const lines = renderTree(trimmed);
    expect(lines[0]).toMatch(/^__x64_sys_mmap {2}\d/);
    expect(lines.join('\n')).toMatch(/└─ mmapkit_mmap_remap \[mmapkit\] .*← the driver's ->mmap/);
    const file = analyseTrace(parseFunctionGraph(fixture('touch-mmapkit-file.trace')));
    const fault = trimTree(file.faults.find((each) => each.inMapping)!.node)!;
    expect(renderTree(fault).join('\n')).toMatch(/do_set_pte ×\d+/);
  });

  it('describes a remap touch as faultless and a fault touch through the driver', () => {
    const remap = describeRecording(fixture('touch-mmapkit-remap.trace'), result('touch-mmapkit-remap')).lines.join('\n');
    expect(remap).toMatch(/page faults on the mapping: none/);
    expect(remap).toMatch(/remap_pfn_range {2}/);
    const fault = describeRecording(fixture('touch-mmapkit-fault.trace'), result('touch-mmapkit-fault')).lines.join('\n');
    expect(fault).toMatch(/page faults on the mapping: 4, each through mmapkit_vma_fault;/);
    expect(fault).toMatch(/insert_pfn/);
  });
});
