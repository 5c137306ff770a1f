// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers for static inline kernel functions, which bindgen does
 * not turn into Rust bindings.
 */

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

int vhost_console_get_user_u16(u16 *value, const u16 __user *addr)
{
	return get_user(*value, addr);
}

int vhost_console_put_user_u16(u16 value, u16 __user *addr)
{
	return put_user(value, addr);
}
