//! receiveq in the kernel: the worker reads its backend file into the
//! buffers posted here, a chain per read, and marks each used with the byte
//! count. Which files it takes, input before and after the buffers, the end
//! of the input, and the chains a hostile driver posts.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};

use crate::driver::*;
use crate::Checks;

pub fn run(c: &mut Checks) {
    input_files(c);
    pipe_input(c);
    hostile_chains(c);
}

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: a valid array; the result is checked.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2");
    // SAFETY: two new descriptors nobody else owns.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// The input must be readable without waiting on anyone, or be storage.
fn input_files(c: &mut Checks) {
    let d = Driver::receiveq(16);
    let console = OpenOptions::new().read(true).open("/dev/console").unwrap();
    c.expect("receiveq: SET_BACKEND with a tty", d.attach(console.as_raw_fd()), libc::EINVAL);
    let vmm_console = OpenOptions::new().read(true).open("/dev/vmm-console").unwrap();
    c.expect(
        "receiveq: SET_BACKEND with /dev/vmm-console (no read_iter)",
        d.attach(vmm_console.as_raw_fd()),
        libc::EINVAL,
    );
    let (reader, writer) = pipe();
    c.expect("receiveq: SET_BACKEND with a pipe's write end", d.attach(writer.as_raw_fd()), libc::EBADF);
    c.expect(
        "receiveq: SET_BACKEND with the device's own fd (it has no read)",
        d.attach(d.dev.file.as_raw_fd()),
        libc::EBADF,
    );
    c.expect("receiveq: SET_BACKEND with a pipe", d.attach(reader.as_raw_fd()), 0);
    c.expect("receiveq: SET_VRING_NUM with a backend attached", d.dev.state(SET_VRING_NUM, RECEIVEQ, 8), libc::EBUSY);
    c.expect("receiveq: SET_BACKEND detach", d.attach(-1), 0);
}

/// Bytes written before the buffers wait in the pipe; buffers posted before
/// the bytes wait for them, with no kick; the end of the input uses nothing.
fn pipe_input(c: &mut Checks) {
    let mut d = Driver::receiveq(16);
    let buf = map(4096, libc::PROT_READ | libc::PROT_WRITE);
    let (reader, mut writer) = pipe();
    writer.write_all(b"hello, world").unwrap();
    c.expect("receiveq: attach a pipe holding 12 bytes", d.attach(reader.as_raw_fd()), 0);
    c.check(
        "receiveq: no buffers: nothing used, no call",
        !Driver::wait(50, || d.ring.used_idx() != 0) && d.call.take() == 0,
    );
    for i in 0..4u16 {
        d.ring.set_desc(i, buf as u64 + 8 * u64::from(i), 8, DESC_F_WRITE, 0);
        d.ring.publish(i);
    }
    d.kick.signal();
    let bytes = |at: usize, n: usize| {
        // SAFETY: inside the 4 KiB mapping, which lives for the process.
        unsafe { std::slice::from_raw_parts(buf.add(at), n).to_vec() }
    };
    c.check(
        "receiveq: after the kick, 8 + 4 bytes in the first two buffers, used with their counts, a call",
        Driver::wait(2000, || d.ring.used_idx() == 2)
            && d.ring.used_elem(0) == (0, 8)
            && d.ring.used_elem(1) == (1, 4)
            && bytes(0, 8) == b"hello, w"
            && bytes(8, 4) == b"orld"
            && Driver::wait(1000, || d.call.take() > 0),
    );
    writer.write_all(b"!").unwrap();
    c.check(
        "receiveq: a byte written later fills the next buffer without a kick",
        Driver::wait(2000, || d.ring.used_idx() == 3) && d.ring.used_elem(2) == (2, 1) && bytes(16, 1) == b"!",
    );
    drop(writer);
    c.check(
        "receiveq: the end of the input: the last buffer stays posted, no error",
        !Driver::wait(100, || d.ring.used_idx() != 3) && d.err.take() == 0,
    );
}

/// A descriptor: address, length, flags, next.
type Desc = (u64, u32, u16, u16);

/// Device-readable, outside the memory table, a loop, more than 4 GiB: the
/// queue stops (err signalled) and nothing is used; a zero-length buffer is
/// used with 0 bytes, as the VMM's own device does.
fn hostile_chains(c: &mut Checks) {
    const GIB: u64 = 1 << 30;
    let buf = map(4096, libc::PROT_READ | libc::PROT_WRITE) as u64;
    let huge = map(GIB as usize, libc::PROT_READ | libc::PROT_WRITE) as u64;
    let cases: [(&str, &[Desc]); 4] = [
        ("a device-readable buffer", &[(buf, 64, 0, 0)]),
        ("a buffer outside the memory table", &[(0x10, 64, DESC_F_WRITE, 0)]),
        ("a chain that loops", &[(buf, 64, DESC_F_WRITE | DESC_F_NEXT, 0)]),
        (
            "a chain of more than 4 GiB",
            &[
                (huge, GIB as u32 - 1, DESC_F_WRITE | DESC_F_NEXT, 1),
                (huge, GIB as u32 - 1, DESC_F_WRITE | DESC_F_NEXT, 2),
                (huge, GIB as u32 - 1, DESC_F_WRITE | DESC_F_NEXT, 3),
                (huge, GIB as u32 - 1, DESC_F_WRITE | DESC_F_NEXT, 4),
                (huge, 5, DESC_F_WRITE, 0),
            ],
        ),
    ];
    for (what, chain) in cases {
        let mut d = Driver::receiveq(16);
        let (reader, mut writer) = pipe();
        writer.write_all(b"input").unwrap();
        d.attach(reader.as_raw_fd());
        for (i, &(addr, len, flags, next)) in chain.iter().enumerate() {
            d.ring.set_desc(i as u16, addr, len, flags, next);
        }
        d.ring.publish(0);
        d.kick.signal();
        c.check(
            &format!("receiveq: {what}: the queue stops, nothing used"),
            Driver::wait(5000, || d.err.take() > 0) && d.ring.used_idx() == 0,
        );
    }
    let mut d = Driver::receiveq(16);
    let (reader, mut writer) = pipe();
    writer.write_all(b"input").unwrap();
    d.attach(reader.as_raw_fd());
    d.ring.set_desc(0, buf, 0, DESC_F_WRITE, 0);
    d.ring.set_desc(1, buf, 64, DESC_F_WRITE, 0);
    d.ring.publish(0);
    d.ring.publish(1);
    d.kick.signal();
    c.check(
        "receiveq: a zero-length buffer is used with 0 bytes, the next one gets the input",
        Driver::wait(2000, || d.ring.used_idx() == 2)
            && d.ring.used_elem(0) == (0, 0)
            && d.ring.used_elem(1) == (1, 5)
            && d.err.take() == 0,
    );
}
