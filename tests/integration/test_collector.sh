#!/usr/bin/env bash
# Integration test: pasban-collector against a real broker. Exactly the sent
# messages arrive, with the right operator, over TCP (both framings mixed in one
# connection, from three source addresses), UDP and HTTP; a token cannot write
# as another operator; bad input gets an error or a closed connection while
# other connections keep flowing; SIGTERM exits 0.
source "$(dirname "${BASH_SOURCE[0]}")/col_lib.sh"

tport=$(free_port)
uport=$(free_port)
hport=$(free_port)
mport=$(free_port)
metrics=127.0.0.1:$mport
cat >"$work/collector.conf" <<CONF
// test configuration
{
  "operators": {
    "op-a": { "networks": ["127.0.0.1/32"], "tokens": ["token-a-0123456789abcdef"] },
    "op-b": { "tokens": ["token-b-0123456789abcdef"] },
    "op-c": { "networks": ["127.0.0.2/32"] }
  },
  "limits": { "max_message": 4096, "idle_timeout": "3s", "max_body": 200000 }
}
CONF
start_collector main -c "$work/collector.conf" --kafka "$brokers" --topic "$topic" \
    --listen "tcp://127.0.0.1:$tport" --listen "udp://127.0.0.1:$uport" \
    --listen "http://127.0.0.1:$hport" --operator op-default --metrics "$metrics"

# TCP: three clients at once, each mixing octet counting and LF, odd-sized writes.
$send tcp 127.0.0.1 "$tport" tcpa 20000 --src 127.0.0.1 --chunk &
p1=$!
$send tcp 127.0.0.1 "$tport" tcpc 20000 --src 127.0.0.2 &
p2=$!
$send tcp 127.0.0.1 "$tport" tcpd 20000 --src 127.0.0.3 &
p3=$!
# A reload in the middle of the load drops no connection.
sleep 0.3
kill -HUP "$col_pid"
wait $p1 $p2 $p3
check "SIGHUP reloaded during the TCP load" grep -q "SIGHUP: reloaded" "$work/main.log"
$send udp 127.0.0.1 "$uport" udpa 2000 --src 127.0.0.1
$send udp 127.0.0.1 "$uport" udpc 1000 --src 127.0.0.2

# HTTP: op-b's token, bodies claiming op-a: every event must say op-b.
codes=$($send http "http://127.0.0.1:$hport/v1/events" token-b-0123456789abcdef httpb 3000 \
    --batch 250 --claim op-a)
check "HTTP ingestion answers 200 only ($codes)" test "$codes" = 200
codes=$($send http "http://127.0.0.1:$hport/v1/events" token-a-0123456789abcdef httpa 500 --batch 100)
check "HTTP ingestion for op-a answers 200 ($codes)" test "$codes" = 200

code() { curl -s -o "$work/body" -w '%{http_code}' "$@"; }
check "no token: 401" test "$(code -XPOST --data-binary '{"message":"x"}' \
    "http://127.0.0.1:$hport/v1/events")" = 401
check "unknown token: 401" test "$(code -XPOST -H 'Authorization: Bearer token-z-0123456789abcdef' \
    --data-binary '{"message":"x"}' "http://127.0.0.1:$hport/v1/events")" = 401
# Bad JSON after good objects: 400 and none of them written.
check "bad JSON: 400" test "$(code -XPOST -H 'Authorization: Bearer token-a-0123456789abcdef' \
    --data-binary $'{"message":"badbody-0"}\n{"message":"badbody-1"}\n{"message":' \
    "http://127.0.0.1:$hport/v1/events")" = 400
check "400 says why" grep -q "bad JSON" "$work/body"
head -c 300000 /dev/zero | tr '\0' 'x' >"$work/big"
check "body over max_body: 413" test "$(code -XPOST -H 'Authorization: Bearer token-a-0123456789abcdef' \
    --data-binary @"$work/big" "http://127.0.0.1:$hport/v1/events")" = 413

# Bad input on TCP while a good client keeps sending.
python3 - "$tport" >"$work/bad.out" <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(10); return s
def closed(s):
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True
# 1. An octet-counted frame claiming more than max_message: closed.
s = conn(); s.sendall(b"999999 <13>x"); print("oversized-octet", "closed" if closed(s) else "open")
# 2. An LF frame longer than max_message (4096): forwarded in pieces of at most
#    max_message bytes as pipeline_error, and the frame behind it still arrives.
s = conn(); s.sendall(b"<13>" + b"y" * 9000 + b"\n<13>Nov 23 10:00:00 gw app: after-long-0\n")
time.sleep(0.5)
s.setblocking(False)
try:
    print("oversized-lf", "closed" if s.recv(1) == b"" else "open")
except BlockingIOError:
    print("oversized-lf", "open")
s.close()
# 3. Garbage bytes in an LF frame: forwarded as pipeline_error, connection stays.
s = conn(); s.sendall(b"\x00\x01garbage\xff\xfe-1\n"); time.sleep(0.5)
s.setblocking(False)
try:
    print("garbage", "closed" if s.recv(1) == b"" else "open")
except BlockingIOError:
    print("garbage", "open")
s.close()
# 4. Slowloris: a byte every half second never completes a frame: closed by the timeout.
s = conn(); t0 = time.time(); gone = False
while time.time() - t0 < 12:
    try:
        s.sendall(b"a"); time.sleep(0.5)
    except OSError:
        gone = True; break
print("slowloris", "closed" if gone or closed(s) else "open", int(time.time() - t0))
PY
badpid=$!
sleep 1
$send tcp 127.0.0.1 "$tport" during 5000 --src 127.0.0.2 --chunk
wait $badpid
check "oversized octet-counted frame closes the connection" grep -q "oversized-octet closed" "$work/bad.out"
check "oversized LF frame is forwarded, connection kept" grep -q "oversized-lf open" "$work/bad.out"
check "garbage is forwarded, connection kept" grep -q "garbage open" "$work/bad.out"
check "slowloris connection closed" grep -q "slowloris closed" "$work/bad.out"

# + the garbage line, the over-long line (three pieces) and the frame after it
total=$((60000 + 3000 + 3500 + 5000 + 1 + 3 + 1))
consume_until "$total" "$work/topic.txt"
check "every message exactly once with its operator" python3 "$here/col_send.py" check "$work/topic.txt" \
    tcpa:20000:op-a tcpc:20000:op-c tcpd:20000:op-default udpa:2000:op-a udpc:1000:op-c \
    httpb:3000:op-b httpa:500:op-a during:5000:op-c
check "the frame after an over-long line arrived" grep -q "after-long-0" "$work/topic.txt"
check "the over-long line is a pipeline_error saying why" \
    grep -q '"message":"LF frame longer than the maximum frame size"' "$work/topic.txt"
check "nothing of the 400 body written" bash -c "! grep -q badbody $work/topic.txt"
check "garbage forwarded with its raw bytes" grep -q '"original":"\\u0000\\u0001garbage' "$work/topic.txt"
check "observer.ip is the peer" grep -q '"observer":{"ip":"127.0.0.2"}' "$work/topic.txt"
check "nothing else in the topic ($(wc -l <"$work/topic.txt") lines)" test "$(wc -l <"$work/topic.txt")" = "$total"

check "received counted per input and operator" \
    test "$(metric 'pasban_collector_received_total{input="tcp",operator="op-c"}')" = 25000
check "delivered counted" \
    test "$(metric 'pasban_collector_delivered_total{input="http",operator="op-b"}')" = 3000
check "oversized counted" test "$(metric 'pasban_collector_oversized_total{input="tcp"}')" -ge 2
check "idle timeout counted" test "$(metric 'pasban_collector_idle_timeouts_total{input="tcp"}')" -ge 1
check "/readyz ready" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$metrics/readyz")" = 200
check "closing reason logged" grep -q "framing error" "$work/main.log"

stop_collector
check "shutdown logged" grep -q "stopped" "$work/main.log"
if ((fails)); then
    echo "--- collector log"; tail -40 "$work/main.log"; cat "$work/bad.out"
    exit 1
fi
echo "test_collector: all passed"
