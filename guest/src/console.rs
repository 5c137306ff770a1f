//! virtio console driver (VirtIO 1.2 §5.3): brings the device up on the
//! virtio-mmio transport and writes bytes through transmitq.

use crate::mmio::{self, InitError, Mmio};
use crate::virtqueue::{VirtQueue, MAX_SIZE, RECEIVEQ_PAGE, TRANSMITQ_PAGE};

pub const DEVICE_ID_CONSOLE: u32 = 3;
pub const RECEIVEQ: u16 = 0;
pub const TRANSMITQ: u16 = 1;

pub struct Console {
    pub mmio: Mmio,
    pub receiveq: VirtQueue,
    pub transmitq: VirtQueue,
    pub features: u64,
}

impl Console {
    /// Probes the console at `mmio::CONSOLE_BASE` and runs the §3.1.1
    /// initialization sequence up to DRIVER_OK.
    pub fn init() -> Result<Console, InitError> {
        // SAFETY: the VMM places the console's register window there.
        let mmio = unsafe { Mmio::new(mmio::CONSOLE_BASE) };
        mmio.probe(DEVICE_ID_CONSOLE)?;
        mmio.reset();
        let mut status = 0;
        mmio.set_status(&mut status, mmio::ACKNOWLEDGE);
        mmio.set_status(&mut status, mmio::DRIVER);
        let features = mmio.negotiate(&mut status, mmio::VIRTIO_F_IN_ORDER)?;
        let in_order = features & mmio::VIRTIO_F_IN_ORDER != 0;
        let receiveq = setup_queue(&mmio, RECEIVEQ, RECEIVEQ_PAGE, in_order)?;
        let transmitq = setup_queue(&mmio, TRANSMITQ, TRANSMITQ_PAGE, in_order)?;
        mmio.set_status(&mut status, mmio::DRIVER_OK);
        Ok(Console { mmio, receiveq, transmitq, features })
    }

    /// Sends `bytes` as one buffer and waits until the device has consumed it.
    pub fn write(&mut self, bytes: &[u8]) {
        while self.transmitq.is_full() {
            self.transmitq.reclaim();
        }
        self.transmitq.push(bytes.as_ptr() as u64, bytes.len() as u32, 0);
        self.transmitq.publish();
        self.kick_transmitq();
        while self.transmitq.pending() != 0 {
            self.transmitq.reclaim();
        }
    }

    /// Notifies transmitq unless the device asked not to be.
    pub fn kick_transmitq(&self) {
        if self.transmitq.kick_needed() {
            self.mmio.notify(TRANSMITQ);
        }
    }
}

fn setup_queue(mmio: &Mmio, index: u16, page: usize, in_order: bool) -> Result<VirtQueue, InitError> {
    // Split-ring sizes are powers of two (§2.7); QueueNumMax need not be one.
    let max = mmio.select_queue(index, MAX_SIZE)?;
    let size = 1 << (15 - max.leading_zeros());
    // SAFETY: the guest layout reserves `page` for this queue.
    let queue = unsafe { VirtQueue::new(page, size, in_order) };
    mmio.enable_queue(size, queue.desc_addr(), queue.avail_addr(), queue.used_addr());
    Ok(queue)
}
