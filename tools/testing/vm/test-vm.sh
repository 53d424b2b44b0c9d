#!/usr/bin/env bash
# End-to-end self-test of the VM machinery (mkinitramfs.sh, init, run-vm.sh,
# check-log.sh) on a real boot. Needs the cached kernel of FLAVOUR; no kdbus.ko.
#
# Usage: test-vm.sh [release|debug]     (default debug)
# Ends with the line `N passed, N failed`; exits non-zero if any failed.
# Takes a few minutes under TCG: every case is one boot.
# Every case's time limit counts from init (run-vm.sh waits for init's first
# line before starting the run's clock, with a boot limit of its own), so a
# host three times slower than usual still passes; the one case that tests
# the boot limit derives it from the boots measured before it.
# Run scripts are single-quoted: they expand inside the VM, not here.
# shellcheck disable=SC2016
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
flavour=${1:-debug}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kdbus-test-vm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# vmcase NAME WANT_RC RUN_SCRIPT_TEXT CMDLINE TIMEOUT [GREP_IN_LOG]...
# WANT_RC: a number, or "nonzero". The initramfs gets --module $module if set
# and --bin for each of ${bins[@]}; run-vm.sh gets --boot-timeout $boot_tmo
# if set. Boot times (from run-vm.sh's "reached init after" line) are kept in
# $tmp/boot-times, one a line.
module='' boot_tmo='' bins=()
vmcase() {
  local name=$1 want=$2 script=$3 cmdline=$4 tmo=$5; shift 5
  local rc=0 start elapsed ok=1 g b boot binargs=()
  printf '%s\n' "$script" > "$tmp/run.sh"
  for b in ${bins[@]+"${bins[@]}"}; do binargs+=(--bin "$b"); done
  "$here/mkinitramfs.sh" "$tmp/initrd.gz" --run "$tmp/run.sh" ${module:+--module "$module"} \
    ${binargs[@]+"${binargs[@]}"} 2>/dev/null
  start=$(date +%s)
  "$here/run-vm.sh" --flavour "$flavour" --initrd "$tmp/initrd.gz" \
    --cmdline "$cmdline" --timeout "$tmo" ${boot_tmo:+--boot-timeout "$boot_tmo"} \
    --log "$tmp/log" >/dev/null 2>"$tmp/err" || rc=$?
  elapsed=$(( $(date +%s) - start ))
  boot=$(sed -n 's/^run-vm: reached init after \([0-9.]*\)s.*/\1/p' "$tmp/err")
  [ -z "$boot" ] || echo "$boot" >> "$tmp/boot-times"
  boot=${boot:+boot ${boot}s}
  case "$want" in
    nonzero) [ "$rc" != 0 ] || ok=0 ;;
    *) [ "$rc" = "$want" ] || ok=0 ;;
  esac
  for g in "$@"; do
    tr -d '\r' < "$tmp/log" | grep -qF -- "$g" || { ok=0; echo "  missing in log: $g"; }
  done
  if [ $ok = 1 ]; then
    echo "ok   $name (exit $rc, ${elapsed}s, ${boot:-no init})"; passed=$((passed + 1))
  else
    echo "FAIL $name: exit $rc, wanted $want (${elapsed}s, ${boot:-no init})"
    sed 's/^/  /' "$tmp/err"; tail -n 30 "$tmp/log" | sed 's/^/  | /'
    failed=$((failed + 1))
  fi
}

# The first case keeps kmemleak on: a clean boot must give an empty report.
# It also checks that both CPUs came up: tests of concurrency need them.
vmcase "hello, exit 0, 2 CPUs, tsc clocksource" 0 'echo hello; echo "cpus: $(nproc)"; exit 0' "" 300 \
  hello 'cpus: 2' 'kdbus-vm: clocksource: tsc' 'KDBUS-VM-RESULT: 0'
vmcase "kdbus=0: no insmod, no /sys/fs/kdbus" 0 \
  'grep -q "^kdbus " /proc/modules && exit 10; [ -e /sys/fs/kdbus ] && exit 11; echo nokdbus-ok' \
  "kdbus=0 kdbus.kmemleak=0" 300 'kdbus not requested' nokdbus-ok
vmcase "kdbus=1 without module" 90 'echo should-not-run' "kdbus=1 kdbus.kmemleak=0" 300 \
  'kdbus.ko missing' 'KDBUS-VM-RESULT: 90'
vmcase "run script exit 3" 3 'exit 3' "kdbus.kmemleak=0" 300 'KDBUS-VM-RESULT: 3'
vmcase "guest timeout ends a hang" 143 'echo hanging; sleep 100000' \
  "kdbus.timeout=5 kdbus.kmemleak=0" 300 'timed out after 5s' 'KDBUS-VM-RESULT: 143'
vmcase "host timeout ends a hang" 124 'echo hanging; sleep 100000' \
  "kdbus.timeout=1000 kdbus.kmemleak=0" 20 hanging
# The kernel distrusting the TSC (as it does under TCG without tsc=reliable)
# leaves it on refined-jiffies: init must refuse to run the script.
vmcase "clocksource not tsc fails the run" 94 'echo should-not-run' \
  "tsc=unstable kdbus.kmemleak=0" 300 'FAIL: clocksource is refined-jiffies' 'KDBUS-VM-RESULT: 94'
# A kernel WARNING with a passing run script must still fail the run.
vmcase "dirty kernel log fails a passing run" 1 \
  'echo "WARNING: injected by test-vm.sh" > /dev/kmsg; exit 0' "kdbus.kmemleak=0" 300 \
  'KDBUS-VM-RESULT: 0'

# PID 1 exiting panics the kernel: no marker, QEMU ends at once (panic=-1).
vmcase "kernel panic: no marker" 125 $'#!/bin/busybox sh\nexit 0' "rdinit=/run.sh" 120 \
  'Kernel panic'

# A boot that never reaches init's first line must end at the boot limit: an
# rdinit that hangs without printing it. The limit is three times the slowest
# boot so far (at least 30 s), so the script does get to run first.
boot_tmo=$(awk 'BEGIN { m = 0 } $1 > m { m = $1 } END { t = int(3 * m + 1); print (t < 30 ? 30 : t) }' \
  "$tmp/boot-times" 2>/dev/null || echo 60)
vmcase "boot limit ends a boot that never reaches init (${boot_tmo}s)" 123 \
  $'#!/bin/busybox sh\n/bin/busybox echo hanging-before-init\nexec /bin/busybox sleep 100000' \
  "rdinit=/run.sh" 5 hanging-before-init
boot_tmo=''

# The guest's CLOCK_MONOTONIC: served by the vDSO (no kernel entry, sub-µs
# steps). clockcheck.c, built static here; it prints the before/after figures.
if cc -static -O2 -o "$tmp/clockcheck" "$here/clockcheck.c" 2>"$tmp/cc.log"; then
  bins=("$tmp/clockcheck")
  vmcase "clock_gettime served by the vDSO, sub-ms steps" 0 'clockcheck 300000' \
    "kdbus.kmemleak=0" 300 'clockcheck: vdso ok'
  tr -d '\r' < "$tmp/log" | sed -n 's/^clockcheck: /  clockcheck: /p'
  bins=()
else
  echo "FAIL building clockcheck.c:"; sed 's/^/  /' "$tmp/cc.log"; failed=$((failed + 1))
fi

# A file that is not a module: insmod must fail and say so.
echo 'not a module' > "$tmp/bad.ko"; module=$tmp/bad.ko
vmcase "kdbus=1, insmod fails" 91 'echo should-not-run' "kdbus=1 kdbus.kmemleak=0" 300 \
  'insmod /lib/modules/kdbus.ko failed' 'KDBUS-VM-RESULT: 91'

# The module path with a stand-in kdbus.ko (fake-kdbus/: kdbusfs and
# /sys/fs/kdbus, nothing else), built here for this kernel. Kmemleak stays on:
# loading a module must not make the report dirty.
. "$here/../env.sh"
mkdir -p "$tmp/fake" && cp "$here/fake-kdbus/kdbus.c" "$here/fake-kdbus/Kbuild" "$tmp/fake/"
if make -s -C "$(kernel_dir "$flavour")" M="$tmp/fake" "${KMAKE_ARGS[@]}" modules >"$tmp/fake/build.log" 2>&1; then
  module=$tmp/fake/kdbus.ko
  vmcase "kdbus=1 with stand-in module: loaded, mounted" 0 \
    'grep -q "^kdbus " /proc/modules || exit 10
     grep -q " /sys/fs/kdbus kdbusfs " /proc/mounts || exit 11
     [ "$KDBUS_LOADED" = 1 ] || exit 12
     echo loaded-ok' \
    "kdbus=1" 300 'kdbusfs mounted on /sys/fs/kdbus' loaded-ok 'KDBUS-VM-RESULT: 0'
  # A leaking module must fail a passing run through the kmemleak report
  # (debug kernel only: release has no kmemleak).
  if [ "$flavour" = debug ]; then
    vmcase "kmemleak catches a leak in the module" 1 \
      'umount /sys/fs/kdbus && rmmod kdbus && insmod /lib/modules/kdbus.ko leak=1 || exit 10
       echo reloaded-leaking' \
      "kdbus=1" 300 reloaded-leaking 'unreferenced object' 'KDBUS-VM-RESULT: 0'
  fi
else
  echo "FAIL building the stand-in module:"; sed 's/^/  /' "$tmp/fake/build.log"
  failed=$((failed + 1))
fi
module=''

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
