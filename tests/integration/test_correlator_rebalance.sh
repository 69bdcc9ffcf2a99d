#!/usr/bin/env bash
# Rebalances of pasban-correlator's consumer group lose nothing they can keep and
# count nothing twice, against a real broker (scripts/kafka-local;
# PASBAN_KAFKA_BROKERS, default 127.0.0.1:9092).
#
# Instance A works through a backlog of N events on a 4-partition topic; B joins
# the group in the middle (a rebalance: A gives up partitions), then B stops (A
# takes them back). Each event has its own group n:
#   T-ONE    a single rule by n: exactly one incident per event, so an event
#            processed twice (re-read by A, or by B after A) shows as a second
#            T-ONE incident for its n;
#   T-TWICE  a threshold of 2 by n: any incident means one event entered a
#            window twice;
#   T-SLOW   never matches (it runs into the PCRE2 match limit): it makes each
#            event cost a few milliseconds, so the rebalances land while A is
#            busy and has processed events it has not committed yet.
# And the instances' events_total add up to N: every event consumed once.
# Run once with librdkafka's default (eager) assignor and once with
# cooperative-sticky.
set -euo pipefail
B="${PASBAN_BIN:-build/bin}/pasban-correlator"
TOOLS="${PASBAN_BUILD_DIR:-build}/tests"
K="${PASBAN_KAFKA_BROKERS:-127.0.0.1:9092}"
KCAT=$(command -v kcat || command -v kafkacat || true)
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; tail -40 "$f" >&2; }; done; exit 1; }
if [ -z "$KCAT" ] || ! timeout 10 "$KCAT" -b "$K" -L >/dev/null 2>&1; then
  echo "SKIP: no broker at $K (start scripts/kafka-local, or set PASBAN_KAFKA_BROKERS)"
  exit 0
fi
N=${PASBAN_REBALANCE_EVENTS:-2400}

cat >"$T/r.rules" <<'RULES'
{"rules": [
  {"id": "T-ONE", "severity": "info", "by": ["n"], "where": {"message": "^ev (?<n>\\d+) "}},
  {"id": "T-TWICE", "where": {"message": "^ev (?<n>\\d+) "},
   "threshold": {"count": 2, "within": "1h", "by": ["n"]}},
  {"id": "T-SLOW", "severity": "info", "where": {"message": "^ev \\d+ (?:x+x+)+(?:y|\\d)"}}
]}
RULES

# metric NAME PORT: the value of an unlabelled counter on /metrics
metric() {
  curl -fsS -H "Authorization: Bearer tok-reg" "http://127.0.0.1:$2/metrics" 2>/dev/null |
    sed -n "s/^$1 \([0-9]*\)$/\1/p"
}
wait_metric() { # wait_metric NAME PORT MIN SECONDS
  for _ in $(seq $(($4 * 5))); do
    v=$(metric "$1" "$2" || true)
    [ -n "$v" ] && [ "$v" -ge "$3" ] && return 0
    sleep 0.2
  done
  fail "$1 on :$2 did not reach $3 (have ${v:-nothing})"
}

round() { # round NAME ASSIGNOR
  local run=$RANDOM$$ name=$1 strategy=$2
  local EV=test-rb-ev-$name-$run INC=test-rb-inc-$name-$run
  local PA=$((20000 + RANDOM % 20000)) PB=$((20000 + RANDOM % 20000))
  "$TOOLS/kafka_create_topic" "$K" "$EV" 4 || fail "cannot create $EV"
  cat >"$T/c-$name.conf" <<CONF
{"kafka": {"brokers": "$K", "group": "test-rb-$name-$run",
           "topics": {"events": "$EV", "incidents": "$INC", "updates": "$INC-upd", "kpi": "$INC-kpi"},
           "properties": {"partition.assignment.strategy": "$strategy",
                          "heartbeat.interval.ms": "300"}},
 "rules": "$T/r.rules",
 "tokens": [{"token": "tok-reg", "role": "regulator"}]}
CONF
  # N events, 16 operators (message keys) spread over the partitions, one
  # second apart in event time so no two share a window.
  python3 - "$N" >"$T/ev-$name" <<'PY'
import sys, datetime
n = int(sys.argv[1])
t0 = datetime.datetime(2026, 11, 23, 8, 0, tzinfo=datetime.timezone.utc)
for i in range(n):
    t = (t0 + datetime.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    print("op-%d\t<13>1 %s h app - - - ev %d %sz" % (i % 16, t, i, "x" * 28))
PY
  "$KCAT" -b "$K" -t "$EV" -P -K $'\t' <"$T/ev-$name"
  local start=("$B" -c "$T/c-$name.conf" --match-limit 1500000 --kpi-interval 3600)
  "${start[@]}" --http "127.0.0.1:$PA" 2>"$T/log-$name-A" &
  local a=$!
  pids+=("$a")
  wait_metric pasban_correlator_events_total "$PA" 150 90
  "${start[@]}" --http "127.0.0.1:$PB" 2>"$T/log-$name-B" &
  local b=$!
  pids+=("$b")
  # B takes part of the work while A still has most of it ahead.
  wait_metric pasban_correlator_events_total "$PB" 100 90
  local ea
  ea=$(metric pasban_correlator_events_total "$PA")
  [ "$ea" -lt "$N" ] || fail "$name: A finished before B joined: make N larger"
  grep -q 'rebalance: revoked' "$T/log-$name-A" || fail "$name: A logged no revoke"
  kill -TERM "$b"
  local rc=0
  wait "$b" || rc=$?
  [ "$rc" -eq 0 ] || fail "$name: B exited $rc"
  local eb
  eb=$(sed -n 's/.*stopping after \([0-9]*\) events.*/\1/p' "$T/log-$name-B")
  [ -n "$eb" ] || fail "$name: B did not say how many events it processed"
  # A takes B's partitions back and finishes the backlog.
  for _ in $(seq 240); do
    ea=$(metric pasban_correlator_events_total "$PA" || true)
    [ -n "$ea" ] && [ $((ea + eb)) -ge "$N" ] && break
    sleep 0.5
  done
  sleep 3
  ea=$(metric pasban_correlator_events_total "$PA")
  kill -TERM "$a"
  rc=0
  wait "$a" || rc=$?
  [ "$rc" -eq 0 ] || fail "$name: A exited $rc"
  echo "$name: A processed $ea events, B $eb, of $N;" \
    "A: $(grep -c 'rebalance: assigned' "$T/log-$name-A") assignments," \
    "$(grep -c 'rebalance: revoked' "$T/log-$name-A") revocations"
  [ $((ea + eb)) -eq "$N" ] || fail "$name: A and B processed $((ea + eb)) events, want $N (read twice)"
  timeout 60 "$KCAT" -b "$K" -t "$INC" -C -e -q -f '%s\n' >"$T/inc-$name"
  python3 - "$T/inc-$name" "$N" "$name" <<'PY' || fail "$name: incidents"
import collections, json, sys
n = int(sys.argv[2])
one, twice = collections.Counter(), []
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    inc = json.loads(line)
    if inc["rule"]["id"] == "T-ONE":
        one[int(inc["group"]["n"])] += 1
    elif inc["rule"]["id"] == "T-TWICE":
        twice.append(inc["group"]["n"])
dup = sorted(k for k, c in one.items() if c > 1)
assert not twice, "%s: an event entered a window twice: T-TWICE for n=%s" % (sys.argv[3], twice[:10])
assert not dup, "%s: %d events raised their incident twice (n=%s...)" % (sys.argv[3], len(dup), dup[:10])
assert sorted(one) == list(range(n)), "%s: %d of %d events raised their incident" % (sys.argv[3], len(one), n)
PY
  pids=()
}

round eager range,roundrobin
round coop cooperative-sticky
echo "test_correlator_rebalance: ok"
