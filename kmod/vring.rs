// SPDX-License-Identifier: GPL-2.0
//! A split virtqueue seen from the device, in the owner's address space
//! (VirtIO 1.2 §2.7), and the memory table that maps guest-physical buffer
//! addresses to it. Every access goes through copy_{from,to}_user on the
//! owner's memory, so a wrong address is an error, never a stray access.
//! Modelled on drivers/vhost/vhost.c (vhost_get_vq_desc, vhost_add_used).

use core::fmt;
use core::sync::atomic::{fence, Ordering};
use kernel::bindings;
use kernel::prelude::*;
use kernel::types::{AsBytes, FromBytes};
use kernel::uaccess::UserSlice;

use crate::sys;

const VRING_DESC_F_NEXT: u16 = 1;
const VRING_DESC_F_WRITE: u16 = 2;
const VRING_DESC_F_INDIRECT: u16 = 4;
const VRING_USED_F_NO_NOTIFY: u16 = 1;
const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Largest split queue (§2.7).
pub(crate) const MAX_SIZE: u32 = 32768;
/// §2.7.5: a chain holds at most 2^32 bytes.
const MAX_CHAIN_BYTES: u64 = 1 << 32;

/// Which way a queue's buffers go.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// transmitq: the device only reads the buffers.
    DeviceReads,
    /// receiveq: the device only writes them.
    DeviceWrites,
    /// A block request: buffers the device reads, then buffers it writes
    /// (§2.7.4.2: every device-writable one after the device-readable).
    ReadThenWrite,
}

/// What `Vring::gather` found in a chain.
pub(crate) struct Chain {
    /// Bytes in device-readable buffers, then in device-writable ones.
    pub(crate) readable: u64,
    pub(crate) writable: u64,
    /// How many of the iovecs appended are device-readable (the first ones).
    pub(crate) readable_iovs: usize,
}

impl Chain {
    pub(crate) fn bytes(&self) -> u64 {
        self.readable + self.writable
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Desc {
    pub(crate) addr: u64,
    pub(crate) len: u32,
    pub(crate) flags: u16,
    pub(crate) next: u16,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct UsedElem {
    id: u32,
    len: u32,
}

// SAFETY: `repr(C)` integers without padding: any bit pattern is valid.
unsafe impl FromBytes for Desc {}
// SAFETY: `repr(C)` integers without padding: no uninitialized bytes.
unsafe impl AsBytes for UsedElem {}

/// Why a queue was stopped. The worker logs it and signals the err eventfd.
pub(crate) enum QueueError {
    /// The backend file refused the queue's bytes (a negative errno; 0: it
    /// took none). Output that cannot be written must not look written.
    Write(isize),
    /// The backend file could not be read (a negative errno); not its end.
    Read(isize),
    /// The backend file cannot be waited for (a negative errno).
    Poll(isize),
    Fault(&'static str),
    AvailIndexJump { avail: u16, last: u16, num: u16 },
    HeadOutOfRange { head: u16, num: u16 },
    NextOutOfRange { index: u16, next: u16, num: u16 },
    Loop { head: u16, num: u16 },
    Indirect { index: u16 },
    WriteOnly { index: u16 },
    ReadOnly { index: u16 },
    ReadAfterWrite { index: u16 },
    OutsideMemory { index: u16, addr: u64, len: u32 },
    ChainTooLarge { head: u16 },
    /// A chain that is no block request (the VMM's device says the same).
    ShortHeader { head: u16, readable: u64 },
    NoStatus { head: u16 },
    WrongDirection { head: u16, kind: &'static str, len: u64, direction: &'static str },
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Write(0) => write!(f, "the output file took no byte of a write"),
            Self::Write(e) => write!(f, "cannot write the output file: error {e}{}", errno_name(e)),
            Self::Read(e) => write!(f, "cannot read the input file: error {e}{}", errno_name(e)),
            Self::Poll(e) => write!(f, "cannot wait for the backend file: error {e}{}", errno_name(e)),
            Self::Fault(what) => write!(f, "cannot access the {what} in the owner's memory"),
            Self::AvailIndexJump { avail, last, num } => {
                write!(f, "available index {avail} is more than the queue size {num} ahead of {last}")
            }
            Self::HeadOutOfRange { head, num } => {
                write!(f, "available ring names descriptor {head}, beyond the queue size {num}")
            }
            Self::NextOutOfRange { index, next, num } => {
                write!(f, "descriptor {index} chains to {next}, beyond the queue size {num}")
            }
            Self::Loop { head, num } => write!(f, "descriptor chain from {head} is longer than the queue size {num} (a loop)"),
            Self::Indirect { index } => write!(f, "descriptor {index} is indirect, which was not negotiated"),
            Self::WriteOnly { index } => write!(f, "descriptor {index} is device-writable on transmitq"),
            Self::ReadOnly { index } => write!(f, "descriptor {index} is device-readable on receiveq"),
            Self::OutsideMemory { index, addr, len } => {
                write!(f, "descriptor {index}: buffer {addr:#x}+{len:#x} is outside the memory table")
            }
            Self::ChainTooLarge { head } => write!(f, "descriptor chain from {head} holds more than 4 GiB"),
            Self::ReadAfterWrite { index } => write!(f, "descriptor {index} is device-readable after a device-writable one"),
            Self::ShortHeader { head, readable } => {
                write!(f, "request {head}: its header needs 16 device-readable bytes, the chain has {readable}")
            }
            Self::NoStatus { head } => write!(f, "request {head}: no device-writable byte at its end for the status"),
            Self::WrongDirection { head, kind, len, direction } => {
                write!(f, "request {head}: a {kind} request with {len} device-{direction} data bytes")
            }
        }
    }
}

/// The names of the errors a file write or read is likely to return, for
/// the log line.
pub(crate) fn errno_name(e: isize) -> &'static str {
    let Ok(e) = u32::try_from(-e) else { return "" };
    match e {
        bindings::EINTR => " (EINTR)",
        bindings::EIO => " (EIO)",
        bindings::EBADF => " (EBADF)",
        bindings::EAGAIN => " (EAGAIN)",
        bindings::EFAULT => " (EFAULT)",
        bindings::EINVAL => " (EINVAL)",
        bindings::EFBIG => " (EFBIG)",
        bindings::ENOSPC => " (ENOSPC)",
        bindings::EROFS => " (EROFS)",
        bindings::EPIPE => " (EPIPE)",
        bindings::EOPNOTSUPP => " (EOPNOTSUPP)",
        bindings::EDQUOT => " (EDQUOT)",
        _ => "",
    }
}

/// One `SET_MEM_TABLE` region.
#[derive(Clone, Copy)]
pub(crate) struct Region {
    pub(crate) guest: u64,
    pub(crate) size: u64,
    pub(crate) user: u64,
}

/// The owner address of guest range `addr..addr+len`, if one region holds all of it.
fn translate(mem: &[Region], addr: u64, len: u32) -> Option<usize> {
    let end = addr.checked_add(u64::from(len))?;
    let r = mem.iter().find(|r| addr >= r.guest && end <= r.guest + r.size)?;
    usize::try_from(r.user + (addr - r.guest)).ok()
}

/// A queue's configuration and the device's position in it.
#[derive(Clone, Copy, Default)]
pub(crate) struct Vring {
    /// Queue size; 0 until SET_VRING_NUM.
    pub(crate) num: u16,
    /// Ring addresses in the owner's address space (SET_VRING_ADDR); 0 if unset.
    pub(crate) desc: usize,
    pub(crate) avail: usize,
    pub(crate) used: usize,
    /// Next available-ring entry to process (SET/GET_VRING_BASE).
    pub(crate) last_avail: u16,
    /// The used index the device last published.
    pub(crate) used_idx: u16,
    /// Set when the queue hit an error; nothing runs until it is reconfigured.
    pub(crate) broken: bool,
    /// How long the worker polls an empty ring before it sleeps (µs;
    /// VHOST_SET_VRING_BUSYLOOP_TIMEOUT, as vhost-net).
    pub(crate) busyloop_timeout: u32,
    /// VIRTIO_RING_F_EVENT_IDX acked: avail_event and used_event instead of
    /// the flags words (§2.7.7.2, §2.7.10.2).
    pub(crate) event_idx: bool,
    /// The used index when call was last signalled, if known since the ring
    /// was set up (vhost's signalled_used, signalled_used_valid).
    pub(crate) signalled_used: Option<u16>,
}

/// Reads a ring index or flags word the driver may be writing right now: one
/// aligned 16-bit load (get_user), as vhost does. A user copy may move it a
/// byte at a time, and a torn index is a lie about the ring.
fn read_u16(addr: usize, what: &'static str) -> Result<u16, QueueError> {
    let mut value = 0;
    // SAFETY: get_user checks the address and faults safely; `value` is ours.
    match unsafe { sys::vhost_console_get_user_u16(&mut value, addr) } {
        0 => Ok(value),
        _ => Err(QueueError::Fault(what)),
    }
}

/// Writes a word the driver may be reading right now: one aligned 16-bit
/// store (put_user); see `read_u16`.
fn write_u16(addr: usize, value: u16, what: &'static str) -> Result<(), QueueError> {
    // SAFETY: put_user checks the address and faults safely.
    match unsafe { sys::vhost_console_put_user_u16(value, addr) } {
        0 => Ok(()),
        _ => Err(QueueError::Fault(what)),
    }
}

fn read<T: FromBytes>(addr: usize, what: &'static str) -> Result<T, QueueError> {
    UserSlice::new(addr, core::mem::size_of::<T>()).reader().read::<T>().map_err(|_| QueueError::Fault(what))
}

fn write<T: AsBytes>(addr: usize, value: &T, what: &'static str) -> Result<(), QueueError> {
    UserSlice::new(addr, core::mem::size_of::<T>()).writer().write(value).map_err(|_| QueueError::Fault(what))
}

impl Vring {
    pub(crate) fn configured(&self) -> bool {
        self.num != 0 && self.desc != 0 && self.avail != 0 && self.used != 0
    }

    /// Whether the three rings, at the current size, lie in user memory
    /// (vhost's vq_access_ok). Every access checks again; this makes a bad
    /// setup an ioctl error instead of a stopped queue.
    pub(crate) fn access_ok(&self) -> bool {
        let num = usize::from(self.num);
        [(self.desc, 16 * num), (self.avail, 6 + 2 * num), (self.used, 6 + 8 * num)]
            .into_iter()
            // SAFETY: access_ok only compares the range with the user address limit.
            .all(|(addr, size)| addr != 0 && unsafe { sys::vhost_console_access_ok(addr, size) })
    }

    /// Gives back the last `n` chains taken and not used, so that the driver
    /// sees them again after the queue restarts (vhost_discard_vq_desc).
    pub(crate) fn discard(&mut self, n: u16) {
        self.last_avail = self.last_avail.wrapping_sub(n);
    }

    /// Entries the driver has made available and the device not yet taken.
    pub(crate) fn pending(&self) -> Result<u16, QueueError> {
        let avail = read_u16(self.avail + 2, "available index")?;
        // Read the ring entries only after the index (pairs with the
        // driver's barrier before it publishes the index).
        fence(Ordering::Acquire);
        let ahead = avail.wrapping_sub(self.last_avail);
        if ahead > self.num {
            return Err(QueueError::AvailIndexJump { avail, last: self.last_avail, num: self.num });
        }
        Ok(ahead)
    }

    /// The head of the next available chain; the caller checked `pending`.
    pub(crate) fn next_head(&mut self) -> Result<u16, QueueError> {
        let slot = self.avail + 4 + 2 * usize::from(self.last_avail % self.num);
        let head = read_u16(slot, "available ring")?;
        if head >= self.num {
            return Err(QueueError::HeadOutOfRange { head, num: self.num });
        }
        self.last_avail = self.last_avail.wrapping_add(1);
        Ok(head)
    }

    pub(crate) fn desc(&self, index: u16) -> Result<Desc, QueueError> {
        read(self.desc + 16 * usize::from(index), "descriptor table")
    }

    /// Walks the chain at `head` before any byte moves (vhost_get_vq_desc):
    /// each descriptor direct, going `direction`, inside the memory table,
    /// at most `num` of them (more is a loop) and 4 GiB in all. Appends the
    /// buffers to `iov` as owner addresses, for which it must have room for
    /// `num` more (so no allocation happens here); on an error `iov` is left
    /// as it was.
    pub(crate) fn gather(
        &self,
        mem: &[Region],
        head: u16,
        direction: Direction,
        iov: &mut KVVec<bindings::iovec>,
    ) -> Result<Chain, QueueError> {
        let start = iov.len();
        let mut walk = || {
            let mut index = head;
            let mut chain = Chain { readable: 0, writable: 0, readable_iovs: 0 };
            loop {
                if iov.len() - start == usize::from(self.num) {
                    return Err(QueueError::Loop { head, num: self.num });
                }
                let d = self.desc(index)?;
                if d.flags & VRING_DESC_F_INDIRECT != 0 {
                    return Err(QueueError::Indirect { index });
                }
                let writable = d.flags & VRING_DESC_F_WRITE != 0;
                match (direction, writable) {
                    (Direction::DeviceReads, true) => return Err(QueueError::WriteOnly { index }),
                    (Direction::DeviceWrites, false) => return Err(QueueError::ReadOnly { index }),
                    // A device-writable buffer came before (one of 0 bytes too).
                    (Direction::ReadThenWrite, false) if iov.len() - start > chain.readable_iovs => {
                        return Err(QueueError::ReadAfterWrite { index })
                    }
                    _ => {}
                }
                let Some(user) = translate(mem, d.addr, d.len) else {
                    return Err(QueueError::OutsideMemory { index, addr: d.addr, len: d.len });
                };
                match writable {
                    true => chain.writable += u64::from(d.len),
                    false => {
                        chain.readable += u64::from(d.len);
                        chain.readable_iovs += 1;
                    }
                }
                if chain.bytes() > MAX_CHAIN_BYTES {
                    return Err(QueueError::ChainTooLarge { head });
                }
                let buf = bindings::iovec { iov_base: user as *mut core::ffi::c_void, iov_len: d.len as usize };
                // The caller left room for `num` buffers: no allocation.
                iov.push(buf, GFP_KERNEL).map_err(|_| QueueError::Fault("chain"))?;
                if d.flags & VRING_DESC_F_NEXT == 0 {
                    return Ok(chain);
                }
                if d.next >= self.num {
                    return Err(QueueError::NextOutOfRange { index, next: d.next, num: self.num });
                }
                index = d.next;
            }
        };
        let result = walk();
        if result.is_err() {
            // SAFETY: shrinking back to before the chain; iovec is Copy.
            unsafe { iov.set_len(start) };
        }
        result
    }

    /// Publishes `head` as used with `len` bytes written (§2.7.8).
    pub(crate) fn add_used(&mut self, head: u16, len: u32) -> Result<(), QueueError> {
        let slot = self.used + 4 + 8 * usize::from(self.used_idx % self.num);
        write(slot, &UsedElem { id: head.into(), len }, "used ring")?;
        // The element before the index that exposes it.
        fence(Ordering::Release);
        let idx = self.used_idx.wrapping_add(1);
        write_u16(self.used + 2, idx, "used index")?;
        // Only a published entry counts: GET_VRING_BASE after a failure then
        // still matches what the driver saw.
        self.used_idx = idx;
        Ok(())
    }

    /// Asks the driver not to notify while the device drains (§2.7.10).
    /// Returns, when notifications are back on, whether more arrived meanwhile
    /// (vhost_disable_notify, vhost_enable_notify).
    pub(crate) fn set_notify(&self, enable: bool) -> Result<bool, QueueError> {
        match (self.event_idx, enable) {
            // With EVENT_IDX the driver kicks once it passes avail_event:
            // leaving it behind is off, as in vhost_disable_notify.
            (true, false) => return Ok(false),
            (true, true) => write_u16(self.avail_event(), self.last_avail, "avail event")?,
            (false, _) => {
                let flags: u16 = if enable { 0 } else { VRING_USED_F_NO_NOTIFY };
                write_u16(self.used, flags, "used flags")?;
                if !enable {
                    return Ok(false);
                }
            }
        }
        // The store before the index load, or a kick could be missed.
        fence(Ordering::SeqCst);
        Ok(self.pending()? != 0)
    }

    /// Polls the empty ring for up to `busyloop_timeout` µs, with
    /// notifications still off: a driver that posts buffers steadily then
    /// never has to kick. Stops early when another task wants the CPU or a
    /// signal is pending (vhost_can_busy_poll). Returns whether buffers arrived.
    pub(crate) fn busy_poll(&self) -> Result<bool, QueueError> {
        if self.busyloop_timeout == 0 {
            return Ok(false);
        }
        // SAFETY: ktime_get has no preconditions.
        let deadline = unsafe { kernel::bindings::ktime_get() } + i64::from(self.busyloop_timeout) * 1000;
        loop {
            if self.pending()? != 0 {
                return Ok(true);
            }
            // SAFETY: as above.
            if unsafe { kernel::bindings::ktime_get() } > deadline || sys::need_resched() || sys::signal_pending() {
                return Ok(false);
            }
            core::hint::spin_loop();
        }
    }

    /// The queue looked empty: whether a chain came after all. Busy-polls
    /// first if `busy` (queues the device drains), then turns notifications
    /// back on and looks once more (§2.7.10). False: the queue is empty and
    /// the driver will kick; true: a chain came, notifications are off again.
    pub(crate) fn refill(&mut self, busy: bool) -> Result<bool, QueueError> {
        if busy && self.busy_poll()? {
            return Ok(true);
        }
        if !self.set_notify(true)? {
            return Ok(false);
        }
        self.set_notify(false)?;
        Ok(true)
    }

    /// Whether the driver wants a used-buffer notification for what was used
    /// since the last one (vhost_notify): with EVENT_IDX, if the used index
    /// passed used_event since then; else unless VRING_AVAIL_F_NO_INTERRUPT.
    pub(crate) fn wants_interrupt(&mut self) -> Result<bool, QueueError> {
        if !self.event_idx {
            let flags = read_u16(self.avail, "available flags")?;
            return Ok(flags & VRING_AVAIL_F_NO_INTERRUPT == 0);
        }
        let Some(old) = self.signalled_used.replace(self.used_idx) else { return Ok(true) };
        let event = read_u16(self.avail + 4 + 2 * usize::from(self.num), "used event")?;
        Ok(need_event(event, self.used_idx, old))
    }

    /// Where the device's avail_event lives: after the used ring's entries.
    fn avail_event(&self) -> usize {
        self.used + 4 + 8 * usize::from(self.num)
    }
}

/// Whether moving an index from `old` to `new` passed `event` (vring_need_event).
fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}
