//! The debug port (0xe9, Bochs' and QEMU's isa-debugcon): the bare-metal
//! guests write their fatal errors there, and only those; they appear on
//! stderr as `guest: ...` lines, control characters shown as dots, and make
//! the run an error.

use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_device::MutDevicePio;

pub const DEBUG_PORT: u16 = 0xe9;
/// A longer line is cut (a guest cannot make the VMM buffer without bound).
const LINE_MAX: usize = 1024;

#[derive(Default)]
pub struct DebugPort {
    line: Vec<u8>,
    /// The guest wrote something: it failed.
    used: bool,
}

impl DebugPort {
    /// Prints a partial line (at halt).
    pub fn flush(&mut self) {
        if !self.line.is_empty() {
            self.print();
        }
    }

    fn print(&mut self) {
        let text: String =
            String::from_utf8_lossy(&self.line).chars().map(|c| if c.is_control() { '.' } else { c }).collect();
        crate::log::line(format_args!("guest: {text}"));
        self.line.clear();
    }

    /// Whether the guest reported a failure.
    pub fn used(&self) -> bool {
        self.used
    }
}

impl MutDevicePio for DebugPort {
    fn pio_read(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &mut [u8]) {
        // isa-debugcon reads back 0xe9: a guest can probe for it.
        data.fill(0xe9);
    }

    fn pio_write(&mut self, _base: PioAddress, _offset: PioAddressOffset, data: &[u8]) {
        self.used = true;
        for &b in data {
            if b == b'\n' {
                self.print();
            } else if self.line.len() < LINE_MAX {
                self.line.push(b);
            }
        }
    }
}
