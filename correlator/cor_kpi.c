/* cor_kpi.c -- KPI engine: counters per (operator, day), incidents per operator,
 * and every KPI computed on demand from them.
 *
 * Incidents are kept (small records, not the evidence) rather than folded into
 * counters because updates arrive later and change means and percentages of a
 * past period; computing on request keeps every number consistent with the
 * incidents it came from. Operators, days and incidents are kept sorted so that
 * outputs are in a fixed order and the same inputs give the same bytes.
 */
#include "cor_kpi.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_tree.h>

#include "pasban/event.h"
#include "pasban/parse.h"
#include "pasban/util.h"

#define NONE INT64_MIN
#define DAY_MS 86400000LL
#define N_SEV 5
#define LAT_BUCKETS (16 + 40 * 8) /* log-linear, 8 per power of two: error < 6.25 % */

/* ---- the list, expanded into tables ---- */

static const char *const kpi_names[] = {
#define X(name, kind, family, label, help) #name,
    COR_KPI_LIST(X)
#undef X
};
static const int kpi_kinds[] = {
#define X(name, kind, family, label, help) COR_KPI_##kind,
    COR_KPI_LIST(X)
#undef X
};
static const char *const kpi_families[] = {
#define X(name, kind, family, label, help) family,
    COR_KPI_LIST(X)
#undef X
};
static const char *const kpi_labels[] = {
#define X(name, kind, family, label, help) label,
    COR_KPI_LIST(X)
#undef X
};
static const char *const kpi_helps[] = {
#define X(name, kind, family, label, help) help,
    COR_KPI_LIST(X)
#undef X
};
static const size_t kpi_offsets[] = {
#define X(name, kind, family, label, help) offsetof(cor_kpi_values, name),
    COR_KPI_LIST(X)
#undef X
};

const char *cor_kpi_name(int i)
{
    return kpi_names[i];
}
int cor_kpi_kind_of(int i)
{
    return kpi_kinds[i];
}
const char *cor_kpi_family(int i)
{
    return kpi_families[i];
}
const char *cor_kpi_label(int i)
{
    return kpi_labels[i];
}
const char *cor_kpi_help(int i)
{
    return kpi_helps[i];
}

int cor_kpi_lookup(const char *name)
{
    for (int i = 0; i < COR_KPI__N; i++)
        if (strcmp(kpi_names[i], name) == 0)
            return i;
    return -1;
}

cor_kpi_val *cor_kpi_values_at(cor_kpi_values *v, int i)
{
    return (cor_kpi_val *)((char *)v + kpi_offsets[i]);
}

static const cor_kpi_val *val_at(const cor_kpi_values *v, int i)
{
    return (const cor_kpi_val *)((const char *)v + kpi_offsets[i]);
}

static const char *const sev_names[N_SEV] = {"info", "low", "medium", "high", "critical"};

int cor_kpi_severity_from_name(const char *s)
{
    for (int i = 0; i < N_SEV; i++)
        if (strcmp(s, sev_names[i]) == 0)
            return i;
    return -1;
}

/* RSIT classes in the order of the cat_* entries of the list. */
static const char *const cat_names[] = {"abusive-content",
                                        "malicious-code",
                                        "information-gathering",
                                        "intrusion-attempts",
                                        "intrusions",
                                        "availability",
                                        "information-content-security",
                                        "fraud",
                                        "vulnerable",
                                        "other",
                                        "test"};
#define N_CAT (sizeof(cat_names) / sizeof(cat_names[0]))
#define CAT_OTHER 9

static int cat_from_category(const char *c)
{
    size_t n = c ? strcspn(c, "/") : 0;
    for (size_t i = 0; i < N_CAT; i++)
        if (strlen(cat_names[i]) == n && strncasecmp(c, cat_names[i], n) == 0)
            return (int)i;
    return CAT_OTHER;
}

/* ---- configuration ---- */

enum { OP_GE, OP_LE, OP_GT, OP_LT, OP_EQ };
static const char *const op_text[] = {">=", "<=", ">", "<", "=="};

typedef struct cfg_target {
    int kpi;
    int op;
    double value;
} cfg_target;

typedef struct cfg_op {
    char *id;
    char **sources; /* lower case, sorted */
    size_t n_sources;
    cfg_target *targets;
    size_t n_targets;
} cfg_op;

struct cor_kpi_config {
    int64_t sla_ms[N_SEV];
    int64_t report_window_ms;
    int report_min_sev;
    cfg_target *targets;
    size_t n_targets;
    cfg_op *ops;
    size_t n_ops;
};

cor_kpi_config *cor_kpi_config_new(void)
{
    cor_kpi_config *c = psb_xcalloc(1, sizeof(*c));
    c->sla_ms[0] = 7 * DAY_MS;
    c->sla_ms[1] = 7 * DAY_MS;
    c->sla_ms[2] = 3 * DAY_MS;
    c->sla_ms[3] = DAY_MS;
    c->sla_ms[4] = 4 * 3600000LL;
    c->report_window_ms = DAY_MS;
    c->report_min_sev = 3;
    return c;
}

void cor_kpi_config_free(cor_kpi_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_ops; i++) {
        free(c->ops[i].id);
        for (size_t j = 0; j < c->ops[i].n_sources; j++)
            free(c->ops[i].sources[j]);
        free(c->ops[i].sources);
        free(c->ops[i].targets);
    }
    free(c->ops);
    free(c->targets);
    free(c);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_cfg_op(const void *a, const void *b)
{
    return strcmp(((const cfg_op *)a)->id, ((const cfg_op *)b)->id);
}

static int parse_target(const char *s, cfg_target *t)
{
    while (*s == ' ')
        s++;
    int op = -1;
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(op_text[i]);
        if (strncmp(s, op_text[i], n) == 0) {
            op = i;
            s += n;
            break;
        }
    }
    if (op < 0)
        return -1;
    char *end;
    double v = strtod(s, &end);
    while (*end == ' ')
        end++;
    /* Not NaN nor infinite ("1e999", "inf"): the target is written back as a JSON
     * number in every KPI record, and JSON has no such numbers. */
    if (end == s || *end != '\0' || !isfinite(v))
        return -1;
    t->op = op;
    t->value = v;
    return 0;
}

static int parse_targets(yajl_val obj, cfg_target **out, size_t *n_out, char *err, size_t errlen)
{
    if (!YAJL_IS_OBJECT(obj)) {
        snprintf(err, errlen, "targets: expected an object");
        return -1;
    }
    size_t n = obj->u.object.len;
    cfg_target *t = psb_xcalloc(n ? n : 1, sizeof(*t));
    for (size_t i = 0; i < n; i++) {
        const char *key = obj->u.object.keys[i];
        yajl_val v = obj->u.object.values[i];
        t[i].kpi = cor_kpi_lookup(key);
        if (t[i].kpi < 0) {
            snprintf(err, errlen, "targets: unknown KPI \"%.64s\"", key);
            goto fail;
        }
        if (!YAJL_IS_STRING(v) || parse_target(YAJL_GET_STRING(v), &t[i]) < 0) {
            snprintf(err, errlen, "targets: %.64s: expected a string like \">= 95\"", key);
            goto fail;
        }
    }
    *out = t;
    *n_out = n;
    return 0;
fail:
    free(t);
    return -1;
}

static int parse_duration_value(yajl_val v, int64_t *ms)
{
    if (YAJL_IS_STRING(v))
        return psb_parse_duration_ms(YAJL_GET_STRING(v), ms);
    if (YAJL_IS_INTEGER(v) && YAJL_GET_INTEGER(v) >= 0 && YAJL_GET_INTEGER(v) <= INT64_MAX / 1000) {
        *ms = YAJL_GET_INTEGER(v) * 1000; /* a bare number is seconds */
        return 0;
    }
    return -1;
}

static int parse_op(const char *id, yajl_val v, cfg_op *op, char *err, size_t errlen)
{
    op->id = psb_xstrdup(id);
    if (strlen(id) == 0 || strlen(id) > COR_KPI_MAX_ID_LEN) {
        snprintf(err, errlen, "operators: bad operator id");
        return -1;
    }
    if (!YAJL_IS_OBJECT(v)) {
        snprintf(err, errlen, "operators.%.64s: expected an object", id);
        return -1;
    }
    const char *p_src[] = {"sources", NULL};
    yajl_val src = yajl_tree_get(v, p_src, yajl_t_any);
    if (src) {
        if (!YAJL_IS_ARRAY(src) || src->u.array.len > COR_KPI_MAX_SOURCES) {
            snprintf(err, errlen, "operators.%.64s.sources: expected an array of at most %d names",
                     id, COR_KPI_MAX_SOURCES);
            return -1;
        }
        op->sources = psb_xcalloc(src->u.array.len + 1, sizeof(char *));
        for (size_t i = 0; i < src->u.array.len; i++) {
            const char *s = YAJL_GET_STRING(src->u.array.values[i]);
            if (!s || !*s || strlen(s) > COR_KPI_MAX_ID_LEN) {
                snprintf(err, errlen, "operators.%.64s.sources: expected host names", id);
                return -1;
            }
            char *l = psb_xstrdup(s);
            for (char *q = l; *q; q++)
                *q = (char)tolower((unsigned char)*q);
            op->sources[op->n_sources++] = l;
        }
        qsort(op->sources, op->n_sources, sizeof(char *), cmp_str);
        /* A source listed twice is one source. */
        size_t w = 0;
        for (size_t i = 0; i < op->n_sources; i++) {
            if (w > 0 && strcmp(op->sources[w - 1], op->sources[i]) == 0)
                free(op->sources[i]);
            else
                op->sources[w++] = op->sources[i];
        }
        op->n_sources = w;
    }
    const char *p_t[] = {"targets", NULL};
    yajl_val tg = yajl_tree_get(v, p_t, yajl_t_any);
    if (tg && parse_targets(tg, &op->targets, &op->n_targets, err, errlen) < 0)
        return -1;
    return 0;
}

cor_kpi_config *cor_kpi_config_parse(const char *text, size_t len, char *err, size_t errlen)
{
    char ybuf[256];
    char *copy = psb_xstrndup(text, len);
    cor_kpi_config *c = cor_kpi_config_new();
    yajl_val root = psb_json_tree_parse(copy, ybuf, sizeof(ybuf));
    free(copy);
    if (!root) {
        snprintf(err, errlen, "%s", ybuf);
        goto fail;
    }
    yajl_val cfg = root;
    const char *p_kpi[] = {"kpi", NULL};
    yajl_val sub = yajl_tree_get(root, p_kpi, yajl_t_object);
    if (sub)
        cfg = sub;
    if (!YAJL_IS_OBJECT(cfg)) {
        snprintf(err, errlen, "expected an object");
        goto fail;
    }
    const char *p_sla[] = {"sla", NULL};
    yajl_val sla = yajl_tree_get(cfg, p_sla, yajl_t_any);
    if (sla) {
        if (!YAJL_IS_OBJECT(sla)) {
            snprintf(err, errlen, "sla: expected an object");
            goto fail;
        }
        for (size_t i = 0; i < sla->u.object.len; i++) {
            int s = cor_kpi_severity_from_name(sla->u.object.keys[i]);
            if (s < 0 || parse_duration_value(sla->u.object.values[i], &c->sla_ms[s]) < 0) {
                snprintf(err, errlen, "sla.%.32s: expected a severity and a duration like \"4h\"",
                         sla->u.object.keys[i]);
                goto fail;
            }
        }
    }
    const char *p_rw[] = {"report_window", NULL};
    yajl_val rw = yajl_tree_get(cfg, p_rw, yajl_t_any);
    if (rw && parse_duration_value(rw, &c->report_window_ms) < 0) {
        snprintf(err, errlen, "report_window: expected a duration like \"24h\"");
        goto fail;
    }
    const char *p_rms[] = {"report_min_severity", NULL};
    yajl_val rms = yajl_tree_get(cfg, p_rms, yajl_t_any);
    if (rms) {
        c->report_min_sev =
            YAJL_IS_STRING(rms) ? cor_kpi_severity_from_name(YAJL_GET_STRING(rms)) : -1;
        if (c->report_min_sev < 0) {
            snprintf(err, errlen, "report_min_severity: expected info|low|medium|high|critical");
            goto fail;
        }
    }
    const char *p_t[] = {"targets", NULL};
    yajl_val tg = yajl_tree_get(cfg, p_t, yajl_t_any);
    if (tg && parse_targets(tg, &c->targets, &c->n_targets, err, errlen) < 0)
        goto fail;
    const char *p_ops[] = {"operators", NULL};
    yajl_val ops = yajl_tree_get(cfg, p_ops, yajl_t_any);
    if (ops) {
        if (!YAJL_IS_OBJECT(ops) || ops->u.object.len > COR_KPI_MAX_OPERATORS) {
            snprintf(err, errlen, "operators: expected an object of at most %d operators",
                     COR_KPI_MAX_OPERATORS);
            goto fail;
        }
        c->ops = psb_xcalloc(ops->u.object.len + 1, sizeof(cfg_op));
        for (size_t i = 0; i < ops->u.object.len; i++) {
            c->n_ops++;
            if (parse_op(ops->u.object.keys[i], ops->u.object.values[i], &c->ops[i], err, errlen) <
                0)
                goto fail;
        }
        qsort(c->ops, c->n_ops, sizeof(cfg_op), cmp_cfg_op);
        for (size_t i = 1; i < c->n_ops; i++)
            if (strcmp(c->ops[i - 1].id, c->ops[i].id) == 0) {
                snprintf(err, errlen, "operators: %.64s given twice", c->ops[i].id);
                goto fail;
            }
    }
    yajl_tree_free(root);
    return c;
fail:
    yajl_tree_free(root);
    cor_kpi_config_free(c);
    return NULL;
}

/* ---- engine state ---- */

/* The event counters of one (events partition, day) of an operator: what the
 * daemon writes to the state topic, so a restart or a partition move neither
 * loses nor repeats them. The kday of that day is the sum over its kparts
 * (plus events counted without a partition, by replay and tests). */
typedef struct kpart {
    int32_t part;
    int64_t day;
    int64_t events, parse_failures, oldest, newest;
    int64_t *last_seen; /* per designated source, NONE if silent */
    bool dirty;         /* changed since the last export */
} kpart;

typedef struct kday {
    int64_t day;
    int64_t events, parse_failures;
    int64_t *last_seen; /* per designated source, NONE if silent that day */
    uint32_t *lat;      /* LAT_BUCKETS counters, or NULL */
} kday;

typedef struct kinc {
    char *id, *rule;
    int sev, cat;
    int64_t first_seen, detected_at;
    int64_t acted_at, contained_at, resolved_at, fp_at, reported_at;
    struct kop *owner;
} kinc;

/* A record another instance published on pasban.kpi, with what the CSV and
 * /metrics need from it already taken out. */
typedef struct remote_rec {
    int64_t month;
    char *json;
    cor_kpi_values v;
    size_t n_targets, n_met;
    char *not_met, *fp_rules; /* CSV cells */
} remote_rec;

#define MAX_REMOTE_PER_OP 1200 /* a century of months */

typedef struct kop {
    char *id;
    const cfg_op *cfg; /* NULL for an operator seen but not configured */
    size_t n_sources;
    kday *days; /* sorted by day */
    size_t n_days, cap_days;
    kinc **incs; /* sorted by first_seen, then id */
    size_t n_incs, cap_incs;
    int64_t total_events, total_parse_failures, total_incidents;
    uint64_t generation; /* bumped by every input about this operator */
    remote_rec *remote;  /* sorted by month */
    size_t n_remote;
    kpart *parts; /* unsorted: a handful per operator */
    size_t n_parts, cap_parts, last_part;
} kop;

struct cor_kpi {
    cor_kpi_config *cfg;
    kop **ops; /* sorted by id */
    size_t n_ops;
    kinc **tab; /* open addressing by incident id */
    size_t tab_cap, tab_n;
    int64_t clock; /* latest event time seen, NONE before the first */
    int64_t first; /* earliest event or first_seen, NONE before the first */
};

static kop *op_new(const char *id, const cfg_op *cfg)
{
    kop *o = psb_xcalloc(1, sizeof(*o));
    o->id = psb_xstrdup(id);
    o->cfg = cfg;
    o->n_sources = cfg ? cfg->n_sources : 0;
    return o;
}

static void op_free(kop *o)
{
    for (size_t i = 0; i < o->n_days; i++) {
        free(o->days[i].last_seen);
        free(o->days[i].lat);
    }
    free(o->days);
    free(o->incs);
    for (size_t i = 0; i < o->n_remote; i++) {
        free(o->remote[i].json);
        free(o->remote[i].not_met);
        free(o->remote[i].fp_rules);
    }
    free(o->remote);
    for (size_t i = 0; i < o->n_parts; i++)
        free(o->parts[i].last_seen);
    free(o->parts);
    free(o->id);
    free(o);
}

static size_t op_lower_bound(const cor_kpi *k, const char *id)
{
    size_t lo = 0, hi = k->n_ops;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(k->ops[mid]->id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static kop *op_find(const cor_kpi *k, const char *id)
{
    size_t i = op_lower_bound(k, id);
    return i < k->n_ops && strcmp(k->ops[i]->id, id) == 0 ? k->ops[i] : NULL;
}

static kop *op_get(cor_kpi *k, const char *id)
{
    size_t i = op_lower_bound(k, id);
    if (i < k->n_ops && strcmp(k->ops[i]->id, id) == 0)
        return k->ops[i];
    if (k->n_ops >= COR_KPI_MAX_OPERATORS || !*id || strlen(id) > COR_KPI_MAX_ID_LEN)
        return NULL;
    k->ops = psb_xrealloc(k->ops, (k->n_ops + 1) * sizeof(kop *));
    memmove(k->ops + i + 1, k->ops + i, (k->n_ops - i) * sizeof(kop *));
    k->ops[i] = op_new(id, NULL);
    k->n_ops++;
    return k->ops[i];
}

cor_kpi *cor_kpi_new(cor_kpi_config *cfg)
{
    cor_kpi *k = psb_xcalloc(1, sizeof(*k));
    k->cfg = cfg ? cfg : cor_kpi_config_new();
    k->clock = NONE;
    k->first = NONE;
    k->ops = psb_xcalloc(k->cfg->n_ops + 1, sizeof(kop *));
    for (size_t i = 0; i < k->cfg->n_ops; i++)
        k->ops[k->n_ops++] = op_new(k->cfg->ops[i].id, &k->cfg->ops[i]);
    k->tab_cap = 1024;
    k->tab = psb_xcalloc(k->tab_cap, sizeof(kinc *));
    return k;
}

void cor_kpi_free(cor_kpi *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->tab_cap; i++)
        if (k->tab[i]) {
            free(k->tab[i]->id);
            free(k->tab[i]->rule);
            free(k->tab[i]);
        }
    free(k->tab);
    for (size_t i = 0; i < k->n_ops; i++)
        op_free(k->ops[i]);
    free(k->ops);
    cor_kpi_config_free(k->cfg);
    free(k);
}

size_t cor_kpi_n_operators(const cor_kpi *k)
{
    return k->n_ops;
}

uint64_t cor_kpi_generation(const cor_kpi *k, const char *op)
{
    const kop *o = op ? op_find(k, op) : NULL;
    return o ? o->generation : 0;
}
const char *cor_kpi_operator(const cor_kpi *k, size_t i)
{
    return k->ops[i]->id;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Times outside years 1970..9999 are refused: a clock that far off is a parsing
 * bug, and it would open a period nobody asked for. */
#define MIN_MS 0LL
#define MAX_MS 253402300799999LL

static kday *day_get(kop *o, int64_t day, bool create)
{
    size_t lo = 0, hi = o->n_days;
    /* Events mostly arrive in time order: try the last day first. */
    if (o->n_days && o->days[o->n_days - 1].day == day)
        return &o->days[o->n_days - 1];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o->days[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < o->n_days && o->days[lo].day == day)
        return &o->days[lo];
    if (!create)
        return NULL;
    if (o->n_days == o->cap_days) {
        o->cap_days = o->cap_days ? o->cap_days * 2 : 32;
        o->days = psb_xrealloc(o->days, o->cap_days * sizeof(kday));
    }
    memmove(o->days + lo + 1, o->days + lo, (o->n_days - lo) * sizeof(kday));
    kday *d = &o->days[lo];
    memset(d, 0, sizeof(*d));
    d->day = day;
    if (o->n_sources) {
        d->last_seen = psb_xmalloc(o->n_sources * sizeof(int64_t));
        for (size_t i = 0; i < o->n_sources; i++)
            d->last_seen[i] = NONE;
    }
    o->n_days++;
    return d;
}

static int source_index(const kop *o, const char *host)
{
    if (!o->cfg || !host || !*host)
        return -1;
    char low[COR_KPI_MAX_ID_LEN + 1];
    size_t n = strlen(host);
    if (n > COR_KPI_MAX_ID_LEN)
        return -1;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)host[i]);
    size_t lo = 0, hi = o->n_sources;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(o->cfg->sources[mid], low);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static kpart *part_get(kop *o, int32_t part, int64_t day, bool create)
{
    if (o->last_part < o->n_parts && o->parts[o->last_part].part == part &&
        o->parts[o->last_part].day == day)
        return &o->parts[o->last_part];
    for (size_t i = 0; i < o->n_parts; i++)
        if (o->parts[i].part == part && o->parts[i].day == day) {
            o->last_part = i;
            return &o->parts[i];
        }
    if (!create)
        return NULL;
    if (o->n_parts == o->cap_parts) {
        o->cap_parts = o->cap_parts ? o->cap_parts * 2 : 8;
        o->parts = psb_xrealloc(o->parts, o->cap_parts * sizeof(kpart));
    }
    kpart *x = &o->parts[o->n_parts];
    memset(x, 0, sizeof(*x));
    x->part = part;
    x->day = day;
    x->oldest = x->newest = NONE;
    if (o->n_sources) {
        x->last_seen = psb_xmalloc(o->n_sources * sizeof(int64_t));
        for (size_t i = 0; i < o->n_sources; i++)
            x->last_seen[i] = NONE;
    }
    o->last_part = o->n_parts++;
    return x;
}

static void part_remove(kop *o, size_t i)
{
    free(o->parts[i].last_seen);
    o->parts[i] = o->parts[--o->n_parts];
    o->last_part = 0;
}

static int count_event(cor_kpi *k, int32_t part, const char *op, int64_t t, const char *host,
                       bool is_parse_failure)
{
    if (!op || t < MIN_MS || t > MAX_MS)
        return -1;
    kop *o = op_get(k, op);
    if (!o)
        return -1;
    int s = source_index(o, host);
    if (part >= 0) {
        kpart *x = part_get(o, part, floor_div(t, DAY_MS), true);
        x->events++;
        x->parse_failures += is_parse_failure;
        if (x->oldest == NONE || t < x->oldest)
            x->oldest = t;
        if (x->newest < t)
            x->newest = t;
        if (s >= 0 && x->last_seen[s] < t)
            x->last_seen[s] = t;
        x->dirty = true;
    }
    kday *d = day_get(o, floor_div(t, DAY_MS), true);
    d->events++;
    o->total_events++;
    o->generation++;
    if (is_parse_failure) {
        d->parse_failures++;
        o->total_parse_failures++;
    }
    if (s >= 0 && d->last_seen[s] < t)
        d->last_seen[s] = t;
    if (k->clock < t)
        k->clock = t;
    if (k->first == NONE || t < k->first)
        k->first = t;
    return 0;
}

int cor_kpi_on_event(cor_kpi *k, const char *op, int64_t t, const char *host, bool is_parse_failure)
{
    return count_event(k, -1, op, t, host, is_parse_failure);
}

int cor_kpi_on_psb_event(cor_kpi *k, const psb_event *ev)
{
    return cor_kpi_on_psb_event_part(k, -1, ev);
}

int cor_kpi_on_psb_event_part(cor_kpi *k, int32_t part, const psb_event *ev)
{
    char op[COR_KPI_MAX_ID_LEN + 1], host[COR_KPI_MAX_ID_LEN + 1];
    psb_str o = ev->organization_id;
    psb_str h = psb_str_is_set(ev->hostname) && ev->hostname.len ? ev->hostname : ev->observer_ip;
    if (!psb_str_is_set(o) || o.len == 0)
        o = PSB_STR_LIT("unassigned");
    if (o.len > COR_KPI_MAX_ID_LEN)
        return -1;
    memcpy(op, o.ptr, o.len);
    op[o.len] = '\0';
    host[0] = '\0';
    if (psb_str_is_set(h) && h.len <= COR_KPI_MAX_ID_LEN) {
        memcpy(host, h.ptr, h.len);
        host[h.len] = '\0';
    }
    return count_event(k, part, op, ev->timestamp_ms, host[0] ? host : NULL,
                       ev->kind == PSB_EVENT_KIND_PIPELINE_ERROR);
}

static kinc **tab_slot(kinc **tab, size_t cap, const char *id)
{
    size_t i = (size_t)psb_hash_str(id) & (cap - 1);
    while (tab[i] && strcmp(tab[i]->id, id) != 0)
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

static kinc *inc_find(const cor_kpi *k, const char *id)
{
    return *tab_slot(k->tab, k->tab_cap, id);
}

static void tab_insert(cor_kpi *k, kinc *in)
{
    if ((k->tab_n + 1) * 2 > k->tab_cap) {
        size_t cap = k->tab_cap * 2;
        kinc **t = psb_xcalloc(cap, sizeof(kinc *));
        for (size_t i = 0; i < k->tab_cap; i++)
            if (k->tab[i])
                *tab_slot(t, cap, k->tab[i]->id) = k->tab[i];
        free(k->tab);
        k->tab = t;
        k->tab_cap = cap;
    }
    *tab_slot(k->tab, k->tab_cap, in->id) = in;
    k->tab_n++;
}

static int inc_before(const kinc *a, const kinc *b)
{
    if (a->first_seen != b->first_seen)
        return a->first_seen < b->first_seen;
    return strcmp(a->id, b->id) < 0;
}

int cor_kpi_on_incident(cor_kpi *k, const cor_kpi_incident *in)
{
    if (!in->id || !*in->id || strlen(in->id) > COR_KPI_MAX_ID_LEN || !in->op || in->severity < 0 ||
        in->severity >= N_SEV || in->first_seen < MIN_MS || in->first_seen > MAX_MS ||
        in->detected_at < MIN_MS || in->detected_at > MAX_MS)
        return -1;
    if (inc_find(k, in->id))
        return 0;
    if (k->tab_n >= COR_KPI_MAX_INCIDENTS)
        return -1;
    kop *o = op_get(k, in->op);
    if (!o)
        return -1;
    kinc *x = psb_xcalloc(1, sizeof(*x));
    x->id = psb_xstrdup(in->id);
    x->rule = psb_xstrdup(in->rule_id ? in->rule_id : "");
    x->sev = in->severity;
    x->cat = cat_from_category(in->category);
    x->first_seen = in->first_seen;
    x->detected_at = in->detected_at;
    x->owner = o;
    x->acted_at = x->contained_at = x->resolved_at = x->fp_at = x->reported_at = NONE;
    tab_insert(k, x);
    if (k->first == NONE || x->first_seen < k->first)
        k->first = x->first_seen;
    if (o->n_incs == o->cap_incs) {
        o->cap_incs = o->cap_incs ? o->cap_incs * 2 : 64;
        o->incs = psb_xrealloc(o->incs, o->cap_incs * sizeof(kinc *));
    }
    size_t i = o->n_incs;
    while (i > 0 && inc_before(x, o->incs[i - 1]))
        i--;
    memmove(o->incs + i + 1, o->incs + i, (o->n_incs - i) * sizeof(kinc *));
    o->incs[i] = x;
    o->n_incs++;
    o->total_incidents++;
    o->generation++;
    return 0;
}

int cor_kpi_on_update(cor_kpi *k, const char *id, const char *status, int64_t at)
{
    kinc *x = id ? inc_find(k, id) : NULL;
    if (!x || !status)
        return -1;
    int64_t *slot;
    if (strcmp(status, "acknowledged") == 0)
        slot = NULL;
    else if (strcmp(status, "contained") == 0)
        slot = &x->contained_at;
    else if (strcmp(status, "resolved") == 0)
        slot = &x->resolved_at;
    else if (strcmp(status, "false_positive") == 0)
        slot = &x->fp_at;
    else if (strcmp(status, "reported") == 0)
        slot = &x->reported_at;
    else
        return -1;
    if (x->acted_at == NONE || at < x->acted_at)
        x->acted_at = at;
    x->owner->generation++;
    if (slot && (*slot == NONE || at < *slot))
        *slot = at;
    return 0;
}

static int lat_bucket(int64_t us)
{
    if (us < 16)
        return us < 0 ? 0 : (int)us;
    int e = 63 - __builtin_clzll((unsigned long long)us);
    int b = 16 + (e - 4) * 8 + (int)((us >> (e - 3)) & 7);
    return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

/* Middle of a bucket, in microseconds. */
static double lat_value(int b)
{
    if (b < 16)
        return b;
    int e = (b - 16) / 8 + 4, sub = (b - 16) % 8;
    double width = (double)(1LL << (e - 3));
    return (8 + sub) * width + width / 2;
}

void cor_kpi_on_latency(cor_kpi *k, const char *op, int64_t at_ms, int64_t latency_us)
{
    if (!op || at_ms < MIN_MS || at_ms > MAX_MS)
        return;
    kop *o = op_get(k, op);
    if (!o)
        return;
    kday *d = day_get(o, floor_div(at_ms, DAY_MS), true);
    if (!d->lat)
        d->lat = psb_xcalloc(LAT_BUCKETS, sizeof(uint32_t));
    d->lat[lat_bucket(latency_us)]++;
    o->generation++;
}

/* ---- periods ---- */

int cor_kpi_period_parse(const char *s, cor_kpi_period *p)
{
    unsigned y, m, d;
    char tail;
    size_t n = s ? strlen(s) : 0;
    if (n == 7 && sscanf(s, "%4u-%2u%c", &y, &m, &tail) == 2 && s[4] == '-' && m >= 1 && m <= 12 &&
        y >= 1970 && y <= 9999 && isdigit((unsigned char)s[6])) {
        p->is_day = false;
        p->key = (int64_t)y * 12 + m - 1;
        return 0;
    }
    if (n == 10 && sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) == 3 && s[4] == '-' &&
        s[7] == '-' && m >= 1 && m <= 12 && y >= 1970 && y <= 9999 && d >= 1 &&
        d <= psb_days_in_month(y, m) && isdigit((unsigned char)s[9])) {
        p->is_day = true;
        p->key = psb_days_from_civil(y, m, d);
        return 0;
    }
    return -1;
}

void cor_kpi_period_format(cor_kpi_period p, char *buf)
{
    if (p.is_day) {
        int64_t y;
        unsigned m, d;
        psb_civil_from_days(p.key, &y, &m, &d);
        snprintf(buf, 16, "%04d-%02u-%02u", (int)y, m, d);
    } else {
        snprintf(buf, 16, "%04d-%02d", (int)(p.key / 12), (int)(p.key % 12) + 1);
    }
}

void cor_kpi_period_bounds(cor_kpi_period p, int64_t *from, int64_t *to)
{
    if (p.is_day) {
        *from = p.key * DAY_MS;
        *to = *from + DAY_MS;
        return;
    }
    int64_t y = p.key / 12;
    unsigned m = (unsigned)(p.key % 12) + 1;
    *from = psb_days_from_civil(y, m, 1) * DAY_MS;
    *to = *from + (int64_t)psb_days_in_month(y, m) * DAY_MS;
}

cor_kpi_period cor_kpi_period_prev(cor_kpi_period p)
{
    p.key--;
    return p;
}

static cor_kpi_period month_of(int64_t ms)
{
    int64_t y;
    unsigned m, d;
    psb_civil_from_days(floor_div(ms, DAY_MS), &y, &m, &d);
    return (cor_kpi_period){false, y * 12 + m - 1};
}

cor_kpi_period cor_kpi_current_month(const cor_kpi *k)
{
    return month_of(k->clock != NONE ? k->clock : psb_now_ms());
}

/* ---- computing ---- */

static void set(cor_kpi_val *v, double x)
{
    v->v = x;
    v->set = true;
}

static void set_mean(cor_kpi_val *v, int64_t sum_ms, int64_t n)
{
    if (n > 0)
        set(v, (double)sum_ms / (double)n / 1000.0);
}

static void set_pct(cor_kpi_val *v, int64_t num, int64_t den)
{
    if (den > 0)
        set(v, 100.0 * (double)num / (double)den);
}

static size_t inc_lower_bound(const kop *o, int64_t t)
{
    size_t lo = 0, hi = o->n_incs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o->incs[mid]->first_seen < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t sources_reporting(const cor_kpi *k, const kop *o, int64_t from, int64_t to)
{
    if (!o->n_sources || k->clock == NONE)
        return 0;
    int64_t r = to - 1 < k->clock ? to - 1 : k->clock;
    if (r < from)
        return 0;
    int64_t day = floor_div(r, DAY_MS);
    const kday *d0 = day_get((kop *)o, day, false);
    const kday *d1 = day_get((kop *)o, day - 1, false);
    size_t n = 0;
    for (size_t i = 0; i < o->n_sources; i++) {
        int64_t last = NONE;
        if (d0 && d0->last_seen[i] != NONE)
            last = d0->last_seen[i];
        else if (d1)
            last = d1->last_seen[i];
        if (last != NONE && last <= r && last > r - DAY_MS)
            n++;
    }
    return n;
}

static void compute(const cor_kpi *k, const kop *o, cor_kpi_period p, cor_kpi_values *v)
{
    const cor_kpi_config *c = k->cfg;
    int64_t from, to;
    memset(v, 0, sizeof(*v));
    cor_kpi_period_bounds(p, &from, &to);
    for (int i = 0; i < COR_KPI__N; i++)
        if (kpi_kinds[i] == COR_KPI_COUNT)
            set(cor_kpi_values_at(v, i), 0);

    uint64_t lat[LAT_BUCKETS] = {0};
    uint64_t lat_n = 0;
    for (size_t i = 0; i < o->n_days; i++) {
        const kday *d = &o->days[i];
        if (d->day < floor_div(from, DAY_MS) || d->day >= floor_div(to, DAY_MS))
            continue;
        v->events_ingested.v += (double)d->events;
        v->parse_failures.v += (double)d->parse_failures;
        if (d->lat)
            for (int b = 0; b < LAT_BUCKETS; b++) {
                lat[b] += d->lat[b];
                lat_n += d->lat[b];
            }
    }
    if (lat_n) {
        uint64_t want50 = (lat_n + 1) / 2, want99 = (lat_n * 99 + 99) / 100, acc = 0;
        for (int b = 0; b < LAT_BUCKETS; b++) {
            acc += lat[b];
            if (acc >= want50 && !v->detection_latency_p50_s.set)
                set(&v->detection_latency_p50_s, lat_value(b) / 1e6);
            if (acc >= want99 && !v->detection_latency_p99_s.set)
                set(&v->detection_latency_p99_s, lat_value(b) / 1e6);
        }
    }

    v->sources_designated.v = (double)o->n_sources;
    v->sources_reporting.v = (double)sources_reporting(k, o, from, to);
    /* A period that has not begun in event time has no coverage yet, rather than 0 %. */
    if (o->n_sources && k->clock != NONE && k->clock >= from)
        set(&v->coverage_pct, 100.0 * v->sources_reporting.v / (double)o->n_sources);

    int64_t n = 0, fp = 0, open = 0, sum_d = 0, sum_a = 0, n_a = 0, sum_c = 0, n_c = 0;
    int64_t sum_r = 0, n_r = 0, real = 0, in_sla = 0, reportable = 0, in_time = 0;
    int64_t by_sev[N_SEV] = {0}, by_cat[N_CAT] = {0};
    for (size_t i = inc_lower_bound(o, from); i < o->n_incs && o->incs[i]->first_seen < to; i++) {
        const kinc *x = o->incs[i];
        n++;
        by_sev[x->sev]++;
        by_cat[x->cat]++;
        sum_d += x->detected_at - x->first_seen;
        if (x->acted_at != NONE) {
            sum_a += x->acted_at - x->detected_at;
            n_a++;
        }
        if (x->fp_at != NONE) {
            fp++;
            continue;
        }
        real++;
        if (x->resolved_at == NONE)
            open++;
        if (x->contained_at != NONE) {
            sum_c += x->contained_at - x->detected_at;
            n_c++;
        }
        if (x->resolved_at != NONE) {
            sum_r += x->resolved_at - x->detected_at;
            n_r++;
            if (x->resolved_at - x->detected_at <= c->sla_ms[x->sev])
                in_sla++;
        }
        if (x->sev >= c->report_min_sev) {
            reportable++;
            if (x->reported_at != NONE && x->reported_at - x->detected_at <= c->report_window_ms)
                in_time++;
        }
    }
    v->incidents.v = (double)n;
    for (int s = 0; s < N_SEV; s++)
        cor_kpi_values_at(v, COR_KPI_incidents_info + s)->v = (double)by_sev[s];
    for (size_t i = 0; i < N_CAT; i++)
        cor_kpi_values_at(v, COR_KPI_cat_abusive_content + (int)i)->v = (double)by_cat[i];
    v->open_incidents.v = (double)open;
    set_mean(&v->mttd_s, sum_d, n);
    set_mean(&v->mtta_s, sum_a, n_a);
    set_mean(&v->mttc_s, sum_c, n_c);
    set_mean(&v->mttr_s, sum_r, n_r);
    set_pct(&v->resolved_within_sla_pct, in_sla, real);
    v->reportable.v = (double)reportable;
    set_pct(&v->reported_in_time_pct, in_time, reportable);
    v->false_positives.v = (double)fp;
    set_pct(&v->false_positive_pct, fp, n);
}

int cor_kpi_compute(const cor_kpi *k, const char *op, cor_kpi_period p, cor_kpi_values *out)
{
    const kop *o = op ? op_find(k, op) : NULL;
    if (!o)
        return -1;
    compute(k, o, p, out);
    return 0;
}

/* ---- output ---- */

static void put_num(cor_buf *b, int kind, double x)
{
    char tmp[64];
    /* An imported record (pasban.kpi, another instance's) can carry any number:
     * converting one past the range of long long is undefined, "%.3f" of 1e300
     * does not fit tmp, and JSON has no inf or NaN. */
    if (!isfinite(x))
        snprintf(tmp, sizeof(tmp), "null");
    else if (fabs(x) >= 1e15)
        snprintf(tmp, sizeof(tmp), "%.17g", x);
    else if (kind == COR_KPI_COUNT)
        snprintf(tmp, sizeof(tmp), "%lld", (long long)x);
    else if (kind == COR_KPI_PCT)
        snprintf(tmp, sizeof(tmp), "%.2f", x);
    else
        snprintf(tmp, sizeof(tmp), "%.3f", x);
    /* "-0.00" after rounding a tiny negative change reads as a regression: print 0. */
    if (strspn(tmp, "-0.") == strlen(tmp) && tmp[0] == '-')
        memmove(tmp, tmp + 1, strlen(tmp));
    cor_buf_puts(b, tmp);
}

static void put_time(cor_buf *b, int64_t ms)
{
    char t[PSB_TIME_BUFSZ];
    size_t n = psb_format_time_ms(ms, t);
    cor_buf_putc(b, '"');
    cor_buf_put(b, t, n);
    cor_buf_putc(b, '"');
}

static void put_key(cor_buf *b, const char *k)
{
    cor_buf_json_str(b, k, strlen(k));
    cor_buf_putc(b, ':');
}

static void put_values(cor_buf *b, const cor_kpi_values *v)
{
    cor_buf_putc(b, '{');
    for (int i = 0; i < COR_KPI__N; i++) {
        if (i)
            cor_buf_putc(b, ',');
        put_key(b, kpi_names[i]);
        const cor_kpi_val *x = val_at(v, i);
        if (x->set)
            put_num(b, kpi_kinds[i], x->v);
        else
            cor_buf_puts(b, "null");
    }
    cor_buf_putc(b, '}');
}

/* Targets of an operator: its own, and the defaults for KPIs it does not name. */
static size_t targets_of(const cor_kpi *k, const kop *o, cfg_target *out)
{
    size_t n = 0;
    bool have[COR_KPI__N] = {false};
    if (o->cfg)
        for (size_t i = 0; i < o->cfg->n_targets && n < COR_KPI__N; i++)
            if (!have[o->cfg->targets[i].kpi]) {
                have[o->cfg->targets[i].kpi] = true;
                out[n++] = o->cfg->targets[i];
            }
    for (size_t i = 0; i < k->cfg->n_targets && n < COR_KPI__N; i++)
        if (!have[k->cfg->targets[i].kpi]) {
            have[k->cfg->targets[i].kpi] = true;
            out[n++] = k->cfg->targets[i];
        }
    return n;
}

static bool target_met(const cfg_target *t, double actual)
{
    /* Compare the value as printed, so the sheet never shows "95.00 >= 95: not met". */
    double a = kpi_kinds[t->kpi] == COR_KPI_PCT ? (double)llround(actual * 100) / 100 : actual;
    switch (t->op) {
    case OP_GE:
        return a >= t->value;
    case OP_LE:
        return a <= t->value;
    case OP_GT:
        return a > t->value;
    case OP_LT:
        return a < t->value;
    default:
        return a == t->value;
    }
}

typedef struct rule_fp {
    const char *rule;
    int64_t incidents, fps;
} rule_fp;

static int cmp_kinc_rule(const void *a, const void *b)
{
    return strcmp((*(kinc *const *)a)->rule, (*(kinc *const *)b)->rule);
}

/* False positives per rule among the period's incidents, rules in byte order. */
static rule_fp *fp_by_rule(const kop *o, int64_t from, int64_t to, size_t *n_out)
{
    size_t lo = inc_lower_bound(o, from), hi = inc_lower_bound(o, to);
    *n_out = 0;
    if (hi <= lo)
        return NULL;
    kinc **tmp = psb_xmalloc((hi - lo) * sizeof(kinc *));
    memcpy(tmp, o->incs + lo, (hi - lo) * sizeof(kinc *));
    qsort(tmp, hi - lo, sizeof(kinc *), cmp_kinc_rule);
    rule_fp *r = psb_xcalloc(hi - lo, sizeof(rule_fp));
    size_t n = 0;
    for (size_t i = 0; i < hi - lo; i++) {
        if (n == 0 || strcmp(r[n - 1].rule, tmp[i]->rule) != 0)
            r[n++].rule = tmp[i]->rule;
        r[n - 1].incidents++;
        if (tmp[i]->fp_at != NONE)
            r[n - 1].fps++;
    }
    free(tmp);
    *n_out = n;
    return r;
}

bool cor_kpi_has_events(const cor_kpi *k, const char *op, cor_kpi_period p)
{
    const kop *o = op ? op_find(k, op) : NULL;
    int64_t from, to;
    if (!o)
        return false;
    cor_kpi_period_bounds(p, &from, &to);
    for (size_t i = 0; i < o->n_days; i++)
        if (o->days[i].events > 0 && o->days[i].day >= floor_div(from, DAY_MS) &&
            o->days[i].day < floor_div(to, DAY_MS))
            return true;
    return false;
}

/* The imported record to show for (o, p): only for a month in which this
 * instance has no events of o (then the publisher knows more than we do). */
static const remote_rec *remote_for(const cor_kpi *k, const kop *o, cor_kpi_period p)
{
    if (p.is_day || !o->n_remote || cor_kpi_has_events(k, o->id, p))
        return NULL;
    for (size_t i = 0; i < o->n_remote; i++)
        if (o->remote[i].month == p.key)
            return &o->remote[i];
    return NULL;
}

int cor_kpi_import_record(cor_kpi *k, const char *key, size_t key_len, const char *json, size_t len)
{
    char kbuf[COR_KPI_MAX_ID_LEN + 16], ybuf[128];
    const char *slash = key ? memchr(key, '/', key_len) : NULL;
    cor_kpi_period p;
    /* A NUL in the key would end the operator or the period early: the key
     * "op-a/2026-11\0junk" would pass for op-a's November record. */
    if (!slash || key_len >= sizeof(kbuf) || len > (1u << 20) || memchr(key, '\0', key_len))
        return -1;
    memcpy(kbuf, key, key_len);
    kbuf[key_len] = '\0';
    kbuf[slash - key] = '\0';
    const char *op = kbuf, *per = kbuf + (slash - key) + 1;
    if (cor_kpi_period_parse(per, &p) < 0 || p.is_day)
        return -1;
    char *copy = psb_xstrndup(json, len);
    yajl_val r = psb_json_record_parse(copy, ybuf, sizeof(ybuf));
    remote_rec rec;
    memset(&rec, 0, sizeof(rec));
    int rc = -1;
    const char *p_op[] = {"operator", NULL}, *p_per[] = {"period", NULL}, *p_kpi[] = {"kpi", NULL};
    const char *p_t[] = {"targets", NULL}, *p_fp[] = {"false_positives_by_rule", NULL};
    yajl_val vop = yajl_tree_get(r, p_op, yajl_t_string),
             vper = yajl_tree_get(r, p_per, yajl_t_string);
    yajl_val vk = yajl_tree_get(r, p_kpi, yajl_t_object), vt = yajl_tree_get(r, p_t, yajl_t_object);
    yajl_val vfp = yajl_tree_get(r, p_fp, yajl_t_array);
    if (!r || !vop || !vper || !vk || strcmp(vop->u.string, op) != 0 ||
        strcmp(vper->u.string, per) != 0)
        goto out;
    for (int i = 0; i < COR_KPI__N; i++) {
        const char *p_v[] = {kpi_names[i], NULL};
        yajl_val x = yajl_tree_get(vk, p_v, yajl_t_number);
        if (x)
            set(cor_kpi_values_at(&rec.v, i), YAJL_GET_DOUBLE(x));
    }
    cor_buf cell = {0};
    for (size_t i = 0; vt && i < vt->u.object.len; i++) {
        const char *p_met[] = {"met", NULL}, *p_tg[] = {"target", NULL};
        yajl_val met = yajl_tree_get(vt->u.object.values[i], p_met, yajl_t_any);
        yajl_val tg = yajl_tree_get(vt->u.object.values[i], p_tg, yajl_t_string);
        rec.n_targets++;
        if (YAJL_IS_TRUE(met)) {
            rec.n_met++;
            continue;
        }
        if (cell.len)
            cor_buf_puts(&cell, "; ");
        cor_buf_puts(&cell, vt->u.object.keys[i]);
        cor_buf_putc(&cell, ' ');
        cor_buf_puts(&cell, tg ? tg->u.string : "?");
    }
    cor_buf_putc(&cell, '\0');
    rec.not_met = cell.p;
    cell = (cor_buf){0};
    for (size_t i = 0; vfp && i < vfp->u.array.len; i++) {
        const char *p_r[] = {"rule", NULL}, *p_i[] = {"incidents", NULL},
                   *p_f[] = {"false_positives", NULL};
        yajl_val vr = yajl_tree_get(vfp->u.array.values[i], p_r, yajl_t_string);
        yajl_val vi = yajl_tree_get(vfp->u.array.values[i], p_i, yajl_t_number);
        yajl_val vf = yajl_tree_get(vfp->u.array.values[i], p_f, yajl_t_number);
        if (!vr || !vi || !vf || YAJL_GET_INTEGER(vf) == 0)
            continue;
        char t[64];
        if (cell.len)
            cor_buf_puts(&cell, "; ");
        cor_buf_puts(&cell, vr->u.string);
        snprintf(t, sizeof(t), " %lld/%lld", YAJL_GET_INTEGER(vf), YAJL_GET_INTEGER(vi));
        cor_buf_puts(&cell, t);
    }
    cor_buf_putc(&cell, '\0');
    rec.fp_rules = cell.p;
    kop *o = op_get(k, op);
    if (!o)
        goto out;
    size_t i = 0;
    while (i < o->n_remote && o->remote[i].month < p.key)
        i++;
    if (i < o->n_remote && o->remote[i].month == p.key) {
        free(o->remote[i].json);
        free(o->remote[i].not_met);
        free(o->remote[i].fp_rules);
    } else {
        if (o->n_remote >= MAX_REMOTE_PER_OP)
            goto out;
        o->remote = psb_xrealloc(o->remote, (o->n_remote + 1) * sizeof(remote_rec));
        memmove(o->remote + i + 1, o->remote + i, (o->n_remote - i) * sizeof(remote_rec));
        o->n_remote++;
    }
    rec.month = p.key;
    rec.json = psb_xstrndup(json, len);
    o->remote[i] = rec;
    rec.not_met = rec.fp_rules = NULL;
    rc = 0;
out:
    free(rec.not_met);
    free(rec.fp_rules);
    yajl_tree_free(r);
    free(copy);
    return rc;
}

static void write_record(const cor_kpi *k, const kop *o, cor_kpi_period p, cor_buf *b)
{
    const remote_rec *rr = remote_for(k, o, p);
    if (rr) {
        cor_buf_puts(b, rr->json);
        return;
    }
    char per[16], prev_s[16];
    cor_kpi_values cur, prev;
    cor_kpi_period pp = cor_kpi_period_prev(p);
    int64_t from, to;
    compute(k, o, p, &cur);
    compute(k, o, pp, &prev);
    cor_kpi_period_bounds(p, &from, &to);
    cor_kpi_period_format(p, per);
    cor_kpi_period_format(pp, prev_s);

    cor_buf_puts(b, "{\"operator\":");
    cor_buf_json_str(b, o->id, strlen(o->id));
    cor_buf_puts(b, ",\"period\":");
    cor_buf_json_str(b, per, strlen(per));
    cor_buf_puts(b, ",\"from\":");
    put_time(b, from);
    cor_buf_puts(b, ",\"to\":");
    put_time(b, to);
    cor_buf_puts(b, ",\"previous_period\":");
    cor_buf_json_str(b, prev_s, strlen(prev_s));
    cor_buf_puts(b, ",\"kpi\":");
    put_values(b, &cur);

    cor_buf_puts(b, ",\"change\":{");
    for (int i = 0; i < COR_KPI__N; i++) {
        if (i)
            cor_buf_putc(b, ',');
        put_key(b, kpi_names[i]);
        const cor_kpi_val *a = val_at(&cur, i), *z = val_at(&prev, i);
        if (a->set && z->set)
            put_num(b, kpi_kinds[i], a->v - z->v);
        else
            cor_buf_puts(b, "null");
    }
    cor_buf_putc(b, '}');

    cfg_target tg[COR_KPI__N];
    size_t nt = targets_of(k, o, tg);
    cor_buf_puts(b, ",\"targets\":{");
    for (size_t i = 0; i < nt; i++) {
        int id = tg[i].kpi;
        const cor_kpi_val *a = val_at(&cur, id), *z = val_at(&prev, id);
        char tv[64];
        if (i)
            cor_buf_putc(b, ',');
        put_key(b, kpi_names[id]);
        snprintf(tv, sizeof(tv), "%s %g", op_text[tg[i].op], tg[i].value);
        cor_buf_puts(b, "{\"target\":");
        cor_buf_json_str(b, tv, strlen(tv));
        cor_buf_puts(b, ",\"op\":");
        cor_buf_json_str(b, op_text[tg[i].op], strlen(op_text[tg[i].op]));
        snprintf(tv, sizeof(tv), ",\"value\":%g,\"actual\":", tg[i].value);
        cor_buf_puts(b, tv);
        if (a->set)
            put_num(b, kpi_kinds[id], a->v);
        else
            cor_buf_puts(b, "null");
        cor_buf_puts(b, ",\"met\":");
        cor_buf_puts(b, !a->set ? "null" : target_met(&tg[i], a->v) ? "true" : "false");
        cor_buf_puts(b, ",\"previous\":");
        if (z->set)
            put_num(b, kpi_kinds[id], z->v);
        else
            cor_buf_puts(b, "null");
        cor_buf_puts(b, ",\"previous_met\":");
        cor_buf_puts(b, !z->set ? "null" : target_met(&tg[i], z->v) ? "true" : "false");
        cor_buf_puts(b, ",\"change\":");
        if (a->set && z->set)
            put_num(b, kpi_kinds[id], a->v - z->v);
        else
            cor_buf_puts(b, "null");
        cor_buf_putc(b, '}');
    }
    cor_buf_putc(b, '}');

    size_t nr;
    rule_fp *r = fp_by_rule(o, from, to, &nr);
    cor_buf_puts(b, ",\"false_positives_by_rule\":[");
    for (size_t i = 0; i < nr; i++) {
        char tmp[96];
        if (i)
            cor_buf_putc(b, ',');
        cor_buf_puts(b, "{\"rule\":");
        cor_buf_json_str(b, r[i].rule, strlen(r[i].rule));
        snprintf(tmp, sizeof(tmp),
                 ",\"incidents\":%" PRId64 ",\"false_positives\":%" PRId64 ",\"rate_pct\":",
                 r[i].incidents, r[i].fps);
        cor_buf_puts(b, tmp);
        put_num(b, COR_KPI_PCT, 100.0 * (double)r[i].fps / (double)r[i].incidents);
        cor_buf_putc(b, '}');
    }
    free(r);
    cor_buf_puts(b, "]}");
}

int cor_kpi_write_json(const cor_kpi *k, const char *op, cor_kpi_period p, cor_buf *b)
{
    const kop *o = op ? op_find(k, op) : NULL;
    if (!o)
        return -1;
    write_record(k, o, p, b);
    return 0;
}

/* {"period":"YYYY-MM","records":[every operator's record] -- left open for the
 * caller to close or to add the days. */
static void write_period_records(const cor_kpi *k, cor_kpi_period p, cor_buf *b)
{
    char per[16];
    cor_kpi_period_format(p, per);
    cor_buf_puts(b, "{\"period\":");
    cor_buf_json_str(b, per, strlen(per));
    cor_buf_puts(b, ",\"records\":[");
    for (size_t i = 0; i < k->n_ops; i++) {
        if (i)
            cor_buf_putc(b, ',');
        write_record(k, k->ops[i], p, b);
    }
    cor_buf_putc(b, ']');
}

void cor_kpi_write_json_all(const cor_kpi *k, cor_kpi_period p, cor_buf *b)
{
    write_period_records(k, p, b);
    cor_buf_putc(b, '}');
}

int cor_kpi_write_days_json(const cor_kpi *k, const char *op, cor_kpi_period month, cor_buf *b)
{
    const kop *o = op ? op_find(k, op) : NULL;
    if (!o || month.is_day)
        return -1;
    char per[16];
    int64_t from, to;
    cor_kpi_period_bounds(month, &from, &to);
    cor_kpi_period_format(month, per);
    cor_buf_puts(b, "{\"operator\":");
    cor_buf_json_str(b, o->id, strlen(o->id));
    cor_buf_puts(b, ",\"period\":");
    cor_buf_json_str(b, per, strlen(per));
    cor_buf_puts(b, ",\"days\":[");
    for (int64_t d = from / DAY_MS; d < to / DAY_MS; d++) {
        cor_kpi_period dp = {true, d};
        cor_kpi_values v;
        compute(k, o, dp, &v);
        cor_kpi_period_format(dp, per);
        if (d != from / DAY_MS)
            cor_buf_putc(b, ',');
        cor_buf_puts(b, "{\"period\":");
        cor_buf_json_str(b, per, strlen(per));
        cor_buf_puts(b, ",\"kpi\":");
        put_values(b, &v);
        cor_buf_putc(b, '}');
    }
    cor_buf_puts(b, "]}");
    return 0;
}

void cor_kpi_write_report(const cor_kpi *k, cor_buf *b)
{
    cor_buf_puts(b, "{\"kpi_report_version\":2,\"months\":[");
    if (k->first != NONE) {
        int64_t last = k->clock != NONE && k->clock > k->first ? k->clock : k->first;
        for (size_t i = 0; i < k->n_ops; i++) /* incidents may be later than any event */
            if (k->ops[i]->n_incs && k->ops[i]->incs[k->ops[i]->n_incs - 1]->first_seen > last)
                last = k->ops[i]->incs[k->ops[i]->n_incs - 1]->first_seen;
        cor_kpi_period m = month_of(k->first), end = month_of(last);
        for (; m.key <= end.key; m.key++) {
            if (m.key != month_of(k->first).key)
                cor_buf_putc(b, ',');
            write_period_records(k, m, b);
            cor_buf_puts(b, ",\"days\":[");
            for (size_t i = 0; i < k->n_ops; i++) {
                if (i)
                    cor_buf_putc(b, ',');
                cor_kpi_write_days_json(k, k->ops[i]->id, m, b);
            }
            cor_buf_puts(b, "]}");
        }
    }
    cor_buf_puts(b, "]}\n");
}

/* RFC 4180: quote a field holding a comma, quote, CR or LF; double inner quotes. */
static void csv_field(cor_buf *b, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        cor_buf_puts(b, s);
        return;
    }
    cor_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"')
            cor_buf_putc(b, '"');
        cor_buf_putc(b, *s);
    }
    cor_buf_putc(b, '"');
}

void cor_kpi_write_csv(const cor_kpi *k, cor_kpi_period p, const char *only_op, cor_buf *b)
{
    char per[16];
    cor_kpi_period_format(p, per);
    cor_buf_puts(b, "operator,period");
    for (int i = 0; i < COR_KPI__N; i++) {
        cor_buf_putc(b, ',');
        cor_buf_puts(b, kpi_names[i]);
    }
    cor_buf_puts(b, ",targets,targets_met,targets_not_met,false_positives_by_rule\r\n");
    for (size_t oi = 0; oi < k->n_ops; oi++) {
        const kop *o = k->ops[oi];
        if (only_op && strcmp(only_op, o->id) != 0)
            continue;
        cor_kpi_values v;
        int64_t from, to;
        const remote_rec *rr = remote_for(k, o, p);
        if (rr)
            v = rr->v;
        else
            compute(k, o, p, &v);
        cor_kpi_period_bounds(p, &from, &to);
        csv_field(b, o->id);
        cor_buf_putc(b, ',');
        cor_buf_puts(b, per);
        for (int i = 0; i < COR_KPI__N; i++) {
            cor_buf_putc(b, ',');
            const cor_kpi_val *x = val_at(&v, i);
            if (x->set)
                put_num(b, kpi_kinds[i], x->v);
        }
        if (rr) {
            char cnt[48];
            snprintf(cnt, sizeof(cnt), ",%zu,%zu,", rr->n_targets, rr->n_met);
            cor_buf_puts(b, cnt);
            csv_field(b, rr->not_met);
            cor_buf_putc(b, ',');
            csv_field(b, rr->fp_rules);
            cor_buf_puts(b, "\r\n");
            continue;
        }
        cfg_target tg[COR_KPI__N];
        size_t nt = targets_of(k, o, tg), met = 0;
        cor_buf tmp = {0};
        for (size_t i = 0; i < nt; i++) {
            const cor_kpi_val *x = val_at(&v, tg[i].kpi);
            if (x->set && target_met(&tg[i], x->v)) {
                met++;
                continue;
            }
            char t[160];
            snprintf(t, sizeof(t), "%s%s %s %g", tmp.len ? "; " : "", kpi_names[tg[i].kpi],
                     op_text[tg[i].op], tg[i].value);
            cor_buf_puts(&tmp, t);
        }
        cor_buf_putc(&tmp, '\0');
        char cnt[48];
        snprintf(cnt, sizeof(cnt), ",%zu,%zu,", nt, met);
        cor_buf_puts(b, cnt);
        csv_field(b, tmp.p);
        tmp.len = 0;
        size_t nr;
        rule_fp *r = fp_by_rule(o, from, to, &nr);
        for (size_t i = 0; i < nr; i++) {
            if (!r[i].fps)
                continue;
            char t[64];
            if (tmp.len)
                cor_buf_puts(&tmp, "; ");
            cor_buf_puts(&tmp, r[i].rule);
            snprintf(t, sizeof(t), " %" PRId64 "/%" PRId64, r[i].fps, r[i].incidents);
            cor_buf_puts(&tmp, t);
        }
        free(r);
        cor_buf_putc(&tmp, '\0');
        cor_buf_putc(b, ',');
        csv_field(b, tmp.p);
        cor_buf_free(&tmp);
        cor_buf_puts(b, "\r\n");
    }
}

/* Prometheus label value: backslash, quote and newline escaped. */
static void prom_label(cor_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            cor_buf_putc(b, '\\');
        if (*s == '\n') {
            cor_buf_puts(b, "\\n");
            continue;
        }
        cor_buf_putc(b, *s);
    }
}

static void prom_head(cor_buf *b, const char *name, const char *help, const char *type)
{
    cor_buf_puts(b, "# HELP ");
    cor_buf_puts(b, name);
    cor_buf_putc(b, ' ');
    cor_buf_puts(b, help);
    cor_buf_puts(b, "\n# TYPE ");
    cor_buf_puts(b, name);
    cor_buf_putc(b, ' ');
    cor_buf_puts(b, type);
    cor_buf_putc(b, '\n');
}

void cor_kpi_write_prometheus(const cor_kpi *k, cor_buf *b)
{
    cor_kpi_values *vals = psb_xcalloc(k->n_ops + 1, sizeof(*vals));
    char per[16];
    cor_kpi_period month = cor_kpi_current_month(k);
    cor_kpi_period_format(month, per);
    for (size_t i = 0; i < k->n_ops; i++)
        if (remote_for(k, k->ops[i], month))
            vals[i] = remote_for(k, k->ops[i], month)->v;
        else
            compute(k, k->ops[i], month, &vals[i]);

    for (int i = 0; i < COR_KPI__N;) {
        int j = i;
        while (j < COR_KPI__N && strcmp(kpi_families[j], kpi_families[i]) == 0)
            j++;
        char name[128];
        snprintf(name, sizeof(name), "pasban_kpi_%s", kpi_families[i]);
        char help[256];
        snprintf(help, sizeof(help), "%s (current month in event time)", kpi_helps[i]);
        prom_head(b, name, help, "gauge");
        for (size_t o = 0; o < k->n_ops; o++)
            for (int f = i; f < j; f++) {
                const cor_kpi_val *x = val_at(&vals[o], f);
                if (!x->set)
                    continue;
                cor_buf_puts(b, name);
                cor_buf_puts(b, "{operator=\"");
                prom_label(b, k->ops[o]->id);
                cor_buf_puts(b, "\",period=\"");
                cor_buf_puts(b, per);
                cor_buf_putc(b, '"');
                if (kpi_labels[f][0]) {
                    cor_buf_putc(b, ',');
                    cor_buf_puts(b, kpi_labels[f]);
                }
                cor_buf_puts(b, "} ");
                put_num(b, kpi_kinds[f], x->v);
                cor_buf_putc(b, '\n');
            }
        i = j;
    }

    static const struct {
        const char *name, *help;
        size_t off;
    } totals[] = {
        {"pasban_kpi_events_total", "Events received since the correlator started",
         offsetof(kop, total_events)},
        {"pasban_kpi_parse_failures_total", "Unparsable events received since start",
         offsetof(kop, total_parse_failures)},
        {"pasban_kpi_incidents_total", "Incidents raised since start",
         offsetof(kop, total_incidents)},
    };
    for (size_t t = 0; t < sizeof(totals) / sizeof(totals[0]); t++) {
        prom_head(b, totals[t].name, totals[t].help, "counter");
        for (size_t o = 0; o < k->n_ops; o++) {
            char num[32];
            snprintf(num, sizeof(num), "\"} %" PRId64 "\n",
                     *(const int64_t *)((const char *)k->ops[o] + totals[t].off));
            cor_buf_puts(b, totals[t].name);
            cor_buf_puts(b, "{operator=\"");
            prom_label(b, k->ops[o]->id);
            cor_buf_puts(b, num);
        }
    }
    free(vals);
}

/* ---- event counters in the state topic ---- */

#define ST_MAGIC "PSKS"
#define ST_VERSION 1

static void st_u32(cor_buf *b, uint32_t v)
{
    char c[4];
    for (int i = 0; i < 4; i++)
        c[i] = (char)(v >> (8 * i));
    cor_buf_put(b, c, 4);
}

static void st_i64(cor_buf *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    st_u32(b, (uint32_t)u);
    st_u32(b, (uint32_t)(u >> 32));
}

/* The first day kept: the first of the previous month of the latest event time. */
static int64_t keep_from_day(const cor_kpi *k)
{
    if (k->clock == NONE)
        return INT64_MIN;
    int64_t from, to;
    cor_kpi_period_bounds(cor_kpi_period_prev(month_of(k->clock)), &from, &to);
    return floor_div(from, DAY_MS);
}

static void state_key(const kop *o, int64_t day, cor_buf *b)
{
    char per[16];
    b->len = 0;
    cor_buf_puts(b, COR_KPI_STATE_PREFIX);
    cor_buf_puts(b, o->id);
    cor_buf_putc(b, '/');
    cor_kpi_period_format((cor_kpi_period){true, day}, per);
    cor_buf_puts(b, per);
}

static void state_value(const kop *o, const kpart *x, cor_buf *b)
{
    b->len = 0;
    cor_buf_put(b, ST_MAGIC, 4);
    cor_buf_put(b, (const char[]){ST_VERSION, 0, 0, 0}, 4);
    st_i64(b, x->events);
    st_i64(b, x->parse_failures);
    st_i64(b, x->oldest);
    st_i64(b, x->newest);
    uint32_t n = 0;
    for (size_t i = 0; i < o->n_sources; i++)
        n += x->last_seen[i] != NONE;
    st_u32(b, n);
    for (size_t i = 0; i < o->n_sources; i++) {
        if (x->last_seen[i] == NONE)
            continue;
        const char *h = o->cfg->sources[i];
        size_t l = strlen(h);
        cor_buf_putc(b, (char)l);
        cor_buf_put(b, h, l);
        st_i64(b, x->last_seen[i]);
    }
}

size_t cor_kpi_state_export(cor_kpi *k, bool all, cor_kpi_state_fn fn, void *arg)
{
    cor_buf key = {0}, val = {0};
    size_t n = 0;
    int64_t keep = keep_from_day(k);
    for (size_t i = 0; i < k->n_ops; i++) {
        kop *o = k->ops[i];
        for (size_t j = 0; j < o->n_parts;) {
            kpart *x = &o->parts[j];
            state_key(o, x->day, &key);
            if (x->day < keep) {
                /* Past the retention: its record goes; the day stays in memory. */
                fn(arg, x->part, key.p, key.len, NULL, 0);
                n++;
                part_remove(o, j);
                continue;
            }
            if (x->dirty || all) {
                state_value(o, x, &val);
                fn(arg, x->part, key.p, key.len, val.p, val.len);
                x->dirty = false;
                n++;
            }
            j++;
        }
    }
    cor_buf_free(&key);
    cor_buf_free(&val);
    return n;
}

void cor_kpi_state_clear_dirty(cor_kpi *k)
{
    for (size_t i = 0; i < k->n_ops; i++)
        for (size_t j = 0; j < k->ops[i]->n_parts; j++)
            k->ops[i]->parts[j].dirty = false;
}

/* Take x's counters out of its day (x about to be replaced or dropped): the
 * counts are subtracted, each source's last time is the latest of what remains
 * of the day's other partitions. */
static void part_unapply(kop *o, const kpart *x)
{
    kday *d = day_get(o, x->day, false);
    if (!d)
        return;
    d->events -= x->events < d->events ? x->events : d->events;
    d->parse_failures -=
        x->parse_failures < d->parse_failures ? x->parse_failures : d->parse_failures;
    for (size_t s = 0; s < o->n_sources; s++) {
        if (x->last_seen[s] == NONE || x->last_seen[s] < d->last_seen[s])
            continue;
        int64_t last = NONE;
        for (size_t j = 0; j < o->n_parts; j++) {
            const kpart *y = &o->parts[j];
            if (y != x && y->day == x->day && y->last_seen[s] > last)
                last = y->last_seen[s];
        }
        d->last_seen[s] = last;
    }
}

static void part_apply(cor_kpi *k, kop *o, const kpart *x)
{
    kday *d = day_get(o, x->day, true);
    d->events += x->events;
    d->parse_failures += x->parse_failures;
    for (size_t s = 0; s < o->n_sources; s++)
        if (x->last_seen[s] > d->last_seen[s])
            d->last_seen[s] = x->last_seen[s];
    if (x->newest != NONE && k->clock < x->newest)
        k->clock = x->newest;
    if (x->oldest != NONE && (k->first == NONE || x->oldest < k->first))
        k->first = x->oldest;
}

size_t cor_kpi_state_drop(cor_kpi *k, int32_t part)
{
    size_t n = 0;
    for (size_t i = 0; i < k->n_ops; i++) {
        kop *o = k->ops[i];
        for (size_t j = 0; j < o->n_parts;) {
            if (part >= 0 && o->parts[j].part != part) {
                j++;
                continue;
            }
            part_unapply(o, &o->parts[j]);
            part_remove(o, j);
            o->generation++;
            n++;
        }
    }
    return n;
}

typedef struct st_rd {
    const unsigned char *p;
    size_t n, at;
    bool bad;
} st_rd;

static int64_t rd_i64(st_rd *r)
{
    if (r->bad || r->n - r->at < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | r->p[r->at + (size_t)i];
    r->at += 8;
    return (int64_t)u;
}

static uint32_t rd_u32(st_rd *r)
{
    if (r->bad || r->n - r->at < 4) {
        r->bad = true;
        return 0;
    }
    uint32_t u = 0;
    for (int i = 3; i >= 0; i--)
        u = (u << 8) | r->p[r->at + (size_t)i];
    r->at += 4;
    return u;
}

#define WHY(...)                                                                                   \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        goto refused;                                                                              \
    } while (0)

int cor_kpi_state_import(cor_kpi *k, int32_t part, const char *key, size_t key_len, const char *rec,
                         size_t len, char *why, size_t whylen)
{
    char op[COR_KPI_MAX_ID_LEN + 1], per[11];
    size_t pl = sizeof(COR_KPI_STATE_PREFIX) - 1;
    kpart x = {0};
    x.part = part;
    if (part < 0)
        WHY("kpi state: no partition");
    if (!key || key_len < pl + 12 || memcmp(key, COR_KPI_STATE_PREFIX, pl) != 0 ||
        key[key_len - 11] != '/')
        WHY("kpi state: malformed key");
    size_t ol = key_len - 11 - pl;
    if (ol == 0 || ol > COR_KPI_MAX_ID_LEN || memchr(key + pl, '\0', ol))
        WHY("kpi state: bad operator in key");
    memcpy(op, key + pl, ol);
    op[ol] = '\0';
    memcpy(per, key + key_len - 10, 10);
    per[10] = '\0';
    cor_kpi_period p;
    if (cor_kpi_period_parse(per, &p) < 0 || !p.is_day)
        WHY("kpi state: bad day in key");
    x.day = p.key;
    int64_t from = x.day * DAY_MS, to = from + DAY_MS;
    st_rd r = {(const unsigned char *)rec, rec ? len : 0, 0, false};
    if (r.n < 8 || memcmp(rec, ST_MAGIC, 4) != 0)
        WHY("kpi state: not a KPI state record");
    if (r.p[4] != ST_VERSION)
        WHY("kpi state: unknown version %u", r.p[4]);
    r.at = 8;
    x.events = rd_i64(&r);
    x.parse_failures = rd_i64(&r);
    x.oldest = rd_i64(&r);
    x.newest = rd_i64(&r);
    uint32_t n = rd_u32(&r);
    if (r.bad)
        WHY("kpi state: truncated");
    if (x.events < 0 || x.parse_failures < 0 || x.parse_failures > x.events)
        WHY("kpi state: bad counts");
    if (x.events > 0 ? (x.oldest < from || x.oldest > x.newest || x.newest >= to)
                     : (x.oldest != NONE || x.newest != NONE))
        WHY("kpi state: event times outside the day");
    if (n > COR_KPI_MAX_SOURCES)
        WHY("kpi state: %u sources", n);
    kop *o = op_get(k, op);
    if (!o)
        WHY("kpi state: operator refused (limits)");
    if (o->n_sources) {
        x.last_seen = psb_xmalloc(o->n_sources * sizeof(int64_t));
        for (size_t i = 0; i < o->n_sources; i++)
            x.last_seen[i] = NONE;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (r.at >= r.n)
            WHY("kpi state: truncated");
        size_t hl = r.p[r.at++];
        if (hl == 0 || hl > COR_KPI_MAX_ID_LEN || r.n - r.at < hl)
            WHY("kpi state: bad source name");
        char h[COR_KPI_MAX_ID_LEN + 1];
        memcpy(h, r.p + r.at, hl);
        h[hl] = '\0';
        r.at += hl;
        int64_t t = rd_i64(&r);
        if (r.bad)
            WHY("kpi state: truncated");
        if (t < x.oldest || t > x.newest)
            WHY("kpi state: source time outside the day's events");
        int s = memchr(h, '\0', hl) ? -1 : source_index(o, h);
        if (s >= 0 && t > x.last_seen[s]) /* a source no longer designated is skipped */
            x.last_seen[s] = t;
    }
    if (r.at != r.n)
        WHY("kpi state: %zu bytes past the end", r.n - r.at);
    kpart *old = part_get(o, part, x.day, false);
    if (old) {
        part_unapply(o, old);
        free(old->last_seen);
        *old = x;
    } else {
        kpart *y = part_get(o, part, x.day, true);
        free(y->last_seen);
        *y = x;
    }
    part_apply(k, o, &x);
    o->generation++;
    return 0;
refused:
    free(x.last_seen);
    return -1;
}
