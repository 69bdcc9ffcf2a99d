/* cor_config.c -- the -c FILE of pasban-correlator. */
#include "cor_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pasban/util.h"

static int read_all(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    cor_buf b = {0};
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > COR_CONFIG_MAX_BYTES) {
            snprintf(err, errlen, "%s: larger than %u bytes", path, COR_CONFIG_MAX_BYTES);
            rc = -1;
            break;
        }
        cor_buf_put(&b, chunk, n);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    if (rc < 0) {
        cor_buf_free(&b);
        return -1;
    }
    cor_buf_putc(&b, '\0');
    *out = b.p;
    *len = b.len - 1;
    return 0;
}

/* A string member of obj into *out. 0, or -1 with the reason when it is not a
 * non-empty string. */
static int get_str(const cor_jnode *obj, const char *key, const char *where, const char **out,
                   char *err, size_t errlen)
{
    const cor_jnode *v = cor_json_get(obj, key);
    if (!v)
        return 0;
    if (v->type != COR_JSTR || v->len == 0 || strlen(v->str) != v->len) {
        snprintf(err, errlen, "%d: %s%s: expected a non-empty string", v->line, where, key);
        return -1;
    }
    *out = v->str;
    return 0;
}

/* Every key of obj must be one of names. */
static int known_keys(const cor_jnode *obj, const char *const *names, const char *where, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < obj->n; i++) {
        size_t j = 0;
        while (names[j] && strcmp(names[j], obj->keys[i]) != 0)
            j++;
        if (!names[j]) {
            snprintf(err, errlen, "%d: unknown key %s%.64s", obj->items[i]->line, where,
                     obj->keys[i]);
            return -1;
        }
    }
    return 0;
}

static int check(cor_config *c, char *err, size_t errlen)
{
    const cor_jnode *r = c->root;
    if (r->type != COR_JOBJ) {
        snprintf(err, errlen, "%d: expected an object", r->line);
        return -1;
    }
    static const char *const top[] = {"kafka", "rules", "http",     "web_root", "tokens",
                                      "kpi",   "api",   "instance", NULL};
    if (known_keys(r, top, "", err, errlen) < 0 ||
        get_str(r, "rules", "", &c->rules, err, errlen) < 0 ||
        get_str(r, "http", "", &c->http, err, errlen) < 0 ||
        get_str(r, "web_root", "", &c->web_root, err, errlen) < 0 ||
        get_str(r, "instance", "", &c->instance, err, errlen) < 0)
        return -1;
    const cor_jnode *k = cor_json_get(r, "kafka");
    if (k) {
        static const char *const kk[] = {"brokers", "group", "topics", "properties", NULL};
        if (k->type != COR_JOBJ) {
            snprintf(err, errlen, "%d: kafka: expected an object", k->line);
            return -1;
        }
        if (known_keys(k, kk, "kafka.", err, errlen) < 0 ||
            get_str(k, "brokers", "kafka.", &c->brokers, err, errlen) < 0 ||
            get_str(k, "group", "kafka.", &c->group, err, errlen) < 0)
            return -1;
        const cor_jnode *t = cor_json_get(k, "topics");
        if (t) {
            static const char *const tk[] = {"events", "incidents", "updates",
                                             "kpi",    "state",     NULL};
            if (t->type != COR_JOBJ) {
                snprintf(err, errlen, "%d: kafka.topics: expected an object", t->line);
                return -1;
            }
            if (known_keys(t, tk, "kafka.topics.", err, errlen) < 0 ||
                get_str(t, "events", "kafka.topics.", &c->topic_events, err, errlen) < 0 ||
                get_str(t, "incidents", "kafka.topics.", &c->topic_incidents, err, errlen) < 0 ||
                get_str(t, "updates", "kafka.topics.", &c->topic_updates, err, errlen) < 0 ||
                get_str(t, "kpi", "kafka.topics.", &c->topic_kpi, err, errlen) < 0 ||
                get_str(t, "state", "kafka.topics.", &c->topic_state, err, errlen) < 0)
                return -1;
        }
        const cor_jnode *p = cor_json_get(k, "properties");
        if (p) {
            if (p->type != COR_JOBJ) {
                snprintf(err, errlen, "%d: kafka.properties: expected an object", p->line);
                return -1;
            }
            for (size_t i = 0; i < p->n; i++) {
                int ty = p->items[i]->type;
                if (ty != COR_JSTR && ty != COR_JNUM && ty != COR_JBOOL) {
                    snprintf(err, errlen, "%d: kafka.properties.%.64s: expected a string",
                             p->items[i]->line, p->keys[i]);
                    return -1;
                }
            }
            c->properties = p;
        }
    }
    const cor_jnode *t = cor_json_get(r, "tokens");
    if (t && t->type != COR_JARR) {
        snprintf(err, errlen, "%d: tokens: expected an array", t->line);
        return -1;
    }
    c->tokens = t;
    const cor_jnode *kp = cor_json_get(r, "kpi");
    if (kp && kp->type != COR_JOBJ) {
        snprintf(err, errlen, "%d: kpi: expected an object", kp->line);
        return -1;
    }
    c->kpi = kp;
    const cor_jnode *api = cor_json_get(r, "api");
    if (api) {
        static const char *const ak[] = {"at_max_future", NULL};
        const char *fut = NULL;
        if (api->type != COR_JOBJ) {
            snprintf(err, errlen, "%d: api: expected an object", api->line);
            return -1;
        }
        if (known_keys(api, ak, "api.", err, errlen) < 0 ||
            get_str(api, "at_max_future", "api.", &fut, err, errlen) < 0)
            return -1;
        if (fut &&
            (psb_parse_duration_ms(fut, &c->at_max_future_ms) < 0 || c->at_max_future_ms < 1000)) {
            snprintf(err, errlen, "%d: api.at_max_future: a duration of at least 1s (\"5m\")",
                     cor_json_get(api, "at_max_future")->line);
            return -1;
        }
    }
    return 0;
}

cor_config *cor_config_load(const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    char why[256];
    int line = 0;
    if (read_all(path, &text, &len, err, errlen) < 0)
        return NULL;
    cor_config *c = psb_xcalloc(1, sizeof(*c));
    c->root = cor_json_parse(text, len, why, sizeof(why), &line);
    free(text);
    if (!c->root) {
        snprintf(err, errlen, "%s:%d: %s", path, line, why);
        goto fail;
    }
    if (check(c, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s:%s", path, why);
        goto fail;
    }
    return c;
fail:
    cor_config_free(c);
    return NULL;
}

void cor_config_free(cor_config *c)
{
    if (!c)
        return;
    cor_json_free(c->root);
    free(c);
}

cor_kpi_config *cor_config_kpi(const cor_config *c, char *err, size_t errlen)
{
    if (!c->kpi)
        return cor_kpi_config_new();
    cor_buf b = {0};
    cor_json_render(c->kpi, &b);
    cor_kpi_config *k = cor_kpi_config_parse(b.p, b.len, err, errlen);
    cor_buf_free(&b);
    return k;
}

cor_http_tokens *cor_config_tokens(const cor_config *c, char *err, size_t errlen)
{
    if (!c || !c->tokens)
        return cor_http_tokens_new();
    cor_buf b = {0};
    cor_json_render(c->tokens, &b);
    cor_http_tokens *t = cor_http_tokens_parse(b.p, b.len, err, errlen);
    cor_buf_free(&b);
    return t;
}

size_t cor_config_property(const cor_config *c, size_t i, const char **key, const char **val)
{
    if (!c || !c->properties)
        return 0;
    const cor_jnode *p = c->properties;
    if (i < p->n) {
        *key = p->keys[i];
        const cor_jnode *v = p->items[i];
        *val = v->type == COR_JBOOL ? (v->boolean ? "true" : "false") : v->str;
    }
    return p->n;
}
