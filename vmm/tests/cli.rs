//! Bad command lines and environments: one line on stderr, exit status 1, no panic.

mod common;
use common::*;
use std::process::{Command, Output};

fn temp_file(name: &str, contents: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("vmm-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[test]
fn missing_guest_file() {
    assert_one_line_error(
        &vmm(&["--guest", "/nonexistent/guest.elf"]),
        "vmm: error: cannot read guest /nonexistent/guest.elf: No such file or directory (os error 2)",
    );
}

#[test]
fn guest_is_a_directory() {
    assert_one_line_error(&vmm(&["--guest", "/tmp"]), "vmm: error: guest /tmp is not a regular file");
}

#[test]
fn guest_is_not_an_elf() {
    let path = temp_file("script", b"#!/bin/sh\necho hi\n");
    assert_one_line_error(&vmm(&["--guest", &path]), "vmm: error: guest image: not an ELF file");
}

#[test]
fn guest_larger_than_ram() {
    let mut image = std::fs::read(guest("hello.elf")).unwrap();
    image.resize((1 << 20) + 1, 0);
    let path = temp_file("big", &image);
    assert_one_line_error(
        &vmm(&["--guest", &path, "--mem", "1"]),
        &format!("vmm: error: guest {path} is larger (1048577 bytes) than guest RAM (1 MiB); raise --mem"),
    );
}

#[test]
fn segment_beyond_ram() {
    // The stream guest itself fits, but the pattern it writes at 1 MiB does
    // not: that is the guest's problem, not the loader's. A segment that does
    // not fit is the loader's: take hello and move its segment to 1 MiB.
    let mut image = std::fs::read(guest("hello.elf")).unwrap();
    let phoff = u32::from_le_bytes(image[28..32].try_into().unwrap()) as usize;
    image[phoff + 12..phoff + 16].copy_from_slice(&0x10_0000u32.to_le_bytes());
    let path = temp_file("far", &image);
    let out = vmm(&["--guest", &path, "--mem", "1"]);
    let lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("vmm: error: guest image: ELF segment 0x100000.."), "{lines:?}");
    assert!(lines[0].ends_with("does not fit in guest RAM (0..0x100000)"), "{lines:?}");
}

#[test]
fn mem_out_of_range() {
    let expected = "vmm: error: --mem must be from 1 to 256 MiB (RAM ends below the virtio-mmio window at 0x10000000)";
    assert_one_line_error(&vmm(&["--mem", "0"]), expected);
    assert_one_line_error(&vmm(&["--mem", "257"]), expected);
}

#[test]
fn cmdline_too_long() {
    let long = "x".repeat(2048);
    assert_one_line_error(
        &vmm(&["--cmdline", &long]),
        "vmm: error: boot setup: the guest command line is longer than 2047 bytes",
    );
}

#[test]
fn console_out_not_writable() {
    assert_one_line_error(
        &vmm(&["--console-out", "/nonexistent/out.txt"]),
        "vmm: error: cannot create /nonexistent/out.txt: No such file or directory (os error 2)",
    );
}

#[test]
fn vhost_without_the_module() {
    let out = vmm(&["--vhost"]);
    let lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("/dev/vhost-console") && lines[0].contains("vhost_console"), "{lines:?}");
}

#[test]
fn poll_us_needs_vhost() {
    assert_one_line_error(
        &vmm(&["--poll-us", "50"]),
        "vmm: error: --poll-us applies to the kernel worker: it needs --vhost",
    );
    // Checked before /dev/vhost-console is opened: the kernel's bound.
    assert_one_line_error(
        &vmm(&["--vhost", "--poll-us", "4000000000"]),
        "vmm: error: --poll-us must be at most 1000000 (one second)",
    );
}

#[test]
fn unknown_option_and_bad_value() {
    assert_one_line_error(&vmm(&["--bogus"]), "vmm: error: Unrecognized argument: --bogus (see vmm --help)");
    let out = vmm(&["--mem", "lots"]);
    let lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("vmm: error: Error parsing option '--mem' with value 'lots'"), "{lines:?}");
}

#[test]
fn help_lists_every_option() {
    for flag in ["--help", "-h"] {
        let help = vmm(&[flag]);
        assert_eq!(help.status.code(), Some(0));
        let text = String::from_utf8_lossy(&help.stdout);
        for option in ["--vhost", "--guest", "--mem", "--cmdline", "--console-out", "--stats", "--poll-us", "--help"] {
            assert!(text.contains(option), "{flag} lacks {option}:\n{text}");
        }
    }
}

/// Runs vmm in a private mount namespace whose /dev is an empty tmpfs,
/// prepared by `setup` (a shell snippet); `as_nobody` drops root first.
/// Needs root (CI runs as root); elsewhere the test says so and passes.
fn vmm_with_private_dev(setup: &str, as_nobody: bool) -> Option<Output> {
    let vmm = env!("CARGO_BIN_EXE_vmm");
    let run = if as_nobody { format!("setpriv --reuid=65534 --regid=65534 --clear-groups {vmm}") } else { vmm.into() };
    let script = format!("mount -t tmpfs none /dev && {setup} exec {run}");
    let out = Command::new("unshare").args(["--mount", "sh", "-c", &script]).output().ok()?;
    if String::from_utf8_lossy(&out.stderr).contains("unshare failed")
        || String::from_utf8_lossy(&out.stderr).contains("mount:")
    {
        eprintln!("skipped: needs root for a private mount namespace");
        return None;
    }
    Some(out)
}

#[test]
fn no_dev_kvm() {
    if let Some(out) = vmm_with_private_dev("", false) {
        assert_one_line_error(&out, "vmm: error: cannot open /dev/kvm: No such file or directory (os error 2)");
    }
}

#[test]
fn dev_kvm_not_accessible() {
    if let Some(out) = vmm_with_private_dev("mknod /dev/kvm c 10 232 && chmod 600 /dev/kvm &&", true) {
        assert_one_line_error(&out, "vmm: error: cannot open /dev/kvm: Permission denied (os error 13)");
    }
}
