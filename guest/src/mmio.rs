//! virtio-mmio transport, driver side (VirtIO 1.2 §4.2.2 register layout,
//! §4.2.3 initialization).

use core::ptr::{read_volatile, write_volatile};

/// Where the VMM places the console's register window.
pub const CONSOLE_BASE: usize = 0x1000_0000;

pub const MAGIC_VALUE: usize = 0x000;
pub const VERSION: usize = 0x004;
pub const DEVICE_ID: usize = 0x008;
pub const DEVICE_FEATURES: usize = 0x010;
pub const DEVICE_FEATURES_SEL: usize = 0x014;
pub const DRIVER_FEATURES: usize = 0x020;
pub const DRIVER_FEATURES_SEL: usize = 0x024;
pub const QUEUE_SEL: usize = 0x030;
pub const QUEUE_NUM_MAX: usize = 0x034;
pub const QUEUE_NUM: usize = 0x038;
pub const QUEUE_READY: usize = 0x044;
pub const QUEUE_NOTIFY: usize = 0x050;
pub const INTERRUPT_STATUS: usize = 0x060;
pub const INTERRUPT_ACK: usize = 0x064;
pub const STATUS: usize = 0x070;
pub const QUEUE_DESC_LOW: usize = 0x080;
pub const QUEUE_DESC_HIGH: usize = 0x084;
pub const QUEUE_DRIVER_LOW: usize = 0x090;
pub const QUEUE_DRIVER_HIGH: usize = 0x094;
pub const QUEUE_DEVICE_LOW: usize = 0x0a0;
pub const QUEUE_DEVICE_HIGH: usize = 0x0a4;
pub const CONFIG_GENERATION: usize = 0x0fc;
pub const CONFIG: usize = 0x100;

pub const MAGIC: u32 = 0x7472_6976; // "virt"

// Device status bits (§2.1).
pub const ACKNOWLEDGE: u32 = 1;
pub const DRIVER: u32 = 2;
pub const DRIVER_OK: u32 = 4;
pub const FEATURES_OK: u32 = 8;
pub const DEVICE_NEEDS_RESET: u32 = 0x40;
pub const FAILED: u32 = 0x80;

// Reserved feature bits (§6).
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
pub const VIRTIO_F_IN_ORDER: u64 = 1 << 35;
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;

/// Why a device could not be brought up.
#[derive(Clone, Copy, Debug)]
pub enum InitError {
    BadMagic(u32),
    BadVersion(u32),
    WrongDevice(u32),
    /// DeviceID 0: a placeholder transport with no device behind it (§4.2.2).
    NoDevice,
    NoVersion1,
    FeaturesRefused,
    QueueInUse(u16),
    QueueUnavailable(u16),
}

impl InitError {
    /// Reports the error on the debug port and halts.
    pub fn fail(self) -> ! {
        use crate::debug::{fail, write, write_hex};
        let (msg, value): (&[u8], Option<u32>) = match self {
            InitError::BadMagic(v) => (b"virtio-mmio: bad magic value ", Some(v)),
            InitError::BadVersion(v) => (b"virtio-mmio: unsupported version ", Some(v)),
            InitError::WrongDevice(v) => (b"virtio-mmio: not the expected device, device id ", Some(v)),
            InitError::NoDevice => (b"virtio-mmio: no device here (device id 0)", None),
            InitError::NoVersion1 => (b"virtio-mmio: device does not offer VIRTIO_F_VERSION_1", None),
            InitError::FeaturesRefused => (b"virtio-mmio: device refused FEATURES_OK", None),
            InitError::QueueInUse(q) => (b"virtio-mmio: queue already in use: ", Some(q.into())),
            InitError::QueueUnavailable(q) => (b"virtio-mmio: queue unavailable: ", Some(q.into())),
        };
        write(msg);
        match value {
            Some(v) => {
                write_hex(v);
                fail(b"")
            }
            None => fail(b""),
        }
    }
}

/// A virtio-mmio register window.
pub struct Mmio {
    base: usize,
}

impl Mmio {
    /// # Safety
    /// `base` is the address of a virtio-mmio register window.
    pub const unsafe fn new(base: usize) -> Self {
        Mmio { base }
    }

    pub fn read(&self, offset: usize) -> u32 {
        // SAFETY: an aligned 32-bit access inside the device window (new's contract).
        unsafe { read_volatile((self.base + offset) as *const u32) }
    }

    pub fn write(&self, offset: usize, value: u32) {
        // SAFETY: as in read.
        unsafe { write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// Raw access of any width, for exercising the device's access checks.
    ///
    /// # Safety
    /// `base + offset` must be an MMIO address: the access reaches the VMM, not RAM.
    pub unsafe fn write_raw<T>(&self, offset: usize, value: T) {
        write_volatile((self.base + offset) as *mut T, value)
    }

    /// # Safety
    /// As for `write_raw`.
    pub unsafe fn read_raw<T>(&self, offset: usize) -> T {
        read_volatile((self.base + offset) as *const T)
    }

    /// Checks MagicValue, Version (2: modern) and DeviceID (§4.2.3.1.1).
    pub fn probe(&self, device_id: u32) -> Result<(), InitError> {
        let magic = self.read(MAGIC_VALUE);
        if magic != MAGIC {
            return Err(InitError::BadMagic(magic));
        }
        let version = self.read(VERSION);
        if version != 2 {
            return Err(InitError::BadVersion(version));
        }
        // §4.2.2: DeviceID 0 is a transport with no device, which the
        // driver must leave alone (not even reset it).
        let id = self.read(DEVICE_ID);
        if id == 0 {
            return Err(InitError::NoDevice);
        }
        if id != device_id {
            return Err(InitError::WrongDevice(id));
        }
        Ok(())
    }

    /// Resets the device and waits until the reset is visible (§4.2.3.1.2).
    pub fn reset(&self) {
        self.write(STATUS, 0);
        while self.read(STATUS) != 0 {}
    }

    /// Negotiates features: VERSION_1 is required, `wanted` are taken when
    /// offered. Ends with FEATURES_OK re-read, as §3.1.1 step 6 requires.
    /// `status` holds the bits set so far.
    pub fn negotiate(&self, status: &mut u32, wanted: u64) -> Result<u64, InitError> {
        self.write(DEVICE_FEATURES_SEL, 0);
        let low = self.read(DEVICE_FEATURES);
        self.write(DEVICE_FEATURES_SEL, 1);
        let high = self.read(DEVICE_FEATURES);
        let offered = u64::from(high) << 32 | u64::from(low);
        if offered & VIRTIO_F_VERSION_1 == 0 {
            return Err(InitError::NoVersion1);
        }
        let accepted = offered & (wanted | VIRTIO_F_VERSION_1);
        self.write_driver_features(accepted);
        self.set_status(status, FEATURES_OK);
        if self.read(STATUS) & FEATURES_OK == 0 {
            self.set_status(status, FAILED);
            return Err(InitError::FeaturesRefused);
        }
        Ok(accepted)
    }

    pub fn write_driver_features(&self, features: u64) {
        self.write(DRIVER_FEATURES_SEL, 0);
        self.write(DRIVER_FEATURES, features as u32);
        self.write(DRIVER_FEATURES_SEL, 1);
        self.write(DRIVER_FEATURES, (features >> 32) as u32);
    }

    /// Adds `bit` to the device status.
    pub fn set_status(&self, status: &mut u32, bit: u32) {
        *status |= bit;
        self.write(STATUS, *status);
    }

    /// Selects queue `index` and returns its size (§4.2.3.2): at most `limit`
    /// and what the device allows.
    pub fn select_queue(&self, index: u16, limit: u16) -> Result<u16, InitError> {
        self.write(QUEUE_SEL, index.into());
        if self.read(QUEUE_READY) != 0 {
            return Err(InitError::QueueInUse(index));
        }
        let max = self.read(QUEUE_NUM_MAX);
        if max == 0 {
            return Err(InitError::QueueUnavailable(index));
        }
        Ok(max.min(limit.into()) as u16)
    }

    /// Programs the selected queue's size and ring addresses, then enables it.
    pub fn enable_queue(&self, size: u16, desc: u64, driver: u64, device: u64) {
        self.write(QUEUE_NUM, size.into());
        self.write_addr(QUEUE_DESC_LOW, desc);
        self.write_addr(QUEUE_DRIVER_LOW, driver);
        self.write_addr(QUEUE_DEVICE_LOW, device);
        self.write(QUEUE_READY, 1);
    }

    /// Writes a 64-bit address to a Low/High register pair.
    pub fn write_addr(&self, low: usize, addr: u64) {
        self.write(low, addr as u32);
        self.write(low + 4, (addr >> 32) as u32);
    }

    pub fn notify(&self, queue: u16) {
        self.write(QUEUE_NOTIFY, queue.into());
    }
}
