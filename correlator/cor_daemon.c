/* cor_daemon.c -- consume events, produce incidents, commit after delivery. */
#include "cor_daemon.h"

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
    long outstanding;       /* incidents produced, not yet delivered */
    long failed;            /* deliveries that failed */
    bool uncommitted;       /* events consumed since the last commit */
} daemon_ctx;

static void logf_(const cor_daemon_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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
            rd_kafka_resp_err_t err = rd_kafka_producev(
                prod, RD_KAFKA_V_TOPIC(d->o->topic_out), RD_KAFKA_V_KEY(inc[i]->id, 32),
                RD_KAFKA_V_VALUE(b->p, b->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_END);
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
    daemon_ctx d = {o, 0, 0, false};
    rd_kafka_t *prod = NULL, *cons = NULL;
    cor_engine *e = NULL;
    psb_event *ev = psb_event_new();
    cor_buf b = {0};
    cor_ruleset *rs = load(o);
    if (!rs)
        goto out;
    logf_(o, "%zu rules loaded (%zu refused)", rs->n_rules, rs->n_errors);
    e = cor_engine_new(rs, &o->engine);

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
                psb_parse(&po, m->payload, m->len, ev);
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
    cor_buf_free(&b);
    psb_event_free(ev);
    cor_engine_free(e);
    cor_ruleset_free(rs);
    return rc;
}
