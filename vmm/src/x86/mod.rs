//! What booting Linux on x86 needs besides a CPU: the memory layout and its
//! e820 map, the MP table, the vCPU's CPUID, MSRs, FPU and local APIC, and the
//! kernel loader with its boot parameters. The bare-metal guests need none of
//! it (boot.rs).

pub mod cpuid;
pub mod layout;
pub mod linux;
pub mod mptable;
pub mod regs;
