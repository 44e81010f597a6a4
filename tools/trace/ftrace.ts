/**
 * The ftrace set-up that `mmapkit trace` and `explain` run in the guest, as
 * shell scripts for busybox/dash `sh -c`.
 *
 * Measured on Debian's 6.1 guest under TCG (2 vCPUs): switching
 * function_graph on over every traceable function (~38,800) takes about
 * 4.5 s, and switching it off again with a workload running stalled the
 * vCPUs long enough for a soft-lockup warning (text_poke_bp IPIs). Limiting
 * set_ftrace_filter to the memory-management functions below brings the
 * switch down to ~0.1 s and ~1,100 patched functions, and also trims the
 * tree to the functions that matter: locking, RCU and allocator internals
 * are never patched, so they never show.
 *
 * exc_page_fault is noinstr on 6.1 and cannot be a graph root; the fault
 * side starts at handle_mm_fault, and the exceptions:page_fault_user event
 * gives each fault's address, printed as a comment just before its graph.
 * do_user_addr_fault, which takes the lock a fault runs under, is inlined
 * (6.1 declares it "static inline" in arch/x86/mm/fault.c) and the lock helpers
 * (mmap_read_trylock, vma_start_read) are inline too, so the lock is seen
 * through the out-of-line functions that take it, made graph roots of their
 * own: FAULT_LOCK_ROOTS.
 */
import type { ScenarioName } from '../../guest/scenario-types.js';

export const TRACEFS = '/sys/kernel/tracing';

/** Globs for set_ftrace_filter (each a pass over the ~38,800 traceable functions). */
export const FILTER_PATTERNS = [
  '*mmap*',
  '*munmap*',
  '*mremap*',
  '*vma*',
  'vm_area_*',
  '*unmapped_area*',
  '*fault*',
  '*pfn*',
  '*pte*',
  '*pmd*',
  '*pud*',
  '*p4d*',
  'copy_page_range',
  'dup_mm',
  'dup_mmap',
  'exit_mmap',
  'mmput',
  'unmap_*',
  'zap_*',
  'move_vma',
  'move_page_tables',
  'wp_page_copy',
  'do_wp_page',
  'shmem_get_folio*',
  'shmem_fault',
  'shmem_mmap',
  'filemap_map_pages',
  'filemap_fault',
  'vfs_fsync_range',
  '__x64_sys_clone',
  'kernel_clone',
  'copy_process',
  '__x64_sys_exit_group',
  'do_exit',
  ':mod:mmapkit',
];

/** Where each scenario's call graphs start (set_graph_function). */
export const GRAPH_ROOTS: Record<ScenarioName, string[]> = {
  map: ['__x64_sys_mmap'],
  touch: ['__x64_sys_mmap', 'handle_mm_fault'],
  fork: ['__x64_sys_clone', '__x64_sys_exit_group', 'handle_mm_fault'],
  mremap: ['__x64_sys_mremap'],
  munmap: ['__x64_sys_munmap'],
  'private-write': ['__x64_sys_mmap', 'handle_mm_fault'],
};

/**
 * The functions x86's do_user_addr_fault calls to lock before handle_mm_fault:
 * lock_vma_under_rcu (the per-VMA lock, CONFIG_PER_VMA_LOCK, 6.4 on; absent
 * on 6.1) and lock_mm_and_find_vma (mmap_lock; 6.1.192 has it as a backport,
 * in mm/memory.c). Traced as extra graph roots alongside handle_mm_fault,
 * each only where the kernel has it, so that the trace says which lock every
 * fault ran under.
 */
export const FAULT_LOCK_ROOTS = ['lock_vma_under_rcu', 'lock_mm_and_find_vma'];

/** The optional graph roots of a scenario's roots: the fault lock functions when it traces faults. */
export const optionalRootsFor = (roots: string[]): string[] => (roots.includes('handle_mm_fault') ? FAULT_LOCK_ROOTS : []);

/** Exit codes of the prepare script, each with the user's one-line explanation. */
export const PREPARE_FAILURES: Record<number, string> = {
  90: `the guest kernel has no tracefs at ${TRACEFS} (needs CONFIG_FTRACE and tracefs mounted)`,
  91: "the guest kernel has no function_graph tracer (CONFIG_FUNCTION_GRAPH_TRACER) in available_tracers",
  92: 'the guest kernel refused the function filter (set_ftrace_filter): is CONFIG_DYNAMIC_FTRACE set?',
  93: 'the guest kernel cannot trace a graph root (not in available_filter_functions)',
};

const quote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

/**
 * Run once per boot: checks that tracefs and function_graph exist, limits
 * the patched functions, turns on the options we rely on and switches the
 * tracer on with the ring buffer off (the scenario switches it on).
 */
export function prepareScript(roots: string[] = [...new Set(Object.values(GRAPH_ROOTS).flat())], optional: string[] = optionalRootsFor(roots)): string {
  const T = TRACEFS;
  return [
    `T=${T}`,
    '[ -w "$T/tracing_on" ] || exit 90',
    'grep -qw function_graph "$T/available_tracers" || exit 91',
    'echo 0 > "$T/tracing_on"',
    'echo nop > "$T/current_tracer"',
    // One pattern per write: a pattern that matches nothing (inlined on this build) fails alone.
    'echo > "$T/set_ftrace_filter" || exit 92',
    `for p in ${[...FILTER_PATTERNS, ...roots, ...optional].map(quote).join(' ')}; do echo "$p" >> "$T/set_ftrace_filter" 2>/dev/null; done`,
    ...roots.map((root) => `grep -qx ${quote(root)} "$T/set_ftrace_filter" || exit 93`),
    `echo ${quote(roots.join(' '))} > "$T/set_graph_function" || exit 93`,
    // Name and pid on every line: the parser keeps one call stack per task (fork traces two).
    'echo 1 > "$T/options/funcgraph-proc"',
    'echo 0 > "$T/options/funcgraph-irqs"',
    // Follow fork: the child of the fork scenario is traced too.
    'echo 1 > "$T/options/function-fork"',
    'echo 1 > "$T/options/event-fork" 2>/dev/null',
    'E="$T/events/exceptions/page_fault_user/enable"; [ -w "$E" ] && echo 1 > "$E"',
    'E="$T/events/exceptions/page_fault_kernel/enable"; [ -w "$E" ] && echo 1 > "$E"',
    'echo function_graph > "$T/current_tracer" || exit 91',
    'wc -l < "$T/set_ftrace_filter"',
  ].join('\n');
}

/**
 * Before each scenario: an empty buffer and this scenario's graph roots; the
 * optional ones are added only if the kernel has them (a name it lacks would
 * fail the whole write).
 */
export function armScript(roots: string[], optional: string[] = optionalRootsFor(roots)): string {
  return [
    `T=${TRACEFS}`,
    'echo 0 > "$T/tracing_on"',
    'echo > "$T/trace"',
    `echo ${quote(roots.join(' '))} > "$T/set_graph_function" || exit 93`,
    ...(optional.length > 0
      ? [`for r in ${optional.map(quote).join(' ')}; do grep -qx "$r" "$T/set_ftrace_filter" && echo "$r" >> "$T/set_graph_function"; done; true`]
      : []),
  ].join('\n');
}
