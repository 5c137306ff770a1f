//! Ioctls racing RESET_OWNER from other threads of the owner, for ten
//! seconds: one thread resets and re-owns the device, the others attach and
//! drop kick eventfds (signalling them), call eventfds and the backend. A
//! kick wait entry that a reset forgot would be removed from a freed eventfd
//! later: the debug kernel reports that (KASAN, list debugging), and a leaked
//! reference keeps the module from unloading afterwards.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::driver::*;
use crate::Checks;

const DURATION: Duration = Duration::from_secs(10);

pub fn run(c: &mut Checks) {
    let d = Arc::new(Dev::open());
    let ring = Arc::new(Ring::new(16));
    let stop = Arc::new(AtomicBool::new(false));
    let unexpected = Arc::new(AtomicU64::new(0));
    let resets = Arc::new(AtomicU64::new(0));
    let kicks = Arc::new(AtomicU64::new(0));
    let setup = |d: &Dev, ring: &Ring| {
        d.ioctl(SET_OWNER, std::ptr::null());
        d.mem_table(&[IDENTITY], 1, 0);
        d.state(SET_VRING_NUM, TRANSMITQ, 16);
        d.vring_addr(TRANSMITQ, 0, ring.desc(), ring.used(), ring.avail());
    };
    setup(&d, &ring);

    let mut threads = Vec::new();
    {
        let (d, ring, stop, resets, unexpected) =
            (d.clone(), ring.clone(), stop.clone(), resets.clone(), unexpected.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if d.ioctl(RESET_OWNER, std::ptr::null()) != 0 {
                    unexpected.fetch_add(1, Ordering::Relaxed);
                }
                setup(&d, &ring);
                resets.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Kicks: attach, signal, close; EPERM while the device has no owner.
    {
        let (d, stop, kicks, unexpected) = (d.clone(), stop.clone(), kicks.clone(), unexpected.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let kick = EventFd::new();
                match d.file(SET_VRING_KICK, TRANSMITQ, kick.fd()) {
                    0 | libc::EPERM => {}
                    _ => _ = unexpected.fetch_add(1, Ordering::Relaxed),
                }
                kick.signal();
                drop(kick);
                kicks.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Calls and the backend: EPERM without an owner, EFAULT before the ring
    // is set up again, EBUSY for nothing here.
    {
        let (d, stop, unexpected) = (d.clone(), stop.clone(), unexpected.clone());
        threads.push(std::thread::spawn(move || {
            let null = OpenOptions::new().write(true).open("/dev/null").unwrap();
            while !stop.load(Ordering::Relaxed) {
                let call = EventFd::new();
                let rcs = [
                    d.file(SET_VRING_CALL, TRANSMITQ, call.fd()),
                    d.file(SET_BACKEND, TRANSMITQ, null.as_raw_fd()),
                    d.file(SET_BACKEND, TRANSMITQ, -1),
                ];
                if rcs.iter().any(|&rc| ![0, libc::EPERM, libc::EFAULT].contains(&rc)) {
                    unexpected.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let start = Instant::now();
    std::thread::sleep(DURATION);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    println!(
        "bench: race: {} RESET_OWNER cycles and {} kick attach/signal/close in {:?}",
        resets.load(Ordering::Relaxed),
        kicks.load(Ordering::Relaxed),
        start.elapsed()
    );
    c.check(
        "race: RESET_OWNER vs SET_VRING_KICK/CALL/SET_BACKEND from other threads, 10 s, only the expected errors",
        unexpected.load(Ordering::Relaxed) == 0 && resets.load(Ordering::Relaxed) > 0,
    );
    // The device still works after all that.
    drop(d);
    let mut after = Driver::transmitq(16);
    let null = OpenOptions::new().write(true).open("/dev/null").unwrap();
    after.attach(null.as_raw_fd());
    let buf = map(4096, libc::PROT_READ);
    after.ring.set_desc(0, buf as u64, 16, 0, 0);
    after.ring.publish(0);
    after.kick.signal();
    c.check("race: a fresh device works afterwards", Driver::wait(2000, || after.ring.used_idx() == 1));
}
