/**
 * What a recorded scenario shows: its syscall graphs, its page faults sorted
 * into those that hit the mapping and the process's own, and the call trees
 * trimmed to the functions of the mmap path, rendered as text.
 */
import { FAULT_LOCK_ROOTS } from './ftrace.js';
import { type GraphNode, type ParsedTrace, walk } from './graph.js';

/** Functions of the mmap path that a trimmed tree keeps (with every caller on the way to them). */
export const PATH_FUNCTIONS = new Set([
  'ksys_mmap_pgoff', 'vm_mmap_pgoff', 'do_mmap', 'get_unmapped_area', 'arch_get_unmapped_area_topdown',
  'shmem_get_unmapped_area', 'vm_unmapped_area', 'mmap_region', 'vm_area_alloc', 'mmap_file', 'call_mmap',
  'vma_mas_store', 'vma_link', 'vma_link_file', 'vma_interval_tree_insert', 'vma_set_page_prot', '__mmap_region',
  'remap_pfn_range', 'remap_pfn_range_notrack', 'remap_pfn_range_internal', 'track_pfn_remap', 'track_pfn_insert',
  'track_pfn_copy', 'untrack_pfn', 'untrack_pfn_clear',
  'handle_mm_fault', '__handle_mm_fault', 'handle_pte_fault', 'do_fault', 'do_read_fault', 'do_shared_fault',
  'do_cow_fault', '__do_fault', 'vmf_insert_pfn', 'vmf_insert_pfn_prot', 'insert_pfn', 'do_wp_page', 'wp_page_copy',
  'filemap_map_pages', 'filemap_fault', 'shmem_fault', 'shmem_mmap', 'do_set_pte',
  'kernel_clone', 'copy_process', 'dup_mm', 'dup_mmap', 'vm_area_dup', 'copy_page_range',
  'do_exit', 'mmput', 'exit_mmap', 'unmap_vmas', 'unmap_single_vma', 'unmap_page_range', 'remove_vma', 'vma_close',
  'vm_area_free', '__vm_munmap', 'do_mas_munmap', 'do_mas_align_munmap', 'unmap_region',
  'move_vma', 'copy_vma', 'move_page_tables', 'vfs_fsync_range',
]);

/** One line of explanation for the functions a reader should notice. */
export const ANNOTATIONS: Record<string, string> = {
  get_unmapped_area: 'find a free address range',
  vm_unmapped_area: 'search the gaps between VMAs',
  mmap_region: 'create the VMA',
  vm_area_alloc: 'allocate the vm_area_struct',
  mmap_file: "call the file's ->mmap",
  call_mmap: "call the file's ->mmap",
  __mmap_region: "create the VMA and call the file's ->mmap (6.12: mmap_file is inline)",
  vma_link_file: "link the VMA into the file's i_mmap tree",
  lock_vma_under_rcu: 'per-VMA lock (CONFIG_PER_VMA_LOCK)',
  lock_mm_and_find_vma: 'mmap_lock, then find the VMA',
  vma_mas_store: "link the VMA into the process's maple tree",
  vma_link: "link the VMA into the process's tree",
  vma_interval_tree_insert: "link the VMA into the file's i_mmap tree",
  remap_pfn_range: 'build every PTE now',
  remap_pfn_range_internal: 'walk p4d/pud/pmd/pte and write the PFNs',
  track_pfn_remap: 'x86 PAT: memory type of the range (VM_PAT)',
  handle_mm_fault: 'page fault (exc_page_fault is noinstr: the graph starts here)',
  do_fault: 'no PTE in a file VMA: ask the file',
  __do_fault: 'call vm_ops->fault',
  vmf_insert_pfn: 'install the PFN in the PTE',
  insert_pfn: 'write the special PTE',
  filemap_map_pages: 'fault-around: map pages already in the page cache',
  shmem_fault: 'tmpfs ->fault: find or allocate the page-cache page',
  wp_page_copy: 'copy-on-write: copy the page into an anonymous one',
  dup_mmap: 'fork: copy every VMA',
  copy_page_range: 'fork: copy the PTEs (PFNMAP VMAs are copied, not re-faulted)',
  remove_vma: 'free the VMA',
  move_vma: 'mremap: move the VMA',
};

/** What a driver function is, by the kernel function that called it. */
export const DRIVER_ROLES: Record<string, string> = {
  mmap_file: "the driver's ->mmap",
  call_mmap: "the driver's ->mmap",
  __mmap_region: "the driver's ->mmap",
  __do_fault: "the driver's vm_ops->fault",
  vma_close: "the driver's vm_ops->close",
  remove_vma: "the driver's vm_ops->close",
  dup_mmap: "the driver's vm_ops->open (the child's copy)",
  copy_vma: "the driver's vm_ops->open (the moved VMA)",
  __split_vma: "the driver's vm_ops->open (the new half)",
};

export interface FaultGraph {
  task: string;
  /** The faulting address, from the page_fault_user/kernel event printed before the graph. */
  address?: bigint;
  /** A user-mode access (page_fault_user) or a kernel access to user memory (page_fault_kernel). */
  mode?: 'user' | 'kernel';
  inMapping: boolean;
  node: GraphNode;
  /**
   * The attempt under the per-VMA lock that gave up (VM_FAULT_RETRY), when
   * `node` is its retry under mmap_lock. Since 6.4-ish x86 first handles a
   * fault under the VMA lock, and do_read_fault() retries under mmap_lock
   * when the vma has ->fault but no ->map_pages (vmf_can_call_fault(), 6.12
   * mm/memory.c): one page_fault_user event, two handle_mm_fault graphs.
   */
  vmaLockAttempt?: GraphNode;
  /**
   * The lock functions traced for this fault, in order (FAULT_LOCK_ROOTS):
   * ["lock_vma_under_rcu", "lock_mm_and_find_vma"] for an attempt under the
   * per-VMA lock retried under mmap_lock, ["lock_mm_and_find_vma"] on 6.1.
   * Empty when the trace has no lock roots (recorded before they were added).
   */
  locks: string[];
  /** The lock function just before `node`: the lock the fault was handled under. */
  lockedBy?: string;
}

const isLockRoot = (node: GraphNode): boolean => FAULT_LOCK_ROOTS.includes(node.name);

/** The lock functions among `siblings` before index `end`, back to the previous handle_mm_fault. */
function locksBefore(siblings: GraphNode[], end: number): string[] {
  const locks: string[] = [];
  for (let i = end - 1; i >= 0 && siblings[i]!.name !== 'handle_mm_fault'; i--) if (isLockRoot(siblings[i]!)) locks.unshift(siblings[i]!.name);
  return locks;
}

/** What the fault's lock functions say, in words: "per-VMA lock, gave up, retried under mmap_lock". */
export function lockStory(fault: Pick<FaultGraph, 'locks' | 'lockedBy' | 'vmaLockAttempt'>): string {
  if (fault.locks.length === 0) return 'no lock function traced';
  const under = (name: string | undefined): string =>
    name === 'lock_vma_under_rcu' ? 'the per-VMA lock' : name === 'lock_mm_and_find_vma' ? 'mmap_lock' : (name ?? '?');
  if (fault.vmaLockAttempt !== undefined) return `tried under ${under(fault.locks[0])} (${fault.locks[0]}), gave up (VM_FAULT_RETRY), handled under ${under(fault.lockedBy)} (${fault.lockedBy ?? '?'})`;
  if (fault.locks.length > 1) return `${fault.locks.slice(0, -1).join(', ')} found no VMA to lock, handled under ${under(fault.lockedBy)} (${fault.lockedBy ?? '?'})`;
  return `handled under ${under(fault.lockedBy)} (${fault.lockedBy ?? '?'})`;
}

export interface TraceAnalysis {
  /** Address ranges of the scenario's mapping, from the "mmapkit: mapped/moved" markers. */
  ranges: { start: bigint; length: number }[];
  /** Top-level system-call graphs (__x64_sys_*), in order. */
  syscalls: { task: string; node: GraphNode }[];
  faults: FaultGraph[];
  markers: string[];
  tasks: string[];
}

const MARKER = /^mmapkit: (.*)$/;
const RANGE = /^(?:mapped|moved) (0x[0-9a-f]+) (\d+)$/;
const FAULT_EVENT = /^page_fault_(user|kernel): address=(0x[0-9a-f]+)/;

export function analyseTrace(parsed: ParsedTrace): TraceAnalysis {
  const analysis: TraceAnalysis = { ranges: [], syscalls: [], faults: [], markers: [], tasks: parsed.tasks };
  const lastFault = new Map<string, { address: bigint; mode: 'user' | 'kernel' }>();
  const pending: FaultGraph[] = [];
  // The task's last top-level fault graph, while nothing else of the task followed it.
  const lastGraph = new Map<string, FaultGraph>();
  // Top-level lock functions (FAULT_LOCK_ROOTS) not yet followed by their handle_mm_fault.
  const locks = new Map<string, string[]>();
  for (const item of parsed.items) {
    if (item.type === 'comment') {
      lastGraph.delete(item.task);
      if (FAULT_EVENT.test(item.text)) locks.delete(item.task);
      const marker = MARKER.exec(item.text);
      if (marker) {
        analysis.markers.push(marker[1]!);
        const range = RANGE.exec(marker[1]!);
        if (range) analysis.ranges.push({ start: BigInt(range[1]!), length: Number(range[2]) });
      }
      const fault = FAULT_EVENT.exec(item.text);
      if (fault) lastFault.set(item.task, { address: BigInt(fault[2]!), mode: fault[1] as 'user' | 'kernel' });
      continue;
    }
    const { node, task } = item;
    if (isLockRoot(node)) {
      // Part of the fault that follows (or of the retry of the one before): it leaves lastGraph alone.
      locks.set(task, [...(locks.get(task) ?? []), node.name]);
      continue;
    }
    const taken = locks.get(task) ?? [];
    locks.delete(task);
    const previous = lastGraph.get(task);
    lastGraph.delete(task);
    if (node.name === 'handle_mm_fault' && !lastFault.has(task) && previous !== undefined && previous.vmaLockAttempt === undefined) {
      // A retry of the previous fault: no event of its own, nothing but lock functions in between.
      previous.vmaLockAttempt = previous.node;
      previous.node = node;
      previous.locks.push(...taken);
      if (taken.length > 0) previous.lockedBy = taken[taken.length - 1]!;
      continue;
    }
    if (node.name.startsWith('__x64_sys_')) analysis.syscalls.push({ task, node });
    // A fault inside a syscall is nested in its graph; the top-level ones come from user accesses.
    for (const { node: each, path } of walk(node)) {
      if (each.name !== 'handle_mm_fault') continue;
      const event = each === node ? lastFault.get(task) : undefined;
      if (each === node) lastFault.delete(task);
      // A fault nested in a syscall (a kernel access to user memory): its lock functions are its earlier siblings.
      const parent = path[path.length - 1];
      const own = each === node ? taken : parent !== undefined ? locksBefore(parent.children, parent.children.indexOf(each)) : [];
      const graph: FaultGraph = { task, inMapping: false, node: each, locks: own };
      if (own.length > 0) graph.lockedBy = own[own.length - 1]!;
      if (event !== undefined) {
        graph.address = event.address;
        graph.mode = event.mode;
      }
      pending.push(graph);
      if (each === node && event !== undefined) lastGraph.set(task, graph);
    }
  }
  // Markers can come after the graphs they describe (mapped is written after mmap returns): classify last.
  for (const graph of pending) {
    graph.inMapping =
      graph.address !== undefined &&
      analysis.ranges.some((range) => graph.address! >= range.start && graph.address! < range.start + BigInt(range.length));
    analysis.faults.push(graph);
  }
  return analysis;
}

/** Is this a function of a loaded module (the driver under test)? */
export const isModuleFunction = (node: GraphNode): boolean => node.module !== undefined;

export interface TrimOptions {
  /** Extra function names to keep. */
  keep?: Set<string>;
}

/**
 * A copy of `node` with only the functions of the mmap path, the driver's
 * own, and their callers. Runs of same-named leaves are merged into one
 * node whose name says how many ("do_set_pte ×15").
 */
export function trimTree(node: GraphNode, options: TrimOptions = {}): GraphNode | undefined {
  const wanted = (each: GraphNode): boolean =>
    PATH_FUNCTIONS.has(each.name) || isModuleFunction(each) || options.keep?.has(each.name) === true || each.name.startsWith('__x64_sys_');
  const children = node.children.map((child) => trimTree(child, options)).filter((child): child is GraphNode => child !== undefined);
  if (!wanted(node) && children.length === 0) return undefined;
  return { ...node, children: mergeRuns(children) };
}

function mergeRuns(children: GraphNode[]): GraphNode[] {
  const merged: GraphNode[] = [];
  for (const child of children) {
    const last = merged[merged.length - 1];
    const base = (name: string): string => name.replace(/ ×\d+$/, '');
    if (last !== undefined && child.children.length === 0 && last.children.length === 0 && base(last.name) === child.name) {
      const count = Number(/ ×(\d+)$/.exec(last.name)?.[1] ?? 1) + 1;
      merged[merged.length - 1] = {
        ...last,
        name: `${child.name} ×${count}`,
        ...(last.durationUs !== undefined && child.durationUs !== undefined && { durationUs: last.durationUs + child.durationUs }),
      };
    } else merged.push(child);
  }
  return merged;
}

export const formatUs = (us: number | undefined): string =>
  us === undefined ? '' : us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} us`;

/** A tree as text lines: "├─ name [module]   12.3 us  ← note". */
export function renderTree(node: GraphNode, notes: Record<string, string> = ANNOTATIONS): string[] {
  const lines: string[] = [];
  const label = (each: GraphNode, parent: GraphNode | undefined): string => {
    const name = `${each.name}${each.module !== undefined ? ` [${each.module}]` : ''}`;
    const role = parent !== undefined && !isModuleFunction(parent) && isModuleFunction(each) ? DRIVER_ROLES[parent.name] : undefined;
    const note = role ?? notes[each.name];
    return `${name}${each.durationUs !== undefined ? `  ${formatUs(each.durationUs)}` : ''}${note !== undefined ? `  ← ${note}` : ''}`;
  };
  const visit = (each: GraphNode, parent: GraphNode | undefined, prefix: string, last: boolean): void => {
    lines.push(parent === undefined ? label(each, parent) : `${prefix}${last ? '└─ ' : '├─ '}${label(each, parent)}`);
    const next = parent === undefined ? '' : `${prefix}${last ? '   ' : '│  '}`;
    each.children.forEach((child, i) => visit(child, each, next, i === each.children.length - 1));
  };
  visit(node, undefined, '', true);
  return lines;
}

/** "a -> b -> c" path from the root to the first call of `name`, or undefined. */
export function callPath(node: GraphNode, name: string): string[] | undefined {
  for (const { node: each, path } of walk(node)) if (each.name === name) return [...path, each].map((step) => step.name);
  return undefined;
}
