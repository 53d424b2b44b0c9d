#!/usr/bin/env bash
# Build (or reuse) the test kernel of one flavour: release or debug.
# The result lives in the cache, outside the repository, keyed by its inputs.
# Usage: build-kernel.sh FLAVOUR   -> prints the build directory on stdout
set -euo pipefail
. "$(dirname "$0")/env.sh"
flavour=${1:?usage: build-kernel.sh release|debug}
[ -f "$KDBUS_ROOT/tools/testing/kernel/$flavour.config" ] || { echo "unknown flavour $flavour" >&2; exit 2; }

out=$(kernel_dir "$flavour")
if [ -f "$out/.done" ]; then echo "$out"; exit 0; fi
mkdir -p "$KDBUS_CACHE"

# Two commands or two checkouts may want the same cache entry at once: one
# lock per entry; the build happens in a private directory that is renamed
# into place when complete, so a finished entry is never half-written and a
# second builder never deletes the first one's work.
exec 8>"$out.lock"
if ! flock -n 8; then
  echo "kernel: waiting for another build of $(basename "$out")" >&2
  flock 8
fi
if [ -f "$out/.done" ]; then echo "$out"; exit 0; fi

ver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
src="$KDBUS_CACHE/src-linux-$ver"
exec 7>"$src.lock"
flock 7
if [ ! -f "$src/.done" ]; then
  echo "kernel: unpacking $KERNEL_TARBALL" >&2
  tmpsrc=$(mktemp -d "$src.tmp.XXXXXX")
  tar -xf "$KERNEL_TARBALL" -C "$tmpsrc" --strip-components=1
  touch "$tmpsrc/.done"
  rm -rf "$src" && mv "$tmpsrc" "$src"
fi
flock -u 7

# The kernel's O= directory is only named in generated files that the module
# build does not read back, so building under another name and renaming works
# (checked: modules build against the renamed tree).
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log="$tmp/build.log"
echo "kernel: building $flavour in $tmp (log: $log), then $out" >&2
start=$(date +%s)
{
  make -C "$src" O="$tmp" "${KMAKE_ARGS[@]}" tinyconfig
  KCONFIG_CONFIG="$tmp/.config" "$src/scripts/kconfig/merge_config.sh" -m -O "$tmp" \
    "$tmp/.config" "$KDBUS_ROOT/tools/testing/kernel/base.config" \
    "$KDBUS_ROOT/tools/testing/kernel/$flavour.config"
  make -C "$src" O="$tmp" "${KMAKE_ARGS[@]}" olddefconfig
} >"$log" 2>&1
# Every line of the fragments must have survived olddefconfig.
bad=0
for f in base "$flavour"; do
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    opt=${line%%=*}; val=${line#*=}
    if [ "$val" = n ]; then
      grep -q "^$opt=" "$tmp/.config" && { echo "kernel: $opt should be off" >&2; bad=1; }
    else
      grep -qx "$line" "$tmp/.config" || { echo "kernel: $line did not survive olddefconfig" >&2; bad=1; }
    fi
  done < "$KDBUS_ROOT/tools/testing/kernel/$f.config"
done
[ $bad = 0 ] || exit 1
make -C "$src" O="$tmp" "${KMAKE_ARGS[@]}" -j"$(nproc)" bzImage modules >>"$log" 2>&1 || {
  tail -40 "$log" >&2; exit 1; }
echo "kernel: $flavour built in $(( $(date +%s) - start )) s" >&2
touch "$tmp/.done"
rm -rf "$out" && mv "$tmp" "$out"
trap - EXIT
echo "$out"
