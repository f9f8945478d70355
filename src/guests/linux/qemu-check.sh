#!/bin/bash
# Boots the committed Linux guest (out/Image.gz, out/initramfs.cpio.gz) on
# qemu-system-riscv64 with Debian's OpenSBI and checks what Tern must match:
# the heartbeat, SMP, a virtio disk (raw, ext2, ext4), virtio-rng, virtio-net,
# the memory dirtier, and power-off through SBI.
#
#   src/guests/linux/qemu-check.sh [--runs N] [--keep DIR]
#
# Prints, for every boot, the wall time from starting QEMU to the first
# heartbeat line, and one line per check: "ok ..." or "FAIL ...". Ends with
# "N passed, N failed". Needs qemu-system-misc, opensbi, e2fsprogs, xz-utils.
# Every QEMU run is bounded by a timeout and powers itself off
# (tern.poweroff=N); QEMU's user network is restricted (no traffic leaves).
set -u

here=$(cd "$(dirname "$0")" && pwd)
runs=3
keep=""
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) shift; runs=$1 ;;
        --keep) shift; keep=$1 ;;
        *) echo "usage: $0 [--runs N] [--keep DIR]" >&2; exit 2 ;;
    esac
    shift
done

bios=/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf
for t in qemu-system-riscv64 mke2fs xz; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install qemu-system-misc e2fsprogs xz-utils)" >&2; exit 1; }
done
[ -f "$bios" ] || { echo "missing $bios (apt-get install opensbi)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -n "$keep" ] && mkdir -p "$keep"
gzip -dc "$here/out/Image.gz" > "$work/Image"
initrd="$here/out/initramfs.cpio.gz"
passed=0
failed=0

check() { # check NAME LOG REGEX
    if grep -Eq "$3" "$2"; then
        echo "ok   $1"
        passed=$((passed + 1))
    else
        echo "FAIL $1 (no line matching /$3/ in $(basename "$2"))"
        failed=$((failed + 1))
    fi
}

# boot NAME TIMEOUT APPEND [QEMU ARGS...]: runs QEMU, timestamps each output
# line (seconds since QEMU started) into $work/NAME.log and sets $first to the
# time of the first heartbeat line (or "none").
boot() {
    local name=$1 limit=$2 append=$3
    shift 3
    local log="$work/$name.log" t0 line now
    t0=$EPOCHREALTIME
    first=none
    : > "$log"
    while IFS= read -r line; do
        now=$EPOCHREALTIME
        line=${line%$'\r'}
        printf '%s\t%s\n' "$(awk -v a="$t0" -v b="$now" 'BEGIN{printf "%.3f", b-a}')" "$line" >> "$log"
        if [ "$first" = none ] && [[ $line == tern-heartbeat\ 1\ * ]]; then
            first=$(awk -v a="$t0" -v b="$now" 'BEGIN{printf "%.3f", b-a}')
        fi
    done < <(timeout "$limit" qemu-system-riscv64 -machine virt -m 256M -nographic \
                -bios "$bios" -kernel "$work/Image" -initrd "$initrd" \
                -append "console=ttyS0 earlycon=sbi $append" "$@" < /dev/null 2>&1;
             echo "qemu-exit $?")
    [ -n "$keep" ] && cp "$log" "$keep/"
    echo "     $name: first heartbeat after ${first}s"
}

echo "== plain boot, $runs runs"
for i in $(seq "$runs"); do
    boot "plain$i" 60 "tern.poweroff=2"
    check "plain$i reaches the heartbeat" "$work/plain$i.log" $'\ttern-heartbeat 2 uptime='
    check "plain$i powers off through SBI" "$work/plain$i.log" $'\tqemu-exit 0$'
done

echo "== 4 harts"
boot smp4 60 "tern.poweroff=2" -smp 4
check "smp4 brings up 4 CPUs" "$work/smp4.log" 'smp: Brought up 1 node, 4 CPUs'
check "smp4 init sees cpus 0-3" "$work/smp4.log" 'tern-init: .* cpus=0-3'

echo "== 8 harts"
boot smp8 60 "tern.poweroff=2" -smp 8
check "smp8 init sees cpus 0-7" "$work/smp8.log" 'tern-init: .* cpus=0-7'

echo "== icount (instructions to the first heartbeat)"
boot icount 120 "tern.poweroff=1" -icount shift=0,sleep=off
ticks=$(sed -n 's/.*tern-init: rdtime=\([0-9]*\).*/\1/p' "$work/icount.log")
# shift=0: one instruction is 1 ns of virtual time; the timer ticks at 10 MHz,
# so instructions ~= ticks * 100 (an upper bound: idle time is skipped, not
# executed, with sleep=off, but still advances the clock).
echo "     icount: rdtime=${ticks:-?} at init start = about $(( ${ticks:-0} * 100 )) instructions since reset"
check "icount reaches the heartbeat" "$work/icount.log" $'\ttern-heartbeat 1 uptime='

disk="$work/disk.img"
echo "== raw virtio-blk + virtio-rng + virtio-net"
truncate -s 8M "$disk"
boot raw 90 "tern.disk=check,256,/dev/vda tern.poweroff=5" \
    -drive file="$disk",if=none,format=raw,id=d0 -device virtio-blk-device,drive=d0 \
    -device virtio-rng-device \
    -netdev user,id=n0,restrict=on -device virtio-net-device,netdev=n0
check "raw kernel sees vda" "$work/raw.log" 'virtio_blk virtio[0-9]+: \[vda\]'
check "raw init lists vda, eth0 and the virtio rng" "$work/raw.log" 'tern-init: block=vda net=lo,eth0 rng=virtio_rng\.0'
check "raw diskcheck" "$work/raw.log" 'diskcheck: OK 256 records verified /dev/vda'
boot raw-verify 60 "tern.disk=verify tern.poweroff=3" \
    -drive file="$disk",if=none,format=raw,id=d0 -device virtio-blk-device,drive=d0
check "raw records persist across boots" "$work/raw-verify.log" 'diskcheck: OK 256 records verified /dev/vda'
printf 'X' | dd of="$disk" bs=1 seek=$((4096 * 77 + 1000)) conv=notrunc status=none
boot raw-corrupt 60 "tern.disk=verify tern.poweroff=3" \
    -drive file="$disk",if=none,format=raw,id=d0 -device virtio-blk-device,drive=d0
check "raw detects a corrupted record" "$work/raw-corrupt.log" 'diskcheck: FAIL at record 77: bad checksum'

for fs in ext2 ext4; do
    echo "== $fs on virtio-blk"
    rm -f "$disk"
    mke2fs -q -t "$fs" -F "$disk" 16M
    boot "$fs" 90 "tern.disk=write,512,$fs tern.poweroff=5" \
        -drive file="$disk",if=none,format=raw,id=d0 -device virtio-blk-device,drive=d0
    check "$fs write" "$work/$fs.log" "diskcheck: OK 512 records written /mnt/diskcheck.dat"
    boot "$fs-verify" 90 "tern.disk=verify,,$fs tern.poweroff=5" \
        -drive file="$disk",if=none,format=raw,id=d0 -device virtio-blk-device,drive=d0
    check "$fs verify in a second boot" "$work/$fs-verify.log" "diskcheck: OK 512 records verified /mnt/diskcheck.dat"
    if e2fsck -fn "$disk" > "$work/$fs.fsck" 2>&1; then
        echo "ok   $fs image is clean (e2fsck)"; passed=$((passed + 1))
    else
        echo "FAIL $fs image is not clean (e2fsck)"; failed=$((failed + 1)); cat "$work/$fs.fsck"
    fi
done

echo "== dirtier"
boot dirty 90 "tern.dirty=8,2000 tern.poweroff=12"
check "dirtier runs and its pages check out" "$work/dirty.log" 'dirtier: [0-9]+ pages touched, pass [0-9]+, OK'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
