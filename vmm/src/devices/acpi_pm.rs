//! The ACPI sleep registers of a hardware-reduced platform (ACPI 6.5,
//! 4.8.3.7 and 4.8.3.8): what the FADT's SLEEP_CONTROL_REG and
//! SLEEP_STATUS_REG point at (x86/acpi.rs), two one-byte registers at ports
//! 0x600 and 0x601 (Cloud Hypervisor's port). Linux powers off through them:
//! `acpi_power_off` -> `acpi_enter_sleep_state(5)` -> `acpi_hw_extended_sleep`
//! (drivers/acpi/acpica/hwesleep.c), which
//! 1. writes WAK_STS (0x80) to the status register, to clear it;
//! 2. writes `((SLP_TYP << 2) & 0x1c) | SLP_EN (0x20)` to the control
//!    register, SLP_TYP being the first element of the DSDT's `\_S5_`
//!    package: 5, so 0x34;
//! 3. polls the status register until WAK_STS reads 1.
//!
//! The write of step 2 raises the power-off line; the vCPU loop checks it
//! after each port write, as it checks the i8042's reset line, and ends the
//! VM before the guest polls. Any other sleep request is refused: the DSDT
//! declares no other sleep state, so only a confused or hostile guest makes
//! one; it gets one warning, and WAK_STS reads 1 at once (the "system" woke
//! up immediately), so its step 3 ends instead of spinning a vCPU forever.

use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_device::MutDevicePio;

use super::power::{PowerLine, PowerRequest};
use crate::warn;

/// Sleep control at 0x600, sleep status at 0x601.
pub const ACPI_PM_BASE: u16 = 0x600;
pub const ACPI_PM_LEN: u16 = 2;
pub const SLEEP_CONTROL: PioAddressOffset = 0;
pub const SLEEP_STATUS: PioAddressOffset = 1;

/// The SLP_TYP of S5 (soft off): what the DSDT's `\_S5_` package says, and
/// what this device decodes.
pub const S5_SLP_TYP: u8 = 5;
// Sleep control register fields (ACPICA's ACPI_X_SLEEP_TYPE_MASK,
// ACPI_X_SLEEP_TYPE_POSITION, ACPI_X_SLEEP_ENABLE).
const SLP_TYP_MASK: u8 = 0x1c;
const SLP_TYP_SHIFT: u8 = 2;
const SLP_EN: u8 = 0x20;
/// Sleep status register: the wake status, write 1 to clear (ACPI_X_WAKE_STATUS).
pub const WAK_STS: u8 = 0x80;

pub struct AcpiPm {
    power_off: PowerLine,
    /// The status register: WAK_STS or 0.
    status: u8,
}

impl AcpiPm {
    pub fn new(power_off: PowerLine) -> Self {
        AcpiPm { power_off, status: 0 }
    }

    fn write_control(&mut self, value: u8) {
        let slp_typ = (value & SLP_TYP_MASK) >> SLP_TYP_SHIFT;
        if value & SLP_EN == 0 {
            // SLP_TYP alone does nothing until SLP_EN is written with it.
            warn!("acpi-pm: sleep control write {value:#04x} without SLP_EN ignored");
        } else if slp_typ == S5_SLP_TYP {
            self.power_off.request(PowerRequest::PowerOff);
        } else {
            warn!("acpi-pm: sleep control write {value:#04x} asks for sleep type {slp_typ}; only S5 (5) is supported, ignored");
            self.status |= WAK_STS;
        }
    }

    fn write_status(&mut self, value: u8) {
        self.status &= !(value & WAK_STS);
        if value & !WAK_STS != 0 {
            warn!("acpi-pm: sleep status write {value:#04x}: only WAK_STS (0x80) is writable; the rest ignored");
        }
    }
}

impl MutDevicePio for AcpiPm {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = match offset + i as PioAddressOffset {
                // SLP_EN is write-only and SLP_TYP is not read back.
                SLEEP_CONTROL => 0,
                SLEEP_STATUS => self.status,
                _ => 0,
            };
        }
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            match offset + i as PioAddressOffset {
                SLEEP_CONTROL => self.write_control(b),
                SLEEP_STATUS => self.write_status(b),
                other => warn!("acpi-pm: write {b:#04x} at port {:#x} ignored", ACPI_PM_BASE.wrapping_add(other)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(pm: &mut AcpiPm, offset: PioAddressOffset, value: u8) {
        pm.pio_write(PioAddress(ACPI_PM_BASE), offset, &[value]);
    }

    fn read(pm: &mut AcpiPm, offset: PioAddressOffset) -> u8 {
        let mut b = [0xaa];
        pm.pio_read(PioAddress(ACPI_PM_BASE), offset, &mut b);
        b[0]
    }

    #[test]
    fn linux_acpi_power_off_sequence_raises_the_line() {
        let line = PowerLine::default();
        let mut pm = AcpiPm::new(line.clone());
        // acpi_hw_extended_sleep: clear WAK_STS, then SLP_TYP 5 | SLP_EN.
        write(&mut pm, SLEEP_STATUS, WAK_STS);
        assert_eq!(line.take(), None);
        assert_eq!((S5_SLP_TYP << 2) | (1 << 5), 0x34, "the value hwesleep.c writes for \\_S5_ = 5");
        write(&mut pm, SLEEP_CONTROL, 0x34);
        assert_eq!(line.take(), Some(PowerRequest::PowerOff));
    }

    #[test]
    fn other_sleep_requests_are_refused_and_wake_at_once() {
        for value in [0x00, 0x14, 0x30, 0x24, 0x3c, 0x20] {
            let line = PowerLine::default();
            let mut pm = AcpiPm::new(line.clone());
            write(&mut pm, SLEEP_STATUS, WAK_STS);
            write(&mut pm, SLEEP_CONTROL, value);
            assert_eq!(line.take(), None, "{value:#x} is not S5");
            // Linux's wait for WAK_STS ends for a sleep request (SLP_EN set).
            let woke = if value & SLP_EN != 0 { WAK_STS } else { 0 };
            assert_eq!(read(&mut pm, SLEEP_STATUS), woke, "{value:#x}");
        }
        // S5 without SLP_EN does nothing either.
        let line = PowerLine::default();
        let mut pm = AcpiPm::new(line.clone());
        write(&mut pm, SLEEP_CONTROL, 0x14);
        assert_eq!(line.take(), None);
    }

    #[test]
    fn status_is_write_one_to_clear_and_control_reads_zero() {
        let mut pm = AcpiPm::new(PowerLine::default());
        assert_eq!(read(&mut pm, SLEEP_STATUS), 0);
        write(&mut pm, SLEEP_CONTROL, 0x24); // S1: refused, "woke"
        assert_eq!(read(&mut pm, SLEEP_STATUS), WAK_STS);
        write(&mut pm, SLEEP_STATUS, 0x00);
        assert_eq!(read(&mut pm, SLEEP_STATUS), WAK_STS, "writing 0 leaves it");
        write(&mut pm, SLEEP_STATUS, WAK_STS);
        assert_eq!(read(&mut pm, SLEEP_STATUS), 0);
        assert_eq!(read(&mut pm, SLEEP_CONTROL), 0);
    }

    #[test]
    fn a_word_access_reaches_both_registers() {
        let line = PowerLine::default();
        let mut pm = AcpiPm::new(line.clone());
        pm.pio_write(PioAddress(ACPI_PM_BASE), SLEEP_CONTROL, &[0x24, 0x00]);
        let mut w = [0xaa; 2];
        pm.pio_read(PioAddress(ACPI_PM_BASE), SLEEP_CONTROL, &mut w);
        assert_eq!(w, [0, WAK_STS]);
        pm.pio_write(PioAddress(ACPI_PM_BASE), SLEEP_CONTROL, &[0x34, WAK_STS]);
        assert_eq!(line.take(), Some(PowerRequest::PowerOff));
    }
}
