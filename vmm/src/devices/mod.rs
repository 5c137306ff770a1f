//! The legacy devices on the port-I/O bus: what a Linux guest expects of a
//! PC, the COM1 UART (serial.rs), the CMOS clock (cmos.rs) and the i8042
//! (i8042.rs), the ACPI sleep registers its power-off writes (acpi_pm.rs);
//! the bare-metal guests' debug port (debug_port.rs); the lines
//! an interrupt travels on (irq.rs) and a reset or power-off request
//! (power.rs).

pub mod acpi_pm;
pub mod cmos;
pub mod debug_port;
pub mod i8042;
pub mod irq;
pub mod power;
pub mod serial;
