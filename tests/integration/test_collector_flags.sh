#!/usr/bin/env bash
# Integration test: the collector with only the flags of design.md (no config
# file), as a newcomer or an outside check runs it. A large TCP load and a large
# HTTP load (no tokens configured: requests without one belong to --operator)
# arrive complete, exactly once; a request with a token still needs a known one.
source "$(dirname "${BASH_SOURCE[0]}")/col_lib.sh"

tport=$(free_port)
uport=$(free_port)
hport=$(free_port)
mport=$(free_port)
metrics=127.0.0.1:$mport
start_collector flags --kafka "$brokers" --topic "$topic" --listen "tcp://127.0.0.1:$tport" \
    --listen "udp://127.0.0.1:$uport" --listen "http://127.0.0.1:$hport" --operator op-flags \
    --metrics "$metrics"
check "open HTTP mode announced" grep -q "no tokens configured" "$work/flags.log"

$send tcp 127.0.0.1 "$tport" ft1 100000 &
p1=$!
$send tcp 127.0.0.1 "$tport" ft2 100000 --chunk &
p2=$!
codes=$($send http "http://127.0.0.1:$hport/v1/events" "" fh 20000 --batch 500)
wait $p1 $p2
check "HTTP without a token answers 200 ($codes)" test "$codes" = 200
check "an unknown token is still refused" test "$(curl -s -o /dev/null -w '%{http_code}' -XPOST \
    -H 'Authorization: Bearer not-a-configured-token' --data-binary '{"message":"x"}' \
    "http://127.0.0.1:$hport/v1/events")" = 401
consume_until 220000 "$work/topic.txt"
check "every message once, tagged with --operator" python3 "$here/col_send.py" check \
    "$work/topic.txt" ft1:100000:op-flags ft2:100000:op-flags fh:20000:op-flags
check "nothing else in the topic" test "$(wc -l <"$work/topic.txt")" = 220000
stop_collector
if ((fails)); then
    echo "--- log"; tail -20 "$work/flags.log"
    exit 1
fi
echo "test_collector_flags: all passed"
