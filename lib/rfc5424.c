/* rfc5424.c -- RFC 5424 syslog messages into a psb_event, in one pass.
 *
 *   SYSLOG-MSG = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID
 *                SP STRUCTURED-DATA [SP MSG]
 *
 * The grammar is applied as written, with one tolerance (SP after '=' in an
 * SD-PARAM, see parse_sd): a message that breaks it becomes a pipeline_error
 * naming the field and the 1-based column of the byte that broke it (for
 * TIMESTAMP, the column where the timestamp starts). Header fields and SD names
 * are slices into the message; only PARAM-VALUEs that contain escapes are
 * copied (unescaped) into the event's scratch. MSG is taken as it is: any
 * bytes, a BOM kept, invalid UTF-8 left for the writer to repair. An SD-ID of
 * Juniper's enterprise number adds the label vendor=juniper.
 */
#include "pasban/parse.h"

#include <string.h>

/* Field limits of RFC 5424 section 6. */
#define HOSTNAME_MAX 255
#define APPNAME_MAX 48
#define PROCID_MAX 128
#define MSGID_MAX 32
#define SDNAME_MAX 32

/* Juniper's IANA private enterprise number; its SD-IDs read "junos@2636.1.1.1.2.18". */
#define JUNIPER_PEN "2636"

typedef struct cursor {
    const unsigned char *s;
    size_t n;
    size_t i;
    psb_event *ev;
} cursor;

/* Byte classes, one table lookup per byte on the hot loops. */
enum {
    C_PRINT = 1,   /* PRINTUSASCII, %d33-126 */
    C_SDNAME = 2,  /* PRINTUSASCII except '=', ']', '"' (SP is not printable) */
    C_VALSTOP = 4, /* '"', '\\', ']': where a PARAM-VALUE scan must look closer */
};

/* clang-format off */
static const unsigned char byte_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 3, 5, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 7, 5, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0,
    /* 0x80..0xFF: none */
};
/* clang-format on */

static inline int is_print(unsigned char c)
{
    return byte_class[c] & C_PRINT;
}

static inline int is_sdname(unsigned char c)
{
    return byte_class[c] & C_SDNAME;
}

static inline int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Every error goes through here so the wording stays uniform. Returns -1. */
#define FAIL(cur, at, fmt, ...)                                                                    \
    (psb_event_set_error((cur)->ev, "rfc5424: " fmt " at column %zu", __VA_ARGS__, (at) + 1), -1)

/* "<" PRIVAL ">": 1*3DIGIT in 0..191, no leading zeros ("<0>" is the only value
 * that starts with 0). */
static int parse_pri(cursor *c)
{
    const unsigned char *s = c->s;
    if (c->n == 0 || s[0] != '<')
        return FAIL(c, (size_t)0, "invalid %s", "PRI");
    size_t i = 1;
    unsigned v = 0;
    while (i < c->n && i <= 3 && is_digit(s[i]))
        v = v * 10 + (unsigned)(s[i++] - '0');
    if (i == 1 || (i > 2 && s[1] == '0'))
        return FAIL(c, (size_t)1, "invalid %s", "PRI");
    if (v > 191)
        return FAIL(c, (size_t)1, "%s %u out of range 0..191", "PRI", v);
    if (i >= c->n || s[i] != '>')
        return FAIL(c, i, "invalid %s", "PRI");
    c->ev->priority = (int)v;
    c->i = i + 1;
    return 0;
}

/* NONZERO-DIGIT 0*2DIGIT, then SP. */
static int parse_version(cursor *c)
{
    size_t i = c->i, start = i;
    unsigned v = 0;
    if (i >= c->n || c->s[i] < '1' || c->s[i] > '9')
        return FAIL(c, i, "invalid %s", "VERSION");
    while (i < c->n && is_digit(c->s[i]) && i - start < 3)
        v = v * 10 + (unsigned)(c->s[i++] - '0');
    if (i >= c->n)
        return FAIL(c, i, "missing %s", "TIMESTAMP");
    if (c->s[i] != ' ')
        return FAIL(c, i, "invalid %s", "VERSION");
    c->ev->version = (int)v;
    c->i = i + 1;
    return 0;
}

/* NILVALUE or FULL-DATE "T" FULL-TIME. psb_parse_rfc3339 does the calendar; the
 * checks here are where RFC 5424 is stricter than RFC 3339: upper-case "T" and
 * "Z", at most 6 fraction digits, no leap second. */
static int parse_timestamp(cursor *c)
{
    const unsigned char *s = c->s + c->i;
    size_t avail = c->n - c->i, len = 0;
    while (len < avail && s[len] != ' ')
        len++;
    if (len == 1 && s[0] == '-') {
        c->i += 2; /* timestamp_ms stays the receive time */
        return len < avail ? 0 : FAIL(c, c->i - 1, "missing %s", "HOSTNAME");
    }
    if (len < 20 || len > 32 || s[10] != 'T' || (s[17] == '6' && s[18] == '0'))
        goto bad;
    size_t z = 19;
    if (s[z] == '.') {
        z++;
        while (z < len && is_digit(s[z]))
            z++;
        if (z - 20 > 6)
            goto bad;
    }
    if (z >= len || (s[z] != 'Z' && s[z] != '+' && s[z] != '-'))
        goto bad;
    int64_t ms;
    if (psb_parse_rfc3339((const char *)s, len, &ms) != 0)
        goto bad;
    if (len == avail)
        return FAIL(c, c->i + len, "missing %s", "HOSTNAME");
    c->ev->timestamp_ms = ms;
    c->i += len + 1;
    return 0;
bad:
    return FAIL(c, c->i, "invalid %s", "TIMESTAMP");
}

/* NILVALUE or 1*max PRINTUSASCII, then SP. A NILVALUE leaves *out absent. */
static int parse_field(cursor *c, const char *name, size_t max, const char *next, psb_str *out)
{
    const unsigned char *s = c->s;
    size_t i = c->i, start = i;
    while (i < c->n && is_print(s[i]))
        i++;
    if (i == start)
        return FAIL(c, i, "%s %s", i < c->n ? "invalid" : "missing", name);
    if (i - start > max)
        return FAIL(c, start + max, "%s longer than %zu characters", name, max);
    if (i >= c->n)
        return FAIL(c, i, "missing %s", next);
    if (s[i] != ' ')
        return FAIL(c, i, "invalid %s", name);
    if (!(i - start == 1 && s[start] == '-'))
        *out = psb_str_make((const char *)s + start, i - start);
    c->i = i + 1;
    return 0;
}

/* SD-NAME: 1*32 PRINTUSASCII except '=', SP, ']', '"'. */
static int parse_sdname(cursor *c, const char *what, psb_str *out)
{
    size_t i = c->i, start = i;
    while (i < c->n && is_sdname(c->s[i]))
        i++;
    if (i == start)
        return FAIL(c, i, "invalid %s", what);
    if (i - start > SDNAME_MAX)
        return FAIL(c, start + SDNAME_MAX, "%s longer than %d characters", what, SDNAME_MAX);
    *out = psb_str_make((const char *)c->s + start, i - start);
    c->i = i;
    return 0;
}

/* PARAM-VALUE after its opening quote. '"', '\' and ']' must be escaped; a
 * backslash before any other byte is kept with it (RFC 5424 section 6.3.3).
 * Values without escapes stay slices of the message. */
static int parse_value(cursor *c, psb_str *out)
{
    const unsigned char *s = c->s;
    size_t i = c->i, start = i;
    int escaped = 0;
    for (; i < c->n; i++) {
        unsigned char ch = s[i];
        if (!(byte_class[ch] & C_VALSTOP))
            continue;
        if (ch == '"')
            break;
        if (ch == ']')
            return FAIL(c, i, "unescaped ']' in %s", "PARAM-VALUE");
        if (ch == '\\') {
            escaped = 1;
            i++; /* whatever follows is part of the value, never the closing quote */
        }
    }
    if (i >= c->n)
        return FAIL(c, c->n, "unterminated %s", "PARAM-VALUE");
    c->i = i + 1;
    if (!escaped) {
        *out = psb_str_make((const char *)s + start, i - start);
        return 0;
    }
    /* Unescape into scratch: never longer than the raw value. */
    psb_str dst = psb_event_store(c->ev, (const char *)s + start, i - start);
    char *d = (char *)dst.ptr;
    size_t o = 0;
    for (size_t k = start; k < i; k++) {
        if (s[k] == '\\' && (s[k + 1] == '"' || s[k + 1] == '\\' || s[k + 1] == ']'))
            k++;
        d[o++] = (char)s[k];
    }
    c->ev->scratch_len -= (i - start) - o;
    *out = psb_str_make(d, o);
    return 0;
}

static int is_juniper(psb_str id)
{
    const char *at = memchr(id.ptr, '@', id.len);
    if (!at)
        return 0;
    size_t rest = id.len - (size_t)(at + 1 - id.ptr);
    size_t pl = sizeof(JUNIPER_PEN) - 1;
    return rest >= pl && memcmp(at + 1, JUNIPER_PEN, pl) == 0 && (rest == pl || at[1 + pl] == '.');
}

/* NILVALUE or 1*SD-ELEMENT, where
 * SD-ELEMENT = "[" SD-ID *(SP PARAM-NAME "=" %d34 PARAM-VALUE %d34) "]". */
static int parse_sd(cursor *c)
{
    psb_event *ev = c->ev;
    const unsigned char *s = c->s;
    if (c->i >= c->n)
        return FAIL(c, c->i, "missing %s", "STRUCTURED-DATA");
    if (s[c->i] == '-') {
        c->i++;
        return 0;
    }
    if (s[c->i] != '[')
        return FAIL(c, c->i, "invalid %s", "STRUCTURED-DATA");
    int juniper = 0;
    while (c->i < c->n && s[c->i] == '[') {
        size_t at = c->i;
        if (ev->n_sd >= PSB_EVENT_MAX_SD_ELEMENTS)
            return FAIL(c, at, "more than %d SD-ELEMENTs", PSB_EVENT_MAX_SD_ELEMENTS);
        c->i++;
        psb_sd_element *el = &ev->sd[ev->n_sd];
        if (parse_sdname(c, "SD-ID", &el->id) != 0)
            return -1;
        for (size_t k = 0; k < ev->n_sd; k++)
            if (ev->sd[k].id.len == el->id.len &&
                memcmp(ev->sd[k].id.ptr, el->id.ptr, el->id.len) == 0)
                return FAIL(c, at + 1, "duplicate %s", "SD-ID");
        el->first_param = ev->n_sd_params;
        el->n_params = 0;
        ev->n_sd++;
        if (!juniper && is_juniper(el->id))
            juniper = 1;
        for (;;) {
            if (c->i >= c->n)
                return FAIL(c, c->i, "unterminated %s", "SD-ELEMENT");
            if (s[c->i] == ']') {
                c->i++;
                break;
            }
            if (s[c->i] != ' ')
                return FAIL(c, c->i, "invalid %s", el->n_params ? "SD-PARAM" : "SD-ID");
            c->i++;
            if (ev->n_sd_params >= PSB_EVENT_MAX_SD_PARAMS)
                return FAIL(c, c->i, "more than %d SD-PARAMs", PSB_EVENT_MAX_SD_PARAMS);
            psb_kv *kv = &ev->sd_params[ev->n_sd_params];
            if (parse_sdname(c, "PARAM-NAME", &kv->key) != 0)
                return -1;
            if (c->i >= c->n || s[c->i] != '=')
                return FAIL(c, c->i, "expected '=\"' after %s", "PARAM-NAME");
            c->i++;
            /* The one deviation taken: SP between '=' and the quote. RFC 5424's
             * own example 3 is wrapped there, and copies of it (rsyslog's test
             * suite among them) carry "eventSource= \"Application\"". */
            while (c->i < c->n && s[c->i] == ' ')
                c->i++;
            if (c->i >= c->n || s[c->i] != '"')
                return FAIL(c, c->i, "expected '=\"' after %s", "PARAM-NAME");
            c->i++;
            if (parse_value(c, &kv->value) != 0)
                return -1;
            ev->n_sd_params++;
            el->n_params++;
        }
    }
    if (juniper)
        psb_event_add_label(ev, PSB_STR_LIT("vendor"), PSB_STR_LIT("juniper"));
    return 0;
}

int psb_parse_rfc5424(const psb_parse_opts *opts, const char *msg, size_t len, psb_event *ev)
{
    (void)opts;
    cursor c = {(const unsigned char *)msg, len, 0, ev};
    /* Unescaped values are stored in scratch and never outgrow the message;
     * psb_parse has reserved this already, direct callers may not have. */
    psb_event_reserve(ev, len);
    if (parse_pri(&c) || parse_version(&c) || parse_timestamp(&c) ||
        parse_field(&c, "HOSTNAME", HOSTNAME_MAX, "APP-NAME", &ev->hostname) ||
        parse_field(&c, "APP-NAME", APPNAME_MAX, "PROCID", &ev->appname) ||
        parse_field(&c, "PROCID", PROCID_MAX, "MSGID", &ev->procid) ||
        parse_field(&c, "MSGID", MSGID_MAX, "STRUCTURED-DATA", &ev->msgid) || parse_sd(&c))
        return -1;
    if (c.i < len) {
        if (msg[c.i] != ' ')
            return FAIL(&c, c.i, "expected SP before %s", "MSG");
        if (c.i + 1 < len)
            ev->message = psb_str_make(msg + c.i + 1, len - c.i - 1);
    }
    return 0;
}
