#!/usr/bin/env bash
# Integration test: the disk spool. The collector starts with an unreachable
# broker, so TCP and HTTP events go to the spool (HTTP answers 200 once they are
# there); it is SIGKILLed; a torn record is appended to the spool as a crash
# mid-write would leave; restarted against the real broker, it cuts the torn
# tail, replays, and every event is in the topic exactly once with its operator.
source "$(dirname "${BASH_SOURCE[0]}")/col_lib.sh"

tport=$(free_port)
hport=$(free_port)
mport=$(free_port)
dead=127.0.0.1:$(free_port)   # nothing listens there
metrics=127.0.0.1:$mport
spool=$work/spool
cat >"$work/collector.conf" <<CONF
{
  "operators": {
    "op-a": { "networks": ["127.0.0.1/32"], "tokens": ["token-a-0123456789abcdef"] }
  },
  // librdkafka properties pass through under their own names.
  "kafka": { "message.timeout.ms": 3000, "reconnect.backoff.max.ms": 1000 },
  "spool": { "fsync": "interval", "fsync_interval": "200ms", "segment_bytes": 262144 },
  "limits": { "shutdown_timeout": "2s" }
}
CONF
common=(-c "$work/collector.conf" --topic "$topic" --listen "tcp://127.0.0.1:$tport"
        --listen "http://127.0.0.1:$hport" --metrics "$metrics" --spool "$spool")
start_collector down "${common[@]}" --kafka "$dead"

$send tcp 127.0.0.1 "$tport" spt 8000 --src 127.0.0.1 --chunk
codes=$($send http "http://127.0.0.1:$hport/v1/events" token-a-0123456789abcdef sph 600 --batch 50)
check "HTTP answers 200 with Kafka down and a spool ($codes)" test "$codes" = 200

# Wait until every event is in the spool (the first ones time out of librdkafka's queue).
for _ in $(seq 60); do
    n=$(( $(metric 'pasban_collector_spooled_total{input="tcp",operator="op-a"}') +
          $(metric 'pasban_collector_spooled_total{input="http",operator="op-a"}') ))
    ((n >= 8600)) && break
    sleep 0.5
done
check "all 8600 events spooled ($n)" test "$n" = 8600
check "readyz still ready (the spool has room)" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "http://$metrics/readyz")" = 200
sleep 0.5   # one fsync interval
{ kill -9 "$col_pid"; wait "$col_pid"; } 2>/dev/null || true
col_pid=

check "spool has segments on disk" bash -c "compgen -G '$spool/seg-*.spool' >/dev/null"
last=$(ls "$spool"/seg-*.spool | tail -1)
printf '\x40\x00\x00\x00\x01\x02\x03\x04partial' >>"$last"

start_collector up "${common[@]}" --kafka "$brokers"
check "torn tail detected and cut" grep -q "torn record" "$work/up.log"
check "replay announced" grep -q "will be replayed" "$work/up.log"
consume_until 8600 "$work/topic.txt"
check "every spooled event delivered exactly once" python3 "$here/col_send.py" check \
    "$work/topic.txt" spt:8000:op-a sph:600:op-a
for _ in $(seq 30); do
    compgen -G "$spool/seg-*.spool" >/dev/null || break
    sleep 0.5
done
check "spool emptied after the replay" bash -c "! compgen -G '$spool/seg-*.spool' >/dev/null"
check "replayed counted" test "$(metric pasban_collector_replayed_total)" = 8600
stop_collector

# SIGTERM while Kafka does not answer: what librdkafka still holds goes to the
# spool, exit 0, and the next start delivers it. The "broker" accepts
# connections and never replies, so events wait in librdkafka's queue.
silent=$(free_port)
python3 -c "
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $silent)); s.listen(50); s.settimeout(1); held = []
t = time.time()
while time.time() - t < 60:
    try: held.append(s.accept())
    except socket.timeout: pass
" &
silent_pid=$!
sleep 0.3
topic2=$topic.term
start_collector term -c "$work/collector.conf" --topic "$topic2" --listen "tcp://127.0.0.1:$tport" \
    --metrics "$metrics" --spool "$spool" --kafka "127.0.0.1:$silent"
$send tcp 127.0.0.1 "$tport" term 3000 --src 127.0.0.1
stop_collector
kill "$silent_pid" 2>/dev/null || true
check "SIGTERM moves what librdkafka held into the spool" grep -q "still with Kafka at the shutdown timeout; spooling them" "$work/term.log"
check "SIGTERM logs what stays in the spool" grep -q "3000 events stay in the spool" "$work/term.log"
topic=$topic2
start_collector term2 -c "$work/collector.conf" --topic "$topic2" --listen "tcp://127.0.0.1:$tport" \
    --metrics "$metrics" --spool "$spool" --kafka "$brokers"
consume_until 3000 "$work/topic2.txt"
check "events spooled at SIGTERM delivered after the restart" python3 "$here/col_send.py" check \
    "$work/topic2.txt" term:3000:op-a
stop_collector
if ((fails)); then
    echo "--- logs"; for f in "$work"/*.log; do echo "== $f"; tail -20 "$f"; done
    exit 1
fi
echo "test_collector_spool: all passed"
