//! The i8042 keyboard controller, for the one thing a guest without ACPI
//! uses it for: pulsing the CPU reset line (command 0xfe to port 0x64), which
//! is how Linux reboots and how a guest's `reboot` ends the VM. rust-vmm's
//! vm-superio `I8042Device` decodes it; this trigger records it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_device::MutDevicePio;
use vm_superio::I8042Device;

/// Ports 0x60 (data) to 0x64 (command/status).
pub const I8042_BASE: u16 = 0x60;
pub const I8042_LEN: u16 = 5;

/// Set when the guest asked for a reset.
#[derive(Clone, Default)]
pub struct ResetLine(pub Arc<AtomicBool>);

impl vm_superio::Trigger for ResetLine {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}

pub struct I8042 {
    dev: I8042Device<ResetLine>,
}

impl I8042 {
    pub fn new(reset: ResetLine) -> Self {
        I8042 { dev: I8042Device::new(reset) }
    }
}

impl MutDevicePio for I8042 {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        data.fill(0);
        if let Some(b) = data.first_mut() {
            *b = self.dev.read(offset as u8);
        }
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        if let Some(&b) = data.first() {
            let _ = self.dev.write(offset as u8, b);
        }
    }
}
