// SPDX-License-Identifier: GPL-2.0
//! The owner's worker (vhost's `vhost_worker`): a vhost_task in the owner's
//! process, and the queues waiting for it. Polls (kicks, backend files) and
//! ioctls queue work here; the vhost core's task body takes it and runs the
//! queues. The only part of a device that wake-ups touch.

use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use kernel::bindings;
use kernel::error::from_err_ptr;
use kernel::prelude::*;
use kernel::str::CStr;

/// The task body vhost_task calls until it returns false (then it sleeps
/// until `Worker::queue` wakes it), and what it calls when the owner is
/// killed.
pub(crate) type Body = unsafe extern "C" fn(*mut c_void) -> bool;
pub(crate) type Killed = unsafe extern "C" fn(*mut c_void);

pub(crate) struct Worker {
    /// The worker while there is an owner, else null.
    task: AtomicPtr<bindings::vhost_task>,
    /// Bit i: queue i has work the worker has not started.
    pending: AtomicU64,
}

impl Worker {
    pub(crate) const fn new() -> Self {
        Worker { task: AtomicPtr::new(null_mut()), pending: AtomicU64::new(0) }
    }

    /// Queues work for queue `index` and wakes the worker (vhost_poll_queue).
    pub(crate) fn queue(&self, index: usize) {
        self.pending.fetch_or(1 << index, Ordering::AcqRel);
        let task = self.task.load(Ordering::Acquire);
        if !task.is_null() {
            // SAFETY: the task pointer is cleared before the task is stopped,
            // and only after every poll that calls this has been stopped; the
            // other callers are ioctls, serialized with the stop.
            unsafe { bindings::vhost_task_wake(task) };
        }
    }

    /// Takes the queued work: bit i for queue i.
    pub(crate) fn take(&self) -> u64 {
        self.pending.swap(0, Ordering::AcqRel)
    }

    /// Puts back work for queue `index` that a run left (over its budget),
    /// without a wake-up: the task is running and looks again.
    pub(crate) fn requeue(&self, index: usize) {
        self.pending.fetch_or(1 << index, Ordering::AcqRel);
    }

    /// Forgets queued work, once the worker is stopped.
    pub(crate) fn forget(&self) {
        self.pending.store(0, Ordering::Relaxed);
    }

    /// Starts the worker in the current process, named `name`, calling
    /// `body(data)` for its work.
    ///
    /// # Safety
    /// `data` must stay valid for `body` and `killed` until `stop` returns;
    /// the worker must be stopped (no task running).
    pub(crate) unsafe fn start(&self, body: Body, killed: Killed, data: *mut c_void, name: &CStr) -> Result {
        // SAFETY: `data` outlives the task, per the contract; the name is copied.
        let task =
            from_err_ptr(unsafe { bindings::vhost_task_create(Some(body), Some(killed), data, name.as_char_ptr()) })?;
        self.task.store(task, Ordering::Release);
        // SAFETY: freshly created, started once.
        unsafe { bindings::vhost_task_start(task) };
        Ok(())
    }

    /// Stops the worker, if there is one, and waits for it to end.
    ///
    /// # Safety
    /// No `queue` may run during or after this, until the next `start`:
    /// every poll that calls it is stopped, and the ioctls that do are held
    /// off. The caller holds no lock the task body takes.
    pub(crate) unsafe fn stop(&self) {
        let task = self.task.swap(null_mut(), Ordering::AcqRel);
        if !task.is_null() {
            // SAFETY: created by vhost_task_create in `start` and stopped
            // once: the pointer was swapped out above, and no `queue` that
            // loaded it before is still running (the contract).
            unsafe { bindings::vhost_task_stop(task) };
        }
    }
}
