// SPDX-License-Identifier: GPL-2.0
//! Counted references to what a device holds for its owner: open files,
//! eventfd contexts, and the owner's address space. Each is released on drop.

use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::{code::*, from_err_ptr};
use kernel::prelude::*;

use crate::sys;

/// A reference to an open file (fget/fput).
pub(crate) struct FileRef(NonNull<bindings::file>);

impl FileRef {
    /// The file open on `fd` in the current process.
    pub(crate) fn get(fd: i32) -> Result<Self> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: fget takes any number and returns a counted reference or NULL.
        NonNull::new(unsafe { bindings::fget(fd) }).map(FileRef).ok_or(EBADF)
    }

    /// The eventfd open on `fd`: EBADF for no file, EINVAL for a file that is
    /// not an eventfd (vhost takes kicks with eventfd_fget too: any other file
    /// may have several wait queues, free them early, or be this device).
    pub(crate) fn eventfd(fd: i32) -> Result<Self> {
        // SAFETY: eventfd_fget takes any number and returns a counted
        // reference or an ERR_PTR.
        let file = from_err_ptr(unsafe { bindings::eventfd_fget(fd) })?;
        NonNull::new(file).map(FileRef).ok_or(EBADF)
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::file {
        self.0.as_ptr()
    }
}

impl Clone for FileRef {
    fn clone(&self) -> Self {
        // SAFETY: we hold a reference, so the file is alive; get_file takes another.
        FileRef(unsafe { NonNull::new_unchecked(sys::vhost_console_get_file(self.0.as_ptr())) })
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { bindings::fput(self.0.as_ptr()) };
    }
}

/// A reference to an eventfd context, to signal (eventfd_ctx_fdget/put).
pub(crate) struct EventFd(NonNull<bindings::eventfd_ctx>);

impl EventFd {
    /// The eventfd open on `fd`, or None for -1 (vhost's VHOST_FILE_UNBIND).
    pub(crate) fn get_or_unbind(fd: i32) -> Result<Option<Self>> {
        if fd == -1 {
            return Ok(None);
        }
        // SAFETY: eventfd_ctx_fdget takes any number and returns a counted
        // reference or an ERR_PTR (EBADF, or EINVAL for a non-eventfd).
        let ctx = from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        NonNull::new(ctx).map(|c| Some(EventFd(c))).ok_or(EBADF)
    }

    pub(crate) fn signal(&self) {
        // SAFETY: we hold a reference, so the context is alive; eventfd_signal
        // may be called from any context.
        unsafe { bindings::eventfd_signal_mask(self.0.as_ptr(), 0) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { bindings::eventfd_ctx_put(self.0.as_ptr()) };
    }
}

/// A reference to the owner's address space (get_task_mm/mmput).
pub(crate) struct MmRef(NonNull<bindings::mm_struct>);

impl MmRef {
    /// The current process's address space; None for a kernel thread.
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: `current` is valid; get_task_mm returns a counted mm or NULL.
        NonNull::new(unsafe { bindings::get_task_mm(bindings::get_current()) }).map(MmRef)
    }

    /// Whether the current process runs in this address space (vhost_dev_check_owner).
    pub(crate) fn is_current(&self) -> bool {
        // SAFETY: `current` is always valid; in process context its own mm
        // pointer is stable while it runs.
        self.0.as_ptr() == unsafe { (*bindings::get_current()).mm }
    }
}

impl Drop for MmRef {
    fn drop(&mut self) {
        // SAFETY: we own one mm_users reference.
        unsafe { bindings::mmput(self.0.as_ptr()) };
    }
}

// SAFETY: the references may be taken and released from any thread.
unsafe impl Send for FileRef {}
// SAFETY: as above; eventfd_signal may be called from any thread.
unsafe impl Send for EventFd {}
// SAFETY: as above.
unsafe impl Send for MmRef {}
// SAFETY: shared use is signalling, which is thread-safe.
unsafe impl Sync for EventFd {}
