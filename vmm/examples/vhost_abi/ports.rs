//! The ports' queues (MULTIPORT) in the kernel: any queue but the control
//! queues takes a file, numbered as the driver numbers them; a socket whose
//! peer left keeps the driver's bytes unused (no error, no loss) until the
//! owner attaches the next peer's socket, which gets them whole.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use crate::driver::*;
use crate::Checks;

/// Port 30's receiveq and transmitq: the last queues of 32 ports.
const LAST_RECEIVEQ: u32 = 62;
const LAST_TRANSMITQ: u32 = 63;

pub fn run(c: &mut Checks) {
    indexes(c);
    peer_leaves(c);
}

/// Which queue indexes take a file.
fn indexes(c: &mut Checks) {
    let d = Driver::transmitq(16);
    let (mine, _peer) = UnixStream::pair().unwrap();
    let fd = mine.as_raw_fd();
    for (what, queue) in
        [("2 (the control receiveq)", 2), ("3 (the control transmitq)", 3), ("64", 64), ("u32::MAX", u32::MAX)]
    {
        c.expect(&format!("ports: SET_BACKEND on queue {what}"), d.dev.file(SET_BACKEND, queue, fd), libc::ENOBUFS);
    }
    c.expect("ports: SET_VRING_NUM on queue 64", d.dev.state(SET_VRING_NUM, 64, 16), libc::ENOBUFS);
    c.expect(
        "ports: SET_BACKEND on queue 63 before its ring is set up",
        d.dev.file(SET_BACKEND, LAST_TRANSMITQ, fd),
        libc::EFAULT,
    );
    c.expect("ports: SET_BACKEND on port 0's transmitq with a socket", d.attach(fd), 0);
    c.expect("ports: ... detached", d.attach(-1), 0);
}

/// Bytes posted on port 30's transmitq go to the socket; its peer leaves;
/// what is posted then is neither used nor an error; a new socket gets it.
fn peer_leaves(c: &mut Checks) {
    let mut d = Driver::with_features(LAST_TRANSMITQ, 16, VERSION_1);
    let buf = map(4096, libc::PROT_READ | libc::PROT_WRITE);
    // SAFETY: a fresh mapping of 4096 bytes.
    unsafe { std::ptr::copy_nonoverlapping(b"hello, world".as_ptr(), buf, 12) };
    let (mine, mut peer) = UnixStream::pair().unwrap();
    c.expect("ports: queue 63 takes a socket", d.attach(mine.as_raw_fd()), 0);
    d.ring.set_desc(0, buf as u64, 5, 0, 0);
    d.ring.publish(0);
    d.kick.signal();
    let mut got = [0u8; 16];
    c.check("ports: queue 63's chain is used", Driver::wait(2000, || d.ring.used_idx() == 1));
    peer.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
    let n = peer.read(&mut got).unwrap_or(0);
    c.check("ports: ... and its bytes are in the socket", &got[..n] == b"hello");
    drop(peer);
    d.ring.set_desc(1, buf as u64 + 5, 7, 0, 0);
    d.ring.publish(1);
    d.kick.signal();
    c.check(
        "ports: the peer gone, a chain posted is not used and no error is signalled",
        !Driver::wait(200, || d.ring.used_idx() != 1) && d.err.take() == 0,
    );
    let (mine2, mut peer2) = UnixStream::pair().unwrap();
    c.expect("ports: the next peer's socket is attached", d.attach(mine2.as_raw_fd()), 0);
    c.check("ports: ... and the chain is used", Driver::wait(2000, || d.ring.used_idx() == 2));
    peer2.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
    let n = peer2.read(&mut got).unwrap_or(0);
    c.check("ports: ... its bytes whole in the new socket", &got[..n] == b", world" && d.err.take() == 0);
    c.expect("ports: detach", d.attach(-1), 0);

    // Port 30's receiveq: a peer that closes is the end of the input.
    let mut r = Driver::with_features(LAST_RECEIVEQ, 16, VERSION_1);
    let (mine, mut peer) = UnixStream::pair().unwrap();
    std::io::Write::write_all(&mut peer, b"from the host").unwrap();
    drop(peer);
    r.ring.set_desc(0, buf as u64 + 1024, 64, DESC_F_WRITE, 0);
    r.ring.publish(0);
    r.ring.set_desc(1, buf as u64 + 2048, 64, DESC_F_WRITE, 0);
    r.ring.publish(1);
    c.expect("ports: queue 62 takes a socket", r.attach(mine.as_raw_fd()), 0);
    c.check(
        "ports: queue 62 gets the bytes its peer sent before it closed, then nothing more, no error",
        Driver::wait(2000, || r.ring.used_idx() == 1)
            && !Driver::wait(100, || r.ring.used_idx() != 1)
            && r.ring.used_elem(0).1 == 13
            && r.err.take() == 0,
    );
    c.expect("ports: detach queue 62", r.attach(-1), 0);
}
