# The console's ports (vmm --port, VIRTIO_CONSOLE_F_MULTIPORT) with a Linux
# guest: sourced by in-vm.sh (also alone: `E2E_ONLY=ports e2e/run.sh`). The
# builtin kernel runs everything in both modes (userspace, then --vhost:
# the kernel moves the ports' bytes, the control queues stay in vmm) and
# the benchmark; the module and debug kernels run the vhost mode's
# functional tests (the module loaded for them and unloaded after). The guest is the built-in test kernel
# with e2e/guest-ports as what it does (`e2e=ports step=...`); the host side
# of each socket port is e2e/porthost.c, a real client. Uses in-vm.sh's T,
# VMM, LINUX_KERNEL, LINUX_INITRD, QEMU, ok, not_ok and check.
#
# Like in-vm.sh's Linux runs, everything runs on one CPU of the test VM
# (vmm, porthost, QEMU): a wake-up from another CPU breaks a nested vCPU
# under QEMU's TCG (docs/testing.md).
PORTHOST=${PORTHOST:-porthost}
PCMD="console=ttyS0 reboot=k panic=1 pci=off tsc=reliable tsc_early_khz=2000000 quiet e2e=ports"
MIB=${PORTS_MIB:-64}
BYTES=$((MIB * 1048576))

# pvmm NAME ARGS...: vmm boots the guest in the background with ARGS;
# $P/NAME.out (hvc0), .err; its pid in $vpid. pwait NAME: its exit status
# in $P/NAME.rc. A run still going after 5 min dumps its state (SIGUSR1)
# into .err, and is killed 10 s later.
pvmm() {
    name=$1
    shift
    timeout -s USR1 -k 10 300 "$VMM" $VFLAG --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" --mem 256 "$@" < /dev/null \
        > "$P/$name.out" 2> "$P/$name.err" &
    vpid=$!
}
pwait() {
    wait "$vpid"
    echo $? > "$P/$1.rc"
}
# pcheck NAME DESCRIPTION TEST...: on failure, NAME's files are shown.
pcheck() {
    name=$1
    desc="ports ($pmode): $2"
    shift 2
    if "$@"; then ok "$desc"; else
        not_ok "$desc (exit $(cat "$P/$name.rc" 2> /dev/null))" "$P/$name.out" "$P/$name.err" "$P/$name.host"
    fi
}
# wait_line FILE LINE: until FILE has LINE (120 s at most).
wait_line() {
    i=0
    while ! grep -qxF "$2" "$1" 2> /dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
    grep -qxF "$2" "$1"
}
# rate FILE: the MiB/s of porthost's report in FILE.
rate() { sed -n 's/^porthost: [0-9]* bytes in [0-9.]* s (\([0-9.]*\) MiB\/s)$/\1/p' "$1"; }
stat_of() { sed -n "s/^$2: \([0-9]*\).*/\1/p" "$P/$1.err"; }
# per_mib NAME COUNTER MIB: NAME's counter less the idle run's, per MiB.
per_mib() {
    awk -v n="$(stat_of "$1" "$2")" -v b="$(stat_of idle "$2")" -v m="$3" 'BEGIN { printf "%.1f", (n - b) / m }'
}

taskset -p -c 0 $$ > /dev/null

# This section runs last, and its runs need room: the 64 MiB the host
# sends, and up to 256 MiB of guest RAM per vmm. The test VM's files live
# in its RAM (the initramfs), where earlier sections leave their outputs:
# the large ones go first (said here, with the memory before and after).
avail() { sed -n 's/^MemAvailable: *\([0-9]*\) kB$/\1/p' /proc/meminfo; }
before=$(avail)
large=$(find "$T" -type f -size +1024k)
[ -z "$large" ] || rm -f $large
echo "e2e: ports: $(echo $large | wc -w) files over 1 MiB left in $T removed ($(for f in $large; do printf "%s " "${f#$T/}"; done));  MemAvailable $((before / 1024)) MiB, now $(($(avail) / 1024)) MiB"

# ports_basic: names, a file port, and the socket port's round trips: 5000
# bytes echoed by the guest, the host closes (the guest's read returns 0),
# reconnects, 300000 bytes; then 1 MiB sent and the host gone at once: the
# guest reads all of it, then the end. A pty port too, in userspace mode
# (vhost mode refuses one: the kernel does not write to a terminal).
ports_basic() {
    head -c 5000 /dev/urandom > "$P/rt1"
    head -c 300000 /dev/urandom > "$P/rt2"
    head -c 1048576 /dev/urandom > "$P/rt3"
    pty=""
    [ "$pmode" = userspace ] && pty="--port name=e2e.pty,pty"
    pvmm basic --cmdline "$PCMD step=basic" --port "name=e2e.echo,socket=$P/echo.sock" \
        --port "name=e2e.file,file=$P/file.out" $pty
    timeout 300 "$PORTHOST" rt "$P/echo.sock" "$P/rt1" > "$P/rt1.host" 2>&1
    echo $? >> "$P/rt1.host"
    # The guest's cat must see this connection end before the next begins.
    wait_line "$P/basic.out" "echo: round 1 ended: the host closed"
    timeout 300 "$PORTHOST" rt "$P/echo.sock" "$P/rt2" > "$P/rt2.host" 2>&1
    echo $? >> "$P/rt2.host"
    wait_line "$P/basic.out" "echo: round 2 ended: the host closed"
    timeout 300 "$PORTHOST" send "$P/echo.sock" 1048576 4096 close < "$P/rt3" > "$P/rt3.host" 2> /dev/null
    echo $? >> "$P/rt3.host"
    pwait basic
    cat "$P/rt1.host" "$P/rt2.host" "$P/rt3.host" > "$P/basic.host"
    printf 'round 1\nporthost: 5000 bytes back, byte-exact\n0\nround 2\nporthost: 300000 bytes back, byte-exact\n0\nround 3\n0\n' \
        > "$P/basic.host-want"
    printf 'vport0p1: e2e.echo\nvport0p2: e2e.file\n' > "$P/names.want"
    nports=2
    if [ -n "$pty" ]; then printf 'vport0p3: e2e.pty\n' >> "$P/names.want"; nports=3; fi
    printf 'echo: round 1 ended: the host closed\necho: round 2 ended: the host closed\n' > "$P/rounds.want"
    printf 'echo: round 3: 1048576 bytes, then the end\n' >> "$P/rounds.want"
    basic_ok() { [ "$(cat "$P/basic.rc")" = 0 ]; }
    pcheck basic "the guest boots with $nports ports and ends cleanly" basic_ok
    pcheck basic "/sys/class/virtio-ports/vport*/name shows the names given" \
        sh -c "head -$nports '$P/basic.out' | cmp -s - '$P/names.want'"
    if [ -n "$pty" ]; then
        pcheck basic "the pty port's path on stderr" \
            sh -c "[ \$(grep -c '^=== port 3 (e2e.pty): pty /dev/pts/[0-9]* ===\$' '$P/basic.err') = 1 ]"
    fi
    pcheck basic "5000 bytes, then 300000 after a reconnect, come back through a guest process byte-exact" \
        cmp -s "$P/basic.host" "$P/basic.host-want"
    pcheck basic "the host's close ends the guest's read (0) each time; 1 MiB sent just before a close all arrives" \
        sh -c "tail -n +$((nports + 1)) '$P/basic.out' | cmp -s - '$P/rounds.want'"
    printf '=== port 2 (e2e.file): guest opened ===\n=== port 2 (e2e.file): guest closed ===\n' > "$P/open.want"
    printf '=== port 1 (e2e.echo): guest opened ===\n=== port 1 (e2e.echo): guest closed ===\n' >> "$P/open.want"
    pcheck basic "the guest's opens and closes on vmm's stderr, one line each" \
        sh -c "grep '^=== port [0-9]* ([^)]*): guest ' '$P/basic.err' | cmp -s - '$P/open.want'"
    pcheck basic "the file port holds the guest's line; the socket is gone after the run" \
        sh -c "[ \"\$(cat '$P/file.out')\" = 'a line for the file port' ] && [ ! -e '$P/echo.sock' ]"
    rm -f "$P/rt1" "$P/rt2" "$P/rt3"
}

# ports_size: the console's size follows vmm's terminal (a pty of 100x40,
# then 120x50 and SIGWINCH): in the configuration space without ports, as
# RESIZE messages with them.
ports_size() {
    for how in config resize; do
        flags=""
        [ $how = resize ] && flags="--port name=e2e.echo,socket=$P/size.sock"
        timeout 600 "$PORTHOST" pty 100 40 120 50 "size: " "$VMM" $VFLAG --kernel "$LINUX_KERNEL" \
            --initrd "$LINUX_INITRD" --mem 256 --cmdline "$PCMD step=size" $flags \
            > "$P/size-$how.out" 2> "$P/size-$how.err"
        echo $? > "$P/size-$how.rc"
        printf 'size: 40 100\nsize: 50 120\n' > "$P/size.want"
        size_ok() { [ "$(cat "$P/size-$how.rc")" = 0 ] && cmp -s "$P/size-$how.out" "$P/size.want"; }
        pcheck "size-$how" "stty size on hvc0 is the host terminal's, before and after a change ($how)" size_ok
    done
}

# ports_kill: vmm killed (SIGKILL) while the guest streams to a socket
# port: the host side sees the end at once, and what it got is the
# stream's start. The socket stays behind (nothing removed it); the next
# run, on the same path, replaces it.
ports_kill() {
    pvmm kill --cmdline "$PCMD step=flood" --port "name=e2e.bench,socket=$P/bench.sock"
    # At most 256 MiB kept (the test VM's files are in its RAM).
    # The host side kills vmm itself once 8 MiB came: the test shell,
    # on the same busy CPU, saw the size late once (256 MiB).
    timeout 300 "$PORTHOST" recv "$P/bench.sock" 268435456 65536 $vpid 8388608 > "$P/kill.bytes" 2> "$P/kill.host" &
    hpid=$!
    pwait kill
    t0=$(cut -d' ' -f1 /proc/uptime)
    wait $hpid
    hrc=$?
    t1=$(cut -d' ' -f1 /proc/uptime)
    got=$(wc -c < "$P/kill.bytes")
    kill_ok() {
        [ "$got" -ge 8388608 ] && [ $hrc = 1 ] \
            && [ "$(cat "$P/kill.host")" = "porthost: end of file after $got of 268435456 bytes" ] \
            && awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 5) }' \
            && yes abcdefghijklmno | head -c "$got" | cmp -s - "$P/kill.bytes" && [ -S "$P/bench.sock" ]
    }
    pcheck kill "vmm killed mid-stream ($got bytes out): the host side's read ends within 5 s, the bytes the stream's start" kill_ok
    rm -f "$P/kill.bytes"
}

# ports_both: MIB MiB each way, random bytes: the host sends them in
# writes of 4 KiB (then 32 KiB), the guest keeps them and sends them back
# in writes of the same size; sha256 on the host. Each run also times both
# ways, and --stats counts exits, kicks and interrupts: host -> guest those
# of a run that stops there (only=in) less an idle boot's, guest -> host
# those of the whole run less that one's.
ports_both() {
    pvmm idle --stats --cmdline "$PCMD step=idle" --port "name=e2e.bench,socket=$P/bench.sock"
    pwait idle
    for bs in 4096 32768; do
        pvmm "in-$bs" --stats --cmdline "$PCMD step=both bs=$bs mib=$MIB only=in" --port "name=e2e.bench,socket=$P/bench.sock"
        both vmmin "$P/bench.sock" "$P/in-$bs.out" $bs in
        pwait "in-$bs"
        pvmm "both-$bs" --stats --cmdline "$PCMD step=both bs=$bs mib=$MIB" --port "name=e2e.bench,socket=$P/bench.sock"
        both vmm "$P/bench.sock" "$P/both-$bs.out" $bs
        pwait "both-$bs"
        cat "$P/vmm-$bs.send" "$P/vmm-$bs.send-rate" "$P/vmm-$bs.recv-rate" > "$P/both-$bs.host"
        both_ok() {
            [ "$(cat "$P/both-$bs.rc")" = 0 ] && [ "$(cat "$P/vmm-$bs.sum")" = "$rand_sum" ] \
                && [ "$(cat "$P/vmm-$bs.send")" = "$(printf 'ready for %s\nreceived %s bytes' $bs "$BYTES")" ] \
                && [ "$(cat "$P/both-$bs.out")" = "$(printf 'both: %s in\nboth: %s done' $bs $bs)" ]
        }
        pcheck "both-$bs" "$MIB MiB host -> guest -> host in writes of $bs bytes, sha256-exact" both_ok
        in_ok() { [ "$(cat "$P/in-$bs.rc")" = 0 ] && [ "$(cat "$P/in-$bs.out")" = "both: $bs in" ]; }
        pcheck "in-$bs" "... and $MIB MiB host -> guest alone (for the counters)" in_ok
        for dir in in out; do
            if [ $dir = in ]; then a=in-$bs b=idle what="host -> guest" r=$(rate "$P/vmm-$bs.send-rate")
            else a=both-$bs b=in-$bs what="guest -> host" r=$(rate "$P/vmm-$bs.recv-rate"); fi
            kicks="$(delta $a $b "queue notifications") kicks as exits, $(delta $a $b "ioeventfd notifications") through the ioeventfd"
            [ "$pmode" = vhost ] && kicks="$(delta $a $b "ioeventfd notifications") ioeventfd kicks, $(delta $a $b "worker wake-ups") worker wake-ups"
            echo "bench: port, vmm ($pmode), $what, writes of $bs: $r MiB/s ($MIB MiB); per MiB:" \
                "$(delta $a $b exits) exits, $kicks, $(delta $a $b "used notifications") interrupts"
        done
        cp "$P/vmm-$bs.send-rate" "$T/ports-rate-$pmode-in-$bs"
        cp "$P/vmm-$bs.recv-rate" "$T/ports-rate-$pmode-out-$bs"
    done
}

# both NAME SOCKET OUT BS [in]: the host's side of one size of step=both.
both() {
    timeout 600 "$PORTHOST" send "$2" "$BYTES" "$4" reply < "$P/rand" > "$P/$1-$4.send" 2> "$P/$1-$4.send-rate"
    wait_line "$3" "both: $4 in"
    [ "${5:-}" = in ] && return
    timeout 600 "$PORTHOST" recv "$2" "$BYTES" "$4" 2> "$P/$1-$4.recv-rate" | sha256sum | cut -d' ' -f1 > "$P/$1-$4.sum"
}
# delta A B COUNTER: A's counter less B's, per MiB.
delta() { awk -v a="$(stat_of "$1" "$3")" -v b="$(stat_of "$2" "$3")" -v m="$MIB" 'BEGIN { printf "%.1f", (a - b) / m }'; }

# ports_bare: the bare-metal guests with ports, in vhost mode, against
# the same runs in userspace mode (whose output `cargo xtask test` asserts
# line for line): the ports guest writing to a file port, and each of
# hostile-ports' control-queue abuses. Same stdout, same stderr but for
# vhost's first line and the run's duration, same exit status, same files.
ports_bare() {
    B=$T/ports-bare
    mkdir -p "$B"
    # bare NAME MODE GUEST CMDLINE: one run; $B/NAME-MODE.{out,err,rc,p1,p2}.
    bare() {
        flag=""
        [ "$2" = vhost ] && flag=--vhost
        rm -f "$B/$1-$2.p1" "$B/$1-$2.p2"
        timeout 120 "$VMM" $flag --guest "$GUESTS/$3" --cmdline "$4" --port "name=p1,file=$B/$1-$2.p1" \
            --port "name=p2,file=$B/$1-$2.p2" < /dev/null > "$B/$1-$2.out" 2> "$B/$1-$2.err"
        echo $? > "$B/$1-$2.rc"
        # The run's duration differs, of course.
        sed -i '/^Time taken to run VM: [0-9]* microseconds$/d' "$B/$1-$2.err"
        [ "$2" = vhost ] && sed -i '1{/^=== Vhost acceleration enabled ===$/d}' "$B/$1-$2.err"
    }
    same() {
        for f in out err rc p1 p2; do cmp -s "$B/$1-userspace.$f" "$B/$1-vhost.$f" || return 1; done
    }
    for m in userspace vhost; do bare ports $m ports.elf "wait-close=0 rounds=0"; done
    same_ports() { same ports && [ "$(cat "$B/ports-vhost.rc")" = 0 ] && [ -s "$B/ports-vhost.p1" ]; }
    check "ports (vhost): the bare-metal ports guest writes its line to a file port as in userspace mode" same_ports
    if ! same_ports; then
        for f in "$B"/ports-*; do echo "    $f:"; head -c 2000 "$f" | sed 's/^/      /'; done
    fi
    bare list userspace hostile-ports.elf "case=?"
    cases=$(sed -n 's/.*; cases: //p' "$B/list-userspace.err")
    check "ports (vhost): hostile-ports lists its cases" [ -n "$cases" ]
    for case in $cases; do
        for m in userspace vhost; do bare "$case" $m hostile-ports.elf "case=$case"; done
        if same "$case"; then ok "ports (vhost): hostile-ports case=$case: as in userspace mode (exit $(cat "$B/$case-vhost.rc"))"
        else not_ok "ports (vhost): hostile-ports case=$case: as in userspace mode" "$B/$case-userspace.err" "$B/$case-vhost.err"; fi
    done
}

bench=""
[ "$mode" = builtin ] && bench=yes
if [ -n "$bench" ]; then
    head -c "$BYTES" /dev/urandom > "$T/ports-rand"
    rand_sum=$(sha256sum < "$T/ports-rand" | cut -d' ' -f1)
fi
[ "$mode" != module ] || check "module: insmod (ports)" insmod "$MODULE_KO"
ports_bare
for pmode in $([ "$mode" = builtin ] && echo userspace) vhost; do
    P=$T/ports-$pmode
    mkdir -p "$P"
    VFLAG=""
    [ $pmode = vhost ] && VFLAG=--vhost
    ports_basic
    ports_size
    ports_kill
    if [ -n "$bench" ]; then
        ln -sf "$T/ports-rand" "$P/rand"
        ports_both
    fi
done
if [ "$mode" = module ]; then
    check "module: rmmod after the ports tests (a vmm killed mid-stream among them)" rmmod vhost_console
fi
pmode=userspace
VFLAG=""
P=$T/ports-userspace

# A pty port in vhost mode is refused: one line, exit 1, no socket made.
if [ "$mode" = builtin ]; then
    "$VMM" --vhost --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" --port "name=e2e.echo,socket=$P/vhost.sock" \
        --port name=e2e.pty,pty > "$P/vhost.out" 2> "$P/vhost.err"
    echo $? > "$P/vhost.rc"
    vhost_refused() {
        [ "$(cat "$P/vhost.rc")" = 1 ] && [ ! -s "$P/vhost.out" ] && [ ! -e "$P/vhost.sock" ] \
            && [ "$(cat "$P/vhost.err")" = "vmm: error: --port e2e.pty: a pty port is not supported with --vhost (the kernel writes only to what cannot block it); use socket= or file=" ]
    }
    pcheck vhost "--vhost with a pty port is refused with one line, exit 1" vhost_refused
fi

if [ -n "$bench" ]; then
# hvc0 in the same run, for the comparison: 16 MiB written to it in
# writes of 4 KiB (hvc0 takes one buffer at a time: a few MiB/s).
hvc_mib=16
hvc_sum=$(yes abcdefghijklmno | head -c $((hvc_mib * 1048576)) | sha256sum | cut -d' ' -f1)
{ timeout 600 "$VMM" --kernel "$LINUX_KERNEL" --initrd "$LINUX_INITRD" --mem 256 --stats \
    --cmdline "$PCMD step=hvc bs=4096 mib=$hvc_mib" --port "name=e2e.bench,socket=$P/bench.sock" < /dev/null \
    2> "$P/hvc.err"; echo $? > "$P/hvc.rc"; } \
    | "$PORTHOST" recv - $((hvc_mib * 1048576)) 65536 2> "$P/hvc.host" | sha256sum | cut -d' ' -f1 > "$P/hvc.sum"
hvc_ok() { [ "$(cat "$P/hvc.rc")" = 0 ] && [ "$(cat "$P/hvc.sum")" = "$hvc_sum" ]; }
pcheck hvc "$hvc_mib MiB on hvc0 beside a port, byte-exact" hvc_ok
echo "bench: hvc0, vmm (userspace), writes of 4096: guest -> host $(rate "$P/hvc.host") MiB/s ($hvc_mib MiB);" \
    "per MiB, less an idle boot: $(per_mib hvc exits $hvc_mib) exits, $(per_mib hvc "queue notifications" $hvc_mib) kicks," \
    "$(per_mib hvc "used notifications" $hvc_mib) interrupts"
for bs in 4096 32768; do
    for m in userspace vhost; do
        awk -v p="$(rate "$T/ports-rate-$m-out-$bs")" -v h="$(rate "$P/hvc.host")" -v bs=$bs -v m=$m 'BEGIN {
            if (p == "" || h == "") { print "bench: port (" m ") / hvc0, writes of " bs ": no figure"; exit }
            printf "bench: port (%s) / hvc0 guest -> host, writes of %s: %.1fx (target >= 10x)\n", m, bs, p / h }'
    done
    for dir in in out; do
        awk -v v="$(rate "$T/ports-rate-vhost-$dir-$bs")" -v u="$(rate "$T/ports-rate-userspace-$dir-$bs")" \
            -v bs=$bs -v d=$dir 'BEGIN {
            if (v == "" || u == "") { print "bench: port vhost / userspace, writes of " bs ": no figure"; exit }
            printf "bench: port vhost / userspace, %s, writes of %s: %.2fx (target >= 2x)\n",
                d == "in" ? "host -> guest" : "guest -> host", bs, v / u }'
    done
done

# QEMU microvm with the same guest: virtio-serial-device, a virtconsole on
# stdio (hvc0) and a virtserialport on a socket chardev; one boot for both
# sizes (QEMU's boot is slow here), on one CPU as vmm.
if [ -n "${QEMU:-}" ] && [ -x "$QEMU" ]; then
    rm -f "$P/qemu.sock"
    taskset -c 0 timeout 900 "$QEMU" -M microvm,acpi=off -accel kvm -cpu host -m 256 -smp 1 -nodefaults \
        -no-user-config -display none -no-reboot -serial "file:$P/qemu.serial" \
        -chardev stdio,id=hvc,signal=off -device virtio-serial-device -device virtconsole,chardev=hvc \
        -chardev "socket,id=bench,path=$P/qemu.sock,server=on,wait=off" \
        -device virtserialport,chardev=bench,name=e2e.bench \
        -kernel "$LINUX_KERNEL" -initrd "$LINUX_INITRD" \
        -append "$(echo "$PCMD" | sed 's/reboot=k/reboot=t/') step=both bs=4096x32768 mib=$MIB" \
        < /dev/null > "$P/qemu.out" 2> "$P/qemu.err" &
    vpid=$!
    for bs in 4096 32768; do
        both qemu "$P/qemu.sock" "$P/qemu.out" $bs
    done
    pwait qemu
    for bs in 4096 32768; do
        qemu_ok() { [ "$(cat "$P/qemu-$bs.sum")" = "$rand_sum" ] && grep -qxF "both: $bs done" "$P/qemu.out"; }
        if qemu_ok; then
            echo "bench: port, QEMU microvm (virtserialport, socket chardev), writes of $bs:" \
                "host -> guest $(rate "$P/qemu-$bs.send-rate") MiB/s, guest -> host $(rate "$P/qemu-$bs.recv-rate") MiB/s ($MIB MiB each)"
            for m in userspace vhost; do
                awk -v v="$(rate "$T/ports-rate-$m-in-$bs")" -v q="$(rate "$P/qemu-$bs.send-rate")" \
                    -v v2="$(rate "$T/ports-rate-$m-out-$bs")" -v q2="$(rate "$P/qemu-$bs.recv-rate")" -v bs=$bs -v m=$m 'BEGIN {
                    if (v == "" || q == "" || v2 == "" || q2 == "") { print "bench: port, vmm (" m ") / QEMU: no figure"; exit }
                    printf "bench: port, vmm (%s) / QEMU microvm, writes of %s: host -> guest %.2fx, guest -> host %.2fx\n", m, bs, v / q, v2 / q2 }'
            done
        else
            echo "bench: port, QEMU microvm, writes of $bs: no figure (exit $(cat "$P/qemu.rc"), sha256 $(cat "$P/qemu-$bs.sum"));" \
                "$(tail -3 "$P/qemu.err" "$P/qemu.serial" | tr '\n' ' ' | cut -c1-300)"
        fi
    done
fi
rm -f "$T/ports-rand"
fi

taskset -p -c "$(cat /sys/devices/system/cpu/online)" $$ > /dev/null
