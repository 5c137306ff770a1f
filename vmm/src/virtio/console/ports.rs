//! The MULTIPORT half of the console (VirtIO 1.2 §5.3.6.2), offered only
//! when `--port` names ports: the ports, the control protocol as Linux's
//! virtio_console drives it, and the epoll instance their host sides are
//! watched with.
//!
//! Queues: 0/1 port 0 (the console, in `Console`), 2/3 the control
//! receiveq/transmitq, 2i+2/2i+3 port i. The protocol: the driver's
//! DEVICE_READY(1) brings a PORT_ADD per port; its PORT_READY(i, 1)
//! brings CONSOLE_PORT (and RESIZE) for port 0, PORT_NAME for the others,
//! and PORT_OPEN(i, 1) if the host side is open; the host's connects and
//! disconnects bring PORT_OPEN(i, 1/0) to a ready port; the driver's
//! PORT_OPEN(i, 1/0) is a process in the guest opening or closing it (one
//! line on stderr each). What the driver sends that makes no sense (a port
//! that does not exist, an event only a device sends, the console port
//! opened as a generic one) is one line and ignored: the device's state
//! is not harmed by it, so it goes on (§2.1.2 keeps DEVICE_NEEDS_RESET for
//! errors the device cannot recover from).
//!
//! In vhost mode (`in_kernel`) the ports' data queues are the kernel's:
//! `Ports` keeps the control queues and the host sides, and reports each
//! port whose connection came or went (`take_swaps`) for the vhost console
//! to hand the kernel the new socket, or none.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::control::{
    self, encode, event_name, Message, ToDriver, CONSOLE_PORT, DEVICE_READY, PORT_ADD, PORT_NAME, PORT_OPEN,
    PORT_READY, RESIZE,
};
use super::link::{Changes, KernelFiles, PortSink, Watch};
use super::port::Port;
use crate::virtio::chain::Buffer;
use crate::virtio::{DeviceEvent, News, QueueError, QueueRun};
use crate::warn;

pub const CONTROL_RECEIVEQ: usize = 2;
pub const CONTROL_TRANSMITQ: usize = 3;
/// vhost mode: the watch token of port i + 1's receiveq call eventfd is
/// WAKE_TOKEN + i, above every link's (`link::token`).
const WAKE_TOKEN: u64 = 1 << 32;

pub struct Ports {
    /// Ports 1 to n.
    ports: Vec<Port>,
    to_driver: ToDriver,
    buffers: Vec<Buffer>,
    watch: Watch,
    /// Written when messages wait for the driver: the event loop runs the
    /// control receiveq (the control transmitq's run cannot).
    notice: EventFd,
    /// The console's size, if VIRTIO_CONSOLE_F_SIZE is offered.
    size: Option<(u16, u16)>,
    /// The driver took VIRTIO_CONSOLE_F_SIZE.
    size_acked: bool,
    /// The driver said PORT_READY for port 0.
    console_ready: bool,
    events: Vec<libc::epoll_event>,
    /// vhost mode: the kernel moves the ports' bytes.
    kernel: bool,
    /// vhost mode: ports whose connection came or went since `take_swaps`.
    swaps: Vec<usize>,
}

impl Ports {
    /// The ports (ids 1, 2, ... in this order), their host sides watched
    /// from now on.
    pub fn new(mut ports: Vec<Port>, size: Option<(u16, u16)>) -> io::Result<Self> {
        let watch = Watch::new()?;
        for (i, port) in ports.iter_mut().enumerate() {
            let room = port.rx.room();
            port.link.start(&watch, i + 1, room)?;
        }
        Ok(Ports {
            ports,
            to_driver: ToDriver::default(),
            buffers: Vec::new(),
            watch,
            notice: EventFd::new(EFD_NONBLOCK)?,
            size,
            size_acked: false,
            console_ready: false,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 16],
            kernel: false,
            swaps: Vec::new(),
        })
    }

    /// vhost mode: the kernel moves every port's bytes; `wakes[i]` is port
    /// i + 1's receiveq call eventfd, which the kernel also signals when it
    /// has read the end of a client's input: a client that hung up is done
    /// with then.
    pub fn in_kernel(&mut self, wakes: &[RawFd]) -> Result<(), String> {
        self.kernel = true;
        for (i, (port, &wake)) in self.ports.iter_mut().zip(wakes).enumerate() {
            port.link.in_kernel().map_err(|e| format!("--port {}: {e}", port.name))?;
            // Tokens from 2 * (MAX_PORTS + 1) up: no link's.
            self.watch
                .add(wake, libc::EPOLLIN as u32, WAKE_TOKEN + i as u64)
                .map_err(|e| format!("console: cannot watch port {}'s calls: {e}", i + 1))?;
        }
        Ok(())
    }

    /// vhost mode: the ports whose connection came or went, with the files
    /// the kernel is to read and write for each now.
    pub fn take_swaps(&mut self) -> Vec<(usize, KernelFiles)> {
        let swaps = std::mem::take(&mut self.swaps);
        swaps.into_iter().map(|id| (id, self.ports[id - 1].link.kernel_files())).collect()
    }

    /// vhost mode: the files the kernel is to read and write for port
    /// `id` (1 and up).
    pub fn kernel_files(&self, id: usize) -> KernelFiles {
        self.ports.get(id.wrapping_sub(1)).map_or((None, None), |p| p.link.kernel_files())
    }

    /// max_nr_ports: the console and the `--port`s.
    pub fn max_nr_ports(&self) -> u32 {
        self.ports.len() as u32 + 1
    }

    pub fn set_size_acked(&mut self, acked: bool) {
        self.size_acked = acked;
    }

    fn push(&mut self, id: u32, event: u16, value: u16, payload: &[u8]) {
        self.to_driver.push(encode(id, event, value, payload));
        let _ = self.notice.write(1);
    }

    fn push_resize(&mut self) {
        if let Some((cols, rows)) = self.size.filter(|_| self.size_acked && self.console_ready) {
            // Linux 6.12's handle_control_message reads {cols, rows}.
            let mut payload = cols.to_le_bytes().to_vec();
            payload.extend_from_slice(&rows.to_le_bytes());
            self.push(0, RESIZE, 0, &payload);
        }
    }

    /// Runs queue `index` (2 and up).
    pub fn process(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<QueueRun, QueueError> {
        match index {
            CONTROL_RECEIVEQ => self.to_driver.process(queue, mem),
            CONTROL_TRANSMITQ => {
                let mut messages = Vec::new();
                let run = control::from_driver(queue, mem, &mut self.buffers, |m| messages.push(m))?;
                for m in messages {
                    self.handle(m);
                }
                Ok(run)
            }
            // The kernel's, in vhost mode.
            _ if self.kernel => Ok(QueueRun::default()),
            _ => {
                let id = index / 2 - 1;
                let Some(port) = self.ports.get_mut(id - 1) else { return Ok(QueueRun::default()) };
                if index.is_multiple_of(2) {
                    let run = port.rx.process(queue, mem)?;
                    port.link.sync(&self.watch, id, port.rx.room());
                    Ok(run)
                } else {
                    let run = port.tx.process(queue, mem, &mut PortSink(&mut port.link))?;
                    port.link.send(&self.watch, id, port.rx.room());
                    Ok(run)
                }
            }
        }
    }

    /// One message from the driver.
    fn handle(&mut self, m: Message) {
        let count = self.max_nr_ports();
        match m.event {
            DEVICE_READY if m.value == 0 => {
                warn!("console: the driver could not set up its ports (DEVICE_READY 0); no port is added")
            }
            DEVICE_READY => {
                for id in 0..count {
                    self.push(id, PORT_ADD, 0, &[]);
                }
            }
            PORT_READY | PORT_OPEN if m.id >= count => warn!(
                "console: {} for port {}, which does not exist (the device has {count}); ignored",
                event_name(m.event),
                m.id
            ),
            PORT_READY if m.value == 0 => warn!("console: the driver could not add port {}", m.id),
            PORT_READY if m.id == 0 => {
                self.console_ready = true;
                self.push(0, CONSOLE_PORT, 1, &[]);
                self.push_resize();
                self.push(0, PORT_OPEN, 1, &[]);
            }
            PORT_READY => {
                let id = m.id;
                let port = &mut self.ports[id as usize - 1];
                port.ready = true;
                let (name, open) = (port.name.clone(), port.link.host_connected());
                self.push(id, PORT_NAME, 1, name.as_bytes());
                if open {
                    self.push(id, PORT_OPEN, 1, &[]);
                }
            }
            // Linux's init_port_console opens port 0 once it is the console
            // (hvc0); before that it is no port to open.
            PORT_OPEN if m.id == 0 && self.console_ready => {}
            PORT_OPEN if m.id == 0 => {
                warn!("console: PORT_OPEN for port 0, the console port, before the device announced it; ignored")
            }
            PORT_OPEN => {
                let port = &mut self.ports[m.id as usize - 1];
                port.guest_open = m.value != 0;
                // In the warnings' budget: a driver that opens and closes
                // in a loop must not flood the host's log.
                crate::warning(format_args!(
                    "=== port {} ({}): guest {} ===",
                    m.id,
                    port.name,
                    if port.guest_open { "opened" } else { "closed" }
                ));
            }
            other => warn!(
                "console: control event {other} ({}) for port {} is not one a driver sends; ignored",
                event_name(other),
                m.id
            ),
        }
    }

    /// What happened on the host sides, and what waits for the driver.
    pub fn poll(&mut self) -> News {
        let mut news = News { ready: true, ..News::default() };
        let _ = self.notice.read();
        let n = self.watch.ready(&mut self.events);
        for i in 0..n {
            let token = self.events[i].u64;
            if token >= WAKE_TOKEN {
                // The kernel used receive buffers: `settle` below looks.
                continue;
            }
            let (id, conn) = ((token / 2) as usize, token % 2 == 1);
            let Some(port) = id.checked_sub(1).and_then(|p| self.ports.get_mut(p)) else { continue };
            let changes = port.link.ready(&self.watch, id, conn, &mut port.rx);
            self.changed(id, changes);
            if changes.input {
                news.queues |= 1 << (2 * id + 2);
            }
        }
        // vhost mode: clients that hung up, once the kernel read what they left.
        for id in 1..=self.ports.len() {
            let link = &mut self.ports[id - 1].link;
            if link.closing && link.settle() {
                link.disconnect(&self.watch, id);
                self.changed(id, Changes { disconnected: true, ..Changes::default() });
            }
        }
        for port in &mut self.ports {
            let Some(out) = port.link.output() else { continue };
            out.clear_room();
            if let Some(why) = out.failure().filter(|_| !port.failure_reported) {
                port.failure_reported = true;
                news.fatal = Some(why);
            }
        }
        if !self.to_driver.is_empty() {
            news.queues |= 1 << CONTROL_RECEIVEQ;
        }
        news
    }

    /// A port's host side connected or disconnected: the driver is told,
    /// if it has the port ready; in vhost mode, the kernel is too.
    fn changed(&mut self, id: usize, changes: Changes) {
        if !(changes.connected || changes.disconnected) {
            return;
        }
        if self.ports[id - 1].ready {
            self.push(id as u32, PORT_OPEN, u16::from(changes.connected), &[]);
        }
        if self.kernel && !self.swaps.contains(&id) {
            self.swaps.push(id);
        }
    }

    /// The host's terminal changed size: a RESIZE for port 0, if the driver
    /// has it ready and took VIRTIO_CONSOLE_F_SIZE.
    pub fn resize(&mut self, cols: u16, rows: u16) -> News {
        self.size = Some((cols, rows));
        self.push_resize();
        let queues = if self.to_driver.is_empty() { 0 } else { 1 << CONTROL_RECEIVEQ };
        News { queues, ..News::default() }
    }

    /// The driver reset the device: it knows of no port any more. The host
    /// sides stay as they are, and what the host sent stays held.
    pub fn reset(&mut self) {
        self.to_driver.clear();
        self.console_ready = false;
        self.size_acked = false;
        for port in &mut self.ports {
            port.ready = false;
            port.guest_open = false;
            port.tx.forget();
        }
    }

    pub fn queue_disabled(&mut self, index: usize) {
        if index > CONTROL_TRANSMITQ && index % 2 == 1 {
            if let Some(port) = self.ports.get_mut(index / 2 - 2) {
                port.tx.forget();
            }
        }
    }

    pub fn events(&self) -> Vec<DeviceEvent> {
        let mut events = vec![DeviceEvent::News(self.watch.fd()), DeviceEvent::News(self.notice.as_raw_fd())];
        events.extend(self.ports.iter().filter_map(|p| p.link.output()).map(|o| DeviceEvent::News(o.room_fd())));
        events
    }

    /// Whether nothing can bring the guest anything any more: no message
    /// on its way to the driver (the event loop delivers them), no host
    /// side that can send.
    pub fn idle(&self) -> bool {
        self.to_driver.is_empty() && self.ports.iter().all(|p| !p.link.has_input())
    }

    pub fn dump(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "ports: {} (console port {}), {} control messages waiting for the driver",
            self.max_nr_ports(),
            if self.console_ready { "ready" } else { "not ready" },
            self.to_driver.len()
        )];
        for (i, p) in self.ports.iter().enumerate() {
            lines.push(format!(
                "port {} ({}): {}, {}{}, {} bytes to the host, {} from it ({} held), {} waiting for the host, {} dropped",
                i + 1,
                p.name,
                p.link.describe(),
                if p.ready { "ready" } else { "not ready" },
                if p.guest_open { ", open in the guest" } else { "" },
                p.tx.bytes,
                p.rx.bytes,
                p.rx.held(),
                p.link.pending(),
                p.link.dropped
            ));
        }
        lines
    }

    /// Sends what the ports' clients have not taken yet, until `until`.
    pub fn wind_down(&mut self, until: std::time::Instant) -> bool {
        loop {
            // Every link gets its turn, whatever the ones before it did.
            let mut drained = true;
            for port in &mut self.ports {
                drained &= port.link.drain();
            }
            if drained {
                return true;
            }
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    pub fn abandon(&mut self) {
        for port in &mut self.ports {
            port.link.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::control::{PORT_ADD, TO_DRIVER_MAX};
    use super::super::link::Link;
    use super::*;
    use crate::output::Output;

    fn ports() -> Ports {
        let port = |name: &str| Port::new(name.into(), Link::file(Output::new(name, 1024).unwrap()));
        let mut p = Ports::new(vec![port("a"), port("b")], Some((100, 40))).unwrap();
        p.set_size_acked(true);
        p
    }

    fn message(id: u32, event: u16, value: u16) -> Message {
        Message { id, event, value }
    }

    #[test]
    fn messages_come_in_the_order_linux_expects() {
        let mut p = ports();
        p.handle(message(!0, DEVICE_READY, 1));
        let added: Vec<_> = (0..3).map(|id| encode(id, PORT_ADD, 0, &[])).collect();
        assert_eq!(p.to_driver.take_all(), added);
        p.handle(message(0, PORT_READY, 1));
        assert_eq!(
            p.to_driver.take_all(),
            [
                encode(0, CONSOLE_PORT, 1, &[]),
                encode(0, RESIZE, 0, &[100, 0, 40, 0]), // cols, rows
                encode(0, PORT_OPEN, 1, &[]),
            ]
        );
        p.handle(message(2, PORT_READY, 1));
        assert_eq!(p.to_driver.take_all(), [encode(2, PORT_NAME, 1, b"b"), encode(2, PORT_OPEN, 1, &[])]);
        let news = p.resize(120, 50);
        assert_eq!(news.queues, 1 << CONTROL_RECEIVEQ);
        assert_eq!(p.to_driver.take_all(), [encode(0, RESIZE, 0, &[120, 0, 50, 0])]);
        p.handle(message(2, PORT_OPEN, 1));
        assert!(p.ports[1].guest_open);
        assert!(p.to_driver.is_empty(), "a guest's open is not answered");
    }

    #[test]
    fn what_waits_for_the_driver_is_bounded_and_goes_with_a_reset() {
        let mut p = ports();
        p.handle(message(!0, DEVICE_READY, 1));
        for _ in 0..1000 {
            p.handle(message(1, PORT_READY, 1));
        }
        assert_eq!(p.to_driver.len(), TO_DRIVER_MAX);
        assert!(!p.idle(), "messages on their way to the driver can wake it");
        p.reset();
        assert!(p.to_driver.is_empty() && !p.console_ready && !p.ports[0].ready);
        assert!(p.idle(), "file ports send the guest nothing");
        // Before the driver took F_SIZE (after the reset) a resize sends nothing.
        p.handle(message(0, PORT_READY, 1));
        p.to_driver.take_all();
        assert_eq!(p.resize(1, 2).queues, 0);
    }
}
