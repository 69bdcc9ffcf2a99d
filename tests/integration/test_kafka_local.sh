#!/usr/bin/env bash
# Integration test of scripts/kafka-local itself, on a private port so the
# shared broker is not disturbed (PASBAN_KL_TEST_PORT, default a free pair of
# ports in 22000-27999, below Linux's ephemeral range, so that two runs at once
# do not meet). Checks what a user relies on: start from an
# empty data directory without Maven (jars cached: no network), the topics,
# status exit codes, an idempotent start and stop, and a restart keeping data.
set -euo pipefail
src=${PASBAN_SOURCE_DIR:?run through ctest}
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=${PASBAN_KL_TEST_PORT:-}
while [[ -z $port ]]; do # the broker takes port and port+1
    port=$((22000 + RANDOM % 6000))
    if in_use "$port" || in_use $((port + 1)); then port=; fi
done
echo "     private broker on port $port"
kl() { PASBAN_KAFKA_PORT=$port "$src/scripts/kafka-local" "$@"; }
kcat=$(command -v kcat || command -v kafkacat)
work=$(mktemp -d /tmp/pasban-kltest.XXXXXX)
fails=0

cleanup() {
    kl stop >/dev/null 2>&1 || true
    kl reset >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

check() { # DESCRIPTION COMMAND...
    local d=$1
    shift
    if "$@"; then
        echo "ok   $d"
    else
        echo "FAIL $d" >&2
        fails=$((fails + 1))
    fi
}

# A Maven that fails: the jars are cached by the shared broker's first start
# (scripts/test starts it before ctest), so a start must not need Maven.
mkdir -p "$work/bin"
printf '#!/bin/sh\necho "mvn must not run" >&2\nexit 1\n' >"$work/bin/mvn"
chmod +x "$work/bin/mvn"

kl stop >/dev/null 2>&1 || true
kl reset >/dev/null
check "status of a stopped broker exits 1" bash -c "! PASBAN_KAFKA_PORT=$port '$src/scripts/kafka-local' status"

t0=$(date +%s%N)
check "start from an empty data directory, Maven unavailable" \
    bash -c "PATH='$work/bin':\$PATH PASBAN_KAFKA_PORT=$port '$src/scripts/kafka-local' start >'$work/start.log' 2>&1"
echo "     start took $((($(date +%s%N) - t0) / 1000000)) ms"
check "start prints the topics it created" grep -q "created pasban.state (6 partitions" "$work/start.log"
check "status of a running broker exits 0" kl status
check "second start says it is running and exits 0" \
    bash -c "PASBAN_KAFKA_PORT=$port '$src/scripts/kafka-local' start | grep -q 'already running'"
meta=$(timeout 20 "$kcat" -L -b "127.0.0.1:$port" -m 10 2>/dev/null || true)
check "the broker lists pasban.events with 6 partitions" \
    grep -q 'topic "pasban.events" with 6 partitions' <<<"$meta"

echo "kept" | "$kcat" -P -b "127.0.0.1:$port" -t pasban.events -k op-test -X log_level=3
check "stop exits 0" kl stop
check "nothing listens on the port after stop" \
    bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"
check "a second stop exits 0" kl stop
check "restart after a clean stop" bash -c "PASBAN_KAFKA_PORT=$port '$src/scripts/kafka-local' start >/dev/null"
got=$(timeout 30 "$kcat" -C -b "127.0.0.1:$port" -t pasban.events -e -q -f '%k=%s\n' \
    -X log_level=3 2>/dev/null || true)
check "the message produced before the restart is still there" grep -qx "op-test=kept" <<<"$got"

if ((fails)); then
    echo "$fails check(s) failed; start log:" >&2
    cat "$work/start.log" >&2
    cache=${PASBAN_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pasban}
    echo "first errors of the broker's log:" >&2
    grep -m 5 -A 4 -E 'ERROR|FATAL' "$cache/kafka-run-$port/kafka.log" >&2 || true
    exit 1
fi
echo "all checks passed"
