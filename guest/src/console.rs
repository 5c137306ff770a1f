//! virtio console driver (VirtIO 1.2 §5.3): finds the device, brings it up
//! on the virtio-mmio transport, writes bytes through transmitq, and sleeps
//! until the used-buffer interrupt instead of polling the used ring where
//! the interrupt reaches it.

use crate::boot::BootInfo;
use crate::interrupt;
use crate::mmio::{self, InitError, Mmio};
use crate::virtqueue::{VirtQueue, MAX_SIZE, RECEIVEQ_PAGE, TRANSMITQ_PAGE};

pub const DEVICE_ID_CONSOLE: u32 = 3;
pub const RECEIVEQ: u16 = 0;
pub const TRANSMITQ: u16 = 1;

/// InterruptStatus: a configuration change (§4.2.2); the used rings say
/// what was used.
const INT_CONFIG: u32 = 2;

pub struct Console {
    pub mmio: Mmio,
    pub receiveq: VirtQueue,
    pub transmitq: VirtQueue,
    pub features: u64,
    /// The device's interrupt arrives as `interrupt::VECTOR` (our VMM); else
    /// the driver polls.
    interrupts: bool,
}

impl Console {
    /// Finds the console (`find`) and runs the §3.1.1 initialization
    /// sequence up to DRIVER_OK, taking VIRTIO_F_IN_ORDER and
    /// VIRTIO_RING_F_EVENT_IDX if offered; installs the interrupt handler.
    pub fn init(boot: &BootInfo) -> Result<Console, InitError> {
        Self::init_with(boot, mmio::VIRTIO_F_IN_ORDER | mmio::VIRTIO_RING_F_EVENT_IDX)
    }

    /// As `init`, taking the `wanted` features the device offers.
    pub fn init_with(boot: &BootInfo, wanted: u64) -> Result<Console, InitError> {
        Self::init_sized(boot, wanted, MAX_SIZE)
    }

    /// As `init_with`, with queues of at most `size` entries.
    pub fn init_sized(boot: &BootInfo, wanted: u64, size: u16) -> Result<Console, InitError> {
        Self::init_more(boot, wanted, size, |_, _| Ok(()))
    }

    /// As `init_sized`; `more` sets up the queues after the first two
    /// (MULTIPORT's), given the features taken, before DRIVER_OK.
    pub fn init_more(
        boot: &BootInfo,
        wanted: u64,
        size: u16,
        more: impl FnOnce(&Mmio, u64) -> Result<(), InitError>,
    ) -> Result<Console, InitError> {
        interrupt::init();
        let (mmio, interrupts) = find(boot)?;
        mmio.reset();
        let mut status = 0;
        mmio.set_status(&mut status, mmio::ACKNOWLEDGE);
        mmio.set_status(&mut status, mmio::DRIVER);
        let features = mmio.negotiate(&mut status, wanted)?;
        let receiveq = setup_queue(&mmio, RECEIVEQ, RECEIVEQ_PAGE, size, features)?;
        let transmitq = setup_queue(&mmio, TRANSMITQ, TRANSMITQ_PAGE, size, features)?;
        more(&mmio, features)?;
        mmio.set_status(&mut status, mmio::DRIVER_OK);
        Ok(Console { mmio, receiveq, transmitq, features, interrupts })
    }

    /// Sends `bytes` as one buffer and waits until the device has consumed it.
    pub fn write(&mut self, bytes: &[u8]) {
        self.write_from(bytes.as_ptr() as u64, bytes.len() as u32);
    }

    /// Sends the `len` bytes at guest address `addr` as one buffer and waits
    /// until the device has consumed it.
    pub fn write_from(&mut self, addr: u64, len: u32) {
        while self.transmitq.is_full() {
            self.wait_transmitq();
        }
        self.transmitq.push(addr, len, 0);
        self.transmitq.publish();
        self.kick_transmitq();
        while self.transmitq.pending() != 0 {
            self.wait_transmitq();
        }
    }

    /// Notifies transmitq unless the device asked not to be.
    pub fn kick_transmitq(&mut self) {
        if self.transmitq.kick_needed() {
            self.mmio.notify(TRANSMITQ);
        }
    }

    /// Waits until the device has returned at least one transmit buffer.
    pub fn wait_transmitq(&mut self) {
        self.wait_transmitq_for(1);
    }

    /// Waits until the device has returned a transmit buffer, sleeping for
    /// an interrupt that (with EVENT_IDX) comes once `n` are used. Interrupts
    /// are asked for while waiting only: enable, re-check, sleep, disable
    /// (§2.7.14's idiom).
    pub fn wait_transmitq_for(&mut self, n: u16) {
        self.transmitq.interrupt_after(n);
        while self.transmitq.reclaim() == 0 {
            self.wait_interrupt();
        }
        self.transmitq.no_interrupts();
    }

    /// Sleeps until the next interrupt (or, polling, pauses) and acknowledges
    /// what InterruptStatus says; a configuration change that is
    /// DEVICE_NEEDS_RESET ends the guest.
    pub fn wait_interrupt(&self) {
        match self.interrupts {
            true => interrupt::wait(),
            false => core::hint::spin_loop(),
        }
        let status = self.mmio.read(mmio::INTERRUPT_STATUS);
        if status != 0 {
            self.mmio.write(mmio::INTERRUPT_ACK, status);
        }
        if status & INT_CONFIG != 0 && self.mmio.read(mmio::STATUS) & mmio::DEVICE_NEEDS_RESET != 0 {
            crate::debug::fail(b"virtio-console: the device needs a reset");
        }
    }
}

/// The console: the first `virtio_mmio.device=` window on the command line
/// with a console behind it, polled (QEMU microvm routes its line through an
/// IOAPIC this driver does not program); else our VMM's window at
/// `mmio::CONSOLE_BASE`, whose interrupt arrives as `interrupt::VECTOR`.
fn find(boot: &BootInfo) -> Result<(Mmio, bool), InitError> {
    let mut error = None;
    for base in boot.virtio_mmio_devices() {
        // SAFETY: the command line names a virtio-mmio register window there.
        let mmio = unsafe { Mmio::new(base) };
        match mmio.probe(DEVICE_ID_CONSOLE) {
            Ok(()) => return Ok((mmio, false)),
            Err(e) => error = Some(e),
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    // SAFETY: our VMM places the console's register window there.
    let mmio = unsafe { Mmio::new(mmio::CONSOLE_BASE) };
    mmio.probe(DEVICE_ID_CONSOLE)?;
    Ok((mmio, true))
}

/// Sets up queue `index` in the 4 KiB page `page`, at most `limit` entries.
pub fn setup_queue(mmio: &Mmio, index: u16, page: usize, limit: u16, features: u64) -> Result<VirtQueue, InitError> {
    let in_order = features & mmio::VIRTIO_F_IN_ORDER != 0;
    let event_idx = features & mmio::VIRTIO_RING_F_EVENT_IDX != 0;
    // Split-ring sizes are powers of two (§2.7); QueueNumMax need not be one.
    let max = mmio.select_queue(index, limit.min(MAX_SIZE))?;
    let size = 1 << (15 - max.leading_zeros());
    // SAFETY: the guest layout reserves `page` for this queue.
    let queue = unsafe { VirtQueue::new(page, size, in_order, event_idx) };
    mmio.enable_queue(size, queue.desc_addr(), queue.avail_addr(), queue.used_addr());
    Ok(queue)
}
