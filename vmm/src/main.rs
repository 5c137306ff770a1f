//! `vmm`: runs a bare-metal guest ELF, or boots Linux, on KVM with a virtio
//! console on virtio-mmio.
//!
//! Everything the command line names is checked, and the VM built, before
//! any output file is created; a run that lost guest output, or whose device
//! or guest failed, ends with an error and a non-zero status.
//!
//! The binary has its own C `main`: std's entry point reopens closed
//! standard descriptors on /dev/null before `main`, and a run with stdout
//! closed would then throw the guest's output away and succeed. This one
//! looks first, does the same (so that no file the VMM opens lands on fd 1),
//! and remembers.
#![no_main]

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use argh::FromArgs;
use vmm::event_loop::Signals;
use vmm::input::Input;
use vmm::output::{LossyWriter, Output, CAPACITY};
use vmm::terminal::RawMode;
use vmm::virtio::block::disk::{self, DiskConfig, MAX_DISKS};
use vmm::virtio::console::port::Backend;
use vmm::virtio::console::{Link, Port, PortSpec};
use vmm::virtio::vhost_console::{self, MAX_POLL_US};
use vmm::virtio::VIRTIO_RING_F_EVENT_IDX;
use vmm::vm::{ConsoleBackend, Exit, Guest, Vm};
use vmm::x86::mptable::MAX_CPUS;

/// The bundled i686 hello guest.
static HELLO_GUEST: &[u8] = include_bytes!(env!("VMM_GUEST_ELF"));

/// Run a bare-metal guest ELF, or boot a Linux kernel, on KVM with a VirtIO
/// console on virtio-mmio. Guest console output goes to stdout; the VMM's
/// messages (and a Linux guest's serial port) go to stderr. Exit status 0
/// only if the guest ended well and no output was lost.
#[derive(FromArgs)]
struct Args {
    /// process the console's queues and the disks' requests in the kernel
    /// (/dev/vhost-console, /dev/vhost-blk: the vhost_console module)
    #[argh(switch, short = 'v')]
    vhost: bool,
    /// guest ELF (i386 or x86-64) to run; default: the bundled hello guest
    #[argh(option)]
    guest: Option<PathBuf>,
    /// a Linux kernel (bzImage, or ELF vmlinux with a PVH note) to boot
    /// instead of a bare-metal guest
    #[argh(option)]
    kernel: Option<PathBuf>,
    /// initrd for --kernel
    #[argh(option)]
    initrd: Option<PathBuf>,
    /// guest RAM in MiB: 1 to 256 for --guest (default 16), 32 up to what the
    /// host has for --kernel (default 512)
    #[argh(option)]
    mem: Option<u64>,
    /// vCPUs for --kernel, 1 to 254 (default 1)
    #[argh(option, default = "1")]
    cpus: u8,
    /// command line: the bare-metal guest's (PVH start_info), or the kernel's
    /// (default "console=ttyS0 reboot=k panic=1 pci=off"; the VMM adds
    /// reboot=panic_w, and with acpi=off its devices' virtio_mmio.device=)
    #[argh(option, default = "String::new()")]
    cmdline: String,
    /// where a Linux guest's serial port writes: stderr (default), none,
    /// or a file
    #[argh(option, default = "String::from(\"stderr\")")]
    serial: String,
    /// write the guest's console output to this file instead of stdout
    #[argh(option)]
    console_out: Option<PathBuf>,
    /// print exit and device counters on stderr when the guest halts
    #[argh(switch)]
    stats: bool,
    /// vhost mode: how long the kernel worker polls an empty queue before it
    /// sleeps, in microseconds, at most 1000000 (default 0: sleep at once)
    #[argh(option, default = "0")]
    poll_us: u32,
    /// do not offer the console's VIRTIO_RING_F_EVENT_IDX (for measurements)
    #[argh(switch)]
    no_event_idx: bool,
    /// a raw disk image (or block device) for a virtio block device:
    /// PATH[,readonly=on][,serial=ID][,direct=on][,engine=io_uring|sync];
    /// up to 8, in the order the guest finds them (/dev/vda, ...)
    #[argh(option)]
    disk: Vec<String>,
    /// a console port besides the console (VIRTIO_CONSOLE_F_MULTIPORT):
    /// name=NAME,socket=PATH (the VMM listens; one client at a time),
    /// name=NAME,pty, or name=NAME,file=PATH (output only); up to 31
    #[argh(option)]
    port: Vec<String>,
}

/// Which standard descriptors were closed when the process started.
struct Closed {
    stdin: bool,
    stdout: bool,
}

/// Reopens closed standard descriptors on /dev/null, as std would have.
fn sanitize_standard_fds() -> Closed {
    let closed = |fd| {
        // SAFETY: F_GETFD on any number; EBADF says it is closed.
        unsafe { libc::fcntl(fd, libc::F_GETFD) == -1 }
    };
    let flags = [closed(0), closed(1), closed(2)];
    for (fd, &is_closed) in flags.iter().enumerate() {
        if is_closed {
            // SAFETY: a NUL-terminated path; open returns the lowest free
            // descriptor, which is `fd` since the ones below are open.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
        let _ = fd;
    }
    Closed { stdin: flags[0], stdout: flags[1] }
}

#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    let closed = sanitize_standard_fds();
    // What std's entry point does too: a reader that went away is an EPIPE
    // error, which the outputs report, not a silent death.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let code = match std::panic::catch_unwind(|| real_main(&closed)) {
        Ok(code) => code,
        Err(_) => ExitCode::from(101),
    };
    // ExitCode has no accessor: it is 0 or 1 here, or 101 above.
    if code == ExitCode::SUCCESS {
        0
    } else if code == ExitCode::from(101) {
        101
    } else {
        1
    }
}

fn real_main(closed: &Closed) -> ExitCode {
    // First: blocked before any thread starts and before the terminal goes
    // raw, so that no signal can leave it raw.
    let mut signals = match Signals::block() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vmm: error: cannot block signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let args = match parse_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(&args, closed, &mut signals) {
        Ok(()) => ExitCode::SUCCESS,
        Err(errors) => {
            for e in errors {
                eprintln!("vmm: error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn withheld_features(args: &Args) -> u64 {
    if args.no_event_idx {
        VIRTIO_RING_F_EVENT_IDX
    } else {
        0
    }
}

/// argh's parse, plus `-h` for `--help` and parse errors on one line.
fn parse_args() -> Result<Args, ExitCode> {
    const TAKES_VALUE: [&str; 11] = [
        "--guest",
        "--kernel",
        "--initrd",
        "--mem",
        "--cpus",
        "--cmdline",
        "--serial",
        "--console-out",
        "--poll-us",
        "--disk",
        "--port",
    ];
    let mut argv: Vec<String> = std::env::args().collect();
    for i in 1..argv.len() {
        if argv[i] == "-h" && !TAKES_VALUE.contains(&argv[i - 1].as_str()) {
            argv[i] = "--help".into();
        }
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    Args::from_args(&["vmm"], argv.get(1..).unwrap_or_default()).map_err(|exit| match exit.status {
        Ok(()) => {
            print!("{}", exit.output);
            ExitCode::SUCCESS
        }
        Err(()) => {
            let reason = exit.output.lines().next().unwrap_or("bad arguments");
            eprintln!("vmm: error: {reason} (see vmm --help)");
            ExitCode::FAILURE
        }
    })
}

fn one(e: impl ToString) -> Vec<String> {
    vec![e.to_string()]
}

fn stdin_is_terminal() -> bool {
    // SAFETY: isatty takes any fd.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

fn dup_std(fd: std::os::fd::BorrowedFd, what: &str) -> Result<File, Vec<String>> {
    fd.try_clone_to_owned().map(File::from).map_err(|e| one(format!("cannot use {what}: {e}")))
}

/// Where the serial port's bytes go.
enum Serial {
    Stderr,
    None,
    File(PathBuf, Output),
}

fn run(args: &Args, closed: &Closed, signals: &mut Signals) -> Result<(), Vec<String>> {
    let start = Instant::now();
    // 1. The command line, on its own.
    if args.poll_us != 0 && !args.vhost {
        return Err(one("--poll-us applies to the kernel worker: it needs --vhost"));
    }
    if args.poll_us > MAX_POLL_US {
        return Err(one(format!("--poll-us must be at most {MAX_POLL_US} (one second)")));
    }
    if args.kernel.is_some() && args.guest.is_some() {
        return Err(one("--kernel and --guest exclude each other"));
    }
    if args.kernel.is_none() && (args.initrd.is_some() || args.cpus != 1 || args.serial != "stderr") {
        return Err(one("--initrd, --cpus and --serial are for --kernel"));
    }
    if args.cpus == 0 || args.cpus > MAX_CPUS {
        return Err(one(format!("--cpus must be from 1 to {MAX_CPUS}")));
    }
    if closed.stdout && args.console_out.is_none() {
        return Err(one("stdout is closed: the guest's console output would be lost (give --console-out FILE)"));
    }
    // SAFETY: F_GETFL on a descriptor that is open (checked above).
    let stdout_mode = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFL) } & libc::O_ACCMODE;
    if args.console_out.is_none() && stdout_mode == libc::O_RDONLY {
        return Err(one("stdout is open only for reading: the guest's console output could not be written"));
    }
    if args.disk.len() > MAX_DISKS {
        return Err(one(format!("--disk: at most {MAX_DISKS} disks")));
    }
    let disk_configs = args.disk.iter().map(|d| DiskConfig::parse(d)).collect::<Result<Vec<_>, _>>().map_err(one)?;
    if let Some(d) = disk_configs.iter().find(|d| args.vhost && d.engine.is_some()) {
        return Err(one(format!(
            "--disk {}: engine= chooses the VMM's I/O engine; with --vhost the kernel does the disk's I/O",
            d.path.display()
        )));
    }
    let port_specs = args.port.iter().map(|p| PortSpec::parse(p)).collect::<Result<Vec<_>, _>>().map_err(one)?;
    PortSpec::check_all(&port_specs).map_err(one)?;
    if let Some(spec) = port_specs.iter().find(|s| args.vhost && s.backend == Backend::Pty) {
        return Err(one(format!(
            "--port {}: a pty port is not supported with --vhost (the kernel writes only to what cannot block it); use socket= or file=",
            spec.name
        )));
    }
    // 2. The guest and the VM, every file it reads checked; nothing written.
    let image;
    let guest = match &args.kernel {
        Some(kernel) => Guest::Linux { kernel, initrd: args.initrd.as_deref(), cpus: args.cpus },
        None => {
            let mem = args.mem.unwrap_or(16);
            image = match &args.guest {
                Some(path) => read_guest(path, mem).map_err(one)?,
                None => HELLO_GUEST.to_vec(),
            };
            Guest::BareMetal { image: &image }
        }
    };
    let linux = args.kernel.is_some();
    let terminal = stdin_is_terminal() && !closed.stdin;
    // The console's input: the VMM's event loop reads stdin (userspace
    // mode, and a terminal in vhost mode, whose escape the VMM watches), or
    // the kernel, handed the file itself. A terminal goes raw for a Linux
    // guest; for a bare-metal one it stays as it is, line by line.
    let stdin = || dup_std(std::io::stdin().as_fd(), "stdin");
    let (input, backend) = match (args.vhost, terminal, closed.stdin) {
        (false, _, true) => (None, ConsoleBackend::Userspace),
        (false, _, false) => (Some(Input { file: stdin()?, escape: linux && terminal }), ConsoleBackend::Userspace),
        (true, _, true) => (None, ConsoleBackend::Vhost { poll_us: args.poll_us, input: vhost_console::Input::None }),
        (true, true, _) => (
            Some(Input { file: stdin()?, escape: linux }),
            ConsoleBackend::Vhost { poll_us: args.poll_us, input: vhost_console::Input::Relayed },
        ),
        (true, false, false) => {
            (None, ConsoleBackend::Vhost { poll_us: args.poll_us, input: vhost_console::Input::File(stdin()?) })
        }
    };
    let mut disks = Vec::new();
    for config in disk_configs {
        let image = disk::open(&config).map_err(one)?;
        disks.push((config, image));
    }
    let output = |name: &str| Output::new(name, CAPACITY).map_err(|e| one(format!("cannot make the {name}: {e}")));
    // The ports' host sides: sockets listen and ptys open now, files are
    // created with the other outputs below.
    let (mut ports, mut port_files, mut ptys) = (Vec::new(), Vec::new(), Vec::new());
    for spec in port_specs {
        let link = match &spec.backend {
            Backend::Socket(path) => Link::socket(path)
                .map_err(|e| one(format!("--port {}: cannot listen on {}: {e}", spec.name, path.display())))?,
            Backend::Pty => {
                let (link, path) =
                    Link::pty().map_err(|e| one(format!("--port {}: cannot open a pty: {e}", spec.name)))?;
                ptys.push((ports.len() + 1, spec.name.clone(), path));
                link
            }
            Backend::File(path) => {
                let out = output(&format!("port {} output", spec.name))?;
                port_files.push((path.clone(), out.clone()));
                Link::file(out)
            }
        };
        ports.push(Port::new(spec.name, link));
    }
    // The console follows the size of the terminal on stdin.
    let console_size = if terminal { vmm::terminal::size(libc::STDIN_FILENO) } else { None };
    let console_out = output("console output")?;
    let log = output("stderr")?;
    let serial = match args.serial.as_str() {
        "stderr" => Serial::Stderr,
        "none" => Serial::None,
        path => Serial::File(PathBuf::from(path), output("serial output")?),
    };
    let config = vmm::vm::Config {
        guest,
        mem_mib: args.mem.unwrap_or(if linux { 512 } else { 16 }),
        cmdline: &args.cmdline,
        console: backend,
        console_out: console_out.clone(),
        serial: match &serial {
            Serial::Stderr => Box::new(vmm::log::Stderr),
            Serial::None => Box::new(std::io::sink()),
            Serial::File(_, out) => Box::new(LossyWriter(out.clone())),
        },
        lifecycle: Some(Box::new(|line| vmm::log::line(format_args!("{line}")))),
        withheld_features: withheld_features(args),
        disks,
        disks_in_kernel: args.vhost,
        ports,
        console_size,
    };
    let vm = Vm::new(config).map_err(one)?;

    // 3. The outputs, now that nothing can fail before the guest runs.
    let console_file = match &args.console_out {
        Some(path) => File::create(path).map_err(|e| one(format!("cannot create {}: {e}", path.display())))?,
        None => dup_std(std::io::stdout().as_fd(), "stdout")?,
    };
    let mut outputs = vec![console_out.clone()];
    console_out.start(console_file).map_err(|e| one(format!("cannot start the console output: {e}")))?;
    if let Serial::File(path, out) = &serial {
        let file = File::create(path).map_err(|e| one(format!("cannot create {}: {e}", path.display())))?;
        out.start(file).map_err(|e| one(format!("cannot start the serial output: {e}")))?;
        outputs.push(out.clone());
    }
    for (path, out) in &port_files {
        let file = File::create(path).map_err(|e| one(format!("cannot create {}: {e}", path.display())))?;
        out.start(file).map_err(|e| one(format!("cannot start the {}: {e}", out.name())))?;
        outputs.push(out.clone());
    }
    log.start(dup_std(std::io::stderr().as_fd(), "stderr")?).map_err(|e| one(format!("cannot start stderr: {e}")))?;
    if args.vhost {
        eprintln!("=== Vhost acceleration enabled ===");
    }
    for (id, name, path) in &ptys {
        eprintln!("=== port {id} ({name}): pty {} ===", path.display());
    }
    let raw = if linux { RawMode::enter(libc::STDIN_FILENO) } else { None };
    if raw.is_some() {
        eprintln!("=== Console: Ctrl-A x quits ===");
    }
    vmm::log::route(Some(log.clone()));

    // 4. The run.
    let outcome = vm.run(input, signals);
    drop(raw);
    // A VM stopped by a signal or an error gives its outputs half a second;
    // one that ended well waits for its reader, unless a signal comes.
    let mut deadline = outcome.result.is_err().then(|| Instant::now() + Duration::from_millis(500));
    let mut errors: Vec<String> = Vec::new();
    for out in &outputs {
        if let Err(e) = finish(out, &mut deadline, signals) {
            errors.push(e);
        }
    }
    if let Err(e) = finish(&log, &mut deadline, signals) {
        errors.push(e);
    }
    vmm::log::route(None);

    if args.stats {
        eprintln!("{}", outcome.stats);
    }
    let exit = match outcome.result {
        Ok(exit) => {
            eprintln!("{}", exit_line(exit));
            None
        }
        Err(e) => Some(e.to_string()),
    };
    errors.splice(0..0, exit);
    // An output failure that stopped the VM is also the output's own report.
    errors.dedup();
    for (device, failures) in outcome.device_failures {
        let times = if failures == 1 { String::new() } else { format!(" ({failures} times)") };
        errors.push(format!(
            "the {device} device stopped on a driver error{times} (see above): the guest's data in it may be lost"
        ));
    }
    if outcome.guest_failed {
        errors.push("the guest reported a failure on its debug port (the guest: line above)".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let _ = writeln!(std::io::stderr(), "Time taken to run VM: {} microseconds", start.elapsed().as_micros());
    Ok(())
}

/// Waits until `out` has written everything, or the deadline passes; a
/// SIGINT or SIGTERM meanwhile sets a deadline of half a second.
fn finish(out: &Output, deadline: &mut Option<Instant>, signals: &mut Signals) -> Result<(), String> {
    out.close();
    loop {
        let step = Instant::now() + Duration::from_millis(100);
        if out.wait(Some(deadline.map_or(step, |d| d.min(step)))) {
            return out.failure().map_or(Ok(()), Err);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            out.abandon();
            return Err(format!("{}: {} bytes not written (the reader stopped)", out.name(), out.pending()));
        }
        if let Some(signal) = signals.take() {
            if vmm::event_loop::stops_vm(signal) && deadline.is_none() {
                *deadline = Some(Instant::now() + Duration::from_millis(500));
            }
        }
    }
}

/// How the VM ended, on stderr as the original demo words it.
fn exit_line(exit: Exit) -> &'static str {
    match exit {
        Exit::Halted => "[KVM_EXIT_HLT: program halted normally]",
        Exit::Idle => "[guest waits for input after the end of its input: VM stopped]",
        Exit::Reset => "[guest reset: VM stopped]",
        Exit::PowerOff => "[guest powered off: VM stopped]",
        Exit::Quit => "[quit from the console: VM stopped]",
    }
}

/// Reads a guest file, refusing one larger than guest RAM before reading it.
fn read_guest(path: &Path, mem_mib: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read guest {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("guest {} is not a regular file", path.display()));
    }
    let ram = mem_mib << 20;
    if mem_mib > 0 && meta.len() > ram {
        return Err(format!(
            "guest {} is larger ({} bytes) than guest RAM ({mem_mib} MiB); raise --mem",
            path.display(),
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read guest {}: {e}", path.display()))
}
