/* cor_daemon.c -- consume events, produce incidents, commit after delivery. */
#include "cor_daemon.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cor_json.h"
#include "pasban/parse.h"
#include "pasban/util.h"

/* Signals only set flags; the loop does the work. A signal handler cannot
 * reach a context, so these two are the process's only mutable globals. */
static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_flag = 1;
    else
        stop_flag = 1;
}

typedef struct daemon_ctx {
    const cor_daemon_opts *o;
    long outstanding; /* incidents produced, not yet delivered */
    long failed;      /* deliveries that failed */
    bool uncommitted; /* events consumed since the last commit */
    uint64_t events, parse_failures, reloads, reloads_refused;
    const cor_ruleset *rs; /* in use, for /metrics */
    cor_engine *e;
} daemon_ctx;

/* Prometheus text exposition 0.0.4. Rule ids are [A-Za-z0-9._:-], safe in a
 * label value. */
static void metrics(struct evhttp_request *req, void *arg)
{
    daemon_ctx *d = arg;
    if (strcmp(evhttp_request_get_uri(req), "/metrics") != 0) {
        evhttp_send_error(req, HTTP_NOTFOUND, "try /metrics");
        return;
    }
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out,
                        "# HELP pasban_correlator_events_total Events consumed.\n"
                        "# TYPE pasban_correlator_events_total counter\n"
                        "pasban_correlator_events_total %llu\n"
                        "# HELP pasban_correlator_parse_failures_total Events that did not parse.\n"
                        "# TYPE pasban_correlator_parse_failures_total counter\n"
                        "pasban_correlator_parse_failures_total %llu\n"
                        "# HELP pasban_correlator_reloads_total Rule reloads taken and refused.\n"
                        "# TYPE pasban_correlator_reloads_total counter\n"
                        "pasban_correlator_reloads_total{result=\"taken\"} %llu\n"
                        "pasban_correlator_reloads_total{result=\"refused\"} %llu\n"
                        "# HELP pasban_correlator_groups Groups held in windows now.\n"
                        "# TYPE pasban_correlator_groups gauge\n"
                        "pasban_correlator_groups %zu\n",
                        (unsigned long long)d->events, (unsigned long long)d->parse_failures,
                        (unsigned long long)d->reloads, (unsigned long long)d->reloads_refused,
                        cor_engine_groups(d->e));
    static const char *const names[] = {"matches",      "incidents", "suppressed",
                                        "limit_errors", "late",      "evicted"};
    static const char *const help[] = {
        "Events whose where and unless held.",  "Incidents raised.",
        "Events suppressed after an incident.", "PCRE2 match or depth limits hit.",
        "Events too late for their window.",    "Groups evicted at the per-rule cap."};
    const cor_rule_stats *st = cor_engine_stats(d->e);
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        evbuffer_add_printf(out,
                            "# HELP pasban_correlator_rule_%s_total %s\n"
                            "# TYPE pasban_correlator_rule_%s_total counter\n",
                            names[k], help[k], names[k]);
        for (size_t i = 0; i < d->rs->n_rules; i++) {
            const cor_rule_stats *x = &st[i];
            uint64_t v = k == 0   ? x->matches
                         : k == 1 ? x->incidents
                         : k == 2 ? x->suppressed
                         : k == 3 ? x->limit_errors
                         : k == 4 ? x->late
                                  : x->evicted;
            evbuffer_add_printf(out, "pasban_correlator_rule_%s_total{rule=\"%s\"} %llu\n",
                                names[k], d->rs->rules[i]->id, (unsigned long long)v);
        }
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, HTTP_OK, "OK", out);
    evbuffer_free(out);
}

static void logf_(const cor_daemon_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void logf_(const cor_daemon_opts *o, const char *fmt, ...)
{
    char ts[PSB_TIME_BUFSZ];
    psb_format_time_ms(psb_now_ms(), ts);
    va_list ap;
    va_start(ap, fmt);
    fprintf(o->log, "%s pasban-correlator: ", ts);
    vfprintf(o->log, fmt, ap);
    fputc('\n', o->log);
    va_end(ap);
    fflush(o->log);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    daemon_ctx *d = opaque;
    d->outstanding--;
    if (m->err) {
        d->failed++;
        logf_(d->o, "incident not delivered: %s", rd_kafka_err2str(m->err));
    }
}

static rd_kafka_conf_t *base_conf(const cor_daemon_opts *o, char *err, size_t errlen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", o->brokers, err, errlen) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}

static int set(rd_kafka_conf_t *c, const char *k, const char *v, char *err, size_t errlen)
{
    return rd_kafka_conf_set(c, k, v, err, errlen) == RD_KAFKA_CONF_OK ? 0 : -1;
}

static cor_ruleset *load(const cor_daemon_opts *o)
{
    cor_load_opts lo = {o->log, false};
    return cor_ruleset_load(o->rules, &lo);
}

/* Produce every incident raised since the last call. 0, or -1 when the
 * producer refused one (its offsets must then not be committed). */
static int produce_new(daemon_ctx *d, cor_engine *e, rd_kafka_t *prod, cor_buf *b)
{
    cor_incident *const *inc;
    size_t n = cor_engine_take(e, &inc);
    for (size_t i = 0; i < n; i++) {
        b->len = 0;
        cor_incident_write(inc[i], b);
        for (;;) {
            rd_kafka_resp_err_t err =
                rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(d->o->topic_out),
                                  RD_KAFKA_V_KEY(inc[i]->id, 32), RD_KAFKA_V_VALUE(b->p, b->len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                d->outstanding++;
                break;
            }
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                logf_(d->o, "produce: %s", rd_kafka_err2str(err));
                return -1;
            }
            rd_kafka_poll(prod, 100); /* queue full: wait for deliveries */
        }
    }
    return 0;
}

/* Commit what was consumed once everything produced has been delivered. */
static void maybe_commit(daemon_ctx *d, rd_kafka_t *cons, rd_kafka_t *prod, bool wait)
{
    rd_kafka_poll(prod, 0);
    if (wait)
        rd_kafka_flush(prod, 10000);
    if (!d->uncommitted || d->outstanding > 0 || d->failed > 0)
        return;
    rd_kafka_resp_err_t err = rd_kafka_commit(cons, NULL, 0);
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        logf_(d->o, "commit: %s", rd_kafka_err2str(err));
    else
        d->uncommitted = false;
}

int cor_daemon_run(const cor_daemon_opts *o)
{
    char err[512];
    int rc = 1;
    daemon_ctx d;
    memset(&d, 0, sizeof(d));
    d.o = o;
    struct event_base *base = NULL;
    struct evhttp *http = NULL;
    rd_kafka_t *prod = NULL, *cons = NULL;
    cor_engine *e = NULL;
    psb_event *ev = psb_event_new();
    cor_buf b = {0};
    cor_ruleset *rs = load(o);
    if (!rs)
        goto out;
    logf_(o, "%zu rules loaded (%zu refused)", rs->n_rules, rs->n_errors);
    e = cor_engine_new(rs, &o->engine);
    d.rs = rs;
    d.e = e;
    if (o->http) {
        char host[256];
        const char *colon = strrchr(o->http, ':');
        long port = colon ? strtol(colon + 1, NULL, 10) : 0;
        if (!colon || (size_t)(colon - o->http) >= sizeof(host) || port <= 0 || port > 65535) {
            logf_(o, "--http wants ADDR:PORT, not %s", o->http);
            goto out;
        }
        memcpy(host, o->http, (size_t)(colon - o->http));
        host[colon - o->http] = '\0';
        base = event_base_new();
        http = base ? evhttp_new(base) : NULL;
        if (!http || !evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)port)) {
            logf_(o, "cannot listen on %s", o->http);
            goto out;
        }
        evhttp_set_gencb(http, metrics, &d);
    }

    rd_kafka_conf_t *pc = base_conf(o, err, sizeof(err));
    if (!pc || set(pc, "enable.idempotence", "true", err, sizeof(err)) ||
        set(pc, "compression.codec", "lz4", err, sizeof(err)) ||
        set(pc, "linger.ms", "5", err, sizeof(err))) {
        logf_(o, "producer config: %s", err);
        if (pc)
            rd_kafka_conf_destroy(pc);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_conf_set_opaque(pc, &d);
    prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (!prod) {
        logf_(o, "producer: %s", err);
        goto out;
    }
    rd_kafka_conf_t *cc = base_conf(o, err, sizeof(err));
    if (!cc || set(cc, "group.id", o->group_id, err, sizeof(err)) ||
        set(cc, "enable.auto.commit", "false", err, sizeof(err)) ||
        set(cc, "auto.offset.reset", "earliest", err, sizeof(err))) {
        logf_(o, "consumer config: %s", err);
        if (cc)
            rd_kafka_conf_destroy(cc);
        goto out;
    }
    cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    if (!cons) {
        logf_(o, "consumer: %s", err);
        goto out;
    }
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, o->topic_in, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(cons, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (serr) {
        logf_(o, "subscribe %s: %s", o->topic_in, rd_kafka_err2str(serr));
        goto out;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    logf_(o, "consuming %s as group %s, incidents to %s", o->topic_in, o->group_id, o->topic_out);

    int64_t last_commit = psb_now_ms();
    uint64_t seen = 0;
    rc = 0;
    while (!stop_flag) {
        if (reload_flag) {
            reload_flag = 0;
            /* Built aside; swapped in whole, or not at all. */
            cor_ruleset *nrs = load(o);
            if (!nrs || nrs->n_errors) {
                d.reloads_refused++;
                logf_(o, "reload refused (%s); keeping the %zu rules in use",
                      nrs ? "a rule was refused, see above" : "rules unreadable", rs->n_rules);
                cor_ruleset_free(nrs);
            } else {
                if (produce_new(&d, e, prod, &b) != 0) {
                    rc = 1;
                    break;
                }
                maybe_commit(&d, cons, prod, true);
                cor_engine_free(e);
                cor_ruleset_free(rs);
                rs = nrs;
                e = cor_engine_new(rs, &o->engine);
                d.rs = rs;
                d.e = e;
                d.reloads++;
                logf_(o, "reloaded: %zu rules", rs->n_rules);
            }
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 200);
        if (m) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    logf_(o, "consume: %s", rd_kafka_message_errstr(m));
            } else {
                psb_parse_opts po;
                memset(&po, 0, sizeof(po));
                po.received_ms = psb_now_ms();
                po.own_events = m->len && ((const char *)m->payload)[0] == '{';
                if (psb_parse(&po, m->payload, m->len, ev) != 0)
                    d.parse_failures++;
                d.events++;
                cor_engine_process(e, ev);
                d.uncommitted = true;
                seen++;
            }
            rd_kafka_message_destroy(m);
            if (produce_new(&d, e, prod, &b) != 0) {
                rc = 1;
                break;
            }
        }
        if (base)
            event_base_loop(base, EVLOOP_NONBLOCK);
        if (d.failed) {
            rc = 1; /* at least once: stop before committing past a lost incident */
            break;
        }
        int64_t now = psb_now_ms();
        if (!m || now - last_commit >= 1000) {
            maybe_commit(&d, cons, prod, false);
            last_commit = now;
            cor_engine_forget(e);
        }
    }
    if (rc == 0) {
        if (produce_new(&d, e, prod, &b) != 0)
            rc = 1;
        maybe_commit(&d, cons, prod, true);
        if (d.failed || d.outstanding)
            rc = 1;
    }
    logf_(o, "stopping after %llu events", (unsigned long long)seen);
out:
    if (cons) {
        rd_kafka_consumer_close(cons);
        rd_kafka_destroy(cons);
    }
    if (prod) {
        rd_kafka_flush(prod, 5000);
        rd_kafka_destroy(prod);
    }
    if (http)
        evhttp_free(http);
    if (base)
        event_base_free(base);
    cor_buf_free(&b);
    psb_event_free(ev);
    cor_engine_free(e);
    cor_ruleset_free(rs);
    return rc;
}
