//! Interrupt lines. With the in-kernel irqchip (Linux guests): one GSI of
//! the IOAPIC, pulsed as an edge with KVM_IRQ_LINE by the thread that raises
//! it, as QEMU does for its devices. An irqfd would cost a hop through a
//! kernel worker per interrupt for an IOAPIC pin (irqfd_inject runs from a
//! workqueue; only MSIs inject in the eventfd's wake-up), and the console
//! raises one per 2 KiB of a Linux guest's hvc0 output.
//! Without one (bare-metal guests): a pending flag the vCPU loop injects.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::virtio::Interrupt;

#[derive(Clone)]
pub struct IrqLine {
    vm: Arc<VmFd>,
    gsi: u32,
}

impl IrqLine {
    /// A line on `gsi`; the VM must have an in-kernel irqchip.
    pub fn new(vm: Arc<VmFd>, gsi: u32) -> Self {
        IrqLine { vm, gsi }
    }

    pub fn raise(&self) -> io::Result<()> {
        let err = |e: kvm_ioctls::Error| io::Error::from_raw_os_error(e.errno());
        self.vm.set_irq_line(self.gsi, true).map_err(err)?;
        self.vm.set_irq_line(self.gsi, false).map_err(err)
    }
}

impl Interrupt for IrqLine {
    fn trigger(&self) {
        // KVM_IRQ_LINE fails only for a GSI the irqchip does not have.
        let _ = self.raise();
    }
}

impl vm_superio::Trigger for IrqLine {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.raise()
    }
}

/// A line with no interrupt controller behind it (the bare-metal VM): a
/// pending flag that the vCPU loop turns into KVM_INTERRUPT once the guest
/// can take it, and an eventfd that wakes the loop while the guest sleeps
/// in HLT.
#[derive(Clone)]
pub struct PendingIrq {
    pending: Arc<AtomicBool>,
    wake: Arc<EventFd>,
}

impl PendingIrq {
    pub fn new() -> io::Result<Self> {
        Ok(PendingIrq { pending: Arc::new(AtomicBool::new(false)), wake: Arc::new(EventFd::new(EFD_NONBLOCK)?) })
    }

    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    /// The interrupt was injected.
    pub fn clear(&self) {
        self.pending.store(false, Ordering::SeqCst);
    }

    /// Wakes a sleeping vCPU loop without raising the line (its input ended).
    pub fn wake(&self) {
        let _ = self.wake.write(1);
    }

    /// Readable after a trigger or a wake; `drain` empties it.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    pub fn drain(&self) {
        let _ = self.wake.read();
    }
}

impl Interrupt for PendingIrq {
    fn trigger(&self) {
        self.pending.store(true, Ordering::SeqCst);
        self.wake();
    }
}
