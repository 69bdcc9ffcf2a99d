/* config.c -- read the collector's JSON-with-comments file into a col_config.
 *
 * yajl_tree loses line numbers, and an operator editing a config wants to be
 * told where the mistake is. So the file is fed to yajl's callback parser one
 * line at a time, building a small tree whose nodes remember their line; the
 * walker below then reports "file:line: key.path: reason".
 */
#include "col_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <yajl/yajl_parse.h>

#include "pasban/parse.h"
#include "pasban/util.h"

#define CFG_MAX_DEPTH 16
#define CFG_MAX_NODES 100000
#define CFG_MAX_FILE (4u << 20)

enum { N_NULL, N_BOOL, N_NUM, N_STR, N_OBJ, N_ARR };

typedef struct cnode {
    int type;
    int line;
    char *key;  /* member name inside an object */
    char *text; /* string, or number as written */
    int boolean;
    struct cnode **kids;
    size_t n_kids;
    size_t cap_kids;
} cnode;

typedef struct cbuild {
    cnode *root;
    cnode *stack[CFG_MAX_DEPTH];
    int depth;
    char *pending_key;
    int line;
    size_t nodes;
    const char *err;
} cbuild;

static void cnode_free(cnode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        cnode_free(n->kids[i]);
    free(n->kids);
    free(n->key);
    free(n->text);
    free(n);
}

static cnode *cb_add(cbuild *b, int type)
{
    if (++b->nodes > CFG_MAX_NODES) {
        b->err = "too many values";
        return NULL;
    }
    cnode *n = psb_xcalloc(1, sizeof *n);
    n->type = type;
    n->line = b->line;
    n->key = b->pending_key;
    b->pending_key = NULL;
    if (b->depth == 0) {
        if (b->root) {
            cnode_free(n);
            b->err = "more than one top-level value";
            return NULL;
        }
        b->root = n;
    } else {
        cnode *p = b->stack[b->depth - 1];
        if (p->n_kids == p->cap_kids) {
            p->cap_kids = p->cap_kids ? 2 * p->cap_kids : 8;
            p->kids = psb_xrealloc(p->kids, p->cap_kids * sizeof *p->kids);
        }
        p->kids[p->n_kids++] = n;
    }
    return n;
}

static int cb_null(void *ctx)
{
    return cb_add(ctx, N_NULL) != NULL;
}

static int cb_bool(void *ctx, int v)
{
    cnode *n = cb_add(ctx, N_BOOL);
    if (n)
        n->boolean = v;
    return n != NULL;
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    cnode *n = cb_add(ctx, N_NUM);
    if (n)
        n->text = psb_xstrndup(s, len);
    return n != NULL;
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    cnode *n = cb_add(ctx, N_STR);
    if (n)
        n->text = psb_xstrndup((const char *)s, len);
    return n != NULL;
}

static int cb_key(void *ctx, const unsigned char *s, size_t len)
{
    cbuild *b = ctx;
    free(b->pending_key);
    b->pending_key = psb_xstrndup((const char *)s, len);
    return 1;
}

static int cb_open(cbuild *b, int type)
{
    if (b->depth >= CFG_MAX_DEPTH) {
        b->err = "nesting too deep";
        return 0;
    }
    cnode *n = cb_add(b, type);
    if (!n)
        return 0;
    b->stack[b->depth++] = n;
    return 1;
}

static int cb_start_map(void *ctx)
{
    return cb_open(ctx, N_OBJ);
}
static int cb_start_array(void *ctx)
{
    return cb_open(ctx, N_ARR);
}

static int cb_close(void *ctx)
{
    cbuild *b = ctx;
    b->depth--;
    return 1;
}

static const yajl_callbacks cfg_callbacks = {
    cb_null,      cb_bool, NULL,     NULL,           cb_number, cb_string,
    cb_start_map, cb_key,  cb_close, cb_start_array, cb_close,
};

/* Parse a whole file into a tree. Returns the root or NULL with err set. */
static cnode *cfg_read_tree(const char *path, char *err, size_t errlen)
{
    cbuild b = {0};
    cnode *root = NULL;
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t n;
    yajl_handle h = NULL;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    h = yajl_alloc(&cfg_callbacks, NULL, &b);
    yajl_config(h, yajl_allow_comments, 1);
    while ((n = getline(&line, &cap, f)) >= 0) {
        b.line++;
        total += (size_t)n;
        if (total > CFG_MAX_FILE) {
            snprintf(err, errlen, "%s:%d: file larger than %u bytes", path, b.line, CFG_MAX_FILE);
            goto out;
        }
        if (yajl_parse(h, (const unsigned char *)line, (size_t)n) != yajl_status_ok)
            goto bad;
    }
    if (yajl_complete_parse(h) != yajl_status_ok)
        goto bad;
    if (!b.root || b.root->type != N_OBJ) {
        snprintf(err, errlen, "%s:1: the configuration must be a JSON object", path);
        goto out;
    }
    root = b.root;
    b.root = NULL;
    goto out;
bad:
    if (b.err) {
        snprintf(err, errlen, "%s:%d: %s", path, b.line, b.err);
    } else {
        unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
        size_t ml = strlen((char *)msg);
        while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == ' '))
            msg[--ml] = '\0';
        snprintf(err, errlen, "%s:%d: %s", path, b.line, (char *)msg);
        yajl_free_error(h, msg);
    }
out:
    if (h)
        yajl_free(h);
    free(line);
    free(b.pending_key);
    cnode_free(b.root);
    fclose(f);
    return root;
}

/* ---- the walker ---- */

typedef struct cwalk {
    const char *path;
    char *err;
    size_t errlen;
} cwalk;

static int cfg_fail(cwalk *w, const cnode *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int cfg_fail(cwalk *w, const cnode *n, const char *key, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(w->err, w->errlen, "%s:%d: %s: %s", w->path, n->line, key, reason);
    return -1;
}

static int want_str(cwalk *w, const cnode *n, const char *key, char **out)
{
    if (n->type != N_STR)
        return cfg_fail(w, n, key, "expected a string");
    free(*out);
    *out = psb_xstrdup(n->text);
    return 0;
}

static int want_size(cwalk *w, const cnode *n, const char *key, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    char *end;
    if (n->type != N_NUM)
        return cfg_fail(w, n, key, "expected a number");
    errno = 0;
    unsigned long long v = strtoull(n->text, &end, 10);
    if (errno || *end || n->text[0] == '-' || v < min || v > max)
        return cfg_fail(w, n, key, "expected an integer from %llu to %llu", (unsigned long long)min,
                        (unsigned long long)max);
    *out = v;
    return 0;
}

static int want_duration(cwalk *w, const cnode *n, const char *key, int64_t *out)
{
    int64_t ms;
    if (n->type != N_STR || psb_parse_duration_ms(n->text, &ms) != 0)
        return cfg_fail(w, n, key, "expected a duration such as \"30s\" or \"500ms\"");
    *out = ms;
    return 0;
}

/* Scalars that librdkafka takes as text: strings, numbers, booleans. */
static int want_prop(cwalk *w, const cnode *n, const char *key, char **out)
{
    switch (n->type) {
    case N_STR:
    case N_NUM:
        *out = psb_xstrdup(n->text);
        return 0;
    case N_BOOL:
        *out = psb_xstrdup(n->boolean ? "true" : "false");
        return 0;
    default:
        return cfg_fail(w, n, key, "expected a string, number or boolean");
    }
}

static char *intern_op(col_opmap *m, const char *id)
{
    for (size_t i = 0; i < m->n_ops; i++)
        if (strcmp(m->ops[i], id) == 0)
            return m->ops[i];
    m->ops = psb_xrealloc(m->ops, (m->n_ops + 1) * sizeof *m->ops);
    m->ops[m->n_ops] = psb_xstrdup(id);
    return m->ops[m->n_ops++];
}

static int parse_cidr(const char *s, col_cidr *c)
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen >= sizeof buf)
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(c->addr, 0, sizeof c->addr);
    if (inet_pton(AF_INET, buf, c->addr) == 1)
        c->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, c->addr) == 1)
        c->family = AF_INET6;
    else
        return -1;
    int maxp = c->family == AF_INET ? 32 : 128;
    if (!slash) {
        c->prefix = maxp;
        return 0;
    }
    char *end;
    long p = strtol(slash + 1, &end, 10);
    if (*end || end == slash + 1 || p < 0 || p > maxp)
        return -1;
    c->prefix = (int)p;
    return 0;
}

static void add_ident(col_ident **arr, size_t *n, const char *name, char *op)
{
    *arr = psb_xrealloc(*arr, (*n + 1) * sizeof **arr);
    (*arr)[*n].name = psb_xstrdup(name);
    (*arr)[*n].op = op;
    (*n)++;
}

static int walk_str_list(cwalk *w, const cnode *n, const char *key)
{
    if (n->type == N_STR)
        return 0;
    if (n->type != N_ARR)
        return cfg_fail(w, n, key, "expected a string or an array of strings");
    for (size_t i = 0; i < n->n_kids; i++)
        if (n->kids[i]->type != N_STR)
            return cfg_fail(w, n->kids[i], key, "expected a string");
    return 0;
}

static size_t list_len(const cnode *n)
{
    return n->type == N_STR ? 1 : n->n_kids;
}
static const cnode *list_at(const cnode *n, size_t i)
{
    return n->type == N_STR ? n : n->kids[i];
}

static int walk_operators(cwalk *w, const cnode *ops, col_opmap *m)
{
    char key[256];
    if (ops->type != N_OBJ)
        return cfg_fail(w, ops, "operators", "expected an object of operator ids");
    for (size_t i = 0; i < ops->n_kids; i++) {
        const cnode *o = ops->kids[i];
        if (o->key[0] == '\0' || strlen(o->key) > 128)
            return cfg_fail(w, o, "operators", "operator ids are 1 to 128 characters");
        if (o->type != N_OBJ)
            return cfg_fail(w, o, o->key, "expected an object");
        char *op = intern_op(m, o->key);
        for (size_t j = 0; j < o->n_kids; j++) {
            const cnode *f = o->kids[j];
            snprintf(key, sizeof key, "operators.%s.%s", o->key, f->key);
            if (walk_str_list(w, f, key) != 0)
                return -1;
            for (size_t k = 0; k < list_len(f); k++) {
                const cnode *v = list_at(f, k);
                if (strcmp(f->key, "networks") == 0) {
                    col_cidr c;
                    if (parse_cidr(v->text, &c) != 0)
                        return cfg_fail(w, v, key, "\"%s\" is not an address or CIDR", v->text);
                    c.op = op;
                    m->cidrs = psb_xrealloc(m->cidrs, (m->n_cidrs + 1) * sizeof *m->cidrs);
                    m->cidrs[m->n_cidrs++] = c;
                } else if (strcmp(f->key, "tokens") == 0) {
                    if (strlen(v->text) < 16)
                        return cfg_fail(w, v, key, "a token needs at least 16 characters");
                    if (col_opmap_by_token(m, v->text, strlen(v->text)))
                        return cfg_fail(w, v, key, "token already given to another operator");
                    add_ident(&m->tokens, &m->n_tokens, v->text, op);
                } else if (strcmp(f->key, "tls_names") == 0) {
                    if (col_opmap_by_tls_name(m, v->text))
                        return cfg_fail(w, v, key, "name \"%s\" already mapped", v->text);
                    add_ident(&m->tls_names, &m->n_tls_names, v->text, op);
                } else {
                    return cfg_fail(w, f, key, "unknown key (networks, tokens, tls_names)");
                }
            }
        }
    }
    return 0;
}

static int walk_kafka(cwalk *w, const cnode *k, col_config *cfg)
{
    char key[256];
    if (k->type != N_OBJ)
        return cfg_fail(w, k, "kafka", "expected an object");
    for (size_t i = 0; i < k->n_kids; i++) {
        const cnode *f = k->kids[i];
        snprintf(key, sizeof key, "kafka.%s", f->key);
        if (strcmp(f->key, "topic") == 0) {
            if (want_str(w, f, key, &cfg->topic) != 0)
                return -1;
        } else if (strcmp(f->key, "brokers") == 0 || strcmp(f->key, "bootstrap.servers") == 0) {
            if (want_str(w, f, key, &cfg->brokers) != 0)
                return -1;
        } else if (strcmp(f->key, "enable.idempotence") == 0 || strcmp(f->key, "acks") == 0 ||
                   strcmp(f->key, "request.required.acks") == 0) {
            /* Without them a retry can duplicate or reorder events and a
             * leader failover lose acknowledged ones (design.md: Kafka). */
            return cfg_fail(w, f, key,
                            "fixed by the collector (idempotent, acks=all); remove the key");
        } else {
            /* Anything else is a librdkafka property under its own name; librdkafka
             * itself judges it when the producer is built. */
            char *v = NULL;
            if (want_prop(w, f, key, &v) != 0)
                return -1;
            cfg->kafka_props =
                psb_xrealloc(cfg->kafka_props, (cfg->n_kafka_props + 1) * sizeof *cfg->kafka_props);
            cfg->kafka_props[cfg->n_kafka_props].key = psb_xstrdup(f->key);
            cfg->kafka_props[cfg->n_kafka_props].value = v;
            cfg->n_kafka_props++;
        }
    }
    return 0;
}

static int walk_spool(cwalk *w, const cnode *s, col_config *cfg)
{
    char key[256];
    uint64_t v;
    if (s->type != N_OBJ)
        return cfg_fail(w, s, "spool", "expected an object");
    for (size_t i = 0; i < s->n_kids; i++) {
        const cnode *f = s->kids[i];
        snprintf(key, sizeof key, "spool.%s", f->key);
        if (strcmp(f->key, "dir") == 0) {
            if (want_str(w, f, key, &cfg->spool_dir) != 0)
                return -1;
        } else if (strcmp(f->key, "max_bytes") == 0) {
            if (want_size(w, f, key, 1u << 20, UINT64_MAX / 2, &v) != 0)
                return -1;
            cfg->spool_max_bytes = v;
        } else if (strcmp(f->key, "segment_bytes") == 0) {
            if (want_size(w, f, key, 1u << 16, 1ull << 32, &v) != 0)
                return -1;
            cfg->spool_segment_bytes = v;
        } else if (strcmp(f->key, "fsync") == 0) {
            if (f->type != N_STR)
                return cfg_fail(w, f, key, "expected \"always\", \"interval\" or \"never\"");
            if (strcmp(f->text, "always") == 0)
                cfg->spool_fsync = COL_FSYNC_ALWAYS;
            else if (strcmp(f->text, "interval") == 0)
                cfg->spool_fsync = COL_FSYNC_INTERVAL;
            else if (strcmp(f->text, "never") == 0)
                cfg->spool_fsync = COL_FSYNC_NEVER;
            else
                return cfg_fail(w, f, key, "expected \"always\", \"interval\" or \"never\"");
        } else if (strcmp(f->key, "fsync_interval") == 0) {
            if (want_duration(w, f, key, &cfg->spool_fsync_interval_ms) != 0)
                return -1;
        } else {
            return cfg_fail(w, f, key, "unknown key");
        }
    }
    return 0;
}

static int walk_limits(cwalk *w, const cnode *s, col_config *cfg)
{
    char key[256];
    uint64_t v;
    if (s->type != N_OBJ)
        return cfg_fail(w, s, "limits", "expected an object");
    for (size_t i = 0; i < s->n_kids; i++) {
        const cnode *f = s->kids[i];
        snprintf(key, sizeof key, "limits.%s", f->key);
        if (strcmp(f->key, "max_connections") == 0) {
            if (want_size(w, f, key, 1, 1000000, &v) != 0)
                return -1;
            cfg->max_connections = v;
        } else if (strcmp(f->key, "max_message") == 0) {
            if (want_size(w, f, key, 256, PSB_MAX_MESSAGE, &v) != 0)
                return -1;
            cfg->max_message = v;
        } else if (strcmp(f->key, "connection_buffer") == 0) {
            if (want_size(w, f, key, 4096, 1u << 30, &v) != 0)
                return -1;
            cfg->conn_buffer = v;
        } else if (strcmp(f->key, "max_body") == 0) {
            /* A body is held whole in memory (twice while it is pulled up). */
            if (want_size(w, f, key, 1024, COL_MAX_BODY, &v) != 0)
                return -1;
            cfg->max_body = v;
        } else if (strcmp(f->key, "max_http_pending") == 0) {
            if (want_size(w, f, key, 1, 1000000, &v) != 0)
                return -1;
            cfg->max_http_pending = v;
        } else if (strcmp(f->key, "idle_timeout") == 0) {
            if (want_duration(w, f, key, &cfg->idle_timeout_ms) != 0)
                return -1;
            /* 0 would close every connection at its first partial frame. */
            if (cfg->idle_timeout_ms <= 0)
                return cfg_fail(w, f, key, "expected a duration above zero");
        } else if (strcmp(f->key, "shutdown_timeout") == 0) {
            if (want_duration(w, f, key, &cfg->shutdown_timeout_ms) != 0)
                return -1;
        } else {
            return cfg_fail(w, f, key, "unknown key");
        }
    }
    return 0;
}

static int walk_tls(cwalk *w, const cnode *s, col_config *cfg)
{
    char key[256];
    if (s->type != N_OBJ)
        return cfg_fail(w, s, "tls", "expected an object");
    for (size_t i = 0; i < s->n_kids; i++) {
        const cnode *f = s->kids[i];
        snprintf(key, sizeof key, "tls.%s", f->key);
        char **dst = strcmp(f->key, "cert") == 0  ? &cfg->tls_cert
                     : strcmp(f->key, "key") == 0 ? &cfg->tls_key
                     : strcmp(f->key, "ca") == 0  ? &cfg->tls_ca
                                                  : NULL;
        if (!dst)
            return cfg_fail(w, f, key, "unknown key (cert, key, ca)");
        if (want_str(w, f, key, dst) != 0)
            return -1;
    }
    return 0;
}

static int walk_root(cwalk *w, const cnode *root, col_config *cfg, col_opmap *m)
{
    char err2[256];
    for (size_t i = 0; i < root->n_kids; i++) {
        const cnode *f = root->kids[i];
        int rc = 0;
        if (strcmp(f->key, "kafka") == 0) {
            rc = walk_kafka(w, f, cfg);
        } else if (strcmp(f->key, "listen") == 0) {
            if (walk_str_list(w, f, "listen") != 0)
                return -1;
            for (size_t k = 0; k < list_len(f); k++) {
                const cnode *v = list_at(f, k);
                if (cfg->n_listen == COL_MAX_LISTEN)
                    return cfg_fail(w, v, "listen", "at most %d listeners", COL_MAX_LISTEN);
                if (col_listen_parse(v->text, &cfg->listen[cfg->n_listen], err2, sizeof err2) != 0)
                    return cfg_fail(w, v, "listen", "%s", err2);
                cfg->n_listen++;
            }
        } else if (strcmp(f->key, "operator") == 0 || strcmp(f->key, "default_operator") == 0) {
            rc = want_str(w, f, f->key, &cfg->default_operator);
        } else if (strcmp(f->key, "operators") == 0) {
            rc = walk_operators(w, f, m);
        } else if (strcmp(f->key, "metrics") == 0) {
            if (f->type != N_STR)
                return cfg_fail(w, f, "metrics", "expected \"ADDR:PORT\"");
            free(cfg->metrics_host);
            free(cfg->metrics_port);
            if (col_hostport_parse(f->text, &cfg->metrics_host, &cfg->metrics_port) != 0)
                return cfg_fail(w, f, "metrics", "expected \"ADDR:PORT\"");
        } else if (strcmp(f->key, "spool") == 0) {
            rc = walk_spool(w, f, cfg);
        } else if (strcmp(f->key, "limits") == 0) {
            rc = walk_limits(w, f, cfg);
        } else if (strcmp(f->key, "tls") == 0) {
            rc = walk_tls(w, f, cfg);
        } else if (strcmp(f->key, "syslog_timezone") == 0) {
            if (f->type != N_STR || psb_parse_utc_offset(f->text, &cfg->tz_offset_s) != 0)
                return cfg_fail(w, f, "syslog_timezone", "expected \"UTC\" or \"+03:30\"");
        } else {
            return cfg_fail(w, f, f->key, "unknown key");
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

col_config *col_config_new(void)
{
    col_config *cfg = psb_xcalloc(1, sizeof *cfg);
    cfg->topic = psb_xstrdup("pasban.events");
    cfg->brokers = psb_xstrdup("127.0.0.1:9092");
    cfg->default_operator = psb_xstrdup("unknown");
    cfg->spool_max_bytes = 1ull << 30;
    cfg->spool_segment_bytes = 64ull << 20;
    cfg->spool_fsync = COL_FSYNC_INTERVAL;
    cfg->spool_fsync_interval_ms = 1000;
    cfg->max_connections = 4096;
    cfg->max_message = PSB_MAX_MESSAGE;
    cfg->conn_buffer = 256 * 1024;
    cfg->max_body = 16u << 20;
    cfg->max_http_pending = 1024;
    cfg->idle_timeout_ms = 300000;
    cfg->shutdown_timeout_ms = 10000;
    return cfg;
}

void col_opmap_clear(col_opmap *m)
{
    for (size_t i = 0; i < m->n_ops; i++)
        free(m->ops[i]);
    for (size_t i = 0; i < m->n_tokens; i++)
        free(m->tokens[i].name);
    for (size_t i = 0; i < m->n_tls_names; i++)
        free(m->tls_names[i].name);
    free(m->ops);
    free(m->cidrs);
    free(m->tokens);
    free(m->tls_names);
    memset(m, 0, sizeof *m);
}

void col_config_free(col_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    free(cfg->topic);
    free(cfg->brokers);
    for (size_t i = 0; i < cfg->n_kafka_props; i++) {
        free(cfg->kafka_props[i].key);
        free(cfg->kafka_props[i].value);
    }
    free(cfg->kafka_props);
    for (size_t i = 0; i < cfg->n_listen; i++) {
        free(cfg->listen[i].host);
        free(cfg->listen[i].port);
    }
    free(cfg->default_operator);
    free(cfg->metrics_host);
    free(cfg->metrics_port);
    free(cfg->spool_dir);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->tls_ca);
    col_opmap_clear(&cfg->opmap);
    free(cfg);
}

int col_config_load(col_config *cfg, const char *path, char *err, size_t errlen)
{
    col_opmap m = {0};
    cnode *root = cfg_read_tree(path, err, errlen);
    if (!root)
        return -1;
    cwalk w = {path, err, errlen};
    int rc = walk_root(&w, root, cfg, &m);
    cnode_free(root);
    if (rc != 0) {
        col_opmap_clear(&m);
        return -1;
    }
    col_opmap_clear(&cfg->opmap);
    cfg->opmap = m;
    free(cfg->path);
    cfg->path = psb_xstrdup(path);
    return 0;
}

int col_hostport_parse(const char *s, char **host, char **port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535 || hl == 0 || hl > 255)
        return -1;
    *host = psb_xstrndup(h, hl);
    *port = psb_xstrdup(colon + 1);
    return 0;
}

static const char *const input_names[COL_INPUT_COUNT] = {"udp", "tcp", "tls", "http"};

const char *col_input_name(int input)
{
    return input >= 0 && input < COL_INPUT_COUNT ? input_names[input] : "unknown";
}

int col_listen_parse(const char *url, col_listen *l, char *err, size_t errlen)
{
    const char *sep = strstr(url, "://");
    if (!sep) {
        snprintf(err, errlen, "\"%s\": expected udp://, tcp://, tls:// or http://ADDR:PORT", url);
        return -1;
    }
    l->input = -1;
    for (int i = 0; i < COL_INPUT_COUNT; i++)
        if (strlen(input_names[i]) == (size_t)(sep - url) &&
            strncmp(url, input_names[i], (size_t)(sep - url)) == 0)
            l->input = i;
    if (l->input < 0) {
        snprintf(err, errlen, "\"%s\": unknown scheme (udp, tcp, tls, http)", url);
        return -1;
    }
    if (col_hostport_parse(sep + 3, &l->host, &l->port) != 0) {
        snprintf(err, errlen, "\"%s\": expected ADDR:PORT after the scheme", url);
        return -1;
    }
    return 0;
}

static int cidr_match(const col_cidr *c, const unsigned char *a)
{
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, a, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

const char *col_opmap_by_addr(const col_opmap *m, const struct sockaddr *sa)
{
    unsigned char a[16];
    int family;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        /* An IPv4 peer on a dual-stack socket matches the IPv4 networks. */
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            memcpy(a, a6->s6_addr + 12, 4);
        } else {
            family = AF_INET6;
            memcpy(a, a6->s6_addr, 16);
        }
    } else {
        return NULL;
    }
    const col_cidr *best = NULL;
    for (size_t i = 0; i < m->n_cidrs; i++) {
        const col_cidr *c = &m->cidrs[i];
        if (c->family == family && cidr_match(c, a) && (!best || c->prefix > best->prefix))
            best = c;
    }
    return best ? best->op : NULL;
}

/* Tokens are compared in constant time for a given length, so timing does not
 * reveal how much of a guess was right. */
const char *col_opmap_by_token(const col_opmap *m, const char *token, size_t len)
{
    const char *found = NULL;
    for (size_t i = 0; i < m->n_tokens; i++) {
        const char *t = m->tokens[i].name;
        size_t tl = strlen(t);
        if (tl != len)
            continue;
        unsigned char diff = 0;
        for (size_t k = 0; k < len; k++)
            diff |= (unsigned char)(t[k] ^ token[k]);
        if (diff == 0)
            found = m->tokens[i].op;
    }
    return found;
}

const char *col_opmap_by_tls_name(const col_opmap *m, const char *name)
{
    for (size_t i = 0; i < m->n_tls_names; i++)
        if (strcmp(m->tls_names[i].name, name) == 0)
            return m->tls_names[i].op;
    return NULL;
}
