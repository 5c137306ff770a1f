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
use virtio_bindings::virtio_ring::{VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
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
    #[error("guest memory access failed: {0}")]
    Memory(String),
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
}

/// Which way a queue's buffers go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The device only reads the buffers (a transmit queue).
    DeviceReads,
    /// The device only writes the buffers (a receive queue).
    DeviceWrites,
}

/// Takes the next available chain head, if any, checking the available index
/// (§2.7.6: it may not run more than the queue size ahead of the device).
pub fn pop_head(queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<Option<u16>, QueueError> {
    let avail = queue.avail_idx(mem, Ordering::Acquire)?.0;
    let ahead = avail.wrapping_sub(queue.next_avail());
    if ahead > queue.size() {
        return Err(QueueError::AvailIndexJump { avail, ahead, size: queue.size() });
    }
    Ok(queue.iter(mem)?.next().map(|chain| chain.head_index()))
}

/// Reads the chain that starts at `head` into `out`, validating every
/// descriptor: index in range, no loop, no indirect table, the expected
/// direction, and the buffer inside guest memory without overflow.
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
    let access = match direction {
        Direction::DeviceReads => Permissions::Read,
        Direction::DeviceWrites => Permissions::Write,
    };
    let mut index = head;
    loop {
        // A chain visits each descriptor at most once, so more than `size`
        // descriptors means a loop.
        if out.len() == usize::from(size) {
            return Err(QueueError::ChainTooLong { head, size });
        }
        // The table was checked to lie in guest memory when the queue was enabled.
        let desc: Descriptor = mem.read_obj(table.unchecked_add(u64::from(index) * 16)).map_err(|e| QueueError::Memory(e.to_string()))?;
        let flags = u32::from(desc.flags());
        let (addr, len) = (desc.addr().0, desc.len());
        if flags & VRING_DESC_F_INDIRECT != 0 {
            return Err(QueueError::Indirect { index });
        }
        match (direction, flags & VRING_DESC_F_WRITE != 0) {
            (Direction::DeviceReads, true) => return Err(QueueError::WriteOnly { index }),
            (Direction::DeviceWrites, false) => return Err(QueueError::ReadOnly { index }),
            _ => {}
        }
        if addr.checked_add(u64::from(len)).is_none() {
            return Err(QueueError::AddressOverflow { index, addr, len });
        }
        if !mem.check_range(desc.addr(), len as usize, access) {
            return Err(QueueError::OutsideMemory { index, addr, len });
        }
        out.push(Buffer { addr: desc.addr(), len });
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
