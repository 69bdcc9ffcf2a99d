#!/usr/bin/env python3
"""Differential test: `pasban-correlator --replay` against tests/semantics/model.py.

Each case is a random rule file (design.md's format) and a random event stream
(Pasban event JSONL, or for some cases raw RFC 5424 lines through the parsers),
seeded so that a failing case is reproduced by its number. Times collide, land
exactly on `within` and `suppress` edges, and arrive out of order by less than
the smallest `within` (README: the documented tolerance for late events).

  fuzz_semantics.py --bin build/bin/pasban-correlator [--cases N] [--seed S]
                    [--case K] [--keep DIR] [-v]

Exit 0 when every case agrees, 1 otherwise (the first disagreements are printed,
with the case's files kept under --keep). Needs no Kafka.
"""

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model  # noqa: E402

BASE_MS = model.parse_time("2026-11-23T10:00:00.000Z")

SRCS = ["198.51.100.7", "203.0.113.9", "10.0.0.5", "192.0.2.33"]
USERS = ["root", "alice", "bob"]
PORTS = ["22", "80", "443", "3389", "8080", "5060"]
HOSTS = ["gw1", "fw1", "pe1", "bras2"]
ORGS = ["op-a", "op-b", None]
PROCS = ["sshd", "sshd", "login", "kernel"]
ZONES = ["core", "edge", None]

TEMPLATES = [
    "Failed login for {user} from {src} port {port}",
    "Failed login for {user} from {src} port {port}",
    "Accepted login for {user} from {src} port {port}",
    "Connection from {src} port {port}",
    "Connection closed by {src}",
    "noise {n}",
]

WHERE_MSG = [
    ("^Failed login for (?<user>\\S+) from (?<src>\\S+) port (?<port>\\d+)", {"user", "src", "port"}),
    ("^Accepted login for (?<user>\\S+) from (?<src>\\S+)", {"user", "src"}),
    ("from (?<src>\\S+) port (?<port>\\d+)$", {"src", "port"}),
    ("^(?:Failed|Accepted) login", set()),
    ("(?<src>\\d+\\.\\d+\\.\\d+\\.\\d+)", {"src"}),
    ("login for (?<user>[a-z]+)", {"user"}),
]
UNLESS = [
    {"src": "^10\\."},
    {"user": "^root$"},
    {"host.hostname": "^pe"},
    {"labels.zone": "^core$"},
]
DURS = [("1s", 1000), ("1500ms", 1500), ("2s", 2000), ("3s", 3000), ("5s", 5000)]


def gen_rules(rng):
    rules = []
    for i in range(rng.randint(1, 4)):
        rid = "F-%d" % i
        r = {"id": rid}
        if rng.random() < 0.9:
            r["title"] = "rule %d" % i
        if rng.random() < 0.9:
            r["severity"] = rng.choice(model.SEVERITIES)
        if rng.random() < 0.9:
            r["category"] = rng.choice(["intrusion-attempts/login-attempts", "other/other"])
        kind = rng.choices(["single", "threshold", "distinct", "sequence", "absence"],
                           [2, 3, 2, 2, 1.5])[0]
        pat, caps = rng.choice(WHERE_MSG)
        where = {"message": pat}
        if rng.random() < 0.3:
            where["process.name"] = "^sshd$"
        if rng.random() < 0.1:
            where["labels.zone"] = "e"
        caps = set(caps)
        if rng.random() < 0.1:
            # a capture from another field; with "src" it collides with the message's
            # (README: the last pattern's capture wins)
            name = rng.choice(["node", "src"])
            where["host.hostname"] = "^(?<%s>[a-z]+)" % name
            caps.add(name)
        fields = sorted(caps) + ["host.hostname", "labels.zone"]
        by = rng.sample(fields, rng.choice([0, 1, 1, 2]))
        within_s, _ = rng.choice(DURS)
        if kind != "sequence":
            r["where"] = where
        if rng.random() < 0.3:
            r["unless"] = rng.choice(UNLESS)
        if kind == "single":
            if by:
                r["by"] = by
        elif kind in ("threshold", "distinct"):
            t = {"count": rng.choice([1, 2, 2, 3, 3, 4, 6]), "within": within_s}
            if kind == "distinct":
                # the loader refuses a distinct field that is also in `by`
                t["distinct"] = rng.choice([f for f in ["port", "user", "src", "host.hostname"] if f not in by])
            if by:
                if rng.random() < 0.2:
                    r["by"] = by     # README: `by` may also be given at the top level
                else:
                    t["by"] = by
            if rng.random() < 0.1:
                t["within"] = {"1s": 1, "2s": 2, "3s": 3, "5s": 5}.get(within_s, 2)  # bare seconds
            r["threshold"] = t
        elif kind == "sequence":
            nsteps = rng.choice([2, 2, 3, 4, 6])
            steps = []
            for _ in range(nsteps):
                sp, _c = rng.choice(WHERE_MSG[:3] + WHERE_MSG[4:])
                steps.append({"where": {"message": sp}})
            if rng.random() < 0.2:
                steps[-1]["unless"] = rng.choice(UNLESS)
            if rng.random() < 0.3:
                r["where"] = {"process.name": "^(?:sshd|login)$"}
            r["sequence"] = steps
            r["within"] = within_s
            r["by"] = rng.choice([["src"], ["src"], ["host.hostname"], []])
        else:
            a = {"within": within_s}
            aby = rng.choice([["host.hostname"], ["src"], []])
            if rng.random() < 0.2:
                r["by"] = aby
            else:
                a["by"] = aby
            r["absence"] = a
        if rng.random() < 0.4:
            r["suppress"] = rng.choice(["1s", "2s", "4s", "10s"])
        rules.append(r)
    return {"rules": rules}


# Rules for real sshd / Linux auth logs (--real FILE: event JSONL from
# `pasban-collector --parse`), patterns that PCRE2 and Python read alike.
REAL_WHERE = [
    ("^Failed password for (?:invalid user )?(?<user>\\S+) from (?<src>[0-9.]+) port (?<port>\\d+)", {"user", "src", "port"}),
    ("^Invalid user (?<user>\\S*) from (?<src>[0-9.]+)", {"user", "src"}),
    ("^Received disconnect from (?<src>[0-9.]+)", {"src"}),
    ("authentication failure;.* rhost=(?<src>\\S+)", {"src"}),
    ("^Connection closed by (?<src>[0-9.]+)", {"src"}),
    ("session (?:opened|closed) for user (?<user>\\S+)", {"user"}),
    ("^(?:Accepted|Failed) password for (?<user>\\S+)", {"user"}),
    ("(?<src>\\d+\\.\\d+\\.\\d+\\.\\d+)", {"src"}),
    ("(?:error|fail)", set()),
]
REAL_DURS = ["10s", "1m", "2m", "10m", "1h"]


def gen_real_rules(rng):
    rules = []
    for i in range(rng.randint(1, 5)):
        r = {"id": "R-%d" % i, "title": "real %d" % i, "severity": rng.choice(model.SEVERITIES)}
        kind = rng.choices(["single", "threshold", "distinct", "sequence", "absence"], [1, 3, 2, 2, 1])[0]
        pat, caps = rng.choice(REAL_WHERE)
        where = {"message": pat}
        if rng.random() < 0.3:
            where["process.name"] = rng.choice(["^sshd", "^(?:su|sshd|ftpd)"])
        by = rng.sample(sorted(caps) + ["host.hostname", "process.name"], rng.choice([0, 1, 1, 2]))
        if rng.random() < 0.2:
            r["unless"] = rng.choice([{"user": "^root$"}, {"src": "^(?:10|192)\\."}, {"process.name": "^su$"}])
        if kind == "single":
            r["where"] = where
            if by:
                r["by"] = by
        elif kind in ("threshold", "distinct"):
            r["where"] = where
            t = {"count": rng.choice([2, 3, 5, 8, 20]), "within": rng.choice(REAL_DURS)}
            if kind == "distinct":
                opts = [f for f in ("user", "port", "src", "process.name") if f not in by]
                t["distinct"] = rng.choice(opts)
            if by:
                t["by"] = by
            r["threshold"] = t
        elif kind == "sequence":
            r["sequence"] = [{"where": {"message": rng.choice(REAL_WHERE[:5] + REAL_WHERE[7:8])[0]}}
                             for _ in range(rng.choice([2, 3, 5]))]
            r["within"] = rng.choice(REAL_DURS)
            r["by"] = rng.choice([["src"], ["src"], ["host.hostname"], []])
        else:
            r["where"] = where
            r["absence"] = {"within": rng.choice(["1m", "10m", "1h"]),
                            "by": rng.choice([["host.hostname"], ["src"], ["process.name"]])}
        if rng.random() < 0.4:
            r["suppress"] = rng.choice(["30s", "5m", "1h"])
        rules.append(r)
    return {"rules": rules}


def gen_events(rng, n, jitter_ms):
    """-> list of (time_ms, fields dict) in arrival order."""
    out = []
    newest = BASE_MS
    step_choices = [0, 0, 1, 250, 500, 500, 1000, 1000, 1500, 2000, 3000]
    for k in range(n):
        if out and rng.random() < 0.08 and jitter_ms > 0:
            t = newest - rng.randint(1, jitter_ms)   # late, within the tolerance
        else:
            t = newest + rng.choice(step_choices)
            if rng.random() < 0.02:
                t += rng.choice([5000, 10000])      # a silence
            newest = t
        f = {
            "host": rng.choice(HOSTS[: rng.choice([1, 2, 4])]),
            "proc": rng.choice(PROCS),
            "org": rng.choice(ORGS) if rng.random() < 0.5 else "op-a",
            "zone": rng.choice(ZONES),
            "msg": rng.choice(TEMPLATES).format(user=rng.choice(USERS), src=rng.choice(SRCS[: rng.choice([1, 2, 4])]),
                                                port=rng.choice(PORTS), n=k),
        }
        out.append((t, f))
    return out


def to_doc(t, f, k):
    ts = model.fmt_time(t)
    doc = {"@timestamp": ts,
           "event": {"kind": "event", "original": "%s %s %s: %s #%d" % (ts, f["host"], f["proc"], f["msg"], k)},
           "host": {"hostname": f["host"]}, "process": {"name": f["proc"]}, "message": f["msg"]}
    if f["zone"] is not None:
        doc["labels"] = {"zone": f["zone"]}
    if f["org"] is not None:
        doc["organization"] = {"id": f["org"]}
    return doc


RECEIVED_AT = "2026-11-23T12:00:00Z"   # --received-at: RFC 3164's year comes from it


def to_raw(t, f, k, dialect):
    """RFC 5424 or RFC 3164 line; -> (line, the event the model sees)."""
    msg = f["msg"]
    if dialect == "rfc3164":
        t -= t % 1000                      # RFC 3164 has whole seconds, no year, no zone
        ts = model.fmt_time(t)
        stamp = "Nov %2d %s" % (int(ts[8:10]), ts[11:19])
        tag = f["proc"] if f["proc"] == "kernel" else "%s[%d]" % (f["proc"], 1000 + k)
        line = "<38>%s %s %s: %s" % (stamp, f["host"], tag, msg)
    else:
        ts = model.fmt_time(t)
        line = "<38>1 %s %s %s %d - - %s" % (ts, f["host"], f["proc"], 1000 + k, msg)
    doc = {"@timestamp": ts, "event": {"kind": "event", "original": line},
           "host": {"hostname": f["host"]}, "process": {"name": f["proc"]}, "message": msg,
           "organization": {"id": "op-raw"}}
    return line, doc


def make_case(seed, case, real=None):
    rng = random.Random("%d/%d" % (seed, case))
    if real:
        path = rng.choice(real)
        with open(path) as f:
            lines = [x.rstrip("\n") for x in f if x.strip()]
        start = rng.randrange(len(lines))
        lines = lines[start:start + rng.choice([200, 1000, 2000])]
        return gen_real_rules(rng), lines, [json.loads(x) for x in lines], None
    rules = gen_rules(rng)
    raw = rng.choice(["rfc5424", "rfc3164"]) if rng.random() < 0.06 else None
    # a long stream in some cases: the engine frees expired groups every 1024 events
    n = rng.choice([10, 30, 60, 120, 120, 1500]) if rng.random() < 0.1 else rng.choice([10, 30, 60, 120])
    # late by less than the smallest `within` (README's tolerance), and in one case of
    # ten by more: the documented drops (threshold, sequence) and absence's watermark rule
    evs = gen_events(rng, n, rng.choice([0, 0, 400, 900, 400, 900, 400, 900, 400, 7000]))
    lines, docs = [], []
    for k, (t, f) in enumerate(evs):
        if raw:
            line, doc = to_raw(t, f, k, raw)
        else:
            doc = to_doc(t, f, k)
            line = json.dumps(doc)
        lines.append(line)
        docs.append(doc)
    return rules, lines, docs, raw


def norm_c(inc):
    d = dict(inc)
    d.pop("id", None)
    return d


def compare(exp, got):
    """-> None when equal, else a description of the first difference."""
    got_n = [norm_c(i) for i in got]
    for k in range(max(len(exp), len(got_n))):
        e = exp[k] if k < len(exp) else None
        g = got_n[k] if k < len(got_n) else None
        if e != g:
            if sorted(json.dumps(x, sort_keys=True) for x in exp) == sorted(json.dumps(x, sort_keys=True) for x in got_n):
                kind = "order only"
            else:
                kind = "content"
            if e is not None and g is not None:
                keys = sorted(set(e) | set(g))
                diff = {key: (e.get(key), g.get(key)) for key in keys if e.get(key) != g.get(key)}
            else:
                diff = None
            return "%s: incident %d (model %d, C %d): model=%s C=%s diff=%s" % (
                kind, k, len(exp), len(got_n), json.dumps(e), json.dumps(g), json.dumps(diff))
    return None


def check_ids(got):
    """README: id = hash of (rule id, group incl. operator, first_seen), with an ordinal
    for the 2nd, 3rd... incident of one such basis: 32 hex digits, never shared."""
    seen = {}
    for i in got:
        if not re.fullmatch(r"[0-9a-f]{32}", i.get("id", "")):
            return "bad id %r" % i.get("id")
        key = json.dumps([i["rule"]["id"], i.get("organization"), i["group"], i["first_seen"]], sort_keys=True)
        if i["id"] in seen:
            return "id %s shared by %s and %s" % (i["id"], seen[i["id"]], key)
        seen[i["id"]] = key
    return None


def run_case(binary, seed, case, keep=None, verbose=False, real=None):
    rules, lines, docs, raw = make_case(seed, case, real)
    exp = model.run(rules, docs)
    with tempfile.TemporaryDirectory(prefix="psbsem") as d:
        rp = os.path.join(d, "case.rules")
        ep = os.path.join(d, "events.log" if raw else "events.jsonl")
        with open(rp, "w") as f:
            json.dump(rules, f, indent=1)
        with open(ep, "w") as f:
            f.write("\n".join(lines) + "\n")
        cmd = [binary, "--replay", "--rules", rp]
        if case % 10 == 9:
            cmd.append("--no-prefilter")   # README: same output either way
        if raw:
            cmd += ["--operator", "op-raw", "--received-at", RECEIVED_AT]
        cmd.append(ep)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        err = None
        if p.returncode != 0 or "refused" in p.stderr:
            err = "exit %d: %s" % (p.returncode, p.stderr.strip()[:500])
        else:
            got = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
            err = compare(exp, got) or check_ids(got)
        if err and keep:
            dst = os.path.join(keep, "case-%d-%d" % (seed, case))
            os.makedirs(dst, exist_ok=True)
            for name in os.listdir(d):
                with open(os.path.join(d, name)) as src, open(os.path.join(dst, name), "w") as out:
                    out.write(src.read())
            with open(os.path.join(dst, "model.jsonl"), "w") as out:
                out.write("".join(json.dumps(x) + "\n" for x in exp))
            with open(os.path.join(dst, "c.jsonl"), "w") as out:
                out.write(p.stdout)
        if verbose:
            print("case %d: %d incidents%s" % (case, len(exp), (" -- " + err) if err else ""))
        return err, len(exp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--case", type=int, help="run only this case")
    ap.add_argument("--keep", help="directory for the files of failing cases")
    ap.add_argument("--max-fail", type=int, default=5)
    ap.add_argument("--real", action="append",
                    help="event JSONL of a real log (pasban-collector --parse); repeatable")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    cases = [a.case] if a.case is not None else range(a.cases)
    fails, total_inc, ran = 0, 0, 0
    for c in cases:
        err, n = run_case(a.bin, a.seed, c, a.keep, a.v, a.real)
        ran += 1
        total_inc += n
        if err:
            fails += 1
            print("seed %d case %d: %s" % (a.seed, c, err))
            if fails >= a.max_fail:
                break
    print("%d cases, %d incidents compared, %d disagreements (seed %d)" % (ran, total_inc, fails, a.seed))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
