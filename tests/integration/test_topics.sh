#!/usr/bin/env bash
# Integration test: the broker has the pasban.* topics of design.md with the
# partition counts scripts/kafka-local creates them with (scripts and the other
# programs rely on these names), and pasban.kpi and pasban.state are compacted. Broker: $PASBAN_KAFKA_BROKERS, default 127.0.0.1:9092.
set -euo pipefail
brokers=${PASBAN_KAFKA_BROKERS:-127.0.0.1:${PASBAN_KAFKA_PORT:-9092}}
kcat=$(command -v kcat || command -v kafkacat) || { echo "test_topics: kcat missing" >&2; exit 1; }

declare -A want=([pasban.events]=6 [pasban.incidents]=3 [pasban.incident-updates]=3
    [pasban.kpi]=1 [pasban.state]=6)
# One listing of all topics: a request naming a missing topic could auto-create it.
meta=$(timeout 20 "$kcat" -L -b "$brokers" -m 10 2>/dev/null || true)
fail=0
for t in "${!want[@]}"; do
    got=$(sed -n "s/^ *topic \"$t\" with \([0-9]*\) partitions:.*/\1/p" <<<"$meta")
    if [[ $got != "${want[$t]}" ]]; then
        echo "test_topics: $t has '${got:-no}' partitions at $brokers, expected ${want[$t]}" \
            "(scripts/kafka-local start creates it)" >&2
        fail=1
    else
        echo "ok   $t: $got partitions"
    fi
done
config=$("${PASBAN_BUILD_DIR:?run through ctest}/tests/kafka_topic_config" "$brokers" \
    pasban.kpi pasban.state pasban.events) || fail=1
for t in pasban.kpi pasban.state; do
    if grep -qx "$t cleanup.policy=compact" <<<"$config"; then
        echo "ok   $t: cleanup.policy=compact"
    else
        echo "test_topics: $t is not compacted: $(grep "^$t cleanup.policy=" <<<"$config")" >&2
        fail=1
    fi
done
if ! grep -qx "pasban.events cleanup.policy=delete" <<<"$config"; then
    echo "test_topics: pasban.events should keep the default cleanup.policy=delete" >&2
    fail=1
fi
exit "$fail"
