//! The console's ports (VIRTIO_CONSOLE_F_MULTIPORT) and its size
//! (VIRTIO_CONSOLE_F_SIZE) against the ports guest (guest/src/bin/ports.rs)
//! and the control-queue abuses of the hostile-ports guest, with real
//! sockets, a real pty and files: exact guest bytes both ways, exact stdout
//! and stderr lines, exit status.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIST: &str = "ports: 3\nport 0: console\n";
const HELLO: &[u8] = b"hello from the guest on port 1\n";

/// A fresh directory for a test's sockets and files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmm-ports-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn spawn(args: &[&str], stdin: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vmm runs")
}

/// Connects to the socket vmm listens on, once it is there (a bounded wait).
fn connect(path: &Path) -> UnixStream {
    let start = Instant::now();
    loop {
        match UnixStream::connect(path) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                return s;
            }
            Err(e) if start.elapsed() > Duration::from_secs(30) => panic!("{}: {e}", path.display()),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn read_exact(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// Waits for vmm, killing it after 60 s (a stalled guest must fail the
/// test, not hang it).
fn finish(mut child: Child) -> std::process::Output {
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            if start.elapsed() > Duration::from_secs(60) {
                // SAFETY: a signal to our own child.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout).unwrap();
    }
    let mut stderr = Vec::new();
    child.stderr.take().unwrap().read_to_end(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    std::process::Output { status, stdout, stderr }
}

fn guest_lines(names: [&str; 2], open: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for (verb, ports) in [("opened", open), ("closed", open)] {
        if ports {
            for (i, name) in names.iter().enumerate() {
                lines.push(format!("=== port {} ({name}): guest {verb} ===", i + 1));
            }
        }
    }
    lines
}

#[test]
fn two_socket_ports_bring_up_write_echo_and_reconnect() {
    let dir = scratch("sockets");
    let (out, echo) = (dir.join("out.sock"), dir.join("echo.sock"));
    let args = [
        "--guest",
        &guest("ports.elf"),
        "--port",
        &format!("name=out,socket={}", out.display()),
        "--port",
        &format!("name=echo,socket={}", echo.display()),
    ];
    let child = spawn(&args, Stdio::null());
    // Port 1: the guest writes its line once the host is there.
    let mut s = connect(&out);
    assert_eq!(read_exact(&mut s, HELLO.len()), HELLO);
    drop(s);
    // Port 2: two connections, each echoed byte for byte. One client at a
    // time: the second connects and writes while the first is there, and
    // is served once the first leaves; its bytes are more than one receive
    // buffer (1 KiB) of the guest.
    let mut first = connect(&echo);
    first.write_all(b"ping\n").unwrap();
    assert_eq!(read_exact(&mut first, 5), b"ping\n");
    let big: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let mut second = connect(&echo);
    second.write_all(&big).unwrap();
    drop(first);
    assert_eq!(read_exact(&mut second, big.len()), big);
    drop(second);
    let run = finish(child);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!(
            "{LIST}port 1: out\nport 2: echo\nport 1: wrote 31 bytes\nport 1: host closed\n\
             port 2: round 1: 5 bytes echoed\nport 2: round 2: 3000 bytes echoed\ndone\n"
        )
    );
    let lines = guest_lines(["out", "echo"], true);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_clean_run(&run, &lines);
    assert!(!out.exists() && !echo.exists(), "the sockets are removed at the end");
}

#[test]
fn a_file_port_takes_the_guest_bytes() {
    let dir = scratch("file");
    let file = dir.join("port1.out");
    let args = [
        "--guest",
        &guest("ports.elf"),
        "--cmdline",
        "wait-close=0 rounds=0",
        "--port",
        &format!("name=log,file={}", file.display()),
        "--port",
        &format!("name=other,file={}", dir.join("port2.out").display()),
    ];
    let run = finish(spawn(&args, Stdio::null()));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("{LIST}port 1: log\nport 2: other\nport 1: wrote 31 bytes\ndone\n")
    );
    let lines = guest_lines(["log", "other"], true);
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    assert_clean_run(&run, &lines);
    assert_eq!(std::fs::read(&file).unwrap(), HELLO);
    assert_eq!(std::fs::read(dir.join("port2.out")).unwrap(), b"");
}

/// The pty's path, from vmm's line `=== port N (NAME): pty PATH ===`.
fn pty_path(stderr: &mut impl BufRead, port: &str) -> (String, PathBuf) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no pty line");
        if let Some(rest) = line.strip_prefix(&format!("=== {port}: pty ")) {
            let path = rest.trim_end().strip_suffix(" ===").unwrap();
            return (line.clone(), PathBuf::from(path));
        }
    }
}

#[test]
fn a_pty_port_echoes_until_the_vm_is_stopped() {
    let dir = scratch("pty");
    let out = dir.join("out.sock");
    let args = [
        "--guest",
        &guest("ports.elf"),
        "--cmdline",
        "rounds=1",
        "--port",
        &format!("name=out,socket={}", out.display()),
        "--port",
        "name=tty,pty",
    ];
    let mut child = spawn(&args, Stdio::null());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (line, path) = pty_path(&mut stderr, "port 2 (tty)");
    assert!(path.starts_with("/dev/pts/"), "{line}");
    let mut s = connect(&out);
    assert_eq!(read_exact(&mut s, HELLO.len()), HELLO);
    drop(s);
    // The pty is open from the start: the guest echoes what comes in, raw.
    let mut tty = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    tty.write_all(b"ping\r\n").unwrap();
    assert_eq!(read_exact(&mut tty, 6), b"ping\r\n");
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert_eq!(stdout, format!("{LIST}port 1: out\nport 2: tty\nport 1: wrote 31 bytes\nport 1: host closed\n"));
    let mut expected = LIFECYCLE.to_vec();
    expected.extend(["=== port 1 (out): guest opened ===", "=== port 2 (tty): guest opened ==="]);
    expected.push("vmm: error: stopped by SIGTERM");
    assert_eq!(rest.lines().collect::<Vec<_>>(), expected);
}

/// A pty pair whose slave is vmm's stdin, `cols` x `rows`.
fn terminal(cols: u16, rows: u16) -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: two live ints for the descriptors; no name, no termios.
    let r = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
    assert_eq!(r, 0);
    // SAFETY: new descriptors nothing else owns.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

fn set_size(master: &OwnedFd, cols: u16, rows: u16) {
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one live winsize.
    assert_eq!(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) }, 0);
}

/// Runs `args` with a terminal of 100x40 as stdin; once stdout has `first`,
/// makes it 120x50 and sends SIGWINCH; returns the run.
fn resize_run(args: &[&str], first: &str) -> std::process::Output {
    let (master, slave) = terminal(100, 40);
    let mut child = spawn(args, Stdio::from(slave));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.ends_with(first) {
        assert!(stdout.read_line(&mut seen).unwrap() > 0, "stdout so far: {seen:?}");
    }
    set_size(&master, 120, 50);
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGWINCH) };
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut run = finish(child);
    run.stdout = (seen + &rest).into_bytes();
    drop(master);
    run
}

#[test]
fn without_ports_the_size_is_in_the_configuration_space_and_follows_the_terminal() {
    let run = resize_run(&["--guest", &guest("ports.elf"), "--cmdline", "only=size"], "size 100x40\n");
    assert_eq!(String::from_utf8_lossy(&run.stdout), "size 100x40\nresized to 120x50\n");
    assert_clean_run(&run, &[]);
}

#[test]
fn with_ports_the_size_comes_as_resize_messages() {
    let dir = scratch("resize");
    let args = [
        "--guest",
        &guest("ports.elf"),
        "--cmdline",
        "size=1",
        "--port",
        &format!("name=a,file={}", dir.join("a").display()),
        "--port",
        &format!("name=b,file={}", dir.join("b").display()),
    ];
    let run = resize_run(&args, "port 0: size 100x40\n");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("{LIST}port 1: a\nport 2: b\nport 0: size 100x40\nport 0: resized to 120x50\n")
    );
    assert_clean_run(&run, &[]);
}

#[test]
fn without_a_terminal_no_size_is_offered() {
    // stdin is not a terminal: VIRTIO_CONSOLE_F_SIZE is not offered.
    let out = vmm(&["--guest", &guest("ports.elf"), "--cmdline", "only=size"]);
    assert_failed_run(&out, &["guest: ports: the device does not offer VIRTIO_CONSOLE_F_SIZE"], &[GUEST_FAILED]);
}

struct Case {
    name: &'static str,
    warnings: &'static [&'static str],
    /// The guest's status report, or None if it writes "survived".
    report: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        name: "port-ready-unknown",
        warnings: &["console: PORT_READY for port 7, which does not exist (the device has 2); ignored"],
        report: None,
    },
    Case {
        name: "port-open-unknown",
        warnings: &["console: PORT_OPEN for port 9, which does not exist (the device has 2); ignored"],
        report: None,
    },
    Case {
        name: "unknown-event",
        warnings: &["console: control event 99 (an unknown event) for port 1 is not one a driver sends; ignored"],
        report: None,
    },
    Case {
        name: "device-event",
        warnings: &["console: control event 7 (PORT_NAME) for port 1 is not one a driver sends; ignored"],
        report: None,
    },
    Case {
        name: "short-header",
        warnings: &["console: control message of 4 bytes is shorter than its 8-byte header; ignored"],
        report: None,
    },
    Case {
        name: "device-ready-0",
        warnings: &["console: the driver could not set up its ports (DEVICE_READY 0); no port is added"],
        report: None,
    },
    Case {
        name: "console-as-vport",
        warnings: &["console: PORT_OPEN for port 0, the console port, before the device announced it; ignored"],
        report: None,
    },
    Case { name: "port-not-added", warnings: &["console: the driver could not add port 1"], report: None },
    Case {
        name: "flood",
        warnings: &["console: 256 control messages wait for the driver to take them; dropping more"],
        report: None,
    },
    Case {
        name: "control-writable",
        warnings: &[
            "virtio-mmio: queue 3: descriptor 0 is device-writable on a queue the device only reads; device needs reset",
        ],
        report: Some("guest: hostile-ports: status 0x0000004f"),
    },
];

#[test]
fn every_control_queue_abuse_is_one_line_and_no_stall() {
    let dir = scratch("hostile");
    let port = format!("name=p1,file={}", dir.join("p1").display());
    let listed = vmm(&["--guest", &guest("hostile-ports.elf"), "--cmdline", "case=?", "--port", &port]);
    let lines = stderr_lines(&listed);
    let names: Vec<&str> =
        lines.iter().find_map(|l| l.split("; cases: ").nth(1)).expect("the case list").split(' ').collect();
    assert_eq!(names, CASES.iter().map(|c| c.name).collect::<Vec<_>>(), "every case is tested");
    for case in CASES {
        let cmdline = format!("case={}", case.name);
        let out = vmm(&["--guest", &guest("hostile-ports.elf"), "--cmdline", &cmdline, "--port", &port]);
        match case.report {
            None => {
                assert_eq!(out.stdout, b"survived\n", "{}", case.name);
                assert_clean_run(&out, case.warnings);
            }
            Some(report) => {
                let mut middle = case.warnings.to_vec();
                middle.push(report);
                assert_failed_run(&out, &middle, &[DEVICE_FAILED, GUEST_FAILED]);
            }
        }
    }
}

#[test]
fn bad_port_arguments_are_one_line_and_create_nothing() {
    let dir = scratch("cli");
    let file = dir.join("never");
    let hello = guest("hello.elf");
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["--port".into(), "name=a/b,pty".into()],
            "vmm: error: --port: name=a/b: a port name is 1 to 64 characters of A-Z a-z 0-9 . _ -".into(),
        ),
        (
            vec!["--port".into(), "name=x,pty".into(), "--port".into(), format!("name=x,file={}", file.display())],
            "vmm: error: --port: the name x is given twice".into(),
        ),
        (
            vec!["--vhost".into(), "--port".into(), format!("name=x,file={}", file.display()), "--port".into(), "name=t,pty".into()],
            "vmm: error: --port t: a pty port is not supported with --vhost (the kernel writes only to what cannot block it); use socket= or file=".into(),
        ),
        (
            vec!["--port".into(), "name=x".into()],
            "vmm: error: --port name=x: no socket=, pty or file= (--port name=NAME,socket=PATH | name=NAME,pty | name=NAME,file=PATH)".into(),
        ),
        (
            vec!["--port".into(), "name=s,socket=/nonexistent-dir/s".into()],
            "vmm: error: --port s: cannot listen on /nonexistent-dir/s: No such file or directory (os error 2)".into(),
        ),
        (
            vec!["--mem".into(), "0".into(), "--port".into(), format!("name=x,file={}", file.display())],
            "vmm: error: --mem must be from 1 to 256 MiB (RAM ends below the virtio-mmio window at 0x10000000)".into(),
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["--guest".to_string(), hello.clone()];
        args.extend(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_one_line_error(&vmm(&args), &expected);
        assert!(!file.exists(), "{expected}");
    }
    let mut args = vec!["--guest".to_string(), hello];
    for i in 0..32 {
        args.extend(["--port".into(), format!("name=p{i},pty")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_one_line_error(&vmm(&args), "vmm: error: --port: at most 31 ports");
}

#[test]
fn a_pty_nobody_opens_takes_the_guest_bytes_and_holds_nothing_up() {
    let dir = scratch("pty-alone");
    let args = [
        "--guest",
        &guest("ports.elf"),
        "--cmdline",
        "wait-close=0 rounds=0",
        "--port",
        "name=t,pty",
        "--port",
        &format!("name=f,file={}", dir.join("f").display()),
    ];
    let run = finish(spawn(&args, Stdio::null()));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        format!("{LIST}port 1: t\nport 2: f\nport 1: wrote 31 bytes\ndone\n")
    );
    let lines = stderr_lines(&run);
    let pty = lines[0].strip_prefix("=== port 1 (t): pty /dev/pts/").and_then(|l| l.strip_suffix(" ==="));
    assert!(pty.is_some_and(|n| n.parse::<u32>().is_ok()), "{}", lines[0]);
    let rest = std::process::Output { stderr: lines[1..].join("\n").into_bytes(), ..run };
    let opened = guest_lines(["t", "f"], true);
    assert_clean_run(&rest, &opened.iter().map(String::as_str).collect::<Vec<_>>());
}
