//! Devices on rust-vmm's vm-device buses (an `IoManager` routes each exit by
//! address range to the one device there, under that device's own lock),
//! and the adapter that puts a virtio-mmio transport there: accesses arrive
//! with the offset in its window; writes need guest memory.

use std::sync::{Arc, Mutex};

use vm_device::bus::{MmioAddress, MmioAddressOffset, MmioRange};
use vm_device::device_manager::{IoManager, MmioManager};
use vm_device::MutDeviceMmio;
use vm_memory::GuestMemoryMmap;

use crate::virtio::mmio::{MmioTransport, MMIO_WINDOW_SIZE};
use crate::virtio::VirtioDevice;

/// A virtio-mmio transport on the MMIO bus, with the memory its queues live in.
pub struct VirtioSlot {
    pub transport: MmioTransport<dyn VirtioDevice>,
    pub mem: GuestMemoryMmap,
}

impl MutDeviceMmio for VirtioSlot {
    fn mmio_read(&mut self, _base: MmioAddress, offset: MmioAddressOffset, data: &mut [u8]) {
        self.transport.read(offset, data);
    }

    fn mmio_write(&mut self, _base: MmioAddress, offset: MmioAddressOffset, data: &[u8]) {
        self.transport.write(offset, data, &self.mem);
    }
}

impl VirtioSlot {
    /// Runs the queues that stopped at their budget, if any; returns whether
    /// some still have work.
    pub fn resume(&mut self) -> bool {
        if self.transport.has_pending_work() {
            self.transport.resume(&self.mem);
        }
        self.transport.has_pending_work()
    }
}

/// Puts `transport` on `io` at `base`; returns the shared slot.
pub fn add_virtio(
    io: &mut IoManager,
    base: u64,
    transport: MmioTransport<dyn VirtioDevice>,
    mem: &GuestMemoryMmap,
) -> Result<Arc<Mutex<VirtioSlot>>, vm_device::bus::Error> {
    let slot = Arc::new(Mutex::new(VirtioSlot { transport, mem: mem.clone() }));
    io.register_mmio(MmioRange::new(MmioAddress(base), MMIO_WINDOW_SIZE)?, slot.clone())?;
    Ok(slot)
}
