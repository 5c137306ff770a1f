//! A small KVM hypervisor: one VM core (`vm`, `vcpu`, `event_loop`) that runs
//! bare-metal ELF guests and boots Linux (`x86`), with VirtIO 1.x devices on
//! virtio-mmio (`virtio`), processed in the VMM or in the kernel (vhost).

pub mod bus;
pub mod devices;
pub mod event_loop;
pub mod input;
pub mod kick;
pub mod log;
pub mod output;
pub mod stats;
pub mod terminal;
pub mod vcpu;
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
        n if n < WARNING_LIMIT => log::line(args),
        WARNING_LIMIT => log::line(format_args!("vmm: more than {WARNING_LIMIT} warnings; suppressing the rest")),
        _ => {}
    }
}

/// `warn!("virtio-mmio: ...")`: a guest misbehaved or asked for something unsupported.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::warning(format_args!($($arg)*)) };
}
