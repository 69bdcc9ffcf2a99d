/* cor_prefilter.h -- which rules could match an event, before any PCRE2 runs.
 *
 * Per field name used in a where, built once per rule-set load: a Hyperscan
 * literal database of the required literals of each pattern (runs of plain
 * characters every match must contain), and for patterns without such a
 * literal a database of the whole patterns in prefilter mode (a superset
 * matcher: it may say "maybe" when PCRE2 will say no, never the reverse). A
 * scan of each field gives what may match; a step is a candidate when all of
 * its literals and prefiltered patterns hit. PCRE2 then confirms and captures.
 * Patterns Hyperscan refuses are left to PCRE2 alone.
 *
 * A "unit" is one (rule, step). Units are numbered rule by rule, and within a
 * rule from the last step to the first, so that ascending unit order is the
 * order a sequence needs (a later step is advanced before an earlier one
 * restarts it).
 */
#ifndef COR_PREFILTER_H
#define COR_PREFILTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cor_rule.h"

typedef struct cor_prefilter cor_prefilter;
typedef struct cor_prefilter_scratch cor_prefilter_scratch;

/* Build for rs (sets each step's n_prefiltered). Returns NULL when Hyperscan is
 * not available; then every step of every rule runs (the matcher's fallback). */
cor_prefilter *cor_prefilter_build(cor_ruleset *rs, FILE *errors);
void cor_prefilter_free(cor_prefilter *pf);

/* Per-thread state for scans. */
cor_prefilter_scratch *cor_prefilter_scratch_new(const cor_prefilter *pf);
void cor_prefilter_scratch_free(cor_prefilter_scratch *s);

/* Number of units of rs, and the unit of (rule, step) / back. */
size_t cor_units_count(const cor_ruleset *rs);
uint32_t cor_unit_of(const cor_ruleset *rs, size_t rule, size_t step);

/* Field values of one event, by the set's field ids (NULL ptr = absent). */
typedef struct cor_field_value {
    const char *ptr;
    size_t len;
} cor_field_value;

/* Scan values; append candidate units to out (capacity: cor_units_count) in no
 * particular order and return how many. */
size_t cor_prefilter_scan(const cor_prefilter *pf, cor_prefilter_scratch *s,
                          const cor_field_value *values, uint32_t *out);

/* Number of patterns the prefilter holds, and of databases (for --stats). */
size_t cor_prefilter_patterns(const cor_prefilter *pf);
size_t cor_prefilter_databases(const cor_prefilter *pf);
/* Of the patterns, how many are required literals (the rest: whole regexes). */
size_t cor_prefilter_literals(const cor_prefilter *pf);

#endif
