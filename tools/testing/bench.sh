#!/usr/bin/env bash
# Run kdbus-bench in the release VM and print its results.
#
# Usage: tools/testing/bench.sh [--budget SECS] [--peers-budget SECS] [--host-budget SECS]
#                               [--no-peers] [--no-host] [--ko PATH] [--log FILE]
#                               [--verbose] [-- ARGS...]
#
#   --budget SECS  measurement time kdbus-bench aims at (default 200); the
#                  VM timeout is derived from it and from --peers-budget
#   --peers-budget SECS  kdbus-bench-peers' measurement time in the same VM
#                  boot (default 100): method calls between processes through
#                  kdbus, dbus-daemon and dbus-broker against a socketpair
#   --host-budget SECS  the same peers (without kdbus) on this host, after the
#                  VM (default 40), to tell the emulator's share of the ratios
#   --no-peers     neither of those two; --no-host: not the host run
#   --ko PATH      boot this kdbus.ko instead of building one
#                  (tools/testing/build-module.sh release)
#   --log FILE     the VM console (default build/bench/vm.log)
#   --verbose      show the whole console (boot, kernel log), not only the
#                  benchmarks' output
#   -- ARGS        passed on to kdbus-bench (e.g. -- --only rtt --rounds 5)
#
# Builds (cached) the release kernel, kdbus.ko, the static kdbus-bench, the
# dynamic kdbus-bench-peers (sd-bus, libsystemd), an initramfs with them,
# dbus-daemon, dbus-broker-launch and dbus-broker (mkinitramfs.sh --dyn),
# boots QEMU with kdbus=1 (2 CPUs, TCG unless KVM works; see run-vm.sh),
# runs kdbus-bench then kdbus-bench-peers, then kdbus-bench-peers on the
# host, and prints their tables and BENCH lines and a summary of the peers'
# ratios in the VM and on the host. CARGO_TARGET_DIR and KDBUS_VM_ACCEL are
# honoured.
#
# Exit status: 0 when every measurement ran, 1 when one failed (never
# because of a slow ratio), or run-vm.sh's status when the VM run itself
# failed.
set -euo pipefail
. "$(dirname "$0")/env.sh"

usage() { sed -n '4,34p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
say() { echo "bench: $*" >&2; }

budget=200 peers_budget=100 host_budget=40 peers=1 host=1
ko='' log=$KDBUS_ROOT/build/bench/vm.log verbose=0 bench_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --budget)  budget=${2:?--budget needs seconds}; shift 2 ;;
    --peers-budget) peers_budget=${2:?--peers-budget needs seconds}; shift 2 ;;
    --host-budget)  host_budget=${2:?--host-budget needs seconds}; shift 2 ;;
    --no-peers) peers=0 host=0; shift ;;
    --no-host)  host=0; shift ;;
    --ko)      ko=$(realpath -m "${2:?--ko needs a path}"); shift 2 ;;
    --log)     log=$(realpath -m "${2:?--log needs a path}"); shift 2 ;;
    --verbose) verbose=1; shift ;;
    --) shift; bench_args=("$@"); break ;;
    -h|--help) usage ;;
    *) say "unknown argument $1"; usage ;;
  esac
done
for b in "$budget" "$peers_budget" "$host_budget"; do
  case "$b" in ''|*[!0-9]*|0) say "budgets are positive whole numbers of seconds, not '$b'"; exit 2 ;; esac
done
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
bin=$(bash tools/testing/build-userspace.sh -p kdbus-bench --bin kdbus-bench)/kdbus-bench
target=${CARGO_TARGET_DIR:-$KDBUS_ROOT/target}

out=build/bench
mkdir -p "$out" "$(dirname "$log")"
peers_bin=$target/release/kdbus-bench-peers
image=(--bin "$bin")
if [ "$peers" = 1 ]; then
  say "kdbus-bench-peers (dynamic: sd-bus from libsystemd), the inotify stand-in"
  cargo build --quiet --release -p kdbus-bench --bin kdbus-bench-peers >&2
  # dbus-broker-launch needs inotify, which the test kernels lack.
  cc -shared -fPIC -O2 -o "$out/noinotify.so" tools/testing/vm/noinotify.c
  image+=(--dyn "$peers_bin" --file "$out/noinotify.so:/usr/lib/kdbus-bench/noinotify.so")
  for p in dbus-daemon dbus-broker-launch dbus-broker; do
    path=$(command -v "$p") || { say "$p not found (tools/testing/setup-host.sh installs it)"; exit 1; }
    image+=(--dyn "$path")
  done
fi
args=$(printf ' %q' --budget "$budget" ${bench_args[@]+"${bench_args[@]}"})
# The run script's own variables are single-quoted: they expand in the VM.
# shellcheck disable=SC2016
{
  echo '#!/bin/sh'
  echo 'echo "=== kdbus-bench begin"'
  echo "kdbus-bench$args"
  echo 'rc=$?'
  echo 'echo "=== kdbus-bench end (status $rc)"'
  if [ "$peers" = 1 ]; then
    echo 'echo "=== kdbus-bench-peers begin"'
    echo "kdbus-bench-peers --where vm --budget $peers_budget"
    echo 'prc=$?'
    echo 'echo "=== kdbus-bench-peers end (status $prc)"'
    echo '[ "$rc" != 0 ] || rc=$prc'
  fi
  echo 'exit $rc'
} > "$out/run.sh"
bash tools/testing/vm/mkinitramfs.sh "$out/bench.cpio.gz" --module "$ko" \
  "${image[@]}" --run "$out/run.sh" >/dev/null

# The measurements may overshoot their budget a little (at least two
# iterations of every 64 MiB transfer); boot under TCG takes seconds, and
# starting the brokers (dynamic programs, translated afresh) up to a minute
# on a busy host.
timeout_s=$(( budget * 3 / 2 + 180 ))
[ "$peers" = 0 ] || timeout_s=$(( timeout_s + peers_budget * 3 / 2 + 120 ))
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
    tr -d '\r' < "$log" | sed -n '/=== kdbus-bench-peers begin/,/=== kdbus-bench-peers end/p'
  else
    say "kdbus-bench did not start; the end of the console:"
    tr -d '\r' < "$log" | tail -40
  fi
fi
[ "$rc" = 0 ] || say "status $rc (console: $log)"

if [ "$host" = 1 ]; then
  # The same client, servers and brokers on the host (no kdbus here): under
  # TCG every process switch and clock read costs far more than on
  # hardware, so the host's ratios tell how much of a broker's ratio in the
  # VM is the emulator's.
  say "kdbus-bench-peers on this host (budget ${host_budget}s; the host is shared, so its figures are noisy too)"
  echo "=== kdbus-bench-peers on the host begin"
  set +e
  "$peers_bin" --where host --budget "$host_budget" | tee "$out/host.txt"
  hrc=${PIPESTATUS[0]}
  set -e
  echo "=== kdbus-bench-peers on the host end (status $hrc)"
  [ "$rc" != 0 ] || rc=$hrc
  # The peers' ratios side by side: VM (this run's BENCH peers lines) and
  # host (BENCH peers_host).
  { tr -d '\r' < "$log"; cat "$out/host.txt"; } | awk '
    function f(line, key,   i, n, kv) {
      n = split(line, kv, " ")
      for (i = 1; i <= n; i++) if (index(kv[i], key "=") == 1) return substr(kv[i], length(key) + 2)
      return "-"
    }
    function div(a, b) { return (a + 0 > 0 && b + 0 > 0) ? sprintf("%.1f", a / b) : "-" }
    function human(n) { n += 0; return n >= 1048576 ? (n / 1048576) " MiB" : n >= 1024 ? (n / 1024) " KiB" : n " B" }
    /^BENCH peers / { p = f($0, "payload"); vm[p] = $0; if (!(p in seen)) { seen[p] = 1; order[++np] = p } }
    /^BENCH peers_host / { host[f($0, "payload")] = $0 }
    END {
      if (np == 0) exit
      print ""
      print "Peers, VM (TCG) and host: time per call / socketpair time per call, each measured against"
      print "the socketpair of its own run. VM/host: how much more a call costs, relative to the socketpair,"
      print "under the emulator; lead: a broker ratio in the VM / the kdbus D-Bus ratio in the VM (both"
      print "with D-Bus marshalling on both ends; kdbus raw: lib/kdbus, no marshalling)."
      print ""
      printf "%8s  %9s  %9s  %9s  %9s  %7s  %5s  %9s  %9s  %7s  %5s\n", "payload", "kdbus raw", "kdbus D-Bus", \
        "daemon VM", "host", "VM/host", "lead", "broker VM", "host", "VM/host", "lead"
      for (i = 1; i <= np; i++) {
        p = order[i]; v = vm[p]; h = (p in host) ? host[p] : ""
        kr = f(v, "kdbus_raw_ratio"); k = f(v, "kdbus_dbus_ratio"); dv = f(v, "dbus_daemon_ratio"); bv = f(v, "dbus_broker_ratio")
        dh = h == "" ? "-" : f(h, "dbus_daemon_ratio"); bh = h == "" ? "-" : f(h, "dbus_broker_ratio")
        printf "%8s  %9s  %9s  %9s  %9s  %7s  %5s  %9s  %9s  %7s  %5s\n", human(p), kr, k, dv, dh, div(dv, dh), \
          div(dv, k), bv, bh, div(bv, bh), div(bv, k)
        printf "BENCH peers_tcg payload=%s kdbus_raw_vm_ratio=%s kdbus_dbus_vm_ratio=%s dbus_daemon_vm_ratio=%s dbus_daemon_host_ratio=%s dbus_daemon_vm_over_host=%s dbus_broker_vm_ratio=%s dbus_broker_host_ratio=%s dbus_broker_vm_over_host=%s\n", \
          p, kr, k, dv, dh, div(dv, dh), bv, bh, div(bv, bh) > "/dev/stderr"
      }
    }' 2>"$out/tcg.txt"
  cat "$out/tcg.txt"
fi
exit "$rc"
