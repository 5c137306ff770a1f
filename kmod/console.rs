// SPDX-License-Identifier: GPL-2.0
//! The console device's part (as vsock.c is vsock's): the backend ioctl that
//! attaches the output file, and transmitq processing: each chain validated
//! whole, its bytes copied from the owner's memory and written to the file.

use kernel::bindings;
use kernel::error::code::*;
use kernel::prelude::*;

use crate::uapi::VringFile;
use crate::vhost::{errno, read, FileRef, Inner, VhostConsole, RECEIVEQ, TRANSMITQ};
use crate::vring::{translate, QueueError, Region, Vring, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};

/// Chains handled per worker run before others get the CPU (vhost's weight).
const WEIGHT: usize = 256;
/// Chains gathered into one write to the output file.
const BATCH: usize = 16;
const FMODE_WRITE: u32 = 1 << 1;
const FMODE_CAN_WRITE: u32 = 1 << 18;
const FMODE_STREAM: u32 = 1 << 21;
const ITER_SOURCE: u32 = 1;

/// The output file of transmitq and the chains gathered for it.
pub(crate) struct Backend {
    file: FileRef,
    /// The buffers of the gathered chains, as owner addresses: the file
    /// copies straight from the owner's memory, as vhost-net hands its
    /// socket user iovecs.
    iov: KVec<bindings::iovec>,
    /// Heads of the gathered chains, to be used once written.
    heads: KVec<u16>,
    output_failed: bool,
}

// SAFETY: the iovecs are plain addresses into the owner's memory, only used
// by the worker, in that memory's context.
unsafe impl Send for Backend {}

impl Backend {
    fn new(file: FileRef, num: u16) -> Result<Self> {
        Ok(Backend {
            file,
            // Room for a batch of short chains, or one chain as long as the queue.
            iov: KVec::with_capacity(usize::from(num).max(BATCH) * 2, GFP_KERNEL)?,
            heads: KVec::with_capacity(BATCH, GFP_KERNEL)?,
            output_failed: false,
        })
    }

    /// Drains transmitq with notifications off (§2.7.10), up to WEIGHT
    /// chains. Returns whether work is left and whether anything was used.
    fn transmit(&mut self, vq: &mut Vring, mem: &[Region]) -> Result<(bool, bool), QueueError> {
        let mut used = false;
        let result = self.gather(vq, mem, &mut used);
        // Chains checked before an error are still written and used.
        self.flush(vq, &mut used)?;
        result.map(|more| (more, used))
    }

    fn gather(&mut self, vq: &mut Vring, mem: &[Region], used: &mut bool) -> Result<bool, QueueError> {
        vq.set_notify(false)?;
        for _ in 0..WEIGHT {
            if vq.pending()? == 0 {
                self.flush(vq, used)?;
                if vq.busy_poll()? {
                    continue;
                }
                if !vq.set_notify(true)? {
                    return Ok(false);
                }
                vq.set_notify(false)?;
                continue;
            }
            if self.heads.len() == BATCH || self.iov.capacity() - self.iov.len() < usize::from(vq.num) {
                self.flush(vq, used)?;
            }
            let head = vq.next_head()?;
            self.read_chain(vq, mem, head)?;
            self.heads.push(head, GFP_KERNEL).map_err(|_| QueueError::Fault("batch"))?;
        }
        Ok(true)
    }

    /// Checks the whole chain before any byte moves, appending its buffers to `iov`.
    fn read_chain(&mut self, vq: &Vring, mem: &[Region], head: u16) -> Result<(), QueueError> {
        let start = self.iov.len();
        let mut index = head;
        loop {
            if self.iov.len() - start == usize::from(vq.num) {
                return Err(self.drop_from(start, QueueError::Loop { head, num: vq.num }));
            }
            let d = vq.desc(index).map_err(|e| self.drop_from(start, e))?;
            if d.flags & VRING_DESC_F_INDIRECT != 0 {
                return Err(self.drop_from(start, QueueError::Indirect { index }));
            }
            if d.flags & VRING_DESC_F_WRITE != 0 {
                return Err(self.drop_from(start, QueueError::WriteOnly { index }));
            }
            let Some(user) = translate(mem, d.addr, d.len) else {
                return Err(self.drop_from(start, QueueError::OutsideMemory { index, addr: d.addr, len: d.len }));
            };
            let iov = bindings::iovec { iov_base: user as *mut core::ffi::c_void, iov_len: d.len as usize };
            // Capacity was checked before the chain started: no allocation.
            self.iov.push(iov, GFP_KERNEL).map_err(|_| QueueError::Fault("batch"))?;
            if d.flags & VRING_DESC_F_NEXT == 0 {
                return Ok(());
            }
            if d.next >= vq.num {
                return Err(self.drop_from(start, QueueError::NextOutOfRange { index, next: d.next, num: vq.num }));
            }
            index = d.next;
        }
    }

    /// Forgets the buffers of a rejected chain.
    fn drop_from(&mut self, start: usize, e: QueueError) -> QueueError {
        // SAFETY: shrinking; `iovec` is Copy, nothing to drop.
        unsafe { self.iov.set_len(start) };
        e
    }

    /// Writes the gathered chains to the output file and marks them used. A
    /// failing output is reported once and then skipped, as a line nobody
    /// listens to; the guest goes on.
    fn flush(&mut self, vq: &mut Vring, used: &mut bool) -> Result<(), QueueError> {
        if self.heads.is_empty() {
            return Ok(());
        }
        let total: usize = self.iov.iter().map(|v| v.iov_len).sum();
        if !self.output_failed && total > 0 {
            let file = self.file.as_ptr();
            // SAFETY: an all-zero iov_iter is a valid value for iov_iter_init to fill.
            let mut iter: bindings::iov_iter = unsafe { core::mem::zeroed() };
            // SAFETY: `iov` holds `len` initialized iovecs of owner addresses;
            // the worker runs in the owner's address space, and a bad address
            // fails the copy (EFAULT) rather than touching anything else.
            unsafe { bindings::iov_iter_init(&mut iter, ITER_SOURCE, self.iov.as_ptr(), self.iov.len() as _, total) };
            let mut left = total;
            while left > 0 {
                // SAFETY: we hold a reference to `file`, checked writable in
                // set_backend; stream files take no position (ksys_write).
                let written = unsafe {
                    let pos = if (*file).f_mode & FMODE_STREAM != 0 { core::ptr::null_mut() } else { &mut (*file).f_pos };
                    bindings::vfs_iter_write(file, &mut iter, pos, 0)
                };
                if written <= 0 {
                    pr_warn!("vhost-console: output failed (error {}); dropping further output\n", written);
                    self.output_failed = true;
                    break;
                }
                left -= written as usize;
            }
        }
        for &head in self.heads.iter() {
            // The device wrote nothing into these device-readable buffers.
            vq.add_used(head, 0)?;
            *used = true;
        }
        // SAFETY: shrinking; both hold Copy values.
        unsafe {
            self.iov.set_len(0);
            self.heads.set_len(0);
        }
        Ok(())
    }
}

impl VhostConsole {
    /// VHOST_CONSOLE_SET_BACKEND: attach (or with fd -1 detach) transmitq's
    /// output file. Any file open for writing will do.
    pub(crate) fn set_backend(&self, inner: &mut Inner, arg: usize) -> Result {
        let f: VringFile = read(arg)?;
        match f.index as usize {
            TRANSMITQ => {}
            RECEIVEQ => return Err(EINVAL), // receiveq has no output
            _ => return Err(errno(bindings::ENOBUFS)),
        }
        if f.fd == -1 {
            inner.backend = None;
            return Ok(());
        }
        let file = FileRef::get(f.fd)?;
        // SAFETY: we hold a reference to the file; f_op is set for open files.
        let (mode, write_iter) = unsafe { ((*file.as_ptr()).f_mode, (*(*file.as_ptr()).f_op).write_iter) };
        if mode & (FMODE_WRITE | FMODE_CAN_WRITE) != FMODE_WRITE | FMODE_CAN_WRITE {
            return Err(EBADF);
        }
        // vfs_iter_write needs it; a file with only ->write cannot be a backend.
        if write_iter.is_none() {
            return Err(EINVAL);
        }
        let vq = &inner.vqs[TRANSMITQ];
        if !vq.configured() {
            return Err(EFAULT);
        }
        inner.backend = Some(Backend::new(file, vq.num)?);
        // Buffers may already be waiting.
        self.kick(TRANSMITQ);
        Ok(())
    }

    /// Runs transmitq; returns whether work is left (over budget).
    pub(crate) fn handle_transmitq(&self) -> bool {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let vq = &mut inner.vqs[TRANSMITQ];
        let Some(backend) = inner.backend.as_mut() else { return false };
        if vq.broken || !vq.configured() {
            return false;
        }
        match backend.transmit(vq, &inner.mem) {
            Ok((more, used)) => {
                if used {
                    inner.notify_driver(TRANSMITQ);
                }
                more
            }
            Err(e) => {
                // vhost's vq_err: report, signal the err eventfd, and stop the
                // queue until it is set up again.
                pr_warn!("vhost-console: transmitq: {}; queue stopped\n", e);
                vq.broken = true;
                if let Some(err) = &inner.errs[TRANSMITQ] {
                    err.signal();
                }
                false
            }
        }
    }
}
