//! Helpers for the integration tests: they run the real `vmm` binary on the
//! real /dev/kvm with the guests that `cargo xtask guest` builds.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub const LIFECYCLE: [&str; 4] = [
    "=== Guest OS has noticed device ===",
    "=== Guest OS knows how to drive device ===",
    "=== Driver has acknowledged recognizable features; feature negotiation complete ===",
    "=== Driver is set up; console device is live ===",
];
pub const HLT_LINE: &str = "[KVM_EXIT_HLT: program halted normally]";
pub const IDLE_LINE: &str = "[guest waits for input after the end of its input: VM stopped]";
/// The error lines of a run in which the console went into DEVICE_NEEDS_RESET,
/// and of one whose guest reported a failure on its debug port.
pub const DEVICE_FAILED: &str =
    "vmm: error: the console device stopped on a driver error (see above): the guest's data in it may be lost";
pub const GUEST_FAILED: &str = "vmm: error: the guest reported a failure on its debug port (the guest: line above)";

pub fn guest(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/guests").join(name);
    assert!(path.is_file(), "{} is missing: run `cargo xtask guest`", path.display());
    path.display().to_string()
}

pub fn vmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vmm")).args(args).output().expect("vmm runs")
}

/// vmm with stdin, stdout and stderr on pipes.
fn spawn_piped(args: &[&str]) -> std::process::Child {
    use std::process::Stdio;
    Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmm runs")
}

/// Runs vmm with `input` on its stdin, sent only once the driver is live
/// (the last lifecycle line) and has had a moment to go to sleep.
pub fn vmm_input_after_ready(args: &[&str], input: &[u8]) -> Output {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut child = spawn_piped(args);
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut early = Vec::new();
    while !early.ends_with(format!("{}\n", LIFECYCLE[3]).as_bytes()) {
        assert!(stderr.read_until(b'\n', &mut early).unwrap() > 0, "{}", String::from_utf8_lossy(&early));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    stderr.read_to_end(&mut early).unwrap();
    Output { status: child.wait().unwrap(), stdout, stderr: early }
}

/// Runs vmm with `input` on its stdin (a pipe, closed after the last byte).
pub fn vmm_with_input(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = spawn_piped(args);
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A thread: vmm may not read it all before it fills its own stdout.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("vmm runs");
    writer.join().unwrap();
    out
}

pub fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().map(str::to_owned).collect()
}

/// Asserts the time line: `Time taken to run VM: <N> microseconds`.
pub fn assert_time_line(line: &str) {
    let n = line
        .strip_prefix("Time taken to run VM: ")
        .and_then(|rest| rest.strip_suffix(" microseconds"))
        .unwrap_or_else(|| panic!("not a time line: {line:?}"));
    assert!(n.parse::<u64>().is_ok_and(|n| n > 0), "bad time: {line:?}");
}

/// A successful run: exit 0, the four lifecycle lines first and in order,
/// then `middle` exactly, then the HLT line and the time line.
pub fn assert_clean_run(out: &Output, middle: &[&str]) {
    assert_run_ending(out, middle, HLT_LINE);
}

/// A run that ended with the guest asleep after the end of its input: as
/// `assert_clean_run`, with IDLE_LINE for the HLT line.
pub fn assert_idle_run(out: &Output, middle: &[&str]) {
    assert_run_ending(out, middle, IDLE_LINE);
}

fn assert_run_ending(out: &Output, middle: &[&str], end: &str) {
    let lines = stderr_lines(out);
    assert!(out.status.success(), "vmm failed: {:?}\n{}", out.status, lines.join("\n"));
    assert_eq!(lines.len(), 6 + middle.len(), "stderr:\n{}", lines.join("\n"));
    assert_eq!(&lines[..4], &LIFECYCLE);
    assert_eq!(&lines[4..4 + middle.len()], middle);
    assert_eq!(lines[4 + middle.len()], end);
    assert_time_line(&lines[5 + middle.len()]);
}

/// A run in which the guest halted but something failed: exit status 1, the
/// four lifecycle lines, then `middle` exactly, the HLT line, and `errors`.
pub fn assert_failed_run(out: &Output, middle: &[&str], errors: &[&str]) {
    let lines = stderr_lines(out);
    assert_eq!(out.status.code(), Some(1), "{}", lines.join("\n"));
    assert_eq!(lines.len(), 5 + middle.len() + errors.len(), "stderr:\n{}", lines.join("\n"));
    assert_eq!(&lines[..4], &LIFECYCLE);
    assert_eq!(&lines[4..4 + middle.len()], middle);
    assert_eq!(lines[4 + middle.len()], HLT_LINE);
    assert_eq!(&lines[5 + middle.len()..], errors);
}

/// Exit status 1, one line on stderr, nothing on stdout.
pub fn assert_one_line_error(out: &Output, expected: &str) {
    let lines = stderr_lines(out);
    assert_eq!(out.status.code(), Some(1), "{lines:?}");
    assert_eq!(lines, [expected]);
    assert_eq!(out.stdout, b"");
}

/// Byte `i` of the stream guest's output is `i % 251`.
pub fn stream_pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The last statistics line, checked for shape: `peak RSS: <N> KiB`.
pub fn peak_rss_line(out: &std::process::Output) -> String {
    let lines = stderr_lines(out);
    let line = lines.iter().find(|l| l.starts_with("peak RSS: ")).expect("a peak RSS line").clone();
    let kib: u64 = line["peak RSS: ".len()..].strip_suffix(" KiB").unwrap().parse().unwrap();
    assert!((100..100_000).contains(&kib), "{line}");
    line
}
