/* col_ctx.h -- the collector daemon's shared state (private to collector/).
 *
 * Everything hangs off one col_ctx that the event loop's callbacks receive;
 * there are no mutable globals. One thread runs the loop; librdkafka's own
 * threads only ever talk to us through its main queue, which the loop polls.
 */
#ifndef COL_CTX_H
#define COL_CTX_H

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <librdkafka/rdkafka.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/socket.h>

#include "col_config.h"
#include "col_spool.h"
#include "pasban/ecs.h"
#include "pasban/event.h"

/* Counters per (input, operator), declared once and expanded into the struct,
 * the Prometheus names and their help text. */
#define COL_STATS(X)                                                                               \
    X(received, "Messages received")                                                               \
    X(parsed, "Messages parsed into events")                                                       \
    X(parse_failures, "Messages that could not be parsed (forwarded as pipeline_error)")           \
    X(delivered, "Events acknowledged by Kafka")                                                   \
    X(delivery_errors, "Events lost: refused by Kafka for good, or not spooled either")            \
    X(spooled, "Events written to the disk spool")                                                 \
    X(truncated, "Events too big for Kafka, sent as pipeline_error with event.original cut")       \
    X(udp_drops, "UDP datagrams dropped because Kafka and the spool were full")

/* Counters per input only: limits and connection life. */
#define COL_ISTATS(X)                                                                              \
    X(connections, "Connections accepted")                                                         \
    X(connections_refused, "Connections refused at the connection limit")                          \
    X(tls_refused, "TLS clients refused (handshake failed, no or unmapped certificate)")           \
    X(idle_timeouts, "Connections closed for idleness or a frame that never completed")            \
    X(oversized, "Messages or bodies over the size limit")                                         \
    X(framing_errors, "Framing errors (bad length, truncated frame at close)")                     \
    X(http_rejected, "HTTP requests refused (401, 400, 413, 503, ...)")                            \
    X(http_busy, "HTTP requests refused with 503: limits.max_http_pending already waiting")        \
    X(empty_datagrams, "Empty UDP datagrams: nothing to forward, dropped")                         \
    X(udp_kernel_drops, "Datagrams the kernel dropped before we read them (SO_RXQ_OVFL)")

enum { COL_TAG_STATS = 1, COL_TAG_HTTP = 2, COL_TAG_REPLAY = 3 };

typedef struct col_stats {
    int tag; /* COL_TAG_STATS: used as a Kafka message opaque */
    int input;
    char *op; /* operator id, owned; stable for the life of the daemon */
    size_t op_len;
#define COL_FIELD(name, help) uint64_t name;
    COL_STATS(COL_FIELD)
#undef COL_FIELD
    struct col_stats *next;
} col_stats;

typedef struct col_istats {
#define COL_FIELD(name, help) uint64_t name;
    COL_ISTATS(COL_FIELD)
#undef COL_FIELD
    uint64_t open; /* gauge: connections open now */
} col_istats;

typedef struct col_conn col_conn;
typedef struct col_ctx col_ctx;

/* One POST /v1/events waiting for the delivery reports of its events. */
typedef struct col_http_req {
    int tag; /* COL_TAG_HTTP: used as a Kafka message opaque */
    col_stats *st;
    col_ctx *c;
    struct evhttp_request *req; /* NULL once the client went away */
    size_t events;
    size_t outstanding; /* events without a delivery report yet */
    size_t failed;
    size_t spooled;  /* events that went to the spool: fsync before the reply */
    int submitting; /* still producing: do not reply yet */
} col_http_req;

struct col_ctx {
    col_config *cfg;
    struct event_base *base;
    psb_event *ev;
    psb_ecs_writer *ecs;

    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    rd_kafka_queue_t *mainq;
    int kpipe[2];
    struct event *kpipe_ev;
    struct event *tick_ev;
    size_t queue_max; /* librdkafka's queue.buffering.max.messages */
    size_t msg_max;   /* librdkafka's message.max.bytes: larger messages are refused */
    int kafka_up;     /* cleared on "all brokers down", set by a delivery */
    uint64_t replay_inflight;
    int64_t replay_backoff_until;
    uint64_t replayed;
    uint64_t replay_requeued;
    uint64_t replay_errors; /* spooled events Kafka refused for good: dropped */

    col_spool *spool;
    int64_t last_fsync_ms;
    uint64_t spool_errors;

    struct evconnlistener *listeners[COL_MAX_LISTEN];
    int listener_input[COL_MAX_LISTEN];
    size_t n_listeners;
    int udp_fds[COL_MAX_LISTEN];
    struct event *udp_evs[COL_MAX_LISTEN];
    size_t n_udp;
    char *udp_buf;
    uint32_t udp_ovfl_seen[COL_MAX_LISTEN];

    struct evhttp *http;
    struct evhttp_bound_socket *http_socks[COL_MAX_LISTEN];
    size_t n_http_socks;
    size_t http_pending;
    struct evhttp *metrics;

    SSL_CTX *ssl_ctx;

    col_conn *conns; /* every open TCP/TLS connection */
    size_t n_conns;
    col_conn *paused; /* connections waiting for room */

    col_stats *stats;
    col_istats istats[COL_INPUT_COUNT];

    struct event *sig_term, *sig_int, *sig_hup;
    int64_t batch_ms; /* receive time of the batch being ingested; 0 outside one */
    int stopping;
    int kafka_fatal; /* the producer hit a fatal error: drain, spool, exit 1 */
    int64_t stop_deadline_ms;
    int64_t log_last_ms[8];
    uint64_t log_suppressed[8];
};

/* Log slots for messages that could repeat per event or connection. */
enum {
    COL_LOG_LIMIT = 0,
    COL_LOG_KAFKA,
    COL_LOG_SPOOL,
    COL_LOG_TLS,
    COL_LOG_FRAME,
    COL_LOG_HTTP,
    COL_LOG_CONN,
    COL_LOG_UDP
};

void col_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* At most one line per second per slot; says how many were held back. */
void col_log_limited(col_ctx *c, int slot, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

col_stats *col_stats_get(col_ctx *c, int input, const char *op);
/* The operator of a peer address: the CIDR map, else the default operator. */
const char *col_op_for_addr(col_ctx *c, const struct sockaddr *sa);
void col_addr_text(const struct sockaddr *sa, char *buf, size_t len);

/* out.c: the Kafka producer, the spool and the replay. */
int col_out_start(col_ctx *c, char *err, size_t errlen);
void col_out_stop(col_ctx *c);
/* Room for n more events, in Kafka's queue or the spool? */
int col_out_has_room(col_ctx *c, size_t n, size_t bytes);
/* Parse one message and send it on. req (may be NULL) is the HTTP request waiting
 * for its delivery reports. Returns 0 (queued or spooled) or -1 when there is no
 * room anywhere (nothing was counted: retry the same message later). */
int col_ingest(col_ctx *c, col_stats *st, const char *msg, size_t len, const char *peer,
               col_http_req *req);
/* Send msg on as a pipeline_error event whose error.message is why, without
 * parsing it (a framing error: the bytes a reader gave up on). Returns as col_ingest. */
int col_ingest_error(col_ctx *c, col_stats *st, const char *msg, size_t len, const char *peer,
                     const char *why);
void col_out_tick(col_ctx *c);
int col_out_ready(col_ctx *c);
/* Block up to timeout_ms for deliveries, then spool what Kafka still holds. */
void col_out_drain(col_ctx *c, int64_t timeout_ms);

/* stream.c: TCP and TLS. */
int col_stream_listen(col_ctx *c, const col_listen *l, char *err, size_t errlen);
int col_tls_setup(col_ctx *c, char *err, size_t errlen);
void col_stream_resume(col_ctx *c);
void col_stream_stop(col_ctx *c);

/* udp.c */
int col_udp_listen(col_ctx *c, const col_listen *l, char *err, size_t errlen);
void col_udp_stop(col_ctx *c);

/* http.c: ingestion and the metrics/health endpoints. */
int col_http_listen(col_ctx *c, const col_listen *l, char *err, size_t errlen);
int col_metrics_listen(col_ctx *c, char *err, size_t errlen);
void col_http_stop_accepting(col_ctx *c);
void col_http_free(col_ctx *c);
/* A delivery report (or spool write) settled one event of req. ok=0: it failed. */
void col_http_settle(col_ctx *c, col_http_req *req, int ok);
/* Split an HTTP body into JSON objects (one, an array of them, or NDJSON).
 * Calls back with each object's slice; returns the count, or -1 with err. */
typedef int (*col_json_each_fn)(void *arg, const char *obj, size_t len);
long col_json_split(const char *body, size_t len, size_t max_objects, col_json_each_fn fn,
                    void *arg, char *err, size_t errlen);

#endif
