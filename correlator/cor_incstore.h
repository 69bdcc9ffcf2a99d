/* cor_incstore.h -- incidents by id and their lifecycle (design.md, "Incidents").
 *
 * The store takes incidents as the JSON records of pasban.incidents and updates
 * as the records of pasban.incident-updates, so every correlator instance that
 * reads both topics holds the same incidents in the same states.
 *
 * Lifecycle. `status` is one of new, acknowledged, contained, resolved,
 * false_positive; being reported to the national CERT is a separate fact
 * (`reported_at`), because a reported incident still has to be contained and
 * resolved. Valid updates:
 *
 *   acknowledged    from new
 *   contained       from new or acknowledged
 *   resolved        from new, acknowledged or contained
 *   false_positive  from new, acknowledged or contained, and not once reported
 *   reported        once, from any status but false_positive (a report on a new
 *                   incident also makes it acknowledged: someone looked at it)
 *
 * Nothing goes back (a resolved incident is not reopened: a recurrence is a new
 * incident), the same status twice is refused, and an update may not be older
 * than the incident's detection or than the update before it. Each refusal comes
 * with a reason a user can read.
 */
#ifndef COR_INCSTORE_H
#define COR_INCSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cor_json.h"
#include "cor_kpi.h"

#define COR_INCSTORE_MAX_INCIDENTS 2000000
#define COR_INCSTORE_MAX_RECORD (64 * 1024)  /* bytes of one incident record */
#define COR_INCSTORE_MAX_UPDATES 64          /* updates of one incident */
#define COR_INCSTORE_MAX_NOTE 1024           /* bytes of a note */
#define COR_INCSTORE_MAX_UPDATE_RECORD 16384 /* bytes of one update record */
/* An update's id, organization.id and by are at most COR_KPI_MAX_ID_LEN bytes, its
 * note COR_INCSTORE_MAX_NOTE; an incident record's id, organization.id, rule.id and
 * category at most COR_KPI_MAX_ID_LEN. Past a limit a record is refused whole. An
 * update's strings must also be valid UTF-8. */

enum cor_inc_status {
    COR_INC_NEW,
    COR_INC_ACKNOWLEDGED,
    COR_INC_CONTAINED,
    COR_INC_RESOLVED,
    COR_INC_FALSE_POSITIVE,
    COR_INC_REPORTED /* an update only, never a status */
};
const char *cor_inc_status_name(int st);
/* -1 when s names no status. */
int cor_inc_status_from_name(const char *s);

typedef struct cor_incstore cor_incstore;

cor_incstore *cor_incstore_new(void);
void cor_incstore_free(cor_incstore *s);

/* Add an incident from its JSON record (len bytes). Returns 1 if added, 0 if the id
 * was already known (a replayed message), -1 with a reason in err for a record
 * without id, organization.id, rule.id, a known severity, first_seen or
 * detected_at, or past a limit. When kpi_out is not NULL and 1 is returned, it is
 * filled for cor_kpi_on_incident; its strings belong to the store. */
int cor_incstore_add_json(cor_incstore *s, const char *json, size_t len, cor_kpi_incident *kpi_out,
                          char *err, size_t errlen);

/* An update. Strings are borrowed. */
typedef struct cor_inc_update {
    const char *id;
    int status;          /* enum cor_inc_status, not NEW */
    int64_t at;          /* ms */
    const char *note;    /* or NULL */
    const char *by;      /* who asked (an operator id), or NULL */
    int64_t received_at; /* ms, when the API took it; 0: not recorded (older records) */
} cor_inc_update;

/* Are u's strings, and op (the incident's operator, may be NULL), within the
 * limits above and valid UTF-8? 0, or -1 with the reason in err. */
int cor_inc_update_check_limits(const cor_inc_update *u, const char *op, char *err, size_t errlen);

/* Would u be accepted? 0, or -1 with the reason in err. */
int cor_incstore_check(const cor_incstore *s, const cor_inc_update *u, char *err, size_t errlen);
/* Check, then apply. 0, or -1 with the reason in err (nothing changed). */
int cor_incstore_apply(cor_incstore *s, const cor_inc_update *u, char *err, size_t errlen);

/* The update record of pasban.incident-updates:
 * {"id":..., "organization":{"id":...}, "status":..., "at":"RFC 3339", "note":..., "by":...,
 *  "received_at":"RFC 3339"}
 * `at` is when the analyst says it happened; `received_at` when the API took it.
 * op is the incident's operator (the message key), may be NULL. */
void cor_inc_update_write(const cor_inc_update *u, const char *op, cor_buf *b);
/* Parse one. On success out->u points at strings out owns; release them with
 * cor_inc_update_release. Returns 0, or -1 with a reason in err and, when the
 * record or one of its strings is past its limit, out->over_limit set. */
typedef struct cor_inc_update_owned {
    cor_inc_update u;
    char *id, *note, *by;
    bool over_limit;
} cor_inc_update_owned;
int cor_inc_update_parse(const char *json, size_t len, cor_inc_update_owned *out, char *err,
                         size_t errlen);
void cor_inc_update_release(cor_inc_update_owned *o);

/* Read access. */
size_t cor_incstore_count(const cor_incstore *s);
/* Operator of an incident, or NULL if unknown. */
const char *cor_incstore_operator(const cor_incstore *s, const char *id);
/* Current status (enum cor_inc_status), or -1 if unknown. */
int cor_incstore_status(const cor_incstore *s, const char *id);
/* The record as stored, with "status" current, "reported_at" when reported, and
 * "updates": [{"status","at","note","by","received_at"}]. -1 if unknown. */
int cor_incstore_write_json(const cor_incstore *s, const char *id, cor_buf *b);

typedef struct cor_inc_query {
    const char *op;       /* NULL: any */
    int status;           /* enum cor_inc_status; -1 any; COR_INC_REPORTED: reported ones */
    bool open_only;       /* neither resolved nor false positive */
    int severity;         /* 0..4, -1 any */
    const char *category; /* "class" or "class/type"; NULL any */
    int64_t from, to;     /* first_seen in [from, to) */
    size_t offset, limit;
} cor_inc_query;

void cor_inc_query_init(cor_inc_query *q);
/* {"total": N, "offset": .., "limit": .., "incidents": [records, newest first_seen first]} */
void cor_incstore_query_json(const cor_incstore *s, const cor_inc_query *q, cor_buf *b);

#endif
