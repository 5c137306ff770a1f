//! The console's input round trip with a Linux guest: runs the vmm command
//! line it is given, waits for the guest's `ready` on vmm's stdout, then
//! `ROUNDS` times writes one byte to vmm's stdin and waits for it to come
//! back on stdout (e2e/guest-init's `e2e=echo`: `dd bs=1` on raw hvc0).
//! Prints the median and the 90th percentile; exits non-zero if a byte comes
//! back wrong or vmm fails. With `--pty`, vmm's stdin is a terminal (the
//! slave of a new pty, written through its master), as for a user at a
//! shell: vmm puts it in raw mode, and in vhost mode relays it to the
//! kernel through its input thread. Run by e2e/in-vm.sh.
//!
//!     echo_latency [--pty] ROUNDS VMM ARGS...

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_latency: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let pty = args.first().is_some_and(|a| a == "--pty");
    if pty {
        args.remove(0);
    }
    let [rounds, vmm, vmm_args @ ..] = args.as_slice() else {
        return Err("usage: echo_latency [--pty] ROUNDS VMM ARGS...".into());
    };
    let rounds: usize = rounds.parse().map_err(|_| format!("bad ROUNDS {rounds}"))?;
    let (master, stdin) = match pty {
        true => {
            let (master, slave) = open_pty()?;
            (Some(master), Stdio::from(slave))
        }
        false => (None, Stdio::piped()),
    };
    let mut child = Command::new(vmm)
        .args(vmm_args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {vmm}: {e}"))?;
    let mut input: Box<dyn Write> = match master {
        Some(master) => Box::new(master),
        None => Box::new(child.stdin.take().unwrap()),
    };
    let mut output = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    let mut line = Vec::new();
    // The guest's "ready\n" (raw: no CR), once its hvc0 reads input.
    while line != b"ready\n" {
        output.read_exact(&mut byte).map_err(|e| format!("vmm's stdout ended before `ready`: {e}"))?;
        line.push(byte[0]);
        if byte[0] == b'\n' && line != b"ready\n" {
            line.clear();
        }
    }
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let sent = b'a' + (i % 26) as u8;
        let start = Instant::now();
        input.write_all(&[sent]).map_err(|e| format!("write to vmm's stdin: {e}"))?;
        output.read_exact(&mut byte).map_err(|e| format!("round {i}: vmm's stdout ended: {e}"))?;
        times.push(start.elapsed());
        if byte[0] != sent {
            return Err(format!("round {i}: sent {sent:#04x}, got {:#04x} back", byte[0]));
        }
    }
    drop(input);
    let status = child.wait().map_err(|e| e.to_string())?;
    // (With --pty the master closes here: vmm has exited already, on the
    // guest's reboot after its last byte.)
    if !status.success() {
        return Err(format!("vmm exited with {status}"));
    }
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{rounds} round trips: median {:.0} us, 90th percentile {:.0} us, slowest {:.0} us",
        us(times[rounds / 2]),
        us(times[rounds * 9 / 10]),
        us(times[rounds - 1])
    );
    Ok(())
}

/// A new pty: its master (ours) and its slave (vmm's stdin).
fn open_pty() -> Result<(File, File), String> {
    let err = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY: no pointer arguments; the result is checked.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(err("posix_openpt"));
    }
    // SAFETY: a new descriptor that nothing else owns.
    let master = unsafe { File::from_raw_fd(fd) };
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: `fd` is the open master; ptsname_r writes a NUL-terminated
    // name of at most `name.len()` bytes into `name`.
    if unsafe {
        libc::grantpt(fd) != 0 || libc::unlockpt(fd) != 0 || libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) != 0
    } {
        return Err(err("grantpt/unlockpt/ptsname_r"));
    }
    // SAFETY: NUL-terminated by ptsname_r's success.
    let path = unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
    let slave = OpenOptions::new().read(true).write(true).open(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok((master, slave))
}
