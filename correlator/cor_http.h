/* cor_http.h -- the correlator's HTTP side (libevent evhttp): incident API, KPI
 * API and CSV, Prometheus /metrics, and the dashboard page.
 *
 *   GET  /api/whoami                      {"role": "regulator"|"operator", "operator"?}
 *   GET  /api/incidents?operator=&status=&severity=&category=&from=&to=&offset=&limit=
 *        status may also be "open" (neither resolved nor false positive) or
 *        "reported"; from/to bound first_seen (RFC 3339); limit <= 1000 (default 50)
 *   GET  /api/incidents/{id}
 *   POST /api/incidents/{id}/status       {"status": ..., "at"?: RFC 3339, "note"?: ...}
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
 * a valid POST is handed to the hook and answered 202; the update is applied when
 * it comes back from Kafka, on every instance alike. Without a hook (tests, a
 * single instance) it is applied to the store and the KPI engine at once: 200.
 */
#ifndef COR_HTTP_H
#define COR_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "cor_incstore.h"
#include "cor_kpi.h"

struct event_base;

#define COR_HTTP_MAX_TOKENS 4096
#define COR_HTTP_MAX_BODY 16384 /* bytes of a request body */
#define COR_HTTP_MAX_PAGE 1000  /* incidents in one page */

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
 * Returns 0 when queued, -1 with a reason (then the client gets 503). */
typedef int (*cor_http_publish_fn)(void *arg, const cor_inc_update *u, const char *op, char *err,
                                   size_t errlen);

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
} cor_http_config;

typedef struct cor_http cor_http;

/* Listen on addr:port (port 0: any free port, see cor_http_port). The config is
 * copied; what it points to must outlive the server. NULL if it cannot bind. */
cor_http *cor_http_new(struct event_base *base, const char *addr, uint16_t port,
                       const cor_http_config *cfg);
uint16_t cor_http_port(const cor_http *h);
void cor_http_free(cor_http *h);

/* The dashboard directory next to the program: <dir of exe>/../share/pasban/web,
 * written into buf. Returns 0, or -1 if it does not exist. */
int cor_http_default_web_root(char *buf, size_t len);

#endif
