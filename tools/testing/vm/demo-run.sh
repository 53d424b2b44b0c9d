#!/bin/sh
# /run.sh of `make demo` (tools/testing/demo.sh): a bus at work as a user
# sees it, told in story lines. Every line meant for the story starts with
# $M; demo.sh shows only those and keeps the whole serial console (kernel
# messages included) in build/demo/vm.log.
#
# The programs are samples/bus-demo (one process each): system-bus (what
# PID 1 does: make 0-system and hold the owner fd), echo-service,
# listener (two, with different match rules), echo-client. kdbusctl is
# used where marked, if the initramfs has it.
M='demo| '
export KDBUS_DEMO_MARK="$M"
say() { echo "$M$*"; }
step() { say ""; say "== $*"; }
indent() { sed "s/^/$M    /"; }
pids=''
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; }
die() { say "FAILED: $*"; cleanup; exit 1; }
# waitfile FILE: the program's --ready file (30 s: a loaded host is slow).
waitfile() {
  i=0
  while [ ! -e "$1" ]; do
    [ $i -lt 300 ] || return 1
    sleep 0.1; i=$((i + 1))
  done
}
have_ctl=0; command -v kdbusctl >/dev/null 2>&1 && have_ctl=1
ctl_skipped() {
  say "    (skipped: kdbusctl is not in this initramfs; demo.sh puts it there once the"
  say "     workspace builds a kdbusctl binary, or from \$KDBUSCTL)"
}

say "kdbus demo on Linux $(uname -r): the kernel command line has kdbus=1, so init loaded"
say "kdbus.ko and mounted kdbusfs on /sys/fs/kdbus, which holds: $(echo $(ls /sys/fs/kdbus))"

step "1. init makes the system bus (as PID 1 would, before any service starts)"
system-bus --ready /tmp/bus.ready & BUS=$!; pids="$pids $BUS"
waitfile /tmp/bus.ready || die "the system bus did not appear"
say "    $(ls -l /sys/fs/kdbus/0-system/bus | awk '{print $1, $NF}')"

step "2. the echo service acquires org.example.Echo"
echo-service --ready /tmp/svc.ready & SVC=$!; pids="$pids $SVC"
waitfile /tmp/svc.ready || die "the echo service did not start"

step "3. two listeners subscribe to the service's signal, with different match rules"
listener --label A --rule "type='signal',interface='org.example.Echo',member='Echoed'" \
  --ready /tmp/a.ready --report /tmp/a.report & LA=$!; pids="$pids $LA"
waitfile /tmp/a.ready || die "listener A did not start"
listener --label B --rule "type='signal',interface='org.example.Echo',member='Echoed',arg0='bye'" \
  --ready /tmp/b.ready --report /tmp/b.report & LB=$!; pids="$pids $LB"
waitfile /tmp/b.ready || die "listener B did not start"

step "4. kdbusctl list: who is on the bus"
# ---- kdbusctl plug-in point 1 of 2 (list) ----
if [ $have_ctl = 1 ]; then
  kdbusctl list 2>&1 | indent
else
  ctl_skipped
fi
# ---- kdbusctl plug-in point 2 of 2 (monitor), started before the calls ----
if [ $have_ctl = 1 ]; then
  kdbusctl monitor > /tmp/monitor.out 2>&1 & MON=$!; pids="$pids $MON"
  sleep 1
fi

step "5. a client calls org.example.Echo by name, with typed arguments"
echo-client || die "echo-client failed"

step "6. the signals: Echoed(\"hello\") and Echoed(\"bye\") were broadcast; what each listener got"
wait $LA; ra=$?
wait $LB; rb=$?
cat /tmp/a.report /tmp/b.report
[ $ra = 0 ] && [ $rb = 0 ] || die "a listener did not get its signals (A: $ra, B: $rb)"

step "7. kdbusctl monitor: the same traffic seen by a bus monitor (excerpt)"
if [ $have_ctl = 1 ]; then
  kill $MON 2>/dev/null; wait $MON 2>/dev/null
  head -n 30 /tmp/monitor.out | indent
  say "    ($(wc -l < /tmp/monitor.out) lines in all)"
else
  ctl_skipped
fi

step "8. shutdown: the service quits, init closes the bus"
echo-client --quit || die "echo-client --quit failed"
wait $SVC || die "echo-service exited with status $?"
kill -TERM $BUS; wait $BUS || die "system-bus exited with status $?"

say ""
say "kdbus demo: OK"
