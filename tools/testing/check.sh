#!/usr/bin/env bash
# Every test of the project: host tests first (ABI, property tests, unit
# tests, lints, the VM log scanner), then the kselftest suite and the module
# lifecycle in the debug VM (KASAN, lockdep, kmemleak; any kernel report
# fails the run), then a kdbus=0 boot, then the suite again with failures
# injected into the module's allocations and user copies (one boot per
# probability, KDBUS_FAULT_PCTS, default "1 5 20"; only the kernel's health
# counts there), then the VM machinery's self-test. Ends with
# `N passed, N failed, N skipped` and exits non-zero if anything failed.
set -uo pipefail
. "$(dirname "$0")/env.sh"
# Incremental state only slows CI and trips on some filesystems.
export CARGO_INCREMENTAL=0
cd "$KDBUS_ROOT" || exit 1
out="$KDBUS_ROOT/build/check"
rm -rf "$out" && mkdir -p "$out"
passed=0 failed=0 skipped=0
start=$(date +%s)

note() { echo "== $* ($(( $(date +%s) - start )) s)"; }
step() {  # step NAME COMMAND...: one pass/fail unit, output kept in a log
  local name=$1; shift
  if "$@" >"$out/$name.log" 2>&1; then
    echo "ok - $name"; passed=$((passed + 1))
  else
    echo "not ok - $name (log: $out/$name.log)"; tail -n 30 "$out/$name.log" | sed 's/^/#   /'
    failed=$((failed + 1))
  fi
}
count_tap() {  # add the ok / not ok / SKIP lines of a log
  local log=$1 p f s
  p=$(grep -aE '^ok ' "$log" | grep -avc '# SKIP')
  s=$(grep -acE '^ok .*# SKIP' "$log")
  f=$(grep -acE '^not ok ' "$log")
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  grep -aE '^not ok ' "$log" | sed 's/^/#   /'
}

note "host setup"
bash tools/testing/setup-host.sh || { echo "setup failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }

note "host tests (cargo test --workspace)"
if cargo test --workspace >"$out/cargo-test.log" 2>&1; then :; else
  echo "not ok - cargo-test (log: $out/cargo-test.log)"; failed=$((failed + 1)); fi
read -r p f i < <(awk '/^test result:/ {p+=$4; f+=$6; i+=$8} END {print p+0, f+0, i+0}' "$out/cargo-test.log")
echo "# cargo test: $p passed, $f failed, $i ignored"
passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + i))
step cargo-clippy cargo clippy --workspace --all-targets -- -D warnings
step cargo-fmt cargo fmt --all --check
step module-rustfmt rustfmt --check --edition 2021 --config-path kdbus/.rustfmt.toml kdbus/kdbus_main.rs
step vm-check-log-selftest bash tools/testing/vm/test-check-log.sh

note "debug kernel, module (CLIPPY=1, no warnings), static test binaries"
step kernel-debug bash tools/testing/build-kernel.sh debug
step module-debug env KDBUS_CLIPPY=1 bash tools/testing/build-module.sh debug
step userspace-static bash tools/testing/build-userspace.sh -p kdbus-test -p kdbus-demo
bin=target/x86_64-unknown-linux-gnu/release

if [ -f build/debug/kdbus.ko ] && [ -x "$bin/kdbus-test" ]; then
  note "VM suite on the debug kernel (kdbus=1)"
  bash tools/testing/vm/mkinitramfs.sh "$out/suite.cpio.gz" --module build/debug/kdbus.ko \
    --bin "$bin/kdbus-test" --bin "$bin/kdbus-demo" --run tools/testing/vm/suite.sh >/dev/null
  bash tools/testing/vm/run-vm.sh --flavour debug --initrd "$out/suite.cpio.gz" \
    --cmdline "kdbus=1" --timeout "${KDBUS_SUITE_TIMEOUT:-1500}" --log "$out/vm-suite.log" \
    >/dev/null 2>&1
  rc=$?
  grep -aE '^(ok|not ok) |^# ' "$out/vm-suite.log" | grep -av '^# SKIP' | head -400
  count_tap "$out/vm-suite.log"
  if [ $rc = 0 ]; then echo "ok - vm-suite-clean-kernel-log"; passed=$((passed + 1))
  else
    echo "not ok - vm-suite-clean-kernel-log (run-vm status $rc, log: $out/vm-suite.log)"
    bash tools/testing/vm/check-log.sh "$out/vm-suite.log" | head -20 | sed 's/^/#   /'
    failed=$((failed + 1))
  fi

  # The client library (lib/kdbus-client) against the real module:
  # kdbus-client-test (one bus and one process per test, helpers as
  # processes) and the library's examples, run by tools/testing/vm/client.sh.
  note "VM client-library tests on the debug kernel (kdbus=1)"
  bash tools/testing/client-vm.sh --ko build/debug/kdbus.ko --log "$out/vm-client.log" \
    --timeout "${KDBUS_CLIENT_TIMEOUT:-900}" >"$out/client.log" 2>&1
  rc=$?
  grep -aE '^(ok|not ok) |^# kdbus-client-test:' "$out/client.log"
  count_tap "$out/client.log"
  if [ $rc = 0 ]; then echo "ok - vm-client-clean-kernel-log"; passed=$((passed + 1))
  else
    echo "not ok - vm-client-clean-kernel-log (status $rc, log: $out/client.log, $out/vm-client.log)"
    [ ! -f "$out/vm-client.log" ] ||
      bash tools/testing/vm/check-log.sh "$out/vm-client.log" | head -20 | sed 's/^/#   /'
    failed=$((failed + 1))
  fi

  # kdbusctl: every command against a live bus, output checked
  # (tools/testing/vm/kdbusctl.sh).
  note "kdbusctl against a live bus (debug VM)"
  KDBUS_KO=build/debug/kdbus.ko bash tools/testing/kdbusctl-vm.sh --log "$out/vm-kdbusctl.log" \
    >"$out/kdbusctl-vm.out" 2>&1
  rc=$?
  count_tap "$out/vm-kdbusctl.log"
  if [ $rc = 0 ]; then echo "ok - vm-kdbusctl-clean-kernel-log"; passed=$((passed + 1))
  else
    echo "not ok - vm-kdbusctl-clean-kernel-log (status $rc, log: $out/kdbusctl-vm.out, $out/vm-kdbusctl.log)"
    tail -n 5 "$out/kdbusctl-vm.out" | sed 's/^/#   /'
    failed=$((failed + 1))
  fi

  note "VM boot with kdbus=0"
  bash tools/testing/vm/mkinitramfs.sh "$out/nokdbus.cpio.gz" --module build/debug/kdbus.ko \
    --run tools/testing/vm/nokdbus.sh >/dev/null
  bash tools/testing/vm/run-vm.sh --flavour debug --initrd "$out/nokdbus.cpio.gz" \
    --cmdline "kdbus=0 kdbus.kmemleak=0" --timeout 300 --log "$out/vm-nokdbus.log" >/dev/null 2>&1
  rc=$?
  count_tap "$out/vm-nokdbus.log"
  if [ $rc = 0 ]; then echo "ok - vm-nokdbus-boot"; passed=$((passed + 1))
  else echo "not ok - vm-nokdbus-boot (status $rc, log: $out/vm-nokdbus.log)"; failed=$((failed + 1)); fi

  # The suite's own results are not counted here (tests fail with ENOMEM and
  # EFAULT by design; faults.sh keeps them out of TAP): one step per
  # probability, passing when the kernel stays healthy (no oops, KASAN,
  # lockdep, WARNING, BUG, hung task or kmemleak report) and the module still
  # works and unloads afterwards.
  note "VM fault injection into kdbus.ko (failslab, fail_page_alloc, fail_usercopy)"
  bash tools/testing/vm/mkinitramfs.sh "$out/faults.cpio.gz" --module build/debug/kdbus.ko \
    --bin "$bin/kdbus-test" --bin "$bin/kdbus-demo" --run tools/testing/vm/faults.sh >/dev/null
  for pct in ${KDBUS_FAULT_PCTS:-1 5 20}; do
    name=vm-faults-${pct}pct-kernel-health flog=$out/vm-faults-${pct}pct.log
    bash tools/testing/vm/run-vm.sh --flavour debug --initrd "$out/faults.cpio.gz" \
      --cmdline "kdbus=1 kdbus.fault_pct=$pct" --timeout "${KDBUS_FAULT_TIMEOUT:-600}" \
      --log "$flog" >/dev/null 2>"$out/vm-faults-${pct}pct.run-vm.log"
    rc=$?
    grep -a '^# faults: ' "$flog" | grep -av ' text 0x' | tr -d '\r'
    if [ $rc = 0 ]; then echo "ok - $name"; passed=$((passed + 1))
    else
      echo "not ok - $name (run-vm status $rc, log: $flog)"
      { tail -n 3 "$out/vm-faults-${pct}pct.run-vm.log"
        bash tools/testing/vm/check-log.sh "$flog" 2>&1 | head -20; } | sed 's/^/#   /'
      failed=$((failed + 1))
    fi
  done

  # The module's own fuzzer, a short bounded run (make fuzz for long ones):
  # random command sequences from several racing processes; its seed is
  # printed (a fresh one each run unless KDBUS_FUZZ_SEED is set), the
  # verdict is the kernel's health and a clean unload.
  note "fuzzer (${KDBUS_FUZZ_DURATION:-45} s in the debug VM)"
  seed_args=()
  [ -z "${KDBUS_FUZZ_SEED:-}" ] || seed_args=(--seed "$KDBUS_FUZZ_SEED")
  bash tools/testing/fuzz.sh --duration "${KDBUS_FUZZ_DURATION:-45}" --ko build/debug/kdbus.ko \
    --log "$out/vm-fuzz.log" ${seed_args[@]+"${seed_args[@]}"} >"$out/fuzz.log" 2>&1
  rc=$?
  grep -aE '^kdbus-fuzz: (seed|summary)' "$out/fuzz.log" | sed 's/^/# /'
  if [ $rc = 0 ]; then echo "ok - vm-fuzz-kernel-health"; passed=$((passed + 1))
  else
    echo "not ok - vm-fuzz-kernel-health (status $rc, log: $out/fuzz.log, $out/vm-fuzz.log)"
    grep -aE '^(not ok|fuzz:)' "$out/fuzz.log" | head -10 | sed 's/^/#   /'
    failed=$((failed + 1))
  fi
else
  echo "not ok - vm-suite (nothing to boot: module or test binary missing)"; failed=$((failed + 1))
fi

# Dynamically linked programs in the VM (mkinitramfs.sh --dyn): dbus-daemon
# and dbus-send on a private bus, and kdbus-bench-peers' sd-bus round trips
# through dbus-daemon and dbus-broker, as make bench runs them; one boot.
note "VM with dynamically linked programs (dbus-daemon, dbus-send, dbus-broker, kdbus-bench-peers)"
dynmod=()
[ ! -f build/debug/kdbus.ko ] || dynmod=(--module build/debug/kdbus.ko)
if bash tools/testing/vm/test-dyn.sh debug "${dynmod[@]}" >"$out/vm-dyn.log" 2>&1; then :; else
  grep -a '^FAIL' "$out/vm-dyn.log" | sed 's/^/#   /'; fi
read -r p f < <(awk '/^[0-9]+ passed, [0-9]+ failed/ {p=$1; f=$3} END {print p+0, f+0}' "$out/vm-dyn.log")
echo "# vm dynamic programs: $p passed, $f failed (log: $out/vm-dyn.log)"
if [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; fi
passed=$((passed + p)) failed=$((failed + f))

note "VM machinery self-test (real boots: hangs, boot limit, panic, WARNING, clocksource, vDSO, kmemleak)"
if bash tools/testing/vm/test-vm.sh debug >"$out/vm-machinery.log" 2>&1; then :; else
  grep -a '^not ok' "$out/vm-machinery.log" | sed 's/^/#   /'; fi
read -r p f < <(awk '/^[0-9]+ passed, [0-9]+ failed/ {p=$1; f=$3} END {print p+0, f+0}' "$out/vm-machinery.log")
echo "# vm machinery: $p passed, $f failed"
if [ "$p" = 0 ] && [ "$f" = 0 ]; then f=1; fi
passed=$((passed + p)) failed=$((failed + f))

note "done"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
