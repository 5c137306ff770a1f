//! What a hostile owner of /dev/vhost-console can do besides bad arguments:
//! hand it files of every kind, give it an output that never drains, post
//! chains that cover gigabytes, ask it to busy-poll for ever, make its used
//! ring unwritable, and keep its worker busy on a CPU another task needs.
//! Each must end in an error, a stopped queue, or a prompt exit: never a
//! splat, a stall or an unkillable process.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use crate::driver::*;
use crate::Checks;

pub fn run(c: &mut Checks) {
    kick_files(c);
    backend_files(c);
    full_pipe(c);
    used_ring_unwritable(c);
    chain_over_four_gib(c);
    killed_while_busy(c);
    vmm_console(c);
    yields(c);
}

/// Every kick must be an eventfd (vhost takes it with eventfd_fget): a FIFO
/// or a tty has two wait queues, a signalfd's dies before the file, and the
/// device's own fd would pin the device for ever.
fn kick_files(c: &mut Checks) {
    let d = Driver::transmitq(16);
    let fifo_path = "/tmp/vhost-abi-fifo";
    let _ = std::fs::remove_file(fifo_path);
    let path = CString::new(fifo_path).unwrap();
    // SAFETY: a valid path; the result is checked by opening it below.
    unsafe { libc::mkfifo(path.as_ptr(), 0o600) };
    let mut fifo = OpenOptions::new().read(true).write(true).open(fifo_path).expect("open the FIFO");
    let console = OpenOptions::new().read(true).write(true).open("/dev/console").expect("open /dev/console");
    let regular = File::create("/tmp/vhost-abi-file").expect("create a file");
    // SAFETY: an empty signal set, valid pointers; the result is checked.
    let signalfd = unsafe {
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        libc::signalfd(-1, &mask, libc::SFD_CLOEXEC)
    };
    let files = [
        ("a FIFO", fifo.as_raw_fd()),
        ("a tty (/dev/console)", console.as_raw_fd()),
        ("a signalfd", signalfd),
        ("the device's own fd", d.dev.file.as_raw_fd()),
        ("a regular file", regular.as_raw_fd()),
    ];
    for (what, fd) in files {
        c.expect(&format!("SET_VRING_KICK with {what}"), d.dev.file(SET_VRING_KICK, TRANSMITQ, fd), libc::EINVAL);
        c.expect(&format!("SET_VRING_CALL with {what}"), d.dev.file(SET_VRING_CALL, TRANSMITQ, fd), libc::EINVAL);
    }
    // What crashed the kernel before: a wake-up on a FIFO that was taken as a kick.
    c.check("the FIFO can be written afterwards", fifo.write_all(b"kick").is_ok());
    let mut back = [0u8; 4];
    c.check("and read back", fifo.read_exact(&mut back).is_ok() && &back == b"kick");
    c.expect("SET_VRING_KICK with an eventfd", d.dev.file(SET_VRING_KICK, TRANSMITQ, d.kick.fd()), 0);
    c.expect("SET_VRING_KICK unbind (-1)", d.dev.file(SET_VRING_KICK, TRANSMITQ, -1), 0);
    // SAFETY: our own descriptor, closed once.
    unsafe { libc::close(signalfd) };
    let _ = std::fs::remove_file(fifo_path);
    let _ = std::fs::remove_file("/tmp/vhost-abi-file");
}

/// The output must be writable without waiting on anyone, or be storage.
fn backend_files(c: &mut Checks) {
    let d = Driver::transmitq(16);
    let console = OpenOptions::new().write(true).open("/dev/console").unwrap();
    c.expect("SET_BACKEND with a tty", d.attach(console.as_raw_fd()), libc::EINVAL);
    let fifo_path = "/tmp/vhost-abi-fifo2";
    let path = CString::new(fifo_path).unwrap();
    // SAFETY: a valid path.
    unsafe { libc::mkfifo(path.as_ptr(), 0o600) };
    let fifo = OpenOptions::new().read(true).write(true).open(fifo_path).unwrap();
    c.expect("SET_BACKEND with a named FIFO (may block on its peer)", d.attach(fifo.as_raw_fd()), libc::EINVAL);
    let (_r, w) = pipe();
    c.expect("SET_BACKEND with a pipe", d.attach(w.as_raw_fd()), 0);
    let file = File::create("/tmp/vhost-abi-out").unwrap();
    c.expect("SET_BACKEND with a regular file", d.attach(file.as_raw_fd()), 0);
    let null = OpenOptions::new().write(true).open("/dev/null").unwrap();
    c.expect("SET_BACKEND with /dev/null", d.attach(null.as_raw_fd()), 0);
    let _ = std::fs::remove_file(fifo_path);
    let _ = std::fs::remove_file("/tmp/vhost-abi-out");
}

pub fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: a valid array; the result is checked.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: two new descriptors nobody else owns.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

fn pipe_bytes(r: &File) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    unsafe { libc::ioctl(r.as_raw_fd(), libc::FIONREAD, &mut n) };
    n as usize
}

/// Byte i of a pattern buffer: i % 251.
pub fn pattern(len: usize) -> *mut u8 {
    let p = map(len, libc::PROT_READ | libc::PROT_WRITE);
    for i in 0..len {
        // SAFETY: inside the mapping.
        unsafe { p.add(i).write((i % 251) as u8) };
    }
    p
}

/// A pipe nobody reads: the worker fills it and waits for room without
/// holding anything an ioctl or close needs; a reader then lets it finish.
fn full_pipe(c: &mut Checks) {
    const CHUNK: u32 = 8192;
    let (mut r, w) = pipe();
    let mut d = Driver::transmitq(16);
    c.expect("full pipe: SET_BACKEND", d.attach(w.as_raw_fd()), 0);
    let buf = pattern(16 * CHUNK as usize);
    for i in 0..16u16 {
        d.ring.set_desc(i, buf as u64 + u64::from(i) * u64::from(CHUNK), CHUNK, 0, 0);
        d.ring.publish(i);
    }
    d.kick.signal();
    // 128 KiB posted, 64 KiB of pipe: the worker stops when it is full.
    let full = Driver::wait(3000, || pipe_bytes(&r) == 65536);
    c.check("full pipe: the worker filled the pipe and stopped", full && d.ring.used_idx() < 16);
    let t = Instant::now();
    let rc = d.dev.ioctl(GET_VRING_BASE, words(&[TRANSMITQ, 0]).as_ptr());
    c.check(
        &format!("full pipe: an ioctl does not wait for the writer ({:?})", t.elapsed()),
        rc == 0 && t.elapsed() < Duration::from_secs(1),
    );
    // Drain: the pipe's wake-up brings the worker back (EPOLLOUT).
    let mut got = vec![0u8; 16 * CHUNK as usize];
    let drained = r.read_exact(&mut got).is_ok();
    let done = Driver::wait(3000, || d.ring.used_idx() == 16);
    // SAFETY: the pattern buffer is 128 KiB.
    let want = unsafe { std::slice::from_raw_parts(buf, got.len()) };
    c.check("full pipe: a reader lets the worker finish, byte-exact", drained && done && got == want);
    // Fill it again and leave it full; then reset and close must be prompt.
    for i in 0..16u16 {
        d.ring.publish(i);
    }
    d.kick.signal();
    Driver::wait(3000, || pipe_bytes(&r) == 65536);
    let t = Instant::now();
    let rc = d.dev.ioctl(RESET_OWNER, std::ptr::null());
    let reset = t.elapsed();
    let t = Instant::now();
    drop(d);
    let close = t.elapsed();
    c.check(
        &format!("full pipe: RESET_OWNER ({reset:?}) and close ({close:?}) return within 1 s"),
        rc == 0 && reset < Duration::from_secs(1) && close < Duration::from_secs(1),
    );
}

/// A used ring the worker cannot write: the queue stops, and GET_VRING_BASE
/// names the chain the driver never saw used, not one past it.
fn used_ring_unwritable(c: &mut Checks) {
    let d = Dev::open();
    let (kick, err) = (EventFd::new(), EventFd::new());
    // Two pages: flags and index at the end of the first (writable), the
    // entries on the second (read-only).
    let page = map(2 * 4096, libc::PROT_READ | libc::PROT_WRITE);
    let rings = map(2 * 4096, libc::PROT_READ | libc::PROT_WRITE);
    let used = page as u64 + 4096 - 4;
    // SAFETY: the second page of our own mapping.
    unsafe { libc::mprotect(page.add(4096).cast(), 4096, libc::PROT_READ) };
    let null = OpenOptions::new().write(true).open("/dev/null").unwrap();
    let setup = [
        d.ioctl(SET_OWNER, std::ptr::null()),
        d.ioctl(SET_FEATURES, VERSION_1.to_ne_bytes().as_ptr()),
        d.mem_table(&[IDENTITY], 1, 0),
        d.state(SET_VRING_NUM, TRANSMITQ, 16),
        d.vring_addr(TRANSMITQ, 0, rings as u64, used, rings as u64 + 4096),
        d.state(SET_VRING_BASE, TRANSMITQ, 0),
        d.file(SET_VRING_ERR, TRANSMITQ, err.fd()),
        d.file(SET_VRING_KICK, TRANSMITQ, kick.fd()),
        d.file(SET_BACKEND, TRANSMITQ, null.as_raw_fd()),
    ];
    c.check("unwritable used ring: set up", setup.iter().all(|&rc| rc == 0));
    let mut ring = Ring::at(rings, 16);
    ring.set_desc(0, rings as u64 + 0x800, 16, 0, 0);
    ring.publish(0);
    kick.signal();
    c.check("unwritable used ring: the queue stops (err eventfd)", Driver::wait(2000, || err.take() > 0));
    let mut base = words(&[TRANSMITQ, 99]);
    let rc = d.ioctl(GET_VRING_BASE, base.as_mut_ptr());
    c.check(
        "unwritable used ring: GET_VRING_BASE is 0, the unused chain given back",
        rc == 0 && base == words(&[TRANSMITQ, 0]),
    );
}

/// §2.7.5: a chain holds at most 4 GiB; one more byte stops the queue. The
/// memory is zero pages: nothing is allocated.
fn chain_over_four_gib(c: &mut Checks) {
    const GIB: u64 = 1 << 30;
    let mut d = Driver::transmitq(16);
    let null = OpenOptions::new().write(true).open("/dev/null").unwrap();
    d.attach(null.as_raw_fd());
    let zeros = map(GIB as usize, libc::PROT_READ) as u64;
    for i in 0..4 {
        d.ring.set_desc(i, zeros, GIB as u32 - 1, DESC_F_NEXT, i + 1);
    }
    d.ring.set_desc(4, zeros, 5, 0, 0);
    d.ring.publish(0);
    d.kick.signal();
    c.check("4 GiB + 1 chain: the queue stops", Driver::wait(5000, || d.err.take() > 0) && d.ring.used_idx() == 0);
}

/// Runs `work` in a child process that then waits; kills it with SIGKILL
/// after `after` and returns how long the kill took to end it.
fn time_kill(after: Duration, work: impl FnOnce()) -> Duration {
    // SAFETY: this program is single-threaded here; the child runs `work`
    // and never returns.
    match unsafe { libc::fork() } {
        0 => {
            work();
            loop {
                // SAFETY: no preconditions.
                unsafe { libc::pause() };
            }
        }
        pid => {
            std::thread::sleep(after);
            let t = Instant::now();
            let mut status = 0;
            // SAFETY: our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            t.elapsed()
        }
    }
}

/// The owner killed while its worker is busy: busy-polling the longest
/// window, or streaming a 4 GiB chain to /dev/vmm-console or to a file.
fn killed_while_busy(c: &mut Checks) {
    let poll = time_kill(Duration::from_millis(300), || {
        let mut d = Driver::transmitq(16);
        let null = OpenOptions::new().write(true).open("/dev/null").unwrap();
        d.dev.state(SET_VRING_BUSYLOOP_TIMEOUT, TRANSMITQ, 1_000_000);
        d.attach(null.as_raw_fd());
        let buf = map(4096, libc::PROT_READ);
        d.ring.set_desc(0, buf as u64, 64, 0, 0);
        d.ring.publish(0);
        d.kick.signal();
        std::mem::forget(d);
    });
    c.check(
        &format!("kill -9 during a 1 s busy-poll ends the owner in {poll:?} (< 1 s)"),
        poll < Duration::from_secs(1),
    );
    for (what, path, desc_len) in
        [("/dev/vmm-console", "/dev/vmm-console", 1u32 << 30), ("a regular file", "/tmp/vhost-abi-big", 16 << 20)]
    {
        let took = time_kill(Duration::from_millis(300), || {
            let mut d = Driver::transmitq(16);
            let out = OpenOptions::new().write(true).create(true).truncate(true).open(path).unwrap();
            d.attach(out.as_raw_fd());
            let zeros = map(desc_len as usize, libc::PROT_READ) as u64;
            let n = (4u64 << 30).div_ceil(u64::from(desc_len)).min(16) as u16;
            for i in 0..n {
                let last = i + 1 == n;
                d.ring.set_desc(i, zeros, desc_len, if last { 0 } else { DESC_F_NEXT }, i + 1);
            }
            d.ring.publish(0);
            d.kick.signal();
            std::mem::forget(d);
        });
        c.check(
            &format!("kill -9 while a huge chain streams to {what} ends the owner in {took:?} (< 1 s)"),
            took < Duration::from_secs(1),
        );
    }
    let _ = std::fs::remove_file("/tmp/vhost-abi-big");
}

/// /dev/vmm-console: a gigabyte write is skipped, not copied; a faulting
/// reader leaves the buffer usable.
fn vmm_console(c: &mut Checks) {
    let mut console = OpenOptions::new().read(true).write(true).open("/dev/vmm-console").unwrap();
    let mut drain = Vec::new();
    console.read_to_end(&mut drain).unwrap();
    let zeros = map(1 << 30, libc::PROT_READ);
    let t = Instant::now();
    // SAFETY: a readable 1 GiB mapping.
    let n = unsafe { libc::write(console.as_raw_fd(), zeros.cast(), 1 << 30) };
    let took = t.elapsed();
    c.check(
        &format!("vmm-console: a 1 GiB write takes {took:?} (< 1 s)"),
        n == 1 << 30 && took < Duration::from_secs(1),
    );
    // SAFETY: a deliberately unmapped destination; the kernel must fail the copy.
    let rc = unsafe { libc::read(console.as_raw_fd(), 0x1000 as *mut libc::c_void, 4096) };
    c.expect("vmm-console: a read into unmapped memory", if rc < 0 { errno() } else { 0 }, libc::EFAULT);
    console.write_all(b"still works").unwrap();
    let mut back = Vec::new();
    console.read_to_end(&mut back).unwrap();
    c.check("vmm-console: still works after the fault", back.ends_with(b"still works"));
}

/// Counts a busy loop's iterations on CPU 0 for `ms`.
fn spin(ms: u64) -> u64 {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut n = 0u64;
    while Instant::now() < end {
        for _ in 0..1000 {
            n = std::hint::black_box(n + 1);
        }
    }
    n
}

fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity
    // take valid pointers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// With everything on one CPU (the worker inherits its creator's), another
/// task still gets its turn: the worker yields after each run, whether a
/// kick storm gives it nothing to do or a 4 GiB chain gives it too much.
/// The kernel is PREEMPT_NONE: a worker that never yields would starve it.
fn yields(c: &mut Checks) {
    // In a child: the pinning, the threads and the device end with it.
    // SAFETY: single-threaded here; the child exits.
    let pid = unsafe { libc::fork() };
    if pid != 0 {
        let mut status = 0;
        // SAFETY: our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let passed = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        c.check("yields: another task on the worker's CPU progresses (storm and busy)", passed);
        return;
    }
    pin_to_cpu0();
    let alone = spin(300) * 1000 / 300;
    let mut d = Driver::transmitq(16);
    let console = OpenOptions::new().write(true).open("/dev/vmm-console").unwrap();
    d.attach(console.as_raw_fd());
    // A kick storm with no buffers.
    let kick = d.kick.fd();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let storm = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let one = 1u64.to_ne_bytes();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: an 8-byte buffer, a valid eventfd.
                unsafe { libc::write(kick, one.as_ptr().cast(), 8) };
            }
        })
    };
    let during_storm = spin(1000);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    storm.join().unwrap();
    // A 4 GiB chain to /dev/vmm-console.
    let zeros = map(1 << 30, libc::PROT_READ) as u64;
    for i in 0..4 {
        d.ring.set_desc(i, zeros, 1 << 30, if i == 3 { 0 } else { DESC_F_NEXT }, i + 1);
    }
    d.ring.publish(0);
    d.kick.signal();
    let during_busy = spin(1000);
    let busy_done = d.ring.used_idx() == 1;
    println!(
        "bench: yields: a spinner on the worker's CPU ran {:.0}% of its solo rate during a kick storm, {:.0}% while a 4 GiB chain streamed{}",
        during_storm as f64 * 100.0 / alone as f64,
        during_busy as f64 * 100.0 / alone as f64,
        if busy_done { " (done within the second)" } else { "" }
    );
    let ok = during_storm * 10 >= alone && during_busy * 10 >= alone;
    std::process::exit(if ok { 0 } else { 1 });
}
