//! A deliberately malformed block driver: `case=<name>` on the command line
//! picks one request that disk 0 must refuse, sent after a correct
//! bring-up. A request the device can parse but not honour comes back with
//! a status, which the guest prints on the console (`status 1 (IOERR),
//! used length 1`); it then proves the device still works with a read of
//! sector 0 and prints "survived". A chain that is no request at all puts
//! the device into DEVICE_NEEDS_RESET: the guest reports the device status
//! on the debug port (`hostile-disk: status 0x...`).
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

/// Every case of `main`, for the message about an unknown one (the host's
/// tests run each name listed here).
const CASES: &[u8] = b"header-writable short-header status-read-only no-status readable-after-writable read-into-readable write-from-writable data-beyond-ram huge-chain data-511 sector-past-end sector-overflow discard-past-end discard-unmap write-zeroes-bad-flags write-read-only unknown-type";

fn main(boot: &BootInfo) -> ! {
    let case = boot.param("case").unwrap_or(b"");
    let mut console = Console::init(boot).unwrap_or_else(|e| e.fail());
    let wanted = block::FEATURES | block::VIRTIO_BLK_F_DISCARD | block::VIRTIO_BLK_F_WRITE_ZEROES;
    let mut disk = Block::init_with(0, wanted).unwrap_or_else(|e| e.fail());
    let capacity = disk.config.capacity;
    let header = |kind| buf(HEADER, 16, 0, kind);
    let data = |len, flags| Buf { addr: DATA, len, flags };
    let status = Buf { addr: STATUS, len: 1, flags: W };
    let mut huge = [data(HUGE_PART, 0); HUGE_PARTS + 2];
    let chain: &[Buf] = match case {
        // Chains that are no request: the device needs a reset.
        b"header-writable" => &[buf(HEADER, 16, W, (block::T_IN, 0)), data(512, W), status],
        b"short-header" => &[buf(HEADER, 8, 0, (block::T_IN, 0)), data(512, W), status],
        b"status-read-only" => &[header((block::T_OUT, 0)), data(512, 0), Buf { flags: 0, ..status }],
        b"no-status" => &[header((block::T_OUT, 0)), data(512, 0)],
        b"readable-after-writable" => &[header((block::T_IN, 0)), data(512, W), data(512, 0), status],
        b"read-into-readable" => &[header((block::T_IN, 0)), data(512, 0), status],
        b"write-from-writable" => &[header((block::T_OUT, 0)), data(512, W), status],
        b"data-beyond-ram" => &[header((block::T_IN, 0)), Buf { addr: 0x4000_0000, len: 512, flags: W }, status],
        b"huge-chain" => {
            huge[0] = header((block::T_OUT, 0));
            for part in &mut huge[1..=HUGE_PARTS] {
                *part = Buf { addr: 0, len: HUGE_PART, flags: 0 };
            }
            huge[HUGE_PARTS + 1] = status;
            &huge
        }
        // Requests the device cannot honour: a status, and it goes on.
        b"data-511" => &[header((block::T_IN, 0)), data(511, W), status],
        b"sector-past-end" => &[header((block::T_IN, capacity)), data(512, W), status],
        b"sector-overflow" => &[header((block::T_IN, u64::MAX)), data(512, W), status],
        b"discard-past-end" => &[header((block::T_DISCARD, 0)), segment(capacity - 1, 2, 0), status],
        b"discard-unmap" => &[header((block::T_DISCARD, 0)), segment(0, 8, 1), status],
        b"write-zeroes-bad-flags" => &[header((block::T_WRITE_ZEROES, 0)), segment(0, 8, 4), status],
        // Run with readonly=on.
        b"write-read-only" => &[header((block::T_OUT, 0)), data(512, 0), status],
        b"unknown-type" => &[header((99, 0)), data(512, 0), status],
        other => {
            debug::write(b"hostile-disk: unknown case ");
            debug::write(other);
            debug::write(b"; cases: ");
            debug::fail(CASES)
        }
    };
    // SAFETY: the status byte's buffer, RAM the guest owns.
    unsafe { core::ptr::write_volatile(STATUS as *mut u8, block::S_UNANSWERED) };
    disk.queue.push_chain(chain);
    disk.kick();
    let (_, len) = used_or_reset(&mut disk);
    // SAFETY: as above, after the device used the chain.
    let status = unsafe { core::ptr::read_volatile(STATUS as *const u8) };
    let mut line = Line::new();
    line.text(b"hostile-disk: status ").decimal(status.into()).text(b" (").text(block::status_name(status));
    console.write(line.text(b"), used length ").decimal(len.into()).text(b"\n").as_bytes());
    let status = disk.request(block::T_IN, 0, &[(DATA, block::SECTOR_SIZE)]);
    if status != block::S_OK {
        debug::write(b"hostile-disk: a valid read afterwards got status ");
        debug::write_hex(status.into());
        debug::fail(b"");
    }
    console.write(b"survived\n");
    halt()
}

/// A buffer holding a request header of type `kind.0` at sector `kind.1`.
fn buf(addr: u64, len: u32, flags: u16, kind: (u32, u64)) -> Buf {
    let header = block::Header { kind: kind.0, reserved: 0, sector: kind.1 };
    // SAFETY: the header's buffer, RAM the guest owns.
    unsafe { core::ptr::write_volatile(addr as *mut block::Header, header) };
    Buf { addr, len, flags }
}

/// A buffer holding one DISCARD / WRITE_ZEROES segment (§5.2.6:
/// `struct virtio_blk_discard_write_zeroes`).
fn segment(sector: u64, sectors: u32, flags: u32) -> Buf {
    // SAFETY: the segment's buffer, RAM the guest owns.
    unsafe {
        core::ptr::write_volatile(SEGMENT as *mut u64, sector);
        core::ptr::write_volatile((SEGMENT + 8) as *mut u32, sectors);
        core::ptr::write_volatile((SEGMENT + 12) as *mut u32, flags);
    }
    Buf { addr: SEGMENT, len: 16, flags: 0 }
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
