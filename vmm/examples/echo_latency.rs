//! The console's input round trip with a Linux guest: runs the vmm command
//! line it is given, waits for the guest's `ready` on vmm's stdout, then
//! `ROUNDS` times writes one byte to vmm's stdin and waits for it to come
//! back on stdout (e2e/guest-init's `e2e=echo`: `dd bs=1` on raw hvc0).
//! Prints the median and the 90th percentile; exits non-zero if a byte comes
//! back wrong or vmm fails. Run by e2e/in-vm.sh.
//!
//!     echo_latency ROUNDS VMM ARGS...

use std::io::{Read, Write};
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rounds, vmm, vmm_args @ ..] = args.as_slice() else {
        return Err("usage: echo_latency ROUNDS VMM ARGS...".into());
    };
    let rounds: usize = rounds.parse().map_err(|_| format!("bad ROUNDS {rounds}"))?;
    let mut child = Command::new(vmm)
        .args(vmm_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {vmm}: {e}"))?;
    let (mut input, mut output) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
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
