//! The block device's request parsing and validation under random drivers:
//! the same records as the transport target (driver.rs), with the block
//! device behind the transport and a 64 KiB disk in a memfd. Requests with
//! any layout, type, sector and length, and rewritten while in flight;
//! the device's news is completions, taken when a record says so. The VMM
//! must neither panic nor hang, nor complete a request twice.
//!
//! Input: up to 4 KiB copied to guest address 0x1000, then the records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::os::fd::FromRawFd;
use std::sync::Arc;

mod driver;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm::virtio::block::disk::{DiskConfig, Image};
use vmm::virtio::block::engine::EngineKind;
use vmm::virtio::block::Block;
use vmm::virtio::mmio::MmioTransport;
use vmm::virtio::IrqTrigger;

const RAM: usize = 0x1_0000;
const DISK: u64 = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
    let (image, ops) = data.split_at(data.len().min(4096));
    mem.write_slice(image, GuestAddress(0x1000)).unwrap();
    // SAFETY: a NUL-terminated name; the new descriptor is checked and owned.
    let fd = unsafe { libc::memfd_create(c"disk".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: a new descriptor nothing else owns.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.set_len(DISK).unwrap();
    let config = DiskConfig {
        path: "fuzz.img".into(),
        read_only: false,
        serial: Some("fuzz".into()),
        direct: false,
        engine: Some(EngineKind::Sync),
    };
    let block = Block::new(config, Image { file, size: DISK }, &mem, 0).unwrap();
    let mut t = MmioTransport::new(Box::new(block), Arc::new(IrqTrigger::new(None)));
    driver::drive(&mut t, &mem, ops);
    // A driver's reset waits for what is in flight; the device dropped with
    // operations in flight would leave them, and the memory they point
    // into, to the process's exit (a leak to the sanitizer).
    t.write(0x70, &0u32.to_le_bytes(), &mem);
});
