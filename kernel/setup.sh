#!/usr/bin/env bash
# Installs what kernel/build.sh and e2e/run.sh need on Debian 12 (bookworm):
# the 6.12 source, a Rust toolchain whose library source matches it
# (rustc-web), libclang and bindgen-cli 0.69.5 for the Rust bindings, clang
# for the debug kernel (KASAN with Rust needs it), the C
# build tools, busybox for the initramfs, and QEMU 10 from bookworm-backports.
# Versions are not pinned: security updates replace them. Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(linux-source-6.12 rustc-web cargo-web rust-web-src libstd-rust-web-dev libclang-19-dev clang-19 lld-19 llvm-19
    build-essential bc flex bison libelf-dev libssl-dev cpio xz-utils busybox-static python3 util-linux)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" > /dev/null 2>&1 || missing+=("$p"); done

backports=/etc/apt/sources.list.d/bookworm-backports.sources
qemu_ok() { qemu-system-x86_64 --version 2> /dev/null | grep -qE 'version (9|[1-9][0-9])\.'; }
if ! qemu_ok && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n' > "$backports"
fi
if ((${#missing[@]})) || ! qemu_ok; then
    apt-get update -q
fi
if ((${#missing[@]})); then
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if ! qemu_ok; then
    apt-get install -y -q --no-install-recommends -t bookworm-backports qemu-system-x86
fi

export PATH=$HOME/.cargo/bin:$PATH
if [ "$(bindgen --version 2> /dev/null)" != "bindgen 0.69.5" ]; then
    cargo install --locked --quiet bindgen-cli --version 0.69.5
fi
echo "setup: $(qemu-system-x86_64 --version | head -1); $(/usr/bin/rustc --version); $(bindgen --version)"
