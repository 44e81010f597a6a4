/**
 * The articles' claims about mmap, each checked against what the kernel did
 * in this run: one measurement (or trace) per claim, for the device under
 * study and for a regular file on tmpfs, and a verdict computed from the two.
 * Nothing here is a constant answer: change what the driver does and the
 * measurement, and so the verdict, changes.
 */
import type { TargetMeasurement } from '../../guest/scenario-types.js';
import type { GraphNode } from '../trace/graph.js';
import { walk } from '../trace/graph.js';
import type { TraceAnalysis } from '../trace/tree.js';

export type Verdict = 'holds' | 'holds only for devices' | 'holds only for files' | 'does not hold';

export interface ClaimRow {
  id: string;
  /** The claim in our own words. */
  claim: string;
  /** What the kernel did in this run. */
  observed: string;
  /** Did it hold for the device / the file? null: cannot apply. */
  device: boolean | null;
  file: boolean | null;
  verdict: Verdict;
}

export interface ClaimInputs {
  device: TargetMeasurement;
  file: TargetMeasurement;
  /** The other measured devices (remap/fault), for the observations. */
  others: TargetMeasurement[];
  deviceTrace: TraceAnalysis;
  fileTrace: TraceAnalysis;
}

export function verdictOf(device: boolean | null, file: boolean | null): Verdict {
  if (device === true && file === true) return 'holds';
  if (device === true) return 'holds only for devices';
  if (file === true) return 'holds only for files';
  return 'does not hold';
}

const name = (m: TargetMeasurement): string => (m.targetKind === 'file' ? `tmpfs file ${m.target}` : `${m.targetKind} device`);
const us = (ns: number): string => `${(ns / 1000).toFixed(0)} us`;

/** The pages a target's first touch faulted in: the driver's own count when it has one, else the PTEs that appeared. */
export function demandFaults(m: TargetMeasurement): number {
  if (m.driverFaults !== undefined) return m.driverFaults;
  // For a file: PTEs (pagemap) that appeared during the first touch, each put there by a
  // fault (the kernel's fault-around may map several per fault). getrusage counts of the
  // same process also see the runtime's own faults, and a noisy second pass hid real ones.
  return Math.max(0, m.presentAfter - m.presentBefore);
}

/** Did the file's ->mmap (the driver's, or shmem_mmap) call remap_pfn_range during mmap()? */
export function mmapCallsRemap(trace: TraceAnalysis): boolean {
  return trace.syscalls.some(({ node }) => node.name === '__x64_sys_mmap' && mmapHookCalls(node, 'remap_pfn_range'));
}

/**
 * The calls of the file's ->mmap in an mmap() graph. On 6.1 it is the child
 * of mmap_file (or call_mmap); on 6.12 both are inline (mm/internal.h) and
 * the hook is a direct child of __mmap_region, next to other kernel calls,
 * so there it is the module function or the `*_mmap` callee that is not one
 * of __mmap_region's own notifiers.
 */
export function mmapHooks(root: GraphNode): GraphNode[] {
  const hooks: GraphNode[] = [];
  for (const { node } of walk(root)) {
    if (node.name === 'mmap_file' || node.name === 'call_mmap') {
      if (node.children[0] !== undefined) hooks.push(node.children[0]);
    } else if (node.name === '__mmap_region') {
      hooks.push(...node.children.filter((child) => child.module !== undefined || (/_mmap$/.test(child.name) && !REGION_NOTIFIERS.has(child.name))));
    }
  }
  return hooks;
}

/** What 6.12's __mmap_region calls that is named *_mmap but is not the file's ->mmap. */
const REGION_NOTIFIERS = new Set(['perf_event_mmap', 'uprobe_mmap', 'memfd_check_seals_mmap']);

function mmapHookCalls(root: GraphNode, callee: string): boolean {
  return mmapHooks(root).some((hook) => [...walk(hook)].some(({ node }) => node.name === callee));
}

/** The ->mmap hook's own name as the trace shows it (mmapkit_mmap_remap, shmem_mmap, ...). */
export function mmapHookName(trace: TraceAnalysis): string | undefined {
  for (const { node } of trace.syscalls) {
    const hook = mmapHooks(node)[0];
    if (hook !== undefined) return hook.name;
  }
  return undefined;
}

function between(m: TargetMeasurement): boolean | null {
  const { heapEnd, stackStart, mapping } = m.layout;
  if (heapEnd === undefined || stackStart === undefined) return null;
  const at = BigInt(mapping);
  return BigInt(heapEnd) <= at && at < BigInt(stackStart);
}

export function evaluateClaims(inputs: ClaimInputs): ClaimRow[] {
  const { device, file } = inputs;
  const both = [device, file];
  const rows: Omit<ClaimRow, 'verdict'>[] = [];

  const aligned = (m: TargetMeasurement): boolean => !m.unaligned.ok;
  rows.push({
    id: 'page-multiple',
    claim: "A mapping's length must be a multiple of the page size.",
    observed: both
      .map((m) => `${name(m)}: mmap(len=${m.unaligned.length}) ${m.unaligned.ok ? `succeeded, VMA ${m.unaligned.vmaLength ?? '?'} bytes (rounded up to whole pages)` : `failed with ${m.unaligned.error ?? '?'}`}; len=0 ${m.zeroLength.ok ? 'succeeded' : `→ ${m.zeroLength.error ?? '?'}`}`)
      .join('. '),
    device: aligned(device),
    file: aligned(file),
  });

  const faultsText = (m: TargetMeasurement): string =>
    `${name(m)}: ${demandFaults(m)} fault(s) touching ${m.pages} pages` +
    (m.driverFaults !== undefined ? ' (driver counter)' : ` (getrusage ${m.firstTouchFaults}, second pass ${m.secondTouchFaults})`) +
    (m.residentBefore > 0 ? `, but ${m.residentBefore}/${m.pages} pages were already resident in the page cache before the touch` : '');
  rows.push({
    id: 'demand-paging',
    claim: 'No data is in RAM until the first access faults it in (demand paging).',
    observed: [device, ...inputs.others, file].map(faultsText).join('; ') + '. A fault only maps memory that already exists (the driver buffer, the page cache).',
    device: demandFaults(device) > 0,
    file: demandFaults(file) > 0,
  });

  const hook = mmapHookName(inputs.deviceTrace) ?? "the driver's ->mmap";
  const fileHook = mmapHookName(inputs.fileTrace) ?? '->mmap';
  rows.push({
    id: 'remap-pfn-range',
    claim: "The driver's mmap builds the page tables with remap_pfn_range.",
    observed:
      `${hook} ${mmapCallsRemap(inputs.deviceTrace) ? 'called remap_pfn_range inside mmap()' : 'did not call remap_pfn_range (no PTE is built in mmap())'}; ` +
      `${fileHook} for the tmpfs file ${mmapCallsRemap(inputs.fileTrace) ? 'called remap_pfn_range' : 'did not (pages are mapped at fault time)'}.`,
    device: mmapCallsRemap(inputs.deviceTrace),
    file: mmapCallsRemap(inputs.fileTrace),
  });

  rows.push({
    id: 'after-close',
    claim: 'The mapping stays valid after the file descriptor is closed.',
    observed: both.map((m) => `${name(m)}: ${m.afterClose.ok ? 'read and write after close() worked' : `failed: ${m.afterClose.error ?? '?'}`}`).join('; ') + ' (the VMA holds its own reference to the file).',
    device: device.afterClose.ok,
    file: file.afterClose.ok,
  });

  const shared = (m: TargetMeasurement): boolean => m.sharedChild.ok && (m.samePfnTwoMappings === undefined || m.samePfnTwoMappings.first === m.samePfnTwoMappings.second);
  rows.push({
    id: 'shared-pages',
    claim: 'Two processes mapping the same object share the same physical pages; a write by one is seen by the other at once.',
    observed: both
      .map(
        (m) =>
          `${name(m)}: a forked child mapping it by path read ${m.sharedChild.ok ? 'the bytes just written, with no msync' : `something else (${m.sharedChild.error ?? 'different bytes'})`}` +
          (m.samePfnTwoMappings !== undefined ? `; two mappings → PFN ${m.samePfnTwoMappings.first} and ${m.samePfnTwoMappings.second} (${m.samePfnTwoMappings.source})` : ''),
      )
      .join('; '),
    device: shared(device),
    file: shared(file),
  });

  rows.push({
    id: 'write-back',
    claim: 'Dirty pages are written back later, or at once by msync.',
    observed: both
      .map((m) => `${name(m)}: read() saw the mapping's write ${m.writeBack.readSeesBeforeMsync ? 'before any msync' : 'only after msync'}; msync(MS_SYNC) → ${m.writeBack.msyncSync}`)
      .join('; ') + '. A device mapping is the device memory itself: there is no copy to write back, and without ->fsync MS_SYNC is EINVAL; a file mapping is its page cache, which writeback or msync flushes to storage (tmpfs has none).',
    device: device.writeBack.msyncSync === 'ok',
    file: file.writeBack.msyncSync === 'ok',
  });

  const noCopy = (m: TargetMeasurement): boolean => m.copy.readRcharDelta >= m.copy.bytes && m.copy.mmapRcharDelta < m.copy.bytes / 100;
  rows.push({
    id: 'no-copy',
    claim: 'mmap avoids the copy that read() makes.',
    observed: both
      .map((m) => `${name(m)}: read() of ${m.copy.bytes} bytes: the kernel copied ${m.copy.readRcharDelta} bytes (rchar) in ${us(m.copy.readNs)}; through the mapping: ${Math.max(0, m.copy.mmapRcharDelta)} bytes copied by the kernel, access took ${us(m.copy.mmapNs)}`)
      .join('; ') + ' (times under TCG emulation, one run each).',
    device: noCopy(device),
    file: noCopy(file),
  });

  const fileIsCache = file.residentBefore > 0 && file.mapping.pages.some((page) => page.present === true && page.file === true) && file.writeVisible.ok;
  rows.push({
    id: 'page-cache',
    claim: 'mmap bypasses the page cache.',
    observed:
      `tmpfs file: ${file.residentBefore}/${file.pages} pages resident (mincore) before the first touch; after it pagemap shows them present as file pages` +
      (file.samePfnTwoMappings !== undefined ? `, the same PFN ${file.samePfnTwoMappings.first} in two mappings` : '') +
      `; a write() through the fd ${file.writeVisible.ok ? 'showed in the mapping at once' : 'did not show in the mapping'}: the mapping is the page cache. ` +
      `${name(device)}: mincore ${device.residentAfter}/${device.pages} resident after the touch: no page cache behind a VM_PFNMAP mapping.`,
    device: device.targetKind !== 'file' && device.residentAfter === 0,
    file: !fileIsCache,
  });

  const grows = file.growth;
  rows.push({
    id: 'file-grows',
    claim: 'A file that grows becomes visible through an existing mapping without remapping.',
    observed:
      grows === undefined
        ? 'not measured'
        : `a ${grows.initialPages}-page file mapped ${grows.mappedPages} pages long: page 2 → ${grows.beforeGrow} before the file grew, ${grows.afterGrowInside} after it grew by one page (${grows.afterGrowData ? 'with the new data' : 'without the new data'}); page 3, still past EOF → ${grows.pastEof}. ` +
          `${name(device)}: a fixed-size buffer, it cannot grow.`,
    device: null,
    file: grows !== undefined && grows.beforeGrow !== 'ok' && grows.afterGrowInside === 'ok' && grows.afterGrowData,
  });

  rows.push({
    id: 'heap-stack',
    claim: 'The mapping lies between the heap and the stack.',
    observed: both.map((m) => `${name(m)}: at ${m.layout.mapping}, heap ends ${m.layout.heapEnd ?? '?'}, stack starts ${m.layout.stackStart ?? '?'}`).join('; '),
    device: between(device),
    file: between(file),
  });

  return rows.map((row) => ({ ...row, verdict: verdictOf(row.device, row.file) }));
}
