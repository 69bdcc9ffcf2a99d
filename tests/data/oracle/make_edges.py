#!/usr/bin/env python3
"""Writes edges/*.jsonl: event streams that sit on the edges of design.md's
semantics (window boundaries, late events, ties, suppression ending, distinct
repeats, interleaved sequences, absence across a gap). Rules: edges.rules.
Also writes auth.log, linux.log and year.log, raw samples in the formats of
loghub's OpenSSH_2k and Linux_2k, composed here.
Run once; the output is committed (tests/integration/test_replay_oracle.sh)."""
import datetime as dt
import json
import os

BASE = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
HERE = os.path.dirname(os.path.abspath(__file__))


def ev(t, proc, msg, host='h1', org='op-a', kind='event', base=BASE):
    ts = base + dt.timedelta(seconds=t)
    stamp = ts.strftime('%Y-%m-%dT%H:%M:%S.') + '%03dZ' % (ts.microsecond // 1000)
    syslog = ts.strftime('%b %d %H:%M:%S')
    e = {'@timestamp': stamp,
         'event': {'created': stamp, 'kind': kind,
                   'original': '%s %s %s: %s' % (syslog, host, proc, msg)}}
    if org:
        e['organization'] = {'id': org}
    e.update({'host': {'hostname': host}, 'process': {'name': proc}, 'message': msg})
    return e


CASES = {
    # threshold 2 within 10s: an event exactly `within` after another is outside
    'window': [ev(0, 'win', 'fail from A'), ev(10, 'win', 'fail from A'),
               ev(19.999, 'win', 'fail from A'),
               ev(100, 'win', 'fail from B'), ev(109.999, 'win', 'fail from B'),
               ev(200, 'win', 'fail from C'), ev(210, 'win', 'fail from C'),
               ev(220, 'win', 'fail from C'),
               # same src, two operators: two groups, nothing
               ev(300, 'win', 'fail from D', org='op-a'), ev(301, 'win', 'fail from D', org='op-b'),
               ev(302, 'win', 'fail from D', org=None)],
    # threshold 3 within 10s, late events
    'late': [ev(100, 'late', 'fail from A port 1'), ev(95, 'late', 'fail from A port 2'),
             ev(101, 'late', 'fail from A port 3'),
             ev(200, 'late', 'fail from B port 1'), ev(190, 'late', 'fail from B port 2'),
             ev(201, 'late', 'fail from B port 3'), ev(202, 'late', 'fail from B port 4'),
             ev(300, 'late', 'fail from C port 1'), ev(301, 'late', 'fail from C port 2'),
             ev(295, 'late', 'fail from C port 3'),
             # D's window is passed by the watermark (E at 420): late D events start afresh
             ev(400, 'late', 'fail from D port 1'), ev(401, 'late', 'fail from D port 2'),
             ev(420, 'late', 'fail from E port 1'),
             ev(405, 'late', 'fail from D port 3'), ev(406, 'late', 'fail from D port 4'),
             ev(407, 'late', 'fail from D port 5')],
    # five in the same millisecond; suppression ends exactly at t + suppress
    'ties': [ev(0, 'ties', 'fail from A port %d' % i) for i in range(5)] +
            [ev(1, 'ties', 'fail from A port 5'), ev(1.999, 'ties', 'fail from A port 6')] +
            [ev(2, 'ties', 'fail from A port %d' % i) for i in range(7, 12)],
    'sup': [ev(10, 'sup', 'fail from A'), ev(30, 'sup', 'fail from A'),
            ev(69.999, 'sup', 'fail from A'), ev(70, 'sup', 'fail from A'),
            ev(89.999, 'sup', 'fail from A'), ev(90, 'sup', 'fail from A'),
            ev(95, 'sup', 'fail from A')],
    'dist': [ev(i, 'dist', 'invalid user %s from A' % u) for i, u in enumerate('aabac')] +
            [ev(100, 'dist', 'invalid user a from B'), ev(130, 'dist', 'invalid user b from B'),
             ev(161, 'dist', 'invalid user a from B'), ev(162, 'dist', 'invalid user c from B')],
    'seq': [ev(0, 'seq', 'fail from A port 1'), ev(1, 'seq', 'fail from B port 1'),
            ev(2, 'seq', 'fail from A port 2'), ev(3, 'seq', 'accept from B port 2'),
            ev(4, 'seq', 'fail from B port 3'), ev(5, 'seq', 'accept from A port 3'),
            ev(6, 'seq', 'accept from B port 4'),
            ev(10, 'seq', 'fail from C port 1'), ev(11, 'seq', 'accept from C port 2'),
            # last - first = within: too late; a later start completes
            ev(100, 'seq', 'fail from D port 1'), ev(130, 'seq', 'fail from D port 2'),
            ev(160, 'seq', 'accept from D port 3'), ev(161, 'seq', 'fail from D port 4'),
            ev(162, 'seq', 'accept from D port 5'),
            # three starts in one second: the most recent is kept
            ev(200, 'seq', 'fail from E port 1'), ev(200, 'seq', 'fail from E port 2'),
            ev(200, 'seq', 'fail from E port 3'), ev(201, 'seq', 'accept from E port 4'),
            # suppressed chains
            ev(300, 'seq', 'open s1'), ev(301, 'seq', 'close s1'), ev(305, 'seq', 'open s1'),
            ev(306, 'seq', 'close s1'), ev(331, 'seq', 'open s1'), ev(332, 'seq', 'close s1')],
    'abs': [ev(0, 'abs', 'up', host='h1'), ev(30, 'abs', 'up', host='h2'),
            ev(60, 'abs', 'up', host='h1'), ev(400, 'noise', 'tick', host='h3'),
            ev(500, 'abs', 'up', host='h1'), ev(900, 'noise', 'tick', host='h3'),
            ev(930, 'abs', 'up', host='h2'), ev(5000, 'noise', 'tick', host='h3'),
            ev(4000, 'abs', 'up', host='h4'), ev(6000, 'noise', 'tick', host='h3')],
    # an unset optional capture: the by field is absent, not empty
    'opt': [ev(0, 'opt', 'fail user bob'), ev(1, 'opt', 'fail'), ev(2, 'opt', 'fail'),
            ev(3, 'opt', 'fail user bob')],
    # a pipeline error carries its receive time: it is not event time
    'perr': [ev(0, 'abs', 'up', host='h1'),
             ev(86400 * 30, 'abs', 'garbage', host='h1', kind='pipeline_error'),
             ev(60, 'abs', 'up', host='h1'), ev(120, 'noise', 'tick', host='h3')],
}

YEAR = dt.datetime(2025, 12, 31, 23, 59, 55, tzinfo=dt.timezone.utc)
CASES['year'] = [ev(t, 'sshd', 'Failed password for root from 1.2.3.4 port %d ssh2' % (100 + t),
                    host='gw1', base=YEAR) for t in (0, 3, 6, 35, 64, 65, 66)]


def syslog_lines(start, items, host, fmt):
    """items: (seconds from start, tag, message) -> BSD syslog lines as the files have them."""
    out = []
    for t, tag, msg in sorted(items, key=lambda x: x[0]):
        ts = start + dt.timedelta(seconds=t)
        out.append(fmt % (ts.strftime('%b ') + ('%2d' % ts.day) + ts.strftime(' %H:%M:%S'),
                          host, tag, msg))
    return out


def auth_log():
    """OpenSSH lines in the format of /var/log/auth.log (loghub's OpenSSH_2k)."""
    items, pid = [], [30000]

    def sess(t, lines):
        pid[0] += 2
        for dt_, msg in lines:
            items.append((t + dt_, 'sshd[%d]' % pid[0], msg))

    # a brute force: 12 root passwords from one source, 2 s apart, then a pause
    for i in range(12):
        sess(100 + 2 * i, [(0, 'pam_unix(sshd:auth): authentication failure; logname= uid=0 '
                               'euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root'),
                           (1, 'Failed password for root from 203.0.113.7 port %d ssh2' % (40000 + i))])
    # an allowlisted internal scanner (unless src ^10.)
    for i in range(6):
        sess(130 + i, [(0, 'Failed password for admin from 10.1.2.3 port %d ssh2' % (50000 + i))])
    # invalid users, with repeats, from one source; each name then tried
    for i, u in enumerate(['admin', 'admin', 'oracle', 'test', 'guest', 'admin', 'pi']):
        sess(400 + 5 * i, [(0, 'Invalid user %s from 198.51.100.23' % u),
                           (0, 'input_userauth_request: invalid user %s [preauth]' % u),
                           (2, 'Failed password for invalid user %s from 198.51.100.23 port %d ssh2'
                            % (u, 41000 + i)),
                           (3, 'Received disconnect from 198.51.100.23: 11: Bye Bye [preauth]')])
    # failures, then success, from one source (the incident an analyst wants most)
    sess(700, [(0, 'Failed password for deploy from 192.0.2.44 port 52011 ssh2'),
               (20, 'Failed password for deploy from 192.0.2.44 port 52013 ssh2'),
               (45, 'Accepted password for deploy from 192.0.2.44 port 52017 ssh2'),
               (45, 'pam_unix(sshd:session): session opened for user deploy by (uid=0)')])
    # interleaved with another source that never succeeds
    sess(710, [(0, 'Failed password for root from 192.0.2.99 port 6001 ssh2'),
               (30, 'Failed password for root from 192.0.2.99 port 6002 ssh2')])
    # reverse mapping warnings
    for i in range(3):
        sess(800 + i, [(0, 'reverse mapping checking getaddrinfo for host-%d.example.net '
                           '[192.0.2.%d] failed - POSSIBLE BREAK-IN ATTEMPT!' % (i, 50 + i))])
    # 20 minutes of silence, then the same source again (suppression ended)
    for i in range(4):
        sess(2100 + 3 * i, [(0, 'Failed password for root from 203.0.113.7 port %d ssh2' % (43000 + i))])
    sess(2400, [(0, 'Connection closed by 192.0.2.1 [preauth]')])
    return syslog_lines(dt.datetime(2026, 2, 3, 6, 55, 0), items, 'gw1', '%s %s %s: %s')


def linux_log():
    """A Linux host's syslog in the format of loghub's Linux_2k (PAM, su, ftpd, kernel)."""
    items = []
    for i in range(8):
        items.append((10 + 3 * i, 'sshd(pam_unix)[%d]' % (1000 + i),
                      'authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= '
                      'rhost=220.117.241.87  user=root'))
    for i in range(5):
        items.append((40 + 4 * i, 'sshd(pam_unix)[%d]' % (1100 + i), 'check pass; user unknown'))
    for d in range(4):
        items.append((86400 * d + 3600 * 4, 'su(pam_unix)[%d]' % (2000 + d),
                      'session opened for user cyrus by (uid=0)'))
        items.append((86400 * d + 3600 * 4 + 1, 'su(pam_unix)[%d]' % (2000 + d),
                      'session closed for user cyrus'))
        items.append((86400 * d + 3600 * 4 + 60, 'logrotate', 'ALERT exited abnormally with [1]'))
    items.append((5000, 'su(pam_unix)[2100]', 'authentication failure; logname=bob uid=500 '
                  'euid=0 tty=pts/1 ruser=bob rhost=  user=root'))
    for i in range(14):
        items.append((9000 + i, 'ftpd[%d]' % (3000 + i),
                      'connection from 24.54.76.%d (host.example.net) at Fri Jun 17 07:07:00 2005'
                      % (216 if i < 11 else 10 + i)))
    items.append((9100, 'sshd(pam_unix)[3100]', 'authentication failure; logname= uid=0 euid=0 '
                  'tty=NODEVssh ruser= rhost=24.54.76.216'))
    items.append((9200, 'kernel', 'audit(1118000000.123:2): initialized'))
    items.append((9201, 'kernel', 'Warning: ACPI-PCI IRQ routing table error'))
    items.append((9202, 'kernel', 'Memory: 125312k/129720k available'))
    return syslog_lines(dt.datetime(2026, 6, 14, 15, 16, 1), items, 'combo', '%s %s %s: %s ')


def year_log():
    """Failures across New Year's night, BSD timestamps (no year)."""
    items = [(t, 'sshd[4242]', 'Failed password for root from 1.2.3.4 port %d ssh2' % (100 + t))
             for t in (0, 3, 6, 35, 64, 65, 66, 80, 81, 82)]
    return syslog_lines(dt.datetime(2025, 12, 31, 23, 59, 55), items, 'gw1', '%s %s %s: %s')


def main():
    for name, lines in (('auth.log', auth_log()), ('linux.log', linux_log()),
                        ('year.log', year_log())):
        with open(os.path.join(HERE, name), 'w') as fh:
            fh.write('\n'.join(lines) + '\n')
    os.makedirs(os.path.join(HERE, 'edges'), exist_ok=True)
    for name, evs in CASES.items():
        with open(os.path.join(HERE, 'edges', name + '.jsonl'), 'w') as fh:
            for e in evs:
                fh.write(json.dumps(e, separators=(',', ':')) + '\n')


if __name__ == '__main__':
    main()
