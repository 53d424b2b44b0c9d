#!/usr/bin/env bash
# Fuzz the kdbus module of this worktree in the debug VM with kdbus-fuzz.
#
# Usage: tools/testing/fuzz.sh [--duration SECS] [--seed N] [--ko PATH]
#                              [--log FILE] [--verbose] [-- ARGS...]
#
#   --duration SECS  fuzzing time in the VM (default 60, or $DURATION)
#   --seed N         replay this seed (default: kdbus-fuzz picks one and
#                    prints it)
#   --ko PATH        boot this kdbus.ko instead of building the debug module
#                    (tools/testing/build-module.sh debug)
#   --log FILE       the VM console (default build/fuzz/vm.log)
#   --verbose        show the whole console, not only the fuzzer's lines
#   -- ARGS          more kdbus-fuzz arguments (no commas), e.g.
#                    -- --procs 3 --threads 2 --exclude-fd tty
#
# Builds the debug module, the static kdbus-fuzz and an initramfs running
# tools/testing/vm/fuzz.sh, boots the debug kernel (KASAN, lockdep,
# kmemleak, hung-task detection) and prints the seed, the summary and the
# TAP lines (fuzz-run-completed, unmount, rmmod). The verdict is run-vm.sh's:
# 0 only if all three passed and the kernel log is clean (check-log.sh).
# CARGO_TARGET_DIR and KDBUS_VM_ACCEL are honoured.
set -euo pipefail
. "$(dirname "$0")/env.sh"

usage() { sed -n '4,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
say() { echo "fuzz: $*" >&2; }

duration=${DURATION:-60} seed='' ko='' log=$KDBUS_ROOT/build/fuzz/vm.log verbose=0 extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=${2:?--duration needs seconds}; shift 2 ;;
    --seed)     seed=${2:?--seed needs a number}; shift 2 ;;
    --ko)       ko=$(realpath -m "${2:?--ko needs a path}"); shift 2 ;;
    --log)      log=$(realpath -m "${2:?--log needs a path}"); shift 2 ;;
    --verbose)  verbose=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) usage ;;
    *) say "unknown argument $1"; usage ;;
  esac
done
case "$duration" in ''|*[!0-9]*|0) say "--duration needs a positive whole number of seconds"; exit 2 ;; esac
case "$seed" in *[!0-9]*) say "--seed needs a number"; exit 2 ;; esac
for a in ${extra[@]+"${extra[@]}"}; do
  case "$a" in *,*|*' '*) say "kdbus-fuzz arguments must not contain commas or spaces: '$a'"; exit 2 ;; esac
done
cd "$KDBUS_ROOT"

bash tools/testing/setup-host.sh >&2
say "debug kernel (cached after the first build)"
bash tools/testing/build-kernel.sh debug >/dev/null
if [ -z "$ko" ]; then
  say "kdbus.ko (debug)"
  ko=$(bash tools/testing/build-module.sh debug) || {
    say "building kdbus.ko failed (see above): retry later or pass --ko PATH"; exit 1; }
fi
[ -f "$ko" ] || { say "module $ko not found"; exit 2; }

say "kdbus-fuzz (static)"
bindir=$(bash tools/testing/build-userspace.sh -p kdbus-fuzz)

out=build/fuzz
mkdir -p "$out" "$(dirname "$log")"
bash tools/testing/vm/mkinitramfs.sh "$out/fuzz.cpio.gz" --module "$ko" \
  --bin "$bindir/kdbus-fuzz" --run tools/testing/vm/fuzz.sh >/dev/null

cmdline="kdbus=1 kdbusfuzz.duration=$duration"
[ -z "$seed" ] || cmdline="$cmdline kdbusfuzz.seed=$seed"
if [ ${#extra[@]} -gt 0 ]; then
  cmdline="$cmdline kdbusfuzz.args=$(IFS=,; echo "${extra[*]}")"
fi
# The guest limit covers the fuzzing, kdbus-fuzz's own wind-down (<= 45 s)
# and the checks, in guest time. The host limit is in wall time: boot
# (~10-20 s), the kmemleak scans (~15 s) and a TCG guest clock that runs at
# half speed or less when the host is busy (seen: 112 guest s in 270 s).
guest=$(( duration + 120 ))
timeout_s=$(( 2 * guest + 120 ))
cmdline="$cmdline kdbus.timeout=$guest"
say "booting the debug VM (fuzzing ${duration}s, timeout ${timeout_s}s, console in $log)"
set +e
if [ "$verbose" = 1 ]; then
  bash tools/testing/vm/run-vm.sh --flavour debug --initrd "$out/fuzz.cpio.gz" \
    --cmdline "$cmdline" --timeout "$timeout_s" --log "$log"
else
  bash tools/testing/vm/run-vm.sh --flavour debug --initrd "$out/fuzz.cpio.gz" \
    --cmdline "$cmdline" --timeout "$timeout_s" --log "$log" >/dev/null
fi
rc=$?
set -e
if [ "$verbose" = 0 ]; then
  tr -d '\r' < "$log" | grep -aE '^(kdbus-fuzz: |fuzz\.sh: |ok [0-9]|not ok [0-9]|# )' || true
fi
if [ "$rc" != 0 ]; then
  say "FAIL (status $rc); console: $log"
  # The first kernel report, for the reader who does not open the log.
  first=$(tr -d '\r' < "$log" | grep -anE 'Oops|BUG:|WARNING:|KASAN|general protection|INFO: task|unreferenced object|possible circular|Kernel panic' | head -1 | cut -d: -f1)
  if [ -n "$first" ]; then
    say "kernel report at line $first of the console:"
    tr -d '\r' < "$log" | sed -n "$((first > 3 ? first - 3 : 1)),$((first + 40))p" | sed 's/^/  | /' >&2
  fi
else
  say "PASS"
fi
exit "$rc"
