#!/usr/bin/env bash
# Exactly once across a restart and a rebalance, against a real broker
# (scripts/kafka-local; PASBAN_KAFKA_BROKERS, default 127.0.0.1:9092): the
# correlator's transactions carry incidents, window state (pasban.state) and
# offsets together, so a window, chain or suppression that straddles a SIGKILL
# or a partition moving to another instance is neither lost nor counted twice.
#
# 1. Restart: A sees part of a brute force (threshold 4), the first step of a
#    sequence and raises a suppressed single; A is SIGKILLed (the last event maybe
#    in an open transaction); A comes back and the rest arrives. Want: the
#    threshold once with count 4 and the first event's first_seen, the sequence
#    once, the single not again.
# 2. Rebalance: A holds half of each of 8 operators' windows on a 4-partition
#    topic; B joins the group and takes partitions (their windows read back from
#    the state topic); the other half arrives. Want: each operator's threshold
#    once with count 4, whichever instance raises it.
# After each, the KPI record last published for every operator (pasban.kpi, at
#    the SIGTERM) counts each event sent exactly once: the event counters ride in
#    pasban.state with the windows.
# 3. A batch that can never commit is aborted a few times, then the daemon exits 1.
# 4. A batch aborted mid-backlog (the instance frozen past its session timeout:
#    its assignment is lost, the open transaction aborted) and processed again
#    after the rewind: the incidents are --replay's, ids included (the engine's
#    id ordinals are rolled back with the batch; without that, every incident of
#    the aborted batch came back with ordinal 1, a different id).
# And on the incidents topic read read_committed: no incident id twice.
set -euo pipefail
B="${PASBAN_BIN:-build/bin}/pasban-correlator"
TOOLS="${PASBAN_BUILD_DIR:-build}/tests"
K="${PASBAN_KAFKA_BROKERS:-127.0.0.1:9092}"
KCAT=$(command -v kcat || command -v kafkacat || true)
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; tail -30 "$f" >&2; }; done; exit 1; }
if [ -z "$KCAT" ] || ! timeout 10 "$KCAT" -b "$K" -L >/dev/null 2>&1; then
  echo "SKIP: no broker at $K (start scripts/kafka-local, or set PASBAN_KAFKA_BROKERS)"
  exit 0
fi
run=$RANDOM$$
t0=$(date +%s)

cat >"$T/r.rules" <<'RULES'
{"rules": [
  {"id": "X-BF", "severity": "high", "where": {"message": "^fail from (?<src>\\S+)"},
   "threshold": {"count": 4, "within": "1h", "by": ["src"]}, "suppress": "1h"},
  {"id": "X-SEQ", "within": "1h", "by": ["src"], "sequence": [
     {"where": {"message": "^fail from (?<src>\\S+)"}},
     {"where": {"message": "^ok from (?<src>\\S+)"}}]},
  {"id": "X-ONE", "severity": "info", "where": {"message": "^fail from (?<src>\\S+)"},
   "by": ["src"], "suppress": "1h"}
]}
RULES

scrape() { curl -fsS -H "Authorization: Bearer tok-reg" "http://127.0.0.1:$1/metrics" 2>/dev/null || true; }
metric() { scrape "$2" | sed -n "s/^$1 \([0-9]*\)$/\1/p"; }
committed() { scrape "$1" | sed -n 's/^pasban_correlator_transactions_total{result="committed"} \([0-9]*\)$/\1/p'; }
wait_until() { # wait_until SECONDS WHAT CMD...: until CMD succeeds
  local s=$1 what=$2
  shift 2
  local end=$((SECONDS + s))
  while [ "$SECONDS" -lt "$end" ]; do "$@" && return 0; sleep 0.2; done
  fail "$what (waited $s s)"
}
ge() { local min=$1 v; shift; v=$("$@"); [ -n "$v" ] && [ "$v" -ge "$min" ]; } # ge MIN CMD...
eq() { local want=$1 v; shift; v=$("$@"); [ "$v" = "$want" ]; }
# at N: an RFC 5424 time N seconds after 08:00 today
at() { date -u -d "@$(($(date -u -d 'today 08:00' +%s) + $1))" +%Y-%m-%dT%H:%M:%S.000Z; }
send() { # send TOPIC KEY SECONDS MESSAGE
  printf '%s\t<38>1 %s gw1 sshd - - - %s\n' "$2" "$(at "$3")" "$4" | "$KCAT" -b "$K" -t "$1" -P -K $'\t'
}
conf() { # conf NAME TOPIC GROUP
  cat >"$T/$1.conf" <<CONF
{"kafka": {"brokers": "$K", "group": "$3",
           "topics": {"events": "$2", "incidents": "$2-inc", "updates": "$2-upd", "kpi": "$2-kpi"},
           "properties": {"heartbeat.interval.ms": "300", "session.timeout.ms": "6000"}},
 "rules": "$T/r.rules",
 "tokens": [{"token": "tok-reg", "role": "regulator"}]}
CONF
}
start() { # start NAME CONF INSTANCE PORT: pid in $started
  "$B" -c "$T/$2.conf" --instance "$3" --http "127.0.0.1:$4" --kpi-interval 3600 2>>"$T/log-$1" &
  started=$!
  pids+=("$started")
}
port() { echo $((20000 + RANDOM % 20000)); }
# kpi_events TOPIC N OP...: the last record of each OP's month on the KPI topic
# counts N events
kpi_events() {
  local topic=$1 want=$2
  shift 2
  timeout 30 "$KCAT" -b "$K" -t "$topic" -C -e -q -X isolation.level=read_committed -f '%k\t%s\n' \
    >"$T/kpi" 2>/dev/null || true
  python3 - "$T/kpi" "$(date -u -d "@$(date -u -d 'today 08:00' +%s)" +%Y-%m)" "$want" "$@" <<'PY'
import json, sys
last = {}
for l in open(sys.argv[1]):
    if "\t" in l:
        k, v = l.rstrip("\n").split("\t", 1)
        last[k] = json.loads(v)
month, want = sys.argv[2], int(sys.argv[3])
for op in sys.argv[4:]:
    rec = last.get(op + "/" + month)
    assert rec is not None, ("no KPI record of", op, month, sorted(last))
    got = rec["kpi"]["events_ingested"]
    assert got == want, ("events_ingested of %s: %s, sent %d" % (op, got, want))
print("KPI records of %d operators: events_ingested = %d each, as sent" % (len(sys.argv) - 4, want))
PY
}
incidents() { # incidents TOPIC FILE: read_committed
  timeout 30 "$KCAT" -b "$K" -t "$1" -C -e -q -X isolation.level=read_committed -f '%k\t%s\n' >"$2"
}

# ---- 1. a restart in the middle of the windows ----
EV1=test-eo-rs-$run
"$TOOLS/kafka_create_topic" "$K" "$EV1" 2 || fail "cannot create $EV1"
conf rs "$EV1" "test-eo-rs-$run"
P1=$(port)
send "$EV1" op-a 0 "fail from 198.51.100.7"
send "$EV1" op-a 1 "fail from 198.51.100.7"
send "$EV1" op-a 2 "fail from 203.0.113.9"
start A1 rs a "$P1"
a=$started
wait_until 30 "A saw 3 events" eq 3 metric pasban_correlator_events_total "$P1"
wait_until 10 "A committed a transaction" ge 1 committed "$P1"
sleep 0.6 # idle: the batch is committed
# The third of the brute force: SIGKILL right after it, in or after its transaction.
send "$EV1" op-a 3 "fail from 198.51.100.7"
sleep 0.3
kill -KILL "$a"
wait "$a" 2>/dev/null || true
start A1b rs a "$P1"
a=$started
send "$EV1" op-a 4 "fail from 198.51.100.7"
send "$EV1" op-a 5 "ok from 203.0.113.9"
wait_until 40 "X-BF and X-SEQ after the restart" \
  bash -c "incs=\$(timeout 20 $KCAT -b $K -t $EV1-inc -C -e -q -X isolation.level=read_committed 2>/dev/null); \
    grep -q X-BF <<<\"\$incs\" && grep -q X-SEQ <<<\"\$incs\""
sleep 1.5 # anything raised twice would follow right behind
grep -q 'restore: .* [1-9][0-9]* groups imported' "$T/log-A1b" || fail "the restarted A imported no groups"
incidents "$EV1-inc" "$T/inc1"
python3 - "$T/inc1" "$(at 0)" "$(at 2)" <<'PY' || fail "restart: incidents"
import collections, json, sys
rows = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if l.strip()]
ids = collections.Counter(k for k, _ in rows)
dup = [k for k, c in ids.items() if c > 1]
assert not dup, "incident ids twice on the read_committed topic: %s" % dup
by = collections.defaultdict(list)
for _, v in rows:
    inc = json.loads(v)
    by[(inc["rule"]["id"], inc["group"]["src"])].append(inc)
bf = by[("X-BF", "198.51.100.7")]
assert len(bf) == 1, ("X-BF once", bf)
assert bf[0]["count"] == 4 and bf[0]["first_seen"] == sys.argv[2], ("X-BF count/first_seen", bf[0])
seq = by[("X-SEQ", "203.0.113.9")]
assert len(seq) == 1 and seq[0]["first_seen"] == sys.argv[3], ("X-SEQ once, from before the restart", seq)
assert len(by[("X-ONE", "198.51.100.7")]) == 1, ("X-ONE suppressed across the restart", by[("X-ONE", "198.51.100.7")])
assert len(by[("X-ONE", "203.0.113.9")]) == 1
assert len(rows) == 4, [json.loads(v)["rule"]["id"] for _, v in rows]
print("restart: X-BF once, count %d, first_seen %s; X-SEQ once; X-ONE not repeated; %d incidents, no id twice"
      % (bf[0]["count"], bf[0]["first_seen"], len(rows)))
PY
kill -TERM "$a"
rc=0
wait "$a" || rc=$?
[ "$rc" -eq 0 ] || fail "restart: A exited $rc"
grep -q 'restore: .* [1-9][0-9]* KPI counters imported' "$T/log-A1b" || fail "the restarted A imported no KPI counters"
kpi_events "$EV1-kpi" 6 op-a || fail "restart: the KPI record does not count the 6 events once"

# ---- 2. a rebalance in the middle of the windows ----
EV2=test-eo-rb-$run
"$TOOLS/kafka_create_topic" "$K" "$EV2" 4 || fail "cannot create $EV2"
conf rb "$EV2" "test-eo-rb-$run"
PA=$(port) PB=$(port)
for i in 0 1 2 3 4 5 6 7; do
  send "$EV2" "op-$i" $((10 + i)) "fail from 192.0.2.$i"
  send "$EV2" "op-$i" $((20 + i)) "fail from 192.0.2.$i"
done
start A2 rb a2 "$PA"
a=$started
wait_until 30 "A saw the first 16 events" ge 16 metric pasban_correlator_events_total "$PA"
sleep 0.6
start B2 rb b2 "$PB"
b=$started
wait_until 30 "B took partitions" ge 1 metric pasban_correlator_partitions_assigned "$PB"
wait_until 20 "B restored their state" grep -q 'restore: ' "$T/log-B2"
for i in 0 1 2 3 4 5 6 7; do
  send "$EV2" "op-$i" $((30 + i)) "fail from 192.0.2.$i"
  send "$EV2" "op-$i" $((40 + i)) "fail from 192.0.2.$i"
done
total() { echo $(($(metric pasban_correlator_events_total "$PA" || echo 0) + $(metric pasban_correlator_events_total "$PB" || echo 0))); }
wait_until 40 "A and B saw the other 16 events" ge 32 total
sleep 1.5
restored=$(metric pasban_correlator_state_records_restored_total "$PB")
incidents "$EV2-inc" "$T/inc2"
python3 - "$T/inc2" "$(at 10)" <<'PY' || fail "rebalance: incidents"
import collections, datetime, json, sys
rows = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if l.strip()]
ids = collections.Counter(k for k, _ in rows)
dup = [k for k, c in ids.items() if c > 1]
assert not dup, "incident ids twice on the read_committed topic: %s" % dup
t10 = datetime.datetime.strptime(sys.argv[2], "%Y-%m-%dT%H:%M:%S.000Z")
bf = collections.defaultdict(list)
one = collections.Counter()
for _, v in rows:
    inc = json.loads(v)
    if inc["rule"]["id"] == "X-BF":
        bf[inc["group"]["src"]].append(inc)
    elif inc["rule"]["id"] == "X-ONE":
        one[inc["group"]["src"]] += 1
for i in range(8):
    src = "192.0.2.%d" % i
    want = (t10 + datetime.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    got = bf[src]
    assert len(got) == 1, ("X-BF of %s once" % src, got)
    assert got[0]["count"] == 4 and got[0]["first_seen"] == want, (src, got[0]["count"], got[0]["first_seen"], want)
    assert one[src] == 1, ("X-ONE of %s suppressed across the move" % src, one[src])
print("rebalance: 8 of 8 thresholds once with count 4 and the first event's first_seen; %d incidents, no id twice" % len(rows))
PY
[ -n "$restored" ] && [ "$restored" -gt 0 ] || fail "B restored no group state (${restored:-nothing})"
echo "rebalance: B restored $restored group records; A: $(grep -c 'rebalance: assigned' "$T/log-A2") assignments"
kill -TERM "$a" "$b"
for p in "$a" "$b"; do
  rc=0
  wait "$p" || rc=$?
  [ "$rc" -eq 0 ] || fail "rebalance: an instance exited $rc"
done
kpi_events "$EV2-kpi" 4 op-0 op-1 op-2 op-3 op-4 op-5 op-6 op-7 ||
  fail "rebalance: the KPI records do not count the 4 events of each operator once"
pids=()

# ---- 3. a batch that can never commit (an incident past message.max.bytes) ----
# Aborted, rewound and tried again a few times, then exit 1: nothing of it
# committed, not retried for ever.
EV3=test-eo-px-$run
"$TOOLS/kafka_create_topic" "$K" "$EV3" 1 || fail "cannot create $EV3"
conf px "$EV3" "test-eo-px-$run"
sed -i 's/"session.timeout.ms": "6000"/"session.timeout.ms": "6000", "message.max.bytes": "3000"/' "$T/px.conf"
send "$EV3" op-a 0 "fail from 192.0.2.200 $(printf 'x%.0s' $(seq 4000))"
rc=0
timeout 60 "$B" -c "$T/px.conf" --instance px --kpi-interval 3600 2>>"$T/log-px" || rc=$?
[ "$rc" -eq 1 ] || fail "poison batch: exit $rc, want 1"
grep -q 'transactions aborted in a row' "$T/log-px" || fail "poison batch: no give-up in the log"
incidents "$EV3-inc" "$T/inc3"
[ ! -s "$T/inc3" ] || fail "poison batch: incidents committed: $(cat "$T/inc3")"
echo "poison batch: $(grep -c 'transaction aborted' "$T/log-px") aborts, exit 1, nothing committed"

# ---- 4. an aborted batch processed again ----
EV4=test-eo-ab-$run
"$TOOLS/kafka_create_topic" "$K" "$EV4" 2 || fail "cannot create $EV4"
conf ab "$EV4" "test-eo-ab-$run"
cat >"$T/ab.rules" <<'RULES'
{"rules": [
  {"id": "A-ONE", "severity": "info", "by": ["n"], "where": {"message": "^ev (?<n>\\d+) "}},
  {"id": "A-BF", "where": {"message": "^ev \\d+ from (?<src>\\S+)"},
   "threshold": {"count": 3, "within": "1h", "by": ["src"]}},
  {"id": "A-SLOW", "severity": "info", "where": {"message": "^ev \\d+ from \\S+ (?:x+x+)+(?:y|\\d)"}}
]}
RULES
sed -i "s|\"rules\": \"$T/r.rules\"|\"rules\": \"$T/ab.rules\"|" "$T/ab.conf"
N4=800
python3 - "$N4" >"$T/ev4" <<'PY'
import sys, datetime
n = int(sys.argv[1])
t0 = datetime.datetime(2026, 11, 23, 8, 0, tzinfo=datetime.timezone.utc)
for i in range(n):
    t = (t0 + datetime.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    print("<13>1 %s h app - - - ev %d from 198.51.100.%d %sz" % (t, i, i % 40, "x" * 28))
PY
sed 's/^/op-a\t/' "$T/ev4" | "$KCAT" -b "$K" -t "$EV4" -P -K $'\t' || fail "cannot produce to $EV4"
P4=$(port)
# A-SLOW runs into this match limit on every event (about 10 ms each): a
# transaction is open all through the backlog.
"$B" -c "$T/ab.conf" --instance ab --http "127.0.0.1:$P4" --kpi-interval 3600 --match-limit 5000000 \
  2>>"$T/log-ab" &
a=$!
pids+=("$a")
wait_until 30 "the backlog under way" ge 80 metric pasban_correlator_events_total "$P4"
# Frozen past session.timeout.ms (6 s), not past transaction.timeout.ms (10 s).
kill -STOP "$a"
sleep 7.5
kill -CONT "$a"
wait_until 20 "the batch aborted" grep -q 'transaction aborted: back to the committed' "$T/log-ab"
all_in4() { incidents "$EV4-inc" "$T/inc4"; [ "$(grep -c 'A-ONE' "$T/inc4" || true)" -ge "$N4" ]; }
wait_until 60 "all $N4 A-ONE incidents" all_in4
sleep 1.5
incidents "$EV4-inc" "$T/inc4"
kill -TERM "$a"
rc=0
wait "$a" || rc=$?
[ "$rc" -eq 0 ] || fail "abort: the instance exited $rc"
"$B" --replay --rules "$T/ab.rules" --operator op-a --match-limit 5000000 "$T/ev4" >"$T/replay4" ||
  fail "replay"
python3 - "$T/inc4" "$T/replay4" <<'PY' || fail "abort: the incidents differ from --replay"
import collections, json, sys
rows = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if l.strip()]
ids = collections.Counter(k for k, _ in rows)
dup = [k for k, c in ids.items() if c > 1]
assert not dup, "incident ids twice on the read_committed topic: %s" % dup[:5]
key = lambda i: (i["id"], i["rule"]["id"], i["count"], i["first_seen"])
got = sorted(key(json.loads(v)) for _, v in rows)
want = sorted(key(json.loads(l)) for l in open(sys.argv[2]) if l.strip())
if got != want:
    g, w = set(got), set(want)
    print("%d differ; missing:" % len(w - g), sorted(w - g)[:3], "extra:", sorted(g - w)[:3], file=sys.stderr)
    sys.exit(1)
print("abort: %d incidents after the aborted batch was processed again, ids as --replay's, none twice" % len(got))
PY
echo "test_correlator_exactly_once: ok ($(($(date +%s) - t0)) s)"
