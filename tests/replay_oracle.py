#!/usr/bin/env python3
"""An independent oracle for `pasban-correlator --replay`.

Written from design.md ("Rules", "Incidents") and correlator/README.md
("Semantics"), not from the C code, and not sharing code with
tests/semantics/model.py: two readings of the contract that must agree.

    replay_oracle.py RULES EVENTS.jsonl            # expected incidents, JSONL
    replay_oracle.py --compare RULES EVENTS.jsonl ACTUAL.jsonl
    replay_oracle.py --summary INCIDENTS.jsonl     # one line each (edges/*.expect)
    --per-group-time: design.md read alone (no watermark: a late event is judged
    against its own group only); not what the correlator implements, for reports

RULES is a rule file or a directory of *.rules. Events are Pasban event JSON
(from `pasban-collector --parse`), so parsing is not what is checked here.
Patterns are translated to Python's `re` (bytes, no UTF mode); rules that use
PCRE2-only syntax are refused with a message, not silently misread.
"""
import datetime as dt
import json
import os
import re
import sys

# --- input -----------------------------------------------------------------

def strip_comments(text):
    """JSON with // and /* */ comments (yajl allow_comments) -> JSON."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return ''.join(out)


UNITS = {'ms': 1, 's': 1000, 'm': 60000, 'h': 3600000, 'd': 86400000}


def duration_ms(v):
    if isinstance(v, (int, float)):
        return int(v * 1000)
    m = re.fullmatch(r'(\d+)(ms|s|m|h|d)?', v.strip())
    if not m:
        raise ValueError('bad duration %r' % v)
    return int(m.group(1)) * UNITS[m.group(2) or 's']


def compile_pattern(p):
    # PCRE2 (?<name>...) -> Python (?P<name>...); lookbehinds stay.
    py = re.sub(r'\(\?<([A-Za-z_][A-Za-z0-9_]*)>', r'(?P<\1>', p)
    return re.compile(py.encode('utf-8'))


def compile_where(where):
    return [(field, compile_pattern(p)) for field, p in (where or {}).items()]


def load_rules(path):
    files = sorted(os.path.join(path, f) for f in os.listdir(path)
                   if f.endswith('.rules')) if os.path.isdir(path) else [path]
    rules, seen = [], set()
    for f in files:
        with open(f, encoding='utf-8') as fh:
            doc = json.loads(strip_comments(fh.read()))
        for r in doc['rules']:
            if r['id'] in seen:
                continue
            seen.add(r['id'])
            rules.append(make_rule(r))
    return rules


def make_rule(r):
    rule = {'id': r['id'], 'title': r.get('title', r['id']),
            'severity': r.get('severity', 'medium'),
            'category': r.get('category', 'other/undetermined'),
            'where': compile_where(r.get('where')),
            'unless': compile_where(r.get('unless')),
            'suppress': duration_ms(r['suppress']) if 'suppress' in r else 0,
            'by': list(r.get('by', []))}
    if 'threshold' in r:
        th = r['threshold']
        rule['kind'] = 'threshold'
        rule['count'] = int(th['count'])
        rule['within'] = duration_ms(th['within'])
        rule['distinct'] = th.get('distinct')
        rule['by'] = list(th.get('by', rule['by']))
    elif 'sequence' in r:
        rule['kind'] = 'sequence'
        rule['within'] = duration_ms(r['within'])
        rule['steps'] = [(compile_where(s.get('where')), compile_where(s.get('unless')))
                         for s in r['sequence']]
    elif 'absence' in r:
        rule['kind'] = 'absence'
        rule['within'] = duration_ms(r['absence']['within'])
        rule['by'] = list(r['absence'].get('by', rule['by']))
    else:
        rule['kind'] = 'single'
    return rule


def parse_time(s):
    t = dt.datetime.strptime(s, '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=dt.timezone.utc)
    return int(round(t.timestamp() * 1000))


def fmt_time(ms):
    t = dt.datetime.fromtimestamp(ms // 1000, dt.timezone.utc)
    return t.strftime('%Y-%m-%dT%H:%M:%S') + '.%03dZ' % (ms % 1000)


def field(ev, path):
    """An ECS dotted path in the nested event; strings as bytes, numbers as text."""
    cur = ev
    if path in ev:
        cur = ev[path]
    else:
        for part in path.split('.'):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
    if isinstance(cur, bool):
        return b'true' if cur else b'false'
    if isinstance(cur, (int, float)):
        return str(cur).encode()
    if isinstance(cur, str):
        return cur.encode('utf-8')
    return None


def match_where(ev, where, unless, caps):
    """All `where` patterns match (captures added, later ones win); no `unless` does."""
    for f, rx in where:
        v = field(ev, f)
        if v is None:
            return False
        m = rx.search(v)
        if not m:
            return False
        for name, val in m.groupdict().items():
            if val is not None:
                caps[name] = val
    for f, rx in unless:
        v = caps.get(f, field(ev, f))
        if v is not None and rx.search(v):
            return False
    return True


def group_of(rule, ev, caps):
    org = (ev.get('organization') or {}).get('id')
    vals = []
    for f in rule['by']:
        v = caps.get(f, field(ev, f))
        vals.append(None if v is None else v.decode('utf-8', 'replace'))
    return (org,) + tuple(vals)


# --- the engine ------------------------------------------------------------

class Oracle:
    def __init__(self, rules, per_group=False):
        self.rules = rules
        # per_group: design.md read alone, every group on its own event time; the
        # default is correlator/README.md's policy (a window, chain or suppression
        # the watermark has passed is over for late events too)
        self.per_group = per_group
        self.state = [dict() for _ in rules]
        self.out = []          # (detected_at, raise order, incident dict)
        self.wm = None

    def incident(self, rule, key, first, last, det, count, evidence):
        g = {f: v for f, v in zip(rule['by'], key[1:]) if v is not None}
        inc = {'rule': {'id': rule['id'], 'title': rule['title']},
               'severity': rule['severity'], 'category': rule['category']}
        if key[0] is not None:
            inc['organization'] = {'id': key[0]}
        inc.update({'group': g, 'first_seen': first, 'last_seen': last,
                    'detected_at': det, 'count': count, 'suppressed': 0,
                    'evidence': list(evidence), 'status': 'new'})
        self.out.append((det, len(self.out), inc))
        return inc

    def now(self, t):
        return t if self.per_group else max(t, self.wm)

    def suppressed(self, rule, st, t):
        """Under suppression: counted on the incident, nothing else happens."""
        if st.get('inc') is not None and rule['suppress'] and \
                self.now(t) < st['until']:
            st['inc']['suppressed'] += 1
            return True
        return False

    def fired(self, rule, st, inc):
        st['inc'] = inc
        st['until'] = inc['_det'] + rule['suppress']

    def feed(self, ev):
        if (ev.get('event') or {}).get('kind') == 'pipeline_error' or '@timestamp' not in ev:
            return
        t = parse_time(ev['@timestamp'])
        orig = (ev.get('event') or {}).get('original', '')
        # absence: checked before the event is processed, by its time
        for ri, rule in enumerate(self.rules):
            if rule['kind'] == 'absence':
                self.check_absence(rule, self.state[ri], t)
        self.wm = t if self.wm is None else max(self.wm, t)
        for ri, rule in enumerate(self.rules):
            getattr(self, 'on_' + rule['kind'])(rule, self.state[ri], ev, t, orig)

    def raise_(self, rule, st, key, first, last, det, count, evidence):
        inc = self.incident(rule, key, fmt_time(first), fmt_time(last), fmt_time(det),
                            count, evidence)
        inc['_det'] = det
        return inc

    # single: every matching event, group = top-level by
    def on_single(self, rule, groups, ev, t, orig):
        caps = {}
        if not match_where(ev, rule['where'], rule['unless'], caps):
            return
        key = group_of(rule, ev, caps)
        st = groups.setdefault(key, {})
        if self.suppressed(rule, st, t):
            return
        inc = self.raise_(rule, st, key, t, t, t, 1, [orig])
        self.fired(rule, st, inc)

    # threshold: count (or distinct values) within `within`, window from the newest
    def on_threshold(self, rule, groups, ev, t, orig):
        caps = {}
        if not match_where(ev, rule['where'], rule['unless'], caps):
            return
        dv = None
        if rule['distinct']:
            dv = caps.get(rule['distinct'], field(ev, rule['distinct']))
            if dv is None:
                return
        key = group_of(rule, ev, caps)
        st = groups.setdefault(key, {'win': [], 'newest': None})
        w = rule['within']
        if self.suppressed(rule, st, t):
            return
        # a window the watermark has passed is over, late events included
        if st['newest'] is not None and st['newest'] + w <= self.now(t):
            st['win'], st['newest'] = [], None
        if st['newest'] is not None and t <= st['newest'] - w:
            return                                  # late past the window: dropped
        st['win'].append((t, len(st['win']), orig, dv))
        st['newest'] = t if st['newest'] is None else max(st['newest'], t)
        st['win'] = [e for e in st['win'] if e[0] > st['newest'] - w]
        st['win'].sort(key=lambda e: (e[0], e[1]))
        st['win'] = [(e[0], i, e[2], e[3]) for i, e in enumerate(st['win'])]
        n = len({e[3] for e in st['win']}) if rule['distinct'] else len(st['win'])
        if n >= rule['count']:
            win = st['win']
            inc = self.raise_(rule, st, key, win[0][0], st['newest'], st['newest'],
                              len(win), [e[2] for e in win[:5]])
            self.fired(rule, st, inc)
            st['win'] = []

    # sequence: steps in arrival order, most recent start kept per prefix
    def on_sequence(self, rule, groups, ev, t, orig):
        steps = rule['steps']
        hits, key = [], None
        for i, (where, unless) in enumerate(steps):
            caps = {}
            if match_where(ev, rule['where'] + where, rule['unless'] + unless, caps):
                k = group_of(rule, ev, caps)
                hits.append((i, k))
        if not hits:
            return
        w = rule['within']
        done = set()
        for key in dict.fromkeys(k for _, k in hits):
            st = groups.setdefault(key, {'pre': [None] * (len(steps) - 1)})
            if self.suppressed(rule, st, t):
                continue
            mine = [i for i, k in hits if k == key]
            old = list(st['pre'])
            new = list(old)
            completed = None
            for i in mine:
                if i == 0:
                    if len(steps) == 1:
                        completed = (t, t, [orig])
                        continue
                    cand = (t, t, [orig])
                else:
                    p = old[i - 1]
                    if p is None or max(p[1], t) - p[0] >= w or p[0] + w <= self.now(t):
                        continue
                    cand = (p[0], max(p[1], t), p[2] + [orig])
                    if i == len(steps) - 1:
                        completed = cand
                        continue
                cur = new[i]
                if cur is None or cand[0] >= cur[0]:
                    new[i] = cand
            if completed is not None:
                t0, tmax, evs = completed
                evidence = evs if len(evs) <= 5 else evs[:4] + [evs[-1]]
                inc = self.raise_(rule, st, key, t0, tmax, tmax, len(steps), evidence)
                self.fired(rule, st, inc)
                st['pre'] = [None] * (len(steps) - 1)
            else:
                st['pre'] = new
            done.add(key)

    # absence: a watched group silent for `within` fires once, before the next event
    def check_absence(self, rule, groups, t):
        for key, st in groups.items():
            if st.get('last') is None or t < st['last'] + rule['within']:
                continue
            if self.suppressed(rule, st, t):
                pass
            else:
                inc = self.raise_(rule, st, key, st['first'], st['last'], t,
                                  st['count'], [st['orig']])
                self.fired(rule, st, inc)
            st['last'] = None

    def on_absence(self, rule, groups, ev, t, orig):
        caps = {}
        if not match_where(ev, rule['where'], rule['unless'], caps):
            return
        if t + rule['within'] <= self.now(t):
            return                                  # already silent as of the watermark
        key = group_of(rule, ev, caps)
        st = groups.setdefault(key, {'last': None})
        if st['last'] is None:
            st.update(first=t, last=t, count=1, orig=orig)
        else:
            st['first'] = min(st['first'], t)
            st['count'] += 1
            if t >= st['last']:
                st['last'], st['orig'] = t, orig

    def result(self):
        out = sorted(self.out, key=lambda x: (x[0], x[1]))
        res = []
        for _, _, inc in out:
            inc = dict(inc)
            inc.pop('_det', None)
            res.append(inc)
        return res


def run(rules_path, events_path, per_group=False):
    o = Oracle(load_rules(rules_path), per_group)
    with open(events_path, encoding='utf-8') as fh:
        for line in fh:
            line = line.strip()
            if line:
                o.feed(json.loads(line))
    return o.result()


# --- comparison ------------------------------------------------------------

def canon(incs):
    """Order kept, except among incidents of one rule at one detected_at
    (several groups of one rule raised by one event: their order is not a contract)."""
    out, run_ = [], []
    for inc in incs:
        k = (inc['detected_at'], inc['rule']['id'])
        if run_ and (run_[0]['detected_at'], run_[0]['rule']['id']) != k:
            out += sorted(run_, key=lambda x: json.dumps(x, sort_keys=True))
            run_ = []
        run_.append(inc)
    return out + sorted(run_, key=lambda x: json.dumps(x, sort_keys=True))


def compare(expected, actual_path):
    actual, problems = [], []
    with open(actual_path, encoding='utf-8') as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                actual.append(json.loads(line))
    ids = {}
    for inc in actual:
        i = inc.pop('id', '')
        if not re.fullmatch(r'[0-9a-f]{32}', i):
            problems.append('bad id %r' % i)
        if i in ids:
            problems.append('id %s given twice' % i)
        ids[i] = 1
    for a, b in zip(actual, actual[1:]):
        if b['detected_at'] < a['detected_at']:
            problems.append('not in detected_at order: %s after %s' %
                            (b['detected_at'], a['detected_at']))
    e, a = canon(expected), canon(actual)
    ej = [json.dumps(x, sort_keys=True) for x in e]
    aj = [json.dumps(x, sort_keys=True) for x in a]
    rest = list(aj)
    for x in ej:
        if x in rest:
            rest.remove(x)
        else:
            problems.append('the oracle has, the correlator not:\n  %s' % x)
    problems += ['the correlator has, the oracle not:\n  %s' % x for x in rest]
    if not problems and ej != aj:
        n = next(i for i, (x, y) in enumerate(zip(ej, aj)) if x != y)
        problems.append('same incidents, other order; at %d the oracle has\n  %s\n'
                        'the correlator\n  %s' % (n + 1, ej[n], aj[n]))
    del problems[12:]
    return len(e), len(a), problems


def summary(path):
    """One line per incident, for the hand-checked edges/*.expect files."""
    out = []
    with open(path, encoding='utf-8') as fh:
        for line in fh:
            if line.strip():
                i = json.loads(line)
                out.append('%s %s %s %s %s %s count=%d suppressed=%d evidence=%d' % (
                    i['rule']['id'], (i.get('organization') or {}).get('id', '-'),
                    json.dumps(i['group'], sort_keys=True, separators=(',', ':')),
                    i['first_seen'], i['last_seen'], i['detected_at'], i['count'],
                    i['suppressed'], len(i['evidence'])))
    return out


def main(argv):
    per_group = '--per-group-time' in argv
    argv = [a for a in argv if a != '--per-group-time']
    if len(argv) == 3 and argv[1] == '--summary':
        for line in summary(argv[2]):
            print(line)
        return 0
    if len(argv) >= 4 and argv[1] == '--compare':
        exp = run(argv[2], argv[3], per_group)
        ne, na, problems = compare(exp, argv[4])
        for p in problems:
            print(p, file=sys.stderr)
        print('%s: oracle %d incidents, correlator %d: %s' %
              (os.path.basename(argv[3]), ne, na, 'DIFFER' if problems else 'same'))
        return 1 if problems else 0
    if len(argv) == 3:
        for inc in run(argv[1], argv[2], per_group):
            print(json.dumps(inc, separators=(',', ':')))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
