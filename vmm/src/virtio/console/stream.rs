//! A console port's two data queues (VirtIO 1.2 §5.3.6.2): what the driver
//! puts on a transmitq goes into a `Sink` that never makes the device wait
//! (it takes what it has room for); what the host sends is held, bounded,
//! until the driver posts receive buffers for it. Port 0 and every
//! `--port` use the same two engines.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use crate::output::Output;
use crate::virtio::chain::{pop_head, read_chain, wants_interrupt, Buffer, Direction};
use crate::virtio::{QueueError, QueueRun};

/// What one run may do before the guest gets the vCPU back: as many chains
/// and bytes as the kernel's worker does per run (vhost-net's weights). The
/// rest waits for the transport to run the queue again.
pub const WEIGHT: usize = 256;
pub const BYTE_WEIGHT: usize = 0x80000;
/// The largest queue offered; chains are at most this long.
pub const QUEUE_MAX_SIZE: u16 = 256;

/// Where a transmitq's bytes go.
pub trait Sink {
    /// Copies up to `len` guest bytes at `addr`; returns how many it had
    /// room for. Fewer than `len` means full: it tells the device through
    /// its news when there is room again.
    fn take(&mut self, mem: &GuestMemoryMmap, addr: GuestAddress, len: usize) -> Result<usize, QueueError>;
}

impl Sink for Output {
    fn take(&mut self, mem: &GuestMemoryMmap, addr: GuestAddress, len: usize) -> Result<usize, QueueError> {
        self.push_with(len, |dst| mem.read_slice(dst, addr)).map_err(|e| QueueError::Memory(e.to_string()))
    }
}

/// Where writing a chain stopped.
enum Emitted {
    All,
    /// At the run's byte budget, this far into the chain.
    Budget(usize),
    /// The sink had no room, this far into the chain.
    Full(usize),
}

/// A transmitq's side of the device.
pub struct Transmit {
    /// The buffers of the chain being written, reused across chains.
    buffers: Vec<Buffer>,
    /// A chain that a run left half written: its head, and the bytes of it
    /// already out. Its buffers are in `buffers`.
    partial: Option<(u16, usize)>,
    /// Bytes taken from the guest, for statistics.
    pub bytes: u64,
}

impl Default for Transmit {
    fn default() -> Self {
        Transmit { buffers: Vec::with_capacity(QUEUE_MAX_SIZE.into()), partial: None, bytes: 0 }
    }
}

impl Transmit {
    /// Forgets a half-written chain (its queue was disabled or reset).
    pub fn forget(&mut self) {
        self.partial = None;
    }

    /// Writes the chain in `buffers` from byte `done` on, while `bytes` is
    /// under the budget and the sink has room.
    fn emit_chain(
        &mut self,
        mem: &GuestMemoryMmap,
        sink: &mut dyn Sink,
        mut done: usize,
        bytes: &mut usize,
    ) -> Result<Emitted, QueueError> {
        let mut start = 0;
        for buf in &self.buffers {
            let len = buf.len as usize;
            if done < start + len {
                let skip = done - start;
                let want = (len - skip).min(BYTE_WEIGHT.saturating_sub(*bytes));
                let n = sink.take(mem, buf.addr.unchecked_add(skip as u64), want)?;
                self.bytes += n as u64;
                *bytes += n;
                done += n;
                if n < want {
                    return Ok(Emitted::Full(done));
                }
                if skip + n < len {
                    return Ok(Emitted::Budget(done));
                }
            }
            start += len;
        }
        Ok(Emitted::All)
    }

    /// Drains transmitq with the usual suppression loop: notifications off,
    /// drain, on again, and drain once more if the driver raced us (§2.7.10).
    /// Stops at the budget, or when the sink is full, keeping a
    /// half-written chain for the next run.
    pub fn process(
        &mut self,
        queue: &mut Queue,
        mem: &GuestMemoryMmap,
        sink: &mut dyn Sink,
    ) -> Result<QueueRun, QueueError> {
        let (mut used, mut chains, mut bytes, mut passes) = (false, 0, 0, 0);
        let mut run = QueueRun::default();
        if let Some((head, done)) = self.partial.take() {
            match self.emit_chain(mem, sink, done, &mut bytes)? {
                Emitted::Budget(done) => {
                    self.partial = Some((head, done));
                    return Ok(QueueRun { more: true, ..run });
                }
                Emitted::Full(done) => {
                    self.partial = Some((head, done));
                    return Ok(QueueRun { blocked: true, ..run });
                }
                Emitted::All => {
                    queue.add_used(mem, head, 0)?;
                    used = true;
                }
            }
        }
        'drain: loop {
            queue.disable_notification(mem)?;
            loop {
                if chains == WEIGHT || bytes >= BYTE_WEIGHT {
                    // Over budget: stop if there is more, else re-check as usual.
                    if queue.avail_idx(mem, Ordering::Acquire)?.0 != queue.next_avail() {
                        run.more = true;
                        break 'drain;
                    }
                    break;
                }
                let Some(head) = pop_head(queue, mem)? else { break };
                read_chain(queue, mem, head, Direction::DeviceReads, &mut self.buffers)?;
                chains += 1;
                match self.emit_chain(mem, sink, 0, &mut bytes)? {
                    Emitted::All => {}
                    Emitted::Budget(done) => {
                        self.partial = Some((head, done));
                        run.more = true;
                        break 'drain;
                    }
                    Emitted::Full(done) => {
                        self.partial = Some((head, done));
                        run.blocked = true;
                        break 'drain;
                    }
                }
                // The device wrote nothing into these device-readable buffers.
                queue.add_used(mem, head, 0)?;
                used = true;
            }
            if !queue.enable_notification(mem)? {
                break;
            }
            // The driver published a chain meanwhile: another pass. Passes
            // count toward the budget, as vhost's handle_tx counts its
            // re-checks as packets: a driver whose avail ring overlaps the
            // used flags (fuzzing found one) makes this re-check true for
            // ever, and then the transport's requeue bounds each run.
            passes += 1;
            if passes == WEIGHT {
                run.more = true;
                break;
            }
        }
        run.notify = used && wants_interrupt(queue, mem)?;
        Ok(run)
    }
}

/// A receiveq's side of the device: the host's bytes, held until the driver
/// posts buffers.
pub struct Receive {
    input: VecDeque<u8>,
    /// Held input is bounded: past this the host's side is not read.
    max: usize,
    /// The buffers of the receive chain being filled.
    buffers: Vec<Buffer>,
    /// Bytes handed to the guest, for statistics.
    pub bytes: u64,
}

impl Receive {
    pub fn new(max: usize) -> Self {
        Receive { input: VecDeque::new(), max, buffers: Vec::with_capacity(QUEUE_MAX_SIZE.into()), bytes: 0 }
    }

    /// Takes bytes for the guest, up to `max` held; returns how many.
    pub fn queue_input(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.room());
        self.input.extend(&bytes[..n]);
        n
    }

    pub fn room(&self) -> usize {
        self.max - self.input.len()
    }

    pub fn held(&self) -> usize {
        self.input.len()
    }

    /// Moves held input into the buffers the driver posted: each chain
    /// device-writable and checked whole first, then filled in order and
    /// used with the byte count. Buffers stay posted while there is no
    /// input; input stays held while there are no buffers, and the driver's
    /// next kick brings more (with EVENT_IDX, avail_event asks for it).
    pub fn process(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<QueueRun, QueueError> {
        let mut used = false;
        for _ in 0..WEIGHT {
            if self.input.is_empty() {
                break;
            }
            let Some(head) = pop_head(queue, mem)? else {
                if queue.enable_notification(mem)? {
                    continue; // posted while notifications came back on
                }
                break;
            };
            read_chain(queue, mem, head, Direction::DeviceWrites, &mut self.buffers)?;
            let mut written = 0u32;
            for buf in &self.buffers {
                let n = (buf.len as usize).min(self.input.len());
                let (front, back) = self.input.as_slices();
                let first = n.min(front.len());
                mem.write_slice(&front[..first], buf.addr).map_err(|e| QueueError::Memory(e.to_string()))?;
                mem.write_slice(&back[..n - first], buf.addr.unchecked_add(first as u64))
                    .map_err(|e| QueueError::Memory(e.to_string()))?;
                self.input.drain(..n);
                written += n as u32;
                if self.input.is_empty() {
                    break;
                }
            }
            self.bytes += u64::from(written);
            queue.add_used(mem, head, written)?;
            used = true;
        }
        let more = !self.input.is_empty() && queue.avail_idx(mem, Ordering::Acquire)?.0 != queue.next_avail();
        Ok(QueueRun { notify: used && wants_interrupt(queue, mem)?, more, blocked: false })
    }
}
