/* cor_kpi.h -- the KPI engine: per operator and calendar month (UTC), and per day,
 * in event time (design.md, "KPIs").
 *
 * The engine knows nothing of rules or Kafka: it is fed through four narrow calls
 * (events, incidents, incident updates, latency samples) and computes every KPI of
 * cor_kpi_list.h when asked. Same inputs in the same order give the same bytes.
 *
 * Definitions (the README repeats them for the task force):
 * - An incident belongs to the period of its first_seen.
 * - MTTD = detected_at - first_seen. MTTA = first update of any kind - detected_at
 *   (any action on an incident means someone looked at it). MTTC = contained -
 *   detected_at, MTTR = resolved - detected_at. Means over the incidents that have
 *   the time, false positives excluded (except for MTTD and MTTA).
 * - % within SLA: of the period's incidents that are not false positives, those
 *   resolved no later than detected_at + the SLA of their severity. Open ones count
 *   as not (yet) within.
 * - % reported in time: of the period's incidents at or above report_min_severity
 *   that are not false positives, those reported no later than detected_at +
 *   report_window.
 * - Coverage: a designated source is reporting if it sent an event in the 24 h of
 *   event time before min(end of period, latest event time the engine has seen);
 *   a period that starts after that latest time has no coverage yet (null).
 * - Targets: per operator and KPI ("coverage_pct": ">= 95"); the record shows the
 *   target, the actual value, met or not, and the change since the previous period.
 */
#ifndef COR_KPI_H
#define COR_KPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cor_json.h"
#include "cor_kpi_list.h"

enum cor_kpi_kind { COR_KPI_COUNT, COR_KPI_PCT, COR_KPI_SECONDS };

/* COR_KPI_<name>: index of each KPI in cor_kpi_values.v and the name tables. */
enum cor_kpi_id {
#define COR_KPI_X_ENUM(name, kind, family, label, help) COR_KPI_##name,
    COR_KPI_LIST(COR_KPI_X_ENUM)
#undef COR_KPI_X_ENUM
        COR_KPI__N
};

/* One KPI value; set is false when there is nothing to average (no incidents,
 * no designated sources): printed as null, an empty CSV cell, no metric sample. */
typedef struct cor_kpi_val {
    double v;
    bool set;
} cor_kpi_val;

/* The KPIs of one (operator, period), one named field each. */
typedef struct cor_kpi_values {
#define COR_KPI_X_FIELD(name, kind, family, label, help) cor_kpi_val name;
    COR_KPI_LIST(COR_KPI_X_FIELD)
#undef COR_KPI_X_FIELD
} cor_kpi_values;

/* Name, kind, Prometheus family and label, help of KPI i (0 <= i < COR_KPI__N). */
const char *cor_kpi_name(int i);
int cor_kpi_kind_of(int i);
const char *cor_kpi_family(int i);
const char *cor_kpi_label(int i);
const char *cor_kpi_help(int i);
/* Index of a KPI by name, or -1. */
int cor_kpi_lookup(const char *name);
/* Field i of v (generic access to the named fields). */
cor_kpi_val *cor_kpi_values_at(cor_kpi_values *v, int i);

/* Limits. */
#define COR_KPI_MAX_OPERATORS 4096
#define COR_KPI_MAX_SOURCES 4096 /* designated sources of one operator */
#define COR_KPI_MAX_ID_LEN 128   /* operator, rule, incident id, host */
#define COR_KPI_MAX_INCIDENTS 10000000

/* Configuration. Defaults (cor_kpi_config_default): SLA critical 4 h, high 24 h,
 * medium 72 h, low 7 d, info 7 d; report window 24 h (NIS2 early warning);
 * report_min_severity high. */
typedef struct cor_kpi_config cor_kpi_config;

cor_kpi_config *cor_kpi_config_new(void);
void cor_kpi_config_free(cor_kpi_config *c);
/* Load from JSON-with-comments text, either the object below or one holding it
 * under "kpi":
 *   {"sla": {"critical": "4h", "high": "24h", "medium": "72h", "low": "7d", "info": "7d"},
 *    "report_window": "24h", "report_min_severity": "high",
 *    "targets": {"coverage_pct": ">= 95"},              // every operator
 *    "operators": {"op-a": {"sources": ["gw1", "fw1"],
 *                           "targets": {"mttd_s": "<= 900"}}}}
 * Missing keys keep their defaults. Returns the config, or NULL with a message in err. */
cor_kpi_config *cor_kpi_config_parse(const char *text, size_t len, char *err, size_t errlen);
/* Severity name ("info".."critical") to 0..4, or -1. */
int cor_kpi_severity_from_name(const char *s);

typedef struct cor_kpi cor_kpi;

/* The engine takes ownership of cfg (NULL: defaults). */
cor_kpi *cor_kpi_new(cor_kpi_config *cfg);
void cor_kpi_free(cor_kpi *k);

/* One event of operator at event_time_ms from host (host.hostname, else
 * observer.ip; NULL if neither). Returns 0, or -1 if refused (limits, bad time). */
int cor_kpi_on_event(cor_kpi *k, const char *op, int64_t event_time_ms, const char *host,
                     bool is_parse_failure);

/* The same from a parsed event: organization.id (events without one count under
 * the operator "unassigned", so nothing is lost silently), @timestamp,
 * host.hostname else observer.ip, event.kind. */
struct psb_event;
int cor_kpi_on_psb_event(cor_kpi *k, const struct psb_event *ev);

/* The same, counted also for events partition part (>= 0; -1: not tracked), whose
 * counters go to the state topic (cor_kpi_state_*). */
int cor_kpi_on_psb_event_part(cor_kpi *k, int32_t part, const struct psb_event *ev);

/* An incident as the KPIs need it; strings are copied. */
typedef struct cor_kpi_incident {
    const char *id;
    const char *op;
    const char *rule_id;
    int severity;         /* 0 info .. 4 critical */
    const char *category; /* "class/type"; the class part is counted */
    int64_t first_seen;
    int64_t detected_at;
} cor_kpi_incident;

/* Returns 0, or -1 if refused; an id already known is ignored (returns 0) so a
 * replayed incident is counted once. */
int cor_kpi_on_incident(cor_kpi *k, const cor_kpi_incident *inc);
/* Status of an incident update: acknowledged, contained, resolved, false_positive,
 * reported. Only the first time of each status counts. The caller (the incident
 * store) has checked the transition. Returns -1 for an unknown id or status. */
int cor_kpi_on_update(cor_kpi *k, const char *incident_id, const char *status, int64_t at_ms);
/* A detection latency sample: an incident of op whose triggering event has event
 * time at_ms was produced latency_us after the event was received. */
void cor_kpi_on_latency(cor_kpi *k, const char *op, int64_t at_ms, int64_t latency_us);

/* Periods: "2026-11" (a month) or "2026-11-23" (a day). */
typedef struct cor_kpi_period {
    bool is_day;
    int64_t key; /* months since year 0 (y*12+m-1), or days since 1970-01-01 */
} cor_kpi_period;

int cor_kpi_period_parse(const char *s, cor_kpi_period *p);
/* Writes "YYYY-MM" or "YYYY-MM-DD" into buf (16 bytes). */
void cor_kpi_period_format(cor_kpi_period p, char *buf);
/* [from, to) in ms. */
void cor_kpi_period_bounds(cor_kpi_period p, int64_t *from, int64_t *to);
cor_kpi_period cor_kpi_period_prev(cor_kpi_period p);
/* The month of the latest event time seen (the current month in event time); the
 * month of the wall clock when nothing was seen. */
cor_kpi_period cor_kpi_current_month(const cor_kpi *k);

/* Compute the KPIs of (op, period). Returns 0, or -1 for an operator the engine
 * has never heard of (neither configured nor seen). */
int cor_kpi_compute(const cor_kpi *k, const char *op, cor_kpi_period p, cor_kpi_values *out);

/* Operators, configured and seen, in byte order of their ids. */
size_t cor_kpi_n_operators(const cor_kpi *k);
const char *cor_kpi_operator(const cor_kpi *k, size_t i);
/* A number that changes whenever an input about op arrives (0 for an unknown
 * operator): publish its records to pasban.kpi when it differs from the one last
 * published. */
uint64_t cor_kpi_generation(const cor_kpi *k, const char *op);

/* Scale-out. Each instance consumes only its partitions of pasban.events, so it
 * knows the event KPIs of the operators whose partitions it holds; incidents and
 * updates it reads whole. It publishes to pasban.kpi (key "op/period", a month)
 * the records of (op, month) for which cor_kpi_has_events is true, and imports
 * every record it reads there: outputs then show, for a month in which this
 * instance saw no events of op, the imported record instead of its own partial
 * one. Day-by-day records stay local. Import returns 0, or -1 for a malformed key
 * or record (the key must name the record's operator and month). */
bool cor_kpi_has_events(const cor_kpi *k, const char *op, cor_kpi_period p);
int cor_kpi_import_record(cor_kpi *k, const char *key, size_t key_len, const char *json,
                          size_t len);

/* Exactly once. The event counters of each (events partition, operator, day) --
 * events, parse failures, oldest and newest event time, and the last time of each
 * designated source seen -- are a record of the state topic, key suffix
 * "#kpi/OP/YYYY-MM-DD" (after "GROUP/P/"), written in the transaction that
 * consumed the events. Value, version 1, little-endian:
 *   "PSKS" u8 1 u8 0 u8 0 u8 0, i64 events, i64 parse_failures, i64 oldest ms,
 *   i64 newest ms (both INT64_MIN when events is 0), u32 n,
 *   n x (u8 len 1..128 + designated source name, i64 last ms) */
#define COR_KPI_STATE_PREFIX "#kpi/"
/* rec NULL: a tombstone (a day past the retention). */
typedef void (*cor_kpi_state_fn)(void *arg, int32_t part, const char *key, size_t key_len,
                                 const char *rec, size_t len);
/* Calls fn for each counter changed since the last export (every one if all),
 * and a tombstone for each one before the first day of the previous month of the
 * latest event time (dropped from the counters; the day's totals stay in memory).
 * Returns the number of calls. */
size_t cor_kpi_state_export(cor_kpi *k, bool all, cor_kpi_state_fn fn, void *arg);
/* Forget what changed (an aborted transaction: the counters are dropped and read
 * back). */
void cor_kpi_state_clear_dirty(cor_kpi *k);
/* Import the record of events partition part (key: the suffix from "#kpi/"): it
 * replaces what this engine holds for (part, op, day), the day's KPIs become the
 * sum over the partitions. 0, or -1 with the reason in why for a malformed,
 * truncated or unknown-version record (nothing changed). */
int cor_kpi_state_import(cor_kpi *k, int32_t part, const char *key, size_t key_len, const char *rec,
                         size_t len, char *why, size_t whylen);
/* Take the counters of events partition part (-1: every partition) out of the
 * days (a partition gone to another instance, or a rewind before reading them
 * back). Returns how many (partition, operator, day) counters were dropped. */
size_t cor_kpi_state_drop(cor_kpi *k, int32_t part);

/* Outputs, appended to b. */
/* The KPI record of (op, period): kpi values, change since the previous period,
 * targets, false positives per rule. -1 for an unknown operator. */
int cor_kpi_write_json(const cor_kpi *k, const char *op, cor_kpi_period p, cor_buf *b);
/* {"period": ..., "records": [record per operator]} for every operator. */
void cor_kpi_write_json_all(const cor_kpi *k, cor_kpi_period p, cor_buf *b);
/* Day-by-day records of a month for op:
 * {"operator":..,"period":..,"days":[{"period":day,"kpi":{..}}]} */
int cor_kpi_write_days_json(const cor_kpi *k, const char *op, cor_kpi_period month, cor_buf *b);
/* The monthly sheet: header row then one row per operator (only_op: just that
 * one, or NULL), RFC 4180 (CRLF, quoted where needed). */
void cor_kpi_write_csv(const cor_kpi *k, cor_kpi_period p, const char *only_op, cor_buf *b);
/* The replay report (--replay --kpi FILE): every month from the first to the
 * last event or incident seen, each with every operator's record and its days:
 * {"kpi_report_version": 2, "months": [{"period", "records": [...],
 *   "days": [{"operator", "period", "days": [...]}]}]} and a final newline. */
void cor_kpi_write_report(const cor_kpi *k, cor_buf *b);
/* Prometheus text format 0.0.4: each operator's current month KPIs as gauges
 * labelled {operator, period}, plus running totals since start. */
void cor_kpi_write_prometheus(const cor_kpi *k, cor_buf *b);

#endif
