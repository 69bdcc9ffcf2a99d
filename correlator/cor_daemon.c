/* cor_daemon.c -- consume events; produce incidents, window state and offsets in
 * one Kafka transaction per batch. */
#include "cor_daemon.h"

#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cor_config.h"
#include "cor_http.h"
#include "cor_incstore.h"
#include "cor_json.h"
#include "cor_kpi.h"
#include "pasban/parse.h"
#include "pasban/util.h"

/* Signals only set flags; the loop does the work. A signal handler cannot
 * reach a context, so these are the process's only mutable globals. stop_sec is
 * when the first stop signal came (CLOCK_MONOTONIC, whole seconds): a call into
 * librdkafka may block past its timeout (send offsets: up to
 * transaction.timeout.ms), and the stop's waits count from the signal, not from
 * when the loop gets to see it. */
static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;
static volatile sig_atomic_t stop_sec;

static long mono_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
    return (long)ts.tv_sec;
}

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        reload_flag = 1;
    } else if (!stop_flag) {
        stop_sec = (sig_atomic_t)mono_sec();
        stop_flag = 1;
    }
}

void cor_daemon_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* A reply to an HTTP client that has hung up writes to a closed socket. */
    signal(SIGPIPE, SIG_IGN);
}

/* The last generation of an operator's KPIs published to pasban.kpi. */
typedef struct pub_gen {
    char *op;
    uint64_t gen;
} pub_gen;

#define COR_DAEMON_MAX_PENDING 100000  /* updates read before their incident */
#define COR_DAEMON_READ_BATCH 1000     /* messages of the whole-read topics per turn */
#define COR_DAEMON_MAX_OPERATORS 65536 /* operators whose partitions are tracked */
/* An update's delivery report answers its HTTP request: bounded well below
 * librdkafka's default 300 s and evhttp's 30 s timeout. */
#define COR_DAEMON_UPDATE_TIMEOUT_MS "15000"
#define COR_DAEMON_DRAIN_MS 10000 /* at stop: deliveries and held HTTP answers */

/* The per-message opaque says what a delivery report is about: NULL a KPI
 * record, OPQ_INCIDENT an incident (it holds back the commit), an even value
 * the update of HTTP ticket value / 2 (tickets start at 1). */
#define OPQ_INCIDENT ((void *)(uintptr_t)1)
#define OPQ_STATE ((void *)(uintptr_t)3) /* a state record: fails its transaction */

#define COR_DAEMON_TXN_MS 500 /* a transaction is committed at least this often */
/* One call on the transaction coordinator (send offsets, commit, abort) waits at
 * most this long in all, in slices between which the stop flag is read. The
 * coordinator aborts a transaction left open past transaction.timeout.ms (10 s
 * here) anyway. */
#define COR_DAEMON_TXN_TIMEOUT_MS 30000
#define COR_DAEMON_TXN_SLICE_MS 1000
/* After SIGTERM/SIGINT: the transaction still open gets this long to commit (a
 * reachable cluster takes milliseconds); every other wait of the stop -- HTTP
 * answers, the group's graceful leave -- ends by COR_DAEMON_STOP_MS. */
#define COR_DAEMON_STOP_TXN_MS 5000
#define COR_DAEMON_STOP_MS 15000
/* A restore waits this long for the state partition's end: an open transaction of a
 * killed instance holds the end back until transaction.timeout.ms (default here
 * 10 s) aborts it, unless the instance comes back first and fences it. */
#define COR_DAEMON_RESTORE_MS 60000
#define COR_DAEMON_MAX_ABORTS 5   /* aborts in a row before the daemon gives up */
#define COR_DAEMON_MAX_PARTS 4096 /* partitions of the events topic tracked per batch */

typedef struct daemon_ctx {
    const cor_daemon_opts *o;
    long outstanding; /* incidents produced, not yet delivered */
    long failed;      /* deliveries of incidents or state records that failed */
    uint64_t events, parse_failures, reloads, reloads_refused;
    uint64_t incidents_read, incidents_refused, updates_applied, updates_refused;
    uint64_t kpi_published, kpi_imported, kpi_refused, side_failed;
    uint64_t updates_over_limit, rebalances, groups_dropped;
    uint64_t txn_committed, txn_aborted, state_written, state_tombstones, state_too_large;
    uint64_t state_restored, state_ignored, state_refused, restores;
    uint64_t kpi_state_written, kpi_state_restored, kpi_state_refused;
    const cor_ruleset *rs; /* in use, for /metrics */
    cor_engine *e;
    cor_kpi *kpi;
    cor_incstore *store;
    rd_kafka_t *prod;       /* updates and KPI records (not transactional) */
    rd_kafka_t *txp;        /* transactional: incidents and state records */
    rd_kafka_t *sreader;    /* reads a state partition back (read_committed) */
    int n_state_parts;      /* partitions of the state topic */
    bool in_txn;            /* a transaction is open */
    bool broken;            /* a fatal error: nothing more is committed */
    bool need_rewind;       /* after an abort: back to the committed offsets and state */
    int64_t txn_since;      /* when the open transaction began (wall clock) */
    uint64_t txn_events;    /* events processed in it: uncounted if it aborts */
    uint64_t txn_incidents; /* incidents produced in it */
    int64_t stop_at;        /* when the stop was first seen (wall clock), 0 before */
    bool unreachable;       /* the stop found the brokers out of reach */
    int64_t last_commit;    /* when a transaction last committed (wall clock) */
    int aborts_in_row;      /* aborts since the last commit */
    int32_t *touched;       /* events partitions with events in the open transaction */
    size_t n_touched;
    cor_buf skey;              /* a state record's key */
    rd_kafka_t *cons;          /* the group consumer of the events, for /metrics */
    rd_kafka_topic_t *upd_rkt; /* the updates topic, with its short delivery timeout */
    cor_http *http;
    bool stopping;                            /* no more updates taken */
    rd_kafka_topic_partition_list_t *revoked; /* eager rebalance: revoked, not yet reassigned */
    bool revoked_clean;                       /* ...and their offsets were committed */
    pub_gen *pub;
    size_t n_pub;
    cor_inc_update_owned *pending; /* updates whose incident has not been read yet */
    size_t n_pending;
} daemon_ctx;

static void put_counter(cor_buf *b, const char *name, const char *help, uint64_t v)
{
    char line[512];
    snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name,
             name, (unsigned long long)v);
    cor_buf_puts(b, line);
}

/* The daemon's own families for /metrics, after the KPIs' (cor_http's hook).
 * Prometheus text exposition 0.0.4. Rule ids are [A-Za-z0-9._:-], safe in a
 * label value. */
static void metrics(void *arg, cor_buf *b)
{
    daemon_ctx *d = arg;
    char line[512];
    put_counter(b, "pasban_correlator_events_total",
                "Events consumed (those of aborted transactions, read again, once).", d->events);
    put_counter(b, "pasban_correlator_parse_failures_total", "Events that did not parse.",
                d->parse_failures);
    snprintf(line, sizeof(line),
             "# HELP pasban_correlator_reloads_total Rule reloads taken and refused.\n"
             "# TYPE pasban_correlator_reloads_total counter\n"
             "pasban_correlator_reloads_total{result=\"taken\"} %llu\n"
             "pasban_correlator_reloads_total{result=\"refused\"} %llu\n"
             "# HELP pasban_correlator_groups Groups held in windows now.\n"
             "# TYPE pasban_correlator_groups gauge\n"
             "pasban_correlator_groups %zu\n",
             (unsigned long long)d->reloads, (unsigned long long)d->reloads_refused,
             cor_engine_groups(d->e));
    cor_buf_puts(b, line);
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (d->cons && rd_kafka_assignment(d->cons, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(line, sizeof(line),
                 "# HELP pasban_correlator_partitions_assigned Partitions of the events topic "
                 "this instance consumes.\n"
                 "# TYPE pasban_correlator_partitions_assigned gauge\n"
                 "pasban_correlator_partitions_assigned %d\n",
                 parts->cnt);
        cor_buf_puts(b, line);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    put_counter(b, "pasban_correlator_incidents_read_total",
                "Incidents read from the incidents topic into the store.", d->incidents_read);
    put_counter(b, "pasban_correlator_incidents_refused_total",
                "Incident records the store refused.", d->incidents_refused);
    put_counter(b, "pasban_correlator_updates_applied_total", "Incident updates applied.",
                d->updates_applied);
    put_counter(b, "pasban_correlator_updates_refused_total",
                "Incident updates refused (invalid transition, malformed, unknown incident).",
                d->updates_refused);
    put_counter(b, "pasban_correlator_kpi_records_published_total",
                "KPI records produced to the KPI topic.", d->kpi_published);
    put_counter(b, "pasban_correlator_kpi_records_imported_total",
                "KPI records read from the KPI topic.", d->kpi_imported);
    put_counter(b, "pasban_correlator_side_deliveries_failed_total",
                "Updates and KPI records that Kafka did not take.", d->side_failed);
    put_counter(b, "pasban_correlator_updates_over_limit_total",
                "Update records refused for a size or string past its limit, or a string not "
                "UTF-8 (also counted as refused).",
                d->updates_over_limit);
    put_counter(b, "pasban_correlator_rebalances_total",
                "Rebalances of the events consumer group seen by this instance.", d->rebalances);
    put_counter(b, "pasban_correlator_groups_dropped_total",
                "Groups dropped because their partition went to another instance (their state "
                "stays in the state topic for it).",
                d->groups_dropped);
    snprintf(line, sizeof(line),
             "# HELP pasban_correlator_transactions_total Kafka transactions (incidents, state "
             "records, offsets) committed and aborted.\n"
             "# TYPE pasban_correlator_transactions_total counter\n"
             "pasban_correlator_transactions_total{result=\"committed\"} %llu\n"
             "pasban_correlator_transactions_total{result=\"aborted\"} %llu\n",
             (unsigned long long)d->txn_committed, (unsigned long long)d->txn_aborted);
    cor_buf_puts(b, line);
    put_counter(b, "pasban_correlator_state_records_written_total",
                "Group state records produced to the state topic.", d->state_written);
    put_counter(b, "pasban_correlator_state_tombstones_written_total",
                "Tombstones produced to the state topic for groups freed.", d->state_tombstones);
    put_counter(b, "pasban_correlator_state_records_too_large_total",
                "State records Kafka's message size refused (their group is not kept).",
                d->state_too_large);
    put_counter(b, "pasban_correlator_kpi_state_records_written_total",
                "Event KPI counters (partition, operator, day) produced to the state topic.",
                d->kpi_state_written);
    put_counter(b, "pasban_correlator_kpi_state_records_restored_total",
                "Event KPI counters imported from the state topic.", d->kpi_state_restored);
    put_counter(b, "pasban_correlator_kpi_state_records_refused_total",
                "Event KPI counter records refused as malformed.", d->kpi_state_refused);
    put_counter(b, "pasban_correlator_state_restores_total",
                "Partitions whose window state was read back from the state topic.", d->restores);
    put_counter(b, "pasban_correlator_state_records_restored_total",
                "Group state records imported from the state topic.", d->state_restored);
    put_counter(b, "pasban_correlator_state_records_ignored_total",
                "State records of rules no longer loaded (or changed kind).", d->state_ignored);
    put_counter(b, "pasban_correlator_state_records_refused_total",
                "State records refused as malformed.", d->state_refused);
    static const char *const names[] = {"matches",      "incidents", "suppressed",
                                        "limit_errors", "late",      "evicted"};
    static const char *const help[] = {
        "Events whose where and unless held.",  "Incidents raised.",
        "Events suppressed after an incident.", "PCRE2 match or depth limits hit.",
        "Events too late for their window.",    "Groups evicted at the per-rule cap."};
    const cor_rule_stats *st = cor_engine_stats(d->e);
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        snprintf(line, sizeof(line),
                 "# HELP pasban_correlator_rule_%s_total %s\n"
                 "# TYPE pasban_correlator_rule_%s_total counter\n",
                 names[k], help[k], names[k]);
        cor_buf_puts(b, line);
        for (size_t i = 0; i < d->rs->n_rules; i++) {
            const cor_rule_stats *x = &st[i];
            uint64_t v = k == 0   ? x->matches
                         : k == 1 ? x->incidents
                         : k == 2 ? x->suppressed
                         : k == 3 ? x->limit_errors
                         : k == 4 ? x->late
                                  : x->evicted;
            snprintf(line, sizeof(line), "pasban_correlator_rule_%s_total{rule=\"%s\"} %llu\n",
                     names[k], d->rs->rules[i]->id, (unsigned long long)v);
            cor_buf_puts(b, line);
        }
    }
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

/* Only incidents hold back the commit. An update's report answers the HTTP
 * request that made it; updates and KPI records are counted when lost. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    daemon_ctx *d = opaque;
    if (m->_private == OPQ_INCIDENT || m->_private == OPQ_STATE) {
        if (m->_private == OPQ_INCIDENT)
            d->outstanding--;
        if (m->err) {
            d->failed++; /* its transaction cannot commit */
            logf_(d->o, "%s not delivered: %s",
                  m->_private == OPQ_INCIDENT ? "incident" : "state record",
                  rd_kafka_err2str(m->err));
        }
        return;
    }
    if (m->err) {
        d->side_failed++;
        logf_(d->o, "%s record not delivered: %s", rd_kafka_topic_name(m->rkt),
              rd_kafka_err2str(m->err));
    }
    if (m->_private && d->http)
        cor_http_update_done(d->http, (uint64_t)(uintptr_t)m->_private / 2,
                             m->err ? rd_kafka_err2str(m->err) : NULL);
}

static int set(rd_kafka_conf_t *c, const char *k, const char *v, char *err, size_t errlen)
{
    return rd_kafka_conf_set(c, k, v, err, errlen) == RD_KAFKA_CONF_OK ? 0 : -1;
}

enum { CONF_CONSUMER, CONF_PRODUCER, CONF_TXN };

/* The config file's librdkafka properties, then the brokers. What the daemon's
 * guarantees rest on (idempotence, manual commits, isolation) is set after, by the
 * caller. transactional.id and transaction.timeout.ms go to the transactional
 * producer only: the other producer's records (updates, KPIs) must not wait for a
 * batch. */
static rd_kafka_conf_t *base_conf(const cor_daemon_opts *o, int kind, char *err, size_t errlen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    /* Defaults the config file may change. A killed instance's open transaction
     * holds back read_committed readers of its partitions until this timeout. */
    if ((kind != CONF_CONSUMER && (set(c, "compression.codec", "lz4", err, errlen) < 0 ||
                                   set(c, "linger.ms", "5", err, errlen) < 0)) ||
        (kind == CONF_TXN && set(c, "transaction.timeout.ms", "10000", err, errlen) < 0)) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    const char *k, *v;
    size_t n = cor_config_property(o->config, 0, &k, &v);
    for (size_t i = 0; i < n; i++) {
        cor_config_property(o->config, i, &k, &v);
        if (kind != CONF_TXN &&
            (strcmp(k, "transactional.id") == 0 || strcmp(k, "transaction.timeout.ms") == 0))
            continue;
        char why[400];
        if (set(c, k, v, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "kafka.properties.%s: %s", k, why);
            rd_kafka_conf_destroy(c);
            return NULL;
        }
    }
    if (set(c, "bootstrap.servers", o->brokers, err, errlen) < 0) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    return c;
}

static cor_ruleset *load(const cor_daemon_opts *o)
{
    cor_load_opts lo = {o->log, false};
    return cor_ruleset_load(o->rules, &lo);
}

/* Produce a record that does not hold back the commit. 0, or -1 with a reason. */
static int produce_side(daemon_ctx *d, const char *topic, const char *key, const cor_buf *b,
                        char *err, size_t errlen)
{
    for (int tries = 0;; tries++) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            d->prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE(b->p, b->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries == 10) {
            snprintf(err, errlen, "%s: %s", topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(d->prod, 100);
    }
}

/* cor_http's hook: a valid status change goes to the updates topic, keyed by
 * the incident's operator, and is applied when it is read back, on every
 * instance alike. Its delivery report answers the request (on_delivery). */
static int publish_update(void *arg, const cor_inc_update *u, const char *op, uint64_t ticket,
                          char *err, size_t errlen)
{
    daemon_ctx *d = arg;
    if (d->stopping || ticket > UINTPTR_MAX / 2) {
        snprintf(err, errlen, "shutting down");
        return -1;
    }
    cor_buf b = {0};
    cor_inc_update_write(u, op, &b);
    const char *key = op ? op : "";
    rd_kafka_resp_err_t e =
        rd_kafka_producev(d->prod, RD_KAFKA_V_RKT(d->upd_rkt), RD_KAFKA_V_KEY(key, strlen(key)),
                          RD_KAFKA_V_VALUE(b.p, b.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(ticket * 2)), RD_KAFKA_V_END);
    cor_buf_free(&b);
    if (e) {
        /* No waiting here for a full queue: the client is told to come back. */
        snprintf(err, errlen, "%s: %s", d->o->topic_updates, rd_kafka_err2str(e));
        logf_(d->o, "update of %s not queued: %s", u->id, err);
        return -1;
    }
    return 0;
}

/* ---- transactions ---- */

/* Whether a stop was asked for; the first time, its time is kept: the waits of the
 * stop are measured from it. */
static bool stopping(daemon_ctx *d)
{
    if (stop_flag && !d->stop_at)
        d->stop_at = psb_now_ms() - (mono_sec() - (long)stop_sec) * 1000;
    return stop_flag != 0;
}

/* The end of a wait that began at `begun` and may last `ms`: earlier once a stop
 * is asked for (the stop's own budget `stop_ms`, from the moment it was seen). */
static int64_t wait_end(daemon_ctx *d, int64_t begun, int64_t ms, int64_t stop_ms)
{
    int64_t end = begun + ms;
    if (stopping(d) && d->stop_at + stop_ms < end)
        end = d->stop_at + stop_ms;
    return end;
}

enum { TXN_SEND_OFFSETS, TXN_COMMIT, TXN_ABORT };

typedef struct txn_args {
    rd_kafka_topic_partition_list_t *pos;
    rd_kafka_consumer_group_metadata_t *md;
} txn_args;

/* One call on the coordinator, in slices of at most COR_DAEMON_TXN_SLICE_MS: a
 * timed-out commit or abort resumes where it was (librdkafka), send offsets is
 * sent again with the same offsets (retriable, as its documentation asks). A
 * retriable error is tried again until COR_DAEMON_TXN_TIMEOUT_MS, or once a stop
 * is asked for until COR_DAEMON_STOP_TXN_MS after it. Returns NULL when done, or
 * the error (the last retriable one when the time ran out). */
static rd_kafka_error_t *txn_call(daemon_ctx *d, int op, const txn_args *a)
{
    int64_t begun = psb_now_ms();
    for (;;) {
        int64_t t0 = psb_now_ms();
        int64_t left = wait_end(d, begun, COR_DAEMON_TXN_TIMEOUT_MS, COR_DAEMON_STOP_TXN_MS) - t0;
        int slice = (int)(left < 1                         ? 1
                          : left > COR_DAEMON_TXN_SLICE_MS ? COR_DAEMON_TXN_SLICE_MS
                                                           : left);
        rd_kafka_error_t *e =
            op == TXN_COMMIT  ? rd_kafka_commit_transaction(d->txp, slice)
            : op == TXN_ABORT ? rd_kafka_abort_transaction(d->txp, slice)
                              : rd_kafka_send_offsets_to_transaction(d->txp, a->pos, a->md, slice);
        if (!e || !rd_kafka_error_is_retriable(e) ||
            psb_now_ms() >= wait_end(d, begun, COR_DAEMON_TXN_TIMEOUT_MS, COR_DAEMON_STOP_TXN_MS))
            return e;
        rd_kafka_error_destroy(e);
        /* An error that came back at once (coordinator loading, not yet known):
         * not a busy loop. Delivery reports are served meanwhile. */
        if (psb_now_ms() - t0 < 100)
            rd_kafka_poll(d->txp, 100);
    }
}

/* Give up the open transaction without committing or aborting it: the process is
 * stopping, or the producer is past use (a fatal error). Nothing of it is visible
 * (read_committed) and its offsets were not committed, so its events are read
 * again by whoever consumes their partitions next; the coordinator aborts it after
 * transaction.timeout.ms, or at once when this transactional.id comes back. */
static void txn_abandon(daemon_ctx *d, const char *why)
{
    if (!d->in_txn)
        return;
    logf_(d->o,
          "%s: transaction of %llu incidents (%llu events) not committed; they will be "
          "re-derived from the uncommitted events on the next start",
          why, (unsigned long long)d->txn_incidents, (unsigned long long)d->txn_events);
    d->in_txn = false;
    d->events -= d->txn_events;
    d->txn_events = 0;
    d->txn_incidents = 0;
    d->outstanding = 0;
    d->failed = 0;
    cor_engine_clear_dirty(d->e);
    cor_kpi_state_clear_dirty(d->kpi);
}

static void txn_log_error(daemon_ctx *d, const char *what, rd_kafka_error_t *e)
{
    logf_(d->o, "transaction: %s: %s%s", what, rd_kafka_error_string(e),
          rd_kafka_error_is_fatal(e) ? " (fatal)" : "");
}

/* Open a transaction if none is. -1 on a fatal error (e.g. fenced: another
 * instance runs with this transactional.id). */
static int txn_open(daemon_ctx *d)
{
    if (d->in_txn)
        return 0;
    if (d->broken)
        return -1;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(d->txp);
    if (e) {
        txn_log_error(d, "begin", e);
        rd_kafka_error_destroy(e);
        d->broken = true;
        return -1;
    }
    d->in_txn = true;
    d->txn_since = psb_now_ms();
    d->txn_events = 0;
    d->txn_incidents = 0;
    d->n_touched = 0;
    /* An abort takes the id ordinals and the watermark back to here. */
    cor_engine_checkpoint(d->e);
    return 0;
}

static void note_partition(daemon_ctx *d, int32_t p)
{
    for (size_t i = 0; i < d->n_touched; i++)
        if (d->touched[i] == p)
            return;
    if (d->n_touched >= COR_DAEMON_MAX_PARTS)
        return;
    if (!d->touched)
        d->touched = psb_xcalloc(COR_DAEMON_MAX_PARTS, sizeof(*d->touched));
    d->touched[d->n_touched++] = p;
}

/* "<group>/<partition>/": every state record of the consumer group and events
 * partition starts so (a state topic may serve several groups). */
static void state_prefix(daemon_ctx *d, int32_t p, cor_buf *b)
{
    char n[24];
    b->len = 0;
    cor_buf_puts(b, d->o->group_id);
    snprintf(n, sizeof(n), "/%d/", (int)p);
    cor_buf_puts(b, n);
}

/* Produce one record (value NULL: a tombstone) to the state partition of events
 * partition p. 0; 1 when Kafka's size limit refused it (counted, skipped); -1. */
static int produce_state(daemon_ctx *d, int32_t p, const cor_buf *key, const char *v, size_t n)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            d->txp, RD_KAFKA_V_TOPIC(d->o->topic_state), RD_KAFKA_V_PARTITION(p % d->n_state_parts),
            RD_KAFKA_V_KEY(key->p, key->len), RD_KAFKA_V_VALUE((void *)(uintptr_t)v, v ? n : 0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(OPQ_STATE), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            if (d->state_too_large++ < 10)
                logf_(d->o, "state record of %zu bytes refused (message.max.bytes)", n);
            return 1;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            logf_(d->o, "produce to %s: %s", d->o->topic_state, rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(d->txp, 100);
    }
}

typedef struct state_out {
    daemon_ctx *d;
    int rc;
} state_out;

static void on_state(void *arg, int32_t src, const char *rule_id, const char *key, size_t key_len,
                     const char *rec, size_t rec_len)
{
    state_out *so = arg;
    daemon_ctx *d = so->d;
    if (so->rc < 0 || src < 0)
        return;
    state_prefix(d, src, &d->skey);
    cor_buf_puts(&d->skey, rule_id);
    cor_buf_putc(&d->skey, '/');
    cor_buf_put(&d->skey, key, key_len);
    if (produce_state(d, src, &d->skey, rec, rec_len) < 0)
        so->rc = -1;
    else if (rec)
        d->state_written++;
    else
        d->state_tombstones++;
}

/* The event KPI counters of (partition, operator, day): "<group>/<p>/#kpi/OP/DAY". */
static void on_kpi_state(void *arg, int32_t part, const char *key, size_t key_len, const char *rec,
                         size_t len)
{
    state_out *so = arg;
    daemon_ctx *d = so->d;
    if (so->rc < 0)
        return;
    state_prefix(d, part, &d->skey);
    cor_buf_put(&d->skey, key, key_len);
    if (produce_state(d, part, &d->skey, rec, len) < 0)
        so->rc = -1;
    else if (rec)
        d->kpi_state_written++;
    else
        d->state_tombstones++;
}

/* The changed groups, the tombstones, the event KPI counters changed, and the
 * watermark of every partition the transaction read from ("<group>/<p>/#wm",
 * decimal ms). */
static int produce_state_changes(daemon_ctx *d)
{
    state_out so = {d, 0};
    cor_engine_export_dirty(d->e, on_state, &so);
    cor_kpi_state_export(d->kpi, false, on_kpi_state, &so);
    if (so.rc < 0 || !cor_engine_has_watermark(d->e))
        return so.rc;
    char wm[24];
    int n = snprintf(wm, sizeof(wm), "%lld", (long long)cor_engine_watermark(d->e));
    for (size_t i = 0; i < d->n_touched; i++) {
        state_prefix(d, d->touched[i], &d->skey);
        cor_buf_puts(&d->skey, "#wm");
        if (produce_state(d, d->touched[i], &d->skey, wm, (size_t)n) < 0)
            return -1;
    }
    return 0;
}

/* Abort the open transaction and make the loop go back to the committed offsets
 * and state. librdkafka 2.0.2 can turn an abort that overtakes an in-flight
 * AddPartitionsToTxn into a fatal error (issue 4849): flush first. */
static void txn_abort(daemon_ctx *d)
{
    if (!d->in_txn)
        return;
    char why[512];
    if (rd_kafka_fatal_error(d->txp, why, sizeof(why)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* Fenced, or another fatal error: the producer takes no abort either. */
        logf_(d->o, "transactional producer: %s (fatal)", why);
        txn_abandon(d, "fatal error");
        d->broken = true;
        return;
    }
    int64_t begun = psb_now_ms();
    while (rd_kafka_outq_len(d->txp) > 0 &&
           psb_now_ms() < wait_end(d, begun, 10000, COR_DAEMON_STOP_TXN_MS))
        rd_kafka_flush(d->txp, 200);
    rd_kafka_error_t *e = txn_call(d, TXN_ABORT, NULL);
    if (e && stopping(d) && rd_kafka_error_is_retriable(e)) {
        /* The coordinator is out of reach and the process is going: it aborts the
         * transaction itself. */
        rd_kafka_error_destroy(e);
        txn_abandon(d, "stopping");
        d->unreachable = true;
        return;
    }
    cor_engine_rollback(d->e);
    d->in_txn = false;
    d->txn_aborted++;
    d->aborts_in_row++;
    d->events -= d->txn_events; /* read again after the rewind */
    d->txn_events = 0;
    d->need_rewind = true;
    d->failed = 0;
    d->outstanding = 0;
    cor_engine_clear_dirty(d->e);
    cor_kpi_state_clear_dirty(d->kpi);
    if (e) {
        txn_log_error(d, "abort", e);
        rd_kafka_error_destroy(e);
        d->broken = true;
        return;
    }
    logf_(d->o, "transaction aborted: back to the committed offsets and state");
}

/* Commit the open transaction: state records, then the consumer's positions as
 * the group's offsets, then the commit. 0 committed (or nothing open); -1 aborted
 * (the loop rewinds) or broken. */
static int txn_commit(daemon_ctx *d, rd_kafka_t *cons)
{
    if (!d->in_txn)
        return d->broken ? -1 : 0;
    rd_kafka_error_t *e = NULL;
    rd_kafka_topic_partition_list_t *pos = NULL;
    if (produce_state_changes(d) != 0)
        goto abort;
    if (rd_kafka_assignment(cons, &pos) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto abort;
    rd_kafka_position(cons, pos); /* partitions without a position are skipped */
    txn_args a = {pos, rd_kafka_consumer_group_metadata(cons)};
    e = txn_call(d, TXN_SEND_OFFSETS, &a);
    rd_kafka_consumer_group_metadata_destroy(a.md);
    rd_kafka_topic_partition_list_destroy(pos);
    if (e) {
        txn_log_error(d, "send offsets", e);
        goto error;
    }
    e = txn_call(d, TXN_COMMIT, NULL);
    if (e) {
        txn_log_error(d, "commit", e);
        goto error;
    }
    d->in_txn = false;
    d->last_commit = psb_now_ms();
    d->txn_committed++;
    d->aborts_in_row = 0;
    return 0;
error:
    if (rd_kafka_error_is_fatal(e)) {
        /* The producer is past use: no abort can follow. */
        rd_kafka_error_destroy(e);
        txn_abandon(d, "fatal error");
        d->broken = true;
        return -1;
    }
    if (stopping(d) && rd_kafka_error_is_retriable(e)) {
        /* Out of time at the stop: the coordinator is unreachable, an abort would
         * wait for it too. */
        rd_kafka_error_destroy(e);
        txn_abandon(d, "stopping");
        d->unreachable = true;
        return -1;
    }
    rd_kafka_error_destroy(e);
abort:
    txn_abort(d);
    return -1;
}

/* Produce every incident raised since the last call, in the open transaction;
 * trigger is the event just processed (NULL after a reload or at the end): its
 * receive time gives the detection latency. 0, or -1 (the transaction must be
 * aborted). */
static int produce_new(daemon_ctx *d, const psb_event *trigger, cor_buf *b)
{
    cor_incident *const *inc;
    size_t n = cor_engine_take(d->e, &inc);
    if (n && txn_open(d) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        b->len = 0;
        cor_incident_write(inc[i], b);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                d->txp, RD_KAFKA_V_TOPIC(d->o->topic_out), RD_KAFKA_V_KEY(inc[i]->id, 32),
                RD_KAFKA_V_VALUE(b->p, b->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE(OPQ_INCIDENT), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                d->outstanding++;
                d->txn_incidents++;
                break;
            }
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                logf_(d->o, "produce: %s", rd_kafka_err2str(err));
                return -1;
            }
            rd_kafka_poll(d->txp, 100); /* queue full: wait for deliveries */
        }
        int64_t now = psb_now_ms();
        if (trigger && trigger->created_ms > 0 && trigger->created_ms <= now)
            cor_kpi_on_latency(d->kpi, inc[i]->org ? inc[i]->org : "unassigned",
                               trigger->timestamp_ms, (now - trigger->created_ms) * 1000);
    }
    return 0;
}

/* ---- window state: restore ---- */

/* The last value per key of a state partition (a compacted topic may still hold
 * older ones, and tombstones). Open addressing; cap a power of 2. */
typedef struct skv {
    char *k; /* NULL: empty */
    size_t kl;
    char *v; /* NULL: a tombstone */
    size_t vl;
} skv;

typedef struct smap {
    skv *t;
    size_t cap, n;
} smap;

static skv *smap_slot(skv *t, size_t cap, const char *k, size_t kl)
{
    size_t i = (size_t)psb_hash_bytes(k, kl, PSB_HASH_SEED) & (cap - 1);
    while (t[i].k && !(t[i].kl == kl && memcmp(t[i].k, k, kl) == 0))
        i = (i + 1) & (cap - 1);
    return &t[i];
}

static void smap_put(smap *m, const char *k, size_t kl, const char *v, size_t vl)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1024;
        skv *t = psb_xcalloc(cap, sizeof(*t));
        for (size_t i = 0; i < m->cap; i++)
            if (m->t[i].k)
                *smap_slot(t, cap, m->t[i].k, m->t[i].kl) = m->t[i];
        free(m->t);
        m->t = t;
        m->cap = cap;
    }
    skv *x = smap_slot(m->t, m->cap, k, kl);
    if (!x->k) {
        x->k = psb_xmalloc(kl ? kl : 1);
        memcpy(x->k, k, kl);
        x->kl = kl;
        m->n++;
    }
    free(x->v);
    x->v = NULL;
    x->vl = 0;
    if (v) {
        x->v = psb_xmalloc(vl ? vl : 1);
        memcpy(x->v, v, vl);
        x->vl = vl;
    }
}

static void smap_free(smap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->t[i].k);
        free(m->t[i].v);
    }
    free(m->t);
    memset(m, 0, sizeof(*m));
}

/* The events partition a state key belongs to ("<group>/<p>/..."), or -1. */
static int32_t key_partition(const daemon_ctx *d, const char *k, size_t kl, size_t *rest)
{
    size_t gl = strlen(d->o->group_id);
    if (kl < gl + 3 || memcmp(k, d->o->group_id, gl) != 0 || k[gl] != '/')
        return -1;
    size_t i = gl + 1;
    long p = 0;
    while (i < kl && k[i] >= '0' && k[i] <= '9' && p < COR_DAEMON_MAX_PARTS * 1000L)
        p = p * 10 + (k[i++] - '0');
    if (i == gl + 1 || i >= kl || k[i] != '/')
        return -1;
    *rest = i + 1;
    return (int32_t)p;
}

static bool in_set(const int32_t *ps, size_t n, int32_t p)
{
    for (size_t i = 0; i < n; i++)
        if (ps[i] == p)
            return true;
    return false;
}

/* Read the state of events partitions ps back -- their state partitions from the
 * start to the end, read_committed, side by side -- and import it. 0, or -1 (an
 * end not reached: a transaction still open past COR_DAEMON_RESTORE_MS, the
 * broker gone). */
static int restore_set(daemon_ctx *d, const int32_t *ps, size_t n)
{
    int rc = -1;
    smap m = {0};
    int64_t *wm = psb_xcalloc(n, sizeof(*wm));
    for (size_t i = 0; i < n; i++)
        wm[i] = INT64_MIN;
    rd_kafka_topic_partition_list_t *a = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        int32_t sp = ps[i] % d->n_state_parts;
        if (!rd_kafka_topic_partition_list_find(a, d->o->topic_state, sp))
            rd_kafka_topic_partition_list_add(a, d->o->topic_state, sp)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    }
    int open = a->cnt;
    rd_kafka_resp_err_t err = rd_kafka_assign(d->sreader, a);
    if (err) {
        logf_(d->o, "restore: assign %s: %s", d->o->topic_state, rd_kafka_err2str(err));
        goto out;
    }
    int64_t until = psb_now_ms() + COR_DAEMON_RESTORE_MS;
    size_t read = 0;
    while (open > 0) {
        if (stopping(d)) {
            logf_(d->o, "restore: stopped before the end of %s", d->o->topic_state);
            goto out;
        }
        if (psb_now_ms() > until) {
            logf_(d->o, "restore: the end of %s not reached in %d s", d->o->topic_state,
                  COR_DAEMON_RESTORE_MS / 1000);
            goto out;
        }
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(d->sreader, 200);
        if (!msg)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_topic_partition_t *x =
                rd_kafka_topic_partition_list_find(a, d->o->topic_state, msg->partition);
            if (x && x->offset != -1000) {
                x->offset = -1000; /* its end reached once */
                open--;
            }
            rd_kafka_message_destroy(msg);
            continue;
        }
        if (msg->err) {
            logf_(d->o, "restore: %s", rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            continue;
        }
        read++;
        size_t rest;
        int32_t p = msg->key ? key_partition(d, msg->key, msg->key_len, &rest) : -1;
        if (p >= 0 && in_set(ps, n, p)) {
            const char *k = (const char *)msg->key + rest;
            size_t kl = msg->key_len - rest;
            if (kl == 3 && memcmp(k, "#wm", 3) == 0) {
                char t[24];
                size_t l = msg->len < sizeof(t) - 1 ? msg->len : sizeof(t) - 1;
                memcpy(t, msg->payload ? msg->payload : "", l);
                t[l] = '\0';
                for (size_t i = 0; i < n; i++)
                    if (ps[i] == p)
                        wm[i] = strtoll(t, NULL, 10);
            } else { /* groups and event KPI counters: the last record per key */
                smap_put(&m, msg->key, msg->key_len, msg->payload, msg->len);
            }
        }
        rd_kafka_message_destroy(msg);
    }
    size_t imported = 0, ignored = 0, refused = 0, kpi_in = 0, kpi_bad = 0, newer = 0;
    const size_t kpl = sizeof(COR_KPI_STATE_PREFIX) - 1;
    for (size_t i = 0; i < m.cap; i++) {
        if (!m.t[i].k || !m.t[i].v)
            continue;
        char why[256];
        size_t rest;
        int32_t kp = key_partition(d, m.t[i].k, m.t[i].kl, &rest);
        if (m.t[i].kl - rest >= kpl && memcmp(m.t[i].k + rest, COR_KPI_STATE_PREFIX, kpl) == 0) {
            if (cor_kpi_state_import(d->kpi, kp, m.t[i].k + rest, m.t[i].kl - rest, m.t[i].v,
                                     m.t[i].vl, why, sizeof(why)) == 0)
                kpi_in++;
            else if (kpi_bad++ < 5)
                logf_(d->o, "restore: %s", why);
            continue;
        }
        int r = cor_engine_import(d->e, m.t[i].v, m.t[i].vl, why, sizeof(why));
        if (r == 0) {
            imported++;
        } else if (r == 2) {
            /* One operator's events in two partitions: the newer group is kept. */
            if (newer++ < 5)
                logf_(d->o, "restore: %s", why);
        } else if (r > 0) {
            ignored++;
        } else if (refused++ < 5) {
            logf_(d->o, "restore: %s", why);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (wm[i] != INT64_MIN)
            cor_engine_raise_watermark(d->e, wm[i]);
    d->state_restored += imported;
    d->state_ignored += ignored;
    d->state_refused += refused;
    d->kpi_state_restored += kpi_in;
    d->kpi_state_refused += kpi_bad;
    d->restores += n;
    logf_(d->o,
          "restore: %zu partitions: %zu groups imported (%zu ignored: rules gone, %zu refused, "
          "%zu older than a group of another partition), "
          "%zu KPI counters imported (%zu refused) from %zu records of %s",
          n, imported, ignored, refused, newer, kpi_in, kpi_bad, read, d->o->topic_state);
    rc = 0;
out:
    rd_kafka_assign(d->sreader, NULL);
    rd_kafka_topic_partition_list_destroy(a);
    smap_free(&m);
    free(wm);
    return rc;
}

/* ---- rebalances of the events consumer ---- */

static void parts_text(const rd_kafka_topic_partition_list_t *p, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < p->cnt && n + 32 < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s[%d]", i ? " " : "", p->elems[i].topic,
                              (int)p->elems[i].partition);
    if (p->cnt == 0)
        snprintf(out, len, "none");
}

typedef struct drop_arg {
    const daemon_ctx *d;
    const rd_kafka_topic_partition_list_t *parts; /* NULL: every source */
} drop_arg;

static bool drop_if_in(void *arg, int32_t src)
{
    const drop_arg *a = arg;
    return !a->parts ||
           rd_kafka_topic_partition_list_find(a->parts, a->d->o->topic_in, src) != NULL;
}

/* The groups of partitions gone elsewhere are dropped: their state is in the state
 * topic, where the next owner reads it. */
static void drop_parts(daemon_ctx *d, const rd_kafka_topic_partition_list_t *gone)
{
    if (gone && gone->cnt == 0)
        return;
    /* The event KPI counters too: read back with the groups, or by the next owner. */
    if (!gone)
        cor_kpi_state_drop(d->kpi, -1);
    else
        for (int i = 0; i < gone->cnt; i++)
            if (strcmp(gone->elems[i].topic, d->o->topic_in) == 0)
                cor_kpi_state_drop(d->kpi, gone->elems[i].partition);
    if (!d->e)
        return;
    drop_arg a = {d, gone};
    size_t n = cor_engine_drop_sources(d->e, drop_if_in, &a);
    d->groups_dropped += n;
    char t[512];
    if (gone) {
        parts_text(gone, t, sizeof(t));
        logf_(d->o, "rebalance: dropped %zu groups of the partitions gone (%s)", n, t);
    } else {
        logf_(d->o, "rewind: dropped %zu groups; reading them back from %s", n, d->o->topic_state);
    }
}

/* Restore the state of each events partition of parts. On failure nothing
 * consistent can be kept: the daemon stops (a supervisor restarts it). Cut short
 * by a stop: the state is incomplete, so nothing more is committed (need_rewind
 * keeps events out until the loop ends). */
static void restore_parts(daemon_ctx *d, const rd_kafka_topic_partition_list_t *parts)
{
    int32_t *ps = psb_xcalloc((size_t)parts->cnt + 1, sizeof(*ps));
    size_t n = 0;
    for (int i = 0; i < parts->cnt; i++)
        if (strcmp(parts->elems[i].topic, d->o->topic_in) == 0)
            ps[n++] = parts->elems[i].partition;
    if (n && !d->broken && restore_set(d, ps, n) != 0) {
        if (stopping(d)) {
            d->need_rewind = true;
        } else {
            logf_(d->o, "cannot restore the window state: stopping");
            d->broken = true;
        }
    }
    free(ps);
}

static void take_error(daemon_ctx *d, const char *what, rd_kafka_error_t *e)
{
    if (!e)
        return;
    logf_(d->o, "rebalance: %s: %s", what, rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
}

/* Eager assignors (range, roundrobin: librdkafka's default) revoke every
 * partition and then assign the new set, mostly the same partitions; a
 * cooperative one (cooperative-sticky) revokes and assigns only what moves.
 * Before partitions go, the open transaction commits (incidents, state, offsets);
 * a partition that arrives has its state read back before its first event. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    daemon_ctx *d = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    char t[512];
    parts_text(parts, t, sizeof(t));
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool lost = rd_kafka_assignment_lost(rk);
        bool clean;
        if (lost) {
            txn_abort(d); /* their events will be read again by the next owner */
            clean = false;
        } else {
            clean = txn_commit(d, rk) == 0;
        }
        logf_(d->o, "rebalance: revoked %s; %s", t,
              clean  ? "transaction committed (incidents, state, offsets)"
              : lost ? "assignment lost: their uncommitted events will be read again"
                     : "transaction not committed: their uncommitted events will be read again");
        if (coop) {
            drop_parts(d, parts); /* never handed back in the same rebalance */
            take_error(d, "incremental unassign", rd_kafka_incremental_unassign(rk, parts));
        } else {
            /* Which of them come back is known at the assignment. */
            if (d->revoked)
                rd_kafka_topic_partition_list_destroy(d->revoked);
            d->revoked = rd_kafka_topic_partition_list_copy(parts);
            d->revoked_clean = clean;
            rd_kafka_assign(rk, NULL);
        }
    } else if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        d->rebalances++;
        /* The state partitions must not hold an open transaction of ours. */
        txn_commit(d, rk);
        rd_kafka_topic_partition_list_t *fresh = rd_kafka_topic_partition_list_new(8);
        if (d->revoked) {
            /* Gone elsewhere, or read again from older offsets: dropped. Handed
             * back after a clean commit: kept as they are. */
            rd_kafka_topic_partition_list_t *gone = rd_kafka_topic_partition_list_new(8);
            for (int i = 0; i < d->revoked->cnt; i++) {
                const rd_kafka_topic_partition_t *r = &d->revoked->elems[i];
                if (!d->revoked_clean ||
                    !rd_kafka_topic_partition_list_find(parts, r->topic, r->partition))
                    rd_kafka_topic_partition_list_add(gone, r->topic, r->partition);
            }
            drop_parts(d, gone);
            rd_kafka_topic_partition_list_destroy(gone);
        }
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &parts->elems[i];
            bool kept = d->revoked && d->revoked_clean &&
                        rd_kafka_topic_partition_list_find(d->revoked, p->topic, p->partition);
            if (!kept)
                rd_kafka_topic_partition_list_add(fresh, p->topic, p->partition);
        }
        if (d->revoked) {
            rd_kafka_topic_partition_list_destroy(d->revoked);
            d->revoked = NULL;
        }
        logf_(d->o, "rebalance: assigned %s", t);
        restore_parts(d, fresh);
        rd_kafka_topic_partition_list_destroy(fresh);
        if (coop)
            take_error(d, "incremental assign", rd_kafka_incremental_assign(rk, parts));
        else
            rd_kafka_assign(rk, parts);
    } else {
        logf_(d->o, "rebalance: %s", rd_kafka_err2str(err));
        txn_abort(d);
        if (coop)
            take_error(d, "incremental unassign", rd_kafka_incremental_unassign(rk, parts));
        else
            rd_kafka_assign(rk, NULL);
    }
}

typedef struct carry_arg {
    daemon_ctx *d;
    cor_engine *to;
    size_t n;
} carry_arg;

static void on_carry(void *arg, int32_t src, const char *rule_id, const char *key, size_t key_len,
                     const char *rec, size_t rec_len)
{
    carry_arg *c = arg;
    char why[256];
    int r = cor_engine_import(c->to, rec, rec_len, why, sizeof(why));
    if (r == 0) {
        c->n++;
        return;
    }
    if (r < 0) {
        logf_(c->d->o, "reload: %s", why);
        return;
    }
    /* The rule is gone (or changed kind): its record goes too. */
    c->d->state_ignored++;
    state_out so = {c->d, 0};
    if (txn_open(c->d) == 0)
        on_state(&so, src, rule_id, key, key_len, NULL, 0);
}

/* A reload keeps the windows of the rules it keeps (by id): every group of the old
 * engine is carried into the new one through its record. */
static size_t carry_over(daemon_ctx *d, cor_engine *to)
{
    carry_arg c = {d, to, 0};
    cor_engine_export_all(d->e, on_carry, &c);
    if (cor_engine_has_watermark(d->e))
        cor_engine_raise_watermark(to, cor_engine_watermark(d->e));
    return c.n;
}

/* After an abort: every group of this instance dropped, the consumer back at the
 * committed offsets, the state of each assigned partition read back. */
static int rewind_all(daemon_ctx *d, rd_kafka_t *cons)
{
    txn_abort(d); /* anything begun since is read again too */
    d->need_rewind = false;
    /* The same batch failing again and again (an incident past message.max.bytes,
     * a topic that refuses writes) is not retried for ever. */
    if (d->aborts_in_row >= COR_DAEMON_MAX_ABORTS) {
        logf_(d->o, "%d transactions aborted in a row", d->aborts_in_row);
        return -1;
    }
    rd_kafka_poll(d->txp, 200 * d->aborts_in_row); /* a pause that grows */
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(cons, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    drop_parts(d, NULL);
    int rc = -1;
    /* In slices: a stop meanwhile ends the rewind (nothing is committed after it). */
    rd_kafka_resp_err_t err;
    int64_t begun = psb_now_ms();
    while ((err = rd_kafka_committed(cons, parts, COR_DAEMON_TXN_SLICE_MS)) ==
               RD_KAFKA_RESP_ERR__TIMED_OUT &&
           !stopping(d) && psb_now_ms() - begun < COR_DAEMON_TXN_TIMEOUT_MS)
        ;
    if (err && stopping(d)) {
        d->need_rewind = true;
        rc = 0;
        goto out;
    }
    if (err) {
        logf_(d->o, "rewind: committed offsets: %s", rd_kafka_err2str(err));
        goto out;
    }
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].offset < 0)
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING; /* auto.offset.reset */
    rd_kafka_error_t *e = rd_kafka_seek_partitions(cons, parts, COR_DAEMON_TXN_TIMEOUT_MS);
    if (e) {
        logf_(d->o, "rewind: seek: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        goto out;
    }
    restore_parts(d, parts);
    rc = d->broken ? -1 : 0;
out:
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

/* Leave the group: the revoke commits what is still open (on_rebalance) and the
 * partitions go to the other instances at once. It waits on the group
 * coordinator, so only until COR_DAEMON_STOP_MS after the stop, and not at all
 * when the last commit found the brokers out of reach: the group's session
 * timeout hands the partitions on instead. */
static void close_consumer(daemon_ctx *d, rd_kafka_t *cons)
{
    bool graceful = !d->unreachable;
    if (graceful) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(cons);
        rd_kafka_error_t *e = rd_kafka_consumer_close_queue(cons, q);
        if (e) {
            logf_(d->o, "consumer close: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            graceful = false;
        }
        int64_t until = wait_end(d, psb_now_ms(), COR_DAEMON_STOP_MS, COR_DAEMON_STOP_MS);
        while (graceful && !rd_kafka_consumer_closed(cons)) {
            if (psb_now_ms() >= until) {
                logf_(d->o,
                      "stopping: the consumer group was not left in %d s (coordinator out "
                      "of reach): its session timeout hands the partitions on",
                      COR_DAEMON_STOP_MS / 1000);
                graceful = false;
                break;
            }
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10);
            if (!ev)
                continue;
            /* Events of the close queue, not callbacks: the revoke goes through
             * on_rebalance all the same. */
            if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
                on_rebalance(cons, rd_kafka_event_error(ev),
                             rd_kafka_event_topic_partition_list(ev), d);
            rd_kafka_event_destroy(ev);
        }
        rd_kafka_queue_destroy(q);
    } else {
        logf_(d->o, "stopping: brokers out of reach: leaving the consumer group without a "
                    "graceful close (its session timeout hands the partitions on)");
    }
    rd_kafka_destroy_flags(cons, graceful ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

/* ---- the topics every instance reads whole ---- */

static int apply_update(daemon_ctx *d, cor_inc_update_owned *u)
{
    char err[256];
    if (cor_incstore_apply(d->store, &u->u, err, sizeof(err)) != 0) {
        d->updates_refused++;
        logf_(d->o, "update %s of %s refused: %s", cor_inc_status_name(u->u.status), u->u.id, err);
        return -1;
    }
    d->updates_applied++;
    cor_kpi_on_update(d->kpi, u->u.id, cor_inc_status_name(u->u.status), u->u.at);
    return 0;
}

/* Updates read before their incident (the topics are read side by side) wait
 * here and are applied, in the order read, once the incident is known. */
static void retry_pending(daemon_ctx *d)
{
    size_t kept = 0;
    for (size_t i = 0; i < d->n_pending; i++) {
        cor_inc_update_owned *u = &d->pending[i];
        if (!cor_incstore_operator(d->store, u->u.id)) {
            d->pending[kept++] = *u;
            continue;
        }
        apply_update(d, u);
        cor_inc_update_release(u);
    }
    d->n_pending = kept;
}

static void on_update(daemon_ctx *d, const char *p, size_t n)
{
    char err[256];
    cor_inc_update_owned u;
    if (cor_inc_update_parse(p, n, &u, err, sizeof(err)) != 0) {
        d->updates_refused++;
        if (u.over_limit)
            d->updates_over_limit++;
        /* The first few, then one in a thousand: not a line per record of a
         * bad producer. */
        if (d->updates_refused <= 10 || d->updates_refused % 1000 == 0)
            logf_(d->o, "update record refused on %s (%llu so far): %s", d->o->topic_updates,
                  (unsigned long long)d->updates_refused, err);
        return;
    }
    if (!cor_incstore_operator(d->store, u.u.id)) {
        if (d->n_pending >= COR_DAEMON_MAX_PENDING) {
            d->updates_refused++;
            logf_(d->o, "update of unknown incident %s dropped (%d waiting)", u.u.id,
                  COR_DAEMON_MAX_PENDING);
            cor_inc_update_release(&u);
            return;
        }
        d->pending = psb_xrealloc(d->pending, (d->n_pending + 1) * sizeof(*d->pending));
        d->pending[d->n_pending++] = u;
        return;
    }
    apply_update(d, &u);
    cor_inc_update_release(&u);
}

/* Drain what the reader has; returns the number of messages handled. */
static size_t read_whole(daemon_ctx *d, rd_kafka_t *reader)
{
    char err[256];
    size_t handled = 0, added = 0;
    while (handled < COR_DAEMON_READ_BATCH) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 0);
        if (!m)
            break;
        handled++;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                logf_(d->o, "read: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        const char *topic = rd_kafka_topic_name(m->rkt);
        const char *p = m->payload ? m->payload : "";
        if (strcmp(topic, d->o->topic_out) == 0) {
            cor_kpi_incident ki;
            int r = cor_incstore_add_json(d->store, p, m->len, &ki, err, sizeof(err));
            if (r == 1) {
                cor_kpi_on_incident(d->kpi, &ki);
                d->incidents_read++;
                added++;
                /* Updates that came before this incident go first, before any
                 * later update in this batch, so they apply in their order. */
                if (d->n_pending)
                    retry_pending(d);
            } else if (r < 0) {
                /* Counted on /metrics; the log gets the first few and then one
                 * in a thousand, not a line per record of a bad producer. */
                if (++d->incidents_refused <= 10 || d->incidents_refused % 1000 == 0)
                    logf_(d->o, "incident record refused (%llu so far): %s",
                          (unsigned long long)d->incidents_refused, err);
            }
        } else if (strcmp(topic, d->o->topic_updates) == 0) {
            on_update(d, p, m->len);
        } else if (m->len > 0) { /* the KPI topic; an empty value is a tombstone */
            if (cor_kpi_import_record(d->kpi, m->key ? m->key : "", m->key_len, p, m->len) == 0)
                d->kpi_imported++;
            else
                d->kpi_refused++;
        }
        rd_kafka_message_destroy(m);
    }
    if (added && d->n_pending)
        retry_pending(d);
    return handled;
}

/* Assign every partition of the three topics to the reader, from the start.
 * A topic the broker does not know yet is asked for through the producer
 * (which lets a broker that auto-creates topics create it). */
static int topic_partitions(daemon_ctx *d, const char *name)
{
    int np = 0;
    for (int tries = 0; tries < 20 && np == 0 && !stop_flag; tries++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(d->prod, name, NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(d->prod, 0, rkt, &md, 5000);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 && !md->topics[0].err)
            np = md->topics[0].partition_cnt;
        if (md)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        if (np == 0)
            rd_kafka_poll(d->prod, 500);
    }
    if (np == 0 && !stop_flag)
        logf_(d->o, "topic %s: no partitions (does it exist?)", name);
    return np;
}

static int assign_whole(daemon_ctx *d, rd_kafka_t *reader)
{
    const char *names[3] = {d->o->topic_out, d->o->topic_updates, d->o->topic_kpi};
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    int rc = -1;
    for (size_t t = 0; t < 3; t++) {
        int np = topic_partitions(d, names[t]);
        if (np == 0)
            goto out;
        for (int i = 0; i < np; i++)
            rd_kafka_topic_partition_list_add(parts, names[t], i)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(reader, parts);
    if (e) {
        logf_(d->o, "assign: %s", rd_kafka_err2str(e));
        goto out;
    }
    rc = 0;
out:
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

/* ---- pasban.kpi ---- */

static pub_gen *pub_get(daemon_ctx *d, const char *op)
{
    for (size_t i = 0; i < d->n_pub; i++)
        if (strcmp(d->pub[i].op, op) == 0)
            return &d->pub[i];
    d->pub = psb_xrealloc(d->pub, (d->n_pub + 1) * sizeof(*d->pub));
    d->pub[d->n_pub] = (pub_gen){psb_xstrdup(op), 0};
    return &d->pub[d->n_pub++];
}

/* For every operator whose KPIs changed since last time: the records of the
 * current and previous month (event time) in which this instance saw its
 * events, key "op/YYYY-MM". */
static void publish_kpi(daemon_ctx *d)
{
    char err[256], key[COR_KPI_MAX_ID_LEN + 32], period[16];
    cor_kpi_period cur = cor_kpi_current_month(d->kpi);
    cor_kpi_period months[2] = {cor_kpi_period_prev(cur), cur};
    cor_buf b = {0};
    for (size_t i = 0; i < cor_kpi_n_operators(d->kpi); i++) {
        const char *op = cor_kpi_operator(d->kpi, i);
        uint64_t gen = cor_kpi_generation(d->kpi, op);
        pub_gen *pg = pub_get(d, op);
        if (pg->gen == gen)
            continue;
        bool ok = true;
        for (size_t m = 0; m < 2; m++) {
            if (!cor_kpi_has_events(d->kpi, op, months[m]))
                continue;
            b.len = 0;
            if (cor_kpi_write_json(d->kpi, op, months[m], &b) != 0)
                continue;
            cor_kpi_period_format(months[m], period);
            snprintf(key, sizeof(key), "%s/%s", op, period);
            if (produce_side(d, d->o->topic_kpi, key, &b, err, sizeof(err)) != 0) {
                logf_(d->o, "KPI record %s not queued: %s", key, err);
                ok = false;
            } else {
                d->kpi_published++;
            }
        }
        if (ok)
            pg->gen = gen; /* else: tried again next time */
    }
    cor_buf_free(&b);
}

/* transactional.id: the one given in kafka.properties, else GROUP/INSTANCE, the
 * instance by default the host name and the --http port (two instances on one host
 * must differ: the later one would fence the other). */
static void instance_txid(const cor_daemon_opts *o, const char *given, char *out, size_t len)
{
    if (given) {
        snprintf(out, len, "%s", given);
        return;
    }
    char inst[320];
    if (o->instance) {
        snprintf(inst, sizeof(inst), "%s", o->instance);
    } else {
        char host[256];
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        const char *port = o->http ? strrchr(o->http, ':') : NULL;
        snprintf(inst, sizeof(inst), "%s%s", host, port ? port : "");
    }
    snprintf(out, len, "%s/%s", o->group_id, inst);
}

/* "ADDR:PORT" (the last colon splits, so "[::1]:9108" works without brackets
 * being stripped: evhttp takes "::1"). */
static int split_addr(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon)
        return -1;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    const char *h = s;
    size_t n = (size_t)(colon - s);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (*end || p <= 0 || p > 65535 || n == 0 || n >= hostlen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (uint16_t)p;
    return 0;
}

int cor_daemon_run(const cor_daemon_opts *o)
{
    char err[512];
    int rc = 1;
    daemon_ctx d;
    memset(&d, 0, sizeof(d));
    d.o = o;
    struct event_base *base = NULL;
    cor_http *http = NULL;
    cor_http_tokens *tokens = NULL;
    rd_kafka_t *cons = NULL, *reader = NULL;
    psb_event *ev = psb_event_new();
    cor_buf b = {0};
    char web[4096]; /* the dashboard directory: must outlive the server */
    /* Before anything slow (rules, brokers): a SIGHUP from a supervisor during
     * start-up must queue a reload, not kill the process. */
    cor_daemon_signals();
    cor_ruleset *rs = load(o);
    if (!rs)
        goto out;
    logf_(o, "%zu rules loaded (%zu refused)", rs->n_rules, rs->n_errors);
    cor_kpi_config *kc = o->config ? cor_config_kpi(o->config, err, sizeof(err)) : NULL;
    if (o->config && !kc) {
        logf_(o, "kpi: %s", err);
        goto out;
    }
    d.kpi = cor_kpi_new(kc);
    d.store = cor_incstore_new();
    d.e = cor_engine_new(rs, &o->engine);
    d.rs = rs;

    rd_kafka_conf_t *pc = base_conf(o, CONF_PRODUCER, err, sizeof(err));
    if (!pc || set(pc, "enable.idempotence", "true", err, sizeof(err))) {
        logf_(o, "producer config: %s", err);
        if (pc)
            rd_kafka_conf_destroy(pc);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_conf_set_opaque(pc, &d);
    d.prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    if (!d.prod) {
        logf_(o, "producer: %s", err);
        goto out;
    }
    /* Before any other handle on that topic: an existing handle keeps its conf. */
    rd_kafka_topic_conf_t *utc = rd_kafka_topic_conf_new();
    if (rd_kafka_topic_conf_set(utc, "message.timeout.ms", COR_DAEMON_UPDATE_TIMEOUT_MS, err,
                                sizeof(err)) != RD_KAFKA_CONF_OK) {
        logf_(o, "updates topic config: %s", err);
        rd_kafka_topic_conf_destroy(utc);
        goto out;
    }
    d.upd_rkt = rd_kafka_topic_new(d.prod, o->topic_updates, utc);
    if (!d.upd_rkt) {
        logf_(o, "topic %s: %s", o->topic_updates, rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    rd_kafka_conf_t *cc = base_conf(o, CONF_CONSUMER, err, sizeof(err));
    if (!cc || set(cc, "group.id", o->group_id, err, sizeof(err)) ||
        set(cc, "enable.auto.commit", "false", err, sizeof(err)) ||
        set(cc, "auto.offset.reset", "earliest", err, sizeof(err))) {
        logf_(o, "consumer config: %s", err);
        if (cc)
            rd_kafka_conf_destroy(cc);
        goto out;
    }
    rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
    rd_kafka_conf_set_opaque(cc, &d);
    cons = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    if (!cons) {
        logf_(o, "consumer: %s", err);
        goto out;
    }
    rd_kafka_poll_set_consumer(cons);
    d.cons = cons;
    /* The reader takes partitions by assignment, never joins a group and never
     * commits: every instance reads the three topics whole, from the start. */
    rd_kafka_conf_t *rc_ = base_conf(o, CONF_CONSUMER, err, sizeof(err));
    if (!rc_ || set(rc_, "group.id", "pasban-correlator-reader", err, sizeof(err)) ||
        set(rc_, "enable.auto.commit", "false", err, sizeof(err)) ||
        set(rc_, "enable.auto.offset.store", "false", err, sizeof(err)) ||
        /* incidents are produced in transactions: an aborted one is never read */
        set(rc_, "isolation.level", "read_committed", err, sizeof(err))) {
        logf_(o, "reader config: %s", err);
        if (rc_)
            rd_kafka_conf_destroy(rc_);
        goto out;
    }
    reader = rd_kafka_new(RD_KAFKA_CONSUMER, rc_, err, sizeof(err));
    if (!reader) {
        logf_(o, "reader: %s", err);
        goto out;
    }
    rd_kafka_poll_set_consumer(reader);
    if (assign_whole(&d, reader) != 0 ||
        (d.n_state_parts = topic_partitions(&d, o->topic_state)) == 0) {
        if (stop_flag) {
            logf_(o, "stopped during start-up");
            rc = 0;
        }
        goto out;
    }
    /* The state reader: one state partition at a time, by assignment, to its end. */
    rd_kafka_conf_t *sc = base_conf(o, CONF_CONSUMER, err, sizeof(err));
    if (!sc || set(sc, "group.id", "pasban-correlator-state", err, sizeof(err)) ||
        set(sc, "enable.auto.commit", "false", err, sizeof(err)) ||
        set(sc, "enable.auto.offset.store", "false", err, sizeof(err)) ||
        set(sc, "enable.partition.eof", "true", err, sizeof(err)) ||
        set(sc, "fetch.wait.max.ms", "10", err, sizeof(err)) ||
        set(sc, "isolation.level", "read_committed", err, sizeof(err))) {
        logf_(o, "state reader config: %s", err);
        if (sc)
            rd_kafka_conf_destroy(sc);
        goto out;
    }
    d.sreader = rd_kafka_new(RD_KAFKA_CONSUMER, sc, err, sizeof(err));
    if (!d.sreader) {
        logf_(o, "state reader: %s", err);
        goto out;
    }
    rd_kafka_poll_set_consumer(d.sreader);
    /* The transactional producer. transactional.id: kafka.properties', else
     * GROUP/INSTANCE -- stable across restarts, so a restarted instance fences its
     * killed predecessor and aborts its open transaction at once. */
    rd_kafka_conf_t *tc = base_conf(o, CONF_TXN, err, sizeof(err));
    char txid[512];
    const char *given = NULL, *pk, *pv;
    size_t nprops = cor_config_property(o->config, 0, &pk, &pv);
    for (size_t i = 0; i < nprops; i++) {
        cor_config_property(o->config, i, &pk, &pv);
        if (strcmp(pk, "transactional.id") == 0)
            given = pv;
    }
    if (!tc) {
        logf_(o, "transactional producer config: %s", err);
        goto out;
    }
    instance_txid(o, given, txid, sizeof(txid));
    if (set(tc, "transactional.id", txid, err, sizeof(err))) {
        logf_(o, "transactional producer config: %s", err);
        rd_kafka_conf_destroy(tc);
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(tc, on_delivery);
    rd_kafka_conf_set_opaque(tc, &d);
    d.txp = rd_kafka_new(RD_KAFKA_PRODUCER, tc, err, sizeof(err));
    if (!d.txp) {
        logf_(o, "transactional producer: %s", err);
        goto out;
    }
    for (;;) {
        rd_kafka_error_t *te = rd_kafka_init_transactions(d.txp, 5000);
        if (!te)
            break;
        bool retry = rd_kafka_error_is_retriable(te) && !stop_flag;
        txn_log_error(&d, "init", te);
        rd_kafka_error_destroy(te);
        if (!retry) {
            if (stop_flag) {
                logf_(o, "stopped during start-up");
                rc = 0;
            }
            goto out;
        }
    }
    logf_(o, "transactional.id %s; window state in %s (%d partitions)", txid, o->topic_state,
          d.n_state_parts);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, o->topic_in, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t serr = rd_kafka_subscribe(cons, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (serr) {
        logf_(o, "subscribe %s: %s", o->topic_in, rd_kafka_err2str(serr));
        goto out;
    }

    if (o->http) {
        char host[256];
        uint16_t port;
        if (split_addr(o->http, host, sizeof(host), &port) != 0) {
            logf_(o, "--http wants ADDR:PORT, not %s", o->http);
            goto out;
        }
        tokens = cor_config_tokens(o->config, err, sizeof(err));
        if (!tokens) {
            logf_(o, "tokens: %s", err);
            goto out;
        }
        const char *web_root = o->web_root;
        if (!web_root && cor_http_default_web_root(web, sizeof(web)) == 0)
            web_root = web;
        base = event_base_new();
        cor_http_config hc = {d.kpi,
                              d.store,
                              tokens,
                              web_root,
                              publish_update,
                              &d,
                              metrics,
                              &d,
                              o->config ? o->config->at_max_future_ms : 0};
        http = base ? cor_http_new(base, host, port, &hc) : NULL;
        if (!http) {
            logf_(o, "cannot listen on %s", o->http);
            goto out;
        }
        d.http = http;
        if (!o->config || !o->config->tokens)
            logf_(o, "no tokens configured (-c FILE, \"tokens\"): the API and /metrics answer "
                     "401 to everyone");
        logf_(o, "HTTP on %s (dashboard %s)", o->http, web_root ? web_root : "not installed");
    }

    logf_(o, "consuming %s as group %s, incidents to %s; reading %s, %s, %s whole", o->topic_in,
          o->group_id, o->topic_out, o->topic_out, o->topic_updates, o->topic_kpi);

    int64_t last_forget = psb_now_ms(), last_kpi = last_forget;
    int64_t kpi_every = o->kpi_interval_ms > 0 ? o->kpi_interval_ms : 10000;
    rc = 0;
    while (!stop_flag) {
        if (d.need_rewind && !d.broken && rewind_all(&d, cons) != 0)
            d.broken = true;
        if (d.broken) {
            logf_(o, "cannot go on without losing or doubling incidents: stopping");
            rc = 1;
            break;
        }
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
                if (produce_new(&d, NULL, &b) != 0)
                    txn_abort(&d);
                txn_commit(&d, cons);
                cor_engine *ne = cor_engine_new(nrs, &o->engine);
                size_t carried = carry_over(&d, ne);
                cor_engine_free(d.e);
                cor_ruleset_free(rs);
                rs = nrs;
                d.e = ne;
                d.rs = rs;
                if (d.in_txn) /* an abort comes back to the carried-over state */
                    cor_engine_checkpoint(ne);
                d.reloads++;
                logf_(o, "reloaded: %zu rules (%zu groups carried over)", rs->n_rules, carried);
                continue;
            }
        }
        size_t side = read_whole(&d, reader);
        /* Short waits while the whole-read topics still have data, so startup
         * catches up on them quickly. */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, side ? 0 : 100);
        bool got = false;
        if (m && d.need_rewind) {
            /* an abort during this poll (rebalance): it is read again after the rewind */
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m) {
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    logf_(o, "consume: %s", rd_kafka_message_errstr(m));
            } else if (txn_open(&d) == 0) {
                got = true;
                psb_parse_opts po;
                memset(&po, 0, sizeof(po));
                po.received_ms = psb_now_ms();
                po.own_events = m->len && ((const char *)m->payload)[0] == '{';
                /* A raw line's operator is its message key, as the collector
                 * keys pasban.events (design.md, "Kafka"). */
                if (!po.own_events && m->key_len > 0 && m->key_len <= COR_KPI_MAX_ID_LEN)
                    po.organization_id = psb_str_make(m->key, m->key_len);
                if (psb_parse(&po, m->payload, m->len, ev) != 0)
                    d.parse_failures++;
                /* Every incident needs an operator (the store refuses one without);
                 * an untagged event belongs to the collector's default name. */
                if (!ev->organization_id.ptr)
                    ev->organization_id = PSB_STR_LIT("unassigned");
                note_partition(&d, m->partition);
                cor_engine_set_source(d.e, m->partition);
                d.events++;
                d.txn_events++;
                cor_kpi_on_psb_event_part(d.kpi, m->partition, ev);
                cor_engine_process(d.e, ev);
            }
            rd_kafka_message_destroy(m);
            if (got && produce_new(&d, ev, &b) != 0)
                txn_abort(&d);
        }
        rd_kafka_poll(d.prod, 0); /* delivery reports answer held HTTP requests */
        rd_kafka_poll(d.txp, 0);
        if (base)
            event_base_loop(base, EVLOOP_NONBLOCK);
        int64_t now = psb_now_ms();
        /* Idle, or the batch is old enough: incidents become visible to
         * read_committed readers at the commit. */
        if (d.in_txn && (!got || now - d.txn_since >= COR_DAEMON_TXN_MS))
            txn_commit(&d, cons);
        if (now - last_forget >= 1000) {
            cor_engine_forget(d.e);
            last_forget = now;
        }
        if (now - last_kpi >= kpi_every) {
            publish_kpi(&d);
            last_kpi = now;
        }
    }
    d.stopping = true; /* the API takes no more updates */
    if (rc == 0) {
        stopping(&d); /* the stop's waits are measured from here at the latest */
        if (produce_new(&d, NULL, &b) != 0)
            txn_abort(&d);
        /* Brokers out of reach: given up after COR_DAEMON_STOP_TXN_MS, not an
         * error (nothing committed is lost; exit 0). */
        if (txn_commit(&d, cons) != 0 && !d.unreachable)
            rc = 1;
        /* No commit just now (nothing was open): a metadata request says whether
         * the drain and the group's graceful leave have anyone to talk to. */
        const struct rd_kafka_metadata *md = NULL;
        if (!d.unreachable && psb_now_ms() - d.last_commit > 2000 &&
            rd_kafka_metadata(cons, 0, NULL, &md, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            logf_(o, "stopping: brokers out of reach (no metadata in 1 s)");
            d.unreachable = true;
        }
        if (md)
            rd_kafka_metadata_destroy(md);
        if (!d.unreachable)
            publish_kpi(&d);
        /* Deliveries answer the held HTTP requests: keep the loop turning. */
        int64_t until = wait_end(&d, psb_now_ms(), COR_DAEMON_DRAIN_MS, COR_DAEMON_STOP_MS);
        while (!d.unreachable && rd_kafka_outq_len(d.prod) > 0 && psb_now_ms() < until) {
            rd_kafka_poll(d.prod, 50);
            if (base)
                event_base_loop(base, EVLOOP_NONBLOCK);
        }
    } else {
        txn_abort(&d);
    }
    logf_(o, "stopping after %llu events", (unsigned long long)d.events);
out:
    d.stopping = true;
    stopping(&d);
    if (cons)
        close_consumer(&d, cons);
    /* The readers never join a group nor commit: nothing to leave gracefully. */
    if (reader)
        rd_kafka_destroy_flags(reader, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (d.sreader)
        rd_kafka_destroy_flags(d.sreader, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (d.txp) {
        if (d.in_txn && !d.unreachable)
            txn_abort(&d);
        rd_kafka_destroy(d.txp);
    }
    if (d.prod && !d.unreachable) {
        int64_t left = wait_end(&d, psb_now_ms(), 5000, COR_DAEMON_STOP_MS) - psb_now_ms();
        if (left > 0)
            rd_kafka_flush(d.prod, (int)left);
    }
    if (http) {
        /* What Kafka did not confirm by now is answered 503, and the answers
         * are written out before the server goes. */
        size_t held = cor_http_held(http);
        if (held)
            logf_(o, "%zu update requests without a delivery report: answered 503", held);
        cor_http_fail_held(http, "shutting down before Kafka confirmed the update");
        for (int i = 0; i < 40 && cor_http_unsent(http) > 0; i++) {
            struct timeval tv = {0, 25000};
            event_base_loopexit(base, &tv);
            event_base_dispatch(base);
        }
        d.http = NULL;
    }
    if (d.upd_rkt)
        rd_kafka_topic_destroy(d.upd_rkt);
    if (d.prod)
        rd_kafka_destroy(d.prod);
    cor_http_free(http);
    if (base)
        event_base_free(base);
    cor_http_tokens_free(tokens);
    for (size_t i = 0; i < d.n_pending; i++)
        cor_inc_update_release(&d.pending[i]);
    free(d.pending);
    for (size_t i = 0; i < d.n_pub; i++)
        free(d.pub[i].op);
    free(d.pub);
    free(d.touched);
    cor_buf_free(&d.skey);
    if (d.revoked)
        rd_kafka_topic_partition_list_destroy(d.revoked);
    cor_buf_free(&b);
    psb_event_free(ev);
    cor_engine_free(d.e);
    cor_incstore_free(d.store);
    cor_kpi_free(d.kpi);
    cor_ruleset_free(rs);
    return rc;
}
