/* HTTP API over a real socket on 127.0.0.1: access rules per token, filters,
 * lifecycle updates (direct and through the publish hook), KPI JSON and CSV,
 * /metrics and the dashboard files. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <yajl/yajl_tree.h>

#include "cor_http.h"
#include "pasban/util.h"

typedef struct fixture {
    struct event_base *base;
    cor_kpi *kpi;
    cor_incstore *store;
    cor_http_tokens *tokens;
    cor_http *http;
    char web[64];
    /* what the publish hook saw */
    int published;
    char pub_id[64], pub_op[64];
    int pub_status;
    uint64_t ticket;
    /* what the fake Kafka does with it: report after a short delay (delivery
     * error deliver_err, or NULL), or never (hold) */
    bool hold;
    bool fail_instead; /* the report never comes: the daemon stops (cor_http_fail_held) */
    const char *deliver_err;
    int code_at_delivery; /* the client's status code when the report came */
    struct resp *cur;     /* the request in flight */
} fixture;

typedef struct resp {
    int code;
    char *body;
    size_t len;
    char ctype[128];
    struct event_base *base;
} resp;

static const char kpi_cfg[] = "{\"operators\": {\"op-a\": {\"sources\": [\"gw1\", \"gw2\"],"
                              " \"targets\": {\"coverage_pct\": \">= 95\"}}, \"op-b\": {}}}";

static void add_incident(fixture *f, const char *id, const char *op, const char *sev,
                         const char *first)
{
    char rec[768], err[128];
    snprintf(
        rec, sizeof(rec),
        "{\"id\":\"%s\",\"rule\":{\"id\":\"PSB-SSH-001\",\"title\":\"SSH\"},\"severity\":\"%s\","
        "\"category\":\"intrusion-attempts/login-attempts\",\"organization\":{\"id\":\"%s\"},"
        "\"first_seen\":\"%s\",\"last_seen\":\"%s\",\"detected_at\":\"%s\",\"count\":1,"
        "\"status\":\"new\"}",
        id, sev, op, first, first, first);
    cor_kpi_incident ki;
    assert_int_equal(cor_incstore_add_json(f->store, rec, strlen(rec), &ki, err, sizeof(err)), 1);
    assert_int_equal(cor_kpi_on_incident(f->kpi, &ki), 0);
}

/* The daemon's hook for its own families on /metrics. */
static void extra_metrics(void *arg, cor_buf *b)
{
    (void)arg;
    cor_buf_puts(b, "# HELP test_extra_total From the hook.\n# TYPE test_extra_total counter\n"
                    "test_extra_total 7\n");
}

/* The delivery report, 50 ms after the update was queued. */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fixture *f = arg;
    f->code_at_delivery = f->cur ? f->cur->code : -2;
    if (f->fail_instead)
        cor_http_fail_held(f->http, "shutting down");
    else
        cor_http_update_done(f->http, f->ticket, f->deliver_err);
}

static int publish(void *arg, const cor_inc_update *u, const char *op, uint64_t ticket, char *err,
                   size_t errlen)
{
    fixture *f = arg;
    (void)err;
    (void)errlen;
    f->published++;
    snprintf(f->pub_id, sizeof(f->pub_id), "%s", u->id);
    snprintf(f->pub_op, sizeof(f->pub_op), "%s", op);
    f->pub_status = u->status;
    f->ticket = ticket;
    if (!f->hold) {
        struct timeval tv = {0, 50000};
        event_base_once(f->base, -1, EV_TIMEOUT, deliver, f, &tv);
    }
    return 0;
}

static int setup_with(void **state, bool hook, int64_t at_max_future_ms)
{
    fixture *f = psb_xcalloc(1, sizeof(*f));
    char err[128];
    f->base = event_base_new();
    f->kpi = cor_kpi_new(cor_kpi_config_parse(kpi_cfg, strlen(kpi_cfg), err, sizeof(err)));
    f->store = cor_incstore_new();
    const char *toks = "{\"tokens\": [{\"token\": \"tok-a\", \"operator\": \"op-a\"},"
                       " {\"token\": \"tok-b\", \"operator\": \"op-b\"},"
                       " {\"token\": \"tok-reg\", \"role\": \"regulator\"}]}";
    f->tokens = cor_http_tokens_parse(toks, strlen(toks), err, sizeof(err));
    assert_non_null(f->tokens);
    int64_t t0 = 0;
    psb_parse_rfc3339("2026-11-05T00:00:00Z", 20, &t0);
    for (int i = 0; i < 10; i++)
        cor_kpi_on_event(f->kpi, "op-a", t0 + i * 1000, "gw1", false);
    cor_kpi_on_event(f->kpi, "op-b", t0, "x", true);
    add_incident(f, "a1", "op-a", "high", "2026-11-02T10:00:00.000Z");
    add_incident(f, "a2", "op-a", "low", "2026-11-03T10:00:00.000Z");
    add_incident(f, "b1", "op-b", "critical", "2026-11-04T10:00:00.000Z");
    snprintf(f->web, sizeof(f->web), "/tmp/test_http_web_XXXXXX");
    assert_non_null(mkdtemp(f->web));
    char path[128];
    snprintf(path, sizeof(path), "%s/index.html", f->web);
    FILE *fp = fopen(path, "w");
    fputs("<!doctype html><title>Pasban</title>", fp);
    fclose(fp);
    cor_http_config cfg = {f->kpi, f->store,      f->tokens, f->web,          hook ? publish : NULL,
                           f,      extra_metrics, NULL,      at_max_future_ms};
    f->http = cor_http_new(f->base, "127.0.0.1", 0, &cfg);
    assert_non_null(f->http);
    assert_true(cor_http_port(f->http) > 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, false, 0);
}
static int setup_hook(void **state)
{
    return setup_with(state, true, 0);
}
static int setup_slack_1m(void **state)
{
    return setup_with(state, false, 60 * 1000);
}

static int teardown(void **state)
{
    fixture *f = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/index.html", f->web);
    unlink(path);
    rmdir(f->web);
    cor_http_free(f->http);
    cor_http_tokens_free(f->tokens);
    cor_incstore_free(f->store);
    cor_kpi_free(f->kpi);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void on_done(struct evhttp_request *req, void *arg)
{
    resp *r = arg;
    if (req) {
        r->code = evhttp_request_get_response_code(req);
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        r->len = evbuffer_get_length(in);
        r->body = psb_xmalloc(r->len + 1);
        evbuffer_copyout(in, r->body, r->len);
        r->body[r->len] = '\0';
        const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
    }
    event_base_loopbreak(r->base);
}

static resp call(fixture *f, enum evhttp_cmd_type cmd, const char *path, const char *token,
                 const char *body)
{
    resp r = {-1, NULL, 0, "", f->base};
    f->cur = &r;
    struct evhttp_connection *c =
        evhttp_connection_base_new(f->base, NULL, "127.0.0.1", cor_http_port(f->http));
    struct evhttp_request *req = evhttp_request_new(on_done, &r);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    if (token) {
        char a[128];
        snprintf(a, sizeof(a), "Bearer %s", token);
        evhttp_add_header(h, "Authorization", a);
    }
    if (body) {
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
    assert_int_equal(evhttp_make_request(c, req, cmd, path), 0);
    event_base_dispatch(f->base);
    evhttp_connection_free(c);
    f->cur = NULL;
    assert_true(r.code > 0);
    return r;
}

static resp get(fixture *f, const char *path, const char *token)
{
    return call(f, EVHTTP_REQ_GET, path, token, NULL);
}

static yajl_val json_of(const resp *r)
{
    yajl_val v = yajl_tree_parse(r->body, NULL, 0);
    assert_non_null(v);
    return v;
}

static const char *jstr(yajl_val v, const char *a, const char *b)
{
    const char *p[] = {a, b, NULL};
    yajl_val x = yajl_tree_get(v, p, yajl_t_string);
    return x ? x->u.string : NULL;
}

static long long jint(yajl_val v, const char *a, const char *b)
{
    const char *p[] = {a, b, NULL};
    yajl_val x = yajl_tree_get(v, p, yajl_t_number);
    assert_non_null(x);
    return YAJL_GET_INTEGER(x);
}

/* 4xx with {"error": "..."} */
static void expect_error(resp r, int code)
{
    if (r.code != code)
        print_error("got %d: %s\n", r.code, r.body);
    assert_int_equal(r.code, code);
    assert_non_null(strstr(r.ctype, "application/json"));
    yajl_val v = json_of(&r);
    assert_non_null(jstr(v, "error", NULL));
    yajl_tree_free(v);
    free(r.body);
}

static void test_tokens_required(void **state)
{
    fixture *f = *state;
    expect_error(get(f, "/api/incidents", NULL), 401);
    expect_error(get(f, "/api/incidents", "tok-x"), 401);
    expect_error(get(f, "/api/incidents", "tok-a2"), 401);
    expect_error(get(f, "/metrics", NULL), 401);
    /* A token listed twice is refused, not silently given its last role. */
    char err[256];
    const char *dup = "{\"tokens\": [{\"token\": \"same-token\", \"operator\": \"op-a\"},"
                      " {\"token\": \"same-token\", \"role\": \"regulator\"}]}";
    assert_null(cor_http_tokens_parse(dup, strlen(dup), err, sizeof(err)));
    /* /metrics carries every operator's KPIs: not for an operator's token. */
    expect_error(get(f, "/metrics", "tok-a"), 403);
    expect_error(get(f, "/api/kpi.csv", "tok"), 401);
    expect_error(get(f, "/api/nothing", "tok-a"), 404);
    /* Liveness needs no token and shows no data. */
    resp h = get(f, "/healthz", NULL);
    assert_int_equal(h.code, 200);
    assert_non_null(strstr(h.body, "\"ok\""));
    free(h.body);
}

static void test_operator_sees_only_its_own(void **state)
{
    fixture *f = *state;
    resp r = get(f, "/api/incidents", "tok-a");
    assert_int_equal(r.code, 200);
    yajl_val v = json_of(&r);
    assert_int_equal(jint(v, "total", NULL), 2);
    assert_null(strstr(r.body, "op-b"));
    yajl_tree_free(v);
    free(r.body);
    expect_error(get(f, "/api/incidents?operator=op-b", "tok-a"), 403);
    expect_error(get(f, "/api/incidents/b1", "tok-a"), 404); /* not even its existence */
    r = get(f, "/api/incidents/b1", "tok-b");
    assert_int_equal(r.code, 200);
    v = json_of(&r);
    assert_string_equal(jstr(v, "organization", "id"), "op-b");
    yajl_tree_free(v);
    free(r.body);
    /* The regulator sees all, and filters. */
    r = get(f, "/api/incidents?operator=op-b&severity=critical", "tok-reg");
    v = json_of(&r);
    assert_int_equal(jint(v, "total", NULL), 1);
    yajl_tree_free(v);
    free(r.body);
    r = get(f, "/api/incidents?from=2026-11-02T12:00:00Z&limit=1", "tok-reg");
    v = json_of(&r);
    assert_int_equal(jint(v, "total", NULL), 2);
    assert_int_equal(jint(v, "limit", NULL), 1);
    assert_non_null(strstr(r.body, "\"id\":\"b1\"")); /* newest first */
    yajl_tree_free(v);
    free(r.body);
    expect_error(get(f, "/api/incidents?severity=urgent", "tok-reg"), 400);
    expect_error(get(f, "/api/incidents?limit=100000", "tok-reg"), 400);
    expect_error(get(f, "/api/incidents?from=yesterday", "tok-reg"), 400);
    expect_error(get(f, "/api/incidents?status=closed", "tok-reg"), 400);
}

static void test_status_updates(void **state)
{
    fixture *f = *state;
    const char *ack =
        "{\"status\": \"acknowledged\", \"at\": \"2026-11-02T10:10:00Z\", \"note\": \"on it\"}";
    expect_error(call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-reg", ack), 403);
    expect_error(call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-b", ack), 404);
    expect_error(call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a", "{\"status\":"),
                 400);
    expect_error(
        call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a", "{\"status\": \"done\"}"),
        400);
    expect_error(call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a",
                      "{\"status\": \"resolved\", \"at\": \"soon\"}"),
                 400);
    expect_error(call(f, EVHTTP_REQ_GET, "/api/incidents/a1/status", "tok-a", NULL), 405);
    expect_error(call(f, EVHTTP_REQ_PUT, "/api/incidents/a1/status", "tok-a", ack), 405);
    expect_error(call(f, EVHTTP_REQ_DELETE, "/api/incidents/a1", "tok-a", NULL), 405);
    char *big = psb_xmalloc(COR_HTTP_MAX_BODY + 100);
    memset(big, ' ', COR_HTTP_MAX_BODY + 99);
    big[COR_HTTP_MAX_BODY + 99] = '\0';
    big[0] = '{';
    big[COR_HTTP_MAX_BODY + 98] = '}';
    expect_error(call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a", big), 413);
    free(big);
    resp r = call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a", ack);
    assert_int_equal(r.code, 200);
    yajl_val v = json_of(&r);
    assert_string_equal(jstr(v, "status", NULL), "acknowledged");
    yajl_tree_free(v);
    free(r.body);
    /* The same again is a conflict, with the reason. */
    r = call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a", ack);
    assert_int_equal(r.code, 409);
    assert_non_null(strstr(r.body, "already acknowledged"));
    free(r.body);
    /* The KPI engine saw it: MTTA of op-a is 10 min over 1 acknowledged incident. */
    r = get(f, "/api/kpi?operator=op-a&period=2026-11", "tok-a");
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.body, "\"mtta_s\":600.000"));
    free(r.body);
    r = call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a",
             "{\"status\": \"resolved\", \"at\": \"2026-11-02T12:00:00Z\"}");
    assert_int_equal(r.code, 200);
    free(r.body);
    assert_int_equal(cor_incstore_status(f->store, "a1"), COR_INC_RESOLVED);
    r = get(f, "/api/incidents?status=open", "tok-a");
    v = json_of(&r);
    assert_int_equal(jint(v, "total", NULL), 1);
    yajl_tree_free(v);
    free(r.body);
}

static void test_publish_hook(void **state)
{
    fixture *f = *state;
    resp r = call(f, EVHTTP_REQ_POST, "/api/incidents/b1/status", "tok-b",
                  "{\"status\": \"reported\", \"at\": \"2026-11-04T11:00:00Z\"}");
    assert_int_equal(r.code, 202);
    /* Answered from the delivery report, not when queued. */
    assert_int_equal(f->code_at_delivery, -1);
    assert_non_null(strstr(r.body, "\"accepted\":true"));
    assert_non_null(strstr(r.body, "\"received_at\":"));
    free(r.body);
    assert_int_equal(f->published, 1);
    assert_string_equal(f->pub_id, "b1");
    assert_string_equal(f->pub_op, "op-b");
    assert_int_equal(f->pub_status, COR_INC_REPORTED);
    assert_int_equal(cor_http_held(f->http), 0);
    /* Not applied here: it comes back from Kafka. */
    assert_int_equal(cor_incstore_status(f->store, "b1"), COR_INC_NEW);
    /* An invalid one never reaches Kafka. */
    expect_error(call(f, EVHTTP_REQ_POST, "/api/incidents/b1/status", "tok-b",
                      "{\"status\": \"resolved\", \"at\": \"2026-11-01T00:00:00Z\"}"),
                 409);
    assert_int_equal(f->published, 1);
    /* Kafka did not take it: 503 with the reason, once the report says so. */
    f->deliver_err = "Local: Message timed out";
    r = call(f, EVHTTP_REQ_POST, "/api/incidents/b1/status", "tok-b",
             "{\"status\": \"acknowledged\", \"at\": \"2026-11-04T11:00:00Z\"}");
    assert_int_equal(f->published, 2);
    assert_int_equal(f->code_at_delivery, -1);
    assert_int_equal(r.code, 503);
    assert_non_null(strstr(r.body, "Message timed out"));
    free(r.body);
    /* Stopping answers what is still held: 503, not a hung client. */
    f->deliver_err = NULL;
    f->fail_instead = true;
    r = call(f, EVHTTP_REQ_POST, "/api/incidents/b1/status", "tok-b",
             "{\"status\": \"acknowledged\", \"at\": \"2026-11-04T11:00:00Z\"}");
    assert_int_equal(r.code, 503);
    assert_non_null(strstr(r.body, "shutting down"));
    free(r.body);
    assert_int_equal(cor_http_held(f->http), 0);
    /* A report for a request answered already is ignored. */
    cor_http_update_done(f->http, f->ticket, NULL);
}

/* Run the loop for ms milliseconds. */
static void spin(fixture *f, int ms)
{
    struct timeval tv = {0, ms * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

/* A raw client: connect, send text, leave the socket open. */
static int raw_send(fixture *f, const char *text)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(cor_http_port(f->http));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    return fd;
}

static const char raw_post[] = "POST /api/incidents/b1/status HTTP/1.1\r\nHost: x\r\n"
                               "Authorization: Bearer tok-b\r\nContent-Length: 25\r\n\r\n"
                               "{\"status\": \"contained\"}\r\n";

static void hold_one(fixture *f, const char *text, int *fd)
{
    f->hold = true;
    int before = f->published;
    *fd = raw_send(f, text);
    for (int i = 0; i < 100 && f->published == before; i++)
        spin(f, 10);
    assert_int_equal(f->published, before + 1);
    assert_int_equal(cor_http_held(f->http), 1);
}

/* The client hangs up while its update waits for Kafka: the report that comes
 * later finds no one to answer, and nothing breaks (ASan watches). */
static void test_held_client_gone(void **state)
{
    fixture *f = *state;
    int fd;
    hold_one(f, raw_post, &fd);
    close(fd);
    spin(f, 100);
    cor_http_update_done(f->http, f->ticket, NULL);
    assert_int_equal(cor_http_held(f->http), 0);
    spin(f, 50);
    /* The server still serves. */
    resp r = get(f, "/api/whoami", "tok-b");
    assert_int_equal(r.code, 200);
    free(r.body);
    /* The same after an error report, and after stop's answers. */
    hold_one(f, raw_post, &fd);
    close(fd);
    spin(f, 50);
    cor_http_update_done(f->http, f->ticket, "Broker: Not enough in-sync replicas");
    hold_one(f, raw_post, &fd);
    close(fd);
    spin(f, 50);
    cor_http_fail_held(f->http, "shutting down");
    spin(f, 50);
    assert_int_equal(cor_http_held(f->http), 0);
    assert_int_equal(cor_http_unsent(f->http), 0);
}

/* A request still held when the server goes (teardown frees it): no leak, no
 * crash; and a client that pipelines a second request behind a held one gets
 * both answers in order. */
static void test_held_at_free(void **state)
{
    fixture *f = *state;
    char two[1024];
    snprintf(two, sizeof(two),
             "%sGET /api/whoami HTTP/1.1\r\nHost: x\r\n"
             "Authorization: Bearer tok-b\r\n\r\n",
             raw_post);
    int fd;
    hold_one(f, two, &fd);
    spin(f, 50);
    cor_http_update_done(f->http, f->ticket, NULL);
    char buf[4096];
    size_t got = 0;
    for (int i = 0; i < 50 && !strstr(buf, "\"role\":\"operator\""); i++) {
        spin(f, 10);
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        buf[got] = '\0';
    }
    const char *first = strstr(buf, "HTTP/1.1 202"), *second = strstr(buf, "\"role\":\"operator\"");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    close(fd);
    int fd2;
    hold_one(f, raw_post, &fd2);
    /* teardown frees the server with this one held */
    close(fd2);
}

/* "at" may not be far in the future of the server's clock (default 5 min,
 * config api.at_max_future); the receive time is recorded beside it. */
static void test_at_bounds(void **state)
{
    fixture *f = *state;
    char body[256], t[PSB_TIME_BUFSZ];
    int64_t now = psb_now_ms();
    psb_format_time_ms(now + 10 * 60 * 1000, t);
    snprintf(body, sizeof(body), "{\"status\": \"acknowledged\", \"at\": \"%s\"}", t);
    resp r = call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a", body);
    assert_int_equal(r.code, 422);
    assert_non_null(strstr(r.body, "past the server's clock"));
    free(r.body);
    assert_int_equal(cor_incstore_status(f->store, "a1"), COR_INC_NEW);
    /* A note past its limit: 422 too, with the limit. */
    char *note = psb_xmalloc(COR_INCSTORE_MAX_NOTE + 200);
    memset(note, 'n', COR_INCSTORE_MAX_NOTE + 1);
    note[COR_INCSTORE_MAX_NOTE + 1] = '\0';
    char *nb = psb_xmalloc(COR_INCSTORE_MAX_NOTE + 200);
    snprintf(nb, COR_INCSTORE_MAX_NOTE + 200, "{\"status\": \"acknowledged\", \"note\": \"%s\"}",
             note);
    r = call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a", nb);
    assert_int_equal(r.code, 422);
    assert_non_null(strstr(r.body, "note longer than 1024 bytes"));
    free(r.body);
    free(note);
    free(nb);
    /* A little ahead is a client clock running fast: taken. */
    psb_format_time_ms(now + 60 * 1000, t);
    snprintf(body, sizeof(body), "{\"status\": \"acknowledged\", \"at\": \"%s\"}", t);
    r = call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a", body);
    assert_int_equal(r.code, 200);
    yajl_val v = json_of(&r);
    const char *pu[] = {"updates", NULL};
    yajl_val ups = yajl_tree_get(v, pu, yajl_t_array);
    assert_non_null(ups);
    assert_int_equal(ups->u.array.len, 1);
    assert_string_equal(jstr(ups->u.array.values[0], "at", NULL), t);
    const char *rcv = jstr(ups->u.array.values[0], "received_at", NULL);
    assert_non_null(rcv);
    int64_t rms = 0;
    assert_int_equal(psb_parse_rfc3339(rcv, strlen(rcv), &rms), 0);
    assert_true(rms >= now && rms <= psb_now_ms());
    yajl_tree_free(v);
    free(r.body);
}

static void test_at_bound_configured(void **state)
{
    fixture *f = *state;
    char body[256], t[PSB_TIME_BUFSZ];
    psb_format_time_ms(psb_now_ms() + 2 * 60 * 1000, t);
    snprintf(body, sizeof(body), "{\"status\": \"acknowledged\", \"at\": \"%s\"}", t);
    resp r = call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a", body);
    assert_int_equal(r.code, 422);
    assert_non_null(strstr(r.body, "more than 60 s"));
    free(r.body);
    psb_format_time_ms(psb_now_ms() + 30 * 1000, t);
    snprintf(body, sizeof(body), "{\"status\": \"acknowledged\", \"at\": \"%s\"}", t);
    r = call(f, EVHTTP_REQ_POST, "/api/incidents/a1/status", "tok-a", body);
    assert_int_equal(r.code, 200);
    free(r.body);
}

static void test_kpi_api_and_csv(void **state)
{
    fixture *f = *state;
    resp r = get(f, "/api/kpi?operator=op-a&period=2026-11", "tok-a");
    assert_int_equal(r.code, 200);
    yajl_val v = json_of(&r);
    assert_string_equal(jstr(v, "operator", NULL), "op-a");
    assert_int_equal(jint(v, "kpi", "events_ingested"), 10);
    assert_int_equal(jint(v, "kpi", "incidents"), 2);
    yajl_tree_free(v);
    free(r.body);
    /* A month is the default period: the month of the latest event. */
    r = get(f, "/api/kpi", "tok-a");
    v = json_of(&r);
    assert_string_equal(jstr(v, "period", NULL), "2026-11");
    const char *p_rec[] = {"records", NULL};
    assert_int_equal(yajl_tree_get(v, p_rec, yajl_t_array)->u.array.len, 1);
    assert_null(strstr(r.body, "op-b"));
    yajl_tree_free(v);
    free(r.body);
    expect_error(get(f, "/api/kpi?operator=op-b", "tok-a"), 403);
    expect_error(get(f, "/api/kpi?operator=op-z", "tok-reg"), 404);
    expect_error(get(f, "/api/kpi?period=2026-13", "tok-reg"), 400);
    r = get(f, "/api/kpi?period=2026-11", "tok-reg");
    v = json_of(&r);
    const char *p[] = {"records", NULL};
    assert_int_equal(yajl_tree_get(v, p, yajl_t_array)->u.array.len, 2);
    yajl_tree_free(v);
    free(r.body);
    r = get(f, "/api/kpi/days?operator=op-a&period=2026-11", "tok-reg");
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.body, "{\"period\":\"2026-11-05\",\"kpi\":{\"events_ingested\":10,"));
    free(r.body);
    r = get(f, "/api/kpi.csv?period=2026-11", "tok-reg");
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.ctype, "text/csv"));
    assert_true(strncmp(r.body, "operator,period,", 16) == 0);
    assert_non_null(strstr(r.body, "\r\nop-a,2026-11,10,"));
    assert_non_null(strstr(r.body, "\r\nop-b,2026-11,1,1,"));
    free(r.body);
    r = get(f, "/api/kpi.csv?period=2026-11", "tok-b");
    assert_null(strstr(r.body, "op-a"));
    assert_non_null(strstr(r.body, "\r\nop-b,"));
    free(r.body);
    r = get(f, "/metrics", "tok-reg");
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.ctype, "version=0.0.4"));
    assert_non_null(strstr(r.body, "pasban_kpi_events{operator=\"op-a\",period=\"2026-11\"} 10\n"));
    /* the hook's families come after the KPIs' */
    const char *extra = strstr(r.body, "\ntest_extra_total 7\n");
    assert_non_null(extra);
    assert_true(extra > strstr(r.body, "pasban_kpi_events{"));
    free(r.body);
    r = get(f, "/api/whoami", "tok-b");
    assert_string_equal(r.body, "{\"role\":\"operator\",\"operator\":\"op-b\"}");
    free(r.body);
}

static void test_dashboard_files(void **state)
{
    fixture *f = *state;
    resp r = get(f, "/", NULL);
    assert_int_equal(r.code, 200);
    assert_non_null(strstr(r.ctype, "text/html"));
    assert_non_null(strstr(r.body, "<title>Pasban</title>"));
    free(r.body);
    expect_error(get(f, "/../../etc/passwd", NULL), 404);
    expect_error(get(f, "/%2e%2e/%2e%2e/etc/passwd", NULL), 404);
    expect_error(get(f, "/missing.js", NULL), 404);
    expect_error(call(f, EVHTTP_REQ_POST, "/", NULL, "{}"), 405);
}

int main(void)
{
    /* As the daemon does: a reply to a client that hung up must not kill us. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tokens_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operator_sees_only_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_updates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_hook, setup_hook, teardown),
        cmocka_unit_test_setup_teardown(test_held_client_gone, setup_hook, teardown),
        cmocka_unit_test_setup_teardown(test_held_at_free, setup_hook, teardown),
        cmocka_unit_test_setup_teardown(test_at_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_at_bound_configured, setup_slack_1m, teardown),
        cmocka_unit_test_setup_teardown(test_kpi_api_and_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dashboard_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
