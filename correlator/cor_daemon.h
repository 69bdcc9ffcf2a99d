/* cor_daemon.h -- pasban-correlator as a Kafka consumer (design.md, "Kafka").
 *
 * First version: one consumer in group `group_id` on `topic_in` (Pasban event
 * JSON, or raw lines), the engine in event time, each new incident produced to
 * `topic_out` with key = incident id (idempotent producer, acks=all). Offsets
 * are committed only when every incident produced so far has been delivered:
 * at least once. SIGHUP loads the rules aside and swaps them in whole when the
 * new set loads without a refused rule; otherwise the old set stays and the
 * reason is logged. SIGTERM/SIGINT stop after a final flush and commit.
 * With `http`, GET /metrics serves per-rule counters in the Prometheus text
 * format (served between polls, so within ~200 ms).
 */
#ifndef COR_DAEMON_H
#define COR_DAEMON_H

#include <stdio.h>

#include "cor_engine.h"

typedef struct cor_daemon_opts {
    const char *brokers;
    const char *rules;
    const char *group_id;  /* default "pasban-correlator" */
    const char *topic_in;  /* default "pasban.events" */
    const char *topic_out; /* default "pasban.incidents" */
    const char *http;      /* ADDR:PORT for GET /metrics, or NULL */
    cor_engine_opts engine;
    FILE *log;
} cor_daemon_opts;

/* Runs until SIGTERM/SIGINT. Returns the exit code: 0, or 1 on a fatal error
 * (rules unreadable, Kafka client creation, an incident that could not be
 * delivered -- its offsets are then not committed). */
int cor_daemon_run(const cor_daemon_opts *o);

#endif
