//! The control queues of a MULTIPORT console (VirtIO 1.2 §5.3.6.2): the
//! 8-byte `struct virtio_console_control` {id u32, event u16, value u16},
//! little-endian, and a payload for PORT_NAME and RESIZE. The device's
//! messages wait in a bounded queue until the driver posts control receive
//! buffers; the driver's are read as they come, each chain one message.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestMemoryMmap};

use super::stream::WEIGHT;
use crate::virtio::chain::{pop_head, read_chain, wants_interrupt, Buffer, Direction};
use crate::virtio::{QueueError, QueueRun};
use crate::warn;

pub const DEVICE_READY: u16 = 0;
pub const PORT_ADD: u16 = 1;
pub const PORT_REMOVE: u16 = 2;
pub const PORT_READY: u16 = 3;
pub const CONSOLE_PORT: u16 = 4;
pub const RESIZE: u16 = 5;
pub const PORT_OPEN: u16 = 6;
pub const PORT_NAME: u16 = 7;

pub const HEADER_LEN: usize = 8;

/// Messages held for a driver that posts no control receive buffers: a
/// driver that floods PORT_READY without reading the answers cannot make
/// the device grow. Four messages per port fit many times over.
pub const TO_DRIVER_MAX: usize = 256;

/// An event's name, for log lines.
pub fn event_name(event: u16) -> &'static str {
    match event {
        DEVICE_READY => "DEVICE_READY",
        PORT_ADD => "PORT_ADD",
        PORT_REMOVE => "PORT_REMOVE",
        PORT_READY => "PORT_READY",
        CONSOLE_PORT => "CONSOLE_PORT",
        RESIZE => "RESIZE",
        PORT_OPEN => "PORT_OPEN",
        PORT_NAME => "PORT_NAME",
        _ => "an unknown event",
    }
}

/// A message from the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    pub id: u32,
    pub event: u16,
    pub value: u16,
}

impl Message {
    fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        Message {
            id: u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            event: u16::from_le_bytes([bytes[4], bytes[5]]),
            value: u16::from_le_bytes([bytes[6], bytes[7]]),
        }
    }
}

/// The bytes of a message for the driver.
pub fn encode(id: u32, event: u16, value: u16, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(&id.to_le_bytes());
    bytes.extend_from_slice(&event.to_le_bytes());
    bytes.extend_from_slice(&value.to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The control receiveq's side: messages for the driver.
#[derive(Default)]
pub struct ToDriver {
    messages: VecDeque<Vec<u8>>,
    /// Messages dropped; the first drop is reported, once until a reset.
    dropped: u64,
    buffers: Vec<Buffer>,
}

impl ToDriver {
    /// Queues a message; past the bound it is dropped, with one line for
    /// the first drop until the device is reset.
    pub fn push(&mut self, message: Vec<u8>) {
        if self.messages.len() >= TO_DRIVER_MAX {
            if self.dropped == 0 {
                warn!("console: {TO_DRIVER_MAX} control messages wait for the driver to take them; dropping more");
            }
            self.dropped += 1;
            return;
        }
        self.messages.push_back(message);
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Takes every waiting message, for tests.
    #[cfg(test)]
    pub fn take_all(&mut self) -> Vec<Vec<u8>> {
        self.messages.drain(..).collect()
    }

    pub fn clear(&mut self) {
        self.messages.clear();
        self.dropped = 0;
    }

    /// Puts each waiting message into one chain of device-writable buffers.
    /// A chain too short for its message gets what fits (the driver's
    /// error, one line).
    pub fn process(&mut self, queue: &mut Queue, mem: &GuestMemoryMmap) -> Result<QueueRun, QueueError> {
        let mut used = false;
        for _ in 0..WEIGHT {
            if self.messages.is_empty() {
                break;
            }
            let Some(head) = pop_head(queue, mem)? else {
                if queue.enable_notification(mem)? {
                    continue;
                }
                break;
            };
            read_chain(queue, mem, head, Direction::DeviceWrites, &mut self.buffers)?;
            let message = self.messages.pop_front().expect("checked not empty");
            let mut written = 0;
            for buf in &self.buffers {
                let n = (buf.len as usize).min(message.len() - written);
                mem.write_slice(&message[written..written + n], buf.addr)
                    .map_err(|e| QueueError::Memory(e.to_string()))?;
                written += n;
                if written == message.len() {
                    break;
                }
            }
            if written < message.len() {
                warn!(
                    "console: control receive buffer of {written} bytes is shorter than a message of {} bytes; \
                     truncated",
                    message.len()
                );
            }
            queue.add_used(mem, head, written as u32)?;
            used = true;
        }
        let more = !self.messages.is_empty() && queue.avail_idx(mem, Ordering::Acquire)?.0 != queue.next_avail();
        Ok(QueueRun { notify: used && wants_interrupt(queue, mem)?, more, blocked: false })
    }
}

/// The control transmitq's side: reads the driver's messages, at most a
/// budget of chains per run, and hands each to `handle`. The driver spins
/// until its buffer is used (Linux's `__send_control_msg`), so every chain
/// is used at once. A chain shorter than a header is the driver's error:
/// one line, and it is used unread.
pub fn from_driver(
    queue: &mut Queue,
    mem: &GuestMemoryMmap,
    buffers: &mut Vec<Buffer>,
    mut handle: impl FnMut(Message),
) -> Result<QueueRun, QueueError> {
    let mut run = QueueRun::default();
    let mut used = false;
    let (mut chains, mut passes) = (0, 0);
    loop {
        queue.disable_notification(mem)?;
        while let Some(head) = pop_head(queue, mem)? {
            read_chain(queue, mem, head, Direction::DeviceReads, buffers)?;
            let mut header = [0u8; HEADER_LEN];
            let mut got = 0;
            for buf in buffers.iter() {
                let n = (buf.len as usize).min(HEADER_LEN - got);
                mem.read_slice(&mut header[got..got + n], buf.addr).map_err(|e| QueueError::Memory(e.to_string()))?;
                got += n;
                if got == HEADER_LEN {
                    break;
                }
            }
            queue.add_used(mem, head, 0)?;
            used = true;
            if got < HEADER_LEN {
                warn!("console: control message of {got} bytes is shorter than its {HEADER_LEN}-byte header; ignored");
            } else {
                handle(Message::parse(&header));
            }
            chains += 1;
            if chains == WEIGHT {
                run.more = queue.avail_idx(mem, Ordering::Acquire)?.0 != queue.next_avail();
                run.notify = wants_interrupt(queue, mem)?;
                return Ok(run);
            }
        }
        if !queue.enable_notification(mem)? {
            break;
        }
        // Bounded as transmitq's re-checks are (`Transmit::process`).
        passes += 1;
        if passes == WEIGHT {
            run.more = true;
            break;
        }
    }
    run.notify = used && wants_interrupt(queue, mem)?;
    Ok(run)
}
