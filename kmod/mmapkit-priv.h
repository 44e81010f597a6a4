/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmapkit - the driver's private declarations, shared by its three files:
 *
 *  mmapkit-main.c   the buffer, the four misc devices, read/write/llseek,
 *                   module parameters (size, fault_around), init and exit;
 *  mmapkit-mmap.c   the three ->mmap shapes and their vm_operations;
 *  mmapkit-stats.c  the per-device counters, the ioctls and debugfs.
 *
 * Named mmapkit-priv.h, not mmapkit.h, so that it cannot be confused with
 * the user-space interface uapi/mmapkit.h (found through -I$(src)/uapi,
 * see Kbuild).
 */
#ifndef _MMAPKIT_PRIV_H
#define _MMAPKIT_PRIV_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm_types.h>
#include <linux/types.h>

#include <mmapkit.h>

#include "mmapkit-compat.h"	/* what differs between kernel versions */

struct dentry;

/*
 * The one buffer behind every device. Allocated at load, freed at unload,
 * never resized: PFNMAP PTEs hold no page references, so the module
 * reference that every VMA holds through its file (see .owner in
 * mmapkit-main.c) is what keeps these pages alive while mapped
 * (catalogue D1, D2; taxonomy #8).
 */
struct mmapkit_buf {
	void *vaddr;		/* page aligned, zeroed */
	unsigned long size;	/* bytes, a whole number of pages */
	unsigned long pages;	/* size >> PAGE_SHIFT */
	/*
	 * true: alloc_pages_exact(), physically contiguous, one
	 * remap_pfn_range() covers any mapping. false: vmalloc_user(),
	 * mapped page by page. See mmapkit_buf_alloc().
	 */
	bool contiguous;
};

/*
 * One device's counters, named as the fields of struct mmapkit_stats.
 * Atomics, not a lock: they are bumped from ->mmap, ->fault and vm_ops
 * open/close, which run under mmap_lock, and a driver lock there would
 * only add a lock order to get wrong (taxonomy #14).
 */
#define MMAPKIT_EVENT(name)	atomic64_t name
#define MMAPKIT_STATE(name)	atomic64_t name
struct mmapkit_counters MMAPKIT_STATS;
#undef MMAPKIT_EVENT
#undef MMAPKIT_STATE

/* struct mmapkit_stats is nothing but its __u64 counters. */
#define MMAPKIT_NR_STATS	(sizeof(struct mmapkit_stats) / sizeof(__u64))

struct mmapkit_dev {
	struct miscdevice misc;		/* .name is the /dev and debugfs name */
	enum mmapkit_kind kind;
	const struct mmapkit_buf *buf;	/* shared by all devices */
	struct mmapkit_counters stats;
};

static inline struct mmapkit_dev *mmapkit_from_file(struct file *file)
{
	/* misc_open() stores the miscdevice in private_data (6.1, 6.12). */
	return container_of(file->private_data, struct mmapkit_dev, misc);
}

/* mmapkit-main.c */
unsigned long mmapkit_buf_pfn(const struct mmapkit_buf *buf,
			      unsigned long index);
unsigned int mmapkit_fault_around_pages(void);

/* mmapkit-mmap.c: the ->mmap of each device kind. */
int mmapkit_mmap_remap(struct file *file, struct vm_area_struct *vma);
int mmapkit_mmap_fault(struct file *file, struct vm_area_struct *vma);
int mmapkit_mmap_ro(struct file *file, struct vm_area_struct *vma);

/* mmapkit-stats.c */
long mmapkit_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
void mmapkit_debugfs_init(void);
void mmapkit_debugfs_add(struct mmapkit_dev *dev);
void mmapkit_debugfs_exit(void);

#endif /* _MMAPKIT_PRIV_H */
