//! What both targets do with their input after the first 4 KiB: 8-byte
//! records `op, arg, offset (u16), value (u32)`. op % 4: 0 read, 1 write
//! (width 1 << (arg % 4) bytes, at `offset` in the 4 KiB register window),
//! 2 store `value` at guest address `offset` (u32), 3 resume pending work
//! and take the device's news.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm::virtio::mmio::MmioTransport;
use vmm::virtio::VirtioDevice;

pub fn drive<D: VirtioDevice + ?Sized>(t: &mut MmioTransport<D>, mem: &GuestMemoryMmap, ops: &[u8]) {
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
                t.write(u64::from(offset) % 0x1000, &bytes[..width], mem);
            }
            2 => {
                let _ = mem.write_obj(value, GuestAddress(offset.into()));
            }
            _ => {
                if t.has_pending_work() {
                    t.resume(mem);
                }
                t.take_news(mem);
            }
        }
    }
}
