#!/usr/bin/env bash
# Integration test: backpressure and limits with Kafka unreachable and no spool.
# librdkafka's queue (1000 here) fills; TCP is then no longer read (the client's
# data waits in its socket), UDP datagrams are dropped and counted, HTTP answers
# 503, /readyz says not ready; the connection limit refuses and counts; SIGTERM
# still exits 0 within the shutdown timeout and logs what it could not deliver.
source "$(dirname "${BASH_SOURCE[0]}")/col_lib.sh"

tport=$(free_port)
uport=$(free_port)
hport=$(free_port)
mport=$(free_port)
metrics=127.0.0.1:$mport
dead=127.0.0.1:$(free_port)
cat >"$work/collector.conf" <<CONF
{
  "operators": { "op-a": { "networks": ["127.0.0.0/8"], "tokens": ["token-a-0123456789abcdef"] } },
  "kafka": { "queue.buffering.max.messages": 1000 },
  "limits": { "max_connections": 2, "shutdown_timeout": "2s" }
}
CONF
start_collector main -c "$work/collector.conf" --kafka "$dead" --topic "$topic" \
    --listen "tcp://127.0.0.1:$tport" --listen "udp://127.0.0.1:$uport" \
    --listen "http://127.0.0.1:$hport" --metrics "$metrics"

python3 - "$tport" >"$work/tcp.out" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
data = b"".join(b"<13>Nov 23 10:00:00 gw app: bp-%d\n" % i for i in range(5000))
s.sendall(data)
print("sent", flush=True)
time.sleep(30)
PY
tcp_pid=$!
rx() { metric 'pasban_collector_received_total{input="tcp",operator="op-a"}'; }
for _ in $(seq 100); do
    [[ $(rx) -ge 1000 ]] && break
    sleep 0.1
done
sleep 1
check "TCP reading stopped at the queue limit ($(rx) of 5000 read)" test "$(rx)" = 1000
$send udp 127.0.0.1 "$uport" bpu 100
sleep 0.5
check "UDP drops counted" test "$(metric 'pasban_collector_udp_drops_total{input="udp",operator="op-a"}')" = 100
check "HTTP 503 when full" test "$(curl -s -o /dev/null -w '%{http_code}' -XPOST \
    -H 'Authorization: Bearer token-a-0123456789abcdef' --data-binary '{"message":"x"}' \
    "http://127.0.0.1:$hport/v1/events")" = 503
check "/readyz not ready" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$metrics/readyz")" = 503
check "/healthz alive" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$metrics/healthz")" = 200

# The paused connection counts against the limit of 2: one more fits, the next is refused.
python3 - "$tport" >"$work/limit.out" <<'PY'
import socket, sys, time
a = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
time.sleep(0.3)
b = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
b.settimeout(5)
try:
    print("third", "refused" if b.recv(1) == b"" else "open")
except socket.timeout:
    print("third", "open")
except OSError:
    print("third", "refused")
PY
check "connection over the limit refused" grep -q "third refused" "$work/limit.out"
check "refusal counted" test "$(metric 'pasban_collector_connections_refused_total{input="tcp"}')" -ge 1
check "refusal logged" grep -q "connections open (the limit)" "$work/main.log"

t0=$SECONDS
stop_collector
check "SIGTERM exits within the shutdown timeout ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 8
check "undeliverable events reported at shutdown" grep -q "no spool: they are lost" "$work/main.log"
kill "$tcp_pid" 2>/dev/null || true
if ((fails)); then
    echo "--- log"; tail -30 "$work/main.log"
    exit 1
fi
echo "test_collector_limits: all passed"
