// SPDX-License-Identifier: GPL-2.0
/*
 * mmapkit - reference char device for the mmapkit mmap conformance suite.
 *
 * /dev/mmapkit exposes one zeroed kernel buffer of "size" bytes through
 * mmap(MAP_SHARED). It is the "PFN (remap)" driver shape: ->mmap maps every
 * page at once with remap_pfn_range() and there is no ->fault.
 *
 * Kernel rules this driver relies on (line numbers from Debian's
 * linux-source-6.1, 6.1.192):
 *
 *  - mm/mmap.c:1234-1264 (file_mmap_size_max, file_mmap_ok): for a char
 *    device without FMODE_UNSIGNED_OFFSET the core only guarantees
 *    (pgoff << PAGE_SHIFT) + len <= ULONG_MAX. Checking the range against
 *    the buffer is the driver's job (catalogue A5, A6).
 *  - mm/mmap.c:1302-1304: len is page aligned and non-zero before ->mmap.
 *  - mm/mmap.c:1337, 1384-1386: VM_MAYWRITE is always set, and only cleared
 *    (with VM_SHARED) for MAP_SHARED of an O_RDONLY fd. So every MAP_PRIVATE
 *    vma is a COW mapping, even PROT_READ on an O_RDONLY fd (B3, B5, C1).
 *  - include/linux/mm.h:1276-1279 (is_cow_mapping):
 *    (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE.
 *  - mm/memory.c:2512-2515 (remap_pfn_range_internal): on a COW vma the
 *    remap must cover the whole vma, else -EINVAL, and vm_pgoff is then
 *    rewritten to the pfn. mm/memory.c:588-591 (vm_normal_page): un-COWed
 *    pages are recognised by the linear rule pfn == vm_pgoff + page index.
 *  - mm/memory.c:2518: remap_pfn_range sets VM_IO | VM_PFNMAP |
 *    VM_DONTEXPAND | VM_DONTDUMP.
 *  - mm/memory.c:2573 + arch/x86/mm/pat/memtype.c:1081-1088
 *    (track_pfn_remap): VM_PAT is set only when one remap covers the whole
 *    vma; smaller remaps just look up the memtype of each page.
 *  - mm/mmap.c:2892-2893: if ->mmap fails, the core unmaps the whole vma
 *    ("Undo any partial mapping done by a device driver"), and
 *    mm/util.c:1106-1121 (mmap_file) installs dummy vm_ops so no vm_ops
 *    hook runs on the failed vma (D3).
 *  - mm/mmap.c:2779 (get_file) and fs/file_table.c:325 (fops_put in
 *    __fput): the vma holds the file, and the file holds f_op->owner;
 *    drivers/char/misc.c:113,143 (misc_open: fops_get + replace_fops)
 *    makes our fops, and so THIS_MODULE, the file's f_op (D1, D2).
 *  - mm/mremap.c:826-827: mremap cannot grow a VM_DONTEXPAND vma (F1).
 *  - fs/coredump.c:1102-1103: VM_DONTDUMP vmas are left out of core dumps.
 *  - mm/vmalloc.c:3443-3458 (vmalloc_user): zeroed, VM_USERMAP memory meant
 *    to be mapped to userspace.
 *  Models: drivers/char/mem.c:367-373 (mmap_mem overflow checks),
 *  drivers/uio/uio.c:739-740 (uio_mmap_physical size check).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sizes.h>
#include <linux/vmalloc.h>

#define MMAPKIT_MAX_SIZE	SZ_64M

/*
 * Buffer size in bytes. Rounded up to whole pages at load time and written
 * back, so /sys/module/mmapkit/parameters/size is the size a test may map.
 */
static unsigned long mmapkit_size = SZ_1M;
module_param_named(size, mmapkit_size, ulong, 0444);
MODULE_PARM_DESC(size,
		 "Buffer size in bytes, 1..64 MiB, rounded up to pages (default 1 MiB)");

/* One mapped device. A later version instantiates several of these. */
struct mmapkit_dev {
	struct miscdevice misc;
	void *buf;		/* vmalloc_user(), page aligned, zeroed */
	unsigned long size;	/* bytes, a whole number of pages */
};

static struct mmapkit_dev *mmapkit_from_file(struct file *file)
{
	/* misc_open() stores the miscdevice in private_data (misc.c:140). */
	return container_of(file->private_data, struct mmapkit_dev, misc);
}

/*
 * The only place that writes vm_flags. On 6.1 they are written directly;
 * 6.3+ needs vm_flags_set() here instead.
 */
static void mmapkit_vma_set_flags(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

/*
 * Check that [vm_pgoff << PAGE_SHIFT, + len) lies inside the buffer.
 * All arithmetic is unsigned long (vm_pgoff's own type), never int.
 */
static int mmapkit_check_range(const struct mmapkit_dev *dev,
			       const struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long pgoff = vma->vm_pgoff;
	unsigned long off;

	/*
	 * off >= size, compared in pages so that a huge pgoff is never
	 * shifted: stops offsets past the end (A6) and aliasing through
	 * truncated or wrapped offsets such as 1 << 32 or 2^64 - 2 pages
	 * (A5, A7; bug #2).
	 */
	if (pgoff >= dev->size >> PAGE_SHIFT)
		return -EINVAL;
	off = pgoff << PAGE_SHIFT;	/* < size, cannot wrap */

	/*
	 * off + len > size, written so that it cannot wrap: stops a mapping
	 * that straddles the end or is longer than the buffer from exposing
	 * the kernel memory after it (A6; bug #1).
	 */
	if (len > dev->size - off)
		return -EINVAL;

	return 0;
}

/*
 * Map the buffer one page at a time: vmalloc memory is only virtually
 * contiguous, so each page has its own pfn.
 *
 * Consequences of this choice:
 *  - COW: remap_pfn_range() on a COW vma must cover the whole vma
 *    (memory.c:2512-2514), and vm_normal_page() can only tell device pages
 *    from COWed copies if pfns are linear from vm_pgoff (memory.c:588-591).
 *    Neither holds for a per-page remap, so mmapkit_mmap() refuses COW
 *    mappings before getting here.
 *  - PAT: track_pfn_remap() reserves a memtype and sets VM_PAT only for a
 *    remap of the whole vma (memtype.c:1081-1088). So a one-page mapping
 *    gets VM_PAT ("ar" in smaps VmFlags) and longer ones do not; each page
 *    of a longer one keeps the memtype of its RAM page (write-back).
 *
 * If a remap fails part way, the core unmaps the whole vma
 * (mmap.c:2892-2893), so nothing is left to undo here.
 */
static int mmapkit_remap(const struct mmapkit_dev *dev,
			 struct vm_area_struct *vma)
{
	unsigned long off = vma->vm_pgoff << PAGE_SHIFT;
	unsigned long uaddr;
	int ret;

	for (uaddr = vma->vm_start; uaddr < vma->vm_end; uaddr += PAGE_SIZE) {
		/*
		 * vma->vm_page_prot as the core computed it: a hard-coded
		 * PAGE_SHARED would make PROT_READ mappings writable (B7;
		 * bug #6).
		 */
		ret = remap_pfn_range(vma, uaddr,
				      vmalloc_to_pfn(dev->buf + off),
				      PAGE_SIZE, vma->vm_page_prot);
		if (ret)
			return ret;
		off += PAGE_SIZE;
	}

	return 0;
}

static int mmapkit_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct mmapkit_dev *dev = mmapkit_from_file(file);
	int ret;

	ret = mmapkit_check_range(dev, vma);
	if (ret)
		return ret;

	/*
	 * MAP_PRIVATE (a COW mapping even when PROT_READ, C1): the per-page
	 * remap cannot support it (see mmapkit_remap()). Without this check
	 * a multi-page MAP_PRIVATE would fail inside remap_pfn_range(), and
	 * a one-page one would succeed with vm_pgoff rewritten to a physical
	 * pfn (C1; bug #10, #18). Test is_cow_mapping(), not VM_SHARED: a
	 * MAP_SHARED of an O_RDONLY fd has VM_SHARED cleared (B3) and must
	 * still work.
	 */
	if (is_cow_mapping(vma->vm_flags))
		return -EINVAL;

	/*
	 * VM_DONTEXPAND: the range was checked once, here; mremap() must not
	 * grow the vma past the buffer (F1, F2; bug #3).
	 * VM_DONTDUMP: keep shared device memory out of core dumps (H4;
	 * bug #13).
	 * remap_pfn_range() sets both as well (memory.c:2518); they are set
	 * here so this driver does not depend on that side effect.
	 */
	mmapkit_vma_set_flags(vma, VM_DONTEXPAND | VM_DONTDUMP);

	return mmapkit_remap(dev, vma);
}

/*
 * .owner: the vma holds the file (mmap.c:2779) and the file holds a module
 * reference until the last munmap (file_table.c:325), so the module, and
 * the buffer that mmapkit_exit() frees, outlive every mapping, even after
 * close(fd) (D1, D2; bugs #8, #9).
 */
static const struct file_operations mmapkit_fops = {
	.owner	= THIS_MODULE,
	.mmap	= mmapkit_mmap,
};

static struct mmapkit_dev mmapkit = {
	.misc = {
		.minor	= MISC_DYNAMIC_MINOR,
		.name	= "mmapkit",
		.fops	= &mmapkit_fops,
		.mode	= 0666,	/* tests also run unprivileged */
	},
};

static int __init mmapkit_init(void)
{
	int ret;

	/* Checked before PAGE_ALIGN(), which would wrap a huge value to 0. */
	if (!mmapkit_size || mmapkit_size > MMAPKIT_MAX_SIZE) {
		pr_err("size=%lu is invalid: must be 1..%u bytes\n",
		       mmapkit_size, MMAPKIT_MAX_SIZE);
		return -EINVAL;
	}
	mmapkit_size = PAGE_ALIGN(mmapkit_size);
	mmapkit.size = mmapkit_size;

	/* Zeroed, so no stale kernel data reaches userspace (A2; bug #5). */
	mmapkit.buf = vmalloc_user(mmapkit.size);
	if (!mmapkit.buf)
		return -ENOMEM;

	ret = misc_register(&mmapkit.misc);
	if (ret)
		goto err_free_buf;

	return 0;

err_free_buf:
	vfree(mmapkit.buf);
	return ret;
}

static void __exit mmapkit_exit(void)
{
	misc_deregister(&mmapkit.misc);
	vfree(mmapkit.buf);
}

module_init(mmapkit_init);
module_exit(mmapkit_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("mmapkit");
MODULE_DESCRIPTION("Reference char device for mmap conformance tests");
