//! The virtio block device (VirtIO 1.2 §5.2): one request queue, a raw
//! image behind it. A QueueNotify only parses and submits: the I/O runs in
//! an engine (io_uring, or a worker thread), and its completions come back
//! through the VMM's event loop, which runs the queue again to use them (the
//! transport's "blocked on its backend" path). Requests complete in any
//! order, so IN_ORDER is not offered.
//!
//! Multiqueue (VIRTIO_BLK_F_MQ) is not offered: one io_uring already keeps
//! many requests in flight, and more queues would need more vCPU-to-queue
//! affinity than a virtio-mmio device's one interrupt line can express.

pub mod disk;
pub mod engine;
pub mod request;
pub mod uring;
pub mod vhost;
pub mod worker;

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestMemoryBackend, GuestMemoryMmap};

use self::disk::{DiskConfig, Image};
use self::engine::{Completion, Engine, EngineKind, Op};
use self::request::{Kind, Limits, ParseError, Request, Segment, ID_BYTES, SECTOR_SHIFT, S_IOERR, S_OK};
use super::chain::{pop_head, read_chain, wants_interrupt, Buffer, Direction};
use super::{DeviceEvent, News, QueueError, QueueRun, VirtioDevice, VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX};
use crate::stats::Stats;
use crate::warn;

pub const DEVICE_ID_BLOCK: u32 = 2;
pub const QUEUE_MAX_SIZE: u16 = 256;

// Feature bits (§5.2.3).
const F_SIZE_MAX: u64 = 1 << 1;
const F_SEG_MAX: u64 = 1 << 2;
const F_RO: u64 = 1 << 5;
const F_BLK_SIZE: u64 = 1 << 6;
const F_FLUSH: u64 = 1 << 9;
const F_DISCARD: u64 = 1 << 13;
const F_WRITE_ZEROES: u64 = 1 << 14;

/// The largest segment the driver may hand in one descriptor.
const SIZE_MAX: u32 = 1 << 20;
/// Descriptors for data in one request: the queue less header and status
/// (no indirect descriptors).
const SEG_MAX: u32 = QUEUE_MAX_SIZE as u32 - 2;
/// DISCARD and WRITE_ZEROES: sectors per segment, segments per request,
/// and the granularity (in sectors) the driver should align discards to.
/// One segment: every request is at most one operation, so the queue size
/// bounds the operations in flight and an engine sized for it never fills.
const MAX_DISCARD_SECTORS: u32 = (1 << 22) - 1;
const MAX_DISCARD_SEG: u32 = 1;
/// WRITE_ZEROES without unmap may have to be written (see `zeroes`): 256
/// MiB, 256 iovecs of the zero buffer.
const MAX_WRITE_ZEROES_SECTORS: u32 = 1 << 19;
const DISCARD_ALIGNMENT: u32 = 8;
const MAX_WRITE_ZEROES_SEG: u32 = 1;
/// `struct virtio_blk_config` up to write_zeroes_may_unmap and its padding.
const CONFIG_SIZE: usize = 60;

/// Chains a run takes before the guest gets its vCPU back (each is at most
/// one request in flight: the queue size bounds the work outstanding).
const WEIGHT: usize = QUEUE_MAX_SIZE as usize;

/// A request whose operations are in the engine.
struct InFlight {
    status: vm_memory::GuestAddress,
    /// What the operation returns on success.
    expect: i64,
    result: u8,
    /// The used length on success: bytes written to the driver + status.
    used_len: u32,
    what: &'static str,
    /// A WRITE_ZEROES sent as fallocate (PUNCH_HOLE if it may unmap, else
    /// ZERO_RANGE): its range, to write zeroes instead where the file system
    /// has no such fallocate, and whether it was a punch.
    fallback: Option<(u64, u64, bool)>,
}

/// Zeroes to write from, for file systems without FALLOC_FL_ZERO_RANGE
/// (tmpfs): never written, so its pages are the kernel's zero page. It lives
/// as long as the process, as operations in flight may (see `Drop`).
fn zeroes() -> &'static [u8] {
    static ZEROES: std::sync::OnceLock<Box<[u8]>> = std::sync::OnceLock::new();
    ZEROES.get_or_init(|| vec![0u8; ZEROES_SIZE].into_boxed_slice())
}
const ZEROES_SIZE: usize = 1 << 20;

/// `len` bytes of zeroes, as iovecs (`len` is at most MAX_WRITE_ZEROES_SECTORS).
fn zero_iovecs(len: u64) -> Vec<libc::iovec> {
    let z = zeroes();
    let mut left = len as usize;
    let mut out = Vec::with_capacity(left.div_ceil(ZEROES_SIZE));
    while left > 0 {
        let n = left.min(ZEROES_SIZE);
        out.push(libc::iovec { iov_base: z.as_ptr() as *mut libc::c_void, iov_len: n });
        left -= n;
    }
    out
}

/// What the device promises the driver for a disk: its size, whether it is
/// read-only, and the discard and write-zeroes limits.
fn limits(config: &DiskConfig, image: &Image) -> Limits {
    Limits {
        capacity: image.size >> SECTOR_SHIFT,
        read_only: config.read_only,
        max_discard_sectors: MAX_DISCARD_SECTORS,
        max_discard_seg: MAX_DISCARD_SEG,
        max_write_zeroes_sectors: MAX_WRITE_ZEROES_SECTORS,
        max_write_zeroes_seg: MAX_WRITE_ZEROES_SEG,
    }
}

/// The features a block device offers, in userspace or in the kernel.
fn features(limits: &Limits) -> u64 {
    let ro = if limits.read_only { F_RO } else { 0 };
    VIRTIO_F_VERSION_1
        | VIRTIO_RING_F_EVENT_IDX
        | F_SIZE_MAX
        | F_SEG_MAX
        | F_BLK_SIZE
        | F_FLUSH
        | F_DISCARD
        | F_WRITE_ZEROES
        | ro
}

/// `struct virtio_blk_config` (§5.2.4) up to write_zeroes_may_unmap.
fn config_space(limits: &Limits) -> [u8; CONFIG_SIZE] {
    let mut c = [0u8; CONFIG_SIZE];
    let mut put = |at: usize, bytes: &[u8]| c[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &limits.capacity.to_le_bytes());
    put(8, &SIZE_MAX.to_le_bytes());
    put(12, &SEG_MAX.to_le_bytes());
    put(20, &512u32.to_le_bytes());
    put(36, &limits.max_discard_sectors.to_le_bytes());
    put(40, &limits.max_discard_seg.to_le_bytes());
    put(44, &DISCARD_ALIGNMENT.to_le_bytes());
    put(48, &limits.max_write_zeroes_sectors.to_le_bytes());
    put(52, &limits.max_write_zeroes_seg.to_le_bytes());
    put(56, &[1]); // write_zeroes_may_unmap
    c
}

/// A read of the configuration space at `offset`; false if out of it.
fn read_config(limits: &Limits, offset: u64, data: &mut [u8]) -> bool {
    let config = config_space(limits);
    match offset.checked_add(data.len() as u64) {
        Some(end) if end <= CONFIG_SIZE as u64 => {
            data.copy_from_slice(&config[offset as usize..end as usize]);
            true
        }
        _ => false,
    }
}

pub struct Block {
    config: DiskConfig,
    limits: Limits,
    engine: ManuallyDrop<Box<dyn Engine>>,
    /// The QueueNotify ioeventfd, once the VM registered one.
    kick: Option<vmm_sys_util::eventfd::EventFd>,
    /// Keeps the guest RAM that operations in flight point into mapped, for
    /// as long as the device lives (and longer: see `Drop`).
    mem: ManuallyDrop<GuestMemoryMmap>,
    in_flight: HashMap<u16, InFlight>,
    buffers: Vec<Buffer>,
    completions: Vec<Completion>,
    /// Requests taken, for statistics.
    pub requests: u64,
    /// I/O errors reported (a budget for the log).
    errors: u64,
    /// The file system has FALLOC_FL_ZERO_RANGE, as far as we know.
    zero_range: bool,
    /// The file system has FALLOC_FL_PUNCH_HOLE, as far as we know.
    punch_hole: bool,
}

impl Block {
    /// A device for `image`, its I/O in the engine the configuration asks
    /// for (io_uring by default, the worker thread if the host has none).
    pub fn new(config: DiskConfig, image: Image, mem: &GuestMemoryMmap, index: usize) -> Result<Self, String> {
        let limits = limits(&config, &image);
        let file = Arc::new(image.file);
        let name = config.path.display().to_string();
        let uring = || uring::Uring::new(file.clone(), QUEUE_MAX_SIZE.into());
        let worker = || worker::Worker::new(file.clone(), &format!("disk{index}-io"));
        let engine: Box<dyn Engine> = match config.engine {
            Some(EngineKind::IoUring) => Box::new(
                uring().map_err(|e| format!("--disk {name}: engine=io_uring: io_uring is not available: {e}"))?,
            ),
            Some(EngineKind::Sync) => Box::new(worker().map_err(|e| format!("--disk {name}: {e}"))?),
            None => match uring() {
                Ok(u) => Box::new(u),
                Err(_) => Box::new(worker().map_err(|e| format!("--disk {name}: {e}"))?),
            },
        };
        Ok(Block {
            config,
            limits,
            engine: ManuallyDrop::new(engine),
            kick: None,
            mem: ManuallyDrop::new(mem.clone()),
            in_flight: HashMap::new(),
            buffers: Vec::with_capacity(QUEUE_MAX_SIZE.into()),
            completions: Vec::new(),
            requests: 0,
            errors: 0,
            zero_range: true,
            punch_hole: true,
        })
    }

    /// The driver's notifications come through `kick` (a KVM ioeventfd on
    /// QueueNotify), as Firecracker's and Cloud Hypervisor's devices take
    /// them: the vCPU goes on in the kernel and the event loop runs the
    /// queue, so a request costs the guest no exit to the VMM.
    pub fn set_kick(&mut self, kick: vmm_sys_util::eventfd::EventFd) {
        self.kick = Some(kick);
    }

    /// Which engine runs the I/O ("io_uring" or "sync").
    pub fn engine(&self) -> &'static str {
        self.engine.name()
    }

    /// Host addresses of `buffers`, for the engine.
    fn iovecs(mem: &GuestMemoryMmap, buffers: &[Buffer]) -> Result<Vec<libc::iovec>, QueueError> {
        let mut out = Vec::with_capacity(buffers.len());
        for b in buffers {
            for slice in GuestMemoryBackend::get_slices(mem, b.addr, b.len as usize) {
                let slice = slice.map_err(|e| QueueError::Memory(e.to_string()))?;
                out.push(libc::iovec { iov_base: slice.ptr_guard_mut().as_ptr().cast(), iov_len: slice.len() });
            }
        }
        Ok(out)
    }

    /// Writes the status byte and returns the chain to the driver.
    fn finish(
        queue: &mut Queue,
        mem: &GuestMemoryMmap,
        head: u16,
        status: vm_memory::GuestAddress,
        result: u8,
        used_len: u32,
    ) -> Result<(), QueueError> {
        mem.write_obj(result, status).map_err(|e| QueueError::Memory(e.to_string()))?;
        let len = if result == S_OK { used_len } else { 1 };
        queue.add_used(mem, head, len)?;
        Ok(())
    }

    /// Uses the requests whose operations all completed; returns whether any was.
    fn complete(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<bool, QueueError> {
        self.engine.reap(&mut self.completions);
        let (mut used, mut retried) = (false, false);
        for c in std::mem::take(&mut self.completions) {
            let head = c.token as u16;
            let Some(req) = self.in_flight.get_mut(&head) else { continue };
            if c.result == -i64::from(libc::EOPNOTSUPP) && req.what == "discard" {
                // A discard is a hint (§5.2.6.2; QEMU answers OK too): a file
                // system that cannot punch holes (ramfs) ignores it, now and
                // for every later request.
                self.punch_hole = false;
                req.expect = c.result;
            }
            if c.result == -i64::from(libc::EOPNOTSUPP) {
                if let Some((offset, len, punched)) = req.fallback.take() {
                    // No ZERO_RANGE (tmpfs) or PUNCH_HOLE (ramfs, vfat) here:
                    // write the zeroes, now and for every later request.
                    match punched {
                        true => self.punch_hole = false,
                        false => self.zero_range = false,
                    }
                    req.expect = len as i64;
                    let op = Op::Write { offset, iovecs: zero_iovecs(len) };
                    if let Err(e) = self.engine.push(c.token, op) {
                        return Err(QueueError::Invalid(format!("the disk's I/O engine failed: {e}")));
                    }
                    retried = true;
                    continue;
                }
            }
            if c.result != req.expect {
                req.result = S_IOERR;
                self.errors += 1;
                if self.errors <= 10 {
                    let why = if c.result < 0 {
                        std::io::Error::from_raw_os_error(-c.result as i32).to_string()
                    } else {
                        format!("{} of {} bytes", c.result, req.expect)
                    };
                    warn!(
                        "block: {}: {} failed: {why}; the guest gets an I/O error",
                        self.config.path.display(),
                        req.what
                    );
                }
            }
            let req = self.in_flight.remove(&head).expect("looked up above");
            Self::finish(queue, mem, head, req.status, req.result, req.used_len)?;
            used = true;
        }
        if retried {
            if let Err(e) = self.engine.commit() {
                return Err(QueueError::Invalid(format!("the disk's I/O engine failed: {e}")));
            }
        }
        Ok(used)
    }

    /// Takes one chain: completes it at once if it needs no I/O or cannot be
    /// honoured, else hands its operations to the engine.
    fn start(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap, head: u16) -> Result<bool, QueueError> {
        if self.in_flight.contains_key(&head) {
            return Err(QueueError::Invalid(format!("request {head}: made available again while in flight")));
        }
        read_chain(queue, mem, head, Direction::ReadThenWrite, &mut self.buffers)?;
        let req = Request::parse(mem, head, &self.buffers).map_err(|e| match e {
            ParseError::Malformed(m) => QueueError::Invalid(m.to_string()),
            ParseError::Memory(m) => QueueError::Memory(m),
        })?;
        self.requests += 1;
        let segments = match req.check(mem, &self.limits) {
            Ok(segments) => segments,
            Err(status) => {
                Self::finish(queue, mem, head, req.status, status, 1)?;
                return Ok(true);
            }
        };
        let sector_offset = |sector: u64| sector << SECTOR_SHIFT;
        let mut fallback = None;
        let (op, used_len, what): (Option<Op>, u64, &'static str) = match req.kind {
            Kind::In { .. } | Kind::Out { .. } if req.data_len == 0 => (None, 1, "read"),
            Kind::In { sector } => {
                let iovecs = Self::iovecs(mem, &req.data)?;
                (Some(Op::Read { offset: sector_offset(sector), iovecs }), req.data_len + 1, "read")
            }
            Kind::Out { sector } => {
                let iovecs = Self::iovecs(mem, &req.data)?;
                (Some(Op::Write { offset: sector_offset(sector), iovecs }), 1, "write")
            }
            Kind::Flush => (Some(Op::Flush), 1, "flush"),
            Kind::GetId => {
                let mut id = [0u8; ID_BYTES];
                let serial = self.config.serial.as_deref().unwrap_or("").as_bytes();
                id[..serial.len()].copy_from_slice(serial);
                let mut written = 0u64;
                for b in &req.data {
                    let n = (b.len as usize).min(ID_BYTES - written as usize);
                    mem.write_slice(&id[written as usize..written as usize + n], b.addr)
                        .map_err(|e| QueueError::Memory(e.to_string()))?;
                    written += n as u64;
                    if written as usize == ID_BYTES {
                        break;
                    }
                }
                (None, written + 1, "get-id")
            }
            // One segment (MAX_DISCARD_SEG, MAX_WRITE_ZEROES_SEG): one operation.
            Kind::Discard | Kind::WriteZeroes => {
                let Segment { sector, sectors, unmap } = segments[0];
                let (offset, len) = (sector_offset(sector), u64::from(sectors) << SECTOR_SHIFT);
                let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
                let op = match req.kind {
                    Kind::Discard if !self.punch_hole => {
                        Self::finish(queue, mem, head, req.status, S_OK, 1)?;
                        return Ok(true);
                    }
                    Kind::Discard => Op::Fallocate { offset, len, mode: punch },
                    _ if unmap && self.punch_hole => {
                        fallback = Some((offset, len, true));
                        Op::Fallocate { offset, len, mode: punch }
                    }
                    _ if self.zero_range => {
                        fallback = Some((offset, len, false));
                        Op::Fallocate { offset, len, mode: libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE }
                    }
                    _ => Op::Write { offset, iovecs: zero_iovecs(len) },
                };
                (Some(op), 1, if req.kind == Kind::Discard { "discard" } else { "write-zeroes" })
            }
            Kind::Unknown(_) => unreachable!("check() refuses unknown types"),
        };
        let used_len = u32::try_from(used_len).map_err(|_| QueueError::ChainTooLarge { head })?;
        let Some(op) = op else {
            Self::finish(queue, mem, head, req.status, S_OK, used_len)?;
            return Ok(true);
        };
        let expect = op.bytes() as i64;
        let entry = InFlight { status: req.status, expect, result: S_OK, used_len, what, fallback };
        self.in_flight.insert(head, entry);
        if let Err(e) = self.engine.push(head.into(), op) {
            return Err(QueueError::Invalid(format!("the disk's I/O engine failed: {e}")));
        }
        Ok(false)
    }

    /// Waits for every operation in flight and forgets them: the driver
    /// reset the device or disabled the queue, and will not see them used.
    fn drain(&mut self) {
        let mut lost = Vec::new();
        self.engine.drain(&mut lost);
        self.in_flight.clear();
    }
}

impl VirtioDevice for Block {
    fn name(&self) -> &'static str {
        "block"
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID_BLOCK
    }

    fn features(&self) -> u64 {
        features(&self.limits)
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_MAX_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) -> bool {
        read_config(&self.limits, offset, data)
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) -> bool {
        // writeback (CONFIG_WCE) is not offered: nothing is writable.
        false
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut Queue,
        mem: &GuestMemoryMmap,
    ) -> Result<QueueRun, QueueError> {
        if index != 0 {
            return Ok(QueueRun::default());
        }
        let mut used = self.complete(queue, mem)?;
        let (mut chains, mut passes, mut run) = (0, 0, QueueRun::default());
        'drain: loop {
            queue.disable_notification(mem)?;
            loop {
                if chains == WEIGHT {
                    run.more = queue.avail_idx(mem, Ordering::Acquire)?.0 != queue.next_avail();
                    break 'drain;
                }
                let Some(head) = pop_head(queue, mem)? else { break };
                chains += 1;
                used |= self.start(queue, mem, head)?;
            }
            if !queue.enable_notification(mem)? {
                break;
            }
            // Passes count toward the budget, as the console's do: a used
            // ring laid over the avail index makes this re-check find a
            // chain on every pass and pop_head none (the test
            // `a_used_ring_over_the_avail_index_cannot_hold_a_run_for_ever`).
            passes += 1;
            if passes == WEIGHT {
                run.more = true;
                break;
            }
        }
        if let Err(e) = self.engine.commit() {
            return Err(QueueError::Invalid(format!("the disk's I/O engine failed: {e}")));
        }
        // What completed meanwhile is used now, not after the next wake-up.
        used |= self.complete(queue, mem)?;
        run.notify = used && wants_interrupt(queue, mem)?;
        run.blocked = !self.in_flight.is_empty();
        Ok(run)
    }

    fn queue_disabled(&mut self, _index: usize) {
        self.drain();
    }

    fn stopped(&mut self) {
        self.drain();
    }

    fn events(&self) -> Vec<DeviceEvent> {
        let mut events = vec![DeviceEvent::News(self.engine.fd())];
        if let Some(kick) = &self.kick {
            use std::os::fd::AsRawFd;
            events.push(DeviceEvent::Kick { fd: kick.as_raw_fd(), queue: 0 });
        }
        events
    }

    fn poll_news(&mut self) -> News {
        self.engine.clear();
        News { ready: true, ..News::default() }
    }

    /// Nothing in flight, no completion waiting to be used, and no kick the
    /// event loop has yet to take (the guest's notification went to the
    /// ioeventfd, not through this device: it may halt before the loop reads
    /// it). The loop reads a kick only under the transport's lock, which the
    /// caller holds.
    fn idle(&self, _mem: &GuestMemoryMmap, _queues: &[Queue]) -> bool {
        use std::os::fd::AsRawFd;
        let readable = |fd: std::os::fd::RawFd| {
            let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one live pollfd, no waiting.
            unsafe { libc::poll(&mut p, 1, 0) == 1 }
        };
        self.in_flight.is_empty()
            && !readable(self.engine.fd())
            && !self.kick.as_ref().is_some_and(|k| readable(k.as_raw_fd()))
    }

    fn dump(&mut self) -> Vec<String> {
        vec![format!(
            "block: {} ({} sectors{}), engine {}, requests {}, in flight {}, I/O errors {}",
            self.config.path.display(),
            self.limits.capacity,
            if self.limits.read_only { ", read-only" } else { "" },
            self.engine.name(),
            self.requests,
            self.in_flight.len(),
            self.errors
        )]
    }

    fn reset(&mut self) {
        self.drain();
    }

    fn add_stats(&mut self, stats: &mut Stats) {
        stats.disk_requests += self.requests;
    }
}

impl Drop for Block {
    /// The VM is gone: operations still in flight are not waited for (a
    /// guest's 256 reads of a whole disk would hold SIGTERM up for minutes).
    /// Their engine and the guest RAM they point into are left to the
    /// process's exit instead, so that nothing the kernel still writes can
    /// land in memory reused for something else.
    fn drop(&mut self) {
        self.engine.reap(&mut self.completions);
        let left = self.completions.len() as u64;
        if self.in_flight.len() as u64 > left {
            return;
        }
        // SAFETY: nothing is in flight; neither field is used again.
        unsafe {
            ManuallyDrop::drop(&mut self.engine);
            ManuallyDrop::drop(&mut self.mem);
        }
    }
}

#[cfg(test)]
mod tests;
