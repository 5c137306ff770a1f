//! VIRTIO_RING_F_EVENT_IDX in the kernel: the worker signals call only when
//! the used index passes the driver's used_event (vhost_notify), and asks
//! for the next kick through avail_event (vhost_enable_notify), leaving the
//! used flags alone.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;

use crate::driver::*;
use crate::Checks;

pub fn run(c: &mut Checks) {
    let mut d = Driver::with_features(TRANSMITQ, 16, VERSION_1 | EVENT_IDX);
    let null = OpenOptions::new().write(true).open("/dev/null").unwrap();
    c.expect("event_idx: SET_BACKEND with /dev/null", d.attach(null.as_raw_fd()), 0);
    let buf = map(4096, libc::PROT_READ | libc::PROT_WRITE);
    for i in 0..4 {
        d.ring.set_desc(i, buf as u64, 16, 0, 0);
    }
    // Sends chain `head` and waits until it is used; returns the calls signalled.
    let send = |d: &mut Driver, head: u16| {
        d.ring.publish(head);
        d.kick.signal();
        let used = Driver::wait(1000, || d.ring.used_idx() == head + 1);
        let mut calls = 0;
        Driver::wait(50, || {
            calls += d.call.take();
            false
        });
        (used, calls)
    };
    d.ring.set_used_event(1);
    c.check("event_idx: the first used chain signals call (none signalled before)", send(&mut d, 0) == (true, 1));
    c.check("event_idx: after draining, avail_event asks for a kick at the next chain (1)", d.ring.avail_event() == 1);
    c.check("event_idx: used entry 1 passes used_event 1: call", send(&mut d, 1) == (true, 1));
    c.check("event_idx: used entry 2 does not pass used_event 1: no call", send(&mut d, 2) == (true, 0));
    d.ring.set_used_event(3);
    c.check("event_idx: used_event moved to 3: entry 3 signals call", send(&mut d, 3) == (true, 1));
    c.check("event_idx: avail_event follows the ring (4)", d.ring.avail_event() == 4);
    c.check("event_idx: the used flags stay 0 (NO_NOTIFY is for rings without EVENT_IDX)", d.ring.used_flags() == 0);
    c.check("event_idx: no queue error", d.err.take() == 0);
}
