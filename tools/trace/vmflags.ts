/**
 * Decodes the VmFlags line of /proc/PID/smaps: two letters per vm_flags bit,
 * printed in bit order by show_smap_vma_flags() (fs/proc/task_mmu.c, read
 * in Debian's 6.1 source; catalogue H1), each with what it means and where, for a device
 * or file mapping, the kernel or the driver sets it.
 */
import { vmFlagLetters } from '../../guest/procfs.js';

export interface VmFlagInfo {
  letters: string;
  flag: string;
  meaning: string;
  /** Where the flag comes from on the mmap path (6.1). */
  setBy: string;
}

const TABLE: VmFlagInfo[] = [
  { letters: 'rd', flag: 'VM_READ', meaning: 'readable', setBy: 'do_mmap: PROT_READ (calc_vm_prot_bits, mm/mmap.c)' },
  { letters: 'wr', flag: 'VM_WRITE', meaning: 'writable', setBy: 'do_mmap: PROT_WRITE' },
  { letters: 'ex', flag: 'VM_EXEC', meaning: 'executable', setBy: 'do_mmap: PROT_EXEC' },
  { letters: 'sh', flag: 'VM_SHARED', meaning: 'shared: writes reach the object', setBy: 'do_mmap: MAP_SHARED of a writable fd (cleared for O_RDONLY, catalogue B3)' },
  { letters: 'mr', flag: 'VM_MAYREAD', meaning: 'may be made readable (mprotect)', setBy: 'do_mmap: always (mm->def_flags | VM_MAY*)' },
  { letters: 'mw', flag: 'VM_MAYWRITE', meaning: 'may be made writable', setBy: 'do_mmap: always, cleared for MAP_SHARED of an O_RDONLY fd or by the driver (ro device)' },
  { letters: 'me', flag: 'VM_MAYEXEC', meaning: 'may be made executable', setBy: 'do_mmap: unless the mount is noexec' },
  { letters: 'ms', flag: 'VM_MAYSHARE', meaning: 'MAP_SHARED was asked for', setBy: 'do_mmap: MAP_SHARED' },
  { letters: 'gd', flag: 'VM_GROWSDOWN', meaning: 'stack-like, grows down', setBy: 'MAP_GROWSDOWN (anonymous only)' },
  { letters: 'pf', flag: 'VM_PFNMAP', meaning: 'raw PFNs, no struct page behind the PTEs', setBy: 'remap_pfn_range (remap_pfn_range_internal) or the driver\'s ->mmap' },
  { letters: 'lo', flag: 'VM_LOCKED', meaning: 'pages locked in memory', setBy: 'mlock / MAP_LOCKED (never on VM_SPECIAL VMAs)' },
  { letters: 'io', flag: 'VM_IO', meaning: 'memory-mapped I/O: no core dump, no GUP', setBy: 'remap_pfn_range (remap_pfn_range_internal)' },
  { letters: 'sr', flag: 'VM_SEQ_READ', meaning: 'sequential read-ahead hint', setBy: 'madvise(MADV_SEQUENTIAL)' },
  { letters: 'rr', flag: 'VM_RAND_READ', meaning: 'random read hint', setBy: 'madvise(MADV_RANDOM)' },
  { letters: 'dc', flag: 'VM_DONTCOPY', meaning: 'not copied on fork', setBy: 'madvise(MADV_DONTFORK) or the driver' },
  { letters: 'de', flag: 'VM_DONTEXPAND', meaning: 'mremap may not grow it', setBy: "the driver's ->mmap, and remap_pfn_range" },
  { letters: 'ac', flag: 'VM_ACCOUNT', meaning: 'counted against overcommit', setBy: 'mmap_region: accountable_mapping (private writable)' },
  { letters: 'nr', flag: 'VM_NORESERVE', meaning: 'no swap reserved', setBy: 'MAP_NORESERVE' },
  { letters: 'ht', flag: 'VM_HUGETLB', meaning: 'hugetlbfs pages', setBy: 'hugetlbfs ->mmap' },
  { letters: 'sf', flag: 'VM_SYNC', meaning: 'synchronous page faults (DAX)', setBy: 'MAP_SYNC' },
  { letters: 'ar', flag: 'VM_ARCH_1 (x86 VM_PAT)', meaning: 'x86 PAT memory type tracked for the whole VMA', setBy: 'track_pfn_remap, when one remap_pfn_range covers the whole VMA (arch/x86/mm/pat/memtype.c)' },
  { letters: 'wf', flag: 'VM_WIPEONFORK', meaning: 'zeroed in the child after fork', setBy: 'madvise(MADV_WIPEONFORK)' },
  { letters: 'dd', flag: 'VM_DONTDUMP', meaning: 'left out of core dumps', setBy: "the driver's ->mmap, and remap_pfn_range" },
  { letters: 'bt', flag: 'VM_ARM64_BTI', meaning: 'arm64 branch target identification', setBy: 'arm64 only' },
  { letters: 'sd', flag: 'VM_SOFTDIRTY', meaning: 'soft-dirty: new since the last clear_refs', setBy: 'mmap_region: every new VMA (CONFIG_MEM_SOFT_DIRTY)' },
  { letters: 'mm', flag: 'VM_MIXEDMAP', meaning: 'mixed struct-page and raw-PFN PTEs', setBy: 'vm_insert_page / the driver' },
  { letters: 'hg', flag: 'VM_HUGEPAGE', meaning: 'transparent huge pages asked for', setBy: 'madvise(MADV_HUGEPAGE)' },
  { letters: 'nh', flag: 'VM_NOHUGEPAGE', meaning: 'no transparent huge pages', setBy: 'madvise(MADV_NOHUGEPAGE)' },
  { letters: 'mg', flag: 'VM_MERGEABLE', meaning: 'KSM may merge its pages', setBy: 'madvise(MADV_MERGEABLE)' },
  { letters: 'um', flag: 'VM_UFFD_MISSING', meaning: 'userfaultfd: missing-page tracking', setBy: 'userfaultfd' },
  { letters: 'uw', flag: 'VM_UFFD_WP', meaning: 'userfaultfd: write-protect tracking', setBy: 'userfaultfd' },
  { letters: 'mt', flag: 'VM_MTE', meaning: 'arm64 memory tagging', setBy: 'arm64 only' },
  { letters: 'ui', flag: 'VM_UFFD_MINOR', meaning: 'userfaultfd: minor-fault tracking', setBy: 'userfaultfd' },
];

export const VMFLAG_TABLE: ReadonlyMap<string, VmFlagInfo> = new Map(TABLE.map((info) => [info.letters, info]));

export interface DecodedVmFlag extends VmFlagInfo {
  known: boolean;
}

/** "rd wr sh ..." (with or without the "VmFlags:" label) to one entry per letter pair, in order. */
export function decodeVmFlags(line: string): DecodedVmFlag[] {
  return vmFlagLetters(line).map((letters) => {
    const info = VMFLAG_TABLE.get(letters);
    return info !== undefined
      ? { ...info, known: true }
      : { letters, flag: '?', meaning: 'not known to 6.1 (show_smap_vma_flags prints "??" for unnamed bits)', setBy: '?', known: false };
  });
}

/**
 * Where a flag came from on this mapping: refines the general table with
 * what this driver's ->mmap does (kmod/mmapkit-mmap.c) for the device kind.
 */
export function setByFor(letters: string, targetKind: string): string {
  const general = VMFLAG_TABLE.get(letters)?.setBy ?? '?';
  if (targetKind === 'fault' && letters === 'pf') return "the driver's ->mmap (mmapkit_mmap_fault), for vmf_insert_pfn";
  if (targetKind === 'fault' && (letters === 'de' || letters === 'dd')) return "the driver's ->mmap (mmapkit_mmap_fault)";
  if ((targetKind === 'remap' || targetKind === 'ro') && (letters === 'de' || letters === 'dd'))
    return "the driver's ->mmap (mmapkit_remap_vma), and remap_pfn_range again";
  if ((targetKind === 'remap' || targetKind === 'ro') && (letters === 'pf' || letters === 'io')) return 'remap_pfn_range (remap_pfn_range_internal)';
  return general;
}
