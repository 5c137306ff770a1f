//! A Linux vCPU's initial state besides its segments (boot.rs): the MSRs,
//! the FPU, the local APIC's LINT pins, and the registers of the 64-bit boot
//! protocol (Documentation/arch/x86/boot.rst: RSI holds the zero page).

use kvm_bindings::{kvm_fpu, kvm_lapic_state, kvm_msr_entry, kvm_regs, Msrs};
use kvm_ioctls::VcpuFd;

use super::boot::Mode;
use super::layout::BOOT_STACK;

const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MISC_ENABLE_FAST_STRING: u64 = 1;

// The local APIC's LVT registers, as offsets in kvm_lapic_state.regs.
const APIC_LVT0: usize = 0x350;
const APIC_LVT1: usize = 0x360;
const APIC_MODE_EXTINT: u32 = 0x7;
const APIC_MODE_NMI: u32 = 0x4;

/// The MSRs Firecracker's and vmm-reference's vCPUs start with: syscall
/// entry points cleared, fast strings on.
pub fn set_msrs(vcpu: &VcpuFd) -> Result<(), kvm_ioctls::Error> {
    let entries: Vec<kvm_msr_entry> = [
        (MSR_IA32_SYSENTER_CS, 0),
        (MSR_IA32_SYSENTER_ESP, 0),
        (MSR_IA32_SYSENTER_EIP, 0),
        (MSR_STAR, 0),
        (MSR_CSTAR, 0),
        (MSR_KERNEL_GS_BASE, 0),
        (MSR_SYSCALL_MASK, 0),
        (MSR_LSTAR, 0),
        (MSR_IA32_TSC, 0),
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
    ]
    .into_iter()
    .map(|(index, data)| kvm_msr_entry { index, data, ..Default::default() })
    .collect();
    let msrs = Msrs::from_entries(&entries).expect("fewer entries than KVM_MAX_MSR_ENTRIES");
    let set = vcpu.set_msrs(&msrs)?;
    if set != entries.len() {
        // KVM stops at the first MSR it refuses.
        return Err(kvm_ioctls::Error::new(libc::EINVAL));
    }
    Ok(())
}

/// x87 control word and MXCSR at their reset values (Linux expects them).
pub fn set_fpu(vcpu: &VcpuFd) -> Result<(), kvm_ioctls::Error> {
    vcpu.set_fpu(&kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() })
}

fn set_lvt_mode(lapic: &mut kvm_lapic_state, offset: usize, mode: u32) {
    let reg = &mut lapic.regs[offset..offset + 4];
    let value = u32::from_le_bytes([reg[0] as u8, reg[1] as u8, reg[2] as u8, reg[3] as u8]);
    let value = (value & !0x700) | mode << 8;
    for (dst, src) in reg.iter_mut().zip(value.to_le_bytes()) {
        *dst = src as _;
    }
}

/// LINT0 delivers the PIC's interrupts (ExtINT), LINT1 NMIs, as the MP
/// table's local interrupt entries say.
pub fn set_lint(vcpu: &VcpuFd) -> Result<(), kvm_ioctls::Error> {
    let mut lapic = vcpu.get_lapic()?;
    set_lvt_mode(&mut lapic, APIC_LVT0, APIC_MODE_EXTINT);
    set_lvt_mode(&mut lapic, APIC_LVT1, APIC_MODE_NMI);
    vcpu.set_lapic(&lapic)
}

/// The entry registers: the 64-bit boot protocol's (RSI: the zero page) or
/// PVH's (EBX: the start_info).
pub fn set_boot_regs(vcpu: &VcpuFd, entry: u64, mode: Mode, boot_info: u64) -> Result<(), kvm_ioctls::Error> {
    let mut regs = kvm_regs { rip: entry, rsp: BOOT_STACK, rbp: BOOT_STACK, rflags: 0x2, ..Default::default() };
    match mode {
        Mode::Long64 => regs.rsi = boot_info,
        Mode::Protected32 => regs.rbx = boot_info,
    }
    vcpu.set_regs(&regs)
}
