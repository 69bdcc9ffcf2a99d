/* cor_match.h -- does an event satisfy a rule's where and unless?
 *
 * One matcher per thread: it owns the PCRE2 match data, the match context that
 * carries the match and depth limits, the JIT stack and the prefilter scratch.
 * A pattern that hits a limit counts a limit error for its rule and does not
 * match; the event goes on to the other rules.
 */
#ifndef COR_MATCH_H
#define COR_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cor_rule.h"
#include "pasban/event.h"

/* A named capture of the step that matched; value points into the event. */
typedef struct cor_capture {
    const char *name;
    psb_str value;
} cor_capture;

typedef struct cor_match_opts {
    uint32_t match_limit; /* PCRE2 match limit (0 = COR_DEFAULT_MATCH_LIMIT) */
    uint32_t depth_limit; /* PCRE2 depth limit (0 = COR_DEFAULT_DEPTH_LIMIT) */
    size_t jit_stack_max; /* bytes (0 = COR_DEFAULT_JIT_STACK) */
    bool timing;          /* measure regex time per rule (costs a clock read per pattern) */
} cor_match_opts;

#define COR_DEFAULT_MATCH_LIMIT 100000
#define COR_DEFAULT_DEPTH_LIMIT 5000
#define COR_DEFAULT_JIT_STACK (512u * 1024u)

/* Counters per rule, indexed by rule->index. */
typedef struct cor_rule_stats {
    uint64_t candidates;   /* steps the prefilter let through to PCRE2 */
    uint64_t matches;      /* steps whose where and unless held */
    uint64_t limit_errors; /* PCRE2 match/depth/JIT-stack limit hit */
    uint64_t regex_ns;     /* time in PCRE2 (with timing) */
    uint64_t incidents;    /* kept by the engine */
    uint64_t suppressed;
    uint64_t late;    /* events too late for their group's window */
    uint64_t evicted; /* groups dropped at the per-rule cap */
} cor_rule_stats;

typedef struct cor_matcher cor_matcher;

/* Called for each (rule, step) that holds, in rule order and, within a
 * sequence, from the last step to the first. caps are valid during the call. */
typedef void (*cor_hit_fn)(void *ctx, const psb_event *ev, const cor_rule *r, size_t step,
                           const cor_capture *caps, size_t n_caps);

cor_matcher *cor_matcher_new(const cor_ruleset *rs, const cor_match_opts *opts);
void cor_matcher_free(cor_matcher *m);

/* Run every rule (through the prefilter when the set has one) against ev. */
void cor_matcher_run(cor_matcher *m, const psb_event *ev, cor_hit_fn fn, void *ctx);
/* Bypass the prefilter: try every rule's patterns in turn (for measuring it). */
void cor_matcher_set_prefilter(cor_matcher *m, bool on);
/* Steps of one rule that hold for ev, as a bit mask (bit s = step s). */
unsigned cor_matcher_rule(cor_matcher *m, const psb_event *ev, const cor_rule *r);

cor_rule_stats *cor_matcher_stats(cor_matcher *m);

/* A field for by, unless, distinct: a named capture of the step first, else the
 * event's field by ECS name. buf holds rendered numbers (32 bytes). 1 = present. */
int cor_field_lookup(const psb_event *ev, const cor_capture *caps, size_t n_caps, const char *name,
                     char *buf, psb_str *out);

#endif
