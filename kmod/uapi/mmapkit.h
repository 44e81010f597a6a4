/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * mmapkit reference driver: the user-space interface.
 *
 * Shared by the driver (kmod/) and the Node addon (native/), so that both
 * sides agree on every layout. Each device (/dev/mmapkit-remap,
 * /dev/mmapkit-fault, /dev/mmapkit-ro and the skeleton's name /dev/mmapkit,
 * an alias of the remap device) answers these ioctls about itself; the
 * buffer behind all of them is one and the same.
 */
#ifndef _UAPI_LINUX_MMAPKIT_H
#define _UAPI_LINUX_MMAPKIT_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* 0xB8 is unused in Documentation/userspace-api/ioctl/ioctl-number.rst (6.1). */
#define MMAPKIT_IOC_MAGIC	0xB8

/* How a device's ->mmap populates page tables. */
enum mmapkit_kind {
	MMAPKIT_KIND_REMAP = 0,	/* remap_pfn_range at mmap time, no faults */
	MMAPKIT_KIND_FAULT = 1,	/* ->fault inserts one page per fault */
	MMAPKIT_KIND_RO = 2,	/* like remap, but refuses writable mappings */
};

struct mmapkit_info {
	__u64 buffer_size;	/* bytes mappable, a multiple of page_size */
	__u32 page_size;
	__u32 kind;		/* enum mmapkit_kind */
	__u32 contiguous;	/* 1 if the buffer is physically contiguous */
	__u32 reserved;		/* 0 */
};

/*
 * Counters of one device since load or the last MMAPKIT_IOC_RESET_STATS.
 * live_vmas is not reset: it is a state, not an event count.
 */
struct mmapkit_stats {
	__u64 mmap_ok;		/* ->mmap calls that succeeded */
	__u64 mmap_einval_range;	/* refused: offset or length outside the buffer */
	__u64 mmap_einval_cow;	/* refused: MAP_PRIVATE that could be written */
	__u64 mmap_eacces_write;	/* refused: shared writable map of the ro device */
	__u64 mmap_other_error;	/* remap or other failure inside ->mmap */
	__u64 live_vmas;	/* VMAs of this device that exist now */
	__u64 vma_open;		/* vm_ops->open calls (fork, split, mremap) */
	__u64 vma_close;	/* vm_ops->close calls */
	__u64 faults_served;	/* ->fault calls that inserted a page */
	__u64 faults_refused;	/* ->fault calls answered VM_FAULT_SIGBUS */
};

/* In: page, an index into the buffer. Out: the PFN backing it. */
struct mmapkit_pfn {
	__u64 page;
	__u64 pfn;
};

#define MMAPKIT_IOC_INFO	_IOR(MMAPKIT_IOC_MAGIC, 1, struct mmapkit_info)
#define MMAPKIT_IOC_STATS	_IOR(MMAPKIT_IOC_MAGIC, 2, struct mmapkit_stats)
#define MMAPKIT_IOC_RESET_STATS	_IO(MMAPKIT_IOC_MAGIC, 3)
#define MMAPKIT_IOC_PFN		_IOWR(MMAPKIT_IOC_MAGIC, 4, struct mmapkit_pfn)

#endif /* _UAPI_LINUX_MMAPKIT_H */
