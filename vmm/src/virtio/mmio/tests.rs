//! Register-level tests of the transport, with the console behind it.

use super::*;
use crate::virtio::console::{Console, QUEUE_MAX_SIZE};
use vm_memory::Bytes;

/// A transport with a console whose output is never started (it holds up
/// to 8 MiB) and no interrupt line.
fn setup() -> (MmioTransport<Console>, GuestMemoryMmap) {
    let out = crate::output::Output::new("test", 8 << 20).unwrap();
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    (MmioTransport::new(Box::new(Console::new(out)), Arc::new(IrqTrigger::new(None))), mem)
}

fn read(t: &mut MmioTransport<Console>, offset: u64) -> u32 {
    let mut data = [0xffu8; 4];
    t.read(offset, &mut data);
    u32::from_le_bytes(data)
}

fn write(t: &mut MmioTransport<Console>, mem: &GuestMemoryMmap, offset: u64, value: u32) {
    t.write(offset, &value.to_le_bytes(), mem);
}

/// The driver side of §3.1.1 up to FEATURES_OK, accepting `features`.
fn negotiate(t: &mut MmioTransport<Console>, mem: &GuestMemoryMmap, features: u64) {
    write(t, mem, 0x070, STATUS_ACKNOWLEDGE);
    write(t, mem, 0x070, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    write(t, mem, 0x024, 0);
    write(t, mem, 0x020, features as u32);
    write(t, mem, 0x024, 1);
    write(t, mem, 0x020, (features >> 32) as u32);
    write(t, mem, 0x070, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
}

fn setup_queue(t: &mut MmioTransport<Console>, mem: &GuestMemoryMmap, q: u32, base: u64) {
    write(t, mem, 0x030, q);
    write(t, mem, 0x038, 16);
    for (i, offset) in [0x080, 0x090, 0x0a0].into_iter().enumerate() {
        write(t, mem, offset, (base + 0x100 * i as u64) as u32);
        write(t, mem, offset + 4, 0);
    }
    write(t, mem, 0x044, 1);
}

#[test]
fn identification_registers() {
    let (mut t, _) = setup();
    assert_eq!(read(&mut t, 0x000), 0x7472_6976);
    assert_eq!(read(&mut t, 0x004), 2);
    assert_eq!(read(&mut t, 0x008), 3);
    assert_eq!(read(&mut t, 0x00c), VENDOR_ID);
    assert_eq!(read(&mut t, 0x0fc), 0);
}

#[test]
fn features_are_paged_by_the_selector() {
    let (mut t, mem) = setup();
    let offered = t.device().features();
    write(&mut t, &mem, 0x014, 0);
    assert_eq!(read(&mut t, 0x010), offered as u32);
    write(&mut t, &mem, 0x014, 1);
    assert_eq!(read(&mut t, 0x010), (offered >> 32) as u32);
    assert_eq!(offered >> 32 & 1, 1, "VERSION_1 is offered");
    write(&mut t, &mem, 0x014, 2);
    assert_eq!(read(&mut t, 0x010), 0);
}

#[test]
fn full_bring_up_reaches_driver_ok() {
    let (mut t, mem) = setup();
    negotiate(&mut t, &mem, VIRTIO_F_VERSION_1 | VIRTIO_F_IN_ORDER);
    assert_eq!(read(&mut t, 0x070), 0x0b);
    assert_eq!(t.acked_features(), VIRTIO_F_VERSION_1 | VIRTIO_F_IN_ORDER);
    write(&mut t, &mem, 0x030, 1);
    assert_eq!(read(&mut t, 0x034), u32::from(QUEUE_MAX_SIZE));
    assert_eq!(read(&mut t, 0x044), 0);
    setup_queue(&mut t, &mem, 0, 0x5000);
    setup_queue(&mut t, &mem, 1, 0x6000);
    assert_eq!(read(&mut t, 0x044), 1);
    write(&mut t, &mem, 0x070, 0x0f);
    assert_eq!(read(&mut t, 0x070), 0x0f);
    assert_eq!(t.queue(1).unwrap().size(), 16);
    assert_eq!(t.queue(1).unwrap().desc_table(), 0x6000);
}

#[test]
fn status_zero_resets_everything() {
    let (mut t, mem) = setup();
    negotiate(&mut t, &mem, VIRTIO_F_VERSION_1);
    setup_queue(&mut t, &mem, 1, 0x6000);
    write(&mut t, &mem, 0x070, 0);
    assert_eq!(read(&mut t, 0x070), 0);
    assert_eq!(t.acked_features(), 0);
    write(&mut t, &mem, 0x030, 1);
    assert_eq!(read(&mut t, 0x044), 0);
    assert_eq!(t.queue(1).unwrap().size(), QUEUE_MAX_SIZE);
}

#[test]
fn features_ok_requires_version_1_and_only_offered_bits() {
    let (mut t, mem) = setup();
    negotiate(&mut t, &mem, 0);
    assert_eq!(read(&mut t, 0x070), 0x03, "FEATURES_OK refused without VERSION_1");
    write(&mut t, &mem, 0x070, 0);
    negotiate(&mut t, &mem, VIRTIO_F_VERSION_1 | 1 << 40);
    assert_eq!(read(&mut t, 0x070), 0x03, "FEATURES_OK refused with an unoffered bit");
}

#[test]
fn status_bits_out_of_order_need_reset() {
    let (mut t, mem) = setup();
    write(&mut t, &mem, 0x070, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK);
    assert_eq!(read(&mut t, 0x070), 0x43);
    // Only a reset clears it.
    write(&mut t, &mem, 0x070, 0);
    assert_eq!(read(&mut t, 0x070), 0);
    write(&mut t, &mem, 0x070, STATUS_ACKNOWLEDGE);
    write(&mut t, &mem, 0x070, STATUS_DRIVER);
    assert_eq!(read(&mut t, 0x070) & STATUS_DEVICE_NEEDS_RESET, STATUS_DEVICE_NEEDS_RESET, "clearing a bit");
}

#[test]
fn queue_registers_are_gated_on_status_and_readiness() {
    let (mut t, mem) = setup();
    write(&mut t, &mem, 0x030, 1);
    write(&mut t, &mem, 0x038, 8); // before FEATURES_OK: ignored
    assert_eq!(t.queue(1).unwrap().size(), QUEUE_MAX_SIZE);
    negotiate(&mut t, &mem, VIRTIO_F_VERSION_1);
    setup_queue(&mut t, &mem, 1, 0x6000);
    write(&mut t, &mem, 0x038, 8); // queue enabled: ignored
    assert_eq!(t.queue(1).unwrap().size(), 16);
    write(&mut t, &mem, 0x030, 7); // no such queue
    assert_eq!(read(&mut t, 0x034), 0);
    assert_eq!(read(&mut t, 0x070) & STATUS_DEVICE_NEEDS_RESET, 0);
}

#[test]
fn invalid_queue_sizes_need_reset() {
    for size in [0, 3, 512, 0x1_0000] {
        let (mut t, mem) = setup();
        negotiate(&mut t, &mem, VIRTIO_F_VERSION_1);
        write(&mut t, &mem, 0x030, 1);
        write(&mut t, &mem, 0x038, size);
        assert_eq!(read(&mut t, 0x070), 0x4b, "size {size}");
    }
}

#[test]
fn queue_layout_is_checked_when_enabled() {
    let cases: [(&[(u64, u32)], &str); 3] = [
        (&[(0x080, 0x5000), (0x090, 0x5100)], "used ring address never written"),
        (&[(0x080, 0x5008), (0x090, 0x5100), (0x0a0, 0x5200)], "misaligned descriptor table"),
        (&[(0x080, 0x5000), (0x090, 0x5100), (0x0a0, 0xf_fffc)], "used ring past the end of RAM"),
    ];
    for (writes, what) in cases {
        let (mut t, mem) = setup();
        negotiate(&mut t, &mem, VIRTIO_F_VERSION_1);
        write(&mut t, &mem, 0x030, 1);
        for &(offset, value) in writes {
            write(&mut t, &mem, offset, value);
        }
        write(&mut t, &mem, 0x044, 1);
        assert_eq!(read(&mut t, 0x070), 0x4b, "{what}");
        assert_eq!(read(&mut t, 0x044), 0, "{what}");
    }
}

#[test]
fn bad_accesses_are_ignored() {
    let (mut t, mem) = setup();
    write(&mut t, &mem, 0x000, 0); // read-only
    assert_eq!(read(&mut t, 0x000), 0x7472_6976);
    t.write(0x070, &[1], &mem); // 8-bit register write
    assert_eq!(read(&mut t, 0x070), 0);
    let mut byte = [0xffu8; 1];
    t.read(0x000, &mut byte);
    assert_eq!(byte, [0]);
    assert_eq!(read(&mut t, 0x0a8), 0); // unknown register
    assert_eq!(read(&mut t, 0x080), 0); // write-only register
    let mut config = [0xffu8; 2];
    t.read(0x100 + 12, &mut config); // past the console's 12 config bytes
    assert_eq!(config, [0, 0]);
    assert_eq!(read(&mut t, 0x070), 0, "none of this needs a reset");
}

#[test]
fn shared_memory_reads_as_no_region_and_queue_reset_is_known() {
    let (mut t, mem) = setup();
    write(&mut t, &mem, 0x0ac, 0);
    for offset in [0x0b0, 0x0b4, 0x0b8, 0x0bc] {
        assert_eq!(read(&mut t, offset), u32::MAX, "{offset:#x}");
    }
    assert_eq!(read(&mut t, 0x0c0), 0);
    write(&mut t, &mem, 0x0c0, 1);
    assert_eq!(read(&mut t, 0x070), 0, "ignored, no reset needed");
}

#[test]
fn an_available_ring_at_zero_is_refused_when_enabled() {
    let (mut t, mem) = setup();
    negotiate(&mut t, &mem, VIRTIO_F_VERSION_1);
    write(&mut t, &mem, 0x030, 1);
    for (offset, value) in [(0x080, 0x5000), (0x090, 0), (0x0a0, 0x5200)] {
        write(&mut t, &mem, offset, value);
        write(&mut t, &mem, offset + 4, 0);
    }
    write(&mut t, &mem, 0x044, 1);
    assert_eq!(read(&mut t, 0x044), 0);
    assert_eq!(read(&mut t, 0x070), 0x4b);
}

#[test]
fn a_queue_over_budget_resumes_without_a_notification() {
    let (mut t, mem) = setup();
    negotiate(&mut t, &mem, VIRTIO_F_VERSION_1);
    setup_queue(&mut t, &mem, 0, 0x5000);
    setup_queue(&mut t, &mem, 1, 0x6000);
    write(&mut t, &mem, 0x070, 0x0f);
    // One 768 KiB buffer: two budgets.
    mem.write_obj(virtio_queue::desc::split::Descriptor::new(0x8000, 3 << 18, 0, 0), GuestAddress(0x6000)).unwrap();
    mem.write_obj(1u16, GuestAddress(0x6102)).unwrap();
    assert!(!t.write(0x050, &1u32.to_le_bytes(), &mem));
    let mut runs = 1;
    while t.has_pending_work() {
        let notify = t.resume(&mem);
        runs += 1;
        assert_eq!(notify, !t.has_pending_work(), "the last run uses the chain");
    }
    assert_eq!(runs, 2);
    assert_eq!(t.device().bytes_out, 3 << 18);
    assert_eq!(mem.read_obj::<u16>(GuestAddress(0x6202)).unwrap(), 1);
}

#[test]
fn disabling_a_queue_drops_its_pending_work() {
    let (mut t, mem) = setup();
    negotiate(&mut t, &mem, VIRTIO_F_VERSION_1);
    setup_queue(&mut t, &mem, 0, 0x5000);
    setup_queue(&mut t, &mem, 1, 0x6000);
    write(&mut t, &mem, 0x070, 0x0f);
    mem.write_obj(virtio_queue::desc::split::Descriptor::new(0x8000, 3 << 18, 0, 0), GuestAddress(0x6000)).unwrap();
    mem.write_obj(1u16, GuestAddress(0x6102)).unwrap();
    t.write(0x050, &1u32.to_le_bytes(), &mem);
    assert!(t.has_pending_work());
    write(&mut t, &mem, 0x030, 1);
    write(&mut t, &mem, 0x044, 0);
    assert!(!t.has_pending_work());
    assert_eq!(t.device().bytes_out, 1 << 19, "nothing more after QueueReady = 0");
}

#[test]
fn notify_before_driver_ok_is_ignored_and_interrupt_ack_clears() {
    let (mut t, mem) = setup();
    negotiate(&mut t, &mem, VIRTIO_F_VERSION_1);
    assert!(!t.write(0x050, &1u32.to_le_bytes(), &mem));
    assert_eq!(t.interrupt_status(), 0);
    setup_queue(&mut t, &mem, 0, 0x5000);
    setup_queue(&mut t, &mem, 1, 0x6000);
    write(&mut t, &mem, 0x070, 0x0f);
    // A buffer of 4 bytes at 0x8000 on transmitq.
    mem.write_obj(virtio_queue::desc::split::Descriptor::new(0x8000, 4, 0, 0), GuestAddress(0x6000)).unwrap();
    mem.write_obj(1u16, GuestAddress(0x6102)).unwrap();
    assert!(t.write(0x050, &1u32.to_le_bytes(), &mem));
    assert_eq!(t.interrupt_status(), INT_USED_RING);
    assert_eq!(t.device().bytes_out, 4);
    write(&mut t, &mem, 0x064, INT_USED_RING);
    assert_eq!(t.interrupt_status(), 0);
    assert_eq!(read(&mut t, 0x060), 0);
}
