//! Guest-physical layout of a Linux VM, as Firecracker's arch/x86_64/layout.rs
//! lays it out: RAM from 0 up to the 32-bit device hole, the rest above 4 GiB;
//! devices, the IOAPIC and the local APICs in the hole.

use vm_memory::GuestAddress;

/// Where the boot parameters (the "zero page") go.
pub const ZERO_PAGE: u64 = 0x7000;
/// The initial stack, below the zero page's page.
pub const BOOT_STACK: u64 = 0x8ff0;
/// The kernel command line (Firecracker's CMDLINE_START).
pub const CMDLINE: u64 = 0x2_0000;
pub const CMDLINE_MAX: usize = 4096;
/// The extended BIOS data area: the MP table goes in its first KiB.
pub const EBDA_START: u64 = 0x9_fc00;
/// Where a protected-mode kernel is loaded.
pub const HIMEM_START: u64 = 0x10_0000;
/// The 32-bit hole: devices from here to 4 GiB; RAM continues above.
pub const MMIO_GAP_START: u64 = 0xd000_0000;
pub const MMIO_GAP_END: u64 = 1 << 32;
/// The virtio-mmio devices' windows, first in the hole.
pub const VIRTIO_MMIO_BASE: u64 = MMIO_GAP_START;
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;
/// KVM_SET_TSS_ADDR's three pages and KVM_SET_IDENTITY_MAP_ADDR's one, just
/// below the BIOS area at the top of the hole, as Firecracker and QEMU put them.
pub const KVM_TSS_ADDR: u64 = 0xfffb_d000;
pub const KVM_IDENTITY_MAP_ADDR: u64 = 0xfffb_c000;

/// RAM a Linux guest may have, in MiB: what the host gives, up to 1 TiB.
pub const MAX_MEM_MIB: u64 = 1 << 20;

// GSIs on the IOAPIC (the ISA numbering below 16): the COM1 line, and the
// virtio devices' from 5 up (Firecracker's GSI_LEGACY_START), past the
// timer, the keyboard and COM2/COM1.
pub const SERIAL_IRQ: u32 = 4;
pub const VIRTIO_GSI_BASE: u32 = 5;
/// IOAPIC pins (KVM's default routing maps GSI n to pin n).
pub const IOAPIC_PINS: u8 = 24;

/// A virtio-mmio device's register window and its interrupt: what the
/// device list, the ACPI DSDT and the kernel command line all describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioSlot {
    pub base: u64,
    pub size: u64,
    /// The GSI of its line (None: no interrupt controller, the bare-metal VM).
    pub gsi: Option<u32>,
}

/// The slots of a Linux VM's virtio-mmio devices, in the order they are
/// handed out: a 4 KiB window each from the start of the hole, and a GSI
/// each, as many as the IOAPIC has pins for.
pub fn virtio_slots() -> impl Iterator<Item = MmioSlot> {
    (VIRTIO_GSI_BASE..u32::from(IOAPIC_PINS)).enumerate().map(|(i, gsi)| MmioSlot {
        base: VIRTIO_MMIO_BASE + i as u64 * VIRTIO_MMIO_SIZE,
        size: VIRTIO_MMIO_SIZE,
        gsi: Some(gsi),
    })
}

/// The RAM regions for `ram` bytes: below the hole, and above 4 GiB.
pub fn ram_regions(ram: u64) -> Vec<(GuestAddress, usize)> {
    if ram <= MMIO_GAP_START {
        vec![(GuestAddress(0), ram as usize)]
    } else {
        vec![(GuestAddress(0), MMIO_GAP_START as usize), (GuestAddress(MMIO_GAP_END), (ram - MMIO_GAP_START) as usize)]
    }
}

/// An e820 entry type (bootparam.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum E820 {
    Ram = 1,
    Reserved = 2,
}

/// The memory map for `ram` bytes: what a PC reserves below 1 MiB (the EBDA,
/// VGA and BIOS areas, 0x9fc00..0x100000) is not RAM.
pub fn e820(ram: u64) -> Vec<(u64, u64, E820)> {
    let mut map = vec![
        (0, EBDA_START, E820::Ram),
        (EBDA_START, HIMEM_START - EBDA_START, E820::Reserved),
        (HIMEM_START, ram.min(MMIO_GAP_START) - HIMEM_START, E820::Ram),
    ];
    if ram > MMIO_GAP_START {
        map.push((MMIO_GAP_END, ram - MMIO_GAP_START, E820::Ram));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_ram_is_one_region_with_the_pc_holes_reserved() {
        assert_eq!(ram_regions(256 << 20), vec![(GuestAddress(0), 256 << 20)]);
        assert_eq!(
            e820(256 << 20),
            vec![
                (0, 0x9_fc00, E820::Ram),
                (0x9_fc00, 0x6_0400, E820::Reserved),
                (0x10_0000, (256 << 20) - 0x10_0000, E820::Ram)
            ]
        );
    }

    #[test]
    fn virtio_slots_do_not_overlap_and_each_has_its_own_gsi() {
        let slots: Vec<MmioSlot> = virtio_slots().collect();
        assert_eq!(slots.len(), 19);
        assert_eq!(slots[0], MmioSlot { base: 0xd000_0000, size: 0x1000, gsi: Some(5) });
        for pair in slots.windows(2) {
            assert_eq!(pair[1].base, pair[0].base + pair[0].size);
            assert_eq!(pair[1].gsi.unwrap(), pair[0].gsi.unwrap() + 1);
        }
        assert_eq!(slots.last().unwrap().gsi, Some(23), "the IOAPIC's last pin");
        assert!(slots.last().unwrap().base + 0x1000 <= KVM_IDENTITY_MAP_ADDR);
    }

    #[test]
    fn large_ram_continues_above_four_gib() {
        let ram = 6 << 30;
        assert_eq!(
            ram_regions(ram),
            vec![(GuestAddress(0), 0xd000_0000), (GuestAddress(1 << 32), ram as usize - 0xd000_0000)]
        );
        let map = e820(ram);
        assert_eq!(map[2], (0x10_0000, 0xd000_0000 - 0x10_0000, E820::Ram));
        assert_eq!(map[3], (1 << 32, ram - 0xd000_0000, E820::Ram));
        let total: u64 = map.iter().filter(|e| e.2 == E820::Ram).map(|e| e.1).sum();
        assert_eq!(total, ram - (0x10_0000 - 0x9_fc00), "all RAM but the reserved low area");
    }
}
