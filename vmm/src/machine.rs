//! A VM that boots Linux: RAM around the 32-bit device hole, the in-kernel
//! irqchip (PIC, IOAPIC, local APICs) and PIT, an MP table, the COM1 UART,
//! the CMOS clock and the i8042 on the port-I/O bus, the virtio console on the MMIO bus with its
//! interrupt on an IOAPIC pin, and one thread per vCPU. The guest's reset
//! (through the i8042) ends the VM; so do a triple fault, a fatal error and
//! SIGINT/SIGTERM, each stopping every vCPU thread.

use std::fs::File;
use std::io::Write;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvm_bindings::{kvm_pit_config, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use thiserror::Error;
use vm_device::bus::{MmioAddress, PioAddress, PioRange};
use vm_device::device_manager::{IoManager, MmioManager, PioManager};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion, MemoryRegionAddress};

use crate::boot;
use crate::bus::{self, VirtioSlot};
use crate::devices::cmos::{Cmos, CMOS_BASE, CMOS_LEN};
use crate::devices::i8042::{ResetLine, I8042, I8042_BASE, I8042_LEN};
use crate::devices::irq::IrqLine;
use crate::devices::serial::{SerialPort, COM1_BASE, COM1_LEN};
use crate::input;
use crate::stats::Stats;
use crate::timer::{self, KickTimer};
use crate::virtio::mmio::{Lifecycle, MmioTransport};
use crate::virtio::VirtioDevice;
use crate::warn;
use crate::x86::layout::{self, KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR, SERIAL_IRQ, VIRTIO_CONSOLE_IRQ, VIRTIO_MMIO_BASE};
use crate::x86::linux::{self, KernelError};
use crate::x86::{cpuid, mptable, regs};

/// RAM a Linux guest may have, in MiB: what the host gives, up to 1 TiB.
pub const MAX_MEM_MIB: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum MachineError {
    #[error("--mem must be from 32 MiB to {MAX_MEM_MIB} MiB for a Linux guest")]
    MemSize,
    #[error("--cpus must be from 1 to {}", mptable::MAX_CPUS)]
    Cpus,
    #[error("cannot open /dev/kvm: {0}")]
    OpenKvm(kvm_ioctls::Error),
    #[error("KVM: {0}: {1}")]
    Kvm(&'static str, kvm_ioctls::Error),
    #[error("cannot allocate {0} MiB of guest RAM")]
    Memory(u64),
    #[error("{0}")]
    Kernel(#[from] KernelError),
    #[error("{0}")]
    MpTable(#[from] mptable::MpTableError),
    #[error("boot setup: {0}")]
    Boot(#[from] boot::BootError),
    #[error("setting up the devices: {0}")]
    Devices(String),
    #[error("{0}")]
    Vhost(#[from] crate::virtio::vhost_console::VhostError),
    #[error("the guest shut down (triple fault) on vCPU {0} at rip {1:#x}")]
    TripleFault(usize, u64),
    #[error("KVM could not run vCPU {0} (internal error, suberror {1})")]
    Internal(usize, u32),
    #[error("KVM could not enter vCPU {0} (hardware entry failure {1:#x})")]
    FailEntry(usize, u64),
    #[error("unexpected exit on vCPU {0}: {1}")]
    UnexpectedExit(usize, String),
    #[error("stopped by {0}")]
    Signal(&'static str),
    #[error("the guest kernel panicked (it asked for a warm reset: reboot=panic_w)")]
    GuestPanic,
}

/// How the VM ended, when it ended well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The guest asked for a reset (reboot).
    Reset,
    /// KVM_SYSTEM_EVENT_SHUTDOWN (power-off).
    PowerOff,
    /// The user typed the escape (Ctrl-A x).
    Quit,
}

/// What a Linux run needs.
pub struct Config<'a> {
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    pub cmdline: &'a str,
    pub mem_mib: u64,
    pub cpus: u8,
    /// Where COM1's output goes.
    pub serial: Box<dyn Write + Send>,
    /// The guest console's input (the VMM's stdin), and whether it is a
    /// terminal, whose Ctrl-A x quits.
    pub input: Option<(File, bool)>,
    /// Told the console's lifecycle lines.
    pub lifecycle: Option<Lifecycle>,
    /// Console features not offered to the driver.
    pub withheld_features: u64,
}

/// What the vCPU threads share.
struct Shared<D: VirtioDevice> {
    io: IoManager,
    mem: GuestMemoryMmap,
    console: Arc<Mutex<VirtioSlot<D>>>,
    reset: ResetLine,
    stop: AtomicBool,
    /// The first reason a vCPU stopped for.
    outcome: Mutex<Option<Result<Exit, MachineError>>>,
}

impl<D: VirtioDevice> Shared<D> {
    /// Records why the VM ends (the first reason wins) and stops every vCPU.
    fn finish(&self, outcome: Result<Exit, MachineError>, threads: &[libc::pthread_t]) {
        let mut slot = self.outcome.lock().expect("outcome lock");
        if slot.is_none() {
            *slot = Some(outcome);
        }
        drop(slot);
        self.stop.store(true, Ordering::SeqCst);
        for &t in threads {
            timer::kick(t);
        }
    }
}

pub struct Machine<D: VirtioDevice + 'static> {
    _kvm: Kvm,
    _vm: Arc<VmFd>,
    vcpus: Vec<VcpuFd>,
    shared: Arc<Shared<D>>,
    input: Option<(File, bool)>,
}

/// Where x86 Linux writes its reset mode before it resets: 0x1234 for a
/// warm reset (the BIOS data area's reset flag, arch/x86/kernel/reboot.c).
const BDA_RESET_FLAG: u64 = 0x472;
const WARM_RESET: u16 = 0x1234;

/// The kernel command line: the user's (or a default), plus what the VMM
/// needs unless the user said otherwise: the virtio-mmio device, as QEMU's
/// microvm and Firecracker name it (`virtio_mmio.device=<size>@<base>:<irq>`),
/// and a warm reset on panic (`reboot=panic_w`; a reboot stays cold), by
/// which the VMM tells a panic from a reboot.
pub fn kernel_cmdline(user: &str) -> String {
    let mut line = if user.trim().is_empty() { "console=ttyS0 reboot=k panic=1".to_string() } else { user.to_string() };
    if !line.contains("virtio_mmio.device=") {
        line += &format!(" virtio_mmio.device=4K@{VIRTIO_MMIO_BASE:#x}:{VIRTIO_CONSOLE_IRQ}");
    }
    if !line.contains("panic_") {
        line += " reboot=panic_w";
    }
    line
}

/// A reset through the i8042: a reboot, or a panic if the kernel asked for a
/// warm one (see `kernel_cmdline`).
fn reset_outcome(mem: &GuestMemoryMmap) -> Result<Exit, MachineError> {
    use vm_memory::{Bytes, GuestAddress};
    match mem.read_obj::<u16>(GuestAddress(BDA_RESET_FLAG)) {
        Ok(WARM_RESET) => Err(MachineError::GuestPanic),
        _ => Ok(Exit::Reset),
    }
}

impl<D: VirtioDevice + Send + 'static> Machine<D> {
    /// Creates the VM, loads the kernel and sets up every vCPU; `console`
    /// makes the console device once guest RAM exists.
    pub fn new(
        config: Config,
        console: impl FnOnce(&VmFd, &GuestMemoryMmap) -> Result<D, MachineError>,
    ) -> Result<Self, MachineError> {
        if config.mem_mib < 32 || config.mem_mib > MAX_MEM_MIB {
            return Err(MachineError::MemSize);
        }
        if config.cpus == 0 || config.cpus > mptable::MAX_CPUS {
            return Err(MachineError::Cpus);
        }
        let ram = config.mem_mib << 20;
        let kvm = Kvm::new().map_err(MachineError::OpenKvm)?;
        let vm = kvm.create_vm().map_err(|e| MachineError::Kvm("create VM", e))?;
        let mem = GuestMemoryMmap::from_ranges(&layout::ram_regions(ram))
            .map_err(|_| MachineError::Memory(config.mem_mib))?;
        for (slot, region) in mem.iter().enumerate() {
            let host =
                region.get_host_address(MemoryRegionAddress(0)).map_err(|_| MachineError::Memory(config.mem_mib))?;
            let region = kvm_userspace_memory_region {
                slot: slot as u32,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: host as u64,
                flags: 0,
            };
            // SAFETY: the region is a live mapping that `mem` owns; the
            // Machine keeps `mem` (through the console slot) as long as the VM.
            unsafe { vm.set_user_memory_region(region) }.map_err(|e| MachineError::Kvm("set memory region", e))?;
        }
        vm.set_tss_address(KVM_TSS_ADDR as usize).map_err(|e| MachineError::Kvm("set TSS address", e))?;
        vm.set_identity_map_address(KVM_IDENTITY_MAP_ADDR).map_err(|e| MachineError::Kvm("set identity map", e))?;
        vm.create_irq_chip().map_err(|e| MachineError::Kvm("create irqchip", e))?;
        let pit = kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() };
        vm.create_pit2(pit).map_err(|e| MachineError::Kvm("create PIT", e))?;

        mptable::write(&mem, config.cpus)?;
        let cmdline = kernel_cmdline(config.cmdline);
        let kernel = linux::load(&mem, ram, config.kernel, config.initrd, &cmdline)?;

        let supported =
            kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(|e| MachineError::Kvm("get CPUID", e))?;
        let mut vcpus = Vec::new();
        for id in 0..config.cpus {
            let vcpu = vm.create_vcpu(id.into()).map_err(|e| MachineError::Kvm("create vCPU", e))?;
            let mut cpuid = supported.clone();
            cpuid::for_vcpu(&mut cpuid, id, config.cpus);
            vcpu.set_cpuid2(&cpuid).map_err(|e| MachineError::Kvm("set CPUID", e))?;
            regs::set_msrs(&vcpu).map_err(|e| MachineError::Kvm("set MSRs", e))?;
            regs::set_fpu(&vcpu).map_err(|e| MachineError::Kvm("set FPU", e))?;
            regs::set_lint(&vcpu).map_err(|e| MachineError::Kvm("set LAPIC", e))?;
            // The others wait for the boot CPU's INIT and SIPI, in KVM.
            if id == 0 {
                boot::set_segments(&vcpu, &mem, kernel.mode)?;
                regs::set_boot_regs(&vcpu, kernel.entry, kernel.mode, kernel.boot_info)
                    .map_err(|e| MachineError::Kvm("set registers", e))?;
            }
            vcpus.push(vcpu);
        }

        let reset = ResetLine::default();
        let vm = Arc::new(vm);
        let serial = SerialPort::new(IrqLine::new(vm.clone(), SERIAL_IRQ), config.serial);
        let mut transport = MmioTransport::new(console(&vm, &mem)?);
        transport.withhold_features(config.withheld_features);
        if let Some(f) = config.lifecycle {
            transport.set_lifecycle(f);
        }
        transport.set_interrupt(Box::new(IrqLine::new(vm.clone(), VIRTIO_CONSOLE_IRQ)));
        let mut io = IoManager::new();
        let bus = |e: vm_device::bus::Error| MachineError::Devices(e.to_string());
        let console = bus::add_virtio(&mut io, VIRTIO_MMIO_BASE, transport, &mem).map_err(bus)?;
        io.register_pio(PioRange::new(PioAddress(COM1_BASE), COM1_LEN).map_err(bus)?, Arc::new(Mutex::new(serial)))
            .map_err(bus)?;
        io.register_pio(
            PioRange::new(PioAddress(CMOS_BASE), CMOS_LEN).map_err(bus)?,
            Arc::new(Mutex::new(Cmos::default())),
        )
        .map_err(bus)?;
        io.register_pio(
            PioRange::new(PioAddress(I8042_BASE), I8042_LEN).map_err(bus)?,
            Arc::new(Mutex::new(I8042::new(reset.clone()))),
        )
        .map_err(bus)?;
        let shared =
            Arc::new(Shared { io, mem, console, reset, stop: AtomicBool::new(false), outcome: Mutex::new(None) });
        Ok(Machine { _kvm: kvm, _vm: vm, vcpus, shared, input: config.input })
    }

    /// Runs every vCPU on its own thread until the guest resets, a vCPU
    /// fails, or SIGINT/SIGTERM arrives. Returns how it ended and the exits.
    pub fn run(self) -> (Result<Exit, MachineError>, Stats) {
        if let Err(e) = timer::install_handler() {
            return (
                Err(MachineError::Devices(format!("cannot install the vCPU kick handler: {e}"))),
                Stats::default(),
            );
        }
        // SIGINT and SIGTERM are taken below, by this thread: blocked here
        // before the vCPU threads start, they stay blocked there.
        let signals = block_signals();
        let (ids_tx, ids_rx) = std::sync::mpsc::channel::<libc::pthread_t>();
        let threads: Vec<_> = self
            .vcpus
            .into_iter()
            .enumerate()
            .map(|(id, vcpu)| {
                let shared = self.shared.clone();
                let ids_tx = ids_tx.clone();
                std::thread::Builder::new()
                    .name(format!("vcpu{id}"))
                    .spawn(move || {
                        // SAFETY: no preconditions.
                        let _ = ids_tx.send(unsafe { libc::pthread_self() });
                        run_vcpu(id, vcpu, &shared)
                    })
                    .expect("spawn a vCPU thread")
            })
            .collect();
        let ids: Vec<libc::pthread_t> = ids_rx.iter().take(threads.len()).collect();
        // The input thread ends at end of input or when `stop` is set; it is
        // not joined (a read may block on a terminal) and holds no lock then.
        if let Some((input, terminal)) = self.input {
            let (shared, ids) = (self.shared.clone(), ids.clone());
            std::thread::Builder::new()
                .name("console-input".into())
                .spawn(move || {
                    if input::read(&shared.console, input, terminal, &shared.stop) == input::End::Quit {
                        shared.finish(Ok(Exit::Quit), &ids);
                    }
                })
                .expect("spawn the input thread");
        }
        // A device whose queues run in the kernel (vhost) signals used
        // buffers and errors on eventfds: this thread turns them into
        // InterruptStatus bits and then the interrupt, so that the guest's
        // handler reads the bit the interrupt was for. QEMU does the same for
        // vhost on virtio-mmio (its main loop reads the call eventfd, sets
        // the ISR bit and raises the line): an irqfd straight from the kernel
        // would leave InterruptStatus 0, and Linux's vm_interrupt answers that
        // with IRQ_NONE.
        let fds = self.shared.console.lock().expect("console lock").transport.device().event_fds();
        let events = (!fds.is_empty()).then(|| {
            let shared = self.shared.clone();
            std::thread::Builder::new()
                .name("device-events".into())
                .spawn(move || device_events(&shared, &fds))
                .expect("spawn the device event thread")
        });
        // Every vCPU's first stop reason lands in `outcome`; a thread ends
        // only after it set `stop`, or with its own error recorded.
        loop {
            if threads.iter().any(|t| t.is_finished()) || self.shared.stop.load(Ordering::SeqCst) {
                break;
            }
            if let Some(name) = wait_signal(&signals, Duration::from_millis(50)) {
                self.shared.finish(Err(MachineError::Signal(name)), &ids);
                break;
            }
        }
        // One vCPU ending ends them all.
        self.shared.stop.store(true, Ordering::SeqCst);
        for &t in &ids {
            timer::kick(t);
        }
        let mut stats = Stats::default();
        if let Some(t) = events {
            let _ = t.join();
        }
        for t in threads {
            if let Ok(s) = t.join() {
                stats.exits_mmio += s.exits_mmio;
                stats.exits_io += s.exits_io;
                stats.exits_hlt += s.exits_hlt;
                stats.exits_other += s.exits_other;
                stats.mmio_reads += s.mmio_reads;
                stats.mmio_writes += s.mmio_writes;
            }
        }
        let mut slot = self.shared.console.lock().expect("console lock");
        stats.notifications = slot.transport.notifications;
        stats.used_notifications = slot.transport.used_notifications;
        slot.transport.device_mut().add_stats(&mut stats);
        stats.peak_rss_kib = crate::stats::peak_rss_kib();
        drop(slot);
        let outcome = self.shared.outcome.lock().expect("outcome lock").take().unwrap_or(Ok(Exit::Reset));
        (outcome, stats)
    }
}

/// One vCPU's loop: exits to the buses until the VM stops.
fn run_vcpu<D: VirtioDevice>(id: usize, mut vcpu: VcpuFd, shared: &Shared<D>) -> Stats {
    let mut stats = Stats::default();
    let kick = match KickTimer::new(&mut vcpu) {
        Ok(k) => k,
        Err(e) => {
            shared.finish(Err(MachineError::Devices(format!("vCPU {id}: cannot set up its kick: {e}"))), &[]);
            return stats;
        }
    };
    loop {
        // Cleared before `stop` is read: a kick after this is not lost.
        vcpu.set_kvm_immediate_exit(0);
        if shared.stop.load(Ordering::SeqCst) {
            return stats;
        }
        if shared.console.lock().expect("console lock").resume() {
            kick.arm(Duration::from_micros(100));
        }
        let outcome = match vcpu.run() {
            Ok(VcpuExit::IoIn(port, data)) => {
                stats.exits_io += 1;
                // Ports nobody decodes read as all ones, as on a PC; Linux
                // probes many.
                if shared.io.pio_read(PioAddress(port), data).is_err() {
                    data.fill(0xff);
                }
                None
            }
            Ok(VcpuExit::IoOut(port, data)) => {
                stats.exits_io += 1;
                let _ = shared.io.pio_write(PioAddress(port), data);
                shared.reset.0.load(Ordering::SeqCst).then(|| reset_outcome(&shared.mem))
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                stats.exits_mmio += 1;
                stats.mmio_reads += 1;
                if shared.io.mmio_read(MmioAddress(addr), data).is_err() {
                    warn!("mmio: {}-byte read at {addr:#x} outside any device; reads as 0", data.len());
                    data.fill(0);
                }
                None
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                stats.exits_mmio += 1;
                stats.mmio_writes += 1;
                if shared.io.mmio_write(MmioAddress(addr), data).is_err() {
                    warn!("mmio: {}-byte write at {addr:#x} outside any device ignored", data.len());
                }
                None
            }
            // With the in-kernel irqchip HLT stays in KVM; should one come out, run on.
            Ok(VcpuExit::Hlt) => {
                stats.exits_hlt += 1;
                None
            }
            Ok(VcpuExit::Shutdown) => {
                stats.exits_other += 1;
                Some(Err(MachineError::TripleFault(id, vcpu.get_regs().map_or(0, |r| r.rip))))
            }
            Ok(VcpuExit::SystemEvent(kind, _)) => {
                stats.exits_other += 1;
                Some(match kind {
                    kvm_bindings::KVM_SYSTEM_EVENT_RESET => Ok(Exit::Reset),
                    _ => Ok(Exit::PowerOff),
                })
            }
            Ok(VcpuExit::InternalError) => {
                stats.exits_other += 1;
                // SAFETY: on KVM_EXIT_INTERNAL_ERROR the kernel filled `internal`.
                let suberror = unsafe { vcpu.get_kvm_run().__bindgen_anon_1.internal.suberror };
                Some(Err(MachineError::Internal(id, suberror)))
            }
            Ok(VcpuExit::FailEntry(reason, _)) => {
                stats.exits_other += 1;
                Some(Err(MachineError::FailEntry(id, reason)))
            }
            Ok(other) => {
                stats.exits_other += 1;
                Some(Err(MachineError::UnexpectedExit(id, format!("{other:?}"))))
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => None,
            Err(e) => Some(Err(MachineError::Kvm("run vCPU", e))),
        };
        if let Some(outcome) = outcome {
            // The other vCPUs are kicked by the main thread, which sees `stop`.
            shared.finish(outcome, &[]);
            return stats;
        }
    }
}

/// Waits on the device's eventfds until the VM stops; each wake-up lets the
/// transport take the news (used buffers, a stopped queue) and interrupt.
fn device_events<D: VirtioDevice>(shared: &Shared<D>, fds: &[RawFd]) {
    let mut pfds: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    while !shared.stop.load(Ordering::SeqCst) {
        // The timeout bounds how long `stop` goes unseen.
        // SAFETY: live pollfds and their count; the fds are the device's,
        // which `shared` keeps open.
        let ready = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 50) };
        if ready > 0 {
            shared.console.lock().expect("console lock").transport.poll_device();
        }
    }
}

fn block_signals() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is valid for sigemptyset; the calls take
    // valid pointers and only change this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits up to `timeout` for SIGINT or SIGTERM; returns its name.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<&'static str> {
    let ts = libc::timespec { tv_sec: 0, tv_nsec: timeout.as_nanos() as _ };
    // SAFETY: valid pointers; a null siginfo is allowed.
    match unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) } {
        libc::SIGINT => Some("SIGINT"),
        libc::SIGTERM => Some("SIGTERM"),
        _ => None,
    }
}
