//! A hostile driver (guest/src/bin/hostile.rs) against the device: for every
//! case the VMM logs exactly the expected lines, never panics, sets
//! DEVICE_NEEDS_RESET where the spec says so, and ends with the guest's halt;
//! a run in which the device failed, or the guest reported a failure, ends
//! with those errors and exit status 1.

mod common;
use common::*;

/// Device status as the guest reads it after the misbehaviour.
const RUNNING_NEEDS_RESET: &str = "guest: hostile: status 0x0000004f"; // ACK|DRIVER|FEATURES_OK|DRIVER_OK|NEEDS_RESET
const SETUP_NEEDS_RESET: &str = "guest: hostile: status 0x0000004b"; // ACK|DRIVER|FEATURES_OK|NEEDS_RESET

struct Case {
    name: &'static str,
    /// The VMM's warning lines, in order.
    warnings: &'static [&'static str],
    /// The guest's report on the debug port, or None if it carries on and
    /// prints "survived" through the console.
    report: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        name: "desc-beyond-ram",
        warnings: &["virtio-mmio: queue 1: descriptor 0: buffer 0x40000000+0x10 is outside guest memory; device needs reset"],
        report: Some(RUNNING_NEEDS_RESET),
    },
    Case {
        name: "desc-overflow",
        warnings: &["virtio-mmio: queue 1: descriptor 0: buffer 0xfffffffffffffff0+0x100 overflows the address space; device needs reset"],
        report: Some(RUNNING_NEEDS_RESET),
    },
    Case {
        name: "next-out-of-range",
        warnings: &["virtio-mmio: queue 1: descriptor 0 chains to descriptor 19, beyond the queue size 16; device needs reset"],
        report: Some(RUNNING_NEEDS_RESET),
    },
    Case {
        name: "desc-loop",
        warnings: &["virtio-mmio: queue 1: descriptor chain from 0 is longer than the queue size 16 (a loop); device needs reset"],
        report: Some(RUNNING_NEEDS_RESET),
    },
    Case {
        name: "chain-too-long",
        warnings: &["virtio-mmio: queue 1: descriptor chain from 0 is longer than the queue size 16 (a loop); device needs reset"],
        report: Some(RUNNING_NEEDS_RESET),
    },
    Case {
        name: "write-only-desc",
        warnings: &["virtio-mmio: queue 1: descriptor 0 is device-writable on a queue the device only reads; device needs reset"],
        report: Some(RUNNING_NEEDS_RESET),
    },
    Case {
        name: "head-out-of-range",
        warnings: &["virtio-mmio: queue 1: available ring entry names descriptor 17, beyond the queue size 16; device needs reset"],
        report: Some(RUNNING_NEEDS_RESET),
    },
    Case {
        name: "avail-idx-jump",
        warnings: &["virtio-mmio: queue 1: available ring index 17 is 17 entries ahead of the device, more than the queue size 16; device needs reset"],
        report: Some(RUNNING_NEEDS_RESET),
    },
    Case {
        name: "queue-size-zero",
        warnings: &["virtio-mmio: queue 1: size 0 is invalid (a power of two from 1 to 256); device needs reset"],
        report: Some(SETUP_NEEDS_RESET),
    },
    Case {
        name: "queue-size-not-pow2",
        warnings: &["virtio-mmio: queue 1: size 3 is invalid (a power of two from 1 to 256); device needs reset"],
        report: Some(SETUP_NEEDS_RESET),
    },
    Case {
        name: "queue-size-over-max",
        warnings: &["virtio-mmio: queue 1: size 32768 is invalid (a power of two from 1 to 256); device needs reset"],
        report: Some(SETUP_NEEDS_RESET),
    },
    Case {
        name: "ready-before-addresses",
        warnings: &["virtio-mmio: queue 1: enabled before all three ring addresses were written; device needs reset"],
        report: Some(SETUP_NEEDS_RESET),
    },
    Case {
        name: "driver-ok-without-features-ok",
        warnings: &["virtio-mmio: status 0x07 sets DRIVER_OK out of order; device needs reset"],
        report: Some("guest: hostile: status 0x00000043"),
    },
    // Feature refusals are not errors of the device: FEATURES_OK stays clear (§3.1.1).
    Case {
        name: "no-version-1",
        warnings: &["virtio-mmio: driver did not accept VIRTIO_F_VERSION_1; FEATURES_OK refused"],
        report: Some("guest: hostile: status 0x00000003"),
    },
    Case {
        name: "unoffered-feature",
        warnings: &["virtio-mmio: driver accepted features 0x10000000000 that were not offered; FEATURES_OK refused"],
        report: Some("guest: hostile: status 0x00000003"),
    },
    Case {
        name: "read-only-write",
        warnings: &[
            "virtio-mmio: write to read-only register MagicValue (0x000) ignored",
            "virtio-mmio: write to read-only register QueueNumMax (0x034) ignored",
            "virtio-mmio: write to read-only register InterruptStatus (0x060) ignored",
        ],
        report: None,
    },
    Case {
        name: "bad-width",
        warnings: &[
            "virtio-mmio: 8-bit read of Status (0x070) ignored: registers are 32-bit",
            "virtio-mmio: 16-bit write to QueueSel (0x030) ignored: registers are 32-bit",
            "virtio-mmio: 8-bit write to Status (0x070) ignored: registers are 32-bit",
        ],
        report: None,
    },
    Case {
        name: "unknown-register",
        warnings: &[
            "virtio-mmio: read of unknown register 0x0a8 ignored",
            "virtio-mmio: write to unknown register 0x0c4 ignored",
        ],
        report: None,
    },
    Case {
        name: "reset-after-error",
        warnings: &[
            "virtio-mmio: queue 1: descriptor 0: buffer 0x40000000+0x10 is outside guest memory; device needs reset",
        ],
        report: Some("guest: hostile: status 0x00000000"),
    },
    Case {
        name: "disable-then-post",
        warnings: &["virtio-mmio: QueueNotify for queue 1 ignored: no such enabled queue"],
        report: Some("guest: hostile: used 0x00000000"),
    },
    Case {
        name: "outside-window",
        warnings: &[
            "mmio: 4-byte write at 0x10001000 outside any device ignored",
            "mmio: 4-byte read at 0x20000000 outside any device; reads as 0",
        ],
        report: None,
    },
    Case {
        name: "needs-reset-then-post",
        warnings: &[
            "virtio-mmio: invalid status write 0x07 over 0x0f (bits can only be added; 0 resets); device needs reset",
        ],
        report: Some("guest: hostile: used 0x00000000, status 0x0000004f"),
    },
    Case { name: "no-queues", warnings: &[], report: Some("guest: hostile: status 0x0000000f") },
    Case {
        name: "notify-before-driver-ok",
        warnings: &["virtio-mmio: QueueNotify for queue 1 before DRIVER_OK ignored"],
        report: None,
    },
];

fn run_case(case: &Case) {
    let cmdline = format!("case={}", case.name);
    let out = vmm(&["--guest", &guest("hostile.elf"), "--cmdline", &cmdline]);
    let lines = stderr_lines(&out);
    let context = format!("case {}: stderr:\n{}", case.name, lines.join("\n"));
    assert!(!lines.iter().any(|l| l.contains("panicked")), "{context}");
    let warnings: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("virtio-mmio: ") || l.starts_with("mmio: "))
        .collect();
    assert_eq!(warnings, case.warnings, "{context}");
    let guest_lines: Vec<&str> = lines.iter().map(String::as_str).filter(|l| l.starts_with("guest: ")).collect();
    let failed = case.warnings.iter().any(|w| w.ends_with("; device needs reset"));
    match case.report {
        Some(report) => {
            assert_eq!(guest_lines, [report], "{context}");
            assert_eq!(out.stdout, b"", "{context}");
            let errors: &[&str] = if failed { &[DEVICE_FAILED, GUEST_FAILED] } else { &[GUEST_FAILED] };
            // Warnings about setup come before DRIVER_OK, among the
            // lifecycle lines: the ending is compared here.
            assert_eq!(out.status.code(), Some(1), "{context}");
            let tail = &lines[lines.len() - 1 - errors.len()..];
            assert_eq!(tail[0], HLT_LINE, "{context}");
            assert_eq!(&tail[1..], errors, "{context}");
        }
        None => {
            assert!(out.status.success(), "{context}");
            assert!(!failed, "{context}");
            assert_eq!(guest_lines, Vec::<&str>::new(), "{context}");
            assert_eq!(out.stdout, b"survived\n", "{context}");
            assert_eq!(lines[lines.len() - 2], HLT_LINE, "{context}");
            assert_time_line(&lines[lines.len() - 1]);
        }
    }
}

#[test]
fn every_hostile_case_is_contained() {
    assert!(CASES.len() >= 12);
    for case in CASES {
        run_case(case);
    }
}

/// Receive buffers the device must refuse once it has input for them:
/// (command line, memory in MiB, the VMM's warning).
const RX_REFUSED: &[(&str, &str, &str)] = &[
    (
        "case=rx-read-only",
        "16",
        "virtio-mmio: queue 0: descriptor 0 is device-readable on a queue the device only writes; device needs reset",
    ),
    (
        "case=rx-beyond-ram",
        "16",
        "virtio-mmio: queue 0: descriptor 0: buffer 0x40000000+0x40 is outside guest memory; device needs reset",
    ),
    // 32 descriptors of 128 MiB + 4 KiB, each inside RAM.
    (
        "case=rx-huge-chain descs=32 len=131076K",
        "256",
        "virtio-mmio: queue 0: descriptor chain from 0 holds more than 4 GiB; device needs reset",
    ),
];

#[test]
fn bad_receive_buffers_need_reset_and_take_no_input() {
    for &(cmdline, mem, warning) in RX_REFUSED {
        let out = vmm_with_input(&["--mem", mem, "--guest", &guest("hostile.elf"), "--cmdline", cmdline], b"hi\n");
        assert_failed_run(&out, &[warning, RUNNING_NEEDS_RESET], &[DEVICE_FAILED, GUEST_FAILED]);
        assert_eq!(out.stdout, b"", "{cmdline}");
    }
}

/// A zero-length receive buffer is used with 0 bytes and the input goes to
/// the next; a 64 MiB chain in bounds takes it in its first descriptor.
#[test]
fn odd_but_valid_receive_buffers_take_the_input() {
    for cmdline in ["case=rx-zero-length", "case=rx-huge-chain"] {
        let out = vmm_with_input(&["--guest", &guest("hostile.elf"), "--cmdline", cmdline], b"hi\n");
        assert_clean_run(&out, &[]);
        assert_eq!(out.stdout, b"hi\n", "{cmdline}");
    }
}

#[test]
fn emergency_writes_reach_the_output_before_any_setup() {
    let out = vmm(&["--guest", &guest("hostile.elf"), "--cmdline", "case=emergency-write"]);
    assert_clean_run(&out, &[]);
    assert_eq!(out.stdout, b"emergency\nsurvived\n");
}

#[test]
fn an_unknown_case_is_reported_by_the_guest_with_the_cases_it_knows() {
    let out = vmm(&["--guest", &guest("hostile.elf"), "--cmdline", "case=nonsense"]);
    let lines = stderr_lines(&out);
    let prefix = "guest: hostile: unknown case nonsense; cases: ";
    assert!(lines[0].starts_with(prefix), "{lines:?}");
    assert_eq!(lines[1..], [HLT_LINE, GUEST_FAILED]);
    assert_eq!(out.status.code(), Some(1));
    // Each case it lists is one it knows, and the tests here know them all.
    let listed: Vec<&str> = lines[0][prefix.len()..].split(' ').collect();
    assert_eq!(listed.len(), 31);
    let tested: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    for name in listed {
        let out = vmm_with_input(&["--guest", &guest("hostile.elf"), "--cmdline", &format!("case={name}")], b"x");
        let lines = stderr_lines(&out);
        assert!(!lines.iter().any(|l| l.contains("unknown case")), "{name}: {lines:?}");
        let elsewhere = name.starts_with("rx-") || ["huge-chain", "kick-storm", "emergency-write"].contains(&name);
        assert!(tested.contains(&name) || elsewhere, "{name} is not tested");
    }
}

#[test]
fn a_chain_over_all_of_ram_is_written_a_budget_at_a_time() {
    // 16 descriptors each covering the whole 16 MiB: 256 MiB for one kick,
    // written 512 KiB per run while the guest keeps running.
    let out = vmm(&[
        "--guest",
        &guest("hostile.elf"),
        "--cmdline",
        "case=huge-chain",
        "--console-out",
        "/dev/null",
        "--stats",
    ]);
    let lines = stderr_lines(&out);
    assert!(out.status.success(), "{}", lines.join("\n"));
    for want in ["queue notifications: 1", "used notifications: 1", "console bytes: 268435456"] {
        assert!(lines.iter().any(|l| l == want), "{want}: {}", lines.join("\n"));
    }
}

#[test]
fn the_vmm_stays_killable_while_a_4_gib_chain_streams() {
    use std::time::{Duration, Instant};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["--mem", "256", "--guest", &guest("hostile.elf"), "--cmdline", "case=huge-chain len=256M"])
        .args(["--console-out", "/dev/null"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "took {:?}", t.elapsed());
}

#[test]
fn a_kick_storm_without_buffers_changes_nothing() {
    let out = vmm(&["--guest", &guest("hostile.elf"), "--cmdline", "case=kick-storm kicks=2000", "--stats"]);
    let lines = stderr_lines(&out);
    assert!(out.status.success(), "{}", lines.join("\n"));
    assert_eq!(out.stdout, b"survived\n");
    // 2000 empty kicks and the one for "survived".
    assert!(lines.iter().any(|l| l == "queue notifications: 2001"), "{}", lines.join("\n"));
}
