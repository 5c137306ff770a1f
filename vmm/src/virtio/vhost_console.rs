//! The console with its queues processed in the kernel: /dev/vhost-console
//! from the vhost_console module, driven through rust-vmm's `vhost` crate
//! (`VhostKernBackend` gives the standard vhost ioctls) plus the device's one
//! ioctl, VHOST_CONSOLE_SET_BACKEND, which hands the kernel the output file.
//!
//! Notify path: the driver's QueueNotify write hits a KVM ioeventfd (see
//! vm.rs), which the kernel worker polls; the vCPU never exits for it. The
//! kernel signals the call eventfd when it used buffers, and the err eventfd
//! when it stopped a queue, which the transport turns into
//! DEVICE_NEEDS_RESET. The bare-metal VM has no interrupt controller to hand
//! the call eventfd to: it reads both when its guest sleeps in HLT, and
//! injects the interrupt itself.
//!
//! The kernel writes only to outputs that cannot block it for ever; for any
//! other (a terminal) it is handed a pipe that `Relay` copies to the output.
//! Input likewise: the kernel reads receiveq's bytes straight from a pipe, a
//! socket or a file; a terminal's bytes come through the VMM's input thread
//! (which watches for the escape) and a pipe.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::Arc;

use kvm_ioctls::{IoEventAddress, VmFd};
use thiserror::Error;
use vhost::vhost_kern::vhost_binding::{vhost_vring_file, vhost_vring_state};
use vhost::vhost_kern::VhostKernBackend;
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::{ioctl::ioctl_with_ref, ioctl_iow_nr};

use super::console::{
    self, DEVICE_ID_CONSOLE, QUEUE_MAX_SIZE, RECEIVEQ_INDEX, TRANSMITQ_INDEX, VIRTIO_CONSOLE_F_EMERG_WRITE,
};
use super::relay::Relay;
use super::{ActivateError, QueueError, QueueRun, VirtioDevice};
use crate::stats::Stats;
use crate::warn;

pub const DEVICE_PATH: &str = "/dev/vhost-console";
/// The longest busy-poll window the kernel accepts (µs).
pub const MAX_POLL_US: u32 = 1_000_000;
const VHOST_VIRTIO: u32 = 0xaf;
ioctl_iow_nr!(VHOST_CONSOLE_SET_BACKEND, VHOST_VIRTIO, 0x50, vhost_vring_file);
// Standard vhost ioctl that the `vhost` crate does not wrap.
ioctl_iow_nr!(VHOST_SET_VRING_BUSYLOOP_TIMEOUT, VHOST_VIRTIO, 0x23, vhost_vring_state);

#[derive(Debug, Error)]
pub enum VhostError {
    #[error("cannot open {DEVICE_PATH}: {0} (is the vhost_console module loaded?)")]
    Open(std::io::Error),
    #[error("{DEVICE_PATH}: {0} failed: {1}")]
    Ioctl(&'static str, vhost::Error),
    #[error("cannot create an eventfd: {0}")]
    EventFd(std::io::Error),
    #[error("KVM: cannot register the QueueNotify ioeventfd: {0}")]
    IoEvent(kvm_ioctls::Error),
    #[error("cannot create the console input pipe: {0}")]
    Pipe(std::io::Error),
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

/// The open /dev/vhost-console, as the `vhost` crate sees it.
struct Backend {
    file: File,
    mem: Arc<GuestMemoryMmap>,
}

impl AsRawFd for Backend {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl VhostKernBackend for Backend {
    type AS = Arc<GuestMemoryMmap>;

    fn mem(&self) -> &Self::AS {
        &self.mem
    }
}

pub struct VhostConsole {
    // First: dropped first, so the kernel lets go of the relay's pipe before
    // the relay waits for its end.
    backend: Backend,
    /// What the kernel offers; the device offers these plus EMERG_WRITE.
    kernel_features: u64,
    out: File,
    /// The pipe to `out`, once the kernel refused `out` itself.
    relay: Option<Relay>,
    /// What the kernel reads for receiveq, and the write end of the pipe
    /// when the VMM relays the input.
    input: Option<File>,
    input_pipe: Option<File>,
    kicks: [EventFd; 2],
    calls: [EventFd; 2],
    err: EventFd,
    /// How long the kernel worker polls an empty queue before it sleeps (µs).
    poll_us: u32,
    /// Used-buffer notifications the kernel signalled, for statistics.
    pub calls_seen: u64,
}

impl VhostConsole {
    /// Opens the device and becomes its owner (the kernel starts the worker
    /// in this process). `out` receives the guest's bytes; `poll_us` is the
    /// worker's busy-poll window (VHOST_SET_VRING_BUSYLOOP_TIMEOUT).
    pub fn new(mem: &GuestMemoryMmap, out: File, input: Input, poll_us: u32) -> Result<Self, VhostError> {
        let file = OpenOptions::new().read(true).write(true).open(DEVICE_PATH).map_err(VhostError::Open)?;
        let backend = Backend { file, mem: Arc::new(mem.clone()) };
        backend.set_owner().map_err(|e| VhostError::Ioctl("VHOST_SET_OWNER", e))?;
        let kernel_features = backend.get_features().map_err(|e| VhostError::Ioctl("VHOST_GET_FEATURES", e))?;
        let eventfd = || EventFd::new(EFD_NONBLOCK).map_err(VhostError::EventFd);
        let (input, input_pipe) = match input {
            Input::None => (None, None),
            Input::File(f) => (Some(f), None),
            Input::Relayed => {
                let (reader, writer) = input_pipe().map_err(VhostError::Pipe)?;
                (Some(reader), Some(writer))
            }
        };
        Ok(VhostConsole {
            backend,
            kernel_features,
            out,
            relay: None,
            input,
            input_pipe,
            kicks: [eventfd()?, eventfd()?],
            calls: [eventfd()?, eventfd()?],
            err: eventfd()?,
            poll_us,
            calls_seen: 0,
        })
    }

    /// As `new`, for the register window at `base` of `vm`: each queue's
    /// QueueNotify write (datamatch: the queue index, as Firecracker does)
    /// becomes a kick of its eventfd in KVM, with no exit to the VMM.
    pub fn on_mmio(
        vm: &VmFd,
        mem: &GuestMemoryMmap,
        base: u64,
        out: File,
        input: Input,
        poll_us: u32,
    ) -> Result<Self, VhostError> {
        let device = Self::new(mem, out, input, poll_us)?;
        for (queue, kick) in device.kicks.iter().enumerate() {
            let notify = IoEventAddress::Mmio(base + QUEUE_NOTIFY);
            vm.register_ioevent(kick, &notify, queue as u32).map_err(VhostError::IoEvent)?;
        }
        Ok(device)
    }

    /// Collects the calls signalled since the last look.
    pub fn count_calls(&mut self) -> u64 {
        for call in &self.calls {
            self.calls_seen += call.read().unwrap_or(0);
        }
        self.calls_seen
    }

    fn ioctl<T>(what: &'static str, r: vhost::Result<T>) -> Result<T, ActivateError> {
        r.map_err(|e| ActivateError::Vhost(what, e.to_string()))
    }

    /// VHOST_CONSOLE_SET_BACKEND for `queue`; fd -1 detaches.
    fn set_backend(&self, queue: usize, fd: RawFd) -> std::io::Result<()> {
        let file = vhost_vring_file { index: queue as u32, fd };
        // SAFETY: a valid vhost fd and a pointer to a live vhost_vring_file;
        // the return value is checked.
        match unsafe { ioctl_with_ref(&self.backend, VHOST_CONSOLE_SET_BACKEND(), &file) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    /// Attaches the output; one the kernel will not write to (EINVAL: it
    /// could block the worker) goes through a relay pipe.
    fn attach_output(&mut self) -> Result<(), ActivateError> {
        let failed = |e: std::io::Error| ActivateError::Vhost("VHOST_CONSOLE_SET_BACKEND", e.to_string());
        if self.relay.is_none() {
            match self.set_backend(TRANSMITQ_INDEX, self.out.as_raw_fd()) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    let out = self.out.try_clone().map_err(|e| ActivateError::Output("share the output", e))?;
                    self.relay = Some(Relay::new(out).map_err(|e| ActivateError::Output("start the output relay", e))?);
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
    fn attach_input(&self) -> Result<(), ActivateError> {
        let Some(input) = &self.input else { return Ok(()) };
        match self.set_backend(RECEIVEQ_INDEX, input.as_raw_fd()) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                warn!("vhost: the kernel will not read this input without blocking (a terminal?); no console input");
                Ok(())
            }
            Err(e) => Err(ActivateError::Vhost("VHOST_CONSOLE_SET_BACKEND", e.to_string())),
        }
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
        // The configuration space stays in userspace, and with it emerg_wr.
        self.kernel_features | VIRTIO_CONSOLE_F_EMERG_WRITE
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_MAX_SIZE, QUEUE_MAX_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) -> bool {
        console::read_config(offset, data)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> bool {
        let Some(byte) = console::emergency_byte(offset, data) else { return false };
        // Best effort, like the kernel's own output after a failure; behind
        // the kernel's bytes if they go through the relay.
        let _ = match &mut self.relay {
            Some(relay) => relay.write_all(&[byte]),
            None => self.out.write_all(&[byte]),
        };
        true
    }

    /// Hands the negotiated queues to the kernel (at DRIVER_OK).
    fn activate(&mut self, mem: &GuestMemoryMmap, queues: &[Queue], features: u64) -> Result<(), ActivateError> {
        let b = &self.backend;
        Self::ioctl("VHOST_SET_FEATURES", b.set_features(features & self.kernel_features))?;
        let regions: Vec<VhostUserMemoryRegionInfo> = mem
            .iter()
            .map(|r| VhostUserMemoryRegionInfo {
                guest_phys_addr: r.start_addr().0,
                memory_size: r.len(),
                userspace_addr: r.get_host_address(MemoryRegionAddress(0)).map_or(0, |p| p as u64),
                mmap_offset: 0,
                mmap_handle: -1,
            })
            .collect();
        Self::ioctl("VHOST_SET_MEM_TABLE", b.set_mem_table(&regions))?;
        for (i, queue) in queues.iter().enumerate().filter(|(_, q)| q.ready()) {
            let config = VringConfigData {
                queue_max_size: queue.max_size(),
                queue_size: queue.size(),
                flags: 0,
                desc_table_addr: queue.desc_table(),
                used_ring_addr: queue.used_ring(),
                avail_ring_addr: queue.avail_ring(),
                log_addr: None,
            };
            Self::ioctl("VHOST_SET_VRING_NUM", b.set_vring_num(i, queue.size()))?;
            Self::ioctl("VHOST_SET_VRING_ADDR", b.set_vring_addr(i, &config))?;
            Self::ioctl("VHOST_SET_VRING_BASE", b.set_vring_base(i, 0))?;
            Self::ioctl("VHOST_SET_VRING_CALL", b.set_vring_call(i, &self.calls[i]))?;
            Self::ioctl("VHOST_SET_VRING_ERR", b.set_vring_err(i, &self.err))?;
            Self::ioctl("VHOST_SET_VRING_KICK", b.set_vring_kick(i, &self.kicks[i]))?;
            let timeout = vhost_vring_state { index: i as u32, num: self.poll_us };
            // SAFETY: a valid vhost fd and a pointer to a live vhost_vring_state;
            // the return value is checked.
            if unsafe { ioctl_with_ref(&self.backend, VHOST_SET_VRING_BUSYLOOP_TIMEOUT(), &timeout) } < 0 {
                let e = std::io::Error::last_os_error();
                return Err(ActivateError::Vhost("VHOST_SET_VRING_BUSYLOOP_TIMEOUT", e.to_string()));
            }
        }
        if queues.get(RECEIVEQ_INDEX).is_some_and(|q| q.ready()) {
            self.attach_input()?;
        }
        self.attach_output()
    }

    fn error(&mut self) -> Option<String> {
        self.err.read().ok().map(|_| "vhost: the kernel stopped a queue (its log says why)".into())
    }

    fn process_queue(&mut self, _: usize, _: &mut Queue, _: &GuestMemoryMmap) -> Result<QueueRun, QueueError> {
        // Notifications go to the kernel through the ioeventfds.
        Ok(QueueRun::default())
    }

    fn queue_disabled(&mut self, index: usize) {
        // The kernel must stop touching the ring (§4.2.2.1): without a
        // backend its worker leaves the queue alone.
        let _ = self.set_backend(index, -1);
    }

    /// Relayed input (a terminal's): into the pipe the kernel reads, as much
    /// as it has room for; the input thread retries the rest.
    fn input(&mut self, bytes: &[u8]) -> usize {
        match &mut self.input_pipe {
            Some(pipe) => pipe.write(bytes).unwrap_or(0),
            None => bytes.len(),
        }
    }

    fn add_stats(&mut self, stats: &mut Stats) {
        stats.used_notifications += self.count_calls();
        // The kernel polls the kick eventfds but never reads them: their
        // counters hold every kick.
        stats.ioeventfd_notifications = Some(self.kicks.iter().map(|k| k.read().unwrap_or(0)).sum());
        stats.worker_wakeups = worker_wakeups();
    }

    fn take_used_signals(&mut self) -> bool {
        let before = self.calls_seen;
        self.count_calls() != before
    }

    fn event_fds(&self) -> Vec<RawFd> {
        self.calls.iter().chain([&self.err]).map(AsRawFd::as_raw_fd).collect()
    }

    fn reset(&mut self) {
        // Detach both files: the kernel stops processing until the next activation.
        let _ = self.set_backend(TRANSMITQ_INDEX, -1);
        let _ = self.set_backend(RECEIVEQ_INDEX, -1);
        // An error the kernel reported before the reset is the old device's:
        // after a reset, Status must read 0 (§2.4), not DEVICE_NEEDS_RESET.
        let _ = self.err.read();
    }
}

/// How often the kernel's worker slept and was woken so far. It is a thread
/// of this process (a vhost_task, named after the device), and each sleep
/// is a voluntary context switch, which /proc counts.
fn worker_wakeups() -> Option<u64> {
    std::fs::read_dir("/proc/self/task").ok()?.flatten().find_map(|task| {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        if comm.trim_end() != "vhost-console" {
            return None;
        }
        let status = std::fs::read_to_string(task.path().join("status")).ok()?;
        status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")?.trim().parse().ok())
    })
}
