//! The ACPI tables of a Linux guest, built with rust-vmm's `acpi_tables`
//! crate (Cloud Hypervisor's): an RSDP, an XSDT, a hardware-reduced FADT, a
//! MADT and a DSDT in AML, packed 16-byte aligned from 0xe0000, in the
//! reserved BIOS area below 1 MiB (the e820 map's 0x9fc00..0x100000, past
//! the MP table's ~5 KiB at 0x9fc00) where Linux also scans for the RSDP:
//!
//! | table | address | bytes |
//! |-------|---------|-------|
//! | RSDP (revision 2) | 0xe0000 | 36 |
//! | XSDT: the FADT and the MADT | 0xe0030 | 52 |
//! | FADT (6.5) | 0xe0070 | 276 |
//! | MADT | 0xe0190 | 62 + 8 per vCPU |
//! | DSDT | after the MADT | 161 + 60 or 61 per virtio-mmio slot |
//!
//! **FADT**: HW_REDUCED_ACPI, as Firecracker's and Cloud Hypervisor's: no
//! SCI, PM timer, PM1 or GPE blocks, no FACS; the sleep control and status
//! registers are the two ports of devices/acpi_pm.rs, 0x600 and 0x601,
//! through which Linux powers off. On x86 a reduced-hardware FADT also makes
//! Linux skip the legacy timer setup (no PIT or HPET tick: the local APIC
//! timer, calibrated against the TSC) and the 8259 PIC (`null_legacy_pic`,
//! arch/x86/kernel/acpi/boot.c `acpi_generic_reduced_hw_init`). With no
//! legacy PIC Linux has no ISA IRQs (`nr_legacy_irqs()` is 0): every
//! interrupt is a GSI that a device's `_CRS` names, and Linux maps it to an
//! IRQ number of its own choosing. So whatever takes an interrupt must be in
//! the DSDT; a fixed IRQ number no longer reaches its IOAPIC pin.
//!
//! **MADT**: a local APIC per vCPU (id = ACPI processor UID = index,
//! enabled), the IOAPIC (id = the vCPU count, 0xfec00000, GSI base 0) and NMI
//! on every processor's LINT1: what the MP table (mptable.rs) says. No
//! interrupt source overrides, as Firecracker's MADT has none: an override
//! tells where an ISA IRQ does not land on the IOAPIC pin of the same
//! number, or has other than ISA polarity and trigger (a PC's IRQ 0 on pin
//! 2). Here none does: KVM's default routing takes GSI n to pin n, which is
//! also what the MP table's 24 identity entries say, and what Linux assumes
//! for ISA IRQs 0-15 when the MADT has no overrides (mp_config_acpi_legacy_irqs).
//! Under a reduced-hardware FADT Linux builds no ISA mappings at all (above);
//! the DSDT gives each device's GSI, trigger and polarity directly. The
//! MADT's PCAT_COMPAT flag stays clear (the crate has no setter for it):
//! Linux uses no 8259 on a reduced-hardware platform anyway.
//!
//! **DSDT**: in `\_SB_`, the devices that take an interrupt, each with its
//! `_CRS` (the reason above), and `\_S5_`:
//! - `COM1`, PNP0501 at 0x3f8, GSI 4. Linux's 8250 driver registers COM1 at
//!   0x3f8 with IRQ 4 from its built-in table whatever the firmware says,
//!   which keeps the boot console (it polls); but IRQ 4 is not GSI 4 under a
//!   reduced-hardware FADT, and the port's interrupt comes only through
//!   8250_pnp, which takes over the same port with the IRQ of this
//!   description. CONFIG_ACPI selects CONFIG_PNP on x86 (drivers/acpi/Kconfig),
//!   so PNPACPI and SERIAL_8250_PNP (default y with 8250) come with it: the
//!   test kernel's .config has all three.
//! - `PS2K`, PNP0303 at 0x60/0x64, GSI 1: the i8042. Without it Linux's
//!   i8042 driver finds no PNP controller and either gives up (FADT 8042
//!   boot flag clear) or probes the ports directly (flag set, as here) with
//!   IRQ 1, which has no pin either. It is described so the guest binds the
//!   controller it binds with the MP table; Linux's reboot (reboot=k)
//!   writes 0xfe to port 0x64 itself, driver or not. No aux (PNP0F13): the
//!   driver then leaves the mouse port alone.
//! - `Vnnn`, one per virtio-mmio slot: _HID "LNRO0005" (virtio_mmio.c's ACPI
//!   match), _UID the slot's index, _CRS its window and its GSI (edge, active
//!   high, exclusive: the VMM pulses the line per interrupt). The guest then
//!   needs no `virtio_mmio.device=` on its command line, and must not have
//!   one: its IRQ number would name no pin.
//! - `\_S5_` = Package {5, 0, 0, 0}: soft-off is sleep type 5, which Linux
//!   writes as SLP_TYP with SLP_EN to the sleep control register.
//!
//! Not described: the CMOS (the test kernel has no RTC driver; Linux reads
//! the clock from ports 0x70/0x71 directly, and this FADT does not set the
//! "CMOS RTC not present" flag), the PIT (no PIT tick under a reduced-
//! hardware FADT; its ports still calibrate the TSC), the ACPI PM ports
//! (their address is in the FADT).

use acpi_tables::fadt::{FADTBuilder, Flags, FADT};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{EnabledStatus, IoApic, LocalInterruptController, ProcessorLocalApic, MADT};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use acpi_tables::{aml, Aml, AmlSink};
use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use zerocopy::{Immutable, IntoBytes};

use super::layout::{MmioSlot, HIMEM_START, IOAPIC_PINS, SERIAL_IRQ};
use super::mptable::{IOAPIC_BASE, LAPIC_BASE, MAX_CPUS};
use crate::devices::acpi_pm::{ACPI_PM_BASE, S5_SLP_TYP, SLEEP_CONTROL, SLEEP_STATUS};
use crate::devices::i8042::I8042_BASE;
use crate::devices::serial::{COM1_BASE, COM1_LEN};

/// Where the RSDP goes: the start of the BIOS area Linux scans (0xe0000 to
/// 0xfffff), as Firecracker puts it. The other tables follow it.
pub const RSDP_ADDR: u64 = 0xe_0000;
/// The tables end below 1 MiB, in the reserved area.
const AREA_END: u64 = HIMEM_START;
const ALIGN: u64 = 16;

const OEM_ID: [u8; 6] = *b"VMM   ";
const OEM_REVISION: u32 = 1;
/// The FADT's "hypervisor vendor identity" (ACPI 6.5 5.2.9).
const HYPERVISOR_VENDOR: [u8; 8] = *b"VMMKVM  ";

/// The i8042's command/status port and its keyboard interrupt.
const I8042_COMMAND: u16 = I8042_BASE + 4;
const KBD_GSI: u32 = 1;
/// GSIs a virtio-mmio slot may not take: the PIT's (KVM's in-kernel PIT
/// raises GSI 0), the i8042's, the 8259 cascade and COM1's.
const RESERVED_GSIS: [u32; 4] = [0, KBD_GSI, 2, SERIAL_IRQ];

// FADT IAPC_BOOT_ARCH flags (ACPI 6.5 5.2.9.3); the crate names none.
const IAPC_8042: u16 = 1 << 1;
const IAPC_VGA_NOT_PRESENT: u16 = 1 << 2;
const IAPC_MSI_NOT_SUPPORTED: u16 = 1 << 3;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AcpiError {
    #[error("{0} vCPUs: the MADT describes 1 to {MAX_CPUS}")]
    Cpus(u8),
    #[error("virtio-mmio slot {0}: window {1:#x} + {2:#x} is empty or not below 4 GiB")]
    SlotWindow(usize, u64, u64),
    #[error("virtio-mmio slot {0}: GSI {1} is not a free IOAPIC pin (0-{max}, not 0, 1, 2, 4 or another slot's)", max = IOAPIC_PINS - 1)]
    SlotGsi(usize, u32),
    #[error("virtio-mmio slot {0} has no GSI")]
    NoGsi(usize),
    #[error("the ACPI tables ({0} bytes) do not fit between {RSDP_ADDR:#x} and 1 MiB")]
    TooLarge(u64),
    #[error("writing the ACPI tables: {0}")]
    Memory(String),
}

/// Writes the tables for `cpus` vCPUs and the `virtio` slots (in this
/// order: their indexes are the devices' _UIDs) from RSDP_ADDR on, and
/// returns the RSDP's address, for the boot protocol (`linux::load`).
pub fn write_tables(mem: &GuestMemoryMmap, cpus: u8, virtio: &[MmioSlot]) -> Result<u64, AcpiError> {
    let image = build(cpus, virtio)?;
    mem.write_slice(&image, GuestAddress(RSDP_ADDR)).map_err(|e| AcpiError::Memory(e.to_string()))?;
    Ok(RSDP_ADDR)
}

fn align(addr: u64) -> u64 {
    addr.next_multiple_of(ALIGN)
}

fn bytes(table: &dyn Aml) -> Vec<u8> {
    let mut out = Vec::new();
    table.to_aml_bytes(&mut out);
    out
}

/// The tables as they go at RSDP_ADDR, gaps zeroed.
pub fn build(cpus: u8, virtio: &[MmioSlot]) -> Result<Vec<u8>, AcpiError> {
    if cpus == 0 || cpus > MAX_CPUS {
        return Err(AcpiError::Cpus(cpus));
    }
    check_slots(virtio)?;
    let madt = madt(cpus);
    let dsdt = dsdt(virtio);

    let xsdt_addr = align(RSDP_ADDR + Rsdp::len() as u64);
    let xsdt_len = 36 + 2 * 8;
    let fadt_addr = align(xsdt_addr + xsdt_len);
    let madt_addr = align(fadt_addr + FADT::len() as u64);
    let dsdt_addr = align(madt_addr + madt.len() as u64);
    let end = dsdt_addr + dsdt.len() as u64;
    if end > AREA_END {
        return Err(AcpiError::TooLarge(end - RSDP_ADDR));
    }

    let fadt = fadt(dsdt_addr);
    let mut xsdt = XSDT::new(OEM_ID, *b"VMMXSDT ", OEM_REVISION);
    xsdt.add_entry(fadt_addr);
    xsdt.add_entry(madt_addr);
    let xsdt = bytes(&xsdt);
    debug_assert_eq!(xsdt.len() as u64, xsdt_len);
    let rsdp = bytes(&Rsdp::new(OEM_ID, xsdt_addr));

    let mut image = vec![0u8; (end - RSDP_ADDR) as usize];
    for (addr, table) in
        [(RSDP_ADDR, &rsdp), (xsdt_addr, &xsdt), (fadt_addr, &fadt), (madt_addr, &madt), (dsdt_addr, &dsdt)]
    {
        let at = (addr - RSDP_ADDR) as usize;
        image[at..at + table.len()].copy_from_slice(table);
    }
    Ok(image)
}

fn check_slots(virtio: &[MmioSlot]) -> Result<(), AcpiError> {
    for (i, slot) in virtio.iter().enumerate() {
        let end = slot.base.checked_add(slot.size);
        if slot.size == 0 || end.is_none_or(|end| end > 1 << 32) {
            return Err(AcpiError::SlotWindow(i, slot.base, slot.size));
        }
        let Some(gsi) = slot.gsi else { return Err(AcpiError::NoGsi(i)) };
        let taken = virtio[..i].iter().any(|other| other.gsi == slot.gsi);
        if gsi >= u32::from(IOAPIC_PINS) || RESERVED_GSIS.contains(&gsi) || taken {
            return Err(AcpiError::SlotGsi(i, gsi));
        }
    }
    Ok(())
}

fn fadt(dsdt_addr: u64) -> Vec<u8> {
    let mut fadt = FADTBuilder::new(OEM_ID, *b"VMMFACP ", OEM_REVISION)
        .dsdt_64(dsdt_addr)
        .flag(Flags::HwReducedAcpi)
        // No fixed-feature power or sleep button (nor a control-method one).
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton);
    // The i8042 is there (PS2K in the DSDT); no VGA, no MSI (no PCI at all).
    fadt.iapc_boot_arch = (IAPC_8042 | IAPC_VGA_NOT_PRESENT | IAPC_MSI_NOT_SUPPORTED).into();
    let port =
        |offset: u16| GAS::new(AddressSpace::SystemIo, 8, 0, AccessSize::ByteAccess, (ACPI_PM_BASE + offset).into());
    fadt.sleep_control_reg = port(SLEEP_CONTROL);
    fadt.sleep_status_reg = port(SLEEP_STATUS);
    fadt.hypervisor_vendor_identity = u64::from_le_bytes(HYPERVISOR_VENDOR).into();
    bytes(&fadt.finalize())
}

/// Local APIC NMI structure (ACPI 6.5 5.2.12.7), which the crate (RISC-V and
/// Arm minded for its MADT entries besides the local APIC and IOAPIC) does
/// not have.
#[repr(C, packed)]
#[derive(Clone, Copy, IntoBytes, Immutable)]
struct LocalApicNmi {
    r#type: u8,
    length: u8,
    /// 0xff: every processor.
    processor_uid: u8,
    /// MPS INTI flags: 0, conforming polarity and trigger.
    flags: [u8; 2],
    lint: u8,
}

impl Aml for LocalApicNmi {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        sink.vec(self.as_bytes());
    }
}

fn madt(cpus: u8) -> Vec<u8> {
    let mut madt = MADT::new(OEM_ID, *b"VMMAPIC ", OEM_REVISION, LocalInterruptController::Address(LAPIC_BASE));
    for id in 0..cpus {
        madt.add_structure(ProcessorLocalApic::new(id, id, EnabledStatus::Enabled));
    }
    madt.add_structure(IoApic::new(cpus, IOAPIC_BASE, 0));
    madt.add_structure(LocalApicNmi { r#type: 4, length: 6, processor_uid: 0xff, flags: [0, 0], lint: 1 });
    bytes(&madt)
}

/// An interrupt as the VMM raises it: a GSI pulsed high (devices/irq.rs),
/// for this device alone.
fn edge_interrupt(gsi: u32) -> aml::Interrupt {
    aml::Interrupt::new(true, true, false, false, gsi)
}

fn dsdt(virtio: &[MmioSlot]) -> Vec<u8> {
    let mut devices = Vec::new();
    aml::Device::new(
        "COM1".into(),
        vec![
            &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0501")),
            &aml::Name::new("_UID".into(), &aml::ZERO),
            &aml::Name::new(
                "_CRS".into(),
                &aml::ResourceTemplate::new(vec![
                    &aml::IO::new(COM1_BASE, COM1_BASE, 1, COM1_LEN as u8),
                    &edge_interrupt(SERIAL_IRQ),
                ]),
            ),
        ],
    )
    .to_aml_bytes(&mut devices);
    aml::Device::new(
        "PS2K".into(),
        vec![
            &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0303")),
            &aml::Name::new(
                "_CRS".into(),
                &aml::ResourceTemplate::new(vec![
                    &aml::IO::new(I8042_BASE, I8042_BASE, 1, 1),
                    &aml::IO::new(I8042_COMMAND, I8042_COMMAND, 1, 1),
                    &edge_interrupt(KBD_GSI),
                ]),
            ),
        ],
    )
    .to_aml_bytes(&mut devices);
    for (i, slot) in virtio.iter().enumerate() {
        // check_slots: the window is below 4 GiB, and there are fewer slots
        // than IOAPIC pins, so three hex digits name them.
        aml::Device::new(
            format!("V{i:03X}").as_str().into(),
            vec![
                &aml::Name::new("_HID".into(), &"LNRO0005"),
                &aml::Name::new("_UID".into(), &(i as u32)),
                &aml::Name::new(
                    "_CRS".into(),
                    &aml::ResourceTemplate::new(vec![
                        &aml::Memory32Fixed::new(true, slot.base as u32, slot.size as u32),
                        &edge_interrupt(slot.gsi.expect("checked: every slot has a GSI")),
                    ]),
                ),
            ],
        )
        .to_aml_bytes(&mut devices);
    }
    let mut body = aml::Scope::raw("\\_SB_".into(), devices);
    // SLP_TYPa 5 (the sleep control register's, on this platform), SLP_TYPb
    // (a PM1b block's, none here), two reserved.
    aml::Name::new("_S5_".into(), &aml::Package::new(vec![&S5_SLP_TYP, &aml::ZERO, &aml::ZERO, &aml::ZERO]))
        .to_aml_bytes(&mut body);

    // The crate has no DSDT type: its generic SDT with the AML appended.
    // Revision 2: 64-bit AML integers.
    let mut dsdt = Sdt::new(*b"DSDT", 36, 2, OEM_ID, *b"VMMDSDT ", OEM_REVISION);
    dsdt.append_slice(&body);
    dsdt.as_slice().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x86::layout::EBDA_START;
    use crate::x86::mptable;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// The console as machine.rs places it, and `n - 1` more past it.
    fn slots(n: usize) -> Vec<MmioSlot> {
        (0..n)
            .map(|i| MmioSlot { base: 0xd000_0000 + 0x1000 * i as u64, size: 0x1000, gsi: Some(5 + i as u32) })
            .collect()
    }

    /// The tables of an image, read the way Linux reads them.
    struct Tables<'a> {
        image: &'a [u8],
        xsdt: u64,
        fadt: u64,
        madt: u64,
        dsdt: u64,
    }

    impl<'a> Tables<'a> {
        /// The SDT at `addr`, its checksum and its length checked.
        fn sdt(&self, addr: u64, signature: &[u8; 4]) -> &'a [u8] {
            assert!(
                addr >= RSDP_ADDR && addr.is_multiple_of(ALIGN),
                "{} at {addr:#x}",
                String::from_utf8_lossy(signature)
            );
            let at = (addr - RSDP_ADDR) as usize;
            assert_eq!(&self.image[at..at + 4], signature);
            let len = u32_at(self.image, at + 4) as usize;
            assert!(len >= 36);
            let table = &self.image[at..at + len];
            assert_eq!(sum(table), 0, "{} checksum", String::from_utf8_lossy(signature));
            assert_eq!(&table[10..16], &OEM_ID);
            table
        }

        fn parse(image: &'a [u8]) -> Self {
            let rsdp = &image[..36];
            assert_eq!(&rsdp[..8], b"RSD PTR ");
            assert_eq!(rsdp[15], 2, "RSDP revision");
            assert_eq!(sum(&rsdp[..20]), 0, "RSDP checksum (ACPI 1.0 part)");
            assert_eq!(u32_at(rsdp, 20), 36, "RSDP length");
            assert_eq!(sum(rsdp), 0, "RSDP extended checksum");
            assert_eq!(u32_at(rsdp, 16), 0, "no RSDT");
            let mut t = Tables { image, xsdt: u64_at(rsdp, 24), fadt: 0, madt: 0, dsdt: 0 };
            let xsdt = t.sdt(t.xsdt, b"XSDT");
            assert_eq!(xsdt.len(), 36 + 16, "two entries");
            t.fadt = u64_at(xsdt, 36);
            t.madt = u64_at(xsdt, 44);
            let fadt = t.sdt(t.fadt, b"FACP");
            assert_eq!(u32_at(fadt, 40), 0, "32-bit DSDT pointer unused");
            t.dsdt = u64_at(fadt, 140);
            t.sdt(t.madt, b"APIC");
            t.sdt(t.dsdt, b"DSDT");
            t
        }
    }

    #[test]
    fn tables_chain_from_the_rsdp_with_their_checksums() {
        for cpus in [1, 2, MAX_CPUS] {
            for n in [0, 1, 8] {
                let image = build(cpus, &slots(n)).unwrap();
                let t = Tables::parse(&image);
                assert_eq!((t.xsdt, t.fadt, t.madt), (0xe_0030, 0xe_0070, 0xe_0190), "{cpus} vCPUs, {n} slots");
                // In address order, none overlapping, and the image ends with the DSDT.
                let len = |addr| u32_at(&image, (addr - RSDP_ADDR) as usize + 4) as u64;
                assert!(RSDP_ADDR + 36 <= t.xsdt);
                assert!(t.xsdt + len(t.xsdt) <= t.fadt);
                assert!(t.fadt + len(t.fadt) <= t.madt);
                assert!(t.madt + len(t.madt) <= t.dsdt);
                assert_eq!(t.dsdt + len(t.dsdt), RSDP_ADDR + image.len() as u64);
            }
        }
    }

    #[test]
    fn sizes_for_one_two_and_254_vcpus_and_one_and_eight_slots() {
        let madt_len = |cpus| {
            let image = build(cpus, &slots(1)).unwrap();
            let t = Tables::parse(&image);
            t.sdt(t.madt, b"APIC").len()
        };
        assert_eq!(madt_len(1), 44 + 8 + 12 + 6);
        assert_eq!(madt_len(2), 44 + 2 * 8 + 12 + 6);
        assert_eq!(madt_len(MAX_CPUS), 44 + 254 * 8 + 12 + 6);
        let dsdt_len = |n| {
            let image = build(1, &slots(n)).unwrap();
            let t = Tables::parse(&image);
            t.sdt(t.dsdt, b"DSDT").len()
        };
        // The header (36), \_SB_ (112: its 2-byte PkgLength, COM1 in 51,
        // PS2K in 53), \_S5_ (13); a device per slot, 60 bytes with a
        // _UID of 0 or 1 (ZeroOp, OneOp), 61 past them (BytePrefix n).
        assert_eq!(dsdt_len(0), 36 + 112 + 13);
        assert_eq!(dsdt_len(1), 161 + 60);
        assert_eq!(dsdt_len(8), 161 + 60 * 2 + 61 * 6);
        // The most there can be: 254 vCPUs and a slot on every free pin.
        let free: Vec<u32> = (0..u32::from(IOAPIC_PINS)).filter(|g| !RESERVED_GSIS.contains(g)).collect();
        let all: Vec<_> = free
            .iter()
            .enumerate()
            .map(|(i, &gsi)| MmioSlot { base: 0xd000_0000 + 0x1000 * i as u64, size: 0x1000, gsi: Some(gsi) })
            .collect();
        let image = build(MAX_CPUS, &all).unwrap();
        Tables::parse(&image);
        assert!(image.len() < 8192, "{} bytes", image.len());
        assert!(RSDP_ADDR + image.len() as u64 <= 0x10_0000);
    }

    #[test]
    fn fadt_is_hardware_reduced_with_the_sleep_registers() {
        let image = build(2, &slots(1)).unwrap();
        let t = Tables::parse(&image);
        let fadt = t.sdt(t.fadt, b"FACP");
        assert_eq!(fadt.len(), 276, "ACPI 6.x FADT");
        assert_eq!((fadt[8], fadt[131]), (6, 5), "FADT 6.5");
        let flags = u32_at(fadt, 112);
        assert_eq!(flags, (1 << 20) | (1 << 4) | (1 << 5), "HW_REDUCED_ACPI, PWR_BUTTON, SLP_BUTTON");
        assert_eq!(u16_at(fadt, 109), 0b1110, "IAPC_BOOT_ARCH: 8042, no VGA, no MSI");
        assert_eq!(u16_at(fadt, 46), 0, "no SCI");
        assert_eq!(u32_at(fadt, 76), 0, "no PM timer");
        assert_eq!(fadt[116..128], [0; 12], "no reset register");
        // SLEEP_CONTROL_REG and SLEEP_STATUS_REG: system I/O, 8 bits at bit 0, byte access.
        assert_eq!(fadt[244..248], [1, 8, 0, 1]);
        assert_eq!(u64_at(fadt, 248), 0x600);
        assert_eq!(fadt[256..260], [1, 8, 0, 1]);
        assert_eq!(u64_at(fadt, 260), 0x601);
        assert_eq!(&fadt[268..276], b"VMMKVM  ", "hypervisor vendor identity");
    }

    #[test]
    fn madt_says_what_the_mp_table_says() {
        for cpus in [1, 2, 4, MAX_CPUS] {
            let image = build(cpus, &slots(1)).unwrap();
            let t = Tables::parse(&image);
            let madt = t.sdt(t.madt, b"APIC");
            assert_eq!(u32_at(madt, 36), LAPIC_BASE);
            let (mut lapics, mut ioapics, mut nmis, mut at) = (Vec::new(), Vec::new(), Vec::new(), 44);
            while at < madt.len() {
                let (kind, len) = (madt[at], madt[at + 1] as usize);
                let e = &madt[at..at + len];
                match (kind, len) {
                    (0, 8) => lapics.push((e[2], e[3], u32_at(e, 4))),
                    (1, 12) => ioapics.push((e[2], u32_at(e, 4), u32_at(e, 8))),
                    (4, 6) => nmis.push((e[2], u16_at(e, 3), e[5])),
                    other => panic!("MADT entry {other:?}: no overrides, no other kinds"),
                }
                at += len;
            }
            assert_eq!(at, madt.len());
            let want: Vec<_> = (0..cpus).map(|id| (id, id, 1)).collect();
            assert_eq!(lapics, want, "UID = APIC id = index, enabled");
            assert_eq!(ioapics, vec![(cpus, IOAPIC_BASE, 0)], "IOAPIC id after the vCPUs', GSI base 0");
            assert_eq!(nmis, vec![(0xff, 0, 1)], "NMI on every processor's LINT1");
        }
    }

    /// An AML PkgLength at `b`: its value and how many bytes it takes.
    fn pkg_length(b: &[u8]) -> (usize, usize) {
        let extra = (b[0] >> 6) as usize;
        if extra == 0 {
            return ((b[0] & 0x3f) as usize, 1);
        }
        let mut value = (b[0] & 0x0f) as usize;
        for i in 0..extra {
            value |= (b[1 + i] as usize) << (4 + 8 * i);
        }
        (value, 1 + extra)
    }

    /// The DSDT's AML: the devices in `\_SB_` (name, body) and what follows
    /// the scope at the root.
    fn dsdt_objects(dsdt: &[u8]) -> (Vec<(String, &[u8])>, &[u8]) {
        let aml = &dsdt[36..];
        assert_eq!(aml[0], 0x10, "ScopeOp");
        let (len, n) = pkg_length(&aml[1..]);
        let scope_end = 1 + len;
        assert_eq!(&aml[1 + n..1 + n + 5], b"\\_SB_");
        let mut at = 1 + n + 5;
        let mut devices = Vec::new();
        while at < scope_end {
            assert_eq!(aml[at..at + 2], [0x5b, 0x82], "DeviceOp");
            let (len, n) = pkg_length(&aml[at + 2..]);
            let end = at + 2 + len;
            let name = String::from_utf8(aml[at + 2 + n..at + 2 + n + 4].to_vec()).unwrap();
            devices.push((name, &aml[at + 2 + n + 4..end]));
            at = end;
        }
        assert_eq!(at, scope_end);
        (devices, &aml[scope_end..])
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// Name(_HID, "LNRO0005").
    const LNRO0005: &[u8] = b"\x08_HID\x0dLNRO0005\x00";

    fn memory32_fixed(base: u32, size: u32) -> Vec<u8> {
        let mut d = vec![0x86, 9, 0, 1];
        d.extend_from_slice(&base.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        d
    }

    /// Extended interrupt: consumer, edge, active high, exclusive; one GSI.
    fn interrupt(gsi: u32) -> Vec<u8> {
        let mut d = vec![0x89, 6, 0, 0b0011, 1];
        d.extend_from_slice(&gsi.to_le_bytes());
        d
    }

    #[test]
    fn dsdt_describes_the_slots_the_legacy_devices_and_s5() {
        let virtio = vec![
            MmioSlot { base: 0xd000_0000, size: 0x1000, gsi: Some(5) },
            MmioSlot { base: 0xd000_1000, size: 0x1000, gsi: Some(6) },
            MmioSlot { base: 0xd012_3000, size: 0x20_0000, gsi: Some(23) },
        ];
        let image = build(1, &virtio).unwrap();
        let t = Tables::parse(&image);
        let (devices, rest) = dsdt_objects(t.sdt(t.dsdt, b"DSDT"));
        let names: Vec<_> = devices.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["COM1", "PS2K", "V000", "V001", "V002"]);

        let com1 = devices[0].1;
        assert!(contains(com1, b"\x08_HID\x0c\x41\xd0\x05\x01"), "EisaId(PNP0501)");
        assert!(contains(com1, &[0x47, 1, 0xf8, 3, 0xf8, 3, 1, 8]), "IO(Decode16, 0x3f8, 0x3f8, 1, 8)");
        assert!(contains(com1, &interrupt(4)));
        let ps2 = devices[1].1;
        assert!(contains(ps2, b"\x08_HID\x0c\x41\xd0\x03\x03"), "EisaId(PNP0303)");
        assert!(contains(ps2, &[0x47, 1, 0x60, 0, 0x60, 0, 1, 1]));
        assert!(contains(ps2, &[0x47, 1, 0x64, 0, 0x64, 0, 1, 1]));
        assert!(contains(ps2, &interrupt(1)));

        for (i, (slot, (_, body))) in virtio.iter().zip(&devices[2..]).enumerate() {
            assert!(contains(body, LNRO0005), "V00{i}");
            let uid = match i {
                0 => vec![0x00],
                1 => vec![0x01],
                _ => vec![0x0a, i as u8],
            };
            assert!(contains(body, &[b"\x08_UID".as_slice(), &uid].concat()), "V00{i} _UID");
            let mut crs = memory32_fixed(slot.base as u32, slot.size as u32);
            crs.extend(interrupt(slot.gsi.unwrap()));
            assert!(contains(body, &crs), "V00{i}: Memory32Fixed(ReadWrite) then the interrupt");
        }
        // Name(\_S5_, Package(4) {5, 0, 0, 0}) at the root, after \_SB_, and nothing else.
        assert_eq!(rest, b"\x08_S5_\x12\x07\x04\x0a\x05\x00\x00\x00");
    }

    #[test]
    fn bad_input_is_refused() {
        assert_eq!(build(0, &slots(1)), Err(AcpiError::Cpus(0)));
        assert_eq!(build(255, &slots(1)), Err(AcpiError::Cpus(255)));
        let slot = |base, size, gsi| MmioSlot { base, size, gsi: Some(gsi) };
        let ok = slot(0xd000_0000, 0x1000, 5);
        assert_eq!(build(1, &[ok, slot(0xffff_f000, 0x2000, 6)]), Err(AcpiError::SlotWindow(1, 0xffff_f000, 0x2000)));
        assert_eq!(build(1, &[slot(0xd000_0000, 0, 5)]), Err(AcpiError::SlotWindow(0, 0xd000_0000, 0)));
        assert_eq!(build(1, &[slot(1 << 32, 0x1000, 5)]), Err(AcpiError::SlotWindow(0, 1 << 32, 0x1000)));
        assert!(build(1, &[slot(0xffff_f000, 0x1000, 5)]).is_ok(), "up to 4 GiB exactly");
        for gsi in [0, 1, 2, 4, 24] {
            assert_eq!(build(1, &[slot(0xd000_0000, 0x1000, gsi)]), Err(AcpiError::SlotGsi(0, gsi)));
        }
        assert_eq!(build(1, &[ok, slot(0xd000_1000, 0x1000, 5)]), Err(AcpiError::SlotGsi(1, 5)));
    }

    #[test]
    fn written_below_one_mib_past_the_mp_table() {
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 2 << 20)]).unwrap();
        mptable::write(&mem, MAX_CPUS).unwrap();
        let mp_end = EBDA_START + mptable::build(MAX_CPUS).unwrap().len() as u64;
        assert!(mp_end <= RSDP_ADDR, "the MP table for 254 vCPUs ends at {mp_end:#x}");
        let rsdp = write_tables(&mem, MAX_CPUS, &slots(8)).unwrap();
        assert_eq!(rsdp, RSDP_ADDR);
        let mut image = vec![0; (HIMEM_START - RSDP_ADDR) as usize];
        mem.read_slice(&mut image, GuestAddress(RSDP_ADDR)).unwrap();
        let t = Tables::parse(&image);
        assert_eq!(t.sdt(t.madt, b"APIC").len(), 44 + 254 * 8 + 18);
        // The MP table is still whole.
        let mut mp = vec![0; 16];
        mem.read_slice(&mut mp, GuestAddress(EBDA_START)).unwrap();
        assert_eq!(&mp[..4], b"_MP_");
    }

    /// Writes the tables to $ACPI_DUMP_DIR for `iasl -d`:
    /// `ACPI_DUMP_DIR=/tmp/acpi cargo test -p vmm --lib dump_tables -- --ignored`.
    #[test]
    #[ignore]
    fn dump_tables() {
        let dir = std::path::PathBuf::from(std::env::var("ACPI_DUMP_DIR").expect("ACPI_DUMP_DIR"));
        std::fs::create_dir_all(&dir).unwrap();
        let image = build(2, &slots(2)).unwrap();
        let t = Tables::parse(&image);
        for (addr, sig) in [(t.xsdt, b"XSDT"), (t.fadt, b"FACP"), (t.madt, b"APIC"), (t.dsdt, b"DSDT")] {
            let name = String::from_utf8_lossy(sig).to_lowercase();
            std::fs::write(dir.join(format!("{name}.dat")), t.sdt(addr, sig)).unwrap();
        }
        std::fs::write(dir.join("rsdp.dat"), &image[..36]).unwrap();
    }
}
