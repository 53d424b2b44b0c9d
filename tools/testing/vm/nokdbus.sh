#!/bin/sh
# /run.sh of the test VM booted with kdbus=0: nothing of kdbus may be there.
status=0
if lsmod | grep -q '^kdbus '; then echo "not ok kdbus0-module-not-loaded"; status=1
else echo "ok kdbus0-module-not-loaded"; fi
if [ -e /sys/fs/kdbus ]; then echo "not ok kdbus0-no-mount-point"; status=1
else echo "ok kdbus0-no-mount-point"; fi
if grep -q kdbusfs /proc/filesystems; then echo "not ok kdbus0-no-filesystem"; status=1
else echo "ok kdbus0-no-filesystem"; fi
exit $status
