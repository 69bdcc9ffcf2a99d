/* vendor.c -- Cisco, Huawei, Juniper, Fortinet, Palo Alto and key=value devices
 * on top of the RFC 3164 parse (label vocabulary in vendor.h).
 *
 * Everything here only reads the message and adds labels that point into it;
 * a line that merely resembles a dialect keeps its plain 3164 fields.
 */
#include "vendor.h"

#include <string.h>

#define K (PSB_CT_KEY | PSB_CT_HOST | PSB_CT_HOST3164)
#define L (K | PSB_CT_KEY0)
#define D (K | PSB_CT_HEX)
#define X (L | PSB_CT_HEX)
#define E (PSB_CT_VEND | PSB_CT_TAGEND)
const unsigned char psb_ctype[256] = {
    ['\t'] = E, [' '] = E, [','] = PSB_CT_VEND, [':'] = PSB_CT_HOST3164 | PSB_CT_TAGEND,
    ['['] = PSB_CT_TAGEND, ['.'] = K, ['-'] = K, ['_'] = L,
    ['0'] = D, ['1'] = D, ['2'] = D, ['3'] = D, ['4'] = D,
    ['5'] = D, ['6'] = D, ['7'] = D, ['8'] = D, ['9'] = D,
    ['a'] = X, ['b'] = X, ['c'] = X, ['d'] = X, ['e'] = X, ['f'] = X, ['g'] = L,
    ['h'] = L, ['i'] = L, ['j'] = L, ['k'] = L, ['l'] = L, ['m'] = L, ['n'] = L,
    ['o'] = L, ['p'] = L, ['q'] = L, ['r'] = L, ['s'] = L, ['t'] = L, ['u'] = L,
    ['v'] = L, ['w'] = L, ['x'] = L, ['y'] = L, ['z'] = L,
    ['A'] = X, ['B'] = X, ['C'] = X, ['D'] = X, ['E'] = X, ['F'] = X, ['G'] = L,
    ['H'] = L, ['I'] = L, ['J'] = L, ['K'] = L, ['L'] = L, ['M'] = L, ['N'] = L,
    ['O'] = L, ['P'] = L, ['Q'] = L, ['R'] = L, ['S'] = L, ['T'] = L, ['U'] = L,
    ['V'] = L, ['W'] = L, ['X'] = L, ['Y'] = L, ['Z'] = L,
};
#undef K
#undef L
#undef D
#undef X
#undef E

static bool is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || is_upper(c);
}

/* The first of bytes a, b, c in [q, end), or end; eight bytes at a time. A byte
 * of w ^ (a repeated) is zero where w holds a; (x - ones) & ~x & highs flags it,
 * and the lowest flag of each test is exact, so the lowest of all is the first. */
static inline const char *find3(const char *q, const char *end, char a, char b, char c)
{
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    const uint64_t ma = ones * (unsigned char)a, mb = ones * (unsigned char)b,
                   mc = ones * (unsigned char)c;
    while (end - q >= 8) {
        uint64_t w;
        memcpy(&w, q, 8);
        uint64_t xa = w ^ ma, xb = w ^ mb, xc = w ^ mc;
        uint64_t t = ((xa - ones) & ~xa) | ((xb - ones) & ~xb) | ((xc - ones) & ~xc);
        t &= highs;
        if (t)
            return q + (__builtin_ctzll(t) >> 3);
        q += 8;
    }
    while (q < end && *q != a && *q != b && *q != c)
        q++;
    return q;
}

static psb_str slice(const char *s, const char *e)
{
    return psb_str_make(s, (size_t)(e - s));
}

static bool str_is(psb_str s, const char *lit, size_t n)
{
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static void add_label(psb_event *ev, const char *key, size_t klen, psb_str value)
{
    psb_event_add_label(ev, psb_str_make(key, klen), value);
}

#define LABEL(ev, lit, v) add_label((ev), (lit), sizeof(lit) - 1, (v))

static psb_str find_label(const psb_event *ev, const char *key, size_t klen)
{
    for (size_t i = 0; i < ev->n_labels; i++)
        if (ev->labels[i].key.len == klen && ev->labels[i].key.ptr[0] == key[0] &&
            memcmp(ev->labels[i].key.ptr, key, klen) == 0)
            return ev->labels[i].value;
    return PSB_STR_NULL;
}

#define FIND(ev, lit) find_label((ev), (lit), sizeof(lit) - 1)

/* ---- Cisco IOS prefix ------------------------------------------------------ */

static bool host_char(char c)
{
    return psb_ct(c, PSB_CT_HOST);
}

/* Cisco uptime stamps ("00:01:23:", "1w2d:", "2d03h:") instead of a date. */
static const char *uptime(const char *p, const char *end)
{
    const char *q = p;
    if (q >= end || !is_digit(*q))
        return NULL;
    while (q < end && (is_digit(*q) || *q == ':' || *q == 'y' || *q == 'w' || *q == 'd' ||
                       *q == 'h' || *q == 'm' || *q == 's'))
        q++;
    if (q - p < 2 || q[-1] != ':' || (q < end && !is_sp(*q)))
        return NULL;
    return q;
}

const char *psb_vendor_cisco_header(const char *p, const char *end, psb_cisco_hdr *c)
{
    memset(c, 0, sizeof(*c));
    const char *q = p;
    int counters = 0;
    /* The message counter, then `service sequence-numbers`' own number. */
    while (counters < 2 && q < end && is_digit(*q)) {
        const char *s = q;
        while (q < end && is_digit(*q) && q - s < 12)
            q++;
        if (q + 1 >= end || *q != ':' || q[1] != ' ') {
            q = s;
            break;
        }
        c->sequence = slice(s, q);
        counters++;
        q = skip_sp(q + 1, end);
    }
    if (counters) { /* `logging origin-id hostname`: "45: router1: *Mar ..." */
        const char *s = q;
        bool letter = false;
        while (q < end && host_char(*q)) {
            letter |= !is_digit(*q);
            q++;
        }
        if (q > s && letter && q + 1 < end && *q == ':' && q[1] == ' ') {
            c->hostname = slice(s, q);
            q = skip_sp(q + 1, end);
        } else {
            q = s;
        }
        /* IOS XR: the card that logged, glued to its time ("RP/0/RSP0/CPU0:Mar  1"). */
        s = q;
        bool slash = false;
        while (q < end && (is_alpha(*q) || is_digit(*q) || *q == '/')) {
            slash |= *q == '/';
            q++;
        }
        if (slash && q < end && *q == ':')
            c->node = slice(s, q++);
        else
            q = s;
        if (q < end && *q == '%') /* no timestamps configured */
            return q;
    }
    if (end - q >= 5 && (*q == '*' || *q == '.') && (is_alpha(q[1]) || is_digit(q[1]))) {
        c->flag = *q;
        q++;
    }
    /* NX-OS writes the year first: "2021 Mar  1 10:11:12 UTC: %VSHD-...". */
    int year = 0;
    if (end - q > 5 && is_digit(q[0]) && is_digit(q[1]) && is_digit(q[2]) && is_digit(q[3]) &&
        q[4] == ' ' && is_alpha(q[5])) {
        year = (q[0] - '0') * 1000 + (q[1] - '0') * 100 + (q[2] - '0') * 10 + (q[3] - '0');
        q += 5;
    }
    const char *t = q;
    if (!counters && !c->flag && !year) { /* only an uptime: "00:00:46: %LINK-3-UPDOWN: ..." */
        t = uptime(q, end);
        if (!t || (t = skip_sp(t, end)) >= end || *t != '%')
            return NULL;
        return t;
    }
    if (psb_rfc3164_parse_bsd_time(&t, end, &c->ts) == 0 ||
        psb_rfc3164_parse_iso_time(&t, end, &c->ts) == 0) {
        c->has_time = true;
        if (year) {
            if (c->ts.year || year < 1970 || year > 2200)
                return NULL;
            c->ts.year = year;
        }
        if (t + 1 < end && *t == ' ' && is_alpha(t[1])) { /* a zone name in any case: "gmt:" */
            const char *z = t + 1;
            while (z < end && (is_alpha(*z) || is_digit(*z)) && z - t <= 6)
                z++;
            if (z < end && *z == ':')
                t = z;
        }
        if (t >= end || *t != ':')
            return NULL;
        q = t + 1;
    } else if (!year && (t = uptime(q, end)) != NULL) {
        q = t;
    } else {
        return NULL;
    }
    q = skip_sp(q, end);
    if (q < end && *q == '%')
        return q;
    if (psb_str_is_set(c->node)) { /* IOS XR: "exec[65870]: %SECURITY-LOGIN-..." */
        const char *s = q;
        while (q < end && host_char(*q))
            q++;
        const char *pe = q;
        if (q < end && *q == '[') {
            while (++q < end && is_digit(*q))
                ;
            if (q >= end || *q != ']')
                return NULL;
            q++;
        }
        if (pe == s || q >= end || *q != ':')
            return NULL;
        q = skip_sp(q + 1, end);
        if (q >= end || *q != '%')
            return NULL;
        c->process = slice(s, pe);
        return q;
    }
    /* "*Oct 07 03:10:04: mydevice.com %CRYPTO-4-...": a hostname before the code. */
    const char *s = q;
    while (q < end && host_char(*q))
        q++;
    if (q == s || q >= end || !is_sp(*q))
        return NULL;
    const char *r = skip_sp(q, end);
    if (r >= end || *r != '%')
        return NULL;
    if (!psb_str_is_set(c->hostname))
        c->hostname = slice(s, q);
    return r;
}

/* ---- key=value ------------------------------------------------------------- */

/* Length of "key" when p starts "key=", else 0. */
static size_t key_at(const char *p, const char *end)
{
    const char *q = p;
    if (q >= end || !psb_ct(*q, PSB_CT_KEY0))
        return 0;
    const char *lim = end - p > 64 ? p + 64 : end;
    while (q < lim && psb_ct(*q, PSB_CT_KEY))
        q++;
    return q < end && *q == '=' ? (size_t)(q - p) : 0;
}

bool psb_vendor_kv_start(const char *p, const char *end)
{
    return key_at(p, end) > 0;
}

/* The labels vendor.h reserves; a device key of the same name is not added. */
static bool reserved(const char *k, size_t n)
{
    return (n == 6 && memcmp(k, "vendor", 6) == 0) ||
           (n == 8 && (memcmp(k, "mnemonic", 8) == 0 || memcmp(k, "sequence", 8) == 0)) ||
           (n == 10 && memcmp(k, "clock_sync", 10) == 0);
}

/* A bit per (length, first and last character) of a key: a key whose bit is not
 * set in the mask of the labels so far is certainly not among them. */
static uint64_t key_bit(const char *k, size_t n)
{
    return (uint64_t)1 << ((n * 7 + (unsigned char)k[0] * 3 + (unsigned char)k[n - 1]) & 63);
}

/* A key already present (devices repeat keys, JSON must not). Lengths first. */
static bool have_label(const psb_event *ev, const char *k, size_t n)
{
    for (size_t i = 0; i < ev->n_labels; i++)
        if (ev->labels[i].key.len == n && ev->labels[i].key.ptr[0] == k[0] &&
            memcmp(ev->labels[i].key.ptr, k, n) == 0)
            return true;
    return false;
}

/* Scan "k=v k2="quoted v" ..." from p, stopping at the first word that is not a
 * pair. In a Huawei list ("(K=V, K2=V two)") an unquoted value runs up to the
 * next ", Key=". Adds labels when add; returns the number of pairs seen and where
 * the scan stopped. Leaves one label slot free for labels.vendor. */
static size_t kv_scan(psb_event *ev, const char *p, const char *end, bool list, bool add,
                      const char **stop)
{
    size_t pairs = 0;
    uint64_t seen = 0; /* key_bit of every label */
    for (size_t i = 0; add && i < ev->n_labels; i++)
        if (ev->labels[i].key.len)
            seen |= key_bit(ev->labels[i].key.ptr, ev->labels[i].key.len);
    for (;;) {
        while (p < end && psb_ct(*p, PSB_CT_VEND))
            p++;
        size_t kl = key_at(p, end);
        if (!kl)
            break;
        const char *k = p, *v = p + kl + 1, *ve;
        p = v;
        if (p < end && *p == '"') {
            v = ++p;
            while ((p = find3(p, end, '"', '\\', '\\')) < end && *p == '\\')
                p += p + 1 < end ? 2 : 1; /* an escaped character */
            ve = p;
            if (p < end)
                p++;
        } else if (list) {
            while (p < end) {
                if (*p == ',') {
                    const char *n = skip_sp(p + 1, end);
                    if (key_at(n, end))
                        break;
                }
                p++;
            }
            ve = p;
        } else {
            p = find3(p, end, ' ', '\t', ',');
            ve = p;
        }
        pairs++;
        if (add && ev->n_labels + 1 < PSB_EVENT_MAX_LABELS && !reserved(k, kl)) {
            uint64_t bit = key_bit(k, kl);
            if (!(seen & bit) || !have_label(ev, k, kl)) {
                add_label(ev, k, kl, slice(v, ve));
                seen |= bit;
            }
        }
    }
    if (stop)
        *stop = p;
    return pairs;
}

/* "+0330", "+03:30", "+08", "-0500", "UTC": seconds east of UTC. */
static bool zone_value(psb_str z, int32_t *out)
{
    return psb_parse_utc_offset_n(z.ptr, z.len, out) == 0;
}

/* Fortinet and friends: date=2026-11-10 time=11:50:48 [tz="+0330"], or one
 * time="2019-02-27 12:55:40 UTC" (SonicWall). */
static void kv_time(const psb_parse_opts *opts, psb_event *ev)
{
    psb_str date = FIND(ev, "date"), time = FIND(ev, "time");
    char buf[40];
    if (!time.ptr)
        return;
    size_t n = 0;
    if (date.ptr && date.len == 10 && time.len == 8) {
        memcpy(buf, date.ptr, 10);
        buf[10] = 'T';
        memcpy(buf + 11, time.ptr, 8);
        n = 19;
    } else if (!date.ptr && time.len >= 19 && time.len < sizeof(buf)) {
        memcpy(buf, time.ptr, time.len);
        n = time.len;
    } else {
        return;
    }
    psb_ts ts;
    const char *p = buf;
    if (psb_rfc3164_parse_iso_time(&p, buf + n, &ts) != 0)
        return;
    if (p + 4 == buf + n && (memcmp(p, " UTC", 4) == 0 || memcmp(p, " GMT", 4) == 0)) {
        ts.has_zone = true;
        ts.zone_s = 0;
    }
    psb_str tz = FIND(ev, "tz");
    if (!tz.ptr)
        tz = FIND(ev, "timezone");
    int32_t z;
    if (!ts.has_zone && tz.ptr && zone_value(tz, &z)) {
        ts.has_zone = true;
        ts.zone_s = z;
    }
    int64_t ms;
    if (psb_rfc3164_resolve_time(&ts, opts, &ms) == 0)
        ev->timestamp_ms = ms;
}

size_t psb_vendor_kv_message(const psb_parse_opts *opts, psb_event *ev, const char *p,
                             const char *end, bool ts_free)
{
    size_t pairs = kv_scan(ev, p, end, false, true, NULL);
    psb_str devname = FIND(ev, "devname");
    psb_str devid = FIND(ev, "devid");
    psb_str logid = FIND(ev, "logid");
    bool date = FIND(ev, "date").ptr != NULL;
    /* FortiOS: devid or devname with logid or date; FortiOS 4 spelled them
     * device_id and log_id next to devname (Sophos has device_id and log_id but
     * device_name); sanitised samples keep only logid, vd and type. */
    bool forti = (devid.ptr && (logid.ptr || date)) ||
                 (devname.ptr &&
                  (logid.ptr || date || FIND(ev, "device_id").ptr || FIND(ev, "log_id").ptr)) ||
                 (logid.ptr && FIND(ev, "vd").ptr && FIND(ev, "type").ptr);
    if (forti) {
        LABEL(ev, "vendor", PSB_STR_LIT("fortinet"));
        if (devname.ptr)
            ev->hostname = devname;
    } else if (!ev->hostname.ptr) {
        psb_str dn = FIND(ev, "device_name"); /* Sophos */
        if (dn.ptr)
            ev->hostname = dn;
    }
    if (ts_free)
        kv_time(opts, ev);
    return pairs;
}

/* ---- Palo Alto CSV ----------------------------------------------------------- */

#define PA_MAX_FIELDS 40

#define N(s) {s, sizeof(s) - 1}
static const psb_str pa_traffic[] = {
    {NULL, 0},  {NULL, 0},    N("serial"),     N("type"),        N("subtype"), {NULL, 0},
    {NULL, 0},  N("src"),     N("dst"),        N("natsrc"),      N("natdst"),  N("rule"),
    N("srcuser"), N("dstuser"), N("app"),      N("vsys"),        N("from"),    N("to"),
    N("inbound_if"), N("outbound_if"), {NULL, 0}, {NULL, 0},     {NULL, 0},    {NULL, 0},
    N("sport"), N("dport"),   {NULL, 0},       {NULL, 0},        {NULL, 0},    N("proto"),
    N("action"),
};
static const psb_str pa_threat_extra[] = {N("misc"), N("threatid"), N("category"),
                                          N("severity"), N("direction")};
#undef N
/* Fields past these are never read: splitting stops there. */
#define PA_USED_FIELDS (sizeof(pa_traffic) / sizeof(pa_traffic[0]) + \
                        sizeof(pa_threat_extra) / sizeof(pa_threat_extra[0]))

int psb_vendor_paloalto(psb_event *ev, const char *p, const char *end, bool columns)
{
    psb_str f[PA_MAX_FIELDS];
    size_t n = 0;
    const char *q = p;
    /* FUTURE_USE, receive time "yyyy/mm/dd hh:mm:ss", serial, TYPE. */
    if (end - p < 30 || !is_digit(p[0]) || p[1] != ',' || !is_digit(p[2]) || p[6] != '/' ||
        p[9] != '/' || p[12] != ' ' || p[15] != ':' || p[21] != ',')
        return 0;
    /* Without the columns, the first four fields say whether it is such a line. */
    size_t want = columns ? PA_USED_FIELDS : 4;
    while (q <= end && n < PA_MAX_FIELDS && n < want) {
        const char *s = q, *e;
        if (q < end && *q == '"') {
            s = ++q;
            while (q < end && *q != '"')
                q++;
            e = q;
            if (q < end)
                q++;
            while (q < end && *q != ',')
                q++;
        } else {
            q = find3(q, end, ',', ',', ',');
            e = q;
        }
        f[n++] = slice(s, e);
        if (q >= end)
            break;
        q++;
    }
    if (n < 4 || f[3].len < 3)
        return 0;
    for (size_t i = 0; i < f[3].len; i++)
        if (!is_upper(f[3].ptr[i]) && f[3].ptr[i] != '_')
            return 0;
    LABEL(ev, "vendor", PSB_STR_LIT("paloalto"));
    if (!columns) {
        ev->message = slice(p, end);
        return 1;
    }
    bool traffic = str_is(f[3], "TRAFFIC", 7), threat = str_is(f[3], "THREAT", 6);
    if (traffic || threat) {
        size_t lim = sizeof(pa_traffic) / sizeof(pa_traffic[0]);
        for (size_t i = 0; i < n && i < lim; i++)
            if (pa_traffic[i].ptr && f[i].len)
                psb_event_add_label(ev, pa_traffic[i], f[i]);
        for (size_t i = 0; threat && i < 5 && lim + i < n; i++)
            if (f[lim + i].len)
                psb_event_add_label(ev, pa_threat_extra[i], f[lim + i]);
    } else {
        LABEL(ev, "serial", f[2]);
        LABEL(ev, "type", f[3]);
        if (n > 4 && f[4].len)
            LABEL(ev, "subtype", f[4]);
    }
    ev->message = slice(p, end);
    return 1;
}

/* ---- codes in the TAG or at the start of the message -------------------------- */

/* "%SYS-5-CONFIG_I", "%ASA-6-302013", "%MGBL-CONFIG-6-DB_COMMIT": '-'-separated
 * upper-case words with a severity digit before the last one. */
static bool cisco_code(psb_str t)
{
    const char *s = t.ptr + 1, *e = t.ptr + t.len;
    const char *last = NULL, *prev = NULL;
    if (t.len < 6 || t.ptr[0] != '%' || !is_upper(s[0]))
        return false;
    for (const char *q = s; q < e; q++) {
        if (*q == '-') {
            prev = last;
            last = q;
        } else if (!is_upper(*q) && !is_digit(*q) && *q != '_') {
            return false;
        }
    }
    return last && prev && last - prev == 2 && prev[1] >= '0' && prev[1] <= '7' && last + 1 < e;
}

static void cisco_labels(psb_event *ev)
{
    psb_str t = ev->appname;
    const char *fac = t.ptr + 1;
    size_t fl = (size_t)((const char *)memchr(fac, '-', t.len - 1) - fac);
    psb_str vendor = PSB_STR_LIT("cisco_ios");
    if ((fl == 3 && (memcmp(fac, "ASA", 3) == 0 || memcmp(fac, "PIX", 3) == 0)) ||
        (fl == 4 && memcmp(fac, "FWSM", 4) == 0))
        vendor = PSB_STR_LIT("cisco_asa");
    else if (fl == 3 && memcmp(fac, "FTD", 3) == 0)
        vendor = PSB_STR_LIT("cisco_ftd");
    LABEL(ev, "vendor", vendor);
    LABEL(ev, "mnemonic", psb_str_make(fac, t.len - 1));
}

/* Huawei VRP "%%01SHELL/5/CMDRECORD(s)": version, module/severity/name, (type). */
static bool huawei_labels(psb_event *ev)
{
    psb_str t = ev->appname;
    const char *s = t.ptr + 4, *e = t.ptr + t.len;
    if (t.len < 9 || t.ptr[1] != '%' || !is_digit(t.ptr[2]) || !is_digit(t.ptr[3]))
        return false;
    const char *q = s;
    while (q < e && (is_upper(*q) || is_digit(*q) || *q == '_'))
        q++;
    if (q == s || q + 3 >= e || q[0] != '/' || !is_digit(q[1]) || q[2] != '/')
        return false;
    q += 3;
    while (q < e && *q != '(')
        q++;
    LABEL(ev, "vendor", PSB_STR_LIT("huawei_vrp"));
    LABEL(ev, "mnemonic", slice(s, q));
    if (ev->procid.ptr) { /* "[0]" is the log's serial number, not a process */
        LABEL(ev, "sequence", ev->procid);
        ev->procid = PSB_STR_NULL;
    }
    return true;
}

/* Junos facilities (the part of a message name before its first '_'). */
static bool junos_facility(const char *s, size_t n)
{
    static const char *const fac[] = {
        "ACCT",      "ALARMD",  "ANALYZER", "APPID", "APPTRACK", "AUDITD",   "AUTHD",
        "AUTOCONFD", "AV",      "BFDD",     "BGP",   "BOOTPD",   "CHASSISD", "COSD",
        "DCD",       "DDOS",    "DFWD",     "ESWD",  "EVENTD",   "FLOW",     "FWAUTH",
        "ICCPD",     "IDP",     "JSRPD",    "KMD",   "L2ALD",    "L2CPD",    "LACPD",
        "LIBJNX",    "LICENSE", "LLDPD",    "LOGIN", "MIB2D",    "NTPD",     "PFE",
        "PKID",      "PPMD",    "RMOPD",    "RPD",   "RT",       "SFW",      "SNMP",
        "SNMPD",     "SSHD",    "UI",       "UTMD",  "VCCPD",    "VRRPD",    "WEBFILTER",
    };
    for (size_t i = 0; i < sizeof(fac) / sizeof(fac[0]); i++)
        if (fac[i][0] == s[0] && strncmp(fac[i], s, n) == 0 && fac[i][n] == '\0')
            return true;
    return false;
}

/* Length of a Junos code at s ("RT_FLOW_SESSION_DENY": upper-case words joined by
 * '_'), 0 if there is none; *fac_len gets the length of its first word. */
static size_t junos_code(const char *s, const char *e, size_t *fac_len)
{
    const char *q = s, *us = NULL;
    if (e - s < 4 || !is_upper(*s))
        return 0;
    while (q < e && (is_upper(*q) || is_digit(*q) || *q == '_')) {
        if (*q == '_' && !us)
            us = q;
        q++;
    }
    if (!us || us + 1 >= q || q[-1] == '_')
        return 0;
    *fac_len = (size_t)(us - s);
    return (size_t)(q - s);
}

/* "RT_FLOW_SESSION_DENY: ..." at the start of the message, or the code as the TAG
 * ("mx1 PFE_FW_SYSLOG_IP: FW: ..."; only with a facility Junos is known to use). */
static bool junos_labels(psb_event *ev)
{
    psb_str m = ev->message, t = ev->appname;
    size_t fl = 0, n = m.ptr ? junos_code(m.ptr, m.ptr + m.len, &fl) : 0;
    if (n && n < m.len && m.ptr[n] == ':' && (n + 1 == m.len || is_sp(m.ptr[n + 1]))) {
        if (junos_facility(m.ptr, fl))
            LABEL(ev, "vendor", PSB_STR_LIT("juniper"));
        LABEL(ev, "mnemonic", psb_str_make(m.ptr, n));
        return true;
    }
    if (t.ptr && junos_code(t.ptr, t.ptr + t.len, &fl) == t.len && junos_facility(t.ptr, fl)) {
        LABEL(ev, "vendor", PSB_STR_LIT("juniper"));
        LABEL(ev, "mnemonic", t);
        return true;
    }
    return false;
}

/* Huawei's "... (Task=VT0, Ip=10.1.1.1, User=admin, Command="display version")". */
static void paren_list(psb_event *ev)
{
    psb_str m = ev->message;
    const char *e = m.ptr + m.len;
    if (m.len < 5 || e[-1] != ')')
        return;
    const char *o = e - 1;
    while (o > m.ptr && *o != '(')
        o--;
    if (*o != '(' || !key_at(o + 1, e))
        return;
    kv_scan(ev, o + 1, e - 1, true, true, NULL);
}

/* Junos "structured-data" logs that a relay wrapped in a BSD header:
 * "2017-09-23T13:54:54.803Z srx1 RT_FLOW - RT_FLOW_SESSION_DENY [junos@2636.1.1.1.2.39
 * source-address="192.168.1.1" ...] text". The device's own time (it has a zone)
 * becomes @timestamp; MSGID is the mnemonic; the SD-PARAMs become labels. */
static bool junos_sd(const psb_parse_opts *opts, psb_event *ev)
{
    psb_str m = ev->message;
    const char *p = m.ptr, *e = m.ptr + m.len, *f[4];
    psb_ts ts;
    if (m.len < 40 || !is_digit(*p) || psb_rfc3164_parse_iso_time(&p, e, &ts) != 0)
        return false;
    for (int i = 0; i < 4; i++) { /* HOSTNAME APP-NAME PROCID MSGID */
        if (p >= e || *p != ' ')
            return false;
        f[i] = ++p;
        while (p < e && !is_sp(*p))
            p++;
        if (p == f[i])
            return false;
    }
    if (e - p < 8 || memcmp(p, " [junos@", 8) != 0)
        return false;
    const char *sd = p + 2;
    while (sd < e && !is_sp(*sd) && *sd != ']')
        sd++;
    LABEL(ev, "vendor", PSB_STR_LIT("juniper"));
    LABEL(ev, "mnemonic", slice(f[3], p));
    int64_t ms;
    if (ts.has_zone && psb_rfc3164_resolve_time(&ts, opts, &ms) == 0)
        ev->timestamp_ms = ms;
    kv_scan(ev, sd, e, false, true, NULL);
    return true;
}

void psb_vendor_after_tag(const psb_parse_opts *opts, psb_event *ev)
{
    psb_str t = ev->appname;
    bool huawei = false;
    if (t.ptr && t.len > 1 && t.ptr[0] == '%') {
        if (t.ptr[1] == '%')
            huawei = huawei_labels(ev);
        else if (cisco_code(t))
            cisco_labels(ev);
    } else if (ev->message.ptr && ev->message.len > 6 && ev->message.ptr[0] == '%' &&
               ev->message.ptr[1] != '%') {
        /* "Oct 6 03:32:02 mng: %SEC-6-IPACCESSLOGP: ...": the word before the code
         * was a zone or host name, not the TAG. */
        const char *m = ev->message.ptr, *e = m + ev->message.len, *c = m;
        while (c < e && *c != ':' && !is_sp(*c))
            c++;
        if (c < e && *c == ':' && cisco_code(slice(m, c))) {
            ev->appname = slice(m, c);
            ev->procid = PSB_STR_NULL;
            c++;
            if (c < e && is_sp(*c))
                c++;
            ev->message = c < e ? slice(c, e) : PSB_STR_NULL;
            cisco_labels(ev);
        }
    } else {
        if (ev->message.ptr && junos_sd(opts, ev))
            return;
        junos_labels(ev);
    }
    psb_str m = ev->message;
    if (!m.ptr)
        return;
    const char *s = skip_sp(m.ptr, m.ptr + m.len), *e = m.ptr + m.len;
    if (opts->core_labels_only)
        return; /* what is left adds only device keys as labels */
    if (huawei && key_at(s, e)) { /* USG: "vsys=public, protocol=17, ..." */
        kv_scan(ev, s, e, false, true, NULL);
        return;
    }
    if (huawei) {
        paren_list(ev);
        return;
    }
    /* A run of key=value at the start of a message (FortiAuthenticator, NetScreen). */
    if (key_at(s, e) && kv_scan(ev, s, e, false, false, NULL) >= 3)
        kv_scan(ev, s, e, false, true, NULL);
}
