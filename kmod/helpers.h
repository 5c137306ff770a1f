/* SPDX-License-Identifier: GPL-2.0 */
/* Wrappers the Rust code declares too (sys.rs). */
#ifndef VHOST_CONSOLE_HELPERS_H
#define VHOST_CONSOLE_HELPERS_H

#include <linux/poll.h>
#include <linux/uio.h>
#include <linux/wait.h>

void vhost_console_init_waitqueue_func_entry(struct wait_queue_entry *wq_entry, wait_queue_func_t func);
void vhost_console_init_poll_funcptr(poll_table *pt, poll_queue_proc qproc);
__poll_t vhost_console_vfs_poll(struct file *file, struct poll_table_struct *pt);
void vhost_console_wait_detach(struct wait_queue_entry *wq_entry);
void vhost_console_rcu_read_lock(void);
void vhost_console_rcu_read_unlock(void);
bool vhost_console_access_ok(unsigned long addr, unsigned long size);
size_t vhost_console_iov_iter_count(const struct iov_iter *i);
void vhost_console_set_running(void);
void vhost_console_cond_resched(void);
bool vhost_console_need_resched(void);
bool vhost_console_signal_pending(void);
bool vhost_console_fatal_signal_pending(void);
int vhost_console_get_user_u16(u16 *value, const u16 __user *addr);
int vhost_console_put_user_u16(u16 value, u16 __user *addr);
struct file *vhost_console_get_file(struct file *file);
bool vhost_console_is_storage(struct file *file);
bool vhost_console_is_socket(struct file *file);
int vhost_console_check_output(struct file *file);
ssize_t vhost_console_write(struct file *file, const struct iovec *iov, unsigned long nr_segs,
			    size_t total, size_t skip, size_t count, bool nowait);
int vhost_console_check_input(struct file *file);
ssize_t vhost_console_read(struct file *file, const struct iovec *iov, unsigned long nr_segs,
			   size_t total, size_t count, bool nowait);
void vhost_console_set_nowait(struct file *file);
int vhost_blk_check(struct file *file, bool writable, u64 bytes);
ssize_t vhost_blk_rw(struct file *file, const struct iovec *iov, unsigned long nr_segs, size_t total,
		     size_t skip, size_t count, loff_t pos, bool write);
ssize_t vhost_blk_write_zeroes(struct file *file, loff_t pos, size_t count);
int vhost_blk_fsync(struct file *file);
int vhost_blk_fallocate(struct file *file, bool punch, loff_t pos, loff_t len);

#endif
