//! Drives a disk (`disk=N` on the command line, default 0; `event-idx=off`
//! leaves VIRTIO_RING_F_EVENT_IDX out) and says on the
//! console what it found: the capacity, the start of sector 0, then a
//! pattern written by WRITES requests in flight at once (one kick), a
//! FLUSH, the same range read back by as many requests in flight and
//! compared, a WRITE_ZEROES over the range's first ZEROED sectors and a
//! DISCARD of its last ZEROED (the host checks both read as zeros), and the
//! serial (GET_ID). Halts at the end; a device that breaks the protocol is
//! reported on the debug port.
//!
//! Byte i of the disk from sector FIRST_SECTOR on is `i % 251` counted from
//! the disk's start (the host checks the image for it): a request that
//! lands on the wrong sector shifts the pattern's phase. As in the stream
//! guest, the pattern is written once, REQUEST_BYTES + 250 long, and each
//! request's data points into it at its own phase.
#![no_std]
#![no_main]

use guest::block::{self, Block, Completion};
use guest::boot::{halt, BootInfo};
use guest::console::Console;
use guest::debug;
use guest::text::Line;

guest::entry!(main);

const WRITES: u16 = 16;
const FIRST_SECTOR: u64 = 8;
const REQUEST_BYTES: u32 = 1024;
const PERIOD: u64 = 251;
const PATTERN: usize = 0x10_0000;
const READ_BACK: usize = 0x20_0000;
const SECTOR0: usize = 0x30_0000;
const SERIAL: usize = 0x30_1000;
const SEGMENT: usize = 0x30_2000;
/// Sectors zeroed at each end of the written range: the device's discard
/// alignment (8 sectors) at most.
const ZEROED: u32 = 8;

fn main(boot: &BootInfo) -> ! {
    let mut console = Console::init(boot).unwrap_or_else(|e| e.fail());
    let index = boot.param_u32("disk").unwrap_or(0) as usize;
    if index >= block::MAX_DISKS {
        debug::fail(b"disk: disk=N: at most 7");
    }
    let mut wanted = block::FEATURES | block::VIRTIO_BLK_F_DISCARD | block::VIRTIO_BLK_F_WRITE_ZEROES;
    match boot.param("event-idx") {
        None | Some(b"on") => {}
        Some(b"off") => wanted &= !guest::mmio::VIRTIO_RING_F_EVENT_IDX,
        Some(_) => debug::fail(b"disk: event-idx=on or off"),
    }
    let mut disk = Block::init_with(index, wanted).unwrap_or_else(|e| e.fail());
    let mut line = Line::new();
    line.text(b"disk: ").decimal(disk.config.capacity).text(b" sectors of ").decimal(disk.config.blk_size.into());
    line.text(if disk.read_only() { b" bytes, read-only\n" } else { b" bytes, read-write\n" });
    console.write(line.as_bytes());

    let status = disk.request(block::T_IN, 0, &[(SECTOR0 as u64, block::SECTOR_SIZE)]);
    let mut line = Line::new();
    line.text(b"disk: sector 0: ").text(block::status_name(status));
    if status == block::S_OK {
        line.text(b", begins");
        // SAFETY: the buffer the device just filled, in RAM the guest owns.
        let sector = unsafe { core::slice::from_raw_parts(SECTOR0 as *const u8, 16) };
        for &b in sector {
            line.text(b" ").hex_byte(b);
        }
    }
    console.write(line.text(b"\n").as_bytes());

    fill_pattern();
    let statuses = in_flight(&mut disk, block::T_OUT, |k| pattern_at(offset(k)), false);
    report(&mut console, b"disk: ", WRITES, b" writes in flight: ", &statuses[..usize::from(WRITES)]);

    let status = disk.request(block::T_FLUSH, 0, &[]);
    console.write(Line::new().text(b"disk: flush: ").text(block::status_name(status)).text(b"\n").as_bytes());

    poison_read_back();
    let statuses = in_flight(&mut disk, block::T_IN, |k| READ_BACK as u64 + offset(k) - offset(0), true);
    report(&mut console, b"disk: ", WRITES, b" reads in flight: ", &statuses[..usize::from(WRITES)]);
    let get_id = statuses[usize::from(WRITES)];
    console.write(compare());

    let end = offset(WRITES) / u64::from(block::SECTOR_SIZE);
    for (kind, sector, name) in [
        (block::T_WRITE_ZEROES, FIRST_SECTOR, b"disk: write-zeroes: " as &[u8]),
        (block::T_DISCARD, end - u64::from(ZEROED), b"disk: discard: "),
    ] {
        let status = disk.request(kind, 0, &[segment(sector, ZEROED)]);
        console.write(Line::new().text(name).text(block::status_name(status)).text(b"\n").as_bytes());
    }

    let mut line = Line::new();
    line.text(b"disk: serial: ").text(block::status_name(get_id));
    if get_id == block::S_OK {
        // SAFETY: the buffer the device just filled, in RAM the guest owns.
        let id = unsafe { core::slice::from_raw_parts(SERIAL as *const u8, block::ID_LEN as usize) };
        let end = id.iter().position(|&b| b == 0).unwrap_or(id.len());
        line.text(b" \"").text(&id[..end]).text(b"\"");
    }
    console.write(line.text(b"\n").as_bytes());
    halt()
}

/// A DISCARD / WRITE_ZEROES segment (`struct virtio_blk_discard_write_zeroes`,
/// flags 0) over `sectors` from `sector`, as a data buffer.
fn segment(sector: u64, sectors: u32) -> (u64, u32) {
    // SAFETY: RAM the guest owns; one request at a time uses it.
    unsafe {
        core::ptr::write_volatile(SEGMENT as *mut u64, sector);
        core::ptr::write_volatile((SEGMENT + 8) as *mut u32, sectors);
        core::ptr::write_volatile((SEGMENT + 12) as *mut u32, 0);
    }
    (SEGMENT as u64, 16)
}

/// The disk byte offset request `k` starts at.
fn offset(k: u16) -> u64 {
    FIRST_SECTOR * u64::from(block::SECTOR_SIZE) + u64::from(k) * u64::from(REQUEST_BYTES)
}

/// Where in the pattern region the bytes for disk offset `off` start.
fn pattern_at(off: u64) -> u64 {
    (PATTERN as u64) + off % PERIOD
}

/// Sends WRITES requests of type `kind` over consecutive REQUEST_BYTES
/// ranges from FIRST_SECTOR, request k's data at `addr(k)`, all published
/// before one kick; odd ones in two segments when the device allows. Waits
/// for them all, in whatever order they complete, and returns each one's
/// status. With `get_id`, a GET_ID goes last in the same kick (its status
/// last): a device that answers it without I/O tends to complete it before
/// the requests ahead of it, so matching by head is exercised every run.
fn in_flight(disk: &mut Block, kind: u32, addr: impl Fn(u16) -> u64, get_id: bool) -> [u8; WRITES as usize + 1] {
    let segments = match disk.config.seg_max {
        0 | 1 if disk.features & block::VIRTIO_BLK_F_SEG_MAX != 0 => 1,
        _ => 2,
    };
    let half = REQUEST_BYTES / 2;
    let mut heads = [u16::MAX; WRITES as usize + 1];
    for k in 0..WRITES {
        if !disk.fits(2) {
            debug::fail(b"disk: the queue is too small for the requests in flight");
        }
        let a = addr(k);
        let sector = offset(k) / u64::from(block::SECTOR_SIZE);
        heads[usize::from(k)] = match k % 2 == 1 && segments == 2 {
            true => disk.submit(kind, sector, &[(a, half), (a + u64::from(half), half)]),
            false => disk.submit(kind, sector, &[(a, REQUEST_BYTES)]),
        };
    }
    if get_id {
        heads[usize::from(WRITES)] = disk.submit(block::T_GET_ID, 0, &[(SERIAL as u64, block::ID_LEN)]);
    }
    disk.kick();
    let mut statuses = [block::S_UNANSWERED; WRITES as usize + 1];
    for _ in 0..WRITES + u16::from(get_id) {
        let Completion { head, status, len } = disk.wait();
        let Some(k) = heads.iter().position(|&h| h == head) else {
            debug::fail(b"disk: a completion for a request never sent")
        };
        let expected = match (kind, k == usize::from(WRITES)) {
            // The serial's length: up to ID_LEN bytes.
            (_, true) => len.clamp(1, block::ID_LEN + 1),
            (block::T_IN, false) => REQUEST_BYTES + 1,
            _ => 1,
        };
        if status == block::S_OK && len != expected {
            debug::write(b"disk: used length ");
            debug::write_hex(len);
            debug::write(b", expected ");
            debug::write_hex(expected);
            debug::fail(b"");
        }
        statuses[k] = status;
    }
    statuses
}

/// One line: `prefix`, `n`, `what`, then how many requests ended with each
/// status, e.g. `16 OK` or `8 OK, 8 IOERR`.
fn report(console: &mut Console, prefix: &[u8], n: u16, what: &[u8], statuses: &[u8]) {
    let mut line = Line::new();
    line.text(prefix).decimal(n.into()).text(what);
    let mut first = true;
    for status in [block::S_OK, block::S_IOERR, block::S_UNSUPP, block::S_UNANSWERED] {
        let count = statuses.iter().filter(|&&s| s == status).count();
        if count > 0 {
            line.text(if first { b"" } else { b", " })
                .decimal(count as u64)
                .text(b" ")
                .text(block::status_name(status));
            first = false;
        }
    }
    let others = statuses.iter().filter(|&&s| s > block::S_UNSUPP && s != block::S_UNANSWERED).count();
    if others > 0 {
        line.text(if first { b"" } else { b", " }).decimal(others as u64).text(b" with another status");
    }
    console.write(line.text(b"\n").as_bytes());
}

/// The pattern region: REQUEST_BYTES + PERIOD - 1 bytes of `i % 251`.
fn fill_pattern() {
    let mut value: u8 = 0;
    for i in 0..(REQUEST_BYTES as usize + PERIOD as usize - 1) {
        // SAFETY: RAM the guest owns (the VMM gives it at least 16 MiB by default).
        unsafe { core::ptr::write_volatile((PATTERN + i) as *mut u8, value) };
        value = if u64::from(value) == PERIOD - 1 { 0 } else { value + 1 };
    }
}

/// Fills the read-back buffer with bytes neither the pattern nor a blank
/// disk has in a row: a read that never landed cannot pass for either.
fn poison_read_back() {
    for i in (0..usize::from(WRITES) * REQUEST_BYTES as usize).step_by(4) {
        // SAFETY: RAM the guest owns, 4-byte aligned.
        unsafe { core::ptr::write_volatile((READ_BACK + i) as *mut u32, 0xa5a5_a5a5) };
    }
}

/// What the read-back holds: the pattern, zeros, or where it first differs
/// from the pattern.
fn compare() -> &'static [u8] {
    let len = usize::from(WRITES) * REQUEST_BYTES as usize;
    // SAFETY: the read-back buffer and the pattern region, RAM the guest owns.
    let read = unsafe { core::slice::from_raw_parts(READ_BACK as *const u8, len) };
    let matches = (0..WRITES).all(|k| {
        let start = usize::from(k) * REQUEST_BYTES as usize;
        let got = &read[start..start + REQUEST_BYTES as usize];
        // SAFETY: as above.
        let want = unsafe { core::slice::from_raw_parts(pattern_at(offset(k)) as *const u8, REQUEST_BYTES as usize) };
        got == want
    });
    if matches {
        b"disk: read back: the pattern\n"
    } else if read.iter().all(|&b| b == 0) {
        b"disk: read back: zeros\n"
    } else {
        b"disk: read back: neither the pattern nor zeros\n"
    }
}
