/* ecs_json.c -- psb_event to one line of nested ECS JSON.
 *
 * The writer emits JSON text directly into one reused buffer. It started on
 * yajl's generator, which cost about 1.7 us per syslog event here (a state
 * machine check and a callback per token, sprintf for integers, byte-by-byte
 * escaping): more than the whole per-line budget of --parse. This one checks
 * and copies strings eight bytes at a time and formats numbers and times by
 * hand; the text is the same as yajl's (same escapes: \b \t \n \f \r \" \\ and
 * \u00XX for other control bytes; '/' and DEL as they are).
 */
#include "pasban/ecs.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Containers the writer may open: a JSON body's PSB_MAX_JSON_DEPTH plus the
 * few levels of merged pipeline fields, with room to spare. */
#define ECS_MAX_DEPTH 64

struct psb_ecs_writer {
    char *buf;
    size_t len;
    size_t cap;
    int depth;
    bool after_key; /* the next value follows "key": no comma */
    bool need_comma[ECS_MAX_DEPTH + 1];
    /* Two days' "YYYY-MM-DDT" text: an event's own day and its receive day. */
    int64_t day_cached[2]; /* days since epoch, or INT64_MIN */
    char date_text[2][12];
    int day_last; /* the entry used last, kept on a miss */
    /* Two seconds' "YYYY-MM-DDTHH:MM:SS" text, likewise. */
    int64_t sec_cached[2];
    char sec_text[2][20];
    int sec_last;
};

psb_ecs_writer *psb_ecs_writer_new(void)
{
    psb_ecs_writer *w = psb_xcalloc(1, sizeof(*w));
    w->cap = 4096;
    w->buf = psb_xmalloc(w->cap);
    w->day_cached[0] = w->day_cached[1] = INT64_MIN;
    w->sec_cached[0] = w->sec_cached[1] = INT64_MIN;
    return w;
}

void psb_ecs_writer_free(psb_ecs_writer *w)
{
    if (!w)
        return;
    free(w->buf);
    free(w);
}

/* ---- the emitter ------------------------------------------------------------ */

static void ensure(psb_ecs_writer *w, size_t n)
{
    if (w->cap - w->len >= n)
        return;
    size_t cap = w->cap;
    while (cap - w->len < n)
        cap *= 2;
    w->buf = psb_xrealloc(w->buf, cap);
    w->cap = cap;
}

static inline void put_raw(psb_ecs_writer *w, const char *p, size_t n)
{
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

/* A comma before every member but the first of its container. */
static inline void sep(psb_ecs_writer *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma[w->depth])
        w->buf[w->len++] = ',';
    w->need_comma[w->depth] = true;
}

static void open_c(psb_ecs_writer *w, char c)
{
    ensure(w, 2);
    sep(w);
    w->buf[w->len++] = c;
    /* Deeper than ECS_MAX_DEPTH cannot come from a parsed body (its depth is
     * limited); clamp rather than overrun, the commas stay right at that level. */
    if (w->depth < ECS_MAX_DEPTH)
        w->depth++;
    w->need_comma[w->depth] = false;
}

static void close_c(psb_ecs_writer *w, char c)
{
    ensure(w, 1);
    w->buf[w->len++] = c;
    if (w->depth > 0)
        w->depth--;
}

#define OPEN_MAP(w) open_c((w), '{')
#define CLOSE_MAP(w) close_c((w), '}')

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))
            return 0; /* overlong, or a UTF-16 surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

#ifndef __SSE2__ /* the portable scan; x86-64 always has SSE2 */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Nonzero when one of the 8 bytes in x needs a look: a control byte, '"', '\\'
 * or a byte of a multi-byte UTF-8 sequence. */
static inline uint64_t word_special(uint64_t x)
{
    uint64_t ctl = (x - ONES * 0x20) & ~x; /* bytes < 0x20 (or >= 0x80) */
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
    uint64_t quote = (q - ONES) & ~q, bslash = (b - ONES) & ~b;
    return (ctl | quote | bslash | x) & HIGHS;
}
#endif

/* Emit a JSON string, replacing each invalid UTF-8 byte by U+FFFD so the
 * output is always valid JSON whatever a device sent. */
static void put_string(psb_ecs_writer *w, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)p;
    ensure(w, n * 6 + 19); /* worst case \u00XX for every byte; 16 for a full store */
    char *o = w->buf + w->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
#ifdef __SSE2__
        /* Sixteen bytes at a time, stored as they are scanned (the room reserved
         * above covers the over-store); a signed compare with 0x20 catches both
         * control bytes and bytes >= 0x80. */
        const __m128i sp = _mm_set1_epi8(0x20), qu = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
        while (i + 16 <= n) {
            __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
            _mm_storeu_si128((__m128i *)o, v);
            unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
                _mm_cmplt_epi8(v, sp), _mm_or_si128(_mm_cmpeq_epi8(v, qu), _mm_cmpeq_epi8(v, bs))));
            if (m) {
                unsigned k = (unsigned)__builtin_ctz(m);
                i += k;
                o += k;
                goto special;
            }
            i += 16;
            o += 16;
        }
        if (i < n) {
            /* The last few bytes: through a padded copy, never reading past s. */
            size_t rem = n - i;
            unsigned char tmp[16];
            memset(tmp, 'a', sizeof(tmp));
            memcpy(tmp, s + i, rem);
            __m128i v = _mm_loadu_si128((const __m128i *)tmp);
            _mm_storeu_si128((__m128i *)o, v);
            unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
                _mm_cmplt_epi8(v, sp), _mm_or_si128(_mm_cmpeq_epi8(v, qu), _mm_cmpeq_epi8(v, bs))));
            m &= (1u << rem) - 1;
            unsigned k = m ? (unsigned)__builtin_ctz(m) : (unsigned)rem;
            i += k;
            o += k;
            if (i >= n)
                break;
            goto special;
        }
        break; /* the runs ended exactly at n */
#else
        {
            size_t start = i;
            while (i + 8 <= n) {
                uint64_t x;
                memcpy(&x, s + i, 8);
                if (word_special(x))
                    break;
                i += 8;
            }
            while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
                i++;
            memcpy(o, s + start, i - start);
            o += i - start;
        }
        if (i >= n)
            break;
#endif
#ifdef __SSE2__
    special:;
#endif
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (k) {
                memcpy(o, s + i, k);
                o += k;
                i += k;
            } else {
                memcpy(o, "\xEF\xBF\xBD", 3);
                o += 3;
                i++;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\t':
            *o++ = 't';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\r':
            *o++ = 'r';
            break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
            break;
        }
        i++;
    }
    *o++ = '"';
    w->len = (size_t)(o - w->buf);
}

static void gen_str(psb_ecs_writer *w, const char *p, size_t n)
{
    sep(w);
    put_string(w, p, n);
}

static void gen_key(psb_ecs_writer *w, const char *p, size_t n)
{
    sep(w);
    put_string(w, p, n);
    w->buf[w->len++] = ':'; /* put_string reserved room for it */
    w->after_key = true;
}

/* A key known to need no escaping: copied as it is. */
static void gen_lit_key(psb_ecs_writer *w, const char *p, size_t n)
{
    ensure(w, n + 4);
    sep(w);
    w->buf[w->len++] = '"';
    put_raw(w, p, n);
    w->buf[w->len++] = '"';
    w->buf[w->len++] = ':';
    w->after_key = true;
}

static void gen_int(psb_ecs_writer *w, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[sizeof(tmp) - 1 - n++] = '-';
    ensure(w, n + 1);
    sep(w);
    put_raw(w, tmp + sizeof(tmp) - n, n);
}

static void gen_raw_value(psb_ecs_writer *w, const char *p, size_t n)
{
    ensure(w, n + 1);
    sep(w);
    put_raw(w, p, n);
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* "YYYY-MM-DDTHH:MM:SS" of second sec into out (19 bytes). The date part is
 * cached: the events of a stream mostly share their day. Returns false for a
 * year psb_format_time_ms clamps, which is then not cached. */
static bool second_text(psb_ecs_writer *w, int64_t sec, char *out)
{
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int e = days == w->day_cached[0] ? 0 : days == w->day_cached[1] ? 1 : -1;
    if (e < 0) {
        e = w->day_last ^ 1;
        char buf[PSB_TIME_BUFSZ];
        int64_t y;
        unsigned mo, d;
        psb_civil_from_days(days, &y, &mo, &d);
        if (y < 0 || y > 9999)
            return false;
        psb_format_time_ms(days * 86400000, buf);
        memcpy(w->date_text[e], buf, 11);
        w->day_cached[e] = days;
    }
    w->day_last = e;
    unsigned secs = (unsigned)rem;
    memcpy(out, w->date_text[e], 11);
    put2(out + 11, secs / 3600);
    out[13] = ':';
    put2(out + 14, secs / 60 % 60);
    out[16] = ':';
    put2(out + 17, secs % 60);
    return true;
}

/* RFC 3339 UTC with milliseconds, as psb_format_time_ms writes it. Two seconds
 * are cached (an event's own time and its receive time), since consecutive
 * events mostly repeat both. */
static void gen_time(psb_ecs_writer *w, int64_t ms)
{
    int64_t sec = ms / 1000;
    int64_t msec = ms % 1000;
    if (msec < 0) {
        msec += 1000;
        sec--;
    }
    int e = sec == w->sec_cached[0] ? 0 : sec == w->sec_cached[1] ? 1 : -1;
    if (e < 0) {
        e = w->sec_last ^ 1; /* keep the one used last: the other time of the pair */
        if (!second_text(w, sec, w->sec_text[e])) {
            char buf[PSB_TIME_BUFSZ];
            size_t n = psb_format_time_ms(ms, buf);
            gen_str(w, buf, n);
            return;
        }
        w->sec_cached[e] = sec;
    }
    w->sec_last = e;
    ensure(w, 27);
    sep(w);
    char *o = w->buf + w->len;
    o[0] = '"';
    memcpy(o + 1, w->sec_text[e], 19);
    o[20] = '.';
    o[21] = (char)('0' + msec / 100);
    put2(o + 22, (unsigned)(msec % 100));
    o[24] = 'Z';
    o[25] = '"';
    w->len += 26;
}

#define KEY(w, lit) gen_lit_key((w), (lit), sizeof(lit) - 1)

static long long to_ll(psb_str s)
{
    long long v = 0;
    for (size_t i = 0; i < s.len; i++)
        v = v * 10 + (s.ptr[i] - '0');
    return v;
}

/* Syslog events have a fixed shape, so their line is assembled from constant
 * fragments (each with its own commas and braces) instead of token by token:
 * this is the hot path of --parse and of the daemon. */
#define FRAG(w, lit) frag((w), (lit), sizeof(lit) - 1)

static inline void frag(psb_ecs_writer *w, const char *p, size_t n)
{
    ensure(w, n);
    put_raw(w, p, n);
}

/* A member of an object that may or may not have members before it. */
#define FIELD(w, more, lit)                                                                        \
    do {                                                                                           \
        if (more)                                                                                  \
            FRAG(w, ",");                                                                          \
        FRAG(w, lit);                                                                              \
    } while (0)

static void frag_int(psb_ecs_writer *w, long long v)
{
    w->after_key = true; /* gen_int without a comma */
    gen_int(w, v);
}

static void frag_time(psb_ecs_writer *w, int64_t ms)
{
    w->after_key = true;
    gen_time(w, ms);
}

static void frag_kv_object(psb_ecs_writer *w, const psb_kv *kv, size_t n)
{
    FRAG(w, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            FRAG(w, ",");
        put_string(w, kv[i].key.ptr, kv[i].key.len);
        FRAG(w, ":");
        put_string(w, kv[i].value.ptr, kv[i].value.len);
    }
    FRAG(w, "}");
}

static void write_syslog(psb_ecs_writer *w, const psb_event *ev)
{
    FRAG(w, "{\"@timestamp\":");
    frag_time(w, ev->timestamp_ms);
    FRAG(w, ",\"event\":{\"created\":");
    frag_time(w, ev->created_ms);
    if (ev->kind == PSB_EVENT_KIND_PIPELINE_ERROR)
        FRAG(w, ",\"kind\":\"pipeline_error\",\"original\":");
    else
        FRAG(w, ",\"kind\":\"event\",\"original\":");
    put_string(w, ev->original.ptr, ev->original.len);
    FRAG(w, "}");
    if (ev->error_message.ptr) {
        FRAG(w, ",\"error\":{\"message\":");
        put_string(w, ev->error_message.ptr, ev->error_message.len);
        FRAG(w, "}");
    }
    if (ev->organization_id.ptr) {
        FRAG(w, ",\"organization\":{\"id\":");
        put_string(w, ev->organization_id.ptr, ev->organization_id.len);
        FRAG(w, "}");
    }
    if (ev->observer_ip.ptr) {
        FRAG(w, ",\"observer\":{\"ip\":");
        put_string(w, ev->observer_ip.ptr, ev->observer_ip.len);
        FRAG(w, "}");
    }
    if (ev->hostname.ptr) {
        FRAG(w, ",\"host\":{\"hostname\":");
        put_string(w, ev->hostname.ptr, ev->hostname.len);
        FRAG(w, "}");
    }
    bool pid = psb_str_is_digits(ev->procid);
    if (ev->appname.ptr || pid) {
        FRAG(w, ",\"process\":{");
        if (ev->appname.ptr) {
            FRAG(w, "\"name\":");
            put_string(w, ev->appname.ptr, ev->appname.len);
            if (pid)
                FRAG(w, ",");
        }
        if (pid) {
            FRAG(w, "\"pid\":");
            frag_int(w, to_ll(ev->procid));
        }
        FRAG(w, "}");
    }
    if (ev->priority >= 0 || ev->version > 0 || ev->appname.ptr || ev->procid.ptr ||
        ev->msgid.ptr || ev->n_sd) {
        FRAG(w, ",\"log\":{\"syslog\":{");
        bool more = false;
        if (ev->priority >= 0) {
            FRAG(w, "\"priority\":");
            frag_int(w, ev->priority);
            FRAG(w, ",\"facility\":{\"code\":");
            frag_int(w, ev->priority >> 3);
            FRAG(w, "},\"severity\":{\"code\":");
            frag_int(w, ev->priority & 7);
            FRAG(w, "}");
            more = true;
        }
        if (ev->version > 0) {
            FIELD(w, more, "\"version\":");
            frag_int(w, ev->version);
            more = true;
        }
        if (ev->appname.ptr) {
            FIELD(w, more, "\"appname\":");
            put_string(w, ev->appname.ptr, ev->appname.len);
            more = true;
        }
        if (ev->procid.ptr) {
            FIELD(w, more, "\"procid\":");
            put_string(w, ev->procid.ptr, ev->procid.len);
            more = true;
        }
        if (ev->msgid.ptr) {
            FIELD(w, more, "\"msgid\":");
            put_string(w, ev->msgid.ptr, ev->msgid.len);
            more = true;
        }
        if (ev->n_sd) {
            FIELD(w, more, "\"structured_data\":{");
            for (size_t i = 0; i < ev->n_sd; i++) {
                if (i)
                    FRAG(w, ",");
                put_string(w, ev->sd[i].id.ptr, ev->sd[i].id.len);
                FRAG(w, ":");
                frag_kv_object(w, ev->sd_params + ev->sd[i].first_param, ev->sd[i].n_params);
            }
            FRAG(w, "}");
        }
        FRAG(w, "}}");
    }
    if (ev->message.ptr) {
        FRAG(w, ",\"message\":");
        put_string(w, ev->message.ptr, ev->message.len);
    }
    if (ev->n_labels) {
        FRAG(w, ",\"labels\":");
        frag_kv_object(w, ev->labels, ev->n_labels);
    }
    FRAG(w, "}");
}

/* JSON-origin events: the object as given, with the pipeline's fields merged
 * in. A given value at one of our paths is replaced (a body cannot claim to be
 * another operator); everything else is kept as it came. */
enum { OV_STR, OV_TIME };
typedef struct override {
    const char *path;
    size_t path_len;
    int type;
    psb_str s;
    int64_t ms;
    bool done;
} override;

typedef struct merge {
    psb_ecs_writer *w;
    const psb_event *ev;
    override ov[8];
    size_t n;
} merge;

static void ov_value(merge *m, override *o)
{
    if (o->type == OV_TIME)
        gen_time(m->w, o->ms);
    else
        gen_str(m->w, o->s.ptr, o->s.len);
    o->done = true;
}

static void gen_json_value(merge *m, yajl_val v);

/* Emit the overrides under prefix that the given object did not contain. */
static void emit_pending(merge *m, const char *prefix, size_t plen)
{
    for (size_t i = 0; i < m->n; i++) {
        override *o = &m->ov[i];
        if (o->done || strncmp(o->path, prefix, plen) != 0)
            continue;
        const char *rest = o->path + plen;
        const char *dot = strchr(rest, '.');
        if (!dot) {
            gen_key(m->w, rest, strlen(rest));
            ov_value(m, o);
            continue;
        }
        gen_key(m->w, rest, (size_t)(dot - rest));
        OPEN_MAP(m->w);
        emit_pending(m, o->path, (size_t)(dot - o->path) + 1);
        CLOSE_MAP(m->w);
    }
}

static void gen_json_object(merge *m, yajl_val v, const char *prefix, size_t plen)
{
    char path[256];
    OPEN_MAP(m->w);
    if (plen == 0) { /* @timestamp leads, as in every other event */
        KEY(m->w, "@timestamp");
        ov_value(m, &m->ov[0]);
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        size_t kl = strlen(k);
        yajl_val child = v->u.object.values[i];
        bool replaced = false, parent = false;
        if (plen + kl + 1 < sizeof(path)) {
            memcpy(path, prefix, plen);
            memcpy(path + plen, k, kl);
            path[plen + kl] = '\0';
            for (size_t j = 0; j < m->n; j++) {
                size_t pl = m->ov[j].path_len;
                if (pl == plen + kl && memcmp(m->ov[j].path, path, pl) == 0)
                    replaced = true;
                else if (pl > plen + kl && m->ov[j].path[plen + kl] == '.' &&
                         memcmp(m->ov[j].path, path, plen + kl) == 0)
                    parent = true;
            }
        }
        if (replaced)
            continue;
        if (parent && !YAJL_IS_OBJECT(child))
            continue; /* e.g. "event": "x" where we need an object: ours wins */
        gen_key(m->w, k, kl);
        if (parent) {
            path[plen + kl] = '.';
            gen_json_object(m, child, path, plen + kl + 1);
        } else {
            gen_json_value(m, child);
        }
    }
    emit_pending(m, prefix, plen);
    CLOSE_MAP(m->w);
}

static void gen_json_value(merge *m, yajl_val v)
{
    psb_ecs_writer *w = m->w;
    if (YAJL_IS_STRING(v)) {
        gen_str(w, v->u.string, strlen(v->u.string));
    } else if (YAJL_IS_NUMBER(v)) {
        gen_raw_value(w, v->u.number.r, strlen(v->u.number.r));
    } else if (YAJL_IS_OBJECT(v)) {
        OPEN_MAP(w);
        for (size_t i = 0; i < v->u.object.len; i++) {
            gen_key(w, v->u.object.keys[i], strlen(v->u.object.keys[i]));
            gen_json_value(m, v->u.object.values[i]);
        }
        CLOSE_MAP(w);
    } else if (YAJL_IS_ARRAY(v)) {
        open_c(w, '[');
        for (size_t i = 0; i < v->u.array.len; i++)
            gen_json_value(m, v->u.array.values[i]);
        close_c(w, ']');
    } else if (YAJL_IS_TRUE(v)) {
        gen_raw_value(w, "true", 4);
    } else if (YAJL_IS_FALSE(v)) {
        gen_raw_value(w, "false", 5);
    } else {
        gen_raw_value(w, "null", 4);
    }
}

static void add_ov(merge *m, const char *path, int type, psb_str s, int64_t ms)
{
    m->ov[m->n++] = (override){path, strlen(path), type, s, ms, false};
}

static void write_json(psb_ecs_writer *w, const psb_event *ev)
{
    merge m = {.w = w, .ev = ev};
    add_ov(&m, "@timestamp", OV_TIME, PSB_STR_NULL, ev->timestamp_ms); /* must stay first */
    add_ov(&m, "event.created", OV_TIME, PSB_STR_NULL, ev->created_ms);
    add_ov(&m, "event.kind", OV_STR,
           ev->kind == PSB_EVENT_KIND_PIPELINE_ERROR ? PSB_STR_LIT("pipeline_error")
                                                     : PSB_STR_LIT("event"),
           0);
    add_ov(&m, "event.original", OV_STR, ev->original, 0);
    if (ev->organization_id.ptr)
        add_ov(&m, "organization.id", OV_STR, ev->organization_id, 0);
    if (ev->observer_ip.ptr)
        add_ov(&m, "observer.ip", OV_STR, ev->observer_ip, 0);
    if (ev->error_message.ptr)
        add_ov(&m, "error.message", OV_STR, ev->error_message, 0);
    gen_json_object(&m, ev->json, "", 0);
}

int psb_ecs_write(psb_ecs_writer *w, const psb_event *ev, const char **out, size_t *len)
{
    w->len = 0;
    w->depth = 0;
    w->after_key = false;
    w->need_comma[0] = false;
    if (ev->json && YAJL_IS_OBJECT(ev->json))
        write_json(w, ev);
    else
        write_syslog(w, ev);
    if (w->depth != 0)
        return -1; /* unbalanced containers: a bug in this file */
    *out = w->buf;
    *len = w->len;
    return 0;
}
