// SPDX-License-Identifier: GPL-2.0
/*
 * mmapkit - reference char devices for the mmapkit mmap conformance suite.
 *
 * One zeroed kernel buffer of "size" bytes, shown through four misc
 * devices, each with its own counters (mmapkit-stats.c):
 *
 *  /dev/mmapkit-remap  ->mmap maps every page with remap_pfn_range()
 *  /dev/mmapkit-fault  ->fault maps fault_around pages (default 1) per fault
 *                      with vmf_insert_pfn()
 *  /dev/mmapkit-ro     like remap, but never writable
 *  /dev/mmapkit        the skeleton's name: an alias of mmapkit-remap
 *
 * A write through any of them, by mmap or write(), is seen through all.
 * The mmap shapes are in mmapkit-mmap.c; this file owns the buffer, the
 * devices, read/write/llseek and the module's load and unload.
 *
 * Kernel rules this file relies on, by function and kernel series (the
 * rows are in docs/catalogue.md):
 *
 *  - MAX_ORDER in include/linux/mmzone.h (6.1): the buddy allocator's
 *    largest block is order MAX_ORDER - 1 = 10, 4 MiB with 4 KiB pages.
 *    alloc_pages_exact() (6.1; alloc_pages_exact_noprof() on 6.12)
 *    allocates that order and frees the pages past size
 *    (make_alloc_exact(), 6.1 and 6.12).
 *    (Later kernels redefine MAX_ORDER as the largest order itself and
 *    then rename it MAX_PAGE_ORDER: mmapkit-compat.h hides that.)
 *  - vmalloc_user() (6.1; vmalloc_user_noprof() on 6.12): zeroed,
 *    VM_USERMAP memory meant to be mapped to userspace.
 *  - get_file() in __mmap_region() and fops_put() in __fput() (6.1 and
 *    6.12): the vma holds the file, and the file holds f_op->owner;
 *    misc_open() (fops_get() + replace_fops(), 6.1 and 6.12) makes our
 *    fops, and so THIS_MODULE, the file's f_op (catalogue D1, D2).
 *  - do_dentry_open() (6.1 and 6.12): FMODE_CAN_READ/WRITE are set after
 *    ->open from the final f_op, and vfs_write() (6.1 and 6.12) fails
 *    without FMODE_CAN_WRITE with EINVAL: so the ro device, which has no
 *    .write, refuses write() with EINVAL.
 *  - simple_read_from_buffer(), simple_write_to_buffer() and
 *    fixed_size_llseek() (6.1 and 6.12).
 *
 * The allocation, and what it decides:
 *
 *  contiguous  size <= 4 MiB (default 1 MiB): alloc_pages_exact() with
 *              __GFP_ZERO. The remap devices map any range with ONE
 *              remap_pfn_range() over the whole vma, so x86 PAT tracks
 *              the vma (VM_PAT, "ar" in smaps, track_pfn_remap()) and
 *              MAP_PRIVATE works as copy-on-write, with vm_pgoff rewritten
 *              to the pfn (catalogue C1, C2; remap_pfn_range_internal(),
 *              6.1 and 6.12).
 *  vmalloc     larger sizes, or when no 4 MiB block is free: vmalloc_user().
 *              The remap devices map it page by page, so only a one-page
 *              mapping gets VM_PAT, and MAP_PRIVATE must be refused with
 *              EINVAL (remap_pfn_range_internal()).
 *
 * The fault device inserts single pages either way and refuses
 * MAP_PRIVATE on both (vmf_insert_pfn_prot(), 6.1; catalogue C4).
 * MMAPKIT_IOC_INFO reports which allocation was made.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sizes.h>
#include <linux/stringify.h>
#include <linux/vmalloc.h>

#include "mmapkit-priv.h"

#define MMAPKIT_MAX_SIZE	(MMAPKIT_MAX_SIZE_MIB * SZ_1M)

/* One page table's worth of PTEs (2 MiB with 4 KiB pages). */
#define MMAPKIT_FAULT_AROUND_MAX	512

/* The largest physically contiguous buffer: one block of the top order. */
#define MMAPKIT_CONTIG_MAX	MMAPKIT_MAX_ORDER_BYTES

/*
 * Buffer size in bytes, K/M/G suffixes accepted (memparse). Rounded up to
 * whole pages at load time and written back, so
 * /sys/module/mmapkit/parameters/size is the size a test may map.
 */
static unsigned long mmapkit_size = SZ_1M;

static int mmapkit_size_set(const char *val, const struct kernel_param *kp)
{
	char *end;
	unsigned long long size = memparse(val, &end);

	if (end == val || (*end && *end != '\n'))
		return -EINVAL;
	/* Range checked in mmapkit_init(), with the error message. */
	*(unsigned long *)kp->arg = size;
	return 0;
}

static const struct kernel_param_ops mmapkit_size_ops = {
	.set	= mmapkit_size_set,
	.get	= param_get_ulong,	/* bytes, decimal */
};

module_param_cb(size, &mmapkit_size_ops, &mmapkit_size, 0444);
MODULE_PARM_DESC(size,
		 "Buffer size in bytes (K/M/G suffixes accepted), 1 byte.."
		 __stringify(MMAPKIT_MAX_SIZE_MIB)
		 " MiB, rounded up to pages (default 1 MiB); physically contiguous up to 4 MiB, else vmalloc");

/*
 * Fault-around of the fault device: pages each ->fault maps, the faulting
 * one and the next ones (see mmapkit_vma_fault()). Writable at run time
 * through /sys/module/mmapkit/parameters/fault_around, so a benchmark can
 * compare values without unloading the module (which needs every mapping
 * gone): the setter range-checks before it stores, with WRITE_ONCE, and
 * each fault reads the value once with READ_ONCE, so a fault sees the old
 * or the new value, never a torn or unchecked one. A change applies to the
 * faults that follow it; pages already mapped stay mapped.
 */
static unsigned int mmapkit_fault_around = 1;

static int mmapkit_fault_around_set(const char *val,
				    const struct kernel_param *kp)
{
	unsigned int pages;
	int ret;

	ret = kstrtouint(val, 0, &pages);
	if (ret)
		return ret;
	if (pages < 1 || pages > MMAPKIT_FAULT_AROUND_MAX)
		return -EINVAL;
	WRITE_ONCE(*(unsigned int *)kp->arg, pages);
	return 0;
}

static const struct kernel_param_ops mmapkit_fault_around_ops = {
	.set	= mmapkit_fault_around_set,
	.get	= param_get_uint,
};

module_param_cb(fault_around, &mmapkit_fault_around_ops,
		&mmapkit_fault_around, 0644);
MODULE_PARM_DESC(fault_around,
		 "Pages the fault device maps per fault: the faulting page and up to N-1 after it, clipped to the VMA and the buffer, 1..512 (default 1; DRM TTM uses 16); writable at run time");

unsigned int mmapkit_fault_around_pages(void)
{
	return READ_ONCE(mmapkit_fault_around);
}

static struct mmapkit_buf mmapkit_buf;

/* The pfn backing buffer page @index; the caller checks index < pages. */
unsigned long mmapkit_buf_pfn(const struct mmapkit_buf *buf,
			      unsigned long index)
{
	const void *addr = buf->vaddr + (index << PAGE_SHIFT);

	if (buf->contiguous)
		return page_to_pfn(virt_to_page(addr));
	return vmalloc_to_pfn(addr);
}

/*
 * Zeroed either way, so no stale kernel data reaches userspace
 * (catalogue A2; taxonomy #5). @size is a whole number of pages.
 */
static int mmapkit_buf_alloc(struct mmapkit_buf *buf, unsigned long size)
{
	buf->size = size;
	buf->pages = size >> PAGE_SHIFT;

	if (size <= MMAPKIT_CONTIG_MAX) {
		/*
		 * __GFP_NOWARN: a failure here is not an error, the vmalloc
		 * fallback follows, so no allocation-failure splat in dmesg.
		 */
		buf->vaddr = alloc_pages_exact(size, GFP_KERNEL | __GFP_ZERO |
						     __GFP_NOWARN);
		if (buf->vaddr) {
			buf->contiguous = true;
			return 0;
		}
	}

	buf->contiguous = false;
	buf->vaddr = vmalloc_user(size);
	return buf->vaddr ? 0 : -ENOMEM;
}

static void mmapkit_buf_free(struct mmapkit_buf *buf)
{
	if (buf->contiguous)
		free_pages_exact(buf->vaddr, buf->size);
	else
		vfree(buf->vaddr);
	buf->vaddr = NULL;
}

/*
 * read() and write() copy straight between the buffer and user memory,
 * holding no lock: the user buffer may be a not yet faulted mapping of
 * the fault device itself, whose ->fault must then be free to run
 * (catalogue I5; taxonomy #14).
 */
static ssize_t mmapkit_read(struct file *file, char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	const struct mmapkit_buf *buf = mmapkit_from_file(file)->buf;

	return simple_read_from_buffer(ubuf, count, ppos, buf->vaddr,
				       buf->size);
}

static ssize_t mmapkit_write(struct file *file, const char __user *ubuf,
			     size_t count, loff_t *ppos)
{
	const struct mmapkit_buf *buf = mmapkit_from_file(file)->buf;

	/*
	 * At or past the end the buffer is full: ENOSPC, as for a block
	 * device, where simple_write_to_buffer() would return 0, which a
	 * write loop retries forever.
	 */
	if (count && *ppos >= (loff_t)buf->size)
		return -ENOSPC;

	return simple_write_to_buffer(buf->vaddr, buf->size, ppos, ubuf,
				      count);
}

static loff_t mmapkit_llseek(struct file *file, loff_t offset, int whence)
{
	const struct mmapkit_buf *buf = mmapkit_from_file(file)->buf;

	return fixed_size_llseek(file, offset, whence, buf->size);
}

/*
 * .owner: the vma holds the file (__mmap_region()) and the file holds a
 * module reference until the last munmap (__fput()), so the module, and
 * the buffer that mmapkit_exit() frees, outlive every mapping, even after
 * close(fd) (catalogue D1, D2; taxonomy #8, #9).
 *
 * compat_ptr_ioctl: every ioctl struct is made of __u64 and __u32 fields
 * in an order that has the same layout on i386, so 32-bit callers share
 * the ioctl numbers and the code.
 */
static const struct file_operations mmapkit_remap_fops = {
	.owner		= THIS_MODULE,
	.read		= mmapkit_read,
	.write		= mmapkit_write,
	.llseek		= mmapkit_llseek,
	.mmap		= mmapkit_mmap_remap,
	.unlocked_ioctl	= mmapkit_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static const struct file_operations mmapkit_fault_fops = {
	.owner		= THIS_MODULE,
	.read		= mmapkit_read,
	.write		= mmapkit_write,
	.llseek		= mmapkit_llseek,
	.mmap		= mmapkit_mmap_fault,
	.unlocked_ioctl	= mmapkit_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/* No .write: write() fails with EINVAL in vfs_write() (6.1 and 6.12). */
static const struct file_operations mmapkit_ro_fops = {
	.owner		= THIS_MODULE,
	.read		= mmapkit_read,
	.llseek		= mmapkit_llseek,
	.mmap		= mmapkit_mmap_ro,
	.unlocked_ioctl	= mmapkit_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/*
 * Mode 0666 for all four, the ro device included: tests also run
 * unprivileged, and an unprivileged O_RDWR open of the ro device must
 * reach the driver's own refusal, not the permission bits.
 */
#define MMAPKIT_DEV(devname, devkind, devfops)		\
	{						\
		.misc = {				\
			.minor	= MISC_DYNAMIC_MINOR,	\
			.name	= devname,		\
			.fops	= devfops,		\
			.mode	= 0666,			\
		},					\
		.kind	= devkind,			\
		.buf	= &mmapkit_buf,			\
	}

static struct mmapkit_dev mmapkit_devs[] = {
	MMAPKIT_DEV("mmapkit-remap", MMAPKIT_KIND_REMAP, &mmapkit_remap_fops),
	MMAPKIT_DEV("mmapkit-fault", MMAPKIT_KIND_FAULT, &mmapkit_fault_fops),
	MMAPKIT_DEV("mmapkit-ro", MMAPKIT_KIND_RO, &mmapkit_ro_fops),
	/* The skeleton's name, so existing users and profiles keep working. */
	MMAPKIT_DEV("mmapkit", MMAPKIT_KIND_REMAP, &mmapkit_remap_fops),
};

static int __init mmapkit_init(void)
{
	unsigned int i;
	int ret;

	/* Checked before PAGE_ALIGN(), which would wrap a huge value to 0. */
	if (!mmapkit_size || mmapkit_size > MMAPKIT_MAX_SIZE) {
		pr_err("size=%lu is invalid: must be 1..%u bytes\n",
		       mmapkit_size, MMAPKIT_MAX_SIZE);
		return -EINVAL;
	}
	mmapkit_size = PAGE_ALIGN(mmapkit_size);

	ret = mmapkit_buf_alloc(&mmapkit_buf, mmapkit_size);
	if (ret) {
		pr_err("size=%lu: cannot allocate the buffer\n", mmapkit_size);
		return ret;
	}

	/* Before the devices, so that no device is ever seen without them. */
	mmapkit_debugfs_init();
	for (i = 0; i < ARRAY_SIZE(mmapkit_devs); i++)
		mmapkit_debugfs_add(&mmapkit_devs[i]);

	/* Last: from here on, user space can open the devices. */
	for (i = 0; i < ARRAY_SIZE(mmapkit_devs); i++) {
		ret = misc_register(&mmapkit_devs[i].misc);
		if (ret) {
			pr_err("cannot register /dev/%s: %d\n",
			       mmapkit_devs[i].misc.name, ret);
			goto err_deregister;
		}
	}

	return 0;

err_deregister:
	while (i--)
		misc_deregister(&mmapkit_devs[i].misc);
	mmapkit_debugfs_exit();
	mmapkit_buf_free(&mmapkit_buf);
	return ret;
}

static void __exit mmapkit_exit(void)
{
	unsigned int i = ARRAY_SIZE(mmapkit_devs);

	while (i--)
		misc_deregister(&mmapkit_devs[i].misc);
	mmapkit_debugfs_exit();
	mmapkit_buf_free(&mmapkit_buf);
}

module_init(mmapkit_init);
module_exit(mmapkit_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("mmapkit");
MODULE_DESCRIPTION("Reference char devices for mmap conformance tests");
