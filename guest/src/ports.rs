//! The console's ports, driver side (VIRTIO_CONSOLE_F_MULTIPORT, VirtIO 1.2
//! §5.3.6.2): the control queues (2 and 3) and ports 1 and 2 (queues 2p+2
//! and 2p+3), as Linux's virtio_console drives them: DEVICE_READY, a
//! PORT_READY for each PORT_ADD, a control message sent and spun on until
//! used. Port 0 is the `Console`.
//!
//! Everything past the console's two queues lives in RAM from 2 MiB (the
//! queue pages, the buffers, this driver's state): six more queues would
//! not fit the 8 KiB stack next to the rest.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};

use crate::boot::BootInfo;
use crate::console::{setup_queue, Console};
use crate::debug::fail;
use crate::mmio::{self, Mmio};
use crate::virtqueue::{VirtQueue, VIRTQ_DESC_F_WRITE};

pub const VIRTIO_CONSOLE_F_SIZE: u64 = 1 << 0;
pub const VIRTIO_CONSOLE_F_MULTIPORT: u64 = 1 << 1;

pub const DEVICE_READY: u16 = 0;
pub const PORT_ADD: u16 = 1;
pub const PORT_READY: u16 = 3;
pub const CONSOLE_PORT: u16 = 4;
pub const RESIZE: u16 = 5;
pub const PORT_OPEN: u16 = 6;
pub const PORT_NAME: u16 = 7;
pub const BAD_ID: u32 = !0;

pub const CONTROL_RECEIVEQ: u16 = 2;
pub const CONTROL_TRANSMITQ: u16 = 3;

/// Port 0 and the two this driver serves.
pub const MAX_PORTS: usize = 3;
pub const NAME_MAX: usize = 64;
/// Entries per queue past the console's.
const SIZE: u16 = 16;

/// Queue q (2 and up) in the page at QUEUE_PAGES + (q - 2) * 4 KiB.
const QUEUE_PAGES: usize = 0x20_0000;
const CONTROL_BUFFERS: usize = 0x21_0000;
pub const CONTROL_BUFFER_LEN: u32 = 128;
/// Where a control message is built to be sent.
pub const CONTROL_OUT: usize = 0x21_1000;
/// Port p's receive buffers at PORT_BUFFERS + (p - 1) * 64 KiB.
const PORT_BUFFERS: usize = 0x22_0000;
pub const PORT_BUFFER_LEN: u32 = 1024;
const STATE: usize = 0x24_0000;

/// What the control messages told the driver so far.
pub struct State {
    /// Bit i: the device added port i.
    pub added: u32,
    /// The device named port 0 the console.
    pub console_port: bool,
    pub names: [[u8; NAME_MAX]; MAX_PORTS],
    pub name_lens: [usize; MAX_PORTS],
    /// The host's PORT_OPEN: 1s and 0s seen, per port.
    pub opens: [u32; MAX_PORTS],
    pub closes: [u32; MAX_PORTS],
    /// The last RESIZE (cols, rows), and how many came.
    pub size: (u16, u16),
    pub resizes: u32,
}

impl State {
    pub fn name(&self, port: usize) -> &[u8] {
        &self.names[port][..self.name_lens[port]]
    }
}

pub struct Ports {
    pub console: Console,
    pub control_rx: VirtQueue,
    pub control_tx: VirtQueue,
    /// Ports 1 and 2.
    pub rx: [VirtQueue; MAX_PORTS - 1],
    pub tx: [VirtQueue; MAX_PORTS - 1],
    pub max_nr_ports: u32,
    pub state: State,
    /// Answer each PORT_ADD with PORT_READY (a well-behaved driver).
    pub answer_add: bool,
}

fn page(queue: u16) -> usize {
    QUEUE_PAGES + (usize::from(queue) - 2) * 0x1000
}

/// The config space's max_nr_ports (§5.3.4).
const MAX_NR_PORTS: usize = mmio::CONFIG + 4;

impl Ports {
    /// Brings the console up with MULTIPORT (and the `wanted` features
    /// offered), its control receive buffers posted. The device must offer
    /// MULTIPORT with 2 or 3 ports.
    pub fn init(boot: &BootInfo, wanted: u64) -> &'static mut Ports {
        let p = STATE as *mut Ports;
        let console = Console::init_more(boot, wanted | VIRTIO_CONSOLE_F_MULTIPORT, SIZE, |mmio: &Mmio, features| {
            if features & VIRTIO_CONSOLE_F_MULTIPORT == 0 {
                fail(b"ports: the device does not offer VIRTIO_CONSOLE_F_MULTIPORT");
            }
            let max = mmio.read(MAX_NR_PORTS);
            if !(2..=MAX_PORTS as u32).contains(&max) {
                fail(b"ports: max_nr_ports is not 2 or 3");
            }
            for q in 2..2 * (MAX_PORTS as u16 + 1) {
                let queue = if u32::from(q) < 2 * (max + 1) {
                    setup_queue(mmio, q, page(q), SIZE, features)?
                } else {
                    // SAFETY: the page is this queue's; the device never sees it.
                    unsafe { VirtQueue::new(page(q), SIZE, false, false) }
                };
                // SAFETY: STATE is free RAM reserved for this driver; each
                // field is written once before `Ports` is used as a whole.
                unsafe {
                    match q {
                        2 => addr_of_mut!((*p).control_rx).write(queue),
                        3 => addr_of_mut!((*p).control_tx).write(queue),
                        q if q % 2 == 0 => addr_of_mut!((*p).rx[usize::from(q / 2 - 2)]).write(queue),
                        q => addr_of_mut!((*p).tx[usize::from(q / 2 - 2)]).write(queue),
                    }
                }
            }
            // SAFETY: as above.
            unsafe { addr_of_mut!((*p).max_nr_ports).write(max) };
            Ok(())
        })
        .unwrap_or_else(|e| e.fail());
        // SAFETY: as above; after these every field is written.
        let ports = unsafe {
            addr_of_mut!((*p).console).write(console);
            addr_of_mut!((*p).answer_add).write(true);
            addr_of_mut!((*p).state).write(State {
                added: 0,
                console_port: false,
                names: [[0; NAME_MAX]; MAX_PORTS],
                name_lens: [0; MAX_PORTS],
                opens: [0; MAX_PORTS],
                closes: [0; MAX_PORTS],
                size: (0, 0),
                resizes: 0,
            });
            &mut *p
        };
        for i in 0..SIZE {
            let id = ports.control_rx.push(control_buffer(i), CONTROL_BUFFER_LEN, VIRTQ_DESC_F_WRITE);
            debug_assert_eq!(id, i);
        }
        ports.control_rx.publish();
        ports.console.mmio.notify(CONTROL_RECEIVEQ);
        ports
    }

    /// Sends a control message and spins until the device used it (the
    /// driver's `__send_control_msg`), a bounded number of times.
    pub fn send(&mut self, id: u32, event: u16, value: u16) {
        // SAFETY: CONTROL_OUT is RAM reserved for the outgoing message.
        unsafe {
            write_volatile(CONTROL_OUT as *mut u32, id);
            write_volatile((CONTROL_OUT + 4) as *mut u16, event);
            write_volatile((CONTROL_OUT + 6) as *mut u16, value);
        }
        self.send_buffer(CONTROL_OUT as u64, 8, 0);
    }

    /// Puts one buffer on the control transmitq and spins until it is used.
    pub fn send_buffer(&mut self, addr: u64, len: u32, flags: u16) {
        self.control_tx.push(addr, len, flags);
        self.control_tx.publish();
        self.console.mmio.notify(CONTROL_TRANSMITQ);
        for _ in 0..100_000 {
            if self.control_tx.reclaim() != 0 {
                return;
            }
        }
        fail(b"ports: the device did not use a control message");
    }

    /// Takes one message from the control receiveq, if there is one, and
    /// posts its buffer again; returns its event.
    pub fn poll_control(&mut self) -> Option<u16> {
        let (slot, len) = self.control_rx.pop_used()?;
        let buf = control_buffer(slot) as usize;
        if len < 8 {
            fail(b"ports: a control message shorter than its header");
        }
        // SAFETY: the buffer is RAM of CONTROL_BUFFER_LEN bytes, `len` of
        // them written (the queue checked len against it).
        let (id, event, value, payload) = unsafe {
            (
                read_volatile(buf as *const u32),
                read_volatile((buf + 4) as *const u16),
                read_volatile((buf + 6) as *const u16),
                core::slice::from_raw_parts((buf + 8) as *const u8, len as usize - 8),
            )
        };
        let port = id as usize;
        let known = port < self.max_nr_ports as usize;
        match event {
            PORT_ADD if known => {
                self.state.added |= 1 << port;
                if self.answer_add {
                    self.send(id, PORT_READY, 1);
                }
            }
            CONSOLE_PORT if port == 0 && value == 1 => self.state.console_port = true,
            PORT_NAME if known => {
                let n = payload.len().min(NAME_MAX);
                self.state.names[port][..n].copy_from_slice(&payload[..n]);
                self.state.name_lens[port] = n;
            }
            PORT_OPEN if known && value == 1 => self.state.opens[port] += 1,
            PORT_OPEN if known && value == 0 => self.state.closes[port] += 1,
            RESIZE if port == 0 && payload.len() >= 4 => {
                // {cols, rows}, as Linux 6.12 reads it.
                self.state.size =
                    (u16::from_le_bytes([payload[0], payload[1]]), u16::from_le_bytes([payload[2], payload[3]]));
                self.state.resizes += 1;
            }
            _ => fail(b"ports: a control message this driver does not expect"),
        }
        let again = self.control_rx.push(control_buffer(slot), CONTROL_BUFFER_LEN, VIRTQ_DESC_F_WRITE);
        debug_assert_eq!(again, slot);
        self.control_rx.publish();
        self.console.mmio.notify(CONTROL_RECEIVEQ);
        Some(event)
    }

    /// Handles control messages until `done` says the state is reached,
    /// sleeping for the interrupt in between.
    pub fn wait(&mut self, done: impl Fn(&State) -> bool) {
        loop {
            while self.poll_control().is_some() {}
            if done(&self.state) {
                return;
            }
            self.console.wait_interrupt();
        }
    }

    /// DEVICE_READY, then messages until every port is added and named and
    /// port 0 is the console (with its size, if `sized`).
    pub fn bring_up(&mut self, sized: bool) {
        self.send(BAD_ID, DEVICE_READY, 1);
        let all = (1u32 << self.max_nr_ports) - 1;
        let max = self.max_nr_ports as usize;
        self.wait(|s| {
            s.added == all && s.console_port && (1..max).all(|p| s.name_lens[p] > 0) && (!sized || s.resizes > 0)
        });
    }

    /// Writes `len` bytes at `addr` to port `port` (1 or 2) and waits until
    /// the device used them.
    pub fn write_from(&mut self, port: usize, addr: u64, len: u32) {
        let q = &mut self.tx[port - 1];
        q.push(addr, len, 0);
        q.publish();
        self.console.mmio.notify(2 * port as u16 + 3);
        while self.tx[port - 1].reclaim() == 0 {
            self.console.wait_interrupt();
        }
    }

    /// Posts port `port`'s receive buffers.
    pub fn post_receive(&mut self, port: usize) {
        for i in 0..SIZE {
            let id = self.rx[port - 1].push(port_buffer(port, i), PORT_BUFFER_LEN, VIRTQ_DESC_F_WRITE);
            debug_assert_eq!(id, i);
        }
        self.rx[port - 1].publish();
        self.console.mmio.notify(2 * port as u16 + 2);
    }

    /// The next filled receive buffer of port `port`: its address and length.
    pub fn receive(&mut self, port: usize) -> Option<(u16, u64, u32)> {
        let (slot, len) = self.rx[port - 1].pop_used()?;
        Some((slot, port_buffer(port, slot), len))
    }

    /// Posts receive buffer `slot` of port `port` again.
    pub fn repost(&mut self, port: usize, slot: u16) {
        let again = self.rx[port - 1].push(port_buffer(port, slot), PORT_BUFFER_LEN, VIRTQ_DESC_F_WRITE);
        debug_assert_eq!(again, slot);
        self.rx[port - 1].publish();
        self.console.mmio.notify(2 * port as u16 + 2);
    }
}

fn control_buffer(slot: u16) -> u64 {
    (CONTROL_BUFFERS + usize::from(slot) * CONTROL_BUFFER_LEN as usize) as u64
}

fn port_buffer(port: usize, slot: u16) -> u64 {
    (PORT_BUFFERS + (port - 1) * 0x1_0000 + usize::from(slot) * PORT_BUFFER_LEN as usize) as u64
}
