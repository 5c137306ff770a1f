// SPDX-License-Identifier: GPL-2.0
/*
 * Wrappers for what bindgen cannot hand to Rust: static inline functions and
 * macros (FMODE_*, S_ISREG, current), and the few places where the module
 * reaches into a struct whose layout a 6.12.y point release may change
 * (struct file, struct iov_iter). Each is the kernel's own code, called the
 * way its in-tree users call it; policy stays in Rust.
 */

#include <linux/blkdev.h>
#include <linux/bvec.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "helpers.h"

void vhost_console_init_waitqueue_func_entry(struct wait_queue_entry *wq_entry, wait_queue_func_t func)
{
	init_waitqueue_func_entry(wq_entry, func);
}

void vhost_console_init_poll_funcptr(poll_table *pt, poll_queue_proc qproc)
{
	init_poll_funcptr(pt, qproc);
}

__poll_t vhost_console_vfs_poll(struct file *file, struct poll_table_struct *pt)
{
	return vfs_poll(file, pt);
}

/* What ep_poll_callback does on POLLFREE, with the wait-queue lock held by the waker. */
void vhost_console_wait_detach(struct wait_queue_entry *wq_entry)
{
	list_del_init(&wq_entry->entry);
}

void vhost_console_rcu_read_lock(void)
{
	rcu_read_lock();
}

void vhost_console_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

bool vhost_console_access_ok(unsigned long addr, unsigned long size)
{
	return access_ok((const void __user *)addr, size);
}

size_t vhost_console_iov_iter_count(const struct iov_iter *i)
{
	return iov_iter_count(i);
}

void vhost_console_set_running(void)
{
	__set_current_state(TASK_RUNNING);
}

void vhost_console_cond_resched(void)
{
	cond_resched();
}

bool vhost_console_need_resched(void)
{
	return need_resched();
}

bool vhost_console_signal_pending(void)
{
	return signal_pending(current);
}

bool vhost_console_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

int vhost_console_get_user_u16(u16 *value, const u16 __user *addr)
{
	return get_user(*value, addr);
}

int vhost_console_put_user_u16(u16 value, u16 __user *addr)
{
	return put_user(value, addr);
}

struct file *vhost_console_get_file(struct file *file)
{
	return get_file(file);
}

/*
 * Storage: a regular file or a block device. Its reads and writes wait only
 * for the disk, as a loop or vhost-scsi worker's do, and are made without
 * RWF_NOWAIT: ext4 and f2fs refuse a buffered write with IOCB_NOWAIT
 * (-EOPNOTSUPP), and where a file system answers -EAGAIN instead there is
 * nothing to wait for (poll calls a regular file always ready).
 */
bool vhost_console_is_storage(struct file *file)
{
	umode_t mode = file_inode(file)->i_mode;

	return S_ISREG(mode) || S_ISBLK(mode);
}

/* A socket: its peer may leave, which is no failure of the file (a port's host side). */
bool vhost_console_is_socket(struct file *file)
{
	return S_ISSOCK(file_inode(file)->i_mode);
}

/*
 * Whether the worker may write to @file: open for writing with ->write_iter,
 * and either able to refuse to wait (FMODE_NOWAIT: pipes, sockets, /dev/null,
 * /dev/vmm-console) or storage. -EINVAL for anything that may block
 * indefinitely on another party (a tty, a FIFO's peer, a character device).
 */
int vhost_console_check_output(struct file *file)
{
	if (!(file->f_mode & FMODE_WRITE) || !(file->f_mode & FMODE_CAN_WRITE))
		return -EBADF;
	if (!file->f_op->write_iter)
		return -EINVAL;
	if (!(file->f_mode & FMODE_NOWAIT) && !vhost_console_is_storage(file))
		return -EINVAL;
	return 0;
}

/*
 * One read or write of @iter (its direction); with @nowait, RWF_NOWAIT
 * (-EAGAIN where the file would wait, -EOPNOTSUPP if it no longer has
 * FMODE_NOWAIT: splice clears it on a pipe). The file position is taken and
 * updated as ksys_read and ksys_write do (fdget_pos): under f_pos_lock for
 * files that share a position, none for streams.
 */
static ssize_t vhost_console_rw(struct file *file, struct iov_iter *iter, bool nowait)
{
	rwf_t flags = nowait ? RWF_NOWAIT : 0;
	bool lock = file->f_mode & FMODE_ATOMIC_POS;
	loff_t pos, *ppos = NULL;
	ssize_t ret;

	if (lock)
		mutex_lock(&file->f_pos_lock);
	if (!(file->f_mode & FMODE_STREAM)) {
		pos = file->f_pos;
		ppos = &pos;
	}
	if (iov_iter_rw(iter) == WRITE)
		ret = vfs_iter_write(file, iter, ppos, flags);
	else
		ret = vfs_iter_read(file, iter, ppos, flags);
	if (ppos && ret > 0)
		file->f_pos = pos;
	if (lock)
		mutex_unlock(&file->f_pos_lock);
	return ret;
}

/* Writes @count bytes of the @total bytes in @iov, starting @skip bytes in. */
ssize_t vhost_console_write(struct file *file, const struct iovec *iov, unsigned long nr_segs,
			    size_t total, size_t skip, size_t count, bool nowait)
{
	struct iov_iter iter;

	iov_iter_init(&iter, ITER_SOURCE, iov, nr_segs, total);
	iov_iter_advance(&iter, skip);
	iov_iter_truncate(&iter, count);
	return vhost_console_rw(file, &iter, nowait);
}

/*
 * Whether the worker may read from @file: open for reading with ->read_iter,
 * and either able to refuse to wait (FMODE_NOWAIT: pipes, sockets) or
 * storage. -EINVAL for a file whose reads may block on another party (a tty,
 * a FIFO without FMODE_NOWAIT, a character device).
 */
int vhost_console_check_input(struct file *file)
{
	if (!(file->f_mode & FMODE_READ) || !(file->f_mode & FMODE_CAN_READ))
		return -EBADF;
	if (!file->f_op->read_iter)
		return -EINVAL;
	if (!(file->f_mode & FMODE_NOWAIT) && !vhost_console_is_storage(file))
		return -EINVAL;
	return 0;
}

/*
 * Reads up to @count of the @total bytes the buffers of @iov (owner
 * addresses) hold. 0 is the end of the file.
 */
ssize_t vhost_console_read(struct file *file, const struct iovec *iov, unsigned long nr_segs,
			   size_t total, size_t count, bool nowait)
{
	struct iov_iter iter;

	iov_iter_init(&iter, ITER_DEST, iov, nr_segs, total);
	iov_iter_truncate(&iter, count);
	return vhost_console_rw(file, &iter, nowait);
}

/* /dev/vmm-console never waits for a reader: RWF_NOWAIT writes are welcome. */
void vhost_console_set_nowait(struct file *file)
{
	file->f_mode |= FMODE_NOWAIT;
}

/*
 * vhost-blk's backing file: a regular file or a block device, open for
 * reading (and for writing unless @writable is false), holding at least
 * @bytes, and not opened O_APPEND (whose writes land at its end, not where
 * the driver asked). -EINVAL for anything else: a pipe, a socket, a tty, a
 * directory, a character device (the vhost device's own fd among them).
 */
int vhost_blk_check(struct file *file, bool writable, u64 bytes)
{
	struct inode *inode = file_inode(file);
	u64 size;

	if (S_ISREG(inode->i_mode))
		size = i_size_read(inode);
	else if (S_ISBLK(inode->i_mode))
		size = bdev_nr_bytes(I_BDEV(file->f_mapping->host));
	else
		return -EINVAL;
	if (!(file->f_mode & FMODE_READ) || !(file->f_mode & FMODE_CAN_READ) || !file->f_op->read_iter)
		return -EINVAL;
	if (writable && (!(file->f_mode & FMODE_WRITE) || !(file->f_mode & FMODE_CAN_WRITE) ||
			 !file->f_op->write_iter))
		return -EINVAL;
	if (bytes > size || (file->f_flags & O_APPEND))
		return -EINVAL;
	return 0;
}

/*
 * Reads or writes @count bytes at @pos, from or into the @total bytes of
 * @iov (owner addresses) @skip bytes in, as a loop worker does: at an
 * explicit position (the file's own is not used), waiting for the disk.
 */
ssize_t vhost_blk_rw(struct file *file, const struct iovec *iov, unsigned long nr_segs, size_t total,
		     size_t skip, size_t count, loff_t pos, bool write)
{
	struct iov_iter iter;

	iov_iter_init(&iter, write ? ITER_SOURCE : ITER_DEST, iov, nr_segs, total);
	iov_iter_advance(&iter, skip);
	iov_iter_truncate(&iter, count);
	if (write)
		return vfs_iter_write(file, &iter, &pos, 0);
	return vfs_iter_read(file, &iter, &pos, 0);
}

/* Writes up to 16 pages of zeroes at @pos, for a file system without ZERO_RANGE. */
ssize_t vhost_blk_write_zeroes(struct file *file, loff_t pos, size_t count)
{
	struct bio_vec bvec[16];
	struct iov_iter iter;
	size_t left = min_t(size_t, count, ARRAY_SIZE(bvec) * PAGE_SIZE);
	unsigned int n = 0;

	while (left) {
		size_t len = min_t(size_t, left, PAGE_SIZE);

		bvec_set_page(&bvec[n++], ZERO_PAGE(0), len, 0);
		left -= len;
	}
	iov_iter_bvec(&iter, ITER_SOURCE, bvec, n, min_t(size_t, count, ARRAY_SIZE(bvec) * PAGE_SIZE));
	return vfs_iter_write(file, &iter, &pos, 0);
}

/* A flush: everything written so far on stable storage (fdatasync). */
int vhost_blk_fsync(struct file *file)
{
	return vfs_fsync(file, 1);
}

/* Discard and write-zeroes: FALLOC_FL_PUNCH_HOLE or ZERO_RANGE, keeping the size. */
int vhost_blk_fallocate(struct file *file, bool punch, loff_t pos, loff_t len)
{
	int mode = (punch ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) | FALLOC_FL_KEEP_SIZE;

	return vfs_fallocate(file, mode, pos, len);
}
