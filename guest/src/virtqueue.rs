//! Split virtqueue, driver side (VirtIO 1.2 §2.7).
//!
//! Each queue lives in one 4 KiB page: descriptor table at +0x000 (128
//! entries of 16 bytes), available ring at +0x800 (with used_event after its
//! entries), used ring at +0xa00 (with avail_event). The driver never trusts
//! what the device writes: used ids are checked against the chains in
//! flight, used lengths against what the chain lets the device write, and
//! descriptors are never read back (the chains' links have a shadow).

use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{fence, Ordering};

/// The layout leaves room for 128 descriptors per queue.
pub const MAX_SIZE: u16 = 128;
pub const TRANSMITQ_PAGE: usize = 0x5000;
pub const RECEIVEQ_PAGE: usize = 0x6000;
pub const AVAIL_OFFSET: usize = 0x800;
pub const USED_OFFSET: usize = 0xa00;

pub const VIRTQ_DESC_F_NEXT: u16 = 1;
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
pub const VIRTQ_USED_F_NO_NOTIFY: u16 = 1;
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

#[repr(C)]
struct UsedElem {
    id: u32,
    len: u32,
}

pub struct VirtQueue {
    page: usize,
    size: u16,
    in_order: bool,
    /// VIRTIO_RING_F_EVENT_IDX: used_event and avail_event instead of the flags.
    event_idx: bool,
    /// Free-running count of buffers made available.
    submitted: u16,
    /// `submitted` when the driver last decided whether to kick.
    kick_checked: u16,
    /// Free-running count of buffers returned by the device.
    completed: u16,
    /// Free-running index of the next used-ring entry to read.
    used_seen: u16,
    /// Bit i set: descriptor i is owned by the device.
    in_flight: u128,
    /// Bit i set: descriptor i heads a chain the device owns, the only ids
    /// it may return.
    heads: u128,
    /// Per head: the most the device may say it wrote (a one-descriptor
    /// buffer's length, a chain's device-writable bytes).
    lens: [u32; MAX_SIZE as usize],
    /// Per descriptor: the next one in its chain, or END (shadow of the
    /// table, which the device could rewrite).
    links: [u16; MAX_SIZE as usize],
}

/// No next descriptor in `links`.
const END: u16 = u16::MAX;

/// One buffer of a chain: guest address, length, VIRTQ_DESC_F_WRITE or 0.
#[derive(Clone, Copy)]
pub struct Buf {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
}

impl VirtQueue {
    /// A queue of `size` entries (a power of two, at most MAX_SIZE) in `page`.
    ///
    /// Only the ring headers (flags, idx) and the two event words start at
    /// zero: descriptors and ring entries are written before the device may
    /// read them. Clearing the whole page would cost thousands of emulated
    /// instructions.
    ///
    /// # Safety
    /// `page` is a 4 KiB page of RAM reserved for this queue.
    pub unsafe fn new(page: usize, size: u16, in_order: bool, event_idx: bool) -> Self {
        write_volatile((page + AVAIL_OFFSET) as *mut u32, 0);
        write_volatile((page + USED_OFFSET) as *mut u32, 0);
        let queue = VirtQueue {
            page,
            size,
            in_order,
            event_idx,
            submitted: 0,
            kick_checked: 0,
            completed: 0,
            used_seen: 0,
            in_flight: 0,
            heads: 0,
            lens: [0; MAX_SIZE as usize],
            links: [END; MAX_SIZE as usize],
        };
        // used_event 0: an interrupt for the first used buffer, as with flags
        // 0; avail_event 0 until the device moves it: a kick for the first.
        write_volatile(queue.used_event(), 0);
        write_volatile(queue.avail_event() as *mut u16, 0);
        queue
    }

    pub fn size(&self) -> u16 {
        self.size
    }
    pub fn desc_addr(&self) -> u64 {
        self.page as u64
    }
    pub fn avail_addr(&self) -> u64 {
        (self.page + AVAIL_OFFSET) as u64
    }
    pub fn used_addr(&self) -> u64 {
        (self.page + USED_OFFSET) as u64
    }

    /// Buffers the device still owns.
    pub fn pending(&self) -> u16 {
        self.submitted.wrapping_sub(self.completed)
    }

    pub fn is_full(&self) -> bool {
        self.pending() == self.size
    }

    /// Descriptors not owned by the device.
    pub fn free_descs(&self) -> u16 {
        self.size - self.in_flight.count_ones() as u16
    }

    /// Writes a one-descriptor buffer and its avail entry; the device sees it
    /// after `publish`. The caller checks `is_full` first. Returns the
    /// descriptor's index, the id the device returns it by.
    pub fn push(&mut self, addr: u64, len: u32, flags: u16) -> u16 {
        assert!(!self.is_full());
        // With IN_ORDER the driver uses descriptors in ring order (§2.7.5);
        // the one `size` submissions back has completed, as all before it.
        let slot = match self.in_order {
            true => self.submitted % self.size,
            false => (!self.in_flight).trailing_zeros() as u16,
        };
        let desc = Desc { addr, len, flags, next: 0 };
        let pos = self.submitted % self.size;
        // SAFETY: slot and pos are < size <= MAX_SIZE: inside this queue's page.
        unsafe {
            write_volatile((self.page as *mut Desc).add(slot.into()), desc);
            write_volatile(self.avail_ring(pos), slot);
        }
        self.in_flight |= 1 << slot;
        self.heads |= 1 << slot;
        self.lens[usize::from(slot)] = len;
        self.links[usize::from(slot)] = END;
        self.submitted = self.submitted.wrapping_add(1);
        slot
    }

    /// The descriptor `push_chain` will take for the next chain's head.
    pub fn next_free(&self) -> u16 {
        (!self.in_flight).trailing_zeros() as u16
    }

    /// Writes a chain of `bufs` (in free descriptors, lowest first) and its
    /// avail entry; the device sees it after `publish`. For queues without
    /// IN_ORDER. The caller checks `free_descs` first. Returns the head's
    /// index, the id the device returns the chain by.
    pub fn push_chain(&mut self, bufs: &[Buf]) -> u16 {
        assert!(!self.in_order && !bufs.is_empty() && bufs.len() <= usize::from(self.free_descs()));
        let mut free = !self.in_flight;
        let mut take = || {
            let slot = free.trailing_zeros() as u16;
            free &= !(1 << slot);
            slot
        };
        let head = take();
        let mut slot = head;
        let mut writable: u32 = 0;
        for (i, buf) in bufs.iter().enumerate() {
            let next = if i + 1 < bufs.len() { take() } else { END };
            let flags = match next {
                END => buf.flags,
                _ => buf.flags | VIRTQ_DESC_F_NEXT,
            };
            let desc = Desc { addr: buf.addr, len: buf.len, flags, next: if next == END { 0 } else { next } };
            // SAFETY: slot < size <= MAX_SIZE: inside this queue's page.
            unsafe { write_volatile((self.page as *mut Desc).add(slot.into()), desc) };
            self.in_flight |= 1 << slot;
            self.links[usize::from(slot)] = next;
            if buf.flags & VIRTQ_DESC_F_WRITE != 0 {
                writable = writable.saturating_add(buf.len);
            }
            slot = next;
        }
        // SAFETY: the position is < size: inside the available ring.
        unsafe { write_volatile(self.avail_ring(self.submitted % self.size), head) };
        self.heads |= 1 << head;
        self.lens[usize::from(head)] = writable;
        self.submitted = self.submitted.wrapping_add(1);
        head
    }

    /// Makes pushed buffers visible to the device (§2.7.13).
    pub fn publish(&self) {
        fence(Ordering::Release);
        // SAFETY: avail.idx is at +2 in the available ring, inside the page.
        unsafe { write_volatile((self.page + AVAIL_OFFSET + 2) as *mut u16, self.submitted) };
        // Order the idx store before the flags load in `kick_needed`.
        fence(Ordering::SeqCst);
    }

    /// Whether the device wants a notification for what was published since
    /// the last call (§2.7.10): with EVENT_IDX, if the buffers passed
    /// avail_event (vring_need_event); else unless VIRTQ_USED_F_NO_NOTIFY is
    /// set. Both are hints: a spurious kick is harmless.
    pub fn kick_needed(&mut self) -> bool {
        let (old, new) = (self.kick_checked, self.submitted);
        self.kick_checked = new;
        if self.event_idx {
            // SAFETY: avail_event follows the used ring's entries, inside the page.
            let event = unsafe { read_volatile(self.avail_event()) };
            return need_event(event, new, old);
        }
        // SAFETY: used.flags is at +0 in the used ring, inside the page.
        let flags = unsafe { read_volatile((self.page + USED_OFFSET) as *const u16) };
        flags & VIRTQ_USED_F_NO_NOTIFY == 0
    }

    /// Asks for a used-buffer interrupt (§2.7.7) before the driver waits: with
    /// EVENT_IDX once `n` more buffers (n >= 1) are used (used_event), else
    /// for every used buffer (VRING_AVAIL_F_NO_INTERRUPT clear). After this
    /// the caller re-checks the used ring before it sleeps: the full barrier
    /// orders the store before that load, as the device orders its used.idx
    /// store before it reads the flags or used_event.
    pub fn interrupt_after(&self, n: u16) {
        // SAFETY: used_event follows the available ring's entries and
        // avail.flags is at +0 in it, both inside the page.
        unsafe {
            match self.event_idx {
                true => write_volatile(self.used_event(), self.used_seen.wrapping_add(n.max(1) - 1)),
                false => write_volatile((self.page + AVAIL_OFFSET) as *mut u16, 0),
            }
        }
        fence(Ordering::SeqCst);
    }

    /// Asks for no interrupts while the driver has room to go on. With
    /// EVENT_IDX, used_event goes just behind what was seen: the device
    /// passes it again only after 2^16 - 1 more buffers.
    pub fn no_interrupts(&self) {
        // SAFETY: used_event follows the available ring's entries and
        // avail.flags is at +0 in it, both inside the page.
        unsafe {
            match self.event_idx {
                true => write_volatile(self.used_event(), self.used_seen.wrapping_sub(1)),
                false => write_volatile((self.page + AVAIL_OFFSET) as *mut u16, VIRTQ_AVAIL_F_NO_INTERRUPT),
            }
        }
    }

    /// Takes the next used buffer: its descriptor index and the bytes the
    /// device wrote. For queues without IN_ORDER, where each used entry is
    /// one buffer with its own length. Checked as in `reclaim`.
    pub fn pop_used(&mut self) -> Option<(u16, u32)> {
        assert!(!self.in_order);
        if self.used_idx() == self.used_seen {
            return None;
        }
        let (id, len) = self.next_used();
        self.release(id);
        self.completed = self.completed.wrapping_add(1);
        Some((id, len))
    }

    /// Collects what the device returned; returns how many buffers completed.
    /// A device that returns a buffer it does not own, or claims to have
    /// written more than a buffer holds, is reported and the guest halts.
    pub fn reclaim(&mut self) -> u16 {
        let used_idx = self.used_idx();
        let before = self.completed;
        while self.used_seen != used_idx {
            let (id, _) = self.next_used();
            if self.in_order {
                // One used entry may stand for every buffer up to `id` (§2.7.9).
                loop {
                    // Descriptors go out in ring order (`push`).
                    let slot = self.completed % self.size;
                    self.release(slot);
                    self.completed = self.completed.wrapping_add(1);
                    if slot == id {
                        break;
                    }
                }
            } else {
                self.release(id);
                self.completed = self.completed.wrapping_add(1);
            }
        }
        self.completed.wrapping_sub(before)
    }

    /// The device's used.idx, checked not to run past the buffers it owns.
    fn used_idx(&self) -> u16 {
        // SAFETY: used.idx is at +2 in the used ring.
        let used_idx = unsafe { read_volatile((self.page + USED_OFFSET + 2) as *const u16) };
        if used_idx.wrapping_sub(self.used_seen) > self.pending() {
            crate::debug::fail(b"virtqueue: device moved used.idx past the buffers it owns");
        }
        used_idx
    }

    /// Reads the used entry at `used_seen` (which `used_idx` said is there),
    /// checks it names a buffer in flight and a length that fits, and moves on.
    fn next_used(&mut self) -> (u16, u32) {
        fence(Ordering::Acquire);
        let pos = usize::from(self.used_seen % self.size);
        // SAFETY: pos < size: the element is inside the used ring.
        let elem = unsafe { read_volatile(((self.page + USED_OFFSET + 4) as *const UsedElem).add(pos)) };
        if elem.id >= u32::from(self.size) || self.heads & (1 << elem.id) == 0 {
            crate::debug::fail(b"virtqueue: device returned a buffer it does not own");
        }
        let id = elem.id as u16;
        if elem.len > self.lens[usize::from(id)] {
            crate::debug::fail(b"virtqueue: device wrote past the end of a buffer");
        }
        self.used_seen = self.used_seen.wrapping_add(1);
        (id, elem.len)
    }

    /// Gives the chain headed by `head` back to the driver.
    fn release(&mut self, head: u16) {
        self.heads &= !(1 << head);
        let mut slot = head;
        while slot != END {
            self.in_flight &= !(1 << slot);
            slot = self.links[usize::from(slot)];
        }
    }

    /// # Safety
    /// `pos < size`.
    unsafe fn avail_ring(&self, pos: u16) -> *mut u16 {
        (self.page + AVAIL_OFFSET + 4 + 2 * usize::from(pos)) as *mut u16
    }

    /// The driver's used_event, after the available ring's `size` entries.
    fn used_event(&self) -> *mut u16 {
        (self.page + AVAIL_OFFSET + 4 + 2 * usize::from(self.size)) as *mut u16
    }

    /// The device's avail_event, after the used ring's `size` entries.
    fn avail_event(&self) -> *const u16 {
        (self.page + USED_OFFSET + 4 + 8 * usize::from(self.size)) as *const u16
    }
}

/// Whether moving an index from `old` to `new` passed `event` (the spec's
/// and Linux's vring_need_event, in wrapping u16 arithmetic).
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}
