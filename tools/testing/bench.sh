#!/usr/bin/env bash
# Run kdbus-bench in the release VM and print its results.
#
# Usage: tools/testing/bench.sh [--budget SECS] [--ko PATH] [--log FILE] [--verbose] [-- ARGS...]
#
#   --budget SECS  measurement time kdbus-bench aims at (default 200); the
#                  VM timeout is derived from it
#   --ko PATH      boot this kdbus.ko instead of building one
#                  (tools/testing/build-module.sh release)
#   --log FILE     the VM console (default build/bench/vm.log)
#   --verbose      show the whole console (boot, kernel log), not only the
#                  benchmark's output
#   -- ARGS        passed on to kdbus-bench (e.g. -- --only rtt --rounds 5)
#
# Builds (cached) the release kernel, kdbus.ko, the static kdbus-bench, an
# initramfs, boots QEMU with kdbus=1 (2 CPUs, TCG unless KVM works; see
# run-vm.sh) and prints the benchmark's tables and BENCH lines.
# CARGO_TARGET_DIR and KDBUS_VM_ACCEL are honoured.
#
# Exit status: kdbus-bench's (0 every measurement ran, 1 one failed, never
# because of a slow ratio), or run-vm.sh's when the VM run itself failed.
set -euo pipefail
. "$(dirname "$0")/env.sh"

usage() { sed -n '4,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
say() { echo "bench: $*" >&2; }

budget=200 ko='' log=$KDBUS_ROOT/build/bench/vm.log verbose=0 bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --budget)  budget=${2:?--budget needs seconds}; shift 2 ;;
    --ko)      ko=$(realpath -m "${2:?--ko needs a path}"); shift 2 ;;
    --log)     log=$(realpath -m "${2:?--log needs a path}"); shift 2 ;;
    --verbose) verbose=1; shift ;;
    --) shift; bench_args=("$@"); break ;;
    -h|--help) usage ;;
    *) say "unknown argument $1"; usage ;;
  esac
done
case "$budget" in ''|*[!0-9]*|0) say "--budget needs a positive whole number of seconds"; exit 2 ;; esac
cd "$KDBUS_ROOT"

bash tools/testing/setup-host.sh >&2
say "release kernel (cached after the first build)"
bash tools/testing/build-kernel.sh release >/dev/null
if [ -z "$ko" ]; then
  say "kdbus.ko (release)"
  ko=$(bash tools/testing/build-module.sh release) || {
    say "building kdbus.ko failed (see above; the module may be mid-edit): retry later or pass --ko PATH"
    exit 1; }
fi
[ -f "$ko" ] || { say "module $ko not found"; exit 2; }

say "kdbus-bench (static)"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
  --target x86_64-unknown-linux-gnu -p kdbus-bench >&2
bin=${CARGO_TARGET_DIR:-$KDBUS_ROOT/target}/x86_64-unknown-linux-gnu/release/kdbus-bench

out=build/bench
mkdir -p "$out" "$(dirname "$log")"
args=$(printf ' %q' --budget "$budget" ${bench_args[@]+"${bench_args[@]}"})
cat > "$out/run.sh" <<RUN
#!/bin/sh
echo "=== kdbus-bench begin"
kdbus-bench$args
rc=\$?
echo "=== kdbus-bench end (status \$rc)"
exit \$rc
RUN
bash tools/testing/vm/mkinitramfs.sh "$out/bench.cpio.gz" --module "$ko" \
  --bin "$bin" --run "$out/run.sh" >/dev/null

# The measurements may overshoot their budget a little (at least two
# iterations of every 64 MiB transfer); boot under TCG takes seconds.
timeout_s=$(( budget * 3 / 2 + 180 ))
say "booting the release VM (budget ${budget}s, timeout ${timeout_s}s, console in $log)"
set +e
if [ "$verbose" = 1 ]; then
  bash tools/testing/vm/run-vm.sh --flavour release --initrd "$out/bench.cpio.gz" \
    --cmdline "kdbus=1 kdbus.kmemleak=0" --timeout "$timeout_s" --log "$log"
else
  bash tools/testing/vm/run-vm.sh --flavour release --initrd "$out/bench.cpio.gz" \
    --cmdline "kdbus=1 kdbus.kmemleak=0" --timeout "$timeout_s" --log "$log" >/dev/null
fi
rc=$?
set -e
if [ "$verbose" = 0 ]; then
  if grep -aq '=== kdbus-bench begin' "$log"; then
    tr -d '\r' < "$log" | sed -n '/=== kdbus-bench begin/,/=== kdbus-bench end/p'
  else
    say "kdbus-bench did not start; the end of the console:"
    tr -d '\r' < "$log" | tail -40
  fi
fi
[ "$rc" = 0 ] || say "status $rc (console: $log)"
exit "$rc"
