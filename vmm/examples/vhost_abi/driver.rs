//! This process as VMM and guest driver at once: /dev/vhost-console's
//! ioctls with raw numbers from include/uapi/linux/vhost.h (not the `vhost`
//! crate), and a split ring in this process's own memory, which the memory
//! table maps one to one, so that the kernel worker processes what is posted
//! here and a test can post whatever a hostile guest would.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::atomic::{fence, Ordering};

const VHOST: u64 = 0xaf;

const fn ioc(dir: u64, nr: u64, size: u64) -> u64 {
    (dir << 30) | (size << 16) | (VHOST << 8) | nr
}
const W: u64 = 1;
const R: u64 = 2;
pub const GET_FEATURES: u64 = ioc(R, 0x00, 8);
pub const SET_FEATURES: u64 = ioc(W, 0x00, 8);
pub const SET_OWNER: u64 = ioc(0, 0x01, 0);
pub const RESET_OWNER: u64 = ioc(0, 0x02, 0);
pub const SET_MEM_TABLE: u64 = ioc(W, 0x03, 8);
pub const SET_VRING_NUM: u64 = ioc(W, 0x10, 8);
pub const SET_VRING_ADDR: u64 = ioc(W, 0x11, 40);
pub const SET_VRING_BASE: u64 = ioc(W, 0x12, 8);
pub const GET_VRING_BASE: u64 = ioc(R | W, 0x12, 8);
pub const SET_VRING_KICK: u64 = ioc(W, 0x20, 8);
pub const SET_VRING_CALL: u64 = ioc(W, 0x21, 8);
pub const SET_VRING_ERR: u64 = ioc(W, 0x22, 8);
pub const SET_VRING_BUSYLOOP_TIMEOUT: u64 = ioc(W, 0x23, 8);
pub const SET_BACKEND: u64 = ioc(W, 0x50, 8);
pub const UNKNOWN: u64 = ioc(W, 0x7f, 8);

pub const RECEIVEQ: u32 = 0;
pub const TRANSMITQ: u32 = 1;
pub const VERSION_1: u64 = 1 << 32;
pub const EVENT_IDX: u64 = 1 << 29;
pub const DESC_F_NEXT: u16 = 1;
pub const DESC_F_WRITE: u16 = 2;

pub fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_ne_bytes()).collect()
}

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// An open /dev/vhost-console.
pub struct Dev {
    pub file: File,
}

impl Dev {
    pub fn open() -> Dev {
        Dev::open_path("/dev/vhost-console")
    }

    pub fn open_path(path: &str) -> Dev {
        Dev {
            file: OpenOptions::new().read(true).write(true).open(path).unwrap_or_else(|e| panic!("open {path}: {e}")),
        }
    }

    /// The ioctl's errno, 0 on success.
    pub fn ioctl(&self, cmd: u64, arg: *const u8) -> i32 {
        // SAFETY: `arg` points at a buffer at least as large as the command's
        // size (or is deliberately bad, which the kernel must reject).
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), cmd as _, arg) };
        if rc < 0 {
            errno()
        } else {
            0
        }
    }

    pub fn state(&self, cmd: u64, index: u32, num: u32) -> i32 {
        self.ioctl(cmd, words(&[index, num]).as_ptr())
    }

    pub fn file(&self, cmd: u64, index: u32, fd: RawFd) -> i32 {
        self.ioctl(cmd, words(&[index, fd as u32]).as_ptr())
    }

    pub fn vring_addr(&self, index: u32, flags: u32, desc: u64, used: u64, avail: u64) -> i32 {
        let mut a = words(&[index, flags]);
        for v in [desc, used, avail, 0u64] {
            a.extend_from_slice(&v.to_ne_bytes());
        }
        self.ioctl(SET_VRING_ADDR, a.as_ptr())
    }

    /// SET_MEM_TABLE with `(guest, size, user)` regions and the given padding.
    pub fn mem_table(&self, regions: &[(u64, u64, u64)], nregions: u32, padding: u32) -> i32 {
        let mut t = words(&[nregions, padding]);
        for &(gpa, size, uaddr) in regions {
            for v in [gpa, size, uaddr, 0] {
                t.extend_from_slice(&v.to_ne_bytes());
            }
        }
        self.ioctl(SET_MEM_TABLE, t.as_ptr())
    }
}

/// A nonblocking eventfd.
pub struct EventFd(pub File);

impl EventFd {
    pub fn new() -> EventFd {
        // SAFETY: no pointers; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
        // SAFETY: a new descriptor nobody else owns.
        EventFd(unsafe { File::from_raw_fd(fd) })
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn signal(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: an 8-byte buffer on a valid fd.
        unsafe { libc::write(self.fd(), one.as_ptr().cast(), 8) };
    }

    /// The counter, reset to 0; 0 if it was not signalled.
    pub fn take(&self) -> u64 {
        let mut v = [0u8; 8];
        // SAFETY: an 8-byte buffer on a valid fd.
        let n = unsafe { libc::read(self.fd(), v.as_mut_ptr().cast(), 8) };
        if n == 8 {
            u64::from_ne_bytes(v)
        } else {
            0
        }
    }
}

/// Anonymous memory that stays mapped for the process's life (the worker
/// may still be reading it when a test ends).
pub fn map(len: usize, prot: i32) -> *mut u8 {
    // SAFETY: a fresh private anonymous mapping; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert!(p != libc::MAP_FAILED, "mmap {len}: {}", std::io::Error::last_os_error());
    p.cast()
}

/// A split ring of `num` entries: descriptors, available ring, used ring,
/// each in its own page.
pub struct Ring {
    pub base: *mut u8,
    pub num: u16,
    /// Free-running avail index.
    next: u16,
}

impl Ring {
    pub fn new(num: u16) -> Ring {
        Ring::at(map(3 * 4096, libc::PROT_READ | libc::PROT_WRITE), num)
    }

    /// A ring whose descriptors start at `base`, available ring at +0x1000.
    pub fn at(base: *mut u8, num: u16) -> Ring {
        assert!(num <= 256);
        Ring { base, num, next: 0 }
    }

    pub fn desc(&self) -> u64 {
        self.base as u64
    }
    pub fn avail(&self) -> u64 {
        self.base as u64 + 0x1000
    }
    pub fn used(&self) -> u64 {
        self.base as u64 + 0x2000
    }

    pub fn set_desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = (self.desc() + 16 * u64::from(i)) as *mut u8;
        // SAFETY: inside the descriptor page (i < num <= 256).
        unsafe {
            (d as *mut u64).write_volatile(addr);
            (d.add(8) as *mut u32).write_volatile(len);
            (d.add(12) as *mut u16).write_volatile(flags);
            (d.add(14) as *mut u16).write_volatile(next);
        }
    }

    /// Makes the chain at `head` available.
    pub fn publish(&mut self, head: u16) {
        let avail = self.avail() as *mut u16;
        // SAFETY: inside the avail page.
        unsafe {
            avail.add(2 + usize::from(self.next % self.num)).write_volatile(head);
            fence(Ordering::SeqCst);
            self.next = self.next.wrapping_add(1);
            avail.add(1).write_volatile(self.next);
        }
    }

    pub fn used_idx(&self) -> u16 {
        // SAFETY: inside the used page.
        unsafe { (self.used() as *const u16).add(1).read_volatile() }
    }

    pub fn used_flags(&self) -> u16 {
        // SAFETY: inside the used page.
        unsafe { (self.used() as *const u16).read_volatile() }
    }

    /// The device's avail_event, after the used ring's entries.
    pub fn avail_event(&self) -> u16 {
        // SAFETY: inside the used page (num <= 256).
        unsafe { ((self.used() + 4 + 8 * u64::from(self.num)) as *const u16).read_volatile() }
    }

    /// The driver's used_event, after the available ring's entries.
    pub fn set_used_event(&self, value: u16) {
        // SAFETY: inside the avail page (num <= 256).
        unsafe { ((self.avail() + 4 + 2 * u64::from(self.num)) as *mut u16).write_volatile(value) };
        fence(Ordering::SeqCst);
    }

    /// Used element `i`: (id, len).
    pub fn used_elem(&self, i: u16) -> (u32, u32) {
        let e = (self.used() + 4 + 8 * u64::from(i % self.num)) as *const u32;
        // SAFETY: inside the used page.
        unsafe { (e.read_volatile(), e.add(1).read_volatile()) }
    }
}

/// A device set up as a VMM would, one queue only: owner, features, a
/// memory table mapping this whole address space one to one, the ring,
/// eventfds.
pub struct Driver {
    pub dev: Dev,
    pub queue: u32,
    pub ring: Ring,
    pub kick: EventFd,
    pub call: EventFd,
    pub err: EventFd,
}

/// One region that maps guest addresses to the same user addresses.
pub const IDENTITY: (u64, u64, u64) = (0x1000, 0x7fff_ffff_0000, 0x1000);

impl Driver {
    /// Panics on any failure: only for tests whose subject comes after.
    pub fn transmitq(num: u16) -> Driver {
        Driver::queue(TRANSMITQ, num)
    }

    pub fn receiveq(num: u16) -> Driver {
        Driver::queue(RECEIVEQ, num)
    }

    fn queue(queue: u32, num: u16) -> Driver {
        Driver::with_features(queue, num, VERSION_1)
    }

    pub fn with_features(queue: u32, num: u16, features: u64) -> Driver {
        Driver::on(Dev::open(), queue, num, features)
    }

    /// As `with_features`, on an open device (/dev/vhost-blk).
    pub fn on(dev: Dev, queue: u32, num: u16, features: u64) -> Driver {
        let d = Driver {
            dev,
            queue,
            ring: Ring::new(num),
            kick: EventFd::new(),
            call: EventFd::new(),
            err: EventFd::new(),
        };
        let ok = |what: &str, rc: i32| assert_eq!(rc, 0, "{what}: errno {rc}");
        ok("SET_OWNER", d.dev.ioctl(SET_OWNER, std::ptr::null()));
        ok("SET_FEATURES", d.dev.ioctl(SET_FEATURES, features.to_ne_bytes().as_ptr()));
        ok("SET_MEM_TABLE", d.dev.mem_table(&[IDENTITY], 1, 0));
        ok("SET_VRING_NUM", d.dev.state(SET_VRING_NUM, queue, num.into()));
        ok("SET_VRING_ADDR", d.dev.vring_addr(queue, 0, d.ring.desc(), d.ring.used(), d.ring.avail()));
        ok("SET_VRING_BASE", d.dev.state(SET_VRING_BASE, queue, 0));
        ok("SET_VRING_CALL", d.dev.file(SET_VRING_CALL, queue, d.call.fd()));
        ok("SET_VRING_ERR", d.dev.file(SET_VRING_ERR, queue, d.err.fd()));
        ok("SET_VRING_KICK", d.dev.file(SET_VRING_KICK, queue, d.kick.fd()));
        d
    }

    pub fn attach(&self, fd: RawFd) -> i32 {
        self.dev.file(SET_BACKEND, self.queue, fd)
    }

    /// Waits up to `ms` for `cond`, polling.
    pub fn wait(ms: u64, mut cond: impl FnMut() -> bool) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_millis(ms);
        while std::time::Instant::now() < end {
            if cond() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        cond()
    }
}

// SAFETY: the ring's memory is a private mapping that lives as long as the
// process; threads that share a Ring only read its addresses.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}
