//! The PC's CMOS real-time clock (MC146818) at ports 0x70 (index) and 0x71
//! (data), as far as Linux reads it: the wall-clock time at boot. Without one
//! every register reads 0xff, Update-In-Progress never clears, and the
//! kernel spends seconds of polling exits before it logs "Unable to read
//! current time from RTC". rust-vmm's vm-superio has no x86 CMOS (its `Rtc`
//! is Arm's PL031), hence this one.
//!
//! The time registers give the host's UTC time when read, in binary and
//! 24-hour mode (register B says so); the rest is 128 bytes of RAM the guest
//! may write. No alarm, no periodic interrupt, no update cycle.

use std::time::{SystemTime, UNIX_EPOCH};

use vm_device::bus::{PioAddress, PioAddressOffset};
use vm_device::MutDevicePio;

pub const CMOS_BASE: u16 = 0x70;
pub const CMOS_LEN: u16 = 2;

const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const DAY_OF_WEEK: u8 = 0x06;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const REG_A: u8 = 0x0a;
const REG_B: u8 = 0x0b;
const REG_D: u8 = 0x0d;
const CENTURY: u8 = 0x32;
/// Register B: 24-hour mode, binary (not BCD) values.
const REG_B_24H_BINARY: u8 = 0x02 | 0x04;
/// Register D: the battery is good (Valid RAM and Time).
const REG_D_VRT: u8 = 0x80;

pub struct Cmos {
    index: u8,
    ram: [u8; 128],
}

impl Default for Cmos {
    fn default() -> Self {
        let mut ram = [0; 128];
        ram[usize::from(REG_B)] = REG_B_24H_BINARY;
        ram[usize::from(REG_D)] = REG_D_VRT;
        Cmos { index: 0, ram }
    }
}

/// (year, month, day, hours, minutes, seconds, day of week 1 = Sunday) in
/// UTC of `secs` after the Unix epoch (days-to-civil, H. Hinnant's algorithm).
fn civil(secs: u64) -> (u64, u8, u8, u8, u8, u8, u8) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    // 1970-01-01 was a Thursday (5, counting Sunday as 1).
    let weekday = ((days + 4) % 7 + 1) as u8;
    (year, month as u8, day as u8, (rem / 3600) as u8, (rem / 60 % 60) as u8, (rem % 60) as u8, weekday)
}

impl Cmos {
    fn read(&self, index: u8) -> u8 {
        let (year, month, day, hours, minutes, seconds, weekday) =
            civil(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
        match index {
            SECONDS => seconds,
            MINUTES => minutes,
            HOURS => hours,
            DAY_OF_WEEK => weekday,
            DAY => day,
            MONTH => month,
            YEAR => (year % 100) as u8,
            CENTURY => (year / 100) as u8,
            // Update-In-Progress never set: the time is always readable.
            REG_A => self.ram[usize::from(REG_A)] & 0x7f,
            i => self.ram[usize::from(i)],
        }
    }
}

impl MutDevicePio for Cmos {
    fn pio_read(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &mut [u8]) {
        data.fill(0xff);
        if let (1, Some(b)) = (offset, data.first_mut()) {
            *b = self.read(self.index);
        }
    }

    fn pio_write(&mut self, _base: PioAddress, offset: PioAddressOffset, data: &[u8]) {
        let Some(&b) = data.first() else { return };
        match offset {
            // Bit 7 of the index port masks NMIs on a PC; there is nothing to mask.
            0 => self.index = b & 0x7f,
            // Writes to the clock or to register D are not kept: the clock
            // is the host's, and D is read-only.
            _ if self.index > YEAR && self.index != REG_D && self.index != CENTURY => {
                self.ram[usize::from(self.index)] = b;
                // Binary 24-hour mode stays: the time registers are given that way.
                self.ram[usize::from(REG_B)] |= REG_B_24H_BINARY;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0, 5));
        // 2000-02-29 12:34:56, a Tuesday.
        assert_eq!(civil(951_827_696), (2000, 2, 29, 12, 34, 56, 3));
        // 2026-12-02 00:00:00, a Wednesday.
        assert_eq!(civil(1_796_169_600), (2026, 12, 2, 0, 0, 0, 4));
    }

    #[test]
    fn registers() {
        let mut c = Cmos::default();
        let mut b = [0u8];
        let mut read = |c: &mut Cmos, i: u8| {
            c.pio_write(PioAddress(CMOS_BASE), 0, &[i | 0x80]);
            c.pio_read(PioAddress(CMOS_BASE), 1, &mut b);
            b[0]
        };
        assert_eq!(read(&mut c, REG_A) & 0x80, 0, "never updating");
        assert_eq!(read(&mut c, REG_B), REG_B_24H_BINARY);
        assert_eq!(read(&mut c, REG_D), REG_D_VRT);
        assert!(read(&mut c, MONTH) >= 1 && read(&mut c, MONTH) <= 12);
        assert_eq!(read(&mut c, CENTURY), 20);
        // RAM past the clock keeps what the guest writes; the clock does not.
        c.pio_write(PioAddress(CMOS_BASE), 0, &[0x40]);
        c.pio_write(PioAddress(CMOS_BASE), 1, &[0x5a]);
        assert_eq!(read(&mut c, 0x40), 0x5a);
        c.pio_write(PioAddress(CMOS_BASE), 0, &[REG_B]);
        c.pio_write(PioAddress(CMOS_BASE), 1, &[0]);
        assert_eq!(read(&mut c, REG_B), REG_B_24H_BINARY);
    }
}
