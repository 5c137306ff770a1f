//! One VM for every guest: the KVM objects, guest RAM, the buses and their
//! devices, and the vCPUs; `run` starts a thread per vCPU and serves the
//! devices' events on the calling thread (`event_loop`) until the VM stops.
//!
//! What differs between the two kinds of guest is the platform (`x86`):
//! - a bare-metal ELF gets one vCPU, RAM below its console's window, no
//!   interrupt controller (HLT must come out to the VMM: the original demo's
//!   `[KVM_EXIT_HLT: ...]` line), its console's interrupt injected by the
//!   vCPU loop at a fixed vector, and the debug port;
//! - a Linux kernel gets the in-kernel irqchip and PIT, RAM around the
//!   32-bit device hole, the PC's legacy devices (COM1, CMOS, i8042, the
//!   ACPI power-off port), ACPI tables or an MP table, and its devices named
//!   on the command line when ACPI is off.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kvm_bindings::{kvm_pit_config, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Kvm, VmFd};
use thiserror::Error;
use vm_device::bus::{PioAddress, PioRange};
use vm_device::device_manager::{IoManager, PioManager};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::bus::{self, VirtioSlot};
use crate::devices::acpi_pm::{AcpiPm, ACPI_PM_BASE, ACPI_PM_LEN};
use crate::devices::cmos::{Cmos, CMOS_BASE, CMOS_LEN};
use crate::devices::debug_port::{DebugPort, DEBUG_PORT};
use crate::devices::i8042::{I8042, I8042_BASE, I8042_LEN};
use crate::devices::irq::{GsiLine, InjectedLine};
use crate::devices::power::{PowerLine, PowerRequest};
use crate::devices::serial::{SerialPort, COM1_BASE, COM1_LEN};
use crate::event_loop::{self, Signals};
use crate::input::Input;
use crate::kick;
use crate::stats::Stats;
use crate::vcpu::Vcpu;
use crate::virtio::block::disk::{DiskConfig, Image};
use crate::virtio::block::vhost::VhostBlock;
use crate::virtio::block::Block;
use crate::virtio::console::{Console, Port};
use crate::virtio::mmio::{Lifecycle, MmioTransport};
use crate::virtio::vhost_console::{self, VhostConsole, VhostError};
use crate::virtio::{Interrupt, IrqTrigger, VirtioDevice};
use crate::x86::elf::LoadError;
use crate::x86::layout::{self, MmioSlot, KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR, SERIAL_IRQ};
use crate::x86::linux::{self, KernelError};
use crate::x86::{acpi, boot, cpuid, elf, mptable, regs};

/// What runs in the VM.
pub enum Guest<'a> {
    /// A bare-metal ELF image (i386 or x86-64), entered through PVH.
    BareMetal { image: &'a [u8] },
    /// A Linux kernel (bzImage, or an ELF vmlinux with a PVH note).
    Linux { kernel: &'a Path, initrd: Option<&'a Path>, cpus: u8 },
}

/// Where the console's queues are processed.
pub enum ConsoleBackend {
    /// In the VMM: each QueueNotify exits to a vCPU thread here.
    Userspace,
    /// In the kernel (/dev/vhost-console): QueueNotify kicks an ioeventfd.
    Vhost { poll_us: u32, input: vhost_console::Input },
}

/// What a VM needs.
pub struct Config<'a> {
    pub guest: Guest<'a>,
    pub mem_mib: u64,
    /// The guest's command line: the bare-metal guest's (PVH start_info), or
    /// the kernel's as the user gave it (`x86::linux::cmdline` adds the VMM's
    /// part).
    pub cmdline: &'a str,
    pub console: ConsoleBackend,
    /// Where the console's bytes go (started by the caller once the VM is
    /// built).
    pub console_out: crate::output::Output,
    /// Linux: where COM1 writes.
    pub serial: Box<dyn Write + Send>,
    /// Told the console's lifecycle lines.
    pub lifecycle: Option<Lifecycle>,
    /// Console features not offered to the driver.
    pub withheld_features: u64,
    /// The disks, their images open and locked, in the order the guest
    /// finds them (after the console).
    pub disks: Vec<(DiskConfig, Image)>,
    /// The disks' requests are processed in the kernel (/dev/vhost-blk).
    pub disks_in_kernel: bool,
    /// The console's ports besides port 0.
    pub ports: Vec<Port>,
    /// The terminal's size, if the console follows one (userspace only).
    pub console_size: Option<(u16, u16)>,
}

/// How a run ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// HLT with interrupts disabled: the bare-metal program is done.
    Halted,
    /// A bare-metal guest asleep with nothing left that could wake it: its
    /// input ended and no device has work.
    Idle,
    /// The guest asked for a reset (reboot).
    Reset,
    /// The guest powered off (ACPI S5, or KVM's system event).
    PowerOff,
    /// The user typed the escape (Ctrl-A x).
    Quit,
}

#[derive(Debug, Error)]
pub enum VmError {
    #[error("--mem must be from {0} to {1} MiB{2}")]
    MemSize(u64, u64, &'static str),
    #[error("--mem {0} MiB is more than this host's memory ({1} MiB)")]
    MemHost(u64, u64),
    #[error("--cpus must be from 1 to {}", mptable::MAX_CPUS)]
    Cpus,
    #[error("cannot open /dev/kvm: {0}{1}")]
    OpenKvm(kvm_ioctls::Error, &'static str),
    #[error("KVM: {0}: {1}")]
    Kvm(&'static str, kvm_ioctls::Error),
    #[error("cannot allocate {0} MiB of guest RAM")]
    Memory(u64),
    #[error("guest image: {0}")]
    Load(#[from] LoadError),
    #[error("guest image is larger ({size} bytes) than guest RAM ({ram} bytes); raise --mem")]
    ImageTooLarge { size: u64, ram: u64 },
    #[error("boot setup: {0}")]
    Boot(#[from] boot::BootError),
    #[error("{0}")]
    Kernel(#[from] KernelError),
    #[error("{0}")]
    MpTable(#[from] mptable::MpTableError),
    #[error("ACPI tables: {0}")]
    Acpi(#[from] acpi::AcpiError),
    #[error("setting up the devices: {0}")]
    Devices(String),
    #[error("{0}")]
    Vhost(#[from] VhostError),
    #[error("{0}")]
    Disk(String),
    #[error("the guest shut down (triple fault) on vCPU {0} at rip {1:#x}")]
    TripleFault(usize, u64),
    #[error("KVM could not run vCPU {0} (internal error, suberror {1}){2}")]
    Internal(usize, u32, &'static str),
    #[error("KVM could not enter vCPU {0} (hardware entry failure {1:#x})")]
    FailEntry(usize, u64),
    #[error("unexpected exit on vCPU {0}: {1}")]
    UnexpectedExit(usize, String),
    #[error("KVM_INTERRUPT failed: {0}")]
    Inject(std::io::Error),
    #[error("stopped by {0}")]
    Signal(&'static str),
    #[error("the guest kernel panicked (it asked for a warm reset: reboot=panic_w)")]
    GuestPanic,
    #[error("{0}")]
    Output(String),
    #[error("{0}")]
    Thread(String),
}

/// Why the VM stops: the first reason given wins.
pub struct Stop {
    flag: AtomicBool,
    fd: EventFd,
    outcome: Mutex<Option<Result<Exit, VmError>>>,
}

impl Stop {
    fn new() -> std::io::Result<Self> {
        Ok(Stop { flag: AtomicBool::new(false), fd: EventFd::new(EFD_NONBLOCK)?, outcome: Mutex::new(None) })
    }

    /// Records why the VM ends, unless a reason was recorded before, and
    /// tells every thread.
    pub fn finish(&self, outcome: Result<Exit, VmError>) {
        let mut slot = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(outcome);
        }
        drop(slot);
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.fd.write(1);
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Readable once the VM stops.
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }

    fn take(&self) -> Option<Result<Exit, VmError>> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A virtio-mmio device of the VM: where it is, and its transport.
pub struct VirtioMmio {
    pub slot: MmioSlot,
    pub device: Arc<Mutex<VirtioSlot>>,
    /// InterruptStatus and the line, raised without the transport's lock.
    pub irq: Arc<IrqTrigger>,
}

impl VirtioMmio {
    pub fn lock(&self) -> MutexGuard<'_, VirtioSlot> {
        // A thread that panicked holding the lock leaves a transport whose
        // state is still consistent between register accesses.
        self.device.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the vCPU threads and the event loop share.
pub struct Shared {
    pub io: IoManager,
    pub mem: GuestMemoryMmap,
    /// The virtio devices; the console first.
    pub virtio: Vec<VirtioMmio>,
    pub stop: Stop,
    power: PowerLine,
    /// The bare-metal guests' sleep ends when nothing can wake them: the
    /// event loop sets this when their input ended.
    input_done: AtomicBool,
    /// The line a bare-metal guest's HLT waits on.
    pub injected: Option<Arc<InjectedLine>>,
    debug: Option<Arc<Mutex<DebugPort>>>,
    /// Used-buffer signals of devices whose queues run in the kernel.
    pub calls: AtomicU64,
    /// Signalled by a transport whose queue stopped at its budget.
    pub requeue: Arc<EventFd>,
}

impl Shared {
    /// What a port write asked the platform for, as how the VM ends: a reset
    /// is a panic if the kernel asked for a warm one (see
    /// `x86::linux::cmdline`).
    pub fn power_request(&self) -> Option<Result<Exit, VmError>> {
        Some(match self.power.take()? {
            PowerRequest::PowerOff => Ok(Exit::PowerOff),
            PowerRequest::Reset => match self.mem.read_obj::<u16>(GuestAddress(linux::BDA_RESET_FLAG)) {
                Ok(linux::WARM_RESET) => Err(VmError::GuestPanic),
                _ => Ok(Exit::Reset),
            },
        })
    }

    pub fn input_done(&self) -> bool {
        self.input_done.load(Ordering::SeqCst)
    }

    /// The guest gets no more input; a sleeping bare-metal guest looks
    /// whether anything else can still wake it.
    pub fn end_input(&self) {
        self.input_done.store(true, Ordering::SeqCst);
        if let Some(line) = &self.injected {
            line.wake();
        }
    }

    /// Whether no device can interrupt the guest any more on its own.
    pub fn idle(&self) -> bool {
        self.virtio.iter().all(|v| {
            let slot = v.lock();
            slot.transport.idle(&slot.mem)
        })
    }
}

/// How a run went.
pub struct Outcome {
    pub result: Result<Exit, VmError>,
    pub stats: Stats,
    /// Device failures (DEVICE_NEEDS_RESET) during the run, by device name.
    pub device_failures: Vec<(&'static str, u64)>,
    /// The bare-metal guest reported a failure on its debug port.
    pub guest_failed: bool,
}

pub struct Vm {
    _kvm: Kvm,
    _fd: Arc<VmFd>,
    vcpus: Vec<Vcpu>,
    shared: Arc<Shared>,
}

/// What a platform (bare-metal or Linux) hands the common part of the VM.
struct Platform {
    mem: GuestMemoryMmap,
    io: IoManager,
    /// The virtio devices' windows and lines: the console's, then one per disk.
    slots: Vec<(MmioSlot, Arc<dyn Interrupt>)>,
    power: PowerLine,
    injected: Option<Arc<InjectedLine>>,
    debug: Option<Arc<Mutex<DebugPort>>>,
    vcpus: Vec<Vcpu>,
}

/// Where a virtio device goes: the buses, and what its transport signals.
struct Bus<'a> {
    mem: &'a GuestMemoryMmap,
    io: &'a mut IoManager,
    requeue: &'a Arc<EventFd>,
}

/// Lets each device drain what it holds for its output (the vhost relay's
/// pipe): for as long as its reader takes, if the VM ended well; half a
/// second if it ended on an error, or once SIGINT, SIGTERM, SIGHUP or
/// SIGQUIT comes meanwhile; then what is left is abandoned (and reported as
/// lost by its output).
fn wind_down(shared: &Shared, signals: &mut Signals, failed: bool) {
    let grace = Duration::from_millis(500);
    let mut deadline = failed.then(|| Instant::now() + grace);
    for v in &shared.virtio {
        loop {
            let step = Instant::now() + Duration::from_millis(100);
            if v.lock().transport.device_mut().wind_down(deadline.map_or(step, |d| d.min(step))) {
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                v.lock().transport.device_mut().abandon();
                break;
            }
            if signals.take().is_some_and(event_loop::stops_vm) && deadline.is_none() {
                deadline = Some(Instant::now() + grace);
            }
        }
    }
}

/// The host's memory in MiB (MemTotal), if /proc tells it.
fn host_memory_mib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 =
        meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse().ok())?;
    Some(kib >> 10)
}

fn open_kvm() -> Result<Kvm, VmError> {
    Kvm::new().map_err(|e| {
        let hint = match e.errno() {
            libc::EACCES | libc::EPERM => " (join the kvm group: sudo usermod -aG kvm $USER, then log in again)",
            libc::ENOENT => " (no KVM here: load kvm_intel or kvm_amd, or enable virtualization)",
            _ => "",
        };
        VmError::OpenKvm(e, hint)
    })
}

/// Guest RAM in `regions`, mapped into the VM, one KVM slot per region.
fn guest_memory(vm: &VmFd, regions: &[(GuestAddress, usize)], mem_mib: u64) -> Result<GuestMemoryMmap, VmError> {
    let mem = GuestMemoryMmap::from_ranges(regions).map_err(|_| VmError::Memory(mem_mib))?;
    for (slot, region) in mem.iter().enumerate() {
        let host = region.get_host_address(MemoryRegionAddress(0)).map_err(|_| VmError::Memory(mem_mib))?;
        let region = kvm_userspace_memory_region {
            slot: slot as u32,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
            flags: 0,
        };
        // SAFETY: the region is a live mapping that `mem` owns; the VM keeps
        // `mem` (in `Shared`) for as long as the VM fd lives.
        unsafe { vm.set_user_memory_region(region) }.map_err(|e| VmError::Kvm("set memory region", e))?;
    }
    Ok(mem)
}

fn bus_error(e: vm_device::bus::Error) -> VmError {
    VmError::Devices(e.to_string())
}

fn add_pio<D: vm_device::MutDevicePio + Send + 'static>(
    io: &mut IoManager,
    base: u16,
    len: u16,
    device: D,
) -> Result<(), VmError> {
    io.register_pio(PioRange::new(PioAddress(base), len).map_err(bus_error)?, Arc::new(Mutex::new(device)))
        .map_err(bus_error)
}

impl Vm {
    /// Creates the VM: checks the configuration, allocates RAM, loads the
    /// guest, creates the devices and sets up every vCPU to enter it.
    pub fn new(config: Config) -> Result<Self, VmError> {
        let (min, max, why) = match config.guest {
            Guest::BareMetal { .. } => (1, boot::MAX_MEM_MIB, " (RAM ends below the virtio-mmio window at 0x10000000)"),
            Guest::Linux { .. } => (32, layout::MAX_MEM_MIB, " for a Linux guest"),
        };
        if config.mem_mib < min || config.mem_mib > max {
            return Err(VmError::MemSize(min, max, why));
        }
        if let Some(host) = host_memory_mib().filter(|&host| config.mem_mib > host) {
            return Err(VmError::MemHost(config.mem_mib, host));
        }
        let ram = config.mem_mib << 20;
        if let Guest::BareMetal { image } = config.guest {
            if image.len() as u64 > ram {
                return Err(VmError::ImageTooLarge { size: image.len() as u64, ram });
            }
        }
        if let Guest::Linux { cpus, .. } = config.guest {
            if cpus == 0 || cpus > mptable::MAX_CPUS {
                return Err(VmError::Cpus);
            }
        }
        let kvm = open_kvm()?;
        let vm = kvm.create_vm().map_err(|e| VmError::Kvm("create VM", e))?;
        match config.guest {
            Guest::BareMetal { image } => Self::bare_metal(kvm, vm, image, ram, config),
            Guest::Linux { kernel, initrd, cpus } => Self::linux(kvm, vm, kernel, initrd, cpus, ram, config),
        }
    }

    fn bare_metal(kvm: Kvm, vm: VmFd, image: &[u8], ram: u64, config: Config) -> Result<Self, VmError> {
        let mem = guest_memory(&vm, &[(GuestAddress(0), ram as usize)], config.mem_mib)?;
        let loaded = elf::load(image, &mem, ram)?;
        let fd = vm.create_vcpu(0).map_err(|e| VmError::Kvm("create vCPU", e))?;
        boot::setup(&kvm, &fd, &mem, ram, loaded.mode, loaded.entry, config.cmdline)?;
        let line = Arc::new(InjectedLine::new().map_err(|e| VmError::Devices(e.to_string()))?);
        let mut io = IoManager::new();
        let debug = Arc::new(Mutex::new(DebugPort::default()));
        io.register_pio(PioRange::new(PioAddress(DEBUG_PORT), 1).map_err(bus_error)?, debug.clone())
            .map_err(bus_error)?;
        let shared_line: Arc<dyn Interrupt> = line.clone();
        let slots = boot::virtio_slots().take(1 + config.disks.len()).map(|s| (s, shared_line.clone())).collect();
        let platform = Platform {
            mem,
            io,
            slots,
            power: PowerLine::default(),
            injected: Some(line.clone()),
            debug: Some(debug),
            vcpus: vec![Vcpu { id: 0, fd, injected: Some((line, boot::CONSOLE_VECTOR)) }],
        };
        Self::finish(kvm, Arc::new(vm), platform, config)
    }

    fn linux(
        kvm: Kvm,
        vm: VmFd,
        kernel: &Path,
        initrd: Option<&Path>,
        cpus: u8,
        ram: u64,
        mut config: Config,
    ) -> Result<Self, VmError> {
        let mem = guest_memory(&vm, &layout::ram_regions(ram), config.mem_mib)?;
        vm.set_tss_address(KVM_TSS_ADDR as usize).map_err(|e| VmError::Kvm("set TSS address", e))?;
        vm.set_identity_map_address(KVM_IDENTITY_MAP_ADDR).map_err(|e| VmError::Kvm("set identity map", e))?;
        vm.create_irq_chip().map_err(|e| VmError::Kvm("create irqchip", e))?;
        let pit = kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() };
        vm.create_pit2(pit).map_err(|e| VmError::Kvm("create PIT", e))?;

        // The devices, first in the hole: the console, then the disks.
        let slots: Vec<MmioSlot> = layout::virtio_slots().take(1 + config.disks.len()).collect();
        let cmdline = linux::cmdline(config.cmdline, &slots)?;
        let acpi = !linux::acpi_off(&cmdline);
        mptable::write(&mem, cpus)?;
        let rsdp = if acpi { Some(acpi::write_tables(&mem, cpus, &slots)?) } else { None };
        let kernel = linux::load(&mem, ram, kernel, initrd, &cmdline, rsdp)?;

        let supported = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(|e| VmError::Kvm("get CPUID", e))?;
        let mut vcpus = Vec::new();
        for id in 0..cpus {
            let fd = vm.create_vcpu(id.into()).map_err(|e| VmError::Kvm("create vCPU", e))?;
            let mut cpuid = supported.clone();
            cpuid::for_vcpu(&mut cpuid, id, cpus);
            fd.set_cpuid2(&cpuid).map_err(|e| VmError::Kvm("set CPUID", e))?;
            regs::set_msrs(&fd).map_err(|e| VmError::Kvm("set MSRs", e))?;
            regs::set_fpu(&fd).map_err(|e| VmError::Kvm("set FPU", e))?;
            regs::set_lint(&fd).map_err(|e| VmError::Kvm("set LAPIC", e))?;
            // The others wait for the boot CPU's INIT and SIPI, in KVM.
            if id == 0 {
                boot::set_segments(&fd, &mem, kernel.mode)?;
                regs::set_boot_regs(&fd, kernel.entry, kernel.mode, kernel.boot_info)
                    .map_err(|e| VmError::Kvm("set registers", e))?;
            }
            vcpus.push(Vcpu { id: id.into(), fd, injected: None });
        }

        let vm = Arc::new(vm);
        let power = PowerLine::default();
        let mut io = IoManager::new();
        let serial = std::mem::replace(&mut config.serial, Box::new(std::io::sink()));
        add_pio(&mut io, COM1_BASE, COM1_LEN, SerialPort::new(GsiLine::new(vm.clone(), SERIAL_IRQ), serial))?;
        add_pio(&mut io, CMOS_BASE, CMOS_LEN, Cmos::default())?;
        add_pio(&mut io, I8042_BASE, I8042_LEN, I8042::new(power.clone()))?;
        add_pio(&mut io, ACPI_PM_BASE, ACPI_PM_LEN, AcpiPm::new(power.clone()))?;
        let slots = slots
            .into_iter()
            .map(|slot| {
                let gsi = slot.gsi.expect("Linux slots have a GSI");
                (slot, Arc::new(GsiLine::new(vm.clone(), gsi)) as Arc<dyn Interrupt>)
            })
            .collect();
        let platform = Platform { mem, io, slots, power, injected: None, debug: None, vcpus };
        Self::finish(kvm, vm, platform, config)
    }

    /// What both kinds of VM have once their platform is set up: the
    /// console and the disks behind their transports, and what the threads
    /// share.
    fn finish(kvm: Kvm, vm: Arc<VmFd>, mut p: Platform, config: Config) -> Result<Self, VmError> {
        let eventfd = || EventFd::new(EFD_NONBLOCK).map_err(|e| VmError::Devices(e.to_string()));
        let requeue = Arc::new(eventfd()?);
        let mut slots = std::mem::take(&mut p.slots).into_iter();
        let (console_slot, console_line) = slots.next().expect("the console has a slot");
        let extras = (config.ports, config.console_size);
        let console = Self::console(&vm, &p.mem, console_slot, config.console, config.console_out, extras)?;
        let mut virtio = vec![Self::transport(
            console,
            console_slot,
            console_line,
            (config.lifecycle, config.withheld_features),
            Bus { mem: &p.mem, io: &mut p.io, requeue: &requeue },
        )?];
        for (i, ((disk, image), (slot, line))) in config.disks.into_iter().zip(slots).enumerate() {
            let block: Box<dyn VirtioDevice> = if config.disks_in_kernel {
                Box::new(VhostBlock::on_mmio(&vm, &p.mem, slot.base, disk, image).map_err(VmError::Disk)?)
            } else {
                let mut block = Block::new(disk, image, &p.mem, i).map_err(VmError::Disk)?;
                let kick = eventfd()?;
                let notify = kvm_ioctls::IoEventAddress::Mmio(slot.base + crate::virtio::mmio::QUEUE_NOTIFY);
                vm.register_ioevent(&kick, &notify, 0u32).map_err(|e| VmError::Kvm("register an ioeventfd", e))?;
                block.set_kick(kick);
                Box::new(block)
            };
            // Of a disk's bring-up, only its end is worth a line.
            let live = crate::virtio::mmio::live_message("block");
            let lifecycle: Lifecycle = Box::new(move |line| {
                if line == live {
                    crate::log::line(format_args!("{line}"));
                }
            });
            let bus = Bus { mem: &p.mem, io: &mut p.io, requeue: &requeue };
            virtio.push(Self::transport(block, slot, line, (Some(lifecycle), 0), bus)?);
        }
        let shared = Shared {
            io: p.io,
            mem: p.mem,
            virtio,
            stop: Stop::new().map_err(|e| VmError::Devices(e.to_string()))?,
            power: p.power,
            input_done: AtomicBool::new(false),
            injected: p.injected,
            debug: p.debug,
            calls: AtomicU64::new(0),
            requeue,
        };
        Ok(Vm { _kvm: kvm, _fd: vm, vcpus: p.vcpus, shared: Arc::new(shared) })
    }

    /// The console device, in userspace or in the kernel.
    fn console(
        vm: &VmFd,
        mem: &GuestMemoryMmap,
        slot: MmioSlot,
        backend: ConsoleBackend,
        out: crate::output::Output,
        (ports, size): (Vec<Port>, Option<(u16, u16)>),
    ) -> Result<Box<dyn VirtioDevice>, VmError> {
        Ok(match backend {
            ConsoleBackend::Userspace => {
                let mut console = Console::new(out);
                if let Some((cols, rows)) = size {
                    console = console.with_size(cols, rows);
                }
                Box::new(console.with_ports(ports).map_err(|e| VmError::Devices(format!("console ports: {e}")))?)
            }
            ConsoleBackend::Vhost { poll_us, input } => {
                Box::new(VhostConsole::on_mmio(vm, mem, slot.base, out, input, poll_us, (ports, size))?)
            }
        })
    }

    /// Puts `device` on the MMIO bus at `slot` behind its transport, which
    /// reports to `lifecycle` and withholds `withheld` features.
    fn transport(
        device: Box<dyn VirtioDevice>,
        slot: MmioSlot,
        line: Arc<dyn Interrupt>,
        (lifecycle, withheld): (Option<Lifecycle>, u64),
        bus: Bus,
    ) -> Result<VirtioMmio, VmError> {
        let irq = Arc::new(IrqTrigger::new(Some(line)));
        let mut transport = MmioTransport::new(device, irq.clone());
        transport.withhold_features(withheld);
        transport.set_requeue(bus.requeue.clone());
        if let Some(f) = lifecycle {
            transport.set_lifecycle(f);
        }
        let device = bus::add_virtio(bus.io, slot.base, transport, bus.mem).map_err(bus_error)?;
        Ok(VirtioMmio { slot, device, irq })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs every vCPU on its own thread and the devices' events on this
    /// one, until the guest ends, a vCPU fails, the user quits or a signal
    /// arrives. `signals` must be the signalfd of the signals this process
    /// blocked before it started any thread.
    pub fn run(self, input: Option<Input>, signals: &mut Signals) -> Outcome {
        let mut stats = Stats::default();
        let shared = self.shared;
        if let Err(e) = kick::install_handler() {
            return Outcome {
                result: Err(VmError::Thread(format!("cannot install the vCPU kick handler: {e}"))),
                stats,
                device_failures: Vec::new(),
                guest_failed: false,
            };
        }
        // Each vCPU thread tells the event loop when it ends, however it
        // ends (a panic included).
        struct Exited<'a>(&'a Stop, usize);
        impl Drop for Exited<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.finish(Err(VmError::Thread(format!("vCPU {} failed (a bug: see the panic above)", self.1))));
                }
                let _ = self.0.fd.write(1);
            }
        }
        let (ids_tx, ids_rx) = std::sync::mpsc::channel::<libc::pthread_t>();
        let mut threads = Vec::new();
        for vcpu in self.vcpus {
            let vcpu_shared = shared.clone();
            let ids_tx = ids_tx.clone();
            let id = vcpu.id;
            let spawned = std::thread::Builder::new().name(format!("vcpu{id}")).spawn(move || {
                let _exited = Exited(&vcpu_shared.stop, id);
                // SAFETY: no preconditions.
                let _ = ids_tx.send(unsafe { libc::pthread_self() });
                vcpu.run(&vcpu_shared)
            });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    shared.stop.finish(Err(VmError::Thread(format!("cannot start vCPU {id}: {e}"))));
                    break;
                }
            }
        }
        drop(ids_tx);
        let ids: Vec<libc::pthread_t> = ids_rx.iter().take(threads.len()).collect();

        if !shared.stop.is_set() {
            if let Err(e) = event_loop::run(&shared, input, signals) {
                shared.stop.finish(Err(e));
            }
        }
        // One reason to stop stops everything.
        shared.stop.finish(Ok(Exit::Reset));
        let deadline = Instant::now() + Duration::from_secs(2);
        while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            for &t in &ids {
                kick::kick(t);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut result = shared.stop.take().unwrap_or(Ok(Exit::Reset));
        for (id, t) in threads.into_iter().enumerate() {
            if !t.is_finished() {
                // Not joined: it is stuck in the kernel; the process ends soon.
                if result.is_ok() {
                    result = Err(VmError::Thread(format!("vCPU {id} did not stop")));
                }
                continue;
            }
            match t.join() {
                Ok(s) => stats.add_exits(&s),
                Err(_) if result.is_ok() => {
                    result = Err(VmError::Thread(format!("vCPU {id} failed (a bug: see the panic above)")))
                }
                Err(_) => {}
            }
        }
        wind_down(&shared, signals, result.is_err());
        let mut device_failures = Vec::new();
        for v in &shared.virtio {
            let mut slot = v.lock();
            stats.notifications += slot.transport.notifications;
            if slot.transport.kicks != 0 {
                *stats.ioeventfd_notifications.get_or_insert(0) += slot.transport.kicks;
            }
            stats.used_notifications += slot.transport.used_notifications;
            slot.transport.device_mut().add_stats(&mut stats);
            if slot.transport.failures() > 0 {
                device_failures.push((slot.transport.device().name(), slot.transport.failures()));
            }
        }
        stats.used_notifications += shared.calls.load(Ordering::Relaxed);
        stats.peak_rss_kib = crate::stats::peak_rss_kib();
        let guest_failed = shared.debug.as_ref().is_some_and(|d| {
            let mut d = d.lock().unwrap_or_else(|e| e.into_inner());
            d.flush();
            d.used()
        });
        Outcome { result, stats, device_failures, guest_failed }
    }
}
