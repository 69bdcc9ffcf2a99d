#!/usr/bin/env bash
# pasban-correlator as a daemon against a real broker (scripts/kafka-local;
# PASBAN_KAFKA_BROKERS, default 127.0.0.1:9092): events in, the expected
# incidents out keyed by incident id, offsets committed after delivery (a
# restart does not raise them again), and SIGHUP reloads that refuse a broken
# rule set and take a good one.
set -euo pipefail
B="${PASBAN_BIN:-build/bin}/pasban-correlator"
D="${PASBAN_SOURCE_DIR:-.}/tests/data"
K="${PASBAN_KAFKA_BROKERS:-127.0.0.1:9092}"
KCAT=$(command -v kcat || command -v kafkacat || true)
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/log" ] && cat "$T/log" >&2; exit 1; }
if [ -z "$KCAT" ] || ! timeout 10 "$KCAT" -b "$K" -L >/dev/null 2>&1; then
  echo "SKIP: no broker at $K (start scripts/kafka-local, or set PASBAN_KAFKA_BROKERS)"
  exit 0
fi
run=$RANDOM$$
IN=test-cor-in-$run OUT=test-cor-out-$run GROUP=test-cor-$run

count_out() { timeout 20 "$KCAT" -b "$K" -t "$OUT" -C -e -q -f '%k %s\n' 2>/dev/null | grep -c . || true; }
HTTP=127.0.0.1:$((20000 + RANDOM % 20000))
# the API and /metrics want a bearer token: a regulator's, from -c FILE
printf '{"tokens": [{"token": "test-reg-%s", "role": "regulator"}]}\n' "$run" >"$T/c.conf"
AUTH="Authorization: Bearer test-reg-$run"
start() { "$B" -c "$T/c.conf" --kafka "$K" --rules "$1" --group "$GROUP" --topic-in "$IN" \
            --topic-out "$OUT" --topic-updates "$OUT-upd" --topic-kpi "$OUT-kpi" \
            --http "$HTTP" 2>>"$T/log" & pid=$!; }
stop() { kill -TERM "$pid"; local rc=0; wait "$pid" || rc=$?; pid=; [ "$rc" -eq 0 ] || fail "daemon exited $rc"; }
wait_for() { # wait_for N: until OUT holds N incidents (60 s)
  for _ in $(seq 60); do [ "$(count_out)" -ge "$1" ] && return 0; sleep 1; done
  fail "want $1 incidents on $OUT, have $(count_out)"
}

grep -v '^$' "$D/correlator/ssh_small.log" | "$KCAT" -b "$K" -t "$IN" -P
cp "$D/rules/ssh_small.rules" "$T/set.rules"
start "$T/set.rules"
wait_for 4
# per-rule counters on /metrics, in the Prometheus text format
curl -fsS -H "$AUTH" "http://$HTTP/metrics" >"$T/metrics" || fail "GET /metrics"
for want in 'pasban_correlator_events_total 7' \
            'pasban_correlator_rule_incidents_total{rule="T-SSH-BF"} 1' \
            'pasban_correlator_rule_matches_total{rule="T-SSH-BF"} 4' \
            'pasban_correlator_rule_suppressed_total{rule="T-SSH-BF"} 1' \
            '# TYPE pasban_correlator_rule_limit_errors_total counter'; do
  grep -qF "$want" "$T/metrics" || fail "/metrics lacks: $want"
done
stop
timeout 20 "$KCAT" -b "$K" -t "$OUT" -C -e -q -f '%k\t%s\n' >"$T/out"
python3 - "$T/out" <<'PY'
import json, sys
rows = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if l.strip()]
assert len(rows) == 4, rows
got = []
for key, value in rows:
    inc = json.loads(value)
    assert key == inc["id"] and len(key) == 32, (key, inc["id"])
    assert inc["status"] == "new" and inc["evidence"], inc
    got.append((inc["rule"]["id"], inc["count"], inc["group"]))
assert sorted(got) == sorted([("T-SSH-BF", 3, {"src": "203.0.113.5"}),
                              ("T-SSH-SEQ", 2, {"src": "203.0.113.5"}),
                              ("T-SSH-ROOT", 1, {"host.hostname": "gw1"}),
                              ("T-SILENT", 6, {"host.hostname": "gw1"})]), got
PY

# Offsets were committed after delivery: a restart of the group raises nothing again.
start "$T/set.rules"
sleep 8
[ "$(count_out)" -eq 4 ] || fail "restart re-raised incidents: $(count_out)"

# SIGHUP: a set with a broken rule is refused and the old one keeps working;
# a good set is swapped in.
printf '{"rules": [{"id": "X", "where": {"message": "(broken"}}]}\n' >"$T/set.rules"
kill -HUP "$pid"
for _ in $(seq 20); do grep -q 'reload refused' "$T/log" && break; sleep 0.5; done
grep -q 'reload refused' "$T/log" || fail "broken reload not refused"
cat >"$T/set.rules" <<'RULES'
{"rules": [{"id": "T-ANY-ROOT", "severity": "info", "where": {"message": "for root from"}}]}
RULES
kill -HUP "$pid"
for _ in $(seq 20); do grep -q 'reloaded: 1 rules' "$T/log" && break; sleep 0.5; done
grep -q 'reloaded: 1 rules' "$T/log" || fail "good reload not taken"
echo "Dec 10 08:00:00 gw1 sshd[7]: Accepted password for root from 198.51.100.9 port 1 ssh2" |
  "$KCAT" -b "$K" -t "$IN" -P
wait_for 5
stop
timeout 20 "$KCAT" -b "$K" -t "$OUT" -C -e -q -f '%s\n' | grep -q '"id":"T-ANY-ROOT"' ||
  fail "the reloaded rule raised nothing"

# Reload under load loses no events: 2000 events, one incident each, while the
# rules are reloaded five times; exactly 2000 distinct incidents come out.
IN=$IN-load OUT=$OUT-load GROUP=$GROUP-load
cat >"$T/every.rules" <<'RULES'
{"rules": [{"id": "T-EVERY", "by": ["n"], "where": {"message": "^load (?<n>\\d+)$"}}]}
RULES
start "$T/every.rules"
sleep 3
for i in $(seq 2000); do echo "<13>1 2026-11-23T10:00:00.000Z h app - - - load $i"; done |
  "$KCAT" -b "$K" -t "$IN" -P &
feeder=$!
for _ in 1 2 3 4 5; do sleep 0.4; kill -HUP "$pid"; done
wait "$feeder"
wait_for 2000
sleep 2
stop
# signals may coalesce: at least two of the five reloads land during the load
[ "$(grep -c 'reloaded: 1 rules' "$T/log")" -ge 3 ] || fail "no reload under load"
timeout 30 "$KCAT" -b "$K" -t "$OUT" -C -e -q -f '%s\n' |
  python3 -c '
import json, sys
ns = [json.loads(l)["group"]["n"] for l in sys.stdin if l.strip()]
assert len(ns) == 2000 and len(set(ns)) == 2000, (len(ns), len(set(ns)))
' || fail "events lost or doubled across reloads"
echo "test_correlator_kafka: ok"
