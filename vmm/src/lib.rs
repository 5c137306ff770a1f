//! A small KVM hypervisor: one vCPU, flat RAM, an ELF guest entered in 32-bit
//! protected mode or long mode, and a VirtIO 1.x console on virtio-mmio.

pub mod boot;
pub mod bus;
pub mod devices;
pub mod input;
pub mod loader;
pub mod machine;
pub mod stats;
pub mod terminal;
pub mod timer;
pub mod virtio;
pub mod vm;
pub mod x86;

use std::sync::atomic::{AtomicU32, Ordering};

/// Guest-triggered warnings printed before the rest are suppressed: a hostile
/// guest must not be able to flood the host's log.
const WARNING_LIMIT: u32 = 100;
static WARNINGS: AtomicU32 = AtomicU32::new(0);

/// Prints one warning line on stderr, up to `WARNING_LIMIT` per run.
pub fn warning(args: std::fmt::Arguments) {
    match WARNINGS.fetch_add(1, Ordering::Relaxed) {
        n if n < WARNING_LIMIT => eprintln!("{args}"),
        WARNING_LIMIT => eprintln!("vmm: more than {WARNING_LIMIT} warnings; suppressing the rest"),
        _ => {}
    }
}

/// `warn!("virtio-mmio: ...")`: a guest misbehaved or asked for something unsupported.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::warning(format_args!($($arg)*)) };
}
