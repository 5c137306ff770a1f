//! The console's input: the VMM's stdin (or any file), read when the event
//! loop finds it readable and handed to the console as it has room; the
//! device gives it to the driver's receive buffers or holds it until the
//! driver posts some. On a terminal in raw mode, Ctrl-A x quits.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};

use crate::terminal::Escape;
use crate::virtio::console::RECEIVEQ_INDEX;
use crate::vm::VirtioMmio;
use crate::warn;

/// Where the console's input comes from.
pub struct Input {
    pub file: File,
    /// A terminal in raw mode: its Ctrl-A x quits.
    pub escape: bool,
}

/// What the last step of the input did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Handed over, or nothing to read now.
    Fed,
    /// The device had no room for all of it: try again later, and do not
    /// read more meanwhile.
    Held,
    /// End of input, or an error reading it (logged): the guest gets no more.
    Ended,
    /// The terminal's escape sequence (Ctrl-A x): the user quits.
    Quit,
}

pub struct InputState {
    input: Input,
    escape: Escape,
    /// Read but not yet taken by the device.
    pending: Vec<u8>,
    buf: Vec<u8>,
}

impl InputState {
    pub fn new(input: Input) -> Self {
        InputState { input, escape: Escape::default(), pending: Vec::new(), buf: vec![0; 4096] }
    }

    pub fn fd(&self) -> RawFd {
        self.input.file.as_raw_fd()
    }

    /// Whether bytes wait for room in the device.
    pub fn held(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Reads once (unless bytes are still held) and hands what it has to the
    /// console. Called when the file is readable, or always is (a regular
    /// file), or when held bytes may find room now.
    pub fn step(&mut self, console: &VirtioMmio) -> Step {
        if self.pending.is_empty() {
            let n = match (&self.input.file).read(&mut self.buf) {
                Ok(0) => return Step::Ended,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted || e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Step::Fed
                }
                Err(e) => {
                    warn!("console input: {e}; no more input");
                    return Step::Ended;
                }
            };
            if !self.input.escape {
                self.pending.extend_from_slice(&self.buf[..n]);
            } else if self.escape.filter(&self.buf[..n], &mut self.pending) {
                return Step::Quit;
            }
        }
        let mut slot = console.lock();
        let taken = slot.transport.device_mut().input(&self.pending);
        self.pending.drain(..taken);
        let slot = &mut *slot;
        slot.transport.process(RECEIVEQ_INDEX, &slot.mem);
        if self.pending.is_empty() {
            Step::Fed
        } else {
            Step::Held
        }
    }
}
