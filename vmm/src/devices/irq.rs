//! An interrupt line: an eventfd registered with KVM_IRQFD on one GSI of the
//! in-kernel IOAPIC. Writing it raises the line as an edge (Firecracker's
//! `IrqTrigger`), with no exit and no lock.

use std::io;
use std::sync::Arc;

use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::virtio::Interrupt;

#[derive(Clone)]
pub struct IrqLine {
    evt: Arc<EventFd>,
}

impl IrqLine {
    /// A line on `gsi`; the VM must have an in-kernel irqchip.
    pub fn new(vm: &VmFd, gsi: u32) -> io::Result<Self> {
        let evt = EventFd::new(EFD_NONBLOCK)?;
        vm.register_irqfd(&evt, gsi).map_err(|e| io::Error::from_raw_os_error(e.errno()))?;
        Ok(IrqLine { evt: Arc::new(evt) })
    }

    pub fn raise(&self) -> io::Result<()> {
        self.evt.write(1)
    }
}

impl Interrupt for IrqLine {
    fn trigger(&self) {
        // An eventfd write fails only when its counter would overflow, and
        // then the line is raised already.
        let _ = self.raise();
    }
}

impl vm_superio::Trigger for IrqLine {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.raise()
    }
}
