/* SPDX-License-Identifier: GPL-2.0 */
/* Wrappers for static inline kernel functions; declared in Rust too (vhost.rs, output.rs). */
#ifndef VHOST_CONSOLE_HELPERS_H
#define VHOST_CONSOLE_HELPERS_H

#include <linux/poll.h>
#include <linux/uio.h>
#include <linux/wait.h>

void vhost_console_init_waitqueue_func_entry(struct wait_queue_entry *wq_entry, wait_queue_func_t func);
void vhost_console_init_poll_funcptr(poll_table *pt, poll_queue_proc qproc);
__poll_t vhost_console_vfs_poll(struct file *file, struct poll_table_struct *pt);
bool vhost_console_access_ok(unsigned long addr, unsigned long size);
size_t vhost_console_iov_iter_count(const struct iov_iter *i);
void vhost_console_set_running(void);
int vhost_console_get_user_u16(u16 *value, const u16 __user *addr);
int vhost_console_put_user_u16(u16 value, u16 __user *addr);

#endif
