#!/usr/bin/env bash
# Builds the end-to-end test kernel from Debian's linux-source-6.12, with
# kernel/patches/ applied and kmod/ placed at drivers/vhost_console/.
#
#   kernel/build.sh builtin   CONFIG_VHOST_CONSOLE=y  -> build/kernel-builtin/arch/x86/boot/bzImage
#   kernel/build.sh module    CONFIG_VHOST_CONSOLE=m  -> build/kernel-module/... (+ the in-tree .ko)
#   kernel/build.sh debug     builtin + kernel/debug.fragment (KASAN, lockdep, ...), built with clang
#
# Needs: linux-source-6.12 rustc-web rust-web-src libclang-19-dev bc flex bison
# libelf-dev libssl-dev, and bindgen-cli 0.69.5: kernel/setup.sh installs them.
# Kernel makes use Debian's rustc: the source of its core library matches it.
set -euo pipefail

variant=${1:?usage: kernel/build.sh builtin|module|debug}
repo=$(cd "$(dirname "$0")/.." && pwd)
fragments=("$repo/kernel/config.fragment")
llvm=()
case $variant in
    builtin) vhost_console=y ;;
    module) vhost_console=m ;;
    debug)
        vhost_console=y
        fragments+=("$repo/kernel/debug.fragment")
        llvm=(LLVM=-19)
        ;;
    *) echo "kernel/build.sh: unknown variant $variant" >&2; exit 2 ;;
esac

# BUILD_DIR: where the source is extracted and the kernels built (default build/).
build=${BUILD_DIR:-$repo/build}
src=$build/linux-6.12
out=$build/kernel-$variant
tarball=/usr/src/linux-source-6.12.tar.xz

if [ ! -f "$src/Makefile" ]; then
    echo "kernel: extracting $tarball"
    rm -rf "$build/linux-source-6.12" "$src"
    mkdir -p "$build"
    tar -xf "$tarball" -C "$build"
    mv "$build/linux-source-6.12" "$src"
fi

for patch in "$repo"/kernel/patches/*.patch; do
    if ! patch -p1 -R --dry-run -s -f -d "$src" < "$patch" > /dev/null 2>&1; then
        echo "kernel: applying $(basename "$patch")"
        patch -p1 -s -d "$src" < "$patch"
    fi
done

# The module source, one copy of kmod/ (mtimes kept, so unchanged files do
# not rebuild).
mkdir -p "$src/drivers/vhost_console"
# Sources only: an out-of-tree build leaves generated files (*.mod.c) in kmod/.
cp -p "$repo"/kmod/{Kconfig,Kbuild,*.rs,helpers.c,helpers.h} "$src/drivers/vhost_console/"

export PATH=$HOME/.cargo/bin:$PATH
make_args=(-C "$src" O="$out" "${llvm[@]}"
    RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
    BINDGEN="$(command -v bindgen)" LIBCLANG_PATH=/usr/lib/llvm-19/lib)

# The module kernel is the builtin one but for CONFIG_VHOST_CONSOLE: begun
# from a copy of the builtin one's build tree, only what depends on that
# option is built again (Kbuild tracks each object's options).
if [ "$variant" = module ] && [ ! -f "$out/.config" ] && [ -f "$build/kernel-builtin/vmlinux" ]; then
    echo "kernel: module begins as a copy of the builtin build"
    rm -rf "$out"
    cp -a "$build/kernel-builtin" "$out"
fi
mkdir -p "$out"
stale=0
for f in "${fragments[@]}"; do [ ! -f "$out/.config" ] || [ "$f" -nt "$out/.config" ] && stale=1; done
[ "$(cat "$out/variant.config" 2> /dev/null)" = "CONFIG_VHOST_CONSOLE=$vhost_console" ] || stale=1
if [ $stale = 1 ]; then
    echo "kernel: configuring $variant"
    make "${make_args[@]}" -s tinyconfig
    echo "CONFIG_VHOST_CONSOLE=$vhost_console" > "$out/variant.config"
    (cd "$src" && scripts/kconfig/merge_config.sh -m -O "$out" "$out/.config" \
        "${fragments[@]}" "$out/variant.config" > /dev/null)
    make "${make_args[@]}" -s olddefconfig
    # Kconfig silently drops options whose dependencies are unmet.
    missing=0
    while read -r line; do
        case $line in
            "# CONFIG_"*" is not set") want=$line ;;
            CONFIG_VHOST_CONSOLE=*) want="CONFIG_VHOST_CONSOLE=$vhost_console" ;;
            CONFIG_*) want=$line ;;
            *) continue ;;
        esac
        if ! grep -qxF "$want" "$out/.config"; then
            echo "kernel: config fragment line did not survive olddefconfig: $want" >&2
            missing=1
        fi
    done < <(cat "${fragments[@]}")
    grep -qx "CONFIG_VHOST_TASK=y" "$out/.config" || { echo "kernel: CONFIG_VHOST_TASK is off" >&2; missing=1; }
    # Configure afresh next time rather than build a kernel without them.
    [ $missing = 0 ] || { rm -f "$out/.config"; exit 1; }
fi

echo "kernel: building $variant ($(nproc) jobs)"
make "${make_args[@]}" -s -j"$(nproc)" bzImage modules
echo "kernel: $out/arch/x86/boot/bzImage"
