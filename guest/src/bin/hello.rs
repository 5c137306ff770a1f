//! Prints "Hello World!" through the virtio console and halts.
#![no_std]
#![no_main]

use guest::boot::{halt, BootInfo};
use guest::console::Console;

guest::entry!(main);

fn main(boot: &BootInfo) -> ! {
    let mut console = Console::init(boot).unwrap_or_else(|e| e.fail());
    console.write(b"Hello World!\n");
    halt()
}
