//! The console's ports (MULTIPORT), as the host's tests drive them: brings
//! the device up (DEVICE_READY, PORT_READY for each port added), lists the
//! ports on the console (port 0), opens ports 1 and 2, writes a line to
//! port 1 once the host has it open and waits for the host to close it,
//! then echoes what port 2 receives for `rounds=` host connections
//! (default 2), each ended by the host closing it; closes both ports and
//! halts. What it sees goes to the console, line by line. `wait-close=0`:
//! port 1's host side never closes (a file, a pty); the guest goes on.
//!
//! `size=1`: the device offers VIRTIO_CONSOLE_F_SIZE (stdin a terminal);
//! the console's size (RESIZE after CONSOLE_PORT) is listed, and the guest
//! waits for a second RESIZE (the host's terminal changed) before it halts.
//! `only=list`: bring-up and the list, then halt. `only=size`: no
//! MULTIPORT (the device has no ports), only VIRTIO_CONSOLE_F_SIZE: the
//! size in the configuration space, and again after a configuration change.
#![no_std]
#![no_main]

use guest::boot::{halt, BootInfo};
use guest::console::Console;
use guest::mmio;
use guest::ports::{Ports, PORT_OPEN, VIRTIO_CONSOLE_F_SIZE};
use guest::text::Line;

guest::entry!(main);

const HELLO: &[u8] = b"hello from the guest on port 1\n";

fn main(boot: &BootInfo) -> ! {
    if boot.param("only") == Some(b"size") {
        size_only(boot)
    }
    let sized = boot.param_u32("size") == Some(1);
    let rounds = boot.param_u32("rounds").unwrap_or(2);
    let p = Ports::init(boot, if sized { VIRTIO_CONSOLE_F_SIZE } else { 0 });
    p.bring_up(sized);
    let mut line = Line::new();
    line.text(b"ports: ").decimal(p.max_nr_ports.into()).text(b"\n");
    p.console.write(line.as_bytes());
    p.console.write(b"port 0: console\n");
    for port in 1..p.max_nr_ports as usize {
        let mut line = Line::new();
        line.text(b"port ").decimal(port as u64).text(b": ").text(p.state.name(port)).text(b"\n");
        p.console.write(line.as_bytes());
    }
    if sized {
        let (cols, rows) = p.state.size;
        let mut line = Line::new();
        line.text(b"port 0: size ").decimal(cols.into()).text(b"x").decimal(rows.into()).text(b"\n");
        p.console.write(line.as_bytes());
        p.wait(|s| s.resizes > 1);
        let (cols, rows) = p.state.size;
        let mut line = Line::new();
        line.text(b"port 0: resized to ").decimal(cols.into()).text(b"x").decimal(rows.into()).text(b"\n");
        p.console.write(line.as_bytes());
    }
    if boot.param("only") == Some(b"list") || sized {
        halt()
    }
    p.send(1, PORT_OPEN, 1);
    p.send(2, PORT_OPEN, 1);

    p.wait(|s| s.opens[1] >= 1);
    p.write_from(1, HELLO.as_ptr() as u64, HELLO.len() as u32);
    let mut line = Line::new();
    line.text(b"port 1: wrote ").decimal(HELLO.len() as u64).text(b" bytes\n");
    p.console.write(line.as_bytes());
    // A file or a pty is open for as long as the VM runs.
    if boot.param_u32("wait-close") != Some(0) {
        p.wait(|s| s.closes[1] >= 1);
        p.console.write(b"port 1: host closed\n");
    }

    p.post_receive(2);
    // A buffer taken at the end of a round that belongs to the next.
    let mut carried = None;
    for round in 1..=rounds {
        p.wait(|s| s.opens[2] >= round);
        let mut echoed = 0;
        loop {
            // The device delivers a host's close before what the next
            // connection sends, and the host closes only after it read its
            // echo back: a buffer taken after the close showed up is the
            // next round's.
            while p.poll_control().is_some() {}
            if p.state.closes[2] >= round {
                break;
            }
            let Some((slot, addr, len)) = carried.take().or_else(|| p.receive(2)) else {
                p.console.wait_interrupt();
                continue;
            };
            while p.poll_control().is_some() {}
            if p.state.closes[2] >= round {
                carried = Some((slot, addr, len));
                break;
            }
            if len > 0 {
                p.write_from(2, addr, len);
            }
            echoed += len;
            p.repost(2, slot);
        }
        let mut line = Line::new();
        line.text(b"port 2: round ").decimal(round.into()).text(b": ").decimal(echoed.into());
        p.console.write(line.text(b" bytes echoed\n").as_bytes());
    }
    p.send(1, PORT_OPEN, 0);
    p.send(2, PORT_OPEN, 0);
    p.console.write(b"done\n");
    halt()
}

/// The console's size in its configuration space (cols, rows: §5.3.4),
/// listed now and after the next configuration change.
fn size_only(boot: &BootInfo) -> ! {
    let mut console = Console::init_with(boot, VIRTIO_CONSOLE_F_SIZE).unwrap_or_else(|e| e.fail());
    if console.features & VIRTIO_CONSOLE_F_SIZE == 0 {
        guest::debug::fail(b"ports: the device does not offer VIRTIO_CONSOLE_F_SIZE");
    }
    let generation = console.mmio.read(mmio::CONFIG_GENERATION);
    let size = console.mmio.read(mmio::CONFIG);
    let mut line = Line::new();
    line.text(b"size ").decimal((size & 0xffff).into()).text(b"x").decimal((size >> 16).into()).text(b"\n");
    console.write(line.as_bytes());
    while console.mmio.read(mmio::CONFIG_GENERATION) == generation {
        console.wait_interrupt();
    }
    let size = console.mmio.read(mmio::CONFIG);
    let mut line = Line::new();
    line.text(b"resized to ").decimal((size & 0xffff).into()).text(b"x").decimal((size >> 16).into()).text(b"\n");
    console.write(line.as_bytes());
    halt()
}
