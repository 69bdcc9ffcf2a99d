/* ecs_json.c -- psb_event to one line of nested ECS JSON through yajl's generator. */
#include "pasban/ecs.h"

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

struct psb_ecs_writer {
    yajl_gen g;
    char *fix; /* sanitised copy of a value that was not valid UTF-8 */
    size_t fix_cap;
    char *esc; /* a value escaped by put_value, before yajl takes it */
    size_t esc_cap;
    char *out; /* a syslog-origin event, written without yajl */
    size_t out_len, out_cap;
};

psb_ecs_writer *psb_ecs_writer_new(void)
{
    psb_ecs_writer *w = psb_xcalloc(1, sizeof(*w));
    w->g = yajl_gen_alloc(NULL);
    if (!w->g) {
        free(w);
        return NULL;
    }
    /* We check UTF-8 ourselves (and repair it) so a bad byte never costs a field. */
    yajl_gen_config(w->g, yajl_gen_validate_utf8, 0);
    return w;
}

void psb_ecs_writer_free(psb_ecs_writer *w)
{
    if (!w)
        return;
    if (w->g)
        yajl_gen_free(w->g);
    free(w->fix);
    free(w->esc);
    free(w->out);
    free(w);
}

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

/* Write s quoted and escaped exactly as yajl does (short escapes for \b \f \n \r
 * \t, \u00XX for other controls, nothing else); o has room for n * 6 + 2. */
static char *escape_into(char *o, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] >= 0x20 && s[j] != '"' && s[j] != '\\')
            j++;
        memcpy(o, s + i, j - i);
        o += j - i;
        if (j == n)
            break;
        unsigned char c = s[j];
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
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
        i = j + 1;
    }
    *o++ = '"';
    return o;
}

/* s as valid UTF-8: s itself, or a copy in w->fix with each invalid byte
 * replaced by U+FFFD. */
static const unsigned char *valid_text(psb_ecs_writer *w, const char *p, size_t n, size_t *len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < n && s[i] < 0x80)
        i++;
    while (i < n) {
        size_t k = utf8_seq(s + i, n - i);
        if (!k)
            break;
        i += k;
    }
    *len = n;
    if (i == n)
        return s;
    if (w->fix_cap < n * 3) {
        w->fix_cap = n * 3;
        w->fix = psb_xrealloc(w->fix, w->fix_cap);
    }
    size_t o = i;
    memcpy(w->fix, s, i);
    while (i < n) {
        size_t k = utf8_seq(s + i, n - i);
        if (k) {
            memcpy(w->fix + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(w->fix + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    *len = o;
    return (const unsigned char *)w->fix;
}

/* Emit a string through yajl (JSON-origin events). Values are escaped here and
 * handed over as a raw token (yajl_gen_number copies its text as it is), since
 * yajl's own escaper goes byte by byte; keys must go through yajl_gen_string. */
static void gen_text(psb_ecs_writer *w, const char *p, size_t n, bool key)
{
    size_t len;
    const unsigned char *s = valid_text(w, p, n, &len);
    if (key) {
        yajl_gen_string(w->g, s, len);
        return;
    }
    if (w->esc_cap < len * 6 + 2) {
        w->esc_cap = len * 6 + 2;
        w->esc = psb_xrealloc(w->esc, w->esc_cap);
    }
    char *end = escape_into(w->esc, s, len);
    yajl_gen_number(w->g, w->esc, (size_t)(end - w->esc));
}

static void gen_str(psb_ecs_writer *w, const char *p, size_t n)
{
    gen_text(w, p, n, false);
}

static void gen_key(psb_ecs_writer *w, const char *p, size_t n)
{
    gen_text(w, p, n, true);
}

static bool all_digits(psb_str s)
{
    if (!s.len || s.len > 18)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
    return true;
}

static void gen_time(psb_ecs_writer *w, int64_t ms)
{
    char buf[PSB_TIME_BUFSZ];
    size_t n = psb_format_time_ms(ms, buf);
    gen_str(w, buf, n);
}

/* ---- syslog-origin events: a fixed shape, written straight into w->out ---- */

static void out_reserve(psb_ecs_writer *w, size_t n)
{
    if (w->out_cap - w->out_len >= n)
        return;
    size_t cap = w->out_cap ? w->out_cap : 4096;
    while (cap - w->out_len < n)
        cap *= 2;
    w->out = psb_xrealloc(w->out, cap);
    w->out_cap = cap;
}

static void out_lit(psb_ecs_writer *w, const char *s, size_t n)
{
    out_reserve(w, n);
    memcpy(w->out + w->out_len, s, n);
    w->out_len += n;
}

#define LIT(w, s) out_lit((w), (s), sizeof(s) - 1)

static void out_str(psb_ecs_writer *w, psb_str v)
{
    size_t len;
    const unsigned char *s = valid_text(w, v.ptr, v.len, &len);
    out_reserve(w, len * 6 + 2);
    char *end = escape_into(w->out + w->out_len, s, len);
    w->out_len = (size_t)(end - w->out);
}

static void out_int(psb_ecs_writer *w, long long v)
{
    char buf[24];
    size_t i = sizeof(buf);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        buf[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[--i] = '-';
    out_lit(w, buf + i, sizeof(buf) - i);
}

static long long digits_value(psb_str s)
{
    long long v = 0;
    for (size_t i = 0; i < s.len; i++)
        v = v * 10 + (s.ptr[i] - '0');
    return v;
}

static void out_time(psb_ecs_writer *w, int64_t ms)
{
    char buf[PSB_TIME_BUFSZ];
    size_t n = psb_format_time_ms(ms, buf);
    out_reserve(w, n + 2);
    w->out[w->out_len++] = '"';
    memcpy(w->out + w->out_len, buf, n);
    w->out_len += n;
    w->out[w->out_len++] = '"';
}

static void out_kv_object(psb_ecs_writer *w, const psb_kv *kv, size_t n)
{
    LIT(w, "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            LIT(w, ",");
        out_str(w, kv[i].key);
        LIT(w, ":");
        out_str(w, kv[i].value);
    }
    LIT(w, "}");
}

/* The same JSON yajl's generator gave for this shape (keys in this order, no
 * spaces), without its per-byte escaping and state checks. */
static void write_syslog(psb_ecs_writer *w, const psb_event *ev)
{
    w->out_len = 0;
    LIT(w, "{\"@timestamp\":");
    out_time(w, ev->timestamp_ms);
    LIT(w, ",\"event\":{\"created\":");
    out_time(w, ev->created_ms);
    if (ev->kind == PSB_EVENT_KIND_PIPELINE_ERROR)
        LIT(w, ",\"kind\":\"pipeline_error\",\"original\":");
    else
        LIT(w, ",\"kind\":\"event\",\"original\":");
    out_str(w, ev->original);
    LIT(w, "}");
    if (ev->error_message.ptr) {
        LIT(w, ",\"error\":{\"message\":");
        out_str(w, ev->error_message);
        LIT(w, "}");
    }
    if (ev->organization_id.ptr) {
        LIT(w, ",\"organization\":{\"id\":");
        out_str(w, ev->organization_id);
        LIT(w, "}");
    }
    if (ev->observer_ip.ptr) {
        LIT(w, ",\"observer\":{\"ip\":");
        out_str(w, ev->observer_ip);
        LIT(w, "}");
    }
    if (ev->hostname.ptr) {
        LIT(w, ",\"host\":{\"hostname\":");
        out_str(w, ev->hostname);
        LIT(w, "}");
    }
    bool pid = all_digits(ev->procid);
    if (ev->appname.ptr || pid) {
        LIT(w, ",\"process\":{");
        if (ev->appname.ptr) {
            LIT(w, "\"name\":");
            out_str(w, ev->appname);
        }
        if (pid) {
            if (ev->appname.ptr)
                LIT(w, ",");
            LIT(w, "\"pid\":");
            out_int(w, digits_value(ev->procid));
        }
        LIT(w, "}");
    }
    if (ev->priority >= 0 || ev->version > 0 || ev->appname.ptr || ev->procid.ptr ||
        ev->msgid.ptr || ev->n_sd) {
        bool first = true;
        LIT(w, ",\"log\":{\"syslog\":{");
        if (ev->priority >= 0) {
            LIT(w, "\"priority\":");
            out_int(w, ev->priority);
            LIT(w, ",\"facility\":{\"code\":");
            out_int(w, ev->priority >> 3);
            LIT(w, "},\"severity\":{\"code\":");
            out_int(w, ev->priority & 7);
            LIT(w, "}");
            first = false;
        }
        if (ev->version > 0) {
            if (!first)
                LIT(w, ",");
            LIT(w, "\"version\":");
            out_int(w, ev->version);
            first = false;
        }
        if (ev->appname.ptr) {
            if (!first)
                LIT(w, ",");
            LIT(w, "\"appname\":");
            out_str(w, ev->appname);
            first = false;
        }
        if (ev->procid.ptr) {
            if (!first)
                LIT(w, ",");
            LIT(w, "\"procid\":");
            out_str(w, ev->procid);
            first = false;
        }
        if (ev->msgid.ptr) {
            if (!first)
                LIT(w, ",");
            LIT(w, "\"msgid\":");
            out_str(w, ev->msgid);
            first = false;
        }
        if (ev->n_sd) {
            if (!first)
                LIT(w, ",");
            LIT(w, "\"structured_data\":{");
            for (size_t i = 0; i < ev->n_sd; i++) {
                if (i)
                    LIT(w, ",");
                out_str(w, ev->sd[i].id);
                LIT(w, ":");
                out_kv_object(w, ev->sd_params + ev->sd[i].first_param, ev->sd[i].n_params);
            }
            LIT(w, "}");
        }
        LIT(w, "}}");
    }
    if (ev->message.ptr) {
        LIT(w, ",\"message\":");
        out_str(w, ev->message);
    }
    if (ev->n_labels) {
        LIT(w, ",\"labels\":");
        out_kv_object(w, ev->labels, ev->n_labels);
    }
    LIT(w, "}");
}

/* JSON-origin events: the object as given, with the pipeline's fields merged
 * in. A given value at one of our paths is replaced (a body cannot claim to be
 * another operator); everything else is kept as it came. */
enum { OV_STR, OV_TIME };
typedef struct override {
    const char *path;
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
            yajl_gen_string(m->w->g, (const unsigned char *)rest, strlen(rest));
            ov_value(m, o);
            continue;
        }
        yajl_gen_string(m->w->g, (const unsigned char *)rest, (size_t)(dot - rest));
        yajl_gen_map_open(m->w->g);
        emit_pending(m, o->path, (size_t)(dot - o->path) + 1);
        yajl_gen_map_close(m->w->g);
    }
}

static void gen_json_object(merge *m, yajl_val v, const char *prefix, size_t plen)
{
    char path[256];
    yajl_gen_map_open(m->w->g);
    if (plen == 0) { /* @timestamp leads, as in every other event */
        yajl_gen_string(m->w->g, (const unsigned char *)"@timestamp", 10);
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
                size_t pl = strlen(m->ov[j].path);
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
    yajl_gen_map_close(m->w->g);
}

static void gen_json_value(merge *m, yajl_val v)
{
    yajl_gen g = m->w->g;
    if (YAJL_IS_STRING(v)) {
        gen_str(m->w, v->u.string, strlen(v->u.string));
    } else if (YAJL_IS_NUMBER(v)) {
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    } else if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            gen_key(m->w, v->u.object.keys[i], strlen(v->u.object.keys[i]));
            gen_json_value(m, v->u.object.values[i]);
        }
        yajl_gen_map_close(g);
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++)
            gen_json_value(m, v->u.array.values[i]);
        yajl_gen_array_close(g);
    } else if (YAJL_IS_TRUE(v)) {
        yajl_gen_bool(g, 1);
    } else if (YAJL_IS_FALSE(v)) {
        yajl_gen_bool(g, 0);
    } else {
        yajl_gen_null(g);
    }
}

static void add_ov(merge *m, const char *path, int type, psb_str s, int64_t ms)
{
    m->ov[m->n++] = (override){path, type, s, ms, false};
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
    if (!ev->json || !YAJL_IS_OBJECT(ev->json)) {
        write_syslog(w, ev);
        *out = w->out;
        *len = w->out_len;
        return 0;
    }
    yajl_gen_clear(w->g);
    yajl_gen_reset(w->g, NULL);
    write_json(w, ev);
    const unsigned char *buf;
    size_t n;
    if (yajl_gen_get_buf(w->g, &buf, &n) != yajl_gen_status_ok)
        return -1;
    *out = (const char *)buf;
    *len = n;
    return 0;
}
