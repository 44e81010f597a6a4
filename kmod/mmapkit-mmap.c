// SPDX-License-Identifier: GPL-2.0
/*
 * mmapkit - the three ->mmap shapes over the shared buffer, and the
 * vm_operations that count their VMAs.
 *
 *  remap  /dev/mmapkit-remap and its alias /dev/mmapkit: the "PFN (remap)"
 *         shape. ->mmap builds every PTE with remap_pfn_range(); there is
 *         no ->fault, so touching the mapping never enters the driver.
 *  fault  /dev/mmapkit-fault: the "Fault (pfn)" shape (DRM GEM/TTM). ->mmap
 *         only sets VM_PFNMAP and vm_ops; ->fault inserts the faulting
 *         page with vmf_insert_pfn(), and with fault_around > 1 the pages
 *         after it (mmapkit_fault_around()).
 *  ro     /dev/mmapkit-ro: remap, but refuses every VM_WRITE mapping and
 *         clears VM_MAYWRITE (as usbmon's mon_bin_mmap(), 6.1).
 *
 * Flags and COW policy per device (MAP_PRIVATE is a COW mapping even with
 * PROT_READ on an O_RDONLY fd, see below):
 *
 *  device  vm_flags: driver sets     remap_pfn_range adds  MAP_PRIVATE
 *  remap   DONTEXPAND DONTDUMP       IO PFNMAP [PAT]       COW on a contiguous
 *                                                          buffer, else EINVAL
 *  fault   PFNMAP DONTEXPAND         (not called)          EINVAL, always
 *          DONTDUMP
 *  ro      DONTEXPAND DONTDUMP,      IO PFNMAP [PAT]       EACCES if PROT_WRITE;
 *          clears MAYWRITE                                 PROT_READ: not COW,
 *                                                          a read-only view
 *
 *  [PAT] VM_PAT ("ar" in smaps) when one remap covers the whole vma: every
 *  mapping of a contiguous buffer, only one-page mappings of a vmalloc one.
 *
 * Kernel rules this file relies on, by function and kernel series (the
 * rows are in docs/catalogue.md):
 *
 *  - file_mmap_size_max() and file_mmap_ok() in do_mmap() (6.1): for a
 *    char device without FMODE_UNSIGNED_OFFSET the core only guarantees
 *    (pgoff << PAGE_SHIFT) + len <= ULONG_MAX. Checking the range against
 *    the buffer is the driver's job (catalogue A5, A6).
 *  - do_mmap() (6.1 and 6.12): len is page aligned and non-zero before ->mmap.
 *  - do_mmap() (6.1 and 6.12): VM_MAYWRITE is always set, and only cleared
 *    (with VM_SHARED) for MAP_SHARED of an O_RDONLY fd. So every MAP_PRIVATE
 *    vma is a COW mapping, even PROT_READ on an O_RDONLY fd (catalogue B3,
 *    B5, C1).
 *  - is_cow_mapping() (include/linux/mm.h, 6.1 and 6.12):
 *    (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE.
 *  - remap_pfn_range_internal() (6.1 and 6.12): on a COW vma the
 *    remap must cover the whole vma, else -EINVAL, and vm_pgoff is then
 *    rewritten to the pfn. vm_normal_page() (6.1 and 6.12): un-COWed
 *    pages are recognised by the linear rule pfn == vm_pgoff + page index.
 *  - remap_pfn_range_internal() (6.1 and 6.12) sets VM_IO | VM_PFNMAP |
 *    VM_DONTEXPAND | VM_DONTDUMP.
 *  - track_pfn_remap(), called by remap_pfn_range() (x86, 6.1 and 6.12):
 *    VM_PAT is set only when one remap covers the whole vma; smaller
 *    remaps just look up the memtype of each page. For RAM,
 *    reserve_pfn_range() reserves nothing, it only checks that the
 *    requested type matches.
 *  - vmf_insert_pfn_prot() (6.1): BUG_ON(VM_PFNMAP &&
 *    is_cow_mapping()): a Fault(pfn) driver must refuse COW mappings in
 *    ->mmap, or the first touch is a kernel BUG (catalogue C4; taxonomy #10).
 *  - insert_pfn() (6.1): a PTE that is already there
 *    is left alone and VM_FAULT_NOPAGE returned, so two threads faulting the
 *    same page cannot install it twice (taxonomy #12).
 *  - do_fault() (6.1): a vma without ->fault whose PTE is
 *    missing gets SIGBUS, never a silent zero page (catalogue J3).
 *  - vma_needs_copy() in copy_page_range() (6.1): fork copies VM_PFNMAP PTEs.
 *  - Who calls vm_ops->open: fork for the child's copy (dup_mmap(), 6.1),
 *    __split_vma() for the new half and copy_vma() for the target of an
 *    mremap move (6.1 and 6.12). ->close runs for every vma removed
 *    (remove_vma() through vma_close(), 6.1). The first mmap calls
 *    neither: ->mmap counts its own vma (catalogue D3).
 *  - __mmap_region() and mmap_file() (6.1): if ->mmap
 *    fails, the core unmaps the whole vma ("Undo any partial mapping done
 *    by a device driver") and installs dummy vm_ops first, so no vm_ops
 *    hook, ->close included, runs on the failed vma (catalogue D3;
 *    taxonomy #15).
 *  - __mmap_region() (6.1): after ->mmap changed vm_flags the core tries to
 *    merge the new vma into its neighbour and then frees it WITHOUT
 *    ->close. vma_merge() refuses VM_SPECIAL vmas (VM_SPECIAL includes
 *    VM_DONTEXPAND, include/linux/mm.h) and is_mergeable_vma() refuses
 *    vmas with ->close (both 6.1), so it cannot happen here; without
 *    both, live_vmas could leak a count.
 *  - do_mprotect_pkey() (6.1 and 6.12): mprotect() cannot add a permission
 *    whose VM_MAY* bit is clear (catalogue B4).
 *  - mmap_region() and __mmap_region() (6.1): the writable-mapping count
 *    taken before ->mmap is dropped after it, and the vma's own count follows
 *    the flags ->mmap left, so clearing VM_MAYWRITE in ->mmap is balanced.
 *  - vma_to_resize() (6.1 and 6.12): mremap cannot grow a VM_DONTEXPAND vma
 *    (catalogue F1).
 *  - vma_dump_size() (6.1): VM_DONTDUMP vmas are left out of core dumps.
 *  Models (6.1): mmap_mem() in drivers/char/mem.c (overflow checks),
 *  uio_mmap_physical() in drivers/uio/uio.c (size check),
 *  ttm_bo_mmap_obj() in drivers/gpu/drm/ttm/ttm_bo_vm.c (TTM refuses COW
 *  mappings).
 */

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/mm.h>

#include "mmapkit-priv.h"

/*
 * Check that [vm_pgoff << PAGE_SHIFT, + len) lies inside the buffer.
 * All arithmetic is unsigned long (vm_pgoff's own type), never int.
 */
static int mmapkit_check_range(const struct mmapkit_buf *buf,
			       const struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long pgoff = vma->vm_pgoff;
	unsigned long off;

	/*
	 * off >= size, compared in pages so that a huge pgoff is never
	 * shifted: stops offsets past the end (catalogue A6) and aliasing
	 * through truncated or wrapped offsets such as 1 << 32 or 2^64 - 2
	 * pages (catalogue A5, A7; taxonomy #2).
	 */
	if (pgoff >= buf->pages)
		return -EINVAL;
	off = pgoff << PAGE_SHIFT;	/* < size, cannot wrap */

	/*
	 * off + len > size, written so that it cannot wrap: stops a mapping
	 * that straddles the end or is longer than the buffer from exposing
	 * the kernel memory after it (catalogue A6; taxonomy #1).
	 */
	if (len > buf->size - off)
		return -EINVAL;

	return 0;
}

/* The range check of every ->mmap, counted as the device's refusal. */
static int mmapkit_mmap_check_range(struct mmapkit_dev *dev,
				    const struct vm_area_struct *vma)
{
	int ret = mmapkit_check_range(dev->buf, vma);

	if (ret)
		atomic64_inc(&dev->stats.mmap_einval_range);
	return ret;
}

/*
 * Refuse a COW mapping (MAP_PRIVATE, catalogue C1). Test is_cow_mapping(),
 * not VM_SHARED: a MAP_SHARED of an O_RDONLY fd has VM_SHARED cleared and
 * must still work (catalogue B3, its pitfall).
 */
static int mmapkit_refuse_cow(struct mmapkit_dev *dev,
			      const struct vm_area_struct *vma)
{
	if (!is_cow_mapping(vma->vm_flags))
		return 0;
	atomic64_inc(&dev->stats.mmap_einval_cow);
	return -EINVAL;
}

static void mmapkit_vma_open(struct vm_area_struct *vma)
{
	/*
	 * vm_private_data, set by ->mmap, is copied into every new vma by
	 * vm_area_dup() (fork, split, mremap). The device is never derived
	 * from vm_pgoff, which remap_pfn_range() rewrites to a pfn on a COW
	 * vma (remap_pfn_range_internal(), 6.1 and 6.12).
	 */
	struct mmapkit_dev *dev = vma->vm_private_data;

	atomic64_inc(&dev->stats.vma_open);
	atomic64_inc(&dev->stats.live_vmas);
}

static void mmapkit_vma_close(struct vm_area_struct *vma)
{
	struct mmapkit_dev *dev = vma->vm_private_data;

	atomic64_inc(&dev->stats.vma_close);
	atomic64_dec(&dev->stats.live_vmas);
}

/*
 * Insert the PTE for buffer page @index at user address @addr, with
 * vma->vm_page_prot. The only place the fault device maps a page, for the
 * faulting page and for its fault-around alike.
 *
 * A special PTE (insert_pfn(), 6.1): no struct page is referenced or counted,
 * so vm_normal_page() returns NULL for it and nothing ever frees the page
 * through the mapping; the buffer outlives the vma (.owner, see
 * mmapkit-main.c).
 *
 * A PTE that already exists is left as it is: insert_pfn() checks
 * pte_none() under the page-table lock and returns VM_FAULT_NOPAGE without
 * touching it (6.1).
 */
static vm_fault_t mmapkit_insert_page(struct vm_area_struct *vma,
				      unsigned long addr, unsigned long index)
{
	const struct mmapkit_dev *dev = vma->vm_private_data;

	return vmf_insert_pfn(vma, addr, mmapkit_buf_pfn(dev->buf, index));
}

/*
 * Fault-around: after the faulting page, map up to fault_around - 1 pages
 * that follow it, as TTM prefaults TTM_BO_VM_NUM_PREFAULT = 16 pages
 * forward from the faulting one (ttm_bo_vm_fault_reserved(), 6.1; the
 * constant is 16 in the 6.12 headers too), so a sequential first touch takes
 * one fault per fault_around pages.
 *
 * The window is clipped twice: to the vma, or vmf_insert_pfn() would
 * return VM_FAULT_SIGBUS for the first address past vm_end
 * (vmf_insert_pfn_prot(), 6.1) and a neighbouring vma must never get our pages;
 * and to the buffer, never trusting that the mmap-time range check still
 * covers the vma. Pages already mapped are left alone by insert_pfn()
 * (see mmapkit_insert_page()), so the window can overlap earlier faults.
 * Like TTM, an error on one of these pages only ends the fault-around (a
 * later touch of that page faults and reports it); they are not counted
 * as faults: faults_served counts ->fault calls, one per call.
 *
 * fault_around is read once per fault (mmapkit_fault_around_pages(),
 * READ_ONCE) and is 1..512, so the loop is bounded whatever a concurrent
 * write to the parameter does.
 */
static void mmapkit_fault_around(struct vm_fault *vmf,
				 const struct mmapkit_buf *buf)
{
	struct vm_area_struct *vma = vmf->vma;
	unsigned long pages = mmapkit_fault_around_pages();
	unsigned long i;

	/* vmf->address < vm_end and vmf->pgoff < buf->pages: both >= 1. */
	pages = min(pages, (vma->vm_end - vmf->address) >> PAGE_SHIFT);
	pages = min(pages, buf->pages - vmf->pgoff);

	for (i = 1; i < pages; i++) {
		if (mmapkit_insert_page(vma, vmf->address + (i << PAGE_SHIFT),
					vmf->pgoff + i) != VM_FAULT_NOPAGE)
			break;
	}
}

static vm_fault_t mmapkit_vma_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct mmapkit_dev *dev = vma->vm_private_data;
	vm_fault_t ret;

	/*
	 * vmf->pgoff = vm_pgoff + page index in the vma (linear_page_index()
	 * in __handle_mm_fault(), 6.1), so it is the buffer page: vm_pgoff is
	 * never rewritten here, as COW mappings are refused. It cannot pass the
	 * end while VM_DONTEXPAND holds, but a fault must not trust the
	 * mmap-time check alone (catalogue J1; taxonomy #3). VM_FAULT_SIGBUS,
	 * never VM_FAULT_NOPAGE without a PTE, which would re-fault forever
	 * (catalogue J2; taxonomy #11).
	 */
	if (vmf->pgoff >= dev->buf->pages) {
		atomic64_inc(&dev->stats.faults_refused);
		return VM_FAULT_SIGBUS;
	}

	/*
	 * vmf->address is page aligned (__handle_mm_fault(), 6.1). The
	 * faulting page first: its result alone is the fault's result and its
	 * count.
	 */
	ret = mmapkit_insert_page(vma, vmf->address, vmf->pgoff);
	if (ret == VM_FAULT_NOPAGE) {
		atomic64_inc(&dev->stats.faults_served);
		mmapkit_fault_around(vmf, dev->buf);
	} else if (ret & VM_FAULT_SIGBUS) {
		atomic64_inc(&dev->stats.faults_refused);
	}
	/* VM_FAULT_OOM (no page table) is counted as neither. */
	return ret;
}

/* remap and ro: every PTE exists from ->mmap on, so there is no ->fault. */
static const struct vm_operations_struct mmapkit_remap_vm_ops = {
	.open	= mmapkit_vma_open,
	.close	= mmapkit_vma_close,
};

static const struct vm_operations_struct mmapkit_fault_vm_ops = {
	.open	= mmapkit_vma_open,
	.close	= mmapkit_vma_close,
	.fault	= mmapkit_vma_fault,
};

/*
 * The last step of every successful ->mmap. The first mmap of a vma calls
 * no ->open, so the new vma is counted here, once nothing can fail any
 * more: a failing ->mmap is never ->close'd (mmap_file(), 6.1), so a count
 * taken before the failure would leak (catalogue D3; taxonomy #15).
 */
static void mmapkit_vma_install(struct mmapkit_dev *dev,
				struct vm_area_struct *vma,
				const struct vm_operations_struct *ops)
{
	vma->vm_private_data = dev;
	vma->vm_ops = ops;
	atomic64_inc(&dev->stats.mmap_ok);
	atomic64_inc(&dev->stats.live_vmas);
}

/*
 * Contiguous buffer: one remap_pfn_range() over the whole vma.
 *  - COW works (catalogue C1, C2): the remap covers the whole vma as
 *    remap_pfn_range_internal() requires, and the pfns are linear, so once
 *    vm_pgoff is rewritten to the first pfn vm_normal_page() tells device
 *    pages from COWed copies (both 6.1 and 6.12). A write then copies the
 *    page into an anonymous one (wp_page_copy()) and the buffer is
 *    unchanged. /proc/PID/maps then shows the physical address as the
 *    offset (catalogue H2; taxonomy #18, a kernel behaviour).
 *  - PAT: a whole-vma remap sets VM_PAT ("ar" in smaps VmFlags,
 *    track_pfn_remap()) on every mapping, shared or private. For RAM no
 *    memtype is reserved (reserve_pfn_range()), so a later split or partial
 *    munmap frees nothing that was not reserved. Known kernel issue on 6.1
 *    and 6.12 (catalogue E3): fork fails with ENOMEM once the FIRST page of
 *    such a MAP_PRIVATE mapping was COWed, because track_pfn_copy() looks
 *    up the pfn at vm_start and finds the anonymous copy.
 */
static int mmapkit_remap_whole(const struct mmapkit_buf *buf,
			       struct vm_area_struct *vma)
{
	/* Read before the call: on a COW vma it rewrites vm_pgoff. */
	unsigned long pfn = mmapkit_buf_pfn(buf, vma->vm_pgoff);

	/*
	 * vma->vm_page_prot as the core computed it: a hard-coded
	 * PAGE_SHARED would make PROT_READ mappings writable (catalogue B7;
	 * taxonomy #6).
	 */
	return remap_pfn_range(vma, vma->vm_start, pfn,
			       vma->vm_end - vma->vm_start, vma->vm_page_prot);
}

/*
 * vmalloc buffer: one remap_pfn_range() per page, as vmalloc memory is
 * only virtually contiguous and each page has its own pfn.
 *  - COW: a COW remap must cover the whole vma (remap_pfn_range_internal()),
 *    and vm_normal_page() can only tell device pages from COWed copies if
 *    the pfns are linear from vm_pgoff. Neither holds, so
 *    mmapkit_remap_vma() refuses COW mappings before getting here.
 *  - PAT: only a one-page mapping is a whole-vma remap and gets VM_PAT;
 *    each page of a longer one keeps the memtype of its RAM page
 *    (write-back) through the per-page lookup.
 *
 * If a remap fails part way, remap_pfn_range() zaps its own partial range
 * (remap_pfn_range_notrack(), 6.1 and 6.12) and the core unmaps the whole
 * vma (__mmap_region(), 6.1), so nothing is left to undo here.
 */
static int mmapkit_remap_pages(const struct mmapkit_buf *buf,
			       struct vm_area_struct *vma)
{
	unsigned long index = vma->vm_pgoff;
	unsigned long uaddr;
	int ret;

	for (uaddr = vma->vm_start; uaddr < vma->vm_end; uaddr += PAGE_SIZE) {
		ret = remap_pfn_range(vma, uaddr, mmapkit_buf_pfn(buf, index),
				      PAGE_SIZE, vma->vm_page_prot);
		if (ret)
			return ret;
		index++;
	}

	return 0;
}

/* The remap shape, after the range check (and, for ro, the write check). */
static int mmapkit_remap_vma(struct mmapkit_dev *dev,
			     struct vm_area_struct *vma)
{
	const struct mmapkit_buf *buf = dev->buf;
	int ret;

	/*
	 * MAP_PRIVATE over a vmalloc buffer: the per-page remap cannot back
	 * it (see mmapkit_remap_pages()). Without this check a multi-page
	 * MAP_PRIVATE would fail inside remap_pfn_range(), and a one-page
	 * one would succeed with vm_pgoff rewritten to a physical pfn
	 * (catalogue C1; taxonomy #10, #18).
	 */
	if (!buf->contiguous) {
		ret = mmapkit_refuse_cow(dev, vma);
		if (ret)
			return ret;
	}

	/*
	 * VM_DONTEXPAND: the range was checked once, here; mremap() must not
	 * grow the vma past the buffer (catalogue F1, F2; taxonomy #3). It is
	 * also VM_SPECIAL, which keeps the core from merging this vma away
	 * without ->close (see the rules above).
	 * VM_DONTDUMP: keep shared device memory out of core dumps
	 * (catalogue H4; taxonomy #13).
	 * remap_pfn_range() sets both as well (remap_pfn_range_internal(),
	 * 6.1 and 6.12); they are set here so this driver does not depend on
	 * that side effect.
	 */
	mmapkit_vma_mod_flags(vma, VM_DONTEXPAND | VM_DONTDUMP, 0);

	if (buf->contiguous)
		ret = mmapkit_remap_whole(buf, vma);
	else
		ret = mmapkit_remap_pages(buf, vma);
	if (ret) {
		atomic64_inc(&dev->stats.mmap_other_error);
		return ret;
	}

	mmapkit_vma_install(dev, vma, &mmapkit_remap_vm_ops);
	return 0;
}

/* ->mmap of mmapkit-remap and mmapkit: every PTE now, no faults later. */
int mmapkit_mmap_remap(struct file *file, struct vm_area_struct *vma)
{
	struct mmapkit_dev *dev = mmapkit_from_file(file);
	int ret;

	ret = mmapkit_mmap_check_range(dev, vma);
	if (ret)
		return ret;

	return mmapkit_remap_vma(dev, vma);
}

/* ->mmap of mmapkit-fault: no PTE now; ->fault maps them on first touch. */
int mmapkit_mmap_fault(struct file *file, struct vm_area_struct *vma)
{
	struct mmapkit_dev *dev = mmapkit_from_file(file);
	int ret;

	ret = mmapkit_mmap_check_range(dev, vma);
	if (ret)
		return ret;

	/*
	 * vmf_insert_pfn() in a COW VM_PFNMAP vma is a BUG_ON
	 * (vmf_insert_pfn_prot(), 6.1; catalogue C4), whatever the buffer:
	 * refuse, as TTM does (ttm_bo_mmap_obj(), 6.1).
	 */
	ret = mmapkit_refuse_cow(dev, vma);
	if (ret)
		return ret;

	/*
	 * VM_PFNMAP: vmf_insert_pfn() requires exactly one of VM_PFNMAP and
	 * VM_MIXEDMAP (vmf_insert_pfn_prot(), 6.1); PFNMAP because the PTEs
	 * are raw pfns with no page reference. It also makes GUP refuse the
	 * range (check_vma_flags(), 6.1 and 6.12), fork copy the PTEs
	 * (vma_needs_copy(), 6.1) and
	 * mlock ignore it (VM_SPECIAL). No VM_IO: the buffer is RAM, and
	 * reading it has no side effects.
	 * VM_DONTEXPAND, VM_DONTDUMP: as for remap (mmapkit_remap_vma()).
	 * remap_pfn_range() is never called here, so nobody else sets them.
	 */
	mmapkit_vma_mod_flags(vma, VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP, 0);

	mmapkit_vma_install(dev, vma, &mmapkit_fault_vm_ops);
	return 0;
}

/* ->mmap of mmapkit-ro: the remap shape, never writable. */
int mmapkit_mmap_ro(struct file *file, struct vm_area_struct *vma)
{
	struct mmapkit_dev *dev = mmapkit_from_file(file);
	int ret;

	ret = mmapkit_mmap_check_range(dev, vma);
	if (ret)
		return ret;

	/*
	 * Any VM_WRITE mapping, shared or private (usbmon's mon_bin_mmap()
	 * returns EPERM; EACCES is what the core itself returns for a shared
	 * writable map of an O_RDONLY fd, catalogue B2).
	 */
	if (vma->vm_flags & VM_WRITE) {
		atomic64_inc(&dev->stats.mmap_eacces_write);
		return -EACCES;
	}

	/*
	 * Without VM_MAYWRITE a later mprotect(PROT_WRITE) fails with EACCES
	 * (do_mprotect_pkey(), 6.1 and 6.12; catalogue B4, taxonomy #6). It
	 * also makes a MAP_PRIVATE
	 * vma no longer a COW mapping (is_cow_mapping() needs VM_MAYWRITE),
	 * so a read-only private map is a plain read-only view of the
	 * buffer on either allocation, and mmapkit_remap_vma() lets it
	 * through.
	 */
	mmapkit_vma_mod_flags(vma, 0, VM_MAYWRITE);

	return mmapkit_remap_vma(dev, vma);
}
