/* cor_match.c -- prefilter, then PCRE2 to confirm and capture. */
#include "cor_match.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cor_prefilter.h"
#include "pasban/util.h"

typedef struct field_slot {
    char buf[32]; /* numbers psb_event_get renders */
} field_slot;

/* A where condition as the per-event loop reads it. The loop used to walk from the
 * unit to its rule (for the index), step, where array and pattern numbers: four or
 * five cache lines per candidate in structs spread over the heap, which the group
 * table's working set pushes out of cache at 1000 rules. Packed here, a candidate
 * touches its unit and its conditions, side by side. */
typedef struct mcond {
    const pcre2_code *re;
    const cor_cond *cond; /* its named captures */
    uint32_t pid;         /* pattern number: equal (field, text), equal number */
    int32_t field_id;
    bool jit;
    bool caps; /* has named captures */
} mcond;

typedef struct cor_unit_ref {
    const cor_rule *rule;
    const cor_step *step; /* for its unless */
    uint32_t rule_index;
    uint32_t first; /* its where conditions: m->conds[first .. first + n_where) */
    uint16_t n_where;
    uint16_t step_index;
    uint16_t n_unless;
} cor_unit_ref;

/* Verdicts of capture-free where patterns on short values, kept across events.
 * Rules of one family repeat the same gate (process.name ^sshd$, a mnemonic) and
 * such fields take few values: one PCRE2 call per rule and event is most of what
 * those conditions cost. A verdict depends only on the pattern text (all are
 * compiled with the same options) and the value; a limit error is not kept. */
#define VERDICT_SLOTS 1024 /* direct-mapped */
#define VERDICT_VALUE 58   /* longer values are matched every time */

typedef struct verdict_slot {
    uint32_t pid;
    uint8_t len; /* of value; VERDICT_VALUE + 1 = empty */
    uint8_t match;
    char value[VERDICT_VALUE];
} verdict_slot;

/* What a pattern gave on the current event, shared by every rule whose where holds
 * the same pattern on the same field (a family's rules differ in a threshold or a
 * user, not in their message pattern): one PCRE2 run per event, field and pattern.
 * A pattern with captures keeps its offsets; a limit error is not kept (each rule
 * runs into it and counts it, as without sharing). */
typedef struct event_verdict {
    uint32_t epoch; /* the event it belongs to (m->epoch) */
    uint8_t match;
} event_verdict;

/* How load_values reads a field: the common ones straight from the event (the
 * same answers psb_event_get gives, without its chain of name comparisons). */
enum field_access { ACCESS_GET, ACCESS_MESSAGE, ACCESS_APPNAME, ACCESS_HOSTNAME, ACCESS_LABEL };

struct cor_matcher {
    const cor_ruleset *rs;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    pcre2_match_data *md;
    cor_prefilter_scratch *pf;
    bool use_prefilter;
    bool timing;
    cor_field_value *values; /* per field id, for the current event */
    field_slot *slots;
    uint32_t *units;        /* candidate units of the current event */
    cor_unit_ref *unit_ref; /* unit -> its rule, step and conditions, in one array */
    mcond *conds;           /* every unit's where conditions */
    size_t *field_len;
    unsigned char *field_access; /* enum field_access, per field id */
    cor_capture caps[COR_MAX_CAPTURES * COR_MAX_PATTERNS];
    size_t n_caps;
    cor_rule_stats *stats;
    verdict_slot *verdicts;     /* VERDICT_SLOTS */
    uint32_t epoch;             /* events seen, for ev_verdicts */
    event_verdict *ev_verdicts; /* per pattern number */
    PCRE2_SIZE **ev_ovector;    /* per pattern number: kept offsets, or NULL (not shared) */
    uint32_t *ev_ovector_n;     /* their pairs */
    size_t n_pids;
};

typedef struct pat_ref {
    const char *pattern;
    int field_id;
    mcond *c;
} pat_ref;

static int cmp_pat_ref(const void *a, const void *b)
{
    const pat_ref *x = a, *y = b;
    if (x->field_id != y->field_id)
        return x->field_id < y->field_id ? -1 : 1;
    return strcmp(x->pattern, y->pattern);
}

/* Number every where condition by its field and pattern text: equal pairs, equal
 * numbers. A number used by several conditions with captures keeps its offsets
 * per event. */
static void number_patterns(cor_matcher *m, size_t n)
{
    pat_ref *refs = psb_xcalloc(n + 1, sizeof(*refs));
    for (size_t k = 0; k < n; k++)
        refs[k] = (pat_ref){m->conds[k].cond->pattern, m->conds[k].field_id, &m->conds[k]};
    qsort(refs, n, sizeof(*refs), cmp_pat_ref);
    uint32_t id = 0;
    for (size_t j = 0; j < n; j++) {
        if (j > 0 && cmp_pat_ref(&refs[j], &refs[j - 1]) != 0)
            id++;
        refs[j].c->pid = id;
    }
    size_t n_ids = n ? (size_t)id + 1 : 0;
    m->n_pids = n_ids;
    m->ev_verdicts = psb_xcalloc(n_ids + 1, sizeof(*m->ev_verdicts));
    m->ev_ovector = psb_xcalloc(n_ids + 1, sizeof(*m->ev_ovector));
    m->ev_ovector_n = psb_xcalloc(n_ids + 1, sizeof(*m->ev_ovector_n));
    for (size_t j = 0; j + 1 < n; j++) {
        const mcond *c = refs[j].c;
        if (!c->caps || refs[j + 1].c->pid != c->pid || m->ev_ovector[c->pid])
            continue;
        uint32_t groups = 0;
        pcre2_pattern_info(c->re, PCRE2_INFO_CAPTURECOUNT, &groups);
        m->ev_ovector_n[c->pid] = groups + 1;
        m->ev_ovector[c->pid] = psb_xcalloc(2 * ((size_t)groups + 1), sizeof(PCRE2_SIZE));
    }
    free(refs);
    m->verdicts = psb_xcalloc(VERDICT_SLOTS, sizeof(*m->verdicts));
    for (size_t j = 0; j < VERDICT_SLOTS; j++)
        m->verdicts[j].len = VERDICT_VALUE + 1;
}

/* Lay out every unit's reference and where conditions in unit order. */
static void pack_units(cor_matcher *m, const cor_ruleset *rs)
{
    size_t n = 0;
    for (size_t i = 0; i < rs->n_rules; i++)
        for (size_t s = 0; s < rs->rules[i]->n_steps; s++)
            n += rs->rules[i]->steps[s].n_where;
    m->conds = psb_xcalloc(n + 1, sizeof(*m->conds));
    for (size_t i = 0; i < rs->n_rules; i++) {
        const cor_rule *r = rs->rules[i];
        for (size_t s = 0; s < r->n_steps; s++) {
            cor_unit_ref *u = &m->unit_ref[cor_unit_of(rs, i, s)];
            u->rule = r;
            u->step = &r->steps[s];
            u->rule_index = (uint32_t)r->index;
            u->step_index = (uint16_t)s;
            u->n_where = (uint16_t)r->steps[s].n_where;
            u->n_unless = (uint16_t)r->steps[s].n_unless;
        }
    }
    /* Conditions in unit order, so a candidate's are next to the next candidate's. */
    size_t k = 0;
    for (size_t u = 0; u < rs->n_units; u++) {
        cor_unit_ref *ref = &m->unit_ref[u];
        ref->first = (uint32_t)k;
        for (size_t c = 0; c < ref->n_where; c++, k++) {
            const cor_cond *cd = &ref->step->where[c];
            m->conds[k] = (mcond){cd->re, cd, 0, cd->field_id, cd->jit, cd->n_caps > 0};
        }
    }
    number_patterns(m, n);
}

cor_matcher *cor_matcher_new(const cor_ruleset *rs, const cor_match_opts *opts)
{
    cor_match_opts o = opts ? *opts : (cor_match_opts){0, 0, 0, false};
    cor_matcher *m = psb_xcalloc(1, sizeof(*m));
    m->rs = rs;
    m->mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(m->mctx, o.match_limit ? o.match_limit : COR_DEFAULT_MATCH_LIMIT);
    pcre2_set_depth_limit(m->mctx, o.depth_limit ? o.depth_limit : COR_DEFAULT_DEPTH_LIMIT);
    size_t js = o.jit_stack_max ? o.jit_stack_max : COR_DEFAULT_JIT_STACK;
    m->jit = pcre2_jit_stack_create(js < 32768 ? js : 32768, js, NULL);
    if (m->jit)
        pcre2_jit_stack_assign(m->mctx, NULL, m->jit);
    m->md =
        pcre2_match_data_create(rs->max_groups_per_pattern ? rs->max_groups_per_pattern : 1, NULL);
    if (!m->mctx || !m->md)
        abort();
    if (rs->prefilter) {
        m->pf = cor_prefilter_scratch_new(rs->prefilter);
        m->use_prefilter = true;
    }
    m->timing = o.timing;
    m->values = psb_xcalloc(rs->n_fields + 1, sizeof(*m->values));
    m->slots = psb_xcalloc(rs->n_fields + 1, sizeof(*m->slots));
    m->units = psb_xcalloc(rs->n_units + 1, sizeof(*m->units));
    m->unit_ref = psb_xcalloc(rs->n_units + 1, sizeof(*m->unit_ref));
    m->field_len = psb_xcalloc(rs->n_fields + 1, sizeof(*m->field_len));
    m->field_access = psb_xcalloc(rs->n_fields + 1, sizeof(*m->field_access));
    for (size_t f = 0; f < rs->n_fields; f++) {
        const char *name = rs->fields[f];
        m->field_len[f] = strlen(name);
        if (strcmp(name, "message") == 0)
            m->field_access[f] = ACCESS_MESSAGE;
        else if (strcmp(name, "process.name") == 0 || strcmp(name, "log.syslog.appname") == 0)
            m->field_access[f] = ACCESS_APPNAME;
        else if (strcmp(name, "host.hostname") == 0)
            m->field_access[f] = ACCESS_HOSTNAME;
        else if (strncmp(name, "labels.", 7) == 0 && name[7])
            m->field_access[f] = ACCESS_LABEL;
        else
            m->field_access[f] = ACCESS_GET;
    }
    m->stats = psb_xcalloc(rs->n_rules + 1, sizeof(*m->stats));
    pack_units(m, rs);
    return m;
}

void cor_matcher_free(cor_matcher *m)
{
    if (!m)
        return;
    pcre2_match_data_free(m->md);
    pcre2_jit_stack_free(m->jit);
    pcre2_match_context_free(m->mctx);
    cor_prefilter_scratch_free(m->pf);
    free(m->values);
    free(m->slots);
    free(m->units);
    free(m->unit_ref);
    free(m->conds);
    for (size_t p = 0; p < m->n_pids; p++)
        free(m->ev_ovector[p]);
    free(m->ev_ovector);
    free(m->ev_ovector_n);
    free(m->ev_verdicts);
    free(m->field_len);
    free(m->field_access);
    free(m->stats);
    free(m->verdicts);
    free(m);
}

void cor_matcher_set_prefilter(cor_matcher *m, bool on)
{
    m->use_prefilter = on && m->pf;
}

cor_rule_stats *cor_matcher_stats(cor_matcher *m)
{
    return m->stats;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* 1 = match, 0 = no match, -1 = a limit stopped it (counted for rule ri, treated
 * as no match). */
static int run(cor_matcher *m, size_t ri, const pcre2_code *re, bool jit, psb_str v)
{
    uint64_t t0 = m->timing ? now_ns() : 0;
    /* pcre2_jit_match skips the option checks; the match context still carries
     * the match limit and the JIT stack (whose size bounds recursion). */
    PCRE2_SPTR subj = (PCRE2_SPTR)(v.ptr ? v.ptr : "");
    int rc = jit ? pcre2_jit_match(re, subj, v.len, 0, 0, m->md, m->mctx)
                 : pcre2_match(re, subj, v.len, 0, 0, m->md, m->mctx);
    if (m->timing)
        m->stats[ri].regex_ns += now_ns() - t0;
    if (rc >= 0)
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    m->stats[ri].limit_errors++;
    return -1;
}

static void take_captures(cor_matcher *m, const cor_cond *c, psb_str subject, const PCRE2_SIZE *ov,
                          uint32_t n)
{
    for (size_t i = 0; i < c->n_caps; i++) {
        uint32_t g = c->caps[i].group;
        if (g >= n || ov[2 * g] == PCRE2_UNSET || m->n_caps >= sizeof(m->caps) / sizeof(m->caps[0]))
            continue;
        m->caps[m->n_caps].name = c->caps[i].name;
        m->caps[m->n_caps].value.len = ov[2 * g + 1] - ov[2 * g];
        m->caps[m->n_caps].value.ptr = subject.ptr + ov[2 * g];
        m->n_caps++;
    }
}

static void take_match_captures(cor_matcher *m, const cor_cond *c, psb_str subject)
{
    take_captures(m, c, subject, pcre2_get_ovector_pointer(m->md), pcre2_get_ovector_count(m->md));
}

int cor_field_lookup(const psb_event *ev, const cor_capture *caps, size_t n_caps, const char *name,
                     char *buf, psb_str *out)
{
    /* The last capture of a name wins: a later pattern refines an earlier one. */
    for (size_t i = n_caps; i-- > 0;)
        if (strcmp(caps[i].name, name) == 0) {
            *out = caps[i].value;
            return 1;
        }
    return psb_event_get(ev, name, strlen(name), buf, out);
}

static size_t verdict_index(uint32_t pid, const char *p, size_t n)
{
    uint64_t h = psb_hash_short(p, n) ^ ((uint64_t)pid * 0x165667B19E3779F9u);
    return (size_t)(h >> 40) & (VERDICT_SLOTS - 1);
}

/* run() for a where pattern without captures, through the kept verdicts. */
static int run_kept(cor_matcher *m, size_t ri, const mcond *c, psb_str v)
{
    if (v.len > VERDICT_VALUE)
        return run(m, ri, c->re, c->jit, v);
    verdict_slot *s = &m->verdicts[verdict_index(c->pid, v.ptr, v.len)];
    if (s->len == v.len && s->pid == c->pid && memcmp(s->value, v.ptr, v.len) == 0)
        return s->match;
    int rc = run(m, ri, c->re, c->jit, v);
    if (rc >= 0) {
        s->pid = c->pid;
        s->len = (uint8_t)v.len;
        s->match = (uint8_t)rc;
        memcpy(s->value, v.ptr, v.len);
    }
    return rc;
}

/* One where condition of a unit on the current event: its verdict of this event
 * when another rule already ran it, else PCRE2 (or a kept verdict). Captures go
 * to m->caps. */
static int eval_where(cor_matcher *m, size_t ri, const mcond *c, psb_str v)
{
    event_verdict *ev = &m->ev_verdicts[c->pid];
    PCRE2_SIZE *kept = m->ev_ovector[c->pid];
    if (ev->epoch == m->epoch) {
        if (ev->match && c->caps)
            take_captures(m, c->cond, v, kept, m->ev_ovector_n[c->pid]);
        return ev->match;
    }
    int rc;
    if (!c->caps) {
        rc = run_kept(m, ri, c, v);
    } else {
        rc = run(m, ri, c->re, c->jit, v);
        if (rc > 0) {
            take_match_captures(m, c->cond, v);
            if (kept) {
                uint32_t n = pcre2_get_ovector_count(m->md);
                const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
                uint32_t want = m->ev_ovector_n[c->pid];
                for (uint32_t g = 0; g < want; g++) {
                    kept[2 * g] = g < n ? ov[2 * g] : PCRE2_UNSET;
                    kept[2 * g + 1] = g < n ? ov[2 * g + 1] : PCRE2_UNSET;
                }
            }
        }
    }
    if (rc >= 0) {
        ev->epoch = m->epoch;
        ev->match = (uint8_t)rc;
    }
    return rc;
}

/* Does the unless of step st hold nothing against ev (the step's captures in m->caps)? */
static int unless_clear(cor_matcher *m, const psb_event *ev, size_t ri, const cor_step *st)
{
    for (size_t i = 0; i < st->n_unless; i++) {
        const cor_cond *c = &st->unless[i];
        char buf[32];
        psb_str v;
        if (!cor_field_lookup(ev, m->caps, m->n_caps, c->field, buf, &v))
            continue; /* an absent field allows nothing */
        if (run(m, ri, c->re, c->jit, v) > 0)
            return 0;
    }
    return 1;
}

/* Does unit u hold for ev? Leaves its captures in m->caps. */
static int eval_unit(cor_matcher *m, const psb_event *ev, const cor_unit_ref *u)
{
    m->n_caps = 0;
    const mcond *c = &m->conds[u->first];
    for (size_t i = 0; i < u->n_where; i++, c++) {
        const cor_field_value *fv = &m->values[c->field_id];
        if (!fv->ptr)
            return 0;
        if (eval_where(m, u->rule_index, c, psb_str_make(fv->ptr, fv->len)) <= 0)
            return 0;
    }
    return u->n_unless == 0 || unless_clear(m, ev, u->rule_index, u->step);
}

/* Step s of r without kept or shared verdicts (what --check-rules runs). */
static int eval_step(cor_matcher *m, const psb_event *ev, const cor_rule *r, const cor_step *st)
{
    m->n_caps = 0;
    for (size_t i = 0; i < st->n_where; i++) {
        const cor_cond *c = &st->where[i];
        const cor_field_value *fv = &m->values[c->field_id];
        if (!fv->ptr)
            return 0;
        psb_str v = psb_str_make(fv->ptr, fv->len);
        if (run(m, r->index, c->re, c->jit, v) <= 0)
            return 0;
        take_match_captures(m, c, v);
    }
    return unless_clear(m, ev, r->index, st);
}

/* labels.<key>: the first label of that key, as psb_event_get finds it; a
 * JSON-origin event may hold it in its object instead. */
static int get_label(const psb_event *ev, const char *name, size_t len, char *buf, psb_str *out)
{
    const char *key = name + 7;
    size_t kl = len - 7;
    for (size_t i = 0; i < ev->n_labels; i++) {
        const psb_kv *kv = &ev->labels[i];
        if (kv->key.len == kl && kv->key.ptr[0] == key[0] && memcmp(kv->key.ptr, key, kl) == 0) {
            *out = kv->value;
            return kv->value.ptr != NULL;
        }
    }
    return ev->json ? psb_event_get(ev, name, len, buf, out) : 0;
}

static int get_field(const cor_matcher *m, const psb_event *ev, size_t f, psb_str *out)
{
    const cor_ruleset *rs = m->rs;
    psb_str v;
    switch (m->field_access[f]) {
    case ACCESS_MESSAGE:
        v = ev->message;
        break;
    case ACCESS_APPNAME:
        v = ev->appname;
        break;
    case ACCESS_HOSTNAME:
        v = ev->hostname;
        break;
    case ACCESS_LABEL:
        return get_label(ev, rs->fields[f], m->field_len[f], m->slots[f].buf, out);
    default:
        return psb_event_get(ev, rs->fields[f], m->field_len[f], m->slots[f].buf, out);
    }
    *out = v;
    return v.ptr != NULL;
}

/* Read the event's where fields; a new event for the shared verdicts. */
static void load_values(cor_matcher *m, const psb_event *ev)
{
    const cor_ruleset *rs = m->rs;
    if (++m->epoch == 0) {
        for (size_t p = 0; p < m->n_pids; p++)
            m->ev_verdicts[p].epoch = 0;
        m->epoch = 1;
    }
    for (size_t f = 0; f < rs->n_fields; f++) {
        psb_str v;
        if (get_field(m, ev, f, &v)) {
            m->values[f].ptr = v.ptr ? v.ptr : "";
            m->values[f].len = v.len;
        } else {
            m->values[f].ptr = NULL;
            m->values[f].len = 0;
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Candidates in unit order. An event has a handful (0.5 on average at 1000
 * bench rules): insertion sort, without qsort's call and comparator per pair. */
static void sort_units(uint32_t *u, size_t n)
{
    if (n > 32) {
        qsort(u, n, sizeof(*u), cmp_u32);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        uint32_t x = u[i];
        size_t j = i;
        for (; j > 0 && u[j - 1] > x; j--)
            u[j] = u[j - 1];
        u[j] = x;
    }
}

void cor_matcher_run(cor_matcher *m, const psb_event *ev, cor_hit_fn fn, void *ctx)
{
    const cor_ruleset *rs = m->rs;
    load_values(m, ev);
    size_t n;
    if (m->use_prefilter) {
        n = cor_prefilter_scan(rs->prefilter, m->pf, m->values, m->units);
        sort_units(m->units, n);
    } else {
        n = rs->n_units;
        for (size_t u = 0; u < n; u++)
            m->units[u] = (uint32_t)u;
    }
    for (size_t i = 0; i < n; i++) {
        const cor_unit_ref *ref = &m->unit_ref[m->units[i]];
        m->stats[ref->rule_index].candidates++;
        if (!eval_unit(m, ev, ref))
            continue;
        m->stats[ref->rule_index].matches++;
        if (fn)
            fn(ctx, ev, ref->rule, ref->step_index, m->caps, m->n_caps);
    }
}

unsigned cor_matcher_rule(cor_matcher *m, const psb_event *ev, const cor_rule *r)
{
    load_values(m, ev);
    unsigned mask = 0;
    for (size_t s = 0; s < r->n_steps; s++)
        if (eval_step(m, ev, r, &r->steps[s]))
            mask |= 1u << s;
    return mask;
}
