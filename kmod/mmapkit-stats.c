// SPDX-License-Identifier: GPL-2.0
/*
 * mmapkit - the per-device counters, read through the ioctls of
 * uapi/mmapkit.h and through debugfs:
 *
 *   /sys/kernel/debug/mmapkit/<device>/stats
 *
 * one "name value" line per field of struct mmapkit_stats, in its order.
 * Writing anything to the file resets the event counters, like
 * MMAPKIT_IOC_RESET_STATS; live_vmas is a state and is never reset.
 *
 * Debugfs follows its own convention (debugfs_create_dir()'s comment): errors
 * are ignored, the debugfs calls accept an error pointer as parent, and
 * the driver works without debugfs.
 */

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>

#include "mmapkit-priv.h"

static struct dentry *mmapkit_debugfs_root;

/*
 * Every counter, in the order of struct mmapkit_stats: an array of them has
 * the struct's layout, as it holds __u64 counters and nothing else.
 */
static void mmapkit_stats_read(const struct mmapkit_dev *dev,
			       __u64 values[MMAPKIT_NR_STATS])
{
	__u64 *value = values;

#define MMAPKIT_EVENT(name)	(*value++ = atomic64_read(&dev->stats.name))
#define MMAPKIT_STATE(name)	(*value++ = atomic64_read(&dev->stats.name))
	MMAPKIT_STATS
#undef MMAPKIT_EVENT
#undef MMAPKIT_STATE
}

/*
 * Zero the event counters. Not one atomic step: an event racing with the
 * reset may or may not be counted. live_vmas, a state, stays, or the next
 * ->close would take it below zero.
 */
static void mmapkit_stats_reset(struct mmapkit_dev *dev)
{
#define MMAPKIT_EVENT(name)	atomic64_set(&dev->stats.name, 0)
#define MMAPKIT_STATE(name)
	MMAPKIT_STATS
#undef MMAPKIT_EVENT
#undef MMAPKIT_STATE
}

static int mmapkit_ioctl_info(const struct mmapkit_dev *dev,
			      void __user *uarg)
{
	/* Every field set, no padding: nothing uninitialised is copied out. */
	const struct mmapkit_info info = {
		.buffer_size	= dev->buf->size,
		.page_size	= PAGE_SIZE,
		.kind		= dev->kind,
		.contiguous	= dev->buf->contiguous,
		.reserved	= 0,
	};

	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

static int mmapkit_ioctl_stats(const struct mmapkit_dev *dev,
			       void __user *uarg)
{
	__u64 stats[MMAPKIT_NR_STATS];

	mmapkit_stats_read(dev, stats);
	return copy_to_user(uarg, stats, sizeof(stats)) ? -EFAULT : 0;
}

/*
 * A physical address is what /proc/PID/pagemap hides from readers without
 * CAP_SYS_ADMIN ("do not disclose physical addresses: attack vector",
 * pagemap_read(), 6.1), so the same privilege is asked here.
 */
static int mmapkit_ioctl_pfn(const struct mmapkit_dev *dev, void __user *uarg)
{
	struct mmapkit_pfn req;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.page >= dev->buf->pages)
		return -EINVAL;
	req.pfn = mmapkit_buf_pfn(dev->buf, req.page);
	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
}

/* The same ioctls on every device, each about the device it is called on. */
long mmapkit_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct mmapkit_dev *dev = mmapkit_from_file(file);
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case MMAPKIT_IOC_INFO:
		return mmapkit_ioctl_info(dev, uarg);
	case MMAPKIT_IOC_STATS:
		return mmapkit_ioctl_stats(dev, uarg);
	case MMAPKIT_IOC_RESET_STATS:
		mmapkit_stats_reset(dev);
		return 0;
	case MMAPKIT_IOC_PFN:
		return mmapkit_ioctl_pfn(dev, uarg);
	default:
		return -ENOTTY;
	}
}

static int mmapkit_stats_show(struct seq_file *m, void *unused)
{
	__u64 stats[MMAPKIT_NR_STATS];
	const __u64 *value = stats;

	mmapkit_stats_read(m->private, stats);
#define MMAPKIT_EVENT(name)	seq_printf(m, #name " %llu\n", *value++)
#define MMAPKIT_STATE(name)	seq_printf(m, #name " %llu\n", *value++)
	MMAPKIT_STATS
#undef MMAPKIT_EVENT
#undef MMAPKIT_STATE
	return 0;
}

static int mmapkit_stats_open(struct inode *inode, struct file *file)
{
	return single_open(file, mmapkit_stats_show, inode->i_private);
}

/* Any write, "0" or otherwise, resets the event counters. */
static ssize_t mmapkit_stats_write(struct file *file, const char __user *ubuf,
				   size_t count, loff_t *ppos)
{
	struct seq_file *m = file->private_data;
	struct mmapkit_dev *dev = m->private;

	mmapkit_stats_reset(dev);
	return count;
}

/*
 * .owner: debugfs's proxy takes a module reference on open
 * (open_proxy_open(), 6.1), so an open stats file delays unload.
 */
static const struct file_operations mmapkit_stats_fops = {
	.owner		= THIS_MODULE,
	.open		= mmapkit_stats_open,
	.read		= seq_read,
	.write		= mmapkit_stats_write,
	.llseek		= seq_lseek,
	.release	= single_release,
};

void mmapkit_debugfs_init(void)
{
	mmapkit_debugfs_root = debugfs_create_dir(KBUILD_MODNAME, NULL);
}

void mmapkit_debugfs_add(struct mmapkit_dev *dev)
{
	struct dentry *dir;

	dir = debugfs_create_dir(dev->misc.name, mmapkit_debugfs_root);
	debugfs_create_file("stats", 0644, dir, dev, &mmapkit_stats_fops);
}

/* Removes the whole tree; an error pointer or NULL is ignored. */
void mmapkit_debugfs_exit(void)
{
	debugfs_remove(mmapkit_debugfs_root);
	mmapkit_debugfs_root = NULL;
}
