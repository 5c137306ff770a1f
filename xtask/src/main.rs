//! `cargo xtask <command>`: the project's build and test entry points.
//!
//! The guests need a nightly-only feature (build-std for bare-metal targets) and
//! a toolchain whose library source matches its compiler; on Debian that is
//! `rustc-web` + `rust-web-src` at /usr/bin (override with GUEST_CARGO and
//! GUEST_RUSTC). The host crates build with whatever `cargo` runs this.

mod bench;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  guest        build the guest ELFs into target/guests/
  build        guests + release vmm
  run [ARGS]   build, then run the vmm with ARGS
  test         guests, cargo fmt --check, clippy -D warnings, cargo test
  bench [N]    whole-process time, peak RSS and exit counts of vmm vs a bare KVM program (N runs, default 30)";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("guest") => build_guests(),
        Some("build") => build_guests().and_then(|_| cargo(&["build", "--release", "-p", "vmm"])),
        Some("run") => {
            build_guests().and_then(|_| cargo(&["build", "--release", "-p", "vmm"])).and_then(|_| run_vmm(&args[1..]))
        }
        Some("test") => test(),
        Some("bench") => bench::run(args.get(1).map(String::as_str)),
        _ => {
            eprintln!("{USAGE}");
            exit(2)
        }
    };
    if let Err(e) = result {
        eprintln!("xtask: {e}");
        exit(1);
    }
}

pub type Result<T = ()> = std::result::Result<T, String>;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Where the guest ELFs end up; the vmm's build script and tests read them here.
pub fn guests_dir() -> PathBuf {
    root().join("target/guests")
}

struct GuestBuild {
    target: &'static str,
    bins: &'static [(&'static str, &'static str)],
    link_args: &'static [&'static str],
}

const GUESTS: &[GuestBuild] = &[
    GuestBuild {
        target: "i686-unknown-none",
        bins: &[
            ("hello", "hello.elf"),
            ("stream", "stream.elf"),
            ("hostile", "hostile.elf"),
            ("echo", "echo.elf"),
            ("disk", "disk.elf"),
            ("hostile-disk", "hostile-disk.elf"),
            ("ports", "ports.elf"),
            ("hostile-ports", "hostile-ports.elf"),
        ],
        link_args: &["-melf_i386"],
    },
    GuestBuild { target: "x86_64-unknown-none", bins: &[("hello", "hello64.elf")], link_args: &[] },
];

/// Debian packages holding a compiler and its matching library source.
const GUEST_TOOLCHAIN_PACKAGES: &[&str] =
    &["rustc-web", "cargo-web", "rust-web-src", "libstd-rust-web-dev", "binutils"];

/// Installs the guest toolchain if it is missing: as root with apt-get,
/// otherwise by naming the command to run.
fn ensure_guest_toolchain(cargo: &str, rustc: &str) -> Result {
    if Path::new(cargo).exists() && Path::new(rustc).exists() {
        return Ok(());
    }
    let packages = GUEST_TOOLCHAIN_PACKAGES.join(" ");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root || !Path::new("/usr/bin/apt-get").exists() {
        return Err(format!(
            "the guest toolchain ({cargo}, {rustc}) is missing; install it with: sudo apt-get install {packages}"
        ));
    }
    eprintln!("xtask: installing the guest toolchain: {packages}");
    // On stderr: `cargo xtask run > out` must capture only the guest's bytes.
    run(Command::new("apt-get").args(["update", "-q"]).stdout(stderr()))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(GUEST_TOOLCHAIN_PACKAGES)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(stderr()))
}

/// This process's stderr, for a child's stdout.
fn stderr() -> std::process::Stdio {
    use std::os::fd::AsFd;
    std::io::stderr().as_fd().try_clone_to_owned().map(std::process::Stdio::from).unwrap_or(std::process::Stdio::null())
}

pub fn build_guests() -> Result {
    let root = root();
    let guest_cargo = env::var("GUEST_CARGO").unwrap_or_else(|_| "/usr/bin/cargo".into());
    let guest_rustc = env::var("GUEST_RUSTC").unwrap_or_else(|_| "/usr/bin/rustc".into());
    ensure_guest_toolchain(&guest_cargo, &guest_rustc)?;
    let target_dir = root.join("target/guest");
    let out = guests_dir();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let linker_script = root.join("guest/linker.ld");

    for build in GUESTS {
        let target_spec = match build.target {
            "i686-unknown-none" => root.join("guest/i686-unknown-none.json").display().to_string(),
            builtin => builtin.to_string(),
        };
        let mut rustflags = format!(
            "-C linker=ld -C linker-flavor=ld -C relocation-model=static \
             -C link-arg=-T{} -C link-arg=--build-id=none -C link-arg=-znoexecstack",
            linker_script.display()
        );
        for arg in build.link_args {
            rustflags.push_str(&format!(" -C link-arg={arg}"));
        }
        let mut cmd = Command::new(&guest_cargo);
        cmd.current_dir(&root)
            .args(["build", "--release", "--quiet", "-p", "guest", "--target", &target_spec])
            .args(["-Zbuild-std=core,compiler_builtins", "-Zbuild-std-features=compiler-builtins-mem"])
            .arg("--target-dir")
            .arg(&target_dir)
            .env("RUSTC", &guest_rustc)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTFLAGS", rustflags);
        if target_spec.ends_with(".json") {
            cmd.arg("-Zjson-target-spec");
        }
        for (bin, _) in build.bins {
            cmd.args(["--bin", bin]);
        }
        // Keep the outer cargo's settings (rustup toolchain, wrappers) out.
        for var in ["RUSTUP_TOOLCHAIN", "RUSTC_WRAPPER", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS"] {
            cmd.env_remove(var);
        }
        let names: Vec<&str> = build.bins.iter().map(|(_, name)| *name).collect();
        eprintln!("xtask: building the {} guests ({})", build.target, names.join(", "));
        run(&mut cmd)?;
        for (bin, name) in build.bins {
            let built = target_dir.join(build.target).join("release").join(bin);
            copy_if_changed(&built, &out.join(name))?;
        }
    }
    Ok(())
}

/// Copies `from` to `to` unless `to` already holds the same bytes: the
/// vmm's build script watches the hello guest, and a fresh copy (a new
/// mtime) would rebuild the vmm on every `cargo xtask run`.
fn copy_if_changed(from: &Path, to: &Path) -> Result {
    let new = std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
    if std::fs::read(to).is_ok_and(|old| old == new) {
        return Ok(());
    }
    std::fs::write(to, new).map_err(|e| format!("{}: {e}", to.display()))
}

pub fn cargo(args: &[&str]) -> Result {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).current_dir(root()).args(args))
}

pub fn run(cmd: &mut Command) -> Result {
    let status = cmd.status().map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed ({status})", cmd.get_program()))
    }
}

fn run_vmm(args: &[String]) -> Result {
    let args = args.strip_prefix(&["--".to_string()]).unwrap_or(args);
    let vmm = root().join("target/release/vmm");
    let status = Command::new(&vmm).args(args).status().map_err(|e| format!("{}: {e}", vmm.display()))?;
    exit(status.code().unwrap_or(1))
}

fn test() -> Result {
    build_guests()?;
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&["clippy", "--all-targets", "--", "-D", "warnings"])?;
    cargo(&["test", "--release"])
}
