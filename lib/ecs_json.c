/* ecs_json.c -- psb_event to one line of nested ECS JSON through yajl's generator. */
#include "pasban/ecs.h"

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

struct psb_ecs_writer {
    yajl_gen g;
    char *fix;          /* sanitised copy of a value that was not valid UTF-8 */
    size_t fix_cap;
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

/* Emit a string, replacing each invalid UTF-8 byte by U+FFFD. */
static void gen_str(psb_ecs_writer *w, const char *p, size_t n)
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
    if (i == n) {
        yajl_gen_string(w->g, s, n);
        return;
    }
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
    yajl_gen_string(w->g, (const unsigned char *)w->fix, o);
}

#define KEY(w, lit) yajl_gen_string((w)->g, (const unsigned char *)(lit), sizeof(lit) - 1)

static void kv_str(psb_ecs_writer *w, const char *key, size_t klen, psb_str v)
{
    yajl_gen_string(w->g, (const unsigned char *)key, klen);
    gen_str(w, v.ptr, v.len);
}

#define KV_STR(w, lit, v) kv_str((w), (lit), sizeof(lit) - 1, (v))

static bool all_digits(psb_str s)
{
    if (!s.len || s.len > 18)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
    return true;
}

static long long to_ll(psb_str s)
{
    long long v = 0;
    for (size_t i = 0; i < s.len; i++)
        v = v * 10 + (s.ptr[i] - '0');
    return v;
}

static void gen_time(psb_ecs_writer *w, int64_t ms)
{
    char buf[PSB_TIME_BUFSZ];
    size_t n = psb_format_time_ms(ms, buf);
    yajl_gen_string(w->g, (const unsigned char *)buf, n);
}

static void gen_kv_object(psb_ecs_writer *w, const psb_kv *kv, size_t n)
{
    yajl_gen_map_open(w->g);
    for (size_t i = 0; i < n; i++) {
        gen_str(w, kv[i].key.ptr, kv[i].key.len);
        gen_str(w, kv[i].value.ptr, kv[i].value.len);
    }
    yajl_gen_map_close(w->g);
}

/* The fields every event gets from the pipeline rather than from the message. */
static void gen_event_object(psb_ecs_writer *w, const psb_event *ev)
{
    yajl_gen_map_open(w->g);
    KEY(w, "created");
    gen_time(w, ev->created_ms);
    KEY(w, "kind");
    if (ev->kind == PSB_EVENT_KIND_PIPELINE_ERROR)
        KEY(w, "pipeline_error");
    else
        KEY(w, "event");
    KV_STR(w, "original", ev->original);
    yajl_gen_map_close(w->g);
}

static void write_syslog(psb_ecs_writer *w, const psb_event *ev)
{
    yajl_gen g = w->g;
    yajl_gen_map_open(g);
    KEY(w, "@timestamp");
    gen_time(w, ev->timestamp_ms);
    KEY(w, "event");
    gen_event_object(w, ev);
    if (ev->error_message.ptr) {
        KEY(w, "error");
        yajl_gen_map_open(g);
        KV_STR(w, "message", ev->error_message);
        yajl_gen_map_close(g);
    }
    if (ev->organization_id.ptr) {
        KEY(w, "organization");
        yajl_gen_map_open(g);
        KV_STR(w, "id", ev->organization_id);
        yajl_gen_map_close(g);
    }
    if (ev->observer_ip.ptr) {
        KEY(w, "observer");
        yajl_gen_map_open(g);
        KV_STR(w, "ip", ev->observer_ip);
        yajl_gen_map_close(g);
    }
    if (ev->hostname.ptr) {
        KEY(w, "host");
        yajl_gen_map_open(g);
        KV_STR(w, "hostname", ev->hostname);
        yajl_gen_map_close(g);
    }
    if (ev->appname.ptr || ev->procid.ptr) {
        bool pid = all_digits(ev->procid);
        if (ev->appname.ptr || pid) {
            KEY(w, "process");
            yajl_gen_map_open(g);
            if (ev->appname.ptr)
                KV_STR(w, "name", ev->appname);
            if (pid) {
                KEY(w, "pid");
                yajl_gen_integer(g, to_ll(ev->procid));
            }
            yajl_gen_map_close(g);
        }
    }
    if (ev->priority >= 0 || ev->version > 0 || ev->appname.ptr || ev->procid.ptr ||
        ev->msgid.ptr || ev->n_sd) {
        KEY(w, "log");
        yajl_gen_map_open(g);
        KEY(w, "syslog");
        yajl_gen_map_open(g);
        if (ev->priority >= 0) {
            KEY(w, "priority");
            yajl_gen_integer(g, ev->priority);
            KEY(w, "facility");
            yajl_gen_map_open(g);
            KEY(w, "code");
            yajl_gen_integer(g, ev->priority >> 3);
            yajl_gen_map_close(g);
            KEY(w, "severity");
            yajl_gen_map_open(g);
            KEY(w, "code");
            yajl_gen_integer(g, ev->priority & 7);
            yajl_gen_map_close(g);
        }
        if (ev->version > 0) {
            KEY(w, "version");
            yajl_gen_integer(g, ev->version);
        }
        if (ev->appname.ptr)
            KV_STR(w, "appname", ev->appname);
        if (ev->procid.ptr)
            KV_STR(w, "procid", ev->procid);
        if (ev->msgid.ptr)
            KV_STR(w, "msgid", ev->msgid);
        if (ev->n_sd) {
            KEY(w, "structured_data");
            yajl_gen_map_open(g);
            for (size_t i = 0; i < ev->n_sd; i++) {
                gen_str(w, ev->sd[i].id.ptr, ev->sd[i].id.len);
                gen_kv_object(w, ev->sd_params + ev->sd[i].first_param, ev->sd[i].n_params);
            }
            yajl_gen_map_close(g);
        }
        yajl_gen_map_close(g);
        yajl_gen_map_close(g);
    }
    if (ev->message.ptr)
        KV_STR(w, "message", ev->message);
    if (ev->n_labels) {
        KEY(w, "labels");
        gen_kv_object(w, ev->labels, ev->n_labels);
    }
    yajl_gen_map_close(g);
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
        gen_str(m->w, k, kl);
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
            gen_str(m->w, v->u.object.keys[i], strlen(v->u.object.keys[i]));
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
    yajl_gen_clear(w->g);
    yajl_gen_reset(w->g, NULL);
    if (ev->json && YAJL_IS_OBJECT(ev->json))
        write_json(w, ev);
    else
        write_syslog(w, ev);
    const unsigned char *buf;
    size_t n;
    if (yajl_gen_get_buf(w->g, &buf, &n) != yajl_gen_status_ok)
        return -1;
    *out = (const char *)buf;
    *len = n;
    return 0;
}
