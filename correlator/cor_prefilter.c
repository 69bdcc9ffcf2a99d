/* cor_prefilter.c -- Hyperscan prefilter databases, one per where field. */
#include "cor_prefilter.h"

#include <stdlib.h>
#include <string.h>

#include "pasban/util.h"

#ifdef PASBAN_HAVE_HYPERSCAN
#include <hs/hs.h>
#endif

size_t cor_units_count(const cor_ruleset *rs) { return rs->n_units; }

uint32_t cor_unit_of(const cor_ruleset *rs, size_t rule, size_t step)
{
    const cor_rule *r = rs->rules[rule];
    return r->unit_base + (uint32_t)(r->n_steps - 1 - step);
}

#ifdef PASBAN_HAVE_HYPERSCAN

typedef struct pf_db {
    int field_id;
    hs_database_t *db;
} pf_db;

struct cor_prefilter {
    pf_db *dbs;
    size_t n_dbs;
    uint32_t *pattern_unit; /* Hyperscan id -> unit */
    size_t n_patterns;
    uint16_t *need;         /* per unit: prefiltered patterns that must all hit */
    uint32_t *always;       /* units with no prefiltered pattern: always candidates */
    size_t n_always;
    size_t n_units;
    hs_scratch_t *proto;
};

struct cor_prefilter_scratch {
    const cor_prefilter *pf;
    hs_scratch_t *hs;
    uint32_t *stamp;        /* per unit: the scan epoch its hit count belongs to */
    uint16_t *hits;
    uint32_t epoch;
    uint32_t *out;
    size_t n_out;
};

/* One pattern waiting for its database. */
typedef struct pf_pat {
    const char *expr;
    uint32_t unit;
    cor_step *step;
    int ok;
} pf_pat;

static int build_field(cor_prefilter *pf, int field_id, pf_pat *pats, size_t n, FILE *errors)
{
    const char **exprs = psb_xcalloc(n, sizeof(*exprs));
    unsigned *flags = psb_xcalloc(n, sizeof(*flags));
    unsigned *ids = psb_xcalloc(n, sizeof(*ids));
    size_t *map = psb_xcalloc(n, sizeof(*map));
    hs_database_t *db = NULL;
    for (;;) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (!pats[i].ok)
                continue;
            exprs[m] = pats[i].expr;
            flags[m] = HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
            ids[m] = (unsigned)(pf->n_patterns + m);
            map[m] = i;
            m++;
        }
        if (m == 0)
            break;
        hs_compile_error_t *cerr = NULL;
        if (hs_compile_multi(exprs, flags, ids, (unsigned)m, HS_MODE_BLOCK, NULL, &db, &cerr) ==
            HS_SUCCESS)
            break;
        db = NULL;
        /* A pattern Hyperscan cannot take stays with PCRE2 alone; others retry. */
        if (cerr->expression >= 0 && (size_t)cerr->expression < m) {
            pats[map[cerr->expression]].ok = 0;
            hs_free_compile_error(cerr);
            continue;
        }
        if (errors)
            fprintf(errors, "prefilter: field %d left to PCRE2: %s\n", field_id, cerr->message);
        hs_free_compile_error(cerr);
        for (size_t i = 0; i < n; i++)
            pats[i].ok = 0;
        break;
    }
    if (db) {
        pf->dbs = psb_xrealloc(pf->dbs, (pf->n_dbs + 1) * sizeof(*pf->dbs));
        pf->dbs[pf->n_dbs].field_id = field_id;
        pf->dbs[pf->n_dbs].db = db;
        pf->n_dbs++;
        if (hs_alloc_scratch(db, &pf->proto) != HS_SUCCESS)
            abort();
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (!pats[i].ok)
                continue;
            pf->pattern_unit = psb_xrealloc(pf->pattern_unit,
                                            (pf->n_patterns + 1) * sizeof(*pf->pattern_unit));
            pf->pattern_unit[pf->n_patterns++] = pats[i].unit;
            pf->need[pats[i].unit]++;
            pats[i].step->n_prefiltered++;
            m++;
        }
    }
    free(exprs);
    free(flags);
    free(ids);
    free(map);
    return 0;
}

cor_prefilter *cor_prefilter_build(cor_ruleset *rs, FILE *errors)
{
    if (hs_valid_platform() != HS_SUCCESS)
        return NULL;
    cor_prefilter *pf = psb_xcalloc(1, sizeof(*pf));
    pf->n_units = rs->n_units;
    pf->need = psb_xcalloc(rs->n_units ? rs->n_units : 1, sizeof(*pf->need));
    pf_pat *pats = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < rs->n_rules; i++)
        for (size_t s = 0; s < rs->rules[i]->n_steps; s++)
            rs->rules[i]->steps[s].n_prefiltered = 0;
    for (size_t f = 0; f < rs->n_fields; f++) {
        size_t n = 0;
        for (size_t i = 0; i < rs->n_rules; i++) {
            cor_rule *r = rs->rules[i];
            for (size_t s = 0; s < r->n_steps; s++) {
                cor_step *st = &r->steps[s];
                for (size_t c = 0; c < st->n_where; c++) {
                    if (st->where[c].field_id != (int)f)
                        continue;
                    if (n == cap) {
                        cap = cap ? cap * 2 : 256;
                        pats = psb_xrealloc(pats, cap * sizeof(*pats));
                    }
                    pats[n].expr = st->where[c].pattern;
                    pats[n].unit = cor_unit_of(rs, i, s);
                    pats[n].step = st;
                    pats[n].ok = 1;
                    n++;
                }
            }
        }
        if (n)
            build_field(pf, (int)f, pats, n, errors);
    }
    free(pats);
    for (size_t u = 0; u < rs->n_units; u++)
        if (pf->need[u] == 0) {
            pf->always = psb_xrealloc(pf->always, (pf->n_always + 1) * sizeof(*pf->always));
            pf->always[pf->n_always++] = (uint32_t)u;
        }
    return pf;
}

void cor_prefilter_free(cor_prefilter *pf)
{
    if (!pf)
        return;
    for (size_t i = 0; i < pf->n_dbs; i++)
        hs_free_database(pf->dbs[i].db);
    free(pf->dbs);
    free(pf->pattern_unit);
    free(pf->need);
    free(pf->always);
    if (pf->proto)
        hs_free_scratch(pf->proto);
    free(pf);
}

cor_prefilter_scratch *cor_prefilter_scratch_new(const cor_prefilter *pf)
{
    cor_prefilter_scratch *s = psb_xcalloc(1, sizeof(*s));
    s->pf = pf;
    size_t n = pf->n_units ? pf->n_units : 1;
    s->stamp = psb_xcalloc(n, sizeof(*s->stamp));
    s->hits = psb_xcalloc(n, sizeof(*s->hits));
    if (pf->proto && hs_clone_scratch(pf->proto, &s->hs) != HS_SUCCESS)
        abort();
    return s;
}

void cor_prefilter_scratch_free(cor_prefilter_scratch *s)
{
    if (!s)
        return;
    if (s->hs)
        hs_free_scratch(s->hs);
    free(s->stamp);
    free(s->hits);
    free(s);
}

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                    void *ctx)
{
    (void)from;
    (void)to;
    (void)flags;
    cor_prefilter_scratch *s = ctx;
    const cor_prefilter *pf = s->pf;
    uint32_t u = pf->pattern_unit[id];
    if (s->stamp[u] != s->epoch) {
        s->stamp[u] = s->epoch;
        s->hits[u] = 0;
    }
    if (++s->hits[u] == pf->need[u])
        s->out[s->n_out++] = u;
    return 0;
}

size_t cor_prefilter_scan(const cor_prefilter *pf, cor_prefilter_scratch *s,
                          const cor_field_value *values, uint32_t *out)
{
    if (++s->epoch == 0) {
        memset(s->stamp, 0, (pf->n_units ? pf->n_units : 1) * sizeof(*s->stamp));
        s->epoch = 1;
    }
    s->out = out;
    s->n_out = 0;
    for (size_t i = 0; i < pf->n_dbs; i++) {
        const cor_field_value *v = &values[pf->dbs[i].field_id];
        if (!v->ptr)
            continue;
        hs_scan(pf->dbs[i].db, v->ptr ? v->ptr : "", (unsigned)v->len, 0, s->hs, on_match, s);
    }
    if (pf->n_always)
        memcpy(out + s->n_out, pf->always, pf->n_always * sizeof(*out));
    return s->n_out + pf->n_always;
}

size_t cor_prefilter_patterns(const cor_prefilter *pf) { return pf ? pf->n_patterns : 0; }
size_t cor_prefilter_databases(const cor_prefilter *pf) { return pf ? pf->n_dbs : 0; }

#else /* no Hyperscan: every step runs */

cor_prefilter *cor_prefilter_build(cor_ruleset *rs, FILE *errors)
{
    (void)rs;
    (void)errors;
    return NULL;
}
void cor_prefilter_free(cor_prefilter *pf) { (void)pf; }
cor_prefilter_scratch *cor_prefilter_scratch_new(const cor_prefilter *pf)
{
    (void)pf;
    return NULL;
}
void cor_prefilter_scratch_free(cor_prefilter_scratch *s) { (void)s; }
size_t cor_prefilter_scan(const cor_prefilter *pf, cor_prefilter_scratch *s,
                          const cor_field_value *values, uint32_t *out)
{
    (void)pf;
    (void)s;
    (void)values;
    (void)out;
    return 0;
}
size_t cor_prefilter_patterns(const cor_prefilter *pf)
{
    (void)pf;
    return 0;
}
size_t cor_prefilter_databases(const cor_prefilter *pf)
{
    (void)pf;
    return 0;
}
#endif
