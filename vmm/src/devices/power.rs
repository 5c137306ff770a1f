//! The line by which a guest asks the platform to reset or power off the
//! machine: the i8042's CPU reset, the ACPI sleep control register. The
//! device raises it during a port write; the vCPU that made the write takes
//! it right after, and the VM ends.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerRequest {
    Reset = 1,
    PowerOff = 2,
}

#[derive(Clone, Default)]
pub struct PowerLine(Arc<AtomicU8>);

impl PowerLine {
    pub fn request(&self, request: PowerRequest) {
        self.0.store(request as u8, Ordering::SeqCst);
    }

    /// The request raised since the last call, if any.
    pub fn take(&self) -> Option<PowerRequest> {
        match self.0.swap(0, Ordering::SeqCst) {
            1 => Some(PowerRequest::Reset),
            2 => Some(PowerRequest::PowerOff),
            _ => None,
        }
    }
}
