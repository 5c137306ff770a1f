//! The legacy devices on the port-I/O bus: what a Linux guest expects of a
//! PC, the COM1 UART (serial.rs), the CMOS clock (cmos.rs) and the i8042
//! (i8042.rs); the bare-metal guests' debug port (debug_port.rs); and the
//! line an interrupt travels on (irq.rs).

pub mod cmos;
pub mod debug_port;
pub mod i8042;
pub mod irq;
pub mod serial;
