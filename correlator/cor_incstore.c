/* cor_incstore.c -- incidents by id, their updates, and filtered pages of them.
 *
 * The record is kept as the JSON text it arrived as (what the correlator wrote,
 * evidence included) plus the few fields that filters and the lifecycle need;
 * it is re-rendered with the current status only when someone asks for it, which
 * is rare next to storing.
 */
#include "cor_incstore.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_tree.h>

#include "pasban/parse.h"
#include "pasban/util.h"

#define NONE INT64_MIN

typedef struct inc_upd {
    int status;
    int64_t at, received_at;
    char *note, *by;
} inc_upd;

typedef struct inc {
    char *id, *op, *rule, *category;
    int severity;
    int64_t first_seen, detected_at;
    uint32_t op_idx;
    int status;
    int64_t reported_at;
    char *json;
    size_t json_len;
    inc_upd *upd;
    size_t n_upd;
} inc;

/* What filters look at, kept beside by_time in a flat array so that counting the
 * matches of a year of incidents reads memory in order instead of chasing one
 * pointer per incident. */
typedef struct meta {
    int64_t first_seen;
    uint32_t op;
    uint8_t status, severity, reported;
} meta;

struct cor_incstore {
    inc **by_time; /* sorted by first_seen, then id */
    meta *meta;    /* meta[i] describes by_time[i] */
    size_t n, cap;
    char **op_names; /* interned operator ids; inc.op_idx indexes this */
    size_t n_op_names;
    inc **tab; /* open addressing by id */
    size_t tab_cap;
};

static const char *const status_names[] = {"new",      "acknowledged",   "contained",
                                           "resolved", "false_positive", "reported"};

const char *cor_inc_status_name(int st)
{
    return st >= 0 && st <= COR_INC_REPORTED ? status_names[st] : "?";
}

int cor_inc_status_from_name(const char *s)
{
    for (int i = 0; s && i <= COR_INC_REPORTED; i++)
        if (strcmp(s, status_names[i]) == 0)
            return i;
    return -1;
}

cor_incstore *cor_incstore_new(void)
{
    cor_incstore *s = psb_xcalloc(1, sizeof(*s));
    s->tab_cap = 1024;
    s->tab = psb_xcalloc(s->tab_cap, sizeof(inc *));
    return s;
}

static void inc_free(inc *x)
{
    free(x->id);
    free(x->op);
    free(x->rule);
    free(x->category);
    free(x->json);
    for (size_t i = 0; i < x->n_upd; i++) {
        free(x->upd[i].note);
        free(x->upd[i].by);
    }
    free(x->upd);
    free(x);
}

void cor_incstore_free(cor_incstore *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        inc_free(s->by_time[i]);
    free(s->by_time);
    free(s->meta);
    for (size_t i = 0; i < s->n_op_names; i++)
        free(s->op_names[i]);
    free(s->op_names);
    free(s->tab);
    free(s);
}

size_t cor_incstore_count(const cor_incstore *s)
{
    return s->n;
}

static inc **slot(inc **tab, size_t cap, const char *id)
{
    size_t i = (size_t)psb_hash_str(id) & (cap - 1);
    while (tab[i] && strcmp(tab[i]->id, id) != 0)
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

static inc *find(const cor_incstore *s, const char *id)
{
    return id ? *slot(s->tab, s->tab_cap, id) : NULL;
}

static size_t lower_bound(const cor_incstore *s, int64_t t);

static long op_lookup(const cor_incstore *s, const char *op)
{
    for (size_t i = s->n_op_names; i > 0; i--) /* the newest operator is the likeliest */
        if (strcmp(s->op_names[i - 1], op) == 0)
            return (long)(i - 1);
    return -1;
}

static uint32_t op_intern(cor_incstore *s, const char *op)
{
    long i = op_lookup(s, op);
    if (i >= 0)
        return (uint32_t)i;
    s->op_names = psb_xrealloc(s->op_names, (s->n_op_names + 1) * sizeof(char *));
    s->op_names[s->n_op_names] = psb_xstrdup(op);
    return (uint32_t)s->n_op_names++;
}

static meta meta_of(const inc *x)
{
    return (meta){x->first_seen, x->op_idx, (uint8_t)x->status, (uint8_t)x->severity,
                  x->reported_at != NONE};
}

static const char *get_str(yajl_val root, const char *a, const char *b)
{
    const char *path[] = {a, b, NULL};
    yajl_val v = yajl_tree_get(root, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

static int get_time(yajl_val root, const char *key, int64_t *ms)
{
    const char *t = get_str(root, key, NULL);
    return t ? psb_parse_rfc3339(t, strlen(t), ms) : -1;
}

int cor_incstore_add_json(cor_incstore *s, const char *json, size_t len, cor_kpi_incident *kpi_out,
                          char *err, size_t errlen)
{
    char ybuf[128];
    int rc = -1;
    if (len > COR_INCSTORE_MAX_RECORD) {
        snprintf(err, errlen, "incident record larger than %d bytes", COR_INCSTORE_MAX_RECORD);
        return -1;
    }
    char *copy = psb_xstrndup(json, len);
    yajl_val root = psb_json_record_parse(copy, ybuf, sizeof(ybuf));
    if (!root || !YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "incident record is not a JSON object");
        goto out;
    }
    const char *id = get_str(root, "id", NULL), *op = get_str(root, "organization", "id");
    const char *rule = get_str(root, "rule", "id"), *sev = get_str(root, "severity", NULL);
    const char *cat = get_str(root, "category", NULL);
    int severity = sev ? cor_kpi_severity_from_name(sev) : -1;
    int64_t first, detected;
    if (!id || !*id || !op || !*op || !rule || severity < 0) {
        snprintf(err, errlen, "incident record needs id, organization.id, rule.id and severity");
        goto out;
    }
    if (strlen(id) > COR_KPI_MAX_ID_LEN || strlen(op) > COR_KPI_MAX_ID_LEN ||
        strlen(rule) > COR_KPI_MAX_ID_LEN || (cat && strlen(cat) > COR_KPI_MAX_ID_LEN)) {
        snprintf(err, errlen,
                 "incident record: id, organization.id, rule.id and category are at most %d "
                 "bytes",
                 COR_KPI_MAX_ID_LEN);
        goto out;
    }
    if (get_time(root, "first_seen", &first) < 0 || get_time(root, "detected_at", &detected) < 0) {
        snprintf(err, errlen, "incident %s: first_seen and detected_at must be RFC 3339", id);
        goto out;
    }
    if (find(s, id)) {
        rc = 0;
        goto out;
    }
    if (s->n >= COR_INCSTORE_MAX_INCIDENTS) {
        snprintf(err, errlen, "incident store full (%d incidents)", COR_INCSTORE_MAX_INCIDENTS);
        goto out;
    }
    inc *x = psb_xcalloc(1, sizeof(*x));
    x->id = psb_xstrdup(id);
    x->op = psb_xstrdup(op);
    x->rule = psb_xstrdup(rule);
    x->category = psb_xstrdup(cat ? cat : "");
    x->severity = severity;
    x->first_seen = first;
    x->detected_at = detected;
    x->reported_at = NONE;
    x->status = COR_INC_NEW;
    x->op_idx = op_intern(s, op);
    x->json = copy;
    x->json_len = len;
    copy = NULL;

    if ((s->n + 1) * 2 > s->tab_cap) {
        size_t cap = s->tab_cap * 2;
        inc **t = psb_xcalloc(cap, sizeof(inc *));
        for (size_t i = 0; i < s->n; i++)
            *slot(t, cap, s->by_time[i]->id) = s->by_time[i];
        free(s->tab);
        s->tab = t;
        s->tab_cap = cap;
    }
    *slot(s->tab, s->tab_cap, x->id) = x;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->by_time = psb_xrealloc(s->by_time, s->cap * sizeof(inc *));
        s->meta = psb_xrealloc(s->meta, s->cap * sizeof(meta));
    }
    /* Incidents arrive nearly in time order: walk back from the end. */
    size_t i = s->n;
    while (i > 0 &&
           (s->by_time[i - 1]->first_seen > first ||
            (s->by_time[i - 1]->first_seen == first && strcmp(s->by_time[i - 1]->id, id) > 0)))
        i--;
    memmove(s->by_time + i + 1, s->by_time + i, (s->n - i) * sizeof(inc *));
    memmove(s->meta + i + 1, s->meta + i, (s->n - i) * sizeof(meta));
    s->by_time[i] = x;
    s->meta[i] = meta_of(x);
    s->n++;
    if (kpi_out)
        *kpi_out = (cor_kpi_incident){x->id,       x->op,         x->rule,       x->severity,
                                      x->category, x->first_seen, x->detected_at};
    rc = 1;
out:
    yajl_tree_free(root);
    free(copy);
    return rc;
}

int cor_inc_update_check_limits(const cor_inc_update *u, const char *op, char *err, size_t errlen)
{
    const char *what = NULL;
    size_t max = COR_KPI_MAX_ID_LEN;
    if (u->id && strlen(u->id) > COR_KPI_MAX_ID_LEN)
        what = "id";
    else if (op && strlen(op) > COR_KPI_MAX_ID_LEN)
        what = "organization.id";
    else if (u->by && strlen(u->by) > COR_KPI_MAX_ID_LEN)
        what = "by";
    else if (u->note && strlen(u->note) > COR_INCSTORE_MAX_NOTE)
        what = "note", max = COR_INCSTORE_MAX_NOTE;
    if (what) {
        snprintf(err, errlen, "%s longer than %zu bytes", what, max);
        return -1;
    }
    /* JSON is UTF-8 (RFC 8259): a string that is not would be rewritten (U+FFFD)
     * when the record is passed on, and could then outgrow its limit. */
    const char *s[] = {u->id, op, u->by, u->note};
    const char *name[] = {"id", "organization.id", "by", "note"};
    for (size_t i = 0; i < 4; i++)
        if (s[i] && !cor_json_utf8_valid(s[i], strlen(s[i]))) {
            snprintf(err, errlen, "%s is not valid UTF-8", name[i]);
            return -1;
        }
    return 0;
}

int cor_incstore_check(const cor_incstore *s, const cor_inc_update *u, char *err, size_t errlen)
{
    const inc *x = find(s, u->id);
    if (!x) {
        snprintf(err, errlen, "no incident %.80s", u->id ? u->id : "");
        return -1;
    }
    if (u->status <= COR_INC_NEW || u->status > COR_INC_REPORTED) {
        snprintf(err, errlen,
                 "status must be acknowledged, contained, resolved, false_positive "
                 "or reported");
        return -1;
    }
    if (cor_inc_update_check_limits(u, NULL, err, errlen) < 0)
        return -1;
    if (x->n_upd >= COR_INCSTORE_MAX_UPDATES) {
        snprintf(err, errlen, "incident has %d updates already", COR_INCSTORE_MAX_UPDATES);
        return -1;
    }
    if (u->at < x->detected_at) {
        snprintf(err, errlen, "update time is before the incident was detected");
        return -1;
    }
    if (x->n_upd && u->at < x->upd[x->n_upd - 1].at) {
        snprintf(err, errlen, "update time is before the previous update");
        return -1;
    }
    const char *cur = status_names[x->status];
    if (x->status == COR_INC_FALSE_POSITIVE) {
        snprintf(err, errlen, "incident is a false positive: closed");
        return -1;
    }
    switch (u->status) {
    case COR_INC_REPORTED:
        if (x->reported_at != NONE) {
            snprintf(err, errlen, "incident was already reported");
            return -1;
        }
        return 0;
    case COR_INC_FALSE_POSITIVE:
        if (x->reported_at != NONE) {
            snprintf(err, errlen,
                     "incident was reported to the CERT: it cannot be a false positive");
            return -1;
        }
        break;
    default:
        break;
    }
    if (x->status == u->status) {
        snprintf(err, errlen, "incident is already %s", cur);
        return -1;
    }
    if (x->status == COR_INC_RESOLVED) {
        snprintf(err, errlen,
                 "incident is resolved: it is not reopened (a recurrence is a new incident)");
        return -1;
    }
    if (x->status > u->status && u->status != COR_INC_FALSE_POSITIVE) {
        snprintf(err, errlen, "incident is %s: it cannot go back to %s", cur,
                 status_names[u->status]);
        return -1;
    }
    return 0;
}

int cor_incstore_apply(cor_incstore *s, const cor_inc_update *u, char *err, size_t errlen)
{
    if (cor_incstore_check(s, u, err, errlen) < 0)
        return -1;
    inc *x = find(s, u->id);
    x->upd = psb_xrealloc(x->upd, (x->n_upd + 1) * sizeof(inc_upd));
    inc_upd *e = &x->upd[x->n_upd++];
    e->status = u->status;
    e->at = u->at;
    e->received_at = u->received_at;
    e->note = u->note ? psb_xstrdup(u->note) : NULL;
    e->by = u->by ? psb_xstrdup(u->by) : NULL;
    if (u->status == COR_INC_REPORTED) {
        x->reported_at = u->at;
        if (x->status == COR_INC_NEW)
            x->status = COR_INC_ACKNOWLEDGED;
    } else {
        x->status = u->status;
    }
    for (size_t i = lower_bound(s, x->first_seen); i < s->n; i++)
        if (s->by_time[i] == x) {
            s->meta[i] = meta_of(x);
            break;
        }
    return 0;
}

static void put_time(cor_buf *b, int64_t ms)
{
    char t[PSB_TIME_BUFSZ];
    size_t n = psb_format_time_ms(ms, t);
    cor_buf_putc(b, '"');
    cor_buf_put(b, t, n);
    cor_buf_putc(b, '"');
}

void cor_inc_update_write(const cor_inc_update *u, const char *op, cor_buf *b)
{
    cor_buf_puts(b, "{\"id\":");
    cor_buf_json_str(b, u->id, strlen(u->id));
    if (op) {
        cor_buf_puts(b, ",\"organization\":{\"id\":");
        cor_buf_json_str(b, op, strlen(op));
        cor_buf_putc(b, '}');
    }
    cor_buf_puts(b, ",\"status\":\"");
    cor_buf_puts(b, cor_inc_status_name(u->status));
    cor_buf_puts(b, "\",\"at\":");
    put_time(b, u->at);
    if (u->note) {
        cor_buf_puts(b, ",\"note\":");
        cor_buf_json_str(b, u->note, strlen(u->note));
    }
    if (u->by) {
        cor_buf_puts(b, ",\"by\":");
        cor_buf_json_str(b, u->by, strlen(u->by));
    }
    if (u->received_at) {
        cor_buf_puts(b, ",\"received_at\":");
        put_time(b, u->received_at);
    }
    cor_buf_putc(b, '}');
}

void cor_inc_update_release(cor_inc_update_owned *o)
{
    free(o->id);
    free(o->note);
    free(o->by);
    memset(o, 0, sizeof(*o));
}

int cor_inc_update_parse(const char *json, size_t len, cor_inc_update_owned *out, char *err,
                         size_t errlen)
{
    char ybuf[128];
    memset(out, 0, sizeof(*out));
    /* Records come from a topic anyone with produce rights can write: every
     * string is bounded before anything is kept. */
    if (len > COR_INCSTORE_MAX_UPDATE_RECORD) {
        snprintf(err, errlen, "update record larger than %d bytes", COR_INCSTORE_MAX_UPDATE_RECORD);
        out->over_limit = true;
        return -1;
    }
    char *copy = psb_xstrndup(json, len);
    yajl_val root = psb_json_record_parse(copy, ybuf, sizeof(ybuf));
    free(copy);
    int rc = -1;
    if (!root || !YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "update is not a JSON object");
        goto out;
    }
    const char *id = get_str(root, "id", NULL), *st = get_str(root, "status", NULL);
    const char *note = get_str(root, "note", NULL), *by = get_str(root, "by", NULL);
    int status = cor_inc_status_from_name(st);
    int64_t at, received_at = 0;
    if (!id || status <= COR_INC_NEW || get_time(root, "at", &at) < 0) {
        snprintf(err, errlen, "update needs id, a status and at (RFC 3339)");
        goto out;
    }
    if (get_str(root, "received_at", NULL) && get_time(root, "received_at", &received_at) < 0) {
        snprintf(err, errlen, "update: received_at must be RFC 3339");
        goto out;
    }
    cor_inc_update lim = {id, status, at, note, by, received_at};
    if (cor_inc_update_check_limits(&lim, get_str(root, "organization", "id"), err, errlen) < 0) {
        out->over_limit = true;
        goto out;
    }
    out->id = psb_xstrdup(id);
    out->note = note ? psb_xstrdup(note) : NULL;
    out->by = by ? psb_xstrdup(by) : NULL;
    out->u = (cor_inc_update){out->id, status, at, out->note, out->by, received_at};
    rc = 0;
out:
    yajl_tree_free(root);
    return rc;
}

const char *cor_incstore_operator(const cor_incstore *s, const char *id)
{
    const inc *x = find(s, id);
    return x ? x->op : NULL;
}

int cor_incstore_status(const cor_incstore *s, const char *id)
{
    const inc *x = find(s, id);
    return x ? x->status : -1;
}

static void render(yajl_val v, cor_buf *b)
{
    if (YAJL_IS_STRING(v)) {
        cor_buf_json_str(b, v->u.string, strlen(v->u.string));
    } else if (YAJL_IS_NUMBER(v)) {
        cor_buf_puts(b, v->u.number.r);
    } else if (YAJL_IS_TRUE(v)) {
        cor_buf_puts(b, "true");
    } else if (YAJL_IS_FALSE(v)) {
        cor_buf_puts(b, "false");
    } else if (YAJL_IS_OBJECT(v)) {
        cor_buf_putc(b, '{');
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (i)
                cor_buf_putc(b, ',');
            cor_buf_json_str(b, v->u.object.keys[i], strlen(v->u.object.keys[i]));
            cor_buf_putc(b, ':');
            render(v->u.object.values[i], b);
        }
        cor_buf_putc(b, '}');
    } else if (YAJL_IS_ARRAY(v)) {
        cor_buf_putc(b, '[');
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                cor_buf_putc(b, ',');
            render(v->u.array.values[i], b);
        }
        cor_buf_putc(b, ']');
    } else {
        cor_buf_puts(b, "null");
    }
}

static void write_inc(const inc *x, cor_buf *b)
{
    yajl_val root = yajl_tree_parse(x->json, NULL, 0);
    cor_buf_putc(b, '{');
    size_t n = 0;
    /* The stored fields, but those this store owns (status and the lifecycle). */
    for (size_t i = 0; root && i < root->u.object.len; i++) {
        const char *k = root->u.object.keys[i];
        if (strcmp(k, "status") == 0 || strcmp(k, "updates") == 0 || strcmp(k, "reported_at") == 0)
            continue;
        if (n++)
            cor_buf_putc(b, ',');
        cor_buf_json_str(b, k, strlen(k));
        cor_buf_putc(b, ':');
        render(root->u.object.values[i], b);
    }
    yajl_tree_free(root);
    if (n)
        cor_buf_putc(b, ',');
    cor_buf_puts(b, "\"status\":\"");
    cor_buf_puts(b, status_names[x->status]);
    cor_buf_putc(b, '"');
    if (x->reported_at != NONE) {
        cor_buf_puts(b, ",\"reported_at\":");
        put_time(b, x->reported_at);
    }
    cor_buf_puts(b, ",\"updates\":[");
    for (size_t i = 0; i < x->n_upd; i++) {
        const inc_upd *e = &x->upd[i];
        if (i)
            cor_buf_putc(b, ',');
        cor_buf_puts(b, "{\"status\":\"");
        cor_buf_puts(b, status_names[e->status]);
        cor_buf_puts(b, "\",\"at\":");
        put_time(b, e->at);
        if (e->note) {
            cor_buf_puts(b, ",\"note\":");
            cor_buf_json_str(b, e->note, strlen(e->note));
        }
        if (e->by) {
            cor_buf_puts(b, ",\"by\":");
            cor_buf_json_str(b, e->by, strlen(e->by));
        }
        if (e->received_at) {
            cor_buf_puts(b, ",\"received_at\":");
            put_time(b, e->received_at);
        }
        cor_buf_putc(b, '}');
    }
    cor_buf_puts(b, "]}");
}

int cor_incstore_write_json(const cor_incstore *s, const char *id, cor_buf *b)
{
    const inc *x = find(s, id);
    if (!x)
        return -1;
    write_inc(x, b);
    return 0;
}

void cor_inc_query_init(cor_inc_query *q)
{
    memset(q, 0, sizeof(*q));
    q->status = -1;
    q->severity = -1;
    q->from = INT64_MIN;
    q->to = INT64_MAX;
    q->limit = 50;
}

static bool category_matches(const char *have, const char *want)
{
    size_t n = strlen(want);
    return strncasecmp(have, want, n) == 0 &&
           (have[n] == '\0' || (have[n] == '/' && !strchr(want, '/')));
}

static bool matches(const cor_incstore *s, size_t i, const cor_inc_query *q, long op)
{
    const meta *m = &s->meta[i];
    if (op >= 0 && m->op != (uint32_t)op)
        return false;
    if (q->status == COR_INC_REPORTED) {
        if (!m->reported)
            return false;
    } else if (q->status >= 0 && m->status != q->status) {
        return false;
    }
    if (q->open_only && (m->status == COR_INC_RESOLVED || m->status == COR_INC_FALSE_POSITIVE))
        return false;
    if (q->severity >= 0 && m->severity != q->severity)
        return false;
    if (q->category && !category_matches(s->by_time[i]->category, q->category))
        return false;
    return true;
}

static size_t lower_bound(const cor_incstore *s, int64_t t)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->meta[mid].first_seen < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void cor_incstore_query_json(const cor_incstore *s, const cor_inc_query *q, cor_buf *b)
{
    size_t lo = lower_bound(s, q->from), hi = q->to == INT64_MAX ? s->n : lower_bound(s, q->to);
    size_t total = 0, shown = 0;
    cor_buf page = {0};
    long op = q->op ? op_lookup(s, q->op) : -1;
    if (q->op && op < 0)
        lo = hi; /* an operator without incidents */
    for (size_t i = hi; i > lo; i--) {
        if (!matches(s, i - 1, q, op))
            continue;
        if (total >= q->offset && shown < q->limit) {
            if (shown++)
                cor_buf_putc(&page, ',');
            write_inc(s->by_time[i - 1], &page);
        }
        total++;
    }
    char head[128];
    snprintf(head, sizeof(head), "{\"total\":%zu,\"offset\":%zu,\"limit\":%zu,\"incidents\":[",
             total, q->offset, q->limit);
    cor_buf_puts(b, head);
    if (page.len)
        cor_buf_put(b, page.p, page.len);
    cor_buf_puts(b, "]}");
    cor_buf_free(&page);
}
