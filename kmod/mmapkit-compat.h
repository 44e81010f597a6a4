/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmapkit - every difference between the kernels the driver builds for
 * (Debian's 6.1 and 6.12), in one place. Each one is decided by a build-time
 * probe of the target headers (mmapkit-compat.mk defines MMAPKIT_HAVE_*),
 * never by LINUX_VERSION_CODE: distribution and stable kernels backport
 * APIs, so a version says little about what the headers offer.
 */
#ifndef _MMAPKIT_COMPAT_H
#define _MMAPKIT_COMPAT_H

#include <linux/mm.h>
#include <linux/mm_types.h>
#include <linux/mmzone.h>

/*
 * Bytes in the buddy allocator's largest block (4 MiB with 4 KiB pages).
 * MAX_ORDER was one past the largest order until 6.3, the largest order
 * itself in 6.4-6.7, and is MAX_PAGE_ORDER since 6.8; MAX_ORDER_NR_PAGES
 * has meant the largest block's pages throughout, so no probe is needed.
 */
#define MMAPKIT_MAX_ORDER_BYTES	(PAGE_SIZE * MAX_ORDER_NR_PAGES)

/*
 * Sets the bits of @set and clears those of @clear in vma->vm_flags, as
 * ->mmap may (the vma is not yet visible to anyone else). Since 6.3
 * vm_flags is const and written only through vm_flags_mod() and friends,
 * which also assert that the mmap lock is held for writing; before, it is
 * a plain field.
 */
static inline void mmapkit_vma_mod_flags(struct vm_area_struct *vma,
					 vm_flags_t set, vm_flags_t clear)
{
#ifdef MMAPKIT_HAVE_VM_FLAGS_SET
	vm_flags_mod(vma, set, clear);
#else
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
#endif
}

#endif /* _MMAPKIT_COMPAT_H */
