//! Loading a Linux kernel through rust-vmm's linux-loader, with its initrd
//! and command line, and what tells it where they are and what RAM it has:
//! - a bzImage gets the boot parameters ("zero page",
//!   Documentation/arch/x86/boot.rst) and is entered at its 64-bit entry
//!   point in long mode, as Firecracker and Cloud Hypervisor enter one;
//! - an ELF vmlinux with a PVH note (XEN_ELFNOTE_PHYS32_ENTRY) gets an
//!   `hvm_start_info` (the initrd as its first module, the e820 map as its
//!   memory map) and is entered there in 32-bit protected mode, paging off,
//!   with EBX pointing at the start_info (Xen's PVH boot ABI).

use std::fs::File;
use std::path::{Path, PathBuf};

use linux_loader::bootparam::{boot_e820_entry, boot_params};
use linux_loader::cmdline::Cmdline;
use linux_loader::loader::elf::start_info::{hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info};
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use linux_loader::loader::{load_cmdline, BzImage, KernelLoader};
use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, ReadVolatile};

use super::boot::{Mode, START_INFO_MAGIC};
use super::layout::{self, MmioSlot, CMDLINE, CMDLINE_MAX, HIMEM_START, MMIO_GAP_START, ZERO_PAGE};

const KERNEL_BOOT_FLAG_MAGIC: u16 = 0xaa55;
const KERNEL_HDR_MAGIC: u32 = 0x5372_6448; // "HdrS"
const KERNEL_LOADER_OTHER: u8 = 0xff;
const KERNEL_MIN_ALIGNMENT: u32 = 0x0100_0000;
/// setup_header.xloadflags: the kernel has a 64-bit entry point at +0x200.
const XLF_KERNEL_64: u16 = 1;
const PAGE: u64 = 4096;
/// Where the PVH start_info, its module list and its memory map go
/// (Firecracker's PVH_INFO_START, MODLIST_START, MEMMAP_START).
const PVH_INFO_START: u64 = 0x6000;
const MODLIST_START: u64 = 0x6040;
const MEMMAP_START: u64 = 0x7000;
/// The longest command line an x86 kernel keeps without its own word on it
/// (COMMAND_LINE_SIZE, 2048 with its NUL): a PVH vmlinux, whose setup header
/// is not loaded; bzImages state theirs (`cmdline_size`, protocol 2.06+;
/// 255 before).
const PVH_CMDLINE_MAX: usize = 2047;
const OLD_CMDLINE_MAX: usize = 255;

/// Where x86 Linux writes its reset mode before it resets: 0x1234 for a
/// warm reset (the BIOS data area's reset flag, arch/x86/kernel/reboot.c).
pub const BDA_RESET_FLAG: u64 = 0x472;
pub const WARM_RESET: u16 = 0x1234;

/// The command line a kernel gets when the user gives none. The VM has no
/// PCI bus: `pci=off` spares a kernel built with PCI its probe of the
/// configuration ports.
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 reboot=k panic=1 pci=off";

#[derive(Debug, Error)]
pub enum KernelError {
    #[error("cannot read kernel {0}: {1}")]
    Open(PathBuf, std::io::Error),
    #[error("kernel {0} is a directory")]
    Directory(PathBuf),
    #[error("kernel {0} is not a bzImage ({1})")]
    NotBzImage(PathBuf, linux_loader::loader::Error),
    #[error("kernel {0} is not an x86-64 ELF vmlinux ({1})")]
    NotVmlinux(PathBuf, linux_loader::loader::Error),
    #[error("kernel {0} is an ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY; CONFIG_PVH)")]
    NoPvhNote(PathBuf),
    #[error("kernel {0} has no 64-bit entry point (boot protocol 2.12, XLF_KERNEL_64)")]
    Not64Bit(PathBuf),
    #[error("kernel {0} does not fit in guest RAM below {MMIO_GAP_START:#x}; raise --mem")]
    TooLarge(PathBuf),
    #[error("cannot read initrd {0}: {1}")]
    OpenInitrd(PathBuf, std::io::Error),
    #[error("initrd {0} is not a regular file")]
    InitrdNotAFile(PathBuf),
    #[error("initrd {0} ({1} bytes) does not fit in guest RAM between the kernel and {2:#x}; raise --mem")]
    InitrdTooLarge(PathBuf, u64, u64),
    #[error("the kernel command line is {0} bytes with the VMM's additions; this kernel takes at most {1}")]
    CmdlineTooLong(usize, usize),
    #[error("--cmdline {0}: a warm reboot would look like a panic to the VMM (it asks panics for a warm reset); leave the 'w' out")]
    WarmReboot(String),
    #[error("kernel command line: {0}")]
    Cmdline(String),
    #[error("writing the boot parameters: {0}")]
    Memory(String),
}

/// Where and how the kernel is entered.
pub struct Loaded {
    pub entry: u64,
    pub mode: Mode,
    /// What RSI (long mode: the zero page) or EBX (PVH: the start_info) holds.
    pub boot_info: u64,
}

/// The part of guest RAM below the device hole.
fn lowmem_end(ram: u64) -> u64 {
    ram.min(MMIO_GAP_START)
}

/// Whether the command line turns ACPI off (`acpi=off`): then the VMM
/// writes no ACPI tables and names its devices on the command line, as QEMU's
/// microvm does with `acpi=off`. A kernel built without CONFIG_ACPI needs it.
pub fn acpi_off(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|t| t == "acpi=off")
}

/// The kernel command line: the user's (or `DEFAULT_CMDLINE`), plus what the
/// VMM needs, decided on whole tokens:
/// - with `acpi=off`, each virtio-mmio device as QEMU's microvm and
///   Firecracker name it (`virtio_mmio.device=<size>@<base>:<irq>`), unless
///   the user named devices; with ACPI they are in the DSDT;
/// - always, last, a warm reset on panic (`reboot=panic_w`; a reboot stays
///   cold), by which the VMM tells a panic from a reboot. Being last, it
///   overrides a `panic_` mode the user gave; a user's warm mode for every
///   reboot would make reboots look like panics, and is refused.
pub fn cmdline(user: &str, slots: &[MmioSlot]) -> Result<String, KernelError> {
    let mut line = if user.trim().is_empty() { DEFAULT_CMDLINE.to_string() } else { user.trim().to_string() };
    for token in line.split_whitespace() {
        let Some(options) = token.strip_prefix("reboot=") else { continue };
        // kernel/reboot.c: comma-separated; a "panic_" prefix sets the mode
        // of panic reboots only.
        if options.split(',').any(|o| o.starts_with('w')) {
            return Err(KernelError::WarmReboot(token.to_string()));
        }
    }
    let named = line.split_whitespace().any(|t| t.starts_with("virtio_mmio.device="));
    if acpi_off(&line) && !named {
        for slot in slots {
            let gsi = slot.gsi.unwrap_or(0);
            line += &format!(" virtio_mmio.device={}K@{:#x}:{gsi}", slot.size >> 10, slot.base);
        }
    }
    line += " reboot=panic_w";
    Ok(line)
}

/// Loads `kernel` (and `initrd`), writes `cmdline` and the boot parameters
/// with the e820 map for `ram` bytes and, if there are ACPI tables, where
/// their RSDP is.
pub fn load(
    mem: &GuestMemoryMmap,
    ram: u64,
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: &str,
    rsdp: Option<u64>,
) -> Result<Loaded, KernelError> {
    let mut image = File::open(kernel).map_err(|e| KernelError::Open(kernel.into(), e))?;
    let meta = image.metadata().map_err(|e| KernelError::Open(kernel.into(), e))?;
    if meta.is_dir() {
        return Err(KernelError::Directory(kernel.into()));
    }
    let mut magic = [0u8; 4];
    let _ = std::io::Read::read(&mut image, &mut magic);
    if &magic == b"\x7fELF" {
        return load_pvh(mem, ram, image, kernel, initrd, cmdline, rsdp);
    }
    // A bzImage loads whole (but its real-mode part, which is small).
    if HIMEM_START + meta.len() > lowmem_end(ram) {
        return Err(KernelError::TooLarge(kernel.into()));
    }
    let loaded = BzImage::load(mem, None, &mut image, Some(GuestAddress(HIMEM_START))).map_err(|e| match e {
        linux_loader::loader::Error::Bzimage(linux_loader::loader::bzimage::Error::Overflow)
        | linux_loader::loader::Error::MemoryOverflow => KernelError::TooLarge(kernel.into()),
        e => KernelError::NotBzImage(kernel.into(), e),
    })?;
    let Some(mut hdr) = loaded.setup_header else {
        return Err(KernelError::NotBzImage(kernel.into(), linux_loader::loader::Error::InvalidKernelStartAddress));
    };
    if hdr.xloadflags & XLF_KERNEL_64 == 0 {
        return Err(KernelError::Not64Bit(kernel.into()));
    }
    // The kernel's own limit (Documentation/arch/x86/boot.rst: without the NUL).
    let limit = if hdr.version >= 0x206 { hdr.cmdline_size as usize } else { OLD_CMDLINE_MAX };
    write_cmdline(mem, cmdline, limit)?;
    // linux-loader's kernel_end is the guest address where the image ends.
    let kernel_end = loaded.kernel_end;

    hdr.type_of_loader = KERNEL_LOADER_OTHER;
    hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    hdr.header = KERNEL_HDR_MAGIC;
    hdr.kernel_alignment = KERNEL_MIN_ALIGNMENT;
    hdr.cmd_line_ptr = CMDLINE as u32;

    if let Some(path) = initrd {
        // Below the hole and the kernel's own limit.
        let top = lowmem_end(ram).min(u64::from(hdr.initrd_addr_max) + 1);
        let (at, len) = load_initrd(mem, path, kernel_end, top)?;
        hdr.ramdisk_image = at as u32;
        hdr.ramdisk_size = len as u32;
    }

    let mut params = boot_params { hdr, ..Default::default() };
    if let Some(rsdp) = rsdp {
        params.acpi_rsdp_addr = rsdp;
    }
    let map = layout::e820(ram);
    for (slot, &(addr, size, kind)) in params.e820_table.iter_mut().zip(&map) {
        *slot = boot_e820_entry { addr, size, r#type: kind as u32 };
    }
    params.e820_entries = map.len() as u8;
    mem.write_obj(params, GuestAddress(ZERO_PAGE)).map_err(|e| KernelError::Memory(e.to_string()))?;
    Ok(Loaded { entry: loaded.kernel_load.0 + 0x200, mode: Mode::Long64, boot_info: ZERO_PAGE })
}

/// Writes `cmdline` at CMDLINE, if the kernel takes that long a line.
fn write_cmdline(mem: &GuestMemoryMmap, cmdline: &str, limit: usize) -> Result<(), KernelError> {
    let limit = limit.min(CMDLINE_MAX - 1);
    if cmdline.len() > limit {
        return Err(KernelError::CmdlineTooLong(cmdline.len(), limit));
    }
    let mut line = Cmdline::new(CMDLINE_MAX).map_err(|e| KernelError::Cmdline(e.to_string()))?;
    line.insert_str(cmdline).map_err(|e| KernelError::Cmdline(e.to_string()))?;
    load_cmdline(mem, GuestAddress(CMDLINE), &line).map_err(|e| KernelError::Cmdline(e.to_string()))
}

/// Reads the initrd at `path` into RAM as high as it goes below `top`, page
/// aligned, and above `floor`; returns where. Its size is checked before
/// a byte is read: only a regular file, and only one that fits.
fn load_initrd(mem: &GuestMemoryMmap, path: &Path, floor: u64, top: u64) -> Result<(u64, u64), KernelError> {
    let mut file = File::open(path).map_err(|e| KernelError::OpenInitrd(path.into(), e))?;
    let meta = file.metadata().map_err(|e| KernelError::OpenInitrd(path.into(), e))?;
    if !meta.is_file() {
        return Err(KernelError::InitrdNotAFile(path.into()));
    }
    let len = meta.len();
    let at = top.checked_sub(len).map(|a| a & !(PAGE - 1)).filter(|&a| a >= floor);
    let Some(at) = at else {
        return Err(KernelError::InitrdTooLarge(path.into(), len, top));
    };
    let mut slice = mem.get_slice(GuestAddress(at), len as usize).map_err(|e| KernelError::Memory(e.to_string()))?;
    file.read_exact_volatile(&mut slice).map_err(|e| KernelError::OpenInitrd(path.into(), std::io::Error::other(e)))?;
    Ok((at, len))
}

/// An ELF vmlinux, entered through its PVH note.
fn load_pvh(
    mem: &GuestMemoryMmap,
    ram: u64,
    mut image: File,
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: &str,
    rsdp: Option<u64>,
) -> Result<Loaded, KernelError> {
    // Only the loadable segments count against RAM (a vmlinux carries its
    // symbols and debug information too): the loader checks each.
    let loaded = Elf::load(mem, None, &mut image, Some(GuestAddress(HIMEM_START))).map_err(|e| match e {
        linux_loader::loader::Error::MemoryOverflow => KernelError::TooLarge(kernel.into()),
        e => KernelError::NotVmlinux(kernel.into(), e),
    })?;
    let PvhBootCapability::PvhEntryPresent(entry) = loaded.pvh_boot_cap else {
        return Err(KernelError::NoPvhNote(kernel.into()));
    };
    if loaded.kernel_end > lowmem_end(ram) {
        return Err(KernelError::TooLarge(kernel.into()));
    }
    write_cmdline(mem, cmdline, PVH_CMDLINE_MAX)?;
    let mut info = hvm_start_info {
        magic: START_INFO_MAGIC,
        version: 1,
        cmdline_paddr: CMDLINE,
        memmap_paddr: MEMMAP_START,
        rsdp_paddr: rsdp.unwrap_or(0),
        ..Default::default()
    };
    if let Some(path) = initrd {
        let (paddr, size) = load_initrd(mem, path, loaded.kernel_end, lowmem_end(ram))?;
        let module = hvm_modlist_entry { paddr, size, ..Default::default() };
        mem.write_obj(module, GuestAddress(MODLIST_START)).map_err(|e| KernelError::Memory(e.to_string()))?;
        info.nr_modules = 1;
        info.modlist_paddr = MODLIST_START;
    }
    let map = layout::e820(ram);
    for (i, &(addr, size, kind)) in map.iter().enumerate() {
        let entry = hvm_memmap_table_entry { addr, size, type_: kind as u32, reserved: 0 };
        let at = GuestAddress(MEMMAP_START + 24 * i as u64);
        mem.write_obj(entry, at).map_err(|e| KernelError::Memory(e.to_string()))?;
    }
    info.memmap_entries = map.len() as u32;
    mem.write_obj(info, GuestAddress(PVH_INFO_START)).map_err(|e| KernelError::Memory(e.to_string()))?;
    Ok(Loaded { entry: entry.0, mode: Mode::Protected32, boot_info: PVH_INFO_START })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> Vec<MmioSlot> {
        layout::virtio_slots().take(2).collect()
    }

    #[test]
    fn the_default_line_gets_the_panic_mode_and_acpi_describes_the_devices() {
        assert_eq!(cmdline("", &slots()).unwrap(), "console=ttyS0 reboot=k panic=1 pci=off reboot=panic_w");
    }

    #[test]
    fn with_acpi_off_each_device_is_named_on_the_line() {
        assert_eq!(
            cmdline("console=ttyS0 acpi=off", &slots()).unwrap(),
            "console=ttyS0 acpi=off virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6 \
             reboot=panic_w"
        );
        // The user's own device list stands.
        let line = cmdline("acpi=off virtio_mmio.device=4K@0xd0000000:9", &slots()).unwrap();
        assert_eq!(line, "acpi=off virtio_mmio.device=4K@0xd0000000:9 reboot=panic_w");
    }

    #[test]
    fn decisions_are_made_on_whole_tokens() {
        // panic_on_warn and panic_print name no reboot mode: the VMM still
        // asks for its own.
        let line = cmdline("panic_on_warn=1 panic_print=0 noacpi=off", &slots()).unwrap();
        assert!(line.ends_with(" reboot=panic_w"), "{line}");
        assert!(!line.contains("virtio_mmio.device="), "acpi is not off: {line}");
        // A user's panic mode is overridden by the VMM's, which comes last.
        assert!(cmdline("reboot=panic_c", &slots()).unwrap().ends_with("reboot=panic_c reboot=panic_w"));
        // A warm mode for every reboot is refused.
        for line in ["reboot=w", "reboot=k,warm", "reboot=panic_c,w"] {
            assert!(matches!(cmdline(line, &slots()), Err(KernelError::WarmReboot(_))), "{line}");
        }
        assert!(cmdline("reboot=k,panic_w", &slots()).is_ok());
    }
}
