#!/usr/bin/env bash
# Differential test of the rule semantics: pasban-correlator --replay against the
# reference model of design.md (tests/semantics/model.py) on seeded random rule
# files and event streams (fuzz_semantics.py). Needs no Kafka: --replay only.
#   PASBAN_SEMANTICS_CASES (default 300), PASBAN_SEMANTICS_SEED (default 1).
# A failing case is kept under $PASBAN_BUILD_DIR/semantics-failures (or /tmp) and
# reproduced with: fuzz_semantics.py --bin BIN --seed S --case K --keep DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
B="${PASBAN_BIN:-build/bin}/pasban-correlator"
[ -x "$B" ] || { echo "FAIL: no $B (build first)" >&2; exit 1; }
keep="${PASBAN_BUILD_DIR:-${TMPDIR:-/tmp}}/semantics-failures"
exec python3 "$here/fuzz_semantics.py" --bin "$B" \
  --cases "${PASBAN_SEMANTICS_CASES:-300}" --seed "${PASBAN_SEMANTICS_SEED:-1}" --keep "$keep"
