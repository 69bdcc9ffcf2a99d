/* event.c -- life cycle of a psb_event and field lookup by ECS name. */
#include "pasban/event.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

psb_event *psb_event_new(void)
{
    psb_event *ev = psb_xcalloc(1, sizeof(*ev));
    psb_event_reset(ev);
    return ev;
}

/* The JSON parser builds its tree inside scratch (so reusing an event allocates
 * nothing); only a tree from elsewhere, e.g. yajl_tree_parse, is freed here. */
static void release_json(psb_event *ev)
{
    uintptr_t p = (uintptr_t)ev->json, base = (uintptr_t)ev->scratch;
    if (!ev->scratch || p < base || p - base >= ev->scratch_cap)
        yajl_tree_free(ev->json);
    ev->json = NULL;
}

void psb_event_free(psb_event *ev)
{
    if (!ev)
        return;
    if (ev->json)
        release_json(ev);
    free(ev->scratch);
    free(ev);
}

void psb_event_reset(psb_event *ev)
{
    /* Field by field rather than memset: the fixed arrays are large and the
     * counts say what is live in them. */
    ev->timestamp_ms = 0;
    ev->created_ms = 0;
    ev->original = PSB_STR_NULL;
    ev->kind = PSB_EVENT_KIND_EVENT;
    ev->error_message = PSB_STR_NULL;
    ev->organization_id = PSB_STR_NULL;
    ev->observer_ip = PSB_STR_NULL;
    ev->priority = -1;
    ev->version = 0;
    ev->hostname = PSB_STR_NULL;
    ev->appname = PSB_STR_NULL;
    ev->procid = PSB_STR_NULL;
    ev->msgid = PSB_STR_NULL;
    ev->message = PSB_STR_NULL;
    ev->n_sd = 0;
    ev->n_sd_params = 0;
    ev->n_labels = 0;
    if (ev->json)
        release_json(ev);
    ev->scratch_len = 0;
}

void psb_event_reserve(psb_event *ev, size_t n)
{
    if (ev->scratch_cap - ev->scratch_len >= n)
        return;
    /* Growing moves the buffer, which would invalidate slices already handed
     * out; parsers therefore reserve once, before the first psb_event_store. */
    size_t cap = ev->scratch_cap ? ev->scratch_cap : 1024;
    while (cap - ev->scratch_len < n)
        cap *= 2;
    ev->scratch = psb_xrealloc(ev->scratch, cap);
    ev->scratch_cap = cap;
}

psb_str psb_event_store(psb_event *ev, const char *p, size_t n)
{
    if (ev->scratch_cap - ev->scratch_len < n)
        psb_event_reserve(ev, n);
    char *dst = ev->scratch + ev->scratch_len;
    if (n)
        memcpy(dst, p, n);
    ev->scratch_len += n;
    return psb_str_make(dst, n);
}

void psb_event_set_error(psb_event *ev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ev->error_buf, sizeof(ev->error_buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(ev->error_buf))
        n = sizeof(ev->error_buf) - 1;
    ev->kind = PSB_EVENT_KIND_PIPELINE_ERROR;
    ev->error_message = psb_str_make(ev->error_buf, (size_t)n);
}

int psb_event_add_label(psb_event *ev, psb_str key, psb_str value)
{
    if (ev->n_labels >= PSB_EVENT_MAX_LABELS)
        return -1;
    ev->labels[ev->n_labels].key = key;
    ev->labels[ev->n_labels].value = value;
    ev->n_labels++;
    return 0;
}

static bool name_is(const char *name, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(name, lit, n) == 0;
}

static bool name_has_prefix(const char *name, size_t len, const char *lit, size_t *rest)
{
    size_t n = strlen(lit);
    if (len <= n || memcmp(name, lit, n) != 0)
        return false;
    *rest = n;
    return true;
}

static int put_num(char *buf, int64_t v, psb_str *out)
{
    int n = snprintf(buf, 32, "%" PRId64, v);
    *out = psb_str_make(buf, (size_t)n);
    return 1;
}

static int put_str(psb_str s, psb_str *out)
{
    if (!s.ptr)
        return 0;
    *out = s;
    return 1;
}

/* Walk a JSON object by a dotted name. A key may itself contain dots
 * ({"process.name": ...}) or be nested ({"process": {"name": ...}}); both match. */
static yajl_val json_walk(yajl_val v, const char *name, size_t len)
{
    if (!YAJL_IS_OBJECT(v))
        return NULL;
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        size_t kl = strlen(k);
        if (kl == len && memcmp(k, name, len) == 0)
            return v->u.object.values[i];
        if (kl < len && name[kl] == '.' && memcmp(k, name, kl) == 0) {
            yajl_val r = json_walk(v->u.object.values[i], name + kl + 1, len - kl - 1);
            if (r)
                return r;
        }
    }
    return NULL;
}

static int json_scalar(yajl_val v, char *buf, psb_str *out)
{
    if (YAJL_IS_STRING(v)) {
        *out = psb_str_make(v->u.string, strlen(v->u.string));
        return 1;
    }
    if (YAJL_IS_NUMBER(v)) {
        *out = psb_str_make(v->u.number.r, strlen(v->u.number.r));
        return 1;
    }
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        const char *t = YAJL_IS_TRUE(v) ? "true" : "false";
        snprintf(buf, 32, "%s", t);
        *out = psb_str_make(buf, strlen(t));
        return 1;
    }
    return 0; /* null, objects and arrays are not matchable values */
}

int psb_event_get(const psb_event *ev, const char *name, size_t len, char *buf, psb_str *out)
{
    size_t off;
    if (name_is(name, len, "message"))
        return put_str(ev->message, out);
    if (name_is(name, len, "host.hostname"))
        return put_str(ev->hostname, out);
    if (name_is(name, len, "process.name") || name_is(name, len, "log.syslog.appname"))
        return put_str(ev->appname, out);
    if (name_is(name, len, "log.syslog.procid"))
        return put_str(ev->procid, out);
    if (name_is(name, len, "process.pid"))
        return psb_str_is_digits(ev->procid) ? put_str(ev->procid, out) : 0;
    if (name_is(name, len, "log.syslog.msgid"))
        return put_str(ev->msgid, out);
    if (name_is(name, len, "organization.id"))
        return put_str(ev->organization_id, out);
    if (name_is(name, len, "observer.ip"))
        return put_str(ev->observer_ip, out);
    if (name_is(name, len, "event.original"))
        return put_str(ev->original, out);
    if (name_is(name, len, "error.message"))
        return put_str(ev->error_message, out);
    if (name_is(name, len, "event.kind")) {
        *out = ev->kind == PSB_EVENT_KIND_PIPELINE_ERROR ? PSB_STR_LIT("pipeline_error")
                                                        : PSB_STR_LIT("event");
        return 1;
    }
    if (ev->priority >= 0) {
        if (name_is(name, len, "log.syslog.priority"))
            return put_num(buf, ev->priority, out);
        if (name_is(name, len, "log.syslog.facility.code"))
            return put_num(buf, ev->priority >> 3, out);
        if (name_is(name, len, "log.syslog.severity.code"))
            return put_num(buf, ev->priority & 7, out);
    }
    if (ev->version > 0 && name_is(name, len, "log.syslog.version"))
        return put_num(buf, ev->version, out);
    if (name_has_prefix(name, len, "labels.", &off)) {
        for (size_t i = 0; i < ev->n_labels; i++) {
            const psb_kv *kv = &ev->labels[i];
            if (kv->key.len == len - off && memcmp(kv->key.ptr, name + off, kv->key.len) == 0)
                return put_str(kv->value, out);
        }
    }
    if (name_has_prefix(name, len, "log.syslog.structured_data.", &off)) {
        for (size_t i = 0; i < ev->n_sd; i++) {
            const psb_sd_element *el = &ev->sd[i];
            size_t il = el->id.len;
            if (len - off <= il + 1 || name[off + il] != '.' ||
                memcmp(name + off, el->id.ptr, il) != 0)
                continue;
            const char *pn = name + off + il + 1;
            size_t pl = len - off - il - 1;
            for (size_t j = 0; j < el->n_params; j++) {
                const psb_kv *kv = &ev->sd_params[el->first_param + j];
                if (kv->key.len == pl && memcmp(kv->key.ptr, pn, pl) == 0)
                    return put_str(kv->value, out);
            }
        }
    }
    if (ev->json) {
        yajl_val v = json_walk(ev->json, name, len);
        if (v)
            return json_scalar(v, buf, out);
    }
    return 0;
}
