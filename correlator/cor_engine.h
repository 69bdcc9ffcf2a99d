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
 * number of groups freed. */
size_t cor_engine_drop_groups(cor_engine *e, bool (*drop)(void *arg, const char *org, size_t len),
                              void *arg);

cor_matcher *cor_engine_matcher(cor_engine *e);
/* Per-rule counters (indexed by rule->index). */
const cor_rule_stats *cor_engine_stats(cor_engine *e);
/* Groups held now, over all rules. */
size_t cor_engine_groups(const cor_engine *e);
int64_t cor_engine_watermark(const cor_engine *e);

#endif
