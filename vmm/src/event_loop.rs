//! The VMM's main thread while a VM runs: one epoll loop over everything
//! that is not a vCPU exit. The signals the VMM handles (a signalfd), the
//! console's input, the devices' eventfds (the kernel's call and err
//! eventfds in vhost mode, an output's room), queue work that stopped at its
//! budget (resumed after `epoll_pwait2`'s timeout: no timerfd needed), and
//! the VM's stop. Nothing here blocks but the wait, and no vCPU waits for
//! this thread.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::input::{Input, InputState, Step};
use crate::virtio::mmio::INT_USED_RING;
use crate::virtio::DeviceEvent;
use crate::vm::{Exit, Shared, VmError};

/// The signals the VMM takes itself: the four that end it, SIGUSR1, which
/// dumps the devices' state, and SIGWINCH, the terminal's new size.
const SIGNALS: [libc::c_int; 6] =
    [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGWINCH];

/// Whether `signal` ends the VM (the others are served and it runs on).
pub fn stops_vm(signal: libc::c_int) -> bool {
    signal != libc::SIGUSR1 && signal != libc::SIGWINCH
}

/// How soon queue work that stopped at its budget goes on, if the guest
/// makes no exit before (vhost requeues its worker at once; a little later
/// lets the vCPU run).
const RESUME_DELAY: Duration = Duration::from_micros(100);
/// How soon input the console had no room for is offered again.
const INPUT_RETRY: Duration = Duration::from_millis(5);

const SIGNAL: u64 = 0;
const STOP: u64 = 1;
const INPUT: u64 = 2;
const REQUEUE: u64 = 3;
/// Device event k is token DEVICE + k.
const DEVICE: u64 = 16;

/// The signals above, blocked in every thread and read from a signalfd.
pub struct Signals {
    fd: File,
}

impl Signals {
    /// Blocks the signals the VMM handles in this thread and in every thread
    /// it starts afterwards: call it first, before any thread exists and
    /// before the terminal goes raw, so that no signal can arrive in between.
    pub fn block() -> io::Result<Self> {
        // SAFETY: a zeroed sigset_t is valid for sigemptyset; the calls take
        // valid pointers and change only this thread's mask; signalfd
        // returns a new descriptor that nothing else owns (checked).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in SIGNALS {
                libc::sigaddset(&mut set, s);
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Signals { fd: File::from_raw_fd(fd) })
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The next pending signal, without waiting.
    pub fn take(&mut self) -> Option<libc::c_int> {
        let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        match self.fd.read(&mut info) {
            Ok(n) if n == info.len() => {
                // The first field of signalfd_siginfo is ssi_signo (u32).
                Some(u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as libc::c_int)
            }
            _ => None,
        }
    }
}

/// A signal's name, for "stopped by SIGTERM".
pub fn signal_name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGWINCH => "SIGWINCH",
        _ => "a signal",
    }
}

/// An epoll instance, through libc: vmm-sys-util's `Epoll` has no
/// `epoll_pwait2`, whose timeout is precise to the nanosecond.
struct Poller {
    fd: OwnedFd,
    /// epoll_pwait2 is there (Linux 5.11+); else epoll_wait, to the ms.
    pwait2: bool,
}

impl Poller {
    fn new() -> io::Result<Self> {
        // SAFETY: no pointers; the new descriptor is checked and owned.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor nothing else owns.
        Ok(Poller { fd: unsafe { OwnedFd::from_raw_fd(fd) }, pwait2: true })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        // SAFETY: our epoll fd, any fd, a live event; the result is checked.
        if unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token)
    }

    fn delete(&self, fd: RawFd) {
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0);
    }

    /// Waits for events, at most `timeout` (None: for ever).
    fn wait(&mut self, timeout: Option<Duration>, events: &mut [libc::epoll_event]) -> io::Result<usize> {
        let (fd, max) = (self.fd.as_raw_fd(), events.len() as libc::c_int);
        let n = if self.pwait2 {
            let ts = timeout.map(|t| libc::timespec { tv_sec: t.as_secs() as _, tv_nsec: t.subsec_nanos() as _ });
            let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: epoll_pwait2(epfd, events, maxevents, timeout, sigmask,
            // sigsetsize): a live array of `max` events, a live or null
            // timespec, no signal mask.
            let n = unsafe {
                libc::syscall(libc::SYS_epoll_pwait2, fd, events.as_mut_ptr(), max, ts_ptr, std::ptr::null::<u8>(), 8)
            };
            if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                self.pwait2 = false;
                return self.wait(timeout, events);
            }
            n as libc::c_int
        } else {
            let ms = timeout.map_or(-1, |t| t.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int);
            // SAFETY: a live array of `max` events.
            unsafe { libc::epoll_wait(fd, events.as_mut_ptr(), max, ms) }
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

/// Serves the VM's events until it stops.
pub fn run(shared: &Shared, input: Option<Input>, signals: &mut Signals) -> Result<(), VmError> {
    let io = |what: &'static str| move |e: io::Error| VmError::Thread(format!("event loop: {what}: {e}"));
    let mut epoll = Poller::new().map_err(io("epoll"))?;
    epoll.add(signals.fd(), SIGNAL).map_err(io("signals"))?;
    epoll.add(shared.stop.fd(), STOP).map_err(io("stop"))?;
    epoll.add(shared.requeue.as_raw_fd(), REQUEUE).map_err(io("requeue"))?;
    let mut events: Vec<(usize, DeviceEvent)> = Vec::new();
    for (i, v) in shared.virtio.iter().enumerate() {
        for event in v.lock().transport.device().events() {
            let fd = match event {
                DeviceEvent::Used(fd) | DeviceEvent::News(fd) | DeviceEvent::Kick { fd, .. } => fd,
            };
            epoll.add(fd, DEVICE + events.len() as u64).map_err(io("device events"))?;
            events.push((i, event));
        }
    }

    let mut input = input.map(InputState::new);
    // A regular file cannot be polled (epoll refuses it): it is always
    // readable, and read whenever the device has room.
    let mut always_ready = false;
    if let Some(state) = &input {
        match epoll.add(state.fd(), INPUT) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => always_ready = true,
            Err(e) => return Err(io("input")(e)),
        }
    } else {
        shared.end_input();
    }
    let mut input_polled = !always_ready;

    let mut ready = vec![libc::epoll_event { events: 0, u64: 0 }; 16];
    // When queue work over budget runs again, and when input the console
    // had no room for is offered again.
    let (mut resume_at, mut retry_at): (Option<Instant>, Option<Instant>) = (None, None);
    loop {
        if shared.stop.is_set() {
            return Ok(());
        }
        let held = input.as_ref().is_some_and(InputState::held);
        if resume_at.is_none() && shared.virtio.iter().any(|v| v.lock().transport.has_pending_work()) {
            resume_at = Some(Instant::now() + RESUME_DELAY);
        }
        if retry_at.is_none() && held {
            retry_at = Some(Instant::now() + INPUT_RETRY);
        }
        let read_now = always_ready && input.is_some() && !held;
        let due = [resume_at, retry_at].into_iter().flatten().min();
        let timeout =
            if read_now { Some(Duration::ZERO) } else { due.map(|d| d.saturating_duration_since(Instant::now())) };
        let n = match epoll.wait(timeout, &mut ready) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io("epoll_wait")(e)),
        };
        let now = Instant::now();
        let mut feed = read_now;
        if resume_at.is_some_and(|t| now >= t) {
            resume_at = None;
            for v in &shared.virtio {
                v.lock().resume();
            }
        }
        if retry_at.is_some_and(|t| now >= t) {
            retry_at = None;
            feed = true;
        }
        for event in &ready[..n] {
            match event.u64 {
                SIGNAL => {
                    while let Some(signal) = signals.take() {
                        if signal == libc::SIGUSR1 {
                            dump(shared);
                        } else if signal == libc::SIGWINCH {
                            // The console follows the terminal on stdin.
                            if let Some((cols, rows)) = crate::terminal::size(libc::STDIN_FILENO) {
                                let mut slot = shared.virtio[0].lock();
                                let slot = &mut *slot;
                                slot.transport.resize(cols, rows, &slot.mem);
                            }
                        } else {
                            shared.stop.finish(Err(VmError::Signal(signal_name(signal))));
                        }
                    }
                }
                STOP => return Ok(()),
                // The loop sets its time at the top.
                REQUEUE => {
                    let _ = shared.requeue.read();
                }
                INPUT => feed = true,
                token => {
                    let Some(&(i, event)) = events.get((token - DEVICE) as usize) else { continue };
                    let v = &shared.virtio[i];
                    match event {
                        DeviceEvent::Used(fd) => {
                            let mut count = [0u8; 8];
                            // SAFETY: an eventfd read of its 8-byte counter
                            // into a live buffer.
                            if unsafe { libc::read(fd, count.as_mut_ptr().cast(), 8) } == 8 {
                                shared.calls.fetch_add(u64::from_ne_bytes(count), Ordering::Relaxed);
                                v.irq.trigger(INT_USED_RING);
                            }
                        }
                        DeviceEvent::Kick { fd, queue } => {
                            // Read under the lock: a sleeping guest's vCPU
                            // asks the device whether it is idle under it,
                            // and an unread kick says it is not.
                            let mut slot = v.lock();
                            let slot = &mut *slot;
                            let mut count = [0u8; 8];
                            // SAFETY: an eventfd read of its 8-byte counter
                            // into a live buffer.
                            if unsafe { libc::read(fd, count.as_mut_ptr().cast(), 8) } == 8 {
                                slot.transport.kicked(queue, u64::from_ne_bytes(count), &slot.mem);
                            }
                        }
                        DeviceEvent::News(_) => {
                            let mut slot = v.lock();
                            let slot = &mut *slot;
                            if let Some(fatal) = slot.transport.take_news(&slot.mem) {
                                shared.stop.finish(Err(VmError::Output(fatal)));
                            }
                        }
                    }
                }
            }
        }
        if !feed {
            continue;
        }
        let Some(state) = &mut input else { continue };
        match state.step(&shared.virtio[0]) {
            Step::Fed if !input_polled && !always_ready => {
                epoll.add(state.fd(), INPUT).map_err(io("input"))?;
                input_polled = true;
            }
            Step::Fed => {}
            Step::Held => {
                // Until the device has room: `retry_at` offers it again.
                if input_polled {
                    epoll.delete(state.fd());
                    input_polled = false;
                }
            }
            Step::Ended => {
                if input_polled {
                    epoll.delete(state.fd());
                }
                input = None;
                always_ready = false;
                shared.end_input();
            }
            Step::Quit => shared.stop.finish(Ok(Exit::Quit)),
        }
    }
}

/// SIGUSR1: each device's state, on stderr, the VM running on.
fn dump(shared: &Shared) {
    crate::log::line(format_args!("=== device state (SIGUSR1) ==="));
    let mut kernel = false;
    for v in &shared.virtio {
        let mut slot = v.lock();
        let slot = &mut *slot;
        crate::log::line(format_args!(
            "virtio-mmio at {:#x} (GSI {}):",
            v.slot.base,
            v.slot.gsi.map_or("none".into(), |g| g.to_string())
        ));
        for line in slot.transport.dump(&slot.mem) {
            crate::log::line(format_args!("  {line}"));
        }
        kernel |= slot.transport.device().events().iter().any(|e| matches!(e, DeviceEvent::Used(_)));
    }
    if kernel {
        crate::log::line(format_args!(
            "used-buffer signals from the kernel so far: {}",
            shared.calls.load(Ordering::Relaxed)
        ));
    }
}
