#!/usr/bin/env bash
# Scan a VM serial log for kernel trouble.
#
# Usage: check-log.sh LOGFILE
# Exit: 0 clean, 1 something matched (each match is printed), 2 usage error.
#
# Patterns are matched anywhere in a line, not only after a printk timestamp:
# kernel messages and the run script's output share one serial line, so a
# report can start in the middle of a user line. The price is that test
# programs must not print these words themselves.
#
# Expected, not trouble: a fault-injection report ("FAULT_INJECTION: forcing a
# failure." and its parameters; with verbose=2 a stack dump follows, whose
# "Call Trace:" line is excused when it comes within 8 lines of that header).
# Everything else still counts in a fault run: a WARNING or BUG from the error
# path, an oops, KASAN, lockdep, a hung task, kmemleak, the module's own
# `BUG: kdbus: ... leaked` at unload.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: check-log.sh LOGFILE" >&2; exit 2; }
log=$1
[ -r "$log" ] || { echo "check-log: cannot read $log" >&2; exit 2; }

# Fixed strings. The first that matches names the line, so the specific
# ones come before the generic BUG:/WARNING: that head most reports.
patterns=(
  # crashes (an oops header lists the kernel's features, "SMP KASAN PTI",
  # so these come before KASAN)
  'Oops'
  'Kernel panic'
  'general protection fault'
  'Unable to handle kernel'
  'kernel BUG at'
  'rcu_sched self-detected stall'
  'rcu_preempt self-detected stall'
  'detected stalls on CPUs'
  # lockdep (headers are "WARNING: ..." or "BUG: ...")
  'possible circular locking'
  'inconsistent lock state'
  'possible recursive locking'
  'suspicious RCU usage'
  'INFO: lockdep'
  'DEBUG_LOCKS_WARN_ON'
  'sleeping function called from invalid context'
  # hung tasks (DETECT_HUNG_TASK: "INFO: task X:PID blocked for more than N seconds.")
  'blocked for more than'
  # KASAN ("BUG: KASAN: slab-use-after-free in ...")
  'KASAN'
  'UBSAN:'
  # kmemleak: the report init prints, and the kernel's own notice
  'unreferenced object'
  'suspected memory leak'
  # kmemleak switched itself off: its report would be empty, not clean
  'Kernel memory leak detector disabled'
  'Cannot allocate a kmemleak_object'
  # WARN_ON, BUG_ON, soft lockups, scheduling while atomic, bad page state ...
  'BUG:'
  'WARNING:'
  # anything else that dumps a stack
  'Call Trace:'
)

# Serial logs have CRLF line ends and may hold NULs or escape codes; awk's
# index() does fixed-string matching, so no pattern needs regex escaping.
matches=$(tr -d '\r\000' < "$log" | LC_ALL=C awk -v pats="$(printf '%s\n' "${patterns[@]}")" '
  BEGIN { n = split(pats, p, "\n"); fault = -100 }
  index($0, "FAULT_INJECTION: forcing a failure") { fault = NR }
  { for (i = 1; i <= n; i++) if (p[i] != "" && index($0, p[i])) {
      if (p[i] == "Call Trace:" && NR - fault <= 8) break
      printf "line %d [%s]: %s\n", NR, p[i], $0; break } }')
if [ -z "$matches" ]; then
  exit 0
fi
count=$(printf '%s\n' "$matches" | wc -l)
echo "check-log: $log: $count line(s) match a kernel error pattern:" >&2
# The first lines tell what happened; the rest are usually the same report.
printf '%s\n' "$matches" | head -n 40 | sed 's/^/check-log:   /' >&2
[ "$count" -le 40 ] || echo "check-log:   ... $((count - 40)) more" >&2
exit 1
