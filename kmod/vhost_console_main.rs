// SPDX-License-Identifier: GPL-2.0
//! vhost-console: an in-kernel backend for a virtio console's queues.
//!
//! /dev/vhost-console speaks the vhost ioctl ABI (include/uapi/linux/vhost.h)
//! plus VHOST_CONSOLE_SET_BACKEND; a worker in the owner's process drains
//! transmitq into the file attached to it and fills receiveq from the file
//! attached to that. /dev/vmm-console is a ring buffer transmitq's file can
//! be.
//!
//! Files: vhost.rs (the vhost core: owner, memory table, vring ioctls, the
//! worker's task body, the `Device` trait), worker.rs (the worker task and
//! its queued work), vring.rs (ring access), poll.rs (waiting on a file),
//! console.rs (the console device), output.rs (/dev/vmm-console),
//! miscdev.rs (misc device registration), refs.rs (counted references),
//! sys.rs (what helpers.c wraps), uapi.rs (the ioctl ABI).

use core::pin::Pin;
use kernel::prelude::*;

mod blk;
mod console;
mod miscdev;
mod output;
mod poll;
mod refs;
mod sys;
mod uapi;
mod vhost;
mod vring;
mod worker;

module! {
    type: VhostConsoleModule,
    name: "vhost_console",
    author: "vmm project",
    description: "vhost backend for the virtio console, and /dev/vmm-console",
    license: "GPL",
}

struct VhostConsoleModule {
    _vhost: Pin<KBox<miscdev::Registration<()>>>,
    _blk: Pin<KBox<miscdev::Registration<()>>>,
    _output: Pin<KBox<output::OutputDevice>>,
}

impl kernel::Module for VhostConsoleModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let output = miscdev::Registration::register(
            kernel::c_str!("vmm-console"),
            output::fops(),
            module,
            output::OutputBuffer::new()?,
        )?;
        let vhost = miscdev::Registration::register(kernel::c_str!("vhost-console"), vhost::fops::<console::Console>(), module, ())?;
        let blk = miscdev::Registration::register(kernel::c_str!("vhost-blk"), vhost::fops::<blk::Blk>(), module, ())?;
        pr_info!("/dev/vhost-console, /dev/vhost-blk and /dev/vmm-console ready\n");
        Ok(VhostConsoleModule { _vhost: vhost, _blk: blk, _output: output })
    }
}
