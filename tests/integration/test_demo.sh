#!/usr/bin/env bash
# scripts/demo --once, as a newcomer runs it: its own broker, both daemons, three
# operators over UDP, TCP and HTTP, the analysts' updates, the month's KPI sheet.
# Checks what the demo prints and the sheet it saves: every operator's events
# arrived whole, incidents were raised and worked.
set -euo pipefail
root=${PASBAN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
# Ports: those the caller sets (PASBAN_DEMO_KAFKA_PORT, _HTTP, _SYSLOG, _INGEST), else
# free ones picked here, so two checkouts running this test at once do not meet
# (scripts/demo keeps its documented defaults for users). Picked below Linux's
# ephemeral range (32768-60999), so no outgoing connection takes one before the
# daemons bind it, and held until all are chosen, so they differ. The broker also
# takes port+1 (its controller), the collector ingest+1 (metrics); syslog is UDP and
# TCP on one number. A broker port whose data directory is in the cache (another
# checkout's broker, stopped) is passed over, as the demo empties its broker's data;
# making that directory claims the port.
cache=${PASBAN_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pasban}
read -r free_kafka free_http free_syslog free_ingest < <(python3 - "$cache" "${PASBAN_DEMO_KAFKA_PORT:-}" <<'PY'
import os, random, socket, sys
cache, kafka_given = sys.argv[1], sys.argv[2]
held = []
def bind(port, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    held.append(s)
    return port
def free(pair=False, udp=False, broker=False):
    for _ in range(1000):
        p = random.randrange(20000, 32000)
        if bind(p) is None or (pair and bind(p + 1) is None):
            continue
        if udp and bind(p, socket.SOCK_DGRAM) is None:
            continue
        if broker:
            try:  # the claim: a second run at once cannot take the same one
                os.makedirs(cache, exist_ok=True)
                os.mkdir(os.path.join(cache, "kafka-run-%d" % p))
            except FileExistsError:
                continue
        return p
    sys.exit("no free port in 20000-31999")
print(kafka_given or free(pair=True, broker=True), free(), free(udp=True), free(pair=True))
PY
)
[[ -n ${free_ingest:-} ]] || { echo "FAIL: no free ports"; exit 1; }
[[ -n ${PASBAN_DEMO_KAFKA_PORT:-} ]] || own_broker_port=$free_kafka
export PASBAN_SKIP_SETUP=1 PASBAN_DEMO_KAFKA_PORT=${PASBAN_DEMO_KAFKA_PORT:-$free_kafka}
export PASBAN_DEMO_HTTP=${PASBAN_DEMO_HTTP:-$free_http} PASBAN_DEMO_SYSLOG=${PASBAN_DEMO_SYSLOG:-$free_syslog}
export PASBAN_DEMO_INGEST=${PASBAN_DEMO_INGEST:-$free_ingest}
echo "ports: kafka $PASBAN_DEMO_KAFKA_PORT, http $PASBAN_DEMO_HTTP, syslog $PASBAN_DEMO_SYSLOG, ingest $PASBAN_DEMO_INGEST"
# A broker on a port picked here leaves its data under kafka-run-<port> in the cache:
# removed once the demo has stopped it.
forget_broker() {
    [[ -z ${own_broker_port:-} ]] || PASBAN_KAFKA_PORT=$own_broker_port scripts/kafka-local reset >/dev/null || true
}
trap forget_broker EXIT
out=$(scripts/demo --once 2>&1) || { echo "$out"; echo "FAIL: scripts/demo --once exited non-zero"; exit 1; }
echo "$out" | sed -n '/three operators send/,$p'
fail=0
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
check 'grep -q "correlator has read 1548 of 1548 events" <<<"$out"' "the correlator read every event"
check 'grep -q "dashboard" <<<"$out"' "the dashboard URL is printed"
csv=$(ls build/demo/kpi-*.csv)
# The sample spans three days ending now: in the first days of a month part of it
# falls in the previous month, so only then is a smaller count right.
python3 - "$csv" "$(date -u +%d)" <<'PY' || fail=1
import csv, sys
split = int(sys.argv[2]) <= 4
rows = {r["operator"]: r for r in csv.DictReader(open(sys.argv[1], newline=""))}
want = {"op-alborz": 540, "op-caspian": 518, "op-zagros": 490}
bad = 0
for op, n in want.items():
    r = rows.get(op)
    got = int(r["events_ingested"]) if r else 0
    if not (got == n or (split and 0 < got < n)):
        print("FAIL: %s events: want %d, got %s" % (op, n, r and r["events_ingested"])); bad = 1
    elif int(r["incidents"]) == 0 or not r["mtta_s"]:
        print("FAIL: %s has no incidents or no time to acknowledge" % op); bad = 1
    else:
        print("ok: %s: %s events, %s incidents, MTTA %s s" % (op, r["events_ingested"], r["incidents"], r["mtta_s"]))
sys.exit(bad)
PY
exit $fail
