//! Checks /dev/vhost-console and /dev/vmm-console from outside, as a hostile
//! owner would use them: the error each bad call must get, ownership, the
//! ring buffer's overwrite rule (here); files of every kind as kicks and
//! backends, outputs that never drain, huge chains, busy-poll abuse, yields
//! (hostile.rs); input (receive.rs); regular files that fail or end, pipes
//! that lose FMODE_NOWAIT (storage.rs); ioctls racing RESET_OWNER
//! (race.rs); /dev/vhost-blk's disk and requests (blk.rs). Run by e2e/in-vm.sh;
//! prints `ok`/`not ok` lines and `bench:` figures, and exits non-zero on any
//! failure.

mod blk;
mod driver;
mod event_idx;
mod hostile;
mod ports;
mod race;
mod receive;
mod storage;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

use driver::*;

pub struct Checks {
    failed: usize,
    passed: usize,
}

impl Checks {
    pub fn check(&mut self, what: &str, ok: bool) {
        if ok {
            self.passed += 1;
            println!("ok - abi: {what}");
        } else {
            self.failed += 1;
            println!("not ok - abi: {what}");
        }
    }

    /// The ioctl fails with `errno` (0: succeeds).
    fn errno(&mut self, what: &str, f: &File, cmd: u64, arg: *const u8, errno: i32) {
        // SAFETY: `arg` points at a buffer at least as large as the command's
        // size (or is deliberately bad, which the kernel must reject).
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), cmd as _, arg) };
        let got = if rc < 0 { driver::errno() } else { 0 };
        self.expect(what, got, errno);
    }

    /// `got` is the errno `want` (0: success).
    pub fn expect(&mut self, what: &str, got: i32, want: i32) {
        let label = format!("{what} -> {}", if want == 0 { "0".into() } else { name(want) });
        self.check(&if got == want { label } else { format!("{label} (got {})", name(got)) }, got == want);
    }
}

pub fn name(errno: i32) -> String {
    match errno {
        0 => "success".into(),
        libc::EPERM => "EPERM".into(),
        libc::EBADF => "EBADF".into(),
        libc::EBUSY => "EBUSY".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::EFAULT => "EFAULT".into(),
        libc::ENOTTY => "ENOTTY".into(),
        libc::ENOBUFS => "ENOBUFS".into(),
        libc::E2BIG => "E2BIG".into(),
        libc::EOPNOTSUPP => "EOPNOTSUPP".into(),
        libc::EAGAIN => "EAGAIN".into(),
        n => format!("errno {n}"),
    }
}

fn main() {
    let mut c = Checks { failed: 0, passed: 0 };
    basic(&mut c);
    hostile::run(&mut c);
    receive::run(&mut c);
    storage::run(&mut c);
    event_idx::run(&mut c);
    race::run(&mut c);
    ports::run(&mut c);
    blk::run(&mut c);
    println!("vhost-abi: {} passed, {} failed", c.passed, c.failed);
    std::process::exit(if c.failed == 0 { 0 } else { 1 });
}

/// The ioctls one by one: each error, ownership, RESET_OWNER; the ring buffer.
fn basic(c: &mut Checks) {
    let open =
        || OpenOptions::new().read(true).write(true).open("/dev/vhost-console").expect("open /dev/vhost-console");
    let dev = open();

    let mut features = [0u8; 8];
    c.errno("GET_FEATURES before SET_OWNER", &dev, GET_FEATURES, features.as_mut_ptr(), 0);
    let f = u64::from_ne_bytes(features);
    c.check("features are VERSION_1 | IN_ORDER | EVENT_IDX", f == (1 << 32 | 1 << 35 | 1 << 29));
    c.errno("SET_VRING_NUM before SET_OWNER", &dev, SET_VRING_NUM, words(&[1, 16]).as_ptr(), libc::EPERM);
    c.errno("SET_OWNER", &dev, SET_OWNER, std::ptr::null(), 0);
    c.errno("SET_OWNER again", &dev, SET_OWNER, std::ptr::null(), libc::EBUSY);
    c.errno("unknown ioctl", &dev, UNKNOWN, words(&[0, 0]).as_ptr(), libc::ENOTTY);
    c.errno(
        "SET_FEATURES with an unknown bit",
        &dev,
        SET_FEATURES,
        (1u64 << 40).to_ne_bytes().as_ptr(),
        libc::EOPNOTSUPP,
    );
    c.errno("SET_FEATURES VERSION_1", &dev, SET_FEATURES, (1u64 << 32).to_ne_bytes().as_ptr(), 0);
    c.errno("SET_VRING_NUM queue 64", &dev, SET_VRING_NUM, words(&[64, 16]).as_ptr(), libc::ENOBUFS);
    c.errno("SET_VRING_NUM size 3", &dev, SET_VRING_NUM, words(&[1, 3]).as_ptr(), libc::EINVAL);
    c.errno("SET_VRING_NUM size 0", &dev, SET_VRING_NUM, words(&[1, 0]).as_ptr(), libc::EINVAL);
    c.errno("SET_VRING_NUM size 65536", &dev, SET_VRING_NUM, words(&[1, 65536]).as_ptr(), libc::EINVAL);
    c.errno("SET_VRING_NUM size 16", &dev, SET_VRING_NUM, words(&[1, 16]).as_ptr(), 0);
    c.errno("SET_VRING_NUM from a bad pointer", &dev, SET_VRING_NUM, 8 as *const u8, libc::EFAULT);
    c.errno("SET_VRING_BASE 65536", &dev, SET_VRING_BASE, words(&[1, 65536]).as_ptr(), libc::EINVAL);
    c.errno("SET_VRING_BASE 7", &dev, SET_VRING_BASE, words(&[1, 7]).as_ptr(), 0);
    for (us, want) in [(4_000_000_000, libc::EINVAL), (1_000_001, libc::EINVAL), (1_000_000, 0), (0, 0)] {
        let what = format!("SET_VRING_BUSYLOOP_TIMEOUT {us} us");
        c.errno(&what, &dev, SET_VRING_BUSYLOOP_TIMEOUT, words(&[1, us]).as_ptr(), want);
    }
    let mut base = words(&[1, 0]);
    c.errno("GET_VRING_BASE", &dev, GET_VRING_BASE, base.as_mut_ptr(), 0);
    c.check("GET_VRING_BASE returns 7", base == words(&[1, 7]));

    // Rings in this process's memory, then SET_VRING_ADDR.
    let rings = vec![0u64; 1024];
    let at = rings.as_ptr() as u64;
    let addr = |desc: u64, used: u64, avail: u64, flags: u32| {
        let mut a = words(&[1, flags]);
        for v in [desc, used, avail, 0u64] {
            a.extend_from_slice(&v.to_ne_bytes());
        }
        a
    };
    c.errno(
        "SET_VRING_ADDR misaligned table",
        &dev,
        SET_VRING_ADDR,
        addr(at + 8, at + 0x1000, at + 0x800, 0).as_ptr(),
        libc::EINVAL,
    );
    c.errno(
        "SET_VRING_ADDR with LOG",
        &dev,
        SET_VRING_ADDR,
        addr(at, at + 0x1000, at + 0x800, 1).as_ptr(),
        libc::EOPNOTSUPP,
    );
    c.errno(
        "SET_VRING_ADDR with an unknown flag",
        &dev,
        SET_VRING_ADDR,
        addr(at, at + 0x1000, at + 0x800, 2).as_ptr(),
        libc::EOPNOTSUPP,
    );
    c.errno(
        "SET_VRING_ADDR kernel address",
        &dev,
        SET_VRING_ADDR,
        addr(0xffff_8880_0000_0000, at + 0x1000, at + 0x800, 0).as_ptr(),
        libc::EINVAL,
    );
    c.errno("SET_VRING_ADDR", &dev, SET_VRING_ADDR, addr(at, at + 0x1000, at + 0x800, 0).as_ptr(), 0);

    // SET_MEM_TABLE: too many regions, an empty one, overlapping ones, a kernel address.
    let table = |regions: &[(u64, u64, u64)], n: u32| {
        let mut t = words(&[n, 0]);
        for &(gpa, size, uaddr) in regions {
            for v in [gpa, size, uaddr, 0] {
                t.extend_from_slice(&v.to_ne_bytes());
            }
        }
        t
    };
    c.errno("SET_MEM_TABLE with 65 regions", &dev, SET_MEM_TABLE, table(&[], 65).as_ptr(), libc::E2BIG);
    let mut padded = table(&[(0, 0x2000, at)], 1);
    padded[4] = 1;
    c.errno("SET_MEM_TABLE with non-zero padding", &dev, SET_MEM_TABLE, padded.as_ptr(), libc::EOPNOTSUPP);
    c.errno("SET_MEM_TABLE empty region", &dev, SET_MEM_TABLE, table(&[(0, 0, at)], 1).as_ptr(), libc::EINVAL);
    c.errno(
        "SET_MEM_TABLE overlap",
        &dev,
        SET_MEM_TABLE,
        table(&[(0, 0x2000, at), (0x1000, 0x1000, at)], 2).as_ptr(),
        libc::EINVAL,
    );
    c.errno(
        "SET_MEM_TABLE kernel address",
        &dev,
        SET_MEM_TABLE,
        table(&[(0, 0x1000, 0xffff_8880_0000_0000)], 1).as_ptr(),
        libc::EFAULT,
    );
    c.errno("SET_MEM_TABLE", &dev, SET_MEM_TABLE, table(&[(0, 0x2000, at)], 1).as_ptr(), 0);

    // The backend: queue checks, then a file that must be writable.
    let read_only = File::open("/dev/null").unwrap();
    let sink = OpenOptions::new().write(true).open("/dev/vmm-console").unwrap();
    c.errno("SET_VRING_KICK not an fd", &dev, SET_VRING_KICK, words(&[1, 9999]).as_ptr(), libc::EBADF);
    c.errno(
        "SET_BACKEND on receiveq with a write-only file",
        &dev,
        SET_BACKEND,
        words(&[0, sink.as_raw_fd() as u32]).as_ptr(),
        libc::EBADF,
    );
    c.errno(
        "SET_BACKEND queue 2 (the control receiveq)",
        &dev,
        SET_BACKEND,
        words(&[2, sink.as_raw_fd() as u32]).as_ptr(),
        libc::ENOBUFS,
    );
    c.errno(
        "SET_BACKEND read-only file",
        &dev,
        SET_BACKEND,
        words(&[1, read_only.as_raw_fd() as u32]).as_ptr(),
        libc::EBADF,
    );
    c.errno("SET_BACKEND", &dev, SET_BACKEND, words(&[1, sink.as_raw_fd() as u32]).as_ptr(), 0);
    c.errno("SET_VRING_NUM with a backend attached", &dev, SET_VRING_NUM, words(&[1, 8]).as_ptr(), libc::EBUSY);
    c.errno("SET_BACKEND detach", &dev, SET_BACKEND, words(&[1, u32::MAX]).as_ptr(), 0);

    // Only the owner's process may configure the device.
    // SAFETY: fork in a single-threaded program; the child only makes an
    // ioctl and exits.
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: a valid fd, a live 8-byte argument.
            let rc = unsafe { libc::ioctl(dev.as_raw_fd(), SET_VRING_NUM as _, words(&[1, 8]).as_ptr()) };
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            std::process::exit(if rc < 0 && errno == libc::EPERM { 0 } else { 1 });
        }
        pid => {
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            c.check("another process gets EPERM", libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
    }
    c.errno("RESET_OWNER", &dev, RESET_OWNER, std::ptr::null(), 0);
    c.errno("SET_VRING_NUM after RESET_OWNER", &dev, SET_VRING_NUM, words(&[1, 16]).as_ptr(), libc::EPERM);
    c.errno("SET_OWNER after RESET_OWNER", &dev, SET_OWNER, std::ptr::null(), 0);
    drop(dev);

    // /dev/vmm-console keeps the newest 64 KiB.
    let mut console = OpenOptions::new().read(true).write(true).open("/dev/vmm-console").unwrap();
    let mut drain = Vec::new();
    console.read_to_end(&mut drain).unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    console.write_all(&data).unwrap();
    let mut back = Vec::new();
    console.read_to_end(&mut back).unwrap();
    c.check("vmm-console keeps the newest 65536 bytes of 100000", back == data[100_000 - 65_536..]);
}
