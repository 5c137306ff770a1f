//! The block device with its request queue processed in the kernel:
//! /dev/vhost-blk from the vhost_console module. The device as the driver
//! sees it (features, configuration space) is the VMM's own device's; the
//! kernel gets the ring, the image's file and the same limits
//! (VHOST_BLK_SET_BACKEND), and applies the same request rules
//! (kmod/blk.rs). QueueNotify hits a KVM ioeventfd the kernel's worker
//! polls; the call eventfd raises the interrupt through the event loop; the
//! err eventfd, a queue the kernel stopped, is DEVICE_NEEDS_RESET.
//!
//! The kernel does each request's I/O before it takes the next, so nothing
//! is in flight once the backend is detached (reset, QueueReady = 0,
//! NEEDS_RESET) or the file closed.

use std::os::fd::{AsRawFd, RawFd};

use kvm_ioctls::{IoEventAddress, VmFd};
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::{ioctl::ioctl_with_ref, ioctl_iow_nr};

use super::disk::{DiskConfig, Image};
use super::request::{Limits, ID_BYTES};
use super::{features, limits, read_config, DEVICE_ID_BLOCK, QUEUE_MAX_SIZE};
use crate::stats::Stats;
use crate::virtio::vhost::{has_posted, poll_ready, worker_state, worker_wakeups, QueueFds, VhostFile};
use crate::virtio::{ActivateError, DeviceEvent, News, QueueError, QueueRun, VirtioDevice};

pub const DEVICE_PATH: &str = "/dev/vhost-blk";
/// The worker's name (the vhost_task's comm).
const WORKER: &str = "vhost-blk";
const VHOST_VIRTIO: u32 = 0xaf;
const READ_ONLY: u32 = 1;

/// `struct vhost_blk_backend` (kmod/uapi.rs).
#[repr(C)]
#[derive(Default)]
struct Backend {
    fd: i32,
    flags: u32,
    capacity: u64,
    max_discard_sectors: u32,
    max_discard_seg: u32,
    max_write_zeroes_sectors: u32,
    max_write_zeroes_seg: u32,
    serial: [u8; ID_BYTES],
    padding: u32,
}

ioctl_iow_nr!(VHOST_BLK_SET_BACKEND, VHOST_VIRTIO, 0x60, Backend);

pub struct VhostBlock {
    vhost: VhostFile,
    kernel_features: u64,
    config: DiskConfig,
    image: Image,
    limits: Limits,
    kick: EventFd,
    call: EventFd,
    err: EventFd,
    /// The kernel has the image now.
    attached: bool,
    /// Kicks counted so far (the kernel polls the eventfd but never reads
    /// it; a dump or the statistics read and add them here).
    kicks_seen: u64,
}

impl VhostBlock {
    /// Opens /dev/vhost-blk for `image` (the kernel starts its worker in
    /// this process) and registers QueueNotify of the window at `base` as
    /// the kick: the vCPU never exits for a request.
    pub fn on_mmio(
        vm: &VmFd,
        mem: &GuestMemoryMmap,
        base: u64,
        config: DiskConfig,
        image: Image,
    ) -> Result<Self, String> {
        let (vhost, kernel_features) = VhostFile::open(DEVICE_PATH, mem).map_err(|e| e.to_string())?;
        let eventfd = || EventFd::new(EFD_NONBLOCK).map_err(|e| format!("cannot create an eventfd: {e}"));
        let kick = eventfd()?;
        let notify = IoEventAddress::Mmio(base + crate::virtio::mmio::QUEUE_NOTIFY);
        vm.register_ioevent(&kick, &notify, 0u32)
            .map_err(|e| format!("KVM: cannot register the QueueNotify ioeventfd: {e}"))?;
        let limits = limits(&config, &image);
        Ok(VhostBlock {
            vhost,
            kernel_features,
            config,
            image,
            limits,
            kick,
            call: eventfd()?,
            err: eventfd()?,
            attached: false,
            kicks_seen: 0,
        })
    }

    /// VHOST_BLK_SET_BACKEND: the image with the limits the driver was
    /// told, or none (-1).
    fn set_backend(&mut self, fd: RawFd) -> std::io::Result<()> {
        let mut serial = [0u8; ID_BYTES];
        let s = self.config.serial.as_deref().unwrap_or("").as_bytes();
        serial[..s.len()].copy_from_slice(s);
        let backend = Backend {
            fd,
            flags: if self.limits.read_only { READ_ONLY } else { 0 },
            capacity: self.limits.capacity,
            max_discard_sectors: self.limits.max_discard_sectors,
            max_discard_seg: self.limits.max_discard_seg,
            max_write_zeroes_sectors: self.limits.max_write_zeroes_sectors,
            max_write_zeroes_seg: self.limits.max_write_zeroes_seg,
            serial,
            padding: 0,
        };
        // SAFETY: a valid vhost fd and a pointer to a live, fully initialized
        // struct of the size the command encodes; the return value is checked.
        match unsafe { ioctl_with_ref(&self.vhost, VHOST_BLK_SET_BACKEND(), &backend) } {
            0 => {
                self.attached = fd >= 0;
                Ok(())
            }
            _ => Err(std::io::Error::last_os_error()),
        }
    }

    /// The kernel lets go of the image: it stops serving the queue.
    fn detach(&mut self) {
        if self.attached {
            let _ = self.set_backend(-1);
            self.attached = false;
        }
    }
}

impl VirtioDevice for VhostBlock {
    fn name(&self) -> &'static str {
        "block"
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID_BLOCK
    }

    fn features(&self) -> u64 {
        features(&self.limits)
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_MAX_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) -> bool {
        read_config(&self.limits, offset, data)
    }

    fn write_config(&mut self, _offset: u64, _data: &[u8]) -> bool {
        false
    }

    fn activate(&mut self, mem: &GuestMemoryMmap, queues: &[Queue], features: u64) -> Result<(), ActivateError> {
        // A driver that did not enable the queue sends no request.
        let Some(queue) = queues.first().filter(|q| q.ready()) else { return Ok(()) };
        self.vhost.set_memory(mem, features & self.kernel_features)?;
        self.vhost.set_queue(0, queue, QueueFds { kick: &self.kick, call: &self.call, err: &self.err }, 0)?;
        let fd = self.image.file.as_raw_fd();
        self.set_backend(fd).map_err(|e| ActivateError::Vhost("VHOST_BLK_SET_BACKEND", e.to_string()))
    }

    fn process_queue(
        &mut self,
        _index: usize,
        _queue: &mut Queue,
        _mem: &GuestMemoryMmap,
    ) -> Result<QueueRun, QueueError> {
        // QueueNotify goes to the kernel through the ioeventfd.
        Ok(QueueRun::default())
    }

    fn queue_disabled(&mut self, _index: usize) {
        // The kernel must stop touching the ring (§4.2.2.1).
        self.detach();
    }

    fn stopped(&mut self) {
        self.detach();
    }

    fn events(&self) -> Vec<DeviceEvent> {
        vec![DeviceEvent::Used(self.call.as_raw_fd()), DeviceEvent::News(self.err.as_raw_fd())]
    }

    fn poll_news(&mut self) -> News {
        let mut news = News::default();
        if self.err.read().is_ok() {
            news.needs_reset = Some("vhost-blk: the kernel stopped the request queue (its log says why)".into());
        }
        news
    }

    /// Nothing posted that the kernel has not used, and no call the event
    /// loop has yet to take.
    fn idle(&self, mem: &GuestMemoryMmap, queues: &[Queue]) -> bool {
        let posted = self.attached && queues.first().is_some_and(|q| has_posted(mem, q));
        !posted && !poll_ready(self.call.as_raw_fd(), libc::POLLIN)
    }

    fn dump(&mut self) -> Vec<String> {
        self.kicks_seen += self.kick.read().unwrap_or(0);
        vec![format!(
            "block: {} ({} sectors{}) in the kernel ({DEVICE_PATH}): attached {}, kicks so far {}, call pending {}, err pending {}; worker {}",
            self.config.path.display(),
            self.limits.capacity,
            if self.limits.read_only { ", read-only" } else { "" },
            self.attached,
            self.kicks_seen,
            poll_ready(self.call.as_raw_fd(), libc::POLLIN),
            poll_ready(self.err.as_raw_fd(), libc::POLLIN),
            worker_state(WORKER).unwrap_or_else(|| "not found".into()),
        )]
    }

    fn reset(&mut self) {
        self.detach();
        // An error reported before the reset is the old device's (§2.4).
        let _ = self.err.read();
    }

    fn add_stats(&mut self, stats: &mut Stats) {
        self.kicks_seen += self.kick.read().unwrap_or(0);
        *stats.ioeventfd_notifications.get_or_insert(0) += self.kicks_seen;
        stats.worker_wakeups = worker_wakeups(WORKER).or(stats.worker_wakeups);
    }
}
