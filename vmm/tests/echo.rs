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
