//! One vCPU's thread: KVM_RUN until the VM stops, each exit to the buses or
//! to how the VM ends. The same loop serves both interrupt controllers: with
//! the in-kernel irqchip (Linux) KVM delivers interrupts and HLT stays in
//! the kernel; without one (the bare-metal guests) this loop injects the
//! `InjectedLine` when the guest can take it, and a HLT comes out here,
//! where it either ends the run (interrupts disabled) or sleeps until the
//! next interrupt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kvm_bindings::{kvm_interrupt, KVMIO, KVM_INTERNAL_ERROR_EMULATION};
use kvm_ioctls::{VcpuExit, VcpuFd};
use vm_device::bus::{MmioAddress, PioAddress};
use vm_device::device_manager::{MmioManager, PioManager};
use vmm_sys_util::{ioctl::ioctl_with_ref, ioctl_iow_nr};

use crate::devices::irq::InjectedLine;
use crate::kick::Kickable;
use crate::stats::Stats;
use crate::vm::{Exit, Shared, VmError};
use crate::warn;

ioctl_iow_nr!(KVM_INTERRUPT, KVMIO, 0x86, kvm_interrupt);

/// How long nothing must be able to interrupt a sleeping bare-metal guest
/// before its run ends: a device working elsewhere (the kernel's vhost
/// worker) signals its last used buffer just after writing the used index.
const IDLE_GRACE: Duration = Duration::from_millis(10);

pub struct Vcpu {
    pub id: usize,
    pub fd: VcpuFd,
    /// The line this loop injects, for a VM without an in-kernel irqchip,
    /// and the vector it arrives on.
    pub injected: Option<(Arc<InjectedLine>, u32)>,
}

/// An exit that carries no data borrowed from the vCPU's run structure.
#[derive(Debug, PartialEq, Eq)]
enum Other {
    Hlt,
    IrqWindowOpen,
    Shutdown,
    SystemEvent(u32),
    InternalError,
    FailEntry(u64),
    Unexpected(String),
}

impl From<VcpuExit<'_>> for Other {
    fn from(exit: VcpuExit) -> Self {
        match exit {
            VcpuExit::Hlt => Other::Hlt,
            VcpuExit::IrqWindowOpen => Other::IrqWindowOpen,
            VcpuExit::Shutdown => Other::Shutdown,
            VcpuExit::SystemEvent(kind, _) => Other::SystemEvent(kind),
            VcpuExit::InternalError => Other::InternalError,
            VcpuExit::FailEntry(reason, _) => Other::FailEntry(reason),
            other => Other::Unexpected(format!("{other:?}")),
        }
    }
}

/// What one exit asks for.
enum Next {
    Run,
    Stop(Result<Exit, VmError>),
}

impl Vcpu {
    /// Runs until the VM stops; records why in `shared` (the first reason
    /// wins) and returns the exits it counted.
    pub fn run(mut self, shared: &Shared) -> Stats {
        let mut stats = Stats::default();
        let _kick = match Kickable::new(&mut self.fd) {
            Ok(k) => k,
            Err(e) => {
                shared.stop.finish(Err(VmError::Thread(format!("vCPU {}: cannot be kicked: {e}", self.id))));
                return stats;
            }
        };
        if let Some((line, _)) = &self.injected {
            line.set_vcpu_thread();
        }
        loop {
            // Cleared before `stop` is read: a kick after this is not lost.
            self.fd.set_kvm_immediate_exit(0);
            if shared.stop.is_set() {
                return stats;
            }
            if let Err(e) = self.inject(&mut stats) {
                shared.stop.finish(Err(e));
                return stats;
            }
            let next = match self.fd.run() {
                Ok(VcpuExit::IoIn(port, data)) => {
                    stats.exits_io += 1;
                    // Ports nobody decodes read as all ones, as on a PC;
                    // Linux probes many.
                    if shared.io.pio_read(PioAddress(port), data).is_err() {
                        data.fill(0xff);
                    }
                    Next::Run
                }
                Ok(VcpuExit::IoOut(port, data)) => {
                    stats.exits_io += 1;
                    let _ = shared.io.pio_write(PioAddress(port), data);
                    match shared.power_request() {
                        Some(outcome) => Next::Stop(outcome),
                        None => Next::Run,
                    }
                }
                Ok(VcpuExit::MmioRead(addr, data)) => {
                    stats.exits_mmio += 1;
                    stats.mmio_reads += 1;
                    if shared.io.mmio_read(MmioAddress(addr), data).is_err() {
                        warn!("mmio: {}-byte read at {addr:#x} outside any device; reads as 0", data.len());
                        data.fill(0);
                    }
                    Next::Run
                }
                Ok(VcpuExit::MmioWrite(addr, data)) => {
                    stats.exits_mmio += 1;
                    stats.mmio_writes += 1;
                    if shared.io.mmio_write(MmioAddress(addr), data).is_err() {
                        warn!("mmio: {}-byte write at {addr:#x} outside any device ignored", data.len());
                    }
                    Next::Run
                }
                Ok(exit) => {
                    let exit = Other::from(exit);
                    self.other(exit, shared, &mut stats)
                }
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => Next::Run,
                Err(e) => Next::Stop(Err(VmError::Kvm("run vCPU", e))),
            };
            if let Some((line, _)) = &self.injected {
                line.set_enabled(self.fd.get_kvm_run().if_flag != 0);
            }
            if let Next::Stop(outcome) = next {
                shared.stop.finish(outcome);
                return stats;
            }
        }
    }

    /// The exits that are not port or MMIO accesses.
    fn other(&mut self, exit: Other, shared: &Shared, stats: &mut Stats) -> Next {
        let id = self.id;
        if exit == Other::Hlt {
            stats.exits_hlt += 1;
        } else {
            stats.exits_other += 1;
        }
        match exit {
            Other::Hlt => {
                // With the in-kernel irqchip HLT stays in KVM; should one
                // come out, run on.
                if self.injected.is_none() {
                    return Next::Run;
                }
                if self.fd.get_kvm_run().if_flag == 0 {
                    return Next::Stop(Ok(Exit::Halted));
                }
                self.sleep(shared)
            }
            // The guest can take the pending interrupt now.
            Other::IrqWindowOpen => Next::Run,
            Other::Shutdown => Next::Stop(Err(VmError::TripleFault(id, self.fd.get_regs().map_or(0, |r| r.rip)))),
            Other::SystemEvent(kind) => Next::Stop(match kind {
                kvm_bindings::KVM_SYSTEM_EVENT_RESET => Ok(Exit::Reset),
                _ => Ok(Exit::PowerOff),
            }),
            Other::InternalError => {
                // SAFETY: on KVM_EXIT_INTERNAL_ERROR the kernel filled the
                // `internal` member of the exit union.
                let suberror = unsafe { self.fd.get_kvm_run().__bindgen_anon_1.internal.suberror };
                let hint = if suberror == KVM_INTERNAL_ERROR_EMULATION {
                    ": an instruction it cannot emulate (bare-metal guests must be soft-float, no SSE)"
                } else {
                    ""
                };
                Next::Stop(Err(VmError::Internal(id, suberror, hint)))
            }
            Other::FailEntry(reason) => Next::Stop(Err(VmError::FailEntry(id, reason))),
            Other::Unexpected(what) => Next::Stop(Err(VmError::UnexpectedExit(id, what))),
        }
    }

    /// Injects the pending interrupt if the guest can take it; else asks
    /// KVM to exit as soon as it can (QEMU's kvm_arch_pre_run). The flags
    /// are those of the last exit.
    fn inject(&mut self, stats: &mut Stats) -> Result<(), VmError> {
        let Some((line, vector)) = &self.injected else { return Ok(()) };
        if !line.is_pending() {
            return Ok(());
        }
        let run = self.fd.get_kvm_run();
        if run.ready_for_interrupt_injection != 0 && run.if_flag != 0 {
            run.request_interrupt_window = 0;
            line.clear();
            let irq = kvm_interrupt { irq: *vector };
            // SAFETY: a vCPU fd and a live kvm_interrupt; the result is checked.
            if unsafe { ioctl_with_ref(&self.fd, KVM_INTERRUPT(), &irq) } < 0 {
                return Err(VmError::Inject(std::io::Error::last_os_error()));
            }
            stats.interrupts += 1;
        } else {
            run.request_interrupt_window = 1;
        }
        Ok(())
    }

    /// The guest halted with interrupts enabled: it sleeps until its next
    /// interrupt, or ends when none can come any more (its input ended and
    /// no device has anything left to do), or the VM stops.
    fn sleep(&self, shared: &Shared) -> Next {
        let Some((line, _)) = &self.injected else { return Next::Run };
        // Asleep here, not in KVM_RUN: the wake eventfd is enough.
        line.set_enabled(false);
        let mut idle_since: Option<Instant> = None;
        loop {
            line.drain();
            if line.is_pending() || shared.stop.is_set() {
                return Next::Run;
            }
            let timeout = if shared.input_done() {
                if shared.idle() {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= IDLE_GRACE {
                        return Next::Stop(Ok(Exit::Idle));
                    }
                } else {
                    idle_since = None;
                }
                IDLE_GRACE.as_millis() as i32
            } else {
                -1
            };
            let mut fds = [
                libc::pollfd { fd: line.wake_fd(), events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: shared.stop.fd(), events: libc::POLLIN, revents: 0 },
            ];
            // SAFETY: live pollfds and their count. An error (EINTR: a
            // kick) just means another look.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        }
    }
}
