#!/usr/bin/env bash
# Integration test: the broker is killed (SIGKILL) in the middle of a TCP and an
# HTTP load and started again. Every message acknowledged -- HTTP 200, and on
# TCP every message written before the connection closed cleanly -- must be in
# the topic afterwards, with its operator. The test runs its own broker
# (scripts/kafka-local on PASBAN_COLTEST_KAFKA_PORT, default a free pair of ports
# in 22000-27999, below Linux's ephemeral range) so that killing it disturbs no
# one, not even this test run at once from another checkout; it also needs the
# shared broker check of col_lib.sh to pass, like every collector test.
source "$(dirname "${BASH_SOURCE[0]}")/col_lib.sh"
src=${PASBAN_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
cache=${PASBAN_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pasban}
kport=${PASBAN_COLTEST_KAFKA_PORT:-}
picked=0
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
mkdir -p "$cache"
while [[ -z $kport ]]; do # the broker takes port and port+1
    kport=$((22000 + RANDOM % 6000))
    # Making its data directory claims the port: a port whose directory exists
    # belongs to another broker, running or stopped.
    if in_use "$kport" || in_use $((kport + 1)) || ! mkdir "$cache/kafka-run-$kport" 2>/dev/null; then
        kport=
    fi
    picked=1
done
kl() { PASBAN_KAFKA_PORT=$kport "$src/scripts/kafka-local" "$@"; }
own_stop() {
    kl stop >/dev/null 2>&1 || true
    ((picked == 0)) || kl reset >/dev/null 2>&1 || true
    cleanup
}
trap own_stop EXIT
kl start >"$work/kafka-start.log" 2>&1 || { cat "$work/kafka-start.log"; exit 1; }
brokers=127.0.0.1:$kport
pidfile=$cache/kafka-run-$kport/kafka.pid

tport=$(free_port)
hport=$(free_port)
mport=$(free_port)
metrics=127.0.0.1:$mport
cat >"$work/collector.conf" <<CONF
{
  "operators": {
    "op-a": { "networks": ["127.0.0.1/32"], "tokens": ["token-a-0123456789abcdef"] },
    "op-c": { "networks": ["127.0.0.2/32"] }
  },
  "kafka": { "reconnect.backoff.max.ms": 1000 }
}
CONF
base_topic=$topic
# Twice: with a spool (events go to disk during the outage) and with only the
# flags of design.md and no spool (librdkafka holds them; TCP pushes back).
for mode in spool nospool; do
    extra=()
    [[ $mode == spool ]] && extra=(--spool "$work/spool")
    topic=$base_topic.$mode
    rm -f "$work"/acked-*
    start_collector "main-$mode" -c "$work/collector.conf" --kafka "$brokers" --topic "$topic" \
        --listen "tcp://127.0.0.1:$tport" --listen "http://127.0.0.1:$hport" \
        --metrics "$metrics" "${extra[@]}"

    # About 20 s of load on two TCP connections and HTTP.
    $send tcp 127.0.0.1 "$tport" bta 40000 --src 127.0.0.1 --rate 2000 &
    p1=$!
    $send tcp 127.0.0.1 "$tport" btc 40000 --src 127.0.0.2 --rate 2000 --chunk &
    p2=$!
    # HTTP: 400 events every second or so, before, during and after the outage.
    ( for i in $(seq 25); do
        $send http "http://127.0.0.1:$hport/v1/events" token-a-0123456789abcdef "bth$i" 400 \
            --batch 40 --acked "$work/acked-$i" >/dev/null
        sleep 0.8
      done ) &
    p3=$!

    sleep 5
    kill -9 "$(cat "$pidfile")"
    echo "$mode: broker killed at $(date +%T)"
    sleep 8
    kl start >>"$work/kafka-start.log" 2>&1 || { cat "$work/kafka-start.log"; exit 1; }
    echo "$mode: broker back at $(date +%T)"
    wait $p1 $p2 $p3
    acked=0
    specs=()
    for i in $(seq 25); do
        acked=$((acked + $(wc -l <"$work/acked-$i")))
        specs+=("bth$i:@$work/acked-$i:op-a")
    done
    echo "$mode: HTTP events acknowledged: $acked of 10000"

    consume_until $((80000 + acked)) "$work/topic.txt"
    check "$mode: every acknowledged message is in the topic" python3 "$here/col_send.py" check \
        "$work/topic.txt" --allow-dups bta:40000:op-a btc:40000:op-c "${specs[@]}"
    check "HTTP acknowledged most of the load ($acked)" test "$acked" -ge 5000
    if [[ $mode == spool ]]; then
        check "the outage was noticed (events spooled)" \
            test "$(metric 'pasban_collector_spooled_total{input="tcp",operator="op-a"}')" -gt 0
    fi
    stop_collector
done
if ((fails)); then
    echo "--- logs"; tail -30 "$work"/main-*.log
    exit 1
fi
echo "test_collector_broker: all passed"
