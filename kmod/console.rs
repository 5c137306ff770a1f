// SPDX-License-Identifier: GPL-2.0
//! The console device on the vhost core (as vsock.c is vsock's): its one
//! ioctl, which attaches the file transmitq's bytes go to, and transmitq
//! processing: each chain validated whole, then its buffers written to the
//! file straight from the owner's memory, never waiting on the file, within
//! a budget of chains and bytes per run.

use kernel::bindings;
use kernel::error::{code::*, to_result};
use kernel::prelude::*;

use crate::poll::Poll;
use crate::refs::FileRef;
use crate::sys::{self, EPOLLIN, EPOLLOUT};
use crate::uapi::*;
use crate::vhost::{errno, read, Device, VhostDev, Vq, Worker, NUM_QUEUES};
use crate::vring::{translate, QueueError, Region, Vring, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};

pub(crate) const RECEIVEQ: usize = 0;
pub(crate) const TRANSMITQ: usize = 1;
/// Chains per worker run before others get the CPU (vhost-net's VHOST_NET_PKT_WEIGHT).
const WEIGHT: usize = 256;
/// Bytes per worker run (vhost-net's and vsock's VHOST_*_WEIGHT, 0x80000).
const BYTE_WEIGHT: usize = 0x80000;
/// Chains gathered into one write to the file.
const BATCH: usize = 16;
/// §2.7.5: a chain holds at most 2^32 bytes.
const MAX_CHAIN_BYTES: u64 = 1 << 32;

pub(crate) struct Console {
    /// Per queue, the backend file while the worker waits for it to become
    /// ready (EPOLLOUT for transmitq). Under that queue's mutex.
    polls: [Poll; NUM_QUEUES],
}

#[derive(Default)]
pub(crate) struct ConsoleQueue {
    output: Option<Output>,
}

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
        let result = (|| {
            let mut index = head;
            let mut bytes = 0u64;
            loop {
                if b.iov.len() - start == usize::from(ring.num) {
                    return Err(QueueError::Loop { head, num: ring.num });
                }
                let d = ring.desc(index)?;
                if d.flags & VRING_DESC_F_INDIRECT != 0 {
                    return Err(QueueError::Indirect { index });
                }
                if d.flags & VRING_DESC_F_WRITE != 0 {
                    return Err(QueueError::WriteOnly { index });
                }
                let Some(user) = translate(mem, d.addr, d.len) else {
                    return Err(QueueError::OutsideMemory { index, addr: d.addr, len: d.len });
                };
                bytes += u64::from(d.len);
                if bytes > MAX_CHAIN_BYTES {
                    return Err(QueueError::ChainTooLarge { head });
                }
                let iov = bindings::iovec { iov_base: user as *mut core::ffi::c_void, iov_len: d.len as usize };
                // Capacity was checked before the chain started: no allocation.
                b.iov.push(iov, GFP_KERNEL).map_err(|_| QueueError::Fault("batch"))?;
                if d.flags & VRING_DESC_F_NEXT == 0 {
                    return Ok(bytes as usize);
                }
                if d.next >= ring.num {
                    return Err(QueueError::NextOutOfRange { index, next: d.next, num: ring.num });
                }
                index = d.next;
            }
        })();
        match result {
            Ok(bytes) => {
                b.heads.push(head, GFP_KERNEL).map_err(|_| QueueError::Fault("batch"))?;
                b.total += bytes;
                Ok(())
            }
            Err(e) => {
                // SAFETY: shrinking back to before the chain; iovec is Copy.
                unsafe { b.iov.set_len(start) };
                Err(e)
            }
        }
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

impl Device for Console {
    type Queue = ConsoleQueue;
    const NAME: &'static CStr = kernel::c_str!("vhost-console");
    const QUEUE_NAMES: [&'static str; NUM_QUEUES] = ["receiveq", "transmitq"];
    const FEATURES: u64 = VIRTIO_F_VERSION_1 | VIRTIO_F_IN_ORDER;

    fn new() -> impl PinInit<Self, Error> {
        Console { polls: [Poll::new(RECEIVEQ, EPOLLIN), Poll::new(TRANSMITQ, EPOLLOUT)] }
    }

    fn handle_kick(&self, worker: &Worker, index: usize, vq: &mut Vq<ConsoleQueue>) -> bool {
        // receiveq kicks need nothing: the device has no input to give.
        if index != TRANSMITQ || vq.ring.broken {
            return false;
        }
        let Some(output) = vq.device.output.as_mut() else { return false };
        match output.transmit(&mut vq.ring, &vq.mem, &self.polls[TRANSMITQ], worker) {
            Ok(run) => {
                if run.used {
                    vq.signal_used();
                }
                run.more
            }
            Err(e) => {
                output.abandon(&mut vq.ring);
                vq.fail(Self::NAME, Self::QUEUE_NAMES[index], e);
                false
            }
        }
    }

    fn busy(queue: &ConsoleQueue) -> bool {
        queue.output.is_some()
    }

    fn stop_queue(&self, index: usize, _queue: &mut ConsoleQueue) {
        self.polls[index].stop();
    }

    /// VHOST_CONSOLE_SET_BACKEND: attach transmitq's file (fd -1 detaches).
    fn ioctl(vhost: &VhostDev<Self>, cmd: u32, arg: usize) -> Result {
        if cmd != VHOST_CONSOLE_SET_BACKEND {
            return Err(ENOTTY);
        }
        let f: VringFile = read(arg)?;
        match f.index as usize {
            TRANSMITQ => {}
            RECEIVEQ => return Err(EINVAL), // no input yet
            _ => return Err(errno(bindings::ENOBUFS)),
        }
        let file = match f.fd {
            -1 => None,
            fd => {
                let file = FileRef::get(fd)?;
                // SAFETY: the file is referenced.
                to_result(unsafe { sys::vhost_console_check_output(file.as_ptr()) })?;
                Some(file)
            }
        };
        let mut guard = vhost.vq(TRANSMITQ).lock();
        let vq = &mut *guard;
        // The old file first: stop waiting on it; the chains it did not finish
        // go back to the ring (a new file writes them again, whole).
        vhost.device.polls[TRANSMITQ].stop();
        if let Some(mut old) = vq.device.output.take() {
            old.abandon(&mut vq.ring);
        }
        let Some(file) = file else { return Ok(()) };
        if !vq.ring.configured() || !vq.ring.access_ok() {
            return Err(EFAULT);
        }
        vq.device.output = Some(Output::new(file, vq.ring.num)?);
        drop(guard);
        // Buffers may be waiting already.
        vhost.worker().queue(TRANSMITQ);
        Ok(())
    }
}
