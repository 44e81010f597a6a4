/**
 * The kernel comparison of `mmapkit explain --kernels`: what differs between
 * the guest kernels' mmap and fault paths, computed from the traces and
 * measurements each kernel's explain run took in the same command. Nothing
 * here is a fixed answer about 6.1 or 6.12: every sentence is derived from
 * the recorded evidence, so a kernel that changes shows up as a change.
 */
import { vmFlagLetters } from '../../guest/procfs.js';
import { type GraphNode, namesIn, parseFunctionGraph } from '../trace/graph.js';
import { type ForkAfterCow, describeFork } from './fork-probe.js';
import type { ExplainEvidence, RecordedTrace } from './report.js';
import { type FaultGraph, type TraceAnalysis, analyseTrace, formatUs, lockStory } from '../trace/tree.js';

/** One kernel's explain run, as the comparison needs it. */
export interface KernelRun {
  /** The release, as uname -r says. */
  kernel: string;
  evidence: ExplainEvidence;
  /** The touch scenario on the fault device, when the device under study is another one. */
  faultTrace?: RecordedTrace;
  forkAfterCow?: ForkAfterCow;
  /** QEMU start to guest agent ready, ms. */
  bootMs?: number;
  /** Where this kernel's report.html was written. */
  report?: string;
}

/** The comparison's input per kernel: labelled raw traces and VmFlags, nothing else (unit tests build these from trace excerpts). */
export interface KernelSide {
  kernel: string;
  /** Raw function_graph traces of the touch scenario, by what was mapped ("remap device", "tmpfs file"). */
  traces: { label: string; raw: string; path?: string }[];
  /** smaps VmFlags by what was mapped. */
  vmFlags: { label: string; flags: string }[];
  forkAfterCow?: ForkAfterCow;
  bootMs?: number;
}

export interface FunctionDiff {
  /** "mmap() of the remap device", "faults on the fault device". */
  path: string;
  /** Functions every kernel called on this path. */
  common: string[];
  /** Functions only this kernel called on it. */
  only: { kernel: string; names: string[] }[];
}

export interface LockRow {
  /** What was faulted on ("fault device"). */
  label: string;
  perKernel: {
    kernel: string;
    /** Faults on the mapping in the trace. */
    faults: number;
    /** The faults grouped by how they locked: "4 × handled under mmap_lock (lock_mm_and_find_vma)". */
    summary: string;
    /** The lock functions seen, in first-seen order. */
    lockFunctions: string[];
    /** How many faults ran handle_mm_fault twice (an attempt under the per-VMA lock, then the retry). */
    retried: number;
  }[];
}

export interface FlagsRow {
  label: string;
  perKernel: { kernel: string; flags: string }[];
  same: boolean;
  /** Letters only some kernels set, per kernel. */
  only: { kernel: string; letters: string[] }[];
}

export interface TimingRow {
  what: string;
  perKernel: { kernel: string; us?: number }[];
}

export interface KernelComparison {
  kernels: string[];
  /** The findings in one sentence each, computed from the rows below. */
  summary: string[];
  functions: FunctionDiff[];
  locks: LockRow[];
  flags: FlagsRow[];
  fork: { kernel: string; laterPage: string; firstPage: string; firstPageError?: string }[];
  timings: TimingRow[];
  /** The raw traces compared, per kernel. */
  sources: { kernel: string; paths: string[] }[];
}

/** The labels of a kernel run's traces and mappings, the same on every kernel so that they pair up. */
const labelOf = (kind: string): string => (kind === 'file' ? 'tmpfs file' : `${kind} device`);

export function sideOf(run: KernelRun): KernelSide {
  const { evidence } = run;
  const traces: KernelSide['traces'] = [
    { label: labelOf(evidence.deviceTrace.result.targetKind), raw: evidence.deviceTrace.raw, ...(evidence.deviceTrace.path !== undefined && { path: evidence.deviceTrace.path }) },
  ];
  if (run.faultTrace !== undefined) {
    traces.push({ label: labelOf(run.faultTrace.result.targetKind), raw: run.faultTrace.raw, ...(run.faultTrace.path !== undefined && { path: run.faultTrace.path }) });
  }
  traces.push({ label: labelOf(evidence.fileTrace.result.targetKind), raw: evidence.fileTrace.raw, ...(evidence.fileTrace.path !== undefined && { path: evidence.fileTrace.path }) });
  return {
    kernel: run.kernel,
    traces,
    vmFlags: evidence.measure.targets.map((target) => ({ label: labelOf(target.targetKind), flags: target.mapping.vmFlags ?? '' })),
    ...(run.forkAfterCow !== undefined && { forkAfterCow: run.forkAfterCow }),
    ...(run.bootMs !== undefined && { bootMs: run.bootMs }),
  };
}

/**
 * A function's name without the compiler's clone suffixes (".isra.0",
 * ".constprop.0", ".part.0"): the same function, partly inlined differently by
 * two compilers, must not count as a difference.
 */
export const baseName = (name: string): string => name.replace(/(\.(isra|constprop|part|cold|llvm)(\.\d+)?)+$/, '');

/**
 * Functions that are traced only because a filter glob catches their name
 * (`*fault*` matches default_send_IPI_*) and that run when the task happens
 * to wake another CPU: timing, not the kernel version, decides whether they
 * show, so they are left out of the comparison.
 */
export const isNoise = (name: string): boolean => /send_IPI/.test(name);

const names = (nodes: GraphNode[]): Set<string> =>
  new Set(nodes.flatMap((node) => [...namesIn(node)].map(baseName).filter((name) => !isNoise(name))));

/** The graphs of a fault: the attempt under the per-VMA lock (if any) and the handling. */
const faultNodes = (fault: FaultGraph): GraphNode[] => (fault.vmaLockAttempt !== undefined ? [fault.vmaLockAttempt, fault.node] : [fault.node]);

function diff(path: string, sets: { kernel: string; names: Set<string> }[]): FunctionDiff {
  const common = [...(sets[0]?.names ?? [])].filter((name) => sets.every((set) => set.names.has(name))).sort();
  const only = sets.map(({ kernel, names: own }) => ({
    kernel,
    names: [...own].filter((name) => sets.every((set) => set.kernel === kernel || !set.names.has(name))).sort(),
  }));
  return { path, common, only };
}

const median = (values: number[]): number | undefined => {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

const mmapCall = (analysis: TraceAnalysis): GraphNode | undefined => analysis.syscalls.find((call) => call.node.name === '__x64_sys_mmap')?.node;
const onMapping = (analysis: TraceAnalysis): FaultGraph[] => analysis.faults.filter((fault) => fault.inMapping);

/** What differs between the kernels, from each one's traces and measurements. */
export function compareKernels(sides: KernelSide[]): KernelComparison {
  const kernels = sides.map((side) => side.kernel);
  const analyses = sides.map((side) => ({
    kernel: side.kernel,
    traces: new Map(side.traces.map((trace) => [trace.label, analyseTrace(parseFunctionGraph(trace.raw))])),
  }));
  // Only what every kernel traced can be compared.
  const labels = (sides[0]?.traces ?? []).map((trace) => trace.label).filter((label) => analyses.every((a) => a.traces.has(label)));

  const functions: FunctionDiff[] = [];
  const locks: LockRow[] = [];
  const timings: TimingRow[] = [];
  for (const label of labels) {
    const mmaps = analyses.map(({ kernel, traces }) => ({ kernel, node: mmapCall(traces.get(label)!) }));
    if (mmaps.every((each) => each.node !== undefined)) {
      functions.push(diff(`mmap() of the ${label}`, mmaps.map(({ kernel, node }) => ({ kernel, names: names([node!]) }))));
      timings.push({ what: `mmap() of the ${label}`, perKernel: mmaps.map(({ kernel, node }) => ({ kernel, ...(node!.durationUs !== undefined && { us: node!.durationUs }) })) });
    }
    const faults = analyses.map(({ kernel, traces }) => ({ kernel, faults: onMapping(traces.get(label)!) }));
    if (faults.every((each) => each.faults.length === 0)) continue;
    functions.push(
      diff(
        `faults on the ${label}`,
        faults.map(({ kernel, faults: list }) => {
          const set = names(list.flatMap(faultNodes));
          for (const fault of list) for (const lock of fault.locks) set.add(lock);
          return { kernel, names: set };
        }),
      ),
    );
    locks.push({
      label,
      perKernel: faults.map(({ kernel, faults: list }) => {
        const counts = new Map<string, number>();
        for (const fault of list) counts.set(lockStory(fault), (counts.get(lockStory(fault)) ?? 0) + 1);
        return {
          kernel,
          faults: list.length,
          summary: list.length === 0 ? 'no fault on the mapping' : [...counts].map(([story, count]) => `${count} × ${story}`).join('; '),
          lockFunctions: [...new Set(list.flatMap((fault) => fault.locks))],
          retried: list.filter((fault) => fault.vmaLockAttempt !== undefined).length,
        };
      }),
    });
    timings.push({
      what: `one fault on the ${label} (median, handle_mm_fault graphs of the fault, attempt included)`,
      perKernel: faults.map(({ kernel, faults: list }) => {
        const us = median(list.map((fault) => faultNodes(fault).reduce((sum, node) => sum + (node.durationUs ?? 0), 0)));
        return { kernel, ...(us !== undefined && { us }) };
      }),
    });
  }
  timings.push({ what: 'boot to guest agent', perKernel: sides.map((side) => ({ kernel: side.kernel, ...(side.bootMs !== undefined && { us: side.bootMs * 1000 }) })) });

  const flagLabels = [...new Set(sides.flatMap((side) => side.vmFlags.map((entry) => entry.label)))].filter((label) =>
    sides.every((side) => side.vmFlags.some((entry) => entry.label === label)),
  );
  const flags: FlagsRow[] = flagLabels.map((label) => {
    const perKernel = sides.map((side) => ({ kernel: side.kernel, flags: side.vmFlags.find((entry) => entry.label === label)!.flags.trim() }));
    const sets = perKernel.map(({ kernel, flags: text }) => ({ kernel, letters: new Set(vmFlagLetters(text)) }));
    const only = sets.map(({ kernel, letters }) => ({
      kernel,
      letters: [...letters].filter((letter) => sets.some((other) => other.kernel !== kernel && !other.letters.has(letter))),
    }));
    return { label, perKernel, same: only.every((entry) => entry.letters.length === 0), only };
  });

  const fork = sides.flatMap((side) =>
    side.forkAfterCow === undefined
      ? []
      : [{
          kernel: side.kernel,
          laterPage: describeFork(side.forkAfterCow.laterPage),
          firstPage: describeFork(side.forkAfterCow.firstPage),
          ...(side.forkAfterCow.firstPage.error !== undefined && { firstPageError: side.forkAfterCow.firstPage.error }),
        }],
  );

  return {
    kernels,
    summary: summarise(kernels, functions, locks, flags, fork),
    functions,
    locks,
    flags,
    fork,
    timings,
    sources: sides.map((side) => ({ kernel: side.kernel, paths: side.traces.flatMap((trace) => (trace.path !== undefined ? [trace.path] : [])) })),
  };
}

const list = (items: string[]): string => (items.length === 0 ? 'none' : items.join(', '));

function summarise(kernels: string[], functions: FunctionDiff[], locks: LockRow[], flags: FlagsRow[], fork: KernelComparison['fork']): string[] {
  const out: string[] = [];
  for (const row of locks) {
    const stories = new Set(row.perKernel.map((entry) => entry.summary.replace(/^\d+ × /, '')));
    const each = row.perKernel.map((entry) => `${entry.kernel}: ${entry.summary}`).join('; ');
    out.push(stories.size > 1 ? `Faults on the ${row.label} lock differently. ${each}.` : `Faults on the ${row.label} lock the same way on every kernel. ${each}.`);
  }
  for (const row of functions) {
    const only = row.only.filter((entry) => entry.names.length > 0);
    out.push(
      only.length === 0
        ? `${row.path}: the same ${row.common.length} traced functions on every kernel.`
        : `${row.path}: ${row.common.length} traced functions in common; ${row.only.map((entry) => `only on ${entry.kernel}: ${entry.names.length}`).join(', ')}.`,
    );
  }
  const differing = flags.filter((row) => !row.same);
  if (flags.length > 0) {
    out.push(
      differing.length === 0
        ? `VmFlags are identical on every kernel (${flags.map((row) => `${row.label}: ${row.perKernel[0]!.flags}`).join('; ')}).`
        : `VmFlags differ: ${differing.map((row) => `${row.label}: ${row.only.map((entry) => `only on ${entry.kernel}: ${list(entry.letters)}`).join(', ')}`).join('; ')}.`,
    );
  }
  if (fork.length > 0) {
    const outcomes = new Set(fork.map((entry) => entry.firstPage));
    out.push(
      `Fork after a copy-on-write of the first page of a MAP_PRIVATE remap mapping: ${fork.map((entry) => `${entry.kernel}: ${entry.firstPage}`).join('; ')}` +
        (outcomes.size === 1 ? ' (the same on every kernel)' : '') +
        `; after a write to a later page: ${fork.map((entry) => `${entry.kernel}: ${entry.laterPage}`).join('; ')}.`,
    );
  }
  if (kernels.length < 2) out.push('Only one kernel ran: nothing to compare against.');
  return out;
}

const wrap = (prefix: string, items: string[], width = 100): string[] => {
  const lines: string[] = [];
  let line = prefix;
  for (const item of items) {
    if (line.length + item.length + 2 > width && line !== prefix) {
      lines.push(line.trimEnd());
      line = ' '.repeat(prefix.length);
    }
    line += `${item}, `;
  }
  lines.push(items.length === 0 ? `${prefix}none` : line.replace(/, $/, ''));
  return lines;
};

const formatTiming = (us: number | undefined): string => (us === undefined ? 'n/a' : formatUs(us));

export const COMPARISON_TITLE = 'Kernel comparison';

export function renderComparisonText(model: KernelComparison): string {
  const out: string[] = [`${COMPARISON_TITLE}: ${model.kernels.join(' vs ')} (computed from this run's traces)`, ''];
  for (const line of model.summary) out.push(`* ${line}`);
  out.push('', 'Fault locking (lock functions traced as graph roots before handle_mm_fault):');
  for (const row of model.locks) {
    out.push(`  ${row.label}:`);
    for (const entry of row.perKernel) out.push(`    ${entry.kernel}: ${entry.faults} fault(s); lock functions ${list(entry.lockFunctions)}; retried ${entry.retried}; ${entry.summary}`);
  }
  out.push('', 'Functions on one kernel\'s path and not the other\'s:');
  for (const row of model.functions) {
    out.push(`  ${row.path} (${row.common.length} in common):`);
    for (const entry of row.only) out.push(...wrap(`    only on ${entry.kernel}: `, entry.names));
  }
  out.push('', 'VmFlags (smaps):');
  for (const row of model.flags) {
    out.push(`  ${row.label}: ${row.perKernel.map((entry) => `${entry.kernel} [${entry.flags}]`).join(', ')} → ${row.same ? 'identical' : 'different'}`);
  }
  if (model.fork.length > 0) {
    out.push('', 'Fork after copy-on-write on a MAP_PRIVATE remap mapping:');
    for (const entry of model.fork) out.push(`  ${entry.kernel}: first page written → ${entry.firstPage}; a later page written → ${entry.laterPage}`);
  }
  out.push('', 'Timings (one run each, TCG, function_graph on: indicative only):');
  for (const row of model.timings) out.push(`  ${row.what}: ${row.perKernel.map((entry) => `${entry.kernel} ${formatTiming(entry.us)}`).join(', ')}`);
  for (const source of model.sources) if (source.paths.length > 0) out.push(`raw traces of ${source.kernel}: ${source.paths.join(', ')}`);
  return `${out.join('\n')}\n`;
}
