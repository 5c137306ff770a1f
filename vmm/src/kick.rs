//! Interrupting a vCPU thread's KVM_RUN: a SIGRTMIN handler sets the
//! thread's `immediate_exit`, as Firecracker's vCPU kick does, so that a
//! kick that lands just before KVM_RUN still ends it. The VM sends one to
//! stop its vCPUs; an injected interrupt sends one to be taken at once.
//!
//! The handler is installed without SA_RESTART: a kicked thread's blocking
//! system call returns EINTR instead of carrying on.

use std::cell::Cell;
use std::io;
use std::sync::Once;

use kvm_bindings::kvm_run;
use kvm_ioctls::VcpuFd;
use libc::{c_int, c_void, siginfo_t};
use vmm_sys_util::signal::SIGRTMIN;

thread_local! {
    /// This thread's vCPU run structure, while a `Kickable` lives. Const
    /// initialized: reading it in the signal handler needs no allocation.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// Interrupts KVM_RUN on `thread`: at once, or at its next KVM_RUN.
/// `install_handler` must have run.
pub fn kick(thread: libc::pthread_t) {
    // SAFETY: a thread of this process that the caller knows is alive (the
    // VM joins its vCPU threads only after its last kick); the signal has a
    // handler.
    unsafe { libc::pthread_kill(thread, SIGRTMIN()) };
}

extern "C" fn on_kick(_: c_int, _: *mut siginfo_t, _: *mut c_void) {
    let run = KVM_RUN.with(Cell::get);
    if !run.is_null() {
        // SAFETY: set by Kickable::new to the live mapping of this thread's
        // vCPU and cleared before it goes; a plain byte store.
        unsafe { std::ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
    }
}

/// The handler that makes the signal interrupt KVM_RUN (EINTR) instead of
/// killing the process. Before any `kick`.
pub fn install_handler() -> io::Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; the handler is async-signal
        // safe (one store); the pointers are live.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_kick as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut act.sa_mask);
            if libc::sigaction(SIGRTMIN(), &act, std::ptr::null_mut()) != 0 {
                result = Err(io::Error::last_os_error());
            }
        }
    });
    result
}

/// Aims kicks at the calling thread's `vcpu` for as long as it lives. The
/// thread clears `immediate_exit` before each KVM_RUN.
pub struct Kickable(());

impl Kickable {
    pub fn new(vcpu: &mut VcpuFd) -> io::Result<Self> {
        install_handler()?;
        KVM_RUN.with(|r| r.set(vcpu.get_kvm_run()));
        Ok(Kickable(()))
    }
}

impl Drop for Kickable {
    fn drop(&mut self) {
        KVM_RUN.with(|r| r.set(std::ptr::null_mut()));
    }
}
