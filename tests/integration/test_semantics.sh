#!/usr/bin/env bash
# The rule semantics, differentially: --replay against tests/semantics/model.py on
# 300 seeded random cases (tests/semantics/test_semantics.sh). Needs no Kafka.
set -euo pipefail
exec bash "${PASBAN_SOURCE_DIR:-.}/tests/semantics/test_semantics.sh"
