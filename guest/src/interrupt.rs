//! The console's interrupt: one interrupt gate at `VECTOR`, and `wait`, the
//! only place the guest runs with interrupts enabled.
//!
//! The VMM has no interrupt controller for the bare-metal guests: it injects
//! `VECTOR` (KVM_INTERRUPT) when the device raises its line and the guest
//! can take it. Interrupts are enabled only across `sti; hlt`, and STI holds
//! them off for one instruction, so every interrupt arrives on the
//! instruction after HLT. The handler therefore needs no IRET: it drops its
//! frame and jumps back there with interrupts still disabled. (The software
//! KVM of the development machines emulates guest kernel code, and its
//! emulator implements IRET in real mode only; this return works everywhere.)
//!
//! The handler only counts; the driver reads and acknowledges
//! InterruptStatus after `wait` returns, outside interrupt context.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU32, Ordering};

/// The vector the VMM injects for the console (the first after the
/// exceptions, where a PC's remapped PIC starts).
pub const VECTOR: usize = 0x20;

/// Interrupts taken: the handler counts (one CPU, interrupts only at the
/// HLT: no lock needed), the driver reads.
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

#[cfg(target_arch = "x86")]
global_asm!(
    ".section .text",
    ".global console_interrupt",
    "console_interrupt:",
    "    inc dword ptr [{count}]",
    "    pop eax", // EIP: the instruction after HLT
    "    add esp, 8", // CS, EFLAGS
    "    jmp eax",
    count = sym INTERRUPTS,
);

#[cfg(target_arch = "x86_64")]
global_asm!(
    ".section .text",
    ".global console_interrupt",
    "console_interrupt:",
    "    inc dword ptr [rip + {count}]",
    "    pop rax", // RIP: the instruction after HLT
    "    mov rsp, [rsp + 16]", // the interrupted RSP, above CS and RFLAGS
    "    jmp rax",
    count = sym INTERRUPTS,
);

extern "C" {
    fn console_interrupt();
}

/// An interrupt gate (Intel SDM vol. 3 §6.11, §6.14.1): present, DPL 0, in
/// the code segment the VMM's GDT puts at selector 0x08.
#[cfg(target_arch = "x86")]
type Gate = [u16; 4];
#[cfg(target_arch = "x86_64")]
type Gate = [u16; 8];

const CODE_SELECTOR: u16 = 0x08;
const INTERRUPT_GATE: u16 = 0x8e00;

/// Vectors below VECTOR have no gate: an exception still ends in a triple
/// fault, which the VMM reports.
static mut IDT: [Gate; VECTOR + 1] = [[0; core::mem::size_of::<Gate>() / 2]; VECTOR + 1];

#[repr(C, packed)]
struct Idtr {
    limit: u16,
    base: usize,
}

/// Installs the gate and loads the IDT. Interrupts stay disabled.
pub fn init() {
    let handler = console_interrupt as *const () as usize as u64;
    let mut gate: Gate = Default::default();
    gate[0] = handler as u16;
    gate[1] = CODE_SELECTOR;
    gate[2] = INTERRUPT_GATE;
    gate[3] = (handler >> 16) as u16;
    #[cfg(target_arch = "x86_64")]
    {
        gate[4] = (handler >> 32) as u16;
        gate[5] = (handler >> 48) as u16;
    }
    // SAFETY: the only access to IDT, before interrupts are ever enabled; the
    // IDTR points at a static that lives for ever.
    unsafe {
        let idt = &raw mut IDT;
        (*idt)[VECTOR] = gate;
        let idtr = Idtr { limit: (core::mem::size_of::<[Gate; VECTOR + 1]>() - 1) as u16, base: idt as usize };
        core::arch::asm!("lidt [{}]", in(reg) &idtr, options(readonly, nostack, preserves_flags));
    }
}

/// Sleeps until an interrupt arrives (or the VMM resumes the vCPU without
/// one); returns with interrupts disabled. The caller checks its condition
/// with interrupts disabled before calling, so a wake-up cannot be lost: an
/// interrupt raised since then is held until the HLT.
pub fn wait() {
    // SAFETY: the handler returns to the CLI with the stack as it was; it
    // clobbers the accumulator and the flags, declared here.
    unsafe {
        #[cfg(target_arch = "x86")]
        core::arch::asm!("sti", "hlt", "cli", out("eax") _);
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!("sti", "hlt", "cli", out("rax") _);
    }
}

/// Interrupts taken so far.
pub fn count() -> u32 {
    INTERRUPTS.load(Ordering::Relaxed)
}
