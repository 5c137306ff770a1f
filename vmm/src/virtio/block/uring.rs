//! The io_uring engine: reads, writes, fdatasync and fallocate submitted to
//! one ring per disk, completions signalled on an eventfd registered with
//! the ring. Submission never waits for the I/O; what would block, the
//! kernel's io-wq threads do.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use io_uring::{opcode, squeue, types, IoUring};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::engine::{Completion, Engine, Op};

pub struct Uring {
    ring: IoUring,
    file: Arc<File>,
    eventfd: EventFd,
    /// The operations in the ring: their iovec arrays must live until the
    /// kernel is done with them.
    ops: HashMap<u64, Op>,
    /// Pushed, not yet submitted.
    queued: usize,
}

impl Uring {
    /// A ring with room for `entries` operations in flight.
    pub fn new(file: Arc<File>, entries: u32) -> io::Result<Self> {
        let ring = IoUring::new(entries)?;
        let eventfd = EventFd::new(EFD_NONBLOCK)?;
        ring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        Ok(Uring { ring, file, eventfd, ops: HashMap::new(), queued: 0 })
    }

    fn entry(&self, token: u64, op: &Op) -> squeue::Entry {
        let fd = types::Fd(self.file.as_raw_fd());
        match op {
            Op::Read { offset, iovecs } => {
                opcode::Readv::new(fd, iovecs.as_ptr(), iovecs.len() as u32).offset(*offset).build()
            }
            Op::Write { offset, iovecs } => {
                opcode::Writev::new(fd, iovecs.as_ptr(), iovecs.len() as u32).offset(*offset).build()
            }
            Op::Flush => opcode::Fsync::new(fd).flags(types::FsyncFlags::DATASYNC).build(),
            Op::Fallocate { offset, len, mode } => opcode::Fallocate::new(fd, *len).offset(*offset).mode(*mode).build(),
        }
        .user_data(token)
    }

    fn submit(&mut self, wait: usize) -> io::Result<()> {
        loop {
            match self.ring.submit_and_wait(wait) {
                Ok(_) => {
                    self.queued = 0;
                    return Ok(());
                }
                // A signal (the vCPU kick) or a full completion queue: the
                // entries stay in the submission queue; try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Engine for Uring {
    fn push(&mut self, token: u64, op: Op) -> io::Result<()> {
        let entry = self.entry(token, &op);
        // Moving the Op moves its Vec, not the iovec array the entry points to.
        self.ops.insert(token, op);
        // SAFETY: the entry's iovec array and the guest buffers it names stay
        // valid until the completion is reaped (`ops`, and the device's
        // guest memory); the fd is the file this engine holds.
        let push = |ring: &mut IoUring| unsafe { ring.submission().push(&entry) }.is_ok();
        // The device keeps at most a queue's worth in flight, the ring's
        // size: a full submission queue empties on a submit.
        if !push(&mut self.ring) {
            self.submit(0)?;
            if !push(&mut self.ring) {
                self.ops.remove(&token);
                return Err(io::Error::other("the io_uring submission queue stays full"));
            }
        }
        self.queued += 1;
        Ok(())
    }

    fn commit(&mut self) -> io::Result<()> {
        if self.queued == 0 {
            return Ok(());
        }
        self.submit(0)
    }

    fn reap(&mut self, out: &mut Vec<Completion>) {
        for cqe in self.ring.completion() {
            let token = cqe.user_data();
            self.ops.remove(&token);
            out.push(Completion { token, result: cqe.result().into() });
        }
    }

    fn drain(&mut self, out: &mut Vec<Completion>) {
        let _ = self.submit(0);
        while !self.ops.is_empty() {
            self.reap(out);
            if self.ops.is_empty() || self.submit(1).is_err() {
                break;
            }
        }
        self.reap(out);
        self.clear();
    }

    fn fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    fn clear(&self) {
        let _ = self.eventfd.read();
    }

    fn name(&self) -> &'static str {
        "io_uring"
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // The kernel must be done with every buffer before the iovecs and
        // guest memory go.
        let mut lost = Vec::new();
        self.drain(&mut lost);
    }
}
