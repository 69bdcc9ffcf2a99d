/* http.c -- POST /v1/events (JSON ingestion) and the /metrics, /healthz, /readyz endpoints.
 *
 * An ingestion request is checked whole before anything of it is produced: the
 * bearer token names the operator (whatever the body claims), the body must be
 * one object, an array of objects or NDJSON, and there must be room for all of
 * it. Then every event is produced with the request as its opaque, and the
 * reply waits until the last delivery report is in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "col_ctx.h"
#include "pasban/parse.h"
#include "pasban/util.h"

#define HTTP_MAX_EVENTS 100000

/* ---- splitting a body into objects ---- */

typedef struct jsplit {
    yajl_handle h;
    int depth;
    int in_array; /* the top-level value is an array of objects */
    int top_seen; /* a top-level value was an array (then it must be the only one) */
    size_t start;
    size_t count;
    size_t max;
    const char *body;
    col_json_each_fn fn;
    void *arg;
    const char *err;
} jsplit;

static int obj_level(const jsplit *s)
{
    return s->in_array ? 1 : 0;
}

static int js_scalar(jsplit *s)
{
    if (s->depth <= obj_level(s)) {
        s->err = "expected JSON objects (one, an array of them, or one per line)";
        return 0;
    }
    return 1;
}

static int js_null(void *ctx)
{
    return js_scalar(ctx);
}
static int js_bool(void *ctx, int b)
{
    (void)b;
    return js_scalar(ctx);
}
static int js_number(void *ctx, const char *n, size_t l)
{
    (void)n;
    (void)l;
    return js_scalar(ctx);
}
static int js_string(void *ctx, const unsigned char *v, size_t l)
{
    (void)v;
    (void)l;
    return js_scalar(ctx);
}

static int js_start_map(void *ctx)
{
    jsplit *s = ctx;
    if (s->depth == 0 && s->top_seen) {
        s->err = "an array must be the whole body";
        return 0;
    }
    if (s->depth == obj_level(s)) {
        if (s->count >= s->max) {
            s->err = "too many events in one request";
            return 0;
        }
        s->start = yajl_get_bytes_consumed(s->h) - 1;
    }
    if (++s->depth > PSB_MAX_JSON_DEPTH + 1) {
        s->err = "JSON nested too deeply";
        return 0;
    }
    return 1;
}

static int js_end_map(void *ctx)
{
    jsplit *s = ctx;
    s->depth--;
    if (s->depth == obj_level(s)) {
        size_t end = yajl_get_bytes_consumed(s->h);
        s->count++;
        if (s->fn && s->fn(s->arg, s->body + s->start, end - s->start) != 0) {
            s->err = "stopped";
            return 0;
        }
    }
    return 1;
}

static int js_start_array(void *ctx)
{
    jsplit *s = ctx;
    if (s->depth == 0) {
        if (s->count > 0 || s->top_seen) {
            s->err = "an array must be the whole body";
            return 0;
        }
        s->in_array = 1;
        s->top_seen = 1;
        s->depth = 1;
        return 1;
    }
    if (s->depth <= obj_level(s)) {
        s->err = "expected JSON objects (one, an array of them, or one per line)";
        return 0;
    }
    if (++s->depth > PSB_MAX_JSON_DEPTH + 1) {
        s->err = "JSON nested too deeply";
        return 0;
    }
    return 1;
}

static int js_end_array(void *ctx)
{
    jsplit *s = ctx;
    s->depth--;
    if (s->depth == 0 && s->in_array)
        s->in_array = 0;
    return 1;
}

static const yajl_callbacks split_callbacks = {
    js_null,      js_bool, NULL,       NULL,           js_number,    js_string,
    js_start_map, NULL,    js_end_map, js_start_array, js_end_array,
};

long col_json_split(const char *body, size_t len, size_t max_objects, col_json_each_fn fn,
                    void *arg, char *err, size_t errlen)
{
    jsplit s = {0};
    s.body = body;
    s.fn = fn;
    s.arg = arg;
    s.max = max_objects;
    s.h = yajl_alloc(&split_callbacks, NULL, &s);
    yajl_config(s.h, yajl_allow_multiple_values, 1);
    long rc = -1;
    yajl_status st = yajl_parse(s.h, (const unsigned char *)body, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(s.h);
    if (st != yajl_status_ok) {
        if (s.err) {
            snprintf(err, errlen, "%s", s.err);
        } else {
            unsigned char *m = yajl_get_error(s.h, 0, NULL, 0);
            size_t ml = strlen((char *)m);
            while (ml && (m[ml - 1] == '\n' || m[ml - 1] == ' '))
                m[--ml] = '\0';
            snprintf(err, errlen, "bad JSON at byte %zu: %s", yajl_get_bytes_consumed(s.h),
                     (char *)m);
            yajl_free_error(s.h, m);
        }
        goto out;
    }
    if (s.count == 0) {
        snprintf(err, errlen, "no events in the body");
        goto out;
    }
    rc = (long)s.count;
out:
    yajl_free(s.h);
    return rc;
}

/* ---- ingestion ---- */

static void reply_json(struct evhttp_request *req, int code, const char *reason, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static void reply_json(struct evhttp_request *req, int code, const char *reason, const char *fmt,
                       ...)
{
    struct evbuffer *b = evbuffer_new();
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(b, fmt, ap);
    va_end(ap);
    evbuffer_add(b, "\n", 1);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (code == 503)
        evhttp_add_header(h, "Retry-After", "5");
    if (code == 401)
        evhttp_add_header(h, "WWW-Authenticate", "Bearer");
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

/* Quote s for a JSON string (error texts carry user bytes). */
static void json_escape(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *s && o + 7 < outlen; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            o += (size_t)snprintf(out + o, outlen - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

static void reject(col_ctx *c, struct evhttp_request *req, int code, const char *reason,
                   const char *msg)
{
    char esc[512];
    c->istats[COL_INPUT_HTTP].http_rejected++;
    json_escape(msg, esc, sizeof esc);
    reply_json(req, code, reason, "{\"error\":\"%s\"}", esc);
}

static void req_done(col_http_req *r)
{
    col_ctx *c = r->c;
    if (r->req) {
        evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), NULL, NULL);
        /* 200 means on Kafka or on disk: with "interval" or "never" a spooled
         * event may still be only in the page cache. */
        if (!r->failed && r->spooled && c->spool && c->cfg->spool_fsync != COL_FSYNC_ALWAYS &&
            col_spool_sync(c->spool) != 0) {
            c->spool_errors++;
            col_log_limited(c, COL_LOG_SPOOL, "spool fsync: %s", strerror(errno));
            r->failed = r->spooled;
        }
        if (r->failed)
            reject(c, r->req, 503, "Service Unavailable",
                   "some events could not be delivered or spooled; resend the request");
        else
            reply_json(r->req, 200, "OK", "{\"accepted\":%zu}", r->events);
    }
    c->http_pending--;
    free(r);
}

void col_http_settle(col_ctx *c, col_http_req *r, int ok)
{
    (void)c;
    if (!ok)
        r->failed++;
    r->outstanding--;
    if (r->outstanding == 0 && !r->submitting)
        req_done(r);
}

/* The client went away before its reply: forget the request, keep counting. */
static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    col_http_req *r = arg;
    (void)evcon;
    r->req = NULL;
}

/* First pass: the size of every object. json.c reserves a multiple of an
 * object's length to parse it, so one huge object must not reach it. */
typedef struct size_check {
    size_t max;
    size_t too_big; /* length of the first object over max; 0 if none */
} size_check;

static int check_size(void *arg, const char *obj, size_t len)
{
    size_check *k = arg;
    (void)obj;
    if (len <= k->max)
        return 0;
    k->too_big = len;
    return 1; /* stop: the request is refused whole */
}

typedef struct submit_ctx {
    col_http_req *r;
    const char *peer;
} submit_ctx;

static int submit_one(void *arg, const char *obj, size_t len)
{
    submit_ctx *s = arg;
    col_http_req *r = s->r;
    r->outstanding++;
    if (col_ingest(r->c, r->st, obj, len, s->peer, r) != 0) {
        r->outstanding--;
        r->failed++;
    }
    return 0;
}

static int token_of(struct evhttp_request *req, const char **tok, size_t *len)
{
    const char *a = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7) != 0)
        return -1;
    a += 7;
    while (*a == ' ')
        a++;
    size_t n = strlen(a);
    while (n && a[n - 1] == ' ')
        n--;
    if (n == 0)
        return -1;
    *tok = a;
    *len = n;
    return 0;
}

static void on_events(struct evhttp_request *req, void *arg)
{
    col_ctx *c = arg;
    char err[256];
    const char *tok;
    size_t toklen;
    const char *uri = evhttp_request_get_uri(req);
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t)(q - uri) : strlen(uri);
    if (plen != 10 || strncmp(uri, "/v1/events", 10) != 0) {
        reject(c, req, 404, "Not Found", "unknown path; POST events to /v1/events");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reject(c, req, 405, "Method Not Allowed", "use POST");
        return;
    }
    if (c->stopping) {
        reject(c, req, 503, "Service Unavailable", "shutting down");
        return;
    }
    /* Each waiting request holds its body and a reply slot until Kafka answers;
     * a slow broker must not let them pile up without end. */
    if (c->http_pending >= c->cfg->max_http_pending) {
        c->istats[COL_INPUT_HTTP].http_busy++;
        col_log_limited(c, COL_LOG_HTTP, "http: %zu requests already wait for Kafka: 503",
                        c->http_pending);
        reject(c, req, 503, "Service Unavailable", "too many requests waiting for Kafka");
        return;
    }
    const char *op = NULL;
    if (token_of(req, &tok, &toklen) != 0) {
        /* With no token configured at all (flags only: a test or a first run),
         * requests without one belong to the default operator. As soon as any
         * token exists, every request needs one. */
        if (c->cfg->opmap.n_tokens > 0 ||
            evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization")) {
            reject(c, req, 401, "Unauthorized", "missing bearer token");
            return;
        }
        op = c->cfg->default_operator;
    } else {
        op = col_opmap_by_token(&c->cfg->opmap, tok, toklen);
    }
    if (!op) {
        col_log_limited(c, COL_LOG_HTTP, "http: request with an unknown token refused");
        reject(c, req, 401, "Unauthorized", "unknown token");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > c->cfg->max_body) {
        c->istats[COL_INPUT_HTTP].oversized++;
        reject(c, req, 413, "Payload Too Large", "body over limits.max_body");
        return;
    }
    const char *body = (const char *)evbuffer_pullup(in, -1);
    if (!body)
        body = "";
    /* First pass: validate the whole body, so a bad request writes nothing. */
    size_check k = {c->cfg->max_message, 0};
    long n = col_json_split(body, len, HTTP_MAX_EVENTS, check_size, &k, err, sizeof err);
    if (k.too_big) {
        c->istats[COL_INPUT_HTTP].oversized++;
        snprintf(err, sizeof err, "an event of %zu bytes is over limits.max_message (%zu)",
                 k.too_big, c->cfg->max_message);
        reject(c, req, 413, "Payload Too Large", err);
        return;
    }
    if (n < 0) {
        reject(c, req, 400, "Bad Request", err);
        return;
    }
    if (!col_out_has_room(c, (size_t)n, len)) {
        reject(c, req, 503, "Service Unavailable", "Kafka queue and spool are full");
        return;
    }
    char peer[64] = "";
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    char *paddr = NULL;
    ev_uint16_t pport;
    evhttp_connection_get_peer(evcon, &paddr, &pport);
    if (paddr)
        snprintf(peer, sizeof peer, "%s", paddr);
    col_http_req *r = psb_xcalloc(1, sizeof *r);
    r->tag = COL_TAG_HTTP;
    r->c = c;
    r->req = req;
    r->st = col_stats_get(c, COL_INPUT_HTTP, op);
    r->events = (size_t)n;
    r->submitting = 1;
    c->http_pending++;
    evhttp_connection_set_closecb(evcon, on_conn_close, r);
    submit_ctx s = {r, peer};
    c->batch_ms = psb_now_ms();
    col_json_split(body, len, HTTP_MAX_EVENTS, submit_one, &s, err, sizeof err);
    c->batch_ms = 0;
    r->submitting = 0;
    if (r->outstanding == 0)
        req_done(r);
}

int col_http_listen(col_ctx *c, const col_listen *l, char *err, size_t errlen)
{
    if (!c->http) {
        c->http = evhttp_new(c->base);
        evhttp_set_max_body_size(c->http, (ev_ssize_t)c->cfg->max_body);
        evhttp_set_max_headers_size(c->http, 16384);
        evhttp_set_timeout(
            c->http, (int)(c->cfg->idle_timeout_ms / 1000 ? c->cfg->idle_timeout_ms / 1000 : 1));
        evhttp_set_allowed_methods(c->http, EVHTTP_REQ_POST | EVHTTP_REQ_GET);
        evhttp_set_gencb(c->http, on_events, c);
    }
    struct evhttp_bound_socket *h =
        evhttp_bind_socket_with_handle(c->http, l->host, (ev_uint16_t)atoi(l->port));
    if (!h) {
        snprintf(err, errlen, "listen http://%s:%s: %s", l->host, l->port, strerror(errno));
        return -1;
    }
    c->http_socks[c->n_http_socks++] = h;
    return 0;
}

void col_http_stop_accepting(col_ctx *c)
{
    for (size_t i = 0; i < c->n_http_socks; i++)
        evhttp_del_accept_socket(c->http, c->http_socks[i]);
    c->n_http_socks = 0;
}

void col_http_free(col_ctx *c)
{
    if (c->http)
        evhttp_free(c->http);
    if (c->metrics)
        evhttp_free(c->metrics);
    c->http = c->metrics = NULL;
}

/* ---- metrics and health ---- */

static void prom_label(struct evbuffer *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            evbuffer_add_printf(b, "\\%c", *v);
        else if (*v == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, v, 1);
    }
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    col_ctx *c = arg;
    struct evbuffer *b = evbuffer_new();
#define COL_EMIT(name, help)                                                                       \
    evbuffer_add_printf(b, "# HELP pasban_collector_" #name "_total " help "\n"                    \
                           "# TYPE pasban_collector_" #name "_total counter\n");                   \
    for (col_stats *s = c->stats; s; s = s->next) {                                                \
        evbuffer_add_printf(b, "pasban_collector_" #name "_total{input=\"%s\",operator=\"",        \
                            col_input_name(s->input));                                             \
        prom_label(b, s->op);                                                                      \
        evbuffer_add_printf(b, "\"} %llu\n", (unsigned long long)s->name);                         \
    }
    COL_STATS(COL_EMIT)
#undef COL_EMIT
#define COL_EMIT(name, help)                                                                       \
    evbuffer_add_printf(b, "# HELP pasban_collector_" #name "_total " help "\n"                    \
                           "# TYPE pasban_collector_" #name "_total counter\n");                   \
    for (int i = 0; i < COL_INPUT_COUNT; i++)                                                      \
        evbuffer_add_printf(b, "pasban_collector_" #name "_total{input=\"%s\"} %llu\n",            \
                            col_input_name(i), (unsigned long long)c->istats[i].name);
    COL_ISTATS(COL_EMIT)
#undef COL_EMIT
    evbuffer_add_printf(b, "# HELP pasban_collector_open_connections Connections open now\n"
                           "# TYPE pasban_collector_open_connections gauge\n");
    for (int i = 0; i < COL_INPUT_COUNT; i++)
        evbuffer_add_printf(b, "pasban_collector_open_connections{input=\"%s\"} %llu\n",
                            col_input_name(i), (unsigned long long)c->istats[i].open);
    evbuffer_add_printf(
        b,
        "# HELP pasban_collector_spool_bytes Bytes in the disk spool\n"
        "# TYPE pasban_collector_spool_bytes gauge\n"
        "pasban_collector_spool_bytes %llu\n"
        "# HELP pasban_collector_spool_events Events in the spool not yet delivered\n"
        "# TYPE pasban_collector_spool_events gauge\n"
        "pasban_collector_spool_events %llu\n"
        "# HELP pasban_collector_spool_errors_total Spool reads or writes that failed\n"
        "# TYPE pasban_collector_spool_errors_total counter\n"
        "pasban_collector_spool_errors_total %llu\n"
        "# HELP pasban_collector_replayed_total Spooled events delivered to Kafka\n"
        "# TYPE pasban_collector_replayed_total counter\n"
        "pasban_collector_replayed_total %llu\n"
        "# HELP pasban_collector_replay_errors_total Spooled events Kafka refused for good\n"
        "# TYPE pasban_collector_replay_errors_total counter\n"
        "pasban_collector_replay_errors_total %llu\n"
        "# HELP pasban_collector_kafka_queue Events in librdkafka's queue\n"
        "# TYPE pasban_collector_kafka_queue gauge\n"
        "pasban_collector_kafka_queue %d\n"
        "# HELP pasban_collector_kafka_up 1 unless librdkafka reported all brokers down\n"
        "# TYPE pasban_collector_kafka_up gauge\n"
        "pasban_collector_kafka_up %d\n",
        (unsigned long long)(c->spool ? col_spool_bytes(c->spool) : 0),
        (unsigned long long)(c->spool ? col_spool_pending(c->spool) : 0),
        (unsigned long long)c->spool_errors, (unsigned long long)c->replayed,
        (unsigned long long)c->replay_errors,
        rd_kafka_outq_len(c->rk), c->kafka_up);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void on_health(struct evhttp_request *req, void *arg)
{
    col_ctx *c = arg;
    const char *uri = evhttp_request_get_uri(req);
    if (strcmp(uri, "/metrics") == 0) {
        on_metrics(req, c);
    } else if (strcmp(uri, "/healthz") == 0) {
        reply_json(req, 200, "OK", "{\"status\":\"ok\"}");
    } else if (strcmp(uri, "/readyz") == 0) {
        if (col_out_ready(c))
            reply_json(req, 200, "OK", "{\"ready\":true,\"kafka_up\":%s}",
                       c->kafka_up ? "true" : "false");
        else
            reply_json(req, 503, "Service Unavailable", "{\"ready\":false,\"kafka_up\":%s}",
                       c->kafka_up ? "true" : "false");
    } else {
        reply_json(req, 404, "Not Found", "{\"error\":\"try /metrics, /healthz or /readyz\"}");
    }
}

int col_metrics_listen(col_ctx *c, char *err, size_t errlen)
{
    c->metrics = evhttp_new(c->base);
    evhttp_set_allowed_methods(c->metrics, EVHTTP_REQ_GET);
    evhttp_set_timeout(c->metrics, 30);
    evhttp_set_gencb(c->metrics, on_health, c);
    if (evhttp_bind_socket(c->metrics, c->cfg->metrics_host,
                           (ev_uint16_t)atoi(c->cfg->metrics_port)) != 0) {
        snprintf(err, errlen, "metrics %s:%s: %s", c->cfg->metrics_host, c->cfg->metrics_port,
                 strerror(errno));
        return -1;
    }
    return 0;
}
