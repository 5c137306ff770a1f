//! The MP table (Intel MultiProcessor Specification 1.4, chapter 4): how Linux
//! without ACPI tables learns the vCPUs, the IOAPIC and how ISA interrupts
//! reach it. Written byte by byte here; Firecracker and vmm-reference write
//! the same entries from bindgen'd `mpspec.h` structs.
//!
//! At EBDA_START (0x9fc00, the last KiB of base memory, where Linux looks):
//! the floating pointer, then the configuration table: a processor entry per
//! vCPU, the ISA bus, the IOAPIC, one interrupt entry per IOAPIC pin (pin n
//! is GSI n, as KVM routes them), and the local interrupts (ExtINT to LINT0,
//! NMI to LINT1).

use thiserror::Error;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{EBDA_START, HIMEM_START, IOAPIC_PINS};

pub const IOAPIC_BASE: u32 = 0xfec0_0000;
pub const LAPIC_BASE: u32 = 0xfee0_0000;
/// APIC ids are 8 bits and the IOAPIC takes one.
pub const MAX_CPUS: u8 = 254;
const APIC_VERSION: u8 = 0x14;
/// Family 6 (what the CPUID the vCPUs get says too, on any host).
const CPU_SIGNATURE: u32 = 0x600;
/// CPUID.1:EDX FPU and APIC.
const CPU_FEATURES: u32 = 0x201;
/// The floating pointer must lie in the EBDA's first KiB; the table may run on
/// into the reserved area below 1 MiB (Firecracker's does too, for 254 vCPUs).
const AREA: usize = (HIMEM_START - EBDA_START) as usize;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MpTableError {
    #[error("{0} vCPUs: the MP table describes 1 to {MAX_CPUS}")]
    Cpus(u8),
    #[error("the MP table for {0} vCPUs does not fit below 1 MiB")]
    TooLarge(u8),
    #[error("writing the MP table: {0}")]
    Memory(String),
}

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b)))
}

/// The floating pointer and the configuration table for `cpus` vCPUs, as
/// they go at EBDA_START.
pub fn build(cpus: u8) -> Result<Vec<u8>, MpTableError> {
    if cpus == 0 || cpus > MAX_CPUS {
        return Err(MpTableError::Cpus(cpus));
    }
    let ioapic_id = cpus;
    let mut entries = Vec::new();
    let mut count = 0u16;
    for id in 0..cpus {
        // Processor: type 0, APIC id, version, flags (enabled; BSP), signature, features.
        entries.extend_from_slice(&[0, id, APIC_VERSION, 1 | if id == 0 { 2 } else { 0 }]);
        entries.extend_from_slice(&CPU_SIGNATURE.to_le_bytes());
        entries.extend_from_slice(&CPU_FEATURES.to_le_bytes());
        entries.extend_from_slice(&[0; 8]);
        count += 1;
    }
    // Bus 0, ISA.
    entries.extend_from_slice(&[1, 0, b'I', b'S', b'A', b' ', b' ', b' ']);
    // The IOAPIC, usable, at its usual address.
    entries.extend_from_slice(&[2, ioapic_id, APIC_VERSION, 1]);
    entries.extend_from_slice(&IOAPIC_BASE.to_le_bytes());
    count += 2;
    for pin in 0..IOAPIC_PINS {
        // I/O interrupt: INT, conforming polarity and trigger, ISA IRQ `pin` to IOAPIC pin `pin`.
        entries.extend_from_slice(&[3, 0, 0, 0, 0, pin, ioapic_id, pin]);
        count += 1;
    }
    // Local interrupts: ExtINT to every LINT0, NMI to every LINT1.
    entries.extend_from_slice(&[4, 3, 0, 0, 0, 0, 0xff, 0]);
    entries.extend_from_slice(&[4, 1, 0, 0, 0, 0, 0xff, 1]);
    count += 2;

    let table_len = 44 + entries.len();
    if 16 + table_len > AREA {
        return Err(MpTableError::TooLarge(cpus));
    }
    let mut table = Vec::with_capacity(table_len);
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&(table_len as u16).to_le_bytes());
    table.push(4); // spec revision 1.4
    table.push(0); // checksum, below
    table.extend_from_slice(b"VMM     "); // OEM id
    table.extend_from_slice(b"VIRTIO-MMIO "); // product id
    table.extend_from_slice(&[0; 4]); // OEM table pointer
    table.extend_from_slice(&[0; 2]); // OEM table size
    table.extend_from_slice(&count.to_le_bytes());
    table.extend_from_slice(&LAPIC_BASE.to_le_bytes());
    table.extend_from_slice(&[0; 4]); // extended table length, checksum, reserved
    table.extend_from_slice(&entries);
    table[7] = checksum(&table);

    let mut out = Vec::with_capacity(16 + table_len);
    out.extend_from_slice(b"_MP_");
    out.extend_from_slice(&((EBDA_START + 16) as u32).to_le_bytes()); // the table follows
    out.extend_from_slice(&[1, 4, 0, 0, 0, 0, 0, 0]); // 16 bytes, revision 1.4, checksum, features
    out[10] = checksum(&out);
    out.extend_from_slice(&table);
    Ok(out)
}

/// Writes the MP table for `cpus` vCPUs at EBDA_START.
pub fn write(mem: &GuestMemoryMmap, cpus: u8) -> Result<(), MpTableError> {
    let table = build(cpus)?;
    mem.write_slice(&table, GuestAddress(EBDA_START)).map_err(|e| MpTableError::Memory(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    #[test]
    fn both_checksums_add_up_and_the_pointer_finds_the_table() {
        for cpus in [1, 2, 8, 64] {
            let t = build(cpus).unwrap();
            assert_eq!(&t[..4], b"_MP_");
            assert_eq!(sum(&t[..16]), 0, "floating pointer, {cpus} vCPUs");
            assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()), (EBDA_START + 16) as u32);
            let table = &t[16..];
            assert_eq!(&table[..4], b"PCMP");
            let len = u16::from_le_bytes([table[4], table[5]]) as usize;
            assert_eq!(len, table.len());
            assert_eq!(sum(table), 0, "configuration table, {cpus} vCPUs");
        }
    }

    #[test]
    fn entries_describe_every_vcpu_the_ioapic_and_its_pins() {
        let t = build(4).unwrap();
        let table = &t[16..];
        let count = u16::from_le_bytes([table[34], table[35]]) as usize;
        let (mut at, mut cpus, mut ioapics, mut ints, mut lints) = (44, Vec::new(), 0, 0, 0);
        for _ in 0..count {
            match table[at] {
                0 => {
                    cpus.push((table[at + 1], table[at + 3]));
                    at += 20;
                }
                1 => at += 8,
                2 => {
                    assert_eq!(table[at + 1], 4, "IOAPIC id after the CPUs'");
                    assert_eq!(u32::from_le_bytes(table[at + 4..at + 8].try_into().unwrap()), IOAPIC_BASE);
                    ioapics += 1;
                    at += 8;
                }
                3 => {
                    assert_eq!(table[at + 5], table[at + 7], "ISA IRQ n to pin n");
                    ints += 1;
                    at += 8;
                }
                4 => {
                    lints += 1;
                    at += 8;
                }
                other => panic!("entry type {other}"),
            }
        }
        assert_eq!(at, table.len());
        assert_eq!(cpus, vec![(0, 3), (1, 1), (2, 1), (3, 1)], "ids, enabled, BSP first");
        assert_eq!((ioapics, ints, lints), (1, 24, 2));
    }

    #[test]
    fn vcpu_counts_out_of_range_are_refused() {
        assert_eq!(build(0), Err(MpTableError::Cpus(0)));
        assert_eq!(build(255), Err(MpTableError::Cpus(255)));
        assert!(build(MAX_CPUS).unwrap().len() < 6000);
    }
}
