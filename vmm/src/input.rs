//! The console's input: a thread reads the VMM's stdin (or any file) and
//! hands the bytes to the device as it has room, which gives them to the
//! driver's receive buffers or holds them until the driver posts some.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::bus::VirtioSlot;
use crate::terminal::Escape;
use crate::virtio::console::RECEIVEQ_INDEX;
use crate::virtio::VirtioDevice;
use crate::warn;

/// Why the reader stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// End of input, or an error reading it (logged): the guest gets no more.
    Eof,
    /// The terminal's escape sequence (Ctrl-A x): the user quits.
    Quit,
    /// `stop` was set.
    Stopped,
}

/// Reads `input` until it ends or `stop` is set. On a terminal (`terminal`),
/// in raw mode, Ctrl-A x quits and Ctrl-A Ctrl-A sends a Ctrl-A.
pub fn read<D: VirtioDevice>(console: &Mutex<VirtioSlot<D>>, input: File, terminal: bool, stop: &AtomicBool) -> End {
    let mut escape = Escape::default();
    let mut buf = [0u8; 4096];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return End::Stopped;
        }
        if pending.is_empty() {
            let mut pfd = libc::pollfd { fd: input.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one live pollfd. A timeout, so that `stop` is seen.
            if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
                continue;
            }
            let n = match (&input).read(&mut buf) {
                Ok(0) => return End::Eof,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("console input: {e}; no more input");
                    return End::Eof;
                }
            };
            if !terminal {
                pending.extend_from_slice(&buf[..n]);
            } else if escape.filter(&buf[..n], &mut pending) {
                return End::Quit;
            }
        }
        let mut slot = console.lock().expect("console lock");
        let taken = slot.transport.device_mut().input(&pending);
        pending.drain(..taken);
        let mem = slot.mem.clone();
        slot.transport.process(RECEIVEQ_INDEX, &mem);
        drop(slot);
        if !pending.is_empty() {
            // The guest has not taken what it has: wait for room.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
