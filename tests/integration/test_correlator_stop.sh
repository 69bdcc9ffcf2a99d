#!/usr/bin/env bash
# SIGTERM with the brokers gone, against the real broker of scripts/kafka-local
# (PASBAN_KAFKA_BROKERS, default 127.0.0.1:9092; the test stops and restarts that
# broker, so it runs only when scripts/kafka-local runs it on that port).
#
# The correlator works through a backlog (a rule that runs into the PCRE2 match
# limit makes each event cost a few milliseconds, so a transaction is always
# open); the broker is stopped under it, then the correlator gets SIGTERM. Want:
# exit 0 within 25 s (systemd's TimeoutStopSec is 90 s; the waits on the
# transaction coordinator alone used to add up to minutes), the log saying what
# was not committed. Then the broker and the correlator come back and finish the
# backlog. Want: the incidents on the read_committed topic are exactly those of
# --replay over the same events -- same ids, counts and first_seen, none twice:
# nothing committed was lost, nothing uncommitted came out twice.
#
# First, with the broker up: a commit that fails fatally (fenced: a second
# instance took the same transactional.id) leaves no transaction marked open,
# so nothing tries to abort it on the way out; exit 1 at once, the log saying
# what was not committed.
# PASBAN_KEEP=DIR keeps the logs there.
set -euo pipefail
B="${PASBAN_BIN:-build/bin}/pasban-correlator"
SRC="${PASBAN_SOURCE_DIR:-.}"
TOOLS="${PASBAN_BUILD_DIR:-build}/tests"
K="${PASBAN_KAFKA_BROKERS:-127.0.0.1:9092}"
KCAT=$(command -v kcat || command -v kafkacat || true)
T=$(mktemp -d)
pids=()
broker_down=0
port=${K##*:}
kl() { PASBAN_KAFKA_PORT=$port "$SRC/scripts/kafka-local" "$@"; }
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if [ "$broker_down" = 1 ]; then kl start >/dev/null 2>&1 || echo "could not restart the broker on $port" >&2; fi
  [ -n "${PASBAN_KEEP:-}" ] && cp -r "$T" "$PASBAN_KEEP"; rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; grep -v "^%" "$f" | tail -30 >&2; }; done; exit 1; }
if [ -z "$KCAT" ] || ! timeout 10 "$KCAT" -b "$K" -L >/dev/null 2>&1; then
  echo "SKIP: no broker at $K (start scripts/kafka-local, or set PASBAN_KAFKA_BROKERS)"
  exit 0
fi
run=$RANDOM$$
t0=$(date +%s)
N=${PASBAN_STOP_EVENTS:-800}

cat >"$T/r.rules" <<'RULES'
{"rules": [
  {"id": "S-ONE", "severity": "info", "by": ["n"], "where": {"message": "^ev (?<n>\\d+) "}},
  {"id": "S-BF", "where": {"message": "^ev \\d+ from (?<src>\\S+)"},
   "threshold": {"count": 3, "within": "1h", "by": ["src"]}},
  {"id": "S-SLOW", "severity": "info", "where": {"message": "^ev \\d+ from \\S+ (?:x+x+)+(?:y|\\d)"}}
]}
RULES

scrape() { curl -fsS -H "Authorization: Bearer tok-reg" "http://127.0.0.1:$1/metrics" 2>/dev/null || true; }
metric() { # metric NAME PORT; NAME_committed: the committed transactions
  case $1 in
  *_committed) scrape "$2" | sed -n 's/^pasban_correlator_transactions_total{result="committed"} \([0-9]*\)$/\1/p' ;;
  *) scrape "$2" | sed -n "s/^$1 \([0-9]*\)$/\1/p" ;;
  esac
}
wait_until() { # wait_until SECONDS WHAT CMD...: until CMD succeeds
  local s=$1 what=$2
  shift 2
  local end=$((SECONDS + s))
  while [ "$SECONDS" -lt "$end" ]; do "$@" && return 0; sleep 0.2; done
  fail "$what (waited $s s)"
}
ge() { local min=$1 v; shift; v=$("$@"); [ -n "$v" ] && [ "$v" -ge "$min" ]; } # ge MIN CMD...

# ---- a fatal commit error (fenced) ----
FE=test-fence-$run
"$TOOLS/kafka_create_topic" "$K" "$FE" 1 || fail "cannot create $FE"
fconf() { # fconf NAME TOPIC: one transactional.id for both
  cat >"$T/$1.conf" <<CONF
{"kafka": {"brokers": "$K", "group": "$2",
           "topics": {"events": "$2", "incidents": "$2-inc", "updates": "$2-upd", "kpi": "$2-kpi"},
           "properties": {"transactional.id": "test-fence-$run"}},
 "rules": "$T/r.rules",
 "tokens": [{"token": "tok-reg", "role": "regulator"}]}
CONF
}
fconf fa "$FE"
fconf fb "$FE-b"
"$TOOLS/kafka_create_topic" "$K" "$FE-b" 1 || fail "cannot create $FE-b"
PF=$((20000 + RANDOM % 20000))
"$B" -c "$T/fa.conf" --http "127.0.0.1:$PF" --kpi-interval 3600 2>>"$T/log-fa" &
fa=$!
pids+=("$fa")
wait_until 30 "A up" grep -q 'consuming ' "$T/log-fa"
printf 'op-a\t<13>1 2026-11-23T08:00:00.000Z h app - - - ev 1 from 192.0.2.1 z\n' |
  "$KCAT" -b "$K" -t "$FE" -P -K $'\t'
wait_until 30 "A committed its first incident" ge 1 metric pasban_correlator_transactions_total_committed "$PF"
# B takes the transactional.id: A is fenced at its next transaction.
"$B" -c "$T/fb.conf" --kpi-interval 3600 2>>"$T/log-fb" &
fb=$!
pids+=("$fb")
wait_until 30 "B took the transactional.id" grep -q 'transactional.id test-fence' "$T/log-fb"
printf 'op-a\t<13>1 2026-11-23T08:00:01.000Z h app - - - ev 2 from 192.0.2.1 z\n' |
  "$KCAT" -b "$K" -t "$FE" -P -K $'\t'
ts=$(date +%s%N)
rc=0
for _ in $(seq 300); do kill -0 "$fa" 2>/dev/null || break; sleep 0.1; done
kill -0 "$fa" 2>/dev/null && fail "fenced: A still running after 30 s"
wait "$fa" || rc=$?
took=$((($(date +%s%N) - ts) / 1000000))
[ "$rc" -eq 1 ] || fail "fenced: A exited $rc, want 1"
grep -q 'fatal error: transaction of 1 incidents (1 events) not committed' "$T/log-fa" ||
  fail "fenced: no log line saying what was not committed"
if grep -q 'transaction: abort' "$T/log-fa"; then fail "fenced: an abort was tried on the fenced producer"; fi
kill -TERM "$fb"
wait "$fb" || fail "B exited non-zero"
echo "fenced: A exited 1 after $took ms, the uncommitted transaction logged, no abort tried"

# ---- SIGTERM with the broker gone ----
case $K in
127.0.0.1:* | localhost:*) ;;
*) echo "test_correlator_stop: ok (the broker part skipped: $K is not a local broker this test may stop)"; exit 0 ;;
esac
if ! kl status >/dev/null 2>&1; then
  echo "test_correlator_stop: ok (the broker part skipped: $K is not scripts/kafka-local's on port $port)"
  exit 0
fi
EV=test-stop-$run
"$TOOLS/kafka_create_topic" "$K" "$EV" 2 || fail "cannot create $EV"
cat >"$T/c.conf" <<CONF
{"kafka": {"brokers": "$K", "group": "test-stop-$run",
           "topics": {"events": "$EV", "incidents": "$EV-inc", "updates": "$EV-upd", "kpi": "$EV-kpi"},
           "properties": {"heartbeat.interval.ms": "300", "session.timeout.ms": "6000"}},
 "rules": "$T/r.rules",
 "tokens": [{"token": "tok-reg", "role": "regulator"}]}
CONF
# N events of one operator, a second apart in event time; 40 sources, so every
# threshold window spans the stop.
python3 - "$N" >"$T/ev" <<'PY'
import sys, datetime
n = int(sys.argv[1])
t0 = datetime.datetime(2026, 11, 23, 8, 0, tzinfo=datetime.timezone.utc)
for i in range(n):
    t = (t0 + datetime.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    print("<13>1 %s h app - - - ev %d from 198.51.100.%d %sz" % (t, i, i % 40, "x" * 28))
PY
sed 's/^/op-a\t/' "$T/ev" | "$KCAT" -b "$K" -t "$EV" -P -K $'\t' || fail "cannot produce the events"
P=$((20000 + RANDOM % 20000))
# S-SLOW runs into this match limit on every event: about 10 ms each.
ML=5000000
start() { # start LOG: pid in $started
  "$B" -c "$T/c.conf" --instance stop-a --http "127.0.0.1:$P" --kpi-interval 3600 \
    --match-limit "$ML" 2>>"$T/$1" &
  started=$!
  pids+=("$started")
}

start log-1
a=$started
# An idle correlator beside it (its events done and committed): nothing open at
# the SIGTERM, it has to find out on its own that the brokers are gone.
IE=test-stop-idle-$run
"$TOOLS/kafka_create_topic" "$K" "$IE" 1 || fail "cannot create $IE"
sed -e "s/\"group\": \"test-stop-$run\"/\"group\": \"$IE\"/" -e "s/\"$EV/\"$IE/g" "$T/c.conf" >"$T/i.conf"
printf 'op-a\t<13>1 2026-11-23T08:00:00.000Z h app - - - ev 1 from 192.0.2.1 z\n' |
  "$KCAT" -b "$K" -t "$IE" -P -K $'\t'
PI=$((20000 + RANDOM % 20000))
"$B" -c "$T/i.conf" --instance stop-i --http "127.0.0.1:$PI" --kpi-interval 3600 2>>"$T/log-idle" &
idle=$!
pids+=("$idle")
committed() { scrape "$P" | sed -n 's/^pasban_correlator_transactions_total{result="committed"} \([0-9]*\)$/\1/p'; }
# A quarter of the way through the backlog, a few transactions committed, the
# broker goes (a clean broker shutdown: connections refused from then on).
wait_until 40 "the correlator took a quarter of the events" ge $((N / 4)) metric pasban_correlator_events_total "$P"
wait_until 10 "the correlator committed" ge 2 committed
wait_until 20 "the idle correlator committed its event" ge 1 metric pasban_correlator_transactions_total_committed "$PI"
broker_down=1
kl stop >/dev/null || fail "could not stop the broker"
kill -0 "$a" 2>/dev/null || fail "the correlator died with the broker"
ts=$(date +%s%N)
kill -TERM "$a" "$idle"
rc=0
took= took_idle=
for _ in $(seq 300); do
  [ -z "$took_idle" ] && ! kill -0 "$idle" 2>/dev/null && took_idle=$((($(date +%s%N) - ts) / 1000000))
  [ -z "$took" ] && ! kill -0 "$a" 2>/dev/null && took=$((($(date +%s%N) - ts) / 1000000))
  [ -n "$took" ] && [ -n "$took_idle" ] && break
  sleep 0.1
done
kill -0 "$a" 2>/dev/null && fail "still running 30 s after SIGTERM with the broker gone"
kill -0 "$idle" 2>/dev/null && fail "the idle correlator still running 30 s after SIGTERM with the broker gone"
wait "$a" || rc=$?
[ "$rc" -eq 0 ] || fail "exit $rc after SIGTERM with the broker gone, want 0"
[ "$took" -le 25000 ] || fail "SIGTERM with the broker gone took $took ms, want at most 25 s"
grep -q 'stopping: transaction of [0-9]* incidents ([0-9]* events) not committed; they will be re-derived' "$T/log-1" ||
  fail "no log line saying what was not committed"
echo "SIGTERM with the broker gone: exit 0 after $took ms; $(grep -o 'transaction of [0-9]* incidents ([0-9]* events) not committed' "$T/log-1")"
rc=0
wait "$idle" || rc=$?
[ "$rc" -eq 0 ] || fail "the idle correlator exited $rc after SIGTERM with the broker gone, want 0"
[ "$took_idle" -le 25000 ] || fail "the idle correlator took $took_idle ms"
grep -q 'stopping: brokers out of reach (no metadata in 1 s)' "$T/log-idle" ||
  fail "the idle correlator did not notice the brokers were gone"
echo "SIGTERM with the broker gone, nothing open: exit 0 after $took_idle ms"

# The broker and the correlator come back; the rest of the backlog follows.
kl start >/dev/null || fail "could not restart the broker"
broker_down=0
start log-2
a=$started
incidents() { timeout 30 "$KCAT" -b "$K" -t "$EV-inc" -C -e -q -X isolation.level=read_committed -f '%k\t%s\n' >"$T/inc" 2>/dev/null || true; }
all_in() { incidents; [ "$(grep -c 'S-ONE' "$T/inc" || true)" -ge "$N" ]; }
wait_until 60 "all $N S-ONE incidents after the restart" all_in
sleep 1.5 # anything raised twice would follow right behind
incidents
kill -TERM "$a"
rc=0
wait "$a" || rc=$?
[ "$rc" -eq 0 ] || fail "the restarted correlator exited $rc"
grep -q 'restore: .* [1-9][0-9]* groups imported' "$T/log-2" || fail "the restarted correlator imported no groups"

# What a run without the stop gives.
"$B" --replay --rules "$T/r.rules" --operator op-a --match-limit "$ML" "$T/ev" >"$T/replay" 2>"$T/log-replay" || fail "replay"
python3 - "$T/inc" "$T/replay" <<'PY' || fail "incidents differ from an uninterrupted run"
import collections, json, sys
rows = [l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]) if l.strip()]
ids = collections.Counter(k for k, _ in rows)
dup = [k for k, c in ids.items() if c > 1]
assert not dup, "incident ids twice on the read_committed topic: %s" % dup[:5]
def key(i):
    return (i["id"], i["rule"]["id"], i["count"], i["first_seen"], i["last_seen"])
got = sorted(key(json.loads(v)) for _, v in rows)
want = sorted(key(json.loads(l)) for l in open(sys.argv[2]) if l.strip())
if got != want:
    g, w = set(got), set(want)
    print("missing:", sorted(w - g)[:5], "extra:", sorted(g - w)[:5], file=sys.stderr)
    sys.exit(1)
bf = sum(1 for k in got if k[1] == "S-BF")
print("after the restart: %d incidents (%d thresholds), the same ids, counts and times as --replay, none twice" % (len(got), bf))
PY
echo "test_correlator_stop: ok ($(($(date +%s) - t0)) s)"
