#!/bin/sh
# /run.sh of the fault-injection run (debug kernel, kdbus=1): the kselftest
# suite once more, with failures injected into kdbus.ko's slab and page
# allocations and its user copies; then, with injection off, the module must
# still work (kdbus-demo) and unload (umount + rmmod).
#
# Kernel command line words read here:
#   kdbus.fault_pct=P       probability of each eligible call failing, percent
#                           (default 5)
#   kdbus.fault_interval=N  only every Nth eligible call may fail (default 1;
#                           with P=100, exactly every Nth: sparse faults
#                           that let most tests get past their setup)
#   kdbus.fault_verbose=V   0 silent, 1 one line per injected fault (rate
#                           limited; default), 2 a stack dump with each
#   kdbus.fault_tests=A,B   run only these tests (default: the whole suite)
#
# Which calls are eligible: only those made by the suite's processes (task
# filter: this script writes 1 to /proc/self/make-it-fail before exec'ing
# kdbus-test; forked children inherit it) with a kdbus.ko address somewhere in
# their call stack (stack filter: require-start/require-end = the module's
# text, see below). Sleeping allocations and highmem/user pages included
# (ignore-gfp-wait=N, ignore-gfp-highmem=N), pages of any order (min-order=0).
#
# The suite's own results do not count here (tests fail with ENOMEM/EFAULT
# by design): its output goes to the log prefixed with `fault-suite: ` so no
# TAP counter picks it up. The verdict is the kernel's: this script fails if
# the module stops working or does not unload, and run-vm.sh/check-log.sh fail
# the run on any oops, KASAN, lockdep, WARNING or BUG report (the module's
# `BUG: kdbus: ... leaked` lines at unload included) and kmemleak's report.
# `# faults: ...` lines carry the counts of injected faults, read back from
# the debugfs `times` counters (set to a known value, decremented per fault).
status=0
pct=5 interval=1 verbose=1 tests=''
# shellcheck disable=SC2013 # words, not lines
for word in $(cat /proc/cmdline); do
  case "$word" in
    kdbus.fault_pct=*) pct=${word#kdbus.fault_pct=} ;;
    kdbus.fault_interval=*) interval=${word#kdbus.fault_interval=} ;;
    kdbus.fault_verbose=*) verbose=${word#kdbus.fault_verbose=} ;;
    kdbus.fault_tests=*) tests=${word#kdbus.fault_tests=} ;;
  esac
done
label=${pct}%; [ "$interval" = 1 ] || label="${pct}%/${interval}"
say() { echo "# faults: $*"; }
die() { say "FAIL: $*"; exit 1; }

dbg=/sys/kernel/debug
attrs="failslab fail_page_alloc fail_usercopy"
[ "${KDBUS_LOADED:-0}" = 1 ] || die "kdbus.ko not loaded (boot with kdbus=1)"
for a in $attrs; do
  [ -d "$dbg/$a" ] || die "no $dbg/$a: kernel without FAILSLAB, FAIL_PAGE_ALLOC, FAULT_INJECTION_USERCOPY or debugfs"
done
[ -e $dbg/failslab/require-start ] || die "no stack filter: kernel without FAULT_INJECTION_STACKTRACE_FILTER"

# --- the module's text ---------------------------------------------------
# /proc/modules gives the base of the module's text allocation (MOD_TEXT) and
# /sys/module/kdbus/coresize its text plus data sizes; the kernel tells the
# text size alone nowhere. So the range is [base, base + coresize), cut at the
# first data section above base when one lies inside it. Most of a Rust
# module's code is not in .text (here .text is ~14 KiB, .text.unlikely. ~140
# KiB), so .text alone would miss most of it. Addresses past the text that
# the range may still cover are the module's own data or unmapped module
# space: a call-stack entry never points there, and no other module is loaded
# (checked), so the filter is exact in practice.
[ "$(wc -l < /proc/modules)" = 1 ] || die "other modules are loaded; the text range could cover theirs: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"
# shellcheck disable=SC2046 # the fields of kdbus's line
set -- $(grep '^kdbus ' /proc/modules)
base=$6 coresize=$(cat /sys/module/kdbus/coresize)
case "$base" in 0x*[1-9a-f]*) ;; *) die "no module address in /proc/modules ('$base'; kptr_restrict?)" ;; esac
end=$((base + coresize))
texts=''
for f in /sys/module/kdbus/sections/.* /sys/module/kdbus/sections/*; do
  [ -f "$f" ] || continue
  name=${f##*/} addr=$(cat "$f")
  case "$name" in
    .init*) ;;    # freed after init
    *text*) texts="$texts $name=$addr" ;;
    *) if [ $((addr)) -gt $((base)) ] && [ $((addr)) -lt $end ]; then end=$((addr)); fi ;;
  esac
done
start=$(printf '0x%x' $((base))) end=$(printf '0x%x' $end)
for t in $texts; do
  a=${t#*=}
  if [ $((a)) -lt $((start)) ] || [ $((a)) -ge $((end)) ]; then
    die "text section ${t%%=*} at $a outside the range $start-$end"
  fi
done
say "kdbus.ko text $start-$end ($(( end - start )) bytes; sections:$texts)"

# --- configure -----------------------------------------------------------
big=1000000
w() {  # w FILE VALUE
  echo "$2" > "$1" 2>/dev/null || die "cannot write '$2' to $1"
}
for a in $attrs; do
  d=$dbg/$a
  w "$d/probability" 0
  w "$d/interval" "$interval"
  w "$d/times" $big
  w "$d/space" 0
  w "$d/verbose" "$verbose"
  w "$d/task-filter" Y
  w "$d/stacktrace-depth" 32
  w "$d/require-start" "$start"
  w "$d/require-end" "$end"
  w "$d/reject-start" 0
  w "$d/reject-end" 0
  for f in require-start:$start require-end:$end times:$big; do
    v=$(cat "$d/${f%%:*}")
    [ $((v)) = $((${f#*:})) ] || die "$d/${f%%:*} reads back $v, not ${f#*:}"
  done
done
w $dbg/failslab/ignore-gfp-wait N
w $dbg/fail_page_alloc/ignore-gfp-wait N
w $dbg/fail_page_alloc/ignore-gfp-highmem N
w $dbg/fail_page_alloc/min-order 0
say "probability ${pct}%, interval $interval, verbose $verbose, task filter, stack filter on the module's text"

# --- the suite with faults -----------------------------------------------
args='--timeout 20'
if [ -n "$tests" ]; then
  for t in $(echo "$tests" | tr ',' ' '); do args="$args --test $t"; done
fi
for a in $attrs; do w "$dbg/$a/probability" "$pct"; done
t0=$(date +%s)
# shellcheck disable=SC2086 # $args is a word list
(echo 1 > /proc/self/make-it-fail && exec kdbus-test $args) > /tmp/suite.out 2>&1
suite_rc=$?
for a in $attrs; do w "$dbg/$a/probability" 0; done
secs=$(( $(date +%s) - t0 ))
sed 's/^/fault-suite: /' /tmp/suite.out
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' /tmp/suite.out | tail -1)
counts='' total=0
for a in $attrs; do
  n=$(( big - $(cat "$dbg/$a/times") ))
  counts="$counts $a $n," total=$((total + n))
done
say "${label}: injected$counts total $total in ${secs}s"
say "${label}: suite ${summary:-gave no summary} (exit $suite_rc; not counted: tests may fail with ENOMEM/EFAULT)"
[ "$total" -gt 0 ] || say "${label}: note: no fault was injected (filter or probability too narrow?)"

# --- the kernel after the faults -----------------------------------------
if kdbus-demo > /tmp/demo.out 2>&1; then
  say "${label}: module still works after the faults (kdbus-demo ok)"
else
  sed 's/^/fault-demo: /' /tmp/demo.out
  say "FAIL ${label}: kdbus-demo fails after the faults (faults off)"; status=1
fi

# Every suite process has exited (kdbus-test waits for its children and kills
# a timed-out test's process group), so nothing holds the module any more.
unloaded=0
if umount /sys/fs/kdbus; then
  i=0
  while [ $i -lt 20 ]; do
    if rmmod kdbus 2>/tmp/rmmod.err; then unloaded=1; break; fi
    sleep 0.5; i=$((i + 1))
  done
else
  say "FAIL ${label}: umount /sys/fs/kdbus failed"
fi
if [ $unloaded = 1 ]; then
  say "${label}: umount + rmmod ok"
else
  say "FAIL ${label}: the module does not unload: $(cat /tmp/rmmod.err 2>/dev/null) ($(grep '^kdbus ' /proc/modules))"
  for fd in /proc/[0-9]*/fd/*; do
    l=$(readlink "$fd" 2>/dev/null) || continue
    case "$l" in *kdbus*) p=${fd#/proc/}; echo "fault-holder: pid ${p%%/*} $(cat "/proc/${p%%/*}/comm"): $l" ;; esac
  done
  status=1
fi
exit $status
