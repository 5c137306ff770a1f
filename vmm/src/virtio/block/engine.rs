//! Where a disk's I/O runs: never on the vCPU thread that noticed the
//! request. The device hands an engine operations tagged with a token and
//! takes the results back when the engine's eventfd (watched by the VMM's
//! event loop) says some are done; many may be in flight, and they may
//! complete in any order.
//! - `Uring` (io_uring, as Cloud Hypervisor's block crate and Firecracker's
//!   async engine do): submission is a syscall that does not wait.
//! - `Worker` (engine=sync): one thread doing preadv/pwritev in order, for
//!   kernels without io_uring (or where it is disabled).

use std::io;
use std::os::fd::RawFd;

/// One operation on the disk's file. The iovecs point into guest memory,
/// which the device keeps mapped until the operation completes.
#[derive(Debug)]
pub enum Op {
    Read {
        offset: u64,
        iovecs: Vec<libc::iovec>,
    },
    Write {
        offset: u64,
        iovecs: Vec<libc::iovec>,
    },
    /// fdatasync: every write completed before it is on stable storage.
    Flush,
    /// fallocate(mode, offset, len): discard and write-zeroes.
    Fallocate {
        offset: u64,
        len: u64,
        mode: i32,
    },
}

// SAFETY: the iovecs are addresses in guest memory's mappings, valid in every
// thread of the process; the device that made them keeps the memory mapped
// (a clone of the GuestMemoryMmap) and drains every operation before it
// drops or forgets them.
unsafe impl Send for Op {}

impl Op {
    /// The bytes a read or write moves (what a complete result returns).
    pub fn bytes(&self) -> u64 {
        match self {
            Op::Read { iovecs, .. } | Op::Write { iovecs, .. } => iovecs.iter().map(|v| v.iov_len as u64).sum(),
            Op::Flush | Op::Fallocate { .. } => 0,
        }
    }
}

/// A finished operation: bytes moved, or -errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    pub token: u64,
    pub result: i64,
}

/// Which engine a disk asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    IoUring,
    Sync,
}

pub trait Engine: Send {
    /// Queues `op`; it starts at the latest with the next `commit`.
    fn push(&mut self, token: u64, op: Op) -> io::Result<()>;
    /// Starts what `push` queued.
    fn commit(&mut self) -> io::Result<()>;
    /// Moves finished operations to `out`, without waiting.
    fn reap(&mut self, out: &mut Vec<Completion>);
    /// Waits until nothing is in flight; the results go to `out`.
    fn drain(&mut self, out: &mut Vec<Completion>);
    /// Readable when completions wait for `reap`.
    fn fd(&self) -> RawFd;
    /// Reads the eventfd, before a `reap`.
    fn clear(&self);
    fn name(&self) -> &'static str;
}
