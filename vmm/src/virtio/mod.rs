//! VirtIO 1.x devices: the virtio-mmio transport, the split-queue descriptor
//! walker, and the console device.

pub mod block;
pub mod chain;
pub mod console;
pub mod mmio;
pub mod relay;
pub mod vhost;
pub mod vhost_console;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;

use crate::stats::Stats;

pub use chain::QueueError;

/// Why a device could not go live at DRIVER_OK; the transport then puts it
/// in DEVICE_NEEDS_RESET with this as the reason.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// A vhost ioctl the kernel refused.
    #[error("vhost: {0} failed: {1}")]
    Vhost(&'static str, String),
    #[error("vhost: cannot {0}: {1}")]
    Output(&'static str, std::io::Error),
}

// Device status bits (VirtIO 1.2 §2.1).
pub const STATUS_ACKNOWLEDGE: u32 = 1;
pub const STATUS_DRIVER: u32 = 2;
pub const STATUS_DRIVER_OK: u32 = 4;
pub const STATUS_FEATURES_OK: u32 = 8;
pub const STATUS_DEVICE_NEEDS_RESET: u32 = 0x40;
pub const STATUS_FAILED: u32 = 0x80;

// Reserved feature bits (§6).
pub const VIRTIO_F_VERSION_1: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
pub const VIRTIO_F_IN_ORDER: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_IN_ORDER;
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

/// The device's interrupt line, as the transport raises it: the transport
/// knows nothing of KVM. `IrqTrigger` sets InterruptStatus first.
pub trait Interrupt: Send + Sync {
    /// Signals the line once (an edge: KVM_IRQ_LINE, or KVM_INTERRUPT).
    fn trigger(&self);
}

/// InterruptStatus and the line behind it (Firecracker's `IrqTrigger`, Cloud
/// Hypervisor's `VirtioInterrupt`): any thread may raise an interrupt (the
/// vCPU that ran a queue, the event loop that read the kernel's call
/// eventfd) without the transport's lock, setting the bit before the edge so
/// that the guest's handler reads the reason it was interrupted for.
pub struct IrqTrigger {
    status: AtomicU32,
    line: Option<Arc<dyn Interrupt>>,
}

impl IrqTrigger {
    /// With no line (a VM without the device's interrupt wired, tests),
    /// InterruptStatus alone records what would be raised.
    pub fn new(line: Option<Arc<dyn Interrupt>>) -> Self {
        IrqTrigger { status: AtomicU32::new(0), line }
    }

    /// Sets `bit` in InterruptStatus (`mmio::INT_USED_RING`, `INT_CONFIG`)
    /// and raises the line.
    pub fn trigger(&self, bit: u32) {
        self.status.fetch_or(bit, Ordering::SeqCst);
        if let Some(line) = &self.line {
            line.trigger();
        }
    }

    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// The driver's InterruptACK.
    pub fn ack(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    pub fn clear(&self) {
        self.status.store(0, Ordering::SeqCst);
    }
}

/// What one run of a queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueRun {
    /// Buffers were used and the driver wants a used-buffer notification.
    pub notify: bool,
    /// The run stopped at its budget with work left: the queue runs again
    /// soon, without waiting for the driver (vhost's requeue).
    pub more: bool,
    /// The run stopped because the device's backend has no room: the queue
    /// runs again when the device's `DeviceEvent::Ready` fd says so.
    pub blocked: bool,
}

/// An eventfd of a device that the VMM's event loop watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// Used buffers (the kernel's call eventfd in vhost mode): the loop
    /// reads it and raises the used-buffer interrupt, without the
    /// transport's lock.
    Used(RawFd),
    /// The device has news (room for output, an error): the loop takes the
    /// transport's lock and calls `VirtioDevice::poll_news`.
    News(RawFd),
    /// The driver notified `queue` (a KVM ioeventfd on QueueNotify: the
    /// vCPU did not leave the kernel): the loop runs the queue.
    Kick { fd: RawFd, queue: usize },
}

/// What `poll_news` found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct News {
    /// The queues stalled on the backend may run again.
    pub ready: bool,
    /// The device stopped on a queue error found elsewhere (the kernel's
    /// err eventfd): DEVICE_NEEDS_RESET with this reason.
    pub needs_reset: Option<String>,
    /// The host side failed (lost output): the VM stops with this error.
    pub fatal: Option<String>,
    /// Bit i: queue i has work the device found for the driver (host input,
    /// a message for it): the transport runs it if the driver has it live.
    pub queues: u128,
    /// The device changed its configuration space: a configuration change
    /// interrupt (§2.5.2), and ConfigGeneration moves.
    pub config_changed: bool,
}

/// What a device implements; the transport does the rest (registers, status,
/// feature negotiation, queue configuration and validation).
pub trait VirtioDevice: Send {
    /// What the device is, for the host's messages ("console").
    fn name(&self) -> &'static str;
    /// Device ID (§5).
    fn device_id(&self) -> u32;
    /// Features offered to the driver.
    fn features(&self) -> u64;
    /// The largest size of each queue; the slice length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// Reads device-specific configuration at `offset`; false if out of range.
    fn read_config(&self, offset: u64, data: &mut [u8]) -> bool;
    /// Writes device-specific configuration at `offset`; false if out of range
    /// or read-only.
    fn write_config(&mut self, offset: u64, data: &[u8]) -> bool;
    /// Runs queue `index` after a driver notification, or again after a run
    /// that stopped at its budget or on its backend; the transport has
    /// checked the queue is ready and validated.
    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap)
        -> Result<QueueRun, QueueError>;
    /// The driver disabled queue `index` (QueueReady = 0): the device must
    /// not touch it any more (§4.2.2.1).
    fn queue_disabled(&mut self, _index: usize) {}
    /// The driver set DRIVER_OK: the ready queues are checked, the features
    /// final. An error puts the device in DEVICE_NEEDS_RESET.
    fn activate(&mut self, _mem: &GuestMemoryMmap, _queues: &[Queue], _features: u64) -> Result<(), ActivateError> {
        Ok(())
    }
    /// The transport put the device in DEVICE_NEEDS_RESET: no queue may be
    /// touched until the driver resets it (queues run elsewhere stop too).
    fn stopped(&mut self) {}
    /// Takes input from the host for the guest (a console's keyboard), as
    /// much as it has room for; returns how many bytes it took. The
    /// transport's `process` then hands it to the driver.
    fn input(&mut self, _bytes: &[u8]) -> usize {
        0
    }
    /// The eventfds the VMM's event loop watches for the device.
    fn events(&self) -> Vec<DeviceEvent> {
        Vec::new()
    }
    /// Called when a `DeviceEvent::News` fd is readable.
    fn poll_news(&mut self) -> News {
        News::default()
    }
    /// The host's terminal is now `cols` by `rows` (only a console that
    /// offers VIRTIO_CONSOLE_F_SIZE cares).
    fn resize(&mut self, _cols: u16, _rows: u16) -> News {
        News::default()
    }
    /// Whether nothing the device does on its own can interrupt the guest
    /// any more (work run elsewhere is done and its input consumed): a
    /// bare-metal guest asleep with nothing to wake it has ended.
    fn idle(&self, _mem: &GuestMemoryMmap, _queues: &[Queue]) -> bool {
        true
    }
    /// Lines the state dump adds for the device (counters, the kernel's view).
    fn dump(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// The VM has stopped: lets what the device still holds for its output
    /// drain, until `until`; returns whether it has (else it is asked
    /// again, or to `abandon` it).
    fn wind_down(&mut self, _until: std::time::Instant) -> bool {
        true
    }
    /// Gives up on output the device could not drain (its reader stopped).
    fn abandon(&mut self) {}
    /// Forgets negotiated state; called when the driver resets the device.
    fn reset(&mut self) {}
    /// Adds the device's counters to `stats`.
    fn add_stats(&mut self, _stats: &mut Stats) {}
}
