#!/usr/bin/env bash
# Boot the kdbus test VM once and report how the run went.
#
# Usage: run-vm.sh --flavour release|debug --initrd FILE [--cmdline "kdbus=1 ..."]
#                  [--timeout SECS] [--boot-timeout SECS] [--log FILE] [--kernel BZIMAGE]
#
#   --flavour  which cached test kernel (tools/testing/build-kernel.sh FLAVOUR)
#   --initrd   made by mkinitramfs.sh
#   --cmdline  extra kernel command line; init reads kdbus=1, kdbus.timeout=SECS,
#              kdbus.kmemleak=0 and kdbus.clocksource=NAME|any from it. Without
#              kdbus.timeout the guest gets one a bit shorter than --timeout,
#              so a hung test still ends with a marker and a kmemleak report.
#   --timeout  limit of the run itself (default 900 s), counted from the
#              moment the guest's init prints `kdbus-vm: init started`, so a
#              slow boot on a busy host does not eat into it.
#   --boot-timeout  limit from QEMU's start to that line (default 300 s; a
#              debug boot takes ~10 s on an idle host). The two limits chain,
#              QEMU is killed after either, so the command always ends.
#   --log      also write the serial output here (default: a temporary file,
#              kept and named only when the run fails)
#   --kernel   use this bzImage instead of the cached one of --flavour
#
# The guest boots with `tsc=reliable clocksource=tsc tsc_early_khz=<the host's
# TSC frequency>`: under TCG the kernel would otherwise reject the TSC (no
# constant_tsc flag, two sockets) or fail to calibrate it on a busy host, and
# run on jiffies (4 ms steps, every clock read a system call). init checks
# that the clocksource is tsc (status 94 otherwise).
#
# Environment: KDBUS_VM_ACCEL=kvm|tcg skips the KVM probe (default: probe once
# per host boot, cached in $KDBUS_CACHE/kvm-probe).
#
# Exit status: the run script's status from the `KDBUS-VM-RESULT: N` marker;
# if it is 0 but the kernel log is dirty (check-log.sh), 1; no marker: 123 when
# the boot did not reach init within --boot-timeout, 124 when the run hit
# --timeout, else 125 (panic, crash, init died); 2 on bad usage.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../env.sh"

usage() { sed -n '4,34p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
say() { echo "run-vm: $*" >&2; }

flavour='' cmdline='' initrd='' timeout_s=900 boot_timeout_s=300 log='' kernel=''
while [ $# -gt 0 ]; do
  case "$1" in
    --flavour) flavour=${2:?}; shift 2 ;;
    --cmdline) cmdline=${2?}; shift 2 ;;
    --initrd)  initrd=${2:?}; shift 2 ;;
    --timeout) timeout_s=${2:?}; shift 2 ;;
    --boot-timeout) boot_timeout_s=${2:?}; shift 2 ;;
    --log)     log=${2:?}; shift 2 ;;
    --kernel)  kernel=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    *) say "unknown argument $1"; usage ;;
  esac
done
[ -n "$initrd" ] || { say "--initrd is required"; usage; }
[ -f "$initrd" ] || { say "initrd $initrd not found"; exit 2; }
for t in "$timeout_s" "$boot_timeout_s"; do
  case "$t" in ''|*[!0-9]*|0) say "--timeout and --boot-timeout need a positive number of seconds"; exit 2 ;; esac
done
if [ -z "$kernel" ]; then
  case "$flavour" in release|debug) ;; *) say "--flavour release|debug is required"; usage ;; esac
  kdir=$(kernel_dir "$flavour")
  kernel=$kdir/arch/x86/boot/bzImage
  # Building takes 10-20 min and may already be under way elsewhere: never
  # start one implicitly, say how.
  [ -f "$kdir/.done" ] && [ -f "$kernel" ] || {
    say "no $flavour kernel in $kdir; build it: tools/testing/build-kernel.sh $flavour"; exit 2; }
fi
[ -f "$kernel" ] || { say "kernel $kernel not found"; exit 2; }

# The guest ends the run script itself before the host kills QEMU, so that a
# hung test still yields a marker, the kmemleak report and the kernel log.
# Both clocks start at init, so the margin covers only the end of the run:
# the guest's kill grace (10 s) and the kmemleak scans (~12 s idle under TCG
# with KASAN, three times that on a busy host).
case " $cmdline " in
  *" kdbus.timeout="*) ;;
  *) margin=$(( timeout_s / 4 )); [ $margin -le 120 ] || margin=120
     cmdline="$cmdline kdbus.timeout=$(( timeout_s - margin ))" ;;
esac

# panic=-1: reboot at once on panic, which -no-reboot turns into QEMU exiting.
# oops=panic: an oops in a test must end the run, not leave a half-dead kernel.
# tsc=reliable: TCG offers a TSC that the kernel distrusts (no constant_tsc,
# an AMD vendor string with two sockets: "TSCs unsynchronized") and then runs on
# refined-jiffies; QEMU's TSC is the host's, so it is in fact synchronized and
# monotonic. clocksource=tsc makes the choice explicit (it would otherwise win
# by rating); --cmdline comes later and can override both.
# loglevel=7 comes last so a stray `quiet` cannot hide WARNINGs from the log.
append="console=ttyS0 panic=-1 oops=panic no_timer_check tsc=reliable clocksource=tsc $cmdline loglevel=7"
# sockets=2: the test kernel has no ACPI, so it learns the CPUs from SeaBIOS's
# MP table, which lists one CPU per package; plain `-smp 2` (one socket, two
# cores since QEMU 6.2) boots with a single CPU and no real concurrency.
# shellcheck disable=SC2054 # the commas belong to QEMU's -smp value
qemu_base=(qemu-system-x86_64 -m 1024 -smp 2,sockets=2,cores=1,threads=1 -nographic -no-reboot)

# --- KVM probe ---------------------------------------------------------------
# /dev/kvm can exist and still hang every boot right after the BIOS (seen on
# this project's machines), so try one tiny boot with a short limit and fall
# back to TCG. The answer is kept per host boot (boot_id), so a session pays
# the ~10 s once.
probe_kvm() {
  [ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo tcg; return; }
  local cache=$KDBUS_CACHE/kvm-probe boot_id
  boot_id=$(cat /proc/sys/kernel/random/boot_id)
  if [ -f "$cache" ] && [ "$(head -1 "$cache")" = "$boot_id" ]; then
    sed -n 2p "$cache"; return
  fi
  local tmp result=tcg
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/kdbus-kvm-probe.XXXXXX")
  "$here/mkinitramfs.sh" "$tmp/probe.cpio.gz" 2>/dev/null
  if timeout -k 2 10 "${qemu_base[@]}" -enable-kvm -cpu host -kernel "$kernel" \
       -initrd "$tmp/probe.cpio.gz" \
       -append "console=ttyS0 panic=-1 kdbus.kmemleak=0 kdbus.timeout=5 kdbus.clocksource=any" \
       </dev/null >"$tmp/probe.log" 2>&1 &&
     grep -aq 'KDBUS-VM-RESULT: 0' "$tmp/probe.log"; then
    result=kvm
  fi
  rm -rf "$tmp"
  mkdir -p "$KDBUS_CACHE"
  printf '%s\n%s\n' "$boot_id" "$result" > "$cache.$$" && mv -f "$cache.$$" "$cache"
  echo "$result"
}

accel=${KDBUS_VM_ACCEL:-}
case "$accel" in
  kvm|tcg) ;;
  '') accel=$(probe_kvm) ;;
  *) say "KDBUS_VM_ACCEL must be kvm or tcg"; exit 2 ;;
esac
if [ "$accel" = kvm ]; then accel_args=(-enable-kvm -cpu host); else accel_args=(-accel tcg); fi

# --- the guest's TSC frequency ------------------------------------------------
# Under TCG the guest's TSC is the host's. The guest would calibrate it against
# the emulated PIT, which fails on a busy host ("tsc: Unable to calibrate
# against PIT"; no HPET without ACPI) and leaves the kernel on jiffies; so the
# host measures its own TSC (host-tsc-khz.c) and the guest is told with
# tsc_early_khz=. Kept per host boot (boot_id), like the KVM probe.
host_tsc_khz() {
  local cache=$KDBUS_CACHE/host-tsc-khz boot_id tmp khz=''
  boot_id=$(cat /proc/sys/kernel/random/boot_id)
  if [ -f "$cache" ] && [ "$(head -1 "$cache")" = "$boot_id" ]; then
    sed -n 2p "$cache"; return
  fi
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/kdbus-tsc.XXXXXX")
  if cc -O2 -o "$tmp/host-tsc-khz" "$here/host-tsc-khz.c" 2>"$tmp/cc.log" &&
     khz=$("$tmp/host-tsc-khz"); then
    mkdir -p "$KDBUS_CACHE"
    printf '%s\n%s\n' "$boot_id" "$khz" > "$cache.$$" && mv -f "$cache.$$" "$cache"
  else
    say "warning: could not measure the host's TSC frequency ($(head -3 "$tmp/cc.log" | tr '\n' ' ')); the guest calibrates it itself"
  fi
  rm -rf "$tmp"
  echo "$khz"
}
case " $cmdline " in
  *" tsc_early_khz="*) ;;
  *) [ "$(uname -m)" != x86_64 ] || {
       khz=$(host_tsc_khz)
       [ -z "$khz" ] || append="${append/ tsc=reliable / tsc=reliable tsc_early_khz=$khz }"; } ;;
esac

# --- the run -------------------------------------------------------------------
keep_log=1
if [ -z "$log" ]; then
  log=$(mktemp "${TMPDIR:-/tmp}/kdbus-vm.XXXXXX.log"); keep_log=0
fi
mkdir -p "$(dirname "$log")"
say "kernel $kernel, $accel, boot limit ${boot_timeout_s}s, run limit ${timeout_s}s, log $log"
say "cmdline: $append"

# QEMU runs in the background with the serial output going to the log (and
# streamed to stdout by tail); this loop watches the clock: first the boot
# limit up to init's first line, then the run limit from there.
init_marker='kdbus-vm: init started'
qpid='' tpid=''
# shellcheck disable=SC2317 # called by the trap
cleanup() {  # only our own QEMU and tail, by pid
  [ -z "$qpid" ] || kill -TERM "$qpid" 2>/dev/null || true
  [ -z "$tpid" ] || kill -TERM "$tpid" 2>/dev/null || true
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM HUP
# Microseconds since the epoch (bash 5; the locale's decimal mark dropped).
now() { if [ -n "${EPOCHREALTIME:-}" ]; then echo "${EPOCHREALTIME//[!0-9]/}"; else date +%s%6N; fi; }
secs() { local d=$(( ($2 - $1) / 100000 )); echo "$(( d / 10 )).$(( d % 10 ))"; }  # secs FROM TO

start=$(now)
# stdin from /dev/null: -nographic would otherwise put a terminal in raw mode
# (left so if QEMU is killed) and turn Ctrl-C into a monitor key.
: > "$log"
"${qemu_base[@]}" "${accel_args[@]}" -kernel "$kernel" -initrd "$initrd" -append "$append" \
  </dev/null >"$log" 2>&1 &
qpid=$!
tail -n +1 -s 0.2 -f --pid="$qpid" "$log" 2>/dev/null &
tpid=$!

phase=boot limit=$(( start + boot_timeout_s * 1000000 ))
boot_s='' run_start='' timed_out=''
while kill -0 "$qpid" 2>/dev/null; do
  t=$(now)
  if [ "$phase" = boot ] && grep -aqF "$init_marker" "$log"; then
    phase=run run_start=$t boot_s=$(secs "$start" "$t")
    limit=$(( t + timeout_s * 1000000 ))
    say "reached init after ${boot_s}s (boot limit ${boot_timeout_s}s); run limit ${timeout_s}s from now"
  elif [ "$t" -ge "$limit" ]; then
    timed_out=$phase
    kill -TERM "$qpid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$qpid" 2>/dev/null || true
    break
  fi
  sleep 0.5
done
set +e
wait "$qpid"; qemu_rc=$?
wait "$tpid"
set -e
qpid='' tpid=''
end=$(now)
elapsed=$(secs "$start" "$end")
[ -n "$boot_s" ] || boot_s=never
run_s=never; [ -z "$run_start" ] || run_s=$(secs "$run_start" "$end")

# The last marker counts; grep -o copes with a kernel message sharing the line.
marker=$(tr -d '\r' < "$log" | grep -ao 'KDBUS-VM-RESULT: [0-9]*' | tail -1 | cut -d' ' -f2 || true)
log_clean=1
"$here/check-log.sh" "$log" || log_clean=0

if [ -z "$marker" ]; then
  if [ "$timed_out" = boot ]; then
    say "FAIL: no result marker: the boot did not reach init (\"$init_marker\") within ${boot_timeout_s}s"; rc=123
  elif [ "$timed_out" = run ]; then
    say "FAIL: no result marker: the run hit the host timeout of ${timeout_s}s (counted from init)"; rc=124
  else
    say "FAIL: no result marker: the VM ended early (kernel panic, crash or init died; QEMU status $qemu_rc)"; rc=125
  fi
elif [ "$marker" != 0 ]; then
  say "FAIL: run script exited with status $marker"; rc=$marker
elif [ $log_clean = 0 ]; then
  say "FAIL: run script passed but the kernel log is dirty (see check-log above)"; rc=1
else
  rc=0
fi
[ $log_clean = 1 ] || [ "$rc" = 1 ] || say "also: the kernel log is dirty (see check-log above)"

if [ "$rc" = 0 ]; then
  say "PASS in ${elapsed}s (boot ${boot_s}s, run ${run_s}s)"
  [ $keep_log = 1 ] || rm -f "$log"
else
  say "log kept in $log (${elapsed}s: boot ${boot_s}s, run ${run_s}s)"
fi
exit "$rc"
