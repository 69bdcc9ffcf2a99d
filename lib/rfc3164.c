/* rfc3164.c -- BSD syslog (RFC 3164) as devices and daemons really send it.
 *
 * RFC 3164 describes practice rather than prescribing it, and rsyslog and
 * syslog-ng accept almost anything, so this parser is lenient: every part of
 * "<PRI>TIMESTAMP HOSTNAME TAG[pid]: MSG" is optional, and a line that is none
 * of it still becomes an event with the text as its message. Only an empty line
 * is a pipeline_error. One pass over the bytes, no allocation.
 *
 * Choices where implementations disagree (measured against rsyslog's and
 * syslog-ng's test suites; see the issue report):
 * - No PRI: log.syslog.priority is omitted (ECS omits absent values; rsyslog
 *   would claim 13, user.notice, which an auth.log line is not).
 * - A malformed PRI ("<189 Feb", "<999>"): the whole line is the message, as
 *   syslog-ng does; nothing else is guessed from it.
 * - No timestamp: no hostname is taken (a hostname is only recognised after a
 *   timestamp); the first word is the TAG only when ':' , "[pid]" or the end of
 *   the line follows it, so "some text" stays whole in message.
 * - One word after the timestamp is the HOSTNAME (rsyslog), not the TAG.
 * - A year after the time ("Apr 15 21:28:13 2007 linksys app:") is consumed
 *   as the year (syslog-ng), not taken as the hostname.
 * - A word that cannot be a hostname ("%bzorp", "#001", "sshd[1]:") after the
 *   timestamp is the TAG: the sender left the hostname out.
 */
#include "pasban/parse.h"

#include <string.h>

#include "vendor.h"

static unsigned month_of(const char *p)
{
    static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    char a = (char)(p[0] | 0x20), b = (char)(p[1] | 0x20), c = (char)(p[2] | 0x20);
    /* The first letter leaves at most three months to compare. */
    unsigned first, last;
    switch (a) {
    case 'j': first = 0, last = 6; break; /* jan jun jul */
    case 'f': first = last = 1; break;
    case 'm': first = 2, last = 4; break; /* mar may */
    case 'a': first = 3, last = 7; break; /* apr aug */
    case 's': first = last = 8; break;
    case 'o': first = last = 9; break;
    case 'n': first = last = 10; break;
    case 'd': first = last = 11; break;
    default: return 0;
    }
    for (unsigned i = first; i <= last; i++)
        if (names[3 * i] == a && names[3 * i + 1] == b && names[3 * i + 2] == c)
            return i + 1;
    return 0;
}

/* Exactly n digits at p. */
static bool num(const char *p, const char *end, size_t n, unsigned *out)
{
    unsigned v = 0;
    if ((size_t)(end - p) < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    *out = v;
    return true;
}

/* ".123456" -> ms; any number of digits (rsyslog's tests send sixty). */
static const char *fraction(const char *p, const char *end, unsigned *ms)
{
    if (p + 1 >= end || *p != '.' || !is_digit(p[1]))
        return p;
    p++;
    unsigned v = 0, scale = 100;
    while (p < end && is_digit(*p)) {
        v += (unsigned)(*p - '0') * scale;
        scale /= 10;
        p++;
    }
    *ms = v;
    return p;
}

/* "Z", "+hh:mm", "+hhmm" or (when allow_hh) "+hh", attached to the time. */
static const char *numeric_zone(const char *p, const char *end, psb_ts *ts, bool allow_hh)
{
    unsigned h, m = 0;
    if (p < end && (*p == 'Z' || *p == 'z')) {
        ts->has_zone = true;
        ts->zone_s = 0;
        return p + 1;
    }
    if (p >= end || (*p != '+' && *p != '-') || !num(p + 1, end, 2, &h))
        return p;
    const char *q = p + 3;
    if (q < end && *q == ':' && num(q + 1, end, 2, &m))
        q += 3;
    else if (num(q, end, 2, &m))
        q += 2;
    else if (!allow_hh)
        return p;
    if (h > 23 || m > 59)
        return p;
    ts->has_zone = true;
    ts->zone_s = (int32_t)(h * 3600 + m * 60) * (*p == '-' ? -1 : 1);
    return q;
}

/* "hh:mm:ss" with range checks. */
static bool clock_time(const char *p, const char *end, psb_ts *ts)
{
    unsigned h, mi, s;
    if (end - p < 8 || !num(p, end, 2, &h) || p[2] != ':' || !num(p + 3, end, 2, &mi) || p[5] != ':' ||
        !num(p + 6, end, 2, &s))
        return false;
    if (h > 23 || mi > 59 || s > 60)
        return false;
    ts->hour = h;
    ts->min = mi;
    ts->sec = s;
    return true;
}

int psb_rfc3164_parse_bsd_time(const char **pp, const char *end, psb_ts *ts)
{
    const char *p = *pp;
    unsigned d, y;
    if (end - p < 14)
        return -1;
    memset(ts, 0, sizeof(*ts));
    ts->mon = month_of(p);
    if (!ts->mon || p[3] != ' ')
        return -1;
    p = skip_sp(p + 3, end);
    if (num(p, end, 2, &d))
        p += 2;
    else if (num(p, end, 1, &d))
        p += 1;
    else
        return -1;
    if (d < 1 || d > 31 || p >= end || *p != ' ')
        return -1;
    ts->day = d;
    p = skip_sp(p, end);
    if (num(p, end, 4, &y) && p + 4 < end && p[4] == ' ') { /* Cisco, ASA, Huawei */
        ts->year = (int)y;
        p = skip_sp(p + 4, end);
    }
    if (!clock_time(p, end, ts))
        return -1;
    p = fraction(p + 8, end, &ts->ms);
    p = numeric_zone(p, end, ts, false);
    if (!ts->has_zone && p + 1 < end && *p == ' ' && p[1] >= 'A' && p[1] <= 'Z') {
        /* Cisco "18:46:11.123 UTC:": a zone name, only trusted when it is UTC. */
        const char *q = p + 1;
        while (q < end && q - p <= 6 && ((*q >= 'A' && *q <= 'Z') || is_digit(*q)))
            q++;
        if (q < end && *q == ':' && q - p >= 3) {
            if ((q - p == 4 && memcmp(p + 1, "UTC", 3) == 0) ||
                (q - p == 4 && memcmp(p + 1, "GMT", 3) == 0)) {
                ts->has_zone = true;
                ts->zone_s = 0;
            }
            p = q;
        }
    }
    *pp = p;
    return 0;
}

int psb_rfc3164_parse_iso_time(const char **pp, const char *end, psb_ts *ts)
{
    const char *p = *pp;
    unsigned y, mo, d;
    if (end - p < 19)
        return -1;
    memset(ts, 0, sizeof(*ts));
    if (!num(p, end, 4, &y) || (p[4] != '-' && p[4] != '/') || !num(p + 5, end, 2, &mo) ||
        p[7] != p[4] || !num(p + 8, end, 2, &d) || (p[10] != 'T' && p[10] != ' '))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || !clock_time(p + 11, end, ts))
        return -1;
    ts->year = (int)y;
    ts->mon = mo;
    ts->day = d;
    p = fraction(p + 19, end, &ts->ms);
    *pp = numeric_zone(p, end, ts, true);
    return 0;
}

/* psb_days_from_civil, remembered per year parity so the two candidate years
 * of the inference below both stay cached. */
static int64_t days_of(psb_time_cache *c, int64_t y, unsigned m, unsigned d)
{
    if (!c)
        return psb_days_from_civil(y, m, d);
    int64_t key = y * 512 + m * 32 + d;
    size_t i = (size_t)(y & 1);
    if (!c->have[i] || c->ymd[i] != key) {
        c->days[i] = psb_days_from_civil(y, m, d);
        c->ymd[i] = key;
        c->have[i] = true;
    }
    return c->days[i];
}

static int64_t to_ms(psb_time_cache *c, int64_t y, const psb_ts *ts, int32_t zone_s)
{
    int64_t days = days_of(c, y, ts->mon, ts->day);
    unsigned sec = ts->sec, ms = ts->ms;
    if (sec == 60) /* leap second: the last instant of the minute */
        sec = 59, ms = 999;
    return days * 86400000 + (int64_t)((ts->hour * 60 + ts->min) * 60 + sec) * 1000 + ms -
           (int64_t)zone_s * 1000;
}

static void ts_pack(const psb_ts *ts, int64_t *f)
{
    f[0] = ts->year;
    f[1] = ts->mon;
    f[2] = ts->day;
    f[3] = ts->hour;
    f[4] = ts->min;
    f[5] = ts->sec;
    f[6] = ts->ms;
    f[7] = ts->has_zone;
    f[8] = ts->zone_s;
}

static void ts_unpack(const int64_t *f, psb_ts *ts)
{
    ts->year = (int)f[0];
    ts->mon = (unsigned)f[1];
    ts->day = (unsigned)f[2];
    ts->hour = (unsigned)f[3];
    ts->min = (unsigned)f[4];
    ts->sec = (unsigned)f[5];
    ts->ms = (unsigned)f[6];
    ts->has_zone = f[7] != 0;
    ts->zone_s = (int32_t)f[8];
}

static int resolve(const psb_ts *ts, const psb_parse_opts *opts, int64_t *ms_out);

/* Consecutive lines mostly carry the same second: the result of the last
 * inference is kept with everything it depends on. */
int psb_rfc3164_resolve_time(const psb_ts *ts, const psb_parse_opts *opts, int64_t *ms_out)
{
    psb_time_cache *c = opts->time_cache;
    if (!c)
        return resolve(ts, opts, ms_out);
    const int64_t *k = c->res_ts;
    if (!c->res_have || c->res_received_ms != opts->received_ms ||
        c->res_tz != opts->tz_offset_s || k[0] != ts->year || k[1] != ts->mon ||
        k[2] != ts->day || k[3] != ts->hour || k[4] != ts->min || k[5] != ts->sec ||
        k[6] != ts->ms || k[7] != ts->has_zone || k[8] != ts->zone_s) {
        c->res_ms = 0;
        c->res_rc = resolve(ts, opts, &c->res_ms);
        ts_pack(ts, c->res_ts);
        c->res_received_ms = opts->received_ms;
        c->res_tz = opts->tz_offset_s;
        c->res_have = true;
    }
    if (c->res_rc == 0)
        *ms_out = c->res_ms;
    return c->res_rc;
}

static int resolve(const psb_ts *ts, const psb_parse_opts *opts, int64_t *ms_out)
{
    int32_t zone = ts->has_zone ? ts->zone_s : opts->tz_offset_s;
    if (ts->year) {
        if (ts->day > psb_days_in_month(ts->year, ts->mon))
            return -1;
        *ms_out = to_ms(opts->time_cache, ts->year, ts, zone);
        return 0;
    }
    /* The newest year that puts the time at most a day after reception, so a
     * Dec 31 line received on Jan 1 lands in the old year and a Jan 1 line sent
     * by a fast clock on Dec 31 lands in the new one. Feb 29 looks back to the
     * last leap year. */
    int64_t local = opts->received_ms + (int64_t)opts->tz_offset_s * 1000;
    int64_t days = local / 86400000 - (local % 86400000 < 0);
    int64_t y;
    psb_time_cache *c = opts->time_cache;
    if (c && c->have_year && c->local_day == days) {
        y = c->year;
    } else {
        unsigned m, d;
        psb_civil_from_days(days, &y, &m, &d);
        if (c) {
            c->have_year = true;
            c->local_day = days;
            c->year = y;
        }
    }
    int64_t limit = opts->received_ms + 86400000;
    for (int64_t cand = y + 1; cand >= y - 8; cand--) {
        if (ts->day > psb_days_in_month(cand, ts->mon))
            continue;
        int64_t t = to_ms(c, cand, ts, zone);
        if (t <= limit) {
            *ms_out = t;
            return 0;
        }
    }
    return -1;
}

static bool is_capital(char c)
{
    return c >= 'A' && c <= 'Z';
}

/* psb_rfc3164_parse_bsd_time through the cache. The parse is a function of the
 * bytes it looks at: those it takes and, when it stopped at a space followed by
 * anything but a capital (no zone name to try), that space and the class of the
 * byte after it. A line starting with the same bytes parses the same. */
static int bsd_time(psb_time_cache *c, const char **pp, const char *end, psb_ts *ts)
{
    const char *p = *pp;
    if (c && c->bsd_len && (size_t)(end - p) > c->bsd_len && !is_capital(p[c->bsd_len]) &&
        memcmp(p, c->bsd_text, c->bsd_len) == 0) {
        ts_unpack(c->bsd_ts, ts);
        *pp = p + c->bsd_used;
        return 0;
    }
    int rc = psb_rfc3164_parse_bsd_time(pp, end, ts);
    if (c && rc == 0) {
        const char *q = *pp;
        size_t used = (size_t)(q - p);
        c->bsd_len = 0;
        if (end - q >= 2 && q[0] == ' ' && !is_capital(q[1]) &&
            used + 2 <= sizeof(c->bsd_text)) {
            memcpy(c->bsd_text, p, used + 1);
            c->bsd_len = used + 1;
            c->bsd_used = used;
            ts_pack(ts, c->bsd_ts);
        }
    }
    return rc;
}

/* <PRI>: 1 to 3 digits, at most 191. Returns the value and moves *pp past '>',
 * or -1 when the text only looks like a PRI. */
static int parse_pri(const char **pp, const char *end)
{
    const char *p = *pp + 1;
    int v = 0, n = 0;
    while (p < end && is_digit(*p) && n < 4) {
        v = v * 10 + (*p - '0');
        p++;
        n++;
    }
    if (n == 0 || n > 3 || p >= end || *p != '>' || v > 191)
        return -1;
    *pp = p + 1;
    return v;
}

static bool host_char(char c)
{
    return psb_ct(c, PSB_CT_HOST3164);
}

/* Could [s, e) be a HOSTNAME (name, IPv4, IPv6)? A word ending in ':' is a TAG
 * unless it is an IPv6 address such as "0002::". */
static bool hostname_like(const char *s, const char *e)
{
    size_t colons = 0;
    bool hex = true;
    if (s == e || e - s > 255)
        return false;
    for (const char *q = s; q < e; q++) {
        if (!host_char(*q))
            return false;
        if (*q == ':')
            colons++;
        else if (!psb_ct(*q, PSB_CT_HEX))
            hex = false;
    }
    if (e[-1] == ':')
        return hex && colons >= 2;
    return true;
}

static const char *word_end(const char *p, const char *end)
{
    while (p < end && !is_sp(*p))
        p++;
    return p;
}

static bool has_prefix(const char *p, const char *end, const char *lit, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

static void set_time(const psb_ts *ts, const psb_parse_opts *opts, psb_event *ev)
{
    int64_t ms;
    if (psb_rfc3164_resolve_time(ts, opts, &ms) == 0)
        ev->timestamp_ms = ms;
}

/* Apply a Cisco prefix: device time unless its clock says it is not authoritative. */
static void apply_cisco(const psb_cisco_hdr *c, const psb_parse_opts *opts, psb_event *ev)
{
    if (c->has_time && c->flag != '*')
        set_time(&c->ts, opts, ev);
    if (psb_str_is_set(c->sequence))
        psb_event_add_label(ev, PSB_STR_LIT("sequence"), c->sequence);
    if (c->flag)
        psb_event_add_label(ev, PSB_STR_LIT("clock_sync"),
                            c->flag == '*' ? PSB_STR_LIT("not_authoritative")
                                           : PSB_STR_LIT("ntp_lost"));
    if (psb_str_is_set(c->hostname) && !psb_str_is_set(ev->hostname))
        ev->hostname = c->hostname;
    if (psb_str_is_set(c->node))
        psb_event_add_label(ev, PSB_STR_LIT("node"), c->node);
    if (psb_str_is_set(c->process))
        psb_event_add_label(ev, PSB_STR_LIT("process"), c->process);
}

/* Everything after the header: a vendor body or "TAG[pid]: MSG". */
static void parse_body(const psb_parse_opts *opts, const char *p, const char *end, psb_event *ev,
                       bool headered, bool ts_free)
{
    /* ASA with device-id: "fw1 : %ASA-..." */
    if (p < end && *p == ':' && (p + 1 == end || is_sp(p[1])))
        p = skip_sp(p + 1, end);
    if (p == end)
        return;
    if (!headered && !is_digit(*p)) { /* NX-OS origin-id: "n9k-1 : 2021 Mar  1 ...: %VSHD-..." */
        const char *w = p;
        while (w < end && psb_ct(*w, PSB_CT_HOST))
            w++;
        const char *k = skip_sp(w, end);
        if (w > p && k + 1 < end && *k == ':' && is_sp(k[1])) {
            const char *r = skip_sp(k + 1, end);
            psb_cisco_hdr c;
            const char *q = r < end && is_digit(*r) ? psb_vendor_cisco_header(r, end, &c) : NULL;
            if (q && c.has_time) {
                if (!psb_str_is_set(c.hostname))
                    c.hostname = psb_str_make(p, (size_t)(w - p));
                apply_cisco(&c, opts, ev);
                p = q;
            }
        }
    }
    if (is_digit(*p) || *p == '*' || *p == '.') {
        psb_cisco_hdr c;
        const char *q = psb_vendor_cisco_header(p, end, &c);
        if (q) { /* relayed Cisco: "host 45: *Mar  1 ...: %SYS-..." */
            apply_cisco(&c, opts, ev);
            p = q;
        }
    }
    if (psb_vendor_kv_start(p, end)) {
        ev->message = psb_str_make(p, (size_t)(end - p));
        psb_vendor_kv_message(opts, ev, p, end, ts_free);
        return;
    }
    if (psb_vendor_paloalto(ev, p, end, !opts->core_labels_only))
        return;

    const char *s = p;
    while (p < end && !psb_ct(*p, PSB_CT_TAGEND))
        p++;
    const char *tag_end = p;
    psb_str pid = PSB_STR_NULL;
    if (p < end && *p == '[') {
        const char *r = p + 1;
        while (r < end && *r != ']' && !is_sp(*r))
            r++;
        if (r < end && *r == ']' && (r + 1 == end || r[1] == ':' || is_sp(r[1]))) {
            pid = psb_str_make(p + 1, (size_t)(r - p - 1));
            p = r + 1;
        } else { /* not "[pid]": the bracket belongs to the tag */
            while (p < end && !is_sp(*p) && *p != ':')
                p++;
            tag_end = p;
        }
    }
    if (*s == '%' && p + 1 < end && *p == ' ' && p[1] == ':') /* XR: "%CODE : text" */
        p++;
    bool colon = p < end && *p == ':';
    if (tag_end == s || (!headered && !colon && !pid.ptr && p != end)) {
        /* No TAG: the text is all message. */
        ev->message = psb_str_make(s, (size_t)(end - s));
        psb_vendor_after_tag(opts, ev);
        return;
    }
    ev->appname = psb_str_make(s, (size_t)(tag_end - s));
    ev->procid = pid;
    if (colon)
        p++;
    if (p < end && is_sp(*p)) /* exactly one separator belongs to the header */
        p++;
    if (p < end)
        ev->message = psb_str_make(p, (size_t)(end - p));
    psb_vendor_after_tag(opts, ev);
}

int psb_parse_rfc3164(const psb_parse_opts *opts, const char *msg, size_t len, psb_event *ev)
{
    const char *p = msg, *end = msg + len;
    /* The transport's line end is not part of the message (loghub files are CRLF). */
    while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == '\0'))
        end--;
    if (skip_sp(p, end) == end) {
        psb_event_set_error(ev, "empty message");
        return -1;
    }
    if (*p == '<') {
        int pri = parse_pri(&p, end);
        if (pri < 0) {
            ev->message = psb_str_make(msg, (size_t)(end - msg));
            return 0;
        }
        ev->priority = pri;
    }
    p = skip_sp(p, end);

    bool headered = false, ts_free = true;
    psb_ts ts;
    const char *q = p;
    if (p < end && (is_digit(*p) || *p == '*' || *p == '.')) {
        psb_cisco_hdr c;
        const char *r = psb_vendor_cisco_header(p, end, &c);
        if (r) {
            apply_cisco(&c, opts, ev);
            ts_free = !c.has_time;
            parse_body(opts, r, end, ev, true, ts_free);
            return 0;
        }
    }
    if (p < end && (bsd_time(opts->time_cache, &q, end, &ts) == 0 ||
                    psb_rfc3164_parse_iso_time(&q, end, &ts) == 0)) {
        headered = true;
        ts_free = false;
        p = q;
        unsigned y;
        /* syslog-ng's "Apr 15 21:28:13 2007 linksys": the year follows the time. */
        if (!ts.year && p + 5 < end && p[0] == ' ' && num(p + 1, end, 4, &y) && is_sp(p[5]) &&
            y >= 1970 && y <= 2200) {
            ts.year = (int)y;
            p += 5;
        }
        if (p < end && *p == ':') /* "19:06:53: host" */
            p++;
        set_time(&ts, opts, ev);
        p = skip_sp(p, end);
        /* AIX relays: "Message forwarded from cdaix66: sshd[1]: ..." */
        bool forwarded = false;
        if (has_prefix(p, end, "Message forwarded from ", 23)) {
            p += 23;
            forwarded = true;
        } else if (has_prefix(p, end, "Forwarded from ", 15)) {
            p += 15;
            forwarded = true;
        }
        const char *we = word_end(p, end);
        const char *he = forwarded && p < we && we[-1] == ':' ? we - 1 : we;
        /* A key=value line's first word is no HOSTNAME; hostname_like already says
         * so ('=' is not a host character, and the key scan stops inside the word). */
        if (hostname_like(p, he)) {
            ev->hostname = psb_str_make(p, (size_t)(he - p));
            p = skip_sp(we, end);
        }
    }
    parse_body(opts, p, end, ev, headered, ts_free);
    return 0;
}
