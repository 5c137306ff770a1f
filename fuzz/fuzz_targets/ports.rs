//! The console with VIRTIO_CONSOLE_F_MULTIPORT and VIRTIO_CONSOLE_F_SIZE
//! under random driver behaviour, as the `transport` target drives the
//! single-port one: two ports on files (their outputs never started, so
//! they fill), the control queues, every port's queues. The VMM must
//! neither panic nor hang, nor hold more for the driver than its bound.
//!
//! Input: as `transport`'s (driver.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod driver;
use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm::output::Output;
use vmm::virtio::console::{Console, Link, Port};
use vmm::virtio::mmio::MmioTransport;
use vmm::virtio::IrqTrigger;

const RAM: usize = 0x1_0000;

fuzz_target!(|data: &[u8]| {
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
    let (image, ops) = data.split_at(data.len().min(4096));
    mem.write_slice(image, GuestAddress(0x1000)).unwrap();
    let port = |name: &str| Port::new(name.into(), Link::file(Output::new(name, 4 << 10).unwrap()));
    let console = Console::new(Output::new("fuzz", 64 << 10).unwrap())
        .with_size(80, 24)
        .with_ports(vec![port("a"), port("b")])
        .unwrap();
    let mut t = MmioTransport::new(Box::new(console), Arc::new(IrqTrigger::new(None)));
    driver::drive(&mut t, &mem, ops);
});
