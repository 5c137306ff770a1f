// SPDX-License-Identifier: GPL-2.0
//! The vhost core (drivers/vhost/vhost.c): the owner and its worker, the
//! memory table, the virtqueue ioctls, and kick polling, for any device that
//! implements [`Device`]. It knows no device: the device embeds its own state
//! and handles each queue's kicks.
//!
//! Locking, as vhost's: `dev` (the device mutex) serializes the ioctls and
//! owns the kick polls; each virtqueue has its own mutex, which the worker
//! takes to run that queue and the ioctls take to change it, always after
//! `dev`. The worker never takes `dev`, so an ioctl may wait for the worker
//! (RESET_OWNER stops it) but the worker never waits for an ioctl. The kick
//! wake-up runs in atomic context and touches only the `Worker`
//! (worker.rs).

use core::ffi::{c_int, c_uint, c_void};
use core::pin::Pin;
use core::sync::atomic::{fence, Ordering};

use kernel::bindings;
use kernel::error::code::*;
use kernel::init::{init_array_from_fn, pin_init_array_from_fn};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::Mutex;
use kernel::types::FromBytes;
use kernel::uaccess::UserSlice;

use crate::poll::Poll;
use crate::refs::{EventFd, FileRef, MmRef};
use crate::sys::{self, EPOLLIN};
use crate::uapi::*;
use crate::vring::{QueueError, Region, Vring, MAX_SIZE};
use crate::worker::Worker;

/// Virtqueues per device: the console's 32 ports make 64 (vhost.c
/// allocates `nvqs`; a fixed count keeps the arrays plain, and the worker's
/// pending work one u64).
pub(crate) const NUM_QUEUES: usize = 64;
/// vhost's default `max_mem_regions`.
const MAX_MEM_REGIONS: u32 = 64;
/// The longest busy-poll window a queue may ask for (µs). vhost-net takes
/// any u32 (71 minutes); the worker stops polling on need_resched() or a
/// signal either way, but no ioctl should wait on a queue's mutex that long.
pub(crate) const MAX_BUSYLOOP_US: u32 = 1_000_000;

pub(crate) fn errno(e: u32) -> Error {
    Error::from_errno(-(e as i32))
}

/// What a device built on this core provides (vhost.c's users: net.c,
/// vsock.c, test.c).
pub(crate) trait Device: Sized + Send + Sync + 'static {
    /// The device's state for one virtqueue (vhost's `private_data`), under
    /// that queue's mutex.
    type Queue: Default + Send;
    /// The worker's name, and the prefix of the device's log lines.
    const NAME: &'static CStr;
    /// The virtio features the device offers.
    const FEATURES: u64;

    fn new() -> impl PinInit<Self, Error>;

    /// Runs queue `index` after a kick, in the worker, with its mutex held.
    /// Returns true if it stopped over budget with work left: the worker runs
    /// it again after a scheduling point (vhost_exceeds_weight).
    fn handle_kick(&self, worker: &Worker, index: usize, vq: &mut Vq<Self::Queue>) -> bool;

    /// Whether the queue is live (a backend attached): its ring may not be
    /// reconfigured then (vhost's `vq->private_data` check).
    fn busy(queue: &Self::Queue) -> bool;

    /// Stops whatever the device polls for queue `index`; after it, the
    /// device queues no more work for it. With the queue's mutex held.
    fn stop_queue(&self, index: usize, queue: &mut Self::Queue);

    /// The device's own ioctls, after the owner check, with the device mutex
    /// held; ENOTTY for an unknown command.
    fn ioctl(vhost: &VhostDev<Self>, cmd: u32, arg: usize) -> Result;
}

/// One virtqueue's state, under its mutex.
pub(crate) struct Vq<Q> {
    pub(crate) ring: Vring,
    /// A copy of the memory table, as vhost gives each virtqueue its `umem`.
    pub(crate) mem: KVec<Region>,
    call: Option<EventFd>,
    err: Option<EventFd>,
    /// Set while the device is being stopped: the worker leaves the queue be.
    stopped: bool,
    pub(crate) device: Q,
}

impl<Q: Default> Vq<Q> {
    fn new() -> Self {
        Vq { ring: Vring::default(), mem: KVec::new(), call: None, err: None, stopped: false, device: Q::default() }
    }

    /// Signals the call eventfd after buffers were used, unless the driver
    /// asked for no interrupt (vhost_notify, §2.7.7).
    pub(crate) fn signal_used(&mut self) {
        let Some(call) = &self.call else { return };
        // The used index store before the flags or used_event load
        // (vhost_notify's smp_mb()): else the driver may have asked for an
        // interrupt and gone to sleep on an index it never saw.
        fence(Ordering::SeqCst);
        if self.ring.wants_interrupt().unwrap_or(true) {
            call.signal();
        }
    }

    /// Signals the call eventfd whatever the driver asked for.
    pub(crate) fn signal_call(&self) {
        if let Some(call) = &self.call {
            call.signal();
        }
    }

    /// Stops the queue on a driver error or a failed backend file (vhost's
    /// vq_err): one log line, the err eventfd signalled, nothing runs until
    /// the ring is set up again.
    pub(crate) fn fail(&mut self, device: &CStr, queue: impl core::fmt::Display, e: QueueError) {
        pr_warn!("{}: {}: {}; queue stopped\n", device, queue, e);
        self.ring.broken = true;
        if let Some(err) = &self.err {
            err.signal();
        }
    }
}

/// What the ioctls configure for the device as a whole, under `dev`.
struct DevState {
    owner: Option<MmRef>,
    features: u64,
    mem: KVec<Region>,
}

impl DevState {
    fn new() -> Self {
        DevState { owner: None, features: 0, mem: KVec::new() }
    }
}

/// One open of a vhost device file.
#[pin_data]
pub(crate) struct VhostDev<D: Device> {
    #[pin]
    dev: Mutex<DevState>,
    #[pin]
    vqs: [Mutex<Vq<D::Queue>>; NUM_QUEUES],
    /// Each queue's kick eventfd; started and stopped under `dev`.
    kicks: [Poll; NUM_QUEUES],
    worker: Worker,
    #[pin]
    pub(crate) device: D,
}

// SAFETY: the state is behind mutexes; `worker` is atomics; the polls are
// serialized by `dev` (see Poll); the device is Sync.
unsafe impl<D: Device> Sync for VhostDev<D> {}
// SAFETY: as above.
unsafe impl<D: Device> Send for VhostDev<D> {}

impl<D: Device> VhostDev<D> {
    fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            dev <- kernel::new_mutex!(DevState::new(), "vhost_dev"),
            vqs <- pin_init_array_from_fn(|_| kernel::new_mutex!(Vq::new(), "vhost_vq")),
            // In place, one Poll at a time: 64 of them by value would be some
            // 10 KiB of a 16 KiB kernel stack.
            kicks <- init_array_from_fn::<_, NUM_QUEUES, _, Error>(|i| Poll::new(i, EPOLLIN)),
            worker: Worker::new(),
            device <- D::new(),
        }? Error)
    }

    pub(crate) fn vq(&self, index: usize) -> &Mutex<Vq<D::Queue>> {
        &self.vqs[index]
    }

    pub(crate) fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Stops every poll and the worker (vhost_dev_stop, vhost_dev_cleanup's
    /// worker part), with `dev` held or on release. Afterwards nothing runs
    /// on the queues.
    fn stop(&self) {
        // The device's polls first, with each queue's mutex: the worker
        // finishes its run and, seeing `stopped`, starts none again.
        for (i, vq) in self.vqs.iter().enumerate() {
            let mut vq = vq.lock();
            vq.stopped = true;
            self.device.stop_queue(i, &mut vq.device);
        }
        for kick in &self.kicks {
            kick.stop();
        }
        // SAFETY: the polls are stopped, so no wake-up is running now; the
        // ioctls that queue work hold `dev`, which the caller holds (reset),
        // or the file is being released and no ioctl runs. The task body
        // takes no lock held here but the queue mutexes, released above.
        unsafe { self.worker.stop() };
    }

    /// Back to the state of a fresh open (vhost_dev_reset_owner).
    fn reset(&self, dev: &mut DevState) {
        self.stop();
        for vq in &self.vqs {
            *vq.lock() = Vq::new();
        }
        self.worker.forget();
        *dev = DevState::new();
    }

    fn set_owner(&self, dev: &mut DevState) -> Result {
        if dev.owner.is_some() {
            return Err(EBUSY);
        }
        let mm = MmRef::current().ok_or(EINVAL)?;
        // SAFETY: `self` is pinned and outlives the task: `stop` ends it
        // before the device is freed. Without an owner no worker runs
        // (a fresh open, or `reset` stopped it).
        unsafe { self.worker.start(worker::<D>, worker_killed, self as *const Self as *mut c_void, D::NAME)? };
        dev.owner = Some(mm);
        Ok(())
    }

    /// The ioctl entry point (vhost_dev_ioctl, vhost_vring_ioctl, then the device's).
    fn ioctl(&self, cmd: u32, arg: usize) -> Result {
        let mut dev = self.dev.lock();
        match cmd {
            VHOST_GET_FEATURES => return UserSlice::new(arg, 8).writer().write(&D::FEATURES),
            VHOST_SET_OWNER => return self.set_owner(&mut dev),
            // Only the owner's process may use the device (vhost_dev_check_owner).
            _ if !dev.owner.as_ref().is_some_and(MmRef::is_current) => return Err(EPERM),
            _ => {}
        }
        match cmd {
            VHOST_RESET_OWNER => self.reset(&mut dev),
            VHOST_SET_FEATURES => {
                let features: u64 = read(arg)?;
                if features & !D::FEATURES != 0 {
                    return Err(errno(bindings::EOPNOTSUPP));
                }
                dev.features = features;
                // Each queue's copy under its mutex (vhost_set_features).
                for vq in &self.vqs {
                    vq.lock().ring.event_idx = features & VIRTIO_RING_F_EVENT_IDX != 0;
                }
            }
            VHOST_SET_MEM_TABLE => {
                let mem = read_mem_table(arg)?;
                // Each queue gets its copy under its own mutex (vhost_set_memory).
                for vq in &self.vqs {
                    let mut copy = KVec::with_capacity(mem.len(), GFP_KERNEL)?;
                    copy.extend_from_slice(&mem, GFP_KERNEL)?;
                    vq.lock().mem = copy;
                }
                dev.mem = mem;
            }
            VHOST_SET_VRING_NUM | VHOST_SET_VRING_ADDR | VHOST_SET_VRING_BASE | VHOST_GET_VRING_BASE
            | VHOST_SET_VRING_KICK | VHOST_SET_VRING_CALL | VHOST_SET_VRING_ERR
            | VHOST_SET_VRING_BUSYLOOP_TIMEOUT | VHOST_GET_VRING_BUSYLOOP_TIMEOUT => self.vring_ioctl(cmd, arg)?,
            _ => D::ioctl(self, cmd, arg)?,
        }
        Ok(())
    }

    /// The per-queue ioctls (vhost_vring_ioctl), with `dev` held.
    fn vring_ioctl(&self, cmd: u32, arg: usize) -> Result {
        let index: u32 = read(arg)?;
        let i = index as usize;
        if i >= NUM_QUEUES {
            return Err(errno(bindings::ENOBUFS));
        }
        if cmd == VHOST_SET_VRING_KICK {
            let f: VringFile = read(arg)?;
            return match f.fd {
                -1 => {
                    self.kicks[i].stop();
                    Ok(())
                }
                fd => self.kicks[i].start(FileRef::eventfd(fd)?, &self.worker),
            };
        }
        let mut guard = self.vqs[i].lock();
        let vq = &mut *guard;
        // The ring may not move under an attached backend (vhost: private_data).
        let busy = D::busy(&vq.device);
        let ring = &mut vq.ring;
        match cmd {
            VHOST_SET_VRING_NUM => {
                let s: VringState = read(arg)?;
                if busy {
                    return Err(EBUSY);
                }
                if s.num == 0 || s.num > MAX_SIZE || !s.num.is_power_of_two() {
                    return Err(EINVAL);
                }
                ring.num = s.num as u16;
            }
            VHOST_SET_VRING_ADDR => {
                let a: VringAddr = read(arg)?;
                if busy {
                    return Err(EBUSY);
                }
                // LOG (dirty logging) is not supported; no other flag exists.
                if a.flags != 0 {
                    return Err(errno(bindings::EOPNOTSUPP));
                }
                if a.desc_user_addr % 16 != 0 || a.avail_user_addr % 2 != 0 || a.used_user_addr % 4 != 0 {
                    return Err(EINVAL);
                }
                let (Ok(desc), Ok(avail), Ok(used)) =
                    (usize::try_from(a.desc_user_addr), usize::try_from(a.avail_user_addr), usize::try_from(a.used_user_addr))
                else {
                    return Err(EFAULT);
                };
                let new = Vring { desc, avail, used, ..*ring };
                if !new.access_ok() {
                    return Err(EINVAL);
                }
                *ring = Vring { broken: false, ..new };
            }
            VHOST_SET_VRING_BASE => {
                let s: VringState = read(arg)?;
                if busy {
                    return Err(EBUSY);
                }
                let base = u16::try_from(s.num).map_err(|_| EINVAL)?;
                ring.last_avail = base;
                ring.used_idx = base;
                ring.signalled_used = None;
                ring.broken = false;
            }
            VHOST_GET_VRING_BASE => {
                let s = VringState { index, num: ring.last_avail.into() };
                UserSlice::new(arg, core::mem::size_of::<VringState>()).writer().write(&s)?;
            }
            VHOST_SET_VRING_BUSYLOOP_TIMEOUT => {
                let s: VringState = read(arg)?;
                if s.num > MAX_BUSYLOOP_US {
                    return Err(EINVAL);
                }
                ring.busyloop_timeout = s.num;
            }
            VHOST_GET_VRING_BUSYLOOP_TIMEOUT => {
                let s = VringState { index, num: ring.busyloop_timeout };
                UserSlice::new(arg, core::mem::size_of::<VringState>()).writer().write(&s)?;
            }
            VHOST_SET_VRING_CALL => vq.call = EventFd::get_or_unbind(read::<VringFile>(arg)?.fd)?,
            _ => vq.err = EventFd::get_or_unbind(read::<VringFile>(arg)?.fd)?,
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
    if header.padding != 0 {
        return Err(errno(bindings::EOPNOTSUPP));
    }
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
        if user.checked_add(size).is_none() || !unsafe { sys::vhost_console_access_ok(user, size) } {
            return Err(EFAULT);
        }
        if regions.iter().any(|o: &Region| r.guest_phys_addr < o.guest + o.size && o.guest < guest_end) {
            return Err(EINVAL);
        }
        regions.push(Region { guest: r.guest_phys_addr, size: r.memory_size, user: r.userspace_addr }, GFP_KERNEL)?;
    }
    Ok(regions)
}

/// The worker's body, called by vhost_task until it returns false (then it
/// sleeps until `Worker::queue` wakes it). Between calls vhost_task checks
/// for SIGKILL and for `stop`.
unsafe extern "C" fn worker<D: Device>(data: *mut c_void) -> bool {
    // SAFETY: `data` is the device, alive until `stop` has ended this task.
    let vhost = unsafe { &*(data as *const VhostDev<D>) };
    let pending = vhost.worker.take();
    if pending == 0 {
        return false;
    }
    // vhost_task calls us in TASK_INTERRUPTIBLE, ready to sleep if we find
    // nothing; with work to do we may block (a mutex, a file), so become
    // runnable first, as vhost_run_work_list does.
    sys::set_running();
    for (i, vq) in vhost.vqs.iter().enumerate() {
        if pending & (1 << i) == 0 {
            continue;
        }
        let more = {
            let mut vq = vq.lock();
            !vq.stopped && vhost.device.handle_kick(&vhost.worker, i, &mut vq)
        };
        if more {
            vhost.worker.requeue(i);
        }
        // After each work item, as vhost_run_work_list: a guest that keeps
        // the queue busy must not keep others off this CPU.
        sys::cond_resched();
    }
    true
}

/// The owner was killed: vhost_task exits without calling `worker` again and
/// `stop` only waits for it; everything is released when the file closes.
unsafe extern "C" fn worker_killed(_data: *mut c_void) {}

unsafe extern "C" fn open<D: Device>(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // Some 40 KiB with 64 queues (more with lockdep): kvmalloc, as
    // vhost_net_open allocates its device.
    match KVBox::pin_init(VhostDev::<D>::new(), GFP_KERNEL) {
        Ok(dev) => {
            // SAFETY: the box is only turned back into a box in `release`,
            // which drops it in place: it never moves.
            let raw = KVBox::into_raw(unsafe { Pin::into_inner_unchecked(dev) });
            // SAFETY: `file` is being opened; private_data is ours to set.
            unsafe { (*file).private_data = raw.cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

unsafe extern "C" fn release<D: Device>(_inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: `open` stored a KVBox<VhostDev<D>> there; this is the last use.
    let vhost = unsafe { KVBox::from_raw((*file).private_data as *mut VhostDev<D>) };
    vhost.stop();
    drop(vhost);
    0
}

unsafe extern "C" fn unlocked_ioctl<D: Device>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: kernel::ffi::c_ulong,
) -> kernel::ffi::c_long {
    // SAFETY: `open` stored the device there; it lives until `release`.
    let vhost = unsafe { &*((*file).private_data as *const VhostDev<D>) };
    match vhost.ioctl(cmd, arg as usize) {
        Ok(()) => 0,
        Err(e) => e.to_errno() as kernel::ffi::c_long,
    }
}

/// The file operations of a vhost device file for device `D`.
pub(crate) fn fops<D: Device>() -> bindings::file_operations {
    bindings::file_operations {
        open: Some(open::<D>),
        release: Some(release::<D>),
        unlocked_ioctl: Some(unlocked_ioctl::<D>),
        // Every argument is a pointer to a struct laid out alike for 32-bit
        // callers (vhost.h's types are fixed-size).
        #[cfg(CONFIG_COMPAT)]
        compat_ioctl: Some(bindings::compat_ptr_ioctl),
        llseek: Some(bindings::noop_llseek),
        // SAFETY: all-zero is a valid file_operations: every hook absent.
        ..unsafe { core::mem::zeroed() }
    }
}
