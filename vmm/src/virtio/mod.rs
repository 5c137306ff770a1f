//! VirtIO 1.x devices: the virtio-mmio transport, the split-queue descriptor
//! walker, and the console device.

pub mod chain;
pub mod console;
pub mod mmio;
pub mod relay;
pub mod vhost_console;

use std::os::fd::RawFd;

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

/// The device's interrupt line, as the transport raises it (Firecracker's
/// `IrqTrigger`, Cloud Hypervisor's `VirtioInterrupt`): the transport knows
/// nothing of KVM. With no interrupt controller (the bare-metal guests poll)
/// there is none, and InterruptStatus alone records what would be raised.
pub trait Interrupt: Send {
    /// Signals the line once (an edge: KVM_IRQ_LINE, or KVM_INTERRUPT).
    fn trigger(&self);
}

/// What one run of a queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueRun {
    /// Buffers were used and the driver wants a used-buffer notification.
    pub notify: bool,
    /// The run stopped at its budget with work left: the transport runs the
    /// queue again soon, without waiting for the driver (vhost's requeue).
    pub more: bool,
}

/// What a device implements; the transport does the rest (registers, status,
/// feature negotiation, queue configuration and validation).
pub trait VirtioDevice {
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
    /// that stopped at its budget; the transport has checked the queue is
    /// ready and validated.
    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap)
        -> Result<QueueRun, QueueError>;
    /// The driver disabled queue `index` (QueueReady = 0): the device must
    /// not touch it any more (§4.2.2.1).
    fn queue_disabled(&mut self, _index: usize) {}
    /// The driver set DRIVER_OK: the queues are enabled and checked, the
    /// features final. An error puts the device in DEVICE_NEEDS_RESET.
    fn activate(&mut self, _mem: &GuestMemoryMmap, _queues: &[Queue], _features: u64) -> Result<(), ActivateError> {
        Ok(())
    }
    /// An error the device found on its own since the last call (asked when
    /// the driver reads Status).
    fn error(&mut self) -> Option<String> {
        None
    }
    /// Takes input from the host for the guest (a console's keyboard), as
    /// much as it has room for; returns how many bytes it took. The
    /// transport's `process` then hands it to the driver.
    fn input(&mut self, _bytes: &[u8]) -> usize {
        0
    }
    /// For a device whose queues run elsewhere (the kernel's vhost worker):
    /// takes the used-buffer signals that arrived since the last call; the
    /// transport then raises the used-buffer interrupt.
    fn take_used_signals(&mut self) -> bool {
        false
    }
    /// What becomes readable when `take_used_signals` or `error` has news,
    /// for a VMM that sleeps until its guest's next interrupt.
    fn event_fds(&self) -> Vec<RawFd> {
        Vec::new()
    }
    /// Forgets negotiated state; called when the driver resets the device.
    fn reset(&mut self) {}
    /// Adds the device's counters to `stats`.
    fn add_stats(&mut self, _stats: &mut Stats) {}
}
