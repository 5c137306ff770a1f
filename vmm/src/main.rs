//! `vmm`: runs a guest ELF on KVM with a virtio-mmio console.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use argh::FromArgs;
use vmm::machine::{self, Machine};
use vmm::terminal::RawMode;
use vmm::virtio::console::Console;
use vmm::virtio::vhost_console::{self, VhostConsole, MAX_POLL_US};
use vmm::virtio::{VirtioDevice, VIRTIO_RING_F_EVENT_IDX};
use vmm::vm::{self, Config, Halt, Vm};
use vmm::x86::layout::VIRTIO_MMIO_BASE;

/// The bundled i686 hello guest.
static HELLO_GUEST: &[u8] = include_bytes!(env!("VMM_GUEST_ELF"));

/// Run a bare-metal guest ELF, or boot a Linux kernel, on KVM with a VirtIO
/// console on virtio-mmio. Guest console output goes to stdout; the VMM's
/// messages (and a Linux guest's serial port) go to stderr.
#[derive(FromArgs)]
struct Args {
    /// process the console's queues in the kernel (/dev/vhost-console)
    #[argh(switch, short = 'v')]
    vhost: bool,
    /// guest ELF (i386 or x86-64) to run; default: the bundled hello guest
    #[argh(option)]
    guest: Option<PathBuf>,
    /// a Linux kernel (bzImage) to boot instead of a bare-metal guest
    #[argh(option)]
    kernel: Option<PathBuf>,
    /// initrd for --kernel
    #[argh(option)]
    initrd: Option<PathBuf>,
    /// guest RAM in MiB: 1 to 256 for --guest (default 16), 32 up to what the
    /// host gives for --kernel (default 512)
    #[argh(option)]
    mem: Option<u64>,
    /// vCPUs for --kernel, 1 to 254 (default 1)
    #[argh(option, default = "1")]
    cpus: u8,
    /// command line: the bare-metal guest's (PVH start_info), or the kernel's
    /// (default "console=ttyS0 reboot=k panic=1"; the VMM adds
    /// virtio_mmio.device= unless given)
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
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmm: error: {e}");
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
    const TAKES_VALUE: [&str; 9] =
        ["--guest", "--kernel", "--initrd", "--mem", "--cpus", "--cmdline", "--serial", "--console-out", "--poll-us"];
    let mut argv: Vec<String> = std::env::args().collect();
    for i in 1..argv.len() {
        if argv[i] == "-h" && !TAKES_VALUE.contains(&argv[i - 1].as_str()) {
            argv[i] = "--help".into();
        }
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    Args::from_args(&["vmm"], &argv[1..]).map_err(|exit| match exit.status {
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

fn run(args: &Args) -> Result<(), String> {
    let start = Instant::now();
    if args.poll_us != 0 && !args.vhost {
        return Err("--poll-us applies to the kernel worker: it needs --vhost".into());
    }
    if args.poll_us > MAX_POLL_US {
        return Err(format!("--poll-us must be at most {MAX_POLL_US} (one second)"));
    }
    let console_out = match &args.console_out {
        Some(path) => File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
        None => std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .map_err(|e| format!("cannot use stdout: {e}"))?,
    };
    if let Some(kernel) = &args.kernel {
        return run_linux(args, kernel, console_out, start);
    }
    if args.initrd.is_some() || args.cpus != 1 || args.serial != "stderr" {
        return Err("--initrd, --cpus and --serial are for --kernel".into());
    }
    let mem = args.mem.unwrap_or(16);
    let image = match &args.guest {
        Some(path) => read_guest(path, mem)?,
        None => HELLO_GUEST.to_vec(),
    };
    let mem_mib = u32::try_from(mem).unwrap_or(u32::MAX);
    // The console's input. A terminal stays as it is: line by line, with its echo.
    let (input, vhost_input) = console_input(args.vhost)?;
    let config = Config {
        image: &image,
        mem_mib,
        cmdline: &args.cmdline,
        lifecycle: Some(lifecycle()),
        input,
        withheld_features: withheld_features(args),
    };
    let halt = if args.vhost {
        let vm = Vm::new(config, |vm, mem| {
            Ok(VhostConsole::on_mmio(vm, mem, vm::CONSOLE_MMIO_BASE, console_out, vhost_input, args.poll_us)?)
        })
        .map_err(|e| e.to_string())?;
        eprintln!("=== Vhost acceleration enabled ===");
        run_vm(vm, args.stats)
    } else {
        let vm = Vm::new(config, |_, _| Ok(Console::new(console_out))).map_err(|e| e.to_string())?;
        run_vm(vm, args.stats)
    }?;
    match halt {
        Halt::Halted => eprintln!("[KVM_EXIT_HLT: program halted normally]"),
        Halt::Idle => eprintln!("[guest waits for input after the end of its input: VM stopped]"),
    }
    eprintln!("Time taken to run VM: {} microseconds", start.elapsed().as_micros());
    Ok(())
}

fn run_vm<D: VirtioDevice + Send + 'static>(mut vm: Vm<D>, stats: bool) -> Result<Halt, String> {
    let result = vm.run();
    if stats {
        eprintln!("{}", vm.stats());
    }
    result.map_err(|e| e.to_string())
}

fn stdin() -> Result<File, String> {
    std::io::stdin().as_fd().try_clone_to_owned().map(File::from).map_err(|e| format!("cannot use stdin: {e}"))
}

fn stdin_is_terminal() -> bool {
    // SAFETY: isatty takes any fd.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

/// Who reads stdin for the console: the VMM's input thread (userspace mode,
/// and a terminal in vhost mode, whose escape the VMM watches), or the
/// kernel, handed the file itself.
fn console_input(vhost: bool) -> Result<(Option<File>, vhost_console::Input), String> {
    Ok(match (vhost, stdin_is_terminal()) {
        (false, _) => (Some(stdin()?), vhost_console::Input::None),
        (true, true) => (Some(stdin()?), vhost_console::Input::Relayed),
        (true, false) => (None, vhost_console::Input::File(stdin()?)),
    })
}

/// Boots a Linux kernel.
fn run_linux(args: &Args, kernel: &Path, console_out: File, start: Instant) -> Result<(), String> {
    if args.guest.is_some() {
        return Err("--kernel and --guest exclude each other".into());
    }
    let terminal = stdin_is_terminal();
    let (input, vhost_input) = console_input(args.vhost)?;
    let serial: Box<dyn std::io::Write + Send> = match args.serial.as_str() {
        "stderr" => Box::new(std::io::stderr()),
        "none" => Box::new(std::io::sink()),
        path => Box::new(File::create(path).map_err(|e| format!("cannot create {path}: {e}"))?),
    };
    let config = machine::Config {
        kernel,
        initrd: args.initrd.as_deref(),
        cmdline: &args.cmdline,
        mem_mib: args.mem.unwrap_or(512),
        cpus: args.cpus,
        serial,
        input: input.map(|f| (f, terminal)),
        lifecycle: Some(lifecycle()),
        withheld_features: withheld_features(args),
    };
    let (outcome, stats) = if args.vhost {
        let vm = Machine::new(config, |vm, mem| {
            Ok(VhostConsole::on_mmio(vm, mem, VIRTIO_MMIO_BASE, console_out, vhost_input, args.poll_us)?)
        })
        .map_err(|e| e.to_string())?;
        eprintln!("=== Vhost acceleration enabled ===");
        raw_while(|| vm.run())
    } else {
        let vm = Machine::new(config, |_, _| Ok(Console::new(console_out))).map_err(|e| e.to_string())?;
        raw_while(|| vm.run())
    };
    if args.stats {
        eprintln!("{stats}");
    }
    match outcome.map_err(|e| e.to_string())? {
        machine::Exit::Reset => eprintln!("[guest reset: VM stopped]"),
        machine::Exit::PowerOff => eprintln!("[guest powered off: VM stopped]"),
        machine::Exit::Quit => eprintln!("[quit from the console: VM stopped]"),
    }
    eprintln!("Time taken to run VM: {} microseconds", start.elapsed().as_micros());
    Ok(())
}

/// Runs `f` with a terminal stdin in raw mode, restored before anything
/// else is printed.
fn raw_while<T>(f: impl FnOnce() -> T) -> T {
    let raw = RawMode::enter(libc::STDIN_FILENO);
    if raw.is_some() {
        eprintln!("=== Console: Ctrl-A x quits ===");
    }
    let result = f();
    drop(raw);
    result
}

/// The console's lifecycle lines, on stderr as the original demo prints them.
fn lifecycle() -> vmm::virtio::mmio::Lifecycle {
    Box::new(|line| eprintln!("{line}"))
}

/// Reads a guest file, refusing one larger than guest RAM before reading it.
fn read_guest(path: &PathBuf, mem_mib: u64) -> Result<Vec<u8>, String> {
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
