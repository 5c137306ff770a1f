#!/bin/sh
# End-to-end checks inside a VM that has nested KVM and a 6.12 kernel with
# vhost-console. One script for both runners: e2e/run.sh (QEMU, no Nix) and
# the NixOS test (nixos-test/). POSIX sh: it also runs under busybox.
#
#   in-vm.sh builtin   the module is built into the kernel
#   in-vm.sh module    the kernel lacks it: insmod/rmmod $MODULE_KO
#   in-vm.sh debug     as builtin, on the debug kernel (KASAN, lockdep, ...)
#
# Environment: VMM (the vmm binary), VHOST_ABI (vmm/examples/vhost_abi/,
# built), GUESTS (directory of guest ELFs),
# MODULE_KO (module mode), STREAM_SHA256 (sha256 of the 64 MiB stream
# pattern, byte i = i % 251); optional: LINUX_KERNEL, LINUX_INITRD and
# DD_SHA256 (a Linux guest and its 64 MiB hvc0 output) with ECHO_LATENCY
# (vmm/examples/echo_latency.rs, built), QEMU (a
# qemu-system-x86_64 to run the same Linux guest on, side by side),
# EXT4_IMAGE (a gzipped 64 MiB ext4 image for /dev/ram0: the storage tests);
# E2FSCK and DEBUGFS (e2fsprogs' binaries, for the disk tests' images);
# E2E_ONLY=linux runs the Linux-guest part alone (for work on it),
# E2E_ONLY=storage vhost-abi and the storage tests alone, E2E_ONLY=disk the
# disk tests (vmm --disk) and their benchmark alone, E2E_ONLY=stall the
# nested-stall experiment instead (below); E2E_ONLY=ports the ports tests
# alone, E2E_SKIP=ports all but those (the runner's "ports" VM has them).
# Prints
# TAP-like lines, "bench:" lines and a closing "e2e: N passed, M failed". The runner checks the kernel log (the
# serial console) for BUG, Oops and WARNING lines.
set -u
mode=${1:?usage: in-vm.sh builtin|module|debug}
: "${VMM:?}" "${GUESTS:?}"
T=/tmp/e2e
mkdir -p "$T"
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
    failed=$((failed + 1))
    echo "not ok - $1"
    shift
    # The start and the end of each file: where it began and how it ended.
    for f in "$@"; do
        [ -f "$f" ] || continue
        if [ "$(wc -c < "$f")" -gt 65536 ]; then echo "    $(basename "$f"): $(wc -c < "$f") bytes"; continue; fi
        if [ "$(wc -l < "$f")" -le 60 ]; then cat "$f"; else head -30 "$f"; echo ...; tail -20 "$f"; fi | sed "s|^|    $(basename "$f"): |"
    done
}

# run NAME ARGS...: runs vmm; $T/NAME.out, .err, .rc
run() {
    name=$1
    shift
    "$VMM" "$@" > "$T/$name.out" 2> "$T/$name.err"
    echo $? > "$T/$name.rc"
}

# The stderr of run NAME, with the varying numbers masked.
masked_err() {
    sed -e 's/^Time taken to run VM: [0-9]* microseconds$/Time taken to run VM: N microseconds/' \
        -e 's/^peak RSS: [0-9]* KiB$/peak RSS: N KiB/' "$T/$1.err"
}

LIFECYCLE='=== Guest OS has noticed device ===
=== Guest OS knows how to drive device ===
=== Driver has acknowledged recognizable features; feature negotiation complete ===
=== Driver is set up; console device is live ==='
TAIL='[KVM_EXIT_HLT: program halted normally]
Time taken to run VM: N microseconds'
HLT='[KVM_EXIT_HLT: program halted normally]'
IDLE='[guest waits for input after the end of its input: VM stopped]'
# The error lines of a run whose console went into DEVICE_NEEDS_RESET, and
# of one whose guest reported a failure on its debug port.
DEVICE_FAILED="vmm: error: the console device stopped on a driver error (see above): the guest's data in it may be lost"
GUEST_FAILED='vmm: error: the guest reported a failure on its debug port (the guest: line above)'

# expect_run NAME "description" EXPECTED_STDOUT EXPECTED_STDERR
expect_run() {
    printf '%s' "$3" > "$T/$1.want-out"
    printf '%s\n' "$4" > "$T/$1.want-err"
    masked_err "$1" > "$T/$1.got-err"
    if [ "$(cat "$T/$1.rc")" = 0 ] && cmp -s "$T/$1.out" "$T/$1.want-out" && cmp -s "$T/$1.got-err" "$T/$1.want-err"; then
        ok "$2"
    else
        not_ok "$2 (exit $(cat "$T/$1.rc"))" "$T/$1.out" "$T/$1.got-err" "$T/$1.want-err"
    fi
}

# expect_fail NAME "description" EXPECTED_STDOUT EXPECTED_STDERR: exit 1.
expect_fail() {
    printf '%s' "$3" > "$T/$1.want-out"
    printf '%s\n' "$4" > "$T/$1.want-err"
    masked_err "$1" > "$T/$1.got-err"
    if [ "$(cat "$T/$1.rc")" = 1 ] && cmp -s "$T/$1.out" "$T/$1.want-out" && cmp -s "$T/$1.got-err" "$T/$1.want-err"; then
        ok "$2"
    else
        not_ok "$2 (exit $(cat "$T/$1.rc"))" "$T/$1.out" "$T/$1.got-err" "$T/$1.want-err"
    fi
}

check() {
    desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

devices_present() { [ -c /dev/vhost-console ] && [ -c /dev/vmm-console ]; }

# vhost-abi: the ABI, hostile owners and races (vmm/examples/vhost_abi/);
# its ok/not ok lines count here. A hung kernel call must not hang the run.
abi_checks() {
    timeout 300 "${VHOST_ABI:?}" > "$T/abi.out" 2>&1
    echo "vhost-abi exited $?" >> "$T/abi.out"
    cat "$T/abi.out"
    passed=$((passed + $(grep -c '^ok - ' "$T/abi.out")))
    failed=$((failed + $(grep -c '^not ok - ' "$T/abi.out")))
    grep -q '^vhost-abi: [0-9]* passed, 0 failed$' "$T/abi.out" || not_ok "vhost-abi did not finish cleanly"
}
devices_absent() { [ ! -e /dev/vhost-console ] && [ ! -e /dev/vmm-console ]; }
stat_value() { sed -n "s/^$2: \([0-9]*\).*/\1/p" "$T/$1.err"; }
time_us() { sed -n 's/^Time taken to run VM: \([0-9]*\) microseconds$/\1/p' "$T/$1.err"; }

hello_runs() {
    run "$1-user" --guest "$GUESTS/hello.elf"
    expect_run "$1-user" "$1: userspace hello" "Hello World!
" "$LIFECYCLE
$TAIL"
    run "$1-vhost" --vhost
    expect_run "$1-vhost" "$1: vhost hello, byte-identical" "Hello World!
" "=== Vhost acceleration enabled ===
$LIFECYCLE
$TAIL"
}

# Storage: a regular file on ext4 and a block device as the kernel's backend
# files. The worker reads and writes them without RWF_NOWAIT (ext4 refuses a
# buffered RWF_NOWAIT write with EOPNOTSUPP; a regular file or a block device
# always polls ready, so there is nothing to wait for), and a write that
# fails stops the queue as a guest error does: its bytes never count as
# written. The file system is ext4 on /dev/ram0 (64 MiB): e2e/run.sh brings
# an image mkfs.ext4 made (EXT4_IMAGE, gzipped); without one (the NixOS test)
# mkfs.ext4 makes it here, if it can.
STORE=/mnt/ext4
# pattern BYTES FILE: what the stream guest sends for bytes=BYTES (byte i is
# i % 251), made here from 251 bytes by doubling.
pattern() {
    i=0
    fmt=""
    while [ $i -lt 251 ]; do fmt="$fmt\\$(printf %o $i)"; i=$((i + 1)); done
    printf "$fmt" > "$2.0"
    n=251
    while [ $n -lt "$1" ]; do cat "$2.0" "$2.0" > "$2.1" && mv "$2.1" "$2.0"; n=$((n * 2)); done
    head -c "$1" "$2.0" > "$2"
    rm -f "$2.0"
}
# kernel_said SEEN TEXT: the kernel logged TEXT after the first SEEN lines.
kernel_said() { dmesg | tail -n +$(($1 + 1)) | grep -qF "$2"; }
remount_store() { umount "$STORE" && mount -t ext4 /dev/ram0 "$STORE"; }
# stopped_with_enospc RC SEEN ERR: a full disk stopped transmitq with one
# kernel line (in the kernel log after line SEEN), and vmm, told by the err
# eventfd, ended with the device's failure and exit status 1: the stream
# guest saw DEVICE_NEEDS_RESET and said so.
stopped_with_enospc() {
    [ "$1" = 1 ] && \
        kernel_said "$2" 'vhost-console: transmitq: cannot write the output file: error -28 (ENOSPC); queue stopped' && \
        [ "$(tail -5 "$3")" = "virtio-mmio: vhost: the kernel stopped a queue (its log says why); device needs reset
guest: virtio-console: the device needs a reset
$HLT
$DEVICE_FAILED
$GUEST_FAILED" ]
}

# storage_checks PREFIX
storage_checks() {
    s="$1: storage"
    # Where brd is a module (NixOS), a RAM disk of the same size.
    [ -b /dev/ram0 ] || modprobe brd rd_nr=1 rd_size=65536 2> /dev/null
    if [ ! -b /dev/ram0 ]; then
        # run.sh's kernels have one; elsewhere it is optional.
        if [ -n "${EXT4_IMAGE:-}" ]; then not_ok "$s: /dev/ram0 exists"; else echo "# $s: skipped (no /dev/ram0)"; fi
        return
    fi
    pattern 16777216 "$T/pattern16"

    # The RAM disk itself: 64 MiB fill it exactly; 65 MiB do not fit, and
    # the write that finds no room stops the queue (the first 64 MiB stay).
    timeout 120 "$VMM" --vhost --guest "$GUESTS/stream.elf" --cmdline "bytes=64M chunk=4K" --console-out /dev/ram0 \
        2> "$T/storage-blk.err"
    echo $? > "$T/storage-blk.rc"
    sum=$(sha256sum < /dev/ram0 | cut -d' ' -f1)
    check "$s: 64 MiB stream to a block device of 64 MiB (/dev/ram0), byte-exact" \
        [ "$(cat "$T/storage-blk.rc")" = 0 -a "$sum" = "${STREAM_SHA256:?}" ]
    seen=$(dmesg | wc -l)
    timeout 120 "$VMM" --vhost --guest "$GUESTS/stream.elf" --cmdline "bytes=65M chunk=4K" \
        --console-out /dev/ram0 > /dev/null 2> "$T/storage-blk-full.err"
    rc=$?
    check "$s: 65 MiB to /dev/ram0: transmitq stops with ENOSPC, vmm exits 1 naming the device's failure" \
        stopped_with_enospc $rc "$seen" "$T/storage-blk-full.err"

    if [ -n "${EXT4_IMAGE:-}" ]; then
        gunzip -c "$EXT4_IMAGE" > /dev/ram0
    else
        mkfs.ext4 -q -F /dev/ram0 > /dev/null 2>&1
    fi
    mkdir -p "$STORE"
    if ! mount -t ext4 /dev/ram0 "$STORE"; then
        not_ok "$s: ext4 mounts on /dev/ram0"
        return
    fi
    check "$s: ext4 mounted on /dev/ram0" grep -q "^/dev/ram0 $STORE ext4 " /proc/mounts

    # (a) Output to a file on ext4: hello, byte-identical, and appended
    # (O_APPEND); the 16 MiB stream, byte-exact, and still so after a remount.
    timeout 120 "$VMM" --vhost > "$STORE/hello" 2> "$T/storage-hello.err"
    echo $? > "$T/storage-hello.rc"
    cp "$STORE/hello" "$T/storage-hello.out"
    expect_run storage-hello "$s: vhost hello with stdout a file on ext4, byte-identical" "Hello World!
" "=== Vhost acceleration enabled ===
$LIFECYCLE
$TAIL"
    timeout 120 "$VMM" --vhost >> "$STORE/hello" 2> /dev/null
    rc=$?
    check "$s: ... and a second run appended to it (O_APPEND)" \
        [ $rc = 0 -a "$(cat "$STORE/hello")" = "$(printf 'Hello World!\nHello World!')" ]
    timeout 120 "$VMM" --vhost --guest "$GUESTS/stream.elf" --cmdline "bytes=16M chunk=4K" > "$STORE/stream" \
        2> "$T/storage-stream.err"
    rc=$?
    if [ $rc = 0 ] && cmp -s "$STORE/stream" "$T/pattern16"; then
        ok "$s: 16 MiB stream with stdout a file on ext4, byte-exact"
    else
        not_ok "$s: 16 MiB stream with stdout a file on ext4, byte-exact (exit $rc, $(wc -c < "$STORE/stream") bytes)" \
            "$T/storage-stream.err"
    fi
    remount_store
    check "$s: ... and after a remount" cmp -s "$STORE/stream" "$T/pattern16"
    rm -f "$STORE/stream"

    # (b) Input from a file on ext4 (out of the page cache after a remount),
    # echoed back to a file on ext4: both queues on storage.
    head -c 1048576 /dev/urandom > "$STORE/in"
    remount_store
    timeout 120 "$VMM" --vhost --guest "$GUESTS/echo.elf" --cmdline bytes=1048576 < "$STORE/in" > "$STORE/echo" \
        2> "$T/storage-echo.err"
    rc=$?
    if [ $rc = 0 ] && cmp -s "$STORE/in" "$STORE/echo"; then
        ok "$s: 1 MiB from a file on ext4 comes back through the echo guest to a file on ext4, byte-exact"
    else
        not_ok "$s: 1 MiB from a file on ext4 comes back through the echo guest to a file on ext4 (exit $rc, $(wc -c < "$STORE/echo") bytes)" \
            "$T/storage-echo.err"
    fi
    rm -f "$STORE/in" "$STORE/echo"
    # The end of a regular file ends the input: the guest waits for a byte
    # that never comes; the kernel has read the file to its end (the file
    # position it moved), so the run ends idle, as in userspace mode.
    head -c 1000 /dev/urandom > "$STORE/short"
    timeout 120 "$VMM" --vhost --guest "$GUESTS/echo.elf" --cmdline bytes=1001 < "$STORE/short" > "$T/storage-eof.out" \
        2> "$T/storage-eof.err"
    rc=$?
    eof_ok() { [ $rc = 0 ] && cmp -s "$STORE/short" "$T/storage-eof.out" && [ "$(tail -2 "$T/storage-eof.err" | head -1)" = "$IDLE" ]; }
    if eof_ok; then ok "$s: the end of a file on ext4 ends the input, and the run ends idle, exit 0"; else
        not_ok "$s: the end of a file on ext4 ends the input, and the run ends idle, exit 0 (exit $rc)" "$T/storage-eof.err"; fi
    rm -f "$STORE/short"

    # (c) A full file system: the first write that finds no room stops
    # transmitq, with one kernel line; the bytes that did fit are the
    # stream's start; lost output is not a success.
    dd if=/dev/zero of="$STORE/fill" bs=1M 2> /dev/null
    seen=$(dmesg | wc -l)
    timeout 120 "$VMM" --vhost --guest "$GUESTS/stream.elf" --cmdline "bytes=16M chunk=4K" > "$STORE/full" \
        2> "$T/storage-full.err"
    rc=$?
    got=$(wc -c < "$STORE/full")
    check "$s: a full ext4 stops transmitq with ENOSPC, vmm exits 1 naming the device's failure" \
        stopped_with_enospc $rc "$seen" "$T/storage-full.err"
    check "$s: ... and the $got bytes that fit are the stream's start" \
        sh -c "[ $got -lt 16777216 ] && head -c $got '$T/pattern16' | cmp -s - '$STORE/full'"
    rm -f "$STORE/fill" "$STORE/full" "$STORE/hello" "$T/pattern16"
    umount "$STORE"
}

# Disks (vmm --disk, virtio-blk): the Linux guest (LINUX_KERNEL; its /init,
# e2e/guest-init, does what `e2e=disk step=...` says and prints what it finds
# on hvc0) on raw images in this VM's RAM. Each run with the disk in vmm
# (both engines, engine=io_uring and engine=sync) and in vhost mode (the
# console and the disk in the kernel: /dev/vhost-blk):
#   write    /dev/vda and a read-only /dev/vdb with their sizes and serials
#            (GET_ID); a write to vdb fails and its image is unchanged; ext4
#            on vda (EXT4_IMAGE, made by mkfs.ext4 on the host): files
#            written, synced, unmounted; e2fsck -fn on the image is clean
#   verify   a second vmm run on the same image: the same files
#   durable  a file written and synced, a marker on hvc0, vmm killed with
#            SIGKILL at the marker: the image holds the file, fsck clean
#   raw      64 MiB written to /dev/vda (O_DIRECT) and read back: sha256,
#            in the guest and of the image
# Every run here keeps this shell, vmm and its io_uring workers on one CPU
# (the nested fault, see the Linux section below). E2FSCK and DEBUGFS are
# e2fsprogs' binaries (run.sh carries them in).
DCMD="console=ttyS0 reboot=k panic=1 pci=off tsc=reliable tsc_early_khz=2000000 quiet e2e=disk"
# disk_run NAME VMM-ARGS...: the Linux guest on vmm with 256 MiB of RAM;
# $T/NAME.out (hvc0, its CRs dropped), .err, .rc. A run still going after
# 10 min dumps its state (SIGUSR1) into .err, and is killed 10 s later.
disk_run() {
    name=$1
    shift
    timeout -s USR1 -k 10 600 "$VMM" --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" --mem 256 "$@" \
        < /dev/null > "$T/$name.raw" 2> "$T/$name.err"
    echo $? > "$T/$name.rc"
    tr -d '\r' < "$T/$name.raw" > "$T/$name.out"
    rm -f "$T/$name.raw"
}
# disk_expect NAME DESCRIPTION: exit status 0, and hvc0 exactly $T/NAME.want.
disk_expect() {
    if [ "$(cat "$T/$1.rc")" = 0 ] && cmp -s "$T/$1.out" "$T/$1.want"; then ok "$2"; else
        not_ok "$2 (exit $(cat "$T/$1.rc"))" "$T/$1.out" "$T/$1.want" "$T/$1.err"; fi
}
# fsck_clean IMAGE NAME: e2fsck -fn finds nothing: exit 0, and its output
# is its five passes between its version line and its summary.
FSCK_PASSES='Pass 1: Checking inodes, blocks, and sizes
Pass 2: Checking directory structure
Pass 3: Checking directory connectivity
Pass 4: Checking reference counts
Pass 5: Checking group summary information'
fsck_clean() {
    "$E2FSCK" -fn "$1" > "$T/$2.fsck" 2>&1
    rc=$?
    [ $rc = 0 ] && [ "$(sed '1d;$d' "$T/$2.fsck")" = "$FSCK_PASSES" ] \
        && sed -n '$p' "$T/$2.fsck" | grep -q "^$1: [0-9]*/[0-9]* files "
}

# disk_bare: the bare-metal disk guests with the disk in the kernel
# (/dev/vhost-blk) against the same runs with the disk in vmm (whose output
# `cargo xtask test` asserts line for line): the disk guest (16 writes and
# reads in flight, flush, write-zeroes, discard, GET_ID; read-write and
# read-only), and each of hostile-disk's cases. Same stdout, exit status
# and image; where vmm's device needs a reset, the kernel stops the queue
# with the same words in its log (`vhost-blk: requestq: ...; queue
# stopped`) and vmm reports NEEDS_RESET.
disk_bare() {
    B=$T/disk-bare
    rm -rf "$B"
    mkdir -p "$B"
    # The tests' image: 64 KiB, sector 0 "vmm-disk" then bytes counting up.
    { printf 'vmm-disk'; awk 'BEGIN { for (i = 0; i < 504; i++) printf "%c", i % 256 }'; head -c $((65536 - 512)) /dev/zero; } > "$B/original"
    # dbare NAME MODE GUEST CMDLINE OPTIONS: one run on a fresh image.
    dbare() {
        flag=""
        [ "$2" = vhost ] && flag=--vhost
        cp "$B/original" "$B/$1-$2.img"
        dmesg -c > /dev/null
        timeout 120 "$VMM" $flag --mem "${MEM:-16}" --guest "$GUESTS/$3" --cmdline "$4" --disk "$B/$1-$2.img$5" \
            < /dev/null > "$B/$1-$2.out" 2> "$B/$1-$2.err"
        echo $? > "$B/$1-$2.rc"
        dmesg > "$B/$1-$2.dmesg"
    }
    dsame() { cmp -s "$B/$1-userspace.out" "$B/$1-vhost.out" && cmp -s "$B/$1-userspace.rc" "$B/$1-vhost.rc" \
        && cmp -s "$B/$1-userspace.img" "$B/$1-vhost.img"; }
    dshow() { for f in "$B/$1"-*.out "$B/$1"-*.err "$B/$1"-*.rc "$B/$1-vhost.dmesg"; do echo "    $f:"; head -c 1500 "$f" | sed 's/^/      /'; done; }
    for ro in "" ro; do
        for m in userspace vhost; do dbare "disk$ro" $m disk.elf "" "${ro:+,readonly=on},serial=bare"; done
        if dsame "disk$ro" && [ "$(cat "$B/disk$ro-vhost.rc")" = 0 ] && grep -q '^disk: serial: OK "bare"$' "$B/disk$ro-vhost.out"; then
            ok "disk (vhost): the bare-metal disk guest${ro:+ (readonly=on)}: the same output, exit 0 and image as with the disk in vmm"
        else
            not_ok "disk (vhost): the bare-metal disk guest${ro:+ (readonly=on)}: the same output, exit 0 and image as with the disk in vmm"
            dshow "disk$ro"
        fi
    done
    dbare list userspace hostile-disk.elf "case=?" ""
    cases=$(sed -n 's/^guest: hostile-disk: unknown case ?; cases: //p' "$B/list-userspace.err")
    check "disk (vhost): hostile-disk lists its cases" [ -n "$cases" ]
    for case in $cases; do
        opts=""
        [ "$case" = write-read-only ] && opts=",readonly=on"
        MEM=16
        [ "$case" = huge-chain ] && MEM=256
        for m in userspace vhost; do dbare "$case" $m hostile-disk.elf "case=$case" "$opts"; done
        why=$(sed -n 's/^virtio-mmio: queue 0: \(.*\); device needs reset$/\1/p' "$B/$case-userspace.err" \
            | sed 's/is outside guest memory/is outside the memory table/')
        if [ "$case" = head-reused ]; then
            # In vmm a head made available again while its request is in
            # flight is a driver bug; the kernel finishes each request
            # before it takes the next, so there is none in flight.
            echo "e2e: disk (vhost): hostile-disk case=head-reused: exit $(cat "$B/$case-vhost.rc"), stdout $(head -c 200 "$B/$case-vhost.out" | tr '\n' '|')"
            check "disk (vhost): hostile-disk case=head-reused: the run ends, the image unchanged" \
                [ "$(cat "$B/$case-vhost.rc")" != 124 ] && cmp -s "$B/original" "$B/$case-vhost.img"
            continue
        fi
        stopped() { [ -z "$why" ] || { grep -qF "vhost-blk: requestq: $why; queue stopped" "$B/$case-vhost.dmesg" \
            && grep -q '^virtio-mmio: vhost-blk: the kernel stopped the request queue (its log says why); device needs reset$' "$B/$case-vhost.err"; }; }
        if dsame "$case" && stopped && cmp -s "$B/original" "$B/$case-vhost.img"; then
            ok "disk (vhost): hostile-disk case=$case: as with the disk in vmm (exit $(cat "$B/$case-vhost.rc"))${why:+; the kernel: $why}"
        else
            not_ok "disk (vhost): hostile-disk case=$case: as with the disk in vmm" "$B/$case-userspace.err" "$B/$case-vhost.err" "$B/$case-vhost.dmesg"
            dshow "$case"
        fi
    done
    MEM=16
    rm -rf "$B"
}

# disk_mode io_uring|sync|vhost: vmm's flag and --disk option for a mode,
# and its words in check lines ($flag, $eng, $what).
disk_mode() {
    case $1 in
        vhost) flag=--vhost eng="" what="vhost (the disk in the kernel)" ;;
        *) flag="" eng=",engine=$1" what="engine=$1" ;;
    esac
}

disk_checks() {
    if [ -z "${E2FSCK:-}" ] || [ -z "${DEBUGFS:-}" ] || [ -z "${EXT4_IMAGE:-}" ]; then
        not_ok "$1: disk: E2FSCK, DEBUGFS and EXT4_IMAGE are set (the disk tests need them)"
        return
    fi
    d="$1: disk"
    taskset -p -c 0 $$ > /dev/null
    # The oracles, made here: the files the guest writes, a read-only image
    # of random bytes, the raw pattern's sum (DD_SHA256, from run.sh).
    rm -rf "$T/dk"
    mkdir -p "$T/dk/e2e/dir"
    yes abcdefghijklmno | head -c 4194304 > "$T/dk/e2e/big"
    echo "hello, disk" > "$T/dk/e2e/small"
    for i in $(seq 100); do echo "file $i" > "$T/dk/e2e/dir/f$i"; done
    (cd "$T/dk/e2e" && sha256sum big small && echo "$(ls dir | wc -l) files in dir, $(cat dir/f* | sha256sum)") > "$T/dk/sums"
    durable_sum=$(yes durable | head -c 1048576 | sha256sum | cut -d' ' -f1)
    big_sum=$(sha256sum < "$T/dk/e2e/big" | cut -d' ' -f1)
    rm -rf "$T/dk/e2e"
    ro=$T/dk/ro.img
    head -c 4194304 /dev/urandom > "$ro"
    ro_sum=$(sha256sum < "$ro" | cut -d' ' -f1)
    img=$T/dk/disk.img

    for e in io_uring sync vhost; do
        disk_mode $e
        w="$d, $what"
        n=disk-$e
        gunzip -c "$EXT4_IMAGE" > "$img"
        sectors=$(($(wc -c < "$img") / 512))

        disk_run "$n-write" $flag --disk "$img,serial=e2e-vda$eng" \
            --disk "$ro,readonly=on,serial=e2e-vdb$eng" --cmdline "$DCMD step=write"
        {
            echo "vda: $sectors sectors, ro 0, serial e2e-vda"
            echo "vdb: 8192 sectors, ro 1, serial e2e-vdb"
            echo "vdb: write refused: dd: error writing '/dev/vdb': Operation not permitted"
            echo "vdb: $ro_sum  -"
            echo "vda: ext4 mounted"
            echo "vda: synced"
            cat "$T/dk/sums"
            echo "vda: unmounted"
        } > "$T/$n-write.want"
        disk_expect "$n-write" "$w: the guest sees vda and a read-only vdb (sizes, serials); a write to vdb fails; ext4 on vda: files written, synced, unmounted"
        check "$w: the read-only image is unchanged (sha256)" [ "$(sha256sum < "$ro" | cut -d' ' -f1)" = "$ro_sum" ]
        if fsck_clean "$img" "$n-write"; then ok "$w: e2fsck -fn on the image is clean"; else
            not_ok "$w: e2fsck -fn on the image is clean (exit $rc)" "$T/$n-write.fsck"; fi

        disk_run "$n-verify" $flag --disk "$img$eng" --cmdline "$DCMD step=verify"
        { echo "vda: ext4 mounted"; cat "$T/dk/sums"; echo "vda: unmounted"; } > "$T/$n-verify.want"
        disk_expect "$n-verify" "$w: after a reboot (a second vmm run on the image) the files are the same"

        # Durability: killed at the marker, after the guest's sync.
        : > "$T/$n-durable.raw"
        "$VMM" $flag --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" --mem 256 --disk "$img$eng" \
            --cmdline "$DCMD step=durable" < /dev/null > "$T/$n-durable.raw" 2> "$T/$n-durable.err" &
        pid=$!
        i=0
        while ! grep -q 'e2e-durable: synced' "$T/$n-durable.raw" && [ $i -lt 3000 ] && kill -0 $pid 2> /dev/null; do
            sleep 0.1
            i=$((i + 1))
        done
        # Meanwhile the image is locked: a second vmm may not open it,
        # writable or read-only (its file system is mounted in the guest).
        for how in "" ",readonly=on"; do
            "$VMM" --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" --disk "$img$how" < /dev/null > /dev/null 2> "$T/$n-lock.err"
            rc=$?
            printf 'vmm: error: --disk %s: in use by another process (it holds a lock on the image)\n' "$img" > "$T/$n-lock.want"
            if [ $rc = 1 ] && cmp -s "$T/$n-lock.err" "$T/$n-lock.want"; then
                ok "$w: a second vmm given the image in use (--disk IMG$how) refuses it, exit 1"
            else
                not_ok "$w: a second vmm given the image in use (--disk IMG$how) refuses it, exit 1 (exit $rc)" "$T/$n-lock.err" "$T/$n-lock.want"
            fi
        done
        kill -9 $pid 2> /dev/null
        wait $pid
        echo $? > "$T/$n-durable.rc"
        tr -d '\r' < "$T/$n-durable.raw" > "$T/$n-durable.out"
        printf 'vda: ext4 mounted\ne2e-durable: synced\n' > "$T/$n-durable.want"
        killed_ok() { [ "$(cat "$T/$n-durable.rc")" = 137 ] && cmp -s "$T/$n-durable.out" "$T/$n-durable.want"; }
        if killed_ok; then ok "$w: the guest wrote a file, synced, said so; vmm killed (SIGKILL) at its marker"; else
            not_ok "$w: the guest wrote a file, synced, said so; vmm killed (SIGKILL) at its marker (exit $(cat "$T/$n-durable.rc"))" \
                "$T/$n-durable.out" "$T/$n-durable.err"; fi
        # The journal the guest committed, replayed by e2fsck; besides
        # that, e2fsck may only set the superblock's free block and inode
        # counts (ext4 keeps them in memory and writes them at unmount);
        # then e2fsck -fn finds nothing.
        "$E2FSCK" -fy "$img" > "$T/$n-durable.replay" 2>&1
        rc=$?
        replay_ok() {
            [ $rc = 1 ] && [ "$(sed -n 2p "$T/$n-durable.replay")" = "$img: recovering journal" ] \
                && [ "$(sed '1,2d;$d' "$T/$n-durable.replay" | grep -v '^Pass [1-5]: ' | grep -v '^Fix? yes$' | grep -v '^$' \
                    | grep -v '^Free \(blocks\|inodes\) count wrong ([0-9]*, counted=[0-9]*)\.$')" = "$img: ***** FILE SYSTEM WAS MODIFIED *****" ]
        }
        if replay_ok; then ok "$w: ... e2fsck replays the journal, and fixes no more than the free counts"; else
            not_ok "$w: ... e2fsck replays the journal, and fixes no more than the free counts (exit $rc)" "$T/$n-durable.replay"; fi
        if fsck_clean "$img" "$n-durable"; then ok "$w: ... the image is clean after its journal's replay (e2fsck -fn)"; else
            not_ok "$w: ... the image is clean after its journal's replay (e2fsck -fn, exit $rc)" "$T/$n-durable.replay" "$T/$n-durable.fsck"; fi
        got=$("$DEBUGFS" -R "cat /e2e/durable" "$img" 2> /dev/null | sha256sum | cut -d' ' -f1)
        got_big=$("$DEBUGFS" -R "cat /e2e/big" "$img" 2> /dev/null | sha256sum | cut -d' ' -f1)
        check "$w: ... and holds the synced file, byte-exact, and the earlier ones" [ "$got" = "$durable_sum" -a "$got_big" = "$big_sum" ]

        disk_run "$n-raw" $flag --disk "$img$eng" --cmdline "$DCMD step=raw mib=64"
        printf 'vda: wrote 64 MiB\nvda: read back %s  -\n' "${DD_SHA256:?}" > "$T/$n-raw.want"
        disk_expect "$n-raw" "$w: 64 MiB written raw to /dev/vda (O_DIRECT) read back the same (sha256)"
        check "$w: ... and the image holds them (sha256)" [ "$(sha256sum < "$img" | cut -d' ' -f1)" = "$DD_SHA256" ]
        rm -f "$img"
    done
    # A block device as the image, opened O_DIRECT (direct=on): the test
    # kernel's 64 MiB RAM disk, filled raw by the guest.
    if [ -b /dev/ram0 ]; then
        for e in io_uring sync vhost; do
            disk_mode $e
            w="$d, /dev/ram0 as the image, direct=on, $what"
            n=disk-ram0-$e
            dd if=/dev/zero of=/dev/ram0 bs=1M count=64 2> /dev/null
            disk_run "$n" $flag --disk "/dev/ram0,direct=on$eng" --cmdline "$DCMD step=raw mib=64"
            printf 'vda: wrote 64 MiB\nvda: read back %s  -\n' "$DD_SHA256" > "$T/$n.want"
            disk_expect "$n" "$w: 64 MiB written raw to /dev/vda read back the same (sha256)"
            check "$w: ... and /dev/ram0 holds them (sha256)" [ "$(sha256sum < /dev/ram0 | cut -d' ' -f1)" = "$DD_SHA256" ]
        done
    fi
    # DISCARD and WRITE_ZEROES on an image on ext4 (the RAM disk again),
    # which has fallocate's PUNCH_HOLE and ZERO_RANGE: 4 MiB of the pattern,
    # the first MiB discarded (a hole in the image), the third zeroed.
    if [ -b /dev/ram0 ]; then
        gunzip -c "$EXT4_IMAGE" > /dev/ram0
        mkdir -p /mnt/dk
        mount -t ext4 /dev/ram0 /mnt/dk
        zero=$(head -c 1048576 /dev/zero | sha256sum)
        pat=$(yes abcdefghijklmno | head -c 1048576 | sha256sum)
        four=$({ head -c 1048576 /dev/zero; yes abcdefghijklmno | head -c 1048576; head -c 1048576 /dev/zero
            yes abcdefghijklmno | head -c 1048576; } | sha256sum | cut -d' ' -f1)
        for e in io_uring sync vhost; do
            disk_mode $e
            w="$d, an image on ext4, $what"
            n=disk-trim-$e
            timg=/mnt/dk/trim.img
            rm -f "$timg"
            truncate -s 8M "$timg"
            disk_run "$n" $flag --disk "$timg$eng" --cmdline "$DCMD step=trim"
            printf 'vda: wrote 4 MiB\nvda: discarded 1 MiB at 0\nvda: zeroed 1 MiB at 2 MiB\nvda: MiB 0: %s\nvda: MiB 1: %s\nvda: MiB 2: %s\nvda: MiB 3: %s\n' \
                "$zero" "$pat" "$zero" "$pat" > "$T/$n.want"
            disk_expect "$n" "$w: DISCARD and WRITE_ZEROES: the guest reads zeros there, the pattern elsewhere"
            check "$w: ... the image has the same 4 MiB (sha256)" [ "$(head -c 4194304 "$timg" | sha256sum | cut -d' ' -f1)" = "$four" ]
            blocks=$(stat -c %b "$timg")
            check "$w: ... and the discarded MiB is a hole: 3 MiB allocated ($blocks blocks of 512)" [ "$blocks" = 6144 ]
            rm -f "$timg"
        done
        umount /mnt/dk
        # The same on an image in this VM's RAM (ramfs: no fallocate at
        # all): the discard does nothing (a hint), WRITE_ZEROES (which Linux
        # sends allowing unmap) writes the zeroes; no I/O error.
        for e in io_uring vhost; do
            disk_mode $e
            timg=$T/dk/trim.img
            truncate -s 8M "$timg"
            n=disk-trim-ramfs-$e
            disk_run "$n" $flag --disk "$timg$eng" --cmdline "$DCMD step=trim"
            printf 'vda: wrote 4 MiB\nvda: discarded 1 MiB at 0\nvda: zeroed 1 MiB at 2 MiB\nvda: MiB 0: %s\nvda: MiB 1: %s\nvda: MiB 2: %s\nvda: MiB 3: %s\n' \
                "$pat" "$pat" "$zero" "$pat" > "$T/$n.want"
            disk_expect "$n" "$d, an image on ramfs (no fallocate), $what: the discard leaves the data, WRITE_ZEROES writes zeroes"
            no_ioerr() { ! grep -q 'I/O error\|IOERR' "$T/$n.err"; }
            if no_ioerr; then ok "$d, an image on ramfs, $what: ... no I/O error reported"; else
                not_ok "$d, an image on ramfs, $what: ... no I/O error reported" "$T/$n.err"; fi
            rm -f "$timg"
        done
    fi
    taskset -p -c "$(cat /sys/devices/system/cpu/online)" $$ > /dev/null
}

# The disk benchmark (e2e/diskbench.c in the guest, O_DIRECT on /dev/vda):
# 1 MiB sequential write and read over 64 MiB, 4 KiB random reads at queue
# depth 1 and 16 and writes at 16, 3 s each; on vmm with each engine and on
# QEMU microvm (aio=io_uring) with the same image file, kernel and initramfs.
# Per request: vmm's exits, kicks and interrupts over the run, less those of
# a run that boots and reboots without the benchmark, over the requests vmm
# counted (--stats). Figures, not assertions.
bench_done() { [ "$(cat "$T/$1.rc")" = 0 ] && grep -qx 'diskbench: done' "$T/$1.out"; }
disk_bench() {
    taskset -p -c 0 $$ > /dev/null
    bimg=$T/dk/bench.img
    rm -f "$bimg"
    truncate -s 64M "$bimg"
    disk_run bench-idle --disk "$bimg" --stats --cmdline "$DCMD step=idle"
    printf 'vda: 131072 sectors\n' > "$T/bench-idle.want"
    disk_expect bench-idle "disk bench: the baseline run boots, sees vda, reboots"
    # delta NAME COUNTER: a --stats counter of NAME less the baseline's.
    delta() { awk -v a="$(stat_value "$1" "$2")" -v b="$(stat_value bench-idle "$2")" 'BEGIN { print a - b }'; }
    per() { awk -v n="$1" -v r="$2" 'BEGIN { if (r > 0) printf "%.2f", n / r; else print "?" }'; }
    for e in io_uring sync vhost; do
        disk_mode $e
        n=bench-$e
        disk_run "$n" $flag --disk "$bimg$eng" --stats --cmdline "$DCMD step=bench mib=64 secs=3"
        check "disk bench, $what: runs to its end, exit 0" bench_done "$n"
        sed -n "s/^diskbench: \(.*:.*\)/bench: disk, vmm $what: \1/p" "$T/$n.out"
        reqs=$(sed -n 's/.*, \([0-9]*\) requests$/\1/p' "$T/$n.out" | awk '{ s += $1 } END { print s + 0 }')
        # vmm does not see the kernel's requests: per request of the guest's count.
        dreq=$(delta "$n" "disk requests")
        [ $e = vhost ] && dreq=$reqs
        wakeups=""
        [ $e = vhost ] && wakeups=", $(per "$(stat_value "$n" "worker wake-ups")" "$dreq") worker wake-ups"
        echo "bench: disk, vmm $what: per request (this run less one without the benchmark: $dreq requests by vmm's" \
            "count, $reqs by the guest's): $(per "$(delta "$n" exits)" "$dreq") userspace exits" \
            "($(per "$(delta "$n" "queue notifications")" "$dreq") of them QueueNotify)," \
            "$(per "$(delta "$n" "ioeventfd notifications")" "$dreq") kicks (ioeventfd), $(per "$(delta "$n" "used notifications")" "$dreq") interrupts$wakeups;" \
            "$(grep '^exits:' "$T/$n.err")"
    done
    # ratio A B: bench-A's figures over bench-B's, phase by phase.
    ratio() {
        for p in "seqwrite 1M" "seqread 1M" "randread 4K QD1" "randread 4K QD16" "randwrite 4K QD16"; do
            a=$(sed -n "s/^diskbench: $p: .* = \([0-9.]*\) \(MiB\/s\|IOPS\).*/\1/p" "$T/bench-$1.out")
            b=$(sed -n "s/^diskbench: $p: .* = \([0-9.]*\) \(MiB\/s\|IOPS\).*/\1/p" "$T/bench-$2.out")
            la=$(sed -n "s/^diskbench: $p: .*latency avg \([0-9]*\) us.*/\1/p" "$T/bench-$1.out")
            lb=$(sed -n "s/^diskbench: $p: .*latency avg \([0-9]*\) us.*/\1/p" "$T/bench-$2.out")
            printf '%s %s|' "$p" "$(awk -v a="$a" -v b="$b" -v la="$la" -v lb="$lb" 'BEGIN {
                if (a > 0 && b > 0) printf "%.2fx", a / b; else printf "?"
                if (la > 0 && lb > 0) printf " (latency %.2fx)", la / lb }')"
        done | sed "s/|$//; s/|/, /g"
        echo
    }
    echo "bench: disk, vhost / engine=io_uring: $(ratio vhost io_uring)"
    if [ -n "${QEMU:-}" ] && [ -x "$QEMU" ]; then
        timeout 600 "$QEMU" -M microvm,acpi=off -accel kvm -cpu host -m 256 -smp 1 -nodefaults -no-user-config \
            -display none -no-reboot -serial "file:$T/bench-qemu.err" \
            -chardev stdio,id=hvc,signal=off -device virtio-serial-device -device virtconsole,chardev=hvc \
            -drive "if=none,id=d,file=$bimg,format=raw,aio=io_uring" -device virtio-blk-device,drive=d \
            -kernel "$LINUX_KERNEL" -initrd "$LINUX_INITRD" \
            -append "$(echo "$DCMD" | sed 's/reboot=k/reboot=t/') step=bench mib=64 secs=3" \
            < /dev/null > "$T/bench-qemu.raw"
        echo $? > "$T/bench-qemu.rc"
        tr -d '\r' < "$T/bench-qemu.raw" > "$T/bench-qemu.out"
        check "disk bench on QEMU microvm (aio=io_uring): runs to its end, exit 0" bench_done bench-qemu
        sed -n 's/^diskbench: \(.*:.*\)/bench: disk, QEMU microvm aio=io_uring: \1/p' "$T/bench-qemu.out"
        # vmm against QEMU, phase by phase (targets: IOPS and MiB/s at
        # least QEMU's, QD1 latency no worse).
        for e in io_uring sync vhost; do
            disk_mode $e
            echo "bench: disk, vmm $what / QEMU microvm: $(ratio $e qemu)"
        done
    fi
    rm -f "$bimg"
    taskset -p -c "$(cat /sys/devices/system/cpu/online)" $$ > /dev/null
}

if [ "${E2E_ONLY:-}" = stall ]; then
    # The nested stall, caught in the act: a Linux guest streams 16 MiB to
    # hvc0 in vhost mode, vmm on CPU 0 and the reader of its stdout free to
    # run on CPU 1 (the recipe that stalled 3 runs of 27). When the output
    # stops growing for 5 s, SIGUSR1 dumps the device state, which is
    # printed, and the run is killed.
    runs=${STALL_RUNS:-20}
    stalls=0
    i=0
    while [ $i -lt "$runs" ] && [ -n "${LINUX_KERNEL:-}" ]; do
        i=$((i + 1))
        : > "$T/stall.out"
        taskset -c 0 "$VMM" --vhost --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" \
            --cmdline "console=ttyS0 reboot=k panic=1 pci=off tsc=reliable tsc_early_khz=2000000 quiet e2e=dd mib=16" \
            < /dev/null 2> "$T/stall.err" | cat > "$T/stall.out" &
        sleep 1
        pid=$(pidof vmm)
        last=-1
        still=0
        while kill -0 "$pid" 2> /dev/null; do
            now=$(wc -c < "$T/stall.out")
            if [ "$now" = "$last" ]; then still=$((still + 1)); else still=0; fi
            last=$now
            if [ $still -ge 5 ]; then
                stalls=$((stalls + 1))
                # Each thread's name, state and CPU time (user + system
                # ticks), twice a second apart: which ran, which slept.
                for k in 1 2; do
                    for t in /proc/"$pid"/task/*; do
                        echo "stall:   thread $(cat "$t/comm"): $(sed 's/.*) //' "$t/stat" | awk '{ print "state " $1 ", ticks " $12 + $13 ", cpu " $37 }')"
                    done
                    sleep 1
                done
                kill -USR1 "$pid"
                sleep 2
                echo "stall: run $i stalled after $now bytes on hvc0; the dump:"
                sed -n '/=== device state/,$p' "$T/stall.err" | sed 's/^/stall:   /'
                kill -9 "$pid"
                break
            fi
            sleep 1
        done
        wait
        echo "stall: run $i: $(wc -c < "$T/stall.out") bytes; $(tail -1 "$T/stall.err")"
    done
    echo "stall: $stalls of $i runs stalled"
elif [ "${E2E_ONLY:-}" = linux ] || [ "${E2E_ONLY:-}" = disk ] || [ "${E2E_ONLY:-}" = ports ]; then
    :
elif [ "${E2E_ONLY:-}" = storage ]; then
    [ "$mode" != module ] || check "module: insmod (storage)" insmod "$MODULE_KO"
    abi_checks
    storage_checks "$mode"
    [ "$mode" != module ] || check "module: rmmod after the storage tests" rmmod vhost_console
elif [ "$mode" = module ]; then
    : "${MODULE_KO:?}"
    check "module: no vhost-console before insmod" devices_absent
    for round in 1 2; do
        check "module: insmod (round $round)" insmod "$MODULE_KO"
        check "module: devices appear (round $round)" devices_present
        hello_runs "module-$round"
        check "module: rmmod (round $round)" rmmod vhost_console
        check "module: devices gone (round $round)" devices_absent
    done
    # The owner killed mid-stream: its files close, the worker stops, and
    # nothing keeps the module busy.
    # The ABI program's abuse and races, then the module must unload: a
    # leaked file, eventfd or mm reference would keep it busy.
    check "module: insmod (vhost-abi)" insmod "$MODULE_KO"
    abi_checks
    check "module: rmmod after vhost-abi" rmmod vhost_console
    check "module: insmod (kill test)" insmod "$MODULE_KO"
    "$VMM" --vhost --guest "$GUESTS/stream.elf" --cmdline "bytes=1024M" > /dev/null 2> "$T/kill.err" &
    sleep 1
    if kill -0 $!; then ok "module: the stream is running"; else not_ok "module: the stream is running" "$T/kill.err"; fi
    kill -9 $!
    wait $! 2> /dev/null
    check "module: rmmod after the owner was killed mid-stream" rmmod vhost_console
    check "module: devices gone after the kill test" devices_absent
    # The same with a Linux guest streaming to hvc0 (both queues in the
    # kernel, receiveq reading a pipe, call and err eventfds polled by the
    # device-event thread): killed once 64 KiB are out.
    if [ -f "${LINUX_KERNEL:-}" ]; then
        check "module: insmod (Linux kill test)" insmod "$MODULE_KO"
        # Created before the loop below reads its size.
        : > "$T/lkill.out"
        : | taskset -c 0 "$VMM" --vhost --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" \
            --cmdline "console=ttyS0 reboot=k panic=1 pci=off tsc=reliable tsc_early_khz=2000000 quiet e2e=dd" \
            > "$T/lkill.out" 2> "$T/lkill.err" &
        pid=$!
        i=0
        while [ "$(wc -c < "$T/lkill.out")" -lt 65536 ] && [ $i -lt 120 ] && kill -0 $pid 2> /dev/null; do
            sleep 1
            i=$((i + 1))
        done
        if kill -0 $pid 2> /dev/null && [ "$(wc -c < "$T/lkill.out")" -ge 65536 ]; then
            ok "module: a Linux guest streams to hvc0 in vhost mode"
        else
            not_ok "module: a Linux guest streams to hvc0 in vhost mode" "$T/lkill.err"
        fi
        kill -9 $pid
        wait $pid 2> /dev/null
        rm -f "$T/lkill.out"
        check "module: rmmod after a Linux guest's owner was killed mid-stream" rmmod vhost_console
        check "module: devices gone after the Linux kill test" devices_absent
    fi
    check "module: insmod (storage)" insmod "$MODULE_KO"
    storage_checks module
    check "module: rmmod after the storage tests" rmmod vhost_console
else
    check "builtin: /dev/vhost-console and /dev/vmm-console exist" devices_present
    abi_checks
    hello_runs builtin
    run hello64-vhost --vhost --guest "$GUESTS/hello64.elf"
    expect_run hello64-vhost "x86-64 hello in vhost mode" "Hello World!
" "=== Vhost acceleration enabled ===
$LIFECYCLE
$TAIL"

    # Notifications never reach userspace in vhost mode: the exits are the
    # 11 reads and 29 writes the driver makes (its QueueNotify goes to the
    # ioeventfd) plus the final HLT: 41, if the kernel used the buffer
    # before the guest looked. If the guest went to sleep for the used-buffer
    # interrupt first (the usual case), add its HLT, the interrupt the VMM
    # injects when the call eventfd fires, and the InterruptStatus read and
    # InterruptACK write after it: 44. The kernel's call count is not
    # asserted (it may signal after the guest saw the used index).
    # A terminal as the output: the kernel refuses it (it could block the
    # worker), so the VMM relays through a pipe. run.sh checks that the
    # console shows exactly the guest's line between the two markers.
    if [ -c /dev/console ] && [ -t 1 ]; then
        echo "e2e: tty-hello-start"
        "$VMM" --vhost > /dev/console 2> "$T/tty.err"
        rc=$?
        echo "e2e: tty-hello-end"
        check "vhost mode with a terminal as stdout: relayed, clean exit" \
            [ $rc = 0 -a "$(grep -c '^\[KVM_EXIT_HLT: program halted normally\]$' "$T/tty.err")" = 1 ]
    fi
    run stats-user --stats
    echo "bench: hello userspace: $(time_us stats-user) us, $(stat_value stats-user exits) exits ($(stat_value stats-user "queue notifications") of them QueueNotify)"
    run stats-vhost --vhost --stats
    echo "bench: hello vhost: $(time_us stats-vhost) us, $(stat_value stats-vhost exits) exits ($(stat_value stats-vhost "queue notifications") of them QueueNotify)"
    # Counts that depend on timing: the calls, and the worker's wake-ups.
    check "vhost mode: --stats counts the kernel worker's wake-ups" grep -q '^worker wake-ups: [0-9][0-9]*$' "$T/stats-vhost.err"
    sed -e '/^used notifications: /d' -e '/^worker wake-ups: /d' "$T/stats-vhost.err" > "$T/stats-vhost.err2" && mv "$T/stats-vhost.err2" "$T/stats-vhost.err"
    if grep -q '^interrupts injected: ' "$T/stats-vhost.err"; then
        counts="exits: 44 (mmio 42, io 0, hlt 2, other 0)
mmio: 12 reads, 30 writes
queue notifications: 0
ioeventfd notifications: 1
interrupts injected: 1"
    else
        counts="exits: 41 (mmio 40, io 0, hlt 1, other 0)
mmio: 11 reads, 29 writes
queue notifications: 0
ioeventfd notifications: 1"
    fi
    echo "bench: hello vhost: the guest $(grep -q '^interrupts injected: ' "$T/stats-vhost.err" && echo slept for its interrupt || echo found its buffer used at once)"
    expect_run stats-vhost "vhost mode: no userspace exit for notifications" "Hello World!
" "=== Vhost acceleration enabled ===
$LIFECYCLE
=== Statistics ===
$counts
peak RSS: N KiB
$TAIL"

    # Input in the kernel: the VMM hands its stdin (a pipe) to the worker,
    # which reads it into the echo guest's receive buffers; the guest writes
    # the bytes back on transmitq, also in the kernel.
    printf 'hello\n' | "$VMM" --vhost --guest "$GUESTS/echo.elf" --cmdline bytes=6 --stats > "$T/echo-vhost.out" 2> "$T/echo-vhost.err"
    echo $? > "$T/echo-vhost.rc"
    check "vhost mode: piped input comes back through the echo guest, no QueueNotify exit" \
        [ "$(cat "$T/echo-vhost.rc")" = 0 -a "$(cat "$T/echo-vhost.out")" = hello \
        -a "$(stat_value echo-vhost "queue notifications")" = 0 \
        -a "$(tail -2 "$T/echo-vhost.err" | head -1)" = '[KVM_EXIT_HLT: program halted normally]' ]
    # A regular file as input, and the guest still waiting for more when it
    # ends: both modes end the run with the same line.
    printf 'file input\n' > "$T/echo-file.in"
    for m in user vhost; do
        flag=""
        [ $m = vhost ] && flag=--vhost
        "$VMM" $flag --guest "$GUESTS/echo.elf" < "$T/echo-file.in" > "$T/echo-file-$m.out" 2> "$T/echo-file-$m.err"
        echo $? > "$T/echo-file-$m.rc"
        check "$m mode: a regular file as input is echoed and the run ends idle, exit 0" \
            [ "$(cat "$T/echo-file-$m.rc")" = 0 -a "$(cat "$T/echo-file-$m.out")" = "file input" \
            -a "$(tail -2 "$T/echo-file-$m.err" | head -1)" = "$IDLE" ]
    done
    # 1 MiB, more than the guest's 16 buffers of 1 KiB and the pipe hold.
    head -c 1048576 /dev/urandom > "$T/echo-1m.in"
    "$VMM" --vhost --guest "$GUESTS/echo.elf" --cmdline bytes=1048576 < "$T/echo-1m.in" > "$T/echo-1m.out" 2> "$T/echo-1m.err"
    echo $? > "$T/echo-1m.rc"
    echo_1m_ok() { [ "$(cat "$T/echo-1m.rc")" = 0 ] && cmp -s "$T/echo-1m.in" "$T/echo-1m.out"; }
    if echo_1m_ok; then ok "vhost mode: 1 MiB of input comes back byte-exact"; else
        not_ok "vhost mode: 1 MiB of input comes back byte-exact (exit $(cat "$T/echo-1m.rc"))" "$T/echo-1m.err"; fi
    rm -f "$T/echo-1m.in" "$T/echo-1m.out"

    for m in user vhost; do
        flag=""
        [ $m = vhost ] && flag=--vhost
        run "vmmcons-$m" $flag --console-out /dev/vmm-console
        check "$m mode: --console-out /dev/vmm-console leaves stdout empty" [ "$(cat "$T/vmmcons-$m.rc")" = 0 -a ! -s "$T/vmmcons-$m.out" ]
        cat /dev/vmm-console > "$T/vmmcons-$m.cat"
        check "$m mode: cat /dev/vmm-console shows the guest's bytes" [ "$(cat "$T/vmmcons-$m.cat")" = "Hello World!" ]
        check "$m mode: a second cat finds /dev/vmm-console drained" [ -z "$(cat /dev/vmm-console)" ]
    done

    # The stream guest, 64 MiB in 4 KiB buffers (16384, 256 per MiB), in
    # both modes with EVENT_IDX (offered by both devices, taken by the
    # guest) and without it (--no-event-idx: the flags words); vhost also
    # with a 50 µs busy-poll window for the kernel worker.
    for m in user user-noevent vhost vhost-noevent vhost-poll50; do
        case $m in
            user) flag="" ;;
            user-noevent) flag=--no-event-idx ;;
            vhost) flag=--vhost ;;
            vhost-noevent) flag="--vhost --no-event-idx" ;;
            *) flag="--vhost --poll-us 50" ;;
        esac
        run "stream-$m" $flag --guest "$GUESTS/stream.elf" --cmdline "bytes=64M chunk=4K" --stats
        sha256sum < "$T/stream-$m.out" | cut -d' ' -f1 > "$T/stream-$m.sum"
        rm -f "$T/stream-$m.out"
        check "$m: 64 MiB stream, byte-exact (sha256)" [ "$(cat "$T/stream-$m.rc")" = 0 -a "$(cat "$T/stream-$m.sum")" = "${STREAM_SHA256:?}" ]
        us=$(time_us "stream-$m")
        exits=$(stat_value "stream-$m" exits)
        notify=$(stat_value "stream-$m" "queue notifications")
        kicks=$(stat_value "stream-$m" "ioeventfd notifications")
        used=$(stat_value "stream-$m" "used notifications")
        wakeups=$(stat_value "stream-$m" "worker wake-ups")
        echo "bench: stream $m 64 MiB in ${us} us = $(awk "BEGIN { printf \"%.1f\", 64 / ($us / 1e6) }") MiB/s;" \
            "userspace exits $exits ($(awk "BEGIN { printf \"%.1f\", $exits / 64 }")/MiB);" \
            "kicks $(( ${notify:-0} + ${kicks:-0} )) ($(awk "BEGIN { printf \"%.1f\", (${notify:-0} + ${kicks:-0}) / 64 }")/MiB);" \
            "calls ${used:-0} ($(awk "BEGIN { printf \"%.1f\", ${used:-0} / 64 }")/MiB);" \
            "worker wake-ups ${wakeups:--} ($(awk "BEGIN { printf \"%.1f\", ${wakeups:-0} / 64 }")/MiB)"
    done
    check "vhost mode: zero QueueNotify exits for the stream" [ "$(stat_value stream-vhost "queue notifications")" = 0 ]
    check "stream output is byte-identical in both modes" cmp -s "$T/stream-user.sum" "$T/stream-vhost.sum"
    # With EVENT_IDX the guest asks for an interrupt when half its 128-entry
    # ring is used, and kicks only past the device's avail_event: at most one
    # of each per 64 buffers (the issue's target), 4 per MiB, in steady
    # streaming; the kernel's worker drains asynchronously, so it is the one
    # that can meet it.
    # Kicks depend on scheduling: the guest kicks when its buffer passes the
    # avail_event the worker sets once it has drained the ring, so a worker
    # that keeps up takes a kick per buffer (a host loaded by other nested
    # VMs gave 8 and 39 kicks per MiB, against 2 unloaded): a bench line.
    # Interrupts do not: the guest asks for one (used_event) only when its
    # ring is full, for when half of it is used, so at most one per 64
    # buffers, whatever the worker's pace.
    echo "bench: vhost mode, EVENT_IDX: $(stat_value stream-vhost "ioeventfd notifications") kicks and" \
        "$(stat_value stream-vhost "used notifications") interrupts for 16384 buffers (target: at most one per 64, 264)"
    per64() { awk -v n="$(stat_value stream-vhost "$1")" 'BEGIN { exit !(n <= 16384 / 64 + 8) }'; }
    check "vhost mode, EVENT_IDX: at most one interrupt per 64 buffers" per64 "used notifications"
    # 262144 buffers: every ring index wraps four times, and a torn index
    # update (seen once: a byte-wise used.idx store) has thousands of chances.
    "$VMM" --vhost --guest "$GUESTS/stream.elf" --cmdline "bytes=1024M" > /dev/null 2> "$T/stream-long.err"
    rc=$?
    check "vhost mode: 1 GiB stream completes, indexes wrapping" [ $rc = 0 -a "$(grep -c '^guest:' "$T/stream-long.err")" = 0 ]
    echo "bench: vhost / userspace throughput: $(awk "BEGIN { printf \"%.2f\", $(time_us stream-user) / $(time_us stream-vhost) }")x"
    rm -f "$T"/stream-*.out

    # Hostile drivers against the kernel: each stops the queue with one log
    # line, signals the err eventfd, and the VMM reports DEVICE_NEEDS_RESET.
    # Input waits in vmm's stdin (a pipe the kernel reads), so that the
    # receiveq cases have something to refuse: none of it may be taken.
    printf 'hi\n' > "$T/hi"
    while IFS='|' read -r mem cmdline queue kernel_line; do
        [ -n "$cmdline" ] || continue
        seen=$(dmesg | wc -l)
        run hostile --vhost --mem "$mem" --guest "$GUESTS/hostile.elf" --cmdline "$cmdline" < "$T/hi"
        expect_fail hostile "vhost hostile $cmdline: NEEDS_RESET, the guest halts, exit 1" "" "=== Vhost acceleration enabled ===
$LIFECYCLE
virtio-mmio: vhost: the kernel stopped a queue (its log says why); device needs reset
guest: hostile: status 0x0000004f
$HLT
$DEVICE_FAILED
$GUEST_FAILED"
        check "vhost hostile $cmdline: kernel says why" sh -c "dmesg | tail -n +$((seen + 1)) | grep -qF 'vhost-console: $queue: $kernel_line; queue stopped'"
    done <<'CASES'
16|case=desc-beyond-ram|transmitq|descriptor 0: buffer 0x40000000+0x10 is outside the memory table
16|case=desc-overflow|transmitq|descriptor 0: buffer 0xfffffffffffffff0+0x100 is outside the memory table
16|case=next-out-of-range|transmitq|descriptor 0 chains to 19, beyond the queue size 16
16|case=desc-loop|transmitq|descriptor chain from 0 is longer than the queue size 16 (a loop)
16|case=chain-too-long|transmitq|descriptor chain from 0 is longer than the queue size 16 (a loop)
16|case=write-only-desc|transmitq|descriptor 0 is device-writable on transmitq
16|case=head-out-of-range|transmitq|available ring names descriptor 17, beyond the queue size 16
16|case=avail-idx-jump|transmitq|available index 17 is more than the queue size 16 ahead of 0
16|case=rx-read-only|receiveq|descriptor 0 is device-readable on receiveq
16|case=rx-beyond-ram|receiveq|descriptor 0: buffer 0x40000000+0x40 is outside the memory table
256|case=rx-huge-chain descs=32 len=131076K|receiveq|descriptor chain from 0 holds more than 4 GiB
CASES
    # A reset after the kernel stopped a queue: Status reads 0 (the device
    # is new); QueueReady = 0 detaches the ring. The VMM took the kernel's
    # error while the guest made its 2000 register reads.
    seen=$(dmesg | wc -l)
    run hostile-reset-after-error --vhost --guest "$GUESTS/hostile.elf" --cmdline "case=reset-after-error"
    expect_fail hostile-reset-after-error "vhost: Status reads 0 after a reset that follows a kernel error" "" \
        "=== Vhost acceleration enabled ===
$LIFECYCLE
virtio-mmio: vhost: the kernel stopped a queue (its log says why); device needs reset
guest: hostile: status 0x00000000
$HLT
$DEVICE_FAILED
$GUEST_FAILED"
    check "vhost: ... and the kernel had stopped the queue before the reset" sh -c "dmesg | tail -n +$((seen + 1)) | \
        grep -qF 'vhost-console: transmitq: descriptor 0: buffer 0x40000000+0x10 is outside the memory table; queue stopped'"
    run hostile-disable-then-post --vhost --guest "$GUESTS/hostile.elf" --cmdline "case=disable-then-post"
    expect_fail hostile-disable-then-post "vhost: a buffer posted after QueueReady = 0 is not touched" "" \
        "=== Vhost acceleration enabled ===
$LIFECYCLE
guest: hostile: used 0x00000000
$HLT
$GUEST_FAILED"
    # DEVICE_NEEDS_RESET set by the VMM (a status bit cleared after
    # DRIVER_OK) stops the kernel's side too: a buffer posted afterwards
    # stays unused, as in userspace mode.
    run hostile-needs-reset --vhost --guest "$GUESTS/hostile.elf" --cmdline "case=needs-reset-then-post"
    expect_fail hostile-needs-reset "vhost: after DEVICE_NEEDS_RESET the kernel takes no buffer" "" \
        "=== Vhost acceleration enabled ===
$LIFECYCLE
virtio-mmio: invalid status write 0x07 over 0x0f (bits can only be added; 0 resets); device needs reset
guest: hostile: used 0x00000000, status 0x0000004f
$HLT
$DEVICE_FAILED
$GUEST_FAILED"
    # DRIVER_OK with no queue enabled goes live, as in userspace mode: the
    # kernel gets only the queues the driver enabled.
    run hostile-no-queues --vhost --guest "$GUESTS/hostile.elf" --cmdline "case=no-queues"
    expect_fail hostile-no-queues "vhost: DRIVER_OK without a queue enabled goes live" "" \
        "=== Vhost acceleration enabled ===
$LIFECYCLE
guest: hostile: status 0x0000000f
$HLT
$GUEST_FAILED"
    # Odd but valid receive buffers: a zero-length one is used empty and
    # the next takes the input; a 64 MiB chain takes it in its first buffer.
    for cmdline in case=rx-zero-length case=rx-huge-chain; do
        run hostile-rx --vhost --guest "$GUESTS/hostile.elf" --cmdline "$cmdline" < "$T/hi"
        expect_run hostile-rx "vhost $cmdline: the input arrives" "hi
" "=== Vhost acceleration enabled ===
$LIFECYCLE
$TAIL"
    done
    run after-hostile --vhost
    check "vhost hello still works after the hostile cases" [ "$(cat "$T/after-hostile.out")" = "Hello World!" ]

    # Output amplification: one chain whose 16 descriptors each cover all of
    # the given length of RAM; the worker writes it a budget per run and the
    # guest halts once it is used.
    run huge-vmmcons --vhost --guest "$GUESTS/hostile.elf" --cmdline "case=huge-chain" --console-out /dev/vmm-console
    check "vhost huge chain (256 MiB) to /dev/vmm-console: clean halt" [ "$(cat "$T/huge-vmmcons.rc")" = 0 ]
    cat /dev/vmm-console > /dev/null
    run huge-file --vhost --guest "$GUESTS/hostile.elf" --cmdline "case=huge-chain len=4M" --console-out "$T/huge.out"
    check "vhost huge chain (64 MiB) to a regular file: clean halt, every byte" \
        [ "$(cat "$T/huge-file.rc")" = 0 -a "$(wc -c < "$T/huge.out")" = 67108864 ]
    rm -f "$T/huge.out"
    # The owner killed while the worker streams a 4 GiB chain.
    "$VMM" --vhost --mem 256 --guest "$GUESTS/hostile.elf" --cmdline "case=huge-chain len=256M" \
        --console-out /dev/vmm-console > /dev/null 2>&1 &
    sleep 0.3
    t0=$(cut -d' ' -f1 /proc/uptime)
    kill -9 $!
    wait $! 2> /dev/null
    t1=$(cut -d' ' -f1 /proc/uptime)
    check "vhost: kill -9 while a 4 GiB chain streams ends the VMM within 1 s ($t0 -> $t1)" \
        awk "BEGIN { exit !($t1 - $t0 < 1.0) }"
    cat /dev/vmm-console > /dev/null
    run storm --vhost --guest "$GUESTS/hostile.elf" --cmdline "case=kick-storm kicks=2000" --stats
    check "vhost kick storm without buffers: survived, 2001 kicks, no QueueNotify exit" \
        [ "$(cat "$T/storm.out")" = survived -a "$(stat_value storm "ioeventfd notifications")" = 2001 \
        -a "$(stat_value storm "queue notifications")" = 0 ]

    storage_checks "$mode"
fi

# A Linux guest on vmm (userspace mode): the same 6.12 kernel with a busybox
# initramfs whose /init (e2e/guest-init) does what `e2e=` says on hvc0.
if [ "$mode" = builtin ] && [ "${E2E_ONLY:-}" != stall ] && [ "${E2E_ONLY:-}" != storage ] && [ "${E2E_ONLY:-}" != disk ] \
    && [ "${E2E_ONLY:-}" != ports ] \
    && [ -n "${LINUX_KERNEL:-}" ] && [ -f "$LINUX_KERNEL" ]; then
    # A reliable TSC of a known rate: QEMU microvm's guest hangs calibrating
    # it otherwise (no HPET or PM timer); the same line for both.
    LCMD="console=ttyS0 reboot=k panic=1 pci=off tsc=reliable tsc_early_khz=2000000"
    # linux_run NAME ARGS...: stdin from $T/NAME.in (or /dev/null); $T/NAME.out, .err, .rc
    linux_run() {
        name=$1
        shift
        input=/dev/null
        [ -f "$T/$name.in" ] && input="$T/$name.in"
        timeout 600 "$VMM" --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" "$@" < "$input" > "$T/$name.out" 2> "$T/$name.err"
        echo $? > "$T/$name.rc"
    }
    # linux_check NAME DESCRIPTION TEST...: TEST runs; on failure, NAME's output is shown.
    linux_check() {
        name=$1
        desc=$2
        shift 2
        if "$@"; then ok "$desc"; else not_ok "$desc (exit $(cat "$T/$name.rc"))" "$T/$name.out" "$T/$name.err"; fi
    }
    rc_is() { [ "$(cat "$T/$1.rc")" = "$2" ]; }
    out_is() { rc_is "$1" 0 && cmp -s "$T/$1.out" "$T/$1.want"; }

    # timed NAME COMMAND...: as linux_run, with stdout through a pipe whose
    # reader notes the uptime when the command starts, when its first line
    # arrives and when its stdout ends, in $T/NAME.times (busybox's date has
    # no sub-second field; /proc/uptime has 10 ms).
    uptime_s() { cut -d' ' -f1 /proc/uptime; }
    timed() {
        name=$1
        shift
        uptime_s > "$T/$name.times"
        { timeout 600 "$@" < /dev/null 2> "$T/$name.err"; echo $? > "$T/$name.rc"; } | {
            IFS= read -r line
            uptime_s >> "$T/$name.times"
            printf '%s\n' "$line" > "$T/$name.out"
            cat >> "$T/$name.out"
            uptime_s >> "$T/$name.times"
        }
    }
    # seconds NAME FROM TO: between two of NAME's times (1 start, 2 first line, 3 end).
    seconds() { awk -v a="$2" -v b="$3" 'NR == a { x = $1 } NR == b { y = $1 } END { printf "%.2f", y - x }' "$T/$1.times"; }

    # The guest's own clock when it starts /init, from its serial log.
    init_at() { tr -d '\r' < "$1" | sed -n 's/^\[ *\([0-9.]*\)\] Run \/init as init process$/\1/p' | head -1; }
    # slowest FILE: the three longest steps of a boot log, as "+seconds: the line after the gap".
    slowest() {
        tr -d '\r' < "$1" | sed -n 's/^\[ *\([0-9]*\.[0-9]*\)\] \(.*\)$/\1 \2/p' \
            | awk '{ t = $1; $1 = ""; if (NR > 1) printf "%.2f%s\n", t - last, $0; last = t }' \
            | sort -rn | head -3 | cut -c1-70 | sed 's/^/+/' | tr '\n' ';'
    }
    # mib_s NAME MIB: NAME's hvc0 throughput, from its first line on stdout
    # to the end of stdout (the exit after reboot).
    mib_s() { awk -v s="$(seconds "$1" 2 3)" -v m="$2" 'BEGIN { printf "%.2f", m / s }'; }
    # per_mib NAME COUNTER MIB: a --stats counter of NAME's run per MiB.
    per_mib() { awk -v n="$(stat_value "$1" "$2")" -v m="$3" 'BEGIN { printf "%.1f", n / m }'; }
    printf 'e2e-marker: Linux %s, hvc0\r\n' "$(uname -r)" > "$T/marker.want"

    # shell NAME VMM-FLAGS...: the guest says "ready" on hvc0; then the
    # commands go into vmm's stdin, and their answers must come back.
    shell() {
        name=$1
        shift
        : > "$T/$name.out"
        (
            i=0
            while ! grep -q ready "$T/$name.out" && [ $i -lt 3000 ]; do
                sleep 0.1
                i=$((i + 1))
            done
            printf 'echo $((6*7))\nnproc\nreboot -f\n'
        ) | timeout 600 "$VMM" "$@" --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" --cpus 2 \
            --cmdline "$LCMD e2e=shell" > "$T/$name.out" 2> "$T/$name.err"
        echo $? > "$T/$name.rc"
        printf 'ready\r\n42\r\n2\r\n' > "$T/$name.want"
    }

    sum16=$(yes abcdefghijklmno | head -c 16777216 | sha256sum | cut -d' ' -f1)
    # dd_bench NAME WHAT MIB: throughput and notifications per MiB of a dd run.
    dd_bench() {
        echo "bench: $2: $3 MiB on hvc0 at $(mib_s "$1" "$3") MiB/s; per MiB: $(per_mib "$1" exits "$3") exits," \
            "$(per_mib "$1" "queue notifications" "$3") QueueNotify, $(per_mib "$1" "ioeventfd notifications" "$3") kicks," \
            "$(per_mib "$1" "used notifications" "$3") used-buffer interrupts, $(per_mib "$1" "worker wake-ups" "$3") worker wake-ups;" \
            "$(grep '^exits:' "$T/$1.err")"
        # `quiet` leaves only errors on the serial port: a stream should leave none.
        n=$(grep -c '^\[ *[0-9.]*\]' "$T/$1.err")
        [ "$n" = 0 ] || echo "bench: $2: $n kernel lines on the serial port; the first: $(grep -m1 '^\[ *[0-9.]*\]' "$T/$1.err" | cut -c1-150)"
    }

    # Each test in userspace mode, then with the console's queues in the
    # kernel (receiveq read from vmm's stdin there), its used-buffer
    # interrupts raised by vmm's event loop.
    #
    # Every run here keeps this shell, and so vmm (its vCPU threads, its
    # event loop and output writers, and in vhost mode the kernel worker, a
    # thread of vmm), the reader of vmm's stdout and the echo harness, on
    # one CPU of this VM. An interrupt or a wake-up sent from another CPU to
    # the one running a nested vCPU breaks the nested guest here: streaming
    # 16 MiB to hvc0 in vhost mode with only vmm pinned and its reader (cat)
    # free, 3 of 27 runs stalled (every buffer kicked for was used and
    # written out, the worker asleep with nothing pending, the vCPU spinning
    # in the guest, no further kick) and 2 triple-faulted (their rings fully
    # used); with the reader on the same CPU 9 of 9 passed, and so did 8 of
    # 8 writing to a file (no reader to wake). Interrupts raised from a
    # second thread once crashed this VM's own kernel (recursive page faults
    # on the IRET out of a #VMEXIT). Userspace mode joined them when its
    # output moved to a writer thread and stalled queues to the event loop:
    # unpinned, a 16 MiB stream triple-faulted at 3.4 MiB (rip 0xfff0). A
    # userspace VMM cannot crash its host kernel through KVM ioctls, nor make
    # a guest skip a store: this is KVM's nested SVM on QEMU's TCG emulation
    # of it. One unpinned stream per mode is still run below, and reported;
    # `E2E_ONLY=stall e2e/run.sh` catches a stall with the state dump.
    taskset -p -c 0 $$ > /dev/null
    for m in user vhost; do
        flag=""
        what=linux
        [ $m = vhost ] && flag=--vhost && what="linux, vhost"
        timed "$m-marker" "$VMM" $flag --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" --cmdline "$LCMD e2e=marker"
        cp "$T/marker.want" "$T/$m-marker.want"
        linux_check "$m-marker" "$what: boots; its hvc0 line reaches stdout byte-exact" out_is "$m-marker"
        serial_ok() {
            grep -q '^\[ *[0-9.]*\] Linux version' "$T/$m-marker.err" \
                && grep -qxF '=== Driver is set up; console device is live ===' "$T/$m-marker.err" \
                && [ "$(tail -2 "$T/$m-marker.err" | head -1)" = '[guest reset: VM stopped]' ]
        }
        linux_check "$m-marker" "$what: kernel messages on the serial port (stderr), the console's lifecycle, the reset" serial_ok
        echo "bench: $what on vmm: $(seconds "$m-marker" 1 2) s from process start to the hvc0 marker," \
            "$(seconds "$m-marker" 1 3) s to the exit after reboot; /init at $(init_at "$T/$m-marker.err") s of guest time"
        echo "bench: $what on vmm: slowest boot steps: $(slowest "$T/$m-marker.err")"

        shell "$m-shell" $flag --stats
        no_notify() { [ "$m" = user ] || [ "$(stat_value "$1" "queue notifications")" = 0 ]; }
        shell_ok() { out_is "$m-shell" && no_notify "$m-shell"; }
        linux_check "$m-shell" "$what: --cpus 2, commands piped into vmm's stdin run in the guest's shell on hvc0, the answers (nproc: 2) on stdout" shell_ok
        # Each vCPU's APIC id agrees in the MADT, CPUID leaf 1 and AMD's
        # leaf 0x8000001E (Linux 6.9+ compares them, warning at KERN_WARNING:
        # this boot is not quiet).
        no_fw_bug() { grep -q 'smpboot: Total of 2 processors activated' "$T/$m-shell.err" && ! grep -q 'Firmware Bug' "$T/$m-shell.err"; }
        linux_check "$m-shell" "$what: two vCPUs boot with no [Firmware Bug] line" no_fw_bug

        # poweroff in the guest: ACPI S5 through the sleep control register.
        linux_run "$m-poweroff" $flag --cmdline "$LCMD quiet e2e=poweroff"
        poweroff_ok() { rc_is "$m-poweroff" 0 && [ "$(tail -2 "$T/$m-poweroff.err" | head -1)" = '[guest powered off: VM stopped]' ]; }
        linux_check "$m-poweroff" "$what: poweroff in the guest ends vmm with status 0" poweroff_ok

        timed "$m-dd" "$VMM" $flag --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" --cmdline "$LCMD quiet e2e=dd" --stats
        sum=$(sha256sum < "$T/$m-dd.out" | cut -d' ' -f1)
        rm -f "$T/$m-dd.out"
        dd_ok() { rc_is "$m-dd" 0 && [ "$sum" = "${DD_SHA256:?}" ] && no_notify "$m-dd"; }
        linux_check "$m-dd" "$what: 64 MiB written to hvc0 arrive byte-exact (sha256)" dd_ok
        dd_bench "$m-dd" "$what, EVENT_IDX" 64
        # The same without EVENT_IDX, 16 MiB, for the notification table.
        timed "$m-dd-noevent" "$VMM" $flag --no-event-idx --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" \
            --cmdline "$LCMD quiet e2e=dd mib=16" --stats
        sum=$(sha256sum < "$T/$m-dd-noevent.out" | cut -d' ' -f1)
        rm -f "$T/$m-dd-noevent.out"
        noevent_ok() { rc_is "$m-dd-noevent" 0 && [ "$sum" = "$sum16" ] && no_notify "$m-dd-noevent"; }
        linux_check "$m-dd-noevent" "$what, --no-event-idx: 16 MiB written to hvc0 arrive byte-exact" noevent_ok
        dd_bench "$m-dd-noevent" "$what, no EVENT_IDX" 16

        # Input round trips: a byte into vmm's stdin, through the guest's
        # raw hvc0 (receiveq, then transmitq), back on vmm's stdout.
        "${ECHO_LATENCY:?}" 200 timeout 300 "$VMM" $flag --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" \
            --cmdline "$LCMD quiet e2e=echo rounds=200" > "$T/$m-echo.out" 2> "$T/$m-echo.err"
        echo $? > "$T/$m-echo.rc"
        echo_ok() { rc_is "$m-echo" 0 && grep -q '^200 round trips: ' "$T/$m-echo.out"; }
        linux_check "$m-echo" "$what: 200 bytes into vmm's stdin come back one by one through the guest's hvc0" echo_ok
        echo "bench: $what: input round trip, stdin a pipe: $(cat "$T/$m-echo.out")"
        # The same with a terminal on stdin (a pty): vmm makes it raw, and
        # in vhost mode relays it through its input thread into the pipe
        # the kernel reads.
        "$ECHO_LATENCY" --pty 200 timeout 300 "$VMM" $flag --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" \
            --cmdline "$LCMD quiet e2e=echo rounds=200" > "$T/$m-ptyecho.out" 2> "$T/$m-ptyecho.err"
        echo $? > "$T/$m-ptyecho.rc"
        ptyecho_ok() { rc_is "$m-ptyecho" 0 && grep -q '^200 round trips: ' "$T/$m-ptyecho.out"; }
        linux_check "$m-ptyecho" "$what: the same from a terminal (a pty, raw)" ptyecho_ok
        echo "bench: $what: input round trip, stdin a terminal: $(cat "$T/$m-ptyecho.out")"
    done
    # Back on every CPU (nproc would count only the one this shell is on).
    taskset -p -c "$(cat /sys/devices/system/cpu/online)" $$ > /dev/null
    check "the test shell is on every CPU again" [ "$(nproc)" = "$(grep -c '^processor' /proc/cpuinfo)" ]

    # Userspace mode, 16 MiB, vmm on any CPU: reported, not counted (the
    # nested fault above).
    timed free-dd "$VMM" --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" --cmdline "$LCMD quiet e2e=dd mib=16" --stats
    sum=$(sha256sum < "$T/free-dd.out" | cut -d' ' -f1)
    rm -f "$T/free-dd.out"
    if rc_is free-dd 0 && [ "$sum" = "$sum16" ]; then
        echo "bench: linux, vmm on any CPU: 16 MiB on hvc0 at $(mib_s free-dd 16) MiB/s"
    else
        echo "bench: linux, vmm on any CPU: NESTED FAULT (not counted): 16 MiB on hvc0 ended early: $(tail -1 "$T/free-dd.err")"
    fi
    # vhost with the worker busy-polling an empty transmitq for 50 µs, 16
    # MiB, and vmm on any CPU: reported, not counted (the nested fault above).
    timed poll-dd "$VMM" --vhost --poll-us 50 --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" \
        --cmdline "$LCMD quiet e2e=dd mib=16" --stats
    sum=$(sha256sum < "$T/poll-dd.out" | cut -d' ' -f1)
    rm -f "$T/poll-dd.out"
    if rc_is poll-dd 0 && [ "$sum" = "$sum16" ]; then
        echo "bench: linux, vhost --poll-us 50, vmm on any CPU: 16 MiB on hvc0 at $(mib_s poll-dd 16) MiB/s; per MiB:" \
            "$(per_mib poll-dd "ioeventfd notifications" 16) kicks, $(per_mib poll-dd "used notifications" 16) used-buffer interrupts"
    else
        echo "bench: linux, vhost --poll-us 50, vmm on any CPU: NESTED FAULT (not counted): 16 MiB on hvc0 ended early: $(tail -1 "$T/poll-dd.err")"
    fi

    linux_run lpanic --cmdline "$LCMD e2e=panic"
    panic_ok() {
        rc_is "$1" 1 && [ "$(tail -1 "$T/$1.err")" = 'vmm: error: the guest kernel panicked (it asked for a warm reset: reboot=panic_w)' ]
    }
    linux_check lpanic "linux: a guest that panics ends vmm with one error line, exit 1" panic_ok lpanic
    # Panic options of the user's own do not hide a panic.
    linux_run lpanic-opts --cmdline "$LCMD e2e=panic panic_on_warn=1 panic_print=0"
    linux_check lpanic-opts "linux: ... also with panic_on_warn=1 panic_print=0 on its command line" panic_ok lpanic-opts
    # A kernel told acpi=off boots as one without ACPI does: the MP table,
    # its console named on the command line (virtio_mmio.device=).
    linux_run lnoacpi --cmdline "$LCMD e2e=marker acpi=off"
    cp "$T/marker.want" "$T/lnoacpi.want"
    noacpi_ok() { out_is lnoacpi && grep -q 'virtio_mmio.device=4K@0xd0000000:5' "$T/lnoacpi.err"; }
    linux_check lnoacpi "linux, acpi=off: boots on the MP table, its console from the command line" noacpi_ok

    # The same kernel, initramfs and command line on QEMU microvm (its
    # virtio-mmio console, which QEMU names on the command line itself with
    # acpi=off), side by side with the runs above. It has no i8042: the
    # guest reboots by triple fault, which ends QEMU (-no-reboot). 16 MiB
    # of hvc0 output, against a sum computed here. QEMU runs on one CPU, as
    # vmm does in vhost mode: its main loop raises the guest's interrupts
    # from another thread than the vCPU's, and unpinned its guest once hung
    # here before its first hvc0 line (the nested fault above).
    if [ -n "${QEMU:-}" ] && [ -x "$QEMU" ]; then
        qemu_timed() {
            name=$1
            shift
            timed "$name" taskset -c 0 "$QEMU" -M microvm,acpi=off -accel kvm -cpu host -m 512 -smp 1 -nodefaults \
                -no-user-config -display none -no-reboot -serial "file:$T/$name.serial" \
                -chardev stdio,id=hvc,signal=off -device virtio-serial-device -device virtconsole,chardev=hvc \
                -kernel "$LINUX_KERNEL" -initrd "$LINUX_INITRD" -append "$(echo "$LCMD" | sed 's/reboot=k/reboot=t/') $*"
        }
        qemu_timed qmarker e2e=marker
        cp "$T/marker.want" "$T/qmarker.want"
        linux_check qmarker "QEMU microvm: the same guest prints the same hvc0 line" out_is qmarker
        echo "bench: linux on QEMU microvm: $(seconds qmarker 1 2) s from process start to the hvc0 marker," \
            "$(seconds qmarker 1 3) s to the exit after reboot; /init at $(init_at "$T/qmarker.serial") s of guest time"
        echo "bench: linux on QEMU microvm: slowest boot steps: $(slowest "$T/qmarker.serial")"
        # QEMU's virtconsole drops what its chardev cannot take at once
        # (hw/char/virtio-console.c: a console must not block the guest),
        # so its bytes are counted, and its rate used only when all arrived.
        qemu_timed qdd quiet e2e=dd mib=16
        sum=$(sha256sum < "$T/qdd.out" | cut -d' ' -f1)
        qbytes=$(wc -c < "$T/qdd.out")
        rm -f "$T/qdd.out"
        qrate=""
        if [ "$sum" = "$sum16" ]; then
            qrate=$(mib_s qdd 16)
            echo "bench: linux on QEMU microvm: 16 MiB on hvc0 at $qrate MiB/s, byte-exact"
        else
            echo "bench: linux on QEMU microvm: 16 MiB on hvc0: $qbytes of 16777216 bytes arrived (dropped by QEMU); no rate"
        fi
        awk -v vm="$(seconds user-marker 1 2)" -v qm="$(seconds qmarker 1 2)" -v vt="$(mib_s user-dd 64)" \
            -v qt="$qrate" -v ht="$(mib_s vhost-dd 64)" -v hok="$(rc_is vhost-dd 0 && echo 1)" 'BEGIN {
                printf "bench: vmm / QEMU microvm: time to the hvc0 marker %.2fx (target <= 0.5x)\n", vm / qm
                if (qt == "") { print "bench: hvc0 throughput against QEMU microvm: no QEMU figure this run"; exit }
                printf "bench: vmm / QEMU microvm: hvc0 throughput %.2fx (target >= 1x)\n", vt / qt
                if (hok) printf "bench: vmm --vhost hvc0 throughput: %.2fx QEMU microvm (target >= 2x), %.2fx userspace mode (target >= 2x)\n", ht / qt, ht / vt }'

        # The bare-metal guests on QEMU microvm's modern virtio-mmio console:
        # our driver against a device we did not write. QEMU loads them by
        # their PVH note; they find the console in the virtio_mmio.device=
        # QEMU adds to their command line, and poll it. QEMU does not end the
        # run at a guest's final HLT: it is stopped once the bytes are out.
        # qemu_guest NAME BYTES ELF CMDLINE
        qemu_guest() {
            name=$1
            want=$2
            uptime_s > "$T/$name.times"
            # A file chardev: QEMU's virtconsole drops what a chardev cannot
            # take at once, and a file never refuses a write. Created before
            # the loop below reads its size.
            : > "$T/$name.out"
            "$QEMU" -M microvm,acpi=off -accel kvm -cpu host -m 16 -smp 1 -nodefaults -no-user-config -display none \
                -no-reboot -global virtio-mmio.force-legacy=false -device virtio-serial-device \
                -device virtconsole,chardev=hvc -chardev "file,id=hvc,path=$T/$name.out" -kernel "$3" -append "$4" \
                < /dev/null > /dev/null 2> "$T/$name.err" &
            pid=$!
            i=0
            while [ "$(wc -c < "$T/$name.out")" -lt "$want" ] && [ $i -lt 300 ] && kill -0 $pid 2> /dev/null; do
                sleep 1
                i=$((i + 1))
            done
            uptime_s >> "$T/$name.times"
            kill $pid 2> /dev/null
            wait $pid 2> /dev/null
        }
        qemu_guest qhello 13 "$GUESTS/hello.elf" "hello"
        printf 'Hello World!\n' > "$T/qhello.want"
        check "QEMU microvm: hello.elf prints its line on QEMU's virtconsole, byte-exact" cmp -s "$T/qhello.out" "$T/qhello.want"
        qemu_guest qstream 67108864 "$GUESTS/stream.elf" "bytes=64M chunk=4K"
        sum=$(sha256sum < "$T/qstream.out" | cut -d' ' -f1)
        rm -f "$T/qstream.out"
        check "QEMU microvm: stream.elf's 64 MiB arrive byte-exact (sha256)" [ "$sum" = "${STREAM_SHA256:?}" ]
        echo "bench: stream guest on QEMU microvm (polled): 64 MiB within $(seconds qstream 1 2) s of QEMU's start"
    fi
fi

# The disks, and their benchmark against QEMU microvm.
if { [ -z "${E2E_ONLY:-}" ] || [ "${E2E_ONLY:-}" = disk ]; } && [ -n "${LINUX_KERNEL:-}" ] && [ -f "$LINUX_KERNEL" ]; then
    t0=$(cut -d' ' -f1 /proc/uptime)
    [ "$mode" != module ] || check "module: insmod (disk)" insmod "$MODULE_KO"
    disk_checks "$mode"
    disk_bare
    [ "$mode" != module ] || check "module: rmmod after the disk tests" rmmod vhost_console
    t1=$(cut -d' ' -f1 /proc/uptime)
    # By this VM's clock, which runs ahead of the host's under TCG here.
    echo "e2e: the disk tests took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s of the test VM's clock"
    if [ "$mode" = builtin ]; then
        disk_bench
        echo "e2e: the disk benchmark took $(awk -v a="$t1" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.0f", b - a }') s of the test VM's clock"
    fi
fi

# The console's ports with a Linux guest (e2e/ports.sh): both modes and the
# benchmark in the builtin VM, vhost mode in the module and debug VMs.
if { [ -z "${E2E_ONLY:-}" ] || [ "$E2E_ONLY" = ports ]; } && [ "${E2E_SKIP:-}" != ports ] && [ -f "${LINUX_KERNEL:-}" ]; then
    ports_t0=$(cut -d' ' -f1 /proc/uptime)
    . "$(dirname "$0")/ports.sh"
    echo "e2e: the ports tests took $(awk -v a="$ports_t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.0f", b - a }') s of the test VM's clock"
fi

echo "e2e: $passed passed, $failed failed"
[ "$failed" = 0 ]
