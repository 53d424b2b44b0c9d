#!/bin/sh
# /run.sh of the test VM booted with kdbus=1: the kselftest suite, then the
# module's lifecycle (unload refused while in use, unload, reload, use).
# Prints TAP-style lines; the host (tools/testing/check.sh) counts them.
status=0

kdbus-test || status=1

n=0
t() {  # t NAME COMMAND...: one lifecycle check
  name=$1; shift
  n=$((n + 1))
  if "$@" >/tmp/t.out 2>&1; then
    echo "ok lifecycle-$n $name"
  else
    echo "not ok lifecycle-$n $name"; sed 's/^/# /' /tmp/t.out; status=1
  fi
}

t unload-refused-while-mounted sh -c '! rmmod kdbus'
t unload-refused-while-file-open sh -c '
  exec 3</sys/fs/kdbus/control || exit 1
  umount -l /sys/fs/kdbus || exit 1
  if rmmod kdbus; then echo "rmmod succeeded with an open file"; exit 1; fi
  exec 3<&-
  # The lazy unmount finishes with the last reference.
  for i in 1 2 3 4 5 6 7 8 9 10; do rmmod kdbus 2>/dev/null && exit 0; sleep 0.2; done
  echo "rmmod still refused after the file was closed"; exit 1'
t unload-removes-mount-point sh -c '! lsmod | grep -q "^kdbus " && [ ! -e /sys/fs/kdbus ]'
t reload-and-mount sh -c 'insmod /lib/modules/kdbus.ko && mount -t kdbusfs kdbusfs /sys/fs/kdbus && [ -e /sys/fs/kdbus/control ]'
t use-after-reload kdbus-demo
t unload-after-use sh -c 'umount /sys/fs/kdbus && rmmod kdbus && insmod /lib/modules/kdbus.ko && mount -t kdbusfs kdbusfs /sys/fs/kdbus'
exit $status
