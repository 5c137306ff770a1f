// SPDX-License-Identifier: GPL-2.0
//! Waiting on a file for the worker (vhost's `vhost_poll`): an event of
//! interest on the file queues one virtqueue's work.
//!
//! Unlike vhost_poll, which serves only eventfds and sockets (one wait queue
//! each), a `Poll` takes up to two wait queues, as a pipe registers (readers
//! and writers), and detaches itself on POLLFREE as epoll does, for files
//! whose wait queue dies before the file (signalfd).

use core::cell::Cell;
use core::ffi::{c_int, c_uint, c_void};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::bindings;
use kernel::error::code::*;
use kernel::prelude::*;
use kernel::types::Opaque;

use crate::refs::FileRef;
use crate::sys::{self, EPOLLERR, POLLFREE};
use crate::worker::Worker;

/// Wait queues one polled file may register.
const MAX_WAIT_QUEUES: usize = 2;

struct Entry {
    wait: Opaque<bindings::wait_queue_entry>,
    /// The wait queue the entry is on, or null. Cleared by `wake` on
    /// POLLFREE, with the wait queue's lock held.
    wqh: AtomicPtr<bindings::wait_queue_head>,
    /// The `Poll` this entry belongs to, for `wake`.
    poll: Cell<*const Poll>,
}

/// Polls one file for `mask` on behalf of virtqueue `queue`.
///
/// `start` and `stop` must be serialized by the holder (the device mutex for
/// kicks, the virtqueue's mutex for backends), and a `Poll` must not move
/// while started: it lives in a pinned device.
pub(crate) struct Poll {
    table: Opaque<bindings::poll_table_struct>,
    entries: [Entry; MAX_WAIT_QUEUES],
    /// Entries `queue_proc` used in the last `vfs_poll`, and whether the file
    /// asked for more than there are.
    used: Cell<usize>,
    overflow: Cell<bool>,
    /// The polled file, referenced while the entries may be on its queues.
    file: Cell<Option<FileRef>>,
    worker: Cell<*const Worker>,
    mask: u32,
    queue: usize,
}

// SAFETY: the cells change only in `start`/`stop`, which the holder
// serializes, and in `queue_proc`, called from `start`'s vfs_poll. `wake`
// only reads `poll`, `worker`, `mask` and `queue`, written before the entry
// was queued (the wait-queue lock orders them), and the atomic `wqh`.
unsafe impl Sync for Poll {}
// SAFETY: as above; the file reference may be dropped on any thread.
unsafe impl Send for Poll {}

impl Poll {
    pub(crate) fn new(queue: usize, mask: u32) -> Self {
        let entry = || Entry { wait: Opaque::uninit(), wqh: AtomicPtr::new(null_mut()), poll: Cell::new(core::ptr::null()) };
        Poll {
            table: Opaque::uninit(),
            entries: [entry(), entry()],
            used: Cell::new(0),
            overflow: Cell::new(false),
            file: Cell::new(None),
            worker: Cell::new(core::ptr::null()),
            mask,
            queue,
        }
    }

    /// Starts polling `file` (stopping any earlier one); if it is ready
    /// already, the work is queued at once. EINVAL if the file uses more wait
    /// queues than a Poll has, or reports an error (vhost_poll_start).
    pub(crate) fn start(&self, file: FileRef, worker: &Worker) -> Result {
        self.stop();
        self.worker.set(worker);
        self.used.set(0);
        self.overflow.set(false);
        for entry in &self.entries {
            entry.poll.set(self);
            // SAFETY: the entry is not on any wait queue (`stop` ran).
            unsafe { sys::vhost_console_init_waitqueue_func_entry(entry.wait.get(), Some(wake)) };
        }
        // SAFETY: the table is ours; `queue_proc` is called during vfs_poll only.
        unsafe { sys::vhost_console_init_poll_funcptr(self.table.get(), Some(queue_proc)) };
        // SAFETY: `file` is referenced; it is kept in `self.file` until `stop`
        // has taken the entries off its wait queues.
        let mask = unsafe { sys::vhost_console_vfs_poll(file.as_ptr(), self.table.get()) };
        self.file.set(Some(file));
        if self.overflow.get() || mask & EPOLLERR != 0 {
            self.stop();
            return Err(EINVAL);
        }
        if mask & self.mask != 0 {
            worker.queue(self.queue);
        }
        Ok(())
    }

    /// Takes the entries off the file's wait queues and drops the file. After
    /// it returns, no `wake` for this poll is running or will run.
    pub(crate) fn stop(&self) {
        for entry in &self.entries[..self.used.get()] {
            // As epoll's ep_remove_wait_queue: a wait queue cleared by
            // POLLFREE is freed only after an RCU grace period.
            // SAFETY: balanced with the unlock below; nothing here sleeps.
            unsafe { sys::vhost_console_rcu_read_lock() };
            let wqh = entry.wqh.swap(null_mut(), Ordering::Acquire);
            if !wqh.is_null() {
                // SAFETY: `queue_proc` put the entry on `wqh`, which belongs to
                // the file we still reference (or, after POLLFREE, stays valid
                // under RCU); remove_wait_queue waits for a running `wake`.
                unsafe { bindings::remove_wait_queue(wqh, entry.wait.get()) };
            }
            // SAFETY: taken above.
            unsafe { sys::vhost_console_rcu_read_unlock() };
        }
        self.used.set(0);
        drop(self.file.take());
    }
}

impl Drop for Poll {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The polled file hands us one of its wait queues (vhost_poll_func).
unsafe extern "C" fn queue_proc(
    _file: *mut bindings::file,
    wqh: *mut bindings::wait_queue_head,
    pt: *mut bindings::poll_table_struct,
) {
    // SAFETY: `pt` is the `table` of a `Poll`, passed to vfs_poll in `start`,
    // which is still running.
    let poll = unsafe { &*kernel::container_of!(pt as *const Opaque<bindings::poll_table_struct>, Poll, table) };
    let i = poll.used.get();
    let Some(entry) = poll.entries.get(i) else {
        poll.overflow.set(true);
        return;
    };
    poll.used.set(i + 1);
    entry.wqh.store(wqh, Ordering::Release);
    // SAFETY: `wqh` belongs to the file being polled, which `start` holds;
    // the entry was initialized in `start` and is on no queue.
    unsafe { bindings::add_wait_queue(wqh, entry.wait.get()) };
}

/// An event on the polled file (vhost_poll_wakeup). Atomic context, with the
/// wait queue's lock held.
unsafe extern "C" fn wake(wait: *mut bindings::wait_queue_entry, _mode: c_uint, _sync: c_int, key: *mut c_void) -> c_int {
    // SAFETY: `wait` is the `wait` of an `Entry` queued by queue_proc, whose
    // `poll` was set before; the Poll outlives its queued entries.
    let entry = unsafe { &*kernel::container_of!(wait as *const Opaque<bindings::wait_queue_entry>, Entry, wait) };
    // SAFETY: as above.
    let poll = unsafe { &*entry.poll.get() };
    let events = key as usize as u32;
    if events & POLLFREE != 0 {
        // SAFETY: the waker holds the wait queue's lock (wake_up_pollfree).
        unsafe { sys::vhost_console_wait_detach(wait) };
        entry.wqh.store(null_mut(), Ordering::Release);
    }
    // A wake-up without a key may be anything: look.
    if events == 0 || events & poll.mask != 0 {
        // SAFETY: `worker` was set in `start`, and the worker outlives every
        // started poll (the device stops all polls before the worker).
        unsafe { (*poll.worker.get()).queue(poll.queue) };
    }
    0
}
