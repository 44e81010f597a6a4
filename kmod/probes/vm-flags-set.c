// SPDX-License-Identifier: GPL-2.0
/*
 * Build-time probe, never part of the module (see mmapkit-compat.mk): it
 * compiles only against headers that have vm_flags_set(), vm_flags_clear()
 * and vm_flags_mod(), that is where vma->vm_flags is read-only and must be
 * written through them (upstream 6.3, "mm: introduce vma->vm_flags wrapper
 * functions"; some stable series have the helpers earlier).
 */
#include <linux/mm.h>

void mmapkit_probe(struct vm_area_struct *vma);

void mmapkit_probe(struct vm_area_struct *vma)
{
	vm_flags_set(vma, VM_DONTEXPAND);
	vm_flags_clear(vma, VM_MAYWRITE);
	vm_flags_mod(vma, VM_DONTDUMP, VM_IO);
}
