//! The virtio-mmio transport, modern interface (VirtIO 1.2 §4.2.2): register
//! decoding, the device status state machine, feature paging, and queue
//! configuration, validated once when the driver enables a queue. The device
//! behind it only sees checked queues. InterruptStatus lives in the shared
//! `IrqTrigger`, which other threads raise without this transport's lock.

use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::*;
use crate::warn;

/// What the transport reports the driver's status steps to.
pub type Lifecycle = Box<dyn FnMut(&str) + Send>;

/// Size of the register window (registers up to 0x0ff, then configuration space).
pub const MMIO_WINDOW_SIZE: u64 = 0x1000;

const MAGIC_VALUE: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2; // modern (non-legacy) interface
const VENDOR_ID: u32 = 0x554d_4551; // "QEMU", the customary vendor for emulated devices

// Register offsets (VirtIO 1.2 §4.2.2), from virtio-bindings where it has them.
use virtio_bindings::virtio_mmio as reg;
const MAGIC_VALUE_REG: u64 = reg::VIRTIO_MMIO_MAGIC_VALUE as u64;
const VERSION_REG: u64 = reg::VIRTIO_MMIO_VERSION as u64;
const DEVICE_ID: u64 = reg::VIRTIO_MMIO_DEVICE_ID as u64;
const VENDOR_ID_REG: u64 = reg::VIRTIO_MMIO_VENDOR_ID as u64;
const DEVICE_FEATURES: u64 = reg::VIRTIO_MMIO_DEVICE_FEATURES as u64;
const DEVICE_FEATURES_SEL: u64 = reg::VIRTIO_MMIO_DEVICE_FEATURES_SEL as u64;
const DRIVER_FEATURES: u64 = reg::VIRTIO_MMIO_DRIVER_FEATURES as u64;
const DRIVER_FEATURES_SEL: u64 = reg::VIRTIO_MMIO_DRIVER_FEATURES_SEL as u64;
const QUEUE_SEL: u64 = reg::VIRTIO_MMIO_QUEUE_SEL as u64;
const QUEUE_NUM_MAX: u64 = reg::VIRTIO_MMIO_QUEUE_NUM_MAX as u64;
const QUEUE_NUM: u64 = reg::VIRTIO_MMIO_QUEUE_NUM as u64;
const QUEUE_READY: u64 = reg::VIRTIO_MMIO_QUEUE_READY as u64;
pub const QUEUE_NOTIFY: u64 = reg::VIRTIO_MMIO_QUEUE_NOTIFY as u64;
const INTERRUPT_STATUS: u64 = reg::VIRTIO_MMIO_INTERRUPT_STATUS as u64;
const INTERRUPT_ACK: u64 = reg::VIRTIO_MMIO_INTERRUPT_ACK as u64;
const STATUS: u64 = reg::VIRTIO_MMIO_STATUS as u64;
const QUEUE_DESC_LOW: u64 = reg::VIRTIO_MMIO_QUEUE_DESC_LOW as u64;
const QUEUE_DESC_HIGH: u64 = reg::VIRTIO_MMIO_QUEUE_DESC_HIGH as u64;
const QUEUE_DRIVER_LOW: u64 = reg::VIRTIO_MMIO_QUEUE_AVAIL_LOW as u64;
const QUEUE_DRIVER_HIGH: u64 = reg::VIRTIO_MMIO_QUEUE_AVAIL_HIGH as u64;
const QUEUE_DEVICE_LOW: u64 = reg::VIRTIO_MMIO_QUEUE_USED_LOW as u64;
const QUEUE_DEVICE_HIGH: u64 = reg::VIRTIO_MMIO_QUEUE_USED_HIGH as u64;
const SHM_SEL: u64 = reg::VIRTIO_MMIO_SHM_SEL as u64;
const SHM_LEN_LOW: u64 = reg::VIRTIO_MMIO_SHM_LEN_LOW as u64;
const SHM_LEN_HIGH: u64 = reg::VIRTIO_MMIO_SHM_LEN_HIGH as u64;
const SHM_BASE_LOW: u64 = reg::VIRTIO_MMIO_SHM_BASE_LOW as u64;
const SHM_BASE_HIGH: u64 = reg::VIRTIO_MMIO_SHM_BASE_HIGH as u64;
/// Not in virtio-bindings 0.2 (VirtIO 1.2 added it).
const QUEUE_RESET: u64 = 0x0c0;
const CONFIG_GENERATION: u64 = reg::VIRTIO_MMIO_CONFIG_GENERATION as u64;
const CONFIG_OFFSET: u64 = reg::VIRTIO_MMIO_CONFIG as u64;
pub const INT_USED_RING: u32 = reg::VIRTIO_MMIO_INT_VRING;
pub const INT_CONFIG: u32 = reg::VIRTIO_MMIO_INT_CONFIG;

/// Why a queue cannot be enabled (QueueReady = 1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetupError {
    #[error("enabled before all three ring addresses were written")]
    AddressesMissing,
    #[error("{0} {1:#x} is not {2}-byte aligned")]
    Misaligned(&'static str, u64, u64),
    #[error("available ring at guest address 0 is not supported")]
    AvailAtZero,
    #[error("rings (descriptors {desc:#x}, available {driver:#x}, used {device:#x}, size {size}) are not all inside guest memory")]
    OutsideMemory { desc: u64, driver: u64, device: u64, size: u16 },
}

/// A queue's configuration as programmed by the driver. Its addresses are
/// handed to `Queue` only when the driver enables it, so that every check
/// (all set, aligned, inside RAM) happens once, with a precise error.
#[derive(Default)]
struct QueueSetup {
    desc: u64,
    driver: u64,
    device: u64,
    /// Bits 0..2: desc, driver, device area written since reset.
    written: u8,
}

pub struct MmioTransport<D: VirtioDevice + ?Sized> {
    device: Box<D>,
    /// Device features not offered to the driver (`withhold_features`).
    withheld: u64,
    queues: Vec<Queue>,
    setups: Vec<QueueSetup>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    irq: Arc<IrqTrigger>,
    /// Bit i: queue i stopped at its budget with work left.
    pending: u128,
    /// Bit i: queue i stopped because the device's backend had no room.
    blocked: u128,
    /// ConfigGeneration: moves with every change of the configuration
    /// space the device makes (a console's size).
    config_generation: u32,
    /// Signalled when a queue stops at its budget: whoever runs `resume`
    /// learns there is work for it.
    requeue: Option<Arc<EventFd>>,
    /// Told each status step the driver takes (the lifecycle lines the
    /// binary prints); the transport itself prints nothing.
    lifecycle: Option<Lifecycle>,
    /// QueueNotify writes handled, for statistics.
    pub notifications: u64,
    /// QueueNotify writes that came through an ioeventfd, for statistics.
    pub kicks: u64,
    /// Used-buffer notifications raised, for statistics.
    pub used_notifications: u64,
    failures: u64,
}

/// Register names, for log lines.
fn register_name(offset: u64) -> &'static str {
    match offset {
        MAGIC_VALUE_REG => "MagicValue",
        VERSION_REG => "Version",
        DEVICE_ID => "DeviceID",
        VENDOR_ID_REG => "VendorID",
        DEVICE_FEATURES => "DeviceFeatures",
        DEVICE_FEATURES_SEL => "DeviceFeaturesSel",
        DRIVER_FEATURES => "DriverFeatures",
        DRIVER_FEATURES_SEL => "DriverFeaturesSel",
        QUEUE_SEL => "QueueSel",
        QUEUE_NUM_MAX => "QueueNumMax",
        QUEUE_NUM => "QueueNum",
        QUEUE_READY => "QueueReady",
        QUEUE_NOTIFY => "QueueNotify",
        INTERRUPT_STATUS => "InterruptStatus",
        INTERRUPT_ACK => "InterruptACK",
        STATUS => "Status",
        QUEUE_DESC_LOW => "QueueDescLow",
        QUEUE_DESC_HIGH => "QueueDescHigh",
        QUEUE_DRIVER_LOW => "QueueDriverLow",
        QUEUE_DRIVER_HIGH => "QueueDriverHigh",
        QUEUE_DEVICE_LOW => "QueueDeviceLow",
        QUEUE_DEVICE_HIGH => "QueueDeviceHigh",
        SHM_SEL => "SHMSel",
        SHM_LEN_LOW => "SHMLenLow",
        SHM_LEN_HIGH => "SHMLenHigh",
        SHM_BASE_LOW => "SHMBaseLow",
        SHM_BASE_HIGH => "SHMBaseHigh",
        QUEUE_RESET => "QueueReset",
        CONFIG_GENERATION => "ConfigGeneration",
        _ => "an unknown register",
    }
}

impl<D: VirtioDevice + ?Sized> MmioTransport<D> {
    /// The transport for `device`, raising its interrupts through `irq`.
    pub fn new(device: Box<D>, irq: Arc<IrqTrigger>) -> Self {
        let queues = device
            .queue_max_sizes()
            .iter()
            .map(|&max| Queue::new(max).expect("device queue sizes are powers of two"))
            .collect();
        let setups = device.queue_max_sizes().iter().map(|_| QueueSetup::default()).collect();
        MmioTransport {
            device,
            withheld: 0,
            queues,
            setups,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            irq,
            pending: 0,
            blocked: 0,
            config_generation: 0,
            requeue: None,
            lifecycle: None,
            notifications: 0,
            kicks: 0,
            used_notifications: 0,
            failures: 0,
        }
    }

    /// Offers the driver the device's features less `features` (to measure
    /// without VIRTIO_RING_F_EVENT_IDX, say).
    pub fn withhold_features(&mut self, features: u64) {
        self.withheld = features;
    }

    fn offered_features(&self) -> u64 {
        self.device.features() & !self.withheld
    }

    /// Calls `f` with a line for each status step the driver takes.
    pub fn set_lifecycle(&mut self, f: Lifecycle) {
        self.lifecycle = Some(f);
    }

    /// Signal `requeue` whenever a queue stops at its budget with work left.
    pub fn set_requeue(&mut self, requeue: Arc<EventFd>) {
        self.requeue = Some(requeue);
    }

    /// InterruptStatus and the line, shared with whoever else raises them.
    pub fn irq(&self) -> &Arc<IrqTrigger> {
        &self.irq
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    pub fn status(&self) -> u32 {
        self.status
    }

    pub fn interrupt_status(&self) -> u32 {
        self.irq.status()
    }

    /// Features the driver acked (meaningful once FEATURES_OK is set).
    pub fn acked_features(&self) -> u64 {
        self.driver_features
    }

    pub fn queue(&self, index: usize) -> Option<&Queue> {
        self.queues.get(index)
    }

    /// A guest read of `data.len()` bytes at `offset` in the window.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= CONFIG_OFFSET {
            if !self.device.read_config(offset - CONFIG_OFFSET, data) {
                warn!(
                    "virtio-mmio: {}-byte read at config offset {:#x} is outside the configuration space; reads as 0",
                    data.len(),
                    offset - CONFIG_OFFSET
                );
                data.fill(0);
            }
            return;
        }
        data.fill(0);
        if data.len() != 4 || !offset.is_multiple_of(4) {
            warn!(
                "virtio-mmio: {}-bit read of {} ({offset:#05x}) ignored: registers are 32-bit",
                data.len() * 8,
                register_name(offset)
            );
            return;
        }
        let value = match offset {
            MAGIC_VALUE_REG => MAGIC_VALUE,
            VERSION_REG => VERSION,
            DEVICE_ID => self.device.device_id(),
            VENDOR_ID_REG => VENDOR_ID,
            DEVICE_FEATURES => match self.device_features_sel {
                0 => self.offered_features() as u32,
                1 => (self.offered_features() >> 32) as u32,
                _ => 0,
            },
            QUEUE_NUM_MAX => self.selected().map_or(0, |q| u32::from(self.queues[q].max_size())),
            QUEUE_READY => self.selected().map_or(0, |q| u32::from(self.queues[q].ready())),
            INTERRUPT_STATUS => self.irq.status(),
            STATUS => self.status,
            CONFIG_GENERATION => self.config_generation,
            // No shared memory regions: every SHMSel names one that does not
            // exist, whose length and base read as -1 (§4.2.2).
            SHM_LEN_LOW..=SHM_BASE_HIGH => u32::MAX,
            // VIRTIO_F_RING_RESET is not offered: no reset is ever in progress.
            QUEUE_RESET => 0,
            DEVICE_FEATURES_SEL
            | DRIVER_FEATURES
            | DRIVER_FEATURES_SEL
            | QUEUE_SEL
            | QUEUE_NUM
            | QUEUE_NOTIFY
            | INTERRUPT_ACK
            | QUEUE_DESC_LOW..=QUEUE_DEVICE_HIGH
            | SHM_SEL => {
                warn!("virtio-mmio: read of write-only register {} ({offset:#05x}) ignored", register_name(offset));
                0
            }
            _ => {
                warn!("virtio-mmio: read of unknown register {offset:#05x} ignored");
                0
            }
        };
        data.copy_from_slice(&value.to_le_bytes());
    }

    /// A guest write of `data` at `offset` in the window. Returns whether a
    /// used-buffer notification is due (the driver should be interrupted).
    pub fn write(&mut self, offset: u64, data: &[u8], mem: &GuestMemoryMmap) -> bool {
        if offset >= CONFIG_OFFSET {
            if !self.device.write_config(offset - CONFIG_OFFSET, data) {
                warn!(
                    "virtio-mmio: {}-byte write at config offset {:#x} ignored: not a writable configuration field",
                    data.len(),
                    offset - CONFIG_OFFSET
                );
            }
            return false;
        }
        if data.len() != 4 || !offset.is_multiple_of(4) {
            warn!(
                "virtio-mmio: {}-bit write to {} ({offset:#05x}) ignored: registers are 32-bit",
                data.len() * 8,
                register_name(offset)
            );
            return false;
        }
        let value = u32::from_le_bytes(data.try_into().expect("length checked above"));
        match offset {
            DEVICE_FEATURES_SEL => self.device_features_sel = value,
            DRIVER_FEATURES => self.write_driver_features(value),
            DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            QUEUE_SEL => self.queue_sel = value,
            QUEUE_NUM => self.write_queue_num(value),
            QUEUE_READY => self.write_queue_ready(value, mem),
            QUEUE_NOTIFY => return self.notify(value, mem),
            INTERRUPT_ACK => self.irq.ack(value),
            STATUS => self.write_status(value, mem),
            QUEUE_DESC_LOW..=QUEUE_DEVICE_HIGH if offset % 16 < 8 => self.write_queue_address(offset, value),
            SHM_SEL => {} // selects among no regions
            QUEUE_RESET => warn!("virtio-mmio: QueueReset write ignored: VIRTIO_F_RING_RESET was not offered"),
            MAGIC_VALUE_REG
            | VERSION_REG
            | DEVICE_ID
            | VENDOR_ID_REG
            | DEVICE_FEATURES
            | QUEUE_NUM_MAX
            | INTERRUPT_STATUS
            | SHM_LEN_LOW..=SHM_BASE_HIGH
            | CONFIG_GENERATION => {
                warn!("virtio-mmio: write to read-only register {} ({offset:#05x}) ignored", register_name(offset));
            }
            _ => warn!("virtio-mmio: write to unknown register {offset:#05x} ignored"),
        }
        false
    }

    fn selected(&self) -> Option<usize> {
        let q = self.queue_sel as usize;
        (q < self.queues.len()).then_some(q)
    }

    /// Puts the device in DEVICE_NEEDS_RESET (§2.1.2): queues stop until the
    /// driver resets the device, here and wherever else they run (the
    /// kernel); a live driver gets a configuration interrupt.
    pub fn needs_reset(&mut self, why: std::fmt::Arguments) {
        warn!("virtio-mmio: {why}; device needs reset");
        self.status |= STATUS_DEVICE_NEEDS_RESET;
        self.failures += 1;
        self.pending = 0;
        self.blocked = 0;
        self.device.stopped();
        if self.status & STATUS_DRIVER_OK != 0 {
            self.irq.trigger(INT_CONFIG);
        }
    }

    /// How often the device went into DEVICE_NEEDS_RESET: a run in which a
    /// device failed lost the data of the chain it failed on.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    fn broken(&self) -> bool {
        self.status & (STATUS_DEVICE_NEEDS_RESET | STATUS_FAILED) != 0
    }

    fn write_driver_features(&mut self, value: u32) {
        // §3.1.1: features are written after DRIVER and before FEATURES_OK.
        if self.status & STATUS_DRIVER == 0 || self.status & STATUS_FEATURES_OK != 0 {
            warn!("virtio-mmio: DriverFeatures write ignored in device status {:#04x}", self.status);
            return;
        }
        match self.driver_features_sel {
            0 => self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(value),
            1 => self.driver_features = (self.driver_features & 0xffff_ffff) | u64::from(value) << 32,
            sel if value != 0 => warn!("virtio-mmio: DriverFeatures page {sel} does not exist; ignored"),
            _ => {}
        }
    }

    /// The selected queue, if the driver may configure it now (§4.2.3.2:
    /// after FEATURES_OK, before DRIVER_OK, while the queue is disabled).
    fn configurable_queue(&self, register: &str) -> Option<usize> {
        if self.broken() {
            return None; // the error was reported; nothing is configured until a reset
        }
        let Some(q) = self.selected() else {
            warn!(
                "virtio-mmio: {register} write for queue {} ignored: the device has {} queues",
                self.queue_sel,
                self.queues.len()
            );
            return None;
        };
        if self.status & STATUS_FEATURES_OK == 0 || self.status & STATUS_DRIVER_OK != 0 {
            warn!("virtio-mmio: {register} write for queue {q} ignored in device status {:#04x}", self.status);
            return None;
        }
        if self.queues[q].ready() {
            warn!("virtio-mmio: {register} write for queue {q} ignored: the queue is enabled");
            return None;
        }
        Some(q)
    }

    fn write_queue_num(&mut self, value: u32) {
        let Some(q) = self.configurable_queue("QueueNum") else { return };
        let max = self.queues[q].max_size();
        match u16::try_from(value).ok().map(|size| self.queues[q].try_set_size(size)) {
            Some(Ok(())) => {}
            _ => self.needs_reset(format_args!("queue {q}: size {value} is invalid (a power of two from 1 to {max})")),
        }
    }

    fn write_queue_address(&mut self, offset: u64, value: u32) {
        let Some(q) = self.configurable_queue(register_name(offset)) else { return };
        let setup = &mut self.setups[q];
        let (field, bit) = match offset & !0xf {
            QUEUE_DESC_LOW => (&mut setup.desc, 1),
            QUEUE_DRIVER_LOW => (&mut setup.driver, 2),
            _ => (&mut setup.device, 4),
        };
        *field = if offset.is_multiple_of(8) {
            (*field & !0xffff_ffff) | u64::from(value)
        } else {
            (*field & 0xffff_ffff) | u64::from(value) << 32
        };
        setup.written |= bit;
    }

    fn write_queue_ready(&mut self, value: u32, mem: &GuestMemoryMmap) {
        if value == 0 {
            if let Some(q) = self.selected().filter(|&q| self.queues[q].ready()) {
                self.queues[q].set_ready(false);
                self.pending &= !(1 << q);
                self.blocked &= !(1 << q);
                self.device.queue_disabled(q);
            }
            return;
        }
        let Some(q) = self.configurable_queue("QueueReady") else { return };
        if let Err(why) = self.enable_queue(q, mem) {
            self.needs_reset(format_args!("queue {q}: {why}"));
        }
    }

    /// Checks a queue's layout once, when the driver enables it (§2.7: ring
    /// alignment; every ring inside guest RAM).
    fn enable_queue(&mut self, q: usize, mem: &GuestMemoryMmap) -> Result<(), SetupError> {
        let setup = &self.setups[q];
        if setup.written != 7 {
            return Err(SetupError::AddressesMissing);
        }
        let queue = &mut self.queues[q];
        let (desc, driver, device) = (setup.desc, setup.driver, setup.device);
        queue
            .try_set_desc_table_address(GuestAddress(desc))
            .map_err(|_| SetupError::Misaligned("descriptor table", desc, 16))?;
        queue
            .try_set_avail_ring_address(GuestAddress(driver))
            .map_err(|_| SetupError::Misaligned("available ring", driver, 2))?;
        queue
            .try_set_used_ring_address(GuestAddress(device))
            .map_err(|_| SetupError::Misaligned("used ring", device, 4))?;
        // virtio-queue reads an available ring at 0 as "never set" and fails
        // every later access: refuse it here, with the reason.
        if driver == 0 {
            return Err(SetupError::AvailAtZero);
        }
        queue.set_ready(true);
        if !queue.is_valid(mem) {
            queue.set_ready(false);
            return Err(SetupError::OutsideMemory { desc, driver, device, size: queue.size() });
        }
        Ok(())
    }

    fn notify(&mut self, value: u32, mem: &GuestMemoryMmap) -> bool {
        self.notifications += 1;
        if self.broken() {
            return false; // already reported; nothing runs until a reset
        }
        let q = value as usize;
        if self.status & STATUS_DRIVER_OK == 0 {
            warn!("virtio-mmio: QueueNotify for queue {q} before DRIVER_OK ignored");
            return false;
        }
        if q >= self.queues.len() || !self.queues[q].ready() {
            warn!("virtio-mmio: QueueNotify for queue {q} ignored: no such enabled queue");
            return false;
        }
        self.run_queue(q, mem)
    }

    /// The driver notified queue `index` `count` times through an ioeventfd
    /// (the write never reached `write`): runs it if the device is live.
    /// Returns whether a used-buffer notification is due.
    pub fn kicked(&mut self, index: usize, count: u64, mem: &GuestMemoryMmap) -> bool {
        self.kicks += count;
        self.process(index, mem)
    }

    /// Runs queue `index` for a reason of the device's own (input arrived),
    /// if the driver has it live. Returns whether a used-buffer
    /// notification is due.
    pub fn process(&mut self, index: usize, mem: &GuestMemoryMmap) -> bool {
        let live = self.status & STATUS_DRIVER_OK != 0 && !self.broken();
        if !live || !self.queues.get(index).is_some_and(|q| q.ready()) {
            return false;
        }
        self.run_queue(index, mem)
    }

    /// Takes the news of a device whose `DeviceEvent::News` fd fired: runs
    /// the queues that stalled on its backend, or stops it with the error it
    /// found. Returns a host-side failure, which ends the VM.
    pub fn take_news(&mut self, mem: &GuestMemoryMmap) -> Option<String> {
        let news = self.device.poll_news();
        self.apply(news, mem)
    }

    /// The host's terminal has a new size: the device passes it on (a
    /// console with VIRTIO_CONSOLE_F_SIZE), in its configuration space or
    /// in a message on one of its queues.
    pub fn resize(&mut self, cols: u16, rows: u16, mem: &GuestMemoryMmap) {
        let news = self.device.resize(cols, rows);
        self.apply(news, mem);
    }

    fn apply(&mut self, news: News, mem: &GuestMemoryMmap) -> Option<String> {
        if news.config_changed {
            self.config_generation = self.config_generation.wrapping_add(1);
            if self.status & STATUS_DRIVER_OK != 0 && !self.broken() {
                self.irq.trigger(INT_CONFIG);
            }
        }
        for q in 0..self.queues.len() {
            if news.queues & (1 << q) != 0 {
                self.process(q, mem);
            }
        }
        if let Some(why) = news.needs_reset {
            if !self.broken() {
                self.needs_reset(format_args!("{why}"));
            }
        }
        if news.ready && self.blocked != 0 {
            let blocked = std::mem::take(&mut self.blocked);
            for q in 0..self.queues.len() {
                if blocked & (1 << q) != 0 && !self.broken() && self.queues[q].ready() {
                    self.run_queue(q, mem);
                }
            }
        }
        news.fatal
    }

    /// Whether a queue stopped at its budget with work left: the VMM then
    /// calls `resume` soon, whether or not the driver notifies again.
    pub fn has_pending_work(&self) -> bool {
        self.pending != 0
    }

    /// Runs each queue that stopped at its budget once more. Returns whether
    /// a used-buffer notification is due.
    pub fn resume(&mut self, mem: &GuestMemoryMmap) -> bool {
        let mut notify = false;
        for q in 0..self.queues.len() {
            if self.pending & (1 << q) != 0 && !self.broken() {
                notify |= self.run_queue(q, mem);
            }
        }
        notify
    }

    /// Whether the device has nothing left to do on its own: no queue work
    /// pending or stalled, and the device (its kernel side) idle too.
    pub fn idle(&self, mem: &GuestMemoryMmap) -> bool {
        self.pending == 0 && self.blocked == 0 && (self.broken() || self.device.idle(mem, &self.queues))
    }

    /// The device's state as the driver and the device see it (QEMU's `info
    /// virtio-status` and `info virtio-queue-status`), read without
    /// stopping anything: the ring indexes from guest memory, the device's
    /// next available index from its queue.
    pub fn dump(&mut self, mem: &GuestMemoryMmap) -> Vec<String> {
        let mut lines = vec![format!(
            "{}: status {:#04x}, features {:#x} (acked {:#x}), InterruptStatus {:#x}, notifications {}{}, used notifications {}",
            self.device.name(),
            self.status,
            self.offered_features(),
            self.driver_features,
            self.irq.status(),
            self.notifications,
            if self.kicks != 0 { format!(" (and {} through an ioeventfd)", self.kicks) } else { String::new() },
            self.used_notifications
        )];
        for (q, queue) in self.queues.iter().enumerate() {
            if !queue.ready() {
                lines.push(format!("  queue {q}: not enabled"));
                continue;
            }
            let read = |addr: u64| mem.read_obj::<u16>(GuestAddress(addr)).map_or("?".into(), |v| v.to_string());
            let (avail, used, size) = (queue.avail_ring(), queue.used_ring(), u64::from(queue.size()));
            lines.push(format!(
                "  queue {q}: size {size}, avail flags {} idx {}, used flags {} idx {}, used_event {}, avail_event {}, \
                 device next avail {}, next used {}{}{}",
                read(avail),
                read(avail + 2),
                read(used),
                read(used + 2),
                read(avail + 4 + 2 * size),
                read(used + 4 + 8 * size),
                queue.next_avail(),
                queue.next_used(),
                if self.pending & (1 << q) != 0 { ", over budget" } else { "" },
                if self.blocked & (1 << q) != 0 { ", waiting for its backend" } else { "" },
            ));
        }
        lines.extend(self.device.dump().into_iter().map(|l| format!("  {l}")));
        lines
    }

    fn run_queue(&mut self, q: usize, mem: &GuestMemoryMmap) -> bool {
        self.pending &= !(1 << q);
        match self.device.process_queue(q, &mut self.queues[q], mem) {
            Ok(run) => {
                if run.more {
                    self.pending |= 1 << q;
                    if let Some(requeue) = &self.requeue {
                        let _ = requeue.write(1);
                    }
                }
                if run.blocked {
                    self.blocked |= 1 << q;
                }
                if run.notify {
                    self.irq.trigger(INT_USED_RING);
                    self.used_notifications += 1;
                }
                run.notify
            }
            Err(e) => {
                self.needs_reset(format_args!("queue {q}: {e}"));
                false
            }
        }
    }

    /// Applies a Status write (§2.1, §3.1.1). Bits are taken in the order the
    /// driver must set them, each requiring the one before.
    fn write_status(&mut self, value: u32, mem: &GuestMemoryMmap) {
        if value == 0 {
            self.reset();
            return;
        }
        // DEVICE_NEEDS_RESET is the device's bit: a driver's read-modify-write
        // may echo it back, which changes nothing.
        let current = self.status & !STATUS_DEVICE_NEEDS_RESET;
        if value & current != current {
            let status = self.status;
            self.needs_reset(format_args!(
                "invalid status write {value:#04x} over {status:#04x} (bits can only be added; 0 resets)"
            ));
            return;
        }
        let new = value & !self.status & !STATUS_DEVICE_NEEDS_RESET;
        if new & STATUS_FAILED != 0 {
            warn!("virtio-mmio: driver set FAILED (status {value:#04x})");
            self.status |= STATUS_FAILED;
        }
        if self.broken() && new & !STATUS_FAILED != 0 {
            warn!("virtio-mmio: status write {value:#04x} ignored: the device needs a reset");
            return;
        }
        for (bit, requires, name) in [
            (STATUS_ACKNOWLEDGE, 0, "ACKNOWLEDGE"),
            (STATUS_DRIVER, STATUS_ACKNOWLEDGE, "DRIVER"),
            (STATUS_FEATURES_OK, STATUS_DRIVER, "FEATURES_OK"),
            (STATUS_DRIVER_OK, STATUS_FEATURES_OK, "DRIVER_OK"),
        ] {
            if new & bit == 0 {
                continue;
            }
            if self.status & requires != requires {
                self.needs_reset(format_args!("status {value:#04x} sets {name} out of order"));
                return;
            }
            if bit == STATUS_FEATURES_OK && !self.features_acceptable() {
                return; // FEATURES_OK stays clear: the driver sees the refusal (§3.1.1 step 6)
            }
            if bit == STATUS_DRIVER_OK {
                let event_idx = self.driver_features & VIRTIO_RING_F_EVENT_IDX != 0;
                for queue in &mut self.queues {
                    queue.set_event_idx(event_idx);
                }
                if let Err(why) = self.device.activate(mem, &self.queues, self.driver_features) {
                    self.needs_reset(format_args!("{why}"));
                    return;
                }
            }
            self.status |= bit;
            if let Some(f) = &mut self.lifecycle {
                f(&lifecycle_message(bit, self.device.name()));
            }
        }
    }

    /// The driver's feature set must include VERSION_1 (this is a modern-only
    /// device, §7.2.4) and nothing the device did not offer (§2.2.1).
    fn features_acceptable(&self) -> bool {
        let unoffered = self.driver_features & !self.offered_features();
        if unoffered != 0 {
            warn!("virtio-mmio: driver accepted features {unoffered:#x} that were not offered; FEATURES_OK refused");
            false
        } else if self.driver_features & VIRTIO_F_VERSION_1 == 0 {
            warn!("virtio-mmio: driver did not accept VIRTIO_F_VERSION_1; FEATURES_OK refused");
            false
        } else {
            true
        }
    }

    fn reset(&mut self) {
        for (queue, setup) in self.queues.iter_mut().zip(&mut self.setups) {
            queue.reset();
            *setup = QueueSetup::default();
        }
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.irq.clear();
        self.pending = 0;
        self.blocked = 0;
        self.device.reset();
    }
}

/// What the host prints as the driver brings the device up.
fn lifecycle_message(bit: u32, device: &str) -> String {
    match bit {
        STATUS_ACKNOWLEDGE => "=== Guest OS has noticed device ===".into(),
        STATUS_DRIVER => "=== Guest OS knows how to drive device ===".into(),
        STATUS_FEATURES_OK => {
            "=== Driver has acknowledged recognizable features; feature negotiation complete ===".into()
        }
        _ => live_message(device),
    }
}

/// The line of DRIVER_OK: the device is live.
pub fn live_message(device: &str) -> String {
    format!("=== Driver is set up; {device} device is live ===")
}

#[cfg(test)]
mod tests;
