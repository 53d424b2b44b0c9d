#!/usr/bin/env bash
# Self-test of check-log.sh: sample clean and dirty serial logs, expected exit
# codes. Needs no kernel and no VM, so CI can run it anywhere.
# Ends with the line `N passed, N failed`; exits non-zero if any failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kdbus-test-check-log.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# A clean boot as the debug kernel prints it, CRLF line ends included; every
# dirty sample is this plus one report, so only the report can trip it.
clean_boot=$'[    0.000000] Linux version 6.12.117 (root@host) (Debian clang version 16.0.6)\r
[    0.000000] Command line: console=ttyS0 panic=-1 oops=panic kdbus=1 loglevel=7\r
[    0.120000] kasan: KernelAddressSanitizer initialized (generic)\r
[    0.130000] Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar\r
[    0.140000] ... MAX_LOCKDEP_SUBCLASSES:  8\r
[    0.900000] kmemleak: Kernel memory leak detector initialized (mem pool free: 15000)\r
[    1.200000] Run /init as init process\r
kdbus-vm: init started (uptime 1.21 s)\r
kdbus-vm: kdbus.ko loaded, kdbusfs mounted on /sys/fs/kdbus\r
hello, no warnings here: a bug-free run\r
kdbus-vm: /run.sh exited with status 0\r
kdbus-vm: kmemleak: report begins\r
kdbus-vm: kmemleak: report ends\r
KDBUS-VM-RESULT: 0\r
[   12.000000] reboot: Restarting system\r'

# check NAME EXPECTED_RC LOG_TEXT [EXPECTED_PATTERN]: the pattern, if given,
# must be the one check-log names for the first match.
check() {
  local name=$1 want=$2 text=$3 pattern=${4:-} rc=0
  printf '%s\n' "$text" > "$tmp/log"
  "$here/check-log.sh" "$tmp/log" 2> "$tmp/err" || rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, expected $want"; sed 's/^/  /' "$tmp/err"; failed=$((failed + 1))
  elif [ -n "$pattern" ] && ! grep -qF "[$pattern]" "$tmp/err"; then
    echo "FAIL $name: expected pattern [$pattern] named"; sed 's/^/  /' "$tmp/err"; failed=$((failed + 1))
  else
    echo "ok   $name"; passed=$((passed + 1))
  fi
}

dirty() { check "$1" 1 "$clean_boot"$'\n'"$2" "${3:-}"; }

check "clean boot" 0 "$clean_boot"
check "empty log" 0 ""

dirty "WARN_ON" '[    5.100000] WARNING: CPU: 1 PID: 57 at kdbus/bus.rs:120 kdbus_bus_new+0x1a/0x40 [kdbus]' 'WARNING:'
dirty "BUG_ON" '[    5.100000] kernel BUG at mm/slub.c:456!' 'kernel BUG at'
dirty "KASAN use-after-free" '[    5.100000] BUG: KASAN: slab-use-after-free in kdbus_conn_free+0x2c/0x80 [kdbus]' 'KASAN'
dirty "KASAN report banner" '[    5.100000] Memory state around the buggy address: KASAN' 'KASAN'
dirty "lockdep circular" '[    5.100000] WARNING: possible circular locking dependency detected' 'possible circular locking'
dirty "lockdep inconsistent" '[    5.100000] WARNING: inconsistent lock state' 'inconsistent lock state'
dirty "lockdep recursive" '[    5.100000] WARNING: possible recursive locking detected' 'possible recursive locking'
dirty "RCU usage" '[    5.100000] WARNING: suspicious RCU usage' 'suspicious RCU usage'
dirty "lockdep info" '[    5.100000] INFO: lockdep is turned off.' 'INFO: lockdep'
dirty "DEBUG_LOCKS_WARN_ON" '[    5.100000] DEBUG_LOCKS_WARN_ON(1)' 'DEBUG_LOCKS_WARN_ON'
dirty "atomic sleep" '[    5.100000] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:585' 'sleeping function called from invalid context'
dirty "kmemleak report" $'unreferenced object 0xffff888004a1b200 (size 64):\n  comm "kdbus-test", pid 61, jiffies 4294672345\n  backtrace (crc 5e1a3f2b):' 'unreferenced object'
dirty "kmemleak notice" '[   20.000000] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)' 'suspected memory leak'
dirty "oops" '[    5.100000] Oops: general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP KASAN' 'Oops'
dirty "gpf" '[    5.100000] general protection fault, probably for non-canonical address' 'general protection fault'
dirty "panic" '[    5.200000] Kernel panic - not syncing: Fatal exception' 'Kernel panic'
dirty "null deref" '[    5.100000] BUG: kernel NULL pointer dereference, address: 0000000000000008' 'BUG:'
dirty "soft lockup" '[   30.000000] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [kdbus-test:60]' 'BUG:'
dirty "bare stack dump" '[    5.100000] Call Trace:' 'Call Trace:'
dirty "rcu stall" '[   40.000000] rcu: INFO: rcu_sched self-detected stall on CPU' 'rcu_sched self-detected stall'
# A report that starts in the middle of a user line (shared serial console).
dirty "interleaved" 'test 12 ok[    5.100000] BUG: KASAN: double-free in kdbus_pool_free' 'KASAN'
dirty "report without CR" $'[    5.1] WARNING: CPU: 0 PID: 1 at x.c:1 f\n' 'WARNING:'

dirty "hung task" '[  130.000000] INFO: task kdbus-test:71 blocked for more than 120 seconds.' 'blocked for more than'
dirty "kmemleak disabled" '[   20.000000] kmemleak: Kernel memory leak detector disabled' 'Kernel memory leak detector disabled'
dirty "kmemleak out of objects" '[   20.000000] kmemleak: Cannot allocate a kmemleak_object structure' 'Cannot allocate a kmemleak_object'
dirty "module leak at unload" '[   60.000000] BUG: kdbus: 2 connection(s) leaked' 'BUG:'

# Fault injection (faults.sh): the reports are expected, verbose=1 and 2.
fault1=$'[   31.000000] FAULT_INJECTION: forcing a failure.\r
[   31.000000] name failslab, interval 1, probability 5, space 0, times 999990\r
[   31.100000] should_fail_ex: 12 callbacks suppressed\r'
fault2=$'[   31.000000] FAULT_INJECTION: forcing a failure.\r
[   31.000000] name fail_usercopy, interval 1, probability 20, space 0, times 1000000\r
[   31.000100] CPU: 1 UID: 0 PID: 99 Comm: kdbus-test Tainted: G           O       6.12.117 #1 \r
[   31.000200] Tainted: [O]=OOT_MODULE\r
[   31.000300] Call Trace:\r
[   31.000400]  <TASK>\r
[   31.000500]  dump_stack_lvl+0xbf/0xf0\r
[   31.000600]  should_fail_ex+0x3e1/0x530\r
[   31.000700]  _copy_from_user+0x2f/0xb0\r
[   31.000800]  _RNvNtCsb0sMxQGPtv5_10kdbus_main2fs9node_open+0x17e/0x1d8 [kdbus]\r
[   31.000900]  </TASK>\r'
check "fault injection, one line per fault" 0 "$clean_boot"$'\n'"$fault1"
check "fault injection with stack dumps" 0 "$clean_boot"$'\n'"$fault2"$'\n'"$fault2"
dirty "fault injection, then a WARNING" "$fault2"$'\n''[   31.200000] WARNING: CPU: 1 PID: 99 at kdbus/pool.rs:80 kdbus_pool_free+0x1a/0x40 [kdbus]' 'WARNING:'
dirty "fault injection, then an oops" "$fault1"$'\n''[   31.200000] Oops: general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP KASAN' 'Oops'
# Only the stack dump right after a fault header is excused, not a later one.
dirty "fault header, later bare stack dump" "$fault1"$'\n'"$(printf '[   32.0] line %d\n' 1 2 3 4 5 6 7 8 9)"$'\n''[   33.000000] Call Trace:' 'Call Trace:'

# Usage errors are not "clean".
rc=0; "$here/check-log.sh" "$tmp/does-not-exist" 2>/dev/null || rc=$?
if [ $rc = 2 ]; then echo "ok   missing file -> 2"; passed=$((passed + 1))
else echo "FAIL missing file: exit $rc, expected 2"; failed=$((failed + 1)); fi
rc=0; "$here/check-log.sh" 2>/dev/null || rc=$?
if [ $rc = 2 ]; then echo "ok   no argument -> 2"; passed=$((passed + 1))
else echo "FAIL no argument: exit $rc, expected 2"; failed=$((failed + 1)); fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
