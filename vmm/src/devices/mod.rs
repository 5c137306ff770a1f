//! The legacy devices on the port-I/O bus: what a Linux guest expects of a
//! PC, the COM1 UART (serial.rs) and the i8042's reset line (i8042.rs); the
//! bare-metal guests' debug port (debug_port.rs); and the line an interrupt
//! travels on (irq.rs).

pub mod debug_port;
pub mod i8042;
pub mod irq;
pub mod serial;
