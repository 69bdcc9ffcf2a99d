#!/usr/bin/env bash
# pasban-correlator's command line as scripts and analysts use it: --help, usage
# errors, --check-rules, --match and --replay on a small hand-checked auth log.
# Needs no broker.
set -euo pipefail
B="${PASBAN_BIN:-build/bin}/pasban-correlator"
D="${PASBAN_SOURCE_DIR:-.}/tests/data"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --help documents every flag and the exit codes; --version; usage errors exit 2.
"$B" --help >"$T/help"
for f in --replay --match --check-rules --rules --kpi --stats --operator --received-at \
         --max-groups --max-window --match-limit --depth-limit --no-prefilter --version \
         --kafka --http --group --topic-in --topic-out --topic-updates --topic-kpi \
         --kpi-interval --web-root "-c FILE" "Exit status"; do
  grep -q -- "$f" "$T/help" || fail "--help does not mention $f"
done
"$B" --version | grep -q '^pasban-correlator [0-9]' || fail "--version"
for args in "--bogus" "--replay" "--replay --match --rules x" "--match --rules" "--kafka x" \
            "--check-rules $D/rules/ssh_small.rules extra.log" "--max-groups 0 --replay --rules x"; do
  rc=0; "$B" $args </dev/null >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "'$args' exited $rc, want 2"
done

# --check-rules: a good set passes with a summary, a broken one fails with file:line.
"$B" --check-rules "$D/rules/ssh_small.rules" >"$T/ok" || fail "check-rules on a good set"
grep -q '^4 rules in 1 files .* 6 tests, 0 failed' "$T/ok" || fail "summary: $(cat "$T/ok")"
rc=0; "$B" --check-rules "$D/rules/broken.rules" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] || fail "check-rules on a broken set exited $rc"
grep -q 'broken.rules:5: rule B-PATTERN: where message: bad pattern at offset 9' "$T/err" \
  || fail "pattern error: $(cat "$T/err")"
grep -q 'broken.rules:4: rule B-OK: test 1 expects match, got no-match' "$T/err" \
  || fail "test failure: $(cat "$T/err")"
# a directory of *.rules is loaded too (here with the broken file in it: exit 1)
rc=0; "$B" --check-rules "$D/rules" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "check-rules on the directory exited $rc"

# --match: one line of output per input line, rule ids in rule-set order.
"$B" --match --rules "$D/rules/ssh_small.rules" "$D/correlator/ssh_small.log" >"$T/match"
cat >"$T/match.want" <<'WANT'
{"line": 1, "rules": ["T-SSH-BF", "T-SSH-SEQ", "T-SILENT"]}
{"line": 2, "rules": ["T-SSH-BF", "T-SSH-SEQ", "T-SILENT"]}
{"line": 3, "rules": ["T-SSH-BF", "T-SSH-SEQ", "T-SILENT"]}
{"line": 4, "rules": ["T-SSH-SEQ", "T-SILENT"]}
{"line": 5, "rules": ["T-SSH-SEQ", "T-SSH-ROOT", "T-SILENT"]}
{"line": 6, "rules": ["T-SSH-BF", "T-SSH-SEQ", "T-SILENT"]}
{"line": 7, "rules": ["T-SILENT"]}
{"line": 8, "rules": []}
WANT
diff -u "$T/match.want" "$T/match" || fail "--match output"

# --replay: the incidents worked out by hand, in detected_at order.
run() { "$B" --replay --rules "$D/rules/ssh_small.rules" --received-at 2026-12-31T00:00:00Z \
          --operator op-x "$@"; }
run --kpi "$T/kpi.json" "$D/correlator/ssh_small.log" >"$T/inc1"
[ "$(wc -l <"$T/inc1")" -eq 4 ] || fail "want 4 incidents: $(cat "$T/inc1")"
python3 - "$T/inc1" "$T/kpi.json" <<'PY'
import json, sys
inc = [json.loads(l) for l in open(sys.argv[1])]
want = [
  ("T-SSH-BF", {"src": "203.0.113.5"}, "2026-12-10T06:55:46.000Z", "2026-12-10T06:55:55.000Z",
   "2026-12-10T06:55:55.000Z", 3, 1),
  ("T-SSH-SEQ", {"src": "203.0.113.5"}, "2026-12-10T06:55:55.000Z", "2026-12-10T06:56:20.000Z",
   "2026-12-10T06:56:20.000Z", 2, 0),
  ("T-SSH-ROOT", {"host.hostname": "gw1"}, "2026-12-10T06:56:20.000Z", "2026-12-10T06:56:20.000Z",
   "2026-12-10T06:56:20.000Z", 1, 0),
  ("T-SILENT", {"host.hostname": "gw1"}, "2026-12-10T06:55:46.000Z", "2026-12-10T06:57:00.000Z",
   "2026-12-10T07:20:00.000Z", 6, 0),
]
for got, (rid, group, first, last, det, count, supp) in zip(inc, want):
    assert got["rule"]["id"] == rid, got
    assert got["group"] == group, got
    assert (got["first_seen"], got["last_seen"], got["detected_at"]) == (first, last, det), got
    assert (got["count"], got["suppressed"]) == (count, supp), got
    assert got["organization"] == {"id": "op-x"} and got["status"] == "new", got
    assert 1 <= len(got["evidence"]) <= 5 and len(got["id"]) == 32, got
assert inc[0]["evidence"][0].startswith("Dec 10 06:55:46 gw1 sshd[100]: Failed password"), inc[0]
# The KPI report of the replayed month, worked out from the incidents above:
# MTTD = (9 + 25 + 0 + 1454) / 4 = 372 s; nobody acknowledged anything.
k = json.load(open(sys.argv[2]))
assert k["kpi_report_version"] == 2 and len(k["months"]) == 1, k
assert k["months"][0]["period"] == "2026-12", k
r = k["months"][0]["records"][0]
assert r["operator"] == "op-x", r
v = r["kpi"]
assert v["events_ingested"] == 7 and v["parse_failures"] == 0, v
assert v["incidents"] == 4 and v["incidents_critical"] == 1 and v["open_incidents"] == 4, v
assert (v["incidents_high"], v["incidents_medium"], v["incidents_low"]) == (1, 1, 1), v
assert v["mttd_s"] == 372.0 and v["mtta_s"] is None and v["mttr_s"] is None, v
assert v["coverage_pct"] is None, v  # no designated sources without -c
PY
# the same replay twice gives the same report, byte for byte
run --kpi "$T/kpi2.json" "$D/correlator/ssh_small.log" >/dev/null
cmp "$T/kpi.json" "$T/kpi2.json" || fail "two KPI reports differ"
# -c FILE configures the KPIs: designated sources (gw1 sent, fw9 never did) and a target
cat >"$T/kpi.conf" <<'CONF'
// the correlator's config file; only its "kpi" section matters to --replay
{"kpi": {"operators": {"op-x": {"sources": ["gw1", "fw9"], "targets": {"mttd_s": "<= 300"}}}}}
CONF
run -c "$T/kpi.conf" --kpi "$T/kpi3.json" "$D/correlator/ssh_small.log" >/dev/null
python3 - "$T/kpi3.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["months"][0]["records"][0]
v = r["kpi"]
assert (v["sources_designated"], v["sources_reporting"], v["coverage_pct"]) == (2, 1, 50.0), v
t = r["targets"]["mttd_s"]
assert t["actual"] == 372.0 and t["met"] is False, t
PY
# a config with an unknown key is refused with file:line
printf '{\n  "kpi": {},\n  "colour": "blue"\n}\n' >"$T/bad.conf"
rc=0; run -c "$T/bad.conf" --kpi "$T/x.json" "$D/correlator/ssh_small.log" >/dev/null 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] || fail "bad config exited $rc"
grep -q 'bad.conf:3: unknown key colour' "$T/err" || fail "bad config: $(cat "$T/err")"
# the shipped example config is valid as a whole (cor_config checks every section)
run -c "${PASBAN_SOURCE_DIR:-.}/correlator/pasban-correlator.conf" --kpi "$T/kpi4.json" \
  "$D/correlator/ssh_small.log" >/dev/null || fail "the example config is refused"
# -c belongs to the daemon and --replay; a daemon config that is missing exits 1
rc=0; "$B" -c "$T/kpi.conf" --match --rules "$D/rules/ssh_small.rules" </dev/null >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "-c with --match exited $rc"
rc=0; "$B" -c "$T/kpi.conf" --replay --rules "$D/rules/ssh_small.rules" </dev/null >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "-c with --replay but no --kpi (it would be ignored) exited $rc"
rc=0; "$B" -c "$T/missing.conf" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "-c with a missing file exited $rc"
# byte-identical on a second run, with CRLF line ends, through stdin, without the prefilter
run "$D/correlator/ssh_small.log" >"$T/inc2"
cmp "$T/inc1" "$T/inc2" || fail "two replays differ"
sed 's/$/\r/' "$D/correlator/ssh_small.log" >"$T/crlf.log"
run "$T/crlf.log" | cmp - "$T/inc1" || fail "CRLF input changes the incidents"
run <"$D/correlator/ssh_small.log" | cmp - "$T/inc1" || fail "stdin input changes the incidents"
run --no-prefilter "$D/correlator/ssh_small.log" | cmp - "$T/inc1" || fail "prefilter changes results"

# --stats goes to stderr and names every rule; an unreadable input exits 1.
run --stats "$D/correlator/ssh_small.log" 2>"$T/stats" >/dev/null
grep -q '^T-SSH-BF  *threshold  *5 *4 *1 *1 ' "$T/stats" || fail "stats: $(cat "$T/stats")"
rc=0; run "$T/missing.log" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "missing input exited $rc"
echo "test_correlator: ok"
