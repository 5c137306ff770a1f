//! Where guest output goes: a bounded buffer in front of a file, drained by
//! a thread of its own. Devices push into the buffer under their locks and
//! never wait: a reader that stops reading (a pipe nobody drains, a stopped
//! terminal) stalls only the writer thread. A device that finds no room
//! stops taking the guest's buffers and is woken through `room_fd` when
//! there is room again, so the guest feels the reader's pace as a full ring,
//! never as a frozen vCPU.
//!
//! Nothing is lost silently: a failed write, or bytes the buffer could not
//! take where the device had no way to wait, make `failure` say so, and the
//! run then ends with an error.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Bytes held for the writer: the guest runs ahead of its reader by this
/// much (and by the writer's own buffer, as large, while it writes).
pub const CAPACITY: usize = 1 << 20;

struct State {
    buf: Vec<u8>,
    closed: bool,
    /// Set by the writer when it has taken everything and is done.
    finished: bool,
    /// A pusher found no room: signal `room` once there is.
    waiting: bool,
    failed: Option<String>,
    lost: u64,
}

struct Inner {
    name: String,
    capacity: usize,
    state: Mutex<State>,
    /// The writer waits on it for bytes; `finish` for the writer's end.
    changed: Condvar,
    room: EventFd,
    file: OnceLock<File>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking writer thread poisons nothing we rely on: the state
        // stays consistent between statements.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A handle on one output; clones share it.
#[derive(Clone)]
pub struct Output {
    inner: Arc<Inner>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Output {
    /// An output named `name` (for messages) that holds up to `capacity`
    /// bytes. Bytes pushed before `start` wait for it.
    pub fn new(name: &str, capacity: usize) -> io::Result<Self> {
        Ok(Output {
            inner: Arc::new(Inner {
                name: name.to_string(),
                capacity,
                state: Mutex::new(State {
                    buf: Vec::new(),
                    closed: false,
                    finished: false,
                    waiting: false,
                    failed: None,
                    lost: 0,
                }),
                changed: Condvar::new(),
                room: EventFd::new(EFD_NONBLOCK)?,
                file: OnceLock::new(),
            }),
            thread: Arc::new(Mutex::new(None)),
        })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Starts writing to `file`.
    pub fn start(&self, file: File) -> io::Result<()> {
        let writer = file.try_clone()?;
        if self.inner.file.set(file).is_err() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "output started twice"));
        }
        let inner = self.inner.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{}-writer", self.inner.name.replace(' ', "-")))
            .spawn(move || write_loop(&inner, writer))?;
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread);
        Ok(())
    }

    /// The file being written, once started (the kernel's vhost worker may
    /// write to it directly).
    pub fn file(&self) -> Option<&File> {
        self.inner.file.get()
    }

    /// Room for this many more bytes now.
    pub fn room(&self) -> usize {
        let state = self.inner.lock();
        self.inner.capacity.saturating_sub(state.buf.len())
    }

    /// Appends what fits of `len` bytes that `fill` writes into the slice it
    /// is given; returns how many were taken. Finding no room for all makes
    /// `room_fd` readable once there is.
    pub fn push_with<E>(&self, len: usize, fill: impl FnOnce(&mut [u8]) -> Result<(), E>) -> Result<usize, E> {
        let mut state = self.inner.lock();
        let n = len.min(self.inner.capacity.saturating_sub(state.buf.len()));
        if n < len {
            state.waiting = true;
        }
        if n == 0 {
            return Ok(0);
        }
        let start = state.buf.len();
        state.buf.resize(start + n, 0);
        if let Err(e) = fill(&mut state.buf[start..]) {
            state.buf.truncate(start);
            return Err(e);
        }
        drop(state);
        self.inner.changed.notify_all();
        Ok(n)
    }

    /// Appends what fits of `bytes`; returns how many were taken.
    pub fn push(&self, bytes: &[u8]) -> usize {
        self.push_with(bytes.len(), |dst| {
            dst.copy_from_slice(&bytes[..dst.len()]);
            Ok::<(), ()>(())
        })
        .unwrap_or(0)
    }

    /// Appends `bytes`; what does not fit is counted as lost (for producers
    /// that cannot wait: a UART has no flow control here).
    pub fn push_or_lose(&self, bytes: &[u8]) {
        let n = self.push(bytes);
        if n < bytes.len() {
            self.inner.lock().lost += (bytes.len() - n) as u64;
        }
    }

    /// Counts `n` bytes that could not be pushed as lost.
    pub fn lose(&self, n: u64) {
        self.inner.lock().lost += n;
    }

    /// Makes pushers that wait for room give up (their bytes count as lost):
    /// the VM is stopping and the reader does not read.
    pub fn abandon(&self) {
        self.inner.lock().closed = true;
        self.inner.changed.notify_all();
    }

    /// Appends all of `bytes`, waiting for room (for a thread of its own that
    /// holds no lock: the relay). False once the output failed or closed.
    pub fn push_wait(&self, mut bytes: &[u8]) -> bool {
        let mut state = self.inner.lock();
        while !bytes.is_empty() {
            if state.failed.is_some() || state.closed {
                state.lost += bytes.len() as u64;
                return false;
            }
            let n = bytes.len().min(self.inner.capacity.saturating_sub(state.buf.len()));
            if n > 0 {
                state.buf.extend_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                self.inner.changed.notify_all();
            } else {
                state = self.inner.changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
        true
    }

    /// Readable when room came back after a push found none, or when the
    /// output failed; read it to re-arm.
    pub fn room_fd(&self) -> RawFd {
        self.inner.room.as_raw_fd()
    }

    pub fn clear_room(&self) {
        let _ = self.inner.room.read();
    }

    /// Why output was lost, if it was: the write error, or how many bytes
    /// found no room.
    pub fn failure(&self) -> Option<String> {
        let state = self.inner.lock();
        match (&state.failed, state.lost) {
            (Some(e), lost) => Some(format!("{} failed ({e}); {lost} bytes not written", self.inner.name)),
            (None, 0) => None,
            (None, lost) => Some(format!("{}: {lost} bytes lost (the reader fell behind)", self.inner.name)),
        }
    }

    /// No more bytes will come: the writer ends once it wrote what it has.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.inner.changed.notify_all();
    }

    /// Bytes pushed and not yet handed to the file.
    pub fn pending(&self) -> usize {
        self.inner.lock().buf.len()
    }

    /// Waits until the writer has written everything it was given and
    /// ended (after `close`), or until `until`; returns whether it has.
    pub fn wait(&self, until: Option<Instant>) -> bool {
        let mut state = self.inner.lock();
        if self.inner.file.get().is_none() {
            return true;
        }
        while !state.finished {
            state = match until {
                None => self.inner.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(until) => {
                    let Some(left) = until.checked_duration_since(Instant::now()) else { return false };
                    self.inner.changed.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
        drop(state);
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
        true
    }

    /// Closes the output and waits until everything pushed is written, or
    /// until `deadline`. Err if bytes were lost or are still unwritten then.
    pub fn finish(&self, deadline: Option<Instant>) -> Result<(), String> {
        self.close();
        if !self.wait(deadline) {
            return Err(format!("{}: {} bytes not written (the reader stopped)", self.inner.name, self.pending()));
        }
        match self.failure() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

fn write_loop(inner: &Inner, mut file: File) {
    let mut batch = Vec::new();
    loop {
        let mut state = inner.lock();
        while state.buf.is_empty() && !state.closed {
            state = inner.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.buf.is_empty() {
            state.finished = true;
            inner.changed.notify_all();
            return;
        }
        // Double buffering: the devices fill the other buffer meanwhile.
        std::mem::swap(&mut state.buf, &mut batch);
        if state.waiting {
            state.waiting = false;
            let _ = inner.room.write(1);
        }
        // Pushers waiting for room (the relay) may go on.
        inner.changed.notify_all();
        let failed = state.failed.is_some();
        drop(state);
        if failed {
            inner.lock().lost += batch.len() as u64;
        } else if let Err(e) = file.write_all(&batch) {
            let mut state = inner.lock();
            state.failed = Some(e.to_string());
            state.lost += batch.len() as u64;
            drop(state);
            // The owner learns it where it waits for room.
            let _ = inner.room.write(1);
        }
        batch.clear();
    }
}

/// An Output as a `Write` that never blocks: what does not fit is lost (and
/// reported). For producers without flow control: the UART, the debug port.
#[derive(Clone)]
pub struct LossyWriter(pub Output);

impl Write for LossyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push_or_lose(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::time::Duration;

    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: a valid array; the result is checked.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: two new descriptors nothing else owns.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    #[test]
    fn bytes_arrive_in_order_and_finish_flushes() {
        let (mut r, w) = pipe();
        let out = Output::new("test", 64).unwrap();
        assert_eq!(out.push(b"early "), 6, "held until started");
        out.start(w).unwrap();
        assert_eq!(out.push(b"hello"), 5);
        out.finish(None).unwrap();
        drop(out);
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap();
        assert_eq!(got, "early hello");
    }

    #[test]
    fn a_full_buffer_takes_what_fits_and_signals_room_later() {
        let (mut r, w) = pipe();
        let out = Output::new("test", 8).unwrap();
        assert_eq!(out.push(b"0123456789"), 8);
        assert_eq!(out.push(b"x"), 0);
        out.start(w).unwrap();
        // The writer empties the buffer into the pipe and signals room.
        let mut pfd = libc::pollfd { fd: out.room_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one live pollfd.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 5000) }, 1);
        out.clear_room();
        assert_eq!(out.push(b"89"), 2);
        out.finish(None).unwrap();
        let mut got = Vec::new();
        drop(out);
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"0123456789");
    }

    #[test]
    fn a_reader_that_never_reads_blocks_only_the_writer() {
        let (_r, w) = pipe();
        let out = Output::new("stuck", 1 << 20).unwrap();
        out.start(w).unwrap();
        // A pipe holds 64 KiB: the writer blocks, pushes go on until the
        // buffer is full, and never wait.
        let mut taken = 0;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(200) {
            taken += out.push(&[7u8; 4096]);
        }
        assert!((1 << 20..=3 << 20).contains(&taken), "{taken}");
        let e = out.finish(Some(Instant::now() + Duration::from_millis(100))).unwrap_err();
        assert!(e.starts_with("stuck: ") && e.ends_with(" bytes not written (the reader stopped)"), "{e}");
    }

    #[test]
    fn a_write_error_is_reported_and_later_bytes_count_as_lost() {
        let (r, w) = pipe();
        drop(r);
        let out = Output::new("console output", 64).unwrap();
        out.start(w).unwrap();
        out.push(b"abc");
        let mut pfd = libc::pollfd { fd: out.room_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one live pollfd.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 5000) }, 1, "the failure wakes the owner");
        out.push(b"de");
        let e = out.finish(None).unwrap_err();
        assert!(e.starts_with("console output failed (Broken pipe"), "{e}");
        assert!(e.ends_with("; 5 bytes not written"), "{e}");
    }

    #[test]
    fn lossy_writes_count_what_did_not_fit() {
        let out = Output::new("serial", 4).unwrap();
        let mut w = LossyWriter(out.clone());
        w.write_all(b"123456").unwrap();
        assert_eq!(out.failure().unwrap(), "serial: 2 bytes lost (the reader fell behind)");
    }
}
