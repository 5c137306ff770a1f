//! A driver that abuses the console's control queues (MULTIPORT):
//! `case=<name>` picks the abuse, after a correct bring-up unless the case
//! is about the bring-up. Cases the device must survive then write
//! "survived" on the console; the others report the device status on the
//! debug port (`hostile-ports: status 0x...`).
#![no_std]
#![no_main]

use guest::boot::{halt, BootInfo};
use guest::debug;
use guest::mmio;
use guest::ports::{Ports, BAD_ID, CONTROL_OUT, CONTROL_TRANSMITQ, DEVICE_READY, PORT_NAME, PORT_OPEN, PORT_READY};
use guest::virtqueue::VIRTQ_DESC_F_WRITE;

guest::entry!(main);

/// Every case, for the message about an unknown one (the host's tests run
/// each name listed here).
const CASES: &[u8] = b"port-ready-unknown port-open-unknown unknown-event device-event short-header device-ready-0 console-as-vport port-not-added flood control-writable";

fn main(boot: &BootInfo) -> ! {
    let case = boot.param("case").unwrap_or(b"");
    let p = Ports::init(boot, 0);
    match case {
        // Messages about ports the device does not have (it has 2).
        b"port-ready-unknown" => {
            p.bring_up(false);
            p.send(7, PORT_READY, 1);
        }
        b"port-open-unknown" => {
            p.bring_up(false);
            p.send(9, PORT_OPEN, 1);
        }
        // An event no driver sends, and one only the device sends.
        b"unknown-event" => {
            p.bring_up(false);
            p.send(1, 99, 0);
        }
        b"device-event" => {
            p.bring_up(false);
            p.send(1, PORT_NAME, 1);
        }
        // A control buffer of 4 bytes: shorter than the message header.
        b"short-header" => {
            p.bring_up(false);
            p.send_buffer(CONTROL_OUT as u64, 4, 0);
        }
        // The driver failed to set up: the device must add no port.
        b"device-ready-0" => {
            p.send(BAD_ID, DEVICE_READY, 0);
            settle();
            if p.poll_control().is_some() {
                debug::fail(b"hostile-ports: a control message after DEVICE_READY 0");
            }
        }
        // Port 0 opened as a generic port: before the device made it the
        // console (Linux opens it only after CONSOLE_PORT, as hvc0).
        b"console-as-vport" => {
            p.send(BAD_ID, DEVICE_READY, 1);
            p.send(0, PORT_OPEN, 1);
            p.wait(|s| s.console_port);
        }
        // PORT_READY with value 0: the driver could not add port 1.
        b"port-not-added" => {
            p.answer_add = false;
            p.send(BAD_ID, DEVICE_READY, 1);
            p.wait(|s| s.added == 3);
            p.send(0, PORT_READY, 1);
            p.send(1, PORT_READY, 0);
        }
        // `n=` PORT_READY (default 2000) while the answers are not read:
        // the device holds a bounded number for the driver. Then the
        // driver reads what is there.
        b"flood" => {
            p.bring_up(false);
            for _ in 0..boot.param_u32("n").unwrap_or(2000) {
                p.send(1, PORT_READY, 1);
            }
            settle();
            while p.poll_control().is_some() {}
        }
        // A device-writable buffer on the control transmitq: a malformed
        // chain, DEVICE_NEEDS_RESET as on any queue the device only reads.
        b"control-writable" => {
            p.bring_up(false);
            p.control_tx.push(CONTROL_OUT as u64, 8, VIRTQ_DESC_F_WRITE);
            p.control_tx.publish();
            p.console.mmio.notify(CONTROL_TRANSMITQ);
            report(p)
        }
        other => {
            debug::write(b"hostile-ports: unknown case ");
            debug::write(other);
            debug::write(b"; cases: ");
            debug::fail(CASES)
        }
    }
    p.console.write(b"survived\n");
    halt()
}

/// Gives the VMM's event loop time to deliver what it would: 2000
/// register reads, each an exit.
fn settle() {
    for _ in 0..2000 {
        // SAFETY: the console's register window.
        let _ = unsafe { mmio::Mmio::new(mmio::CONSOLE_BASE) }.read(mmio::MAGIC_VALUE);
    }
}

fn report(p: &Ports) -> ! {
    debug::write(b"hostile-ports: status ");
    debug::write_hex(p.console.mmio.read(mmio::STATUS));
    debug::fail(b"")
}
