//! x86 boot state of the bare-metal guests: what the vCPU and low memory
//! hold when the guest starts, where their console is, and the flat
//! segments a Linux kernel is entered with too.
//!
//! Entry follows the PVH boot ABI (Xen's `hvm_start_info`, as Firecracker and
//! Cloud Hypervisor use for ELF kernels): flat 4 GiB segments, EBX holding the
//! address of the start_info, which carries the command line and a memory map.
//! ELF64 images enter in long mode instead, with the first GiB identity-mapped,
//! and find the start_info in RBX.
//!
//! Low memory (below the guest image at 0x1000):
//!   0x500 GDT, 0x600 start_info, 0x640 memory map, 0x800 command line.
//! Long mode only: page tables at 0x9000 (PML4), 0xa000 (PDPT), 0xb000 (PD),
//! where Firecracker puts them.

use std::ops::Range;

use kvm_bindings::{kvm_regs, kvm_segment, CpuId, KVM_MAX_CPUID_ENTRIES};

use super::layout::MmioSlot;
use kvm_ioctls::{Kvm, VcpuFd};
use linux_loader::loader::elf::start_info::{hvm_memmap_table_entry, hvm_start_info};
use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// How the guest is entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 32-bit protected mode, paging off.
    Protected32,
    /// 64-bit long mode, identity-mapped.
    Long64,
}

/// Where a bare-metal guest's console window sits; RAM ends below it. The
/// guests look there unless their command line names another.
pub const CONSOLE_MMIO_BASE: u64 = 0x1000_0000;
pub const MAX_MEM_MIB: u64 = CONSOLE_MMIO_BASE >> 20;
/// The vector the console's interrupt arrives on (the guests' IDT has its
/// gate there: guest/src/interrupt.rs).
pub const CONSOLE_VECTOR: u32 = 0x20;

/// The bare-metal VM's virtio-mmio windows: the console's first, then the
/// disks', 4 KiB apart. No GSI: the one injected line is shared, and the
/// guest reads each device's InterruptStatus.
pub fn virtio_slots() -> impl Iterator<Item = MmioSlot> {
    (0..).map(|i| MmioSlot { base: CONSOLE_MMIO_BASE + i * 0x1000, size: 0x1000, gsi: None })
}

pub const GDT_ADDR: u64 = 0x500;
pub const START_INFO_ADDR: u64 = 0x600;
pub const MEMMAP_ADDR: u64 = 0x640;
pub const CMDLINE_ADDR: u64 = 0x800;
/// Longest command line, with its NUL (Firecracker's limit too).
pub const CMDLINE_MAX: usize = 2048;
/// Top of the guest's stack (0x7000..0x9000, below the page tables). PVH
/// leaves the stack pointer undefined and our guests set their own; an ELF
/// that does not finds one here.
pub const STACK_TOP: u64 = 0x9000;
const PML4_ADDR: u64 = 0x9000;
const PDPT_ADDR: u64 = 0xa000;
const PD_ADDR: u64 = 0xb000;

/// hvm_start_info.magic (Xen's XEN_HVM_START_MAGIC_VALUE).
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
const E820_RAM: u32 = 1;

const X86_CR0_PE: u64 = 1;
const X86_CR0_PG: u64 = 1 << 31;
const X86_CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// Guest memory the VMM writes before entry; an image may not load over it.
// A list of ranges that happens to hold one in 32-bit mode.
#[allow(clippy::single_range_in_vec_init)]
pub fn reserved(mode: Mode) -> &'static [Range<u64>] {
    match mode {
        Mode::Protected32 => &[0..0x1000],
        Mode::Long64 => &[0..0x1000, PML4_ADDR..PD_ADDR + 0x1000],
    }
}

#[derive(Debug, Error)]
pub enum BootError {
    #[error("the guest command line is longer than {} bytes", CMDLINE_MAX - 1)]
    CmdlineTooLong,
    #[error("the guest command line contains a NUL byte")]
    CmdlineNul,
    #[error("writing boot data to guest memory: {0}")]
    Memory(#[from] vm_memory::GuestMemoryError),
    #[error("setting up the vCPU: {0}")]
    Kvm(#[from] kvm_ioctls::Error),
}

/// A GDT entry from its access/flags word, base and limit (Intel SDM vol. 3, 3.4.5).
const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << 32)
        | ((flags as u64 & 0xf0ff) << 40)
        | ((limit as u64 & 0x000f_0000) << 32)
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0xffff)
}

/// The segment-register cache KVM wants for GDT entry `index`.
fn segment(entry: u64, index: u16) -> kvm_segment {
    let bit = |n: u32| ((entry >> n) & 1) as u8;
    let limit = ((entry >> 32) & 0xf_0000) as u32 | (entry & 0xffff) as u32;
    kvm_segment {
        base: ((entry >> 16) & 0xff_ffff) | ((entry >> 32) & 0xff00_0000),
        limit: if bit(55) == 1 { limit << 12 | 0xfff } else { limit },
        selector: index * 8,
        type_: ((entry >> 40) & 0xf) as u8,
        present: bit(47),
        dpl: ((entry >> 45) & 3) as u8,
        db: bit(54),
        s: bit(44),
        l: bit(53),
        g: bit(55),
        avl: bit(52),
        unusable: 1 - bit(47),
        padding: 0,
    }
}

/// Writes the GDT, start_info, memory map, command line and (long mode) page
/// tables, and puts the vCPU at `entry` in `mode`.
pub fn setup(
    kvm: &Kvm,
    vcpu: &VcpuFd,
    mem: &GuestMemoryMmap,
    ram: u64,
    mode: Mode,
    entry: u64,
    cmdline: &str,
) -> Result<(), BootError> {
    if cmdline.len() >= CMDLINE_MAX {
        return Err(BootError::CmdlineTooLong);
    }
    if cmdline.contains('\0') {
        return Err(BootError::CmdlineNul);
    }
    mem.write_slice(cmdline.as_bytes(), GuestAddress(CMDLINE_ADDR))?; // NUL: RAM starts zeroed
    write_start_info(mem, ram)?;
    if mode == Mode::Long64 {
        // KVM refuses EFER.LME unless the guest's CPUID has long mode; a
        // 32-bit guest skips this ioctl pair.
        let cpuid: CpuId = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)?;
        vcpu.set_cpuid2(&cpuid)?;
    }
    set_segments(vcpu, mem, mode)?;
    let regs = kvm_regs { rip: entry, rsp: STACK_TOP, rbx: START_INFO_ADDR, rflags: 0x2, ..Default::default() };
    vcpu.set_regs(&regs)?;
    Ok(())
}

/// Writes the GDT (and in long mode the page tables) and loads flat segments,
/// protection and (long mode) paging. In long mode the vCPU's CPUID must
/// already offer long mode.
pub fn set_segments(vcpu: &VcpuFd, mem: &GuestMemoryMmap, mode: Mode) -> Result<(), BootError> {
    let code = match mode {
        Mode::Protected32 => gdt_entry(0xc09b, 0, 0xfffff), // 32-bit code, execute/read
        Mode::Long64 => gdt_entry(0xa09b, 0, 0xfffff),      // 64-bit code
    };
    let gdt = [0, code, gdt_entry(0xc093, 0, 0xfffff), gdt_entry(0x808b, 0, 0xfffff)];
    for (i, e) in gdt.iter().enumerate() {
        mem.write_obj(*e, GuestAddress(GDT_ADDR + 8 * i as u64))?;
    }

    let mut sregs = vcpu.get_sregs()?;
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (gdt.len() * 8 - 1) as u16;
    // No IDT: the guest runs with interrupts off; an exception ends in a
    // triple fault, which the VMM reports.
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cs = segment(gdt[1], 1);
    let data = segment(gdt[2], 2);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = segment(gdt[3], 3);
    sregs.cr0 |= X86_CR0_PE;
    if mode == Mode::Long64 {
        write_page_tables(mem)?;
        sregs.cr3 = PML4_ADDR;
        sregs.cr4 |= X86_CR4_PAE;
        sregs.cr0 |= X86_CR0_PG;
        sregs.efer |= EFER_LME | EFER_LMA;
    }
    vcpu.set_sregs(&sregs)?;
    Ok(())
}

/// `struct hvm_start_info` (version 1, linux-loader's bindings of Xen's
/// arch-x86/hvm/start_info.h) and a one-entry memory map.
fn write_start_info(mem: &GuestMemoryMmap, ram: u64) -> Result<(), vm_memory::GuestMemoryError> {
    let info = hvm_start_info {
        magic: START_INFO_MAGIC,
        version: 1,
        cmdline_paddr: CMDLINE_ADDR,
        memmap_paddr: MEMMAP_ADDR,
        memmap_entries: 1,
        ..Default::default()
    };
    mem.write_obj(info, GuestAddress(START_INFO_ADDR))?;
    let ram = hvm_memmap_table_entry { addr: 0, size: ram, type_: E820_RAM, reserved: 0 };
    mem.write_obj(ram, GuestAddress(MEMMAP_ADDR))
}

/// Identity-maps the first GiB with 2 MiB pages (it covers RAM and the
/// virtio-mmio window at 256 MiB).
fn write_page_tables(mem: &GuestMemoryMmap) -> Result<(), vm_memory::GuestMemoryError> {
    const PRESENT_RW: u64 = 0x3;
    const PAGE_SIZE_2M: u64 = 0x80;
    mem.write_obj(PDPT_ADDR | PRESENT_RW, GuestAddress(PML4_ADDR))?;
    mem.write_obj(PD_ADDR | PRESENT_RW, GuestAddress(PDPT_ADDR))?;
    let mut pd = [0u8; 4096];
    for (i, entry) in pd.chunks_exact_mut(8).enumerate() {
        entry.copy_from_slice(&((i as u64) << 21 | PAGE_SIZE_2M | PRESENT_RW).to_le_bytes());
    }
    mem.write_slice(&pd, GuestAddress(PD_ADDR))
}
