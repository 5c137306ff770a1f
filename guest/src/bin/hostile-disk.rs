//! A deliberately malformed block driver: `case=<name>` on the command line
//! picks one request that disk 0 must refuse, sent after a correct
//! bring-up. A request the device can parse but not honour comes back with
//! a status, which the guest prints on the console (`status 1 (IOERR),
//! used length 1`); it then proves the device still works with a read of
//! sector 0 and prints "survived". A chain that is no request at all puts
//! the device into DEVICE_NEEDS_RESET: the guest reports the device status
//! on the debug port (`hostile-disk: status 0x...`). Odd but valid layouts
//! (a header in two descriptors, the status byte in the data's) come back
//! OK with the data.
#![no_std]
#![no_main]

use guest::block::{self, Block};
use guest::boot::{halt, BootInfo};
use guest::console::Console;
use guest::debug;
use guest::interrupt;
use guest::mmio;
use guest::text::Line;
use guest::virtqueue::{Buf, VIRTQ_DESC_F_WRITE};

guest::entry!(main);

/// Free RAM above the image, rings and stack.
const HEADER: u64 = 0x10_0000;
const SEGMENT: u64 = 0x10_0100;
const STATUS: u64 = 0x10_0200;
const DATA: u64 = 0x10_1000;
const W: u16 = VIRTQ_DESC_F_WRITE;
/// The 2^32-byte chain's data: 16 buffers of 256 MiB (`--mem 256`: each
/// covers all of RAM; the device must refuse it before any byte moves).
const HUGE_PARTS: usize = 16;
const HUGE_PART: u32 = 256 << 20;

/// A request header's sector, relative to the disk's capacity.
#[derive(Clone, Copy)]
enum Sector {
    Zero,
    /// The first sector past the end.
    End,
    /// The last sector.
    Last,
    /// u64::MAX: sector + length overflows.
    Max,
}

/// One part of a case's chain.
#[derive(Clone, Copy)]
enum Part {
    /// The first `len` bytes of a header of type `kind` at `sector`, with
    /// `flags`.
    Header { kind: u32, sector: Sector, len: u32, flags: u16 },
    /// The header's last 8 bytes, after an 8-byte Header part.
    HeaderTail,
    /// `len` data bytes, with `flags`.
    Data(u32, u16),
    /// Data outside RAM.
    DataBeyondRam,
    /// One DISCARD / WRITE_ZEROES segment (`struct
    /// virtio_blk_discard_write_zeroes`): sector, sectors, flags.
    Segment(Sector, u32, u32),
    /// HUGE_PARTS data buffers of HUGE_PART bytes.
    Huge,
    /// The status byte, with `flags`.
    Status(u16),
}

use Part::{Data, HeaderTail, Status};

const fn header(kind: u32, sector: Sector) -> Part {
    Part::Header { kind, sector, len: 16, flags: 0 }
}

const IN: Part = header(block::T_IN, Sector::Zero);
const OUT: Part = header(block::T_OUT, Sector::Zero);

/// Every case but reset-in-flight: its name and its chain. The host's tests
/// run each name the guest lists for an unknown one.
#[rustfmt::skip]
const CASES: &[(&[u8], &[Part])] = &[
    // Chains that are no request: the device needs a reset.
    (b"header-writable", &[Part::Header { kind: block::T_IN, sector: Sector::Zero, len: 16, flags: W }, Data(512, W), Status(W)]),
    (b"short-header", &[Part::Header { kind: block::T_IN, sector: Sector::Zero, len: 8, flags: 0 }, Data(512, W), Status(W)]),
    (b"status-read-only", &[OUT, Data(512, 0), Status(0)]),
    (b"no-status", &[OUT, Data(512, 0)]),
    (b"readable-after-writable", &[IN, Data(512, W), Data(512, 0), Status(W)]),
    (b"read-into-readable", &[IN, Data(512, 0), Status(W)]),
    (b"write-from-writable", &[OUT, Data(512, W), Status(W)]),
    (b"data-beyond-ram", &[IN, Part::DataBeyondRam, Status(W)]),
    (b"huge-chain", &[OUT, Part::Huge, Status(W)]),
    // The same head twice in the available ring, while the device has it.
    (b"head-reused", &[IN, Data(512, W), Status(W)]),
    // Requests the device cannot honour: a status, and it goes on.
    (b"data-511", &[IN, Data(511, W), Status(W)]),
    (b"sector-past-end", &[header(block::T_IN, Sector::End), Data(512, W), Status(W)]),
    (b"sector-overflow", &[header(block::T_IN, Sector::Max), Data(512, W), Status(W)]),
    (b"discard-past-end", &[header(block::T_DISCARD, Sector::Zero), Part::Segment(Sector::Last, 2, 0), Status(W)]),
    (b"discard-unmap", &[header(block::T_DISCARD, Sector::Zero), Part::Segment(Sector::Zero, 8, 1), Status(W)]),
    (b"write-zeroes-bad-flags", &[header(block::T_WRITE_ZEROES, Sector::Zero), Part::Segment(Sector::Zero, 8, 4), Status(W)]),
    // Run with readonly=on.
    (b"write-read-only", &[OUT, Data(512, 0), Status(W)]),
    (b"unknown-type", &[header(99, Sector::Zero), Data(512, 0), Status(W)]),
    // Valid (VERSION_1 implies ANY_LAYOUT): reads of sector 0.
    (b"split-header", &[Part::Header { kind: block::T_IN, sector: Sector::Zero, len: 8, flags: 0 }, HeaderTail, Data(512, W), Status(W)]),
    (b"status-in-data", &[IN, Data(513, W)]),
];

fn main(boot: &BootInfo) -> ! {
    let case = boot.param("case").unwrap_or(b"");
    let mut console = Console::init(boot).unwrap_or_else(|e| e.fail());
    let wanted = block::FEATURES | block::VIRTIO_BLK_F_DISCARD | block::VIRTIO_BLK_F_WRITE_ZEROES;
    let mut disk = Block::init_with(0, wanted).unwrap_or_else(|e| e.fail());
    if case == b"reset-in-flight" {
        let mut disk = reset_in_flight(disk);
        survive(&mut console, &mut disk)
    }
    let Some(&(_, parts)) = CASES.iter().find(|(name, _)| *name == case) else {
        debug::write(b"hostile-disk: unknown case ");
        debug::write(case);
        debug::write(b"; cases: reset-in-flight");
        for (name, _) in CASES {
            debug::write(b" ");
            debug::write(name);
        }
        debug::fail(b"")
    };
    let mut chain = [Buf { addr: 0, len: 0, flags: 0 }; HUGE_PARTS + 4];
    let n = build(parts, disk.config.capacity, &mut chain);
    let chain = &chain[..n];
    // The last byte of the chain, where the device puts the status.
    let last = chain[n - 1];
    let status_at = (last.addr + u64::from(last.len)).wrapping_sub(1) as usize;
    if last.flags & W != 0 {
        // SAFETY: the status byte's buffer, RAM the guest owns.
        unsafe { core::ptr::write_volatile(status_at as *mut u8, block::S_UNANSWERED) };
    }
    let head = disk.queue.push_chain(chain);
    match case {
        b"head-reused" => {
            disk.queue.publish();
            publish_again(&disk, head);
            disk.mmio.notify(block::REQUESTQ);
        }
        _ => disk.kick(),
    }
    let (_, len) = used_or_reset(&mut disk);
    // SAFETY: as above, after the device used the chain.
    let status = unsafe { core::ptr::read_volatile(status_at as *const u8) };
    let mut line = Line::new();
    line.text(b"hostile-disk: status ").decimal(status.into()).text(b" (").text(block::status_name(status));
    line.text(b"), used length ").decimal(len.into());
    if status == block::S_OK {
        // SAFETY: the data buffer the device filled, RAM the guest owns.
        let data = unsafe { core::slice::from_raw_parts(DATA as *const u8, 8) };
        line.text(b", data \"").text(data).text(b"\"");
    }
    console.write(line.text(b"\n").as_bytes());
    survive(&mut console, &mut disk)
}

/// Writes the chain `parts` describe into `chain` (and the headers and
/// segments into their buffers); returns its length.
fn build(parts: &[Part], capacity: u64, chain: &mut [Buf]) -> usize {
    let sector = |s| match s {
        Sector::Zero => 0,
        Sector::End => capacity,
        Sector::Last => capacity - 1,
        Sector::Max => u64::MAX,
    };
    let mut n = 0;
    let mut put = |addr, len, flags| {
        chain[n] = Buf { addr, len, flags };
        n += 1;
    };
    for &part in parts {
        match part {
            Part::Header { kind, sector: s, len, flags } => {
                let header = block::Header { kind, reserved: 0, sector: sector(s) };
                // SAFETY: the header's buffer, RAM the guest owns.
                unsafe { core::ptr::write_volatile(HEADER as *mut block::Header, header) };
                put(HEADER, len, flags);
            }
            HeaderTail => put(HEADER + 8, 8, 0),
            Data(len, flags) => put(DATA, len, flags),
            Part::DataBeyondRam => put(0x4000_0000, 512, W),
            Part::Segment(s, sectors, flags) => {
                // SAFETY: the segment's buffer, RAM the guest owns.
                unsafe {
                    core::ptr::write_volatile(SEGMENT as *mut u64, sector(s));
                    core::ptr::write_volatile((SEGMENT + 8) as *mut u32, sectors);
                    core::ptr::write_volatile((SEGMENT + 12) as *mut u32, flags);
                }
                put(SEGMENT, 16, 0);
            }
            Part::Huge => {
                for _ in 0..HUGE_PARTS {
                    put(0, HUGE_PART, 0);
                }
            }
            Status(flags) => put(STATUS, 1, flags),
        }
    }
    n
}

/// Proves the disk still works: a read of sector 0.
fn survive(console: &mut Console, disk: &mut Block) -> ! {
    let status = disk.request(block::T_IN, 0, &[(DATA, block::SECTOR_SIZE)]);
    if status != block::S_OK {
        debug::write(b"hostile-disk: a valid read afterwards got status ");
        debug::write_hex(status.into());
        debug::fail(b"");
    }
    console.write(b"survived\n");
    halt()
}

/// Puts `head` in the available ring a second time and publishes it,
/// behind the driver's bookkeeping (the device must refuse it).
fn publish_again(disk: &Block, head: u16) {
    let avail = disk.queue.avail_addr() as usize;
    // SAFETY: the available ring's index and entry 1, in the queue's page.
    unsafe {
        core::ptr::write_volatile((avail + 4 + 2) as *mut u16, head);
        core::ptr::write_volatile((avail + 2) as *mut u16, 2);
    }
}

/// Reads all of the disk, RESETS requests of it in flight, then resets the
/// device at once: it must finish or drop them, and use none afterwards
/// (the used index stays as the reset left it). Then brings the disk up
/// again for the read that proves it works.
fn reset_in_flight(mut disk: Block) -> Block {
    const RESETS: u16 = 16;
    let len = (disk.config.capacity * u64::from(block::SECTOR_SIZE)).min(64 << 10) as u32;
    for k in 0..RESETS {
        disk.submit(block::T_IN, 0, &[(DATA + u64::from(k) * u64::from(len), len)]);
    }
    disk.kick();
    disk.mmio.reset();
    let used = disk.queue.used_addr() as usize + 2;
    // SAFETY: the used index, in the queue's page.
    let at_reset = unsafe { core::ptr::read_volatile(used as *const u16) };
    for _ in 0..2000 {
        let _ = disk.mmio.read(mmio::MAGIC_VALUE);
    }
    // SAFETY: as above.
    let later = unsafe { core::ptr::read_volatile(used as *const u16) };
    if later != at_reset {
        debug::write(b"hostile-disk: used index moved after the reset: ");
        debug::write_hex(at_reset.into());
        debug::write(b" then ");
        debug::write_hex(later.into());
        debug::fail(b"");
    }
    Block::init(0).unwrap_or_else(|e| e.fail())
}

/// Sleeps until the device uses the chain (its id and used length), or
/// reports the device status on the debug port once it needs a reset; both
/// come with an interrupt.
fn used_or_reset(disk: &mut Block) -> (u16, u32) {
    disk.queue.interrupt_after(1);
    loop {
        if let Some(used) = disk.queue.pop_used() {
            disk.queue.no_interrupts();
            return used;
        }
        let status = disk.mmio.read(mmio::STATUS);
        if status & mmio::DEVICE_NEEDS_RESET != 0 {
            debug::write(b"hostile-disk: status ");
            debug::write_hex(status);
            debug::fail(b"");
        }
        interrupt::wait();
        let pending = disk.mmio.read(mmio::INTERRUPT_STATUS);
        if pending != 0 {
            disk.mmio.write(mmio::INTERRUPT_ACK, pending);
        }
    }
}
