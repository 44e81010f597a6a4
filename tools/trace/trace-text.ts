/** The terminal output of `mmapkit trace`: the trimmed call trees of one recorded scenario. */
import type { TraceScenarioResult } from '../../guest/scenario-types.js';
import { type GraphNode, parseFunctionGraph } from './graph.js';
import { type FaultGraph, type TraceAnalysis, analyseTrace, formatUs, lockStory, renderTree, trimTree } from './tree.js';

const SYSCALL_TITLES: Record<string, string> = {
  __x64_sys_mmap: 'mmap() system call',
  __x64_sys_munmap: 'munmap() system call',
  __x64_sys_mremap: 'mremap() system call',
  __x64_sys_clone: 'fork() (the clone system call) in the parent',
  __x64_sys_exit_group: "the child's exit (exit_group)",
};

export interface DescribeOptions {
  rawPath?: string;
}

const indent = (lines: string[]): string[] => lines.map((line) => `  ${line}`);

export function describeRecording(raw: string, result: TraceScenarioResult, options: DescribeOptions = {}): { lines: string[]; analysis: TraceAnalysis } {
  const analysis = analyseTrace(parseFunctionGraph(raw));
  const lines: string[] = [];
  const range = analysis.ranges[0];
  lines.push(
    `trace: ${result.target} (${result.targetKind}), scenario ${result.scenario}, pid ${result.pid}` +
      (range !== undefined ? `, mapping 0x${range.start.toString(16)}-0x${(range.start + BigInt(range.length)).toString(16)} (${range.length / result.pageSize} pages)` : ''),
  );
  if (!result.ok) lines.push(`the scenario's call failed with ${result.error ?? '?'}: the trace shows where it was refused`);
  for (const { node, task } of analysis.syscalls) {
    const trimmed = trimTree(node);
    if (trimmed === undefined) continue;
    const who = analysis.tasks.length > 1 ? ` [${task}]` : '';
    lines.push('', `${SYSCALL_TITLES[node.name] ?? node.name}${who}, ${formatUs(node.durationUs)}:`, ...indent(renderTree(trimmed)));
  }
  const onMapping = analysis.faults.filter((fault) => fault.inMapping);
  const others = analysis.faults.length - onMapping.length;
  const touched = result.scenario === 'touch' || result.scenario === 'private-write';
  lines.push('');
  if (onMapping.length > 0) {
    const drivers = new Set(onMapping.flatMap((fault) => [...collectModuleCalls(fault.node)]));
    lines.push(
      `page faults on the mapping: ${onMapping.length}` +
        (drivers.size > 0 ? `, each through ${[...drivers].join(', ')}` : '') +
        `; the first (address 0x${onMapping[0]!.address!.toString(16)}), ${formatUs(onMapping[0]!.node.durationUs)}:`,
    );
    const first = trimTree(onMapping[0]!.node);
    if (first !== undefined) lines.push(...indent(renderTree(first)));
    const locks = lockSummary(onMapping);
    if (locks !== undefined) lines.push(`locking of the faults on the mapping: ${locks}`);
  } else if (touched && result.ok) {
    lines.push(
      `page faults on the mapping: none: touching all ${result.pages} pages entered no fault handler` +
        (result.targetKind === 'remap' || result.targetKind === 'ro' ? ' (remap_pfn_range built every PTE inside mmap())' : ''),
    );
  } else if (result.scenario === 'map') {
    lines.push('page faults on the mapping: none (this scenario maps without touching; try --scenario touch)');
  }
  if (others > 0) lines.push(`other page faults of the process while tracing: ${others} (its own memory, not the mapping; see the raw trace)`);
  if (result.touchFaults !== undefined) {
    lines.push(
      `minor faults (getrusage) over the touch: ${result.touchFaults}` +
        (result.driverFaults !== undefined ? `; the driver's faults_served counter: +${result.driverFaults}` : ''),
    );
  }
  for (const note of result.notes) lines.push(note);
  if (options.rawPath !== undefined) lines.push(`raw trace: ${options.rawPath} (${raw.split('\n').length} lines)`);
  return { lines, analysis };
}

/** The driver functions the kernel called directly (its hooks), not what they call in turn. */
function collectModuleCalls(node: GraphNode, found = new Set<string>()): Set<string> {
  if (node.module !== undefined) {
    found.add(node.name);
    return found;
  }
  for (const child of node.children) collectModuleCalls(child, found);
  return found;
}

/** "4 × tried under the per-VMA lock ..., handled under mmap_lock": the faults grouped by how they locked. */
export function lockSummary(faults: FaultGraph[]): string | undefined {
  if (faults.every((fault) => fault.locks.length === 0)) return undefined;
  const counts = new Map<string, number>();
  for (const fault of faults) counts.set(lockStory(fault), (counts.get(lockStory(fault)) ?? 0) + 1);
  return [...counts].map(([story, count]) => `${count} × ${story}`).join('; ');
}
