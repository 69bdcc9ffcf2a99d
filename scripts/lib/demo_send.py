#!/usr/bin/env python3
"""Send the demo operators' sample logs to a running pasban-collector, as live traffic.

  demo_send.py udp|tcp HOST PORT SRC_ADDR FILE...   syslog from SRC_ADDR (a 127.0.0.x address,
                                                    which the collector maps to the operator)
  demo_send.py http URL TOKEN PARSED_JSONL          ECS objects (from --parse) as NDJSON batches

The sample logs are dated in November 2026. So that the demo's events are recent
(this month's KPIs, incidents detected now), every header timestamp is moved forward
by the same amount, so that the newest line is a minute old; the spacing and order
of lines stay as written, so windows and thresholds see what the files hold.
"""
import datetime as dt
import json
import re
import socket
import sys
import time
import urllib.request

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
# RFC 3164 headers, with Cisco's "seq: host: " prefix, an optional year and milliseconds.
BSD = re.compile(r"^(<\d+>(?:\d+: [^:]+: )?[*.]?)(%s) +(\d+)(?: (\d{4}))? (\d\d:\d\d:\d\d)"
                 % "|".join(MONTHS))
FORTI = re.compile(r"date=(\d{4})-(\d\d)-(\d\d) time=(\d\d:\d\d:\d\d)")


def header_time(line, year):
    """The header's time as a naive UTC datetime, or None when the line has none."""
    m = BSD.match(line)
    if m:
        hh, mm, ss = map(int, m.group(5).split(":"))
        return dt.datetime(int(m.group(4) or year), MONTHS.index(m.group(2)) + 1,
                           int(m.group(3)), hh, mm, ss)
    m = FORTI.search(line)
    if m:
        hh, mm, ss = map(int, m.group(4).split(":"))
        return dt.datetime(int(m.group(1)), int(m.group(2)), int(m.group(3)), hh, mm, ss)
    return None


def shifted(line, delta, year):
    def bsd(m):
        t = header_time(m.group(0), year) + delta
        yy = " %d" % t.year if m.group(4) else ""
        return "%s%s %2d%s %s" % (m.group(1), MONTHS[t.month - 1], t.day, yy, t.strftime("%H:%M:%S"))

    def forti(m):
        t = header_time(m.group(0), year) + delta
        return "date=%s time=%s" % (t.date().isoformat(), t.strftime("%H:%M:%S"))

    line = BSD.sub(bsd, line, count=1)
    return FORTI.sub(forti, line, count=1)


def load(files):
    lines = []
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            lines += [l.rstrip("\r\n") for l in fh if l.strip()]
    return lines


def shift(lines, year):
    """How far to move the sample forward so its newest line is a minute old."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    last = max((t for t in (header_time(l, year) for l in lines) if t), default=None)
    return dt.timedelta(0) if last is None else now - dt.timedelta(minutes=1) - last


def send_stream(proto, host, port, src, files):
    lines = load(files)
    year = 2026  # the year the sample logs were written in
    delta = shift(lines, year)
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    s.bind((src, 0))
    s.connect((host, port))
    for i, l in enumerate(lines):
        b = shifted(l, delta, year).encode()
        if proto == "udp":
            s.send(b)
            if i % 200 == 199:
                time.sleep(0.01)  # UDP has no backpressure: don't outrun the socket buffer
        else:
            s.sendall(b + b"\n")
    if proto == "tcp":
        s.shutdown(socket.SHUT_WR)
        s.settimeout(30)
        try:
            s.recv(1)  # the collector closes once it has read everything
        except socket.timeout:
            pass
    s.close()
    print("%d lines (%s from %s, times moved forward %s)" % (len(lines), proto, src, str(delta).split(".")[0]))


def send_http(url, token, parsed):
    # Objects as an operator's own SIEM would forward them: the ECS fields of each
    # line, without the fields the collector sets itself.
    raw = [json.loads(l) for l in open(parsed, encoding="utf-8")]
    lines = [e["event"]["original"] for e in raw]
    delta = shift(lines, 2026)
    objs = []
    for e, line in zip(raw, lines):
        t = dt.datetime.strptime(e["@timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
        e["@timestamp"] = (t + delta).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        for k in ("event", "organization", "observer"):
            e.pop(k, None)
        objs.append(e)
    sent = 0
    for i in range(0, len(objs), 200):
        body = "\n".join(json.dumps(o) for o in objs[i:i + 200]).encode()
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Authorization": "Bearer " + token, "Content-Type": "application/x-ndjson"})
        with urllib.request.urlopen(req, timeout=60) as r:
            if r.status != 200:
                sys.exit("HTTP %d from %s" % (r.status, url))
        sent += len(objs[i:i + 200])
    print("%d events (http, NDJSON, times moved forward %s)" % (sent, str(delta).split(".")[0]))


def main(a):
    if len(a) >= 5 and a[0] in ("udp", "tcp"):
        send_stream(a[0], a[1], int(a[2]), a[3], a[4:])
    elif len(a) == 4 and a[0] == "http":
        send_http(a[1], a[2], a[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
