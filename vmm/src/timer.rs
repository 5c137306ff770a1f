//! Interrupting a vCPU thread's KVM_RUN: its `immediate_exit` is set by a
//! SIGRTMIN handler, as Firecracker's vCPU kick does, so that a signal that
//! lands just before KVM_RUN still ends it. Two senders: a one-shot timer
//! (when a queue stopped at its budget, the guest runs on and the VMM
//! finishes the queue shortly after, as the kernel worker requeues itself,
//! without waiting for a notification the driver may never send; a POSIX
//! timer with SIGEV_THREAD_ID), and another thread stopping the VM (`kick`).

use std::cell::Cell;
use std::io;
use std::sync::Once;
use std::time::Duration;

use kvm_bindings::kvm_run;
use kvm_ioctls::VcpuFd;
use libc::{c_int, c_void, siginfo_t};
use vmm_sys_util::signal::SIGRTMIN;

thread_local! {
    /// This thread's vCPU run structure, while a KickTimer lives. Const
    /// initialized: reading it in the signal handler needs no allocation.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// Interrupts KVM_RUN on `thread`, if it made a KickTimer: at once, or at its
/// next KVM_RUN. `install_handler` must have run.
pub fn kick(thread: libc::pthread_t) {
    // SAFETY: a live thread of this process (the caller joins it later);
    // the signal has a handler (installed before any KickTimer exists).
    unsafe { libc::pthread_kill(thread, SIGRTMIN()) };
}

extern "C" fn on_kick(_: c_int, _: *mut siginfo_t, _: *mut c_void) {
    let run = KVM_RUN.with(Cell::get);
    if !run.is_null() {
        // SAFETY: set by KickTimer::new to the live mapping of this thread's
        // vCPU and cleared before it goes; a plain byte store.
        unsafe { std::ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
    }
}

/// The handler that makes the signal interrupt KVM_RUN (EINTR) instead of
/// killing the process; SA_RESTART restarts any other system call it hits.
/// Before any `kick`.
pub fn install_handler() -> io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; the handler is async-signal
        // safe (one store); the pointers are live.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_kick as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            if libc::sigaction(SIGRTMIN(), &act, std::ptr::null_mut()) != 0 {
                result = Err(io::Error::last_os_error());
            }
        }
    });
    result
}

/// Interrupts KVM_RUN on the thread that created it.
pub struct KickTimer {
    /// Made on the first `arm`: a kernel without POSIX timers can still be
    /// kicked by other threads.
    timer: std::cell::OnceCell<Option<libc::timer_t>>,
}

impl KickTimer {
    /// Aims kicks at the calling thread, which runs `vcpu`. The caller
    /// clears `immediate_exit` after each KVM_RUN.
    pub fn new(vcpu: &mut VcpuFd) -> io::Result<Self> {
        install_handler()?;
        KVM_RUN.with(|r| r.set(vcpu.get_kvm_run()));
        Ok(KickTimer { timer: std::cell::OnceCell::new() })
    }

    fn create() -> io::Result<libc::timer_t> {
        // SAFETY: a zeroed sigevent is valid; the fields set make it signal
        // this thread (gettid has no preconditions).
        let mut event: libc::sigevent = unsafe { std::mem::zeroed() };
        event.sigev_notify = libc::SIGEV_THREAD_ID;
        event.sigev_signo = SIGRTMIN();
        // SAFETY: as above.
        event.sigev_notify_thread_id = unsafe { libc::gettid() };
        let mut timer: libc::timer_t = std::ptr::null_mut();
        // SAFETY: valid pointers to live values; the result is checked.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(timer)
    }

    /// Fires once after `delay` (again, if it was armed already). A firing
    /// that lands outside KVM_RUN is lost, so the caller arms it after every
    /// exit for as long as it needs one. Without POSIX timers (the kernel
    /// lacks them) the work waits for the guest's next exit.
    pub fn arm(&self, delay: Duration) {
        let timer = self.timer.get_or_init(|| match Self::create() {
            Ok(t) => Some(t),
            Err(e) => {
                crate::warn!("vmm: no kick timer ({e}): queue work over budget waits for the next exit");
                None
            }
        });
        let Some(timer) = *timer else { return };
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec { tv_sec: delay.as_secs() as _, tv_nsec: delay.subsec_nanos() as _ },
        };
        // SAFETY: our timer and a live itimerspec. It cannot fail with valid
        // arguments; if it did, the work would wait for the next exit.
        unsafe { libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()) };
    }
}

impl Drop for KickTimer {
    fn drop(&mut self) {
        if let Some(Some(timer)) = self.timer.get() {
            // SAFETY: created in `arm`, deleted once; no signal comes after.
            unsafe { libc::timer_delete(*timer) };
        }
        KVM_RUN.with(|r| r.set(std::ptr::null_mut()));
    }
}
