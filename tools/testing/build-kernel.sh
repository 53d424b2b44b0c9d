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

ver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
src="$KDBUS_CACHE/src-linux-$ver"
if [ ! -f "$src/.done" ]; then
  echo "kernel: unpacking $KERNEL_TARBALL" >&2
  rm -rf "$src" && mkdir -p "$src"
  tar -xf "$KERNEL_TARBALL" -C "$src" --strip-components=1
  touch "$src/.done"
fi

rm -rf "$out" && mkdir -p "$out"
log="$out/build.log"
echo "kernel: building $flavour in $out (log: $log)" >&2
start=$(date +%s)
{
  make -C "$src" O="$out" "${KMAKE_ARGS[@]}" tinyconfig
  KCONFIG_CONFIG="$out/.config" "$src/scripts/kconfig/merge_config.sh" -m -O "$out" \
    "$out/.config" "$KDBUS_ROOT/tools/testing/kernel/base.config" \
    "$KDBUS_ROOT/tools/testing/kernel/$flavour.config"
  make -C "$src" O="$out" "${KMAKE_ARGS[@]}" olddefconfig
} >"$log" 2>&1
# Every line of the fragments must have survived olddefconfig.
bad=0
for f in base "$flavour"; do
  while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    opt=${line%%=*}; val=${line#*=}
    if [ "$val" = n ]; then
      grep -q "^$opt=" "$out/.config" && { echo "kernel: $opt should be off" >&2; bad=1; }
    else
      grep -qx "$line" "$out/.config" || { echo "kernel: $line did not survive olddefconfig" >&2; bad=1; }
    fi
  done < "$KDBUS_ROOT/tools/testing/kernel/$f.config"
done
[ $bad = 0 ] || exit 1
make -C "$src" O="$out" "${KMAKE_ARGS[@]}" -j"$(nproc)" bzImage modules >>"$log" 2>&1 || {
  tail -40 "$log" >&2; exit 1; }
echo "kernel: $flavour built in $(( $(date +%s) - start )) s" >&2
touch "$out/.done"
echo "$out"
