//! The VMM's own lines on stderr: lifecycle lines, warnings, and while a VM
//! runs also the guest's serial port and debug port. While a VM runs they go
//! through one `Output`, so that they keep their order and a stderr that
//! nobody reads stalls no vCPU; before and after, straight to stderr.

use std::io::Write;
use std::sync::Mutex;

use crate::output::Output;

static STDERR: Mutex<Option<Output>> = Mutex::new(None);

/// Routes lines through `out` from now on (None: straight to stderr again).
pub fn route(out: Option<Output>) {
    *STDERR.lock().unwrap_or_else(|e| e.into_inner()) = out;
}

/// Writes raw bytes (a guest's serial output) where the lines go.
pub fn write(bytes: &[u8]) {
    match &*STDERR.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(out) => out.push_or_lose(bytes),
        None => {
            let _ = std::io::stderr().write_all(bytes);
        }
    }
}

/// Writes one line.
pub fn line(args: std::fmt::Arguments) {
    write(format!("{args}\n").as_bytes());
}

/// A `Write` for the guest's serial port when it goes to stderr.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
