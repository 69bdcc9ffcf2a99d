#!/usr/bin/env bash
# pasban-correlator's daemon with its API against a real broker (scripts/kafka-local;
# PASBAN_KAFKA_BROKERS, default 127.0.0.1:9092): events of two operators in ->
# incidents out -> each operator's token sees only its own -> status changes go
# through the updates topic and come back -> /api/kpi shows MTTA/MTTR/SLA numbers
# worked out from the times given -> the CSV has one row per operator -> /metrics
# passes promtool -> KPI records land on the KPI topic -> the dashboard is served. Then two instances in one
# consumer group over a two-partition events topic: each serves every operator's KPIs.
set -euo pipefail
B="${PASBAN_BIN:-build/bin}/pasban-correlator"
D="${PASBAN_SOURCE_DIR:-.}/tests/data"
TOOLS="${PASBAN_BUILD_DIR:-build}/tests"
K="${PASBAN_KAFKA_BROKERS:-127.0.0.1:9092}"
KCAT=$(command -v kcat || command -v kafkacat || true)
T=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/log*; do [ -f "$f" ] && { echo "== $f" >&2; cat "$f" >&2; }; done; exit 1; }
if [ -z "$KCAT" ] || ! timeout 10 "$KCAT" -b "$K" -L >/dev/null 2>&1; then
  echo "SKIP: no broker at $K (start scripts/kafka-local, or set PASBAN_KAFKA_BROKERS)"
  exit 0
fi
command -v promtool >/dev/null || fail "promtool not installed (scripts/setup installs it)"
run=$RANDOM$$
port() { echo $((20000 + RANDOM % 20000)); }

# Tokens and KPI configuration: op-a designates gw-a and fw-a (fw-a never sends:
# coverage 50 %), op-b designates gw-b.
cat >"$T/c.conf" <<CONF
// test config: JSON with comments
{
  "kafka": {"brokers": "$K", "properties": {"client.id": "test-cor-api"}},
  "rules": "$D/rules/ssh_small.rules",
  "tokens": [
    {"token": "tok-a-$run", "operator": "op-a"},
    {"token": "tok-b-$run", "operator": "op-b"},
    {"token": "tok-reg-$run", "role": "regulator"}
  ],
  "kpi": {"operators": {"op-a": {"sources": ["gw-a", "fw-a"]}, "op-b": {"sources": ["gw-b"]}}}
}
CONF
export TA="tok-a-$run" TB="tok-b-$run" TR="tok-reg-$run"

# start NAME EVENTS INCIDENTS UPDATES KPI GROUP PORT
start() {
  "$B" -c "$T/c.conf" --topic-in "$2" --topic-out "$3" --topic-updates "$4" --topic-kpi "$5" \
    --group "$6" --http "127.0.0.1:$7" --kpi-interval 1 2>>"$T/log-$1" &
  pids+=($!)
}
# The events: op-a's brute force that ends in a root login (T-SSH-BF high, T-SSH-SEQ
# critical, T-SSH-ROOT medium), op-b's brute force (T-SSH-BF); all within 15 minutes
# so T-SILENT stays quiet.
events_a() {
  cat <<'EV'
<38>1 2026-10-05T06:55:46Z gw-a sshd 100 - - Failed password for root from 203.0.113.5 port 4000 ssh2
<38>1 2026-10-05T06:55:50Z gw-a sshd 100 - - Failed password for invalid user admin from 203.0.113.5 port 4001 ssh2
<38>1 2026-10-05T06:55:55Z gw-a sshd 100 - - Failed password for root from 203.0.113.5 port 4002 ssh2
<38>1 2026-10-05T06:56:20Z gw-a sshd 101 - - Accepted password for root from 203.0.113.5 port 4005 ssh2
EV
}
events_b() {
  cat <<'EV'
<38>1 2026-10-05T06:57:00Z gw-b sshd 200 - - Failed password for root from 198.51.100.7 port 1 ssh2
<38>1 2026-10-05T06:57:05Z gw-b sshd 200 - - Failed password for root from 198.51.100.7 port 2 ssh2
<38>1 2026-10-05T06:57:10Z gw-b sshd 200 - - Failed password for root from 198.51.100.7 port 3 ssh2
EV
}

# ---- one instance: the API ----
EV=test-api-ev-$run INC=test-api-inc-$run UPD=test-api-upd-$run KPI=test-api-kpi-$run
P=$(port)
events_a | "$KCAT" -b "$K" -t "$EV" -P -k op-a
events_b | "$KCAT" -b "$K" -t "$EV" -P -k op-b
start one "$EV" "$INC" "$UPD" "$KPI" "test-api-$run" "$P"
export H="http://127.0.0.1:$P"
python3 - <<'PY' || fail "API checks"
import csv, datetime, io, json, os, time, urllib.error, urllib.request

H = os.environ["H"]
TA, TB, TR = os.environ["TA"], os.environ["TB"], os.environ["TR"]

def call(path, token=None, body=None):
    req = urllib.request.Request(H + path, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()

def get(path, token):
    code, text = call(path, token)
    assert code == 200, (path, code, text)
    return json.loads(text)

def until(what, f, secs=60):
    for _ in range(secs * 2):
        try:
            v = f()
            if v:
                return v
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.5)
    raise AssertionError("timed out waiting for " + what)

def ms(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"

# Incidents out: 3 of op-a and 1 of op-b, read back into the store.
until("4 incidents", lambda: get("/api/incidents", TR)["total"] == 4)
all_inc = get("/api/incidents?limit=1000", TR)["incidents"]
rules = sorted((i["organization"]["id"], i["rule"]["id"]) for i in all_inc)
assert rules == [("op-a", "T-SSH-BF"), ("op-a", "T-SSH-ROOT"), ("op-a", "T-SSH-SEQ"),
                 ("op-b", "T-SSH-BF")], rules

# Access: an operator sees only its own; another's incident is "not found"; no
# token, a wrong token: 401; the regulator reads everything and changes nothing.
mine = get("/api/incidents", TA)
assert mine["total"] == 3 and all(i["organization"]["id"] == "op-a" for i in mine["incidents"]), mine
assert get("/api/incidents", TB)["total"] == 1
b_inc = next(i for i in all_inc if i["organization"]["id"] == "op-b")
a_by_rule = {i["rule"]["id"]: i for i in mine["incidents"]}
assert call("/api/incidents/" + b_inc["id"], TA)[0] == 404
assert call("/api/incidents/" + b_inc["id"], TB)[0] == 200
assert call("/api/incidents")[0] == 401 and call("/api/incidents", "nope")[0] == 401
assert call("/metrics")[0] == 401
code, text = call("/api/incidents/%s/status" % b_inc["id"], TR, {"status": "acknowledged"})
assert code == 403 and "error" in json.loads(text), (code, text)
code, text = call("/api/incidents/%s/status" % b_inc["id"], TA, {"status": "acknowledged"})
assert code == 404, (code, text)
code, text = call("/api/incidents/%s/status" % b_inc["id"], TB, {"status": "bogus"})
assert code == 400 and "error" in json.loads(text), (code, text)
assert get("/api/incidents?severity=critical", TA)["total"] == 1
assert get("/api/kpi?operator=op-a&period=2026-10", TA)["operator"] == "op-a"
assert call("/api/kpi?operator=op-b&period=2026-10", TA)[0] == 403

# Lifecycle through the updates topic (202 now, applied when read back):
# op-a acknowledges its critical incident 60 s after detection and resolves it
# 300 s after; reports its high one to the CERT 120 s after; op-b calls its
# brute force a false positive.
seq, bf = a_by_rule["T-SSH-SEQ"], a_by_rule["T-SSH-BF"]
def post(inc, token, status, after_s):
    at = iso(ms(inc["detected_at"]) + after_s)
    code, text = call("/api/incidents/%s/status" % inc["id"], token, {"status": status, "at": at})
    assert code == 202, (status, code, text)
    until(inc["id"] + " " + status, lambda: any(
        u["status"] == status for u in get("/api/incidents/" + inc["id"], token)["updates"]), 30)
post(seq, TA, "acknowledged", 60)
post(seq, TA, "resolved", 300)
post(bf, TA, "reported", 120)
post(b_inc, TB, "false_positive", 30)
assert get("/api/incidents/" + seq["id"], TA)["status"] == "resolved"
# invalid transitions are refused: nothing goes back from resolved; no false
# positive once reported
code, text = call("/api/incidents/%s/status" % seq["id"], TA, {"status": "acknowledged"})
assert code == 409 and "error" in json.loads(text), (code, text)
code, text = call("/api/incidents/%s/status" % bf["id"], TA, {"status": "false_positive"})
assert code == 409, (code, text)
assert get("/api/incidents?status=open", TA)["total"] == 2  # BF (reported) and ROOT

# KPIs of October in event time, recomputed here from the incidents and the times given.
k = get("/api/kpi?operator=op-a&period=2026-10", TA)["kpi"]
mttd = sum(ms(i["detected_at"]) - ms(i["first_seen"]) for i in mine["incidents"]) / 3
want = {"events_ingested": 4, "parse_failures": 0, "incidents": 3, "incidents_critical": 1,
        "incidents_high": 1, "incidents_medium": 1, "sources_designated": 2,
        "sources_reporting": 1, "coverage_pct": 50.0, "mtta_s": 90.0, "mttr_s": 300.0,
        "reportable": 2, "reported_in_time_pct": 50.0, "false_positives": 0}
for key, v in want.items():
    assert k[key] == v, (key, k[key], v, k)
assert abs(k["resolved_within_sla_pct"] - 100 / 3) < 0.01, k  # 1 of 3, within critical's 4 h
assert abs(k["mttd_s"] - mttd) < 0.01, (k["mttd_s"], mttd)
kb = get("/api/kpi?operator=op-b&period=2026-10", TB)["kpi"]
assert (kb["events_ingested"], kb["incidents"], kb["false_positives"], kb["coverage_pct"]) == \
       (3, 1, 1, 100.0), kb
# the regulator sees both records; an operator's token only its own
ops = sorted(r["operator"] for r in get("/api/kpi?period=2026-10", TR)["records"])
assert ops == ["op-a", "op-b"], ops
assert [r["operator"] for r in get("/api/kpi?period=2026-10", TA)["records"]] == ["op-a"]

# The monthly sheet: one row per operator, the same numbers.
code, text = call("/api/kpi.csv?period=2026-10", TR)
assert code == 200, (code, text)
rows = list(csv.DictReader(io.StringIO(text, newline="")))
assert sorted(r["operator"] for r in rows) == ["op-a", "op-b"], rows
ra = next(r for r in rows if r["operator"] == "op-a")
assert ra["period"] == "2026-10" and int(ra["incidents"]) == 3 and float(ra["mttr_s"]) == 300.0, ra

# /metrics: the KPIs per operator and the daemon's per-rule counters.
code, text = call("/metrics", TR)
assert code == 200
assert 'pasban_correlator_rule_incidents_total{rule="T-SSH-BF"} 2' in text, text
assert 'pasban_correlator_updates_applied_total 4' in text, text
assert 'operator="op-a"' in text and 'operator="op-b"' in text

# The dashboard page is served at / without a token (it asks for one).
with urllib.request.urlopen(H + "/", timeout=10) as r:
    assert r.status == 200 and "text/html" in r.headers["Content-Type"], r.headers
    assert "<title>" in r.read().decode().lower()
with urllib.request.urlopen(H + "/app.js", timeout=10) as r:
    assert r.status == 200 and "javascript" in r.headers["Content-Type"], r.headers
PY
METRICS_OUT="$T/metrics" python3 - <<'PY' || fail "GET /metrics"
import os, urllib.request
req = urllib.request.Request(os.environ["H"] + "/metrics")
req.add_header("Authorization", "Bearer " + os.environ["TR"])
open(os.environ["METRICS_OUT"], "w").write(urllib.request.urlopen(req, timeout=10).read().decode())
PY
promtool check metrics <"$T/metrics" >"$T/promtool" 2>&1 || { cat "$T/promtool"; fail "promtool check metrics"; }

# The updates topic is open to any producer: a record past its limits (a
# 2000-byte note) is refused and counted, and the records after it still apply.
# An update from the future is refused (422); the receive time is recorded.
python3 -c 'import json; print(json.dumps({"id": "x" * 32, "organization": {"id": "op-a"},
  "status": "acknowledged", "at": "2026-10-05T07:00:00Z", "note": "n" * 2000}))' |
  "$KCAT" -b "$K" -t "$UPD" -P -k op-a
python3 - <<'PY' || fail "update limits and at bounds"
import datetime, json, os, re, time, urllib.error, urllib.request
H, TA, TR = os.environ["H"], os.environ["TA"], os.environ["TR"]
def call(path, token, body=None):
    req = urllib.request.Request(H + path, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
def counter(name):
    return int(re.search(r"^%s (\d+)$" % name, call("/metrics", TR)[1], re.M).group(1))
for _ in range(60):
    if counter("pasban_correlator_updates_over_limit_total") == 1:
        break
    time.sleep(0.5)
else:
    raise AssertionError("the over-limit update record was not counted")
root = [i for i in json.loads(call("/api/incidents?limit=1000", TA)[1])["incidents"]
        if i["rule"]["id"] == "T-SSH-ROOT"][0]
future = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime(
    "%Y-%m-%dT%H:%M:%SZ")
code, text = call("/api/incidents/%s/status" % root["id"], TA, {"status": "acknowledged", "at": future})
assert code == 422 and "server's clock" in json.loads(text)["error"], (code, text)
code, text = call("/api/incidents/%s/status" % root["id"], TA,
                  {"status": "acknowledged", "note": "n" * 1025})
assert code == 422 and "note longer than" in json.loads(text)["error"], (code, text)
code, text = call("/api/incidents/%s/status" % root["id"], TA, {"status": "acknowledged"})
assert code == 202 and '"received_at":' in text, (code, text)
for _ in range(60):
    ups = json.loads(call("/api/incidents/" + root["id"], TA)[1])["updates"]
    if ups:
        break
    time.sleep(0.5)
assert len(ups) == 1 and ups[0]["status"] == "acknowledged" and "received_at" in ups[0], ups
PY

# The KPI topic: op-a's and op-b's October records, keyed operator/period.
for _ in $(seq 30); do
  timeout 20 "$KCAT" -b "$K" -t "$KPI" -C -e -q -f '%k\t%s\n' >"$T/kpi" 2>/dev/null || true
  grep -q '^op-a/2026-10	' "$T/kpi" && grep -q '^op-b/2026-10	' "$T/kpi" && break
  sleep 1
done
python3 - "$T/kpi" <<'PY' || fail "KPI topic records"
import json, sys
last = {}
for line in open(sys.argv[1]):
    key, value = line.rstrip("\n").split("\t", 1)
    last[key] = json.loads(value)
assert last["op-a/2026-10"]["operator"] == "op-a", last
assert last["op-a/2026-10"]["kpi"]["events_ingested"] == 4, last["op-a/2026-10"]
assert last["op-b/2026-10"]["kpi"]["events_ingested"] == 3, last["op-b/2026-10"]
PY
kill -TERM "${pids[0]}"; rc=0; wait "${pids[0]}" || rc=$?; pids=()
[ "$rc" -eq 0 ] || fail "daemon exited $rc"

# ---- two instances, one group, a two-partition events topic ----
# op-a's events on partition 0, op-b's on 1: each instance consumes one
# operator's events, yet both serve both operators' KPIs (the KPI topic).
EV=test-api2-ev-$run INC=test-api2-inc-$run UPD=test-api2-upd-$run KPI=test-api2-kpi-$run
"$TOOLS/kafka_create_topic" "$K" "$EV" 2 || fail "cannot create $EV"
PA=$(port) PB=$(port)
start A "$EV" "$INC" "$UPD" "$KPI" "test-api2-$run" "$PA"
start B "$EV" "$INC" "$UPD" "$KPI" "test-api2-$run" "$PB"
export HA="http://127.0.0.1:$PA" HB="http://127.0.0.1:$PB"
python3 - <<'PY' || fail "both instances should get one partition of $EV"
import os, re, time, urllib.request
def assigned(base):
    req = urllib.request.Request(base + "/metrics")
    req.add_header("Authorization", "Bearer " + os.environ["TR"])
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    return int(re.search(r"^pasban_correlator_partitions_assigned (\d+)$", text, re.M).group(1))
for _ in range(120):
    try:
        if assigned(os.environ["HA"]) == 1 and assigned(os.environ["HB"]) == 1:
            break
    except OSError:
        pass
    time.sleep(0.5)
else:
    raise AssertionError("no rebalance to one partition each")
PY
events_a | "$KCAT" -b "$K" -t "$EV" -P -k op-a -p 0
events_b | "$KCAT" -b "$K" -t "$EV" -P -k op-b -p 1
python3 - <<'PY' || fail "scale-out"
import json, os, re, time, urllib.request

def get(base, path):
    req = urllib.request.Request(base + path)
    req.add_header("Authorization", "Bearer " + os.environ["TR"])
    return urllib.request.urlopen(req, timeout=10).read().decode()

def events(base):
    return int(re.search(r"^pasban_correlator_events_total (\d+)$", get(base, "/metrics"), re.M).group(1))

want = {"op-a": (4, 3), "op-b": (3, 1)}
for _ in range(90):
    try:
        ok = all(
            (lambda k: (k["events_ingested"], k["incidents"]) == want[op])(
                json.loads(get(base, "/api/kpi?operator=%s&period=2026-10" % op))["kpi"])
            for base in (os.environ["HA"], os.environ["HB"]) for op in want)
    except OSError:
        ok = False
    if ok:
        break
    time.sleep(1)
else:
    raise AssertionError("both instances should serve both operators' KPIs")
ea, eb = events(os.environ["HA"]), events(os.environ["HB"])
assert sorted((ea, eb)) == [3, 4], ("each instance consumes one operator's partition", ea, eb)
PY
echo "test_correlator_api: ok"
