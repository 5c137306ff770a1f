//! A pipe between the kernel worker and an output it will not write to
//! itself. vhost-console writes only to files that can refuse to wait
//! (pipes, sockets, /dev/null, /dev/vmm-console) and to storage; a terminal
//! can be stopped (Ctrl-S) and block its writer for ever. For such an output
//! the kernel writes into a pipe and a thread here copies the pipe to it, so
//! that only the VMM ever waits on the output.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::thread::JoinHandle;

use crate::warn;

pub struct Relay {
    /// The pipe's write end, handed to the kernel (which takes its own
    /// reference) and used for the emergency writes, to keep their order.
    /// Taken (closed) at drop.
    writer: Option<File>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts copying a new pipe to `out`.
    pub fn new(mut out: File) -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: a valid array for the two descriptors; the result is checked.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 returned two new descriptors that nothing else owns.
        let (mut reader, writer) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let thread = std::thread::Builder::new().name("console-relay".into()).spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let mut failed = false;
            // Until every write end is closed: ours at drop, the kernel's
            // when the device is closed.
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        warn!("virtio-console: console relay failed ({e}); dropping further output");
                        break;
                    }
                };
                // Keep draining after a failure, so that the kernel never waits.
                if !failed {
                    if let Err(e) = out.write_all(&buf[..n]) {
                        warn!("virtio-console: console output failed ({e}); dropping further output");
                        failed = true;
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

    /// Writes `bytes` behind everything the kernel wrote so far.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.as_mut().map_or(Ok(()), |w| w.write_all(bytes))
    }
}

impl Drop for Relay {
    /// Closes our write end and waits until the thread has copied everything:
    /// the caller closes the device first, so the kernel's end is gone too.
    fn drop(&mut self) {
        drop(self.writer.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
