//! /dev/vhost-blk: the disk the owner attaches (anything but a regular file
//! or a block device refused, a read-only fd refused for a writable disk),
//! and requests posted on the ring as a hostile driver would: each status
//! and used length as the VMM's own device gives them, the file's bytes
//! checked, a chain that is no request stops the queue.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::driver::*;
use crate::Checks;

const PATH: &str = "/dev/vhost-blk";
const SET_BACKEND: u64 = (1 << 30) | (56 << 16) | (0xaf << 8) | 0x60;
const READ_ONLY: u32 = 1;
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const T_DISCARD: u32 = 11;
const T_WRITE_ZEROES: u32 = 13;
/// The disk: 1 MiB, 2048 sectors.
const SECTORS: u64 = 2048;
/// Where the test's buffers live: status bytes at +0, headers at +0x100,
/// data from +0x1000.
const BUF: usize = 0x10_0000;

pub fn run(c: &mut Checks) {
    let Some(img) = image("blk.img") else {
        c.check("blk: a 1 MiB image in /tmp", false);
        return;
    };
    attach(c, &img);
    requests(c, &img);
    race(c, &img);
    killed(c, &img);
    let _ = std::fs::remove_file(img);
}

fn image(name: &str) -> Option<String> {
    let path = format!("/tmp/vhost-abi-{name}");
    let mut f = File::create(&path).ok()?;
    f.write_all(&vec![0xee; (SECTORS * 512) as usize]).ok()?;
    Some(path)
}

/// `struct vhost_blk_backend`.
fn backend(fd: RawFd, flags: u32, capacity: u64, segs: u32, padding: u32) -> Vec<u8> {
    let mut b = words(&[fd as u32, flags]);
    b.extend_from_slice(&capacity.to_ne_bytes());
    b.extend_from_slice(&words(&[1 << 16, segs, 1 << 16, segs]));
    let mut serial = [0u8; 20];
    serial[..9].copy_from_slice(b"vhost-abi");
    b.extend_from_slice(&serial);
    b.extend_from_slice(&padding.to_ne_bytes());
    assert_eq!(b.len(), 56);
    b
}

fn set_backend(d: &Driver, fd: RawFd, flags: u32, capacity: u64) -> i32 {
    d.dev.ioctl(SET_BACKEND, backend(fd, flags, capacity, 1, 0).as_ptr())
}

fn driver() -> Driver {
    Driver::on(Dev::open_path(PATH), 0, 16, VERSION_1)
}

/// What SET_BACKEND takes and refuses.
fn attach(c: &mut Checks, img: &str) {
    let fresh = Dev::open_path(PATH);
    c.expect("blk: SET_OWNER", fresh.ioctl(SET_OWNER, std::ptr::null()), 0);
    let rw = OpenOptions::new().read(true).write(true).open(img).unwrap();
    c.expect(
        "blk: SET_BACKEND before the ring is set up",
        fresh.ioctl(SET_BACKEND, backend(rw.as_raw_fd(), 0, SECTORS, 1, 0).as_ptr()),
        libc::EFAULT,
    );
    let d = driver();
    let ro = File::open(img).unwrap();
    let dir = File::open("/tmp").unwrap();
    let (sock, _peer) = UnixStream::pair().unwrap();
    let mut pipe = [0; 2];
    // SAFETY: a valid array for the two descriptors.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    let ptmx = OpenOptions::new().read(true).write(true).open("/dev/ptmx").ok();
    let own = d.dev.file.as_raw_fd();
    let mut cases = vec![("a pipe", pipe[0]), ("a socket", sock.as_raw_fd()), ("a directory", dir.as_raw_fd())];
    cases.push(("the device's own fd", own));
    if let Some(t) = &ptmx {
        cases.push(("a tty (/dev/ptmx)", t.as_raw_fd()));
    }
    for (what, fd) in cases {
        c.expect(&format!("blk: SET_BACKEND with {what}"), set_backend(&d, fd, 0, SECTORS), libc::EINVAL);
    }
    c.expect("blk: SET_BACKEND with fd 9999", set_backend(&d, 9999, 0, SECTORS), libc::EBADF);
    c.expect("blk: a read-only fd for a writable disk", set_backend(&d, ro.as_raw_fd(), 0, SECTORS), libc::EINVAL);
    c.expect("blk: a read-only fd for a read-only disk", set_backend(&d, ro.as_raw_fd(), READ_ONLY, SECTORS), 0);
    c.expect("blk: a capacity past the file's end", set_backend(&d, rw.as_raw_fd(), 0, SECTORS + 1), libc::EINVAL);
    c.expect("blk: a capacity of 2^63 bytes", set_backend(&d, rw.as_raw_fd(), 0, 1 << 54), libc::EINVAL);
    c.expect("blk: an unknown flag", set_backend(&d, rw.as_raw_fd(), 2, SECTORS), libc::EINVAL);
    let bad = |segs, padding| d.dev.ioctl(SET_BACKEND, backend(rw.as_raw_fd(), 0, SECTORS, segs, padding).as_ptr());
    c.expect("blk: 257 discard segments", bad(257, 0), libc::EINVAL);
    c.expect("blk: padding not 0", bad(1, 1), libc::EINVAL);
    c.expect("blk: attach the image", set_backend(&d, rw.as_raw_fd(), 0, SECTORS), 0);
    c.expect("blk: SET_VRING_NUM with the disk attached", d.dev.state(SET_VRING_NUM, 0, 16), libc::EBUSY);
    c.expect("blk: detach (-1)", set_backend(&d, -1, 0, 0), 0);
    // SAFETY: closing the pipe this test made.
    unsafe {
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }
}

/// A request's chain: header, then (readable or writable) data, then the status byte.
struct Req<'a> {
    d: &'a mut Driver,
    mem: *mut u8,
    /// Descriptors used so far in the ring (one request at a time: from 0).
    n: u16,
}

impl<'a> Req<'a> {
    fn new(d: &'a mut Driver, mem: *mut u8) -> Self {
        Req { d, mem, n: 0 }
    }

    fn header(&mut self, kind: u32, sector: u64) -> &mut Self {
        // SAFETY: inside the mapping.
        unsafe {
            let h = self.mem.add(0x100);
            (h as *mut u32).write(kind);
            (h.add(4) as *mut u32).write(0);
            (h.add(8) as *mut u64).write(sector);
        }
        self.desc(0x100, 16, 0)
    }

    fn desc(&mut self, offset: usize, len: u32, flags: u16) -> &mut Self {
        let i = self.n;
        self.d.ring.set_desc(i, self.mem as u64 + offset as u64, len, flags | DESC_F_NEXT, i + 1);
        self.n += 1;
        self
    }

    /// The status byte ends the chain; posts and kicks it. Returns the
    /// status and the used length, or None if it was not used.
    fn send(&mut self) -> Option<(u8, u32)> {
        // SAFETY: inside the mapping.
        unsafe { self.mem.write(0xff) };
        let i = self.n;
        self.d.ring.set_desc(i, self.mem as u64, 1, DESC_F_WRITE, 0);
        let before = self.d.ring.used_idx();
        self.d.ring.publish(0);
        self.d.kick.signal();
        if !Driver::wait(2000, || self.d.ring.used_idx() != before) {
            return None;
        }
        let (_, len) = self.d.ring.used_elem(before);
        // SAFETY: inside the mapping.
        Some((unsafe { self.mem.read_volatile() }, len))
    }
}

fn file_at(img: &str, at: u64, len: usize) -> Vec<u8> {
    let mut f = File::open(img).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    let mut v = vec![0; len];
    f.read_exact(&mut v).unwrap();
    v
}

fn requests(c: &mut Checks, img: &str) {
    let mem = map(BUF, libc::PROT_READ | libc::PROT_WRITE);
    let data = |at: usize, len: usize| -> &mut [u8] {
        // SAFETY: inside the mapping, which lives for the process.
        unsafe { std::slice::from_raw_parts_mut(mem.add(at), len) }
    };
    let mut d = driver();
    let rw = OpenOptions::new().read(true).write(true).open(img).unwrap();
    c.expect("blk: attach the 1 MiB image", set_backend(&d, rw.as_raw_fd(), 0, SECTORS), 0);

    for (i, b) in data(0x1000, 1024).iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let r = Req::new(&mut d, mem).header(T_OUT, 2).desc(0x1000, 1024, 0).send();
    c.check("blk: a write of 2 sectors at sector 2: OK, used length 1", r == Some((0, 1)));
    c.check("blk: ... the file holds them there", file_at(img, 1024, 1024) == data(0x1000, 1024));
    data(0x3000, 1024).fill(0);
    // The data split over two descriptors; the status in a third.
    let r =
        Req::new(&mut d, mem).header(T_IN, 2).desc(0x3000, 100, DESC_F_WRITE).desc(0x3064, 924, DESC_F_WRITE).send();
    c.check("blk: a read of them (two buffers): OK, used length 1025", r == Some((0, 1025)));
    c.check("blk: ... the same bytes", data(0x3000, 1024) == data(0x1000, 1024));
    let r = Req::new(&mut d, mem).header(T_IN, SECTORS - 1).desc(0x3000, 1024, DESC_F_WRITE).send();
    c.check("blk: a read past the capacity: IOERR, used length 1", r == Some((1, 1)));
    let r = Req::new(&mut d, mem).header(T_IN, u64::MAX).desc(0x3000, 512, DESC_F_WRITE).send();
    c.check("blk: a read at sector 2^64 - 1 (overflow): IOERR", r == Some((1, 1)));
    let r = Req::new(&mut d, mem).header(T_OUT, 0).desc(0x1000, 511, 0).send();
    c.check("blk: a write of 511 bytes: IOERR", r == Some((1, 1)));
    let r = Req::new(&mut d, mem).header(T_FLUSH, 0).send();
    c.check("blk: a flush: OK", r == Some((0, 1)));
    data(0x3000, 32).fill(0xaa);
    let r = Req::new(&mut d, mem).header(T_GET_ID, 0).desc(0x3000, 32, DESC_F_WRITE).send();
    let mut want = [0u8; 20];
    want[..9].copy_from_slice(b"vhost-abi");
    c.check(
        "blk: GET_ID: the serial, NUL-padded to 20 bytes, used length 21",
        r == Some((0, 21)) && data(0x3000, 20) == want && data(0x3014, 12).iter().all(|&b| b == 0xaa),
    );
    let r = Req::new(&mut d, mem).header(77, 0).desc(0x3000, 512, DESC_F_WRITE).send();
    c.check("blk: an unknown request type: UNSUPP", r == Some((2, 1)));
    // One segment: sector 4, 2 sectors, and its flags.
    let segment = |flags: u32| {
        let s = data(0x2000, 16);
        s[..8].copy_from_slice(&4u64.to_ne_bytes());
        s[8..12].copy_from_slice(&2u32.to_ne_bytes());
        s[12..].copy_from_slice(&flags.to_ne_bytes());
    };
    segment(0);
    let r = Req::new(&mut d, mem).header(T_WRITE_ZEROES, 0).desc(0x2000, 16, 0).send();
    c.check("blk: WRITE_ZEROES of sectors 4-5: OK", r == Some((0, 1)));
    c.check("blk: ... the file has zeroes there, its bytes around", {
        let f = file_at(img, 1536, 3 * 512);
        f[..512] == data(0x1000 + 512, 512)[..] && f[512..1536].iter().all(|&b| b == 0)
    });
    segment(1);
    let r = Req::new(&mut d, mem).header(T_DISCARD, 0).desc(0x2000, 16, 0).send();
    c.check("blk: DISCARD with the unmap flag: UNSUPP", r == Some((2, 1)));
    segment(0);
    let r = Req::new(&mut d, mem).header(T_DISCARD, 0).desc(0x2000, 16, 0).send();
    c.check("blk: DISCARD: OK", r == Some((0, 1)));
    let r = Req::new(&mut d, mem).header(T_DISCARD, 0).desc(0x2000, 16, 0).desc(0x2000, 16, 0).send();
    c.check("blk: DISCARD with 2 segments (1 allowed): IOERR", r == Some((1, 1)));

    // A read-only disk: a write gets IOERR and the file is unchanged.
    let before = file_at(img, 0, 4096);
    let ro = File::open(img).unwrap();
    c.expect("blk: attach it read-only", set_backend(&d, ro.as_raw_fd(), READ_ONLY, SECTORS), 0);
    let r = Req::new(&mut d, mem).header(T_OUT, 0).desc(0x1000, 512, 0).send();
    c.check(
        "blk: a write to the read-only disk: IOERR, the file unchanged",
        r == Some((1, 1)) && file_at(img, 0, 4096) == before,
    );
    let r = Req::new(&mut d, mem).header(T_WRITE_ZEROES, 0).desc(0x2000, 16, 0).send();
    c.check("blk: WRITE_ZEROES on it: IOERR", r == Some((1, 1)) && file_at(img, 0, 4096) == before);

    // Chains that are no request stop the queue: nothing used, err signalled.
    for (what, build) in [
        (
            "a header of 8 bytes",
            &(|r: &mut Req| {
                r.header(T_IN, 0);
                r.d.ring.set_desc(0, r.mem as u64 + 0x100, 8, DESC_F_NEXT, 1);
            }) as &dyn Fn(&mut Req),
        ),
        ("a read with readable data", &|r: &mut Req| {
            r.header(T_IN, 0).desc(0x1000, 512, 0);
        }),
        ("a write with writable data", &|r: &mut Req| {
            r.header(T_OUT, 0).desc(0x1000, 512, DESC_F_WRITE);
        }),
        ("a readable buffer after a writable one", &|r: &mut Req| {
            r.header(T_IN, 0).desc(0x3000, 512, DESC_F_WRITE).desc(0x1000, 512, 0);
        }),
    ] {
        let mut d = driver();
        c.expect(&format!("blk: {what}: attach"), set_backend(&d, rw.as_raw_fd(), 0, SECTORS), 0);
        let mut r = Req::new(&mut d, mem);
        build(&mut r);
        let used = r.send();
        c.check(&format!("blk: {what}: nothing used, the queue stopped (err)"), used.is_none() && d.err.take() == 1);
    }
    // A chain with no device-writable byte: no status.
    let mut d = driver();
    c.expect("blk: no status byte: attach", set_backend(&d, rw.as_raw_fd(), 0, SECTORS), 0);
    let mut r = Req::new(&mut d, mem);
    r.header(T_FLUSH, 0);
    r.d.ring.set_desc(0, mem as u64 + 0x100, 16, 0, 0);
    r.d.ring.publish(0);
    r.d.kick.signal();
    c.check(
        "blk: no status byte: nothing used, the queue stopped (err)",
        Driver::wait(2000, || d.err.take() == 1) && d.ring.used_idx() == 0,
    );
}

/// 64 reads of 16 KiB posted at once on a ring of 256 (descriptors 3i to
/// 3i + 2: header, data, status), then kicked.
fn post_reads(d: &mut Driver, mem: *mut u8) {
    for i in 0..64u16 {
        let base = mem as u64 + 0x1000 * u64::from(i);
        // SAFETY: inside the mapping (64 pages of headers and status bytes).
        unsafe {
            let h = base as *mut u8;
            (h as *mut u32).write(T_IN);
            (h.add(8) as *mut u64).write(u64::from(i) * 32);
        }
        let data = mem as u64 + 0x10_0000 + 0x4000 * u64::from(i);
        d.ring.set_desc(3 * i, base, 16, DESC_F_NEXT, 3 * i + 1);
        d.ring.set_desc(3 * i + 1, data, 0x4000, DESC_F_NEXT | DESC_F_WRITE, 3 * i + 2);
        d.ring.set_desc(3 * i + 2, base + 16, 1, DESC_F_WRITE, 0);
        d.ring.publish(3 * i);
    }
    d.kick.signal();
}

/// For ten seconds: 64 requests posted, then at once (while the worker
/// serves them) the disk detached, swapped, the owner reset, or the file
/// closed. A completion that touched a queue or a file after it was gone
/// is what the debug kernel reports (KASAN, KFENCE, lockdep); afterwards a
/// fresh device still works.
fn race(c: &mut Checks, img: &str) {
    let mem = map(0x20_0000, libc::PROT_READ | libc::PROT_WRITE);
    let rw = OpenOptions::new().read(true).write(true).open(img).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let (mut cycles, mut unexpected) = (0u64, 0u64);
    while Instant::now() < end {
        let mut d = Driver::on(Dev::open_path(PATH), 0, 256, VERSION_1);
        if set_backend(&d, rw.as_raw_fd(), 0, SECTORS) != 0 {
            unexpected += 1;
        }
        post_reads(&mut d, mem);
        let rc = match cycles % 4 {
            0 => set_backend(&d, -1, 0, 0),
            1 => set_backend(&d, rw.as_raw_fd(), READ_ONLY, SECTORS),
            2 => d.dev.ioctl(RESET_OWNER, std::ptr::null()),
            _ => 0,
        };
        if rc != 0 {
            unexpected += 1;
        }
        drop(d);
        cycles += 1;
    }
    println!("bench: blk race: {cycles} cycles of 64 requests against SET_BACKEND, RESET_OWNER and close in 10 s");
    c.check(&format!("blk: race: {cycles} cycles, every ioctl answered 0"), unexpected == 0 && cycles > 0);
    let mut d = driver();
    c.expect("blk: after the race, a fresh device takes the disk", set_backend(&d, rw.as_raw_fd(), 0, SECTORS), 0);
    let r = Req::new(&mut d, mem).header(T_FLUSH, 0).send();
    c.check("blk: ... and serves a flush", r == Some((0, 1)));
}

/// The owner killed (SIGKILL) while its worker serves requests: it dies
/// promptly, and the device is usable by the next owner.
fn killed(c: &mut Checks, img: &str) {
    // SAFETY: the child only makes syscalls (and may allocate: this process
    // has no other thread now) until it is killed.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mem = map(0x20_0000, libc::PROT_READ | libc::PROT_WRITE);
        let rw = OpenOptions::new().read(true).write(true).open(img).unwrap();
        let mut d = Driver::on(Dev::open_path(PATH), 0, 256, VERSION_1);
        set_backend(&d, rw.as_raw_fd(), 0, SECTORS);
        loop {
            let want = d.ring.used_idx().wrapping_add(64);
            post_reads(&mut d, mem);
            while d.ring.used_idx() != want {
                std::hint::spin_loop();
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    // SAFETY: our child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: waiting for our child.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) } == pid;
    let took = start.elapsed();
    c.check(
        &format!("blk: an owner killed mid-requests is gone in {} ms (at most 5 s)", took.as_millis()),
        waited && libc::WIFSIGNALED(status) && took < Duration::from_secs(5),
    );
    let mem = map(0x1000, libc::PROT_READ | libc::PROT_WRITE);
    let mut d = driver();
    let rw = OpenOptions::new().read(true).write(true).open(img).unwrap();
    c.expect("blk: ... the next owner attaches the disk", set_backend(&d, rw.as_raw_fd(), 0, SECTORS), 0);
    let r = Req::new(&mut d, mem).header(T_FLUSH, 0).send();
    c.check("blk: ... and is served", r == Some((0, 1)));
}
