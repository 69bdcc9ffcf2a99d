/* cor_engine.c -- per-group state of the four rule kinds.
 *
 * Late events (see README "Semantics"): a group's windows are kept in event
 * time. An event older than its group's newest event is placed at its time; if
 * it is older by `within` or more it can no longer share a window with anything
 * the group holds and is dropped and counted as late. Sequences take their
 * steps in arrival order.
 */
#include "cor_engine.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pasban/util.h"

#define SWEEP_EVERY 1024 /* events between sweeps of expired groups */

typedef struct wentry {
    int64_t t;
    char *orig;
    size_t olen;
    char *dv; /* distinct value, or NULL */
    size_t dvlen;
} wentry;

/* A sequence prefix: steps 0..k-1 done, the first at t0, the newest of them at tmax
 * (steps are taken in arrival order, so a late step can be older than t0). */
typedef struct seq_partial {
    bool valid;
    int64_t t0, tmax;
    size_t n_ev;
    char *ev[COR_MAX_EVIDENCE];
    size_t evlen[COR_MAX_EVIDENCE];
} seq_partial;

typedef struct group {
    struct group *hnext;
    struct group *prev, *next;
    bool fired; /* absence: raised and waiting for its suppress time to pass */
    uint64_t hash;
    const cor_rule *rule;
    char *key; /* operator and by values, length-prefixed (see build_key) */
    size_t key_len;
    int64_t newest;
    int64_t suppress_until;
    cor_incident *incident;  /* the last one raised, which suppressed events are counted on */
    uint64_t suppressed_seq; /* event already counted as suppressed */
    uint64_t completed_seq;  /* sequence: event that completed a chain (used up by it) */
    wentry *win;
    size_t n, cap;
    size_t distinct;
    seq_partial *partial;
    int64_t first_seen, last_seen;
    long count;
    char *last_orig;
    size_t last_olen;
} group;

typedef struct rule_state {
    group *head, *tail;   /* touch order; for absence: order of last_seen */
    group *fhead, *ftail; /* absence groups that fired */
    size_t n_groups;
} rule_state;

/* Incident ids. design.md's id hashes (rule id, group, first_seen), a basis two
 * incidents can share: two events of one group in the same second under a single
 * rule, a threshold window filled twice within one timestamp. The store and the
 * daemon's consumers take a known id for a redelivery and drop it, so the n-th
 * repeat of a basis hashes the ordinal n too (the first keeps the documented id):
 * ids stay unique and the same input still gives the same ids. A basis is kept
 * while its first_seen is within id_horizon of the watermark. */
typedef struct id_slot {
    uint64_t h; /* of the basis id; 0 = empty */
    int64_t first_seen;
    unsigned n; /* repeats so far */
} id_slot;

#define ID_HORIZON_EXTRA_MS (3600 * 1000LL)

struct cor_engine {
    const cor_ruleset *rs;
    cor_matcher *m;
    size_t max_groups, max_window;
    rule_state *rules;
    group **buckets;
    size_t n_buckets, n_groups;
    int64_t watermark;
    bool have_watermark;
    uint64_t event_seq;
    uint64_t incident_seq;
    cor_incident **incidents;
    size_t n_incidents, cap_incidents;
    size_t taken; /* incidents[0 .. taken) were handed out live */
    cor_buf key;
    cor_buf json;
    size_t *absence_rules;
    size_t n_absence;
    id_slot *ids;
    size_t ids_cap, ids_n;
    int64_t id_horizon;
};

cor_engine *cor_engine_new(const cor_ruleset *rs, const cor_engine_opts *opts)
{
    cor_engine_opts o = opts ? *opts : (cor_engine_opts){0, 0, {0, 0, 0, false}};
    cor_engine *e = psb_xcalloc(1, sizeof(*e));
    e->rs = rs;
    e->m = cor_matcher_new(rs, &o.match);
    e->max_groups = o.max_groups ? o.max_groups : COR_DEFAULT_MAX_GROUPS;
    e->max_window = o.max_window ? o.max_window : COR_DEFAULT_MAX_WINDOW;
    e->rules = psb_xcalloc(rs->n_rules + 1, sizeof(*e->rules));
    e->n_buckets = 1024;
    e->buckets = psb_xcalloc(e->n_buckets, sizeof(*e->buckets));
    e->absence_rules = psb_xcalloc(rs->n_rules + 1, sizeof(*e->absence_rules));
    e->id_horizon = ID_HORIZON_EXTRA_MS;
    for (size_t i = 0; i < rs->n_rules; i++) {
        const cor_rule *r = rs->rules[i];
        if (r->kind == COR_KIND_ABSENCE)
            e->absence_rules[e->n_absence++] = i;
        int64_t span =
            (r->within_ms > r->suppress_ms ? r->within_ms : r->suppress_ms) + ID_HORIZON_EXTRA_MS;
        if (span > e->id_horizon)
            e->id_horizon = span;
    }
    e->ids_cap = 1024;
    e->ids = psb_xcalloc(e->ids_cap, sizeof(*e->ids));
    return e;
}

static void window_clear(group *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->win[i].orig);
        free(g->win[i].dv);
    }
    g->n = 0;
    g->distinct = 0;
}

static void partial_clear(seq_partial *p)
{
    for (size_t i = 0; i < p->n_ev; i++)
        free(p->ev[i]);
    memset(p, 0, sizeof(*p));
}

static void group_free(group *g)
{
    if (g->incident && g->incident->owner == g)
        g->incident->owner = NULL;
    window_clear(g);
    free(g->win);
    if (g->partial) {
        for (size_t i = 0; i <= g->rule->n_steps; i++)
            partial_clear(&g->partial[i]);
        free(g->partial);
    }
    free(g->last_orig);
    free(g);
}

void cor_engine_free(cor_engine *e)
{
    if (!e)
        return;
    for (size_t b = 0; b < e->n_buckets; b++) {
        group *g = e->buckets[b];
        while (g) {
            group *n = g->hnext;
            group_free(g);
            g = n;
        }
    }
    free(e->buckets);
    for (size_t i = 0; i < e->n_incidents; i++)
        cor_incident_free(e->incidents[i]);
    free(e->incidents);
    free(e->rules);
    free(e->absence_rules);
    free(e->ids);
    cor_buf_free(&e->key);
    cor_buf_free(&e->json);
    cor_matcher_free(e->m);
    free(e);
}

/* ---- per-rule lists ---- */

static void list_unlink(rule_state *rs, group *g)
{
    group **head = g->fired ? &rs->fhead : &rs->head;
    group **tail = g->fired ? &rs->ftail : &rs->tail;
    /* Not linked (an absence group refused as late right after its creation): unlinking
     * it would set the list's head and tail to NULL and lose every group it holds. */
    if (!g->prev && *head != g)
        return;
    if (g->prev)
        g->prev->next = g->next;
    else
        *head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        *tail = g->prev;
    g->prev = g->next = NULL;
}

static void list_append(rule_state *rs, group *g)
{
    group **head = g->fired ? &rs->fhead : &rs->head;
    group **tail = g->fired ? &rs->ftail : &rs->tail;
    g->prev = *tail;
    g->next = NULL;
    if (*tail)
        (*tail)->next = g;
    else
        *head = g;
    *tail = g;
}

/* Absence list: ordered by last_seen, so the next to fall silent is at the head.
 * Events come nearly in order, so the walk from the tail is short. */
static void list_insert_by_time(rule_state *rs, group *g)
{
    group *p = rs->tail;
    while (p && p->last_seen > g->last_seen)
        p = p->prev;
    g->prev = p;
    g->next = p ? p->next : rs->head;
    if (g->next)
        g->next->prev = g;
    else
        rs->tail = g;
    if (p)
        p->next = g;
    else
        rs->head = g;
}

static void group_remove(cor_engine *e, group *g)
{
    rule_state *rs = &e->rules[g->rule->index];
    list_unlink(rs, g);
    group **pp = &e->buckets[g->hash & (e->n_buckets - 1)];
    while (*pp != g)
        pp = &(*pp)->hnext;
    *pp = g->hnext;
    rs->n_groups--;
    e->n_groups--;
    group_free(g);
}

static void rehash(cor_engine *e)
{
    size_t nb = e->n_buckets * 2;
    group **b = psb_xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < e->n_buckets; i++) {
        group *g = e->buckets[i];
        while (g) {
            group *n = g->hnext;
            g->hnext = b[g->hash & (nb - 1)];
            b[g->hash & (nb - 1)] = g;
            g = n;
        }
    }
    free(e->buckets);
    e->buckets = b;
    e->n_buckets = nb;
}

/* ---- groups ---- */

/* "len:" without snprintf: keys are built on every match. */
static void put_len(cor_buf *b, size_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    tmp[--i] = ':';
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    cor_buf_put(b, tmp + i, sizeof(tmp) - i);
}

/* Build the group key: the operator, then each by value, length-prefixed
 * ("4:op-a7:1.2.3.4", "-" for an absent one) so values cannot run into each
 * other. The incident's organization and group object are read back from it,
 * so a group stores nothing else. */
static void build_key(cor_engine *e, const psb_event *ev, const cor_rule *r,
                      const cor_capture *caps, size_t n_caps)
{
    e->key.len = 0;
    psb_str org = ev->organization_id;
    if (org.ptr) {
        put_len(&e->key, org.len);
        cor_buf_put(&e->key, org.ptr, org.len);
    } else {
        cor_buf_putc(&e->key, '-');
    }
    for (size_t i = 0; i < r->n_by; i++) {
        char buf[32];
        psb_str v;
        if (!cor_field_lookup(ev, caps, n_caps, r->by[i], buf, &v)) {
            cor_buf_putc(&e->key, '-');
            continue;
        }
        put_len(&e->key, v.len);
        cor_buf_put(&e->key, v.ptr, v.len);
    }
}

/* One length-prefixed item of a key at *pos: 1 with the value, 0 when absent. */
static int key_item(const char *key, size_t len, size_t *pos, psb_str *out)
{
    size_t i = *pos;
    if (i >= len || key[i] == '-') {
        *pos = i + 1;
        return 0;
    }
    size_t n = 0;
    while (i < len && key[i] != ':')
        n = n * 10 + (size_t)(key[i++] - '0');
    i++;
    *out = psb_str_make(key + i, n);
    *pos = i + n;
    return 1;
}

/* The incident's organization.id and group object, from a key. */
static void decode_key(const cor_rule *r, const char *key, size_t len, cor_incident *inc,
                       cor_buf *json)
{
    size_t pos = 0;
    psb_str v;
    if (key_item(key, len, &pos, &v))
        inc->org = psb_xstrndup(v.ptr, v.len);
    json->len = 0;
    cor_buf_putc(json, '{');
    bool first = true;
    for (size_t i = 0; i < r->n_by; i++) {
        if (!key_item(key, len, &pos, &v))
            continue;
        if (!first)
            cor_buf_putc(json, ',');
        first = false;
        cor_buf_json_str(json, r->by[i], strlen(r->by[i]));
        cor_buf_putc(json, ':');
        cor_buf_json_str(json, v.ptr, v.len);
    }
    cor_buf_putc(json, '}');
    inc->group_json = psb_xstrndup(json->p, json->len);
}

static group *group_find(cor_engine *e, const cor_rule *r, uint64_t h)
{
    for (group *g = e->buckets[h & (e->n_buckets - 1)]; g; g = g->hnext)
        if (g->hash == h && g->rule == r && g->key_len == e->key.len &&
            memcmp(g->key, e->key.p, g->key_len) == 0)
            return g;
    return NULL;
}

static group *group_get(cor_engine *e, const psb_event *ev, const cor_rule *r,
                        const cor_capture *caps, size_t n_caps, bool *created)
{
    build_key(e, ev, r, caps, n_caps);
    uint64_t h = psb_hash_bytes(e->key.p, e->key.len, PSB_HASH_SEED + r->index);
    group *g = group_find(e, r, h);
    *created = false;
    if (g)
        return g;
    rule_state *rs = &e->rules[r->index];
    if (rs->n_groups >= e->max_groups) {
        /* The cap keeps memory bounded under a flood of distinct sources: the
         * oldest group goes (fired absence groups first), and it is counted. */
        group *victim = rs->fhead ? rs->fhead : rs->head;
        if (victim) {
            cor_matcher_stats(e->m)[r->index].evicted++;
            group_remove(e, victim);
        }
    }
    /* One block for the group and its key: groups come and go at event rate. */
    g = psb_xcalloc(1, sizeof(*g) + e->key.len + 1);
    g->rule = r;
    g->hash = h;
    g->key = (char *)(g + 1);
    memcpy(g->key, e->key.p, e->key.len);
    g->key_len = e->key.len;
    g->newest = INT64_MIN;
    g->suppress_until = INT64_MIN;
    if (r->kind == COR_KIND_SEQUENCE)
        g->partial = psb_xcalloc(r->n_steps + 1, sizeof(*g->partial));
    g->hnext = e->buckets[h & (e->n_buckets - 1)];
    e->buckets[h & (e->n_buckets - 1)] = g;
    rs->n_groups++;
    if (++e->n_groups > e->n_buckets)
        rehash(e);
    *created = true;
    return g;
}

/* ---- incidents ---- */

static id_slot *id_slot_find(id_slot *t, size_t cap, uint64_t h)
{
    size_t i = h & (cap - 1);
    while (t[i].h && t[i].h != h)
        i = (i + 1) & (cap - 1);
    return &t[i];
}

/* Rebuild the table without the bases past the horizon, at least 4x as large as
 * what is kept (so rebuilds are amortised over many incidents). */
static void ids_rebuild(cor_engine *e)
{
    int64_t old = e->have_watermark ? e->watermark - e->id_horizon : INT64_MIN;
    size_t kept = 0;
    for (size_t i = 0; i < e->ids_cap; i++)
        kept += e->ids[i].h && e->ids[i].first_seen > old;
    size_t cap = 1024;
    while (cap < kept * 4)
        cap *= 2;
    id_slot *t = psb_xcalloc(cap, sizeof(*t));
    for (size_t i = 0; i < e->ids_cap; i++)
        if (e->ids[i].h && e->ids[i].first_seen > old)
            *id_slot_find(t, cap, e->ids[i].h) = e->ids[i];
    free(e->ids);
    e->ids = t;
    e->ids_cap = cap;
    e->ids_n = kept;
}

static void incident_set_unique_id(cor_engine *e, cor_incident *inc, const group *g)
{
    cor_incident_set_id(inc, g->key, g->key_len, 0);
    uint64_t h = psb_hash_bytes(inc->id, 32, PSB_HASH_SEED);
    h = h ? h : 1;
    id_slot *s = id_slot_find(e->ids, e->ids_cap, h);
    if (s->h) {
        cor_incident_set_id(inc, g->key, g->key_len, ++s->n);
        return;
    }
    if ((e->ids_n + 1) * 2 > e->ids_cap) {
        ids_rebuild(e);
        s = id_slot_find(e->ids, e->ids_cap, h);
    }
    s->h = h;
    s->first_seen = inc->first_seen;
    s->n = 0;
    e->ids_n++;
}

static cor_incident *incident_new(cor_engine *e, const cor_rule *r, group *g, int64_t first,
                                  int64_t last, int64_t detected, long count)
{
    cor_incident *inc = psb_xcalloc(1, sizeof(*inc));
    inc->rule = r;
    inc->first_seen = first;
    inc->last_seen = last;
    inc->detected_at = detected;
    inc->count = count;
    inc->seq = e->incident_seq++;
    if (g) {
        decode_key(r, g->key, g->key_len, inc, &e->json);
        incident_set_unique_id(e, inc, g);
        if (g->incident && g->incident->owner == g)
            g->incident->owner = NULL;
        g->incident = inc;
        inc->owner = g;
        g->suppress_until = detected + r->suppress_ms;
    }
    if (e->n_incidents == e->cap_incidents) {
        e->cap_incidents = e->cap_incidents ? e->cap_incidents * 2 : 64;
        e->incidents = psb_xrealloc(e->incidents, e->cap_incidents * sizeof(*e->incidents));
    }
    e->incidents[e->n_incidents++] = inc;
    cor_matcher_stats(e->m)[r->index].incidents++;
    return inc;
}

/* Within the suppress time of the group's last incident: count it there, once per event. */
static bool suppressed(cor_engine *e, group *g, int64_t t)
{
    /* Over once the watermark has passed it, also for a late event: sweep() frees such
     * groups every 1024 events, and what a late event meets must not depend on when. */
    if (!g->incident || g->rule->suppress_ms == 0 || t >= g->suppress_until ||
        g->suppress_until <= e->watermark)
        return false;
    if (g->suppressed_seq != e->event_seq) {
        g->suppressed_seq = e->event_seq;
        g->incident->suppressed++;
        cor_matcher_stats(e->m)[g->rule->index].suppressed++;
    }
    return true;
}

/* A window or partial chain whose newest event is `within` behind the watermark is
 * what sweep() frees: start it afresh here too, so that a late event meets the same
 * state whether or not a sweep ran in between (for in-order events nothing in it
 * could count any more). */
static void expire_if_stale(cor_engine *e, group *g, const cor_rule *r)
{
    if (g->newest == INT64_MIN || g->newest > e->watermark - r->within_ms)
        return;
    window_clear(g);
    if (g->partial)
        for (size_t i = 0; i <= r->n_steps; i++)
            partial_clear(&g->partial[i]);
    g->newest = INT64_MIN;
}

static void touch(cor_engine *e, group *g)
{
    rule_state *rs = &e->rules[g->rule->index];
    if (rs->tail != g) {
        list_unlink(rs, g);
        list_append(rs, g);
    }
}

/* ---- kinds ---- */

static void on_single(cor_engine *e, const psb_event *ev, const cor_rule *r,
                      const cor_capture *caps, size_t n_caps)
{
    int64_t t = ev->timestamp_ms;
    if (r->suppress_ms == 0) {
        /* No state to keep: a throw-away group carries the key. */
        build_key(e, ev, r, caps, n_caps);
        group tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.rule = r;
        tmp.key = e->key.p;
        tmp.key_len = e->key.len;
        cor_incident *inc = incident_new(e, r, &tmp, t, t, t, 1);
        inc->owner = NULL; /* tmp does not outlive this call */
        cor_incident_add_evidence(inc, ev->original.ptr, ev->original.len);
        return;
    }
    bool created;
    group *g = group_get(e, ev, r, caps, n_caps, &created);
    if (created)
        list_append(&e->rules[r->index], g);
    if (!suppressed(e, g, t)) {
        cor_incident *inc = incident_new(e, r, g, t, t, t, 1);
        cor_incident_add_evidence(inc, ev->original.ptr, ev->original.len);
    }
    if (t > g->newest)
        g->newest = t;
    touch(e, g);
}

static bool window_has(const group *g, const char *v, size_t n)
{
    for (size_t i = 0; i < g->n; i++)
        if (g->win[i].dvlen == n && memcmp(g->win[i].dv, v, n) == 0)
            return true;
    return false;
}

/* Drop window entries [0, k). */
static void window_drop_front(group *g, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        wentry w = g->win[i];
        g->win[i].orig = NULL;
        g->win[i].dv = NULL;
        free(w.orig);
        if (w.dv) {
            /* still counted if another entry (after the dropped ones) holds the value */
            bool again = false;
            for (size_t j = i + 1; j < g->n && !again; j++)
                again = g->win[j].dv && g->win[j].dvlen == w.dvlen &&
                        memcmp(g->win[j].dv, w.dv, w.dvlen) == 0;
            if (!again)
                g->distinct--;
            free(w.dv);
        }
    }
    memmove(g->win, g->win + k, (g->n - k) * sizeof(*g->win));
    g->n -= k;
}

static void on_threshold(cor_engine *e, const psb_event *ev, const cor_rule *r,
                         const cor_capture *caps, size_t n_caps)
{
    int64_t t = ev->timestamp_ms;
    char buf[32];
    psb_str dv = PSB_STR_NULL;
    if (r->distinct && !cor_field_lookup(ev, caps, n_caps, r->distinct, buf, &dv))
        return; /* nothing to count */
    bool created;
    group *g = group_get(e, ev, r, caps, n_caps, &created);
    if (created)
        list_append(&e->rules[r->index], g);
    else
        expire_if_stale(e, g, r);
    /* design.md: every matching event of the group before t + suppress is counted on
     * the incident, a late one too (checked before the late drop). */
    if (suppressed(e, g, t))
        return;
    int64_t newest = t > g->newest ? t : g->newest;
    /* The window holds events strictly newer than newest - within. */
    int64_t edge = newest - r->within_ms;
    if (t <= edge) {
        cor_matcher_stats(e->m)[r->index].late++;
        return;
    }
    size_t k = 0;
    while (k < g->n && g->win[k].t <= edge)
        k++;
    if (k)
        window_drop_front(g, k);
    if (g->n >= e->max_window) {
        window_drop_front(g, 1);
        cor_matcher_stats(e->m)[r->index].evicted++;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : (r->count < 4 ? (size_t)r->count : 4);
        g->win = psb_xrealloc(g->win, g->cap * sizeof(*g->win));
    }
    /* Before the insertion shifts the entries: a late event goes in the middle and the
     * last entry moves past g->n, where a look-up after the memmove would miss it. */
    bool fresh = r->distinct && !window_has(g, dv.ptr, dv.len);
    size_t pos = g->n;
    while (pos > 0 && g->win[pos - 1].t > t)
        pos--;
    memmove(g->win + pos + 1, g->win + pos, (g->n - pos) * sizeof(*g->win));
    wentry *w = &g->win[pos];
    w->t = t;
    w->olen = ev->original.len;
    w->orig = psb_xstrndup(ev->original.ptr ? ev->original.ptr : "", w->olen);
    w->dv = NULL;
    w->dvlen = 0;
    if (r->distinct) {
        if (fresh)
            g->distinct++;
        w->dv = psb_xstrndup(dv.ptr ? dv.ptr : "", dv.len);
        w->dvlen = dv.len;
    }
    g->n++;
    g->newest = newest;
    touch(e, g);
    bool reached = r->distinct ? g->distinct >= (size_t)r->count : g->n >= (size_t)r->count;
    if (!reached)
        return;
    /* detected_at = the newest in the window (README), not the group's newest: after an
     * incident emptied the window, late events can fill it again below that. */
    int64_t last = g->win[g->n - 1].t;
    cor_incident *inc = incident_new(e, r, g, g->win[0].t, last, last, (long)g->n);
    for (size_t i = 0; i < g->n && i < COR_MAX_EVIDENCE; i++) {
        cor_incident_take_evidence(inc, g->win[i].orig, g->win[i].olen);
        g->win[i].orig = NULL;
    }
    window_clear(g);
}

static void partial_add(seq_partial *p, const char *s, size_t n)
{
    if (p->n_ev >= COR_MAX_EVIDENCE)
        return;
    p->ev[p->n_ev] = psb_xstrndup(s ? s : "", n);
    p->evlen[p->n_ev] = n;
    p->n_ev++;
}

static void partial_copy(seq_partial *dst, const seq_partial *src)
{
    partial_clear(dst);
    dst->valid = src->valid;
    dst->t0 = src->t0;
    dst->tmax = src->tmax;
    for (size_t i = 0; i < src->n_ev; i++)
        partial_add(dst, src->ev[i], src->evlen[i]);
}

/* Steps come here from the last to the first for one event, so an event that
 * matches several steps advances each prefix once and never chains itself. For
 * each prefix length the most recent start is kept: it leaves the most time for
 * the rest, so a sequence that fits in `within` is never missed. */
static void on_sequence(cor_engine *e, const psb_event *ev, const cor_rule *r, size_t step,
                        const cor_capture *caps, size_t n_caps)
{
    int64_t t = ev->timestamp_ms;
    bool created;
    group *g = group_get(e, ev, r, caps, n_caps, &created);
    if (created)
        list_append(&e->rules[r->index], g);
    /* The event completed this group's chain at a later step: the incident used it up,
     * so it neither starts a new chain nor counts as suppressed by its own incident. */
    if (!created && g->completed_seq == e->event_seq)
        return;
    if (!created)
        expire_if_stale(e, g, r);
    if (suppressed(e, g, t)) /* before the late drop, as for a threshold */
        return;
    int64_t newest = t > g->newest ? t : g->newest;
    int64_t edge = newest - r->within_ms;
    if (t <= edge) {
        cor_matcher_stats(e->m)[r->index].late++;
        return;
    }
    g->newest = newest;
    touch(e, g);
    size_t n = r->n_steps;
    if (step == 0) {
        seq_partial start;
        memset(&start, 0, sizeof(start));
        start.valid = true;
        start.t0 = start.tmax = t;
        partial_add(&start, ev->original.ptr, ev->original.len);
        if (n == 1) {
            cor_incident *inc = incident_new(e, r, g, t, t, t, 1);
            cor_incident_add_evidence(inc, ev->original.ptr, ev->original.len);
        } else if (!g->partial[1].valid || g->partial[1].t0 <= t) {
            /* the most recent start by time (a late first step does not replace it) */
            partial_copy(&g->partial[1], &start);
        }
        partial_clear(&start);
        return;
    }
    seq_partial *p = &g->partial[step];
    if (!p->valid)
        return;
    /* Too old for this event, but kept: a late event within `within` of its start
     * can still complete it (README: a chain that fits is never missed). */
    if (p->t0 <= t - r->within_ms)
        return;
    if (step + 1 == n) {
        /* last_seen = detected_at = the newest step (the completing one for in-order
         * input), as a threshold's newest in the window. */
        int64_t last = t > p->tmax ? t : p->tmax;
        cor_incident *inc = incident_new(e, r, g, p->t0, last, last, (long)n);
        g->completed_seq = e->event_seq;
        /* Past 5 steps the evidence is the first 4 and the completing one: the step that
         * makes the incident (the accepted login after the failures) is always shown. */
        size_t keep = p->n_ev < COR_MAX_EVIDENCE ? p->n_ev : COR_MAX_EVIDENCE - 1;
        for (size_t i = 0; i < keep; i++)
            cor_incident_add_evidence(inc, p->ev[i], p->evlen[i]);
        cor_incident_add_evidence(inc, ev->original.ptr, ev->original.len);
        for (size_t i = 0; i <= n; i++)
            partial_clear(&g->partial[i]);
        return;
    }
    seq_partial *q = &g->partial[step + 1];
    if (!q->valid || q->t0 <= p->t0) {
        partial_copy(q, p);
        partial_add(q, ev->original.ptr, ev->original.len);
        if (t > q->tmax)
            q->tmax = t;
    }
}

static void on_absence(cor_engine *e, const psb_event *ev, const cor_rule *r,
                       const cor_capture *caps, size_t n_caps)
{
    int64_t t = ev->timestamp_ms;
    rule_state *rs = &e->rules[r->index];
    bool created;
    group *g = group_get(e, ev, r, caps, n_caps, &created);
    /* README: an event already silent as of the watermark is ignored, whether it would
     * start a watch or join one (it would only move first_seen back past the window). */
    if (e->have_watermark && t + r->within_ms <= e->watermark) {
        cor_matcher_stats(e->m)[r->index].late++;
        if (created)
            group_remove(e, g);
        return;
    }
    if (!created && !g->fired) {
        g->count++;
        if (t < g->first_seen)
            g->first_seen = t; /* a late event: first_seen is the oldest watched */
        /* Ties go to the later arrival: "the last event" is the evidence. */
        if (t >= g->last_seen) {
            list_unlink(rs, g);
            g->last_seen = t;
            free(g->last_orig);
            g->last_orig = psb_xstrndup(ev->original.ptr ? ev->original.ptr : "", ev->original.len);
            g->last_olen = ev->original.len;
            list_insert_by_time(rs, g);
        }
        return;
    }
    if (g->fired) {
        list_unlink(rs, g);
        g->fired = false;
    }
    g->first_seen = g->last_seen = t;
    g->count = 1;
    free(g->last_orig);
    g->last_orig = psb_xstrndup(ev->original.ptr ? ev->original.ptr : "", ev->original.len);
    g->last_olen = ev->original.len;
    list_insert_by_time(rs, g);
}

/* The watermark moved to w: every absence group silent since w - within fires.
 * detected_at = w, the time of the event that showed the silence (design.md:
 * the triggering event's time in a replay). */
static void fire_absences(cor_engine *e, int64_t w)
{
    for (size_t a = 0; a < e->n_absence; a++) {
        const cor_rule *r = e->rs->rules[e->absence_rules[a]];
        rule_state *rs = &e->rules[r->index];
        while (rs->head && rs->head->last_seen + r->within_ms <= w) {
            group *g = rs->head;
            int64_t at = w;
            if (g->incident && at < g->suppress_until) {
                g->incident->suppressed++;
                cor_matcher_stats(e->m)[r->index].suppressed++;
            } else {
                cor_incident *inc =
                    incident_new(e, r, g, g->first_seen, g->last_seen, at, g->count);
                cor_incident_add_evidence(inc, g->last_orig, g->last_olen);
            }
            if (g->suppress_until <= w) {
                group_remove(e, g);
                continue;
            }
            list_unlink(rs, g);
            g->fired = true;
            list_append(rs, g);
        }
    }
}

/* Free groups whose windows have expired and whose suppress time has passed. */
static void sweep(cor_engine *e)
{
    int64_t w = e->watermark;
    for (size_t i = 0; i < e->rs->n_rules; i++) {
        const cor_rule *r = e->rs->rules[i];
        rule_state *rs = &e->rules[i];
        if (!rs->n_groups)
            continue;
        if (r->kind == COR_KIND_ABSENCE) {
            while (rs->fhead && rs->fhead->suppress_until <= w)
                group_remove(e, rs->fhead);
            continue;
        }
        while (rs->head) {
            group *g = rs->head;
            int64_t live = r->kind == COR_KIND_SINGLE ? INT64_MIN : g->newest + r->within_ms;
            if (live > w || g->suppress_until > w)
                break;
            group_remove(e, g);
        }
    }
}

static void on_hit(void *ctx, const psb_event *ev, const cor_rule *r, size_t step,
                   const cor_capture *caps, size_t n_caps)
{
    cor_engine *e = ctx;
    switch (r->kind) {
    case COR_KIND_SINGLE:
        on_single(e, ev, r, caps, n_caps);
        break;
    case COR_KIND_THRESHOLD:
        on_threshold(e, ev, r, caps, n_caps);
        break;
    case COR_KIND_SEQUENCE:
        on_sequence(e, ev, r, step, caps, n_caps);
        break;
    case COR_KIND_ABSENCE:
        on_absence(e, ev, r, caps, n_caps);
        break;
    default:
        break;
    }
}

void cor_engine_process(cor_engine *e, const psb_event *ev)
{
    e->event_seq++;
    if (ev->kind != PSB_EVENT_KIND_PIPELINE_ERROR &&
        (!e->have_watermark || ev->timestamp_ms > e->watermark)) {
        e->watermark = ev->timestamp_ms;
        e->have_watermark = true;
        if (e->n_absence)
            fire_absences(e, e->watermark);
    }
    cor_matcher_run(e->m, ev, on_hit, e);
    if (e->event_seq % SWEEP_EVERY == 0 && e->have_watermark)
        sweep(e);
}

static int cmp_incident(const void *a, const void *b)
{
    const cor_incident *x = *(cor_incident *const *)a, *y = *(cor_incident *const *)b;
    if (x->detected_at != y->detected_at)
        return x->detected_at < y->detected_at ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

void cor_engine_finish(cor_engine *e)
{
    if (e->n_incidents > 1)
        qsort(e->incidents, e->n_incidents, sizeof(*e->incidents), cmp_incident);
}

size_t cor_engine_incidents(const cor_engine *e, cor_incident *const **out)
{
    *out = e->incidents;
    return e->n_incidents;
}

size_t cor_engine_take(cor_engine *e, cor_incident *const **out)
{
    size_t from = e->taken;
    int64_t now = psb_now_ms();
    for (size_t i = from; i < e->n_incidents; i++)
        e->incidents[i]->detected_at = now; /* live: the wall clock (design.md) */
    e->taken = e->n_incidents;
    *out = e->incidents ? e->incidents + from : NULL;
    return e->n_incidents - from;
}

void cor_engine_forget(cor_engine *e)
{
    size_t keep = 0;
    for (size_t i = 0; i < e->n_incidents; i++) {
        cor_incident *inc = e->incidents[i];
        bool done = i < e->taken && (!inc->owner || inc->rule->suppress_ms == 0 ||
                                     ((group *)inc->owner)->suppress_until <= e->watermark);
        if (!done) {
            e->incidents[keep++] = inc;
            continue;
        }
        if (inc->owner)
            ((group *)inc->owner)->incident = NULL;
        cor_incident_free(inc);
    }
    e->taken -= e->n_incidents - keep;
    e->n_incidents = keep;
}

size_t cor_engine_drop_groups(cor_engine *e, bool (*drop)(void *arg, const char *org, size_t len),
                              void *arg)
{
    size_t n = 0;
    for (size_t b = 0; b < e->n_buckets; b++) {
        group *g = e->buckets[b];
        while (g) {
            group *next = g->hnext;
            size_t pos = 0;
            psb_str org;
            bool has = key_item(g->key, g->key_len, &pos, &org);
            if (drop(arg, has ? org.ptr : NULL, has ? org.len : 0)) {
                group_remove(e, g);
                n++;
            }
            g = next;
        }
    }
    return n;
}

cor_matcher *cor_engine_matcher(cor_engine *e)
{
    return e->m;
}
const cor_rule_stats *cor_engine_stats(cor_engine *e)
{
    return cor_matcher_stats(e->m);
}
size_t cor_engine_groups(const cor_engine *e)
{
    return e->n_groups;
}
int64_t cor_engine_watermark(const cor_engine *e)
{
    return e->watermark;
}
