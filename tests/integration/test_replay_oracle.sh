#!/usr/bin/env bash
# ctest: no-kafka
# `pasban-correlator --replay` against an independent oracle (tests/replay_oracle.py,
# written from design.md and correlator/README.md) on analyst-style rules
# (tests/data/oracle/*.rules) over composed OpenSSH/Linux syslog samples, edge
# streams (window boundaries, late events, ties, suppression ending, distinct
# repeats, interleaved sequences, absence across a gap, New Year) and, when
# present, loghub's OpenSSH_2k.log and Linux_2k.log; the samples and loghub's
# logs also with a seeded quarter of their events made late. Every incident field is
# compared (the id: 32 hex digits, never given twice). The edge streams also
# have hand-checked summaries (edges/*.expect), so oracle and correlator cannot
# agree on a wrong answer there. Needs no Kafka.
set -euo pipefail

SRC=${PASBAN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${PASBAN_BIN:-$SRC/build/bin}
COR=$BIN/pasban-correlator
COL=$BIN/pasban-collector
ORACLE=$SRC/tests/replay_oracle.py
DATA=$SRC/tests/data/oracle
CORPORA=${PASBAN_LOGHUB_DIR:-/work/shared/corpora/loghub}

for f in "$COR" "$COL"; do
  [ -x "$f" ] || { echo "missing $f (build first)"; exit 1; }
done
command -v python3 >/dev/null || { echo "python3 is needed"; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0

# replay RULES EVENTS NAME: the correlator's incidents against the oracle's
replay() {
  local rules=$1 events=$2 name=$3
  if ! "$COR" --replay --rules "$rules" "$events" > "$T/$name.out" 2> "$T/$name.err"; then
    echo "FAIL $name: --replay exited non-zero"; cat "$T/$name.err"; fail=1; return
  fi
  if ! python3 "$ORACLE" --compare "$rules" "$events" "$T/$name.out"; then
    echo "FAIL $name: the correlator and the oracle differ"; fail=1
  fi
  # the same input gives the same bytes
  "$COR" --replay --rules "$rules" "$events" > "$T/$name.again" 2>/dev/null
  cmp -s "$T/$name.out" "$T/$name.again" || { echo "FAIL $name: two replays differ"; fail=1; }
}

"$COR" --check-rules "$DATA" > "$T/check" 2>&1 || { echo "FAIL rules refused:"; cat "$T/check"; exit 1; }

# composed samples, as JSONL with an operator and as raw lines (no operator)
for s in auth:ssh linux:linux year:edges; do
  log=${s%%:*} rules=${s##*:}
  "$COL" --parse --operator op-a "$DATA/$log.log" > "$T/$log.jsonl"
  "$COL" --parse "$DATA/$log.log" > "$T/$log-noop.jsonl"
  replay "$DATA/$rules.rules" "$T/$log.jsonl" "$log"
  replay "$DATA/$rules.rules" "$T/$log-noop.jsonl" "$log-noop"
  "$COR" --replay --rules "$DATA/$rules.rules" "$DATA/$log.log" > "$T/$log-raw.out"
  cmp -s "$T/$log-raw.out" "$T/$log-noop.out" ||
    { echo "FAIL $log: raw lines and their parsed events replay differently"; fail=1; }
done

# every rule of the composed samples fires at least once (the samples cover them)
for s in auth:ssh linux:linux; do
  log=${s%%:*} rules=${s##*:}
  for id in $(grep -o '"id": "ORC-[^"]*' "$DATA/$rules.rules" | cut -d'"' -f4); do
    grep -q "\"rule\":{\"id\":\"$id\"" "$T/$log.out" || { echo "FAIL $log: $id never fired"; fail=1; }
  done
done

# New Year: BSD timestamps have no year; a burst across midnight is one incident
# (the year comes from the receive time: on Dec 30/31 both nights fall in this year)
python3 - "$T/year.out" <<'EOF' || fail=1
import datetime as dt, json, sys
if dt.datetime.now(dt.timezone.utc).strftime('%m%d') >= '1230':
    sys.exit(0)
incs = [json.loads(l) for l in open(sys.argv[1])]
first = incs[0] if incs else {}
y0, y1 = first.get('first_seen', '0')[:4], first.get('last_seen', '0')[:4]
if len(incs) != 2 or first['count'] != 3 or int(y1) != int(y0) + 1:
    print('FAIL year: expected 2 incidents, the first from Dec 31 to Jan 1, got', incs)
    sys.exit(1)
EOF

# edge streams: oracle, and the hand-checked summaries
for f in "$DATA"/edges/*.jsonl; do
  name=edge-$(basename "$f" .jsonl)
  replay "$DATA/edges.rules" "$f" "$name"
  python3 "$ORACLE" --summary "$T/$name.out" | sort > "$T/$name.sum"
  if ! sort "${f%.jsonl}.expect" | diff -u - "$T/$name.sum"; then
    echo "FAIL $name: not the hand-checked incidents (${f%.jsonl}.expect)"; fail=1
  fi
done

# jitter JSONL SEED: a quarter of the events made up to 15 s late (more than the
# 10 s windows, less than the minutes ones), the order kept: late events on real lines
jitter() {
  python3 - "$1" "$2" <<'EOF'
import datetime as dt, json, random, sys
random.seed(int(sys.argv[2]))
for line in open(sys.argv[1]):
    e = json.loads(line)
    if random.random() < 0.25:
        t = dt.datetime.strptime(e['@timestamp'], '%Y-%m-%dT%H:%M:%S.%fZ')
        t -= dt.timedelta(milliseconds=random.randint(0, 15000))
        e['@timestamp'] = t.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (t.microsecond // 1000)
    print(json.dumps(e, separators=(',', ':')))
EOF
}
for s in auth:ssh linux:linux; do
  log=${s%%:*} rules=${s##*:}
  jitter "$T/$log.jsonl" 1 > "$T/$log-late.jsonl"
  replay "$DATA/$rules.rules" "$T/$log-late.jsonl" "$log-late"
done

# loghub's logs, when this machine has them (never committed)
for s in OpenSSH_2k:ssh Linux_2k:linux; do
  log=${s%%:*} rules=${s##*:}
  [ -r "$CORPORA/$log.log" ] || continue
  "$COL" --parse --operator op-a "$CORPORA/$log.log" > "$T/$log.jsonl"
  replay "$DATA/$rules.rules" "$T/$log.jsonl" "$log-$rules"
  jitter "$T/$log.jsonl" 2 > "$T/$log-late.jsonl"
  replay "$DATA/$rules.rules" "$T/$log-late.jsonl" "$log-$rules-late"
done

[ "$fail" = 0 ] && echo "PASS test_replay_oracle"
exit "$fail"
