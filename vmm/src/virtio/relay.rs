//! A pipe between the kernel worker and an output it will not write to
//! itself. vhost-console writes only to files that can refuse to wait
//! (pipes, sockets, /dev/null, /dev/vmm-console) and to storage; a terminal
//! can be stopped (Ctrl-S) and block its writer for ever. For such an output
//! the kernel writes into a pipe and a thread here copies the pipe into the
//! `Output`, so that only the VMM's own threads ever wait on the output.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::thread::JoinHandle;

use crate::output::Output;

pub struct Relay {
    /// The pipe's write end, handed to the kernel (which takes its own
    /// reference) and used for the emergency writes, to keep their order.
    /// Non-blocking. Taken (closed) at drop.
    writer: Option<File>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts copying a new pipe into `out`.
    pub fn new(out: Output) -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: a valid array for the two descriptors; the result is checked.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 returned two new descriptors that nothing else owns.
        let (mut reader, writer) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        // Our emergency writes must not wait either. The kernel shares this
        // open file, and writes to it with RWF_NOWAIT anyway.
        // SAFETY: fcntl on a descriptor we own; the result is checked.
        if unsafe { libc::fcntl(writer.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let thread = std::thread::Builder::new().name("console-relay".into()).spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            // Until every write end is closed: ours at drop, the kernel's
            // when the device is closed. After a failure the pipe is still
            // drained (and counted as lost by the output), so that the
            // kernel never waits.
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        out.push_wait(&buf[..n]);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        crate::warn!("virtio-console: console relay failed ({e})");
                        break;
                    }
                }
            }
        })?;
        Ok(Relay { writer: Some(writer), thread: Some(thread) })
    }

    /// The descriptor to hand to the kernel.
    pub fn fd(&self) -> RawFd {
        self.writer.as_ref().map_or(-1, File::as_raw_fd)
    }

    /// Closes our write end: once the kernel has let go of its own (its
    /// backend detached), the thread copies what is left and ends.
    pub fn close(&mut self) {
        drop(self.writer.take());
    }

    /// Waits until the thread has copied everything, or until `until`;
    /// returns whether it has.
    pub fn wait(&mut self, until: std::time::Instant) -> bool {
        while self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        true
    }

    /// Writes `bytes` behind everything the kernel wrote so far, as much as
    /// the pipe takes now; returns how much that was.
    pub fn write_nowait(&mut self, bytes: &[u8]) -> usize {
        self.writer.as_mut().and_then(|w| w.write(bytes).ok()).unwrap_or(0)
    }
}

impl Drop for Relay {
    /// Closes our write end and waits until the thread has copied everything:
    /// the caller closes the device first, so the kernel's end is gone too.
    /// The thread waits for room in the output, which `Output::abandon`
    /// ends when the output's reader has stopped.
    fn drop(&mut self) {
        drop(self.writer.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
