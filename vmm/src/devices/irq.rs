//! Interrupt lines, for the two interrupt controllers a VM can have.
//! - `GsiLine`, with the in-kernel irqchip (Linux guests): one GSI of the
//!   IOAPIC, pulsed as an edge with KVM_IRQ_LINE by the thread that raises
//!   it, as QEMU does for its devices. An irqfd would cost a hop through a
//!   kernel worker per interrupt for an IOAPIC pin (irqfd_inject runs from a
//!   workqueue; only MSIs inject in the eventfd's wake-up).
//! - `InjectedLine`, without one (the bare-metal guests, whose HLT must come
//!   out to the VMM): a pending flag that the vCPU loop turns into
//!   KVM_INTERRUPT at a fixed vector once the guest can take it, as QEMU
//!   does with a userspace irqchip. Raised from another thread, it wakes the
//!   vCPU from HLT, and kicks it out of KVM_RUN to inject if the guest ran
//!   with interrupts enabled at its last exit (a guest that enables them
//!   only across `sti; hlt`, as ours do, would take it at the HLT anyway,
//!   and a kick would cost an exit per interrupt).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::kick;
use crate::virtio::Interrupt;

#[derive(Clone)]
pub struct GsiLine {
    vm: Arc<VmFd>,
    gsi: u32,
}

impl GsiLine {
    /// A line on `gsi`; the VM must have an in-kernel irqchip.
    pub fn new(vm: Arc<VmFd>, gsi: u32) -> Self {
        GsiLine { vm, gsi }
    }

    pub fn raise(&self) -> io::Result<()> {
        let err = |e: kvm_ioctls::Error| io::Error::from_raw_os_error(e.errno());
        self.vm.set_irq_line(self.gsi, true).map_err(err)?;
        self.vm.set_irq_line(self.gsi, false).map_err(err)
    }
}

impl Interrupt for GsiLine {
    fn trigger(&self) {
        // KVM_IRQ_LINE fails only for a GSI the irqchip does not have.
        let _ = self.raise();
    }
}

impl vm_superio::Trigger for GsiLine {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.raise()
    }
}

/// The bare-metal VM's one interrupt line.
pub struct InjectedLine {
    pending: AtomicBool,
    /// The guest had interrupts enabled (RFLAGS.IF) at its last exit.
    enabled: AtomicBool,
    wake: EventFd,
    /// The vCPU thread, once it runs: kicked when another thread raises.
    vcpu: OnceLock<libc::pthread_t>,
}

impl InjectedLine {
    pub fn new() -> io::Result<Self> {
        Ok(InjectedLine {
            pending: AtomicBool::new(false),
            enabled: AtomicBool::new(false),
            wake: EventFd::new(EFD_NONBLOCK)?,
            vcpu: OnceLock::new(),
        })
    }

    /// The calling thread runs the vCPU this line interrupts.
    pub fn set_vcpu_thread(&self) {
        // SAFETY: no preconditions.
        let _ = self.vcpu.set(unsafe { libc::pthread_self() });
    }

    /// Whether the guest ran with interrupts enabled, as of its last exit.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    /// The interrupt was injected.
    pub fn clear(&self) {
        self.pending.store(false, Ordering::SeqCst);
    }

    /// Wakes a vCPU asleep in HLT without raising the line (to look again
    /// whether anything can still interrupt it).
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

impl Interrupt for InjectedLine {
    fn trigger(&self) {
        self.pending.store(true, Ordering::SeqCst);
        self.wake();
        if let Some(&vcpu) = self.vcpu.get() {
            // SAFETY: no preconditions.
            let other_thread = unsafe { libc::pthread_equal(vcpu, libc::pthread_self()) } == 0;
            if other_thread && self.enabled.load(Ordering::SeqCst) {
                // A guest running with interrupts enabled takes it at once,
                // not at its next exit.
                kick::kick(vcpu);
            }
        }
    }
}
