#!/bin/sh
# Builds Tern's Linux guest: a small riscv64 kernel from Debian's
# linux-source-6.1 and an initramfs of our own programs.
#
#   src/guests/linux/build.sh [--regen-config] [--initramfs-only] [--out DIR]
#
#   --regen-config    rebuild tern.config from `tinyconfig` + tern.fragment
#                     (savedefconfig form), then build as usual
#   --initramfs-only  rebuild only the programs and the initramfs
#   --out DIR         write the artefacts to DIR (default: out/ beside this
#                     script, which is what the repo commits)
#
# Outputs: Image.gz, initramfs.cpio.gz, SHA256SUMS and BUILDINFO.
#
# It installs nothing: it names the Debian packages it is missing and stops.
# The kernel tree is unpacked outside the repo, into $TERN_LINUX_BUILD
# (default ~/.cache/tern-linux), and reused by later runs (incremental).
# The kernel is built with `nice -n 19 make -j$TERN_JOBS` (default 2).
#
# Deterministic: fixed KBUILD_BUILD_* and SOURCE_DATE_EPOCH, one fixed build
# directory path, sorted cpio entries with fixed owners and times, gzip -n,
# The same Debian package versions give the same bytes.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="$here/out"
regen=0
kernel=1
while [ $# -gt 0 ]; do
    case "$1" in
        --regen-config) regen=1 ;;
        --initramfs-only) kernel=0 ;;
        --out) shift; out=$1 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

# --- Required tools, by Debian package ---------------------------------------
missing=""
need() { # need PACKAGE COMMAND-OR-FILE
    case "$2" in
        /*) [ -e "$2" ] || missing="$missing $1" ;;
        *) command -v "$2" >/dev/null 2>&1 || missing="$missing $1" ;;
    esac
}
need linux-source-6.1      /usr/src/linux-source-6.1.tar.xz
need gcc-riscv64-linux-gnu riscv64-linux-gnu-gcc
need gcc                   gcc
need make                  make
need bc                    bc
need flex                  flex
need bison                 bison
need xz-utils              xz
need gzip                  gzip
need libssl-dev            /usr/include/openssl/ssl.h
need libelf-dev            /usr/include/libelf.h
need cpio                  cpio
need coreutils             sha256sum
if [ -n "$missing" ]; then
    echo "build.sh: missing Debian packages:$missing" >&2
    echo "  apt-get install$missing" >&2
    exit 1
fi

export LC_ALL=C TZ=UTC
export SOURCE_DATE_EPOCH=1700000000
export KBUILD_BUILD_TIMESTAMP="@$SOURCE_DATE_EPOCH"
export KBUILD_BUILD_USER=tern
export KBUILD_BUILD_HOST=tern
export KBUILD_BUILD_VERSION=1
export ARCH=riscv
export CROSS_COMPILE=riscv64-linux-gnu-
jobs=${TERN_JOBS:-2}

# --- Kernel tree --------------------------------------------------------------
build=${TERN_LINUX_BUILD:-${XDG_CACHE_HOME:-$HOME/.cache}/tern-linux}
src="$build/linux-source-6.1"
pkgver=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || echo unknown)
if [ ! -f "$src/.tern-unpacked" ] || [ "$(cat "$src/.tern-unpacked")" != "$pkgver" ]; then
    echo "== unpacking linux-source-6.1 $pkgver into $build"
    rm -rf "$src"
    mkdir -p "$build"
    tar -C "$build" -xJf /usr/src/linux-source-6.1.tar.xz
    echo "$pkgver" > "$src/.tern-unpacked"
fi
kmake() { nice -n 19 make -C "$src" -j"$jobs" "$@"; }

# --- Configuration ------------------------------------------------------------
if [ "$regen" = 1 ]; then
    echo "== regenerating tern.config from tinyconfig + tern.fragment"
    kmake -s tinyconfig
    # Our own merge: drop every symbol the fragment names, append the fragment.
    syms=$(sed -n -e 's/^\(CONFIG_[A-Za-z0-9_]*\)=.*/\1/p' \
                  -e 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1/p' "$here/tern.fragment")
    cp "$src/.config" "$src/.config.tiny"
    for s in $syms; do
        sed -i -e "/^$s=/d" -e "/^# $s is not set\$/d" "$src/.config.tiny"
    done
    cat "$src/.config.tiny" "$here/tern.fragment" > "$src/.config"
    rm -f "$src/.config.tiny"
    kmake -s olddefconfig
    kmake -s savedefconfig
    mv "$src/defconfig" "$here/tern.config"
fi
if [ ! -f "$src/.config" ] || [ ! -f "$src/.tern-config" ] || ! cmp -s "$here/tern.config" "$src/.tern-config"; then
    cp "$here/tern.config" "$src/.config"
    kmake -s olddefconfig
    cp "$here/tern.config" "$src/.tern-config"
fi
# Every choice of the fragment must have survived Kconfig's dependencies.
bad=0
for line in $(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*=.*\)$/\1/p' "$here/tern.fragment"); do
    grep -qxF "$line" "$src/.config" || { echo "build.sh: config lost $line" >&2; bad=1; }
done
for s in $(sed -n 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1/p' "$here/tern.fragment"); do
    grep -q "^$s=" "$src/.config" && { echo "build.sh: config still sets $s" >&2; bad=1; }
done
[ "$bad" = 0 ] || exit 1

# --- Kernel -------------------------------------------------------------------
if [ "$kernel" = 1 ]; then
    echo "== building Image (nice -n 19 make -j$jobs)"
    kmake Image
fi
image="$src/arch/riscv/boot/Image"
[ -f "$image" ] || { echo "build.sh: no kernel Image yet; run without --initramfs-only" >&2; exit 1; }

# --- Programs and initramfs ---------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
echo "== building programs"
CFLAGS="-Os -march=rv64gc -mabi=lp64d -ffreestanding -fno-builtin -fno-stack-protector
 -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-pic -fno-ident -fno-tree-loop-distribute-patterns -Wall -Wextra -Werror
 -ffile-prefix-map=$here=."
LDFLAGS="-static -nostdlib -nostartfiles -no-pie -s -Wl,--build-id=none -Wl,--gc-sections
 -Wl,--no-warn-rwx-segments"
mkdir -p "$tmp/root"
for p in init dirtier diskcheck; do
    # shellcheck disable=SC2086
    riscv64-linux-gnu-gcc $CFLAGS -ffunction-sections -fdata-sections \
        -I"$here/programs" -c "$here/programs/$p.c" -o "$tmp/$p.o"
    # shellcheck disable=SC2086
    riscv64-linux-gnu-gcc $LDFLAGS "$tmp/$p.o" -o "$tmp/root/$p"
    touch -d "@$SOURCE_DATE_EPOCH" "$tmp/root/$p"
done
gcc -O2 -o "$tmp/gen_init_cpio" "$src/usr/gen_init_cpio.c"
# Entries sorted by path (a directory before its contents), owned by root,
# times fixed by -t and the touch above.
cat > "$tmp/list" <<EOF
dir /bin 0755 0 0
file /bin/dirtier $tmp/root/dirtier 0755 0 0
file /bin/diskcheck $tmp/root/diskcheck 0755 0 0
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
file /init $tmp/root/init 0755 0 0
dir /mnt 0755 0 0
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 01777 0 0
EOF
"$tmp/gen_init_cpio" -t "$SOURCE_DATE_EPOCH" "$tmp/list" > "$tmp/initramfs.cpio"

echo "== writing $out"
gzip -9 -n -c "$tmp/initramfs.cpio" > "$out/initramfs.cpio.gz"
# gzip, not xz: Tern's loader (and .NET) unpack gzip kernels directly; -n keeps it reproducible.
gzip -9n -c "$image" > "$out/Image.gz"
(cd "$out" && sha256sum Image.gz initramfs.cpio.gz > SHA256SUMS)
{
    echo "linux-source-6.1 $pkgver"
    echo "kernel $(make -s -C "$src" kernelrelease)"
    echo "compiler $(riscv64-linux-gnu-gcc --version | head -n1)"
    echo "Image $(wc -c < "$image") bytes, sha256 $(sha256sum < "$image" | cut -d' ' -f1)"
    echo "initramfs.cpio $(wc -c < "$tmp/initramfs.cpio") bytes"
    for p in init dirtier diskcheck; do echo "program $p $(wc -c < "$tmp/root/$p") bytes"; done
} > "$out/BUILDINFO"
cat "$out/BUILDINFO"
ls -l "$out"
