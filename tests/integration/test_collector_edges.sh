#!/usr/bin/env bash
# Integration test: edge cases of input sizes and framing, each of which once
# cost events or memory. Kafka is up; the collector has a spool.
#  - HTTP: an object over limits.max_message is refused with 413 before it is
#    parsed (parsing reserves a multiple of its size), and the request after it
#    is taken.
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

consume_until 1 "$work/topic.out"
check "only the small HTTP event arrived" test "$(wc -l <"$work/topic.out")" = 1
check "it is edge-http-0" grep -q "edge-http-0" "$work/topic.out"

stop_collector
if ((fails)); then
    echo "--- log"; tail -30 "$work/main.log"
    exit 1
fi
echo "test_collector_edges: all passed"
