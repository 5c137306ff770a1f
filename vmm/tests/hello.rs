//! The hello guests, i686 (bundled and from a file) and x86-64, end to end.

mod common;
use common::*;

#[test]
fn bundled_i686_hello_prints_hello_world() {
    let out = vmm(&[]);
    assert_clean_run(&out, &[]);
    assert_eq!(out.stdout, b"Hello World!\n");
}

#[test]
fn i686_hello_from_file() {
    let out = vmm(&["--guest", &guest("hello.elf")]);
    assert_clean_run(&out, &[]);
    assert_eq!(out.stdout, b"Hello World!\n");
}

#[test]
fn x86_64_hello_runs_in_long_mode() {
    let out = vmm(&["--guest", &guest("hello64.elf")]);
    assert_clean_run(&out, &[]);
    assert_eq!(out.stdout, b"Hello World!\n");
}

#[test]
fn console_out_writes_the_guest_bytes_to_a_file() {
    let path = std::env::temp_dir().join(format!("vmm-console-out-{}", std::process::id()));
    let out = vmm(&["--console-out", path.to_str().unwrap()]);
    assert_clean_run(&out, &[]);
    assert_eq!(out.stdout, b"");
    assert_eq!(std::fs::read(&path).unwrap(), b"Hello World!\n");
    std::fs::remove_file(path).unwrap();
}

/// Exits per run equal the MMIO accesses the driver needs, plus the HLT.
/// Reads (11): MagicValue, Version, DeviceID, Status after reset, two
/// DeviceFeatures pages, Status after FEATURES_OK, QueueReady and QueueNumMax
/// for each of two queues. Writes (30): Status x5 (reset, ACKNOWLEDGE, DRIVER,
/// FEATURES_OK, DRIVER_OK), selectors and DriverFeatures x4, per queue
/// QueueSel, QueueNum, six address halves and QueueReady (x2 = 18), one QueueNotify.
#[test]
fn stats_count_one_exit_per_driver_access() {
    for guest_file in [guest("hello.elf"), guest("hello64.elf")] {
        let out = vmm(&["--stats", "--guest", &guest_file]);
        assert_clean_run(
            &out,
            &[
                "=== Statistics ===",
                "exits: 42 (mmio 41, io 0, hlt 1, other 0)",
                "mmio: 11 reads, 30 writes",
                "queue notifications: 1",
                "used notifications: 1",
                "console bytes: 13",
                &peak_rss_line(&out),
            ],
        );
    }
}

/// The console where the command line says (QEMU microvm's and
/// Firecracker's `virtio_mmio.device=<size>@<base>:<irq>`), polled there:
/// the driver asks for no interrupt it would sleep for.
#[test]
fn the_console_found_from_the_command_line() {
    let out = vmm(&["--guest", &guest("hello.elf"), "--cmdline", "virtio_mmio.device=4K@0x10000000:5", "--stats"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"Hello World!\n");
    assert!(stderr_lines(&out).contains(&"exits: 42 (mmio 41, io 0, hlt 1, other 0)".to_owned()));
    // A window with nothing behind it (reads as 0): no console there, and
    // the guest's report makes the run a failure.
    let out = vmm(&["--guest", &guest("hello.elf"), "--cmdline", "virtio_mmio.device=4K@0x20000000:5"]);
    assert_eq!(out.stdout, b"");
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(
        lines[lines.len() - 3..],
        [
            "guest: virtio-mmio: bad magic value 0x00000000",
            HLT_LINE,
            "vmm: error: the guest reported a failure on its debug port (the guest: line above)"
        ],
        "{lines:?}"
    );
}
