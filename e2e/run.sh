#!/usr/bin/env bash
# The end-to-end test without Nix: builds the 6.12 test kernels (vhost-console
# built in; as a module; built in on the debug kernel with KASAN, lockdep and
# the hang detectors), the out-of-tree vhost_console.ko, the VMM and the
# guests; boots each kernel under QEMU TCG with `-cpu max` (which emulates
# AMD SVM, so KVM works inside) and runs e2e/in-vm.sh there; then checks the
# results and the kernel log.
#
#   e2e/run.sh     as root: installs what it needs (kernel/setup.sh), builds, runs
#   E2E_VARIANTS=builtin e2e/run.sh    only some of the kernels (builtin module debug)
#   E2E_ONLY=linux e2e/run.sh          only the Linux-guest tests (in-vm.sh)
#   E2E_ONLY=storage e2e/run.sh        only vhost-abi and the storage tests
#   E2E_ONLY=disk e2e/run.sh           only the disk tests (vmm --disk) and their benchmark
#   E2E_ONLY=ports e2e/run.sh          only the console ports' tests (e2e/ports.sh)
#   E2E_LANES=1 e2e/run.sh             the test VMs one after the other (default: two at a time)
#   BUILD_DIR=DIR e2e/run.sh           the kernels' source and build trees in DIR
#                                      (kernel/build.sh's; default build/)
set -euo pipefail
variants=${E2E_VARIANTS:-builtin module debug}

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$repo/build
export BUILD_DIR=${BUILD_DIR:-$build}
kbuild=$BUILD_DIR
cd "$repo"

"$repo/kernel/setup.sh"

# The builtin kernel is also the Linux guest's.
for variant in $(echo builtin $variants | tr ' ' '\n' | awk '!seen[$0]++'); do
    "$repo/kernel/build.sh" "$variant"
done
if [[ " $variants " == *" module "* ]]; then
    echo "e2e: building kmod/ out of tree"
    PATH=$HOME/.cargo/bin:$PATH make -s -C "$repo/kmod" KDIR="$kbuild/kernel-module" \
        RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
        BINDGEN="$(PATH=$HOME/.cargo/bin:$PATH command -v bindgen)" LIBCLANG_PATH=/usr/lib/llvm-19/lib
fi
cargo xtask build
cargo build --release --quiet -p vmm --example vhost_abi --example echo_latency

# The oracle for the stream guest's output, computed apart from the VMM.
stream_sha256=$(python3 -c 'import hashlib; n = 64 << 20; p = bytes(range(251)) * (n // 251 + 1); print(hashlib.sha256(p[:n]).hexdigest())')
# And for the Linux guest's 64 MiB on hvc0 (e2e/guest-init: 64 times 1 MiB of `yes`).
dd_sha256=$(python3 -c 'import hashlib; print(hashlib.sha256(b"abcdefghijklmno\n" * (64 << 16)).hexdigest())')

# The Linux guest that vmm boots inside the test VM: the built-in test kernel
# (it has virtio-mmio and the virtio console) and a busybox initramfs.
guest_root=$build/linux-guest
rm -rf "$guest_root"
mkdir -p "$guest_root"/{bin,dev,proc,sys}
cp /bin/busybox "$guest_root/bin/busybox"
cp e2e/guest-init "$guest_root/init"
cp e2e/guest-ports "$guest_root/bin/guest-ports"
chmod +x "$guest_root/init"
mknod "$guest_root/dev/console" c 5 1
# The disk benchmark and the discard/zero-out tool the guest runs (in-vm.sh's
# disk section), static.
gcc -O2 -Wall -static -pthread -o "$guest_root/bin/diskbench" e2e/diskbench.c
gcc -O2 -Wall -static -o "$guest_root/bin/blkop" e2e/blkop.c
(cd "$guest_root" && find . | cpio -o -H newc --quiet | gzip -1) > "$build/linux-guest.gz"

# The file system of in-vm.sh's storage tests: ext4 (busybox has no
# mkfs.ext4) filling the test kernel's 64 MiB RAM disk, gzipped (it is
# mostly zeros) for the initramfs.
rm -f "$build/ext4.img"
truncate -s 64M "$build/ext4.img"
mkfs.ext4 -q -F "$build/ext4.img"
gzip -1 -c "$build/ext4.img" > "$build/ext4.img.gz"
rm -f "$build/ext4.img"

# The test VMs: one per kernel, and with two lanes (below) the builtin
# kernel's ports tests in a VM of their own ("ports"), which shortens the
# longest run and what a retry of a stalled boot costs.
vms=$variants
if [ "${E2E_LANES:-2}" -ge 2 ] && [ -z "${E2E_ONLY:-}" ] && [[ " $variants " == *" builtin "* ]]; then
    vms=$(echo "$variants" | sed 's/\bbuiltin\b/builtin ports/')
fi
# kernel_of VM: the kernel it boots; sections_of VM: E2E_ONLY and E2E_SKIP for in-vm.sh.
kernel_of() { if [ "$1" = ports ]; then echo builtin; else echo "$1"; fi; }
sections_of() {
    if [ "$1" = ports ]; then
        echo "E2E_ONLY=ports E2E_SKIP="
    elif [ "$1" = builtin ] && [[ " $vms " == *" ports "* ]]; then
        echo "E2E_ONLY= E2E_SKIP=ports"
    else
        echo "E2E_ONLY=${E2E_ONLY:-} E2E_SKIP="
    fi
}

# make_initramfs VM: busybox, vmm (with its libraries), guests, the test script.
make_initramfs() {
    local root=$build/initramfs-$1 kernel
    kernel=$(kernel_of "$1")
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,guests,e2e,linux}
    cp /bin/busybox "$root/bin/busybox"
    cp target/release/vmm "$root/bin/vmm"
    cp target/release/examples/vhost_abi "$root/bin/vhost-abi"
    cp target/release/examples/echo_latency "$root/bin/echo-latency"
    local bins="target/release/vmm target/release/examples/vhost_abi target/release/examples/echo_latency"
    # e2fsprogs' checker and debugfs, for the images of the disk tests.
    mkdir -p "$root/sbin"
    for bin in /usr/sbin/e2fsck /usr/sbin/debugfs; do
        cp "$bin" "$root/sbin/"
        bins="$bins $bin"
    done
    # QEMU microvm, for the side-by-side benchmark: the host's QEMU with its
    # libraries, the microvm BIOS and the option ROMs that load a kernel.
    if [ "$kernel" = builtin ]; then
        bins="$bins /usr/bin/qemu-system-x86_64"
        cp /usr/bin/qemu-system-x86_64 "$root/bin/"
        mkdir -p "$root/usr/share/seabios" "$root/usr/share/qemu"
        cp /usr/share/seabios/bios-microvm.bin "$root/usr/share/seabios/"
        cp /usr/share/qemu/{qboot.rom,linuxboot.bin,linuxboot_dma.bin,pvh.bin,kvmvapic.bin} "$root/usr/share/qemu/"
    fi
    for lib in $(for bin in $bins; do ldd "$bin"; done | grep -o '/[^ ]*' | sort -u); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    cp target/guests/*.elf "$root/guests/"
    # The Linux guest (the built-in kernel: it has virtio-mmio and the
    # console): all its tests in the builtin VM, a kill test in the module
    # one, the disk tests (in-vm.sh) in all three.
    if [ -f "$kbuild/kernel-builtin/arch/x86/boot/bzImage" ]; then
        cp "$kbuild/kernel-builtin/arch/x86/boot/bzImage" "$root/linux/bzImage"
        cp "$build/linux-guest.gz" "$root/linux/initramfs.gz"
    fi
    cp e2e/in-vm.sh "$root/e2e/"
    cp "$build/ext4.img.gz" "$root/"
    # The console ports' tests (in-vm.sh runs e2e/ports.sh) and their host side, static.
    cp e2e/ports.sh "$root/e2e/"
    gcc -O2 -Wall -static -o "$root/bin/porthost" e2e/porthost.c
    [ "$1" = module ] && cp kmod/vhost_console.ko "$root/"
    mknod "$root/dev/console" c 5 1
    cat > "$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
echo "e2e: /dev/kvm: \$(ls -l /dev/kvm 2>&1)"
VMM=/bin/vmm VHOST_ABI=/bin/vhost-abi ECHO_LATENCY=/bin/echo-latency GUESTS=/guests MODULE_KO=/vhost_console.ko STREAM_SHA256=$stream_sha256 \
    LINUX_KERNEL=/linux/bzImage LINUX_INITRD=/linux/initramfs.gz DD_SHA256=$dd_sha256 QEMU=/bin/qemu-system-x86_64 $(sections_of "$1") \
    EXT4_IMAGE=/ext4.img.gz E2FSCK=/sbin/e2fsck DEBUGFS=/sbin/debugfs \
    sh /e2e/in-vm.sh $kernel
echo "e2e: in-vm.sh exited \$?"
reboot -f
INIT
    chmod +x "$root/init"
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$build/initramfs-$1.gz"
}

# boot VARIANT LOG: one QEMU run; the TSC is declared reliable so that a
# loaded host's timing cannot stall calibration (seen: "Unable to calibrate
# against PIT", then a hang). One CPU: a wake-up sent from one CPU of the
# test VM to another that runs a nested vCPU breaks nested SVM under TCG
# (docs/testing.md); with two, full runs of the builtin VM froze whole
# (QEMU busy, no line for the rest of the timeout), with one they do not.
# With one CPU, two runs still stopped for good, each with the CPU halted
# in default_idle (HLT, interrupts on) and no timer firing for 1000 s
# (timeouts inside never fired): a wake-up of a halted CPU lost under TCG
# (with two CPUs, one halted for good would leave the other spinning on it:
# the freezes above). So the test VM's CPU never halts: idle=poll (it
# spins instead; QEMU then keeps one host core busy).
# A run that prints nothing for $stall_after s is stuck: its CPUs'
# registers are logged (QEMU's monitor) and it is stopped.
stall_after=${E2E_STALL_AFTER:-660}
# monitor SOCKET COMMAND: one command on a test VM's QEMU monitor.
monitor() { python3 "$repo/e2e/monitor.py" "$1" "$2"; }
nudge_every=${E2E_NUDGE_EVERY:-120}
boot() {
    local mon=$build/qemu-$1.monitor
    rm -f "$mon"
    timeout 1800 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "${E2E_SMP:-1}" -m 1024 \
        -nographic -no-reboot -monitor "unix:$mon,server=on,wait=off" -serial stdio \
        -kernel "$kbuild/kernel-$(kernel_of "$1")/arch/x86/boot/bzImage" -initrd "$build/initramfs-$1.gz" \
        -append "console=ttyS0 panic=-1 oops=panic tsc=reliable tsc_early_khz=2000000 idle=poll" \
        < /dev/null 2>&1 | stdbuf -oL tr -d '\r' > "$2" &
    local qemu=$! size=-1 quiet=0 nudged=0
    while kill -0 $qemu 2> /dev/null; do
        sleep 10
        if [ "$(stat -c %s "$2")" != "$size" ]; then
            size=$(stat -c %s "$2")
            [ $nudged = 0 ] || echo "e2e: $1: output again $quiet s into the quiet, after $nudged nudges"
            quiet=0 nudged=0
            continue
        fi
        quiet=$((quiet + 10))
        # A quiet test VM is nudged every $nudge_every s: stopped and
        # continued, which makes QEMU kick its vCPU and look at its timers
        # and interrupts again (a lost kick would explain each stall seen:
        # see docs/testing.md). Harmless to a VM that is merely busy.
        if [ $((quiet % nudge_every)) = 0 ] && [ $quiet -lt "$stall_after" ]; then
            if [ $nudged = 0 ]; then
                echo "e2e: $1: no output for $quiet s; its CPU, then a nudge (stop, cont):"
                monitor "$mon" "info registers -a" | grep -E '^(RIP=|CS =)' || true
            fi
            monitor "$mon" stop > /dev/null || true
            monitor "$mon" cont > /dev/null || true
            nudged=$((nudged + 1))
            continue
        fi
        [ $quiet -ge "$stall_after" ] || continue
        echo "e2e: $1: no output for $quiet s: the test VM is stuck; its registers:"
        monitor "$mon" "info registers -a" | grep -E '^(CPU#|RIP=|CS =|CR0=)' || true
        # Its local APIC: the timer's state, and vectors pending (IRR) or in service (ISR).
        monitor "$mon" "info lapic" || true
        monitor "$mon" quit > /dev/null || true
        break
    done
    wait $qemu || true
}

# run_variant VARIANT: boots its test VM until one boot gives a result (two
# at most); what it says of the boots goes to $build/e2e-VARIANT.runner.
run_variant() {
    local log=$build/e2e-$1.log attempt start
    for attempt in 1 2; do
        start=$SECONDS
        boot "$1" "$log"
        grep -q '^e2e: in-vm.sh exited' "$log" && break
        echo "e2e: $1 boot $attempt produced no result after $((SECONDS - start)) s; log tail:"
        tail -20 "$log"
    done
    echo "e2e: $1: VM ran $((SECONDS - start)) s"
}

for vm in $vms; do make_initramfs "$vm"; done
# Each test VM has one CPU and QEMU runs it on one host core: on two cores,
# two lanes, the VMs of the builtin kernel (the longest runs) one after the
# other in one, the others in the second. E2E_LANES=1: one at a time.
lane1="" lane2=""
for vm in $vms; do
    if [ "$(kernel_of "$vm")" = builtin ]; then lane1="$lane1 $vm"; else lane2="$lane2 $vm"; fi
done
if [ "${E2E_LANES:-2}" -lt 2 ] || [ -z "$lane1" ] || [ -z "$lane2" ]; then
    lane1=" $vms" lane2=""
fi
echo "e2e: test VMs:$lane1${lane2:+ |$lane2}"
(for vm in $lane1; do run_variant "$vm" > "$build/e2e-$vm.runner" 2>&1; done) &
lane=$!
for vm in $lane2; do run_variant "$vm" > "$build/e2e-$vm.runner" 2>&1; done
wait $lane

total_passed=0
total_failed=0
for variant in $vms; do
    log=$build/e2e-$variant.log
    cat "$build/e2e-$variant.runner"
    grep -E '^(ok|not ok|    |bench:|e2e:)' "$log" | sed "s/^/  [$variant] /" || true
    result=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [ -z "$result" ]; then
        echo "e2e: $variant: no result line"
        total_failed=$((total_failed + 1))
        continue
    fi
    p=$(echo "$result" | awk '{ print $2 }')
    f=$(echo "$result" | awk '{ print $4 }')
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    # in-vm.sh's vhost hello with the console (a tty) as stdout: the guest's
    # line, relayed, and nothing else between the markers.
    if grep -q '^e2e: tty-hello-start$' "$log" \
        && [ "$(sed -n '/^e2e: tty-hello-start$/,/^e2e: tty-hello-end$/p' "$log" | sed '1d;$d')" != "Hello World!" ]; then
        echo "e2e: $variant: the relayed tty output is not exactly the guest's line:"
        sed -n '/^e2e: tty-hello-start$/,/^e2e: tty-hello-end$/p' "$log"
        total_failed=$((total_failed + 1))
    elif grep -q '^e2e: tty-hello-start$' "$log"; then
        total_passed=$((total_passed + 1))
    fi
    bad='BUG|Oops|WARNING|KASAN|KFENCE|UBSAN|general protection|Call Trace|list_(add|del) corruption|INFO: task .* blocked|detected stall|soft lockup'
    if grep -qE "$bad" "$log"; then
        grep -nE "$bad" "$log" | sed "s/^/e2e: $variant: kernel log line /"
        echo "e2e: $variant: the kernel log has a BUG/Oops/WARNING (above)"
        total_failed=$((total_failed + 1))
    fi
done
echo "e2e: $total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ] && [ "$total_passed" -gt 0 ]
