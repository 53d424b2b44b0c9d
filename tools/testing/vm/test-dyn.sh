#!/usr/bin/env bash
# Dynamically linked programs in the test VM (mkinitramfs.sh --dyn, --file):
# the image's contents and refusals checked here, then one boot that runs
# dbus-daemon and dbus-send from Debian's packages on a private bus (config
# shipped with --file) and a short kdbus-bench-peers run (a dynamic Rust
# program linking libsystemd: sd-bus client and server through dbus-daemon
# and through dbus-broker via dbus-broker-launch, with the inotify stand-in
# noinotify.c preloaded as the test kernels have no inotify), as make bench
# does.
#
# Usage: test-dyn.sh [release|debug] [--peers PATH] [--module KO]   (default debug)
#   --peers PATH  the dynamic kdbus-bench-peers (default: built here,
#                 cargo build --release -p kdbus-bench --bin kdbus-bench-peers)
#   --module KO   kdbus.ko of that flavour: booted with kdbus=1, and the
#                 peers run also measures kdbus raw and kdbus through the
#                 D-Bus client library (lib/kdbus-client on both ends);
#                 without it the boot has kdbus=0 and only the brokers run
# Needs the cached kernel of that flavour.
# Ends with the line `N passed, N failed`; exits non-zero if any failed.
# The run script is single-quoted: it expands inside the VM.
# shellcheck disable=SC2016
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../env.sh"
flavour=debug peers='' module=''
while [ $# -gt 0 ]; do
  case "$1" in
    release|debug) flavour=$1; shift ;;
    --peers) peers=${2:?--peers needs a path}; shift 2 ;;
    --module) module=${2:?--module needs a path}; shift 2 ;;
    *) echo "usage: test-dyn.sh [release|debug] [--peers PATH] [--module KO]" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kdbus-test-dyn.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
pass() { echo "ok   $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; failed=$((failed + 1)); }
mk() { "$here/mkinitramfs.sh" "$@" 2>"$tmp/mk.err"; }

daemon=$(command -v dbus-daemon || true) send=$(command -v dbus-send || true)
if [ -z "$daemon" ] || [ -z "$send" ]; then
  fail "dbus-daemon and dbus-send installed (tools/testing/setup-host.sh)"
  echo "$passed passed, $failed failed"; exit 1
fi

# --- the image, no boot ------------------------------------------------------
if mk "$tmp/x.gz" --bin "$daemon"; then fail "--bin refuses a dynamic program"
elif grep -q 'dynamically linked' "$tmp/mk.err"; then pass "--bin refuses a dynamic program"
else fail "--bin refuses a dynamic program (message: $(cat "$tmp/mk.err"))"; fi
if mk "$tmp/x.gz" --dyn "${BUSYBOX:-/bin/busybox}"; then fail "--dyn refuses a static program"
else pass "--dyn refuses a static program"; fi
if mk "$tmp/x.gz" --file "$here/init:etc/x"; then fail "--file needs an absolute destination"
else pass "--file needs an absolute destination"; fi

cat > "$tmp/bus.conf" <<'CONF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=/tmp/test-dyn-bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF

if [ -z "$peers" ]; then
  (cd "$KDBUS_ROOT" && cargo build --quiet --release -p kdbus-bench --bin kdbus-bench-peers) >&2
  peers=${CARGO_TARGET_DIR:-$KDBUS_ROOT/target}/release/kdbus-bench-peers
fi
dyn=(--dyn "$daemon" --dyn "$send" --file "$tmp/bus.conf:/etc/kdbus-test/bus.conf")
for p in dbus-broker-launch dbus-broker; do
  p=$(command -v "$p" || true); [ -z "$p" ] || dyn+=(--dyn "$p")
done
[ ! -x "$peers" ] || dyn+=(--dyn "$peers")
cmdline="kdbus=0 kdbus.kmemleak=0" kinds=socket,dbus-daemon,dbus-broker
if [ -n "$module" ]; then
  dyn+=(--module "$module")
  cmdline="kdbus=1 kdbus.kmemleak=0" kinds=socket,kdbus,kdbus-dbus,dbus-daemon,dbus-broker
fi
dyn+=(--file "$tmp/kinds:/etc/kdbus-test/kinds")
# dbus-broker-launch needs inotify, which the test kernels lack (noinotify.c).
if cc -shared -fPIC -O2 -o "$tmp/noinotify.so" "$here/noinotify.c" 2>"$tmp/cc.err"; then
  dyn+=(--file "$tmp/noinotify.so:/usr/lib/kdbus-bench/noinotify.so")
else
  fail "building noinotify.c: $(cat "$tmp/cc.err")"
fi

echo "$kinds" > "$tmp/kinds"
cat > "$tmp/run.sh" <<'RUN'
ok() { echo "TEST-DYN ok $1"; }
bad() { echo "TEST-DYN FAIL $1"; fails=$((fails + 1)); }
fails=0
v=$(dbus-daemon --version | head -n 1)
case "$v" in "D-Bus Message Bus Daemon "*) ok "version: $v" ;; *) bad "version: '$v'" ;; esac
dbus-daemon --config-file=/etc/kdbus-test/bus.conf --nofork --print-address=1 \
  > /tmp/addr 2> /tmp/daemon.err &
pid=$!
n=0
while [ ! -s /tmp/addr ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
addr=$(head -n 1 /tmp/addr)
case "$addr" in unix:path=/tmp/test-dyn-bus.sock,guid=*) ok "daemon listening: $addr" ;;
  *) bad "daemon address '$addr'"; cat /tmp/daemon.err ;; esac
q() { dbus-send --bus="$addr" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus "$@"; }
id=$(q org.freedesktop.DBus.GetId 2>&1) && ok "GetId round trip: $(echo $id | tr -s ' ')" || bad "GetId: $id"
q org.freedesktop.DBus.Peer.Ping >/dev/null 2>&1 && ok "Peer.Ping round trip" || bad "Peer.Ping"
r=$(q org.freedesktop.DBus.ListNames 2>&1)
case "$r" in *'"org.freedesktop.DBus"'*) ok "ListNames" ;; *) bad "ListNames: $r" ;; esac
kill "$pid"; wait "$pid" 2>/dev/null
if command -v kdbus-bench-peers >/dev/null; then
  kinds=$(cat /etc/kdbus-test/kinds)
  kdbus-bench-peers --where vm --only "$kinds" --budget 3 --rounds 1 > /tmp/peers.out 2>&1
  rc=$?
  sed 's/^/peers: /' /tmp/peers.out
  if [ $rc = 0 ] && grep -q '^BENCH peers payload=8 .*dbus_daemon_per_s=[0-9].*dbus_broker_per_s=[0-9]' /tmp/peers.out
  then ok "kdbus-bench-peers: sd-bus round trips through dbus-daemon and dbus-broker"
  else bad "kdbus-bench-peers (status $rc)"; fi
  case "$kinds" in *kdbus-dbus*)
    if [ $rc = 0 ] && grep -q '^BENCH peers payload=65536 .*kdbus_raw_per_s=[0-9].*kdbus_dbus_per_s=[0-9]' /tmp/peers.out
    then ok "kdbus-bench-peers: kdbus raw and kdbus-client round trips between processes"
    else bad "kdbus-bench-peers kdbus transports (status $rc)"; fi ;;
  esac
else
  bad "kdbus-bench-peers not in the image"
fi
exit $fails
RUN

if ! mk "$tmp/dyn.gz" "${dyn[@]}" --run "$tmp/run.sh"; then
  fail "image with dynamic programs: $(cat "$tmp/mk.err")"
  echo "$passed passed, $failed failed"; exit 1
fi
list=$(zcat "$tmp/dyn.gz" | cpio -t --quiet 2>/dev/null)
want=("${daemon#/}" "${send#/}" lib64/ld-linux-x86-64.so.2 etc/passwd etc/machine-id
      etc/kdbus-test/bus.conf)
for lib in $(ldd "$daemon" | awk '$2 == "=>" { print $3 }'); do want+=("${lib#/}"); done
missing=()
for w in "${want[@]}"; do grep -qxF "$w" <<< "$list" || missing+=("$w"); done
if [ ${#missing[@]} = 0 ]; then pass "image holds the programs, ldd's libraries, the loader, /etc"
else fail "image lacks ${missing[*]}"; fi

# --- one boot ----------------------------------------------------------------
rc=0
start=$(date +%s)
"$here/run-vm.sh" --flavour "$flavour" --initrd "$tmp/dyn.gz" --cmdline "$cmdline" \
  --timeout 300 --log "$tmp/log" >/dev/null 2>"$tmp/err" || rc=$?
tr -d '\r' < "$tmp/log" > "$tmp/log.txt"
grep -a '^TEST-DYN ' "$tmp/log.txt" | sed 's/^/  /'
grep -a '^peers: \(BENCH\|kdbus-bench-peers: OK\)' "$tmp/log.txt" | sed 's/^/  /'
for c in "version: D-Bus Message Bus Daemon" "daemon listening" "GetId round trip" \
         "Peer.Ping round trip" "ListNames" "kdbus-bench-peers: sd-bus round trips" \
         ${module:+"kdbus-bench-peers: kdbus raw and kdbus-client round trips"}; do
  if grep -aqF "TEST-DYN ok $c" "$tmp/log.txt"; then pass "VM: $c"; else fail "VM: $c"; fi
done
if [ "$rc" = 0 ]; then pass "VM run clean (status 0, $(( $(date +%s) - start )) s)"
else
  fail "VM run status $rc"; sed 's/^/  /' "$tmp/err"; tail -n 40 "$tmp/log.txt" | sed 's/^/  | /'
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
