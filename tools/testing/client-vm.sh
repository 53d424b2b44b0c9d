#!/usr/bin/env bash
# The client library's tests in the debug VM: kdbus-client-test and the
# examples of lib/kdbus-client, run by tools/testing/vm/client.sh.
#
# Usage: tools/testing/client-vm.sh [--ko PATH] [--log FILE] [--timeout SECS]
#                                   [--verbose] [-- TEST...]
#
#   --ko PATH       boot this kdbus.ko instead of building the debug module
#   --log FILE      the VM console (default build/client/vm.log)
#   --timeout SECS  run limit counted from init (default 900)
#   --verbose       show the whole console, not only the TAP lines
#   -- TEST...      run only these kdbus-client-test tests (see --list)
#
# Prints the TAP lines (`ok N ...`, `not ok N ...`, `# ...`); exits with
# run-vm.sh's status: 0 only if every test passed and the kernel log is
# clean (no KASAN, lockdep, WARNING, BUG, oops, kmemleak report).
set -euo pipefail
. "$(dirname "$0")/env.sh"

usage() { sed -n '5,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
say() { echo "client-vm: $*" >&2; }

ko='' log=$KDBUS_ROOT/build/client/vm.log timeout_s=900 verbose=0 tests=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ko)      ko=$(realpath -m "${2:?--ko needs a path}"); shift 2 ;;
    --log)     log=$(realpath -m "${2:?--log needs a path}"); shift 2 ;;
    --timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
    --verbose) verbose=1; shift ;;
    --) shift; tests=("$@"); break ;;
    -h|--help) usage ;;
    *) say "unknown argument $1"; usage ;;
  esac
done
cd "$KDBUS_ROOT"

bash tools/testing/setup-host.sh >&2
bash tools/testing/build-kernel.sh debug >/dev/null
if [ -z "$ko" ]; then
  say "kdbus.ko (debug)"
  ko=$(bash tools/testing/build-module.sh debug)
fi
[ -f "$ko" ] || { say "module $ko not found"; exit 2; }
say "kdbus-client-test and lib/kdbus-client's examples (static)"
bin=$(bash tools/testing/build-userspace.sh -p kdbus-client-test)
bash tools/testing/build-userspace.sh -p kdbus-client --features tokio --examples >/dev/null
ex=$bin/examples

out=$(dirname "$log")
mkdir -p "$out"
run=tools/testing/vm/client.sh
if [ ${#tests[@]} -gt 0 ]; then
  # Only the named tests, no examples.
  run=$out/client-run.sh
  printf '#!/bin/sh\nkdbus-client-test %s\n' "${tests[*]}" > "$run"
fi
bash tools/testing/vm/mkinitramfs.sh "$out/client.cpio.gz" --module "$ko" \
  --bin "$bin/kdbus-client-test" --bin "$ex/make-bus" --bin "$ex/echo-service" \
  --bin "$ex/echo-client" --bin "$ex/echo-client-async" --run "$run" >/dev/null 2>&1
say "booting the debug kernel (log: $log)"
set +e
if [ $verbose = 1 ]; then
  bash tools/testing/vm/run-vm.sh --flavour debug --initrd "$out/client.cpio.gz" \
    --cmdline "kdbus=1" --timeout "$timeout_s" --log "$log"
  rc=$?
else
  bash tools/testing/vm/run-vm.sh --flavour debug --initrd "$out/client.cpio.gz" \
    --cmdline "kdbus=1" --timeout "$timeout_s" --log "$log" 2>"$out/run-vm.log" |
    tr -d '\r' | grep -aE --line-buffered '^(ok|not ok) |^#'
  rc=${PIPESTATUS[0]}
  grep -aE 'run-vm: (PASS|FAIL)' "$out/run-vm.log" | tail -n 1 >&2
fi
set -e
[ "$rc" = 0 ] || say "FAILED: run-vm.sh status $rc (log: $log)"
exit "$rc"
