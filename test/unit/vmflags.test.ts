/** The smaps VmFlags decoder (show_smap_vma_flags, 6.1; catalogue H1). */
import { describe, expect, it } from 'vitest';
import { VMFLAG_TABLE, decodeVmFlags, setByFor } from '../../tools/trace/vmflags.js';

describe('decodeVmFlags', () => {
  it('decodes the remap device line the guest printed, in order', () => {
    const flags = decodeVmFlags('VmFlags: rd wr sh mr mw me ms pf io de ar dd sd');
    expect(flags.map((flag) => flag.flag)).toEqual([
      'VM_READ', 'VM_WRITE', 'VM_SHARED', 'VM_MAYREAD', 'VM_MAYWRITE', 'VM_MAYEXEC', 'VM_MAYSHARE',
      'VM_PFNMAP', 'VM_IO', 'VM_DONTEXPAND', 'VM_ARCH_1 (x86 VM_PAT)', 'VM_DONTDUMP', 'VM_SOFTDIRTY',
    ]);
    expect(flags.every((flag) => flag.known)).toBe(true);
  });

  it('marks letters 6.1 does not print as unknown instead of failing', () => {
    const [flag] = decodeVmFlags('zz');
    expect(flag?.known).toBe(false);
    expect(decodeVmFlags('')).toEqual([]);
  });

  it('knows every two-letter name of show_smap_vma_flags on x86', () => {
    const x86 = 'rd wr ex sh mr mw me ms gd pf lo io sr rr dc de ac nr ht sf ar wf dd sd mm hg nh mg um uw ui'.split(' ');
    for (const letters of x86) expect(VMFLAG_TABLE.has(letters), letters).toBe(true);
  });

  it('says where a flag came from for each device kind', () => {
    expect(setByFor('pf', 'remap')).toMatch(/remap_pfn_range/);
    expect(setByFor('pf', 'fault')).toMatch(/mmapkit_mmap_fault/);
    expect(setByFor('sd', 'file')).toMatch(/mmap_region/);
  });
});
