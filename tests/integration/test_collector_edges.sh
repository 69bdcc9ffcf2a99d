#!/usr/bin/env bash
# Integration test: edge cases of input sizes and framing, each of which once
# cost events or memory. Kafka is up; the collector has a spool.
#  - HTTP: an object over limits.max_message is refused with 413 before it is
#    parsed (parsing reserves a multiple of its size), and the request after it
#    is taken.
#  - TCP: a sender that ends each message with "\n\n" under steady traffic is
#    not taken for a frame that never completes (idle_timeout here is 2 s).
#  - TCP: an LF line over max_message goes on as a pipeline_error and the frames
#    behind it in the same connection still arrive.
#  - HTTP with Kafka unreachable: events go to the spool, and the 200 is only
#    written after the spool is fsynced, whatever spool.fsync says (here
#    "interval" with an hour's interval). Watched with strace.
#  - With Kafka unreachable and no spool, HTTP requests wait for delivery
#    reports; past limits.max_http_pending more are refused with 503 (counted).
#  - An empty UDP datagram is counted, not silently dropped.
source "$(dirname "${BASH_SOURCE[0]}")/col_lib.sh"

tport=$(free_port)
hport=$(free_port)
mport=$(free_port)
metrics=127.0.0.1:$mport
cat >"$work/collector.conf" <<CONF
{
  "operators": { "op-a": { "networks": ["127.0.0.0/8"], "tokens": ["token-a-0123456789abcdef"] } },
  "limits": { "max_message": 4096, "idle_timeout": "2s" }
}
CONF
start_collector main -c "$work/collector.conf" --kafka "$brokers" --topic "$topic" \
    --listen "tcp://127.0.0.1:$tport" --listen "http://127.0.0.1:$hport" \
    --metrics "$metrics" --spool "$work/spool"
url=http://127.0.0.1:$hport/v1/events
auth='Authorization: Bearer token-a-0123456789abcdef'

# --- HTTP: one object over max_message (here 4 KiB) in a 2 MiB body.
python3 -c 'import sys; sys.stdout.write("{\"a\":[" + ",".join(["1"] * 1048576) + "]}")' \
    >"$work/big.json"
code=$(curl -s -o "$work/big.out" -w '%{http_code}' -XPOST -H "$auth" \
    --data-binary "@$work/big.json" "$url")
check "HTTP object over max_message refused with 413 (got $code)" test "$code" = 413
check "413 says which limit" grep -q "max_message" "$work/big.out"
check "oversized HTTP object counted" \
    test "$(metric 'pasban_collector_oversized_total{input="http"}')" -ge 1
code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST -H "$auth" \
    --data-binary '{"message":"edge-http-0"}' "$url")
check "the next request is taken (got $code)" test "$code" = 200

# --- TCP: messages ended by "\n\n", one every 0.2 s for 5 s.
python3 - "$tport" >"$work/nn.out" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.2)
gone = False
for i in range(25):
    try:
        s.sendall(b"<13>Nov 23 10:00:00 gw app: edge-nn-%d\n\n" % i)
        if s.recv(1) == b"":
            gone = True
            break
    except socket.timeout:
        pass
    except OSError:
        gone = True
        break
print("nn", "closed" if gone else "open")
s.close()
PY
check "a sender ending messages with \\n\\n keeps its connection" grep -q "nn open" "$work/nn.out"
check "no idle timeout for it" \
    test "$(metric 'pasban_collector_idle_timeouts_total{input="tcp"}')" = 0

# --- TCP: good frame, a 6000-byte line (max_message is 4096), good frame, one write.
python3 - "$tport" >"$work/ol.out" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"<13>Nov 23 10:00:00 gw app: edge-ol-0\n" + b"<13>" + b"z" * 3000 + b"\t" * 3000 +
          b"\n" + b"<13>Nov 23 10:00:00 gw app: edge-ol-1\n")
time.sleep(1)
s.setblocking(False)
try:
    print("ol", "closed" if s.recv(1) == b"" else "open")
except BlockingIOError:
    print("ol", "open")
s.close()
PY
check "an over-long LF line does not close the connection" grep -q "ol open" "$work/ol.out"

consume_until 30 "$work/topic.out"
check "the frames around the over-long line arrived" \
    test "$(grep -c 'edge-ol-[01]' "$work/topic.out")" = 2
check "the over-long line went on as pipeline_error" \
    test "$(grep -c '"message":"LF frame longer than the maximum frame size"' "$work/topic.out")" = 1
check "and its tail as a second event (nothing dropped)" \
    test "$(grep -c 'zzz\|\\t\\t\\t' "$work/topic.out")" = 2
check "only the small HTTP event arrived" test "$(grep -c edge-http "$work/topic.out")" = 1
check "it is edge-http-0" grep -q "edge-http-0" "$work/topic.out"
check "all 25 \\n\\n messages arrived" test "$(grep -c 'edge-nn-' "$work/topic.out")" = 25

stop_collector

# --- HTTP 200 only once the spooled events are on disk.
if command -v strace >/dev/null; then
    dead=127.0.0.1:$(free_port)
    cat >"$work/spool.conf" <<CONF
{
  "operators": { "op-a": { "networks": ["127.0.0.0/8"], "tokens": ["token-a-0123456789abcdef"] } },
  "spool": { "fsync": "interval", "fsync_interval": "1h" }
}
CONF
    start_collector dead -c "$work/spool.conf" --kafka "$dead" --topic "$topic" \
        --listen "http://127.0.0.1:$hport" --metrics "$metrics" --spool "$work/spool2"
    for _ in $(seq 50); do # until librdkafka has given up on the dead broker
        [[ $(metric pasban_collector_kafka_up) == 0 ]] && break
        sleep 0.2
    done
    strace -f -p "$col_pid" -e trace=fdatasync,fsync,write,writev,sendmsg -s 24 \
        -o "$work/strace.out" 2>/dev/null &
    strace_pid=$!
    sleep 1
    code=$(curl -s -o /dev/null -w '%{http_code}' -XPOST -H "$auth" \
        --data-binary '{"message":"edge-sync-0"}' "$url")
    sleep 0.5
    kill "$strace_pid" 2>/dev/null || true
    wait "$strace_pid" 2>/dev/null || true
    check "HTTP 200 with Kafka down (spooled; got $code)" test "$code" = 200
    check "the spool was fsynced before the 200 was written" python3 - "$work/strace.out" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
reply = next((i for i, l in enumerate(lines) if "HTTP/1.1 200" in l), None)
sync = next((i for i, l in enumerate(lines) if re.search(r"\bf(data)?sync\(", l)), None)
print("reply at", reply, "first sync at", sync)
sys.exit(0 if reply is not None and sync is not None and sync < reply else 1)
PY
    stop_collector
else
    echo "skip: no strace, the fsync-before-200 check is not run"
fi

# --- Pending HTTP requests bounded; empty UDP datagrams counted.
uport=$(free_port)
dead=127.0.0.1:$(free_port)
cat >"$work/pending.conf" <<CONF
{
  "operators": { "op-a": { "networks": ["127.0.0.0/8"], "tokens": ["token-a-0123456789abcdef"] } },
  "limits": { "max_http_pending": 2, "shutdown_timeout": "1s" }
}
CONF
start_collector pending -c "$work/pending.conf" --kafka "$dead" --topic "$topic" \
    --listen "http://127.0.0.1:$hport" --listen "udp://127.0.0.1:$uport" --metrics "$metrics"
for i in 1 2; do
    curl -s -o /dev/null --max-time 20 -XPOST -H "$auth" \
        --data-binary "{\"message\":\"edge-wait-$i\"}" "$url" &
done
sleep 1
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -XPOST -H "$auth" \
    --data-binary '{"message":"edge-wait-3"}' "$url")
check "a third request past max_http_pending=2 gets 503 at once (got $code)" test "$code" = 503
check "it is counted" test "$(metric 'pasban_collector_http_busy_total{input="http"}')" = 1
python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.sendto(b"",("127.0.0.1",int(sys.argv[1]))); s.sendto(b"\n",("127.0.0.1",int(sys.argv[1])))' "$uport"
sleep 0.5
check "empty UDP datagrams counted" \
    test "$(metric 'pasban_collector_empty_datagrams_total{input="udp"}')" = 2
stop_collector
wait

if ((fails)); then
    echo "--- log"; tail -30 "$work/main.log"
    exit 1
fi
echo "test_collector_edges: all passed"
