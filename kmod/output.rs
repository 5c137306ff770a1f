// SPDX-License-Identifier: GPL-2.0
//! /dev/vmm-console: a ring buffer a VMM can send the guest's console output
//! to (`vmm --vhost --console-out /dev/vmm-console`).
//!
//! Writers append; readers drain, and a read of an empty buffer returns 0
//! (end of file), so `cat /dev/vmm-console` prints what the guest wrote and
//! ends. When the buffer is full the oldest bytes are overwritten, as in the
//! kernel log: a writer (the vhost worker) never waits for a reader, so a
//! guest cannot stall on a console nobody reads.

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::uaccess::UserSlice;

use crate::miscdev::Registration;

pub(crate) const CAPACITY: usize = 64 * 1024;

extern "C" {
    fn vhost_console_iov_iter_count(i: *const bindings::iov_iter) -> usize;
}

struct Ring {
    buf: KVec<u8>,
    /// Index of the oldest byte.
    head: usize,
    len: usize,
}

impl Ring {
    /// The free space after the newest byte, up to the end of the array.
    fn tail_space(&self) -> (usize, usize) {
        let tail = (self.head + self.len) % CAPACITY;
        (tail, CAPACITY - tail)
    }

    /// Makes room for `n` bytes by dropping the oldest.
    fn reserve(&mut self, n: usize) {
        let overflow = (self.len + n).saturating_sub(CAPACITY);
        self.head = (self.head + overflow) % CAPACITY;
        self.len -= overflow;
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
        let mut left = unsafe { vhost_console_iov_iter_count(iter) };
        let total = left;
        let mut ring = self.ring.lock();
        // Only the last CAPACITY bytes of a large write can survive.
        while left > CAPACITY {
            let mut scratch = [0u8; 256];
            let n = (left - CAPACITY).min(scratch.len());
            // SAFETY: `scratch` holds `n` bytes; `iter` is valid.
            let copied = unsafe { bindings::_copy_from_iter(scratch.as_mut_ptr().cast(), n, iter) };
            if copied != n {
                return -(bindings::EFAULT as isize);
            }
            left -= n;
        }
        while left > 0 {
            let (tail, space) = ring.tail_space();
            let n = left.min(space);
            ring.reserve(n);
            // SAFETY: `tail + n <= CAPACITY`, inside `buf`; `iter` is valid.
            let dst = unsafe { ring.buf.as_mut_ptr().add(tail) };
            // SAFETY: as above.
            let copied = unsafe { bindings::_copy_from_iter(dst.cast(), n, iter) };
            ring.len += copied;
            left -= copied;
            if copied != n {
                return if total == left { -(bindings::EFAULT as isize) } else { (total - left) as isize };
            }
        }
        total as isize
    }

    /// Moves up to `len` of the oldest bytes to user memory at `addr`.
    fn read(&self, addr: usize, len: usize) -> Result<usize> {
        let mut ring = self.ring.lock();
        let n = len.min(ring.len);
        let first = n.min(CAPACITY - ring.head);
        let mut writer = UserSlice::new(addr, n).writer();
        writer.write_slice(&ring.buf[ring.head..ring.head + first])?;
        writer.write_slice(&ring.buf[..n - first])?;
        ring.head = (ring.head + n) % CAPACITY;
        ring.len -= n;
        Ok(n)
    }
}

pub(crate) type OutputDevice = Registration<OutputBuffer>;

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
        read: Some(read),
        write_iter: Some(write_iter),
        llseek: Some(bindings::noop_llseek),
        // SAFETY: all-zero is a valid file_operations: every hook absent.
        ..unsafe { core::mem::zeroed() }
    }
}
