/* cor_daemon.h -- pasban-correlator as a Kafka consumer (design.md, "Kafka").
 *
 * One consumer in group `group_id` on `topic_in` (Pasban event JSON, or raw
 * lines), the engine in event time, each new incident produced to `topic_out`
 * with key = incident id (idempotent producer, acks=all). Offsets are committed
 * only when every incident produced so far has been delivered: at least once.
 * SIGHUP loads the rules aside and swaps them in whole when the new set loads
 * without a refused rule; otherwise the old set stays and the reason is logged.
 * SIGTERM/SIGINT stop after a final flush and commit; a SIGHUP during start-up
 * is kept and reloads once the loop runs.
 *
 * Rebalances (a rebalance callback, eager or cooperative assignors): before
 * partitions are revoked the producer is flushed and the processed offsets are
 * committed synchronously, so the next owner starts after what was processed
 * and nothing is read twice. The groups (windows, chains, suppression) of the
 * operators whose events came from a partition that went elsewhere -- or whose
 * offsets could not be committed, so they will be read again -- are dropped.
 * The next owner starts those windows empty (no state topic yet).
 *
 * A second consumer, outside the group, reads `topic_out`, `topic_updates` and
 * `topic_kpi` whole from the start into the incident store and the KPI engine,
 * so every instance holds every operator's incidents and KPIs. Events feed the
 * KPI engine too; every `kpi_interval_ms` the records of operators whose KPIs
 * changed go to `topic_kpi` (key "op/YYYY-MM"). With `http`, cor_http serves the
 * API, the dashboard and /metrics (the KPIs' and the daemon's counters) between
 * polls; a status change is produced to `topic_updates` and applied when read
 * back.
 */
#ifndef COR_DAEMON_H
#define COR_DAEMON_H

#include <stdio.h>

#include "cor_engine.h"

typedef struct cor_daemon_opts {
    const char *brokers;
    const char *rules;
    const char *group_id;            /* default "pasban-correlator" */
    const char *topic_in;            /* default "pasban.events" */
    const char *topic_out;           /* default "pasban.incidents" */
    const char *topic_updates;       /* default "pasban.incident-updates" */
    const char *topic_kpi;           /* default "pasban.kpi" */
    const char *topic_state;         /* default "pasban.state" */
    const char *instance;            /* stable name; NULL: host name [+ ":" http port] */
    const char *http;                /* ADDR:PORT of the API, dashboard and /metrics, or NULL */
    const char *web_root;            /* dashboard files, or NULL: cor_http_default_web_root */
    long kpi_interval_ms;            /* KPI records published at most this often; 0: 10 s */
    const struct cor_config *config; /* -c FILE (kafka properties, tokens, kpi), or NULL */
    cor_engine_opts engine;
    FILE *log;
} cor_daemon_opts;

/* Handle SIGHUP (reload), SIGTERM and SIGINT (stop) by setting flags the loop
 * reads, and ignore SIGPIPE. cor_daemon_run calls it first; main may call it
 * earlier, so that a signal during start-up is queued rather than fatal. */
void cor_daemon_signals(void);

/* Runs until SIGTERM/SIGINT. Returns the exit code: 0, or 1 on a fatal error
 * (rules unreadable, Kafka client creation, an incident that could not be
 * delivered -- its offsets are then not committed). */
int cor_daemon_run(const cor_daemon_opts *o);

#endif
