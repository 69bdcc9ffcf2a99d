/* cor_http.h -- the correlator's HTTP side (libevent evhttp): incident API, KPI
 * API and CSV, Prometheus /metrics, and the dashboard page.
 *
 *   GET  /api/whoami                      {"role": "regulator"|"operator", "operator"?}
 *   GET  /api/incidents?operator=&status=&severity=&category=&from=&to=&offset=&limit=
 *        status may also be "open" (neither resolved nor false positive) or
 *        "reported"; from/to bound first_seen (RFC 3339); limit <= 1000 (default 50)
 *   GET  /api/incidents/{id}
 *   POST /api/incidents/{id}/status       {"status": ..., "at"?: RFC 3339, "note"?: ...}
 *        at: when it happened (default now), from the incident's detection up to
 *        at_max_future past the server's clock (else 422); note at most
 *        COR_INCSTORE_MAX_NOTE bytes (else 422). The record also carries
 *        received_at, the server's time when it took the request.
 *   GET  /api/kpi?operator=&period=2026-11   (period a month or a day; default: the
 *        current month in event time). With operator: that record; without:
 *        {"period", "records": [...]} of every operator the token may see
 *   GET  /api/kpi/days?operator=&period=2026-11   day-by-day KPIs of a month
 *   GET  /api/kpi.csv?period=2026-11       the monthly sheet
 *   GET  /metrics                          Prometheus text 0.0.4
 *   GET  /, /<file>                        the dashboard, from web_root
 *
 * Access: every /api and /metrics request carries `Authorization: Bearer TOKEN`.
 * An operator's token sees and changes only that operator's incidents and KPIs
 * (another operator's incident is "not found"); the regulator's token reads
 * everything and changes nothing. The page itself needs no token (it asks for one).
 * Errors are 4xx/5xx with {"error": "..."}.
 *
 * Updates: with a publish hook (the daemon's: produce to pasban.incident-updates)
 * a valid POST is handed to the hook and the request is held until the hook's
 * owner reports the delivery (cor_http_update_done): 202 once Kafka has the
 * update, 503 {"error"} if it could not take it. The update is applied when it
 * comes back from Kafka, on every instance alike. At most COR_HTTP_MAX_HELD
 * requests wait at once (503 past it). A client that hangs up while its request
 * waits costs nothing: the delivery report then finds no one to answer. Without
 * a hook (tests, a single instance) it is applied to the store and the KPI
 * engine at once: 200.
 *
 * The process must ignore SIGPIPE: a reply to a client that has gone writes to a
 * closed socket (the daemon ignores it).
 */
#ifndef COR_HTTP_H
#define COR_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "cor_incstore.h"
#include "cor_kpi.h"

struct event_base;

#define COR_HTTP_MAX_TOKENS 4096
#define COR_HTTP_MAX_BODY 16384                   /* bytes of a request body */
#define COR_HTTP_MAX_PAGE 1000                    /* incidents in one page */
#define COR_HTTP_MAX_HELD 1024                    /* POSTs waiting for their delivery report */
#define COR_HTTP_AT_MAX_FUTURE_MS (5 * 60 * 1000) /* default bound of an update's "at" */

/* Bearer tokens. */
typedef struct cor_http_tokens cor_http_tokens;
cor_http_tokens *cor_http_tokens_new(void);
void cor_http_tokens_free(cor_http_tokens *t);
/* op NULL: a regulator token. Returns 0, or -1 (empty or too long token, limit). */
int cor_http_tokens_add(cor_http_tokens *t, const char *token, const char *op);
/* {"tokens": [{"token": "...", "operator": "op-a"}, {"token": "...", "role": "regulator"}]}
 * (or the array alone). Returns the set or NULL with a message in err. */
cor_http_tokens *cor_http_tokens_parse(const char *text, size_t len, char *err, size_t errlen);

/* Hand an update to Kafka. op is the incident's operator (the message key).
 * ticket names the held request: when 0 is returned, cor_http_update_done(h,
 * ticket, ...) must follow exactly once, later, on the event loop's thread.
 * Returns 0 when queued, -1 with a reason (then the client gets 503 at once). */
typedef int (*cor_http_publish_fn)(void *arg, const cor_inc_update *u, const char *op,
                                   uint64_t ticket, char *err, size_t errlen);

typedef struct cor_http_config {
    cor_kpi *kpi;                  /* borrowed; updates applied here without a hook */
    cor_incstore *store;           /* borrowed */
    const cor_http_tokens *tokens; /* borrowed */
    const char *web_root;          /* directory of the dashboard files, or NULL */
    cor_http_publish_fn publish;   /* or NULL: apply directly */
    void *publish_arg;
    /* Appends more metric families to /metrics after the KPIs' (the daemon's
     * per-rule counters), or NULL. */
    void (*metrics)(void *arg, cor_buf *b);
    void *metrics_arg;
    int64_t at_max_future_ms; /* how far past now an update's "at" may be; 0: the default */
} cor_http_config;

typedef struct cor_http cor_http;

/* Listen on addr:port (port 0: any free port, see cor_http_port). The config is
 * copied; what it points to must outlive the server. NULL if it cannot bind. */
cor_http *cor_http_new(struct event_base *base, const char *addr, uint16_t port,
                       const cor_http_config *cfg);
uint16_t cor_http_port(const cor_http *h);
/* Requests still held open are dropped without an answer: fail them first
 * (cor_http_fail_held) and let the loop send the answers. */
void cor_http_free(cor_http *h);

/* The delivery of a published update: err NULL, delivered (202 with the update);
 * else 503 {"error": "...err..."}. An unknown ticket (answered already, or its
 * client gone) is ignored. */
void cor_http_update_done(cor_http *h, uint64_t ticket, const char *err);
/* Requests held for a delivery report now. */
size_t cor_http_held(const cor_http *h);
/* Answer every held request 503 with reason (shutting down). */
void cor_http_fail_held(cor_http *h, const char *reason);
/* Answers to held requests handed to libevent but not yet written out. */
size_t cor_http_unsent(const cor_http *h);

/* The dashboard directory next to the program: <dir of exe>/../share/pasban/web,
 * written into buf. Returns 0, or -1 if it does not exist. */
int cor_http_default_web_root(char *buf, size_t len);

#endif
