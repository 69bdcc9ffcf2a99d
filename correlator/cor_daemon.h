/* cor_daemon.h -- pasban-correlator as a Kafka consumer (design.md, "Kafka").
 *
 * One consumer in group `group_id` on `topic_in` (Pasban event JSON, or raw
 * lines), the engine in event time. Exactly once: per batch one Kafka
 * transaction (transactional.id: kafka.properties', else group/instance) holds
 * the batch's incidents (to `topic_out`, key = incident id), the state records of
 * the groups it changed and tombstones of those it freed (to `topic_state`,
 * partition = the events partition, key "group/partition/rule-id/group-key"), and
 * the consumer's offsets; an error aborts it (flush first: librdkafka bug 4849)
 * and the loop rewinds to the committed offsets and state. SIGHUP loads the rules
 * aside and swaps them in whole when the new set loads without a refused rule,
 * carrying the windows of rules kept over by id; otherwise the old set stays and
 * the reason is logged. SIGTERM/SIGINT stop after a final commit; with the
 * brokers out of reach the open transaction is abandoned (logged; its events are
 * read again on the next start) and the group left without the graceful close,
 * so the stop takes seconds, not minutes. A SIGHUP during start-up is kept and
 * reloads once the loop runs.
 *
 * Rebalances (a rebalance callback, eager or cooperative assignors): before
 * partitions are revoked the open transaction commits; the groups of partitions
 * that went elsewhere are dropped (their records stay for the next owner), and
 * every partition assigned has its state read back from `topic_state` (from the
 * start to the end, read_committed) before its first event.
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

/* Runs until SIGTERM/SIGINT. Returns the exit code: 0 (also when the stop left a
 * transaction uncommitted: nothing committed is lost), or 1 on a fatal error
 * (rules unreadable, Kafka client creation, a transaction that could not be
 * committed or aborted, fenced by another instance, a restore that could not
 * read its state partition to the end). */
int cor_daemon_run(const cor_daemon_opts *o);

#endif
