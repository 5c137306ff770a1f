//! virtio block driver (VirtIO 1.2 §5.2): brings a disk up on the
//! virtio-mmio transport, reads its configuration, and sends requests on its
//! one queue, many at a time. The device may complete them in any order (it
//! does not offer IN_ORDER): completions are matched by the chain's head.
//!
//! A request is a chain: the 16-byte header (device-readable), the data
//! buffers (device-writable for IN and GET_ID, device-readable otherwise),
//! and the status byte (device-writable, last). Headers and status bytes of
//! the requests in flight live in a page of their own, one slot per head
//! descriptor.

use crate::interrupt;
use crate::mmio::{self, InitError, Mmio};
use crate::virtqueue::{Buf, VirtQueue, MAX_SIZE, VIRTQ_DESC_F_WRITE};
use core::ptr::{read_volatile, write_volatile};

pub const DEVICE_ID_BLOCK: u32 = 2;
/// Where our VMM places disk 0's register window; disk i's follows at
/// `i * WINDOW_SIZE`.
pub const BLOCK_BASE: usize = 0x1000_1000;
pub const WINDOW_SIZE: usize = 0x1000;
pub const MAX_DISKS: usize = 8;
/// Disk i's queue page is at `PAGES + 2 * i * 0x1000`, its request page
/// (headers, status bytes) right after: above the x86_64 guests' page
/// tables (0x9000..0xc000), below the command line's and data's RAM.
pub const PAGES: usize = 0xc000;
pub const REQUESTQ: u16 = 0;

pub const SECTOR_SIZE: u32 = 512;

// Feature bits (§5.2.3).
pub const VIRTIO_BLK_F_SIZE_MAX: u64 = 1 << 1;
pub const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
pub const VIRTIO_BLK_F_RO: u64 = 1 << 5;
pub const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
pub const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;
pub const VIRTIO_BLK_F_DISCARD: u64 = 1 << 13;
pub const VIRTIO_BLK_F_WRITE_ZEROES: u64 = 1 << 14;

// Request types (§5.2.6).
pub const T_IN: u32 = 0;
pub const T_OUT: u32 = 1;
pub const T_FLUSH: u32 = 4;
pub const T_GET_ID: u32 = 8;
pub const T_DISCARD: u32 = 11;
pub const T_WRITE_ZEROES: u32 = 13;

// Status byte values (§5.2.6).
pub const S_OK: u8 = 0;
pub const S_IOERR: u8 = 1;
pub const S_UNSUPP: u8 = 2;
/// Written into the status byte before the request goes out: a completion
/// that still holds it was never answered.
pub const S_UNANSWERED: u8 = 0xff;

/// A status byte's name, as the guests print it.
pub fn status_name(status: u8) -> &'static [u8] {
    match status {
        S_OK => b"OK",
        S_IOERR => b"IOERR",
        S_UNSUPP => b"UNSUPP",
        S_UNANSWERED => b"unanswered",
        _ => b"unknown status",
    }
}

/// Data buffers per request this driver sends (the device's seg_max may
/// allow more).
pub const MAX_SEGMENTS: usize = 16;

/// GET_ID's answer: the serial, NUL-padded when shorter.
pub const ID_LEN: u32 = 20;

/// InterruptStatus: a configuration change (§4.2.2).
const INT_CONFIG: u32 = 2;

/// What the driver reads of `struct virtio_blk_config` (§5.2.4); fields of
/// features not negotiated read 0.
#[derive(Clone, Copy, Default)]
pub struct Config {
    /// In 512-byte sectors, whatever blk_size says.
    pub capacity: u64,
    pub size_max: u32,
    pub seg_max: u32,
    pub blk_size: u32,
    pub max_discard_sectors: u32,
    pub max_discard_seg: u32,
    pub max_write_zeroes_sectors: u32,
}

/// `struct virtio_blk_req`'s header.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Header {
    pub kind: u32,
    pub reserved: u32,
    pub sector: u64,
}

/// A finished request.
#[derive(Clone, Copy)]
pub struct Completion {
    /// The chain's head: what `submit` returned.
    pub head: u16,
    pub status: u8,
    /// Bytes the device says it wrote, the status byte included.
    pub len: u32,
}

pub struct Block {
    pub mmio: Mmio,
    pub queue: VirtQueue,
    pub features: u64,
    pub config: Config,
    /// Headers at +16 * head, status bytes at +STATUS_OFFSET + head.
    requests: usize,
}

const STATUS_OFFSET: usize = 16 * MAX_SIZE as usize;

/// Features the driver takes when offered: everything it uses. EVENT_IDX
/// spares notifications; DISCARD and WRITE_ZEROES only for callers that ask.
pub const FEATURES: u64 = mmio::VIRTIO_RING_F_EVENT_IDX
    | VIRTIO_BLK_F_SIZE_MAX
    | VIRTIO_BLK_F_SEG_MAX
    | VIRTIO_BLK_F_RO
    | VIRTIO_BLK_F_BLK_SIZE
    | VIRTIO_BLK_F_FLUSH;

impl Block {
    /// Disk `index` of our VMM, brought up with `FEATURES`.
    pub fn init(index: usize) -> Result<Block, InitError> {
        Self::init_with(index, FEATURES)
    }

    /// As `init`, taking the `wanted` features the device offers.
    pub fn init_with(index: usize, wanted: u64) -> Result<Block, InitError> {
        assert!(index < MAX_DISKS);
        interrupt::init();
        // SAFETY: our VMM places disk `index`'s register window there; probe
        // checks that a block device answers.
        let mmio = unsafe { Mmio::new(BLOCK_BASE + index * WINDOW_SIZE) };
        mmio.probe(DEVICE_ID_BLOCK)?;
        mmio.reset();
        let mut status = 0;
        mmio.set_status(&mut status, mmio::ACKNOWLEDGE);
        mmio.set_status(&mut status, mmio::DRIVER);
        // Not IN_ORDER: completions are matched by head (`wait`).
        let features = mmio.negotiate(&mut status, wanted & !mmio::VIRTIO_F_IN_ORDER)?;
        let config = read_config(&mmio, features);
        let max = mmio.select_queue(REQUESTQ, MAX_SIZE)?;
        // Split-ring sizes are powers of two (§2.7); QueueNumMax need not be one.
        let size = 1 << (15 - max.leading_zeros());
        let page = PAGES + 2 * index * 0x1000;
        let event_idx = features & mmio::VIRTIO_RING_F_EVENT_IDX != 0;
        // SAFETY: the guest layout reserves `page` for this disk's queue.
        let queue = unsafe { VirtQueue::new(page, size, false, event_idx) };
        mmio.enable_queue(size, queue.desc_addr(), queue.avail_addr(), queue.used_addr());
        mmio.set_status(&mut status, mmio::DRIVER_OK);
        Ok(Block { mmio, queue, features, config, requests: page + 0x1000 })
    }

    pub fn read_only(&self) -> bool {
        self.features & VIRTIO_BLK_F_RO != 0
    }

    /// Descriptors needed for a request with `segments` data buffers.
    pub fn fits(&self, segments: usize) -> bool {
        segments + 2 <= usize::from(self.queue.free_descs())
    }

    /// Queues a request of type `kind` at `sector` with the data buffers
    /// `data` (guest address, length), in the direction the type needs;
    /// the device sees it after `kick`. The caller checks `fits` first.
    /// Returns the head, which `wait` reports the completion by.
    pub fn submit(&mut self, kind: u32, sector: u64, data: &[(u64, u32)]) -> u16 {
        let flags = match kind {
            T_IN | T_GET_ID => VIRTQ_DESC_F_WRITE,
            _ => 0,
        };
        let mut chain = [Buf { addr: 0, len: 0, flags: 0 }; MAX_SEGMENTS + 2];
        let n = data.len() + 2;
        assert!(data.len() <= MAX_SEGMENTS);
        // The head is the lowest free descriptor (`push_chain`): its slot
        // holds this request's header and status byte.
        let head = self.queue.next_free();
        let (header, status) = self.slot(head);
        chain[0] = Buf { addr: header as u64, len: 16, flags: 0 };
        for (buf, &(addr, len)) in chain[1..].iter_mut().zip(data) {
            *buf = Buf { addr, len, flags };
        }
        chain[n - 1] = Buf { addr: status as u64, len: 1, flags: VIRTQ_DESC_F_WRITE };
        // SAFETY: the slot is in this disk's request page, which only the
        // request headed by `head` uses while it is in flight.
        unsafe {
            write_volatile(header, Header { kind, reserved: 0, sector });
            write_volatile(status, S_UNANSWERED);
        }
        let pushed = self.queue.push_chain(&chain[..n]);
        debug_assert_eq!(pushed, head);
        head
    }

    /// Makes the submitted requests visible and notifies the device unless
    /// it asked not to be.
    pub fn kick(&mut self) {
        self.queue.publish();
        if self.queue.kick_needed() {
            self.mmio.notify(REQUESTQ);
        }
    }

    /// The next request the device completed, in the order it completed
    /// them; sleeps for the interrupt while there is none. The device's I/O
    /// runs on other threads: nothing is done until the used ring says so.
    pub fn wait(&mut self) -> Completion {
        assert!(self.queue.pending() != 0);
        self.queue.interrupt_after(1);
        let (head, len) = loop {
            if let Some(used) = self.queue.pop_used() {
                break used;
            }
            self.wait_interrupt();
        };
        self.queue.no_interrupts();
        let (_, status) = self.slot(head);
        // SAFETY: the request's status byte, in this disk's request page.
        let status = unsafe { read_volatile(status) };
        Completion { head, status, len }
    }

    /// Submits one request, kicks, and waits for it; returns its status.
    /// Nothing else may be in flight.
    pub fn request(&mut self, kind: u32, sector: u64, data: &[(u64, u32)]) -> u8 {
        assert!(self.queue.pending() == 0);
        self.submit(kind, sector, data);
        self.kick();
        self.wait().status
    }

    /// Sleeps until the next interrupt on the shared line and acknowledges
    /// what this disk's InterruptStatus says (other devices on the line
    /// acknowledge their own when their drivers wait); a configuration
    /// change that is DEVICE_NEEDS_RESET ends the guest.
    pub fn wait_interrupt(&self) {
        interrupt::wait();
        let status = self.mmio.read(mmio::INTERRUPT_STATUS);
        if status != 0 {
            self.mmio.write(mmio::INTERRUPT_ACK, status);
        }
        if status & INT_CONFIG != 0 && self.mmio.read(mmio::STATUS) & mmio::DEVICE_NEEDS_RESET != 0 {
            crate::debug::fail(b"virtio-blk: the device needs a reset");
        }
    }

    /// The header and the status byte of the request headed by `head`.
    fn slot(&self, head: u16) -> (*mut Header, *mut u8) {
        let head = usize::from(head);
        ((self.requests + 16 * head) as *mut Header, (self.requests + STATUS_OFFSET + head) as *mut u8)
    }
}

/// Reads the configuration fields of the negotiated features, again if
/// ConfigGeneration moved meanwhile (§4.2.3.1.1: a 64-bit field is two
/// reads).
fn read_config(mmio: &Mmio, features: u64) -> Config {
    let field = |offset: usize| mmio.read(mmio::CONFIG + offset);
    let has = |bit: u64| features & bit != 0;
    loop {
        let generation = mmio.read(mmio::CONFIG_GENERATION);
        let mut config = Config { capacity: u64::from(field(4)) << 32 | u64::from(field(0)), ..Config::default() };
        if has(VIRTIO_BLK_F_SIZE_MAX) {
            config.size_max = field(8);
        }
        if has(VIRTIO_BLK_F_SEG_MAX) {
            config.seg_max = field(12);
        }
        if has(VIRTIO_BLK_F_BLK_SIZE) {
            config.blk_size = field(20);
        }
        if has(VIRTIO_BLK_F_DISCARD) {
            config.max_discard_sectors = field(36);
            config.max_discard_seg = field(40);
        }
        if has(VIRTIO_BLK_F_WRITE_ZEROES) {
            config.max_write_zeroes_sectors = field(48);
        }
        if mmio.read(mmio::CONFIG_GENERATION) == generation {
            return config;
        }
    }
}
