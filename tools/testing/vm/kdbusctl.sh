#!/bin/sh
# /run.sh of the kdbusctl VM test (debug VM, kdbus=1): every kdbusctl command
# against a live bus made by `kdbusctl make-bus`, with tools/kdbusctl's
# test-service as the peer; output is checked, not only exit codes.
# Prints TAP lines (`ok N - name` / `not ok N - name`) and a final
# `N passed, N failed` line; exits 1 if anything failed.
#
# Needs in /bin: kdbusctl, test-service (see tools/testing/vm/README.md).
set -u
cd /tmp
n=0 pass=0 fail=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
notok() {
  n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"
  for f in /tmp/out /tmp/err; do [ -s $f ] && sed 's/^/#   /' $f | head -40; done
}
# t NAME EXPECTED-STATUS COMMAND...: runs COMMAND (stdout /tmp/out, stderr
# /tmp/err); then `check` lines may inspect them. Returns 0 if the status
# matched.
run() { want=$1; shift; "$@" >/tmp/out 2>/tmp/err; got=$?; [ "$got" = "$want" ] || { echo "status $got, expected $want" >>/tmp/err; return 1; }; }
has() { grep -qF -- "$1" "${2:-/tmp/out}" || { echo "missing: $1 (in ${2:-/tmp/out})" >>/tmp/err; return 1; }; }
hasnt() { ! grep -qF -- "$1" "${2:-/tmp/out}" || { echo "unexpected: $1" >>/tmp/err; return 1; }; }
is() { [ "$(cat "${2:-/tmp/out}")" = "$1" ] || { echo "expected exactly: $1" >>/tmp/err; return 1; }; }
t() { name=$1; shift; if "$@"; then ok "$name"; else notok "$name"; fi; }
wait_for() {  # wait_for FILE TEXT [TENTHS]: until FILE contains TEXT
  i=0; while ! grep -qF -- "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt "${3:-300}" ] && return 1; sleep 0.1; done
}
u32() { od -A n -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }  # u32 FILE OFFSET

B="--bus test"
EP=/sys/fs/kdbus/0-test/bus
C="org.kdbusctl.Test /org/kdbusctl/Test org.kdbusctl.Test"

echo "# kdbusctl $(kdbusctl --version 2>&1)"

# ---- make-bus ----
t make-bus-prints-endpoint sh -c '
  kdbusctl make-bus test --creator-info --background --pid-file /tmp/bus.pid >/tmp/out 2>/tmp/err &&
  [ "$(cat /tmp/out)" = /sys/fs/kdbus/0-test/bus ] && [ -e /sys/fs/kdbus/0-test/bus ] &&
  kill -0 "$(cat /tmp/bus.pid)"'
t make-bus-exists-already-fails-1 sh -c '
  kdbusctl make-bus test >/tmp/out 2>/tmp/err; [ $? = 1 ] && grep -q "File exists (EEXIST)" /tmp/err'
t make-bus-bad-name-usage sh -c '
  kdbusctl make-bus "bad/name" >/tmp/out 2>/tmp/err; [ $? = 2 ] && grep -q "invalid bus name" /tmp/err'

# ---- services ----
test-service $EP org.kdbusctl.Test org.kdbusctl.Hidden >/tmp/svc.log 2>&1 &
SVC=$!
wait_for /tmp/svc.log "org.kdbusctl.Hidden: PrimaryOwner" || echo "# test-service did not start: $(cat /tmp/svc.log)"
test-service $EP org.kdbusctl.Test --queue >/tmp/svc2.log 2>&1 &
SVC2=$!
wait_for /tmp/svc2.log "InQueue" || echo "# queued test-service did not start: $(cat /tmp/svc2.log)"
echo "# services: pid $SVC ($(head -1 /tmp/svc.log)), queued pid $SVC2"

# ---- list ----
run 0 kdbusctl $B list; sed 's/^/# list: /' /tmp/out
t list-header sh -c 'head -1 /tmp/out | grep -q "^NAME  *PID  *PROCESS  *USER  *CONNECTION  *STATE  *DESCRIPTION$"'
t list-name-with-pid-comm-uid awk -v p=$SVC '
  $1 == "org.kdbusctl.Test" && $2 == p && $3 == "test-service" && ($4 == "root" || $4 == "0") &&
  $5 ~ /^:1\.[0-9]+$/ && $6 == "primary" && $7 == "test-service" { f = 1 } END { exit !f }' /tmp/out
t list-queued-owner awk -v p=$SVC2 '$1 == "org.kdbusctl.Test" && $2 == p && $6 == "queued" { f = 1 } END { exit !f }' /tmp/out
t list-unique-name-of-service awk -v p=$SVC '$1 ~ /^:1\./ && $2 == p && $6 == "unique" { f = 1 } END { exit !f }' /tmp/out
UNIQ=$(awk '$1 == "org.kdbusctl.Test" && $6 == "primary" { print $5 }' /tmp/out)
t list-json sh -c 'kdbusctl --bus test --json=short list --acquired >/tmp/out 2>/tmp/err &&
  grep -q "\"name\":\"org.kdbusctl.Test\",\"pid\":'$SVC',\"process\":\"test-service\"" /tmp/out &&
  ! grep -q "\"name\":\":1\." /tmp/out'
t list-no-legend-unique sh -c 'kdbusctl --bus test --no-legend list --unique >/tmp/out 2>/tmp/err &&
  ! grep -q NAME /tmp/out && ! grep -q org.kdbusctl /tmp/out && grep -q "^:1\." /tmp/out'

# ---- status ----
run 0 kdbusctl $B status org.kdbusctl.Test; sed 's/^/# status: /' /tmp/out
t status-of-name sh -c 'grep -qx "PID='$SVC'" /tmp/out && grep -qx "Comm=test-service" /tmp/out &&
  grep -qx "EUID=0" /tmp/out && grep -qx "UniqueName='$UNIQ'" /tmp/out &&
  grep -q "^WellKnownNames=.*org.kdbusctl.Test" /tmp/out && grep -q "^WellKnownNames=.*org.kdbusctl.Hidden" /tmp/out &&
  grep -qx "Description=test-service" /tmp/out && grep -q "^CommandLine=test-service /sys/fs/kdbus/0-test/bus" /tmp/out &&
  grep -q "^Exe=.*test-service$" /tmp/out && grep -q "^EffectiveCapabilities=.*cap_ipc_owner" /tmp/out &&
  grep -q "^CGroup=" /tmp/out && grep -qx "ConnectionFlags=accept-fd" /tmp/out'
t status-by-unique-name-and-id sh -c 'kdbusctl --bus test status '$UNIQ' | grep -qx "PID='$SVC'" &&
  kdbusctl --bus test status '${UNIQ#:1.}' | grep -qx "PID='$SVC'"'
t status-json sh -c 'kdbusctl --bus test --json=short status org.kdbusctl.Test | grep -q "\"PID\":\"'$SVC'\""'
t status-bus-creator sh -c 'kdbusctl --bus test status >/tmp/out 2>/tmp/err && grep -qx "BusName=0-test" /tmp/out &&
  grep -qx "Comm=kdbusctl" /tmp/out && grep -q "^BusID=[0-9a-f]\{32\}$" /tmp/out'

# ---- call ----
callt() { cname=$1; cwant=$2; shift 2; if run 0 kdbusctl $B call $C Echo "$@" && is "$cwant"; then ok "$cname"; else notok "$cname"; fi; }
callt call-s 's "hello"' s hello
callt call-as 'as 3 "a" "b" "c"' as 3 a b c
callt call-a{sv} 'a{sv} 1 "key" s "val"' 'a{sv}' 1 key s val
callt call-struct '(si) "str" 5' '(si)' str 5
callt call-variant 'v s "x"' v s x
callt call-mixed 'bynqiuxtdog true 255 -3 7 -9 16 -1 18446744073709551615 2.5 "/a/b" "a{sv}"' \
  bynqiuxtdog yes 255 -3 7 -9 0x10 -1 18446744073709551615 2.5 /a/b 'a{sv}'
callt call-nested 'a(sas) 2 "x" 1 "y" "z" 0' 'a(sas)' 2 x 1 y z 0
if run 0 kdbusctl $B --json=short call $C Echo 'sa{sv}' hi 1 k u 5 &&
   is '{"type":"sa{sv}","data":["hi",{"k":{"type":"u","data":5}}]}'; then ok call-json-short; else notok call-json-short; fi
if run 0 kdbusctl $B --json=pretty call $C Echo s hi && has '        "type" : "s",' && has '                "hi"'; then ok call-json-pretty; else notok call-json-pretty; fi
if run 0 kdbusctl $B call --verbose $C Echo s hi && has 'Type=method_return' && has 'STRING "hi";' &&
   has "Sender=$UNIQ"; then ok call-verbose; else notok call-verbose; fi
if run 0 kdbusctl $B call $C Echo && is ''; then ok call-no-args-empty-reply; else notok call-no-args-empty-reply; fi
if run 1 kdbusctl $B call $C Fail && has 'org.kdbusctl.Error.Failed: requested failure' /tmp/err; then
  ok call-error-reply-exit-1; else notok call-error-reply-exit-1; fi

# ---- monitor: a call ----
kdbusctl $B monitor org.kdbusctl.Test --max-messages 3 --duration 60 >/tmp/mon.out 2>/tmp/mon.err &
MON=$!
wait_for /tmp/mon.err "monitoring"
run 0 kdbusctl $B call $C Echo s monitored
wait $MON; MRC=$?
sed 's/^/# monitor: /' /tmp/mon.out | head -40
if [ $MRC = 0 ] && has 'Type=method_call' /tmp/mon.out && has 'Member=Echo' /tmp/mon.out &&
   has 'Destination=org.kdbusctl.Test' /tmp/mon.out && has 'STRING "monitored";' /tmp/mon.out &&
   has 'Type=method_return' /tmp/mon.out && has 'ReplyCookie=' /tmp/mon.out &&
   has 'Type=signal' /tmp/mon.out && has 'Member=Echoed' /tmp/mon.out &&
   has 'Monotonic=' /tmp/mon.out && has 'SequenceNumber=' /tmp/mon.out &&
   has 'Comm=kdbusctl' /tmp/mon.out && has "Sender=$UNIQ" /tmp/mon.out &&
   has 'MESSAGE "s" {' /tmp/mon.out; then ok monitor-shows-a-call; else notok monitor-shows-a-call; fi

# ---- emit reaching a monitor ----
kdbusctl $B monitor "type='signal',member='Pinged'" --max-messages 2 --duration 60 >/tmp/mon.out 2>/tmp/mon.err &
MON=$!
wait_for /tmp/mon.err "monitoring"
run 0 kdbusctl $B emit /org/kdbusctl/Test org.kdbusctl.Test Pinged s hi
E1=$?
run 0 kdbusctl $B emit --destination org.kdbusctl.Test /org/kdbusctl/Test org.kdbusctl.Test Pinged as 2 x y
E2=$?
wait $MON; MRC=$?
sed 's/^/# emit-monitor: /' /tmp/mon.out | head -30
if [ $E1$E2$MRC = 000 ] && [ "$(grep -c 'Member=Pinged' /tmp/mon.out)" = 2 ] &&
   has 'STRING "hi";' /tmp/mon.out && has 'DstId=broadcast' /tmp/mon.out &&
   has 'Destination=org.kdbusctl.Test' /tmp/mon.out && has 'ARRAY "s" {' /tmp/mon.out &&
   hasnt 'Member=Echo' /tmp/mon.out; then ok emit-reaches-monitor; else notok emit-reaches-monitor; fi
kdbusctl $B --json=short monitor --match "member='Pinged'" --max-messages 1 --duration 30 >/tmp/out 2>/tmp/err &
MON=$!
wait_for /tmp/err monitoring
kdbusctl $B emit /o org.kdbusctl.Test Pinged u 7
if wait $MON && has '"member":"Pinged"' && has '"payload":{"type":"u","data":[7]}'; then
  ok monitor-json; else notok monitor-json; fi

# ---- capture ----
kdbusctl $B capture /tmp/cap.pcap --match "interface='org.kdbusctl.Test'" --max-messages 2 --duration 60 \
  >/tmp/cap.out 2>/tmp/cap.err &
CAP=$!
wait_for /tmp/cap.err "monitoring"
run 0 kdbusctl $B call $C Echo s captured
wait $CAP; CRC=$?
size=$(wc -c </tmp/cap.pcap)
hdr=$(od -A n -t x1 -N 24 /tmp/cap.pcap | tr -s ' \n' ' ')
echo "# capture: $size bytes, header$hdr"
pk=0 off=24 first=''
while [ $off -lt $size ]; do
  incl=$(u32 /tmp/cap.pcap $((off + 8))); orig=$(u32 /tmp/cap.pcap $((off + 12)))
  [ -z "$first" ] && first=$(od -A n -t x1 -j $((off + 16)) -N 4 /tmp/cap.pcap | tr -s ' \n' ' ')
  echo "# capture: packet $pk at $off: incl $incl orig $orig"
  off=$((off + 16 + incl)); pk=$((pk + 1))
done
if [ $CRC = 0 ] && [ "$hdr" = " d4 c3 b2 a1 02 00 04 00 00 00 00 00 00 00 00 00 00 10 00 00 e7 00 00 00 " ] &&
   [ $pk = 2 ] && [ $off = "$size" ] && [ "$first" = " 6c 01 00 01 " ] &&
   has 'captured 2 messages to /tmp/cap.pcap' /tmp/cap.err && grep -qa 'captured' /tmp/cap.pcap; then
  ok capture-pcap-header-and-packets; else echo "# first packet bytes:$first"; notok capture-pcap-header-and-packets; fi

# ---- make-endpoint ----
t make-endpoint sh -c '
  kdbusctl make-endpoint test sandbox --policy org.kdbusctl.Test=talk --background --pid-file /tmp/ep.pid >/tmp/out 2>/tmp/err &&
  [ "$(cat /tmp/out)" = /sys/fs/kdbus/0-test/0-sandbox ] && [ -e /sys/fs/kdbus/0-test/0-sandbox ]'
SB="--bus /sys/fs/kdbus/0-test/0-sandbox"
if run 0 kdbusctl $SB list && has org.kdbusctl.Test && hasnt org.kdbusctl.Hidden; then
  ok endpoint-list-sees-only-allowed-name; else notok endpoint-list-sees-only-allowed-name; fi
if run 0 kdbusctl $SB call $C Echo s via-endpoint && is 's "via-endpoint"'; then ok endpoint-call; else notok endpoint-call; fi
if run 4 kdbusctl $SB status org.kdbusctl.Hidden && has 'no such peer' /tmp/err; then
  ok endpoint-hidden-name-exit-4; else notok endpoint-hidden-name-exit-4; fi
if run 1 kdbusctl $SB monitor && has 'custom endpoints cannot have monitors' /tmp/err; then
  ok endpoint-no-monitor; else notok endpoint-no-monitor; fi
t make-endpoint-empty-policy sh -c 'kdbusctl make-endpoint test empty --background --pid-file /tmp/ep2.pid >/tmp/out 2>/tmp/err'
if run 5 kdbusctl --bus /sys/fs/kdbus/0-test/0-empty call $C Echo s x && has 'AccessDenied' /tmp/err &&
   has '(EPERM)' /tmp/err; then ok endpoint-empty-policy-denies-exit-5; else notok endpoint-empty-policy-denies-exit-5; fi
if run 2 kdbusctl make-endpoint test bad --policy 'org.x=write'  && has 'invalid policy rule' /tmp/err; then
  ok make-endpoint-bad-policy-usage; else notok make-endpoint-bad-policy-usage; fi

# ---- bad input ----
if run 4 kdbusctl $B call org.kdbusctl.Nobody /a org.kdbusctl.Test Echo s x &&
   has 'ServiceUnknown: Destination org.kdbusctl.Nobody not known (ESRCH)' /tmp/err; then
  ok unknown-name-call-exit-4; else notok unknown-name-call-exit-4; fi
if run 4 kdbusctl $B status org.kdbusctl.Nobody && has 'org.kdbusctl.Nobody: no such peer' /tmp/err; then
  ok unknown-name-status-exit-4; else notok unknown-name-status-exit-4; fi
if run 4 kdbusctl $B emit --destination org.kdbusctl.Nobody /a org.kdbusctl.Test Pinged; then
  ok unknown-destination-emit-exit-4; else notok unknown-destination-emit-exit-4; fi
if run 2 kdbusctl $B monitor "type='signal" && has "invalid match rule \"type='signal\"" /tmp/err; then
  ok malformed-match-rule-exit-2; else notok malformed-match-rule-exit-2; fi
if run 2 kdbusctl $B capture /tmp/x.pcap --match "nonsense='1'" && has 'unknown key nonsense' /tmp/err; then
  ok malformed-capture-match-exit-2; else notok malformed-capture-match-exit-2; fi
if run 2 kdbusctl $B call $C Echo 'a{vs}' 0 && has "invalid signature 'a{vs}': dict key must be a basic type" /tmp/err; then
  ok bad-signature-exit-2; else notok bad-signature-exit-2; fi
if run 2 kdbusctl $B call $C Echo as 3 a b && has 'too few parameters' /tmp/err; then
  ok too-few-args-exit-2; else notok too-few-args-exit-2; fi
if run 2 kdbusctl $B call $C Echo u -5 && has "failed to parse '-5' as a uint32 (u)" /tmp/err; then
  ok bad-number-exit-2; else notok bad-number-exit-2; fi
if run 2 kdbusctl $B call $C 'bad member' s x && has "invalid member 'bad member'" /tmp/err; then
  ok bad-member-exit-2; else notok bad-member-exit-2; fi
if run 3 kdbusctl --bus nope list &&
   is 'kdbusctl: cannot open /sys/fs/kdbus/0-nope/bus: No such file or directory (ENOENT): is kdbusfs mounted and the bus made? Try `kdbusctl make-bus nope`' /tmp/err; then
  ok missing-bus-exit-3; else notok missing-bus-exit-3; fi
if run 3 kdbusctl --system list && has 'Try `kdbusctl make-bus system`' /tmp/err; then
  ok missing-system-bus-exit-3; else notok missing-system-bus-exit-3; fi
if run 2 kdbusctl call && has 'Usage:' /tmp/err; then ok clap-usage-exit-2; else notok clap-usage-exit-2; fi
helps=0
for c in list status monitor call emit capture make-bus make-endpoint; do
  kdbusctl $c --help >/tmp/h 2>&1 && grep -q "Usage: kdbusctl $c" /tmp/h || { helps=1; echo "# --help of $c failed"; }
done
t help-of-every-command [ $helps = 0 ]

# ---- teardown ----
kdbusctl $B monitor >/tmp/mon.out 2>/tmp/mon.err &
MON=$!
wait_for /tmp/mon.err "monitoring"
if run 0 kdbusctl $B call $C Quit; then :; fi
wait $SVC
# The queued service took the name over.
if wait_for /tmp/mon.out "NameOwnerChanged" 50 && run 0 kdbusctl $B status org.kdbusctl.Test && has "PID=$SVC2"; then
  ok queued-owner-takes-over; else notok queued-owner-takes-over; fi
kill $SVC2 2>/dev/null; wait $SVC2 2>/dev/null
kill "$(cat /tmp/ep.pid)" "$(cat /tmp/ep2.pid)" 2>/dev/null
kill "$(cat /tmp/bus.pid)"
i=0; while [ -e /sys/fs/kdbus/0-test ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
wait $MON; MRC=$?
if [ ! -e /sys/fs/kdbus/0-test ] && [ $MRC = 0 ] && has 'the bus went away' /tmp/mon.err; then
  ok bus-gone-with-its-holder-monitor-exits; else cat /tmp/mon.err >/tmp/err; notok bus-gone-with-its-holder-monitor-exits; fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
