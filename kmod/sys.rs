// SPDX-License-Identifier: GPL-2.0
//! What helpers.c wraps: the kernel's static inline functions and macros that
//! bindgen does not turn into bindings, and the few accesses to structs whose
//! layout a 6.12.y point release or another bindgen may shape differently
//! (`struct file`, `struct iov_iter`). Safe wrappers for those that have no
//! preconditions.

use kernel::bindings;

// The kernel structs are opaque here: only pointers cross.
#[allow(improper_ctypes)]
extern "C" {
    pub(crate) fn vhost_console_init_waitqueue_func_entry(
        wq: *mut bindings::wait_queue_entry,
        func: bindings::wait_queue_func_t,
    );
    pub(crate) fn vhost_console_init_poll_funcptr(pt: *mut bindings::poll_table_struct, qproc: bindings::poll_queue_proc);
    pub(crate) fn vhost_console_vfs_poll(file: *mut bindings::file, pt: *mut bindings::poll_table_struct) -> u32;
    pub(crate) fn vhost_console_wait_detach(wq: *mut bindings::wait_queue_entry);
    pub(crate) fn vhost_console_rcu_read_lock();
    pub(crate) fn vhost_console_rcu_read_unlock();
    pub(crate) fn vhost_console_access_ok(addr: usize, size: usize) -> bool;
    pub(crate) fn vhost_console_iov_iter_count(i: *const bindings::iov_iter) -> usize;
    fn vhost_console_set_running();
    fn vhost_console_cond_resched();
    fn vhost_console_need_resched() -> bool;
    fn vhost_console_signal_pending() -> bool;
    fn vhost_console_fatal_signal_pending() -> bool;
    pub(crate) fn vhost_console_get_user_u16(value: *mut u16, addr: usize) -> core::ffi::c_int;
    pub(crate) fn vhost_console_put_user_u16(value: u16, addr: usize) -> core::ffi::c_int;
    pub(crate) fn vhost_console_get_file(file: *mut bindings::file) -> *mut bindings::file;
    pub(crate) fn vhost_console_is_storage(file: *mut bindings::file) -> bool;
    pub(crate) fn vhost_console_is_socket(file: *mut bindings::file) -> bool;
    pub(crate) fn vhost_console_check_output(file: *mut bindings::file) -> core::ffi::c_int;
    pub(crate) fn vhost_console_write(
        file: *mut bindings::file,
        iov: *const bindings::iovec,
        nr_segs: usize,
        total: usize,
        skip: usize,
        count: usize,
        nowait: bool,
    ) -> isize;
    pub(crate) fn vhost_console_check_input(file: *mut bindings::file) -> core::ffi::c_int;
    pub(crate) fn vhost_console_read(
        file: *mut bindings::file,
        iov: *const bindings::iovec,
        nr_segs: usize,
        total: usize,
        count: usize,
        nowait: bool,
    ) -> isize;
    pub(crate) fn vhost_console_set_nowait(file: *mut bindings::file);
    pub(crate) fn vhost_blk_check(file: *mut bindings::file, writable: bool, bytes: u64) -> core::ffi::c_int;
    pub(crate) fn vhost_blk_rw(
        file: *mut bindings::file,
        iov: *const bindings::iovec,
        nr_segs: usize,
        total: usize,
        skip: usize,
        count: usize,
        pos: i64,
        write: bool,
    ) -> isize;
    pub(crate) fn vhost_blk_write_zeroes(file: *mut bindings::file, pos: i64, count: usize) -> isize;
    pub(crate) fn vhost_blk_fsync(file: *mut bindings::file) -> core::ffi::c_int;
    pub(crate) fn vhost_blk_fallocate(file: *mut bindings::file, punch: bool, pos: i64, len: i64) -> core::ffi::c_int;
}

/// Makes the current task runnable (it may then block, where vhost_task left
/// it TASK_INTERRUPTIBLE, ready to sleep).
pub(crate) fn set_running() {
    // SAFETY: only changes the state of the current task.
    unsafe { vhost_console_set_running() }
}

/// A scheduling point (cond_resched): may sleep; call with no spinlock held.
pub(crate) fn cond_resched() {
    // SAFETY: process context; callers hold no spinlock (mutexes may be held).
    unsafe { vhost_console_cond_resched() }
}

pub(crate) fn need_resched() -> bool {
    // SAFETY: reads the current task's flags.
    unsafe { vhost_console_need_resched() }
}

pub(crate) fn signal_pending() -> bool {
    // SAFETY: reads the current task's flags.
    unsafe { vhost_console_signal_pending() }
}

pub(crate) fn fatal_signal_pending() -> bool {
    // SAFETY: reads the current task's pending signals.
    unsafe { vhost_console_fatal_signal_pending() }
}

/// `poll.h`'s POLLFREE: the wait queue is about to be freed (signalfd, binder).
pub(crate) const POLLFREE: u32 = 0x4000;
pub(crate) const EPOLLIN: u32 = 0x1;
pub(crate) const EPOLLOUT: u32 = 0x4;
pub(crate) const EPOLLERR: u32 = 0x8;
pub(crate) const EPOLLHUP: u32 = 0x10;
