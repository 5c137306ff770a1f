// SPDX-License-Identifier: GPL-2.0
//! /dev/vmm-console: a ring buffer a VMM can send the guest's console output
//! to (`vmm --vhost --console-out /dev/vmm-console`).
//!
//! Writers append; readers drain, and a read of an empty buffer returns 0
//! (end of file), so `cat /dev/vmm-console` prints what the guest wrote and
//! ends. When the buffer is full the oldest bytes are overwritten, as in the
//! kernel log: a writer (the vhost worker) never waits for a reader, so a
//! guest cannot stall on a console nobody reads.
//!
//! The one mutex guards only the ring, never a user copy: bytes go through a
//! page-sized bounce buffer, so a reader or writer whose memory faults slowly
//! (userfaultfd, a FUSE mapping) delays nobody else.

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::uaccess::UserSlice;

use crate::miscdev::Registration;
use crate::sys;

pub(crate) const CAPACITY: usize = 64 * 1024;
/// Bytes moved per lock hold, through the bounce buffer.
const CHUNK: usize = 4096;

struct Ring {
    buf: KVec<u8>,
    /// Index of the oldest byte.
    head: usize,
    len: usize,
}

impl Ring {
    /// Appends `data` (at most CAPACITY bytes), dropping the oldest bytes to
    /// make room.
    fn push(&mut self, data: &[u8]) {
        let overflow = (self.len + data.len()).saturating_sub(CAPACITY);
        self.head = (self.head + overflow) % CAPACITY;
        self.len -= overflow;
        let tail = (self.head + self.len) % CAPACITY;
        let first = data.len().min(CAPACITY - tail);
        self.buf[tail..tail + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        self.len += data.len();
    }

    /// Moves up to `out.len()` of the oldest bytes into `out`.
    fn pop(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len);
        let first = n.min(CAPACITY - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        self.head = (self.head + n) % CAPACITY;
        self.len -= n;
        n
    }
}

#[pin_data]
pub(crate) struct OutputBuffer {
    #[pin]
    ring: Mutex<Ring>,
}

impl OutputBuffer {
    pub(crate) fn new() -> Result<impl PinInit<Self, Error>> {
        let buf = KVec::from_elem(0u8, CAPACITY, GFP_KERNEL)?;
        Ok(try_pin_init!(Self { ring <- kernel::new_mutex!(Ring { buf, head: 0, len: 0 }) }))
    }

    /// Appends what `iter` holds; returns the number of bytes taken.
    fn write_iter(&self, iter: *mut bindings::iov_iter) -> isize {
        // SAFETY: the VFS passes a valid iterator.
        let total = unsafe { sys::vhost_console_iov_iter_count(iter) };
        // Only the last CAPACITY bytes of a large write can survive: skip the
        // rest without copying it.
        if total > CAPACITY {
            // SAFETY: `iter` is valid and holds `total` bytes.
            unsafe { bindings::iov_iter_advance(iter, total - CAPACITY) };
        }
        let mut bounce = match KVec::from_elem(0u8, CHUNK, GFP_KERNEL) {
            Ok(b) => b,
            Err(_) => return -(bindings::ENOMEM as isize),
        };
        let mut left = total.min(CAPACITY);
        while left > 0 {
            let n = left.min(CHUNK);
            // SAFETY: `bounce` holds CHUNK >= n bytes; `iter` is valid.
            let copied = unsafe { bindings::_copy_from_iter(bounce.as_mut_ptr().cast(), n, iter) };
            self.ring.lock().push(&bounce[..copied]);
            left -= copied;
            if copied != n {
                // A fault in the writer's memory: report what was taken.
                return if left == total.min(CAPACITY) { -(bindings::EFAULT as isize) } else { (total - left) as isize };
            }
            if left > 0 && sys::fatal_signal_pending() {
                return (total - left) as isize;
            }
            sys::cond_resched();
        }
        total as isize
    }

    /// Moves up to `len` of the oldest bytes to user memory at `addr`.
    fn read(&self, addr: usize, len: usize) -> Result<usize> {
        let mut bounce = KVec::from_elem(0u8, CHUNK, GFP_KERNEL)?;
        let mut writer = UserSlice::new(addr, len).writer();
        let mut done = 0;
        while done < len {
            let n = self.ring.lock().pop(&mut bounce[..(len - done).min(CHUNK)]);
            if n == 0 {
                break;
            }
            // Bytes taken from the ring are the reader's: a fault loses them,
            // as a faulting read of the kernel log does.
            writer.write_slice(&bounce[..n])?;
            done += n;
            if sys::fatal_signal_pending() {
                break;
            }
            sys::cond_resched();
        }
        Ok(done)
    }
}

pub(crate) type OutputDevice = Registration<OutputBuffer>;

unsafe extern "C" fn open(_inode: *mut bindings::inode, file: *mut bindings::file) -> core::ffi::c_int {
    // Writes never wait for a reader: the vhost worker may write here with
    // RWF_NOWAIT. misc_open has already set private_data.
    // SAFETY: `file` is being opened and is ours to configure.
    unsafe { sys::vhost_console_set_nowait(file) };
    0
}

unsafe extern "C" fn read(file: *mut bindings::file, buf: *mut kernel::ffi::c_char, len: usize, _pos: *mut bindings::loff_t) -> isize {
    // SAFETY: `file` is open on /dev/vmm-console, whose private_data misc_open set.
    let dev = unsafe { OutputDevice::from_file(file) };
    match dev.data.read(buf as usize, len) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

unsafe extern "C" fn write_iter(iocb: *mut bindings::kiocb, iter: *mut bindings::iov_iter) -> isize {
    // SAFETY: the VFS passes a valid kiocb for a file open on /dev/vmm-console.
    let dev = unsafe { OutputDevice::from_file((*iocb).ki_filp) };
    dev.data.write_iter(iter)
}

pub(crate) fn fops() -> bindings::file_operations {
    bindings::file_operations {
        open: Some(open),
        read: Some(read),
        write_iter: Some(write_iter),
        llseek: Some(bindings::noop_llseek),
        // SAFETY: all-zero is a valid file_operations: every hook absent.
        ..unsafe { core::mem::zeroed() }
    }
}
