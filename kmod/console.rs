// SPDX-License-Identifier: GPL-2.0
//! The console device on the vhost core (as vsock.c is vsock's): its one
//! ioctl, which attaches the file a transmitq's bytes go to or the file a
//! receiveq's bytes come from, and the queues' processing: each chain
//! validated whole, then its buffers written to the file, or read into,
//! straight from the owner's memory, within a budget of chains and bytes per
//! run. A file that can be polled is never waited on (the worker polls it
//! instead); storage is waited on only for its disk. A file that fails
//! stops the queue, as a driver error does: bytes that were not written are
//! never used as if they had been.
//!
//! Queues are numbered as the driver numbers them (VirtIO 1.2 §5.3.2): port
//! 0's receiveq and transmitq are 0 and 1, port p's 2p + 2 and 2p + 3, so a
//! receiveq is even and a transmitq odd. 2 and 3, the control queues
//! (MULTIPORT), stay with the owner, as vhost-net leaves its control queue
//! to QEMU: no file is attached to them.
use kernel::bindings;
use kernel::error::{code::*, to_result};
use kernel::init::init_array_from_fn;
use kernel::prelude::*;

use crate::poll::Poll;
use crate::refs::FileRef;
use crate::sys::{self, EPOLLHUP, EPOLLIN, EPOLLOUT};
use crate::uapi::*;
use crate::vhost::{errno, read, Device, VhostDev, Vq, NUM_QUEUES};
use crate::vring::{Direction, QueueError, Region, Vring};
use crate::worker::Worker;

/// The control queues, which have no file here.
const CONTROL_RECEIVEQ: usize = 2;
const CONTROL_TRANSMITQ: usize = 3;
/// Chains per worker run before others get the CPU (vhost-net's VHOST_NET_PKT_WEIGHT).
const WEIGHT: usize = 256;
/// Bytes per worker run (vhost-net's and vsock's VHOST_*_WEIGHT, 0x80000).
const BYTE_WEIGHT: usize = 0x80000;
/// Chains gathered into one write to the file.
const BATCH: usize = 16;

fn is_transmitq(index: usize) -> bool {
    index % 2 == 1
}

/// A queue in log lines: port 0's as before ports existed ("transmitq"),
/// the others with their port ("port 3 receiveq").
struct QueueName(usize);

impl core::fmt::Display for QueueName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let queue = if is_transmitq(self.0) { "transmitq" } else { "receiveq" };
        match self.0 {
            0 | 1 => f.write_str(queue),
            CONTROL_RECEIVEQ | CONTROL_TRANSMITQ => write!(f, "control {queue}"),
            i => write!(f, "port {} {queue}", i / 2 - 1),
        }
    }
}

pub(crate) struct Console {
    /// Per queue, the backend file while the worker waits for it to become
    /// ready (EPOLLOUT for a transmitq; EPOLLIN, or EPOLLHUP for the end of
    /// a pipe, for a receiveq). Under that queue's mutex. Never storage.
    polls: [Poll; NUM_QUEUES],
}

#[derive(Default)]
pub(crate) struct ConsoleQueue {
    output: Option<Output>,
    input: Option<Input>,
}

/// A backend file, and how the worker waits for it.
struct Backend {
    file: FileRef,
    /// A regular file or a block device: read and written without
    /// RWF_NOWAIT, waiting for the disk as a loop worker does, and never
    /// polled (a regular file always polls ready: the worker would spin).
    /// Anything else refuses to wait (FMODE_NOWAIT, checked on attach), and
    /// the worker polls it when it would have to.
    storage: bool,
    /// A socket (a port's host side): its peer leaving is no failure of
    /// the queue (see `Output::parked`, `Input::done`).
    socket: bool,
}

impl Backend {
    fn new(file: FileRef) -> Self {
        // SAFETY: the file is referenced.
        let (storage, socket) =
            unsafe { (sys::vhost_console_is_storage(file.as_ptr()), sys::vhost_console_is_socket(file.as_ptr())) };
        Backend { file, storage, socket }
    }

    /// Whether a read or write that returned `n` says the socket's peer is
    /// gone (EPIPE, ECONNRESET): the owner sees the hang-up too, and
    /// attaches the next peer's socket.
    fn peer_gone(&self, n: isize) -> bool {
        self.socket && (n == -(bindings::EPIPE as isize) || n == -(bindings::ECONNRESET as isize))
    }
}

/// receiveq's file: what it has to read goes into the driver's buffers, a
/// chain per read, each used with the byte count.
struct Input {
    backend: Backend,
    /// The chain being filled, as owner addresses; room for a chain as long
    /// as the queue.
    iov: KVVec<bindings::iovec>,
    /// The file reached its end: nothing more to read (EOF is not an error).
    done: bool,
}

// SAFETY: as for Output: addresses into the owner's memory, used only by the
// worker in that memory's context.
unsafe impl Send for Input {}

/// transmitq's file and the chains gathered for it.
struct Output {
    backend: Backend,
    batch: Batch,
    /// The socket's peer left: the batch waits, unwritten and unused, for
    /// the owner to attach another file (which writes it whole) or none
    /// (which gives it back to the ring). The driver's bytes are neither
    /// lost nor used as if they had been sent.
    parked: bool,
}

/// Chains taken from the ring, to be written and then used, in order. A batch
/// may outlive a run: when the file is full, or the run is over budget.
struct Batch {
    /// The chains' buffers as owner addresses: the file copies straight from
    /// the owner's memory, as vhost-net hands its socket user iovecs. Up to
    /// twice the queue size (32768): a KVVec, as vhost's iov arrays.
    iov: KVVec<bindings::iovec>,
    heads: KVec<u16>,
    /// Where each chain ends in the batch's bytes: after a failed write, the
    /// chains written whole are used, the others not.
    ends: KVec<usize>,
    total: usize,
    written: usize,
}

/// What one run did.
#[derive(Default)]
struct Run {
    chains: usize,
    bytes: usize,
    used: bool,
    /// Stopped over budget with work left.
    more: bool,
    /// A socket's input ended: its peer left and everything it sent was
    /// read.
    ended: bool,
}

// SAFETY: the iovecs are plain addresses into the owner's memory, used only
// by the worker, in that memory's context.
unsafe impl Send for Output {}

impl Batch {
    fn clear(&mut self) {
        // SAFETY: shrinking; all three hold Copy values.
        unsafe {
            self.iov.set_len(0);
            self.heads.set_len(0);
            self.ends.set_len(0);
        }
        self.total = 0;
        self.written = 0;
    }
}

/// Whether a read or write that returned `n` asks to be retried when the
/// file is ready: -EAGAIN from a file that can be polled. From storage it is
/// a failure like any other.
fn waits(n: isize, backend: &Backend) -> bool {
    n == -(bindings::EAGAIN as isize) && !backend.storage
}

impl Output {
    fn new(file: FileRef, num: u16) -> Result<Self> {
        Ok(Output {
            backend: Backend::new(file),
            batch: Batch {
                // Room for a batch of short chains, or one chain as long as the queue.
                iov: KVVec::with_capacity(usize::from(num).max(BATCH) * 2, GFP_KERNEL)?,
                heads: KVec::with_capacity(BATCH, GFP_KERNEL)?,
                ends: KVec::with_capacity(BATCH, GFP_KERNEL)?,
                total: 0,
                written: 0,
            },
            parked: false,
        })
    }

    /// Gives the chains of an unfinished batch back to the ring.
    fn abandon(&mut self, ring: &mut Vring) {
        ring.discard(self.batch.heads.len() as u16);
        self.batch.clear();
    }

    /// Drains transmitq with notifications off (§2.7.10), within the budget.
    fn transmit(
        &mut self,
        ring: &mut Vring,
        mem: &[Region],
        poll: &Poll,
        worker: &Worker,
        run: &mut Run,
    ) -> Result<(), QueueError> {
        // Waiting for the file is over: this run looks for itself (vhost-net
        // stops its socket poll while it runs, and restarts it on EAGAIN).
        poll.stop();
        if !self.flush(ring, run, poll, worker)? {
            return Ok(());
        }
        ring.set_notify(false)?;
        loop {
            if run.chains >= WEIGHT || run.bytes >= BYTE_WEIGHT {
                run.more = true;
                return Ok(());
            }
            if ring.pending()? == 0 {
                if !self.flush(ring, run, poll, worker)? || !ring.refill(true)? {
                    return Ok(());
                }
                continue;
            }
            let b = &self.batch;
            if b.heads.len() == BATCH || b.iov.capacity() - b.iov.len() < usize::from(ring.num) || b.total >= BYTE_WEIGHT {
                if !self.flush(ring, run, poll, worker)? {
                    return Ok(());
                }
            }
            let head = ring.next_head()?;
            if let Err(e) = self.gather(ring, mem, head) {
                ring.discard(1);
                return Err(e);
            }
            run.chains += 1;
        }
    }

    /// Checks the whole chain before any byte moves and adds it to the batch.
    fn gather(&mut self, ring: &Vring, mem: &[Region], head: u16) -> Result<(), QueueError> {
        let b = &mut self.batch;
        let start = b.iov.len();
        let bytes = ring.gather(mem, head, Direction::DeviceReads, &mut b.iov)?.bytes();
        let end = b.total + bytes as usize;
        // Capacity was checked before the chain started: no allocation.
        if b.heads.push(head, GFP_KERNEL).is_err() || b.ends.push(end, GFP_KERNEL).is_err() {
            // SAFETY: shrinking back to before the chain (`heads` may hold
            // one more than `ends`); both hold Copy values.
            unsafe {
                b.iov.set_len(start);
                b.heads.set_len(b.ends.len());
            }
            return Err(QueueError::Fault("batch"));
        }
        b.total = end;
        Ok(())
    }

    /// Writes what is left of the batch, then marks its chains used. Returns
    /// false if it stopped first: the file is full (the poll will queue the
    /// work when it has room) or the run is over budget (`run.more`). A write
    /// that fails stops the queue: the chains written whole are used, the
    /// rest go back to the ring unused.
    fn flush(&mut self, ring: &mut Vring, run: &mut Run, poll: &Poll, worker: &Worker) -> Result<bool, QueueError> {
        if self.parked {
            return Ok(false);
        }
        let b = &mut self.batch;
        while b.written < b.total {
            if run.bytes >= BYTE_WEIGHT {
                run.more = true;
                return Ok(false);
            }
            let count = (b.total - b.written).min(BYTE_WEIGHT - run.bytes);
            // SAFETY: `iov` holds `len` initialized iovecs of owner addresses
            // adding up to `total`; the worker runs in the owner's address
            // space, and a bad address fails the copy (EFAULT), nothing else.
            // The file is referenced and was checked in SET_BACKEND.
            let n = unsafe {
                sys::vhost_console_write(
                    self.backend.file.as_ptr(),
                    b.iov.as_ptr(),
                    b.iov.len(),
                    b.total,
                    b.written,
                    count,
                    !self.backend.storage,
                )
            };
            if n > 0 {
                b.written += n as usize;
                run.bytes += n as usize;
                continue;
            }
            // The owner is being killed, which ends a storage write early:
            // the queue goes with it, without a word.
            if sys::fatal_signal_pending() {
                return Ok(false);
            }
            if self.backend.peer_gone(n) {
                self.parked = true;
                return Ok(false);
            }
            let error = if waits(n, &self.backend) {
                // Full: wait for room, as vhost-net does for its socket.
                match poll.start(self.backend.file.clone(), worker) {
                    Ok(()) => return Ok(false),
                    Err(e) => QueueError::Poll(e.to_errno() as isize),
                }
            } else {
                QueueError::Write(n)
            };
            let whole = b.ends.iter().take_while(|&&end| end <= b.written).count();
            let used = Self::use_chains(ring, &b.heads[..whole], run);
            ring.discard((b.heads.len() - whole) as u16);
            b.clear();
            used?;
            return Err(error);
        }
        let used = Self::use_chains(ring, &b.heads, run);
        b.clear();
        used.map(|()| true)
    }

    /// Marks `heads`, written, used; on an error gives back the ones not used.
    fn use_chains(ring: &mut Vring, heads: &[u16], run: &mut Run) -> Result<(), QueueError> {
        for (k, &head) in heads.iter().enumerate() {
            // The device wrote nothing into these device-readable buffers.
            if let Err(e) = ring.add_used(head, 0) {
                ring.discard((heads.len() - k) as u16);
                return Err(e);
            }
            run.used = true;
        }
        Ok(())
    }
}

impl Input {
    fn new(file: FileRef, num: u16) -> Result<Self> {
        Ok(Input { backend: Backend::new(file), iov: KVVec::with_capacity(usize::from(num), GFP_KERNEL)?, done: false })
    }

    /// Fills receiveq's buffers from the file while both have some, within
    /// the budget, with notifications off (§2.7.10). No buffers: the worker
    /// waits for the driver's kick and not for the file (vhost-net's
    /// handle_rx); nothing to read: it waits for the file.
    fn receive(
        &mut self,
        ring: &mut Vring,
        mem: &[Region],
        poll: &Poll,
        worker: &Worker,
        run: &mut Run,
    ) -> Result<(), QueueError> {
        poll.stop();
        if self.done {
            return Ok(());
        }
        ring.set_notify(false)?;
        loop {
            if run.chains >= WEIGHT || run.bytes >= BYTE_WEIGHT {
                run.more = true;
                return Ok(());
            }
            if ring.pending()? == 0 {
                if !ring.refill(false)? {
                    return Ok(());
                }
                continue;
            }
            let head = ring.next_head()?;
            let total = match self.gather(ring, mem, head) {
                Ok(total) => total,
                Err(e) => {
                    ring.discard(1);
                    return Err(e);
                }
            };
            // A chain with no room takes no byte, as the VMM's own device
            // does. A read stays within the run's byte budget: storage reads
            // all it is asked for, and the chain may be gigabytes.
            let n = match total {
                0 => 0,
                // SAFETY: `iov` holds the chain's iovecs, owner addresses
                // adding up to `total`; the worker runs in the owner's address
                // space, and a bad address fails the copy (EFAULT), nothing
                // else. The file is referenced and was checked in SET_BACKEND.
                _ => unsafe {
                    sys::vhost_console_read(
                        self.backend.file.as_ptr(),
                        self.iov.as_ptr(),
                        self.iov.len(),
                        total,
                        total.min(BYTE_WEIGHT - run.bytes),
                        !self.backend.storage,
                    )
                },
            };
            if n < 0 || (n == 0 && total != 0) {
                ring.discard(1);
                // A socket's peer that leaves with bytes unread may reset
                // the connection: the end of its input, as a close is.
                if n == 0 || self.backend.peer_gone(n) {
                    // The end of the input: read no more (a regular file
                    // included: it is never polled), the guest keeps its
                    // buffers.
                    self.done = true;
                    run.ended = self.backend.socket;
                    return Ok(());
                }
                // As for output: a dying owner's queue goes with it.
                if sys::fatal_signal_pending() {
                    return Ok(());
                }
                if !waits(n, &self.backend) {
                    return Err(QueueError::Read(n));
                }
                // Nothing to read: wait for the file, as vhost-net for its socket.
                return poll
                    .start(self.backend.file.clone(), worker)
                    .map_err(|e| QueueError::Poll(e.to_errno() as isize));
            }
            if let Err(e) = ring.add_used(head, n as u32) {
                ring.discard(1);
                return Err(e);
            }
            run.used = true;
            run.chains += 1;
            run.bytes += n as usize;
        }
    }

    /// Checks the whole chain before any byte moves; returns its size.
    fn gather(&mut self, ring: &Vring, mem: &[Region], head: u16) -> Result<usize, QueueError> {
        // SAFETY: emptying; iovec is Copy.
        unsafe { self.iov.set_len(0) };
        let bytes = ring.gather(mem, head, Direction::DeviceWrites, &mut self.iov)?.bytes();
        // A read returns at most isize::MAX; a chain's 4 GiB fit a used
        // element's u32 only if one read fills less: cap it.
        Ok(bytes.min(u64::from(u32::MAX)) as usize)
    }
}

impl Device for Console {
    type Queue = ConsoleQueue;
    const NAME: &'static CStr = kernel::c_str!("vhost-console");
    const FEATURES: u64 = VIRTIO_F_VERSION_1 | VIRTIO_F_IN_ORDER | VIRTIO_RING_F_EVENT_IDX;

    fn new() -> impl PinInit<Self, Error> {
        // In place (the array is some 10 KiB: not on the kernel stack).
        try_init!(Console {
            polls <- init_array_from_fn::<_, NUM_QUEUES, _, Error>(|i| match is_transmitq(i) {
                true => Poll::new(i, EPOLLOUT),
                false => Poll::new(i, EPOLLIN | EPOLLHUP),
            }),
        }? Error)
    }

    fn handle_kick(&self, worker: &Worker, index: usize, vq: &mut Vq<ConsoleQueue>) -> bool {
        if vq.ring.broken {
            return false;
        }
        let mut run = Run::default();
        let result = match is_transmitq(index) {
            true => {
                let Some(output) = vq.device.output.as_mut() else { return false };
                let result = output.transmit(&mut vq.ring, &vq.mem, &self.polls[index], worker, &mut run);
                if result.is_err() {
                    output.abandon(&mut vq.ring);
                }
                result
            }
            false => {
                let Some(input) = vq.device.input.as_mut() else { return false };
                input.receive(&mut vq.ring, &vq.mem, &self.polls[index], worker, &mut run)
            }
        };
        // What was used before an error is the driver's, and so is its call.
        if run.used {
            vq.signal_used();
        }
        // The owner learns that a socket's peer is done with when the
        // kernel has read all it sent, and only the worker knows when that
        // is: the call eventfd says so, whatever the driver asked for (at
        // worst a used-buffer notification with nothing new, which §2.7.10
        // allows the device).
        if run.ended {
            vq.signal_call();
        }
        match result {
            Ok(()) => run.more,
            Err(e) => {
                vq.fail(Self::NAME, QueueName(index), e);
                false
            }
        }
    }

    fn busy(queue: &ConsoleQueue) -> bool {
        queue.output.is_some() || queue.input.is_some()
    }

    fn stop_queue(&self, index: usize, _queue: &mut ConsoleQueue) {
        self.polls[index].stop();
    }

    /// VHOST_CONSOLE_SET_BACKEND: attach a transmitq's file or a receiveq's
    /// (fd -1 detaches).
    fn ioctl(vhost: &VhostDev<Self>, cmd: u32, arg: usize) -> Result {
        if cmd != VHOST_CONSOLE_SET_BACKEND {
            return Err(ENOTTY);
        }
        let f: VringFile = read(arg)?;
        let index = f.index as usize;
        if index >= NUM_QUEUES || index == CONTROL_RECEIVEQ || index == CONTROL_TRANSMITQ {
            return Err(errno(bindings::ENOBUFS));
        }
        let file = match f.fd {
            -1 => None,
            fd => {
                let file = FileRef::get(fd)?;
                // SAFETY: the file is referenced.
                let checked = unsafe {
                    match is_transmitq(index) {
                        true => sys::vhost_console_check_output(file.as_ptr()),
                        false => sys::vhost_console_check_input(file.as_ptr()),
                    }
                };
                to_result(checked)?;
                Some(file)
            }
        };
        let mut guard = vhost.vq(index).lock();
        let vq = &mut *guard;
        // The old file first: stop waiting on it; the chains output did not
        // finish go back to the ring (a new file writes them again, whole).
        vhost.device.polls[index].stop();
        if is_transmitq(index) {
            if let Some(mut old) = vq.device.output.take() {
                old.abandon(&mut vq.ring);
            }
        } else {
            vq.device.input = None;
        }
        let Some(file) = file else { return Ok(()) };
        if !vq.ring.configured() || !vq.ring.access_ok() {
            return Err(EFAULT);
        }
        // The ring may have been set up anew: the first used buffer signals
        // call whatever used_event says (vhost_vq_init_access).
        vq.ring.signalled_used = None;
        match is_transmitq(index) {
            true => vq.device.output = Some(Output::new(file, vq.ring.num)?),
            false => vq.device.input = Some(Input::new(file, vq.ring.num)?),
        }
        drop(guard);
        // Buffers (or bytes) may be waiting already.
        vhost.worker().queue(index);
        Ok(())
    }
}
