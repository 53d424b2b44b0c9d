#!/usr/bin/env bash
# Profile kdbus-bench in the release VM: `perf record -e cpu-clock -a` around
# one kdbus-bench run, then `perf report` (flat, no call graphs) printed from
# inside the guest, where /proc/kallsyms names the module's functions.
#
# Usage: tools/testing/profile.sh [--ko PATH] [--top N] [--log FILE] [-- ARGS...]
#
#   --ko PATH  boot this kdbus.ko instead of building one
#              (tools/testing/build-module.sh release)
#   --top N    lines of the report to print (default 60)
#   --log FILE the VM console (default build/profile/vm.log)
#   -- ARGS    passed on to kdbus-bench (default: --only meta --budget 40)
#
# perf comes from the host (Debian's linux-perf, `perf` on PATH); under TCG
# the cpu-clock samples are the only event, and call-graph mode (-g) distorts
# the emulated run too much to trust, so the report is a flat profile.
set -euo pipefail
. "$(dirname "$0")/env.sh"

usage() { sed -n '5,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
say() { echo "profile: $*" >&2; }

ko='' top=60 log=$KDBUS_ROOT/build/profile/vm.log bench_args=(--only meta --budget 40)
while [ $# -gt 0 ]; do
  case "$1" in
    --ko)  ko=$(realpath -m "${2:?--ko needs a path}"); shift 2 ;;
    --top) top=${2:?--top needs a number}; shift 2 ;;
    --log) log=$(realpath -m "${2:?--log needs a path}"); shift 2 ;;
    --) shift; bench_args=("$@"); break ;;
    -h|--help) usage ;;
    *) say "unknown argument $1"; usage ;;
  esac
done
case "$top" in ''|*[!0-9]*) say "--top needs a number, not '$top'"; exit 2 ;; esac
perf=$(command -v perf) || { say "perf not found (Debian: apt-get install linux-perf)"; exit 2; }
cd "$KDBUS_ROOT"

bash tools/testing/setup-host.sh >&2
bash tools/testing/build-kernel.sh release >/dev/null
[ -n "$ko" ] || ko=$(bash tools/testing/build-module.sh release)
bin=$(bash tools/testing/build-userspace.sh -p kdbus-bench --bin kdbus-bench)/kdbus-bench

out=build/profile
mkdir -p "$out" "$(dirname "$log")"
args=$(printf ' %q' "${bench_args[@]}")
# shellcheck disable=SC2016
{
  echo '#!/bin/sh'
  echo 'echo 0 > /proc/sys/kernel/kptr_restrict; echo -1 > /proc/sys/kernel/perf_event_paranoid'
  echo "perf record -q -e cpu-clock -a -o /tmp/perf.data -- kdbus-bench$args"
  echo 'rc=$?'
  echo 'echo "=== profile begin"'
  echo "perf report -i /tmp/perf.data --stdio --no-children --sort sym,dso 2>/dev/null | grep -v '^#' | grep -v '^\$' | head -n $top"
  echo 'echo "=== profile end"'
  echo 'exit $rc'
} > "$out/run.sh"
bash tools/testing/vm/mkinitramfs.sh "$out/profile.cpio.gz" --module "$ko" \
  --bin "$bin" --dyn "$perf" --run "$out/run.sh" >/dev/null
say "booting the release VM (console in $log)"
set +e
bash tools/testing/vm/run-vm.sh --flavour release --initrd "$out/profile.cpio.gz" \
  --cmdline "kdbus=1 kdbus.kmemleak=0" --timeout 900 --log "$log" >/dev/null
rc=$?
set -e
tr -d '\r' < "$log" | sed -n '/^BENCH /p; /=== profile begin/,/=== profile end/p'
exit "$rc"
