# col_lib.sh -- shared by the collector's integration tests (sourced, not run).
# Broker: $PASBAN_KAFKA_BROKERS (default 127.0.0.1:9092); binaries: $PASBAN_BIN.
set -euo pipefail
brokers=${PASBAN_KAFKA_BROKERS:-127.0.0.1:9092}
bin=${PASBAN_BIN:?run through ctest, or set PASBAN_BIN to build/bin}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
send="python3 $here/col_send.py"
kcat=$(command -v kcat || command -v kafkacat || true)
[[ -n $kcat ]] || { echo "$0: kcat is needed (package kcat)" >&2; exit 1; }
if ! timeout 15 "$kcat" -L -b "$brokers" -m 5 >/dev/null 2>&1; then
    echo "$0: no Kafka broker answers at $brokers; start one with scripts/kafka-local start" >&2
    exit 1
fi
work=$(mktemp -d /tmp/pasban-coltest.XXXXXX)
col_pid=
cleanup() {
    if [[ -n $col_pid ]] && kill -0 "$col_pid" 2>/dev/null; then kill -9 "$col_pid" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
topic=pasban.test.$(basename "$0" .sh).$$.$RANDOM
fails=0

# A free TCP/UDP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_collector LOGNAME ARGS...: runs the daemon in the background, waits for "started".
start_collector() {
    local log=$work/$1.log
    shift
    "$bin/pasban-collector" "$@" >"$log" 2>&1 &
    col_pid=$!
    for _ in $(seq 100); do
        grep -q "started:" "$log" && return 0
        kill -0 "$col_pid" 2>/dev/null || { cat "$log"; echo "collector did not start" >&2; exit 1; }
        sleep 0.1
    done
    cat "$log"
    echo "collector did not start" >&2
    exit 1
}

stop_collector() { # expects exit 0 after SIGTERM
    kill -TERM "$col_pid"
    local rc=0
    wait "$col_pid" || rc=$?
    col_pid=
    if ((rc != 0)); then
        echo "FAIL: collector exited $rc after SIGTERM" >&2
        fails=$((fails + 1))
    fi
}

# consume_until N FILE: read the topic into FILE until it has N lines (60 s at most).
consume_until() {
    local want=$1 out=$2
    for _ in $(seq 60); do
        timeout 30 "$kcat" -C -b "$brokers" -t "$topic" -e -q -f '%k\t%s\n' >"$out" 2>/dev/null || true
        (( $(wc -l <"$out") >= want )) && break
        sleep 1
    done
    sleep 1
    timeout 30 "$kcat" -C -b "$brokers" -t "$topic" -e -q -f '%k\t%s\n' >"$out" 2>/dev/null || true
}

metric() { # NAME_WITH_LABELS: value from /metrics (0 when absent)
    curl -s "http://$metrics/metrics" | awk -v m="$1" '$1 == m { print $2; f=1 } END { if (!f) print 0 }'
}

check() { # DESCRIPTION COMMAND...
    local d=$1
    shift
    if "$@"; then
        echo "ok: $d"
    else
        echo "FAIL: $d" >&2
        fails=$((fails + 1))
    fi
}
