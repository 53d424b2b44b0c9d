set -u
echo "run: making bus 0-system"
make-bus 0-system > /tmp/make-bus.log 2>&1 &
BUS=$!
i=0; while [ ! -e /sys/fs/kdbus/0-system/bus ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
cat /tmp/make-bus.log
ls -l /sys/fs/kdbus/0-system/
echo "run: starting echo-service in the background"
echo-service > /tmp/service.log 2>&1 &
SVC=$!
echo "run: echo-client"
echo-client; RC=$?
echo "run: echo-client exit $RC"
wait $SVC; SRC=$?
echo "run: echo-service exit $SRC"
cat /tmp/service.log
echo "run: second service for the async client"
echo-service > /tmp/service2.log 2>&1 &
SVC=$!
sleep 1
echo-client-async; ARC=$?
echo "run: echo-client-async exit $ARC"
kill $SVC; wait $SVC 2>/dev/null
head -5 /tmp/service2.log
kill $BUS; wait $BUS 2>/dev/null
[ $RC = 0 ] && [ $SRC = 0 ] && [ $ARC = 0 ]
