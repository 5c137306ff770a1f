//! The virtual machine: KVM objects, guest RAM, the console on virtio-mmio,
//! and the vCPU loop that runs until the guest halts.

use std::sync::{Arc, Mutex};

use kvm_bindings::{kvm_userspace_memory_region, KVM_INTERNAL_ERROR_EMULATION};
use kvm_ioctls::{IoEventAddress, Kvm, VcpuExit, VcpuFd, VmFd};
use thiserror::Error;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress};

use vm_device::bus::{MmioAddress, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};

use crate::boot;
use crate::bus::{self, VirtioSlot};
use crate::devices::debug_port::{DebugPort, DEBUG_PORT};
use crate::loader::{self, LoadError};
use crate::stats::Stats;
use crate::timer::KickTimer;
use crate::virtio::mmio::{Lifecycle, MmioTransport};
use crate::virtio::vhost_console::{VhostConsole, VhostError};
use crate::virtio::VirtioDevice;
use crate::warn;

/// Where the console's register window sits; RAM ends below it.
pub const CONSOLE_MMIO_BASE: u64 = 0x1000_0000;
pub const MAX_MEM_MIB: u32 = (CONSOLE_MMIO_BASE >> 20) as u32;

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
    #[error("KVM: cannot register the QueueNotify ioeventfd: {0}")]
    IoEvent(kvm_ioctls::Error),
    #[error("cannot create the vCPU kick timer: {0}")]
    Timer(std::io::Error),
    #[error("setting up the bus: {0}")]
    Bus(vm_device::bus::Error),
}

/// How soon a queue that stopped at its budget runs again, if the guest
/// makes no exit before.
const RESUME_DELAY: std::time::Duration = std::time::Duration::from_micros(100);

/// Offset of QueueNotify in the virtio-mmio window.
const QUEUE_NOTIFY: u64 = virtio_bindings::virtio_mmio::VIRTIO_MMIO_QUEUE_NOTIFY as u64;

/// The vhost console, with each queue's QueueNotify write (datamatch: the
/// queue index, as Firecracker does) turned into a kick eventfd by KVM.
pub fn vhost_console(
    vm: &VmFd,
    mem: &GuestMemoryMmap,
    out: std::fs::File,
    poll_us: u32,
) -> Result<VhostConsole, VmError> {
    let device = VhostConsole::new(mem, out, poll_us)?;
    for queue in 0..device.queue_max_sizes().len() {
        let notify = IoEventAddress::Mmio(CONSOLE_MMIO_BASE + QUEUE_NOTIFY);
        vm.register_ioevent(device.kick(queue), &notify, queue as u32).map_err(VmError::IoEvent)?;
    }
    Ok(device)
}

/// What a run needs.
pub struct Config<'a> {
    /// The guest ELF image.
    pub image: &'a [u8],
    pub mem_mib: u32,
    pub cmdline: &'a str,
    /// Told the console's lifecycle lines.
    pub lifecycle: Option<Lifecycle>,
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
        if let Some(f) = config.lifecycle {
            transport.set_lifecycle(f);
        }
        let mut io = IoManager::new();
        let console = bus::add_virtio(&mut io, CONSOLE_MMIO_BASE, transport, &mem).map_err(VmError::Bus)?;
        let debug = Arc::new(Mutex::new(DebugPort::default()));
        io.register_pio(PioRange::new(PioAddress(DEBUG_PORT), 1).map_err(VmError::Bus)?, debug.clone())
            .map_err(VmError::Bus)?;
        Ok(Vm { _kvm: kvm, _vm: vm, vcpu, io, console, debug, stats: Stats::default() })
    }

    /// Runs the vCPU until the guest halts.
    pub fn run(&mut self) -> Result<(), VmError> {
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
                    // No interrupt controller: the driver polls the used ring,
                    // and InterruptStatus records what would be raised.
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
                    self.debug.lock().expect("debug port lock").flush();
                    return Ok(());
                }
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
