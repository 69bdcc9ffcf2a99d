/* cor_incident.h -- the incident record of design.md ("Incidents").
 *
 * An incident owns copies of everything it shows, so it outlives the events and
 * the group state that raised it. It is one allocation: the record, then its
 * strings (incidents come at up to one per event: seven mallocs each cost more
 * than the copying).
 */
#ifndef COR_INCIDENT_H
#define COR_INCIDENT_H

#include <stddef.h>
#include <stdint.h>

#include "cor_json.h"
#include "cor_rule.h"

#define COR_MAX_EVIDENCE 5

typedef struct cor_incident {
    const cor_rule *rule;
    char id[33];      /* hex of the first 16 bytes of SHA-256(rule id, group, first_seen) */
    char *org;        /* organization.id, or NULL */
    char *group_json; /* rendered object of the by fields, e.g. {"src":"1.2.3.4"} */
    int64_t first_seen, last_seen, detected_at;
    long count;
    long suppressed;
    char *evidence[COR_MAX_EVIDENCE];
    size_t evidence_len[COR_MAX_EVIDENCE];
    size_t n_evidence;
    uint64_t seq; /* order raised, to break ties in time order */
    /* engine-private: */
    void *owner;             /* the group that may still count on it */
    int64_t suppress_until;  /* its group's events before this are suppressed */
    uint64_t suppressed_seq; /* the last event counted as suppressed on it */
    uint64_t event_seq;      /* the event that raised it */
} cor_incident;

/* The maker of incident ids: OpenSSL's SHA-256 through EVP, fetched once, and one
 * digest context that every id reuses (an incident is raised for about one event in
 * twenty at 1000 rules). One per engine; not for two threads at once. */
typedef struct cor_idgen cor_idgen;

/* Aborts, after a message on stderr, if OpenSSL has no SHA-256 to give (a broken
 * installation or configuration: every id depends on it). */
cor_idgen *cor_idgen_new(void);
void cor_idgen_free(cor_idgen *g);
/* The id of rule r, the group key (org and by values) and first_seen into id (32 hex
 * digits and a NUL); an ordinal n > 0 (the n-th other incident with that same basis)
 * is hashed too. */
void cor_idgen_make_id(cor_idgen *g, char id[33], const cor_rule *r, int64_t first_seen,
                       const char *group_key, size_t key_len, unsigned ordinal);
/* The same into inc->id, of inc->rule and inc->first_seen. */
void cor_idgen_set_id(cor_idgen *g, cor_incident *inc, const char *group_key, size_t key_len,
                      unsigned ordinal);

/* A piece of evidence to copy into an incident. */
typedef struct cor_evidence {
    const char *p;
    size_t n;
} cor_evidence;

/* A zeroed incident of rule r with copies of org (org_len bytes; NULL: none), the
 * group object json (json_len bytes) and the first COR_MAX_EVIDENCE items of ev. */
cor_incident *cor_incident_new(const cor_rule *r, const char *org, size_t org_len, const char *json,
                               size_t json_len, const cor_evidence *ev, size_t n_ev);
/* Append the record as one line of JSON (no newline). */
void cor_incident_write(const cor_incident *inc, cor_buf *b);
void cor_incident_free(cor_incident *inc);

#endif
