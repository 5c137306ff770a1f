//! Streams a known pattern through transmitq, a ring of buffers in flight,
//! sleeping for the used-buffer interrupt when the ring is full: byte i
//! of the stream is `i % 251`. Command line: `bytes=N` (total, default 16M) and
//! `chunk=N` (bytes per buffer, default 4K; K and M suffixes allowed).
//!
//! The pattern is written once into a region at 1 MiB, 250 bytes longer than a
//! chunk; a buffer starting at stream offset `off` points at `off % 251` in it,
//! so no byte is touched per buffer (guest code at CPL0 may be emulated).
//! A lost, repeated or reordered buffer shifts the pattern's phase.
#![no_std]
#![no_main]

use guest::boot::{halt, BootInfo};
use guest::console::Console;

guest::entry!(main);

const PATTERN_BASE: usize = 0x10_0000;
const PERIOD: u32 = 251;
const MAX_CHUNK: u32 = 1 << 20;

fn main(boot: &BootInfo) -> ! {
    let total = boot.param_u32("bytes").unwrap_or(16 << 20);
    let chunk = boot.param_u32("chunk").unwrap_or(4096).clamp(1, MAX_CHUNK);
    fill_pattern((PERIOD - 1 + chunk) as usize);

    let mut console = Console::init(boot).unwrap_or_else(|e| e.fail());
    let mut sent: u32 = 0;
    // As a console driver does (Linux's virtio_console): each buffer is
    // published on its own and followed by a kick, unless the device has
    // asked for none (VIRTQ_USED_F_NO_NOTIFY, or with EVENT_IDX an
    // avail_event the buffer did not pass) while it is busy draining.
    // No interrupts while there is room: the guest sleeps for one only when
    // the ring is full (with EVENT_IDX, for when half of it is used: the
    // device goes on with the other half while the guest refills), or for
    // the last buffers.
    console.transmitq.no_interrupts();
    let half = console.transmitq.size() / 2;
    loop {
        console.transmitq.reclaim();
        if sent < total && !console.transmitq.is_full() {
            let len = chunk.min(total - sent);
            let addr = (PATTERN_BASE + (sent % PERIOD) as usize) as u64;
            console.transmitq.push(addr, len, 0);
            console.transmitq.publish();
            console.kick_transmitq();
            sent += len;
        } else if sent == total && console.transmitq.pending() == 0 {
            break;
        } else if sent < total {
            console.wait_transmitq_for(half);
        } else {
            console.wait_transmitq_for(console.transmitq.pending());
        }
    }
    halt()
}

fn fill_pattern(len: usize) {
    let mut value: u8 = 0;
    for i in 0..len {
        // SAFETY: the region at PATTERN_BASE is RAM the guest owns (the VMM
        // must be given at least 2 MiB).
        unsafe { core::ptr::write_volatile((PATTERN_BASE + i) as *mut u8, value) };
        value = if u32::from(value) == PERIOD - 1 { 0 } else { value + 1 };
    }
}
