//! A deliberately malformed driver: `case=<name>` on the command line picks
//! one misbehaviour. Afterwards the guest reports the device status on the
//! debug port (`hostile: status 0x...`). Cases that the device must survive
//! without a reset then bring the console up properly and print "survived".
#![no_std]
#![no_main]

use guest::boot::{halt, BootInfo};
use guest::console::{Console, RECEIVEQ, TRANSMITQ};
use guest::debug;
use guest::mmio::{self, Mmio};
use guest::virtqueue::{
    Desc, AVAIL_OFFSET, MAX_SIZE, RECEIVEQ_PAGE, TRANSMITQ_PAGE, USED_OFFSET, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
};

guest::entry!(main);

// SAFETY: the console's register window.
const DEV: Mmio = unsafe { Mmio::new(mmio::CONSOLE_BASE) };
const SIZE: u16 = 16;
const HELLO: &[u8] = b"Hello World!\n";
/// Free RAM for receive buffers, above the image, rings and stack.
const SCRATCH: u64 = 0x10_0000;
const W: u16 = VIRTQ_DESC_F_WRITE;

/// Every case of `main`, for the message about an unknown one (the host's
/// tests run each name listed here).
const CASES: &[u8] = b"desc-beyond-ram desc-overflow next-out-of-range desc-loop chain-too-long write-only-desc head-out-of-range avail-idx-jump huge-chain reset-after-error disable-then-post kick-storm rx-read-only rx-beyond-ram rx-zero-length rx-huge-chain queue-size-zero queue-size-not-pow2 queue-size-over-max ready-before-addresses driver-ok-without-features-ok no-version-1 unoffered-feature read-only-write bad-width unknown-register outside-window emergency-write notify-before-driver-ok needs-reset-then-post no-queues";

fn main(boot: &BootInfo) -> ! {
    let case = boot.param("case").unwrap_or(b"");
    match case {
        // Descriptor chains on transmitq, after a correct bring-up.
        b"desc-beyond-ram" => chain(&[desc(0x4000_0000, 16, 0, 0)], 0, 1),
        b"desc-overflow" => chain(&[desc(0xffff_ffff_ffff_fff0, 0x100, 0, 0)], 0, 1),
        b"next-out-of-range" => chain(&[desc_ok(VIRTQ_DESC_F_NEXT, SIZE + 3)], 0, 1),
        b"desc-loop" => chain(&[desc_ok(VIRTQ_DESC_F_NEXT, 1), desc_ok(VIRTQ_DESC_F_NEXT, 0)], 0, 1),
        b"chain-too-long" => {
            let mut table = [desc_ok(VIRTQ_DESC_F_NEXT, 0); SIZE as usize];
            for (i, d) in table.iter_mut().enumerate() {
                d.next = (i as u16 + 1) % SIZE;
            }
            chain(&table, 0, 1)
        }
        b"write-only-desc" => chain(&[desc_ok(VIRTQ_DESC_F_WRITE, 0)], 0, 1),
        b"head-out-of-range" => chain(&[desc_ok(0, 0)], SIZE + 1, 1),
        b"avail-idx-jump" => chain(&[desc_ok(0, 0)], 0, SIZE + 1),
        // Output amplification: every descriptor covers all of RAM (`len=`,
        // default 16M), one kick. The device works through it a budget at a
        // time and uses it at last; the guest halts when it is used.
        b"huge-chain" => huge_chain(boot.param_u32("len").unwrap_or(16 << 20)),
        // A queue error, then a reset without reading Status first: Status
        // must read 0 afterwards (§2.4), whenever the device noticed the error.
        b"reset-after-error" => {
            let _console = console();
            post(desc(0x4000_0000, 16, 0, 0));
            DEV.notify(TRANSMITQ);
            settle();
            DEV.reset();
            report()
        }
        // QueueReady = 0, then a valid buffer and a notification: the device
        // must not touch the disabled queue (§4.2.2.1).
        b"disable-then-post" => {
            let _console = console();
            DEV.write(mmio::QUEUE_SEL, TRANSMITQ.into());
            DEV.write(mmio::QUEUE_READY, 0);
            post(desc_ok(0, 0));
            DEV.notify(TRANSMITQ);
            settle();
            debug::write(b"hostile: used ");
            // SAFETY: the used index, in the transmitq page.
            debug::write_hex(
                unsafe { core::ptr::read_volatile((TRANSMITQ_PAGE + USED_OFFSET + 2) as *const u16) }.into(),
            );
            debug::fail(b"")
        }
        // DEVICE_NEEDS_RESET set by the device (a status bit cleared after
        // DRIVER_OK): the queue must stop everywhere it runs, in the kernel
        // too. A buffer posted afterwards stays unused.
        b"needs-reset-then-post" => {
            let _console = console();
            DEV.write(mmio::STATUS, mmio::ACKNOWLEDGE | mmio::DRIVER | mmio::DRIVER_OK);
            post(desc_ok(0, 0));
            DEV.notify(TRANSMITQ);
            settle();
            debug::write(b"hostile: used ");
            debug::write_hex(used_idx(TRANSMITQ_PAGE).into());
            debug::write(b", status ");
            debug::write_hex(DEV.read(mmio::STATUS));
            debug::fail(b"")
        }
        // DRIVER_OK with no queue enabled: allowed (§4.2.3.2: a driver may
        // leave queues it does not use unconfigured); the device goes live.
        b"no-queues" => {
            let mut status = bring_up_to_driver();
            DEV.negotiate(&mut status, 0).unwrap_or_else(|e| e.fail());
            DEV.set_status(&mut status, mmio::DRIVER_OK);
            report()
        }
        // `kicks=` notifications (default 10000) with no buffer posted.
        b"kick-storm" => {
            let mut console = console();
            for _ in 0..boot.param_u32("kicks").unwrap_or(10_000) {
                DEV.notify(TRANSMITQ);
            }
            console.write(b"survived\n");
            halt()
        }
        // Receive buffers, with input waiting: the device must refuse a
        // device-readable one, one outside RAM and a chain of more than
        // 4 GiB (`descs=` descriptors, default 16, of `len=` bytes); it
        // uses a zero-length one with 0 bytes and puts the input in the
        // next; a huge chain in bounds takes the input in its first
        // descriptor. The guest sends back what it received.
        b"rx-read-only" => receive(&[desc(SCRATCH, 64, 0, 0)], 1),
        b"rx-beyond-ram" => receive(&[desc(0x4000_0000, 64, W, 0)], 1),
        b"rx-zero-length" => receive(&[desc(SCRATCH, 0, W, 0), desc(SCRATCH, 64, W, 0)], 2),
        b"rx-huge-chain" => {
            let len = boot.param_u32("len").unwrap_or(4 << 20);
            let n = boot.param_u32("descs").unwrap_or(SIZE.into()).clamp(1, MAX_SIZE.into()) as usize;
            receive(&linked(desc(SCRATCH, len, W, 0), n)[..n], 1)
        }
        // Queue configuration.
        b"queue-size-zero" => queue_setup(0, true),
        b"queue-size-not-pow2" => queue_setup(3, true),
        b"queue-size-over-max" => queue_setup(0x8000, true),
        b"ready-before-addresses" => queue_setup(SIZE.into(), false),
        // Status and feature negotiation.
        b"driver-ok-without-features-ok" => {
            let mut status = bring_up_to_driver();
            DEV.set_status(&mut status, mmio::DRIVER_OK);
            report()
        }
        b"no-version-1" => features(0),
        b"unoffered-feature" => features(mmio::VIRTIO_F_VERSION_1 | 1 << 40),
        // Register access rules: logged and ignored, the device keeps working.
        b"read-only-write" => {
            DEV.write(mmio::MAGIC_VALUE, 0);
            DEV.write(mmio::QUEUE_NUM_MAX, 1);
            DEV.write(mmio::INTERRUPT_STATUS, 1);
            survive()
        }
        b"bad-width" => {
            // SAFETY: all inside the device window (MMIO, not RAM).
            unsafe {
                let _: u8 = DEV.read_raw(mmio::STATUS);
                DEV.write_raw::<u16>(mmio::QUEUE_SEL, 1);
                DEV.write_raw::<u8>(mmio::STATUS, 0xff);
            }
            survive()
        }
        b"unknown-register" => {
            let _ = DEV.read(0x0a8);
            DEV.write(0x0c4, 1);
            survive()
        }
        b"outside-window" => {
            // SAFETY: addresses past the device window and past RAM: MMIO exits.
            unsafe {
                core::ptr::write_volatile(0x1000_1000 as *mut u32, 1);
                let _ = core::ptr::read_volatile(0x2000_0000 as *const u32);
            }
            survive()
        }
        // Not hostile: VIRTIO_CONSOLE_F_EMERG_WRITE, usable before any setup (§5.3.6).
        b"emergency-write" => {
            for &byte in b"emergency\n" {
                DEV.write(mmio::CONFIG + 8, byte.into());
            }
            survive()
        }
        b"notify-before-driver-ok" => {
            bring_up_to_driver();
            DEV.notify(TRANSMITQ);
            survive()
        }
        other => {
            debug::write(b"hostile: unknown case ");
            debug::write(other);
            debug::write(b"; cases: ");
            debug::fail(CASES)
        }
    }
}

/// The console with 16-entry queues, whatever the driver's usual size.
fn console() -> Console {
    console_sized(SIZE)
}

fn console_sized(size: u16) -> Console {
    Console::init_sized(&BootInfo::empty(), mmio::VIRTIO_F_IN_ORDER | mmio::VIRTIO_RING_F_EVENT_IDX, size)
        .unwrap_or_else(|e| e.fail())
}

fn desc(addr: u64, len: u32, flags: u16, next: u16) -> Desc {
    Desc { addr, len, flags, next }
}

/// A well-formed buffer holding "Hello World!\n", with the given chaining.
fn desc_ok(flags: u16, next: u16) -> Desc {
    desc(HELLO.as_ptr() as u64, HELLO.len() as u32, flags, next)
}

/// A descriptor table whose first `n` (1 to MAX_SIZE) entries are copies
/// of `d` chained in order, the last without NEXT.
fn linked(d: Desc, n: usize) -> [Desc; MAX_SIZE as usize] {
    let mut table = [d; MAX_SIZE as usize];
    for (i, d) in table[..n - 1].iter_mut().enumerate() {
        d.flags |= VIRTQ_DESC_F_NEXT;
        d.next = i as u16 + 1;
    }
    table
}

/// Brings the console up, writes `table` into transmitq's descriptor table,
/// puts `head` in the first avail slot, sets avail.idx to `idx` and notifies.
fn chain(table: &[Desc], head: u16, idx: u16) -> ! {
    let console = console();
    if console.transmitq.size() != SIZE {
        debug::fail(b"hostile: expected a 16-entry transmitq");
    }
    publish(TRANSMITQ_PAGE, table, &[head], idx);
    DEV.notify(TRANSMITQ);
    wait_for_reset();
    report()
}

/// Brings the console up, writes `table` into receiveq's descriptor table,
/// makes descriptors 0..`chains` available as chain heads and notifies.
/// Once they are used, sends back what each received; if the device stops
/// the queue instead, reports the status.
/// At most two chains.
fn receive(table: &[Desc], chains: u16) -> ! {
    let mut console = console_sized((table.len() as u16).next_power_of_two().max(SIZE));
    let page = RECEIVEQ_PAGE;
    publish(page, table, &[0, 1][..usize::from(chains)], chains);
    DEV.notify(RECEIVEQ);
    // Each Status read is an exit: a bounded wait, also for a vhost worker.
    for _ in 0..1_000_000 {
        if DEV.read(mmio::STATUS) & mmio::DEVICE_NEEDS_RESET != 0 {
            report();
        }
        if used_idx(page) == chains {
            for i in 0..usize::from(chains) {
                // SAFETY: used ring element i (id, len), in the receiveq page.
                let (id, len) = unsafe {
                    let elem = (page + USED_OFFSET + 4 + 8 * i) as *const u32;
                    (core::ptr::read_volatile(elem), core::ptr::read_volatile(elem.add(1)))
                };
                if len != 0 {
                    console.write_from(table[id as usize % table.len()].addr, len);
                }
            }
            halt()
        }
    }
    debug::write(b"hostile: receive buffers used ");
    debug::write_hex(used_idx(page).into());
    debug::fail(b"")
}

/// Puts `d` at descriptor 0 and makes it available, without a notification.
fn post(d: Desc) {
    publish(TRANSMITQ_PAGE, &[d], &[0], 1);
}

/// Writes `table` at the start of the descriptor table in the queue page
/// `page`, `heads` into the first available slots, and avail.idx = `idx`.
fn publish(page: usize, table: &[Desc], heads: &[u16], idx: u16) {
    assert!(table.len() <= MAX_SIZE.into() && heads.len() <= MAX_SIZE.into());
    // SAFETY: the queue pages are guest RAM; a page holds MAX_SIZE
    // descriptors below AVAIL_OFFSET and MAX_SIZE avail entries after it.
    unsafe {
        for (i, d) in table.iter().enumerate() {
            core::ptr::write_volatile((page as *mut Desc).add(i), *d);
        }
        for (i, &head) in heads.iter().enumerate() {
            core::ptr::write_volatile((page + AVAIL_OFFSET + 4 + 2 * i) as *mut u16, head);
        }
        core::ptr::write_volatile((page + AVAIL_OFFSET + 2) as *mut u16, idx);
    }
}

/// The used index of the queue page `page`.
fn used_idx(page: usize) -> u16 {
    // SAFETY: the used index, inside the queue page (guest RAM).
    unsafe { core::ptr::read_volatile((page + USED_OFFSET + 2) as *const u16) }
}

/// Gives a device that works asynchronously (vhost) time to act, without
/// reading Status: 2000 register reads, each an exit.
fn settle() {
    for _ in 0..2000 {
        let _ = DEV.read(mmio::MAGIC_VALUE);
    }
}

fn huge_chain(len: u32) -> ! {
    let _console = console();
    publish(TRANSMITQ_PAGE, &linked(desc(0, len, 0, 0), SIZE.into())[..SIZE.into()], &[0], 1);
    DEV.notify(TRANSMITQ);
    while used_idx(TRANSMITQ_PAGE) != 1 {
        core::hint::spin_loop();
    }
    halt()
}

/// Programs transmitq with `num` entries, with or without ring addresses.
fn queue_setup(num: u32, addresses: bool) -> ! {
    let mut status = bring_up_to_driver();
    DEV.negotiate(&mut status, 0).unwrap_or_else(|e| e.fail());
    DEV.write(mmio::QUEUE_SEL, TRANSMITQ.into());
    DEV.write(mmio::QUEUE_NUM, num);
    if addresses {
        DEV.write_addr(mmio::QUEUE_DESC_LOW, TRANSMITQ_PAGE as u64);
        DEV.write_addr(mmio::QUEUE_DRIVER_LOW, (TRANSMITQ_PAGE + 0x100) as u64);
        DEV.write_addr(mmio::QUEUE_DEVICE_LOW, (TRANSMITQ_PAGE + 0x200) as u64);
    }
    DEV.write(mmio::QUEUE_READY, 1);
    report()
}

/// Offers `features` to FEATURES_OK; the device must refuse it.
fn features(features: u64) -> ! {
    let mut status = bring_up_to_driver();
    DEV.write_driver_features(features);
    DEV.set_status(&mut status, mmio::FEATURES_OK);
    report()
}

/// Probe, reset, ACKNOWLEDGE, DRIVER. Returns the status bits set.
fn bring_up_to_driver() -> u32 {
    DEV.probe(3).unwrap_or_else(|e| e.fail());
    DEV.reset();
    let mut status = 0;
    DEV.set_status(&mut status, mmio::ACKNOWLEDGE);
    DEV.set_status(&mut status, mmio::DRIVER);
    status
}

/// A device may process queues asynchronously (vhost): give it time to flag
/// the error, but not forever.
fn wait_for_reset() {
    for _ in 0..1_000_000 {
        if DEV.read(mmio::STATUS) & mmio::DEVICE_NEEDS_RESET != 0 {
            return;
        }
    }
}

fn report() -> ! {
    debug::write(b"hostile: status ");
    debug::write_hex(DEV.read(mmio::STATUS));
    debug::fail(b"")
}

/// Proves the device still works: a full bring-up and a write.
fn survive() -> ! {
    let mut console = console();
    console.write(b"survived\n");
    halt()
}
