#!/usr/bin/env python3
"""Load and checks for the collector's integration tests.

  col_send.py tcp HOST PORT PREFIX COUNT [--src ADDR] [--chunk]   both framings, mixed
  col_send.py udp HOST PORT PREFIX COUNT [--src ADDR]
  col_send.py http URL TOKEN PREFIX COUNT [--batch N] [--claim OP]  -> prints HTTP codes
  col_send.py check FILE EXPECT_SPEC...   FILE = kcat output "key<TAB>json" lines;
        EXPECT_SPEC = PREFIX:COUNT:OPERATOR ; every message PREFIX-i (i < COUNT) must be
        there exactly once with that key and organization.id; exit 1 otherwise.

Messages are RFC 3164 or RFC 5424 lines whose MSG is "PREFIX-i".
"""
import json
import random
import socket
import sys
import time
import urllib.request
import urllib.error


def msg(prefix, i):
    if i % 3 == 0:
        return "<134>1 2026-11-23T10:00:00.000Z gw%d app %d ID1 - %s-%d" % (i % 7, i, prefix, i)
    return "<13>Nov 23 10:00:00 gw%d sshd[%d]: %s-%d" % (i % 7, i, prefix, i)


def frame(m, i):
    b = m.encode()
    if i % 2 == 0:
        return b"%d %s" % (len(b), b)   # RFC 6587 octet counting
    return b + b"\n"                    # LF


def opt(args, name, default=None):
    if name in args:
        return args[args.index(name) + 1]
    return default


def cmd_tcp(args):
    host, port, prefix, count = args[0], int(args[1]), args[2], int(args[3])
    src = opt(args, "--src")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    s.connect((host, port))
    rnd = random.Random(count)
    rate = float(opt(args, "--rate", "0"))
    flush_at = 65536 if not rate else max(1, int(rate / 20)) * 100
    t0 = time.time()
    buf = bytearray()
    for i in range(count):
        buf += frame(msg(prefix, i), i)
        if rate and i % max(1, int(rate / 20)) == 0:
            ahead = i / rate - (time.time() - t0)
            if ahead > 0:
                time.sleep(ahead)
        if len(buf) > flush_at or i == count - 1:
            if "--chunk" in args:
                # Odd-sized writes so frames straddle reads.
                off = 0
                while off < len(buf):
                    n = rnd.randint(1, 700)
                    s.sendall(bytes(buf[off:off + n]))
                    off += n
            else:
                s.sendall(bytes(buf))
            buf = bytearray()
    s.shutdown(socket.SHUT_WR)
    # A clean close: wait for the collector to close its side.
    s.settimeout(30)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()


def cmd_udp(args):
    host, port, prefix, count = args[0], int(args[1]), args[2], int(args[3])
    src = opt(args, "--src")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if src:
        s.bind((src, 0))
    for i in range(count):
        s.sendto(msg(prefix, i).encode(), (host, port))
        if i % 200 == 199:
            time.sleep(0.01)  # loopback UDP has no flow control: stay under the socket buffer
    s.close()


def cmd_http(args):
    url, token, prefix, count = args[0], args[1], args[2], int(args[3])
    batch = int(opt(args, "--batch", "100"))
    claim = opt(args, "--claim")
    acked = opt(args, "--acked")
    ackf = open(acked, "w") if acked else None
    codes = []
    i = 0
    n = 0
    while i < count:
        objs = []
        for j in range(i, min(count, i + batch)):
            o = {"message": "%s-%d" % (prefix, j), "host": {"hostname": "api"}}
            if claim:
                o["organization"] = {"id": claim}
            objs.append(o)
        # Alternate the three body shapes: array, NDJSON, single object.
        if n % 3 == 0:
            body = json.dumps(objs)
        elif n % 3 == 1:
            body = "\n".join(json.dumps(o) for o in objs) + "\n"
        else:
            objs = objs[:1]
            body = json.dumps(objs[0])
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        req = urllib.request.Request(url, data=body.encode(), method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                codes.append(r.status)
        except urllib.error.HTTPError as e:
            codes.append(e.code)
        except (urllib.error.URLError, OSError):
            codes.append(0)
        if ackf and codes[-1] == 200:
            for o in objs:
                ackf.write(o["message"] + "\n")
        i += len(objs)
        n += 1
    if ackf:
        ackf.close()
    print(" ".join(str(c) for c in sorted(set(codes))))


def cmd_check(args):
    path = args[0]
    seen = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            key, _, js = line.partition("\t")
            try:
                ev = json.loads(js)
            except ValueError:
                print("check: not JSON: %r" % line[:200])
                return 1
            m = ev.get("message", "")
            org = ev.get("organization", {}).get("id")
            seen.setdefault(m, []).append((key, org))
    bad = 0
    allow_dups = "--allow-dups" in args
    for spec in args[1:]:
        if spec.startswith("--"):
            continue
        prefix, count, op = spec.split(":")
        if count.startswith("@"):
            with open(count[1:]) as f:
                names = [l.strip() for l in f if l.strip()]
            count = len(names)
        else:
            count = int(count)
            names = ["%s-%d" % (prefix, i) for i in range(count)]
        missing = dups = wrong = 0
        for name in names:
            got = seen.get(name, [])
            if not got:
                missing += 1
            else:
                if len(got) > 1:
                    dups += 1
                if any(g != (op, op) for g in got):
                    wrong += 1
                    if wrong < 3:
                        print("check: %s tagged %r, want %s" % (name, got[0], op))
        extra = 0
        if not spec.split(":")[1].startswith("@"):
            extra = sum(1 for m in seen if m.startswith(prefix + "-") and
                        not (m[len(prefix) + 1:].isdigit() and int(m[len(prefix) + 1:]) < count))
        status = "ok" if not (missing or (dups and not allow_dups) or wrong or extra) else "FAIL"
        print("check %s: %d expected, %d missing, %d duplicated, %d wrong operator, %d extra: %s"
              % (prefix, count, missing, dups, wrong, extra, status))
        if status != "ok":
            bad = 1
    return bad


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "tcp":
        cmd_tcp(args)
    elif cmd == "udp":
        cmd_udp(args)
    elif cmd == "http":
        cmd_http(args)
    elif cmd == "check":
        sys.exit(cmd_check(args))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
