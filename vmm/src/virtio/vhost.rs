//! What every device whose queues the kernel processes needs of its vhost
//! device file (/dev/vhost-console, /dev/vhost-blk, both from the
//! vhost_console module): ownership, the memory table, each queue's ring
//! with its kick, call and err eventfds (the standard vhost ioctls, through
//! rust-vmm's `vhost` crate and its `VhostKernBackend`), and the figures of
//! the kernel's worker. The devices (vhost_console.rs, block/vhost.rs) add
//! their own ioctl, which hands the kernel the files behind the queues.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use vhost::vhost_kern::vhost_binding::vhost_vring_state;
use vhost::vhost_kern::VhostKernBackend;
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::{ioctl::ioctl_with_ref, ioctl_iow_nr};

use thiserror::Error;

use super::ActivateError;

/// Why a vhost device file could not be had.
#[derive(Debug, Error)]
pub enum OpenError {
    #[error("cannot open {0}: {1} (is the vhost_console module loaded?)")]
    Open(&'static str, std::io::Error),
    #[error("{0}: {1} failed: {2}")]
    Ioctl(&'static str, &'static str, std::io::Error),
}

const VHOST_VIRTIO: u32 = 0xaf;
// Standard vhost ioctl that the `vhost` crate does not wrap.
ioctl_iow_nr!(VHOST_SET_VRING_BUSYLOOP_TIMEOUT, VHOST_VIRTIO, 0x23, vhost_vring_state);

/// An open vhost device file, as the `vhost` crate sees it.
pub struct VhostFile {
    file: File,
    mem: Arc<GuestMemoryMmap>,
}

impl AsRawFd for VhostFile {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl VhostKernBackend for VhostFile {
    type AS = Arc<GuestMemoryMmap>;

    fn mem(&self) -> &Self::AS {
        &self.mem
    }
}

/// One queue's eventfds: the driver's kick (a KVM ioeventfd on
/// QueueNotify), the kernel's call (used buffers) and err (a stopped queue).
pub struct QueueFds<'a> {
    pub kick: &'a EventFd,
    pub call: &'a EventFd,
    pub err: &'a EventFd,
}

fn failed<T>(what: &'static str, r: vhost::Result<T>) -> Result<T, ActivateError> {
    r.map_err(|e| ActivateError::Vhost(what, e.to_string()))
}

impl VhostFile {
    /// Opens `path` and becomes its owner (the kernel starts the worker in
    /// this process); returns it with the virtio features the kernel offers.
    pub fn open(path: &'static str, mem: &GuestMemoryMmap) -> Result<(Self, u64), OpenError> {
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| OpenError::Open(path, e))?;
        let vhost = VhostFile { file, mem: Arc::new(mem.clone()) };
        let io = |what, e: vhost::Error| OpenError::Ioctl(path, what, std::io::Error::other(e.to_string()));
        vhost.set_owner().map_err(|e| io("VHOST_SET_OWNER", e))?;
        let features = vhost.get_features().map_err(|e| io("VHOST_GET_FEATURES", e))?;
        Ok((vhost, features))
    }

    /// The negotiated ring features and the guest's memory, at DRIVER_OK.
    pub fn set_memory(&self, mem: &GuestMemoryMmap, features: u64) -> Result<(), ActivateError> {
        failed("VHOST_SET_FEATURES", self.set_features(features))?;
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
        failed("VHOST_SET_MEM_TABLE", self.set_mem_table(&regions)).map(drop)
    }

    /// Hands queue `index` as the driver set it up to the kernel, from its
    /// first descriptor on; the worker busy-polls it `poll_us` µs before
    /// it sleeps.
    pub fn set_queue(&self, index: usize, queue: &Queue, fds: QueueFds, poll_us: u32) -> Result<(), ActivateError> {
        let config = VringConfigData {
            queue_max_size: queue.max_size(),
            queue_size: queue.size(),
            flags: 0,
            desc_table_addr: queue.desc_table(),
            used_ring_addr: queue.used_ring(),
            avail_ring_addr: queue.avail_ring(),
            log_addr: None,
        };
        failed("VHOST_SET_VRING_NUM", self.set_vring_num(index, queue.size()))?;
        failed("VHOST_SET_VRING_ADDR", self.set_vring_addr(index, &config))?;
        failed("VHOST_SET_VRING_BASE", self.set_vring_base(index, 0))?;
        failed("VHOST_SET_VRING_CALL", self.set_vring_call(index, fds.call))?;
        failed("VHOST_SET_VRING_ERR", self.set_vring_err(index, fds.err))?;
        failed("VHOST_SET_VRING_KICK", self.set_vring_kick(index, fds.kick))?;
        if poll_us != 0 {
            let timeout = vhost_vring_state { index: index as u32, num: poll_us };
            // SAFETY: a valid vhost fd and a pointer to a live vhost_vring_state;
            // the return value is checked.
            if unsafe { ioctl_with_ref(self, VHOST_SET_VRING_BUSYLOOP_TIMEOUT(), &timeout) } < 0 {
                let e = std::io::Error::last_os_error();
                return Err(ActivateError::Vhost("VHOST_SET_VRING_BUSYLOOP_TIMEOUT", e.to_string()));
            }
        }
        Ok(())
    }
}

/// Whether `fd` is ready for any of `events`, now.
pub fn poll_ready(fd: RawFd, events: libc::c_short) -> bool {
    let mut pfd = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one live pollfd, no waiting.
    unsafe { libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & (events | libc::POLLHUP) != 0 }
}

/// Whether the driver has buffers on `queue` the device has not used: its
/// avail index ahead of its used index, both read from guest memory.
pub fn has_posted(mem: &GuestMemoryMmap, queue: &Queue) -> bool {
    let read = |addr: u64| mem.read_obj::<u16>(GuestAddress(addr)).unwrap_or(0);
    queue.ready() && read(queue.avail_ring() + 2) != read(queue.used_ring() + 2)
}

/// The kernel's worker: a thread of this process (a vhost_task, named after
/// the device).
fn worker_task(name: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .map(|t| t.path())
        .find(|path| std::fs::read_to_string(path.join("comm")).is_ok_and(|comm| comm.trim_end() == name))
}

/// The worker's scheduler state and context switches, for the dump.
pub fn worker_state(name: &str) -> Option<String> {
    let task = worker_task(name)?;
    let status = std::fs::read_to_string(task.join("status")).ok()?;
    let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).map(str::trim).unwrap_or("?");
    let wchan = std::fs::read_to_string(task.join("wchan")).unwrap_or_default();
    Some(format!(
        "state {}, voluntary switches {}, involuntary {}, wchan {}",
        field("State:"),
        field("voluntary_ctxt_switches:"),
        field("nonvoluntary_ctxt_switches:"),
        if wchan.is_empty() { "?" } else { &wchan }
    ))
}

/// How often the worker slept and was woken so far: each sleep is a
/// voluntary context switch, which /proc counts.
pub fn worker_wakeups(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(worker_task(name)?.join("status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")?.trim().parse().ok())
}
