// SPDX-License-Identifier: GPL-2.0
//! The block device on the vhost core (virtio-blk, VirtIO 1.2 §5.2), the
//! second device on it as drivers/vhost has net, scsi, vsock and test on
//! one: its one ioctl, which attaches the disk (a regular file or a block
//! device the owner opened) with what the device told the driver about it,
//! and the request queue's processing.
//!
//! The rules are the VMM's own device's (vmm/src/virtio/block/request.rs),
//! one specification with two implementations: a chain that is no request
//! (no 16-byte header, no status byte, data in the wrong direction) stops
//! the queue, as a driver bug; a request the device cannot honour (not
//! whole sectors, past the capacity, a write to a read-only disk, a bad
//! discard segment) gets IOERR or UNSUPP and the device goes on.
//!
//! I/O is synchronous in the worker, at the request's position in the
//! file, straight between the file and the owner's memory (as a loop
//! worker reads and writes), a request at a time: requests are used in
//! order and none is in flight once a run ends, so RESET_OWNER, SET_BACKEND
//! and close, which wait for the run, never race a completion. A run takes
//! at most `WEIGHT` requests and `BYTE_WEIGHT` bytes; a long request moves
//! in `CHUNK`s with a scheduling point and a fatal-signal check between
//! them.
use kernel::bindings;
use kernel::error::{code::*, to_result};
use kernel::prelude::*;
use kernel::uaccess::UserSlice;

use crate::refs::FileRef;
use crate::sys;
use crate::uapi::*;
use crate::vhost::{read, Device, VhostDev, Vq};
use crate::vring::{errno_name, Direction, QueueError, Region, Vring};
use crate::worker::Worker;

/// The request queue, the only one.
const REQUESTQ: usize = 0;
/// Requests per worker run (vhost-scsi's VHOST_SCSI_WEIGHT).
const WEIGHT: usize = 256;
/// Bytes per worker run, checked between requests (vhost-net's weight).
const BYTE_WEIGHT: usize = 0x80000;
/// The most one read or write moves before the worker may be scheduled
/// out and a fatal signal ends the request.
const CHUNK: usize = 1 << 20;
/// Discard and write-zeroes segments per request the owner may allow.
const MAX_SEGMENTS: u32 = 256;
const SECTOR_SHIFT: u32 = 9;
const HEADER_SIZE: u64 = 16;
const SEGMENT_SIZE: u64 = 16;
const ID_BYTES: usize = 20;

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const T_DISCARD: u32 = 11;
const T_WRITE_ZEROES: u32 = 13;

const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;
const FLAG_UNMAP: u32 = 1;

/// The most I/O errors one disk logs (each also reaches the driver as IOERR).
const LOGGED_ERRORS: u32 = 10;

pub(crate) struct Blk;

#[derive(Default)]
pub(crate) struct BlkQueue {
    disk: Option<Disk>,
}

/// The attached disk, and the request being served.
struct Disk {
    /// The request's buffers as owner addresses: room for a chain as long as the queue.
    iov: KVVec<bindings::iovec>,
    backing: Backing,
}

/// The disk's file and what the driver was told about it.
struct Backing {
    file: FileRef,
    read_only: bool,
    /// In sectors.
    capacity: u64,
    /// (sectors per segment, segments per request).
    discard: (u32, u32),
    write_zeroes: (u32, u32),
    serial: [u8; ID_BYTES],
    /// A DISCARD or WRITE_ZEROES request's segments, checked: (sector,
    /// sectors, unmap).
    segments: KVec<(u64, u32, bool)>,
    /// The file system can punch holes / zero ranges, as far as we know.
    punch_hole: bool,
    zero_range: bool,
    errors: u32,
}

// SAFETY: the iovecs are plain addresses into the owner's memory, used only
// by the worker, in that memory's context.
unsafe impl Send for Disk {}

/// What one run did.
#[derive(Default)]
struct Run {
    requests: usize,
    bytes: usize,
    used: bool,
    /// Stopped over budget with work left.
    more: bool,
}

/// How a well-formed request ended: its status and the bytes it wrote into
/// the driver's buffers before the status; `None` if the owner is being
/// killed (the request is given back, the queue goes with its owner).
type Outcome = Option<(u8, u64)>;

/// Copies `out.len()` bytes from `iov`'s bytes `offset..` (owner addresses),
/// across buffers.
fn copy_in(iov: &[bindings::iovec], offset: u64, out: &mut [u8]) -> bool {
    walk(iov, offset, out.len(), |addr, at, n| {
        UserSlice::new(addr, n).reader().read_slice(&mut out[at..at + n]).is_ok()
    })
}

/// Copies `data` into `iov`'s bytes `offset..`, across buffers.
fn copy_out(iov: &[bindings::iovec], offset: u64, data: &[u8]) -> bool {
    walk(iov, offset, data.len(), |addr, at, n| UserSlice::new(addr, n).writer().write_slice(&data[at..at + n]).is_ok())
}

/// Calls `f(owner address, bytes done, length)` for each piece of `iov`'s
/// bytes `offset..offset + len`; false if one fails or `iov` is shorter.
fn walk(iov: &[bindings::iovec], mut offset: u64, len: usize, mut f: impl FnMut(usize, usize, usize) -> bool) -> bool {
    let mut at = 0;
    for v in iov {
        if at == len {
            break;
        }
        let vlen = v.iov_len as u64;
        if offset >= vlen {
            offset -= vlen;
            continue;
        }
        let n = ((vlen - offset) as usize).min(len - at);
        if !f(v.iov_base as usize + offset as usize, at, n) {
            return false;
        }
        at += n;
        offset = 0;
    }
    at == len
}

/// Does `op(bytes done, count)` until `len` bytes moved, a `CHUNK` at a
/// time, with a scheduling point between chunks. A short result (0: the
/// file ended) or an error ends it; `None` if the owner is being killed.
fn chunked(len: u64, run: &mut Run, mut op: impl FnMut(u64, usize) -> isize) -> Option<Result<(), isize>> {
    let mut done = 0u64;
    while done < len {
        if done > 0 {
            sys::cond_resched();
        }
        if sys::fatal_signal_pending() {
            return None;
        }
        let n = op(done, (len - done).min(CHUNK as u64) as usize);
        // The file's code gives up on a fatal signal too (EINTR): no I/O
        // error of the disk's, the owner is going.
        if n < 0 && sys::fatal_signal_pending() {
            return None;
        }
        if n <= 0 {
            return Some(Err(n));
        }
        done += n as u64;
        run.bytes += n as usize;
    }
    Some(Ok(()))
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

impl Disk {
    /// Serves the request queue with notifications off (§2.7.10), within the budget.
    fn serve(&mut self, ring: &mut Vring, mem: &[Region], run: &mut Run) -> Result<(), QueueError> {
        ring.set_notify(false)?;
        loop {
            if run.requests >= WEIGHT || run.bytes >= BYTE_WEIGHT {
                run.more = true;
                return Ok(());
            }
            if ring.pending()? == 0 {
                if !ring.refill(true)? {
                    return Ok(());
                }
                continue;
            }
            let head = ring.next_head()?;
            let len = match self.request(ring, mem, head, run) {
                Ok(Some(len)) => len,
                Ok(None) => {
                    ring.discard(1);
                    return Ok(());
                }
                Err(e) => {
                    ring.discard(1);
                    return Err(e);
                }
            };
            if let Err(e) = ring.add_used(head, len) {
                ring.discard(1);
                return Err(e);
            }
            run.used = true;
            run.requests += 1;
        }
    }

    /// Parses, checks and does the request at `head`; returns the used
    /// length (the bytes written into its buffers, status included), or
    /// `None` if the owner is being killed.
    fn request(&mut self, ring: &Vring, mem: &[Region], head: u16, run: &mut Run) -> Result<Option<u32>, QueueError> {
        // SAFETY: emptying; iovec is Copy.
        unsafe { self.iov.set_len(0) };
        let chain = ring.gather(mem, head, Direction::ReadThenWrite, &mut self.iov)?;
        if chain.readable < HEADER_SIZE {
            return Err(QueueError::ShortHeader { head, readable: chain.readable });
        }
        if chain.writable == 0 {
            return Err(QueueError::NoStatus { head });
        }
        let (readable, writable) = self.iov.split_at(chain.readable_iovs);
        let mut header = [0u8; HEADER_SIZE as usize];
        if !copy_in(readable, 0, &mut header) {
            return Err(QueueError::Fault("request header"));
        }
        let (kind, sector) = (le32(&header[0..4]), le64(&header[8..16]));
        // The data: writable before the status, or readable after the header.
        let (in_data, out_data) = (chain.writable - 1, chain.readable - HEADER_SIZE);
        let wrong = |kind, len, direction| QueueError::WrongDirection { head, kind, len, direction };
        let data = match kind {
            T_IN | T_GET_ID | T_FLUSH if out_data != 0 => return Err(wrong(name(kind), out_data, "readable")),
            T_OUT | T_DISCARD | T_WRITE_ZEROES | T_FLUSH if in_data != 0 => {
                return Err(wrong(name(kind), in_data, "writable"))
            }
            T_IN | T_GET_ID => (writable, in_data),
            _ => (readable, out_data),
        };
        let Some((status, written)) = self.backing.execute(kind, sector, data, run)? else { return Ok(None) };
        let len = if status == S_OK { written + 1 } else { 1 };
        let len = u32::try_from(len).map_err(|_| QueueError::ChainTooLarge { head })?;
        if !copy_out(writable, chain.writable - 1, &[status]) {
            return Err(QueueError::Fault("request status"));
        }
        Ok(Some(len))
    }
}

/// A request type's name, for log lines (the VMM's device's words).
fn name(kind: u32) -> &'static str {
    match kind {
        T_IN => "read",
        T_OUT => "write",
        T_FLUSH => "flush",
        T_GET_ID => "get-id",
        T_DISCARD => "discard",
        _ => "write-zeroes",
    }
}

impl Backing {
    /// Does what a well-formed request asks. `data` is its data's buffers and
    /// length (the writable ones before the status for a read or GET_ID, the
    /// readable ones after the header otherwise); the data starts at byte
    /// `HEADER_SIZE` of readable buffers.
    fn execute(
        &mut self,
        kind: u32,
        sector: u64,
        (iov, len): (&[bindings::iovec], u64),
        run: &mut Run,
    ) -> Result<Outcome, QueueError> {
        let skip = if kind == T_IN || kind == T_GET_ID { 0 } else { HEADER_SIZE };
        let capacity = self.capacity;
        let in_range = |sector: u64, len: u64| {
            len % 512 == 0 && sector.checked_add(len >> SECTOR_SHIFT).is_some_and(|end| end <= capacity)
        };
        Ok(match kind {
            T_IN | T_OUT if !in_range(sector, len) || (kind == T_OUT && self.read_only) => Some((S_IOERR, 0)),
            T_IN | T_OUT if len == 0 => Some((S_OK, 0)),
            T_IN | T_OUT => {
                let write = kind == T_OUT;
                let total: u64 = iov.iter().map(|v| v.iov_len as u64).sum();
                match self.transfer(write, iov, total, skip, len, sector << SECTOR_SHIFT, run) {
                    None => None,
                    Some(Ok(())) => Some((S_OK, if write { 0 } else { len })),
                    Some(Err(e)) => Some((self.io_error(if write { "write" } else { "read" }, sector, e), 0)),
                }
            }
            T_FLUSH => {
                // SAFETY: the file is referenced and was checked on attach.
                match unsafe { sys::vhost_blk_fsync(self.file.as_ptr()) } {
                    0 => Some((S_OK, 0)),
                    e => Some((self.io_error("flush", 0, e as isize), 0)),
                }
            }
            T_GET_ID => {
                let n = (len as usize).min(ID_BYTES);
                if !copy_out(iov, 0, &self.serial[..n]) {
                    return Err(QueueError::Fault("GET_ID buffer"));
                }
                Some((S_OK, n as u64))
            }
            T_DISCARD | T_WRITE_ZEROES => self.discard_or_zero(kind == T_DISCARD, iov, len, in_range, run),
            _ => Some((S_UNSUPP, 0)),
        })
    }

    /// DISCARD or WRITE_ZEROES: every segment checked, then each done.
    fn discard_or_zero(
        &mut self,
        discard: bool,
        iov: &[bindings::iovec],
        len: u64,
        in_range: impl Fn(u64, u64) -> bool,
        run: &mut Run,
    ) -> Outcome {
        let (max_sectors, max_seg) = if discard { self.discard } else { self.write_zeroes };
        if self.read_only || len == 0 || len % SEGMENT_SIZE != 0 || len / SEGMENT_SIZE > u64::from(max_seg) {
            return Some((S_IOERR, 0));
        }
        // Every segment checked before any is done, as the VMM's device
        // does, and kept: the driver's memory may change under the request.
        // SAFETY: emptying; the tuples are Copy.
        unsafe { self.segments.set_len(0) };
        for i in 0..len / SEGMENT_SIZE {
            let mut raw = [0u8; SEGMENT_SIZE as usize];
            if !copy_in(iov, HEADER_SIZE + SEGMENT_SIZE * i, &mut raw) {
                return Some((S_IOERR, 0));
            }
            let (sector, sectors, flags) = (le64(&raw[0..8]), le32(&raw[8..12]), le32(&raw[12..16]));
            // §5.2.6.2: unknown flags, or unmap on a discard, are unsupported.
            if flags & !FLAG_UNMAP != 0 || (discard && flags & FLAG_UNMAP != 0) {
                return Some((S_UNSUPP, 0));
            }
            if sectors > max_sectors || !in_range(sector, u64::from(sectors) << SECTOR_SHIFT) {
                return Some((S_IOERR, 0));
            }
            // Room for max_seg was made on attach: no allocation.
            if self.segments.push((sector, sectors, flags & FLAG_UNMAP != 0), GFP_KERNEL).is_err() {
                return Some((S_IOERR, 0));
            }
        }
        let what = if discard { "discard" } else { "write-zeroes" };
        for k in 0..self.segments.len() {
            let (sector, sectors, unmap) = self.segments[k];
            let (pos, bytes) = (sector << SECTOR_SHIFT, u64::from(sectors) << SECTOR_SHIFT);
            match self.zero(discard, unmap, pos, bytes, run) {
                None => return None,
                Some(Ok(())) => {}
                Some(Err(e)) => return Some((self.io_error(what, sector, e), 0)),
            }
        }
        Some((S_OK, 0))
    }

    /// One segment: a discard punches a hole (a hint: where the file system
    /// cannot, nothing happens, as QEMU answers); write-zeroes punches one
    /// if it may unmap, else zeroes the range, else writes zeroes.
    fn zero(&mut self, discard: bool, unmap: bool, pos: u64, len: u64, run: &mut Run) -> Option<Result<(), isize>> {
        let unsupported = -(bindings::EOPNOTSUPP as i32);
        if (discard || unmap) && self.punch_hole {
            // SAFETY: the file is referenced and was checked (writable) on attach.
            match unsafe { sys::vhost_blk_fallocate(self.file.as_ptr(), true, pos as i64, len as i64) } {
                0 => return Some(Ok(())),
                e if e == unsupported => self.punch_hole = false,
                e => return Some(Err(e as isize)),
            }
        }
        if discard {
            return Some(Ok(()));
        }
        if self.zero_range {
            // SAFETY: as above.
            match unsafe { sys::vhost_blk_fallocate(self.file.as_ptr(), false, pos as i64, len as i64) } {
                0 => return Some(Ok(())),
                e if e == unsupported => self.zero_range = false,
                e => return Some(Err(e as isize)),
            }
        }
        let file = self.file.as_ptr();
        chunked(len, run, |done, count| {
            // SAFETY: the file is referenced and was checked (writable) on attach.
            unsafe { sys::vhost_blk_write_zeroes(file, (pos + done) as i64, count) }
        })
    }

    /// Moves `len` bytes between the file at `pos` and `iov`'s bytes from
    /// `skip` on (`total` in all), a `CHUNK` at a time. A short transfer (the
    /// file ended, or shrank under the disk) is an error.
    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &self,
        write: bool,
        iov: &[bindings::iovec],
        total: u64,
        skip: u64,
        len: u64,
        pos: u64,
        run: &mut Run,
    ) -> Option<Result<(), isize>> {
        let file = self.file.as_ptr();
        chunked(len, run, |done, count| {
            // SAFETY: `iov` holds the request's iovecs, owner addresses adding
            // up to `total`; the worker runs in the owner's address space, and
            // a bad address fails the copy (EFAULT), nothing else. The file is
            // referenced and was checked on attach.
            unsafe {
                sys::vhost_blk_rw(
                    file,
                    iov.as_ptr(),
                    iov.len(),
                    total as usize,
                    (skip + done) as usize,
                    count,
                    (pos + done) as i64,
                    write,
                )
            }
        })
    }

    /// An I/O error: the driver gets IOERR; the first few are logged.
    fn io_error(&mut self, what: &str, sector: u64, e: isize) -> u8 {
        self.errors = self.errors.saturating_add(1);
        if self.errors <= LOGGED_ERRORS {
            match e {
                0 => pr_warn!("vhost-blk: {} at sector {}: the file ended; the driver gets IOERR\n", what, sector),
                e => pr_warn!(
                    "vhost-blk: {} at sector {}: error {}{}; the driver gets IOERR\n",
                    what,
                    sector,
                    e,
                    errno_name(e)
                ),
            }
        }
        S_IOERR
    }
}

impl Device for Blk {
    type Queue = BlkQueue;
    const NAME: &'static CStr = kernel::c_str!("vhost-blk");
    const FEATURES: u64 = VIRTIO_F_VERSION_1 | VIRTIO_RING_F_EVENT_IDX;

    fn new() -> impl PinInit<Self, Error> {
        Blk
    }

    fn handle_kick(&self, _worker: &Worker, index: usize, vq: &mut Vq<BlkQueue>) -> bool {
        if vq.ring.broken || index != REQUESTQ {
            return false;
        }
        let Some(disk) = vq.device.disk.as_mut() else { return false };
        let mut run = Run::default();
        let result = disk.serve(&mut vq.ring, &vq.mem, &mut run);
        // What was used before an error is the driver's, and so is its call.
        if run.used {
            vq.signal_used();
        }
        match result {
            Ok(()) => run.more,
            Err(e) => {
                vq.fail(Self::NAME, "requestq", e);
                false
            }
        }
    }

    fn busy(queue: &BlkQueue) -> bool {
        queue.disk.is_some()
    }

    fn stop_queue(&self, _index: usize, _queue: &mut BlkQueue) {
        // Nothing is polled: the disk is never waited on but in a run.
    }

    /// VHOST_BLK_SET_BACKEND: attach the disk to the request queue (fd -1 detaches).
    fn ioctl(vhost: &VhostDev<Self>, cmd: u32, arg: usize) -> Result {
        if cmd != VHOST_BLK_SET_BACKEND {
            return Err(ENOTTY);
        }
        let b: BlkBackend = read(arg)?;
        if b.flags & !VHOST_BLK_F_READ_ONLY != 0 || b.padding != 0 {
            return Err(EINVAL);
        }
        let backing = match b.fd {
            -1 => None,
            fd => {
                let read_only = b.flags & VHOST_BLK_F_READ_ONLY != 0;
                if b.capacity > (i64::MAX as u64) >> SECTOR_SHIFT
                    || b.max_discard_seg > MAX_SEGMENTS
                    || b.max_write_zeroes_seg > MAX_SEGMENTS
                {
                    return Err(EINVAL);
                }
                let file = FileRef::get(fd)?;
                // SAFETY: the file is referenced.
                to_result(unsafe { sys::vhost_blk_check(file.as_ptr(), !read_only, b.capacity << SECTOR_SHIFT) })?;
                Some((file, read_only))
            }
        };
        let mut guard = vhost.vq(REQUESTQ).lock();
        let vq = &mut *guard;
        vq.device.disk = None;
        let Some((file, read_only)) = backing else { return Ok(()) };
        if !vq.ring.configured() || !vq.ring.access_ok() {
            return Err(EFAULT);
        }
        // The ring may have been set up anew: the first used buffer signals
        // call whatever used_event says (vhost_vq_init_access).
        vq.ring.signalled_used = None;
        vq.device.disk = Some(Disk {
            iov: KVVec::with_capacity(usize::from(vq.ring.num), GFP_KERNEL)?,
            backing: Backing {
                file,
                read_only,
                capacity: b.capacity,
                discard: (b.max_discard_sectors, b.max_discard_seg),
                write_zeroes: (b.max_write_zeroes_sectors, b.max_write_zeroes_seg),
                serial: b.serial,
                segments: KVec::with_capacity(b.max_discard_seg.max(b.max_write_zeroes_seg) as usize, GFP_KERNEL)?,
                punch_hole: true,
                zero_range: true,
                errors: 0,
            },
        });
        drop(guard);
        // Requests may be waiting already.
        vhost.worker().queue(REQUESTQ);
        Ok(())
    }
}
