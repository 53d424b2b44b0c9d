#!/usr/bin/env bash
# Build the initramfs of the kdbus test VM.
#
# Usage: mkinitramfs.sh OUT.cpio.gz [--module PATH/kdbus.ko] [--bin PATH]... [--run SCRIPT]
#
#   --module  kdbus.ko, installed as /lib/modules/kdbus.ko (loaded by /init only
#             when the kernel command line has kdbus=1)
#   --bin     a statically linked program (or a script), installed in /bin;
#             repeatable. The VM has no libc, so dynamic binaries are refused.
#   --run     the script /init runs as /run.sh; without it the VM runs `true`.
#
# Everything else comes from this directory (init) and the host (busybox-static).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}

usage() { sed -n '4,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
out=$1; shift
case "$out" in -*) usage ;; esac
module='' run='' bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --module) module=${2:?--module needs a path}; shift 2 ;;
    --bin)    bins+=("${2:?--bin needs a path}"); shift 2 ;;
    --run)    run=${2:?--run needs a path}; shift 2 ;;
    -h|--help) usage ;;
    *) echo "mkinitramfs: unknown argument $1" >&2; usage ;;
  esac
done

die() { echo "mkinitramfs: $*" >&2; exit 1; }

# busybox must be the static one: the initramfs has no dynamic loader.
[ -x "$busybox" ] || die "$busybox not found (install busybox-static: tools/testing/setup-host.sh)"
# ldd fails on static ELF files and scripts ("not a dynamic executable"), and
# succeeds but says "statically linked" on static-pie ones (Rust +crt-static).
is_dynamic() {
  local out
  out=$(ldd "$1" 2>&1) || return 1
  case "$out" in *"statically linked"*) return 1 ;; esac
}
if is_dynamic "$busybox"; then die "$busybox is dynamically linked; install busybox-static"; fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/kdbus-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,lib/modules}

install -m 0755 "$busybox" "$stage/bin/busybox"
install -m 0755 "$here/init" "$stage/init"

if [ -n "$module" ]; then
  [ -f "$module" ] || die "module $module not found"
  install -m 0644 "$module" "$stage/lib/modules/kdbus.ko"
fi

for b in ${bins[@]+"${bins[@]}"}; do
  [ -f "$b" ] || die "binary $b not found"
  if is_dynamic "$b"; then
    die "$b is dynamically linked; the VM has no libc (link it statically, e.g. -C target-feature=+crt-static)"
  fi
  name=$(basename "$b")
  [ ! -e "$stage/bin/$name" ] || die "two --bin files named $name"
  install -m 0755 "$b" "$stage/bin/$name"
done

if [ -n "$run" ]; then
  [ -f "$run" ] || die "run script $run not found"
  install -m 0755 "$run" "$stage/run.sh"
else
  printf '#!/bin/sh\ntrue\n' > "$stage/run.sh"; chmod 0755 "$stage/run.sh"
fi

# The kernel opens /dev/console for /init before anything is mounted; without
# the node init starts with no stdio (init re-opens it after mounting devtmpfs,
# so a build without root still works, but boot-time output is nicer with it).
mknod -m 0600 "$stage/dev/console" c 5 1 2>/dev/null || true

mkdir -p "$(dirname "$out")"
tmp_out="$out.tmp.$$"
# Sorted names, fixed times, root ownership and renumbered inodes: the same
# inputs give the same archive, so it can be cached by content.
find "$stage" -exec touch -h -d @0 {} +
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
   cpio --quiet -o -H newc -R 0:0 --reproducible | gzip -6 -n) > "$tmp_out"
mv -f "$tmp_out" "$out"
echo "mkinitramfs: wrote $out ($(du -k "$out" | cut -f1) KiB)" >&2
