//! COM1: an 8250-compatible UART at 0x3f8 on IRQ 4 (rust-vmm's vm-superio
//! `Serial`), for Linux's early messages and `console=ttyS0`. Its output goes
//! to stderr, a file, or nowhere (`--serial`), through an `Output` that never
//! makes a vCPU wait; stdout stays the virtio console's alone.

use std::io::Write;

use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_device::MutDevicePio;
use vm_superio::Serial;

use super::irq::GsiLine;
use crate::warn;

pub const COM1_BASE: u16 = 0x3f8;
pub const COM1_LEN: u16 = 8;

pub struct SerialPort {
    uart: Serial<GsiLine, vm_superio::serial::NoEvents, Box<dyn Write + Send>>,
}

impl SerialPort {
    pub fn new(irq: GsiLine, out: Box<dyn Write + Send>) -> Self {
        SerialPort { uart: Serial::new(irq, out) }
    }

    /// Input for the guest (its receive FIFO); returns how much fit.
    pub fn enqueue(&mut self, bytes: &[u8]) -> usize {
        self.uart.enqueue_raw_bytes(bytes).unwrap_or(0)
    }
}

impl MutDevicePio for SerialPort {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        data.fill(0);
        if data.len() == 1 {
            data[0] = self.uart.read(offset as u8);
        }
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        if data.len() != 1 {
            return;
        }
        if let Err(e) = self.uart.write(offset as u8, data[0]) {
            warn!("serial: {e:?}");
        }
    }
}
