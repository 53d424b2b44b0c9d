#!/bin/sh
# /run.sh of the client-library VM run (tools/testing/client-vm.sh; debug
# kernel, kdbus=1): kdbus-client-test (calls sync/async/tokio, typed
# arguments, errors as D-Bus names, signals and match rules, NameOwnerChanged,
# memfd bodies, fds, sender metadata; one bus and process per test), then
# lib/kdbus-client's examples against a system bus made by make-bus. Prints
# TAP lines (`ok N name`, `not ok N name`, `ok examples-N name`); the host
# counts them.
status=0

kdbus-client-test || status=1

n=0
t() {  # t NAME COMMAND...: one check of the examples
  name=$1; shift
  n=$((n + 1))
  if "$@" >/tmp/t.out 2>&1; then
    echo "ok examples-$n $name"; sed 's/^/# /' /tmp/t.out
  else
    echo "not ok examples-$n $name"; sed 's/^/# /' /tmp/t.out; status=1
  fi
}
# wait_for FILE WORD: up to 30 s for WORD to appear in FILE.
wait_for() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    [ $i -lt 300 ] || return 1
    sleep 0.1; i=$((i + 1))
  done
}

if command -v make-bus >/dev/null && command -v echo-service >/dev/null; then
  make-bus 0-system > /tmp/make-bus.log 2>&1 & BUS=$!
  if wait_for /tmp/make-bus.log make-bus; then
    t echo-service-and-echo-client sh -c '
      echo-service > /tmp/svc.log 2>&1 & S=$!
      echo-client; rc=$?
      wait $S || rc=1
      cat /tmp/svc.log; exit $rc'
    t echo-client-async sh -c '
      echo-service > /tmp/svc2.log 2>&1 & S=$!
      i=0; while ! grep -q owns /tmp/svc2.log && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
      echo-client-async; rc=$?
      kill $S; wait $S 2>/dev/null
      exit $rc'
  else
    echo "not ok examples-1 make-bus"; cat /tmp/make-bus.log; status=1
  fi
  kill $BUS 2>/dev/null; wait $BUS 2>/dev/null
else
  echo "ok examples-1 lib-examples # SKIP make-bus/echo-service not in the initramfs"
fi
exit $status
