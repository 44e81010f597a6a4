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

/* The largest buffer the module takes (its "size" parameter), in MiB. */
#define MMAPKIT_MAX_SIZE_MIB	256

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
 * The counters of one device, listed once: the driver, the Node addon and
 * the tools (which read this list when they are built) all expand it. Each
 * entry is MMAPKIT_EVENT(name), counted since load or the last
 * MMAPKIT_IOC_RESET_STATS, or MMAPKIT_STATE(name), a state that no reset
 * touches. Entries end in a semicolon and the list is braced, so that it
 * serves as a struct body or as a block of statements. Define both macros
 * before expanding it, and #undef them after.
 */
#define MMAPKIT_STATS {							\
	/* ->mmap calls that succeeded */				\
	MMAPKIT_EVENT(mmap_ok);						\
	/* refused: offset or length outside the buffer */		\
	MMAPKIT_EVENT(mmap_einval_range);				\
	/* refused: MAP_PRIVATE that could be written */		\
	MMAPKIT_EVENT(mmap_einval_cow);					\
	/* refused: shared writable map of the ro device */		\
	MMAPKIT_EVENT(mmap_eacces_write);				\
	/* remap or other failure inside ->mmap */			\
	MMAPKIT_EVENT(mmap_other_error);				\
	/* VMAs of this device that exist now */			\
	MMAPKIT_STATE(live_vmas);					\
	/* vm_ops->open calls (fork, split, mremap) */			\
	MMAPKIT_EVENT(vma_open);					\
	/* vm_ops->close calls */					\
	MMAPKIT_EVENT(vma_close);					\
	/* ->fault calls that inserted a page */			\
	MMAPKIT_EVENT(faults_served);					\
	/* ->fault calls answered VM_FAULT_SIGBUS */			\
	MMAPKIT_EVENT(faults_refused);					\
}

/* MMAPKIT_IOC_STATS: every counter, in the order of MMAPKIT_STATS. */
#define MMAPKIT_EVENT(name)	__u64 name
#define MMAPKIT_STATE(name)	__u64 name
struct mmapkit_stats MMAPKIT_STATS;
#undef MMAPKIT_EVENT
#undef MMAPKIT_STATE

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
