#!/usr/bin/env bash
# pasban-correlator's signals during start-up. A supervisor (systemd's reload,
# logrotate) may send SIGHUP at any time, also while the daemon is still loading
# its rules or waiting for the brokers: the reload must be queued, not end the
# process. SIGTERM during start-up stops it cleanly (exit 0). First with no broker
# at all (start-up waits on the metadata, seconds), then against the real one
# (scripts/kafka-local; PASBAN_KAFKA_BROKERS, default 127.0.0.1:9092): a burst of
# SIGHUPs from the first moment, and the daemon still turns events into incidents.
set -euo pipefail
B="${PASBAN_BIN:-build/bin}/pasban-correlator"
D="${PASBAN_SOURCE_DIR:-.}/tests/data"
TOOLS="${PASBAN_BUILD_DIR:-build}/tests"
K="${PASBAN_KAFKA_BROKERS:-127.0.0.1:9092}"
KCAT=$(command -v kcat || command -v kafkacat || true)
T=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/log" ] && cat "$T/log" >&2; exit 1; }
exe=$(readlink -f "$B")

# Until the child has become the daemon (a signal before exec would hit bash).
wait_exec() {
  for _ in $(seq 500); do
    [ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$exe" ] && return 0
    sleep 0.01
  done
  fail "the daemon did not start"
}

# Until the process catches SIGHUP (bit 0 of SigCgt in /proc/PID/status).
wait_handler() {
  local cgt
  for _ in $(seq 500); do
    cgt=$(sed -n 's/^SigCgt:\s*//p' "/proc/$1/status" 2>/dev/null || true)
    [ -n "$cgt" ] && (( 0x$cgt & 1 )) && return 0
    sleep 0.01
  done
  fail "the daemon never installed its SIGHUP handler"
}

# ---- no broker: start-up waits for metadata ----
# Port 1 on the loopback refuses connections: the daemon keeps asking for the
# topics' metadata (up to 20 times, 5 s each) before it would give up.
"$B" --kafka 127.0.0.1:1 --rules "$D/rules/ssh_small.rules" 2>"$T/log" &
pid=$!
wait_exec "$pid"
sleep 0.3
for _ in 1 2 3; do
  kill -HUP "$pid" 2>/dev/null || fail "SIGHUP during start-up ended the daemon"
  sleep 0.3
done
kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; fail "SIGHUP during start-up ended the daemon"; }
kill -TERM "$pid"
rc=0
for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "SIGTERM during start-up: still running after 15 s"
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "SIGTERM during start-up: exit $rc, want 0"
grep -q 'stopped during start-up' "$T/log" || fail "no 'stopped during start-up' in the log"

# ---- the real broker: SIGHUPs from the first moment ----
if [ -z "$KCAT" ] || ! timeout 10 "$KCAT" -b "$K" -L >/dev/null 2>&1; then
  echo "test_correlator_signals: ok (no broker at $K: the broker part skipped)"
  exit 0
fi
run=$RANDOM$$
IN=test-sig-in-$run OUT=test-sig-out-$run
: >"$T/log"
"$TOOLS/kafka_create_topic" "$K" "$IN" 1 || fail "cannot create $IN"
"$B" --kafka "$K" --rules "$D/rules/ssh_small.rules" --group "test-sig-$run" --topic-in "$IN" \
  --topic-out "$OUT" --topic-updates "$OUT-upd" --topic-kpi "$OUT-kpi" 2>>"$T/log" &
pid=$!
wait_exec "$pid"
# From the moment the handler is in place (the first thing main does; before it
# only the dynamic loader and the sanitizers' start-up run): a burst while the
# daemon connects, reads the topics and subscribes.
wait_handler "$pid"
for _ in $(seq 50); do kill -HUP "$pid" 2>/dev/null || break; sleep 0.02; done
kill -0 "$pid" 2>/dev/null || { wait "$pid" || true; fail "SIGHUP right after start ended the daemon"; }
# The reloads queued during start-up happen once the loop runs.
for _ in $(seq 60); do grep -q 'reloaded: 4 rules' "$T/log" && break; sleep 0.5; done
grep -q 'reloaded: 4 rules' "$T/log" || fail "the SIGHUP of start-up was not turned into a reload"
# A reload starts the windows afresh: the events go in once the burst is over.
sleep 1
grep -v '^$' "$D/correlator/ssh_small.log" | "$KCAT" -b "$K" -t "$IN" -P
n=0
for _ in $(seq 60); do
  n=$(timeout 20 "$KCAT" -b "$K" -t "$OUT" -C -e -q 2>/dev/null | grep -c . || true)
  [ "$n" -ge 4 ] && break
  sleep 1
done
[ "$n" -eq 4 ] || fail "want 4 incidents on $OUT, have $n"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" -eq 0 ] || fail "daemon exited $rc"
echo "test_correlator_signals: ok"
