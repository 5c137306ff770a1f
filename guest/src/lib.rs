//! Support library for the bare-metal guests: the PVH-style entry, a debug port,
//! the console's interrupt, and virtio-mmio drivers for the console and for
//! disks (probe, status handshake, feature negotiation, split virtqueues).
//!
//! The same code builds for i686 (32-bit protected mode, paging off) and for
//! x86_64 (long mode, identity-mapped): physical addresses equal pointers.
#![no_std]

pub mod block;
pub mod boot;
pub mod console;
pub mod debug;
pub mod interrupt;
pub mod mmio;
pub mod ports;
pub mod text;
pub mod virtqueue;
