// SPDX-License-Identifier: GPL-2.0
//! A misc device registration on 6.12's raw bindings (6.12 has no Rust
//! `MiscDevice` abstraction yet): registered on creation, deregistered on drop.

use core::pin::Pin;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::types::Opaque;
use kernel::{bindings, error::to_result};

/// Creates /dev/<name> with `fops`; `misc_open` sets each file's
/// `private_data` to the `miscdevice`, which `Registration::from_file` maps
/// back to the containing `T`.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T> {
    #[pin]
    misc: Opaque<bindings::miscdevice>,
    fops: bindings::file_operations,
    /// Whether misc_register succeeded: only then may drop deregister.
    registered: bool,
    #[pin]
    pub(crate) data: T,
}

impl<T> Registration<T> {
    /// Registers the device; `fops.owner` becomes `module`, so the module
    /// cannot unload while a file is open.
    pub(crate) fn register(
        name: &'static CStr,
        mut fops: bindings::file_operations,
        module: &'static ThisModule,
        data: impl PinInit<T, Error>,
    ) -> Result<Pin<KBox<Self>>> {
        fops.owner = module.as_ptr();
        let mut this = KBox::pin_init(
            try_pin_init!(Self { misc: Opaque::uninit(), fops, registered: false, data <- data }),
            GFP_KERNEL,
        )?;
        let misc = this.misc.get();
        // SAFETY: `misc` is ours, pinned, and not yet registered; zero is a
        // valid initial state for `struct miscdevice`.
        unsafe {
            core::ptr::write_bytes(misc, 0, 1);
            (*misc).minor = bindings::MISC_DYNAMIC_MINOR as i32;
            (*misc).name = name.as_char_ptr();
            (*misc).fops = &this.fops;
        }
        // SAFETY: `misc` is initialized and stays pinned until `drop`
        // deregisters it; `fops` lives in the same allocation.
        to_result(unsafe { bindings::misc_register(misc) })?;
        // SAFETY: a plain field; nothing is moved out of the pinned box.
        unsafe { this.as_mut().get_unchecked_mut().registered = true };
        Ok(this)
    }

    /// The registration whose device `file` was opened on.
    ///
    /// # Safety
    /// `file` is a file of this registration's device whose `private_data`
    /// is still the `miscdevice` pointer that `misc_open` stored.
    pub(crate) unsafe fn from_file<'a>(file: *mut bindings::file) -> &'a Self {
        // SAFETY: per the contract, private_data points at our `misc` field.
        let misc = unsafe { (*file).private_data } as *const Opaque<bindings::miscdevice>;
        // SAFETY: `misc` is the `misc` field of a live `Registration<T>`: the
        // module (and so the registration) outlives every open file.
        unsafe { &*kernel::container_of!(misc, Self, misc) }
    }
}

#[pinned_drop]
impl<T> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        if self.registered {
            // SAFETY: registered in `register`; deregistered only here.
            unsafe { bindings::misc_deregister(self.misc.get()) };
        }
    }
}

// SAFETY: the `miscdevice` is only touched by the misc core under its own
// lock; `T` decides its own thread safety.
unsafe impl<T: Sync> Sync for Registration<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Send for Registration<T> {}
