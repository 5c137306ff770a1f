//! The legacy devices a Linux guest expects of a PC, on the port-I/O bus:
//! the COM1 UART (serial.rs), the i8042's reset line (i8042.rs); and the
//! line an interrupt travels on (irq.rs).

pub mod i8042;
pub mod irq;
pub mod serial;
