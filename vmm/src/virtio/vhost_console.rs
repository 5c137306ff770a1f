//! The console with its queues processed in the kernel: /dev/vhost-console
//! from the vhost_console module, driven through rust-vmm's `vhost` crate
//! (`VhostKernBackend` gives the standard vhost ioctls) plus the device's one
//! ioctl, VHOST_CONSOLE_SET_BACKEND, which hands the kernel a queue's file.
//!
//! Notify path: the driver's QueueNotify write hits a KVM ioeventfd
//! (`on_mmio`), which the kernel worker polls; the vCPU never exits for it.
//! The kernel signals the call eventfd when it used buffers (the VMM's event
//! loop sets InterruptStatus and raises the line) and the err eventfd when it
//! stopped a queue (DEVICE_NEEDS_RESET).
//!
//! The kernel writes only to outputs that cannot block it for ever; for any
//! other (a terminal) it is handed a pipe that `Relay` copies to the output.
//! Input likewise: the kernel reads receiveq's bytes straight from a pipe, a
//! socket or a file; a terminal's bytes come through the VMM's event loop
//! (which watches for the escape) and a pipe.
//!
//! With `--port` (MULTIPORT) the control queues stay here, as vhost-net
//! leaves its control queue to QEMU: their QueueNotify exits to the VMM,
//! which runs the control protocol (`console::Ports`). Every port's data
//! queues are the kernel's, each with the client's socket (or the file)
//! attached; a client's connect and hang-up swap it (`Ports::take_swaps`).

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};

use kvm_ioctls::{IoEventAddress, VmFd};
use thiserror::Error;
use vhost::vhost_kern::vhost_binding::vhost_vring_file;
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::{ioctl::ioctl_with_ref, ioctl_iow_nr};

use super::console::KernelFiles;
use super::console::{
    self, Port, Ports, CONTROL_RECEIVEQ, CONTROL_TRANSMITQ, DEVICE_ID_CONSOLE, QUEUE_MAX_SIZE, RECEIVEQ_INDEX,
    TRANSMITQ_INDEX, VIRTIO_CONSOLE_F_EMERG_WRITE, VIRTIO_CONSOLE_F_MULTIPORT, VIRTIO_CONSOLE_F_SIZE,
};
use super::relay::Relay;
use super::vhost::{has_posted, poll_ready, worker_state, worker_wakeups, OpenError, QueueFds, VhostFile};
use super::{ActivateError, DeviceEvent, News, QueueError, QueueRun, VirtioDevice};
use crate::output::Output;
use crate::stats::Stats;
use crate::warn;

pub const DEVICE_PATH: &str = "/dev/vhost-console";
/// The longest busy-poll window the kernel accepts (µs).
pub const MAX_POLL_US: u32 = 1_000_000;
const VHOST_VIRTIO: u32 = 0xaf;
ioctl_iow_nr!(VHOST_CONSOLE_SET_BACKEND, VHOST_VIRTIO, 0x50, vhost_vring_file);
/// The worker's name (the vhost_task's comm).
const WORKER: &str = "vhost-console";

#[derive(Debug, Error)]
pub enum VhostError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot create an eventfd: {0}")]
    EventFd(std::io::Error),
    #[error("KVM: cannot register the QueueNotify ioeventfd: {0}")]
    IoEvent(kvm_ioctls::Error),
    #[error("cannot create the console input pipe: {0}")]
    Pipe(std::io::Error),
    #[error("{0}")]
    Ports(String),
}

/// Whether queue `index` is the kernel's: all but the control queues.
fn in_kernel(index: usize) -> bool {
    index != CONTROL_RECEIVEQ && index != CONTROL_TRANSMITQ
}

/// A pipe for relayed input: the read end for the kernel, the write end
/// non-blocking, so that a guest that takes nothing never stalls the VMM.
fn input_pipe() -> std::io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: a valid array for the two descriptors; the result is checked.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    let (reader, writer) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own; the result is checked.
    if unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((reader, writer))
}

/// Offset of QueueNotify in the virtio-mmio window.
const QUEUE_NOTIFY: u64 = virtio_bindings::virtio_mmio::VIRTIO_MMIO_QUEUE_NOTIFY as u64;

/// Where receiveq's bytes come from.
pub enum Input {
    None,
    /// A file the kernel reads itself (a pipe, a socket, a regular file).
    File(File),
    /// What the VMM hands over through `VirtioDevice::input`, by a pipe.
    Relayed,
}

pub struct VhostConsole {
    // First: dropped first, so the kernel lets go of the relay's pipe before
    // the relay waits for its end.
    backend: VhostFile,
    /// What the kernel offers; the device offers these plus EMERG_WRITE.
    kernel_features: u64,
    out: Output,
    /// The pipe to `out`, once the kernel refused `out` itself.
    relay: Option<Relay>,
    /// What the kernel reads for receiveq, and the write end of the pipe
    /// when the VMM relays the input.
    input: Option<File>,
    input_pipe: Option<File>,
    /// Which queues have a backend in the kernel now.
    attached: Vec<bool>,
    /// Which queues the kernel has, set up at DRIVER_OK (a port's client
    /// that comes later is attached to them).
    live: Vec<bool>,
    /// Per queue the kernel's (none for the control queues).
    kicks: Vec<Option<EventFd>>,
    /// Kicks counted so far (the kernel polls the eventfds but never reads
    /// them; a dump reads and adds them here).
    kicks_seen: u64,
    calls: Vec<Option<EventFd>>,
    err: EventFd,
    queue_sizes: Vec<u16>,
    /// VIRTIO_CONSOLE_F_SIZE is offered: the terminal's cols and rows.
    size: Option<(u16, u16)>,
    /// VIRTIO_CONSOLE_F_MULTIPORT is offered: the other ports.
    ports: Option<Ports>,
    /// The driver took VIRTIO_CONSOLE_F_MULTIPORT.
    multiport: bool,
    /// How long the kernel worker polls an empty queue before it sleeps (µs).
    poll_us: u32,
    /// The output's failure, once reported.
    failure_reported: bool,
}

impl VhostConsole {
    /// Opens the device and becomes its owner (the kernel starts the worker
    /// in this process). `out` receives the guest's bytes (the kernel writes
    /// to its file once started); `poll_us` is the worker's busy-poll window
    /// (VHOST_SET_VRING_BUSYLOOP_TIMEOUT).
    pub fn new(
        mem: &GuestMemoryMmap,
        out: Output,
        input: Input,
        poll_us: u32,
        (ports, size): (Vec<Port>, Option<(u16, u16)>),
    ) -> Result<Self, VhostError> {
        let (backend, kernel_features) = VhostFile::open(DEVICE_PATH, mem)?;
        let eventfd = || EventFd::new(EFD_NONBLOCK).map_err(VhostError::EventFd);
        let (input, input_pipe) = match input {
            Input::None => (None, None),
            Input::File(f) => (Some(f), None),
            Input::Relayed => {
                let (reader, writer) = input_pipe().map_err(VhostError::Pipe)?;
                (Some(reader), Some(writer))
            }
        };
        let ports = match ports.is_empty() {
            true => None,
            false => Some(Ports::new(ports, size).map_err(|e| VhostError::Ports(format!("console ports: {e}")))?),
        };
        // Queues 0/1, the control queues, then 2 per port (Linux init_vqs).
        let count = ports.as_ref().map_or(2, |p| 2 * (p.max_nr_ports() as usize + 1));
        let per_queue = || -> Result<Vec<Option<EventFd>>, VhostError> {
            (0..count).map(|i| in_kernel(i).then(eventfd).transpose()).collect()
        };
        let calls = per_queue()?;
        let mut ports = ports;
        if let Some(ports) = &mut ports {
            // Port i's receiveq call (queue 2i + 2) wakes the ports' watch.
            let wakes: Vec<RawFd> = calls.iter().skip(4).step_by(2).flatten().map(AsRawFd::as_raw_fd).collect();
            ports.in_kernel(&wakes).map_err(VhostError::Ports)?;
        }
        Ok(VhostConsole {
            backend,
            kernel_features,
            out,
            relay: None,
            input,
            input_pipe,
            attached: vec![false; count],
            live: vec![false; count],
            kicks: per_queue()?,
            kicks_seen: 0,
            calls,
            err: eventfd()?,
            queue_sizes: vec![QUEUE_MAX_SIZE; count],
            size,
            ports,
            multiport: false,
            poll_us,
            failure_reported: false,
        })
    }

    /// As `new`, for the register window at `base` of `vm`: each queue's
    /// QueueNotify write (datamatch: the queue index, as Firecracker does)
    /// becomes a kick of its eventfd in KVM, with no exit to the VMM.
    pub fn on_mmio(
        vm: &VmFd,
        mem: &GuestMemoryMmap,
        base: u64,
        out: Output,
        input: Input,
        poll_us: u32,
        extras: (Vec<Port>, Option<(u16, u16)>),
    ) -> Result<Self, VhostError> {
        let device = Self::new(mem, out, input, poll_us, extras)?;
        // The control queues' notifications exit to the VMM, which serves them.
        for (queue, kick) in device.kicks.iter().enumerate().filter_map(|(i, k)| Some((i, k.as_ref()?))) {
            let notify = IoEventAddress::Mmio(base + QUEUE_NOTIFY);
            vm.register_ioevent(kick, &notify, queue as u32).map_err(VhostError::IoEvent)?;
        }
        Ok(device)
    }

    /// VHOST_CONSOLE_SET_BACKEND for `queue`; fd -1 detaches.
    fn set_backend(&mut self, queue: usize, fd: RawFd) -> std::io::Result<()> {
        let file = vhost_vring_file { index: queue as u32, fd };
        // SAFETY: a valid vhost fd and a pointer to a live vhost_vring_file;
        // the return value is checked.
        match unsafe { ioctl_with_ref(&self.backend, VHOST_CONSOLE_SET_BACKEND(), &file) } {
            0 => {
                self.attached[queue] = fd >= 0;
                Ok(())
            }
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    /// Detaches every queue: the kernel stops processing them until the
    /// next activation.
    fn detach(&mut self) {
        for queue in 0..self.attached.len() {
            if self.attached[queue] {
                let _ = self.set_backend(queue, -1);
            }
        }
        self.live.fill(false);
    }

    /// Hands port `id`'s queues the kernel has the files `files` (receiveq's,
    /// transmitq's): a client's socket when one connects, none when it
    /// left (the kernel gives the chains it had not finished back to the
    /// ring, for the next client).
    fn attach_port(&mut self, id: usize, (rx, tx): KernelFiles) -> std::io::Result<()> {
        for (queue, fd) in [(2 * id + 2, rx), (2 * id + 3, tx)] {
            if !self.live.get(queue).copied().unwrap_or(false) {
                continue;
            }
            match fd {
                Some(fd) => self.set_backend(queue, fd)?,
                None if self.attached[queue] => self.set_backend(queue, -1)?,
                None => {}
            }
        }
        Ok(())
    }

    /// Attaches the output; one the kernel will not write to (EINVAL: it
    /// could block the worker) goes through a relay pipe.
    fn attach_output(&mut self) -> Result<(), ActivateError> {
        let failed = |e: std::io::Error| ActivateError::Vhost("VHOST_CONSOLE_SET_BACKEND", e.to_string());
        if self.relay.is_none() {
            let fd = self.out.file().map_or(-1, AsRawFd::as_raw_fd);
            match self.set_backend(TRANSMITQ_INDEX, fd) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.relay = Some(
                        Relay::new(self.out.clone()).map_err(|e| ActivateError::Output("start the output relay", e))?,
                    );
                }
                Err(e) => return Err(failed(e)),
            }
        }
        let fd = self.relay.as_ref().map_or(-1, Relay::fd);
        self.set_backend(TRANSMITQ_INDEX, fd).map_err(failed)
    }

    /// Attaches the input, if there is one. A file the kernel will not read
    /// (EINVAL: it could block the worker) leaves the guest without input,
    /// with a warning, as a console with nothing behind it.
    fn attach_input(&mut self) -> Result<(), ActivateError> {
        let Some(fd) = self.input.as_ref().map(AsRawFd::as_raw_fd) else { return Ok(()) };
        match self.set_backend(RECEIVEQ_INDEX, fd) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                warn!("vhost: the kernel will not read this input without blocking (a terminal?); no console input");
                self.input = None;
                Ok(())
            }
            Err(e) => Err(ActivateError::Vhost("VHOST_CONSOLE_SET_BACKEND", e.to_string())),
        }
    }

    /// Whether the kernel has read all the input there will be: a regular
    /// file to its end (the kernel moves the file position this process
    /// shares), a pipe or socket empty with its writer gone.
    fn input_consumed(&self) -> bool {
        let Some(input) = &self.input else { return true };
        let fd = input.as_raw_fd();
        if let Ok(meta) = input.metadata() {
            if meta.is_file() {
                // SAFETY: lseek on a descriptor we own, moving nothing.
                let pos = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
                return pos >= 0 && pos as u64 >= meta.len();
            }
        }
        let mut unread: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through a live pointer.
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut unread) } != 0 || unread != 0 {
            return false;
        }
        // The relayed pipe's writer is ours: the VMM's input ended (the VM
        // knows that) and what it wrote has been read.
        self.input_pipe.is_some() || poll_ready(fd, libc::POLLHUP | libc::POLLRDHUP)
    }
}

impl VirtioDevice for VhostConsole {
    fn name(&self) -> &'static str {
        "console"
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID_CONSOLE
    }

    fn features(&self) -> u64 {
        // The configuration space stays in userspace, and with it emerg_wr,
        // the size, and the ports' control queues.
        let mut features = self.kernel_features | VIRTIO_CONSOLE_F_EMERG_WRITE;
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
        let config = console::config(self.size, self.ports.as_ref().map_or(0, Ports::max_nr_ports));
        console::read_config_of(config, offset, data)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> bool {
        let Some(byte) = console::emergency_byte(offset, data) else { return false };
        // Behind the kernel's bytes if they go through the relay; never
        // waiting (a byte that finds no room is lost, and reported).
        match &mut self.relay {
            Some(relay) => {
                if relay.write_nowait(&[byte]) == 0 {
                    self.out.lose(1);
                }
            }
            None => self.out.push_or_lose(&[byte]),
        }
        true
    }

    /// Hands the negotiated queues to the kernel (at DRIVER_OK).
    fn activate(&mut self, mem: &GuestMemoryMmap, queues: &[Queue], features: u64) -> Result<(), ActivateError> {
        self.backend.set_memory(mem, features & self.kernel_features)?;
        for (i, queue) in queues.iter().enumerate().filter(|&(i, q)| q.ready() && in_kernel(i)) {
            let (Some(call), Some(kick)) = (&self.calls[i], &self.kicks[i]) else { continue };
            self.backend.set_queue(i, queue, QueueFds { kick, call, err: &self.err }, self.poll_us)?;
            self.live[i] = true;
        }
        // A driver may leave a queue it does not use unconfigured (§4.2.3.2):
        // the kernel gets only the queues the driver enabled.
        if queues.get(RECEIVEQ_INDEX).is_some_and(|q| q.ready()) {
            self.attach_input()?;
        }
        if queues.get(TRANSMITQ_INDEX).is_some_and(|q| q.ready()) {
            self.attach_output()?;
        }
        self.multiport = features & VIRTIO_CONSOLE_F_MULTIPORT != 0;
        let Some(ports) = &mut self.ports else { return Ok(()) };
        ports.set_size_acked(features & VIRTIO_CONSOLE_F_SIZE != 0);
        if !self.multiport {
            return Ok(());
        }
        let files: Vec<_> = (1..ports.max_nr_ports() as usize).map(|id| (id, ports.kernel_files(id))).collect();
        for (id, files) in files {
            self.attach_port(id, files)
                .map_err(|e| ActivateError::Vhost("VHOST_CONSOLE_SET_BACKEND", format!("port {id}: {e}")))?;
        }
        Ok(())
    }

    fn process_queue(
        &mut self,
        index: usize,
        queue: &mut Queue,
        mem: &GuestMemoryMmap,
    ) -> Result<QueueRun, QueueError> {
        // The control queues; the others' notifications go to the kernel
        // through the ioeventfds.
        match &mut self.ports {
            Some(ports) if self.multiport && !in_kernel(index) => ports.process(index, queue, mem),
            _ => Ok(QueueRun::default()),
        }
    }

    fn queue_disabled(&mut self, index: usize) {
        // The kernel must stop touching the ring (§4.2.2.1): without a
        // backend its worker leaves the queue alone.
        if self.attached[index] {
            let _ = self.set_backend(index, -1);
        }
        self.live[index] = false;
    }

    fn stopped(&mut self) {
        // DEVICE_NEEDS_RESET stops the kernel's side too, as QueueReady = 0
        // does: no more buffers consumed, no more interrupts; a client that
        // connects now is not attached.
        self.detach();
    }

    fn resize(&mut self, cols: u16, rows: u16) -> News {
        console::resize(&mut self.size, self.ports.as_mut(), self.multiport, (cols, rows))
    }

    /// Relayed input (a terminal's): into the pipe the kernel reads, as much
    /// as it has room for; the event loop retries the rest.
    fn input(&mut self, bytes: &[u8]) -> usize {
        match &mut self.input_pipe {
            Some(pipe) => pipe.write(bytes).unwrap_or(0),
            None => bytes.len(),
        }
    }

    fn events(&self) -> Vec<DeviceEvent> {
        let mut events: Vec<DeviceEvent> =
            self.calls.iter().flatten().map(|c| DeviceEvent::Used(c.as_raw_fd())).collect();
        events.push(DeviceEvent::News(self.err.as_raw_fd()));
        events.push(DeviceEvent::News(self.out.room_fd()));
        if let Some(ports) = &self.ports {
            events.extend(ports.events());
        }
        events
    }

    fn poll_news(&mut self) -> News {
        self.out.clear_room();
        let mut news = self.ports.as_mut().map_or_else(News::default, Ports::poll);
        if !self.multiport {
            news.queues = 0;
        }
        let swaps = self.ports.as_mut().map_or_else(Vec::new, Ports::take_swaps);
        for (id, files) in swaps {
            if let Err(e) = self.attach_port(id, files) {
                warn!("vhost: port {id}: the kernel refused the client's socket ({e}); the port stays without it");
            }
        }
        if self.err.read().is_ok() {
            news.needs_reset = Some("vhost: the kernel stopped a queue (its log says why)".into());
        }
        if let Some(why) = self.out.failure().filter(|_| !self.failure_reported) {
            self.failure_reported = true;
            news.fatal = Some(why);
        }
        news
    }

    fn idle(&self, mem: &GuestMemoryMmap, queues: &[Queue]) -> bool {
        let transmit_done = !self.attached[TRANSMITQ_INDEX] || !has_posted(mem, &queues[TRANSMITQ_INDEX]);
        // Input the guest has no buffer for waits for ever, as in the
        // VMM's own device.
        let receive_done =
            !self.attached[RECEIVEQ_INDEX] || self.input_consumed() || !has_posted(mem, &queues[RECEIVEQ_INDEX]);
        let calls_pending = self.calls.iter().flatten().any(|c| poll_ready(c.as_raw_fd(), libc::POLLIN));
        transmit_done && receive_done && !calls_pending && self.ports.as_ref().is_none_or(Ports::idle)
    }

    fn dump(&mut self) -> Vec<String> {
        self.kicks_seen += self.kicks.iter().flatten().map(|k| k.read().unwrap_or(0)).sum::<u64>();
        let pending: Vec<bool> =
            self.calls.iter().map(|c| c.as_ref().is_some_and(|c| poll_ready(c.as_raw_fd(), libc::POLLIN))).collect();
        let mut lines = vec![
            format!(
                "vhost: backends attached: receiveq {}, transmitq {}; ioeventfd kicks so far {}; call eventfd pending: receiveq {}, transmitq {}; err pending {}",
                self.attached[RECEIVEQ_INDEX],
                self.attached[TRANSMITQ_INDEX],
                self.kicks_seen,
                pending[RECEIVEQ_INDEX],
                pending[TRANSMITQ_INDEX],
                poll_ready(self.err.as_raw_fd(), libc::POLLIN),
            ),
            format!("vhost: worker {}", worker_state(WORKER).unwrap_or_else(|| "not found".into())),
        ];
        if let Some(ports) = &self.ports {
            let attached: Vec<String> = (4..self.attached.len())
                .filter(|&q| self.attached[q])
                .map(|q| format!("{} {}", if q % 2 == 0 { "receiveq" } else { "transmitq" }, q / 2 - 1))
                .collect();
            lines.push(format!(
                "vhost: port queues attached: {}",
                if attached.is_empty() { "none".into() } else { attached.join(", ") }
            ));
            lines.extend(ports.dump());
        }
        lines
    }

    fn add_stats(&mut self, stats: &mut Stats) {
        self.kicks_seen += self.kicks.iter().flatten().map(|k| k.read().unwrap_or(0)).sum::<u64>();
        *stats.ioeventfd_notifications.get_or_insert(0) += self.kicks_seen;
        stats.worker_wakeups = worker_wakeups(WORKER);
    }

    fn wind_down(&mut self, until: std::time::Instant) -> bool {
        // The kernel lets go of the relay's pipe when its backend is
        // detached; then the relay sees the end of it.
        self.detach();
        let ports_drained = self.ports.as_mut().is_none_or(|p| p.wind_down(until));
        let relay_drained = match &mut self.relay {
            Some(relay) => {
                relay.close();
                relay.wait(until)
            }
            None => true,
        };
        ports_drained && relay_drained
    }

    fn abandon(&mut self) {
        // The relay's thread stops waiting for room and ends.
        self.out.abandon();
        if let Some(ports) = &mut self.ports {
            ports.abandon();
        }
    }

    fn reset(&mut self) {
        self.detach();
        self.multiport = false;
        if let Some(ports) = &mut self.ports {
            ports.reset();
        }
        // An error the kernel reported before the reset is the old device's:
        // after a reset, Status must read 0 (§2.4), not DEVICE_NEEDS_RESET.
        let _ = self.err.read();
    }
}
