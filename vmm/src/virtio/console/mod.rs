//! The virtio console device (VirtIO 1.2 §5.3). Port 0 is the console:
//! transmitq bytes go to an `Output` (stdout by default) that never makes
//! the device wait; input the VMM queues (its stdin) fills the buffers the
//! driver posts on receiveq. With `--port`, the device offers
//! VIRTIO_CONSOLE_F_MULTIPORT and more ports (`ports.rs`); with stdin a
//! terminal, VIRTIO_CONSOLE_F_SIZE and the terminal's size. Without either
//! it is the single-port console it always was, feature for feature.

mod control;
mod link;
pub mod port;
mod ports;
mod stream;

use std::io;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use super::{
    DeviceEvent, News, QueueError, QueueRun, VirtioDevice, VIRTIO_F_IN_ORDER, VIRTIO_F_VERSION_1,
    VIRTIO_RING_F_EVENT_IDX,
};
use crate::output::Output;
use crate::stats::Stats;
pub use link::{KernelFiles, Link};
pub use port::{Port, PortSpec};
pub use ports::{Ports, CONTROL_RECEIVEQ, CONTROL_TRANSMITQ};
use stream::{Receive, Transmit};
pub use stream::{BYTE_WEIGHT, QUEUE_MAX_SIZE, WEIGHT};

pub const DEVICE_ID_CONSOLE: u32 = 3;
pub const RECEIVEQ_INDEX: usize = 0;
pub const TRANSMITQ_INDEX: usize = 1;
/// Feature bits (§5.3.3): the console's size in the configuration space;
/// more ports and the control queues; `emerg_wr`.
pub const VIRTIO_CONSOLE_F_SIZE: u64 = 1 << 0;
pub const VIRTIO_CONSOLE_F_MULTIPORT: u64 = 1 << 1;
pub const VIRTIO_CONSOLE_F_EMERG_WRITE: u64 = 1 << 2;

/// `struct virtio_console_config`: cols (u16), rows (u16), max_nr_ports
/// (u32), emerg_wr (u32).
const CONFIG_SIZE: u64 = 12;
const EMERG_WR_OFFSET: u64 = 8;

/// The configuration space of a console `size` (cols, rows; 0 without
/// VIRTIO_CONSOLE_F_SIZE) with `max_nr_ports` (0 without MULTIPORT).
pub fn config(size: Option<(u16, u16)>, max_nr_ports: u32) -> [u8; CONFIG_SIZE as usize] {
    let mut config = [0u8; CONFIG_SIZE as usize];
    let (cols, rows) = size.unwrap_or((0, 0));
    config[0..2].copy_from_slice(&cols.to_le_bytes());
    config[2..4].copy_from_slice(&rows.to_le_bytes());
    config[4..8].copy_from_slice(&max_nr_ports.to_le_bytes());
    config
}

/// The host's terminal is now `cols` by `rows`, for a console of `size`
/// (None: VIRTIO_CONSOLE_F_SIZE not offered): a RESIZE message for port 0
/// if the driver took MULTIPORT, else a configuration change. Both
/// consoles' (userspace and vhost).
pub fn resize(size: &mut Option<(u16, u16)>, ports: Option<&mut Ports>, multiport: bool, new: (u16, u16)) -> News {
    if size.is_none() {
        return News::default();
    }
    *size = Some(new);
    match ports {
        Some(ports) if multiport => ports.resize(new.0, new.1),
        Some(ports) => {
            ports.resize(new.0, new.1);
            News { config_changed: true, ..News::default() }
        }
        None => News { config_changed: true, ..News::default() },
    }
}

/// Reads `config` at `offset`: emerg_wr, write-only, reads 0. False if out
/// of range.
pub fn read_config_of(config: [u8; CONFIG_SIZE as usize], offset: u64, data: &mut [u8]) -> bool {
    data.fill(0);
    let Some(end) = offset.checked_add(data.len() as u64).filter(|&end| end <= CONFIG_SIZE) else { return false };
    data.copy_from_slice(&config[offset as usize..end as usize]);
    true
}

/// The character of a write to emerg_wr (§5.3.6: allowed at any time, even
/// before the queues are set up), or None if it is no such write.
pub fn emergency_byte(offset: u64, data: &[u8]) -> Option<u8> {
    (offset == EMERG_WR_OFFSET && (1..=4).contains(&data.len())).then(|| data[0])
}

/// Input held for the guest until it posts receive buffers; past this the
/// VMM stops reading its input (the bytes wait where they are).
pub const INPUT_MAX: usize = 64 * 1024;

/// The console, writing the guest's bytes to an `Output`.
pub struct Console {
    out: Output,
    tx: Transmit,
    rx: Receive,
    /// The output's failure, once reported.
    failure_reported: bool,
    /// VIRTIO_CONSOLE_F_SIZE is offered: the terminal's cols and rows.
    size: Option<(u16, u16)>,
    /// VIRTIO_CONSOLE_F_MULTIPORT is offered: the other ports.
    ports: Option<Ports>,
    queue_sizes: Vec<u16>,
    /// The driver took VIRTIO_CONSOLE_F_MULTIPORT.
    multiport: bool,
    /// Bytes taken from the guest for the output, for statistics.
    pub bytes_out: u64,
}

impl Console {
    pub fn new(out: Output) -> Self {
        Console {
            out,
            tx: Transmit::default(),
            rx: Receive::new(INPUT_MAX),
            failure_reported: false,
            size: None,
            ports: None,
            queue_sizes: vec![QUEUE_MAX_SIZE; 2],
            multiport: false,
            bytes_out: 0,
        }
    }

    /// Offers VIRTIO_CONSOLE_F_SIZE, the console being `cols` by `rows`.
    pub fn with_size(mut self, cols: u16, rows: u16) -> Self {
        self.size = Some((cols, rows));
        self
    }

    /// Offers VIRTIO_CONSOLE_F_MULTIPORT with `ports` as ports 1, 2, ...
    /// (none: the single-port console).
    pub fn with_ports(mut self, ports: Vec<Port>) -> io::Result<Self> {
        if ports.is_empty() {
            return Ok(self);
        }
        let ports = Ports::new(ports, self.size)?;
        // Queues 0/1, the control queues, then 2 per port (Linux init_vqs).
        self.queue_sizes = vec![QUEUE_MAX_SIZE; 2 * (ports.max_nr_ports() as usize + 1)];
        self.ports = Some(ports);
        Ok(self)
    }

    /// Takes bytes for the guest, up to INPUT_MAX held; returns how many.
    pub fn queue_input(&mut self, bytes: &[u8]) -> usize {
        self.rx.queue_input(bytes)
    }

    fn config(&self) -> [u8; CONFIG_SIZE as usize] {
        config(self.size, self.ports.as_ref().map_or(0, Ports::max_nr_ports))
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
        let mut features =
            VIRTIO_F_VERSION_1 | VIRTIO_F_IN_ORDER | VIRTIO_RING_F_EVENT_IDX | VIRTIO_CONSOLE_F_EMERG_WRITE;
        if self.size.is_some() {
            features |= VIRTIO_CONSOLE_F_SIZE;
        }
        if self.ports.is_some() {
            features |= VIRTIO_CONSOLE_F_MULTIPORT;
        }
        features
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &self.queue_sizes
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) -> bool {
        read_config_of(self.config(), offset, data)
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
            TRANSMITQ_INDEX => {
                let before = self.tx.bytes;
                let run = self.tx.process(queue, mem, &mut self.out);
                self.bytes_out += self.tx.bytes - before;
                run
            }
            RECEIVEQ_INDEX => self.rx.process(queue, mem),
            _ => match &mut self.ports {
                Some(ports) if self.multiport => ports.process(index, queue, mem),
                _ => Ok(QueueRun::default()),
            },
        }
    }

    fn queue_disabled(&mut self, index: usize) {
        if index == TRANSMITQ_INDEX {
            // The half-written chain goes with the queue.
            self.tx.forget();
        } else if let Some(ports) = &mut self.ports {
            ports.queue_disabled(index);
        }
    }

    fn activate(
        &mut self,
        _mem: &GuestMemoryMmap,
        _queues: &[Queue],
        features: u64,
    ) -> Result<(), super::ActivateError> {
        self.multiport = features & VIRTIO_CONSOLE_F_MULTIPORT != 0;
        if let Some(ports) = &mut self.ports {
            ports.set_size_acked(features & VIRTIO_CONSOLE_F_SIZE != 0);
        }
        Ok(())
    }

    fn input(&mut self, bytes: &[u8]) -> usize {
        self.queue_input(bytes)
    }

    fn events(&self) -> Vec<DeviceEvent> {
        let mut events = vec![DeviceEvent::News(self.out.room_fd())];
        if let Some(ports) = &self.ports {
            events.extend(ports.events());
        }
        events
    }

    fn poll_news(&mut self) -> News {
        self.out.clear_room();
        let mut news = match &mut self.ports {
            Some(ports) => ports.poll(),
            None => News { ready: true, ..News::default() },
        };
        if !self.multiport {
            news.queues = 0;
        }
        if let Some(why) = self.out.failure().filter(|_| !self.failure_reported) {
            self.failure_reported = true;
            news.fatal = Some(why);
        }
        news
    }

    fn resize(&mut self, cols: u16, rows: u16) -> News {
        resize(&mut self.size, self.ports.as_mut(), self.multiport, (cols, rows))
    }

    fn idle(&self, _mem: &GuestMemoryMmap, _queues: &[Queue]) -> bool {
        self.ports.as_ref().is_none_or(Ports::idle)
    }

    fn dump(&mut self) -> Vec<String> {
        self.ports.as_ref().map_or_else(Vec::new, Ports::dump)
    }

    fn wind_down(&mut self, until: std::time::Instant) -> bool {
        self.ports.as_mut().is_none_or(|p| p.wind_down(until))
    }

    fn abandon(&mut self) {
        if let Some(ports) = &mut self.ports {
            ports.abandon();
        }
    }

    fn reset(&mut self) {
        // Held input stays: it was typed for the guest, not for this driver.
        self.tx.forget();
        self.multiport = false;
        if let Some(ports) = &mut self.ports {
            ports.reset();
        }
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
    use virtio_queue::QueueT;
    use vm_memory::{Bytes, GuestAddress};

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
