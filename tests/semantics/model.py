#!/usr/bin/env python3
"""Reference model of design.md's rule semantics ("Rules" and "Incidents").

Written from the text of /work/shared/design.md, not from the C code, so that
tests/semantics/fuzz_semantics.py can compare `pasban-correlator --replay`
with an independent reading. Where design.md is silent, the model follows the
policy correlator/README.md documents ("Semantics (what design.md leaves open,
settled)"); each such point is marked README below.

Input: a rule set (the parsed JSON of a rules file) and a list of events (ECS
objects, nested as the collector writes them). Output: incidents as dicts, in
the order `--replay` must print them. The incident `id` is not modelled (the
README documents SHA-256 of "rule id, group key incl. operator, first_seen" but
not the byte layout); the fuzzer checks that it is a function of exactly those.

Only what the generator produces is supported: string fields, patterns that
Python's `re` reads the same way as PCRE2 (literals, classes, \\S \\d \\w, anchors,
(?<name>...) captures, alternation).
"""

import re
from datetime import datetime, timezone

SEVERITIES = ("info", "low", "medium", "high", "critical")
EVIDENCE_MAX = 5  # design.md: "up to 5 event.original"


# ---------------------------------------------------------------- helpers

def parse_duration(v):
    """Duration -> milliseconds. README: 500ms, 90s, 15m, 4h, 2d; a bare number is seconds."""
    if isinstance(v, (int, float)):
        return int(v * 1000)
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", v)
    if not m:
        raise ValueError("bad duration %r" % v)
    n = int(m.group(1))
    return n * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, None: 1000}[m.group(2)]


def parse_time(s):
    """RFC 3339 -> integer milliseconds since the epoch."""
    s = s.replace("Z", "+00:00")
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(round(dt.timestamp() * 1000))


def fmt_time(ms):
    """design.md: RFC 3339 UTC with milliseconds."""
    dt = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def get_field(event, name):
    """ECS dotted name in a nested event; also a literal dotted key (labels.x)."""
    if name in event and not isinstance(event[name], dict):
        return _as_str(event[name])
    cur = event
    parts = name.split(".")
    for i, p in enumerate(parts):
        if not isinstance(cur, dict):
            return None
        if p in cur:
            cur = cur[p]
            continue
        rest = ".".join(parts[i:])
        if rest in cur:
            cur = cur[rest]
            break
        return None
    if isinstance(cur, dict) or cur is None:
        return None
    return _as_str(cur)


def _as_str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else str(v)


def compile_pattern(p):
    # PCRE2 (?<name>...) is Python's (?P<name>...)
    return re.compile(re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", p))


# ---------------------------------------------------------------- rules

class Rule:
    def __init__(self, d, index):
        self.index = index
        self.id = d["id"]
        self.title = d.get("title", self.id)          # README default
        self.severity = d.get("severity", "medium")   # README default
        self.category = d.get("category", "other/undetermined")  # README default
        self.where = [(k, compile_pattern(v)) for k, v in d.get("where", {}).items()]
        self.unless = [(k, compile_pattern(v)) for k, v in d.get("unless", {}).items()]
        self.suppress = parse_duration(d["suppress"]) if "suppress" in d else 0
        self.by = list(d.get("by", []))
        self.kind = "single"
        if "threshold" in d:
            t = d["threshold"]
            self.kind = "threshold"
            self.count = int(t["count"])
            self.within = parse_duration(t["within"])
            self.distinct = t.get("distinct")
            self.by = list(t.get("by", self.by))   # README: top level or inside, not both
        elif "sequence" in d:
            self.kind = "sequence"
            self.within = parse_duration(d["within"])
            # README: a step takes where and unless; the rule's top-level ones apply to every step
            self.steps = [([(k, compile_pattern(v)) for k, v in s.get("where", {}).items()],
                           [(k, compile_pattern(v)) for k, v in s.get("unless", {}).items()])
                          for s in d["sequence"]]
        elif "absence" in d:
            a = d["absence"]
            self.kind = "absence"
            self.within = parse_duration(a["within"])
            self.by = list(a.get("by", self.by))


def match_where_unless(event, where, unless):
    """-> captures dict if every `where` pattern matches and no `unless` does, else None.

    design.md: named captures become event fields for by/unless/distinct.
    README: by/unless/distinct look up captures first (the last pattern's capture
    wins), then the event; an absent field makes a `where` fail and an `unless`
    not apply."""
    caps = {}
    for field, rx in where:
        v = get_field(event, field)
        if v is None:
            return None
        m = rx.search(v)
        if not m:
            return None
        for name, val in m.groupdict().items():
            if val is not None:
                caps[name] = val
    for field, rx in unless:
        v = caps[field] if field in caps else get_field(event, field)
        if v is not None and rx.search(v):
            return None
    return caps


def lookup(event, caps, name):
    return caps[name] if name in caps else get_field(event, name)


# ---------------------------------------------------------------- engine

class Ev:
    __slots__ = ("t", "seq", "original", "doc")

    def __init__(self, t, seq, original, doc):
        self.t, self.seq, self.original, self.doc = t, seq, original, doc


class Incident:
    def __init__(self, rule, org, group, first, last, detected, count, evidence, order):
        self.rule, self.org, self.group = rule, org, group
        self.first, self.last, self.detected = first, last, detected
        self.count, self.evidence, self.suppressed = count, evidence, 0
        self.order = order

    def to_dict(self):
        d = {"rule": {"id": self.rule.id, "title": self.rule.title},
             "severity": self.rule.severity, "category": self.rule.category}
        if self.org is not None:  # README: organization in the incident when known
            d["organization"] = {"id": self.org}
        d.update({"group": self.group, "first_seen": fmt_time(self.first),
                  "last_seen": fmt_time(self.last), "detected_at": fmt_time(self.detected),
                  "count": self.count, "suppressed": self.suppressed,
                  "evidence": self.evidence[:EVIDENCE_MAX], "status": "new"})
        return d


class Model:
    def __init__(self, rules_doc):
        self.rules = [Rule(d, i) for i, d in enumerate(rules_doc["rules"])]
        self.state = [dict() for _ in self.rules]   # per rule: group key -> state dict
        self.incidents = []
        self.watermark = None
        self.seq = 0

    # group: README — always per organization.id too; an absent `by` field still groups
    # (as "absent") and is left out of the group object.
    def group_of(self, rule, event, caps):
        org = get_field(event, "organization.id")
        vals, obj = [], {}
        for f in rule.by:
            v = lookup(event, caps, f)
            vals.append(v)
            if v is not None:
                obj[f] = v
        return (org, tuple(vals)), org, obj

    def raise_incident(self, rule, gstate, org, obj, first, last, detected, count, evidence):
        inc = Incident(rule, org, obj, first, last, detected, count, evidence, len(self.incidents))
        self.incidents.append(inc)
        gstate["last_inc"] = inc
        return inc

    def suppressed_now(self, rule, g, t):
        """design.md suppress: after an incident of a group at time t0, matching events of
        that group before t0 + suppress raise nothing, do not enter the window and are
        counted on that incident. README: t0 is the incident's detected_at."""
        inc = g.get("last_inc")
        # README (sweep-invariant state): suppression is over once the watermark has
        # passed t0 + suppress, also for a late event (t <= watermark, so this implies
        # the event's own time is before t0 + suppress)
        if rule.suppress and inc is not None and self.watermark < inc.detected + rule.suppress:
            inc.suppressed += 1
            return True
        return False

    def expire(self, rule, g, fields):
        """README (sweep-invariant state): a window or partial chain whose newest event is
        `within` behind the watermark starts afresh (in-order events could not use it)."""
        if g["newest"] is not None and g["newest"] + rule.within <= self.watermark:
            for f, v in fields.items():
                g[f] = v
            g["newest"] = None

    def feed(self, doc):
        ts = doc.get("@timestamp")
        if ts is None:
            return
        t = parse_time(ts)
        self.seq += 1
        ev = Ev(t, self.seq, get_field(doc, "event.original") or "", doc)
        # README absence: checked before the event is processed, by any event
        for rule, st in zip(self.rules, self.state):
            if rule.kind == "absence":
                self.absence_check(rule, st, t)
        self.watermark = t if self.watermark is None else max(self.watermark, t)
        for rule, st in zip(self.rules, self.state):
            getattr(self, "do_" + rule.kind)(rule, st, ev)

    # ---- single: every matching event raises; first_seen = last_seen = its time, count 1
    def do_single(self, rule, st, ev):
        caps = match_where_unless(ev.doc, rule.where, rule.unless)
        if caps is None:
            return
        key, org, obj = self.group_of(rule, ev.doc, caps)
        g = st.setdefault(key, {})
        if self.suppressed_now(rule, g, ev.t):
            return
        self.raise_incident(rule, g, org, obj, ev.t, ev.t, ev.t, 1, [ev.original])

    # ---- threshold
    def do_threshold(self, rule, st, ev):
        caps = match_where_unless(ev.doc, rule.where, rule.unless)
        if caps is None:
            return
        dval = None
        if rule.distinct is not None:
            dval = lookup(ev.doc, caps, rule.distinct)
            if dval is None:   # README: events without the distinct field are ignored
                return
        key, org, obj = self.group_of(rule, ev.doc, caps)
        g = st.setdefault(key, {"win": [], "newest": None})
        self.expire(rule, g, {"win": []})
        # design.md: every matching event of the group before t + suppress is counted as
        # suppressed -- a late one too, so suppression is checked first; then README's
        # late events: older than the group's newest by `within` or more -> dropped
        if self.suppressed_now(rule, g, ev.t):
            return
        if g["newest"] is not None and g["newest"] - ev.t >= rule.within:
            return
        g["newest"] = ev.t if g["newest"] is None else max(g["newest"], ev.t)
        win = g["win"]
        win.append((ev, dval))
        win.sort(key=lambda x: (x[0].t, x[0].seq))   # README: late events placed at their time
        # design.md: strictly newer than (event time - within); README: newest - within
        cut = g["newest"] - rule.within
        win[:] = [x for x in win if x[0].t > cut]
        if rule.distinct is None:
            reached = len(win) >= rule.count
        else:
            reached = len({d for _, d in win}) >= rule.count
        if reached:
            newest = win[-1][0].t
            # design.md: first_seen = oldest, last_seen = the new one (README: newest;
            # equal for in-order input), count = events in window; detected_at = triggering
            # event's time (README: the newest in the window)
            self.raise_incident(rule, g, org, obj, win[0][0].t, newest, newest, len(win),
                                [e.original for e, _ in win[:EVIDENCE_MAX]])
            win.clear()

    # ---- sequence
    def do_sequence(self, rule, st, ev):
        # which steps does the event match, with which captures (top-level where/unless too)
        hits = []
        for j, (sw, su) in enumerate(rule.steps):
            caps = match_where_unless(ev.doc, rule.where + sw, rule.unless + su)
            if caps is not None:
                hits.append((j, caps))
        if not hits:
            return
        by_group = {}
        for j, caps in hits:
            key, org, obj = self.group_of(rule, ev.doc, caps)
            by_group.setdefault(key, (org, obj, []))[2].append(j)
        n = len(rule.steps)
        for key, (org, obj, steps) in by_group.items():
            g = st.setdefault(key, {"chains": {}, "newest": None})
            self.expire(rule, g, {"chains": {}})
            # suppression first (as for threshold), then README's late drop, which
            # applies to sequences too
            if self.suppressed_now(rule, g, ev.t):
                continue
            if g["newest"] is not None and g["newest"] - ev.t >= rule.within:
                continue
            g["newest"] = ev.t if g["newest"] is None else max(g["newest"], ev.t)
            chains = g["chains"]          # prefix length k -> list of Ev (most recent start)
            old = dict(chains)
            done = None
            # README: one event advances each prefix at most once, never chains through
            # several steps (computed from the state before the event)
            for j in steps:
                if j == 0:
                    new = [ev]
                else:
                    prev = old.get(j)
                    if prev is None or not (ev.t - prev[0].t < rule.within):
                        continue
                    new = prev + [ev]
                if len(new) == n:
                    if done is None or new[0].t > done[0].t:
                        done = new
                    continue
                cur = chains.get(len(new))
                # README: for each prefix length the most recent start is kept
                if cur is None or new[0].t >= cur[0].t:
                    chains[len(new)] = new
            if done is not None:
                # first_seen = the first step's time (README); last_seen = detected_at = the
                # newest step's time (README late-event policy, as for threshold; design.md:
                # the triggering event's time, the same for in-order input)
                newest = max(e.t for e in done)
                # evidence: the steps' events; past 5 the first 4 and the completing one
                # (design.md says "up to 5"; which 5 is the C engine's documented choice)
                evs = done if n <= EVIDENCE_MAX else done[:EVIDENCE_MAX - 1] + [done[-1]]
                self.raise_incident(rule, g, org, obj, done[0].t, newest, newest, n,
                                    [e.original for e in evs])
                chains.clear()    # README: partial chains cleared at the incident

    # ---- absence
    def do_absence(self, rule, st, ev):
        caps = match_where_unless(ev.doc, rule.where, rule.unless)
        if caps is None:
            return
        # README: an event already silent as of the watermark is ignored
        if ev.t + rule.within <= self.watermark:
            return
        key, org, obj = self.group_of(rule, ev.doc, caps)
        g = st.setdefault(key, {"watch": None})
        w = g["watch"]
        if w is None:
            g["watch"] = {"first": ev.t, "last": ev.t, "last_ev": ev, "count": 1,
                          "org": org, "obj": obj}
        else:
            w["count"] += 1
            w["first"] = min(w["first"], ev.t)
            if ev.t >= w["last"]:
                w["last"], w["last_ev"] = ev.t, ev

    def absence_check(self, rule, st, t):
        # groups silent at the same event fire in the order of their last_seen, then of the
        # arrival of the event that set it (README is silent: the C engine's order, kept)
        order = sorted((g for g in st.values() if g.get("watch") is not None),
                       key=lambda g: (g["watch"]["last"], g["watch"]["last_ev"].seq))
        for g in order:
            w = g.get("watch")
            if w is None or t < w["last"] + rule.within:
                continue
            g["watch"] = None
            inc = g.get("last_inc")
            if rule.suppress and inc is not None and t < inc.detected + rule.suppress:
                inc.suppressed += 1   # README: a re-firing before t + suppress, counted 1
                continue
            self.raise_incident(rule, g, w["org"], w["obj"], w["first"], w["last"], t,
                                w["count"], [w["last_ev"].original])

    def output(self):
        """design.md: in event-time order; README: by detected_at, ties in raise order."""
        return [i.to_dict() for i in sorted(self.incidents, key=lambda i: (i.detected, i.order))]


def run(rules_doc, events):
    m = Model(rules_doc)
    for e in events:
        m.feed(e)
    return m.output()


if __name__ == "__main__":
    import json
    import sys
    rules = json.load(open(sys.argv[1]))
    evs = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
    for inc in run(rules, evs):
        print(json.dumps(inc))
