//! Writes back what it reads: every buffer the device fills on receiveq goes
//! out on transmitq as it is (the transmit descriptor points at the receive
//! buffer), and then the buffer is posted again. Sleeps for the interrupt in
//! between. Command line: `bytes=N` halts after N bytes (default: never; the
//! VMM ends a guest that waits for input after the end of its input).
#![no_std]
#![no_main]

use guest::boot::{halt, BootInfo};
use guest::console::{Console, RECEIVEQ};
use guest::virtqueue::VIRTQ_DESC_F_WRITE;

guest::entry!(main);

/// Receive buffers, one per receiveq descriptor, from 1 MiB up.
const BUFFERS_BASE: usize = 0x10_0000;
const BUFFER_LEN: u32 = 1024;

fn main(boot: &BootInfo) -> ! {
    let limit = boot.param_u32("bytes");
    // Each receive buffer has its own used length: no IN_ORDER batching.
    let mut console = Console::init_with(boot, 0).unwrap_or_else(|e| e.fail());
    let addr = |id: u16| (BUFFERS_BASE + usize::from(id) * BUFFER_LEN as usize) as u64;
    // Descriptor i holds buffer i: the queue hands out free slots lowest first.
    for i in 0..console.receiveq.size() {
        let id = console.receiveq.push(addr(i), BUFFER_LEN, VIRTQ_DESC_F_WRITE);
        debug_assert_eq!(id, i);
    }
    console.receiveq.publish();
    console.mmio.notify(RECEIVEQ);
    let mut echoed: u32 = 0;
    loop {
        let Some((id, len)) = console.receiveq.pop_used() else {
            console.wait_interrupt();
            continue;
        };
        if len > 0 {
            console.write_from(addr(id), len);
        }
        echoed = echoed.saturating_add(len);
        if limit.is_some_and(|n| echoed >= n) {
            halt()
        }
        let again = console.receiveq.push(addr(id), BUFFER_LEN, VIRTQ_DESC_F_WRITE);
        debug_assert_eq!(again, id);
        console.receiveq.publish();
        console.mmio.notify(RECEIVEQ);
    }
}
