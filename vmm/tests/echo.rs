//! The echo guest: input piped into the VMM's stdin comes back on stdout,
//! through receiveq, the guest's interrupt handler and transmitq.

mod common;
use common::*;

/// Input that is there before the driver has posted a buffer (the pipe is
/// full before the guest starts) waits, and arrives whole; end of input
/// ends the run, with exit status 0.
#[test]
fn piped_input_comes_back_and_eof_ends_the_run() {
    let out = vmm_with_input(&["--guest", &guest("echo.elf")], b"echo $((6*7))\n");
    assert_idle_run(&out, &[]);
    assert_eq!(out.stdout, b"echo $((6*7))\n");
}

#[test]
fn no_input_at_all() {
    let out = vmm_with_input(&["--guest", &guest("echo.elf")], b"");
    assert_idle_run(&out, &[]);
    assert_eq!(out.stdout, b"");
}

/// More than the VMM holds (64 KiB) and than the guest's 16 receive buffers
/// of 1 KiB take: the input waits for room, and comes back byte-exact.
#[test]
fn a_megabyte_in_order() {
    let input: Vec<u8> = (0..1u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let out = vmm_with_input(&["--guest", &guest("echo.elf")], &input);
    assert_idle_run(&out, &[]);
    assert!(out.stdout == input, "{} bytes back of {}", out.stdout.len(), input.len());
}

/// `bytes=N`: the guest halts itself once it has echoed N bytes. With the
/// input sent after the driver went to sleep, the exits are exact: the
/// bring-up (29 register writes, 11 reads), the first receiveq
/// notification, the HLT it sleeps in; the interrupt for the input, then
/// InterruptStatus read and InterruptACK write, the transmitq notification
/// (its buffer is used at once: no second sleep), and the final HLT with
/// interrupts disabled.
#[test]
fn bytes_limit_halts_with_exact_counts() {
    let out = vmm_input_after_ready(&["--guest", &guest("echo.elf"), "--cmdline", "bytes=6", "--stats"], b"hello\n");
    assert_eq!(out.stdout, b"hello\n");
    assert_clean_run(
        &out,
        &[
            "=== Statistics ===",
            "exits: 46 (mmio 44, io 0, hlt 2, other 0)",
            "mmio: 12 reads, 32 writes",
            "queue notifications: 2",
            "used notifications: 2",
            "interrupts injected: 1",
            "console bytes: 6",
            &peak_rss_line(&out),
        ],
    );
}

/// Input that arrives while the guest sleeps wakes it; lines typed one by
/// one come back one by one.
#[test]
fn input_after_the_driver_sleeps() {
    let out = vmm_input_after_ready(&["--guest", &guest("echo.elf")], b"one\ntwo\n");
    assert_idle_run(&out, &[]);
    assert_eq!(out.stdout, b"one\ntwo\n");
}

/// SIGUSR1 prints each device's state on stderr; the VM runs on.
#[test]
fn sigusr1_dumps_the_device_state_and_the_vm_runs_on() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["--guest", &guest("echo.elf")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut next = |lines: &mut Vec<String>| {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{lines:?}");
        lines.push(line.trim_end().to_string());
    };
    while lines.last().map(String::as_str) != Some(LIFECYCLE[3]) {
        next(&mut lines);
    }
    // The guest has posted its receive buffers and kicked once.
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
    for _ in 0..5 {
        next(&mut lines);
    }
    assert_eq!(
        lines[4..],
        [
            "=== device state (SIGUSR1) ===",
            "virtio-mmio at 0x10000000 (GSI none):",
            "  console: status 0x0f, features 0x920000004 (acked 0x100000000), InterruptStatus 0x0, notifications 1, used notifications 0",
            "    queue 0: size 128, avail flags 0 idx 128, used flags 0 idx 0, used_event 0, avail_event 0, device next avail 0, next used 0",
            "    queue 1: size 128, avail flags 0 idx 0, used flags 0 idx 0, used_event 0, avail_event 0, device next avail 0, next used 0",
        ]
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hi\n").unwrap();
    drop(stdin);
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    assert_eq!(out, b"hi\n");
    assert!(rest.starts_with(&format!("{IDLE_LINE}\nTime taken to run VM: ")), "{rest}");
}

/// SIGINT ends a bare-metal guest's run as it ends a Linux guest's: one
/// line, exit status 1.
#[test]
fn sigint_stops_a_bare_metal_guest_with_its_line() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["--guest", &guest("echo.elf")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while line.trim_end() != LIFECYCLE[3] {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0);
    }
    let t = std::time::Instant::now();
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(1));
    assert!(t.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(rest, "vmm: error: stopped by SIGINT\n");
}
