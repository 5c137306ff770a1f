//! The stream guest: many buffers in flight, byte-exact output.

mod common;
use common::*;

fn stream(cmdline: &str, expected_len: usize) {
    let out = vmm(&["--guest", &guest("stream.elf"), "--cmdline", cmdline]);
    assert_clean_run(&out, &[]);
    assert_eq!(out.stdout.len(), expected_len, "{cmdline}");
    assert!(out.stdout == stream_pattern(expected_len), "{cmdline}: pattern mismatch");
}

#[test]
fn four_mib_in_page_sized_buffers() {
    stream("bytes=4M chunk=4K", 4 << 20);
}

#[test]
fn sixteen_mib_in_64k_buffers() {
    stream("bytes=16M chunk=64K", 16 << 20);
}

#[test]
fn odd_sizes_and_a_short_last_buffer() {
    stream("bytes=1000003 chunk=777", 1_000_003);
    stream("bytes=1 chunk=1", 1);
}

#[test]
fn stream_to_a_file_and_count_notifications() {
    let path = std::env::temp_dir().join(format!("vmm-stream-{}", std::process::id()));
    let out = vmm(&[
        "--guest",
        &guest("stream.elf"),
        "--cmdline",
        "bytes=2M chunk=4K",
        "--console-out",
        path.to_str().unwrap(),
        "--stats",
    ]);
    // 512 buffers, each published and kicked on its own: the device here
    // drains synchronously, so it never asks for fewer notifications, and
    // the guest never waits, so it never asks for an interrupt
    // (VRING_AVAIL_F_NO_INTERRUPT while it has room). Exits: bring-up as in
    // the hello guest, 29 writes and 11 reads, then the 512 QueueNotify
    // writes and the final HLT.
    assert_clean_run(
        &out,
        &[
            "=== Statistics ===",
            "exits: 553 (mmio 552, io 0, hlt 1, other 0)",
            "mmio: 11 reads, 541 writes",
            "queue notifications: 512",
            "used notifications: 0",
            "console bytes: 2097152",
            &peak_rss_line(&out),
        ],
    );
    assert!(std::fs::read(&path).unwrap() == stream_pattern(2 << 20));
    std::fs::remove_file(path).unwrap();
}
