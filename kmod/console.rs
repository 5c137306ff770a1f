// SPDX-License-Identifier: GPL-2.0
//! The console device's part (as vsock.c is vsock's): the backend ioctl that
//! attaches the output file, and transmitq processing: each chain validated
//! whole, its bytes copied from the owner's memory and written to the file.

use kernel::bindings;
use kernel::error::code::*;
use kernel::prelude::*;
use kernel::uaccess::UserSlice;

use crate::uapi::VringFile;
use crate::vhost::{errno, read, FileRef, Inner, VhostConsole, RECEIVEQ, TRANSMITQ};
use crate::vring::{translate, QueueError, Region, Vring, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};

/// Chains handled per worker run before others get the CPU (vhost's weight).
const WEIGHT: usize = 256;
/// Bytes copied from guest memory per write to the output file.
const BOUNCE_SIZE: usize = 16 * 1024;
const FMODE_WRITE: u32 = 1 << 1;
const FMODE_CAN_WRITE: u32 = 1 << 18;

/// The output file of transmitq and the buffers used to fill it.
pub(crate) struct Backend {
    file: FileRef,
    bounce: KVec<u8>,
    /// Owner address and length of each buffer of the chain in hand.
    segments: KVec<(usize, u32)>,
    output_failed: bool,
}

impl Backend {
    fn new(file: FileRef, num: u16) -> Result<Self> {
        Ok(Backend {
            file,
            bounce: KVec::from_elem(0u8, BOUNCE_SIZE, GFP_KERNEL)?,
            segments: KVec::from_elem((0, 0), num.into(), GFP_KERNEL)?,
            output_failed: false,
        })
    }

    /// Drains transmitq with notifications off (§2.7.10), up to WEIGHT
    /// chains. Returns whether work is left and whether anything was used.
    fn transmit(&mut self, vq: &mut Vring, mem: &[Region]) -> Result<(bool, bool), QueueError> {
        vq.set_notify(false)?;
        let mut used = false;
        for _ in 0..WEIGHT {
            if vq.pending()? == 0 {
                if !vq.set_notify(true)? {
                    return Ok((false, used));
                }
                vq.set_notify(false)?;
                continue;
            }
            let head = vq.next_head()?;
            let n = self.read_chain(vq, mem, head)?;
            for i in 0..n {
                let (addr, len) = self.segments[i];
                self.emit(addr, len as usize)?;
            }
            // The device wrote nothing into these device-readable buffers.
            vq.add_used(head, 0)?;
            used = true;
        }
        Ok((true, used))
    }

    /// Checks the whole chain before any byte moves; returns its length.
    fn read_chain(&mut self, vq: &Vring, mem: &[Region], head: u16) -> Result<usize, QueueError> {
        let mut index = head;
        let mut n = 0;
        loop {
            if n == usize::from(vq.num) {
                return Err(QueueError::Loop { head, num: vq.num });
            }
            let d = vq.desc(index)?;
            if d.flags & VRING_DESC_F_INDIRECT != 0 {
                return Err(QueueError::Indirect { index });
            }
            if d.flags & VRING_DESC_F_WRITE != 0 {
                return Err(QueueError::WriteOnly { index });
            }
            let user = translate(mem, d.addr, d.len).ok_or(QueueError::OutsideMemory { index, addr: d.addr, len: d.len })?;
            self.segments[n] = (user, d.len);
            n += 1;
            if d.flags & VRING_DESC_F_NEXT == 0 {
                return Ok(n);
            }
            if d.next >= vq.num {
                return Err(QueueError::NextOutOfRange { index, next: d.next, num: vq.num });
            }
            index = d.next;
        }
    }

    /// Copies `len` bytes at owner address `addr` to the output file. A
    /// failing output is reported once and then skipped, as a line nobody
    /// listens to; the guest goes on.
    fn emit(&mut self, addr: usize, mut len: usize) -> Result<(), QueueError> {
        let mut reader = UserSlice::new(addr, len).reader();
        while len > 0 {
            let n = len.min(BOUNCE_SIZE);
            reader.read_slice(&mut self.bounce[..n]).map_err(|_| QueueError::Fault("buffer"))?;
            if !self.output_failed {
                let file = self.file.as_ptr();
                // SAFETY: we hold a reference to `file`, opened for writing
                // (checked in set_backend); `bounce` holds `n` bytes.
                let written =
                    unsafe { bindings::kernel_write(file, self.bounce.as_ptr().cast(), n, &mut (*file).f_pos) };
                if written < 0 {
                    pr_warn!("vhost-console: output failed (error {}); dropping further output\n", written);
                    self.output_failed = true;
                }
            }
            len -= n;
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
        // SAFETY: we hold a reference to the file.
        let mode = unsafe { (*file.as_ptr()).f_mode };
        if mode & (FMODE_WRITE | FMODE_CAN_WRITE) != FMODE_WRITE | FMODE_CAN_WRITE {
            return Err(EBADF);
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
