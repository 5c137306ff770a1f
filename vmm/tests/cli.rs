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
        assert_one_line_error(
            &out,
            "vmm: error: cannot open /dev/kvm: No such file or directory (os error 2) \
             (no KVM here: load kvm_intel or kvm_amd, or enable virtualization)",
        );
    }
}

#[test]
fn dev_kvm_not_accessible() {
    if let Some(out) = vmm_with_private_dev("mknod /dev/kvm c 10 232 && chmod 600 /dev/kvm &&", true) {
        assert_one_line_error(
            &out,
            "vmm: error: cannot open /dev/kvm: Permission denied (os error 13) \
             (join the kvm group: sudo usermod -aG kvm $USER, then log in again)",
        );
    }
}

#[test]
fn no_output_file_is_touched_before_an_error_is_reported() {
    let keep = temp_file("keep", b"precious\n");
    for args in [
        vec!["--console-out", &keep, "--guest", "/nonexistent/guest.elf"],
        vec!["--console-out", &keep, "--mem", "0"],
        vec!["--console-out", &keep, "--kernel", "/tmp"],
    ] {
        let out = vmm(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(std::fs::read(&keep).unwrap(), b"precious\n", "{args:?}");
    }
    std::fs::remove_file(keep).unwrap();
}

#[test]
fn a_kernel_that_is_a_directory_says_so() {
    assert_one_line_error(&vmm(&["--kernel", "/tmp"]), "vmm: error: kernel /tmp is a directory");
}

/// Runs vmm through `sh -c`, with `redirect` applied to its stdout.
fn vmm_sh(args: &str, redirect: &str) -> Output {
    let script = format!("exec {} {args} {redirect}", env!("CARGO_BIN_EXE_vmm"));
    Command::new("sh").args(["-c", &script]).output().unwrap()
}

#[test]
fn lost_output_is_an_error() {
    // stdout closed: refused before the guest runs.
    let out = vmm_sh("", ">&-");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_lines(&out),
        ["vmm: error: stdout is closed: the guest's console output would be lost (give --console-out FILE)"]
    );
    // stdout open only for reading: refused before the guest runs.
    let out = vmm_sh("", "1< /dev/null");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_lines(&out),
        ["vmm: error: stdout is open only for reading: the guest's console output could not be written"]
    );
    // A device that takes nothing: the failure stops the VM, unless the
    // guest halted first.
    let out = vmm_sh("", "> /dev/full");
    let mut lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(1), "{lines:?}");
    assert_eq!(lines[..4], LIFECYCLE);
    if lines[4] == HLT_LINE {
        lines.remove(4);
    }
    assert_eq!(
        lines[4..],
        ["vmm: error: console output failed (No space left on device (os error 28)); 13 bytes not written"]
    );
    // A reader that goes away before the end: EPIPE.
    let script = format!(
        "{} --guest {} --cmdline bytes=4M | head -c 10 > /dev/null",
        env!("CARGO_BIN_EXE_vmm"),
        guest("stream.elf")
    );
    let out = Command::new("bash").args(["-o", "pipefail", "-c", &script]).output().unwrap();
    let lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(1), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("vmm: error: console output failed (Broken pipe")), "{lines:?}");
}

#[test]
fn sigterm_ends_the_vm_promptly_even_when_nobody_reads_stdout() {
    use std::os::fd::AsRawFd;
    // A pipe whose read end stays open and unread: the stream guest fills
    // it and the VMM's buffer, then the guest waits on a full ring.
    let mut fds = [0; 2];
    // SAFETY: a valid array; the result is checked.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: two new descriptors nothing else owns.
    let (read_end, write_end) = unsafe {
        (std::fs::File::from(std::os::fd::OwnedFd::from_raw_fd(fds[0])), std::os::fd::OwnedFd::from_raw_fd(fds[1]))
    };
    use std::os::fd::FromRawFd;
    let child = Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["--guest", &guest("stream.elf"), "--cmdline", "bytes=64M"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(write_end))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t = std::time::Instant::now();
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < std::time::Duration::from_secs(1), "took {:?}", t.elapsed());
    let lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(1), "{lines:?}");
    assert_eq!(lines[..4], LIFECYCLE);
    assert_eq!(lines[4], "vmm: error: stopped by SIGTERM", "{lines:?}");
    assert!(
        lines[5].starts_with("vmm: error: console output: ")
            && lines[5].ends_with(" bytes not written (the reader stopped)"),
        "{lines:?}"
    );
    let _ = read_end.as_raw_fd();
}

#[test]
fn bad_disks_are_refused_before_anything_runs() {
    let img = temp_file("disk.img", &[0u8; 1024]);
    let odd = temp_file("odd.img", &[0u8; 1000]);
    let cases: [(&[&str], String); 7] = [
        (
            &["--disk", "/nonexistent/disk.img"],
            "--disk /nonexistent/disk.img: No such file or directory (os error 2)".into(),
        ),
        (&["--disk", "/tmp"], "--disk /tmp: is a directory".into()),
        (&["--disk", "/dev/null"], "--disk /dev/null: not a regular file or a block device".into()),
        (&["--disk", &odd], format!("--disk {odd}: its size, 1000 bytes, is not a multiple of 512")),
        (
            &["--disk", &format!("{img},cache=none")],
            "--disk: unknown option 'cache=none' (options: readonly=on, serial=ID, direct=on, engine=io_uring|sync)"
                .into(),
        ),
        (
            &["--disk", &format!("{img},serial=has space")],
            "--disk: serial=has space: at most 20 printable ASCII characters, no spaces".into(),
        ),
        (
            &["--vhost", "--disk", &format!("{img},engine=sync")],
            format!("--disk {img}: engine= chooses the VMM's I/O engine; with --vhost the kernel does the disk's I/O"),
        ),
    ];
    for (args, expected) in cases {
        assert_one_line_error(&vmm(args), &format!("vmm: error: {expected}"));
    }
    let nine: Vec<&str> = (0..9).flat_map(|_| ["--disk", img.as_str()]).collect();
    assert_one_line_error(&vmm(&nine), "vmm: error: --disk: at most 8 disks");
}

#[test]
fn a_disk_another_vmm_writes_is_refused_and_read_only_disks_share() {
    let img = temp_file("locked.img", &[0u8; 4096]);
    // A writer holds it: the way another vmm (or QEMU) would.
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&img).unwrap();
    // SAFETY: flock on a descriptor the File owns.
    assert_eq!(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) }, 0);
    let expected = format!("vmm: error: --disk {img}: in use by another process (it holds a lock on the image)");
    assert_one_line_error(&vmm(&["--disk", &img]), &expected);
    assert_one_line_error(&vmm(&["--disk", &format!("{img},readonly=on")]), &expected);
    drop(file);
    // Readers share; a writer waits for them all.
    let reader = std::fs::File::open(&img).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&reader), libc::LOCK_SH) }, 0);
    let out = vmm(&["--disk", &format!("{img},readonly=on")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_one_line_error(&vmm(&["--disk", &img]), &expected);
}
