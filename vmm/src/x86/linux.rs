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
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{self, CMDLINE, CMDLINE_MAX, HIMEM_START, MMIO_GAP_START, ZERO_PAGE};
use crate::boot::{Mode, START_INFO_MAGIC};

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

#[derive(Debug, Error)]
pub enum KernelError {
    #[error("cannot read kernel {0}: {1}")]
    Open(PathBuf, std::io::Error),
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
    #[error("initrd {0} ({1} bytes) does not fit in guest RAM between the kernel and {2:#x}; raise --mem")]
    InitrdTooLarge(PathBuf, u64, u64),
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

/// Loads `kernel` (and `initrd`), writes `cmdline` and the zero page with
/// the e820 map for `ram` bytes.
pub fn load(
    mem: &GuestMemoryMmap,
    ram: u64,
    kernel: &Path,
    initrd: Option<&Path>,
    cmdline: &str,
) -> Result<Loaded, KernelError> {
    let mut image = File::open(kernel).map_err(|e| KernelError::Open(kernel.into(), e))?;
    let size = image.metadata().map_err(|e| KernelError::Open(kernel.into(), e))?.len();
    if HIMEM_START + size > lowmem_end(ram) {
        return Err(KernelError::TooLarge(kernel.into()));
    }
    let mut magic = [0u8; 4];
    let _ = std::io::Read::read(&mut image, &mut magic);
    if &magic == b"\x7fELF" {
        return load_pvh(mem, ram, image, kernel, initrd, cmdline);
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
    let kernel_end = loaded.kernel_load.0 + loaded.kernel_end;

    hdr.type_of_loader = KERNEL_LOADER_OTHER;
    hdr.boot_flag = KERNEL_BOOT_FLAG_MAGIC;
    hdr.header = KERNEL_HDR_MAGIC;
    hdr.kernel_alignment = KERNEL_MIN_ALIGNMENT;

    write_cmdline(mem, cmdline)?;
    hdr.cmd_line_ptr = CMDLINE as u32;
    hdr.cmdline_size = cmdline.len() as u32 + 1;

    if let Some(path) = initrd {
        // Below the hole and the kernel's own limit.
        let top = lowmem_end(ram).min(u64::from(hdr.initrd_addr_max) + 1);
        let (at, len) = load_initrd(mem, path, kernel_end, top)?;
        hdr.ramdisk_image = at as u32;
        hdr.ramdisk_size = len as u32;
    }

    let mut params = boot_params { hdr, ..Default::default() };
    let map = layout::e820(ram);
    for (slot, &(addr, size, kind)) in params.e820_table.iter_mut().zip(&map) {
        *slot = boot_e820_entry { addr, size, r#type: kind as u32 };
    }
    params.e820_entries = map.len() as u8;
    mem.write_obj(params, GuestAddress(ZERO_PAGE)).map_err(|e| KernelError::Memory(e.to_string()))?;
    Ok(Loaded { entry: loaded.kernel_load.0 + 0x200, mode: Mode::Long64, boot_info: ZERO_PAGE })
}

/// Writes `cmdline` at CMDLINE.
fn write_cmdline(mem: &GuestMemoryMmap, cmdline: &str) -> Result<(), KernelError> {
    let mut line = Cmdline::new(CMDLINE_MAX).map_err(|e| KernelError::Cmdline(e.to_string()))?;
    line.insert_str(cmdline).map_err(|e| KernelError::Cmdline(e.to_string()))?;
    load_cmdline(mem, GuestAddress(CMDLINE), &line).map_err(|e| KernelError::Cmdline(e.to_string()))
}

/// Reads `path` into RAM as high as it goes below `top`, page aligned, and
/// above `floor`; returns where.
fn load_initrd(mem: &GuestMemoryMmap, path: &Path, floor: u64, top: u64) -> Result<(u64, u64), KernelError> {
    let data = std::fs::read(path).map_err(|e| KernelError::OpenInitrd(path.into(), e))?;
    let len = data.len() as u64;
    let at = top.checked_sub(len).map(|a| a & !(PAGE - 1)).filter(|&a| a >= floor);
    let Some(at) = at else {
        return Err(KernelError::InitrdTooLarge(path.into(), len, top));
    };
    mem.write_slice(&data, GuestAddress(at)).map_err(|e| KernelError::Memory(e.to_string()))?;
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
) -> Result<Loaded, KernelError> {
    let loaded = Elf::load(mem, None, &mut image, Some(GuestAddress(HIMEM_START))).map_err(|e| match e {
        linux_loader::loader::Error::MemoryOverflow => KernelError::TooLarge(kernel.into()),
        e => KernelError::NotVmlinux(kernel.into(), e),
    })?;
    let PvhBootCapability::PvhEntryPresent(entry) = loaded.pvh_boot_cap else {
        return Err(KernelError::NoPvhNote(kernel.into()));
    };
    write_cmdline(mem, cmdline)?;
    let mut info = hvm_start_info {
        magic: START_INFO_MAGIC,
        version: 1,
        cmdline_paddr: CMDLINE,
        memmap_paddr: MEMMAP_START,
        ..Default::default()
    };
    if let Some(path) = initrd {
        let kernel_end = loaded.kernel_load.0 + loaded.kernel_end;
        let (paddr, size) = load_initrd(mem, path, kernel_end, lowmem_end(ram))?;
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
