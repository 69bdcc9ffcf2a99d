#!/usr/bin/env bash
# pasban-collector --parse as a user runs it: framing of mixed input, the flags of
# design.md's command line, determinism with --received, exit codes, --help.
# Needs no Kafka. PASBAN_BIN is set by ctest (build/bin when run by hand).
set -u
BIN="${PASBAN_BIN:-build/bin}/pasban-collector"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}
# expect NAME WANT GOT
expect() {
    if [ "$2" == "$3" ]; then ok; else bad "$1: want [$2], got [$3]"; fi
}

# Field FIELD (dotted) of every output line, one per line; "<absent>" when missing.
fields() {
    python3 -c '
import json, sys
path = sys.argv[1].split(".")
for n, line in enumerate(sys.stdin, 1):
    ev = json.loads(line)
    v = ev
    for p in path:
        v = v.get(p) if isinstance(v, dict) else None
    print("<absent>" if v is None else (v if isinstance(v, str) else json.dumps(v)))
' "$1"
}

RECV=2026-11-23T10:00:00Z
P=("$BIN" --parse --received "$RECV")

[ -x "$BIN" ] || { echo "FAIL: $BIN not built" >&2; exit 1; }

# --- every output line is one valid JSON object -------------------------------
printf 'Dec 10 06:55:46 gw1 sshd[24200]: Failed password for root from 203.0.113.5 port 22 ssh2\n' >"$T/auth.log"
"${P[@]}" "$T/auth.log" >"$T/out" 2>"$T/err"
expect "exit status of a clean run" 0 $?
expect "lines of one-line input" 1 "$(wc -l <"$T/out")"
expect "host.hostname" gw1 "$(fields host.hostname <"$T/out")"
expect "process.pid" 24200 "$(fields process.pid <"$T/out")"
expect "event.created is --received" "2026-11-23T10:00:00.000Z" "$(fields event.created <"$T/out")"
expect "RFC 3164 year inferred from --received" "2025-12-10T06:55:46.000Z" "$(fields @timestamp <"$T/out")"
expect "nothing on stderr" "" "$(cat "$T/err")"

# --- octet-counted and LF frames mixed, as on one TCP connection -------------
python3 - "$T/mixed" <<'EOF'
import sys
frames = []
def octet(m):
    b = m.encode()
    return str(len(b)).encode() + b" " + b
data = b"".join([
    octet("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
          '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
          "An application event log entry"),
    b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8\n",
    octet('{"message":"octet json","host":{"hostname":"h-oct"}}'),
    b"\n\n",
    b'{"message":"lf json with CR"}\r\n',
    octet("<13>1 - - - - - - multi\nline message"),
    b"last line without LF",
])
open(sys.argv[1], "wb").write(data)
EOF
"${P[@]}" "$T/mixed" >"$T/out"
expect "exit status, mixed framing" 0 $?
expect "events from mixed framing" 6 "$(wc -l <"$T/out")"
expect "originals from mixed framing" \
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event log entry
<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8
{\"message\":\"octet json\",\"host\":{\"hostname\":\"h-oct\"}}
{\"message\":\"lf json with CR\"}
<13>1 - - - - - - multi
line message
last line without LF" "$(fields event.original <"$T/out")"
expect "kinds from mixed framing" "event event event event event event" \
    "$(fields event.kind <"$T/out" | tr '\n' ' ' | sed 's/ $//')"
expect "SD param" 1011 "$(head -1 "$T/out" | fields log.syslog.structured_data.exampleSDID@32473.eventID)"
expect "hostnames" "mymachine.example.com mymachine h-oct <absent> <absent> <absent>" \
    "$(fields host.hostname <"$T/out" | tr '\n' ' ' | sed 's/ $//')"

# The same stream through stdin, with no FILE and with "-", in one read or many.
expect "stdin without FILE" "$(cat "$T/out")" "$("${P[@]}" <"$T/mixed")"
expect "stdin as -" "$(cat "$T/out")" "$("${P[@]}" - <"$T/mixed")"
expect "stdin through a slow pipe" "$(cat "$T/out")" \
    "$( (head -c 100 "$T/mixed"; sleep 0.2; tail -c +101 "$T/mixed") | "${P[@]}")"

# --- --received makes the output depend on the input only ---------------------
"${P[@]}" "$T/mixed" "$T/auth.log" >"$T/a"
sleep 1.1
"${P[@]}" "$T/mixed" "$T/auth.log" >"$T/b"
if cmp -s "$T/a" "$T/b"; then ok; else bad "two runs with --received differ"; fi
expect "event.created of every event" "2026-11-23T10:00:00.000Z" \
    "$(fields event.created <"$T/a" | sort -u)"
# Without --received the clock is used: event.created is now, not the fixed time.
now_year=$(date -u +%Y)
got=$("$BIN" --parse "$T/auth.log" | fields event.created)
case "$got" in "$now_year"-*) ok ;; *) bad "event.created without --received: $got" ;; esac

# --- --format --------------------------------------------------------------------
printf '{"message":"hello","custom":{"k":"v"}}\n' >"$T/one.json"
expect "--format json keeps the body" v "$("${P[@]}" --format json "$T/one.json" | fields custom.k)"
expect "auto detects JSON" v "$("${P[@]}" "$T/one.json" | fields custom.k)"
expect "--format rfc5424 on JSON: pipeline_error" pipeline_error \
    "$("${P[@]}" --format rfc5424 "$T/one.json" | fields event.kind)"
expect "--format rfc3164 does not read JSON" "<absent>" \
    "$("${P[@]}" --format rfc3164 "$T/one.json" | fields custom.k)"
expect "--format=json form" v "$("${P[@]}" --format=json "$T/one.json" | fields custom.k)"
expect "--format json on syslog: pipeline_error with the reason" \
    "pipeline_error json: invalid char in json text at byte 0" \
    "$("${P[@]}" --format json "$T/auth.log" | python3 -c '
import json,sys; e=json.loads(sys.stdin.readline()); print(e["event"]["kind"], e["error"]["message"])')"

# --- --operator, and a body cannot claim another operator -----------------------
printf '{"organization":{"id":"op-evil"},"message":"m"}\n{"organization.id":"op-evil2"}\n' >"$T/claim.json"
cat "$T/auth.log" >>"$T/claim.json"
expect "--operator on every event" "op-a op-a op-a" \
    "$("${P[@]}" --operator op-a "$T/claim.json" | fields organization.id | tr '\n' ' ' | sed 's/ $//')"
if "${P[@]}" --operator op-a "$T/claim.json" | grep -q '"id":"op-evil'; then
    bad "a JSON body's organization.id leaked into the output"
else ok; fi

# --- --tz shifts RFC 3164 times, which carry no zone --------------------------
expect "--tz +03:30" "2025-12-10T03:25:46.000Z" "$("${P[@]}" --tz +03:30 "$T/auth.log" | fields @timestamp)"

# --- framing errors: the given-up bytes become an event, later frames still come --
{
    printf '99999 this count is far above --max-message\n'
    printf 'after the bad count\n'
    head -c 300 /dev/zero | tr '\0' 'x'
    printf '\nafter the long line\n'
    printf '40 <13>1 - - - - - - truncated'
} >"$T/broken"
"${P[@]}" --max-message 100 "$T/broken" >"$T/out"
expect "exit status with framing errors" 0 $?
python3 - "$T/out" <<'EOF' || fail=$((fail + 1))
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1])]
orig = [e["event"]["original"] for e in evs]
errs = [e for e in evs if e["event"]["kind"] == "pipeline_error"]
problems = []
if "after the bad count" not in orig:
    problems.append("frame after a bad MSG-LEN lost")
if "after the long line" not in orig:
    problems.append("frame after an over-long line lost")
if not any("99999" in o for o in orig):
    problems.append("bytes of the bad MSG-LEN frame not kept")
if sum(o.count("x") for o in orig) < 300:
    problems.append("bytes of the over-long line lost")
if not errs or not all(e.get("error", {}).get("message") for e in errs):
    problems.append("framing errors without error.message")
if "truncated" not in orig[-1] or evs[-1]["event"]["kind"] != "pipeline_error":
    problems.append("truncated octet frame at EOF not kept as an error: %r" % orig[-1])
for p in problems:
    print("FAIL:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
[ $? -eq 0 ] && ok

# --- --max-message ----------------------------------------------------------------
printf '{"message":"%s"}\n' "$(head -c 200 /dev/zero | tr '\0' 'y')" >"$T/big.json"
expect "a message over --max-message is an error event" pipeline_error \
    "$("${P[@]}" --max-message 100 "$T/big.json" | fields event.kind | sed -n 1p)"
expect "the same message under the default limit" event "$("${P[@]}" "$T/big.json" | fields event.kind)"

# --- --stats -------------------------------------------------------------------------
"${P[@]}" --stats "$T/mixed" "$T/broken" >/dev/null 2>"$T/err"
grep -Eq '^pasban-collector: [0-9]+ lines, [1-9][0-9]* parse failures, [0-9]+ bytes, [0-9.]+ s elapsed, [0-9.]+ s CPU, [0-9]+ lines/s$' "$T/err" &&
    ok || bad "--stats line: $(cat "$T/err")"
expect "--stats counts lines" "$("${P[@]}" "$T/mixed" "$T/broken" | wc -l)" \
    "$(sed -E 's/^pasban-collector: ([0-9]+) lines.*/\1/' "$T/err")"

# --- exit codes --------------------------------------------------------------------------
"${P[@]}" "$T/no-such-file" "$T/auth.log" >"$T/out" 2>"$T/err"
expect "exit 1 when a file cannot be read" 1 $?
expect "the readable file is still converted" gw1 "$(fields host.hostname <"$T/out")"
grep -q "no-such-file" "$T/err" && ok || bad "no message naming the unreadable file"
"${P[@]}" "$T" >/dev/null 2>&1
expect "exit 1 for a directory" 1 $?

for args in "--bogus" "--format" "--format xml" "--max-message 0" "--max-message 70000" \
    "--max-message 12k" "--received yesterday" "--tz Mars" "--operator" "-x"; do
    # shellcheck disable=SC2086
    "$BIN" --parse "$T/auth.log" $args >"$T/out" 2>"$T/err" </dev/null
    expect "exit 2 for '$args'" 2 $?
    expect "no output for '$args'" "" "$(cat "$T/out")"
    grep -q "pasban-collector" "$T/err" && ok || bad "no message for '$args'"
done

# --- --help ------------------------------------------------------------------------------
"$BIN" --parse --help >"$T/help" 2>&1
expect "exit 0 for --help" 0 $?
for word in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES --parse --format --operator \
    --tz --max-message --received --stats --help --version auto rfc5424 rfc3164 json; do
    grep -q -- "$word" "$T/help" && ok || bad "--help does not mention $word"
done
for v in "--version" "--parse --version"; do
    # shellcheck disable=SC2086
    "$BIN" $v >"$T/out"
    expect "exit 0 for $v" 0 $?
    grep -q '^pasban-collector [0-9]' "$T/out" && ok || bad "$v: $(cat "$T/out")"
done

echo "test_parse_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
