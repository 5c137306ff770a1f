//! Embeds the i686 hello guest, which `vmm` runs when given no --guest.
//! `cargo xtask guest` builds it; VMM_GUEST_ELF overrides the path (Nix does).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=VMM_GUEST_ELF");
    let path = match std::env::var_os("VMM_GUEST_ELF") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/guests/hello.elf"),
    };
    if !path.is_file() {
        eprintln!(
            "error: guest ELF {} not found: run `cargo xtask guest` first (or set VMM_GUEST_ELF)",
            path.display()
        );
        std::process::exit(1);
    }
    println!("cargo:rerun-if-changed={}", path.display());
    println!("cargo:rustc-env=VMM_GUEST_ELF={}", path.display());
}
