#!/bin/sh
# /run.sh of the fuzz VM (booted with kdbus=1): kdbus-fuzz for a while, then
# the module must still let go: every fuzz process gone, kdbusfs unmounts,
# `rmmod kdbus` succeeds (no leaked references). Prints TAP lines:
#   ok/not ok 1 fuzz-run-completed, 2 unmount, 3 rmmod
# The kernel log is judged by the host (check-log.sh via run-vm.sh).
#
# Settings, from the kernel command line (or the environment, which wins):
#   kdbusfuzz.duration=SECS  KDBUS_FUZZ_DURATION  fuzzing time (default 60)
#   kdbusfuzz.seed=N         KDBUS_FUZZ_SEED      seed (default: kdbus-fuzz picks)
#   kdbusfuzz.args=A,B,...   KDBUS_FUZZ_ARGS      more kdbus-fuzz arguments,
#                                                 comma-separated on the cmdline
#   kdbusfuzz.hung=SECS      KDBUS_FUZZ_HUNG      hung-task timeout (default 15)
dur='' seed='' args='' hung=''
for word in $(cat /proc/cmdline); do
  case "$word" in
    kdbusfuzz.duration=*) dur=${word#*=} ;;
    kdbusfuzz.seed=*) seed=${word#*=} ;;
    kdbusfuzz.args=*) args=$(echo "${word#*=}" | tr ',' ' ') ;;
    kdbusfuzz.hung=*) hung=${word#*=} ;;
  esac
done
dur=${KDBUS_FUZZ_DURATION:-${dur:-60}}
seed=${KDBUS_FUZZ_SEED:-$seed}
args=${KDBUS_FUZZ_ARGS:-$args}
hung=${KDBUS_FUZZ_HUNG:-${hung:-15}}
case "$dur" in ''|*[!0-9]*) echo "fuzz.sh: bad duration '$dur'"; exit 2 ;; esac

# ptys for the descriptor zoo; a short hung-task timeout so that a task
# stuck in D state during the run is reported while the VM still runs.
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
[ -w /proc/sys/kernel/hung_task_timeout_secs ] &&
  echo "$hung" > /proc/sys/kernel/hung_task_timeout_secs
echo "fuzz.sh: kdbus-fuzz for ${dur}s (hung-task timeout ${hung}s)"

status=0
set -- --duration "$dur"
[ -n "$seed" ] && set -- "$@" --seed "$seed"
# shellcheck disable=SC2086 # args is a word list on purpose
set -- "$@" $args
# kdbus-fuzz ends by itself at most ~45 s after the duration; the limit only
# matters if it hangs (then the processes are what the checks below see).
timeout -s KILL $((dur + 90)) kdbus-fuzz "$@"
rc=$?
sleep 1
left=''
for d in /proc/[0-9]*; do
  [ "$(cat "$d/comm" 2>/dev/null)" = kdbus-fuzz ] || continue
  # /proc/PID/stat: "pid (comm) state ..."
  left="$left${d#/proc/} $(cut -d' ' -f3 "$d/stat" 2>/dev/null) kdbus-fuzz
"
done
if [ "$rc" = 0 ] && [ -z "$left" ]; then
  echo "ok 1 fuzz-run-completed"
else
  echo "not ok 1 fuzz-run-completed # kdbus-fuzz status $rc"
  [ -z "$left" ] || { echo "# fuzz processes left (pid state comm):"; printf '%s' "$left" | sed 's/^/#   /'; }
  for p in $(printf '%s' "$left" | awk '{print $1}'); do
    echo "# stack of $p:"; sed 's/^/#   /' "/proc/$p/stack" 2>/dev/null
  done
  status=1
fi

if umount /sys/fs/kdbus 2>/tmp/umount.err; then
  echo "ok 2 unmount"
else
  echo "not ok 2 unmount # $(cat /tmp/umount.err)"
  umount -l /sys/fs/kdbus 2>/dev/null
  status=1
fi

# The last references go away asynchronously (RCU, deferred fput): retry.
ok=0
for _ in 1 2 3 4 5 6 7 8 9 10; do
  if rmmod kdbus 2>/tmp/rmmod.err; then ok=1; break; fi
  sleep 0.5
done
if [ $ok = 1 ]; then
  echo "ok 3 rmmod"
else
  echo "not ok 3 rmmod # $(cat /tmp/rmmod.err); refcount $(cat /sys/module/kdbus/refcnt 2>/dev/null)"
  status=1
fi
exit $status
