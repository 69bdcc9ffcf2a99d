/* cor_rule.c -- load rule files into a compiled rule set.
 *
 * Each rule is checked whole before it joins the set: a bad key, duration,
 * severity, pattern or a duplicate id refuses that rule alone, with a message
 * that names the file, the line and the rule so an analyst can fix it fast.
 */
#include "cor_rule.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cor_json.h"
#include "cor_prefilter.h"
#include "pasban/util.h"

static const char *const severity_names[] = {"info", "low", "medium", "high", "critical"};
static const char *const kind_names[] = {"single", "threshold", "sequence", "absence"};

const char *cor_severity_name(int sev)
{
    return sev >= 0 && sev <= COR_SEV_CRITICAL ? severity_names[sev] : "unknown";
}

const char *cor_kind_name(int kind)
{
    return kind >= 0 && kind <= COR_KIND_ABSENCE ? kind_names[kind] : "unknown";
}

/* Why a rule was refused: the line it points at and the reason. */
typedef struct rule_err {
    int line;
    char msg[512];
} rule_err;

static int fail(rule_err *e, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(rule_err *e, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    e->line = line;
    return -1;
}

/* Compiled patterns by text: rules of one family repeat the same gate
 * (process.name ^sshd$ in 182 of 1000 rules), and every pattern is compiled with
 * the same options, so a text is compiled and JIT-compiled once per set and its
 * code shared. The set owns the codes (cor_ruleset.codes). */
typedef struct code_entry {
    char *text; /* NULL = empty slot */
    size_t len;
    uint64_t hash;
    pcre2_code *re;
    bool jit;
} code_entry;

typedef struct code_cache {
    code_entry *slots; /* open addressing */
    size_t cap, n;
} code_cache;

/* The loader: the set being built, the ids seen so far (duplicates), the codes. */
typedef struct loader {
    cor_ruleset *rs;
    const cor_load_opts *opts;
    size_t cap;
    char **ids; /* open-addressed set of ids */
    size_t ids_cap;
    code_cache codes;
} loader;

static code_entry *code_find(code_cache *cc, const char *text, size_t len, uint64_t h)
{
    if (cc->cap == 0)
        return NULL;
    for (size_t j = h & (cc->cap - 1);; j = (j + 1) & (cc->cap - 1)) {
        code_entry *e = &cc->slots[j];
        if (!e->text)
            return NULL;
        if (e->hash == h && e->len == len && memcmp(e->text, text, len) == 0)
            return e;
    }
}

static void code_add(code_cache *cc, const char *text, size_t len, uint64_t h, pcre2_code *re,
                     bool jit)
{
    if ((cc->n + 1) * 2 > cc->cap) {
        size_t ncap = cc->cap ? cc->cap * 2 : 256;
        code_entry *n = psb_xcalloc(ncap, sizeof(*n));
        for (size_t i = 0; i < cc->cap; i++) {
            if (!cc->slots[i].text)
                continue;
            size_t j = cc->slots[i].hash & (ncap - 1);
            while (n[j].text)
                j = (j + 1) & (ncap - 1);
            n[j] = cc->slots[i];
        }
        free(cc->slots);
        cc->slots = n;
        cc->cap = ncap;
    }
    size_t j = h & (cc->cap - 1);
    while (cc->slots[j].text)
        j = (j + 1) & (cc->cap - 1);
    cc->slots[j] = (code_entry){psb_xstrndup(text, len), len, h, re, jit};
    cc->n++;
}

/* Hand the codes to the set, which frees them with itself. */
static void codes_to_set(code_cache *cc, cor_ruleset *rs)
{
    rs->codes = psb_xcalloc(cc->n + 1, sizeof(*rs->codes));
    for (size_t i = 0; i < cc->cap; i++) {
        if (!cc->slots[i].text)
            continue;
        rs->codes[rs->n_codes++] = cc->slots[i].re;
        free(cc->slots[i].text);
    }
    free(cc->slots);
    memset(cc, 0, sizeof(*cc));
}

/* 1 when id was already present, else 0 after adding it. */
static int ids_add(loader *L, const char *id)
{
    if (L->ids_cap == 0 || (L->rs->n_rules + 1) * 2 > L->ids_cap) {
        size_t ncap = L->ids_cap ? L->ids_cap * 2 : 64;
        char **n = psb_xcalloc(ncap, sizeof(*n));
        for (size_t i = 0; i < L->ids_cap; i++) {
            if (!L->ids[i])
                continue;
            size_t j = psb_hash_str(L->ids[i]) & (ncap - 1);
            while (n[j])
                j = (j + 1) & (ncap - 1);
            n[j] = L->ids[i];
        }
        free(L->ids);
        L->ids = n;
        L->ids_cap = ncap;
    }
    size_t j = psb_hash_str(id) & (L->ids_cap - 1);
    while (L->ids[j]) {
        if (strcmp(L->ids[j], id) == 0)
            return 1;
        j = (j + 1) & (L->ids_cap - 1);
    }
    L->ids[j] = (char *)id; /* owned by the rule, which outlives the loader */
    return 0;
}

static void report(loader *L, const char *file, int line, const char *id, const char *msg)
{
    L->rs->n_errors++;
    if (!L->opts->errors)
        return;
    if (id)
        fprintf(L->opts->errors, "%s:%d: rule %s: %s\n", file, line, id, msg);
    else
        fprintf(L->opts->errors, "%s:%d: %s\n", file, line, msg);
}

static void cond_clear(cor_cond *c)
{
    free(c->field);
    free(c->pattern);
    free(c->caps);
    /* c->re belongs to the set's codes */
}

static void step_clear(cor_step *s)
{
    for (size_t i = 0; i < s->n_where; i++)
        cond_clear(&s->where[i]);
    for (size_t i = 0; i < s->n_unless; i++)
        cond_clear(&s->unless[i]);
    free(s->where);
    free(s->unless);
}

static void rule_free(cor_rule *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_steps; i++)
        step_clear(&r->steps[i]);
    free(r->steps);
    for (size_t i = 0; i < r->n_by; i++)
        free(r->by[i]);
    free(r->by);
    for (size_t i = 0; i < r->n_tests; i++) {
        free(r->tests[i].log);
        free(r->tests[i].event);
    }
    free(r->tests);
    free(r->id);
    free(r->title);
    free(r->category);
    free(r->distinct);
    free(r->file);
    free(r);
}

static bool valid_id(const char *s, size_t len)
{
    if (len == 0 || len > COR_MAX_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

static bool valid_field(const char *s, size_t len)
{
    if (len == 0 || len > COR_MAX_FIELD_LEN || memchr(s, '\0', len))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ')
            return false;
    return true;
}

static int get_string(const cor_jnode *n, const char *what, rule_err *e, char **out)
{
    if (n->type != COR_JSTR)
        return fail(e, n->line, "%s must be a string", what);
    if (memchr(n->str, '\0', n->len))
        return fail(e, n->line, "%s contains a NUL byte", what);
    *out = psb_xstrndup(n->str, n->len);
    return 0;
}

static int get_duration(const cor_jnode *n, const char *what, bool allow_zero, rule_err *e,
                        int64_t *out)
{
    /* A JSON number is seconds, as a bare number in a string is ("within": 120). */
    if ((n->type != COR_JSTR && n->type != COR_JNUM) || psb_parse_duration_ms(n->str, out) != 0 ||
        n->len > 32)
        return fail(e, n->line, "bad duration for %s (want e.g. \"90s\", \"15m\", \"4h\", \"1d\")",
                    what);
    if (!allow_zero && *out == 0)
        return fail(e, n->line, "%s must be longer than zero", what);
    return 0;
}

/* Compile one pattern; on error say where in the pattern it went wrong. */
static int compile_cond(code_cache *cc, const char *field, size_t field_len, const cor_jnode *pat,
                        const char *what, rule_err *e, cor_cond *c)
{
    memset(c, 0, sizeof(*c));
    c->line = pat->line;
    if (!valid_field(field, field_len))
        return fail(e, pat->line, "%s: bad field name \"%.*s\"", what,
                    (int)(field_len > 64 ? 64 : field_len), field);
    if (pat->type != COR_JSTR)
        return fail(e, pat->line, "%s %s: pattern must be a string", what, field);
    if (pat->len > COR_MAX_PATTERN_LEN)
        return fail(e, pat->line, "%s %s: pattern of %zu bytes exceeds the limit of %d", what,
                    field, pat->len, COR_MAX_PATTERN_LEN);
    int code;
    /* The pattern is kept as a C string (the prefilter's literals, the matcher's kept
     * verdicts are keyed by its text): a raw NUL would cut it short. */
    if (memchr(pat->str, '\0', pat->len))
        return fail(e, pat->line,
                    "%s %s: a NUL character in the pattern (write \\x00 to match one)", what,
                    field);
    uint64_t h = psb_hash_bytes(pat->str, pat->len, PSB_HASH_SEED);
    const code_entry *known = code_find(cc, pat->str, pat->len, h);
    if (known) {
        c->re = known->re;
        c->jit = known->jit;
    } else {
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat->str, pat->len, 0, &code, &off, NULL);
        if (!re) {
            PCRE2_UCHAR buf[256];
            pcre2_get_error_message(code, buf, sizeof(buf));
            return fail(e, pat->line, "%s %s: bad pattern at offset %zu: %s", what, field,
                        (size_t)off, (const char *)buf);
        }
        /* JIT is an optimisation: without it (no executable memory) the interpreter
         * runs with the same limits. */
        c->re = re;
        c->jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
        code_add(cc, pat->str, pat->len, h, re, c->jit);
    }
    pcre2_code *re = c->re;
    c->field = psb_xstrndup(field, field_len);
    c->field_len = field_len;
    c->pattern = psb_xstrndup(pat->str, pat->len);
    c->field_id = -1;

    uint32_t count = 0, entry = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(re, PCRE2_INFO_NAMECOUNT, &count);
    if (count) {
        pcre2_pattern_info(re, PCRE2_INFO_NAMEENTRYSIZE, &entry);
        pcre2_pattern_info(re, PCRE2_INFO_NAMETABLE, &table);
        if (count > COR_MAX_CAPTURES)
            return fail(e, pat->line, "%s %s: more than %d named captures", what, field,
                        COR_MAX_CAPTURES);
        c->caps = psb_xcalloc(count, sizeof(*c->caps));
        for (uint32_t i = 0; i < count; i++) {
            PCRE2_SPTR ent = table + (size_t)i * entry;
            c->caps[i].group = ((uint32_t)ent[0] << 8) | ent[1];
            c->caps[i].name = (const char *)ent + 2;
        }
        c->n_caps = count;
    }
    return 0;
}

/* Append the patterns of a where/unless object to *conds. */
static int add_conds(code_cache *cc, const cor_jnode *obj, const char *what, rule_err *e,
                     cor_cond **conds, size_t *n, size_t *total)
{
    if (obj->type != COR_JOBJ)
        return fail(e, obj->line, "%s must be an object of field: pattern", what);
    if (obj->n == 0 && strcmp(what, "where") == 0)
        return fail(e, obj->line, "where has no patterns");
    for (size_t i = 0; i < obj->n; i++) {
        if (++*total > COR_MAX_PATTERNS)
            return fail(e, obj->items[i]->line, "more than %d patterns", COR_MAX_PATTERNS);
        *conds = psb_xrealloc(*conds, (*n + 1) * sizeof(**conds));
        cor_cond *c = &(*conds)[*n];
        int rc = compile_cond(cc, obj->keys[i], strlen(obj->keys[i]), obj->items[i], what, e, c);
        (*n)++;
        if (rc)
            return -1;
    }
    return 0;
}

static int get_by(const cor_jnode *n, rule_err *e, cor_rule *r)
{
    if (r->n_by)
        return fail(e, n->line, "by given twice");
    if (n->type != COR_JARR)
        return fail(e, n->line, "by must be an array of field names");
    if (n->n > COR_MAX_BY)
        return fail(e, n->line, "by has more than %d fields", COR_MAX_BY);
    r->by = psb_xcalloc(n->n ? n->n : 1, sizeof(*r->by));
    for (size_t i = 0; i < n->n; i++) {
        const cor_jnode *f = n->items[i];
        if (f->type != COR_JSTR || !valid_field(f->str, f->len))
            return fail(e, f->line, "by: bad field name");
        r->by[r->n_by++] = psb_xstrndup(f->str, f->len);
    }
    return 0;
}

static int check_keys(const cor_jnode *obj, const char *what, const char *const *allowed,
                      rule_err *e)
{
    for (size_t i = 0; i < obj->n; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(obj->keys[i], *a) == 0)
                ok = true;
        if (!ok)
            return fail(e, obj->items[i]->line, "unknown key \"%s\"%s%s", obj->keys[i],
                        what ? " in " : "", what ? what : "");
    }
    return 0;
}

static int parse_threshold(const cor_jnode *t, rule_err *e, cor_rule *r)
{
    static const char *const keys[] = {"count", "within", "by", "distinct", NULL};
    if (t->type != COR_JOBJ)
        return fail(e, t->line, "threshold must be an object");
    if (check_keys(t, "threshold", keys, e))
        return -1;
    const cor_jnode *c = cor_json_get(t, "count");
    if (!c)
        return fail(e, t->line, "threshold needs count");
    char *end;
    long v = c->type == COR_JNUM ? strtol(c->str, &end, 10) : 0;
    if (c->type != COR_JNUM || *end || v < 1 || v > COR_MAX_COUNT)
        return fail(e, c->line, "threshold count must be an integer from 1 to %d", COR_MAX_COUNT);
    r->count = v;
    const cor_jnode *w = cor_json_get(t, "within");
    if (!w)
        return fail(e, t->line, "threshold needs within");
    if (get_duration(w, "within", false, e, &r->within_ms))
        return -1;
    const cor_jnode *by = cor_json_get(t, "by");
    if (by && get_by(by, e, r))
        return -1;
    const cor_jnode *d = cor_json_get(t, "distinct");
    if (d) {
        if (d->type != COR_JSTR || !valid_field(d->str, d->len))
            return fail(e, d->line, "distinct must be a field name");
        r->distinct = psb_xstrndup(d->str, d->len);
    }
    return 0;
}

static int parse_absence(const cor_jnode *a, rule_err *e, cor_rule *r)
{
    static const char *const keys[] = {"within", "by", NULL};
    if (a->type != COR_JOBJ)
        return fail(e, a->line, "absence must be an object");
    if (check_keys(a, "absence", keys, e))
        return -1;
    const cor_jnode *w = cor_json_get(a, "within");
    if (!w)
        return fail(e, a->line, "absence needs within");
    if (get_duration(w, "within", false, e, &r->within_ms))
        return -1;
    const cor_jnode *by = cor_json_get(a, "by");
    if (by && get_by(by, e, r))
        return -1;
    return 0;
}

static int parse_tests(const cor_jnode *t, rule_err *e, cor_rule *r)
{
    static const char *const keys[] = {"log", "event", "expect", NULL};
    if (t->type != COR_JARR)
        return fail(e, t->line, "tests must be an array");
    if (t->n > COR_MAX_TESTS)
        return fail(e, t->line, "more than %d tests", COR_MAX_TESTS);
    r->tests = psb_xcalloc(t->n ? t->n : 1, sizeof(*r->tests));
    for (size_t i = 0; i < t->n; i++) {
        const cor_jnode *x = t->items[i];
        if (x->type != COR_JOBJ)
            return fail(e, x->line, "a test must be an object");
        if (check_keys(x, "test", keys, e))
            return -1;
        cor_test *ts = &r->tests[r->n_tests++];
        ts->line = x->line;
        const cor_jnode *log = cor_json_get(x, "log");
        const cor_jnode *ev = cor_json_get(x, "event");
        const cor_jnode *ex = cor_json_get(x, "expect");
        if ((log != NULL) == (ev != NULL))
            return fail(e, x->line, "a test needs exactly one of log or event");
        if (log && get_string(log, "test log", e, &ts->log))
            return -1;
        if (ev) {
            if (ev->type != COR_JOBJ)
                return fail(e, ev->line, "test event must be an object");
            cor_buf b = {0};
            cor_json_render(ev, &b);
            ts->event = b.p;
        }
        if (!ex || ex->type != COR_JSTR ||
            (strcmp(ex->str, "match") != 0 && strcmp(ex->str, "no-match") != 0))
            return fail(e, ex ? ex->line : x->line,
                        "test expect must be \"match\" or \"no-match\"");
        ts->expect_match = strcmp(ex->str, "match") == 0;
    }
    return 0;
}

/* Build a step from the rule's top-level where/unless plus a sequence step's own. */
static int build_step(code_cache *cc, const cor_jnode *where, const cor_jnode *unless,
                      const cor_jnode *swhere, const cor_jnode *sunless, rule_err *e, cor_step *s,
                      size_t *total)
{
    if (where && add_conds(cc, where, "where", e, &s->where, &s->n_where, total))
        return -1;
    if (swhere && add_conds(cc, swhere, "where", e, &s->where, &s->n_where, total))
        return -1;
    if (unless && add_conds(cc, unless, "unless", e, &s->unless, &s->n_unless, total))
        return -1;
    if (sunless && add_conds(cc, sunless, "unless", e, &s->unless, &s->n_unless, total))
        return -1;
    return 0;
}

static int parse_rule(code_cache *cc, const cor_jnode *o, rule_err *e, cor_rule *r)
{
    static const char *const keys[] = {"id",     "title",       "severity",   "category",
                                       "where",  "unless",      "threshold",  "sequence",
                                       "within", "absence",     "by",         "suppress",
                                       "tests",  "description", "references", NULL};
    if (check_keys(o, NULL, keys, e))
        return -1;
    const cor_jnode *n;
    if ((n = cor_json_get(o, "title")) && get_string(n, "title", e, &r->title))
        return -1;
    if ((n = cor_json_get(o, "category")) && get_string(n, "category", e, &r->category))
        return -1;
    if ((n = cor_json_get(o, "description")) && n->type != COR_JSTR)
        return fail(e, n->line, "description must be a string");
    if ((n = cor_json_get(o, "references")) && n->type != COR_JARR)
        return fail(e, n->line, "references must be an array");
    r->severity = COR_SEV_MEDIUM;
    if ((n = cor_json_get(o, "severity"))) {
        int found = -1;
        for (int i = 0; n->type == COR_JSTR && i <= COR_SEV_CRITICAL; i++)
            if (strcmp(n->str, severity_names[i]) == 0)
                found = i;
        if (found < 0)
            return fail(e, n->line, "bad severity (want info, low, medium, high or critical)");
        r->severity = found;
    }
    if ((n = cor_json_get(o, "suppress")) && get_duration(n, "suppress", true, e, &r->suppress_ms))
        return -1;

    const cor_jnode *th = cor_json_get(o, "threshold");
    const cor_jnode *seq = cor_json_get(o, "sequence");
    const cor_jnode *ab = cor_json_get(o, "absence");
    const cor_jnode *within = cor_json_get(o, "within");
    if ((th != NULL) + (seq != NULL) + (ab != NULL) > 1)
        return fail(e, o->line, "a rule is one of threshold, sequence or absence");
    r->kind = th    ? COR_KIND_THRESHOLD
              : seq ? COR_KIND_SEQUENCE
              : ab  ? COR_KIND_ABSENCE
                    : COR_KIND_SINGLE;
    if (within && !seq)
        return fail(e, within->line,
                    "top-level within belongs to a sequence "
                    "(threshold and absence take it inside)");
    if ((n = cor_json_get(o, "by")) && get_by(n, e, r))
        return -1;
    if (th && parse_threshold(th, e, r))
        return -1;
    if (ab && parse_absence(ab, e, r))
        return -1;
    if (r->distinct && r->n_by) {
        for (size_t i = 0; i < r->n_by; i++)
            if (strcmp(r->by[i], r->distinct) == 0)
                return fail(e, th->line, "distinct field %s is also in by", r->distinct);
    }

    const cor_jnode *where = cor_json_get(o, "where");
    const cor_jnode *unless = cor_json_get(o, "unless");
    size_t total = 0;
    if (seq) {
        if (!within)
            return fail(e, seq->line, "a sequence needs a top-level within");
        if (get_duration(within, "within", false, e, &r->within_ms))
            return -1;
        if (seq->type != COR_JARR || seq->n < 1)
            return fail(e, seq->line, "sequence must be an array of steps");
        if (seq->n > COR_MAX_STEPS)
            return fail(e, seq->line, "sequence has more than %d steps", COR_MAX_STEPS);
        r->steps = psb_xcalloc(seq->n, sizeof(*r->steps));
        for (size_t i = 0; i < seq->n; i++) {
            static const char *const skeys[] = {"where", "unless", NULL};
            const cor_jnode *st = seq->items[i];
            if (st->type != COR_JOBJ)
                return fail(e, st->line, "a sequence step must be an object");
            if (check_keys(st, "sequence step", skeys, e))
                return -1;
            const cor_jnode *sw = cor_json_get(st, "where");
            if (!sw)
                return fail(e, st->line, "sequence step %zu needs where", i + 1);
            r->n_steps++;
            if (build_step(cc, where, unless, sw, cor_json_get(st, "unless"), e, &r->steps[i],
                           &total))
                return -1;
        }
    } else {
        if (!where)
            return fail(e, o->line, "rule needs where");
        r->steps = psb_xcalloc(1, sizeof(*r->steps));
        r->n_steps = 1;
        if (build_step(cc, where, unless, NULL, NULL, e, &r->steps[0], &total))
            return -1;
    }
    if ((n = cor_json_get(o, "tests")) && parse_tests(n, e, r))
        return -1;
    if (!r->title)
        r->title = psb_xstrdup(r->id);
    if (!r->category)
        r->category = psb_xstrdup("other/undetermined");
    return 0;
}

static void add_rule(loader *L, cor_rule *r)
{
    cor_ruleset *rs = L->rs;
    if (rs->n_rules == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 64;
        rs->rules = psb_xrealloc(rs->rules, L->cap * sizeof(*rs->rules));
    }
    r->index = rs->n_rules;
    rs->rules[rs->n_rules++] = r;
}

static void load_doc(loader *L, const char *file, const char *text, size_t len)
{
    char err[512];
    int err_line = 0;
    cor_jnode *root = cor_json_parse(text, len, err, sizeof(err), &err_line);
    if (!root) {
        report(L, file, err_line, NULL, err);
        return;
    }
    const cor_jnode *rules = cor_json_get(root, "rules");
    if (root->type != COR_JOBJ || !rules || rules->type != COR_JARR) {
        report(L, file, root->line, NULL, "a rule file holds {\"rules\": [ ... ]}");
        goto out;
    }
    for (size_t i = 0; i < root->n; i++)
        if (strcmp(root->keys[i], "rules") != 0) {
            snprintf(err, sizeof(err), "unknown key \"%s\" at the top level", root->keys[i]);
            report(L, file, root->items[i]->line, NULL, err);
        }
    for (size_t i = 0; i < rules->n; i++) {
        const cor_jnode *o = rules->items[i];
        char label[COR_MAX_ID_LEN + 32];
        snprintf(label, sizeof(label), "#%zu", i + 1);
        if (o->type != COR_JOBJ) {
            report(L, file, o->line, label, "a rule must be an object");
            continue;
        }
        const cor_jnode *id = cor_json_get(o, "id");
        if (!id || id->type != COR_JSTR || !valid_id(id->str, id->len)) {
            report(L, file, id ? id->line : o->line, label,
                   "needs an id of 1 to 64 letters, digits, '-', '_', '.' or ':'");
            continue;
        }
        snprintf(label, sizeof(label), "%s", id->str);
        if (L->rs->n_rules >= COR_MAX_RULES) {
            snprintf(err, sizeof(err), "more than %d rules in the set", COR_MAX_RULES);
            report(L, file, o->line, label, err);
            continue;
        }
        cor_rule *r = psb_xcalloc(1, sizeof(*r));
        r->id = psb_xstrndup(id->str, id->len);
        r->file = psb_xstrdup(file);
        r->line = o->line;
        rule_err e = {0, ""};
        if (parse_rule(&L->codes, o, &e, r) != 0) {
            report(L, file, e.line, label, e.msg);
            rule_free(r);
            continue;
        }
        if (ids_add(L, r->id)) {
            report(L, file, o->line, label, "duplicate id (the first one is kept)");
            rule_free(r);
            continue;
        }
        add_rule(L, r);
    }
out:
    cor_json_free(root);
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 65536;
            buf = psb_xrealloc(buf, cap + 1);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > COR_MAX_FILE_BYTES) {
            snprintf(err, errlen, "file larger than %u bytes", COR_MAX_FILE_BYTES);
            rc = -1;
            break;
        }
        if (got == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "read error: %s", strerror(errno));
                rc = -1;
            }
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static int load_file(loader *L, const char *path)
{
    char err[256];
    char *text;
    size_t len;
    if (read_file(path, &text, &len, err, sizeof(err)) != 0) {
        report(L, path, 0, NULL, err);
        return -1;
    }
    L->rs->n_files++;
    load_doc(L, path, text, len);
    free(text);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_dir(loader *L, const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l <= 6 || strcmp(de->d_name + l - 6, ".rules") != 0 || de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = psb_xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = psb_xstrdup(de->d_name);
    }
    closedir(d);
    /* Byte order, not the locale's: the set (and so the output) is the same everywhere. */
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t pl = strlen(path);
        char *full = psb_xmalloc(pl + strlen(names[i]) + 2);
        sprintf(full, "%s%s%s", path, (pl && path[pl - 1] == '/') ? "" : "/", names[i]);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
            load_file(L, full);
        free(full);
        free(names[i]);
    }
    free(names);
    return 0;
}

/* Give every where field an id so a matcher fetches each field once per event. */
static void index_fields(cor_ruleset *rs)
{
    size_t cap = 0;
    for (size_t i = 0; i < rs->n_rules; i++) {
        cor_rule *r = rs->rules[i];
        r->unit_base = (uint32_t)rs->n_units;
        rs->n_units += r->n_steps;
        for (size_t s = 0; s < r->n_steps; s++) {
            cor_step *st = &r->steps[s];
            for (size_t c = 0; c < st->n_where + st->n_unless; c++) {
                cor_cond *cd = c < st->n_where ? &st->where[c] : &st->unless[c - st->n_where];
                uint32_t groups = 0;
                pcre2_pattern_info(cd->re, PCRE2_INFO_CAPTURECOUNT, &groups);
                if (groups + 1 > rs->max_groups_per_pattern)
                    rs->max_groups_per_pattern = groups + 1;
                if (c >= st->n_where)
                    continue;
                size_t f;
                for (f = 0; f < rs->n_fields; f++)
                    if (strcmp(rs->fields[f], cd->field) == 0)
                        break;
                if (f == rs->n_fields) {
                    if (rs->n_fields == cap) {
                        cap = cap ? cap * 2 : 16;
                        rs->fields = psb_xrealloc(rs->fields, cap * sizeof(*rs->fields));
                    }
                    rs->fields[rs->n_fields++] = psb_xstrdup(cd->field);
                }
                cd->field_id = (int)f;
            }
        }
    }
}

static cor_ruleset *finish(loader *L)
{
    free(L->ids);
    codes_to_set(&L->codes, L->rs);
    index_fields(L->rs);
    if (!L->opts->no_prefilter)
        L->rs->prefilter = cor_prefilter_build(L->rs, L->opts->errors);
    return L->rs;
}

cor_ruleset *cor_ruleset_load(const char *path, const cor_load_opts *opts)
{
    static const cor_load_opts defaults = {NULL, false};
    loader L;
    memset(&L, 0, sizeof(L));
    L.opts = opts ? opts : &defaults;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (L.opts->errors)
            fprintf(L.opts->errors, "%s: cannot read rules: %s\n", path, strerror(errno));
        return NULL;
    }
    L.rs = psb_xcalloc(1, sizeof(*L.rs));
    if (S_ISDIR(st.st_mode)) {
        if (load_dir(&L, path) != 0) {
            if (L.opts->errors)
                fprintf(L.opts->errors, "%s: cannot read rules: %s\n", path, strerror(errno));
            free(L.ids);
            codes_to_set(&L.codes, L.rs);
            cor_ruleset_free(L.rs);
            return NULL;
        }
    } else if (load_file(&L, path) != 0) {
        free(L.ids);
        codes_to_set(&L.codes, L.rs);
        cor_ruleset_free(L.rs);
        return NULL;
    }
    return finish(&L);
}

cor_ruleset *cor_ruleset_load_text(const char *name, const char *text, size_t len,
                                   const cor_load_opts *opts)
{
    static const cor_load_opts defaults = {NULL, false};
    loader L;
    memset(&L, 0, sizeof(L));
    L.opts = opts ? opts : &defaults;
    L.rs = psb_xcalloc(1, sizeof(*L.rs));
    L.rs->n_files = 1;
    load_doc(&L, name, text, len);
    return finish(&L);
}

void cor_ruleset_free(cor_ruleset *rs)
{
    if (!rs)
        return;
    cor_prefilter_free(rs->prefilter);
    for (size_t i = 0; i < rs->n_rules; i++)
        rule_free(rs->rules[i]);
    free(rs->rules);
    for (size_t i = 0; i < rs->n_fields; i++)
        free(rs->fields[i]);
    free(rs->fields);
    for (size_t i = 0; i < rs->n_codes; i++)
        pcre2_code_free(rs->codes[i]);
    free(rs->codes);
    free(rs);
}
