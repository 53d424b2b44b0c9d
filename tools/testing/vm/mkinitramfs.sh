#!/usr/bin/env bash
# Build the initramfs of the kdbus test VM.
#
# Usage: mkinitramfs.sh OUT.cpio.gz [--module PATH/kdbus.ko] [--bin PATH]...
#                       [--dyn PATH]... [--file SRC:DEST]... [--run SCRIPT]
#
#   --module  kdbus.ko, installed as /lib/modules/kdbus.ko (loaded by /init only
#             when the kernel command line has kdbus=1)
#   --bin     a statically linked program (or a script), installed in /bin;
#             repeatable. Dynamic binaries are refused here (see --dyn).
#   --dyn     a dynamically linked program, with the shared libraries ldd
#             finds for it (at the paths ldd names) and the dynamic loader;
#             installed at its own path if that is under /usr, /bin or /sbin
#             (programs that start others by a built-in path find them, e.g.
#             dbus-broker-launch -> /usr/bin/dbus-broker), else in /bin.
#             The image then also gets an /etc of its own (passwd and group
#             with root, messagebus and nobody; nsswitch.conf; a fixed
#             machine-id), unless --file provides those. Repeatable.
#   --file    a plain file (e.g. a bus configuration) installed as DEST, an
#             absolute path in the image; repeatable.
#   --run     the script /init runs as /run.sh; without it the VM runs `true`.
#
# Everything else comes from this directory (init) and the host (busybox-static).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
busybox=${BUSYBOX:-/bin/busybox}

usage() { sed -n '4,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
out=$1; shift
case "$out" in -*) usage ;; esac
module='' run='' bins=() dyns=() files=()
while [ $# -gt 0 ]; do
  case "$1" in
    --module) module=${2:?--module needs a path}; shift 2 ;;
    --bin)    bins+=("${2:?--bin needs a path}"); shift 2 ;;
    --dyn)    dyns+=("${2:?--dyn needs a path}"); shift 2 ;;
    --file)   files+=("${2:?--file needs SRC:DEST}"); shift 2 ;;
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

# Dynamically linked programs: ldd's libraries at the paths it prints, the
# loader at the path it prints (the program's PT_INTERP). Debian's loader
# searches /lib/x86_64-linux-gnu and /usr/lib/x86_64-linux-gnu by default,
# so no ld.so.cache is needed.
install_lib() {  # install_lib HOST_PATH: the same path in the image, contents (not links)
  [ -e "$stage$1" ] || install -D -m 0755 "$1" "$stage$1"
}
for p in ${dyns[@]+"${dyns[@]}"}; do
  [ -f "$p" ] || die "program $p not found"
  is_dynamic "$p" || die "$p is not dynamically linked (use --bin for static programs and scripts)"
  abs=$(realpath -s "$p")
  case "$abs" in
    /usr/*|/bin/*|/sbin/*) dest=$abs ;;
    *) dest=/bin/$(basename "$p") ;;
  esac
  [ ! -e "$stage$dest" ] || die "two programs for $dest"
  install -D -m 0755 "$p" "$stage$dest"
  libs=$(ldd "$p") || die "ldd $p failed"
  while read -r first arrow target _; do
    case "$first" in
      linux-vdso.so.*|linux-gate.so.*) ;;
      /*) install_lib "$first" ;;  # the loader: "/lib64/ld-linux-x86-64.so.2 (0x...)"
      *)
        [ "$arrow" = "=>" ] || die "ldd $p: unexpected line: $first $arrow $target"
        case "$target" in
          /*) install_lib "$target" ;;
          *) die "ldd $p: $first not found" ;;
        esac ;;
    esac
  done <<< "$libs"
done

for f in ${files[@]+"${files[@]}"}; do
  src=${f%%:*} dest=${f#*:}
  case "$f" in *:/*) ;; *) die "--file needs SRC:/ABSOLUTE/DEST, not $f" ;; esac
  [ -f "$src" ] || die "file $src not found"
  install -D -m 0644 "$src" "$stage$dest"
done

# An /etc for dynamic programs (libc's user lookups, D-Bus' machine id).
if [ ${#dyns[@]} -gt 0 ]; then
  mkdir -p "$stage/etc"
  [ -e "$stage/etc/passwd" ] || printf '%s\n' 'root:x:0:0:root:/tmp:/bin/sh' \
    'messagebus:x:100:101::/nonexistent:/bin/false' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > "$stage/etc/passwd"
  [ -e "$stage/etc/group" ] || printf '%s\n' 'root:x:0:' 'messagebus:x:101:' \
    'nogroup:x:65534:' > "$stage/etc/group"
  [ -e "$stage/etc/nsswitch.conf" ] || printf '%s\n' 'passwd: files' 'group: files' \
    'hosts: files' > "$stage/etc/nsswitch.conf"
  # 32 hex digits, fixed so that the archive stays reproducible ("kdbus-vm-machine").
  [ -e "$stage/etc/machine-id" ] || echo 6b646275732d766d2d6d616368696e65 > "$stage/etc/machine-id"
fi

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
