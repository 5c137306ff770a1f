//! The virtio console device (VirtIO 1.2 §5.3), single port: transmitq bytes
//! go to an `Output` (stdout by default) that never makes the device wait;
//! input the VMM queues (its stdin) fills the buffers the driver posts on
//! receiveq.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

use super::chain::{pop_head, read_chain, wants_interrupt, Buffer, Direction};
use super::{
    DeviceEvent, News, QueueError, QueueRun, VirtioDevice, VIRTIO_F_IN_ORDER, VIRTIO_F_VERSION_1,
    VIRTIO_RING_F_EVENT_IDX,
};
use crate::output::Output;
use crate::stats::Stats;

pub const DEVICE_ID_CONSOLE: u32 = 3;
pub const RECEIVEQ_INDEX: usize = 0;
pub const TRANSMITQ_INDEX: usize = 1;
/// The queue size offered; the driver may pick any power of two up to it.
pub const QUEUE_MAX_SIZE: u16 = 256;
/// Feature bit: the driver may write characters to `emerg_wr` (§5.3.3).
pub const VIRTIO_CONSOLE_F_EMERG_WRITE: u64 = 1 << 2;

/// `struct virtio_console_config`: cols (u16), rows (u16), max_nr_ports
/// (u32), emerg_wr (u32). Size and port count are not offered
/// (VIRTIO_CONSOLE_F_SIZE, _MULTIPORT), so only emerg_wr is live.
const CONFIG_SIZE: u64 = 12;
const EMERG_WR_OFFSET: u64 = 8;

/// Reads the configuration space (both console devices): cols, rows and
/// max_nr_ports read as 0, emerg_wr is write-only. False if out of range.
pub fn read_config(offset: u64, data: &mut [u8]) -> bool {
    data.fill(0);
    offset.checked_add(data.len() as u64).is_some_and(|end| end <= CONFIG_SIZE)
}

/// The character of a write to emerg_wr (§5.3.6: allowed at any time, even
/// before the queues are set up), or None if it is no such write.
pub fn emergency_byte(offset: u64, data: &[u8]) -> Option<u8> {
    (offset == EMERG_WR_OFFSET && (1..=4).contains(&data.len())).then(|| data[0])
}

/// What one run may do before the guest gets the vCPU back: as many chains
/// and bytes as the kernel's worker does per run (vhost-net's weights). The
/// rest waits for the transport to run the queue again.
pub const WEIGHT: usize = 256;
pub const BYTE_WEIGHT: usize = 0x80000;
/// Input held for the guest until it posts receive buffers; past this the
/// VMM stops reading its input (the bytes wait where they are).
pub const INPUT_MAX: usize = 64 * 1024;

/// Where writing a chain stopped.
enum Emitted {
    All,
    /// At the run's byte budget, this far into the chain.
    Budget(usize),
    /// The output had no room, this far into the chain.
    Full(usize),
}

/// The console, writing the guest's bytes to an `Output`.
pub struct Console {
    out: Output,
    /// The buffers of the chain being written, reused across chains.
    buffers: Vec<Buffer>,
    /// A chain that a run left half written: its head, and the bytes of it
    /// already out. Its buffers are in `buffers`.
    partial: Option<(u16, usize)>,
    /// Bytes for the guest that no receive buffer took yet.
    input: VecDeque<u8>,
    /// The buffers of the receive chain being filled.
    rx_buffers: Vec<Buffer>,
    /// The output's failure, once reported.
    failure_reported: bool,
    /// Bytes taken from the guest for the output, for statistics.
    pub bytes_out: u64,
}

impl Console {
    pub fn new(out: Output) -> Self {
        Console {
            out,
            buffers: Vec::with_capacity(QUEUE_MAX_SIZE.into()),
            partial: None,
            input: VecDeque::new(),
            rx_buffers: Vec::with_capacity(QUEUE_MAX_SIZE.into()),
            failure_reported: false,
            bytes_out: 0,
        }
    }

    /// Takes bytes for the guest, up to INPUT_MAX held; returns how many.
    pub fn queue_input(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(INPUT_MAX - self.input.len());
        self.input.extend(&bytes[..n]);
        n
    }

    /// Moves held input into the buffers the driver posted on receiveq: each
    /// chain device-writable and checked whole first, then filled in order
    /// and used with the byte count. Buffers stay posted while there is no
    /// input; input stays held while there are no buffers, and the driver's
    /// next kick brings more (with EVENT_IDX, avail_event asks for it).
    fn process_receiveq(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<QueueRun, QueueError> {
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
            read_chain(queue, mem, head, Direction::DeviceWrites, &mut self.rx_buffers)?;
            let mut written = 0u32;
            for buf in &self.rx_buffers {
                let n = (buf.len as usize).min(self.input.len());
                let bytes: Vec<u8> = self.input.drain(..n).collect();
                mem.write_slice(&bytes, buf.addr).map_err(|e| QueueError::Memory(e.to_string()))?;
                written += n as u32;
                if self.input.is_empty() {
                    break;
                }
            }
            queue.add_used(mem, head, written)?;
            used = true;
        }
        let more = !self.input.is_empty() && queue.avail_idx(mem, Ordering::Acquire)?.0 != queue.next_avail();
        Ok(QueueRun { notify: used && wants_interrupt(queue, mem)?, more, blocked: false })
    }

    /// Copies up to `len` guest bytes at `addr` into the output; returns how
    /// many it had room for.
    fn emit(&mut self, mem: &GuestMemoryMmap, addr: GuestAddress, len: usize) -> Result<usize, QueueError> {
        let n =
            self.out.push_with(len, |dst| mem.read_slice(dst, addr)).map_err(|e| QueueError::Memory(e.to_string()))?;
        self.bytes_out += n as u64;
        Ok(n)
    }

    /// Writes the chain in `buffers` from byte `done` on, while `bytes` is
    /// under the budget and the output has room.
    fn emit_chain(&mut self, mem: &GuestMemoryMmap, mut done: usize, bytes: &mut usize) -> Result<Emitted, QueueError> {
        let buffers = std::mem::take(&mut self.buffers);
        let mut start = 0;
        let mut result = Ok(Emitted::All);
        for buf in &buffers {
            let len = buf.len as usize;
            if done < start + len {
                let skip = done - start;
                let want = (len - skip).min(BYTE_WEIGHT.saturating_sub(*bytes));
                let n = match self.emit(mem, buf.addr.unchecked_add(skip as u64), want) {
                    Ok(n) => n,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                };
                *bytes += n;
                done += n;
                if n < want {
                    result = Ok(Emitted::Full(done));
                    break;
                }
                if skip + n < len {
                    result = Ok(Emitted::Budget(done));
                    break;
                }
            }
            start += len;
        }
        self.buffers = buffers;
        result
    }

    /// Drains transmitq with the usual suppression loop: notifications off,
    /// drain, on again, and drain once more if the driver raced us (§2.7.10).
    /// Stops at the budget, or when the output is full, keeping a
    /// half-written chain for the next run.
    fn process_transmitq(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<QueueRun, QueueError> {
        let (mut used, mut chains, mut bytes, mut passes) = (false, 0, 0, 0);
        let mut run = QueueRun::default();
        if let Some((head, done)) = self.partial.take() {
            match self.emit_chain(mem, done, &mut bytes)? {
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
                match self.emit_chain(mem, 0, &mut bytes)? {
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

impl VirtioDevice for Console {
    fn name(&self) -> &'static str {
        "console"
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID_CONSOLE
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | VIRTIO_F_IN_ORDER | VIRTIO_RING_F_EVENT_IDX | VIRTIO_CONSOLE_F_EMERG_WRITE
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_MAX_SIZE, QUEUE_MAX_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) -> bool {
        read_config(offset, data)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> bool {
        let Some(byte) = emergency_byte(offset, data) else { return false };
        // No ring to hold it back: a byte that finds the output full is lost
        // (and reported).
        self.out.push_or_lose(&[byte]);
        self.bytes_out += 1;
        true
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut Queue,
        mem: &GuestMemoryMmap,
    ) -> Result<QueueRun, QueueError> {
        match index {
            TRANSMITQ_INDEX => self.process_transmitq(queue, mem),
            RECEIVEQ_INDEX => self.process_receiveq(queue, mem),
            _ => Ok(QueueRun::default()),
        }
    }

    fn queue_disabled(&mut self, index: usize) {
        if index == TRANSMITQ_INDEX {
            // The half-written chain goes with the queue.
            self.partial = None;
        }
    }

    fn input(&mut self, bytes: &[u8]) -> usize {
        self.queue_input(bytes)
    }

    fn events(&self) -> Vec<DeviceEvent> {
        vec![DeviceEvent::News(self.out.room_fd())]
    }

    fn poll_news(&mut self) -> News {
        self.out.clear_room();
        let fatal = match self.out.failure() {
            Some(why) if !self.failure_reported => {
                self.failure_reported = true;
                Some(why)
            }
            _ => None,
        };
        News { ready: true, needs_reset: None, fatal }
    }

    fn reset(&mut self) {
        // Held input stays: it was typed for the guest, not for this driver.
        self.partial = None;
    }

    fn add_stats(&mut self, stats: &mut Stats) {
        stats.console_bytes = Some(self.bytes_out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_bindings::virtio_ring::VRING_DESC_F_NEXT;
    use virtio_queue::desc::{split::Descriptor, RawDescriptor};
    use virtio_queue::mock::MockSplitQueue;

    /// A console whose output is never started: what it takes stays in the
    /// buffer, `held` bytes of it, up to 8 MiB.
    fn console() -> Console {
        Console::new(Output::new("test", 8 << 20).unwrap())
    }

    fn held(c: &Console) -> usize {
        (8 << 20) - c.out.room()
    }

    #[test]
    fn a_chain_larger_than_the_budget_is_written_a_budget_per_run() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 4 << 20)]).unwrap();
        let vq = MockSplitQueue::new(&mem, 16);
        // Two descriptors of 1 MiB + 1 and 1 MiB - 1: 2 MiB, four budgets.
        let descs = [(0x10_0000, (1 << 20) + 1, VRING_DESC_F_NEXT as u16, 1), (0x20_0000, (1 << 20) - 1, 0, 0)];
        for (i, (addr, len, flags, next)) in descs.into_iter().enumerate() {
            vq.desc_table().store(i as u16, RawDescriptor::from(Descriptor::new(addr, len, flags, next))).unwrap();
        }
        vq.avail().ring().ref_at(0).unwrap().store(0);
        vq.avail().idx().store(1);
        let mut queue = vq.create_queue().unwrap();
        let mut c = console();
        for run in 1..=4 {
            let result = c.process_queue(TRANSMITQ_INDEX, &mut queue, &mem).unwrap();
            assert_eq!(held(&c), run * BYTE_WEIGHT, "run {run}");
            assert_eq!(result.more, run < 4, "run {run}");
            assert_eq!(vq.used().idx().load(), u16::from(run == 4), "used only when whole, run {run}");
        }
        // Nothing left: a run with nothing to do.
        assert!(!c.process_queue(TRANSMITQ_INDEX, &mut queue, &mem).unwrap().more);
    }

    #[test]
    fn a_run_takes_at_most_weight_chains() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let vq = MockSplitQueue::new(&mem, 256);
        for i in 0..256u16 {
            vq.desc_table().store(i, RawDescriptor::from(Descriptor::new(0x8_0000, 1, 0, 0))).unwrap();
            vq.avail().ring().ref_at(i.into()).unwrap().store(i);
        }
        vq.avail().idx().store(256);
        let mut queue = vq.create_queue().unwrap();
        let mut c = console();
        let run = c.process_queue(TRANSMITQ_INDEX, &mut queue, &mem).unwrap();
        assert!(!run.more, "256 chains are one weight");
        assert_eq!(vq.used().idx().load(), 256);
        assert_eq!(held(&c), 256);
    }

    #[test]
    fn with_event_idx_a_drained_transmitq_asks_for_the_next_kick() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let vq = MockSplitQueue::new(&mem, 16);
        for i in 0..3u16 {
            vq.desc_table().store(i, RawDescriptor::from(Descriptor::new(0x8_0000, 1, 0, 0))).unwrap();
            vq.avail().ring().ref_at(i.into()).unwrap().store(i);
        }
        vq.avail().idx().store(3);
        let mut queue: Queue = vq.create_queue().unwrap();
        // The mock's used ring overlaps the avail ring's used_event.
        queue.set_used_ring_address(Some(0x9000), None);
        queue.set_event_idx(true);
        let run = console().process_queue(TRANSMITQ_INDEX, &mut queue, &mem).unwrap();
        assert_eq!(mem.read_obj::<u16>(GuestAddress(0x9002)).unwrap(), 3, "used.idx");
        // avail_event follows the used ring: the driver kicks when it publishes entry 3.
        let avail_event: u16 = mem.read_obj(GuestAddress(queue.used_ring() + 4 + 8 * 16)).unwrap();
        assert_eq!(avail_event, 3);
        // used_event is 0 (the driver's initial value), passed by these three.
        assert!(run.notify);
    }

    #[test]
    fn input_waits_for_receive_buffers_and_fills_them_in_order() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let vq = MockSplitQueue::new(&mem, 16);
        let mut queue = vq.create_queue().unwrap();
        let mut c = console();
        assert_eq!(c.input(b"hello, guest"), 12);
        // No buffers yet: the input is held.
        let run = c.process_queue(RECEIVEQ_INDEX, &mut queue, &mem).unwrap();
        assert!(!run.notify);
        // Two device-writable buffers of 5 and 100 bytes in one chain, and a second chain.
        let write = virtio_bindings::virtio_ring::VRING_DESC_F_WRITE as u16;
        let descs =
            [(0x8_0000, 5, write | VRING_DESC_F_NEXT as u16, 1), (0x8_1000, 100, write, 0), (0x8_2000, 100, write, 0)];
        for (i, (addr, len, flags, next)) in descs.into_iter().enumerate() {
            vq.desc_table().store(i as u16, RawDescriptor::from(Descriptor::new(addr, len, flags, next))).unwrap();
        }
        vq.avail().ring().ref_at(0).unwrap().store(0);
        vq.avail().ring().ref_at(1).unwrap().store(2);
        vq.avail().idx().store(2);
        let run = c.process_queue(RECEIVEQ_INDEX, &mut queue, &mem).unwrap();
        assert!(run.notify);
        assert_eq!(vq.used().idx().load(), 1, "one chain took it all; the other stays posted");
        let mut first = [0u8; 5];
        let mut rest = [0u8; 7];
        mem.read_slice(&mut first, GuestAddress(0x8_0000)).unwrap();
        mem.read_slice(&mut rest, GuestAddress(0x8_1000)).unwrap();
        assert_eq!((&first, &rest), (b"hello", b", guest"));
        assert_eq!(vq.used().ring().ref_at(0).unwrap().load().len(), 12);
        // The input room is bounded.
        assert_eq!(c.input(&vec![b'x'; INPUT_MAX + 1]), INPUT_MAX);
    }

    #[test]
    fn a_read_only_buffer_on_receiveq_is_an_error() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        let vq = MockSplitQueue::new(&mem, 16);
        vq.desc_table().store(0, RawDescriptor::from(Descriptor::new(0x8_0000, 16, 0, 0))).unwrap();
        vq.avail().ring().ref_at(0).unwrap().store(0);
        vq.avail().idx().store(1);
        let mut queue = vq.create_queue().unwrap();
        let mut c = console();
        c.input(b"x");
        assert_eq!(c.process_queue(RECEIVEQ_INDEX, &mut queue, &mem), Err(QueueError::ReadOnly { index: 0 }));
    }
}
