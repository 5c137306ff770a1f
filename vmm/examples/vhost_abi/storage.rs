//! Backend files that are storage (a regular file here; ext4 and a block
//! device are in e2e/in-vm.sh) and pipes whose owner takes back their
//! FMODE_NOWAIT: a file that fails stops its queue with the err eventfd, and
//! nothing unwritten is used; a regular file's end ends the input.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;

use crate::driver::*;
use crate::hostile::{pattern, pipe};
use crate::Checks;

pub fn run(c: &mut Checks) {
    wrong_mode(c);
    file_too_large(c);
    file_input(c);
    spliced_pipes(c);
}

/// A regular file must be open for the queue's direction.
fn wrong_mode(c: &mut Checks) {
    let path = "/tmp/vhost-abi-mode";
    File::create(path).unwrap().write_all(b"input").unwrap();
    let read_only = File::open(path).unwrap();
    let write_only = OpenOptions::new().write(true).open(path).unwrap();
    let tx = Driver::transmitq(16);
    c.expect("SET_BACKEND transmitq with a regular file open read-only", tx.attach(read_only.as_raw_fd()), libc::EBADF);
    let rx = Driver::receiveq(16);
    c.expect(
        "SET_BACKEND receiveq with a regular file open write-only",
        rx.attach(write_only.as_raw_fd()),
        libc::EBADF,
    );
    let _ = std::fs::remove_file(path);
}

/// RLIMIT_FSIZE (the owner's, which its worker shares) lets 10 KiB of four
/// 4 KiB chains into the file: the write past it fails (EFBIG; SIGXFSZ is
/// ignored here, as a VMM that wants the error would), the queue stops, the
/// two chains written whole are used and the other two are given back.
fn file_too_large(c: &mut Checks) {
    const LIMIT: u64 = 10240;
    let path = "/tmp/vhost-abi-efbig";
    let mut d = Driver::transmitq(16);
    let out = File::create(path).unwrap();
    c.expect("EFBIG: SET_BACKEND with a regular file", d.attach(out.as_raw_fd()), 0);
    let buf = pattern(4 * 4096);
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid pointers; a signal disposition and a limit of this
    // process, both restored below.
    let handler = unsafe {
        libc::getrlimit(libc::RLIMIT_FSIZE, &mut old);
        libc::setrlimit(libc::RLIMIT_FSIZE, &libc::rlimit { rlim_cur: LIMIT, rlim_max: old.rlim_max });
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN)
    };
    for i in 0..4u16 {
        d.ring.set_desc(i, buf as u64 + 4096 * u64::from(i), 4096, 0, 0);
        d.ring.publish(i);
    }
    d.kick.signal();
    let stopped = Driver::wait(3000, || d.err.take() > 0);
    // SAFETY: as above.
    unsafe {
        libc::setrlimit(libc::RLIMIT_FSIZE, &old);
        libc::signal(libc::SIGXFSZ, handler);
    }
    c.check("EFBIG: a write past RLIMIT_FSIZE stops the queue (err eventfd)", stopped);
    c.check(
        "EFBIG: the two chains written whole are used, the other two are not",
        d.ring.used_idx() == 2 && d.ring.used_elem(0) == (0, 0) && d.ring.used_elem(1) == (1, 0),
    );
    let mut base = words(&[TRANSMITQ, 99]);
    let rc = d.dev.ioctl(GET_VRING_BASE, base.as_mut_ptr());
    c.check("EFBIG: GET_VRING_BASE is 2, the chains not used given back", rc == 0 && base == words(&[TRANSMITQ, 2]));
    let written = std::fs::read(path).unwrap_or_default();
    // SAFETY: the pattern buffer holds 16 KiB.
    let want = unsafe { std::slice::from_raw_parts(buf, LIMIT as usize) };
    c.check("EFBIG: the file holds the first 10 KiB, byte-exact", written == want);
    let _ = std::fs::remove_file(path);
}

/// A regular file as input: read into the buffers as they come, its end
/// ends the input without an error, and bytes past the end after a
/// truncation are never read.
fn file_input(c: &mut Checks) {
    let path = "/tmp/vhost-abi-input";
    let data: Vec<u8> = (0..10000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(path, &data).unwrap();
    let mut d = Driver::receiveq(16);
    let input = File::open(path).unwrap();
    c.expect("file input: SET_BACKEND with a regular file", d.attach(input.as_raw_fd()), 0);
    let buf = map(16 * 1024, libc::PROT_READ | libc::PROT_WRITE);
    for i in 0..12u16 {
        d.ring.set_desc(i, buf as u64 + 1024 * u64::from(i), 1024, DESC_F_WRITE, 0);
        d.ring.publish(i);
    }
    d.kick.signal();
    // SAFETY: inside the 16 KiB mapping, which lives for the process.
    let got = || unsafe { std::slice::from_raw_parts(buf, data.len()).to_vec() };
    let lens_ok = || (0..10u16).all(|i| d.ring.used_elem(i) == (u32::from(i), if i < 9 { 1024 } else { 784 }));
    c.check(
        "file input: 10000 bytes fill ten 1 KiB buffers (the last with 784), byte-exact",
        Driver::wait(3000, || d.ring.used_idx() == 10) && lens_ok() && got() == data,
    );
    c.check(
        "file input: at its end the other buffers stay posted, no error",
        !Driver::wait(200, || d.ring.used_idx() != 10) && d.err.take() == 0,
    );

    // Truncated while it is read: a short file, half read, then cut to less
    // than was read.
    std::fs::write(path, &data[..4096]).unwrap();
    let mut d = Driver::receiveq(16);
    let input = File::open(path).unwrap();
    d.attach(input.as_raw_fd());
    for i in 0..2u16 {
        d.ring.set_desc(i, buf as u64 + 1024 * u64::from(i), 1024, DESC_F_WRITE, 0);
        d.ring.publish(i);
    }
    d.kick.signal();
    let half = Driver::wait(3000, || d.ring.used_idx() == 2);
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(1024).unwrap();
    for i in 2..4u16 {
        d.ring.set_desc(i, buf as u64 + 1024 * u64::from(i), 1024, DESC_F_WRITE, 0);
        d.ring.publish(i);
    }
    d.kick.signal();
    c.check(
        "file input truncated below what was read: nothing more is read, no error",
        half && !Driver::wait(200, || d.ring.used_idx() != 2) && d.err.take() == 0,
    );
    let _ = std::fs::remove_file(path);
}

/// vmsplice() on a pipe clears its FMODE_NOWAIT (fs/splice.c: splice does
/// not honour it). Before the attach the pipe is refused; after it, the
/// worker's next RWF_NOWAIT read or write fails (EOPNOTSUPP) and stops the
/// queue, where a write or read that waited would hold the queue for as
/// long as the pipe's other end likes.
fn spliced_pipes(c: &mut Checks) {
    // One byte into or out of the pipe, never waiting; the byte count or -1.
    let splice = |f: &File, buf: *mut u8| {
        let iov = libc::iovec { iov_base: buf.cast(), iov_len: 1 };
        // SAFETY: one iovec of one byte in a live mapping.
        unsafe { libc::vmsplice(f.as_raw_fd(), &iov, 1, libc::SPLICE_F_NONBLOCK) }
    };
    let byte = map(4096, libc::PROT_READ | libc::PROT_WRITE);

    let (r, w) = pipe();
    splice(&w, byte);
    splice(&r, byte);
    let tx = Driver::transmitq(16);
    c.expect("SET_BACKEND transmitq with a pipe that was vmspliced into", tx.attach(w.as_raw_fd()), libc::EINVAL);
    let rx = Driver::receiveq(16);
    c.expect("SET_BACKEND receiveq with a pipe that was vmspliced from", rx.attach(r.as_raw_fd()), libc::EINVAL);

    // transmitq: the pipe has room, but the write may not wait any more.
    let (r, w) = pipe();
    let mut d = Driver::transmitq(16);
    c.expect("vmsplice after attach: SET_BACKEND transmitq with a pipe", d.attach(w.as_raw_fd()), 0);
    let n = splice(&w, byte);
    let buf = pattern(4096);
    d.ring.set_desc(0, buf as u64, 4096, 0, 0);
    d.ring.publish(0);
    d.kick.signal();
    c.check(
        &format!("vmsplice into the attached output pipe ({n}), then a chain: the queue stops, nothing used"),
        Driver::wait(3000, || d.err.take() > 0) && d.ring.used_idx() == 0,
    );
    drop(r);

    // receiveq: the worker waits for input (EAGAIN, polled); vmsplice from
    // the empty pipe (it only clears the flag), then a byte arrives.
    let (r, mut w) = pipe();
    let mut d = Driver::receiveq(16);
    c.expect("vmsplice after attach: SET_BACKEND receiveq with a pipe", d.attach(r.as_raw_fd()), 0);
    let rbuf = map(4096, libc::PROT_READ | libc::PROT_WRITE);
    d.ring.set_desc(0, rbuf as u64, 1024, DESC_F_WRITE, 0);
    d.ring.set_desc(1, rbuf as u64 + 1024, 1024, DESC_F_WRITE, 0);
    d.ring.publish(0);
    d.ring.publish(1);
    d.kick.signal();
    let idle = !Driver::wait(100, || d.ring.used_idx() != 0);
    let n = splice(&r, rbuf);
    w.write_all(b"x").unwrap();
    let stopped = Driver::wait(3000, || d.err.take() > 0) && d.ring.used_idx() == 0;
    // A worker that read the byte anyway now waits in the pipe for more:
    // the end of the input lets it go.
    drop(w);
    c.check(
        &format!("vmsplice from the attached input pipe ({n}), then a byte: the queue stops, nothing used"),
        idle && stopped,
    );
}
