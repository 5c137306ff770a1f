//! The virtio-mmio transport and the console device under random driver
//! behaviour: register accesses of every width and offset, guest memory
//! rewritten between them (rings, descriptors, buffers), notifications,
//! and the resumption of queues that stopped at their budget. The VMM must
//! neither panic nor hang, whatever the guest does.
//!
//! Input: up to 4 KiB copied to guest address 0x1000 (rings and buffers
//! live there), then 8-byte records: `op, arg, offset (u16), value (u32)`.
//! op % 4: 0 read, 1 write (width 1 << (arg % 4) bytes, at `offset` in the
//! 4 KiB register window), 2 store `value` at guest address `offset` (u32),
//! 3 resume pending work and take the device's news (output room: the
//! output is never drained, so a full one keeps transmitq stalled).
#![no_main]

use libfuzzer_sys::fuzz_target;
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
    for op in ops.chunks_exact(8) {
        let offset = u16::from_le_bytes([op[2], op[3]]);
        let value = u32::from_le_bytes([op[4], op[5], op[6], op[7]]);
        let width = 1 << (op[1] % 4);
        match op[0] % 4 {
            0 => {
                let mut buf = [0u8; 8];
                t.read(u64::from(offset) % 0x1000, &mut buf[..width]);
            }
            1 => {
                let bytes = u64::from(value).to_le_bytes();
                t.write(u64::from(offset) % 0x1000, &bytes[..width], &mem);
            }
            2 => {
                let _ = mem.write_obj(value, GuestAddress(offset.into()));
            }
            _ => {
                if t.has_pending_work() {
                    t.resume(&mem);
                }
                t.take_news(&mem);
            }
        }
    }
});
