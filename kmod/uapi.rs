// SPDX-License-Identifier: GPL-2.0
//! The ioctl ABI: the standard vhost ioctls (include/uapi/linux/vhost.h and
//! vhost_types.h), plus one device ioctl in the device-specific range.

use core::mem::size_of;
use kernel::ioctl::{_IO, _IOR, _IOW, _IOWR};
use kernel::types::{AsBytes, FromBytes};

const VHOST_VIRTIO: u32 = 0xaf;

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct VringState {
    pub(crate) index: u32,
    pub(crate) num: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct VringFile {
    pub(crate) index: u32,
    pub(crate) fd: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct VringAddr {
    pub(crate) index: u32,
    pub(crate) flags: u32,
    pub(crate) desc_user_addr: u64,
    pub(crate) used_user_addr: u64,
    pub(crate) avail_user_addr: u64,
    pub(crate) log_guest_addr: u64,
}

/// `struct vhost_memory` header; `nregions` `MemoryRegion`s follow it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Memory {
    pub(crate) nregions: u32,
    pub(crate) padding: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct MemoryRegion {
    pub(crate) guest_phys_addr: u64,
    pub(crate) memory_size: u64,
    pub(crate) userspace_addr: u64,
    pub(crate) flags_padding: u64,
}

// SAFETY: plain `repr(C)` integer structs without padding: every bit pattern
// is valid, and they have no uninitialized bytes.
unsafe impl FromBytes for VringState {}
// SAFETY: as above.
unsafe impl AsBytes for VringState {}
// SAFETY: as above.
unsafe impl FromBytes for VringFile {}
// SAFETY: as above.
unsafe impl FromBytes for VringAddr {}
// SAFETY: as above.
unsafe impl FromBytes for Memory {}
// SAFETY: as above.
unsafe impl FromBytes for MemoryRegion {}

pub(crate) const VHOST_GET_FEATURES: u32 = _IOR::<u64>(VHOST_VIRTIO, 0x00);
pub(crate) const VHOST_SET_FEATURES: u32 = _IOW::<u64>(VHOST_VIRTIO, 0x00);
pub(crate) const VHOST_SET_OWNER: u32 = _IO(VHOST_VIRTIO, 0x01);
pub(crate) const VHOST_RESET_OWNER: u32 = _IO(VHOST_VIRTIO, 0x02);
pub(crate) const VHOST_SET_MEM_TABLE: u32 = _IOW::<Memory>(VHOST_VIRTIO, 0x03);
pub(crate) const VHOST_SET_VRING_NUM: u32 = _IOW::<VringState>(VHOST_VIRTIO, 0x10);
pub(crate) const VHOST_SET_VRING_ADDR: u32 = _IOW::<VringAddr>(VHOST_VIRTIO, 0x11);
pub(crate) const VHOST_SET_VRING_BASE: u32 = _IOW::<VringState>(VHOST_VIRTIO, 0x12);
pub(crate) const VHOST_GET_VRING_BASE: u32 = _IOWR::<VringState>(VHOST_VIRTIO, 0x12);
pub(crate) const VHOST_SET_VRING_KICK: u32 = _IOW::<VringFile>(VHOST_VIRTIO, 0x20);
pub(crate) const VHOST_SET_VRING_CALL: u32 = _IOW::<VringFile>(VHOST_VIRTIO, 0x21);
pub(crate) const VHOST_SET_VRING_ERR: u32 = _IOW::<VringFile>(VHOST_VIRTIO, 0x22);
pub(crate) const VHOST_SET_VRING_BUSYLOOP_TIMEOUT: u32 = _IOW::<VringState>(VHOST_VIRTIO, 0x23);
// Sic: _IOW in vhost.h too.
pub(crate) const VHOST_GET_VRING_BUSYLOOP_TIMEOUT: u32 = _IOW::<VringState>(VHOST_VIRTIO, 0x24);
/// Attaches the file that queue `index`'s bytes go to (transmitq, 1) or come
/// from (receiveq, 0); `fd` -1 detaches. As VHOST_NET_SET_BACKEND attaches a
/// socket.
pub(crate) const VHOST_CONSOLE_SET_BACKEND: u32 = _IOW::<VringFile>(VHOST_VIRTIO, 0x50);

/// `struct vhost_blk_backend` (our own, as the console's ioctl): the disk's
/// file and what the device told the driver about it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct BlkBackend {
    /// The backing file (-1 detaches): a regular file or a block device.
    pub(crate) fd: i32,
    /// VHOST_BLK_F_READ_ONLY.
    pub(crate) flags: u32,
    /// In 512-byte sectors; the file holds at least as many.
    pub(crate) capacity: u64,
    pub(crate) max_discard_sectors: u32,
    pub(crate) max_discard_seg: u32,
    pub(crate) max_write_zeroes_sectors: u32,
    pub(crate) max_write_zeroes_seg: u32,
    /// GET_ID's answer, NUL-padded.
    pub(crate) serial: [u8; 20],
    pub(crate) padding: u32,
}

// SAFETY: `repr(C)` integers and bytes laid out without padding (56 bytes).
unsafe impl FromBytes for BlkBackend {}

/// Attaches the disk behind /dev/vhost-blk's request queue (0).
pub(crate) const VHOST_BLK_SET_BACKEND: u32 = _IOW::<BlkBackend>(VHOST_VIRTIO, 0x60);
pub(crate) const VHOST_BLK_F_READ_ONLY: u32 = 1;

/// Feature bits (virtio_config.h; EVENT_IDX from virtio_ring.h).
pub(crate) const VIRTIO_F_VERSION_1: u64 = 1 << 32;
pub(crate) const VIRTIO_F_IN_ORDER: u64 = 1 << 35;
pub(crate) const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;

const _: () = assert!(size_of::<VringAddr>() == 40 && size_of::<MemoryRegion>() == 32 && size_of::<BlkBackend>() == 56);
