/* cor_engine.h -- windows and state per rule kind; turns matches into incidents.
 *
 * Time is event time (@timestamp). The engine's clock, the watermark, is the
 * newest @timestamp of the parsed events seen so far (pipeline errors carry the
 * receive time, not an event time, so they do not move it). Semantics are
 * design.md's; the points it leaves open are settled in correlator/README.md
 * ("Semantics") and in the comments of cor_engine.c.
 *
 * Incidents are kept until the caller takes them: cor_engine_finish() orders
 * them by detected_at (ties in the order they were raised) so a replay prints
 * them in event-time order, and so that a suppressed count can still be added to
 * an incident after it was raised.
 */
#ifndef COR_ENGINE_H
#define COR_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cor_incident.h"
#include "cor_match.h"
#include "cor_rule.h"
#include "pasban/event.h"

#define COR_DEFAULT_MAX_GROUPS 100000 /* groups per rule; the oldest is evicted past it */
#define COR_DEFAULT_MAX_WINDOW 4096   /* events in one threshold window; the oldest drops */

typedef struct cor_engine_opts {
    size_t max_groups;
    size_t max_window;
    cor_match_opts match;
    /* Key of the group table's hash (SipHash); both 0: drawn at random per engine
     * (getrandom), so input cannot choose keys that collide. Nothing the engine
     * outputs depends on it: tests set it to show that. */
    uint64_t hash_key[2];
} cor_engine_opts;

typedef struct cor_engine cor_engine;

/* rs must outlive the engine. */
cor_engine *cor_engine_new(const cor_ruleset *rs, const cor_engine_opts *opts);
void cor_engine_free(cor_engine *e);

/* Feed one event (in arrival order). */
void cor_engine_process(cor_engine *e, const psb_event *ev);
/* End of input: order the incidents (see above). Absence fires only for groups
 * whose silence the input's own time has shown (see README). */
void cor_engine_finish(cor_engine *e);
/* The incidents raised so far (ordered after cor_engine_finish); owned by the engine. */
size_t cor_engine_incidents(const cor_engine *e, cor_incident *const **out);

/* Live use (the daemon). cor_engine_take() returns the incidents raised since
 * the previous call, in the order raised (detected_at set to the wall clock);
 * they stay owned by the engine. cor_engine_forget() frees the taken ones whose
 * suppress time has passed by the watermark, so memory stays flat; suppressed
 * counts of later events go to the stats only. */
size_t cor_engine_take(cor_engine *e, cor_incident *const **out);
void cor_engine_forget(cor_engine *e);
/* Free every group (window, partial chains, suppression) whose operator --
 * organization.id, len bytes; NULL for none -- drop() says to drop. The daemon
 * calls it for the operators of partitions a rebalance took away. Returns the
 * number of groups freed (no tombstones). */
size_t cor_engine_drop_groups(cor_engine *e, bool (*drop)(void *arg, const char *org, size_t len),
                              void *arg);

/* ---- state records: the daemon's changelog (pasban.state) ----
 *
 * One record holds one group's state: its rule (by id, so a record survives a
 * reload that renumbers the rules), key, source, newest event, its last incident's
 * suppression and id ordinal, and its kind's state with the originals kept as
 * evidence (threshold window entries, sequence prefixes, the absence group's last
 * event). Format: correlator/README.md ("State records"). */

#define COR_STATE_VERSION 1
/* A record past this keeps each original cut so it fits (counted `cut`): Kafka's
 * default message size is 1 MB. */
#define COR_STATE_MAX_RECORD (512u << 10)

typedef struct cor_state_counts {
    uint64_t exported;   /* records written */
    uint64_t tombstones; /* groups freed after a record of them went out */
    uint64_t cut;        /* records whose originals were cut to fit */
    uint64_t imported;
    uint64_t ignored; /* their rule is gone, or changed kind or shape */
    uint64_t refused; /* malformed, truncated, wrong version */
} cor_state_counts;

/* A record (rec, rec_len) of the group (rule_id, key) whose last event came from
 * src; rec NULL: a tombstone, the group is gone. */
typedef void (*cor_state_fn)(void *arg, int32_t src, const char *rule_id, const char *key,
                             size_t key_len, const char *rec, size_t rec_len);

/* The source (the daemon: the events partition) of the events fed next; 0 at start. */
void cor_engine_set_source(cor_engine *e, int32_t src);
/* Tombstones of the groups freed, then records of the groups changed, since the last
 * call (or the last cor_engine_clear_dirty); returns how many were handed to fn. */
size_t cor_engine_export_dirty(cor_engine *e, cor_state_fn fn, void *arg);
/* A record of every group, in each rule's order of last touch. */
size_t cor_engine_export_all(cor_engine *e, cor_state_fn fn, void *arg);
/* Forget what changed (after an aborted transaction). */
void cor_engine_clear_dirty(cor_engine *e);
/* Rebuild a group from a record; a group of the same rule and key is replaced
 * when it has the record's source, or older events than the record (newest event
 * time; ties: the lower source wins). Between two sources the loser's record is
 * due a tombstone (one record per group, as in memory).
 * 0 imported; 1 ignored (no rule of that id in the set, or it changed kind or
 * shape: counted); 2 not taken: the group held from another source is newer (err
 * says which); -1 refused (malformed: err says why; nothing changes). */
int cor_engine_import(cor_engine *e, const char *rec, size_t len, char *err, size_t errlen);
/* The daemon's transactions: cor_engine_rollback undoes what the incident-id
 * ordinals and the watermark did since cor_engine_checkpoint, so incidents raised
 * again after an aborted batch get the ids a run without the abort gives. Groups
 * are not rolled back: the caller drops them and imports the committed records.
 * A rollback without a checkpoint (or a second one) does nothing. */
void cor_engine_checkpoint(cor_engine *e);
void cor_engine_rollback(cor_engine *e);
/* Raise the watermark to t (a restored one); it never goes back. Absences fire
 * when the next event moves it. */
void cor_engine_raise_watermark(cor_engine *e, int64_t t);
bool cor_engine_has_watermark(const cor_engine *e);
/* Free, without tombstones, every group whose source drop() says to drop (their
 * records stay for whoever takes the source). Returns the number freed. */
size_t cor_engine_drop_sources(cor_engine *e, bool (*drop)(void *arg, int32_t src), void *arg);
const cor_state_counts *cor_engine_state_counts(const cor_engine *e);

cor_matcher *cor_engine_matcher(cor_engine *e);
/* Per-rule counters (indexed by rule->index). */
const cor_rule_stats *cor_engine_stats(cor_engine *e);
/* Groups held now, over all rules. */
size_t cor_engine_groups(const cor_engine *e);
int64_t cor_engine_watermark(const cor_engine *e);

#endif
