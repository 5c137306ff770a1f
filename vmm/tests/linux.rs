//! The Linux boot path on the real /dev/kvm, with stand-in kernels: a valid
//! bzImage header (boot protocol 2.15, 64-bit entry) around a few
//! instructions at the 64-bit entry point, which is what the machine enters
//! after setting up everything a real kernel needs (irqchip, PIT, MP table,
//! CPUID, MSRs, long mode, the zero page). A real kernel cannot boot on this
//! machine's software KVM; the nested end-to-end test boots one.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `mov dx, 0x3f8`, then `mov al, c; out dx, al` for each byte.
fn serial(text: &[u8]) -> Vec<u8> {
    let mut code = vec![0x66, 0xba, 0xf8, 0x03];
    for &c in text {
        code.extend_from_slice(&[0xb0, c, 0xee]);
    }
    code
}
/// `mov al, 0xfe; out 0x64, al`: the i8042's CPU reset.
const RESET: [u8; 4] = [0xb0, 0xfe, 0xe6, 0x64];
/// `mov word [0x472], 0x1234`: the BIOS data area's warm-reset flag.
const WARM_FLAG: [u8; 10] = [0x66, 0xc7, 0x04, 0x25, 0x72, 0x04, 0x00, 0x00, 0x34, 0x12];
/// `ud2` with no IDT: a triple fault.
const UD2: [u8; 2] = [0x0f, 0x0b];
/// `hlt; jmp $-1`.
const HANG: [u8; 3] = [0xf4, 0xeb, 0xfd];
/// `mov dx, 0x600; mov al, 0x34; out dx, al`: SLP_TYP 5 with SLP_EN to the
/// ACPI sleep control register, as Linux's poweroff writes it.
const ACPI_POWEROFF: [u8; 7] = [0x66, 0xba, 0x00, 0x06, 0xb0, 0x34, 0xee];

/// 64-bit code: if the dword at `addr` (below 2 GiB) is `value`, `yes` runs,
/// else `no`; then both go on after.
fn if_dword(addr: u32, value: u32, yes: &[u8], no: &[u8]) -> Vec<u8> {
    let mut code = vec![0x8b, 0x04, 0x25]; // mov eax, [addr]
    code.extend_from_slice(&addr.to_le_bytes());
    code.push(0x3d); // cmp eax, imm32
    code.extend_from_slice(&value.to_le_bytes());
    code.extend_from_slice(&[0x75, (yes.len() + 2) as u8]); // jne no
    code.extend_from_slice(yes);
    code.extend_from_slice(&[0xeb, no.len() as u8]); // jmp after
    code.extend_from_slice(no);
    code
}

/// A bzImage whose 64-bit entry (0x200 into the protected-mode part) runs
/// `code`; `extra` bytes of padding make it as large as wanted.
fn bzimage(name: &str, code: &[u8], extra: u64) -> PathBuf {
    const SETUP_SECTS: u8 = 4;
    let mut f = vec![0u8; (usize::from(SETUP_SECTS) + 1) * 512];
    f[0x1f1] = SETUP_SECTS;
    f[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    f[0x202..0x206].copy_from_slice(b"HdrS");
    f[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes()); // protocol 2.15
    f[0x211] = 1; // loadflags: LOADED_HIGH
    f[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes()); // code32_start
    f[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
    f[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes()); // kernel_alignment
    f[0x236..0x238].copy_from_slice(&1u16.to_le_bytes()); // xloadflags: XLF_KERNEL_64
    f[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes()); // cmdline_size, x86's
    let mut pm = vec![0xf4u8; 0x200];
    pm.extend_from_slice(code);
    pm.extend_from_slice(&HANG);
    f.extend_from_slice(&pm);
    let path = std::env::temp_dir().join(format!("vmm-bzimage-{name}-{}", std::process::id()));
    std::fs::write(&path, &f).unwrap();
    if extra > 0 {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(f.len() as u64 + extra).unwrap();
    }
    path
}

fn boot(kernel: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--kernel", kernel.to_str().unwrap()];
    all.extend_from_slice(args);
    std::process::Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(&all)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("vmm runs")
}

#[test]
fn the_serial_port_reaches_stderr_and_a_reset_ends_the_vm() {
    let mut code = serial(b"ok\n");
    code.extend_from_slice(&RESET);
    let kernel = bzimage("serial", &code, 0);
    let out = boot(&kernel, &[]);
    let lines = stderr_lines(&out);
    assert!(out.status.success(), "{lines:?}");
    assert_eq!(out.stdout, b"");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], "ok");
    assert_eq!(lines[1], "[guest reset: VM stopped]");
    assert_time_line(&lines[2]);
    // Elsewhere, or nowhere.
    let file = std::env::temp_dir().join(format!("vmm-serial-{}", std::process::id()));
    let out = boot(&kernel, &["--serial", file.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(std::fs::read(&file).unwrap(), b"ok\n");
    assert_eq!(stderr_lines(&out)[0], "[guest reset: VM stopped]");
    let out = boot(&kernel, &["--serial", "none", "--cpus", "2"]);
    assert!(out.status.success());
    assert_eq!(stderr_lines(&out)[0], "[guest reset: VM stopped]", "two vCPUs: the other one waits for a SIPI");
    std::fs::remove_file(file).unwrap();
    std::fs::remove_file(kernel).unwrap();
}

/// An ELF64 vmlinux whose PVH note (XEN_ELFNOTE_PHYS32_ENTRY) names 32-bit
/// code at 1 MiB: it checks that EBX points at the hvm_start_info magic,
/// says "pvh" on COM1 and resets, or triple-faults.
fn pvh_vmlinux(name: &str) -> PathBuf {
    let mut ok = serial(b"pvh\n"); // the same bytes in 32-bit code
    ok.extend_from_slice(&RESET);
    ok.extend_from_slice(&HANG);
    let mut code = vec![0x81, 0x3b]; // cmp dword [ebx], imm32
    code.extend_from_slice(&0x336e_c578u32.to_le_bytes());
    code.extend_from_slice(&[0x75, ok.len() as u8]); // jne fail
    code.extend_from_slice(&ok);
    code.extend_from_slice(&UD2); // fail
    let (load, note_at, code_at) = (0x10_0000u64, 0x200u64, 0x1000u64);
    let mut note = Vec::new();
    for v in [4u32, 4, 18] {
        note.extend_from_slice(&v.to_le_bytes());
    }
    note.extend_from_slice(b"Xen\0");
    note.extend_from_slice(&(load as u32).to_le_bytes());
    let mut f = vec![0u8; code_at as usize];
    f[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&load.to_le_bytes()); // e_entry
    f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&2u16.to_le_bytes());
    let phdr = |f: &mut Vec<u8>, at: usize, kind: u32, offset: u64, addr: u64, size: u64| {
        f[at..at + 4].copy_from_slice(&kind.to_le_bytes());
        f[at + 4..at + 8].copy_from_slice(&5u32.to_le_bytes()); // R X
        f[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
        f[at + 16..at + 24].copy_from_slice(&addr.to_le_bytes());
        f[at + 24..at + 32].copy_from_slice(&addr.to_le_bytes());
        f[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
        f[at + 40..at + 48].copy_from_slice(&size.to_le_bytes());
    };
    phdr(&mut f, 64, 1, code_at, load, code.len() as u64); // PT_LOAD
    phdr(&mut f, 120, 4, note_at, 0, note.len() as u64); // PT_NOTE
    f[note_at as usize..note_at as usize + note.len()].copy_from_slice(&note);
    f.extend_from_slice(&code);
    let path = std::env::temp_dir().join(format!("vmm-vmlinux-{name}-{}", std::process::id()));
    std::fs::write(&path, &f).unwrap();
    path
}

#[test]
fn an_elf_vmlinux_is_entered_through_its_pvh_note() {
    let kernel = pvh_vmlinux("pvh");
    let out = boot(&kernel, &[]);
    let lines = stderr_lines(&out);
    assert!(out.status.success(), "{lines:?}");
    assert_eq!(&lines[..2], ["pvh", "[guest reset: VM stopped]"], "EBX held the start_info");
    // Without the note: refused.
    let mut plain = std::fs::read(&kernel).unwrap();
    plain[120..124].copy_from_slice(&0u32.to_le_bytes()); // PT_NOTE -> PT_NULL
    std::fs::write(&kernel, &plain).unwrap();
    assert_one_line_error(
        &boot(&kernel, &[]),
        &format!(
            "vmm: error: kernel {} is an ELF without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY; CONFIG_PVH)",
            kernel.display()
        ),
    );
    std::fs::remove_file(kernel).unwrap();
}

#[test]
fn a_panic_is_a_warm_reset_and_an_error() {
    let mut code = WARM_FLAG.to_vec();
    code.extend_from_slice(&RESET);
    let kernel = bzimage("panic", &code, 0);
    assert_one_line_error(
        &boot(&kernel, &[]),
        "vmm: error: the guest kernel panicked (it asked for a warm reset: reboot=panic_w)",
    );
    std::fs::remove_file(kernel).unwrap();
}

#[test]
fn a_triple_fault_is_an_error_naming_it() {
    let kernel = bzimage("ud2", &UD2, 0);
    let out = boot(&kernel, &[]);
    let lines = stderr_lines(&out);
    assert_eq!(out.status.code(), Some(1), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("vmm: error: the guest shut down (triple fault) on vCPU 0 at rip "), "{lines:?}");
    std::fs::remove_file(kernel).unwrap();
}

#[test]
fn sigterm_stops_every_vcpu_promptly() {
    let kernel = bzimage("hang", &HANG, 0);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_vmm"))
        .args(["--kernel", kernel.to_str().unwrap(), "--cpus", "2"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "took {:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "vmm: error: stopped by SIGTERM\n");
    std::fs::remove_file(kernel).unwrap();
}

#[test]
fn bad_kernels_and_initrds_get_one_line_and_exit_1() {
    assert_one_line_error(
        &vmm(&["--kernel", "/nonexistent/bzImage"]),
        "vmm: error: cannot read kernel /nonexistent/bzImage: No such file or directory (os error 2)",
    );
    let elf = guest("hello.elf");
    let out = vmm(&["--kernel", &elf]);
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with(&format!("vmm: error: kernel {elf} is not an x86-64 ELF vmlinux (")), "{lines:?}");
    let text = std::env::temp_dir().join(format!("vmm-notakernel-{}", std::process::id()));
    std::fs::write(&text, vec![b'x'; 8192]).unwrap();
    let out = vmm(&["--kernel", text.to_str().unwrap()]);
    let lines = stderr_lines(&out);
    assert!(lines[0].starts_with(&format!("vmm: error: kernel {} is not a bzImage (", text.display())), "{lines:?}");
    std::fs::remove_file(text).unwrap();
    let big = bzimage("big", &RESET, 40 << 20);
    assert_one_line_error(
        &vmm(&["--kernel", big.to_str().unwrap(), "--mem", "32"]),
        &format!("vmm: error: kernel {} does not fit in guest RAM below 0xd0000000; raise --mem", big.display()),
    );
    let kernel = bzimage("initrd", &RESET, 0);
    let initrd = std::env::temp_dir().join(format!("vmm-initrd-{}", std::process::id()));
    std::fs::File::create(&initrd).unwrap().set_len(40 << 20).unwrap();
    assert_one_line_error(
        &vmm(&["--kernel", kernel.to_str().unwrap(), "--initrd", initrd.to_str().unwrap(), "--mem", "32"]),
        &format!(
            "vmm: error: initrd {} (41943040 bytes) does not fit in guest RAM between the kernel and 0x2000000; raise --mem",
            initrd.display()
        ),
    );
    assert_one_line_error(
        &vmm(&["--kernel", kernel.to_str().unwrap(), "--initrd", "/nonexistent/initrd"]),
        "vmm: error: cannot read initrd /nonexistent/initrd: No such file or directory (os error 2)",
    );
    for f in [big, kernel, initrd] {
        std::fs::remove_file(f).unwrap();
    }
}

#[test]
fn linux_options_are_checked() {
    let kernel = bzimage("options", &RESET, 0);
    let k = kernel.to_str().unwrap();
    assert_one_line_error(&vmm(&["--kernel", k, "--cpus", "0"]), "vmm: error: --cpus must be from 1 to 254");
    assert_one_line_error(
        &vmm(&["--kernel", k, "--mem", "16"]),
        "vmm: error: --mem must be from 32 to 1048576 MiB for a Linux guest",
    );
    assert_one_line_error(
        &vmm(&["--kernel", k, "--guest", &guest("hello.elf")]),
        "vmm: error: --kernel and --guest exclude each other",
    );
    // This machine's kernel has no vhost_console (the nested tests boot Linux guests with --vhost).
    if !std::path::Path::new("/dev/vhost-console").exists() {
        assert_one_line_error(
            &vmm(&["--kernel", k, "--vhost"]),
            "vmm: error: cannot open /dev/vhost-console: No such file or directory (os error 2) \
             (is the vhost_console module loaded?)",
        );
    }
    assert_one_line_error(&vmm(&["--cpus", "2"]), "vmm: error: --initrd, --cpus and --serial are for --kernel");
    std::fs::remove_file(kernel).unwrap();
}

#[test]
fn acpi_tables_are_there_unless_the_command_line_turns_acpi_off() {
    // "RSD " at 0xe0000, and the zero page's acpi_rsdp_addr (0x7000 + 0x70)
    // pointing at it.
    let mut code = if_dword(0xe_0000, u32::from_le_bytes(*b"RSD "), &serial(b"rsdp "), &serial(b"none "));
    code.extend(if_dword(0x7070, 0xe_0000, &serial(b"pointed\n"), &serial(b"unpointed\n")));
    code.extend_from_slice(&RESET);
    let kernel = bzimage("acpi", &code, 0);
    let out = boot(&kernel, &[]);
    assert_eq!(stderr_lines(&out)[0], "rsdp pointed");
    let out = boot(&kernel, &["--cmdline", "console=ttyS0 acpi=off"]);
    assert_eq!(stderr_lines(&out)[0], "none unpointed");
    std::fs::remove_file(kernel).unwrap();
}

#[test]
fn an_acpi_poweroff_ends_the_vm_with_status_0() {
    let kernel = bzimage("poweroff", &ACPI_POWEROFF, 0);
    let out = boot(&kernel, &[]);
    let lines = stderr_lines(&out);
    assert!(out.status.success(), "{lines:?}");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "[guest powered off: VM stopped]");
    assert_time_line(&lines[1]);
    std::fs::remove_file(kernel).unwrap();
}

#[test]
fn a_panic_is_told_from_a_reboot_whatever_panic_options_the_user_gave() {
    let mut code = WARM_FLAG.to_vec();
    code.extend_from_slice(&RESET);
    let kernel = bzimage("panic-options", &code, 0);
    for line in ["console=ttyS0 panic_on_warn=1 panic_print=0", "console=ttyS0 reboot=panic_c"] {
        assert_one_line_error(
            &boot(&kernel, &["--cmdline", line]),
            "vmm: error: the guest kernel panicked (it asked for a warm reset: reboot=panic_w)",
        );
    }
    // A warm reset for every reboot would hide panics: refused.
    assert_one_line_error(
        &boot(&kernel, &["--cmdline", "console=ttyS0 reboot=w"]),
        "vmm: error: --cmdline reboot=w: a warm reboot would look like a panic to the VMM \
         (it asks panics for a warm reset); leave the 'w' out",
    );
    std::fs::remove_file(kernel).unwrap();
}

#[test]
fn a_command_line_longer_than_the_kernel_takes_is_refused() {
    let kernel = bzimage("cmdline", &RESET, 0);
    // 2030 bytes and the VMM's " reboot=panic_w" fit the kernel's 2047.
    let fits = "x".repeat(2030);
    assert!(boot(&kernel, &["--cmdline", &fits]).status.success());
    let long = "x".repeat(2040);
    assert_one_line_error(
        &boot(&kernel, &["--cmdline", &long]),
        "vmm: error: the kernel command line is 2055 bytes with the VMM's additions; this kernel takes at most 2047",
    );
    std::fs::remove_file(kernel).unwrap();
}

#[test]
fn the_initrd_may_fill_ram_up_to_the_kernels_end_and_must_be_a_regular_file() {
    let kernel = bzimage("initrd-fill", &RESET, 0);
    let k = kernel.to_str().unwrap();
    // 30.5 MiB in 32 MiB: from about 1.5 MiB up, just above the kernel's end
    // at 1 MiB + 1 KiB (a floor counted twice would put it at 2 MiB).
    let initrd = std::env::temp_dir().join(format!("vmm-initrd-fill-{}", std::process::id()));
    std::fs::File::create(&initrd).unwrap().set_len(0x1e8_0000).unwrap();
    let out = boot(&kernel, &["--initrd", initrd.to_str().unwrap(), "--mem", "32"]);
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    // Not a regular file: refused before a byte is read.
    assert_one_line_error(
        &boot(&kernel, &["--initrd", "/dev/zero"]),
        "vmm: error: initrd /dev/zero is not a regular file",
    );
    std::fs::remove_file(initrd).unwrap();
    let _ = k;
    std::fs::remove_file(kernel).unwrap();
}

#[test]
fn a_vmlinux_counts_by_its_loadable_segments_not_its_file_size() {
    // 40 MiB of symbols and debug information after the code: larger than
    // the guest's RAM, loaded not at all.
    let kernel = pvh_vmlinux("big");
    std::fs::OpenOptions::new().write(true).open(&kernel).unwrap().set_len(40 << 20).unwrap();
    let out = boot(&kernel, &["--mem", "32"]);
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    assert_eq!(stderr_lines(&out)[0], "pvh");
    std::fs::remove_file(kernel).unwrap();
}

/// The terminal vmm made raw is restored on every way out: here SIGTERM
/// and SIGHUP while the guest runs, with stdin a pty.
#[test]
fn the_terminal_is_restored_after_a_signal() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let kernel = bzimage("tty", &HANG, 0);
    for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: valid pointers; null name, termios and winsize are allowed.
        let rc =
            unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        assert_eq!(rc, 0);
        // SAFETY: openpty returned two new descriptors nothing else owns.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let lflag = |fd: &OwnedFd| {
            // SAFETY: a zeroed termios for tcgetattr to fill; a live terminal fd.
            let mut t: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
            t.c_lflag
        };
        let cooked = lflag(&slave);
        assert_ne!(cooked & libc::ICANON, 0);
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_vmm"))
            .args(["--kernel", kernel.to_str().unwrap()])
            .stdin(std::process::Stdio::from(slave.try_clone().unwrap()))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while lflag(&slave) & libc::ICANON != 0 && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(lflag(&slave) & libc::ICANON, 0, "vmm made the terminal raw");
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(lflag(&slave), cooked, "signal {signal}: the terminal's mode is back");
        let name = match signal {
            libc::SIGTERM => "SIGTERM",
            libc::SIGHUP => "SIGHUP",
            _ => "SIGQUIT",
        };
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("=== Console: Ctrl-A x quits ===\nvmm: error: stopped by {name}\n")
        );
        drop(master);
    }
    std::fs::remove_file(kernel).unwrap();
}
