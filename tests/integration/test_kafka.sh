#!/usr/bin/env bash
# Integration test: Debian's librdkafka against the broker of scripts/kafka-local
# (produce lz4/zstd, idempotence, consumer groups, transactions, a 2 x 10 000
# message round trip). Broker: $PASBAN_KAFKA_BROKERS, default 127.0.0.1:9092.
set -euo pipefail
brokers=${PASBAN_KAFKA_BROKERS:-127.0.0.1:${PASBAN_KAFKA_PORT:-9092}}
bin=${PASBAN_BUILD_DIR:?run through ctest}/tests/kafka_compat
kcat=$(command -v kcat || command -v kafkacat || true)

if [[ -n $kcat ]] && ! timeout 15 "$kcat" -L -b "$brokers" -m 5 >/dev/null 2>&1; then
    echo "test_kafka: no Kafka broker answers at $brokers." >&2
    echo "test_kafka: start one with: scripts/kafka-local start (or scripts/test does it)" >&2
    exit 1
fi
exec "$bin" "$brokers" "${PASBAN_KAFKA_COMPAT_COUNT:-10000}"
