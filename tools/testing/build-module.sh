#!/usr/bin/env bash
# Build kdbus.ko out of tree against the cached test kernel of FLAVOUR, warnings
# as errors, and copy it to build/FLAVOUR/kdbus.ko (printed on stdout).
# KDBUS_CLIPPY=1 also runs the kernel's CLIPPY=1 build (Debian's clippy 1.85).
set -euo pipefail
. "$(dirname "$0")/env.sh"
flavour=${1:?usage: build-module.sh release|debug}
kdir=$(bash "$KDBUS_ROOT/tools/testing/build-kernel.sh" "$flavour")
out="$KDBUS_ROOT/build/$flavour"
mkdir -p "$out"
# The objects live in the source tree: one build at a time.
exec 9>"$KDBUS_ROOT/build/.module.lock"
flock 9
log="$out/module.log"
extra=()
[ "${KDBUS_CLIPPY:-0}" = 1 ] && extra+=(CLIPPY=1 CLIPPY_DRIVER=/usr/bin/clippy-driver)
# The objects live in the source tree; a previous build for the other flavour
# (other flags) must not be reused.
# (Not `make clean`: it would also delete the copies under build/.)
if [ "$(cat "$KDBUS_ROOT/kdbus/.flavour" 2>/dev/null)" != "$kdir" ] || [ ${#extra[@]} -gt 0 ]; then
  (cd "$KDBUS_ROOT" && rm -f kdbus/*.o kdbus/*.ko kdbus/*.mod kdbus/*.mod.c kdbus/.*.cmd \
     kdbus/.*.d kdbus/*_generated.rs kdbus/glue/*.o kdbus/glue/.*.cmd kdbus/glue/.*.d \
     kdbus/glue/*_generated.rs kdbus/modules.order .module-common.o .*.cmd \
     Module.symvers modules.order)
fi
if ! make -C "$kdir" M="$KDBUS_ROOT" "${KMAKE_ARGS[@]}" "${extra[@]}" modules >"$log" 2>&1; then
  cat "$log" >&2; exit 1
fi
echo "$kdir" > "$KDBUS_ROOT/kdbus/.flavour"
if grep -nE '^(warning|error)' "$log" >&2; then
  echo "build-module: the module build printed warnings (see above)" >&2; exit 1
fi
cp "$KDBUS_ROOT/kdbus/kdbus.ko" "$out/kdbus.ko"
echo "$out/kdbus.ko"
