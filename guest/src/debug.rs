//! Diagnostics through the debug I/O port 0xE9 (the Bochs/QEMU "debugcon"
//! convention). The VMM prints these bytes on its stderr, prefixed `guest: `.
//! This is the guest's voice when the console itself is unusable.

use core::panic::PanicInfo;

const DEBUG_PORT: u16 = 0xe9;

pub fn write(bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: an OUT to the debug port has no effect on guest memory.
        unsafe { core::arch::asm!("out dx, al", in("dx") DEBUG_PORT, in("al") b, options(nomem, nostack)) };
    }
}

/// Writes `0x` and eight hex digits.
pub fn write_hex(v: u32) {
    let mut buf = *b"0x00000000";
    for i in 0..8 {
        let nibble = (v >> (28 - 4 * i)) & 0xf;
        buf[2 + i] = b"0123456789abcdef"[nibble as usize];
    }
    write(&buf);
}

/// Reports a fatal error on the debug port and halts.
pub fn fail(msg: &[u8]) -> ! {
    write(msg);
    write(b"\n");
    crate::boot::halt()
}

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    // Formatting the message would pull core::fmt into a 12 KiB image.
    fail(b"guest panicked")
}
