//! Validated walking of split-virtqueue descriptor chains (VirtIO 1.2 §2.7.5).
//!
//! The ring state (indexes, used ring, notification suppression) is rust-vmm's
//! `virtio_queue::Queue`. The chain walk is our own: the crate's
//! `DescriptorChain` iterator ends a chain silently on an out-of-range `next`
//! or a loop, and follows INDIRECT descriptors whether or not the feature was
//! negotiated. A hostile guest must get a precise error instead, so every
//! descriptor is checked here, the whole chain before any byte is moved (as
//! Linux vhost's `get_vq_desc` does).

use std::sync::atomic::Ordering;

use thiserror::Error;
use virtio_bindings::virtio_ring::{
    VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
};
use virtio_queue::desc::split::Descriptor;
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemory, GuestMemoryMmap, Permissions};

/// A guest mistake that stops the queue until the device is reset.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("available ring index {avail} is {ahead} entries ahead of the device, more than the queue size {size}")]
    AvailIndexJump { avail: u16, ahead: u16, size: u16 },
    #[error("available ring entry names descriptor {head}, beyond the queue size {size}")]
    HeadOutOfRange { head: u16, size: u16 },
    #[error("descriptor {index} chains to descriptor {next}, beyond the queue size {size}")]
    NextOutOfRange { index: u16, next: u16, size: u16 },
    #[error("descriptor chain from {head} is longer than the queue size {size} (a loop)")]
    ChainTooLong { head: u16, size: u16 },
    #[error("descriptor {index}: buffer {addr:#x}+{len:#x} overflows the address space")]
    AddressOverflow { index: u16, addr: u64, len: u32 },
    #[error("descriptor {index}: buffer {addr:#x}+{len:#x} is outside guest memory")]
    OutsideMemory { index: u16, addr: u64, len: u32 },
    #[error("descriptor {index} is indirect, but VIRTIO_F_INDIRECT_DESC was not negotiated")]
    Indirect { index: u16 },
    #[error("descriptor {index} is device-writable on a queue the device only reads")]
    WriteOnly { index: u16 },
    #[error("descriptor {index} is device-readable on a queue the device only writes")]
    ReadOnly { index: u16 },
    #[error("descriptor {index} is device-readable after a device-writable one")]
    ReadableAfterWritable { index: u16 },
    #[error("descriptor chain from {head} holds more than 4 GiB")]
    ChainTooLarge { head: u16 },
    #[error("guest memory access failed: {0}")]
    Memory(String),
    /// A chain the device cannot take as what its queue carries.
    #[error("{0}")]
    Invalid(String),
}

impl From<virtio_queue::Error> for QueueError {
    fn from(e: virtio_queue::Error) -> Self {
        QueueError::Memory(e.to_string())
    }
}

/// One descriptor's buffer, checked to lie inside guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub addr: GuestAddress,
    pub len: u32,
    /// Device-writable (VRING_DESC_F_WRITE).
    pub writable: bool,
}

/// Which way a queue's buffers go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The device only reads the buffers (a transmit queue).
    DeviceReads,
    /// The device only writes the buffers (a receive queue).
    DeviceWrites,
    /// A request: device-readable buffers, then device-writable ones
    /// (§2.7.4.2: the driver places every writable one after the readable).
    ReadThenWrite,
}

/// Takes the next available chain head, if any, checking the available index
/// (§2.7.6: it may not run more than the queue size ahead of the device).
pub fn pop_head(queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<Option<u16>, QueueError> {
    let avail = queue.avail_idx(mem, Ordering::Acquire)?.0;
    let ahead = avail.wrapping_sub(queue.next_avail());
    if ahead > queue.size() {
        return Err(QueueError::AvailIndexJump { avail, ahead, size: queue.size() });
    }
    if ahead == 0 {
        return Ok(None);
    }
    // virtio-queue's iterator ends, silently, where it cannot read the ring
    // entry (or the head it names is out of range): a chain is posted that
    // cannot be taken, and the driver would have the device look for ever.
    match queue.iter(mem)?.next() {
        Some(chain) => Ok(Some(chain.head_index())),
        None => Err(QueueError::Memory(format!("available ring entry {} unreadable", queue.next_avail()))),
    }
}

/// Whether the driver wants a used-buffer notification for the chains used
/// since the last call (§2.7.7.2): with EVENT_IDX, if used_event lies among
/// them (virtio-queue's `needs_notification`, vring_need_event); else unless
/// it set VRING_AVAIL_F_NO_INTERRUPT, which virtio-queue does not read.
pub fn wants_interrupt(queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<bool, QueueError> {
    if queue.event_idx_enabled() {
        return Ok(queue.needs_notification(mem)?);
    }
    // The used-ring stores before the flags load (as vhost_notify's smp_mb).
    std::sync::atomic::fence(Ordering::SeqCst);
    let flags: u16 = mem.read_obj(GuestAddress(queue.avail_ring())).map_err(|e| QueueError::Memory(e.to_string()))?;
    Ok(u32::from(flags) & VRING_AVAIL_F_NO_INTERRUPT == 0)
}

/// Reads the chain that starts at `head` into `out`, validating every
/// descriptor: index in range, no loop, no indirect table, the expected
/// direction, the buffer inside guest memory without overflow, and at most
/// 2^32 bytes in all (§2.7.5).
pub fn read_chain(
    queue: &Queue,
    mem: &GuestMemoryMmap,
    head: u16,
    direction: Direction,
    out: &mut Vec<Buffer>,
) -> Result<(), QueueError> {
    out.clear();
    let size = queue.size();
    if head >= size {
        return Err(QueueError::HeadOutOfRange { head, size });
    }
    let table = GuestAddress(queue.desc_table());
    let mut index = head;
    let mut total = 0u64;
    loop {
        // A chain visits each descriptor at most once, so more than `size`
        // descriptors means a loop.
        if out.len() == usize::from(size) {
            return Err(QueueError::ChainTooLong { head, size });
        }
        // The table was checked to lie in guest memory when the queue was enabled.
        let desc: Descriptor =
            mem.read_obj(table.unchecked_add(u64::from(index) * 16)).map_err(|e| QueueError::Memory(e.to_string()))?;
        let flags = u32::from(desc.flags());
        let (addr, len) = (desc.addr().0, desc.len());
        if flags & VRING_DESC_F_INDIRECT != 0 {
            return Err(QueueError::Indirect { index });
        }
        let writable = flags & VRING_DESC_F_WRITE != 0;
        match (direction, writable) {
            (Direction::DeviceReads, true) => return Err(QueueError::WriteOnly { index }),
            (Direction::DeviceWrites, false) => return Err(QueueError::ReadOnly { index }),
            (Direction::ReadThenWrite, false) if out.last().is_some_and(|b: &Buffer| b.writable) => {
                return Err(QueueError::ReadableAfterWritable { index })
            }
            _ => {}
        }
        let access = if writable { Permissions::Write } else { Permissions::Read };
        if addr.checked_add(u64::from(len)).is_none() {
            return Err(QueueError::AddressOverflow { index, addr, len });
        }
        if !mem.check_range(desc.addr(), len as usize, access) {
            return Err(QueueError::OutsideMemory { index, addr, len });
        }
        total += u64::from(len);
        if total > 1 << 32 {
            return Err(QueueError::ChainTooLarge { head });
        }
        out.push(Buffer { addr: desc.addr(), len, writable });
        if flags & VRING_DESC_F_NEXT == 0 {
            return Ok(());
        }
        let next = desc.next();
        if next >= size {
            return Err(QueueError::NextOutOfRange { index, next, size });
        }
        index = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtio_queue::desc::RawDescriptor;
    use virtio_queue::mock::MockSplitQueue;

    const SIZE: u16 = 16;

    fn memory() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
    }

    /// Writes `descs` at table indexes 0.., makes `head` available `count` times ahead.
    fn setup(mem: &GuestMemoryMmap, descs: &[(u64, u32, u16, u16)], head: u16, avail_idx: u16) -> Queue {
        let vq = MockSplitQueue::new(mem, SIZE);
        for (i, &(addr, len, flags, next)) in descs.iter().enumerate() {
            vq.desc_table().store(i as u16, RawDescriptor::from(Descriptor::new(addr, len, flags, next))).unwrap();
        }
        vq.avail().ring().ref_at(0).unwrap().store(head);
        vq.avail().idx().store(avail_idx);
        vq.create_queue().unwrap()
    }

    fn walk(descs: &[(u64, u32, u16, u16)], head: u16, direction: Direction) -> Result<Vec<Buffer>, QueueError> {
        let mem = memory();
        let mut queue = setup(&mem, descs, head, 1);
        let head = pop_head(&mut queue, &mem)?.expect("one chain is available");
        let mut out = Vec::new();
        read_chain(&queue, &mem, head, direction, &mut out).map(|_| out)
    }

    const NEXT: u16 = VRING_DESC_F_NEXT as u16;
    const WRITE: u16 = VRING_DESC_F_WRITE as u16;

    #[test]
    fn valid_chain_yields_every_buffer_in_order() {
        let chain = walk(&[(0x1000, 10, NEXT, 2), (0, 0, 0, 0), (0x2000, 20, 0, 0)], 0, Direction::DeviceReads);
        assert_eq!(
            chain,
            Ok(vec![
                Buffer { addr: GuestAddress(0x1000), len: 10, writable: false },
                Buffer { addr: GuestAddress(0x2000), len: 20, writable: false }
            ])
        );
    }

    #[test]
    fn buffer_ending_exactly_at_the_end_of_ram_is_valid() {
        assert!(walk(&[(0xf_ff00, 0x100, 0, 0)], 0, Direction::DeviceReads).is_ok());
    }

    #[test]
    fn buffer_beyond_ram_is_rejected() {
        assert_eq!(
            walk(&[(0xf_ff00, 0x101, 0, 0)], 0, Direction::DeviceReads),
            Err(QueueError::OutsideMemory { index: 0, addr: 0xf_ff00, len: 0x101 })
        );
    }

    #[test]
    fn buffer_wrapping_the_address_space_is_rejected() {
        assert_eq!(
            walk(&[(u64::MAX - 4, 16, 0, 0)], 0, Direction::DeviceReads),
            Err(QueueError::AddressOverflow { index: 0, addr: u64::MAX - 4, len: 16 })
        );
    }

    #[test]
    fn next_beyond_queue_size_is_rejected() {
        assert_eq!(
            walk(&[(0x1000, 1, NEXT, SIZE)], 0, Direction::DeviceReads),
            Err(QueueError::NextOutOfRange { index: 0, next: SIZE, size: SIZE })
        );
    }

    #[test]
    fn loops_are_rejected() {
        let self_loop = walk(&[(0x1000, 1, NEXT, 0)], 0, Direction::DeviceReads);
        assert_eq!(self_loop, Err(QueueError::ChainTooLong { head: 0, size: SIZE }));
        let table: Vec<_> = (0..SIZE).map(|i| (0x1000, 1, NEXT, (i + 1) % SIZE)).collect();
        assert_eq!(walk(&table, 3, Direction::DeviceReads), Err(QueueError::ChainTooLong { head: 3, size: SIZE }));
    }

    #[test]
    fn chains_over_four_gib_are_rejected() {
        // 2^32 - 1 bytes and 1 more is the limit; 2 more is over. The buffers
        // must lie in memory: a sparse 8 GiB mapping, never touched.
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 33)]).unwrap();
        let big = u32::MAX;
        let mut queue = setup(&mem, &[(0x1000, big, NEXT, 1), (0x1000, 1, 0, 0)], 0, 1);
        let head = pop_head(&mut queue, &mem).unwrap().unwrap();
        let mut out = Vec::new();
        assert_eq!(read_chain(&queue, &mem, head, Direction::DeviceReads, &mut out), Ok(()), "exactly 2^32 bytes");
        let mut queue = setup(&mem, &[(0x1000, big, NEXT, 1), (0x1000, 2, 0, 0)], 0, 1);
        let head = pop_head(&mut queue, &mem).unwrap().unwrap();
        assert_eq!(
            read_chain(&queue, &mem, head, Direction::DeviceReads, &mut out),
            Err(QueueError::ChainTooLarge { head: 0 })
        );
    }

    #[test]
    fn no_interrupt_is_honoured() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, SIZE);
        let mut queue = vq.create_queue().unwrap();
        assert_eq!(wants_interrupt(&mut queue, &mem), Ok(true));
        mem.write_obj(VRING_AVAIL_F_NO_INTERRUPT as u16, GuestAddress(queue.avail_ring())).unwrap();
        assert_eq!(wants_interrupt(&mut queue, &mem), Ok(false));
    }

    #[test]
    fn with_event_idx_used_event_decides_and_no_interrupt_is_ignored() {
        let mem = memory();
        let vq = MockSplitQueue::new(&mem, SIZE);
        let mut queue: Queue = vq.create_queue().unwrap();
        // The mock's used ring overlaps the avail ring's used_event.
        queue.set_used_ring_address(Some(0x8000), None);
        queue.set_event_idx(true);
        mem.write_obj(VRING_AVAIL_F_NO_INTERRUPT as u16, GuestAddress(queue.avail_ring())).unwrap();
        // used_event = 1: the driver wants the interrupt once entry 1 is used.
        let used_event = GuestAddress(queue.avail_ring() + 4 + 2 * u64::from(SIZE));
        mem.write_obj(1u16, used_event).unwrap();
        queue.add_used(&mem, 0, 0).unwrap();
        assert_eq!(wants_interrupt(&mut queue, &mem), Ok(false), "entry 0");
        queue.add_used(&mem, 1, 0).unwrap();
        assert_eq!(wants_interrupt(&mut queue, &mem), Ok(true), "entry 1");
        // Both at once, past used_event: one interrupt for the batch.
        mem.write_obj(2u16, used_event).unwrap();
        queue.add_used(&mem, 2, 0).unwrap();
        queue.add_used(&mem, 3, 0).unwrap();
        assert_eq!(wants_interrupt(&mut queue, &mem), Ok(true), "entries 2 and 3");
        assert_eq!(wants_interrupt(&mut queue, &mem), Ok(false), "nothing new");
    }

    #[test]
    fn head_beyond_queue_size_is_rejected() {
        assert_eq!(
            walk(&[(0x1000, 1, 0, 0)], SIZE, Direction::DeviceReads),
            Err(QueueError::HeadOutOfRange { head: SIZE, size: SIZE })
        );
    }

    #[test]
    fn direction_and_indirect_flags_are_checked() {
        let indirect = VRING_DESC_F_INDIRECT as u16;
        assert_eq!(
            walk(&[(0x1000, 16, indirect, 0)], 0, Direction::DeviceReads),
            Err(QueueError::Indirect { index: 0 })
        );
        assert_eq!(walk(&[(0x1000, 1, WRITE, 0)], 0, Direction::DeviceReads), Err(QueueError::WriteOnly { index: 0 }));
        assert_eq!(walk(&[(0x1000, 1, 0, 0)], 0, Direction::DeviceWrites), Err(QueueError::ReadOnly { index: 0 }));
        assert!(walk(&[(0x1000, 1, WRITE, 0)], 0, Direction::DeviceWrites).is_ok());
    }

    #[test]
    fn a_request_reads_then_writes() {
        let request = walk(&[(0x1000, 16, NEXT, 1), (0x2000, 1, WRITE, 0)], 0, Direction::ReadThenWrite).unwrap();
        assert_eq!(request.iter().map(|b| b.writable).collect::<Vec<_>>(), [false, true]);
        assert_eq!(
            walk(&[(0x2000, 1, WRITE | NEXT, 1), (0x1000, 16, 0, 0)], 0, Direction::ReadThenWrite),
            Err(QueueError::ReadableAfterWritable { index: 1 })
        );
    }

    #[test]
    fn available_index_may_not_run_ahead_by_more_than_the_queue() {
        let mem = memory();
        let mut queue = setup(&mem, &[(0x1000, 1, 0, 0)], 0, SIZE + 1);
        assert_eq!(
            pop_head(&mut queue, &mem),
            Err(QueueError::AvailIndexJump { avail: SIZE + 1, ahead: SIZE + 1, size: SIZE })
        );
        let mut queue = setup(&mem, &[(0x1000, 1, 0, 0)], 0, SIZE);
        assert_eq!(pop_head(&mut queue, &mem), Ok(Some(0)));
    }
}
