//! The x86 platform behind the VM core. For the bare-metal guests: their ELF
//! loader (elf.rs) and boot state (boot.rs: PVH start_info, flat segments,
//! page tables). For Linux: the memory layout and its e820 map, the device
//! slots (layout.rs), the kernel loader with its boot parameters and command
//! line (linux.rs), ACPI tables (acpi.rs) or an MP table (mptable.rs), and
//! each vCPU's CPUID, MSRs, FPU and local APIC (cpuid.rs, regs.rs).

pub mod acpi;
pub mod boot;
pub mod cpuid;
pub mod elf;
pub mod layout;
pub mod linux;
pub mod mptable;
pub mod regs;
