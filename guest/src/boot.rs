//! Entry point and boot information.
//!
//! The VMM enters the image in 32-bit protected mode (i686) or in long mode
//! (x86_64) with flat segments and EBX/RBX holding the physical address of a
//! PVH `hvm_start_info` (xen/include/public/arch-x86/hvm/start_info.h), which
//! carries the command line. The PVH ABI leaves the stack pointer undefined:
//! the entry sets its own.

use core::arch::global_asm;

/// Top of the 8 KiB stack below 0x9000 (linker.ld's layout).
const STACK_TOP: usize = 0x9000;

// The PVH entry note (Xen's XEN_ELFNOTE_PHYS32_ENTRY, 18): what QEMU and
// Firecracker look for to load an ELF as a PVH kernel. Only the i686 image
// has one: PVH enters in 32-bit protected mode.
#[cfg(target_arch = "x86")]
global_asm!(
    ".section .note.Xen, \"a\", @note",
    ".p2align 2",
    ".long 4, 4, 18",
    ".asciz \"Xen\"",
    ".p2align 2",
    ".long _start",
);

#[cfg(target_arch = "x86")]
global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    "    mov esp, {stack_top}",
    "    push ebx",
    "    call guest_entry",
    "2:  cli",
    "    hlt",
    "    jmp 2b",
    stack_top = const STACK_TOP,
);

#[cfg(target_arch = "x86_64")]
global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    "    mov rsp, {stack_top}",
    "    mov rdi, rbx",
    "    call guest_entry",
    "2:  cli",
    "    hlt",
    "    jmp 2b",
    stack_top = const STACK_TOP,
);

/// Defines the program's entry: `guest::entry!(main)` with `fn main(&BootInfo) -> !`.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        extern "C" fn guest_entry(start_info: usize) -> ! {
            // SAFETY: the VMM passes the address of a start_info structure
            // (or 0), which lies in identity-mapped RAM.
            let boot = unsafe { $crate::boot::BootInfo::from_start_info(start_info) };
            $main(&boot)
        }
    };
}

const START_INFO_MAGIC: u32 = 0x336e_c578;
/// Longest command line the guest looks at (the VMM enforces the same limit).
const CMDLINE_MAX: usize = 2048;

#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
}

/// What the VMM told the guest at boot.
pub struct BootInfo {
    cmdline: &'static [u8],
}

impl BootInfo {
    /// No command line.
    pub fn empty() -> Self {
        BootInfo { cmdline: &[] }
    }

    /// # Safety
    /// `addr` is 0 or the physical address of a readable `hvm_start_info`
    /// whose command line (if any) is NUL-terminated in mapped memory.
    pub unsafe fn from_start_info(addr: usize) -> Self {
        let mut cmdline: &[u8] = &[];
        if addr != 0 {
            let info = &*(addr as *const StartInfo);
            if info.magic == START_INFO_MAGIC && info.cmdline_paddr != 0 {
                let p = info.cmdline_paddr as usize as *const u8;
                let mut len = 0;
                while len < CMDLINE_MAX && *p.add(len) != 0 {
                    len += 1;
                }
                cmdline = core::slice::from_raw_parts(p, len);
            }
        }
        BootInfo { cmdline }
    }

    /// The value of `key=value` on the command line.
    pub fn param(&self, key: &str) -> Option<&'static [u8]> {
        self.params(key).next()
    }

    /// Every value of `key=value` on the command line, in order.
    pub fn params<'a>(&self, key: &'a str) -> impl Iterator<Item = &'static [u8]> + 'a {
        self.cmdline.split(|&b| b == b' ').filter_map(move |word| {
            let rest = word.strip_prefix(key.as_bytes())?;
            rest.strip_prefix(b"=")
        })
    }

    /// The register window of each `virtio_mmio.device=<size>@<base>:<irq>`
    /// (how QEMU microvm and Firecracker describe their devices to Linux).
    pub fn virtio_mmio_devices(&self) -> impl Iterator<Item = usize> {
        self.params("virtio_mmio.device").filter_map(|v| {
            let at = v.iter().position(|&b| b == b'@')?;
            let rest = &v[at + 1..];
            let end = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
            usize::try_from(parse_number(&rest[..end])?).ok()
        })
    }

    /// A decimal `key=N` parameter, with an optional K or M suffix (KiB,
    /// MiB); None if absent. A value that is no such number ends the guest
    /// with a message: a parameter the user gave is never ignored.
    pub fn param_u32(&self, key: &str) -> Option<u32> {
        let v = self.param(key)?;
        match parse_size(v) {
            Some(n) => Some(n),
            None => {
                crate::debug::write(b"bad parameter ");
                crate::debug::write(key.as_bytes());
                crate::debug::write(b"=");
                crate::debug::write(v);
                crate::debug::fail(b" (a decimal number, with K or M for KiB or MiB, below 4G)")
            }
        }
    }
}

/// `N`, `NK` or `NM`, as a u32.
fn parse_size(v: &[u8]) -> Option<u32> {
    let (digits, scale) = match v.last()? {
        b'K' => (&v[..v.len() - 1], 1 << 10),
        b'M' => (&v[..v.len() - 1], 1 << 20),
        _ => (v, 1),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    n.checked_mul(scale)
}

/// A decimal or `0x` hexadecimal number.
fn parse_number(s: &[u8]) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix(b"0x") {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let v = (d as char).to_digit(radix)?;
        n.checked_mul(u64::from(radix))?.checked_add(u64::from(v))
    })
}

/// Stops the vCPU for good: with interrupts off, HLT is the guest's exit.
pub fn halt() -> ! {
    loop {
        // SAFETY: cli/hlt only stop this CPU; nothing else depends on it.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
    }
}
