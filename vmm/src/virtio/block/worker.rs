//! The synchronous engine: one thread per disk doing the operations in the
//! order they come, with the plain syscalls. It keeps vCPUs out of the I/O,
//! but has one operation in flight at a time on the host.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::engine::{Completion, Engine, Op};

pub struct Worker {
    tx: Option<Sender<(u64, Op)>>,
    done: Arc<Mutex<Vec<Completion>>>,
    eventfd: Arc<EventFd>,
    queued: Vec<(u64, Op)>,
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

fn errno() -> i64 {
    -i64::from(io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

/// preadv/pwritev until every byte moved: a short transfer is retried from
/// where it stopped (a signal, a page cache boundary), up to an error or EOF.
fn transfer(fd: RawFd, write: bool, offset: u64, mut iovecs: Vec<libc::iovec>) -> i64 {
    let mut done: i64 = 0;
    let mut first = 0;
    while first < iovecs.len() {
        let iov = &iovecs[first..];
        let count = iov.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
        let at = (offset + done as u64) as libc::off_t;
        // SAFETY: the iovecs are guest memory the device keeps mapped while
        // the operation is in flight (see `Op`), `count` of them.
        let n = unsafe {
            if write {
                libc::pwritev(fd, iov.as_ptr(), count, at)
            } else {
                libc::preadv(fd, iov.as_ptr(), count, at)
            }
        };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return errno();
        }
        if n == 0 {
            return done; // end of file: short
        }
        done += n as i64;
        let mut left = n as usize;
        while first < iovecs.len() && left >= iovecs[first].iov_len {
            left -= iovecs[first].iov_len;
            first += 1;
        }
        if left > 0 {
            let v = &mut iovecs[first];
            // SAFETY: still inside the same buffer: `left` < its length.
            v.iov_base = unsafe { v.iov_base.cast::<u8>().add(left) }.cast();
            v.iov_len -= left;
        }
    }
    done
}

fn execute(file: &File, op: Op) -> i64 {
    let fd = file.as_raw_fd();
    match op {
        Op::Read { offset, iovecs } => transfer(fd, false, offset, iovecs),
        Op::Write { offset, iovecs } => transfer(fd, true, offset, iovecs),
        // SAFETY: a file descriptor this thread's File owns.
        Op::Flush => match unsafe { libc::fdatasync(fd) } {
            0 => 0,
            _ => errno(),
        },
        Op::Fallocate { offset, len, mode } => {
            // SAFETY: as above; fallocate takes plain integers.
            match unsafe { libc::fallocate(fd, mode, offset as libc::off_t, len as libc::off_t) } {
                0 => 0,
                _ => errno(),
            }
        }
    }
}

impl Worker {
    pub fn new(file: Arc<File>, name: &str) -> io::Result<Self> {
        let eventfd = Arc::new(EventFd::new(EFD_NONBLOCK)?);
        let done = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = channel::<(u64, Op)>();
        let (thread_done, thread_eventfd) = (done.clone(), eventfd.clone());
        let thread = std::thread::Builder::new().name(name.into()).spawn(move || {
            for (token, op) in rx {
                let result = execute(&file, op);
                thread_done.lock().unwrap_or_else(|e| e.into_inner()).push(Completion { token, result });
                let _ = thread_eventfd.write(1);
            }
        })?;
        Ok(Worker { tx: Some(tx), done, eventfd, queued: Vec::new(), in_flight: 0, thread: Some(thread) })
    }
}

impl Engine for Worker {
    fn push(&mut self, token: u64, op: Op) -> io::Result<()> {
        self.queued.push((token, op));
        Ok(())
    }

    fn commit(&mut self) -> io::Result<()> {
        let tx = self.tx.as_ref().expect("the worker lives as long as the engine");
        for item in self.queued.drain(..) {
            tx.send(item).map_err(|_| io::Error::other("the disk's I/O thread ended"))?;
            self.in_flight += 1;
        }
        Ok(())
    }

    fn reap(&mut self, out: &mut Vec<Completion>) {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        self.in_flight -= done.len();
        out.append(&mut done);
    }

    fn drain(&mut self, out: &mut Vec<Completion>) {
        // Queued but not committed: never started.
        self.queued.clear();
        while self.in_flight > 0 {
            let mut fd = libc::pollfd { fd: self.eventfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one live pollfd.
            unsafe { libc::poll(&mut fd, 1, 100) };
            self.clear();
            self.reap(out);
            if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
                break; // it panicked: nothing more will complete
            }
        }
    }

    fn fd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    fn clear(&self) {
        let _ = self.eventfd.read();
    }

    fn name(&self) -> &'static str {
        "sync"
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let mut lost = Vec::new();
        self.drain(&mut lost);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
