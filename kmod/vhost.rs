// SPDX-License-Identifier: GPL-2.0
//! The vhost core for one open /dev/vhost-console, mirroring
//! drivers/vhost/vhost.c: the owner and its worker, the memory table, the
//! per-queue ioctls, and kick polling. The console's own part (its backend
//! ioctl and transmitq processing) is in console.rs.
//!
//! Locking: `inner` serializes the ioctls and the worker (vhost's dev and vq
//! mutexes folded into one: the device has one busy queue). The kick wake
//! function runs in atomic context and touches only `pending` and `task`.

use core::cell::Cell;
use core::ffi::{c_int, c_uint, c_void};
use core::pin::Pin;
use core::ptr::{null_mut, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use kernel::bindings;
use kernel::error::{code::*, from_err_ptr};
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::types::{FromBytes, Opaque};
use kernel::uaccess::UserSlice;

use crate::console::Backend;
use crate::uapi::*;
use crate::vring::{Region, Vring, MAX_SIZE};

pub(crate) const RECEIVEQ: usize = 0;
pub(crate) const TRANSMITQ: usize = 1;
const NUM_QUEUES: usize = 2;
/// vhost's default `max_mem_regions`.
const MAX_MEM_REGIONS: u32 = 64;
const EPOLLIN: u32 = 1;

// The kernel structs are opaque here: only pointers cross (helpers.c).
#[allow(improper_ctypes)]
extern "C" {
    fn vhost_console_init_waitqueue_func_entry(wq: *mut bindings::wait_queue_entry, func: bindings::wait_queue_func_t);
    fn vhost_console_init_poll_funcptr(pt: *mut bindings::poll_table_struct, qproc: bindings::poll_queue_proc);
    fn vhost_console_vfs_poll(file: *mut bindings::file, pt: *mut bindings::poll_table_struct) -> u32;
    fn vhost_console_access_ok(addr: usize, size: usize) -> bool;
    fn vhost_console_set_running();
}

pub(crate) fn errno(e: u32) -> Error {
    Error::from_errno(-(e as i32))
}

/// A reference to an open file (fget/fput).
pub(crate) struct FileRef(NonNull<bindings::file>);

impl FileRef {
    pub(crate) fn get(fd: i32) -> Result<Self> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: fget takes any number and returns a counted reference or NULL.
        NonNull::new(unsafe { bindings::fget(fd) }).map(FileRef).ok_or(EBADF)
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::file {
        self.0.as_ptr()
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference, from fget.
        unsafe { bindings::fput(self.0.as_ptr()) };
    }
}

/// A reference to an eventfd context.
pub(crate) struct EventFd(NonNull<bindings::eventfd_ctx>);

impl EventFd {
    fn get(fd: i32) -> Result<Self> {
        // SAFETY: eventfd_ctx_fdget takes any number and returns a counted
        // reference or an ERR_PTR.
        let ctx = from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        NonNull::new(ctx).map(EventFd).ok_or(EBADF)
    }

    pub(crate) fn signal(&self) {
        // SAFETY: we hold a reference, so the context is alive.
        unsafe { bindings::eventfd_signal_mask(self.0.as_ptr(), 0) };
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: we own one reference, from eventfd_ctx_fdget.
        unsafe { bindings::eventfd_ctx_put(self.0.as_ptr()) };
    }
}

/// A reference to the owner's address space (get_task_mm/mmput).
struct MmRef(NonNull<bindings::mm_struct>);

impl Drop for MmRef {
    fn drop(&mut self) {
        // SAFETY: we own one mm_users reference, from get_task_mm.
        unsafe { bindings::mmput(self.0.as_ptr()) };
    }
}

fn current_mm() -> *mut bindings::mm_struct {
    // SAFETY: `current` is always a valid task; reading its own mm pointer is
    // safe in process context (ioctl).
    unsafe { (*bindings::get_current()).mm }
}

// SAFETY: the references may be released from any thread.
unsafe impl Send for FileRef {}
// SAFETY: as above; eventfd_signal may be called from any thread.
unsafe impl Send for EventFd {}
// SAFETY: as above.
unsafe impl Send for MmRef {}

/// Everything the ioctls configure; behind `VhostConsole::inner`.
pub(crate) struct Inner {
    owner: Option<MmRef>,
    features: u64,
    pub(crate) mem: KVec<Region>,
    pub(crate) vqs: [Vring; NUM_QUEUES],
    kicks: [Option<FileRef>; NUM_QUEUES],
    calls: [Option<EventFd>; NUM_QUEUES],
    pub(crate) errs: [Option<EventFd>; NUM_QUEUES],
    pub(crate) backend: Option<Backend>,
}

impl Inner {
    fn new() -> Self {
        Inner {
            owner: None,
            features: 0,
            mem: KVec::new(),
            vqs: Default::default(),
            kicks: [None, None],
            calls: [None, None],
            errs: [None, None],
            backend: None,
        }
    }

    /// Signals queue `index`'s call eventfd, if the driver wants it.
    pub(crate) fn notify_driver(&self, index: usize) {
        if let Some(call) = &self.calls[index] {
            if self.vqs[index].wants_interrupt().unwrap_or(true) {
                call.signal();
            }
        }
    }
}

/// The wait-queue entry on a kick eventfd (vhost's `vhost_poll`).
pub(crate) struct Poll {
    wait: Opaque<bindings::wait_queue_entry>,
    table: Opaque<bindings::poll_table_struct>,
    /// The eventfd's wait queue while the entry is on it; changed only under `inner`.
    wqh: Cell<*mut bindings::wait_queue_head>,
    /// Set when polling starts; read by `wake`.
    dev: Cell<*const VhostConsole>,
    index: usize,
}

impl Poll {
    fn new(index: usize) -> Self {
        Poll {
            wait: Opaque::uninit(),
            table: Opaque::uninit(),
            wqh: Cell::new(null_mut()),
            dev: Cell::new(core::ptr::null()),
            index,
        }
    }
}

/// One open of /dev/vhost-console.
#[pin_data]
pub(crate) struct VhostConsole {
    #[pin]
    pub(crate) inner: Mutex<Inner>,
    /// The worker while there is an owner, else null.
    task: AtomicPtr<bindings::vhost_task>,
    /// Bit i: queue i was kicked and not yet processed.
    pending: AtomicU32,
    polls: [Poll; NUM_QUEUES],
}

// SAFETY: `inner` is a mutex; `task` and `pending` are atomics; the `Poll`
// cells change only under `inner`, and `wake` reads them only while the entry
// is queued, after `start_poll` wrote them (ordered by the wait-queue lock).
unsafe impl Sync for VhostConsole {}
// SAFETY: as above.
unsafe impl Send for VhostConsole {}

impl VhostConsole {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            inner <- kernel::new_mutex!(Inner::new()),
            task: AtomicPtr::new(null_mut()),
            pending: AtomicU32::new(0),
            polls: [Poll::new(0), Poll::new(1)],
        })
    }

    /// Marks queue `index` as kicked and wakes the worker.
    pub(crate) fn kick(&self, index: usize) {
        self.pending.fetch_or(1 << index, Ordering::AcqRel);
        let task = self.task.load(Ordering::Acquire);
        if !task.is_null() {
            // SAFETY: the task pointer is cleared before the task is stopped,
            // and every caller (a kick wake-up, an ioctl) is done by then.
            unsafe { bindings::vhost_task_wake(task) };
        }
    }

    /// Puts the wait entry on `file`'s wait queue. Needs `inner` held.
    fn start_poll(&self, index: usize, file: &FileRef) {
        let poll = &self.polls[index];
        poll.dev.set(self);
        // SAFETY: the entry and table are ours and not on any queue (stop_poll
        // ran); `file` stays referenced until stop_poll removes the entry.
        let mask = unsafe {
            vhost_console_init_waitqueue_func_entry(poll.wait.get(), Some(wake));
            vhost_console_init_poll_funcptr(poll.table.get(), Some(queue_proc));
            vhost_console_vfs_poll(file.as_ptr(), poll.table.get())
        };
        if mask & EPOLLIN != 0 {
            self.kick(index);
        }
    }

    /// Takes the wait entry off its queue, if it is on one. Needs `inner` held.
    fn stop_poll(&self, index: usize) {
        let poll = &self.polls[index];
        let wqh = poll.wqh.replace(null_mut());
        if !wqh.is_null() {
            // SAFETY: `queue_proc` added the entry to `wqh`, which the kick
            // file (still referenced) owns. Afterwards no `wake` is running.
            unsafe { bindings::remove_wait_queue(wqh, poll.wait.get()) };
        }
    }

    /// Stops polling and the worker; the state stays for the caller to drop.
    fn stop(&self) {
        let task = {
            let _inner = self.inner.lock();
            for i in 0..NUM_QUEUES {
                self.stop_poll(i);
            }
            self.task.swap(null_mut(), Ordering::AcqRel)
        };
        if !task.is_null() {
            // SAFETY: created by vhost_task_create in set_owner and stopped
            // once: the pointer was swapped out above. Not under `inner`,
            // which the worker may be waiting for.
            unsafe { bindings::vhost_task_stop(task) };
        }
    }

    fn set_owner(&self, inner: &mut Inner) -> Result {
        if inner.owner.is_some() {
            return Err(EBUSY);
        }
        // SAFETY: `current` is valid; get_task_mm returns a counted mm or NULL.
        let mm = NonNull::new(unsafe { bindings::get_task_mm(bindings::get_current()) }).ok_or(EINVAL)?;
        let mm = MmRef(mm);
        let name = kernel::c_str!("vhost-console");
        // SAFETY: `self` is pinned and outlives the task: `stop` ends it
        // before the device is freed. The name is copied.
        let task = from_err_ptr(unsafe {
            bindings::vhost_task_create(
                Some(worker),
                Some(worker_killed),
                self as *const Self as *mut c_void,
                name.as_char_ptr(),
            )
        })?;
        // SAFETY: freshly created, started once.
        unsafe { bindings::vhost_task_start(task) };
        self.task.store(task, Ordering::Release);
        inner.owner = Some(mm);
        for i in 0..NUM_QUEUES {
            if let Some(kick) = &inner.kicks[i] {
                self.start_poll(i, kick);
            }
        }
        Ok(())
    }

    /// The ioctl entry point (vhost_dev_ioctl, vhost_vring_ioctl, then the device's).
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        if cmd == VHOST_RESET_OWNER {
            self.check_owner(&self.inner.lock())?;
            self.stop();
            *self.inner.lock() = Inner::new();
            return Ok(0);
        }
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        match cmd {
            VHOST_SET_OWNER => return self.set_owner(inner).map(|_| 0),
            VHOST_GET_FEATURES => {
                UserSlice::new(arg, 8).writer().write(&FEATURES)?;
                return Ok(0);
            }
            _ => self.check_owner(inner)?,
        }
        match cmd {
            VHOST_SET_FEATURES => {
                let features: u64 = read(arg)?;
                if features & !FEATURES != 0 {
                    return Err(errno(bindings::EOPNOTSUPP));
                }
                inner.features = features;
            }
            VHOST_SET_MEM_TABLE => inner.mem = read_mem_table(arg)?,
            VHOST_SET_VRING_NUM | VHOST_SET_VRING_ADDR | VHOST_SET_VRING_BASE | VHOST_GET_VRING_BASE
            | VHOST_SET_VRING_KICK | VHOST_SET_VRING_CALL | VHOST_SET_VRING_ERR
            | VHOST_SET_VRING_BUSYLOOP_TIMEOUT | VHOST_GET_VRING_BUSYLOOP_TIMEOUT => self.vring_ioctl(inner, cmd, arg)?,
            VHOST_CONSOLE_SET_BACKEND => self.set_backend(inner, arg)?,
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }

    /// Only the owner's process may configure the device (vhost_dev_check_owner).
    fn check_owner(&self, inner: &Inner) -> Result {
        match &inner.owner {
            Some(mm) if mm.0.as_ptr() == current_mm() => Ok(()),
            _ => Err(EPERM),
        }
    }

    fn vring_ioctl(&self, inner: &mut Inner, cmd: u32, arg: usize) -> Result {
        let index: u32 = read(arg)?;
        let i = index as usize;
        if i >= NUM_QUEUES {
            return Err(errno(bindings::ENOBUFS));
        }
        // The ring may not move under an attached backend (vhost: private_data).
        let busy = i == TRANSMITQ && inner.backend.is_some();
        let vq = &mut inner.vqs[i];
        match cmd {
            VHOST_SET_VRING_NUM => {
                let s: VringState = read(arg)?;
                if busy {
                    return Err(EBUSY);
                }
                if s.num == 0 || s.num > MAX_SIZE || !s.num.is_power_of_two() {
                    return Err(EINVAL);
                }
                vq.num = s.num as u16;
            }
            VHOST_SET_VRING_ADDR => {
                let a: VringAddr = read(arg)?;
                if busy {
                    return Err(EBUSY);
                }
                if a.flags & VHOST_VRING_F_LOG != 0 {
                    return Err(errno(bindings::EOPNOTSUPP));
                }
                if a.desc_user_addr % 16 != 0 || a.avail_user_addr % 2 != 0 || a.used_user_addr % 4 != 0 {
                    return Err(EINVAL);
                }
                let num = usize::from(vq.num);
                let sizes = [(a.desc_user_addr, 16 * num), (a.avail_user_addr, 6 + 2 * num), (a.used_user_addr, 6 + 8 * num)];
                for (addr, size) in sizes {
                    let addr = usize::try_from(addr).map_err(|_| EINVAL)?;
                    // SAFETY: access_ok only checks the range against the user address limit.
                    if addr == 0 || !unsafe { vhost_console_access_ok(addr, size) } {
                        return Err(EINVAL);
                    }
                }
                vq.desc = a.desc_user_addr as usize;
                vq.avail = a.avail_user_addr as usize;
                vq.used = a.used_user_addr as usize;
                vq.broken = false;
            }
            VHOST_SET_VRING_BASE => {
                let s: VringState = read(arg)?;
                if busy {
                    return Err(EBUSY);
                }
                let base = u16::try_from(s.num).map_err(|_| EINVAL)?;
                vq.last_avail = base;
                vq.used_idx = base;
                vq.broken = false;
            }
            VHOST_GET_VRING_BASE => {
                let s = VringState { index, num: vq.last_avail.into() };
                UserSlice::new(arg, core::mem::size_of::<VringState>()).writer().write(&s)?;
            }
            VHOST_SET_VRING_BUSYLOOP_TIMEOUT => vq.busyloop_timeout = read::<VringState>(arg)?.num,
            VHOST_GET_VRING_BUSYLOOP_TIMEOUT => {
                let s = VringState { index, num: vq.busyloop_timeout };
                UserSlice::new(arg, core::mem::size_of::<VringState>()).writer().write(&s)?;
            }
            _ => {
                let f: VringFile = read(arg)?;
                match cmd {
                    VHOST_SET_VRING_KICK => {
                        let kick = if f.fd == -1 { None } else { Some(FileRef::get(f.fd)?) };
                        self.stop_poll(i);
                        inner.kicks[i] = kick;
                        if let (Some(kick), Some(_)) = (&inner.kicks[i], &inner.owner) {
                            self.start_poll(i, kick);
                        }
                    }
                    VHOST_SET_VRING_CALL => inner.calls[i] = if f.fd == -1 { None } else { Some(EventFd::get(f.fd)?) },
                    _ => inner.errs[i] = if f.fd == -1 { None } else { Some(EventFd::get(f.fd)?) },
                }
            }
        }
        Ok(())
    }
}

/// Reads an ioctl argument of type `T` from user memory.
pub(crate) fn read<T: FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(arg, core::mem::size_of::<T>()).reader().read::<T>()
}

/// Reads and checks a `struct vhost_memory` table (vhost_set_memory).
fn read_mem_table(arg: usize) -> Result<KVec<Region>> {
    let header: Memory = read(arg)?;
    if header.nregions > MAX_MEM_REGIONS {
        return Err(E2BIG);
    }
    let n = header.nregions as usize;
    let mut reader = UserSlice::new(arg + core::mem::size_of::<Memory>(), n * core::mem::size_of::<MemoryRegion>()).reader();
    let mut regions = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        let r: MemoryRegion = reader.read()?;
        let guest_end = r.guest_phys_addr.checked_add(r.memory_size).ok_or(EINVAL)?;
        let user = usize::try_from(r.userspace_addr).map_err(|_| EFAULT)?;
        let size = usize::try_from(r.memory_size).map_err(|_| EINVAL)?;
        if r.memory_size == 0 {
            return Err(EINVAL);
        }
        // SAFETY: access_ok only checks the range against the user address limit.
        if user.checked_add(size).is_none() || !unsafe { vhost_console_access_ok(user, size) } {
            return Err(EFAULT);
        }
        if regions.iter().any(|o: &Region| r.guest_phys_addr < o.guest + o.size && o.guest < guest_end) {
            return Err(EINVAL);
        }
        regions.push(Region { guest: r.guest_phys_addr, size: r.memory_size, user: r.userspace_addr }, GFP_KERNEL)?;
    }
    Ok(regions)
}

/// The eventfd's poll hands us its wait queue (vhost_poll_func).
unsafe extern "C" fn queue_proc(
    _file: *mut bindings::file,
    wqh: *mut bindings::wait_queue_head,
    pt: *mut bindings::poll_table_struct,
) {
    // SAFETY: `pt` is the `table` field of a `Poll`, passed in start_poll.
    let poll = unsafe { &*kernel::container_of!(pt as *const Opaque<bindings::poll_table_struct>, Poll, table) };
    poll.wqh.set(wqh);
    // SAFETY: `wqh` belongs to the file being polled, which we hold.
    unsafe { bindings::add_wait_queue(wqh, poll.wait.get()) };
}

/// A kick: the eventfd was signalled (vhost_poll_wakeup). Atomic context.
unsafe extern "C" fn wake(wait: *mut bindings::wait_queue_entry, _mode: c_uint, _sync: c_int, key: *mut c_void) -> c_int {
    if (key as usize as u32) & EPOLLIN == 0 {
        return 0;
    }
    // SAFETY: `wait` is the `wait` field of a `Poll` queued by queue_proc;
    // while it is queued, `dev` points at the live device.
    unsafe {
        let poll = &*kernel::container_of!(wait as *const Opaque<bindings::wait_queue_entry>, Poll, wait);
        (*poll.dev.get()).kick(poll.index);
    }
    0
}

/// The worker's body, called by vhost_task until it returns false (then it
/// sleeps until `kick` wakes it).
unsafe extern "C" fn worker(data: *mut c_void) -> bool {
    // SAFETY: `data` is the device, alive until `stop` has ended this task.
    let dev = unsafe { &*(data as *const VhostConsole) };
    let pending = dev.pending.swap(0, Ordering::AcqRel);
    if pending == 0 {
        return false;
    }
    // vhost_task calls us in TASK_INTERRUPTIBLE, ready to sleep if we find
    // nothing; with work to do we may block (the mutex, the output file), so
    // become runnable first, as vhost_run_work_list does.
    // SAFETY: only changes the state of the current task.
    unsafe { vhost_console_set_running() };
    if pending & (1 << TRANSMITQ) != 0 && dev.handle_transmitq() {
        // Over budget: run again before sleeping, and let others run first.
        dev.pending.fetch_or(1 << TRANSMITQ, Ordering::AcqRel);
        // SAFETY: cond_resched may sleep; we are in process context holding nothing.
        unsafe { bindings::__cond_resched() };
    }
    // receiveq kicks need nothing: the device has no input to give.
    true
}

/// The owner was killed: vhost_task exits without calling `worker` again.
/// Everything is released when the file is closed.
unsafe extern "C" fn worker_killed(_data: *mut c_void) {}

unsafe extern "C" fn open(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    match KBox::pin_init(VhostConsole::new(), GFP_KERNEL) {
        Ok(dev) => {
            // SAFETY: the box is only turned back into a box in `release`,
            // which drops it in place: it never moves.
            let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(dev) });
            // SAFETY: `file` is being opened; private_data is ours to set.
            unsafe { (*file).private_data = raw.cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

unsafe extern "C" fn release(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: `open` stored a KBox<VhostConsole> there; this is the last use.
    let dev = unsafe { KBox::from_raw((*file).private_data as *mut VhostConsole) };
    dev.stop();
    drop(dev);
    0
}

unsafe extern "C" fn unlocked_ioctl(file: *mut bindings::file, cmd: c_uint, arg: kernel::ffi::c_ulong) -> kernel::ffi::c_long {
    // SAFETY: `open` stored the device there; it lives until `release`.
    let dev = unsafe { &*((*file).private_data as *const VhostConsole) };
    match dev.ioctl(cmd, arg as usize) {
        Ok(v) => v as kernel::ffi::c_long,
        Err(e) => e.to_errno() as kernel::ffi::c_long,
    }
}

pub(crate) fn fops() -> bindings::file_operations {
    bindings::file_operations {
        open: Some(open),
        release: Some(release),
        unlocked_ioctl: Some(unlocked_ioctl),
        llseek: Some(bindings::noop_llseek),
        // SAFETY: all-zero is a valid file_operations: every hook absent.
        ..unsafe { core::mem::zeroed() }
    }
}
