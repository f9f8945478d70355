#!/bin/sh
# Runs the guest programs on QEMU's virt board (the reference) and checks
# their exit status.  Usage: src/guests/qemu-check.sh [BINDIR] [--bench]
#
# -smp 2: QEMU 7.2 with one vCPU expands AMOs into plain load + store and then
# reports AMO faults as load faults; with two vCPUs it uses real atomics and
# reports store/AMO faults as the spec requires.  Extra harts park in wfi.
# strict.elf is expected to fail test 1 on QEMU 7.2 (see its header).
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/bin
bench=0
for a in "$@"; do
    case $a in
    --bench) bench=1 ;;
    *) bin=$a ;;
    esac
done
QEMU="qemu-system-riscv64 -machine virt -smp 2 -bios none -nographic"
status=0

run() { # run ELF EXPECTED_EXIT
    start=$(date +%s.%N)
    out=$(timeout 60 $QEMU -kernel "$1" </dev/null 2>&1)
    rc=$?
    t=$(echo "$(date +%s.%N) - $start" | bc)
    if [ "$rc" -eq "$2" ]; then
        printf 'ok    %-28s exit %-3s %5.2fs\n' "${1#$bin/}" "$rc" "$t"
    else
        printf 'FAIL  %-28s exit %s, expected %s\n%s\n' "${1#$bin/}" "$rc" "$2" "$out"
        status=1
    fi
}

for f in "$bin"/isa/*.elf; do
    case $(basename "$f") in
    strict.elf) run "$f" 1 ;;
    *) run "$f" 0 ;;
    esac
done
run "$bin/isa-fail/fail.elf" 3
run "$bin/hello/hello.elf" 0
case $out in
*"Hello from Tern"*) ;;
*) echo "FAIL  hello/hello.elf printed: $out"; status=1 ;;
esac
run "$bin/exitcode/exit42.elf" 42
if [ "$bench" -eq 1 ]; then
    # -icount shift=0: minstret counts instructions (otherwise it is host ticks)
    QEMU="$QEMU -icount shift=0"
    run "$bin/bench/cpubench.elf" 0
fi
exit $status
