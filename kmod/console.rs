// SPDX-License-Identifier: GPL-2.0
//! The console device on the vhost core (as vsock.c is vsock's): its one
//! ioctl, which attaches the file transmitq's bytes go to or the file
//! receiveq's bytes come from, and the two queues' processing: each chain
//! validated whole, then its buffers written to the file, or read into,
//! straight from the owner's memory, never waiting on the file, within a
//! budget of chains and bytes per run.

use kernel::bindings;
use kernel::error::{code::*, to_result};
use kernel::prelude::*;

use crate::poll::Poll;
use crate::refs::FileRef;
use crate::sys::{self, EPOLLHUP, EPOLLIN, EPOLLOUT};
use crate::uapi::*;
use crate::vhost::{errno, read, Device, VhostDev, Vq, Worker, NUM_QUEUES};
use crate::vring::{Direction, QueueError, Region, Vring};

pub(crate) const RECEIVEQ: usize = 0;
pub(crate) const TRANSMITQ: usize = 1;
/// Chains per worker run before others get the CPU (vhost-net's VHOST_NET_PKT_WEIGHT).
const WEIGHT: usize = 256;
/// Bytes per worker run (vhost-net's and vsock's VHOST_*_WEIGHT, 0x80000).
const BYTE_WEIGHT: usize = 0x80000;
/// Chains gathered into one write to the file.
const BATCH: usize = 16;

pub(crate) struct Console {
    /// Per queue, the backend file while the worker waits for it to become
    /// ready (EPOLLOUT for transmitq; EPOLLIN, or EPOLLHUP for the end of a
    /// pipe, for receiveq). Under that queue's mutex.
    polls: [Poll; NUM_QUEUES],
}

#[derive(Default)]
pub(crate) struct ConsoleQueue {
    output: Option<Output>,
    input: Option<Input>,
}

/// receiveq's file: what it has to read goes into the driver's buffers, a
/// chain per read, each used with the byte count.
struct Input {
    file: FileRef,
    /// The chain being filled, as owner addresses; room for a chain as long
    /// as the queue.
    iov: KVVec<bindings::iovec>,
    /// The file reached its end (EOF is not an error: nothing more to read),
    /// or failed (reported once).
    done: bool,
}

// SAFETY: as for Output: addresses into the owner's memory, used only by the
// worker in that memory's context.
unsafe impl Send for Input {}

/// transmitq's file and the chains gathered for it.
struct Output {
    file: FileRef,
    batch: Batch,
    failed: bool,
}

/// Chains taken from the ring, to be written and then used, in order. A batch
/// may outlive a run: when the file is full, or the run is over budget.
struct Batch {
    /// The chains' buffers as owner addresses: the file copies straight from
    /// the owner's memory, as vhost-net hands its socket user iovecs. Up to
    /// twice the queue size (32768): a KVVec, as vhost's iov arrays.
    iov: KVVec<bindings::iovec>,
    heads: KVec<u16>,
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
}

// SAFETY: the iovecs are plain addresses into the owner's memory, used only
// by the worker, in that memory's context.
unsafe impl Send for Output {}

impl Batch {
    fn clear(&mut self) {
        // SAFETY: shrinking; both hold Copy values.
        unsafe {
            self.iov.set_len(0);
            self.heads.set_len(0);
        }
        self.total = 0;
        self.written = 0;
    }
}

impl Output {
    fn new(file: FileRef, num: u16) -> Result<Self> {
        Ok(Output {
            file,
            batch: Batch {
                // Room for a batch of short chains, or one chain as long as the queue.
                iov: KVVec::with_capacity(usize::from(num).max(BATCH) * 2, GFP_KERNEL)?,
                heads: KVec::with_capacity(BATCH, GFP_KERNEL)?,
                total: 0,
                written: 0,
            },
            failed: false,
        })
    }

    /// Gives the chains of an unfinished batch back to the ring.
    fn abandon(&mut self, ring: &mut Vring) {
        ring.discard(self.batch.heads.len() as u16);
        self.batch.clear();
    }

    /// Drains transmitq with notifications off (§2.7.10), within the budget.
    fn transmit(&mut self, ring: &mut Vring, mem: &[Region], poll: &Poll, worker: &Worker) -> Result<Run, QueueError> {
        let mut run = Run::default();
        // Waiting for the file is over: this run looks for itself (vhost-net
        // stops its socket poll while it runs, and restarts it on EAGAIN).
        poll.stop();
        if !self.flush(ring, &mut run, poll, worker)? {
            return Ok(run);
        }
        ring.set_notify(false)?;
        loop {
            if run.chains >= WEIGHT || run.bytes >= BYTE_WEIGHT {
                run.more = true;
                return Ok(run);
            }
            if ring.pending()? == 0 {
                if !self.flush(ring, &mut run, poll, worker)? {
                    return Ok(run);
                }
                if ring.busy_poll()? {
                    continue;
                }
                if !ring.set_notify(true)? {
                    return Ok(run);
                }
                ring.set_notify(false)?;
                continue;
            }
            let b = &self.batch;
            if b.heads.len() == BATCH || b.iov.capacity() - b.iov.len() < usize::from(ring.num) || b.total >= BYTE_WEIGHT {
                if !self.flush(ring, &mut run, poll, worker)? {
                    return Ok(run);
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
        let bytes = ring.gather(mem, head, Direction::DeviceReads, &mut b.iov)?;
        // Capacity was checked before the chain started: no allocation.
        if b.heads.push(head, GFP_KERNEL).is_err() {
            // SAFETY: shrinking back to before the chain; iovec is Copy.
            unsafe { b.iov.set_len(start) };
            return Err(QueueError::Fault("batch"));
        }
        b.total += bytes as usize;
        Ok(())
    }

    /// Writes what is left of the batch, then marks its chains used. Returns
    /// false if it stopped first: the file is full (the poll will queue the
    /// work when it has room) or the run is over budget (`run.more`). A failed
    /// file is reported once and then skipped, as a line nobody listens to.
    fn flush(&mut self, ring: &mut Vring, run: &mut Run, poll: &Poll, worker: &Worker) -> Result<bool, QueueError> {
        let b = &mut self.batch;
        while b.written < b.total && !self.failed {
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
                sys::vhost_console_write(self.file.as_ptr(), b.iov.as_ptr(), b.iov.len(), b.total, b.written, count)
            };
            if n > 0 {
                b.written += n as usize;
                run.bytes += n as usize;
            } else if n == -(bindings::EAGAIN as isize) {
                // Full: wait for room, as vhost-net does for its socket.
                match poll.start(self.file.clone(), worker) {
                    Ok(()) => return Ok(false),
                    Err(e) => output_failed(&mut self.failed, e.to_errno() as isize),
                }
            } else {
                output_failed(&mut self.failed, n);
            }
        }
        for (k, &head) in b.heads.iter().enumerate() {
            // The device wrote nothing into these device-readable buffers.
            if let Err(e) = ring.add_used(head, 0) {
                ring.discard((b.heads.len() - k) as u16);
                b.clear();
                return Err(e);
            }
            run.used = true;
        }
        b.clear();
        Ok(true)
    }

}

fn output_failed(failed: &mut bool, error: isize) {
    pr_warn!("vhost-console: output failed (error {}); dropping further output\n", error);
    *failed = true;
}

impl Input {
    fn new(file: FileRef, num: u16) -> Result<Self> {
        Ok(Input { file, iov: KVVec::with_capacity(usize::from(num), GFP_KERNEL)?, done: false })
    }

    /// Fills receiveq's buffers from the file while both have some, within
    /// the budget, with notifications off (§2.7.10). No buffers: the worker
    /// waits for the driver's kick and not for the file (vhost-net's
    /// handle_rx); nothing to read: it waits for the file.
    fn receive(&mut self, ring: &mut Vring, mem: &[Region], poll: &Poll, worker: &Worker) -> Result<Run, QueueError> {
        let mut run = Run::default();
        poll.stop();
        if self.done {
            return Ok(run);
        }
        ring.set_notify(false)?;
        loop {
            if run.chains >= WEIGHT || run.bytes >= BYTE_WEIGHT {
                run.more = true;
                return Ok(run);
            }
            if ring.pending()? == 0 {
                if !ring.set_notify(true)? {
                    return Ok(run);
                }
                ring.set_notify(false)?;
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
            // A chain with no room takes no byte, as the VMM's own device does.
            let n = match total {
                0 => 0,
                // SAFETY: `iov` holds the chain's iovecs, owner addresses
                // adding up to `total`; the worker runs in the owner's address
                // space, and a bad address fails the copy (EFAULT), nothing
                // else. The file is referenced and was checked in SET_BACKEND.
                _ => unsafe { sys::vhost_console_read(self.file.as_ptr(), self.iov.as_ptr(), self.iov.len(), total) },
            };
            if n < 0 || (n == 0 && total != 0) {
                ring.discard(1);
                if n == -(bindings::EAGAIN as isize) {
                    // Nothing to read: wait for the file, as vhost-net for its socket.
                    match poll.start(self.file.clone(), worker) {
                        Ok(()) => return Ok(run),
                        Err(e) => self.stop_reading(e.to_errno() as isize),
                    }
                } else {
                    self.stop_reading(n);
                }
                return Ok(run);
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
        let bytes = ring.gather(mem, head, Direction::DeviceWrites, &mut self.iov)?;
        // A read returns at most isize::MAX; a chain's 4 GiB fit a used
        // element's u32 only if one read fills less: cap it.
        Ok(bytes.min(u64::from(u32::MAX)) as usize)
    }

    /// The end of the input (0) or an error: read no more, the guest keeps
    /// its buffers. Only an error is logged.
    fn stop_reading(&mut self, error: isize) {
        if error != 0 {
            pr_warn!("vhost-console: input failed (error {}); reading no more\n", error);
        }
        self.done = true;
    }
}

impl Device for Console {
    type Queue = ConsoleQueue;
    const NAME: &'static CStr = kernel::c_str!("vhost-console");
    const QUEUE_NAMES: [&'static str; NUM_QUEUES] = ["receiveq", "transmitq"];
    const FEATURES: u64 = VIRTIO_F_VERSION_1 | VIRTIO_F_IN_ORDER | VIRTIO_RING_F_EVENT_IDX;

    fn new() -> impl PinInit<Self, Error> {
        Console { polls: [Poll::new(RECEIVEQ, EPOLLIN | EPOLLHUP), Poll::new(TRANSMITQ, EPOLLOUT)] }
    }

    fn handle_kick(&self, worker: &Worker, index: usize, vq: &mut Vq<ConsoleQueue>) -> bool {
        if vq.ring.broken {
            return false;
        }
        let result = match index {
            TRANSMITQ => {
                let Some(output) = vq.device.output.as_mut() else { return false };
                let result = output.transmit(&mut vq.ring, &vq.mem, &self.polls[TRANSMITQ], worker);
                if result.is_err() {
                    output.abandon(&mut vq.ring);
                }
                result
            }
            _ => {
                let Some(input) = vq.device.input.as_mut() else { return false };
                input.receive(&mut vq.ring, &vq.mem, &self.polls[RECEIVEQ], worker)
            }
        };
        match result {
            Ok(run) => {
                if run.used {
                    vq.signal_used();
                }
                run.more
            }
            Err(e) => {
                vq.fail(Self::NAME, Self::QUEUE_NAMES[index], e);
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

    /// VHOST_CONSOLE_SET_BACKEND: attach transmitq's file or receiveq's (fd
    /// -1 detaches).
    fn ioctl(vhost: &VhostDev<Self>, cmd: u32, arg: usize) -> Result {
        if cmd != VHOST_CONSOLE_SET_BACKEND {
            return Err(ENOTTY);
        }
        let f: VringFile = read(arg)?;
        let index = f.index as usize;
        if index != TRANSMITQ && index != RECEIVEQ {
            return Err(errno(bindings::ENOBUFS));
        }
        let file = match f.fd {
            -1 => None,
            fd => {
                let file = FileRef::get(fd)?;
                // SAFETY: the file is referenced.
                let checked = unsafe {
                    match index {
                        TRANSMITQ => sys::vhost_console_check_output(file.as_ptr()),
                        _ => sys::vhost_console_check_input(file.as_ptr()),
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
        if index == TRANSMITQ {
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
        match index {
            TRANSMITQ => vq.device.output = Some(Output::new(file, vq.ring.num)?),
            _ => vq.device.input = Some(Input::new(file, vq.ring.num)?),
        }
        drop(guard);
        // Buffers (or bytes) may be waiting already.
        vhost.worker().queue(index);
        Ok(())
    }
}
