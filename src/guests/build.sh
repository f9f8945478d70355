#!/bin/sh
# Builds Tern's guest programs with Debian's riscv64-unknown-elf toolchain.
#
#   src/guests/build.sh [OUTDIR]     (default: src/guests/bin)
#
# The ELFs in src/guests/bin are committed so `dotnet test` works without a
# cross compiler; .ci/build-guests rebuilds them into a temp dir and compares.
# That only works if the build is deterministic, hence: relative source paths,
# -ffile-prefix-map, no build-id, no .comment, fixed locale, serial build.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/bin"}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$here"

export LC_ALL=C
export SOURCE_DATE_EPOCH=0
CROSS=${CROSS_COMPILE:-riscv64-unknown-elf-}
CC="${CROSS}gcc"

ARCH="-march=rv64gc -mabi=lp64d -mcmodel=medany"
# Everything is freestanding and statically linked at a fixed address.
LINK="-static -nostdlib -nostartfiles -Wl,--build-id=none -Wl,--no-warn-rwx-segments"
REPRO="-ffile-prefix-map=$here=."

# Only outputs this script owns are removed, so a stale ELF of a deleted
# source cannot linger in bin/.
for d in isa isa-fail hello exitcode heartbeat bench sbi migbench migrate diskverify; do
    rm -f "$out/$d"/*.elf
    mkdir -p "$out/$d"
done

# Objects go to a scratch directory: compiling and linking in one gcc call
# would leave a randomly named temporary object in the ELF's symbol table.
objdir=$(mktemp -d)
trap 'rm -rf "$objdir"' EXIT INT TERM

build() { # build OUTPUT LINKER_SCRIPT "CFLAGS" SOURCES...
    o=$1; ld=$2; flags=$3; shift 3
    echo "  GUEST $o"
    objs=
    for src in "$@"; do
        obj="$objdir/$(echo "$o-$src" | tr '/' '_').o"
        # shellcheck disable=SC2086
        "$CC" $ARCH $REPRO $flags -c "$src" -o "$obj"
        objs="$objs $obj"
    done
    # shellcheck disable=SC2086
    "$CC" $ARCH $LINK -T "$ld" $objs -o "$out/$o"
}

# ISA tests: one ELF per instruction group.
for s in isa/*.S; do
    n=$(basename "$s" .S)
    build "isa/$n.elf" isa/link.ld -Iisa "$s"
done

# A deliberately failing ISA program (test 3), to test the test runner.
build isa-fail/fail.elf isa/link.ld -Iisa isa-fail/fail.S

build hello/hello.elf common/link.ld "" hello/hello.S
build exitcode/exit42.elf common/link.ld "" exitcode/exit42.S
build heartbeat/heartbeat.elf common/link.ld "" heartbeat/heartbeat.S

# Guests that live migration is tested with (heartbeat with a checked pattern; icount checksum run).
build migrate/heartbeat.elf common/link.ld "-Imigrate" migrate/heartbeat.S
build migrate/checksum.elf common/link.ld "-Imigrate" migrate/checksum.S

# S-mode kernels for firmware boot (OpenSBI jumps to 0x80200000).
build sbi/smp.elf sbi/link.ld "" sbi/smp.S

# CPU benchmark: plain C, freestanding.
build bench/cpubench.elf bench/link.ld "-O2 -ffreestanding -fno-builtin \
    -fno-common -fno-tree-loop-distribute-patterns -Wall -Wextra -Werror" \
    bench/start.S bench/cpubench.c

# Live-migration benchmark guests (tern bench migrate): one source, six cases.
MIGBENCH="-O2 -ffreestanding -fno-builtin -fno-common -fno-tree-loop-distribute-patterns -Wall -Wextra -Werror"
build migbench/idle.elf bench/link.ld "$MIGBENCH" bench/start.S migbench/migbench.c
build migbench/ws.elf bench/link.ld "$MIGBENCH -DWORKING_SET=1" bench/start.S migbench/migbench.c
build migbench/dirty1k.elf bench/link.ld "$MIGBENCH -DWORKING_SET=1 -DDIRTY_RATE=1000" bench/start.S migbench/migbench.c
build migbench/dirty10k.elf bench/link.ld "$MIGBENCH -DWORKING_SET=1 -DDIRTY_RATE=10000" bench/start.S migbench/migbench.c
build migbench/dirty50k.elf bench/link.ld "$MIGBENCH -DWORKING_SET=1 -DDIRTY_RATE=50000" bench/start.S migbench/migbench.c
build migbench/wfi.elf bench/link.ld "$MIGBENCH -DUSE_WFI=1" bench/start.S migbench/migbench.c

# The disk verifier (issue 6): checksummed records on its virtio-blk disk, ACKed after each flush.
build diskverify/diskverify.elf bench/link.ld "$MIGBENCH" bench/start.S diskverify/diskverify.c
