/* cor_http.c -- evhttp handlers for the incident and KPI APIs, /metrics and the
 * dashboard. Every handler answers synchronously -- the data is in memory and a
 * request costs one pass over one operator's incidents at most -- but a status
 * change handed to Kafka, which is answered from its delivery report.
 */
#include "cor_http.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "pasban/parse.h"
#include "pasban/util.h"

#define MAX_TOKEN_LEN 256
#define MAX_STATIC_FILE (8 << 20)

typedef struct tok {
    char *token;
    char *op; /* NULL: regulator */
} tok;

struct cor_http_tokens {
    tok *t;
    size_t n;
};

cor_http_tokens *cor_http_tokens_new(void)
{
    return psb_xcalloc(1, sizeof(cor_http_tokens));
}

void cor_http_tokens_free(cor_http_tokens *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->t[i].token);
        free(t->t[i].op);
    }
    free(t->t);
    free(t);
}

int cor_http_tokens_add(cor_http_tokens *t, const char *token, const char *op)
{
    if (!token || !*token || strlen(token) > MAX_TOKEN_LEN || t->n >= COR_HTTP_MAX_TOKENS ||
        (op && (!*op || strlen(op) > COR_KPI_MAX_ID_LEN)))
        return -1;
    /* A token listed twice would silently take its last role (op-a's token
     * becoming the regulator's): refuse it. */
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->t[i].token, token) == 0)
            return -1;
    t->t = psb_xrealloc(t->t, (t->n + 1) * sizeof(tok));
    t->t[t->n].token = psb_xstrdup(token);
    t->t[t->n].op = op ? psb_xstrdup(op) : NULL;
    t->n++;
    return 0;
}

cor_http_tokens *cor_http_tokens_parse(const char *text, size_t len, char *err, size_t errlen)
{
    char ybuf[128];
    char *copy = psb_xstrndup(text, len);
    yajl_val root = psb_json_tree_parse(copy, ybuf, sizeof(ybuf));
    free(copy);
    cor_http_tokens *t = cor_http_tokens_new();
    if (!root) {
        snprintf(err, errlen, "%s", ybuf);
        goto fail;
    }
    const char *p[] = {"tokens", NULL};
    yajl_val arr = YAJL_IS_ARRAY(root) ? root : yajl_tree_get(root, p, yajl_t_array);
    if (!arr) {
        snprintf(err, errlen, "expected {\"tokens\": [...]}");
        goto fail;
    }
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val e = arr->u.array.values[i];
        const char *pt[] = {"token", NULL}, *po[] = {"operator", NULL}, *pr[] = {"role", NULL};
        yajl_val vt = yajl_tree_get(e, pt, yajl_t_string), vo = yajl_tree_get(e, po, yajl_t_string);
        yajl_val vr = yajl_tree_get(e, pr, yajl_t_string);
        bool regulator = vr && strcmp(vr->u.string, "regulator") == 0;
        if (!vt || (!vo && !regulator) || (vo && regulator) ||
            cor_http_tokens_add(t, YAJL_GET_STRING(vt), vo ? YAJL_GET_STRING(vo) : NULL) < 0) {
            snprintf(err, errlen,
                     "tokens[%zu]: needs \"token\" and either \"operator\" or "
                     "\"role\": \"regulator\"",
                     i);
            goto fail;
        }
    }
    yajl_tree_free(root);
    return t;
fail:
    yajl_tree_free(root);
    cor_http_tokens_free(t);
    return NULL;
}

/* Compare in time independent of where the first difference is. */
static bool token_eq(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    unsigned char d = alen != blen;
    for (size_t i = 0; i < blen; i++)
        d |= (unsigned char)(a[i % (alen ? alen : 1)] ^ b[i]);
    return d == 0 && alen == blen;
}

/* A POST waiting for the delivery report of its update. req and evcon are
 * NULL once the client has gone (the connection's close callback). */
typedef struct held {
    uint64_t ticket;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    char *answer; /* the 202 body */
} held;

struct cor_http {
    cor_http_config cfg;
    struct evhttp *http;
    uint16_t port;
    held *held;
    size_t n_held;
    uint64_t next_ticket;
    size_t unsent; /* answers to held requests not yet written out */
};

typedef struct who {
    bool ok;
    const char *op; /* NULL: regulator */
} who;

static who authenticate(const cor_http *h, struct evhttp_request *req)
{
    who w = {false, NULL};
    const char *a = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!a || strncasecmp(a, "Bearer ", 7) != 0 || !h->cfg.tokens)
        return w;
    const char *t = a + 7;
    size_t n = strlen(t);
    if (n == 0 || n > MAX_TOKEN_LEN)
        return w;
    for (size_t i = 0; i < h->cfg.tokens->n; i++)
        if (token_eq(h->cfg.tokens->t[i].token, t, n)) {
            w.ok = true;
            w.op = h->cfg.tokens->t[i].op;
        }
    return w;
}

static void reply(struct evhttp_request *req, int code, const char *type, const char *body,
                  size_t len)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", type);
    evhttp_add_header(oh, "Cache-Control", "no-store");
    evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    const char *reason = code == 200   ? "OK"
                         : code == 202 ? "Accepted"
                         : code == 400 ? "Bad Request"
                         : code == 401 ? "Unauthorized"
                         : code == 403 ? "Forbidden"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 409 ? "Conflict"
                         : code == 413 ? "Payload Too Large"
                         : code == 422 ? "Unprocessable Entity"
                         : code == 503 ? "Service Unavailable"
                                       : "Error";
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void reply_buf(struct evhttp_request *req, int code, const char *type, const cor_buf *b)
{
    reply(req, code, type, b->p ? b->p : "", b->len);
}

static void reply_error(struct evhttp_request *req, int code, const char *msg)
{
    cor_buf b = {0};
    cor_buf_puts(&b, "{\"error\":");
    cor_buf_json_str(&b, msg, strlen(msg));
    cor_buf_puts(&b, "}");
    if (code == 401)
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"pasban\"");
    reply_buf(req, code, "application/json", &b);
    cor_buf_free(&b);
}

static const char *JSON = "application/json";

/* ---- /api/incidents ---- */

static int parse_size(const char *s, size_t max, size_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > max)
        return -1;
    *out = (size_t)v;
    return 0;
}

static void list_incidents(cor_http *h, struct evhttp_request *req, who w, struct evkeyvalq *q)
{
    cor_inc_query iq;
    cor_inc_query_init(&iq);
    const char *op = evhttp_find_header(q, "operator");
    if (w.op && op && strcmp(op, w.op) != 0) {
        reply_error(req, 403, "this token reads only its own operator's incidents");
        return;
    }
    iq.op = w.op ? w.op : (op && *op ? op : NULL);
    const char *st = evhttp_find_header(q, "status");
    if (st && *st) {
        if (strcmp(st, "open") == 0)
            iq.open_only = true;
        else if ((iq.status = cor_inc_status_from_name(st)) < 0) {
            reply_error(req, 400,
                        "status: new, acknowledged, contained, resolved, false_positive, "
                        "reported or open");
            return;
        }
    }
    const char *sev = evhttp_find_header(q, "severity");
    if (sev && *sev && (iq.severity = cor_kpi_severity_from_name(sev)) < 0) {
        reply_error(req, 400, "severity: info, low, medium, high or critical");
        return;
    }
    const char *cat = evhttp_find_header(q, "category");
    iq.category = cat && *cat ? cat : NULL;
    const char *from = evhttp_find_header(q, "from"), *to = evhttp_find_header(q, "to");
    if ((from && psb_parse_rfc3339(from, strlen(from), &iq.from) < 0) ||
        (to && psb_parse_rfc3339(to, strlen(to), &iq.to) < 0)) {
        reply_error(req, 400, "from and to: RFC 3339 times");
        return;
    }
    const char *off = evhttp_find_header(q, "offset"), *lim = evhttp_find_header(q, "limit");
    if ((off && parse_size(off, SIZE_MAX / 2, &iq.offset) < 0) ||
        (lim && (parse_size(lim, COR_HTTP_MAX_PAGE, &iq.limit) < 0 || iq.limit == 0))) {
        reply_error(req, 400, "offset and limit: numbers, limit 1..1000");
        return;
    }
    cor_buf b = {0};
    cor_incstore_query_json(h->cfg.store, &iq, &b);
    reply_buf(req, 200, JSON, &b);
    cor_buf_free(&b);
}

static bool visible(const cor_http *h, who w, const char *id)
{
    const char *op = cor_incstore_operator(h->cfg.store, id);
    return op && (!w.op || strcmp(op, w.op) == 0);
}

static void get_incident(cor_http *h, struct evhttp_request *req, who w, const char *id)
{
    if (!visible(h, w, id)) {
        reply_error(req, 404, "no such incident");
        return;
    }
    cor_buf b = {0};
    cor_incstore_write_json(h->cfg.store, id, &b);
    reply_buf(req, 200, JSON, &b);
    cor_buf_free(&b);
}

static char *body_text(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    if (*len > COR_HTTP_MAX_BODY)
        return NULL;
    char *s = psb_xmalloc(*len + 1);
    evbuffer_copyout(in, s, *len);
    s[*len] = '\0';
    return s;
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    cor_http *h = arg;
    for (size_t i = 0; i < h->n_held; i++) {
        held *x = &h->held[i];
        if (x->evcon != evcon)
            continue;
        /* libevent detaches a request whose client hung up while it was held
         * and leaves it to the application; one still attached goes with its
         * connection (evhttp_free). */
        if (x->req && !evhttp_request_get_connection(x->req))
            evhttp_request_free(x->req);
        x->req = NULL;
        x->evcon = NULL;
    }
}

static void on_sent(struct evhttp_request *req, void *arg)
{
    (void)req;
    cor_http *h = arg;
    if (h->unsent)
        h->unsent--;
}

/* Answer held request i and forget it. */
static void release_held(cor_http *h, size_t i, int code, const char *err)
{
    held x = h->held[i];
    h->held[i] = h->held[--h->n_held];
    if (x.req) {
        evhttp_connection_set_closecb(x.evcon, NULL, NULL);
        evhttp_request_set_on_complete_cb(x.req, on_sent, h);
        h->unsent++;
        if (err)
            reply_error(x.req, code, err);
        else
            reply(x.req, code, JSON, x.answer, strlen(x.answer));
    }
    free(x.answer);
}

/* Hand u to the hook and keep the request open for the delivery report. */
static void hold_and_publish(cor_http *h, struct evhttp_request *req, const cor_inc_update *u,
                             const char *op)
{
    char err[256];
    if (h->n_held >= COR_HTTP_MAX_HELD) {
        reply_error(req, 503, "too many updates waiting for Kafka; try again");
        return;
    }
    uint64_t ticket = ++h->next_ticket;
    if (h->cfg.publish(h->cfg.publish_arg, u, op, ticket, err, sizeof(err)) < 0) {
        reply_error(req, 503, err);
        return;
    }
    cor_buf b = {0};
    cor_buf_puts(&b, "{\"accepted\":true,\"update\":");
    cor_inc_update_write(u, op, &b);
    cor_buf_puts(&b, "}");
    h->held = psb_xrealloc(h->held, (h->n_held + 1) * sizeof(held));
    held *x = &h->held[h->n_held++];
    x->ticket = ticket;
    x->req = req;
    x->evcon = evhttp_request_get_connection(req);
    x->answer = psb_xstrndup(b.p, b.len);
    cor_buf_free(&b);
    evhttp_connection_set_closecb(x->evcon, on_conn_close, h);
}

void cor_http_update_done(cor_http *h, uint64_t ticket, const char *err)
{
    for (size_t i = 0; i < h->n_held; i++)
        if (h->held[i].ticket == ticket) {
            char msg[384];
            if (err)
                snprintf(msg, sizeof(msg), "the update did not reach Kafka: %s", err);
            release_held(h, i, err ? 503 : 202, err ? msg : NULL);
            return;
        }
}

size_t cor_http_held(const cor_http *h)
{
    return h->n_held;
}

void cor_http_fail_held(cor_http *h, const char *reason)
{
    while (h->n_held)
        release_held(h, h->n_held - 1, 503, reason);
}

size_t cor_http_unsent(const cor_http *h)
{
    return h->unsent;
}

static void post_status(cor_http *h, struct evhttp_request *req, who w, const char *id)
{
    char err[256], ybuf[128];
    yajl_val root = NULL;
    char *text = NULL;
    cor_buf b = {0};
    if (!w.op) {
        reply_error(req, 403, "the regulator's token reads and changes nothing");
        return;
    }
    if (!visible(h, w, id)) {
        reply_error(req, 404, "no such incident");
        return;
    }
    size_t len;
    text = body_text(req, &len);
    if (!text) {
        reply_error(req, 413, "body too large");
        goto out;
    }
    root = psb_json_tree_parse(text, ybuf, sizeof(ybuf));
    if (!root || !YAJL_IS_OBJECT(root)) {
        reply_error(req, 400,
                    "body: a JSON object {\"status\": ..., \"at\"?: ..., \"note\"?: ...}");
        goto out;
    }
    const char *ps[] = {"status", NULL}, *pa[] = {"at", NULL}, *pn[] = {"note", NULL};
    yajl_val vs = yajl_tree_get(root, ps, yajl_t_any), va = yajl_tree_get(root, pa, yajl_t_any);
    yajl_val vn = yajl_tree_get(root, pn, yajl_t_any);
    int status = YAJL_IS_STRING(vs) ? cor_inc_status_from_name(YAJL_GET_STRING(vs)) : -1;
    if (status <= COR_INC_NEW) {
        reply_error(req, 400,
                    "status: acknowledged, contained, resolved, false_positive or reported");
        goto out;
    }
    int64_t now = psb_now_ms(), at = now;
    if (va &&
        (!YAJL_IS_STRING(va) || psb_parse_rfc3339(va->u.string, strlen(va->u.string), &at) < 0)) {
        reply_error(req, 400, "at: an RFC 3339 time");
        goto out;
    }
    if (vn && !YAJL_IS_STRING(vn)) {
        reply_error(req, 400, "note: a string");
        goto out;
    }
    /* An update from the future would make MTTA/MTTR whatever the analyst
     * typed; a little slack covers a client clock that runs ahead. */
    int64_t slack =
        h->cfg.at_max_future_ms > 0 ? h->cfg.at_max_future_ms : COR_HTTP_AT_MAX_FUTURE_MS;
    if (at > now + slack) {
        char t[PSB_TIME_BUFSZ];
        psb_format_time_ms(now, t);
        snprintf(err, sizeof(err),
                 "at: more than %lld s past the server's clock (%s); give the time it happened",
                 (long long)(slack / 1000), t);
        reply_error(req, 422, err);
        goto out;
    }
    cor_inc_update u = {id, status, at, vn ? YAJL_GET_STRING(vn) : NULL, w.op, now};
    if (cor_inc_update_check_limits(&u, w.op, err, sizeof(err)) < 0) {
        reply_error(req, 422, err);
        goto out;
    }
    if (cor_incstore_check(h->cfg.store, &u, err, sizeof(err)) < 0) {
        reply_error(req, 409, err);
        goto out;
    }
    if (h->cfg.publish) {
        hold_and_publish(h, req, &u, w.op);
        goto out;
    }
    if (cor_incstore_apply(h->cfg.store, &u, err, sizeof(err)) < 0) {
        reply_error(req, 409, err);
        goto out;
    }
    if (h->cfg.kpi)
        cor_kpi_on_update(h->cfg.kpi, id, cor_inc_status_name(status), at);
    cor_incstore_write_json(h->cfg.store, id, &b);
    reply_buf(req, 200, JSON, &b);
out:
    cor_buf_free(&b);
    yajl_tree_free(root);
    free(text);
}

/* ---- /api/kpi ---- */

static int period_arg(const cor_http *h, struct evkeyvalq *q, cor_kpi_period *p, bool month_only)
{
    const char *s = evhttp_find_header(q, "period");
    if (!s || !*s) {
        *p = cor_kpi_current_month(h->cfg.kpi);
        return 0;
    }
    if (cor_kpi_period_parse(s, p) < 0 || (month_only && p->is_day))
        return -1;
    return 0;
}

/* The operator a KPI request is about: the token's, or the one asked for (NULL:
 * all, regulator only). -1 after replying with an error. */
static int kpi_operator(struct evhttp_request *req, who w, struct evkeyvalq *q, const char **op)
{
    const char *o = evhttp_find_header(q, "operator");
    if (o && !*o)
        o = NULL;
    if (w.op && o && strcmp(o, w.op) != 0) {
        reply_error(req, 403, "this token reads only its own operator's KPIs");
        return -1;
    }
    *op = w.op ? w.op : o;
    return 0;
}

static void get_kpi(cor_http *h, struct evhttp_request *req, who w, struct evkeyvalq *q)
{
    cor_kpi_period p;
    const char *op;
    if (period_arg(h, q, &p, false) < 0) {
        reply_error(req, 400, "period: YYYY-MM or YYYY-MM-DD");
        return;
    }
    if (kpi_operator(req, w, q, &op) < 0)
        return;
    cor_buf b = {0};
    const char *asked = evhttp_find_header(q, "operator");
    if (!op) {
        cor_kpi_write_json_all(h->cfg.kpi, p, &b);
    } else if (!asked || !*asked) {
        /* Same shape as the regulator's answer, with the one record it may see. */
        char per[16];
        cor_kpi_period_format(p, per);
        cor_buf_puts(&b, "{\"period\":");
        cor_buf_json_str(&b, per, strlen(per));
        cor_buf_puts(&b, ",\"records\":[");
        cor_kpi_write_json(h->cfg.kpi, op, p, &b);
        cor_buf_puts(&b, "]}");
    } else if (cor_kpi_write_json(h->cfg.kpi, op, p, &b) < 0) {
        cor_buf_free(&b);
        reply_error(req, 404, "no such operator");
        return;
    }
    reply_buf(req, 200, JSON, &b);
    cor_buf_free(&b);
}

static void get_kpi_days(cor_http *h, struct evhttp_request *req, who w, struct evkeyvalq *q)
{
    cor_kpi_period p;
    const char *op;
    if (period_arg(h, q, &p, true) < 0) {
        reply_error(req, 400, "period: YYYY-MM");
        return;
    }
    if (kpi_operator(req, w, q, &op) < 0)
        return;
    if (!op) {
        reply_error(req, 400, "operator: required");
        return;
    }
    cor_buf b = {0};
    if (cor_kpi_write_days_json(h->cfg.kpi, op, p, &b) < 0) {
        cor_buf_free(&b);
        reply_error(req, 404, "no such operator");
        return;
    }
    reply_buf(req, 200, JSON, &b);
    cor_buf_free(&b);
}

static void get_kpi_csv(cor_http *h, struct evhttp_request *req, who w, struct evkeyvalq *q)
{
    cor_kpi_period p;
    if (period_arg(h, q, &p, false) < 0) {
        reply_error(req, 400, "period: YYYY-MM or YYYY-MM-DD");
        return;
    }
    char per[16], disp[96];
    cor_kpi_period_format(p, per);
    snprintf(disp, sizeof(disp), "attachment; filename=\"pasban-kpi-%s.csv\"", per);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Disposition", disp);
    cor_buf b = {0};
    cor_kpi_write_csv(h->cfg.kpi, p, w.op, &b);
    reply_buf(req, 200, "text/csv; charset=utf-8; header=present", &b);
    cor_buf_free(&b);
}

static void get_metrics(cor_http *h, struct evhttp_request *req)
{
    cor_buf b = {0};
    cor_kpi_write_prometheus(h->cfg.kpi, &b);
    if (h->cfg.metrics)
        h->cfg.metrics(h->cfg.metrics_arg, &b);
    reply_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    cor_buf_free(&b);
}

/* ---- the dashboard ---- */

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    if (strcmp(dot, ".png") == 0)
        return "image/png";
    return "application/octet-stream";
}

static void serve_file(cor_http *h, struct evhttp_request *req, const char *path)
{
    /* Names are [A-Za-z0-9._-] with at most one directory level: nothing can climb
     * out of web_root. */
    const char *name = strcmp(path, "/") == 0 ? "index.html" : path + 1;
    size_t n = strlen(name), slashes = 0;
    bool ok = h->cfg.web_root && n > 0 && n < 128 && name[0] != '.';
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        if (c == '/') {
            slashes++;
            ok = slashes <= 1 && name[i + 1] != '.';
        } else {
            ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        }
    }
    char full[PATH_MAX];
    if (!ok || snprintf(full, sizeof(full), "%s/%s", h->cfg.web_root, name) >= (int)sizeof(full)) {
        reply_error(req, 404, "not found");
        return;
    }
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_STATIC_FILE) {
        if (fd >= 0)
            close(fd);
        reply_error(req, 404, "not found");
        return;
    }
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", content_type(name));
    evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(oh, "Content-Security-Policy",
                      "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_file(b, fd, 0, st.st_size); /* takes the descriptor */
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

/* ---- dispatch ---- */

static void handle(struct evhttp_request *req, void *arg)
{
    cor_http *h = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    char *path = raw ? evhttp_uridecode(raw, 0, NULL) : NULL;
    if (!path || strlen(path) > 512) {
        reply_error(req, 400, "bad path");
        goto out;
    }
    const char *qs = evhttp_uri_get_query(uri);
    if (qs && evhttp_parse_query_str(qs, &q) < 0) {
        reply_error(req, 400, "bad query string");
        goto out;
    }
    /* Liveness for a process supervisor or a load balancer: no token, no data. */
    if (strcmp(path, "/healthz") == 0) {
        static const char ok[] = "{\"status\":\"ok\"}\n";
        reply(req, 200, "application/json", ok, sizeof(ok) - 1);
        goto out;
    }
    bool api = strncmp(path, "/api/", 5) == 0 || strcmp(path, "/metrics") == 0;
    if (!api) {
        if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
            reply_error(req, 405, "method not allowed");
        else
            serve_file(h, req, path);
        goto out;
    }
    who w = authenticate(h, req);
    if (!w.ok) {
        reply_error(req, 401, "a valid bearer token is required");
        goto out;
    }
    const char *inc = "/api/incidents/";
    if (strncmp(path, inc, strlen(inc)) == 0) {
        const char *id = path + strlen(inc);
        const char *slash = strchr(id, '/');
        char idbuf[COR_KPI_MAX_ID_LEN + 1];
        size_t idlen = slash ? (size_t)(slash - id) : strlen(id);
        if (idlen == 0 || idlen > COR_KPI_MAX_ID_LEN) {
            reply_error(req, 404, "no such incident");
            goto out;
        }
        memcpy(idbuf, id, idlen);
        idbuf[idlen] = '\0';
        if (!slash && cmd == EVHTTP_REQ_GET)
            get_incident(h, req, w, idbuf);
        else if (slash && strcmp(slash, "/status") == 0 && cmd == EVHTTP_REQ_POST)
            post_status(h, req, w, idbuf);
        else if (!slash || strcmp(slash, "/status") == 0)
            reply_error(req, 405, "method not allowed");
        else
            reply_error(req, 404, "not found");
        goto out;
    }
    if (cmd != EVHTTP_REQ_GET) {
        reply_error(req, 405, "method not allowed");
        goto out;
    }
    if (strcmp(path, "/api/incidents") == 0)
        list_incidents(h, req, w, &q);
    else if (strcmp(path, "/api/kpi") == 0)
        get_kpi(h, req, w, &q);
    else if (strcmp(path, "/api/kpi/days") == 0)
        get_kpi_days(h, req, w, &q);
    else if (strcmp(path, "/api/kpi.csv") == 0)
        get_kpi_csv(h, req, w, &q);
    else if (strcmp(path, "/metrics") == 0) {
        /* Every operator's KPIs are in there: Prometheus scrapes with the
         * regulator's token, an operator uses /api/kpi for its own. */
        if (w.op)
            reply_error(req, 403, "/metrics holds every operator's KPIs: regulator token only");
        else
            get_metrics(h, req);
    } else if (strcmp(path, "/api/whoami") == 0) {
        cor_buf b = {0};
        if (w.op) {
            cor_buf_puts(&b, "{\"role\":\"operator\",\"operator\":");
            cor_buf_json_str(&b, w.op, strlen(w.op));
            cor_buf_putc(&b, '}');
        } else {
            cor_buf_puts(&b, "{\"role\":\"regulator\"}");
        }
        reply_buf(req, 200, JSON, &b);
        cor_buf_free(&b);
    } else
        reply_error(req, 404, "not found");
out:
    evhttp_clear_headers(&q);
    free(path);
}

cor_http *cor_http_new(struct event_base *base, const char *addr, uint16_t port,
                       const cor_http_config *cfg)
{
    cor_http *h = psb_xcalloc(1, sizeof(*h));
    h->cfg = *cfg;
    h->http = evhttp_new(base);
    if (!h->http)
        goto fail;
    /* Our handler refuses bodies over COR_HTTP_MAX_BODY and methods it does not
     * serve with a JSON error; libevent's own limits, which answer in HTML, only
     * stop what is far past them. */
    evhttp_set_max_body_size(h->http, 64 * COR_HTTP_MAX_BODY);
    evhttp_set_max_headers_size(h->http, 16384);
    evhttp_set_timeout(h->http, 30);
    evhttp_set_allowed_methods(h->http, 0xffff);
    evhttp_set_gencb(h->http, handle, h);
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(h->http, addr, port);
    if (!s)
        goto fail;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&ss, &sl) < 0)
        goto fail;
    h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return h;
fail:
    cor_http_free(h);
    return NULL;
}

uint16_t cor_http_port(const cor_http *h)
{
    return h->port;
}

void cor_http_free(cor_http *h)
{
    if (!h)
        return;
    /* evhttp_free closes the connections, whose close callback still reads
     * the held list: it goes after. */
    if (h->http)
        evhttp_free(h->http);
    for (size_t i = 0; i < h->n_held; i++)
        free(h->held[i].answer);
    free(h->held);
    free(h);
}

int cor_http_default_web_root(char *buf, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    struct stat st;
    if (snprintf(buf, len, "%s/../share/pasban/web", exe) >= (int)len || stat(buf, &st) < 0 ||
        !S_ISDIR(st.st_mode))
        return -1;
    return 0;
}
