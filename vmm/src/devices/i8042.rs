//! The i8042 keyboard controller, with no keyboard or mouse behind it: what
//! Linux needs of one without ACPI. Its controller init reads and writes the
//! command byte (CTR), and its reboot pulses the CPU reset line (command 0xfe
//! to port 0x64), which ends the VM.
//!
//! rust-vmm's vm-superio `I8042Device` decodes only the reset and reads every
//! port as 0: Linux then polls the status port 10 000 times for each CTR
//! read before it gives up ("Can't read CTR while initializing i8042"), over
//! a second of a nested guest's boot in exits. This one answers the
//! controller's own commands, as Firecracker's i8042 does.

use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_device::MutDevicePio;

use super::power::{PowerLine, PowerRequest};

/// Ports 0x60 (data) to 0x64 (command/status).
pub const I8042_BASE: u16 = 0x60;
pub const I8042_LEN: u16 = 5;
const DATA: PioAddressOffset = 0;
const COMMAND: PioAddressOffset = 4;

// Status register bits.
const STATUS_OUTPUT_FULL: u8 = 0x01;
const STATUS_SYSTEM: u8 = 0x04;
const STATUS_AUX_DATA: u8 = 0x20;

// Controller commands (Linux's i8042.h names).
const CMD_READ_CTR: u8 = 0x20;
const CMD_WRITE_CTR: u8 = 0x60;
const CMD_AUX_DISABLE: u8 = 0xa7;
const CMD_AUX_ENABLE: u8 = 0xa8;
const CMD_AUX_TEST: u8 = 0xa9;
const CMD_SELF_TEST: u8 = 0xaa;
const CMD_KBD_TEST: u8 = 0xab;
const CMD_KBD_DISABLE: u8 = 0xad;
const CMD_KBD_ENABLE: u8 = 0xae;
const CMD_KBD_LOOP: u8 = 0xd2;
const CMD_AUX_LOOP: u8 = 0xd3;
const CMD_RESET_CPU: u8 = 0xfe;

// CTR bits.
const CTR_KBD_DISABLE: u8 = 0x10;
const CTR_AUX_DISABLE: u8 = 0x20;

const SELF_TEST_OK: u8 = 0x55;
const PORT_TEST_OK: u8 = 0x00;

pub struct I8042 {
    reset: PowerLine,
    ctr: u8,
    /// The byte waiting on the data port, and whether it is the aux port's.
    output: Option<(u8, bool)>,
    /// The command whose parameter the next data-port write is.
    pending: Option<u8>,
}

impl I8042 {
    pub fn new(reset: PowerLine) -> Self {
        // Both ports disabled, as a BIOS leaves them with nothing attached.
        I8042 { reset, ctr: CTR_KBD_DISABLE | CTR_AUX_DISABLE, output: None, pending: None }
    }

    fn command(&mut self, cmd: u8) {
        match cmd {
            CMD_READ_CTR => self.output = Some((self.ctr, false)),
            CMD_WRITE_CTR | CMD_KBD_LOOP | CMD_AUX_LOOP => self.pending = Some(cmd),
            CMD_AUX_DISABLE => self.ctr |= CTR_AUX_DISABLE,
            CMD_AUX_ENABLE => self.ctr &= !CTR_AUX_DISABLE,
            CMD_KBD_DISABLE => self.ctr |= CTR_KBD_DISABLE,
            CMD_KBD_ENABLE => self.ctr &= !CTR_KBD_DISABLE,
            CMD_SELF_TEST => self.output = Some((SELF_TEST_OK, false)),
            CMD_AUX_TEST | CMD_KBD_TEST => self.output = Some((PORT_TEST_OK, false)),
            CMD_RESET_CPU => self.reset.request(PowerRequest::Reset),
            // Anything else (the output port, a write to the mouse): no
            // device answers, as on a PC with nothing plugged in.
            _ => {}
        }
    }

    fn data(&mut self, value: u8) {
        match self.pending.take() {
            Some(CMD_WRITE_CTR) => self.ctr = value,
            Some(CMD_KBD_LOOP) => self.output = Some((value, false)),
            Some(CMD_AUX_LOOP) => self.output = Some((value, true)),
            // A byte for the keyboard, which is not there.
            _ => {}
        }
    }

    fn status(&self) -> u8 {
        match self.output {
            Some((_, aux)) => STATUS_SYSTEM | STATUS_OUTPUT_FULL | if aux { STATUS_AUX_DATA } else { 0 },
            None => STATUS_SYSTEM,
        }
    }
}

impl MutDevicePio for I8042 {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        data.fill(0);
        let value = match offset {
            DATA => self.output.take().map_or(0, |(b, _)| b),
            COMMAND => self.status(),
            _ => 0xff,
        };
        if let Some(b) = data.first_mut() {
            *b = value;
        }
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        match (offset, data.first()) {
            (DATA, Some(&b)) => self.data(b),
            (COMMAND, Some(&b)) => self.command(b),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(i: &mut I8042, offset: PioAddressOffset) -> u8 {
        let mut b = [0u8];
        i.pio_read(PioAddress(I8042_BASE), offset, &mut b);
        b[0]
    }

    fn write(i: &mut I8042, offset: PioAddressOffset, value: u8) {
        i.pio_write(PioAddress(I8042_BASE), offset, &[value]);
    }

    #[test]
    fn linux_controller_init() {
        let mut i = I8042::new(PowerLine::default());
        assert_eq!(read(&mut i, COMMAND) & STATUS_OUTPUT_FULL, 0);
        write(&mut i, COMMAND, CMD_READ_CTR);
        assert_eq!(read(&mut i, COMMAND) & STATUS_OUTPUT_FULL, STATUS_OUTPUT_FULL);
        assert_eq!(read(&mut i, DATA), CTR_KBD_DISABLE | CTR_AUX_DISABLE);
        assert_eq!(read(&mut i, COMMAND) & STATUS_OUTPUT_FULL, 0);
        write(&mut i, COMMAND, CMD_WRITE_CTR);
        write(&mut i, DATA, 0x47);
        write(&mut i, COMMAND, CMD_READ_CTR);
        assert_eq!(read(&mut i, DATA), 0x47);
        write(&mut i, COMMAND, CMD_AUX_LOOP);
        write(&mut i, DATA, 0x5a);
        assert_eq!(read(&mut i, COMMAND), STATUS_SYSTEM | STATUS_OUTPUT_FULL | STATUS_AUX_DATA);
        assert_eq!(read(&mut i, DATA), 0x5a);
        write(&mut i, COMMAND, CMD_SELF_TEST);
        assert_eq!(read(&mut i, DATA), SELF_TEST_OK);
    }

    #[test]
    fn reset_pulse() {
        let reset = PowerLine::default();
        let mut i = I8042::new(reset.clone());
        write(&mut i, DATA, CMD_RESET_CPU);
        assert_eq!(reset.take(), None, "0xfe on the data port is a keyboard byte");
        write(&mut i, COMMAND, CMD_RESET_CPU);
        assert_eq!(reset.take(), Some(PowerRequest::Reset));
    }
}
