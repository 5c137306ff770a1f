//! The bare-metal virtual machine: KVM objects, guest RAM, the console on
//! virtio-mmio, and the vCPU loop that runs until the guest halts.
//!
//! There is no interrupt controller (with KVM's in-kernel irqchip a HLT
//! would no longer exit, and the original's `[KVM_EXIT_HLT: ...]` line could
//! not be printed): the console's line is a flag, injected with
//! KVM_INTERRUPT at `CONSOLE_VECTOR` when the guest can take it, as QEMU does
//! with a userspace irqchip. A HLT with interrupts disabled ends the run; a
//! HLT with interrupts enabled waits for the next interrupt: from the input
//! thread, or from the kernel's call eventfd in vhost mode.

use std::fs::File;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kvm_bindings::{kvm_interrupt, kvm_userspace_memory_region, KVMIO, KVM_INTERNAL_ERROR_EMULATION};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use thiserror::Error;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress};
use vmm_sys_util::{ioctl::ioctl_with_ref, ioctl_iow_nr};

use vm_device::bus::{MmioAddress, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};

use crate::boot;
use crate::bus::{self, VirtioSlot};
use crate::devices::debug_port::{DebugPort, DEBUG_PORT};
use crate::devices::irq::PendingIrq;
use crate::input;
use crate::loader::{self, LoadError};
use crate::stats::Stats;
use crate::timer::KickTimer;
use crate::virtio::mmio::{Lifecycle, MmioTransport};
use crate::virtio::vhost_console::VhostError;
use crate::virtio::VirtioDevice;
use crate::warn;

/// Where the console's register window sits; RAM ends below it.
pub const CONSOLE_MMIO_BASE: u64 = 0x1000_0000;
pub const MAX_MEM_MIB: u32 = (CONSOLE_MMIO_BASE >> 20) as u32;
/// The vector the console's interrupt arrives on (the guests' IDT has its
/// gate there: guest/src/interrupt.rs).
pub const CONSOLE_VECTOR: u32 = 0x20;

ioctl_iow_nr!(KVM_INTERRUPT, KVMIO, 0x86, kvm_interrupt);

#[derive(Debug, Error)]
pub enum VmError {
    #[error(
        "--mem must be from 1 to {MAX_MEM_MIB} MiB (RAM ends below the virtio-mmio window at {CONSOLE_MMIO_BASE:#x})"
    )]
    MemSize,
    #[error("cannot open /dev/kvm: {0}")]
    OpenKvm(kvm_ioctls::Error),
    #[error("KVM: {0}: {1}")]
    Kvm(&'static str, kvm_ioctls::Error),
    #[error("cannot allocate {0} MiB of guest RAM")]
    Memory(u32),
    #[error("guest image: {0}")]
    Load(#[from] LoadError),
    #[error("guest image is larger ({size} bytes) than guest RAM ({ram} bytes); raise --mem")]
    ImageTooLarge { size: u64, ram: u64 },
    #[error("boot setup: {0}")]
    Boot(#[from] boot::BootError),
    #[error("the guest shut down (triple fault) at rip {0:#x}")]
    Shutdown(u64),
    #[error("KVM could not run the guest (internal error, suberror {0}){1}")]
    Internal(u32, &'static str),
    #[error("KVM could not enter the guest (hardware entry failure {0:#x})")]
    FailEntry(u64),
    #[error("unexpected vCPU exit: {0}")]
    UnexpectedExit(String),
    #[error("{0}")]
    Vhost(#[from] VhostError),
    #[error("cannot create the vCPU kick timer: {0}")]
    Timer(std::io::Error),
    #[error("setting up the bus: {0}")]
    Bus(vm_device::bus::Error),
    #[error("cannot set up the console's interrupt: {0}")]
    Irq(std::io::Error),
    #[error("KVM_INTERRUPT failed: {0}")]
    Inject(std::io::Error),
    #[error("waiting for the guest's next interrupt failed: {0}")]
    Wait(std::io::Error),
}

/// How a run ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// HLT with interrupts disabled: the program is done.
    Halted,
    /// HLT with interrupts enabled, and nothing left that could interrupt
    /// it: its input ended and no device has work.
    Idle,
}

/// How soon a queue that stopped at its budget runs again, if the guest
/// makes no exit before.
const RESUME_DELAY: std::time::Duration = std::time::Duration::from_micros(100);

/// What a run needs.
pub struct Config<'a> {
    /// The guest ELF image.
    pub image: &'a [u8],
    pub mem_mib: u32,
    pub cmdline: &'a str,
    /// Told the console's lifecycle lines.
    pub lifecycle: Option<Lifecycle>,
    /// The console's input (the VMM's stdin), read by a thread of its own.
    pub input: Option<File>,
    /// Console features not offered to the driver.
    pub withheld_features: u64,
}

pub struct Vm<D: VirtioDevice + Send + 'static> {
    // Kept open for the VM's lifetime.
    _kvm: Kvm,
    _vm: VmFd,
    vcpu: VcpuFd,
    /// The console's window and the debug port.
    io: IoManager,
    console: Arc<Mutex<VirtioSlot<D>>>,
    debug: Arc<Mutex<DebugPort>>,
    irq: PendingIrq,
    input: Option<File>,
    /// Set by the input thread when its input ended.
    input_done: Arc<AtomicBool>,
    stats: Stats,
}

impl<D: VirtioDevice + Send + 'static> Vm<D> {
    /// Creates the VM, loads the image and sets up the vCPU to enter it;
    /// `console` makes the console device once guest RAM exists.
    pub fn new(
        config: Config,
        console: impl FnOnce(&VmFd, &GuestMemoryMmap) -> Result<D, VmError>,
    ) -> Result<Self, VmError> {
        if config.mem_mib == 0 || config.mem_mib > MAX_MEM_MIB {
            return Err(VmError::MemSize);
        }
        let ram = u64::from(config.mem_mib) << 20;
        if config.image.len() as u64 > ram {
            return Err(VmError::ImageTooLarge { size: config.image.len() as u64, ram });
        }
        let kvm = Kvm::new().map_err(VmError::OpenKvm)?;
        let vm = kvm.create_vm().map_err(|e| VmError::Kvm("create VM", e))?;
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), ram as usize)])
            .map_err(|_| VmError::Memory(config.mem_mib))?;
        let host = mem
            .iter()
            .next()
            .and_then(|r| r.get_host_address(MemoryRegionAddress(0)).ok())
            .ok_or(VmError::Memory(config.mem_mib))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            guest_phys_addr: 0,
            memory_size: ram,
            userspace_addr: host as u64,
            flags: 0,
        };
        // SAFETY: the region is a live mapping of `ram` bytes that `mem` owns
        // and keeps for as long as the VM (both live in the returned Vm).
        unsafe { vm.set_user_memory_region(region) }.map_err(|e| VmError::Kvm("set memory region", e))?;

        let image = loader::load(config.image, &mem, ram)?;
        let vcpu = vm.create_vcpu(0).map_err(|e| VmError::Kvm("create vCPU", e))?;
        boot::setup(&kvm, &vcpu, &mem, ram, image.mode, image.entry, config.cmdline)?;
        let mut transport = MmioTransport::new(console(&vm, &mem)?);
        transport.withhold_features(config.withheld_features);
        if let Some(f) = config.lifecycle {
            transport.set_lifecycle(f);
        }
        let irq = PendingIrq::new().map_err(VmError::Irq)?;
        transport.set_interrupt(Box::new(irq.clone()));
        let mut io = IoManager::new();
        let console = bus::add_virtio(&mut io, CONSOLE_MMIO_BASE, transport, &mem).map_err(VmError::Bus)?;
        let debug = Arc::new(Mutex::new(DebugPort::default()));
        io.register_pio(PioRange::new(PioAddress(DEBUG_PORT), 1).map_err(VmError::Bus)?, debug.clone())
            .map_err(VmError::Bus)?;
        Ok(Vm {
            _kvm: kvm,
            _vm: vm,
            vcpu,
            io,
            console,
            debug,
            irq,
            input: config.input,
            input_done: Arc::new(AtomicBool::new(true)),
            stats: Stats::default(),
        })
    }

    /// Runs the vCPU until the guest halts.
    pub fn run(&mut self) -> Result<Halt, VmError> {
        // The input thread is not joined: a read may block on a terminal,
        // and it holds no lock then. It ends with the process.
        if let Some(input) = self.input.take() {
            self.input_done.store(false, Ordering::SeqCst);
            let (console, done, irq) = (self.console.clone(), self.input_done.clone(), self.irq.clone());
            std::thread::Builder::new()
                .name("console-input".into())
                .spawn(move || {
                    input::read(&console, input, false, &AtomicBool::new(false));
                    done.store(true, Ordering::SeqCst);
                    irq.wake();
                })
                .map_err(VmError::Wait)?;
        }
        // Made on first use, on this (the vCPU's) thread.
        let mut kick: Option<KickTimer> = None;
        loop {
            if kick.is_some() {
                // A kick that ended the last KVM_RUN is used up.
                self.vcpu.set_kvm_immediate_exit(0);
            }
            // Any exit is a chance to go on with queue work; the timer makes sure of one.
            if self.console.lock().expect("console lock").resume() {
                if kick.is_none() {
                    kick = Some(KickTimer::new(&mut self.vcpu).map_err(VmError::Timer)?);
                }
                kick.as_ref().expect("made above").arm(RESUME_DELAY);
            }
            self.inject()?;
            match self.vcpu.run() {
                Ok(VcpuExit::MmioRead(addr, data)) => {
                    self.stats.exits_mmio += 1;
                    self.stats.mmio_reads += 1;
                    if self.io.mmio_read(MmioAddress(addr), data).is_err() {
                        warn!("mmio: {}-byte read at {addr:#x} outside any device; reads as 0", data.len());
                        data.fill(0);
                    }
                }
                Ok(VcpuExit::MmioWrite(addr, data)) => {
                    self.stats.exits_mmio += 1;
                    self.stats.mmio_writes += 1;
                    if self.io.mmio_write(MmioAddress(addr), data).is_err() {
                        warn!("mmio: {}-byte write at {addr:#x} outside any device ignored", data.len());
                    }
                }
                Ok(VcpuExit::IoOut(port, data)) => {
                    self.stats.exits_io += 1;
                    if self.io.pio_write(PioAddress(port), data).is_err() {
                        warn!("io: write to port {port:#x} ignored");
                    }
                }
                Ok(VcpuExit::IoIn(port, data)) => {
                    self.stats.exits_io += 1;
                    if self.io.pio_read(PioAddress(port), data).is_err() {
                        warn!("io: read from port {port:#x}; reads as all ones");
                        data.fill(0xff);
                    }
                }
                Ok(VcpuExit::Hlt) => {
                    self.stats.exits_hlt += 1;
                    let waits = self.vcpu.get_kvm_run().if_flag != 0;
                    if !waits || !self.wait_for_interrupt()? {
                        self.debug.lock().expect("debug port lock").flush();
                        return Ok(if waits { Halt::Idle } else { Halt::Halted });
                    }
                }
                // The guest can take the pending interrupt now.
                Ok(VcpuExit::IrqWindowOpen) => self.stats.exits_other += 1,
                Ok(exit) => {
                    self.stats.exits_other += 1;
                    let err = match exit {
                        VcpuExit::Shutdown => VmError::Shutdown(self.vcpu.get_regs().map_or(0, |r| r.rip)),
                        VcpuExit::InternalError => {
                            // SAFETY: on KVM_EXIT_INTERNAL_ERROR the kernel filled
                            // the `internal` member of the exit union.
                            let suberror = unsafe { self.vcpu.get_kvm_run().__bindgen_anon_1.internal.suberror };
                            let hint = if suberror == KVM_INTERNAL_ERROR_EMULATION {
                                ": an instruction it cannot emulate (guests must be soft-float, no SSE)"
                            } else {
                                ""
                            };
                            VmError::Internal(suberror, hint)
                        }
                        VcpuExit::FailEntry(reason, _cpu) => VmError::FailEntry(reason),
                        other => VmError::UnexpectedExit(format!("{other:?}")),
                    };
                    self.debug.lock().expect("debug port lock").flush();
                    return Err(err);
                }
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {}
                Err(e) => return Err(VmError::Kvm("run vCPU", e)),
            }
        }
    }

    /// Injects the console's interrupt if it is pending and the guest can
    /// take it; else asks KVM to exit as soon as it can (QEMU's
    /// kvm_arch_pre_run). The flags are those of the last exit.
    fn inject(&mut self) -> Result<(), VmError> {
        if !self.irq.is_pending() {
            return Ok(());
        }
        let run = self.vcpu.get_kvm_run();
        if run.ready_for_interrupt_injection != 0 && run.if_flag != 0 {
            run.request_interrupt_window = 0;
            self.irq.clear();
            let irq = kvm_interrupt { irq: CONSOLE_VECTOR };
            // SAFETY: a vCPU fd and a live kvm_interrupt; the result is checked.
            if unsafe { ioctl_with_ref(&self.vcpu, KVM_INTERRUPT(), &irq) } < 0 {
                return Err(VmError::Inject(std::io::Error::last_os_error()));
            }
            self.stats.interrupts += 1;
        } else {
            run.request_interrupt_window = 1;
        }
        Ok(())
    }

    /// The guest halted with interrupts enabled: it sleeps until its next
    /// interrupt. Returns once one is pending, or false when none can come:
    /// no device can raise one on its own, no queue has work left, and the
    /// input ended.
    fn wait_for_interrupt(&mut self) -> Result<bool, VmError> {
        loop {
            let mut slot = self.console.lock().expect("console lock");
            slot.transport.poll_device();
            let more = slot.resume();
            let mut fds: Vec<RawFd> = slot.transport.device().event_fds();
            drop(slot);
            if self.irq.is_pending() {
                return Ok(true);
            }
            if fds.is_empty() && !more && self.input_done.load(Ordering::SeqCst) {
                return Ok(false);
            }
            fds.push(self.irq.wake_fd());
            let mut pfds: Vec<libc::pollfd> =
                fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
            // A queue with work left runs again soon, as in `run`.
            let timeout = if more { RESUME_DELAY.as_millis().max(1) as i32 } else { -1 };
            // SAFETY: live pollfds, their count.
            if unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) } < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(VmError::Wait(e));
                }
            }
            self.irq.drain();
        }
    }

    pub fn stats(&mut self) -> Stats {
        let mut slot = self.console.lock().expect("console lock");
        let mut stats = Stats {
            notifications: slot.transport.notifications,
            used_notifications: slot.transport.used_notifications,
            peak_rss_kib: crate::stats::peak_rss_kib(),
            ..self.stats.clone()
        };
        slot.transport.device_mut().add_stats(&mut stats);
        stats
    }
}
