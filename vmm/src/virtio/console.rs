//! The virtio console device (VirtIO 1.2 §5.3), single port: transmitq bytes
//! go to an output file (stdout by default); receiveq exists and is configured
//! but nothing is sent to the guest yet.

use std::fs::File;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestMemoryMmap};

use super::chain::{pop_head, read_chain, Buffer, Direction};
use super::{QueueError, VirtioDevice, VIRTIO_F_IN_ORDER, VIRTIO_F_VERSION_1};
use crate::stats::Stats;
use crate::warn;

pub const DEVICE_ID_CONSOLE: u32 = 3;
pub const RECEIVEQ_INDEX: usize = 0;
pub const TRANSMITQ_INDEX: usize = 1;
/// The queue size offered; the driver may pick any power of two up to it.
pub const QUEUE_MAX_SIZE: u16 = 256;
/// Feature bit: the driver may write characters to `emerg_wr` (§5.3.3).
pub const VIRTIO_CONSOLE_F_EMERG_WRITE: u64 = 1 << 2;

/// `struct virtio_console_config`: cols (u16), rows (u16), max_nr_ports
/// (u32), emerg_wr (u32). Size and port count are not offered
/// (VIRTIO_CONSOLE_F_SIZE, _MULTIPORT), so only emerg_wr is live.
const CONFIG_SIZE: u64 = 12;
const EMERG_WR_OFFSET: u64 = 8;

/// Reads the configuration space (both console devices): cols, rows and
/// max_nr_ports read as 0, emerg_wr is write-only. False if out of range.
pub fn read_config(offset: u64, data: &mut [u8]) -> bool {
    data.fill(0);
    offset.checked_add(data.len() as u64).is_some_and(|end| end <= CONFIG_SIZE)
}

/// The character of a write to emerg_wr (§5.3.6: allowed at any time, even
/// before the queues are set up), or None if it is no such write.
pub fn emergency_byte(offset: u64, data: &[u8]) -> Option<u8> {
    (offset == EMERG_WR_OFFSET && (1..=4).contains(&data.len())).then(|| data[0])
}

pub struct Console {
    out: File,
    /// Scratch space for a chain's buffers, reused across chains.
    buffers: Vec<Buffer>,
    output_failed: bool,
    /// Bytes written to the output, for statistics.
    pub bytes_out: u64,
}

impl Console {
    pub fn new(out: File) -> Self {
        Console { out, buffers: Vec::with_capacity(QUEUE_MAX_SIZE.into()), output_failed: false, bytes_out: 0 }
    }

    /// Writes one guest buffer to the output, straight from guest memory. A
    /// failed output (closed pipe, full disk) is reported once; the guest
    /// keeps running as if the line had no listener.
    fn emit(&mut self, mem: &GuestMemoryMmap, buf: Buffer) {
        self.bytes_out += u64::from(buf.len);
        if self.output_failed {
            return;
        }
        if let Err(e) = mem.write_all_volatile_to(buf.addr, &mut self.out, buf.len as usize) {
            warn!("virtio-console: console output failed ({e}); dropping further output");
            self.output_failed = true;
        }
    }

    /// Drains transmitq with the usual suppression loop: notifications off,
    /// drain, on again, and drain once more if the driver raced us (§2.7.10).
    fn process_transmitq(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<bool, QueueError> {
        let mut used = false;
        loop {
            queue.disable_notification(mem)?;
            while let Some(head) = pop_head(queue, mem)? {
                let mut buffers = std::mem::take(&mut self.buffers);
                read_chain(queue, mem, head, Direction::DeviceReads, &mut buffers)?;
                for &buf in &buffers {
                    self.emit(mem, buf);
                }
                self.buffers = buffers;
                // The device wrote nothing into these device-readable buffers.
                queue.add_used(mem, head, 0)?;
                used = true;
            }
            if !queue.enable_notification(mem)? {
                break;
            }
        }
        Ok(used && queue.needs_notification(mem)?)
    }
}

impl VirtioDevice for Console {
    fn name(&self) -> &'static str {
        "console"
    }

    fn device_id(&self) -> u32 {
        DEVICE_ID_CONSOLE
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | VIRTIO_F_IN_ORDER | VIRTIO_CONSOLE_F_EMERG_WRITE
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_MAX_SIZE, QUEUE_MAX_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) -> bool {
        read_config(offset, data)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> bool {
        let Some(byte) = emergency_byte(offset, data) else { return false };
        self.bytes_out += 1;
        if !self.output_failed {
            use std::io::Write;
            if let Err(e) = self.out.write_all(&[byte]) {
                warn!("virtio-console: console output failed ({e}); dropping further output");
                self.output_failed = true;
            }
        }
        true
    }

    fn add_stats(&mut self, stats: &mut Stats) {
        stats.console_bytes = Some(self.bytes_out);
    }

    fn process_queue(&mut self, index: usize, queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<bool, QueueError> {
        match index {
            TRANSMITQ_INDEX => self.process_transmitq(queue, mem),
            // receiveq buffers wait for input, which this device does not produce yet.
            _ => Ok(false),
        }
    }
}
