/* cor_rule.h -- a loaded, compiled rule set (design.md, "Rules").
 *
 * A rule set is built once from a file or a directory of *.rules files, then
 * only read: matchers and engines hold a pointer to it, and a reload builds a
 * new set aside. A rule that fails to load is reported on the error stream as
 * `file:line: rule ID: reason` and left out; the others load.
 */
#ifndef COR_RULE_H
#define COR_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Limits on what a rule set may hold. Past them the rule (or file) is refused. */
#define COR_MAX_RULES 20000            /* rules in one set */
#define COR_MAX_PATTERNS 32            /* where + unless patterns of one rule, over its steps */
#define COR_MAX_PATTERN_LEN 4096       /* bytes in one pattern */
#define COR_MAX_TESTS 64               /* embedded tests per rule */
#define COR_MAX_STEPS 8                /* steps of a sequence */
#define COR_MAX_BY 8                   /* fields in `by` */
#define COR_MAX_CAPTURES 32            /* named captures of one step */
#define COR_MAX_FIELD_LEN 128          /* bytes in a field name */
#define COR_MAX_ID_LEN 64              /* bytes in a rule id */
#define COR_MAX_FILE_BYTES (16u << 20) /* one rule file */
#define COR_MAX_COUNT 1000000          /* threshold count */

enum cor_kind { COR_KIND_SINGLE, COR_KIND_THRESHOLD, COR_KIND_SEQUENCE, COR_KIND_ABSENCE };
enum cor_severity { COR_SEV_INFO, COR_SEV_LOW, COR_SEV_MEDIUM, COR_SEV_HIGH, COR_SEV_CRITICAL };

typedef struct cor_capname {
    const char *name; /* points into the pattern's name table */
    uint32_t group;   /* capture group number */
} cor_capname;

/* One `field: pattern` pair of a where or unless. */
typedef struct cor_cond {
    char *field;
    size_t field_len;
    char *pattern;
    int line;
    pcre2_code *re;    /* owned by the set (cor_ruleset.codes): shared by equal patterns */
    bool jit;          /* JIT-compiled: matched through pcre2_jit_match */
    cor_capname *caps; /* named captures, in group order */
    size_t n_caps;
    int field_id; /* where: index into the set's field table */
} cor_cond;

/* A step is what one event must satisfy. A non-sequence rule has one step (its
 * where/unless); a sequence rule's steps also carry the rule's top-level where
 * and unless. */
typedef struct cor_step {
    cor_cond *where;
    size_t n_where;
    cor_cond *unless;
    size_t n_unless;
    size_t n_prefiltered; /* where patterns present in the prefilter database */
} cor_step;

typedef struct cor_test {
    int line;
    bool expect_match;
    char *log;   /* raw line, or NULL */
    char *event; /* event object rendered as JSON, or NULL */
} cor_test;

typedef struct cor_rule {
    size_t index;       /* position in the set: the order of output and stats */
    uint32_t unit_base; /* first unit (see cor_prefilter.h) of this rule */
    char *id, *title, *category;
    int severity; /* enum cor_severity */
    char *file;
    int line;
    int kind; /* enum cor_kind */
    cor_step *steps;
    size_t n_steps;
    char **by;
    size_t n_by;
    int64_t within_ms; /* threshold, sequence, absence */
    long count;        /* threshold */
    char *distinct;    /* threshold: field whose distinct values count, or NULL */
    int64_t suppress_ms;
    cor_test *tests;
    size_t n_tests;
} cor_rule;

struct cor_prefilter;

typedef struct cor_ruleset {
    cor_rule **rules;
    size_t n_rules;
    size_t n_errors; /* rules (and files) refused while loading */
    size_t n_files;
    char **fields; /* distinct field names of where patterns */
    size_t n_fields;
    size_t n_units;                  /* (rule, step) pairs */
    uint32_t max_groups_per_pattern; /* largest capture count, for match data */
    struct cor_prefilter *prefilter; /* NULL when disabled or unavailable */
    pcre2_code **codes; /* compiled patterns, one per distinct text (conds share them) */
    size_t n_codes;
} cor_ruleset;

typedef struct cor_load_opts {
    FILE *errors;      /* where `file:line: rule ID: reason` lines go (NULL: nowhere) */
    bool no_prefilter; /* skip building the prefilter (to measure or debug) */
} cor_load_opts;

/* Load every rule of path (a file, or a directory whose *.rules files are read in
 * byte order of their names). Returns a set (possibly empty, n_errors telling
 * how many rules were refused), or NULL when path cannot be read at all. */
cor_ruleset *cor_ruleset_load(const char *path, const cor_load_opts *opts);
/* Load from text in memory, as if it were the file `name`. */
cor_ruleset *cor_ruleset_load_text(const char *name, const char *text, size_t len,
                                   const cor_load_opts *opts);
void cor_ruleset_free(cor_ruleset *rs);

const char *cor_severity_name(int sev);
const char *cor_kind_name(int kind);

#endif
