//! The virtio-mmio transport and the console device under random driver
//! behaviour: register accesses of every width and offset, guest memory
//! rewritten between them (rings, descriptors, buffers), notifications,
//! and the resumption of queues that stopped at their budget. The VMM must
//! neither panic nor hang, whatever the guest does.
//!
//! Input: up to 4 KiB copied to guest address 0x1000 (rings and buffers
//! live there), then the driver's records (driver.rs). The device's news is
//! output room: the output is never drained, so a full one keeps transmitq
//! stalled.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod driver;
use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm::output::Output;
use vmm::virtio::console::Console;
use vmm::virtio::mmio::MmioTransport;
use vmm::virtio::IrqTrigger;

/// Guest RAM: small, so random addresses often land inside it.
const RAM: usize = 0x1_0000;

fuzz_target!(|data: &[u8]| {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
    let (image, ops) = data.split_at(data.len().min(4096));
    mem.write_slice(image, GuestAddress(0x1000)).unwrap();
    // Never started: deterministic, and small enough to fill.
    let out = Output::new("fuzz", 64 << 10).unwrap();
    let mut t = MmioTransport::new(Box::new(Console::new(out)), Arc::new(IrqTrigger::new(None)));
    driver::drive(&mut t, &mem, ops);
});
