/* out.c -- from a received message to Kafka: parse, render, produce, spool, replay.
 *
 * librdkafka owns delivery: every produced message carries an opaque that says
 * whom to tell (per-operator counters, a waiting HTTP request, or a spool
 * record), and its delivery report is the only place an event becomes
 * "acknowledged". When Kafka cannot take an event (its queue is full, all
 * brokers are down, or a delivery failed), the event goes to the spool, and
 * while the spool holds unread records new events queue behind them there so
 * the replay keeps their order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "col_ctx.h"
#include "pasban/parse.h"
#include "pasban/util.h"

#define REPLAY_WINDOW 2000 /* replayed records in flight when Kafka is up */
#define REPLAY_BACKOFF_MS 1000

typedef struct replay_ticket {
    int tag; /* COL_TAG_REPLAY */
    uint64_t segment;
} replay_ticket;

/* The HTTP request struct starts with its tag too; see http.c. */
typedef struct tagged {
    int tag;
} tagged;

static int spool_active(col_ctx *c)
{
    return c->spool && (col_spool_unread(c->spool) > 0 || !c->kafka_up || c->kafka_fatal);
}

static int spool_put(col_ctx *c, const char *key, size_t klen, const char *val, size_t vlen)
{
    if (!c->spool)
        return -1;
    if (col_spool_append(c->spool, key, klen, val, vlen) != 0) {
        if (errno != ENOSPC) {
            c->spool_errors++;
            col_log_limited(c, COL_LOG_SPOOL, "spool write failed: %s", strerror(errno));
        } else {
            col_log_limited(c, COL_LOG_SPOOL, "spool full (%llu bytes)",
                            (unsigned long long)col_spool_bytes(c->spool));
        }
        return -1;
    }
    return 0;
}

int col_out_has_room(col_ctx *c, size_t n, size_t bytes)
{
    if (!spool_active(c) && (size_t)rd_kafka_outq_len(c->rk) + n <= c->queue_max)
        return 1;
    return c->spool && col_spool_has_room(c->spool, 256, bytes + n * 512);
}

int col_out_ready(col_ctx *c)
{
    if (c->stopping)
        return 0;
    if (c->kafka_up && (size_t)rd_kafka_outq_len(c->rk) < c->queue_max)
        return 1;
    return c->spool && col_spool_has_room(c->spool, 256, PSB_MAX_MESSAGE);
}

static void settle(col_ctx *c, void *opaque, int ok)
{
    tagged *t = opaque;
    if (t && t->tag == COL_TAG_HTTP)
        col_http_settle(c, opaque, ok);
}

/* An event of opaque went to the spool: an HTTP request must have it on disk
 * before its 200. */
static void note_spooled(void *opaque)
{
    tagged *t = opaque;
    if (t && t->tag == COL_TAG_HTTP)
        ((col_http_req *)opaque)->spooled++;
}

static col_stats *stats_of(void *opaque)
{
    tagged *t = opaque;
    if (!t)
        return NULL;
    if (t->tag == COL_TAG_STATS)
        return opaque;
    if (t->tag == COL_TAG_HTTP)
        return ((col_http_req *)opaque)->st;
    return NULL;
}

/* Errors that say Kafka will never take this message (or anything on this
 * topic from us): retrying from the spool would loop forever, so the event is
 * counted as a delivery error instead. Everything else (timeouts, brokers down,
 * purges at shutdown) is worth spooling. */
static int permanent_error(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_REQUIRED_ACKS:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
        return 1;
    default:
        return 0;
    }
}

/* Queue one rendered event. 0 = Kafka or the spool has it; -1 = neither could. */
static int send_event(col_ctx *c, col_stats *st, const char *json, size_t len, void *opaque)
{
    if (!spool_active(c)) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            c->rk, RD_KAFKA_V_RKT(c->rkt), RD_KAFKA_V_KEY(st->op, st->op_len),
            RD_KAFKA_V_VALUE((void *)json, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            col_log_limited(c, COL_LOG_KAFKA, "produce: %s", rd_kafka_err2str(err));
        if (permanent_error(err))
            return -1; /* the spool would hand it back to the same refusal forever */
    }
    if (spool_put(c, st->op, st->op_len, json, len) != 0)
        return -1;
    st->spooled++;
    note_spooled(opaque);
    settle(c, opaque, 1);
    return 0;
}

/* The event becomes a pipeline_error for msg: why is its error.message and
 * event.original keeps the first keep bytes. */
static void make_error(col_ctx *c, const psb_parse_opts *o, const char *msg, size_t keep,
                       const char *why)
{
    psb_event *ev = c->ev;
    psb_event_reset(ev);
    ev->original = psb_str_make(msg, keep);
    ev->created_ms = o->received_ms;
    ev->timestamp_ms = o->received_ms;
    ev->organization_id = o->organization_id;
    ev->observer_ip = o->observer_ip;
    psb_event_set_error(ev, "%s", why);
}

/* The largest rendered event Kafka takes from us: librdkafka refuses a message
 * whose value, key and record framing pass message.max.bytes. */
static size_t event_max(const col_ctx *c, const col_stats *st)
{
    size_t overhead = st->op_len + 1024;
    return c->msg_max > overhead ? c->msg_max - overhead : 0;
}

/* why != NULL: msg is not parsed but forwarded as a pipeline_error saying why. */
static int ingest(col_ctx *c, col_stats *st, const char *msg, size_t len, const char *peer,
                  col_http_req *req, const char *why_error)
{
    const char *json;
    size_t jlen;
    psb_parse_opts o = {
        .format = req ? PSB_FORMAT_JSON : PSB_FORMAT_AUTO,
        .received_ms = c->batch_ms ? c->batch_ms : psb_now_ms(),
        .tz_offset_s = c->cfg->tz_offset_s,
        .max_message = c->cfg->max_message, /* HTTP checked each object already */
        .organization_id = psb_str_make(st->op, st->op_len),
        .observer_ip = psb_str_make(peer, strlen(peer)),
    };
    int parsed = 0, truncated = 0, unsendable = 0;
    if (why_error)
        make_error(c, &o, msg, len, why_error);
    else
        parsed = psb_parse(&o, msg, len, c->ev) == 0;
    void *opaque = req ? (void *)req : (void *)st;
    if (psb_ecs_write(c->ecs, c->ev, &json, &jlen) != 0) {
        /* The writer only refuses on a programming error; keep the raw text. */
        json = msg;
        jlen = len;
    }
    size_t max = event_max(c, st);
    if (jlen > max) {
        /* The text can appear two or three times in an event, escaped up to six
         * bytes a byte: a valid line can render past what Kafka takes. Send it
         * as a pipeline_error carrying a prefix of the original instead. */
        char why[PSB_EVENT_ERROR_BUFSZ];
        size_t keep = max > 4096 ? (max - 4096) / 6 : 0;
        if (keep > len)
            keep = len;
        while (keep > 0 && keep < len && ((unsigned char)msg[keep] & 0xc0) == 0x80)
            keep--; /* end on a UTF-8 character boundary */
        if (keep < len)
            snprintf(why, sizeof why,
                     "event of %zu bytes over Kafka's limit of %zu; event.original cut to %zu of "
                     "%zu bytes",
                     jlen, max, keep, len);
        else
            snprintf(why, sizeof why,
                     "event of %zu bytes over Kafka's limit of %zu; sent with event.original only",
                     jlen, max);
        make_error(c, &o, msg, keep, why);
        parsed = 0;
        truncated = 1;
        if (psb_ecs_write(c->ecs, c->ev, &json, &jlen) != 0 || jlen > max)
            unsendable = 1;
        else
            col_log_limited(c, COL_LOG_KAFKA, "%s", why);
    }
    /* Room is judged on what would be stored: the rendered event, several
     * times the message. Nothing is counted yet, so the caller can retry. */
    if (!unsendable && !col_out_has_room(c, 1, jlen))
        return -1;
    st->received++;
    if (parsed)
        st->parsed++;
    else
        st->parse_failures++;
    if (truncated)
        st->truncated++;
    if (unsendable) {
        st->delivery_errors++;
        col_log_limited(c, COL_LOG_KAFKA, "an event too big for Kafka could not be cut: lost");
        settle(c, opaque, 0);
        return 0;
    }
    if (send_event(c, st, json, jlen, opaque) != 0) {
        st->delivery_errors++;
        col_log_limited(c, COL_LOG_KAFKA, "an event could not be queued or spooled: lost");
        settle(c, opaque, 0);
    }
    return 0;
}

int col_ingest(col_ctx *c, col_stats *st, const char *msg, size_t len, const char *peer,
               col_http_req *req)
{
    return ingest(c, st, msg, len, peer, req, NULL);
}

int col_ingest_error(col_ctx *c, col_stats *st, const char *msg, size_t len, const char *peer,
                     const char *why)
{
    return ingest(c, st, msg, len, peer, NULL, why);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *arg)
{
    col_ctx *c = arg;
    (void)rk;
    tagged *t = m->_private;
    if (t && t->tag == COL_TAG_REPLAY) {
        replay_ticket *rt = m->_private;
        c->replay_inflight--;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            c->replayed++;
            c->kafka_up = 1;
        } else if (permanent_error(m->err)) {
            /* Putting it back would replay it into the same refusal forever. */
            c->replay_errors++;
            col_log_limited(c, COL_LOG_KAFKA, "replayed event refused by Kafka for good (%s): lost",
                            rd_kafka_err2str(m->err));
        } else if (spool_put(c, m->key, m->key_len, m->payload, m->len) == 0) {
            /* Back into the spool (at its end): not lost, just later. */
            c->replay_requeued++;
            c->replay_backoff_until = psb_now_ms() + REPLAY_BACKOFF_MS;
        } else {
            col_log_limited(c, COL_LOG_SPOOL,
                            "replayed event refused by Kafka (%s) and the "
                            "spool is full: kept in the spool for the next start",
                            rd_kafka_err2str(m->err));
            free(rt);
            return; /* not acknowledged: the segment stays on disk */
        }
        col_spool_ack(c->spool, rt->segment);
        free(rt);
        return;
    }
    col_stats *st = stats_of(t);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        c->kafka_up = 1;
        if (st)
            st->delivered++;
        settle(c, t, 1);
        return;
    }
    if (!permanent_error(m->err) && spool_put(c, m->key, m->key_len, m->payload, m->len) == 0) {
        if (st)
            st->spooled++;
        note_spooled(t);
        settle(c, t, 1);
        return;
    }
    if (st)
        st->delivery_errors++;
    col_log_limited(c, COL_LOG_KAFKA, "delivery failed: %s", rd_kafka_err2str(m->err));
    settle(c, t, 0);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *arg)
{
    col_ctx *c = arg;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT ||
        err == RD_KAFKA_RESP_ERR__RESOLVE) {
        if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
            c->kafka_up = 0;
        col_log_limited(c, COL_LOG_KAFKA, "kafka: %s", reason);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* An idempotent producer that lost its guarantees cannot go on; the
         * daemon drains into the spool and exits 1 so a supervisor restarts it. */
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        col_log("kafka: fatal error: %s", why);
        c->kafka_fatal = 1;
        return;
    }
    col_log("kafka: %s: %s", rd_kafka_err2name(err), reason);
}

/* Feed spooled records back to Kafka, a window at a time. While Kafka looks
 * down, one record at a time probes whether it is back. */
static void replay(col_ctx *c)
{
    if (!c->spool || c->stopping || c->kafka_fatal || psb_now_ms() < c->replay_backoff_until)
        return;
    uint64_t window = c->kafka_up ? REPLAY_WINDOW : 1;
    col_spool_rec r;
    while (c->replay_inflight < window && (size_t)rd_kafka_outq_len(c->rk) < c->queue_max / 2) {
        int rc = col_spool_next(c->spool, &r);
        if (rc < 0) {
            c->spool_errors++;
            col_log_limited(c, COL_LOG_SPOOL, "spool read failed: %s", strerror(errno));
            c->replay_backoff_until = psb_now_ms() + REPLAY_BACKOFF_MS;
            return;
        }
        if (rc == 0)
            return;
        replay_ticket *rt = psb_xmalloc(sizeof *rt);
        rt->tag = COL_TAG_REPLAY;
        rt->segment = r.segment;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            c->rk, RD_KAFKA_V_RKT(c->rkt), RD_KAFKA_V_KEY((void *)r.key, r.key_len),
            RD_KAFKA_V_VALUE((void *)r.value, r.value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(rt), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && permanent_error(err)) {
            c->replay_errors++;
            col_log_limited(c, COL_LOG_KAFKA, "replayed event refused by Kafka for good (%s): lost",
                            rd_kafka_err2str(err));
            col_spool_ack(c->spool, rt->segment);
            free(rt);
            continue;
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (spool_put(c, r.key, r.key_len, r.value, r.value_len) == 0)
                col_spool_ack(c->spool, rt->segment);
            free(rt);
            c->replay_backoff_until = psb_now_ms() + REPLAY_BACKOFF_MS;
            return;
        }
        c->replay_inflight++;
    }
}

void col_out_tick(col_ctx *c)
{
    rd_kafka_poll(c->rk, 0);
    replay(c);
    if (c->spool && c->cfg->spool_fsync == COL_FSYNC_INTERVAL) {
        int64_t now = psb_now_ms();
        if (now - c->last_fsync_ms >= c->cfg->spool_fsync_interval_ms) {
            c->last_fsync_ms = now;
            if (col_spool_sync(c->spool) != 0)
                col_log_limited(c, COL_LOG_SPOOL, "spool fsync: %s", strerror(errno));
        }
    }
    if (c->paused)
        col_stream_resume(c);
}

static void on_kpipe(evutil_socket_t fd, short what, void *arg)
{
    col_ctx *c = arg;
    char buf[256];
    (void)what;
    while (read(fd, buf, sizeof buf) > 0)
        ;
    col_out_tick(c);
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen)
{
    char e[512];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka property %s=%s: %s", k, v, e);
        return -1;
    }
    return 0;
}

int col_out_start(col_ctx *c, char *err, size_t errlen)
{
    char e[512];
    char val[64];
    size_t vlen = sizeof val;
    col_config *cfg = c->cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", cfg->brokers, err, errlen) != 0 ||
        conf_set(conf, "client.id", "pasban-collector", err, errlen) != 0 ||
        conf_set(conf, "enable.idempotence", "true", err, errlen) != 0 ||
        conf_set(conf, "acks", "all", err, errlen) != 0 ||
        conf_set(conf, "compression.codec", "lz4", err, errlen) != 0 ||
        conf_set(conf, "linger.ms", "5", err, errlen) != 0 ||
        conf_set(conf, "queue.buffering.max.messages", "200000", err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < cfg->n_kafka_props; i++)
        if (conf_set(conf, cfg->kafka_props[i].key, cfg->kafka_props[i].value, err, errlen) != 0)
            goto fail;
    if (rd_kafka_conf_get(conf, "queue.buffering.max.messages", val, &vlen) == RD_KAFKA_CONF_OK)
        c->queue_max = (size_t)strtoull(val, NULL, 10);
    if (c->queue_max == 0)
        c->queue_max = 100000;
    vlen = sizeof val;
    if (rd_kafka_conf_get(conf, "message.max.bytes", val, &vlen) == RD_KAFKA_CONF_OK)
        c->msg_max = (size_t)strtoull(val, NULL, 10);
    if (c->msg_max == 0)
        c->msg_max = 1000000;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!c->rk) {
        snprintf(err, errlen, "kafka: %s", e);
        goto fail;
    }
    conf = NULL; /* rd_kafka_new took it */
    c->rkt = rd_kafka_topic_new(c->rk, cfg->topic, NULL);
    if (!c->rkt) {
        snprintf(err, errlen, "kafka topic %s: %s", cfg->topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    /* librdkafka writes a byte to the pipe when its main queue gets events, so
     * the loop polls exactly when there are delivery reports to run. */
    if (pipe2(c->kpipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    c->mainq = rd_kafka_queue_get_main(c->rk);
    rd_kafka_queue_io_event_enable(c->mainq, c->kpipe[1], "1", 1);
    c->kpipe_ev = event_new(c->base, c->kpipe[0], EV_READ | EV_PERSIST, on_kpipe, c);
    event_add(c->kpipe_ev, NULL);
    c->kafka_up = 1;
    if (cfg->spool_dir) {
        col_spool_opts so = {cfg->spool_max_bytes, cfg->spool_segment_bytes, cfg->spool_fsync};
        c->spool = col_spool_open(cfg->spool_dir, &so, err, errlen);
        if (!c->spool)
            return -1;
        if (col_spool_pending(c->spool))
            col_log("spool %s: %llu events from an earlier run will be replayed", cfg->spool_dir,
                    (unsigned long long)col_spool_pending(c->spool));
    }
    return 0;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    return -1;
}

void col_out_drain(col_ctx *c, int64_t timeout_ms)
{
    if (!c->rk)
        return;
    int64_t deadline = psb_now_ms() + timeout_ms;
    while (rd_kafka_outq_len(c->rk) > 0 && psb_now_ms() < deadline)
        rd_kafka_poll(c->rk, 50);
    int left = rd_kafka_outq_len(c->rk);
    if (left > 0) {
        /* Purged messages come back through their delivery reports with an
         * error, and on_delivery spools them. */
        col_log("shutdown: %d events still with Kafka at the shutdown timeout; %s", left,
                c->spool ? "spooling them" : "no spool: they are lost");
        rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        for (int i = 0; i < 20 && rd_kafka_outq_len(c->rk) > 0; i++)
            rd_kafka_poll(c->rk, 50);
        rd_kafka_poll(c->rk, 0);
    }
}

void col_out_stop(col_ctx *c)
{
    if (c->kpipe_ev)
        event_free(c->kpipe_ev);
    if (c->mainq) {
        rd_kafka_queue_io_event_enable(c->mainq, -1, NULL, 0);
        rd_kafka_queue_destroy(c->mainq);
    }
    if (c->rkt)
        rd_kafka_topic_destroy(c->rkt);
    if (c->rk)
        rd_kafka_destroy(c->rk);
    if (c->kpipe[0] > 0) {
        close(c->kpipe[0]);
        close(c->kpipe[1]);
    }
    col_spool_free(c->spool);
    c->spool = NULL;
}
