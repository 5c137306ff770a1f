//! The disk guest (guest/src/bin/disk.rs) and the hostile block driver
//! (guest/src/bin/hostile-disk.rs) against the virtio block device, on
//! images the tests make: exact guest output, exact log lines, exit status,
//! and the image's bytes on the host afterwards.

mod common;
use common::*;

use std::path::PathBuf;

/// The block device's lifecycle line, after the console's four (the
/// first three are said once per VM).
const BLOCK_LIFECYCLE: [&str; 1] = ["=== Driver is set up; block device is live ==="];
const BLOCK_FAILED: &str =
    "vmm: error: the block device stopped on a driver error (see above): the guest's data in it may be lost";
/// ACK|DRIVER|FEATURES_OK|DRIVER_OK|NEEDS_RESET, as the guest reads it.
const RUNNING_NEEDS_RESET: &str = "guest: hostile-disk: status 0x0000004f";

/// 64 KiB: 128 sectors.
const IMAGE_SIZE: usize = 64 << 10;
/// The disk guest's written range: bytes 4096..20480 (sectors 8..40); then
/// it zeroes sectors 8..16 (WRITE_ZEROES) and discards 32..40.
const WRITTEN: std::ops::Range<usize> = 4096..20480;
const ZEROED: [std::ops::Range<usize>; 2] = [4096..8192, 16384..20480];

/// An image file in the temporary directory, removed when dropped.
struct Image(PathBuf);

impl Image {
    /// `name`'s image, holding `original()`.
    fn new(name: &str) -> Image {
        let path = std::env::temp_dir().join(format!("vmm-disk-{name}-{}.img", std::process::id()));
        std::fs::write(&path, original()).unwrap();
        Image(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.0).unwrap()
    }

    /// `--disk` for this image with `options` appended.
    fn arg(&self, options: &str) -> String {
        format!("{}{options}", self.path())
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fresh image's bytes: sector 0 starts with "vmm-disk" and its bytes
/// 8.. count up from 0; every other byte is 0.
fn original() -> Vec<u8> {
    let mut bytes = vec![0u8; IMAGE_SIZE];
    bytes[..8].copy_from_slice(b"vmm-disk");
    for (i, b) in bytes[8..512].iter_mut().enumerate() {
        *b = i as u8;
    }
    bytes
}

/// What the disk guest prints on a writable disk with serial `serial`.
fn disk_output(read_only: bool, serial: &str) -> String {
    let (kind, writes, read_back, zeroes) = match read_only {
        false => ("read-write", "16 OK", "the pattern", "OK"),
        true => ("read-only", "16 IOERR", "zeros", "IOERR"),
    };
    format!(
        "disk: 128 sectors of 512 bytes, {kind}\n\
         disk: sector 0: OK, begins 76 6d 6d 2d 64 69 73 6b 00 01 02 03 04 05 06 07\n\
         disk: 16 writes in flight: {writes}\n\
         disk: flush: OK\n\
         disk: 16 reads in flight: 16 OK\n\
         disk: read back: {read_back}\n\
         disk: write-zeroes: {zeroes}\n\
         disk: discard: {zeroes}\n\
         disk: serial: OK \"{serial}\"\n"
    )
}

fn run_disk(disk_arg: &str) -> std::process::Output {
    vmm(&["--guest", &guest("disk.elf"), "--disk", disk_arg])
}

/// The image after a run of the disk guest that wrote: byte i of sectors
/// 16..32 is `i % 251`, sectors 8..16 and 32..40 are zeros, everything else
/// as it was.
fn written() -> Vec<u8> {
    let mut want = original();
    for i in WRITTEN {
        want[i] = (i % 251) as u8;
    }
    for range in ZEROED {
        want[range].fill(0);
    }
    want
}

#[test]
fn the_disk_guest_writes_flushes_and_reads_back_on_both_engines() {
    for engine in ["io_uring", "sync"] {
        let image = Image::new(engine);
        let out = run_disk(&image.arg(&format!(",engine={engine},serial=disk-{engine}")));
        assert_clean_run(&out, &BLOCK_LIFECYCLE);
        assert_eq!(String::from_utf8_lossy(&out.stdout), disk_output(false, &format!("disk-{engine}")), "{engine}");
        assert!(image.bytes() == written(), "{engine}: the image does not hold the pattern");
    }
}

/// Without EVENT_IDX the device and the driver fall back on the rings'
/// flags to spare notifications and interrupts.
#[test]
fn without_event_idx_the_same() {
    for engine in ["io_uring", "sync"] {
        let image = Image::new(&format!("no-event-idx-{engine}"));
        let disk = image.arg(&format!(",engine={engine},serial=flags"));
        let out = vmm(&["--guest", &guest("disk.elf"), "--cmdline", "event-idx=off", "--disk", &disk]);
        assert_clean_run(&out, &BLOCK_LIFECYCLE);
        assert_eq!(String::from_utf8_lossy(&out.stdout), disk_output(false, "flags"), "{engine}");
        assert!(image.bytes() == written(), "{engine}: the image does not hold the pattern");
    }
}

#[test]
fn direct_io_reaches_the_file_too() {
    let image = Image::new("direct");
    let out = run_disk(&image.arg(",direct=on,serial=direct"));
    assert_clean_run(&out, &BLOCK_LIFECYCLE);
    assert_eq!(String::from_utf8_lossy(&out.stdout), disk_output(false, "direct"));
    assert!(image.bytes() == written(), "the image does not hold the pattern");
}

#[test]
fn a_read_only_disk_refuses_the_writes_and_stays_unchanged() {
    for engine in ["io_uring", "sync"] {
        let image = Image::new(&format!("ro-{engine}"));
        let out = run_disk(&image.arg(&format!(",readonly=on,engine={engine},serial=ro")));
        assert_clean_run(&out, &BLOCK_LIFECYCLE);
        assert_eq!(String::from_utf8_lossy(&out.stdout), disk_output(true, "ro"), "{engine}");
        assert!(image.bytes() == original(), "{engine}: a read-only image changed");
    }
}

/// Disk 1 of two, at the second disk window: its image gets the pattern,
/// disk 0's stays as it was.
#[test]
fn the_second_disk_is_driven_at_its_own_window() {
    let (first, second) = (Image::new("first"), Image::new("second"));
    let out = vmm(&[
        "--guest",
        &guest("disk.elf"),
        "--cmdline",
        "disk=1",
        "--disk",
        &first.arg(",serial=first"),
        "--disk",
        &second.arg(",serial=second"),
    ]);
    assert_clean_run(&out, &BLOCK_LIFECYCLE);
    assert_eq!(String::from_utf8_lossy(&out.stdout), disk_output(false, "second"));
    assert!(second.bytes() == written(), "the second image does not hold the pattern");
    assert!(first.bytes() == original(), "the first image changed");
}

/// GET_ID: 20 NUL bytes without a serial; a serial of all 20 bytes has no
/// NUL after it (the guest prints at most 20).
#[test]
fn get_id_answers_the_serial_nul_padded() {
    for serial in ["", "ABCDEFGHIJ0123456789"] {
        let image = Image::new(&format!("serial-{}", serial.len()));
        let disk = if serial.is_empty() { image.arg("") } else { image.arg(&format!(",serial={serial}")) };
        let out = run_disk(&disk);
        assert_clean_run(&out, &BLOCK_LIFECYCLE);
        assert_eq!(String::from_utf8_lossy(&out.stdout), disk_output(false, serial));
    }
}

struct Case {
    name: &'static str,
    /// `--disk` options after the path.
    options: &'static str,
    /// The VMM's warning, if the device needs a reset; else None and the
    /// guest's console line, then "survived".
    warning: Option<&'static str>,
    console: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "header-writable",
        options: "",
        warning: Some("virtio-mmio: queue 0: request 0: its header needs 16 device-readable bytes, the chain has 0; device needs reset"),
        console: "",
    },
    Case {
        name: "short-header",
        options: "",
        warning: Some("virtio-mmio: queue 0: request 0: its header needs 16 device-readable bytes, the chain has 8; device needs reset"),
        console: "",
    },
    Case {
        name: "status-read-only",
        options: "",
        warning: Some("virtio-mmio: queue 0: request 0: no device-writable byte at its end for the status; device needs reset"),
        console: "",
    },
    Case {
        name: "no-status",
        options: "",
        warning: Some("virtio-mmio: queue 0: request 0: no device-writable byte at its end for the status; device needs reset"),
        console: "",
    },
    Case {
        name: "readable-after-writable",
        options: "",
        warning: Some("virtio-mmio: queue 0: descriptor 2 is device-readable after a device-writable one; device needs reset"),
        console: "",
    },
    Case {
        name: "read-into-readable",
        options: "",
        warning: Some("virtio-mmio: queue 0: request 0: a read request with 512 device-readable data bytes; device needs reset"),
        console: "",
    },
    Case {
        name: "write-from-writable",
        options: "",
        warning: Some("virtio-mmio: queue 0: request 0: a write request with 512 device-writable data bytes; device needs reset"),
        console: "",
    },
    Case {
        name: "data-beyond-ram",
        options: "",
        warning: Some("virtio-mmio: queue 0: descriptor 1: buffer 0x40000000+0x200 is outside guest memory; device needs reset"),
        console: "",
    },
    Case {
        name: "head-reused",
        options: "",
        warning: Some("virtio-mmio: queue 0: request 0: made available again while in flight; device needs reset"),
        console: "",
    },
    Case {
        name: "data-511",
        options: "",
        warning: None,
        console: "hostile-disk: status 1 (IOERR), used length 1\n",
    },
    Case {
        name: "sector-past-end",
        options: "",
        warning: None,
        console: "hostile-disk: status 1 (IOERR), used length 1\n",
    },
    Case {
        name: "sector-overflow",
        options: "",
        warning: None,
        console: "hostile-disk: status 1 (IOERR), used length 1\n",
    },
    Case {
        name: "discard-past-end",
        options: "",
        warning: None,
        console: "hostile-disk: status 1 (IOERR), used length 1\n",
    },
    Case {
        name: "discard-unmap",
        options: "",
        warning: None,
        console: "hostile-disk: status 2 (UNSUPP), used length 1\n",
    },
    Case {
        name: "write-zeroes-bad-flags",
        options: "",
        warning: None,
        console: "hostile-disk: status 2 (UNSUPP), used length 1\n",
    },
    Case {
        name: "write-read-only",
        options: ",readonly=on",
        warning: None,
        console: "hostile-disk: status 1 (IOERR), used length 1\n",
    },
    Case {
        name: "unknown-type",
        options: "",
        warning: None,
        console: "hostile-disk: status 2 (UNSUPP), used length 1\n",
    },
    // Odd but valid layouts: reads of sector 0.
    Case {
        name: "split-header",
        options: "",
        warning: None,
        console: "hostile-disk: status 0 (OK), used length 513, data \"vmm-disk\"\n",
    },
    Case {
        name: "status-in-data",
        options: "",
        warning: None,
        console: "hostile-disk: status 0 (OK), used length 513, data \"vmm-disk\"\n",
    },
];

fn run_case(case: &Case, mem: &str) {
    let image = Image::new(case.name);
    let cmdline = format!("case={}", case.name);
    let disk = image.arg(case.options);
    let out = vmm(&["--mem", mem, "--guest", &guest("hostile-disk.elf"), "--cmdline", &cmdline, "--disk", &disk]);
    let context = format!("case {}: stderr:\n{}", case.name, stderr_lines(&out).join("\n"));
    assert!(!stderr_lines(&out).iter().any(|l| l.contains("panicked")), "{context}");
    match case.warning {
        Some(warning) => {
            assert_failed_run(
                &out,
                &[&BLOCK_LIFECYCLE[..], &[warning, RUNNING_NEEDS_RESET]].concat(),
                &[BLOCK_FAILED, GUEST_FAILED],
            );
            assert_eq!(out.stdout, b"", "{context}");
        }
        None => {
            assert_clean_run(&out, &BLOCK_LIFECYCLE);
            assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}survived\n", case.console), "{context}");
        }
    }
    // Nothing any case sent may reach the image.
    assert!(image.bytes() == original(), "case {}: the image changed", case.name);
}

#[test]
fn every_hostile_block_case_is_contained() {
    for case in CASES {
        run_case(case, "16");
    }
}

/// Header, 16 buffers of 256 MiB (all of RAM each) and the status: more
/// than 4 GiB in one chain, refused before any byte moves.
#[test]
fn a_chain_of_more_than_4_gib_needs_reset() {
    run_case(
        &Case {
            name: "huge-chain",
            options: "",
            warning: Some("virtio-mmio: queue 0: descriptor chain from 0 holds more than 4 GiB; device needs reset"),
            console: "",
        },
        "256",
    );
}

/// 16 reads of the whole disk in flight, then a reset at once: the device
/// uses none of them afterwards (the guest checks its used index), and
/// works after the guest brings it up again (a second live line).
#[test]
fn a_reset_with_requests_in_flight_leaves_the_ring_alone() {
    for engine in ["io_uring", "sync"] {
        let image = Image::new(&format!("reset-{engine}"));
        let disk = image.arg(&format!(",engine={engine}"));
        let out = vmm(&["--guest", &guest("hostile-disk.elf"), "--cmdline", "case=reset-in-flight", "--disk", &disk]);
        assert_clean_run(&out, &[BLOCK_LIFECYCLE[0], BLOCK_LIFECYCLE[0]]);
        assert_eq!(out.stdout, b"survived\n", "{engine}");
        assert!(image.bytes() == original(), "{engine}: the image changed");
    }
}

#[test]
fn the_hostile_disk_guest_lists_its_cases_and_the_tests_know_them_all() {
    let image = Image::new("unknown-case");
    let out = vmm(&["--guest", &guest("hostile-disk.elf"), "--cmdline", "case=nonsense", "--disk", image.path()]);
    let lines = stderr_lines(&out);
    let prefix = "guest: hostile-disk: unknown case nonsense; cases: ";
    let listed = lines.iter().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines[lines.len() - 2..], [HLT_LINE, GUEST_FAILED]);
    let mut tested: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    tested.extend(["huge-chain", "reset-in-flight"]);
    let listed: Vec<&str> = listed.split(' ').collect();
    assert_eq!(listed.len(), tested.len(), "{listed:?}");
    for name in listed {
        assert!(tested.contains(&name), "{name} is not tested");
    }
}
