//! `cargo xtask bench [N]`: the vmm against a bare KVM program
//! (vmm/examples/bare.rs) on the same hello guest, interleaved run by run so
//! that machine noise hits both alike; then the stream guest's throughput.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{build_guests, cargo, guests_dir, root, Result};

/// Runs a command to completion; returns the wall time from spawn to reap.
fn sample(program: &str, args: &[&str]) -> Result<Duration> {
    let start = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let status = child.wait_with_output().map_err(|e| format!("{program}: {e}"))?.status;
    let wall = start.elapsed();
    if !status.success() {
        return Err(format!("{program} {args:?} failed ({status})"));
    }
    Ok(wall)
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// The exit count and peak RSS a program reports on stderr (`exits: N ...`,
/// `peak RSS: N KiB`). The RSS comes from the process itself: wait4's
/// ru_maxrss keeps the parent's high-water mark across exec.
fn counters(program: &str, args: &[&str]) -> Result<(u64, u64)> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let find =
        |prefix: &str| stderr.lines().find_map(|l| l.strip_prefix(prefix)?.split_whitespace().next()?.parse().ok());
    match (find("exits: "), find("peak RSS: ")) {
        (Some(exits), Some(rss)) => Ok((exits, rss)),
        _ => Err(format!("{program} did not report its exits and peak RSS")),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

pub fn run(runs: Option<&str>) -> Result {
    let runs: usize = runs.map_or(Ok(30), str::parse).map_err(|_| "bench: N must be a number".to_string())?;
    if runs < 20 {
        return Err("bench: use at least 20 runs".into());
    }
    build_guests()?;
    cargo(&["build", "--release", "-p", "vmm", "--bin", "vmm", "--example", "bare"])?;
    let root = root();
    let vmm = root.join("target/release/vmm").display().to_string();
    let bare = root.join("target/release/examples/bare").display().to_string();
    let hello = guests_dir().join("hello.elf").display().to_string();
    let stream = guests_dir().join("stream.elf").display().to_string();

    // Warm the page cache and KVM module state for both.
    sample(&vmm, &[])?;
    sample(&bare, &[&hello])?;
    let (mut v, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        v.push(sample(&vmm, &[])?);
        b.push(sample(&bare, &[&hello])?);
    }
    let vmm_counters = counters(&vmm, &["--stats"])?;
    let bare_counters = counters(&bare, &[&hello])?;

    println!("hello guest (i686), {runs} runs each, interleaved; whole process, spawn to exit:");
    println!("  {:<10} {:>10} {:>10} {:>14} {:>6}", "", "median", "min", "peak RSS", "exits");
    for (name, s, (exits, rss)) in [("bare KVM", &b, bare_counters), ("vmm", &v, vmm_counters)] {
        println!(
            "  {:<10} {:>10} {:>10} {:>10} KiB {:>6}",
            name,
            ms(median(s.clone())),
            ms(*s.iter().min().unwrap()),
            rss,
            exits
        );
    }
    let ratio = median(v).as_secs_f64() / median(b).as_secs_f64();
    println!("  vmm / bare (median wall time): {ratio:.3}");

    let (mib, chunk) = (16, "4K");
    let cmdline = format!("bytes={mib}M chunk={chunk}");
    let args = ["--guest", stream.as_str(), "--cmdline", cmdline.as_str()];
    let walls: Vec<Duration> = (0..5).map(|_| sample(&vmm, &args)).collect::<Result<_>>()?;
    let wall = median(walls);
    let stats_args = [&args[..], &["--stats"]].concat();
    let (stream_exits, _) = counters(&vmm, &stats_args)?;
    println!(
        "stream guest, {mib} MiB in {chunk} buffers, median of 5: {} = {:.1} MiB/s, {stream_exits} exits ({:.1} per MiB)",
        ms(wall),
        f64::from(mib) / wall.as_secs_f64(),
        stream_exits as f64 / f64::from(mib)
    );
    Ok(())
}
