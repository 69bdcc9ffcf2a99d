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
#include <sys/random.h>
#include <time.h>

#include "pasban/util.h"

#define SWEEP_EVERY 1024 /* events between sweeps of expired groups */

/* Ask for a cache line that will be read soon (a hint; nothing without GCC or clang). */
#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* Memory (design.md "Budgets": 1 M live groups in < 256 MiB). A group is one
 * allocation: the common fields, the key, then at an 8-byte boundary its kind's
 * state, and with it the originals kept for evidence: a threshold window's entries
 * and their events' bytes, a sequence's prefixes and the bytes of the steps they
 * hold (shared between prefixes), an absence group's last event. A group holding
 * one event is one malloc of its line's length plus about 120 bytes (bench/
 * correlator-state: 235 bytes a group for 96-byte lines, 522 before). The block
 * grows with realloc and the pointers to it are mended (group_realloc).
 * Suppression lives in the group's last incident (cor_incident.suppress_until),
 * which groups without one do not pay for. */

/* A window entry: its event's original is arena[off .. off+len); for a distinct
 * rule a 4-byte length and the distinct value follow it. */
typedef struct wentry {
    int64_t t;
    uint32_t off, len;
} wentry;

/* Threshold state, followed by wentry[cap] and the arena of acap bytes. Entries are
 * in time order; the arena in arrival order, with `dead` bytes of dropped entries
 * that a compaction reclaims. */
typedef struct thr_state {
    uint32_t n, cap;
    uint32_t distinct;
    uint32_t alen, acap, dead;
} thr_state;

/* Arena bytes of one window are kept below this (older entries drop, counted as
 * evicted), so offsets fit in 32 bits: 1 GiB in one window is far past any sane
 * --max-window times line length. */
#define THR_ARENA_MAX (1u << 30)

/* A sequence prefix: steps 0..k-1 done, the first at t0, the newest of them at tmax
 * (steps are taken in arrival order, so a late step can be older than t0). Only the
 * first 4 steps' events can be reported (README: past 5 steps the first 4 and the
 * completing one), so no more are kept. Their originals are in the group's arena
 * (a 4-byte length, then the bytes), shared by the prefixes that hold them. */
#define SEQ_KEEP (COR_MAX_EVIDENCE - 1)
typedef struct seq_partial {
    int64_t t0, tmax;
    uint32_t ev[SEQ_KEEP]; /* arena offsets */
    uint8_t valid, n_ev;
} seq_partial;

/* Followed by seq_partial[n_steps - 1] (prefixes of 1 .. n_steps-1 steps: the others
 * never hold anything) and the arena of acap bytes. The event that completed a chain
 * (used up by it) is the one that raised the group's incident (event_seq). */
typedef struct seq_state {
    uint32_t alen, acap;
} seq_state;

/* An original kept as evidence is cut here (a line of 64 MiB; input lines are at most
 * 1 MiB), so a window's or a chain's arena offsets fit in 32 bits. */
#define EVIDENCE_MAX_LEN (64u << 20)

/* Followed by the last event's original (olen bytes, room for ocap). */
typedef struct abs_state {
    int64_t first_seen, last_seen;
    long count;
    uint64_t order; /* the event that set last_seen: ties at import keep arrival order */
    uint32_t olen, ocap;
} abs_state;

typedef struct group {
    struct group *prev, *next;
    cor_incident *incident; /* the last one raised: suppressed events count on it */
    int64_t newest;
    uint32_t hash; /* low 32 bits of the key's hash (its slot's tag) */
    uint32_t key_len;
    uint32_t rule;  /* index in the rule set */
    int32_t src;    /* the source (events partition) of its last event (state records) */
    uint32_t dirty; /* 1 + its place in the engine's dirty list; 0: not changed since */
    bool fired;     /* absence: raised and waiting for its suppress time to pass */
    bool stub;      /* its incident is an imported stand-in the group owns */
    bool persisted; /* a state record of it was exported or imported: a free tombstones */
    uint8_t cls;    /* size class of its block (see block_get); 0: allocated apart */
    char key[];     /* operator and by values, length-prefixed (see build_key) */
} group;

static size_t kind_off(size_t key_len)
{
    return (offsetof(group, key) + key_len + 7) & ~(size_t)7;
}
static thr_state *thr(group *g)
{
    return (thr_state *)((char *)g + kind_off(g->key_len));
}
static wentry *thr_win(thr_state *w)
{
    return (wentry *)(w + 1);
}
static char *thr_arena(thr_state *w)
{
    return (char *)(thr_win(w) + w->cap);
}
static seq_state *seq(group *g)
{
    return (seq_state *)((char *)g + kind_off(g->key_len));
}
static size_t seq_slots(const cor_rule *r)
{
    return r->n_steps > 1 ? r->n_steps - 1 : 0;
}
/* The prefix of k steps, 1 <= k < n_steps. */
static seq_partial *seq_prefix(seq_state *q, size_t k)
{
    return (seq_partial *)(q + 1) + (k - 1);
}
static char *seq_arena(seq_state *q, const cor_rule *r)
{
    return (char *)((seq_partial *)(q + 1) + seq_slots(r));
}
static abs_state *absn(group *g)
{
    return (abs_state *)((char *)g + kind_off(g->key_len));
}

/* The group table: open addressing, linear probing. A slot holds the group and the
 * low 32 bits of its hash, so a probe compares hashes in the table's own cache line
 * and reads a group only when they agree: a look-up that finds nothing (most are:
 * most groups see one event) reads no group, and a removal or a resize none but
 * the one removed. */
typedef struct gslot {
    group *g; /* NULL: empty */
    uint32_t h;
} gslot;

typedef struct rule_state {
    group *head, *tail;   /* touch order; for absence: order of last_seen */
    group *fhead, *ftail; /* absence groups that fired */
    size_t n_groups;
    /* the rule's, copied here: a sweep reads them for every rule, and the rules lie
     * apart in memory */
    int64_t within_ms;
    int kind; /* enum cor_kind */
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

/* A slot of e->ids as it was before its first change since the checkpoint. */
typedef struct id_undo {
    id_slot was; /* h == 0: there was no slot */
    uint64_t h;
} id_undo;

/* A group freed after a record of it went out: its tombstone, due at the next export. */
struct tomb {
    int32_t src;
    char *rule_id;
    char *key;
    size_t key_len;
};

/* Blocks of freed groups, kept by size class for the next ones: see block_get. */
#define POOL_CLASSES 128          /* class c: blocks of 16 c - 8 bytes, up to 2040 */
#define POOL_KEEP 1024            /* blocks kept per class; more go back to malloc */
#define POOL_KEEP_BYTES (4u << 20) /* and bytes kept over all classes */

struct cor_engine {
    const cor_ruleset *rs;
    void *pool[POOL_CLASSES]; /* free blocks, linked through their first bytes */
    uint32_t pool_n[POOL_CLASSES];
    size_t pool_bytes;
    cor_matcher *m;
    size_t max_groups, max_window;
    rule_state *rules;
    gslot *slots;
    size_t n_slots, n_groups; /* n_slots: a power of two, at least twice n_groups */
    uint64_t hkey[2];         /* SipHash key of the group table (cor_engine_opts) */
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
    cor_idgen *idgen;
    int64_t id_horizon;
    /* cor_engine_checkpoint: the id slots changed since, and the watermark then */
    id_undo *undo;
    size_t n_undo, cap_undo;
    bool checkpoint, cp_have_watermark;
    int64_t cp_watermark;
    /* state records (cor_engine_export_dirty) */
    int32_t src;   /* the source of the event being processed */
    group **dirty; /* changed since the last export */
    size_t n_dirty, cap_dirty;
    struct tomb *tombs; /* freed since the last export, after a record of them was out */
    size_t n_tombs, cap_tombs;
    size_t *by_id; /* open addressing over rule ids: index + 1, 0 empty */
    size_t by_id_cap;
    cor_buf rec; /* the record being written */
    cor_state_counts counts;
};

/* ---- the keyed hash of group keys ----
 *
 * Group keys hold what the input says (user names, addresses): with a fixed hash,
 * keys made to collide would pile into one run of the table and make every look-up
 * walk it. SipHash-1-3 (Aumasson and Bernstein; 1 compression, 3 finalisation
 * rounds) under a key drawn per engine makes such keys unguessable. Nothing the
 * engine outputs depends on where a group sits in the table. */

static uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIP_ROUND(v0, v1, v2, v3)                                                                  \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = rotl64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = rotl64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = rotl64(v2, 32);                                                                       \
    } while (0)

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* SipHash-1-3 of the 8 bytes of `rule` (little-endian) followed by the key: a rule's
 * groups and another's with the same key land apart. */
static uint64_t group_hash(const uint64_t k[2], uint64_t rule, const char *key, size_t len)
{
    uint64_t v0 = k[0] ^ 0x736f6d6570736575ULL, v1 = k[1] ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k[0] ^ 0x6c7967656e657261ULL, v3 = k[1] ^ 0x7465646279746573ULL;
    v3 ^= rule;
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= rule;
    const unsigned char *p = (const unsigned char *)key;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m = le64(p + i);
        v3 ^= m;
        SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t b = (uint64_t)(len + 8) << 56;
    for (size_t j = 0; i + j < len; j++)
        b |= (uint64_t)p[i + j] << (8 * j);
    v3 ^= b;
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* A key for the table, from the kernel; should it have none to give, the clocks and
 * addresses at hand (what matters is that input cannot predict it). */
static void random_key(uint64_t k[2], const void *salt)
{
    if (getrandom(k, 2 * sizeof(*k), GRND_NONBLOCK) == (ssize_t)(2 * sizeof(*k)) && (k[0] || k[1]))
        return;
    struct timespec ts = {0, 0};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    k[0] = psb_hash_bytes(&ts, sizeof(ts), PSB_HASH_SEED) ^ (uint64_t)(uintptr_t)salt;
    k[1] = (psb_hash_bytes(&salt, sizeof(salt), (uint64_t)psb_now_ms()) ^ (uint64_t)(uintptr_t)k) | 1;
}

cor_engine *cor_engine_new(const cor_ruleset *rs, const cor_engine_opts *opts)
{
    cor_engine_opts o;
    if (opts)
        o = *opts;
    else
        memset(&o, 0, sizeof(o));
    cor_engine *e = psb_xcalloc(1, sizeof(*e));
    e->rs = rs;
    e->m = cor_matcher_new(rs, &o.match);
    e->max_groups = o.max_groups ? o.max_groups : COR_DEFAULT_MAX_GROUPS;
    e->max_window = o.max_window ? o.max_window : COR_DEFAULT_MAX_WINDOW;
    if (e->max_window > UINT32_MAX / 4)
        e->max_window = UINT32_MAX / 4; /* window counts are 32-bit (thr_state) */
    e->rules = psb_xcalloc(rs->n_rules + 1, sizeof(*e->rules));
    e->n_slots = 1024;
    e->slots = psb_xcalloc(e->n_slots, sizeof(*e->slots));
    if (o.hash_key[0] || o.hash_key[1]) {
        e->hkey[0] = o.hash_key[0];
        e->hkey[1] = o.hash_key[1];
    } else {
        random_key(e->hkey, e);
    }
    e->absence_rules = psb_xcalloc(rs->n_rules + 1, sizeof(*e->absence_rules));
    e->id_horizon = ID_HORIZON_EXTRA_MS;
    for (size_t i = 0; i < rs->n_rules; i++) {
        const cor_rule *r = rs->rules[i];
        if (r->kind == COR_KIND_ABSENCE)
            e->absence_rules[e->n_absence++] = i;
        e->rules[i].within_ms = r->within_ms;
        e->rules[i].kind = r->kind;
        int64_t span =
            (r->within_ms > r->suppress_ms ? r->within_ms : r->suppress_ms) + ID_HORIZON_EXTRA_MS;
        if (span > e->id_horizon)
            e->id_horizon = span;
    }
    e->ids_cap = 1024;
    e->ids = psb_xcalloc(e->ids_cap, sizeof(*e->ids));
    e->idgen = cor_idgen_new();
    e->by_id_cap = 16;
    while (e->by_id_cap < rs->n_rules * 2)
        e->by_id_cap *= 2;
    e->by_id = psb_xcalloc(e->by_id_cap, sizeof(*e->by_id));
    for (size_t i = 0; i < rs->n_rules; i++) {
        const char *id = rs->rules[i]->id;
        size_t j = psb_hash_bytes(id, strlen(id), PSB_HASH_SEED) & (e->by_id_cap - 1);
        while (e->by_id[j])
            j = (j + 1) & (e->by_id_cap - 1);
        e->by_id[j] = i + 1;
    }
    return e;
}

/* The rule of that id in the set, or NULL. */
static const cor_rule *rule_by_id(const cor_engine *e, const char *id, size_t len)
{
    size_t j = psb_hash_bytes(id, len, PSB_HASH_SEED) & (e->by_id_cap - 1);
    for (; e->by_id[j]; j = (j + 1) & (e->by_id_cap - 1)) {
        const cor_rule *r = e->rs->rules[e->by_id[j] - 1];
        if (strlen(r->id) == len && memcmp(r->id, id, len) == 0)
            return r;
    }
    return NULL;
}

static void window_clear(group *g)
{
    thr_state *w = thr(g);
    w->n = 0;
    w->distinct = 0;
    w->alen = 0;
    w->dead = 0;
}

static void seq_clear(group *g, const cor_rule *r)
{
    seq_state *q = seq(g);
    memset(q + 1, 0, seq_slots(r) * sizeof(seq_partial));
    q->alen = 0;
}

/* ---- group blocks ----
 *
 * Groups come and go at event rate (1000 rules: 170 k made and freed per 1 M events,
 * most holding one event), and a sweep frees a rule's expired ones in a burst.
 * glibc's free merges each block with its neighbours -- long cold, a cache miss
 * each -- and malloc sorts them back out. The engine keeps freed blocks by size
 * class instead and hands them to the next groups: a free touches only the block
 * the removal has just read. A class's blocks are 16 c - 8 bytes, what glibc's
 * 16-byte chunks hold anyway, so a group takes no more memory than from malloc; the
 * blocks kept are bounded (POOL_KEEP, POOL_KEEP_BYTES), the rest are freed. */

/* Under AddressSanitizer a kept block stays poisoned (its link word aside), so a
 * use of a freed group is still caught. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(POOL_ASAN)
#define POOL_ASAN 1
#endif
#ifdef POOL_ASAN
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define POOL_POISON(p, n) __asan_poison_memory_region((p), (n))
#define POOL_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define POOL_POISON(p, n) ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static size_t class_bytes(unsigned c)
{
    return 16 * (size_t)c - 8;
}

/* The class of a block of size bytes; 0 when past the largest. */
static unsigned size_class(size_t size)
{
    size_t c = (size + 8 + 15) / 16;
    return c < POOL_CLASSES ? (unsigned)c : 0;
}

/* A block of at least size bytes, uninitialised, and its class. */
static void *block_get(cor_engine *e, size_t size, unsigned *cls)
{
    unsigned c = size_class(size);
    *cls = c;
    if (!c)
        return psb_xmalloc(size);
    void *b = e->pool[c];
    if (!b)
        return psb_xmalloc(class_bytes(c));
    POOL_UNPOISON(b, sizeof(void *));
    memcpy(&e->pool[c], b, sizeof(void *));
    e->pool_n[c]--;
    e->pool_bytes -= class_bytes(c);
    POOL_UNPOISON(b, class_bytes(c));
    return b;
}

static void block_put(cor_engine *e, void *b, unsigned c)
{
    if (!c || e->pool_n[c] >= POOL_KEEP || e->pool_bytes + class_bytes(c) > POOL_KEEP_BYTES) {
        free(b);
        return;
    }
    memcpy(b, &e->pool[c], sizeof(void *));
    e->pool[c] = b;
    e->pool_n[c]++;
    e->pool_bytes += class_bytes(c);
    POOL_POISON((char *)b + sizeof(void *), class_bytes(c) - sizeof(void *));
}

static void pool_free(cor_engine *e)
{
    for (unsigned c = 0; c < POOL_CLASSES; c++)
        while (e->pool[c]) {
            void *b = e->pool[c];
            POOL_UNPOISON(b, class_bytes(c));
            memcpy(&e->pool[c], b, sizeof(void *));
            free(b);
        }
}

/* A zeroed group block of size bytes. */
static group *group_alloc(cor_engine *e, size_t size)
{
    unsigned c;
    group *g = block_get(e, size, &c);
    memset(g, 0, size);
    g->cls = (uint8_t)c;
    return g;
}

static void group_free(cor_engine *e, group *g)
{
    if (g->stub)
        cor_incident_free(g->incident);
    else if (g->incident && g->incident->owner == g)
        g->incident->owner = NULL;
    block_put(e, g, g->cls);
}

static void tombs_clear(cor_engine *e)
{
    for (size_t i = 0; i < e->n_tombs; i++) {
        free(e->tombs[i].rule_id);
        free(e->tombs[i].key);
    }
    e->n_tombs = 0;
}

void cor_engine_free(cor_engine *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n_slots; i++)
        if (e->slots[i].g)
            group_free(e, e->slots[i].g);
    free(e->slots);
    pool_free(e);
    for (size_t i = 0; i < e->n_incidents; i++)
        cor_incident_free(e->incidents[i]);
    free(e->incidents);
    free(e->rules);
    free(e->absence_rules);
    free(e->ids);
    cor_idgen_free(e->idgen);
    free(e->undo);
    free(e->dirty);
    tombs_clear(e);
    free(e->tombs);
    free(e->by_id);
    cor_buf_free(&e->rec);
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

/* Link g into the list (head, tail) just after p, or first when p is NULL. */
static void link_after(group **head, group **tail, group *p, group *g)
{
    g->prev = p;
    g->next = p ? p->next : *head;
    if (g->next)
        g->next->prev = g;
    else
        *tail = g;
    if (p)
        p->next = g;
    else
        *head = g;
}

/* Absence list: ordered by last_seen, so the next to fall silent is at the head.
 * Events come nearly in order, so the walk from the tail is short. */
static void list_insert_by_time(rule_state *rs, group *g)
{
    group *p = rs->tail;
    while (p && absn(p)->last_seen > absn(g)->last_seen)
        p = p->prev;
    link_after(&rs->head, &rs->tail, p, g);
}

static void mark_dirty(cor_engine *e, group *g)
{
    if (g->dirty)
        return;
    if (e->n_dirty == e->cap_dirty) {
        e->cap_dirty = e->cap_dirty ? e->cap_dirty * 2 : 256;
        e->dirty = psb_xrealloc(e->dirty, e->cap_dirty * sizeof(*e->dirty));
    }
    e->dirty[e->n_dirty++] = g;
    g->dirty = (uint32_t)e->n_dirty;
}

static void unmark_dirty(cor_engine *e, group *g)
{
    if (!g->dirty)
        return;
    size_t i = g->dirty - 1;
    group *last = e->dirty[--e->n_dirty];
    e->dirty[i] = last;
    last->dirty = (uint32_t)(i + 1);
    g->dirty = 0;
}

/* The record of (src, rule_id, key) is to go. */
static void tomb_add_key(cor_engine *e, int32_t src, const char *rule_id, const char *key,
                         size_t key_len)
{
    if (e->n_tombs == e->cap_tombs) {
        e->cap_tombs = e->cap_tombs ? e->cap_tombs * 2 : 64;
        e->tombs = psb_xrealloc(e->tombs, e->cap_tombs * sizeof(*e->tombs));
    }
    struct tomb *t = &e->tombs[e->n_tombs++];
    t->src = src;
    t->rule_id = psb_xstrdup(rule_id);
    t->key = psb_xmalloc(key_len ? key_len : 1);
    memcpy(t->key, key, key_len);
    t->key_len = key_len;
}

/* The record of g (under its current source) is to go. */
static void tomb_add(cor_engine *e, const group *g)
{
    tomb_add_key(e, g->src, e->rs->rules[g->rule]->id, g->key, g->key_len);
}

/* ---- the group table ---- */

/* The slot holding g. */
static size_t slot_of(const cor_engine *e, const group *g)
{
    size_t mask = e->n_slots - 1, i = g->hash & mask;
    while (e->slots[i].g != g)
        i = (i + 1) & mask;
    return i;
}

static void slot_put(gslot *t, size_t n_slots, group *g)
{
    size_t mask = n_slots - 1, i = g->hash & mask;
    while (t[i].g)
        i = (i + 1) & mask;
    t[i].g = g;
    t[i].h = g->hash;
}

/* Empty slot i and move back the entries of the run after it that may go there
 * (linear probing without tombstones: a look-up stops at the first empty slot). */
static void slot_clear(cor_engine *e, size_t i)
{
    size_t mask = e->n_slots - 1;
    for (size_t j = (i + 1) & mask; e->slots[j].g; j = (j + 1) & mask) {
        size_t home = e->slots[j].h & mask;
        /* j's entry may move to i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        e->slots[i] = e->slots[j];
        i = j;
    }
    e->slots[i].g = NULL;
    e->slots[i].h = 0;
}

/* Add g (not in the table); at most one group per two slots. */
static void table_add(cor_engine *e, group *g)
{
    if (++e->n_groups > e->n_slots / 2) {
        size_t n = e->n_slots * 2;
        gslot *t = psb_xcalloc(n, sizeof(*t));
        for (size_t i = 0; i < e->n_slots; i++)
            if (e->slots[i].g)
                slot_put(t, n, e->slots[i].g);
        free(e->slots);
        e->slots = t;
        e->n_slots = n;
    }
    slot_put(e->slots, e->n_slots, g);
}

/* Free g; a tombstone is due if a record of it went out (tomb) -- not when a
 * rebalance drops it: its record stays for the next owner. */
static void group_remove_(cor_engine *e, group *g, bool tomb)
{
    rule_state *rs = &e->rules[g->rule];
    unmark_dirty(e, g);
    if (tomb && g->persisted)
        tomb_add(e, g);
    list_unlink(rs, g);
    slot_clear(e, slot_of(e, g));
    rs->n_groups--;
    e->n_groups--;
    group_free(e, g);
}

static void group_remove(cor_engine *e, group *g)
{
    group_remove_(e, g, true);
}

/* Resize g's block (bytes past the old size are not set). It may move: its table
 * slot, the rule's list and the incident that point at g are mended, and the caller
 * goes on with the result (no other pointer to g or into it may be held across the
 * call). */
static group *group_realloc(cor_engine *e, group *g, size_t size)
{
    unsigned c = size_class(size);
    if (c && c == g->cls)
        return g; /* its block holds that already */
    rule_state *rs = &e->rules[g->rule];
    size_t slot = slot_of(e, g);
    group **head = g->fired ? &rs->fhead : &rs->head;
    group **tail = g->fired ? &rs->ftail : &rs->tail;
    bool linked = g->prev || *head == g;
    bool owns = g->incident && g->incident->owner == g;
    uintptr_t was = (uintptr_t)g;
    group *n;
    if (!c && !g->cls) {
        n = psb_xrealloc(g, size); /* both past the classes */
    } else {
        /* a block apart is larger than any class: its first `size` bytes are there */
        size_t keep = g->cls ? class_bytes(g->cls) : size;
        n = block_get(e, size, &c);
        memcpy(n, g, keep < size ? keep : size);
        block_put(e, g, g->cls);
        n->cls = (uint8_t)c;
    }
    if ((uintptr_t)n == was)
        return n;
    e->slots[slot].g = n;
    if (linked) {
        if (n->prev)
            n->prev->next = n;
        else
            *head = n;
        if (n->next)
            n->next->prev = n;
        else
            *tail = n;
    }
    if (owns)
        n->incident->owner = n;
    if (n->dirty)
        e->dirty[n->dirty - 1] = n;
    return n;
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

/* The incident's organization.id (PSB_STR_NULL: none) and group object (in json),
 * from a key. */
static psb_str decode_key(const cor_rule *r, const char *key, size_t len, cor_buf *json)
{
    size_t pos = 0;
    psb_str v, org = PSB_STR_NULL;
    if (key_item(key, len, &pos, &v))
        org = v;
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
    return org;
}

/* The group of rule r whose key is e->key (hash h), or NULL. */
static group *group_find(cor_engine *e, const cor_rule *r, uint64_t h)
{
    size_t mask = e->n_slots - 1;
    uint32_t tag = (uint32_t)h;
    for (size_t i = h & mask; e->slots[i].g; i = (i + 1) & mask) {
        group *g = e->slots[i].g;
        if (e->slots[i].h == tag && g->rule == r->index && g->key_len == e->key.len &&
            memcmp(g->key, e->key.p, g->key_len) == 0)
            return g;
    }
    return NULL;
}

static group *group_get(cor_engine *e, const psb_event *ev, const cor_rule *r,
                        const cor_capture *caps, size_t n_caps, size_t extra, bool *created)
{
    build_key(e, ev, r, caps, n_caps);
    uint64_t h = group_hash(e->hkey, r->index, e->key.p, e->key.len);
    group *g = group_find(e, r, h);
    *created = false;
    if (g) {
        if (g->src != e->src && g->persisted) {
            /* Its events now come from another source: the record moves there. */
            tomb_add(e, g);
            g->persisted = false;
        }
        g->src = e->src;
        mark_dirty(e, g);
        return g;
    }
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
    /* One block for the group, its key and its kind's state (threshold, sequence: room
     * for `extra` bytes of window or chain): groups come and go at event rate. */
    size_t off = kind_off(e->key.len);
    size_t kind = r->kind == COR_KIND_SEQUENCE
                      ? sizeof(seq_state) + seq_slots(r) * sizeof(seq_partial) + extra
                  : r->kind == COR_KIND_ABSENCE   ? sizeof(abs_state) + extra
                  : r->kind == COR_KIND_THRESHOLD ? sizeof(thr_state) + extra
                                                  : 0;
    g = group_alloc(e, off + kind);
    g->rule = (uint32_t)r->index;
    g->hash = (uint32_t)h;
    memcpy(g->key, e->key.p, e->key.len);
    g->key_len = (uint32_t)e->key.len;
    g->newest = INT64_MIN;
    g->src = e->src;
    table_add(e, g);
    rs->n_groups++;
    mark_dirty(e, g);
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

/* Before slot h changes (s: its slot, free or not): what it was, if a checkpoint
 * is kept. A slot changed twice keeps its first entry too, undone last. */
static void ids_undo_note(cor_engine *e, const id_slot *s, uint64_t h)
{
    if (!e->checkpoint)
        return;
    if (e->n_undo == e->cap_undo) {
        e->cap_undo = e->cap_undo ? e->cap_undo * 2 : 64;
        e->undo = psb_xrealloc(e->undo, e->cap_undo * sizeof(*e->undo));
    }
    e->undo[e->n_undo++] = (id_undo){*s, h};
}

/* Remove slot i from the linear-probing table: the slots after it that probed
 * past it move back, so every look-up still finds its slot. */
static void ids_delete(cor_engine *e, size_t i)
{
    size_t mask = e->ids_cap - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!e->ids[j].h)
            break;
        size_t home = e->ids[j].h & mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        e->ids[i] = e->ids[j];
        i = j;
    }
    memset(&e->ids[i], 0, sizeof(e->ids[i]));
    e->ids_n--;
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

/* The key in e->ids of an id (never 0, which marks a free slot). */
static uint64_t id_hash(const char *id)
{
    uint64_t h = psb_hash_bytes(id, 32, PSB_HASH_SEED);
    return h ? h : 1;
}

/* inc's id is that of its basis (hash h): note it, or if the basis was seen, take the
 * next ordinal's id. */
static void incident_set_unique_id(cor_engine *e, cor_incident *inc, const char *key,
                                   size_t key_len, uint64_t h)
{
    id_slot *s = id_slot_find(e->ids, e->ids_cap, h);
    ids_undo_note(e, s, h);
    if (s->h) {
        cor_idgen_set_id(e->idgen, inc, key, key_len, ++s->n);
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

/* g NULL: a single rule without suppression, which keeps no group; the key is the
 * one build_key() just made. The evidence is copied (it may point into g). */
static cor_incident *incident_new(cor_engine *e, const cor_rule *r, group *g, int64_t first,
                                  int64_t last, int64_t detected, long count,
                                  const cor_evidence *ev, size_t n_ev)
{
    const char *key = g ? g->key : e->key.p;
    size_t key_len = g ? g->key_len : e->key.len;
    char id[33];
    cor_idgen_make_id(e->idgen, id, r, first, key, key_len, 0);
    uint64_t h = id_hash(id);
    /* The table of id bases is large (an incident is raised for one event in twenty
     * at 1000 rules): its slot is a cache miss, fetched while the incident is built. */
    PREFETCH(&e->ids[h & (e->ids_cap - 1)]);
    psb_str org = decode_key(r, key, key_len, &e->json);
    cor_incident *inc =
        cor_incident_new(r, org.ptr, org.len, e->json.p, e->json.len, ev, n_ev);
    memcpy(inc->id, id, sizeof(id));
    inc->first_seen = first;
    inc->last_seen = last;
    inc->detected_at = detected;
    inc->count = count;
    inc->seq = e->incident_seq++;
    inc->event_seq = e->event_seq;
    inc->suppress_until = detected + r->suppress_ms;
    incident_set_unique_id(e, inc, key, key_len, h);
    if (g) {
        if (g->stub)
            cor_incident_free(g->incident);
        else if (g->incident && g->incident->owner == g)
            g->incident->owner = NULL;
        g->stub = false;
        g->incident = inc;
        inc->owner = g;
        mark_dirty(e, g);
    }
    if (e->n_incidents == e->cap_incidents) {
        e->cap_incidents = e->cap_incidents ? e->cap_incidents * 2 : 64;
        e->incidents = psb_xrealloc(e->incidents, e->cap_incidents * sizeof(*e->incidents));
    }
    e->incidents[e->n_incidents++] = inc;
    cor_matcher_stats(e->m)[r->index].incidents++;
    return inc;
}

/* INT64_MIN when the group has no incident (none yet, or the daemon forgot it once
 * its suppress time had passed). */
static int64_t suppress_until(const group *g)
{
    return g->incident ? g->incident->suppress_until : INT64_MIN;
}

/* Within the suppress time of the group's last incident: count it there, once per event. */
static bool suppressed(cor_engine *e, group *g, int64_t t)
{
    /* Over once the watermark has passed it, also for a late event: sweep() frees such
     * groups every 1024 events, and what a late event meets must not depend on when. */
    cor_incident *inc = g->incident;
    if (!inc || inc->rule->suppress_ms == 0 || t >= inc->suppress_until ||
        inc->suppress_until <= e->watermark)
        return false;
    if (inc->suppressed_seq != e->event_seq) {
        inc->suppressed_seq = e->event_seq;
        inc->suppressed++;
        cor_matcher_stats(e->m)[g->rule].suppressed++;
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
    if (r->kind == COR_KIND_THRESHOLD)
        window_clear(g);
    else if (r->kind == COR_KIND_SEQUENCE)
        seq_clear(g, r);
    g->newest = INT64_MIN;
}

static void touch(cor_engine *e, group *g)
{
    rule_state *rs = &e->rules[g->rule];
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
        /* No state to keep: the incident takes the key build_key() leaves in e->key. */
        build_key(e, ev, r, caps, n_caps);
        cor_evidence x = {ev->original.ptr, ev->original.len};
        incident_new(e, r, NULL, t, t, t, 1, &x, 1);
        return;
    }
    bool created;
    group *g = group_get(e, ev, r, caps, n_caps, 0, &created);
    if (created)
        list_append(&e->rules[r->index], g);
    if (!suppressed(e, g, t)) {
        cor_evidence x = {ev->original.ptr, ev->original.len};
        incident_new(e, r, g, t, t, t, 1, &x, 1);
    }
    if (t > g->newest)
        g->newest = t;
    touch(e, g);
}

/* ---- threshold windows ---- */

static uint32_t evidence_len(const psb_event *ev)
{
    return ev->original.len > EVIDENCE_MAX_LEN ? EVIDENCE_MAX_LEN : (uint32_t)ev->original.len;
}

/* Arena bytes of an entry: its original, and for a distinct rule the value's length
 * and the value. */
static size_t entry_bytes(const char *arena, const wentry *x, bool distinct)
{
    if (!distinct)
        return x->len;
    uint32_t l;
    memcpy(&l, arena + x->off + x->len, sizeof(l));
    return x->len + sizeof(l) + l;
}

static psb_str entry_dv(const char *arena, const wentry *x)
{
    uint32_t l;
    memcpy(&l, arena + x->off + x->len, sizeof(l));
    return psb_str_make(arena + x->off + x->len + sizeof(l), l);
}

static bool window_has(group *g, const char *v, size_t n)
{
    thr_state *w = thr(g);
    const wentry *win = thr_win(w);
    const char *a = thr_arena(w);
    for (size_t i = 0; i < w->n; i++) {
        psb_str d = entry_dv(a, &win[i]);
        if (d.len == n && (n == 0 || memcmp(d.ptr, v, n) == 0))
            return true;
    }
    return false;
}

/* Drop window entries [0, k); their bytes stay in the arena as dead until a compaction. */
static void window_drop_front(group *g, size_t k, bool distinct)
{
    thr_state *w = thr(g);
    wentry *win = thr_win(w);
    const char *a = thr_arena(w);
    for (size_t i = 0; i < k; i++) {
        w->dead += (uint32_t)entry_bytes(a, &win[i], distinct);
        if (distinct) {
            /* still counted if another entry (after the dropped ones) holds the value */
            psb_str d = entry_dv(a, &win[i]);
            bool again = false;
            for (size_t j = i + 1; j < w->n && !again; j++) {
                psb_str o = entry_dv(a, &win[j]);
                again = o.len == d.len && (d.len == 0 || memcmp(o.ptr, d.ptr, d.len) == 0);
            }
            if (!again)
                w->distinct--;
        }
    }
    memmove(win, win + k, (w->n - k) * sizeof(*win));
    w->n -= (uint32_t)k;
    if (w->n == 0)
        w->alen = w->dead = 0;
}

/* Move the live bytes to the front of the arena, in entry order. */
static void window_compact(group *g, bool distinct)
{
    thr_state *w = thr(g);
    wentry *win = thr_win(w);
    char *a = thr_arena(w);
    size_t live = w->alen - w->dead, pos = 0;
    char *tmp = psb_xmalloc(live ? live : 1);
    for (size_t i = 0; i < w->n; i++) {
        size_t b = entry_bytes(a, &win[i], distinct);
        memcpy(tmp + pos, a + win[i].off, b);
        win[i].off = (uint32_t)pos;
        pos += b;
    }
    memcpy(a, tmp, pos);
    free(tmp);
    w->alen = (uint32_t)pos;
    w->dead = 0;
}

/* Room for one more entry of `bytes` arena bytes. The block may move (realloc):
 * the caller goes on with the group returned. Dead bytes are reclaimed once they are
 * half the arena, so a sliding window copies each byte a bounded number of times. */
static group *window_reserve(cor_engine *e, group *g, const cor_rule *r, size_t bytes)
{
    thr_state *w = thr(g);
    bool distinct = r->distinct != NULL;
    if (w->alen + bytes > w->acap && w->dead && (size_t)w->dead * 2 >= w->alen)
        window_compact(g, distinct);
    bool more_entries = w->n == w->cap;
    bool more_bytes = w->alen + bytes > w->acap;
    if (!more_entries && !more_bytes)
        return g;
    size_t cap = w->cap;
    if (more_entries) {
        cap = cap ? cap * 2 : 1;
        /* a plain threshold fires at `count` entries and empties: never more */
        if (!distinct && r->count > 0 && cap > (size_t)r->count)
            cap = (size_t)r->count;
        if (cap <= w->n)
            cap = (size_t)w->n + 1;
    }
    size_t acap = w->acap;
    if (more_bytes) {
        acap = (size_t)w->acap * 2;
        if (acap > THR_ARENA_MAX)
            acap = THR_ARENA_MAX;
        if (acap < w->alen + bytes)
            acap = w->alen + bytes;
    }
    size_t old_cap = w->cap;
    g = group_realloc(e, g, kind_off(g->key_len) + sizeof(thr_state) + cap * sizeof(wentry) + acap);
    w = thr(g);
    char *from = (char *)(thr_win(w) + old_cap);
    w->cap = (uint32_t)cap;
    w->acap = (uint32_t)acap;
    if (cap != old_cap)
        memmove(thr_arena(w), from, w->alen);
    return g;
}

/* Past this many bytes of window room, an emptied window gives its room back. */
#define THR_KEEP_ROOM 1024

static void on_threshold(cor_engine *e, const psb_event *ev, const cor_rule *r,
                         const cor_capture *caps, size_t n_caps)
{
    int64_t t = ev->timestamp_ms;
    char buf[32];
    psb_str dv = PSB_STR_NULL;
    bool distinct = r->distinct != NULL;
    if (distinct && !cor_field_lookup(ev, caps, n_caps, r->distinct, buf, &dv))
        return; /* nothing to count */
    size_t olen = evidence_len(ev);
    size_t dvlen = distinct ? dv.len : 0;
    if (dvlen > EVIDENCE_MAX_LEN)
        dvlen = EVIDENCE_MAX_LEN; /* compared as cut: a value of 64 MiB */
    size_t bytes = olen + (distinct ? sizeof(uint32_t) + dvlen : 0);
    bool created;
    /* a new group gets room for exactly this event: most groups never see a second */
    group *g = group_get(e, ev, r, caps, n_caps, sizeof(wentry) + bytes, &created);
    thr_state *w = thr(g);
    if (created) {
        w->cap = 1;
        w->acap = (uint32_t)bytes;
        list_append(&e->rules[r->index], g);
    } else {
        expire_if_stale(e, g, r);
    }
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
    wentry *win = thr_win(w);
    size_t k = 0;
    while (k < w->n && win[k].t <= edge)
        k++;
    if (k)
        window_drop_front(g, k, distinct);
    if (w->n >= e->max_window) {
        window_drop_front(g, 1, distinct);
        cor_matcher_stats(e->m)[r->index].evicted++;
    }
    while (w->n && (size_t)(w->alen - w->dead) + bytes > THR_ARENA_MAX) {
        window_drop_front(g, 1, distinct);
        cor_matcher_stats(e->m)[r->index].evicted++;
    }
    /* Before the insertion shifts the entries: a late event goes in the middle and the
     * last entry moves past w->n, where a look-up after the memmove would miss it. */
    bool fresh = distinct && !window_has(g, dv.ptr, dvlen);
    g = window_reserve(e, g, r, bytes);
    w = thr(g);
    win = thr_win(w);
    char *a = thr_arena(w);
    size_t pos = w->n;
    while (pos > 0 && win[pos - 1].t > t)
        pos--;
    memmove(win + pos + 1, win + pos, (w->n - pos) * sizeof(*win));
    win[pos].t = t;
    win[pos].off = w->alen;
    win[pos].len = (uint32_t)olen;
    char *p = a + w->alen;
    if (olen)
        memcpy(p, ev->original.ptr, olen);
    if (distinct) {
        uint32_t l = (uint32_t)dvlen;
        memcpy(p + olen, &l, sizeof(l));
        if (dvlen)
            memcpy(p + olen + sizeof(l), dv.ptr, dvlen);
        if (fresh)
            w->distinct++;
    }
    w->alen += (uint32_t)bytes;
    w->n++;
    g->newest = newest;
    touch(e, g);
    bool reached = distinct ? w->distinct >= (size_t)r->count : w->n >= (size_t)r->count;
    if (!reached)
        return;
    /* detected_at = the newest in the window (README), not the group's newest: after an
     * incident emptied the window, late events can fill it again below that.
     * Evidence = the oldest COR_MAX_EVIDENCE (README). */
    int64_t last = win[w->n - 1].t;
    cor_evidence x[COR_MAX_EVIDENCE];
    size_t nx = 0;
    for (; nx < w->n && nx < COR_MAX_EVIDENCE; nx++)
        x[nx] = (cor_evidence){a + win[nx].off, win[nx].len};
    incident_new(e, r, g, win[0].t, last, last, (long)w->n, x, nx);
    window_clear(g);
    if (w->cap * sizeof(wentry) + w->acap > THR_KEEP_ROOM) {
        g = group_realloc(e, g, kind_off(g->key_len) + sizeof(thr_state));
        w = thr(g);
        w->cap = 0;
        w->acap = 0;
    }
}

/* ---- sequences ---- */

/* Room for `bytes` more in the chain's arena; the block may move (realloc). Bytes
 * no prefix holds any more are reclaimed once they are half the arena. */
static group *seq_reserve(cor_engine *e, group *g, const cor_rule *r, size_t bytes)
{
    seq_state *q = seq(g);
    if (q->alen + bytes <= q->acap)
        return g;
    /* the items still held, in arena order, each once */
    uint32_t offs[SEQ_KEEP * (COR_MAX_STEPS > 1 ? COR_MAX_STEPS - 1 : 1)];
    size_t n = 0, live = 0;
    char *a = seq_arena(q, r);
    for (size_t k = 1; k <= seq_slots(r); k++) {
        seq_partial *p = seq_prefix(q, k);
        for (size_t i = 0; p->valid && i < p->n_ev; i++) {
            size_t j = 0;
            while (j < n && offs[j] != p->ev[i])
                j++;
            if (j == n)
                offs[n++] = p->ev[i];
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t l;
        memcpy(&l, a + offs[i], sizeof(l));
        live += sizeof(l) + l;
    }
    if (live * 2 <= q->alen) {
        /* sort (few items), then slide each down: its new place is never past its old */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && offs[j - 1] > offs[j]; j--) {
                uint32_t t = offs[j];
                offs[j] = offs[j - 1];
                offs[j - 1] = t;
            }
        uint32_t pos = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t l;
            memcpy(&l, a + offs[i], sizeof(l));
            memmove(a + pos, a + offs[i], sizeof(l) + l);
            for (size_t k = 1; k <= seq_slots(r); k++) {
                seq_partial *p = seq_prefix(q, k);
                for (size_t m = 0; p->valid && m < p->n_ev; m++)
                    if (p->ev[m] == offs[i])
                        p->ev[m] = pos;
            }
            pos += (uint32_t)(sizeof(l) + l);
        }
        q->alen = pos;
        if (q->alen + bytes <= q->acap)
            return g;
    }
    size_t acap = (size_t)q->acap * 2;
    if (acap < q->alen + bytes)
        acap = q->alen + bytes;
    size_t size = kind_off(g->key_len) + sizeof(seq_state) + seq_slots(r) * sizeof(seq_partial);
    g = group_realloc(e, g, size + acap);
    seq(g)->acap = (uint32_t)acap;
    return g;
}

/* Append an original to the chain's arena (room reserved): its offset. */
static uint32_t seq_store(group *g, const cor_rule *r, const char *s, uint32_t n)
{
    seq_state *q = seq(g);
    char *a = seq_arena(q, r) + q->alen;
    memcpy(a, &n, sizeof(n));
    if (n)
        memcpy(a + sizeof(n), s, n);
    uint32_t off = q->alen;
    q->alen += (uint32_t)(sizeof(n) + n);
    return off;
}

/* Steps come here from the last to the first for one event, so an event that
 * matches several steps advances each prefix once and never chains itself. For
 * each prefix length the most recent start is kept: it leaves the most time for
 * the rest, so a sequence that fits in `within` is never missed. */
static void on_sequence(cor_engine *e, const psb_event *ev, const cor_rule *r, size_t step,
                        const cor_capture *caps, size_t n_caps)
{
    int64_t t = ev->timestamp_ms;
    size_t n = r->n_steps;
    uint32_t olen = evidence_len(ev);
    /* a first step that starts a chain is kept: room for it in a new group's block */
    size_t extra = step == 0 && n > 1 ? sizeof(uint32_t) + olen : 0;
    bool created;
    group *g = group_get(e, ev, r, caps, n_caps, extra, &created);
    if (created) {
        seq(g)->acap = (uint32_t)extra;
        list_append(&e->rules[r->index], g);
    }
    /* The event completed this group's chain at a later step: the incident used it up,
     * so it neither starts a new chain nor counts as suppressed by its own incident. */
    if (!created && g->incident && g->incident->event_seq == e->event_seq)
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
    if (step == 0) {
        if (n == 1) {
            cor_evidence x = {ev->original.ptr, ev->original.len};
            incident_new(e, r, g, t, t, t, 1, &x, 1);
            return;
        }
        seq_partial *p1 = seq_prefix(seq(g), 1);
        if (p1->valid && p1->t0 > t)
            return;    /* the most recent start by time (a late first step does not replace it) */
        p1->valid = 0; /* its events are not kept through a compaction */
        g = seq_reserve(e, g, r, sizeof(uint32_t) + olen);
        p1 = seq_prefix(seq(g), 1);
        memset(p1, 0, sizeof(*p1));
        p1->valid = 1;
        p1->t0 = p1->tmax = t;
        p1->ev[p1->n_ev++] = seq_store(g, r, ev->original.ptr, olen);
        return;
    }
    seq_state *sq = seq(g);
    seq_partial *p = seq_prefix(sq, step);
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
        /* Past 5 steps the evidence is the first 4 and the completing one: the step that
         * makes the incident (the accepted login after the failures) is always shown.
         * A prefix keeps no more than those 4. */
        const char *a = seq_arena(sq, r);
        cor_evidence x[COR_MAX_EVIDENCE];
        size_t nx = 0;
        for (size_t i = 0; i < p->n_ev; i++) {
            uint32_t l;
            memcpy(&l, a + p->ev[i], sizeof(l));
            x[nx++] = (cor_evidence){a + p->ev[i] + sizeof(l), l};
        }
        x[nx++] = (cor_evidence){ev->original.ptr, ev->original.len};
        incident_new(e, r, g, p->t0, last, last, (long)n, x, nx);
        seq_clear(g, r);
        return;
    }
    seq_partial *q = seq_prefix(sq, step + 1);
    if (q->valid && q->t0 > p->t0)
        return;
    q->valid = 0; /* replaced: what only it held may be reclaimed */
    if (p->n_ev < SEQ_KEEP) {
        g = seq_reserve(e, g, r, sizeof(uint32_t) + olen);
        sq = seq(g);
        p = seq_prefix(sq, step);
        q = seq_prefix(sq, step + 1);
    }
    *q = *p; /* shares p's kept events */
    if (q->n_ev < SEQ_KEEP)
        q->ev[q->n_ev++] = seq_store(g, r, ev->original.ptr, olen);
    if (t > q->tmax)
        q->tmax = t;
}

/* ---- absence ---- */

/* Keep ev's original as the group's last event. Called while g is out of its list:
 * the block may move (realloc). */
static group *abs_set_last(cor_engine *e, group *g, const psb_event *ev)
{
    uint32_t n = evidence_len(ev);
    if (n > absn(g)->ocap) {
        g = group_realloc(e, g, kind_off(g->key_len) + sizeof(abs_state) + n);
        absn(g)->ocap = n;
    }
    abs_state *s = absn(g);
    s->olen = n;
    if (n)
        memcpy(s + 1, ev->original.ptr, n);
    return g;
}

static void on_absence(cor_engine *e, const psb_event *ev, const cor_rule *r,
                       const cor_capture *caps, size_t n_caps)
{
    int64_t t = ev->timestamp_ms;
    rule_state *rs = &e->rules[r->index];
    bool created;
    group *g = group_get(e, ev, r, caps, n_caps, evidence_len(ev), &created);
    if (created)
        absn(g)->ocap = evidence_len(ev);
    /* README: an event already silent as of the watermark is ignored, whether it would
     * start a watch or join one (it would only move first_seen back past the window). */
    if (e->have_watermark && t + r->within_ms <= e->watermark) {
        cor_matcher_stats(e->m)[r->index].late++;
        if (created)
            group_remove(e, g);
        return;
    }
    abs_state *s = absn(g);
    if (!created && !g->fired) {
        s->count++;
        if (t < s->first_seen)
            s->first_seen = t; /* a late event: first_seen is the oldest watched */
        /* Ties go to the later arrival: "the last event" is the evidence. */
        if (t >= s->last_seen) {
            list_unlink(rs, g);
            s->last_seen = t;
            s->order = e->event_seq;
            g = abs_set_last(e, g, ev);
            list_insert_by_time(rs, g);
        }
        return;
    }
    if (g->fired) {
        list_unlink(rs, g);
        g->fired = false;
    }
    s->first_seen = s->last_seen = t;
    s->count = 1;
    s->order = e->event_seq;
    g = abs_set_last(e, g, ev);
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
        while (rs->head && absn(rs->head)->last_seen + r->within_ms <= w) {
            group *g = rs->head;
            abs_state *s = absn(g);
            int64_t at = w;
            mark_dirty(e, g);
            if (g->incident && at < g->incident->suppress_until) {
                g->incident->suppressed++;
                cor_matcher_stats(e->m)[r->index].suppressed++;
            } else {
                cor_evidence x = {(const char *)(s + 1), s->olen};
                incident_new(e, r, g, s->first_seen, s->last_seen, at, s->count, &x, 1);
            }
            if (suppress_until(g) <= w) {
                group_remove(e, g);
                continue;
            }
            list_unlink(rs, g);
            g->fired = true;
            list_append(rs, g);
        }
    }
}

/* Rules whose list heads a sweep asks the memory for ahead of reading them. */
#define SWEEP_AHEAD 8

/* The group a sweep looks at first. */
static const group *sweep_head(const rule_state *rs)
{
    return rs->kind == COR_KIND_ABSENCE ? rs->fhead : rs->head;
}

/* Free groups whose windows have expired and whose suppress time has passed. A sweep
 * reads the oldest group of every rule, a cache miss each at 1000 rules (one per
 * event on average): those of the next rules are fetched while this one is looked at
 * (1000 rules: the sweep and its removals 4.3 % -> 3.5 % of the run). */
static void sweep(cor_engine *e)
{
    int64_t w = e->watermark;
    size_t n = e->rs->n_rules;
    for (size_t i = 0; i < n && i < SWEEP_AHEAD; i++)
        PREFETCH(sweep_head(&e->rules[i]));
    for (size_t i = 0; i < n; i++) {
        rule_state *rs = &e->rules[i];
        if (i + SWEEP_AHEAD < n)
            PREFETCH(sweep_head(&e->rules[i + SWEEP_AHEAD]));
        if (!rs->n_groups)
            continue;
        if (rs->kind == COR_KIND_ABSENCE) {
            while (rs->fhead && suppress_until(rs->fhead) <= w)
                group_remove(e, rs->fhead);
            continue;
        }
        while (rs->head) {
            group *g = rs->head;
            int64_t live = rs->kind == COR_KIND_SINGLE ? INT64_MIN : g->newest + rs->within_ms;
            if (live > w || suppress_until(g) > w)
                break;
            PREFETCH(g->next);
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

/* Merge sort of a[0..n) by cmp_incident (tmp: room for n). Incidents are raised
 * nearly in detected_at order, so most halves are found in order already and not
 * merged: close to n comparisons for an input in order (qsort: n log n, 1 % of a
 * 1000-rule replay). */
static void sort_incidents(cor_incident **a, cor_incident **tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    sort_incidents(a, tmp, h);
    sort_incidents(a + h, tmp, n - h);
    if (cmp_incident(&a[h - 1], &a[h]) <= 0)
        return;
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp_incident(&a[j], &a[i]) < 0 ? a[j++] : a[i++];
    while (i < h)
        tmp[k++] = a[i++];
    memcpy(a, tmp, k * sizeof(*a)); /* a[j..n) is in place */
}

void cor_engine_finish(cor_engine *e)
{
    if (e->n_incidents < 2)
        return;
    cor_incident **tmp = psb_xmalloc(e->n_incidents * sizeof(*tmp));
    sort_incidents(e->incidents, tmp, e->n_incidents);
    free(tmp);
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
                                     inc->suppress_until <= e->watermark);
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
    for (size_t i = 0; i < e->rs->n_rules; i++)
        for (int f = 0; f < 2; f++)
            for (group *g = f ? e->rules[i].fhead : e->rules[i].head, *next; g; g = next) {
                next = g->next;
                size_t pos = 0;
                psb_str org;
                bool has = key_item(g->key, g->key_len, &pos, &org);
                if (drop(arg, has ? org.ptr : NULL, has ? org.len : 0)) {
                    group_remove_(e, g, false);
                    n++;
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

/* ---- state records ----
 *
 * Little-endian, fixed widths, every length checked on import:
 *   "PSST" u8 version u8 kind u8 flags (1 incident, 2 fired, 4 distinct) u8 0
 *   i32 src, u8 rule id length + id, u32 key length + key, i64 newest
 *   incident: i64 first_seen, i64 suppress_until, u32 id ordinal
 *   threshold: u32 n, n x (i64 t, u32 len + original [, u32 len + distinct value])
 *   sequence: u8 prefixes, each u8 valid [, i64 t0, i64 tmax, u8 n, n x (u32 len + original)]
 *   absence: i64 first_seen, i64 last_seen, i64 count, u64 arrival order,
 *            u32 len + last original
 * and nothing after. */

#define ST_INCIDENT 1
#define ST_FIRED 2
#define ST_DISTINCT 4

void cor_engine_set_source(cor_engine *e, int32_t src)
{
    e->src = src;
}

static void put_u32(cor_buf *b, uint32_t v)
{
    char x[4] = {(char)v, (char)(v >> 8), (char)(v >> 16), (char)(v >> 24)};
    cor_buf_put(b, x, 4);
}

static void put_i64(cor_buf *b, int64_t v)
{
    uint64_t u = (uint64_t)v;
    put_u32(b, (uint32_t)u);
    put_u32(b, (uint32_t)(u >> 32));
}

/* An original, cut to cut bytes; *total and *n sum what is there before the cut. */
typedef struct orig_acc {
    size_t cut;
    size_t total, n;
    bool was_cut;
} orig_acc;

static void put_orig(cor_buf *b, const char *p, size_t len, orig_acc *acc)
{
    acc->total += len;
    acc->n++;
    if (len > acc->cut) {
        len = acc->cut;
        acc->was_cut = true;
    }
    put_u32(b, (uint32_t)len);
    cor_buf_put(b, p, len);
}

/* The hash of the id basis (rule, group key, first_seen, no ordinal) of g's last
 * incident: the key of its slot in e->ids (never 0, which marks a free slot). */
static uint64_t basis_hash(const cor_engine *e, const cor_rule *r, const group *g)
{
    char id[33];
    cor_idgen_make_id(e->idgen, id, r, g->incident->first_seen, g->key, g->key_len, 0);
    return id_hash(id);
}

/* The id ordinal so far of the basis of g's last incident. */
static unsigned basis_ordinal(const cor_engine *e, const cor_rule *r, const group *g)
{
    const id_slot *s = id_slot_find(e->ids, e->ids_cap, basis_hash(e, r, g));
    return s->h ? s->n : 0;
}

static void write_record(cor_engine *e, group *g, orig_acc *acc)
{
    const cor_rule *r = e->rs->rules[g->rule];
    cor_buf *b = &e->rec;
    b->len = 0;
    uint8_t flags = (uint8_t)((g->incident ? ST_INCIDENT : 0) | (g->fired ? ST_FIRED : 0) |
                              (r->distinct ? ST_DISTINCT : 0));
    char head[8] = {'P', 'S', 'S', 'T', COR_STATE_VERSION, (char)r->kind, (char)flags, 0};
    cor_buf_put(b, head, sizeof(head));
    put_u32(b, (uint32_t)g->src);
    size_t il = strlen(r->id);
    cor_buf_putc(b, (char)il);
    cor_buf_put(b, r->id, il);
    put_u32(b, g->key_len);
    cor_buf_put(b, g->key, g->key_len);
    put_i64(b, g->newest);
    if (g->incident) {
        put_i64(b, g->incident->first_seen);
        put_i64(b, g->incident->suppress_until);
        put_u32(b, basis_ordinal(e, r, g));
    }
    if (r->kind == COR_KIND_THRESHOLD) {
        thr_state *w = thr(g);
        const wentry *win = thr_win(w);
        const char *a = thr_arena(w);
        put_u32(b, w->n);
        for (size_t i = 0; i < w->n; i++) {
            put_i64(b, win[i].t);
            put_orig(b, a + win[i].off, win[i].len, acc);
            if (r->distinct) {
                psb_str d = entry_dv(a, &win[i]);
                put_u32(b, (uint32_t)d.len);
                cor_buf_put(b, d.ptr, d.len);
            }
        }
    } else if (r->kind == COR_KIND_SEQUENCE) {
        seq_state *q = seq(g);
        const char *a = seq_arena(q, r);
        cor_buf_putc(b, (char)seq_slots(r));
        for (size_t k = 1; k <= seq_slots(r); k++) {
            const seq_partial *p = seq_prefix(q, k);
            cor_buf_putc(b, (char)(p->valid ? 1 : 0));
            if (!p->valid)
                continue;
            put_i64(b, p->t0);
            put_i64(b, p->tmax);
            cor_buf_putc(b, (char)p->n_ev);
            for (size_t i = 0; i < p->n_ev; i++) {
                uint32_t l;
                memcpy(&l, a + p->ev[i], sizeof(l));
                put_orig(b, a + p->ev[i] + sizeof(l), l, acc);
            }
        }
    } else if (r->kind == COR_KIND_ABSENCE) {
        const abs_state *s = absn(g);
        put_i64(b, s->first_seen);
        put_i64(b, s->last_seen);
        put_i64(b, s->count);
        put_i64(b, (int64_t)s->order);
        put_orig(b, (const char *)(s + 1), s->olen, acc);
    }
}

/* g's record in e->rec, its originals cut evenly if it would be too big. */
static void export_group(cor_engine *e, group *g, cor_state_fn fn, void *arg)
{
    orig_acc acc = {SIZE_MAX, 0, 0, false};
    write_record(e, g, &acc);
    if (e->rec.len > COR_STATE_MAX_RECORD && acc.n) {
        size_t fixed = e->rec.len - acc.total;
        size_t room = fixed < COR_STATE_MAX_RECORD ? COR_STATE_MAX_RECORD - fixed : 0;
        orig_acc cut = {room / acc.n, 0, 0, false};
        write_record(e, g, &cut);
        if (cut.was_cut)
            e->counts.cut++;
    }
    g->persisted = true;
    e->counts.exported++;
    fn(arg, g->src, e->rs->rules[g->rule]->id, g->key, g->key_len, e->rec.p, e->rec.len);
}

size_t cor_engine_export_dirty(cor_engine *e, cor_state_fn fn, void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n_tombs; i++, n++) {
        const struct tomb *t = &e->tombs[i];
        fn(arg, t->src, t->rule_id, t->key, t->key_len, NULL, 0);
    }
    e->counts.tombstones += e->n_tombs;
    tombs_clear(e);
    for (size_t i = 0; i < e->n_dirty; i++, n++) {
        group *g = e->dirty[i];
        g->dirty = 0;
        export_group(e, g, fn, arg);
    }
    e->n_dirty = 0;
    return n;
}

size_t cor_engine_export_all(cor_engine *e, cor_state_fn fn, void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < e->rs->n_rules; i++) {
        for (group *g = e->rules[i].head; g; g = g->next, n++)
            export_group(e, g, fn, arg);
        for (group *g = e->rules[i].fhead; g; g = g->next, n++)
            export_group(e, g, fn, arg);
    }
    return n;
}

void cor_engine_clear_dirty(cor_engine *e)
{
    tombs_clear(e);
    for (size_t i = 0; i < e->n_dirty; i++)
        e->dirty[i]->dirty = 0;
    e->n_dirty = 0;
}

/* ---- import ---- */

typedef struct rd {
    const unsigned char *p;
    size_t n, pos;
    const char *why; /* the first thing that was wrong */
} rd;

static bool rd_need(rd *r, size_t k, const char *what)
{
    if (r->why)
        return false;
    if (k > r->n - r->pos) {
        r->why = what;
        return false;
    }
    return true;
}

static uint8_t rd_u8(rd *r, const char *what)
{
    return rd_need(r, 1, what) ? r->p[r->pos++] : 0;
}

static uint32_t rd_u32(rd *r, const char *what)
{
    if (!rd_need(r, 4, what))
        return 0;
    const unsigned char *p = r->p + r->pos;
    r->pos += 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int64_t rd_i64(rd *r, const char *what)
{
    uint64_t lo = rd_u32(r, what);
    uint64_t hi = rd_u32(r, what);
    return (int64_t)(lo | hi << 32);
}

/* A u32 length and that many bytes, at most max. */
static psb_str rd_bytes(rd *r, size_t max, const char *what)
{
    uint32_t l = rd_u32(r, what);
    if (r->why)
        return PSB_STR_NULL;
    if (l > max) {
        r->why = what;
        return PSB_STR_NULL;
    }
    if (!rd_need(r, l, what))
        return PSB_STR_NULL;
    psb_str s = psb_str_make((const char *)r->p + r->pos, l);
    r->pos += l;
    return s;
}

/* The key has the operator and exactly the rule's by items, as build_key writes them. */
static bool key_valid(const cor_rule *r, const char *key, size_t len)
{
    size_t pos = 0;
    for (size_t i = 0; i < 1 + r->n_by; i++) {
        if (pos >= len)
            return false;
        if (key[pos] == '-') {
            pos++;
            continue;
        }
        size_t n = 0, digits = 0;
        while (pos < len && key[pos] >= '0' && key[pos] <= '9') {
            n = n * 10 + (size_t)(key[pos++] - '0');
            if (n > len || ++digits > 20)
                return false;
        }
        if (!digits || pos >= len || key[pos] != ':')
            return false;
        pos++;
        if (n > len - pos)
            return false;
        pos += n;
    }
    return pos == len;
}

static int refuse(cor_engine *e, char *err, size_t errlen, const char *pre, const char *what)
{
    e->counts.refused++;
    snprintf(err, errlen, "state record: %s%s", pre, what);
    return -1;
}

/* Keep the id basis of an imported incident, so a repeat still gets the next ordinal. */
static void ids_note(cor_engine *e, const cor_rule *r, const group *g, unsigned ordinal)
{
    uint64_t h = basis_hash(e, r, g);
    id_slot *s = id_slot_find(e->ids, e->ids_cap, h);
    ids_undo_note(e, s, h);
    if (s->h) {
        if (ordinal > s->n)
            s->n = ordinal;
        return;
    }
    if ((e->ids_n + 1) * 2 > e->ids_cap) {
        ids_rebuild(e);
        s = id_slot_find(e->ids, e->ids_cap, h);
    }
    s->h = h;
    s->first_seen = g->incident->first_seen;
    s->n = ordinal;
    e->ids_n++;
}

/* Watched absence groups by last_seen, ties in the order their events came. */
static void abs_insert_imported(rule_state *rs, group *g)
{
    const abs_state *s = absn(g);
    group *p = rs->tail;
    while (p && (absn(p)->last_seen > s->last_seen ||
                 (absn(p)->last_seen == s->last_seen && absn(p)->order > s->order)))
        p = p->prev;
    link_after(&rs->head, &rs->tail, p, g);
}

/* Fired absence groups are ordered by suppress time (the order they fired in). */
static void fired_insert(rule_state *rs, group *g)
{
    group *p = rs->ftail;
    while (p && suppress_until(p) > suppress_until(g))
        p = p->prev;
    link_after(&rs->fhead, &rs->ftail, p, g);
}

int cor_engine_import(cor_engine *e, const char *rec, size_t len, char *err, size_t errlen)
{
    rd r = {(const unsigned char *)rec, len, 0, NULL};
    if (len < 8 || memcmp(rec, "PSST", 4) != 0)
        return refuse(e, err, errlen, "", "not a state record (no PSST header)");
    if ((unsigned char)rec[4] != COR_STATE_VERSION)
        return refuse(e, err, errlen, "", "unknown version");
    r.pos = 8;
    unsigned kind = (unsigned char)rec[5], flags = (unsigned char)rec[6];
    if (kind > COR_KIND_ABSENCE || flags & ~7u || rec[7])
        return refuse(e, err, errlen, "", "bad kind or flags");
    int32_t src = (int32_t)rd_u32(&r, "source");
    uint8_t il = rd_u8(&r, "rule id");
    if (!rd_need(&r, il, "rule id") || il == 0)
        return refuse(e, err, errlen, "truncated or empty ", "rule id");
    const char *rid = rec + r.pos;
    r.pos += il;
    psb_str key = rd_bytes(&r, len, "key");
    int64_t newest = rd_i64(&r, "newest");
    int64_t inc_first = 0, inc_until = 0;
    uint32_t ordinal = 0;
    if (flags & ST_INCIDENT) {
        inc_first = rd_i64(&r, "incident");
        inc_until = rd_i64(&r, "incident");
        ordinal = rd_u32(&r, "incident");
    }
    if (r.why)
        return refuse(e, err, errlen, "truncated at its ", r.why);
    const cor_rule *rule = rule_by_id(e, rid, il);
    /* A rule that is gone, or changed so that its state means something else: the
     * record is of no use to this set. */
    if (!rule || rule->kind != (int)kind ||
        (kind == COR_KIND_THRESHOLD && !(flags & ST_DISTINCT) != !rule->distinct) ||
        (kind == COR_KIND_SINGLE && rule->suppress_ms == 0)) {
        e->counts.ignored++;
        snprintf(err, errlen, "state record of rule %.*s: %s", (int)il, rid,
                 rule ? "the rule changed kind or shape" : "no such rule");
        return 1;
    }
    if (!key_valid(rule, key.ptr, key.len))
        return refuse(e, err, errlen, "", "malformed group key");
    if ((flags & ST_FIRED) && kind != COR_KIND_ABSENCE)
        return refuse(e, err, errlen, "", "fired flag on a non-absence group");

    /* Parse the kind's state whole before anything changes. */
    size_t kind_size = 0, n_items = 0, first_kept = 0;
    size_t seq_n = seq_slots(rule);
    int64_t abs_first = 0, abs_last = 0, abs_count = 0;
    size_t body = r.pos;
    if (kind == COR_KIND_THRESHOLD) {
        uint32_t n = rd_u32(&r, "window");
        int64_t prev = INT64_MIN;
        size_t bytes = 0;
        for (uint32_t i = 0; i < n && !r.why; i++) {
            int64_t t = rd_i64(&r, "window entry");
            psb_str o = rd_bytes(&r, EVIDENCE_MAX_LEN, "window entry");
            psb_str d = (flags & ST_DISTINCT) ? rd_bytes(&r, EVIDENCE_MAX_LEN, "distinct value")
                                              : PSB_STR_NULL;
            if (r.why)
                break;
            if (t < prev)
                return refuse(e, err, errlen, "", "window entries out of order");
            prev = t;
            bytes += o.len + ((flags & ST_DISTINCT) ? sizeof(uint32_t) + d.len : 0);
        }
        n_items = n;
        /* A window longer than this engine keeps loses its oldest, as it would have. */
        first_kept = n > e->max_window ? n - e->max_window : 0;
        if (!r.why && bytes > THR_ARENA_MAX)
            return refuse(e, err, errlen, "", "window too large");
        kind_size = sizeof(thr_state) + (n - first_kept) * sizeof(wentry) + bytes;
    } else if (kind == COR_KIND_SEQUENCE) {
        uint8_t slots = rd_u8(&r, "sequence");
        if (!r.why && slots != seq_n) {
            e->counts.ignored++;
            snprintf(err, errlen, "state record of rule %s: %s", rule->id,
                     "the rule changed kind or shape");
            return 1;
        }
        size_t bytes = 0;
        for (size_t k = 1; k <= seq_n && !r.why; k++) {
            uint8_t valid = rd_u8(&r, "sequence prefix");
            if (r.why)
                break;
            if (valid > 1)
                return refuse(e, err, errlen, "", "bad sequence prefix");
            if (!valid)
                continue;
            rd_i64(&r, "sequence prefix");
            rd_i64(&r, "sequence prefix");
            uint8_t nev = rd_u8(&r, "sequence prefix");
            if (!r.why && (nev > SEQ_KEEP || nev > k))
                return refuse(e, err, errlen, "", "too many sequence events");
            for (size_t i = 0; i < nev && !r.why; i++)
                bytes += sizeof(uint32_t) + rd_bytes(&r, EVIDENCE_MAX_LEN, "sequence event").len;
        }
        if (!r.why && bytes > UINT32_MAX / 2)
            return refuse(e, err, errlen, "", "sequence too large");
        kind_size = sizeof(seq_state) + seq_n * sizeof(seq_partial) + bytes;
    } else if (kind == COR_KIND_ABSENCE) {
        abs_first = rd_i64(&r, "absence");
        abs_last = rd_i64(&r, "absence");
        abs_count = rd_i64(&r, "absence");
        rd_i64(&r, "absence");
        psb_str o = rd_bytes(&r, EVIDENCE_MAX_LEN, "absence evidence");
        if (!r.why && (abs_count < 1 || abs_count > LONG_MAX || abs_first > abs_last))
            return refuse(e, err, errlen, "", "bad absence counts or times");
        kind_size = sizeof(abs_state) + o.len;
    }
    if (r.why)
        return refuse(e, err, errlen, "truncated at its ", r.why);
    if (r.pos != len)
        return refuse(e, err, errlen, "", "bytes after the end");

    /* Replace a group of the same rule and key from the same source. One from
     * another source (an operator whose events span partitions) is replaced only
     * by newer events (ties: the lower source), so the outcome does not depend on
     * the order records are read; the loser's record gets a tombstone, so the
     * state holds one record per group, as memory does. */
    e->key.len = 0;
    cor_buf_put(&e->key, key.ptr, key.len);
    uint64_t h = group_hash(e->hkey, rule->index, key.ptr, key.len);
    group *old = group_find(e, rule, h);
    if (old && old->src != src) {
        if (old->newest > newest || (old->newest == newest && old->src < src)) {
            tomb_add_key(e, src, rule->id, key.ptr, key.len);
            snprintf(err, errlen,
                     "state record of rule %s from source %d: the group held from source %d "
                     "has newer events and is kept",
                     rule->id, (int)src, (int)old->src);
            return 2;
        }
        group_remove_(e, old, true);
    } else if (old) {
        group_remove_(e, old, false);
    }
    rule_state *rs = &e->rules[rule->index];
    if (rs->n_groups >= e->max_groups) {
        group *victim = rs->fhead ? rs->fhead : rs->head;
        if (victim) {
            cor_matcher_stats(e->m)[rule->index].evicted++;
            group_remove(e, victim);
        }
    }
    size_t off = kind_off(key.len);
    group *g = group_alloc(e, off + kind_size);
    g->rule = (uint32_t)rule->index;
    g->hash = (uint32_t)h;
    memcpy(g->key, key.ptr, key.len);
    g->key_len = (uint32_t)key.len;
    g->newest = newest;
    g->src = src;
    g->persisted = true;
    g->fired = (flags & ST_FIRED) != 0;

    r.pos = body;
    if (kind == COR_KIND_THRESHOLD) {
        thr_state *w = thr(g);
        uint32_t n = rd_u32(&r, "window");
        w->cap = (uint32_t)(n - first_kept);
        wentry *win = thr_win(w);
        char *a = thr_arena(w);
        for (uint32_t i = 0; i < n; i++) {
            int64_t t = rd_i64(&r, "");
            psb_str o = rd_bytes(&r, EVIDENCE_MAX_LEN, "");
            psb_str d = (flags & ST_DISTINCT) ? rd_bytes(&r, EVIDENCE_MAX_LEN, "") : PSB_STR_NULL;
            if (i < first_kept)
                continue;
            wentry *x = &win[w->n];
            x->t = t;
            x->off = w->alen;
            x->len = (uint32_t)o.len;
            memcpy(a + w->alen, o.ptr, o.len);
            w->alen += (uint32_t)o.len;
            if (flags & ST_DISTINCT) {
                /* counted once per value, as on_threshold does */
                bool again = false;
                for (size_t j = 0; j < w->n && !again; j++) {
                    psb_str v = entry_dv(a, &win[j]);
                    again = v.len == d.len && (d.len == 0 || memcmp(v.ptr, d.ptr, d.len) == 0);
                }
                uint32_t l = (uint32_t)d.len;
                memcpy(a + w->alen, &l, sizeof(l));
                memcpy(a + w->alen + sizeof(l), d.ptr, d.len);
                w->alen += (uint32_t)(sizeof(l) + d.len);
                w->distinct += !again;
            }
            w->n++;
        }
        w->acap = w->alen;
        (void)n_items;
    } else if (kind == COR_KIND_SEQUENCE) {
        seq_state *q = seq(g);
        rd_u8(&r, "");
        char *a = seq_arena(q, rule);
        for (size_t k = 1; k <= seq_n; k++) {
            seq_partial *p = seq_prefix(q, k);
            if (!rd_u8(&r, ""))
                continue;
            p->valid = 1;
            p->t0 = rd_i64(&r, "");
            p->tmax = rd_i64(&r, "");
            p->n_ev = rd_u8(&r, "");
            for (size_t i = 0; i < p->n_ev; i++) {
                psb_str o = rd_bytes(&r, EVIDENCE_MAX_LEN, "");
                uint32_t l = (uint32_t)o.len;
                p->ev[i] = q->alen;
                memcpy(a + q->alen, &l, sizeof(l));
                memcpy(a + q->alen + sizeof(l), o.ptr, o.len);
                q->alen += (uint32_t)(sizeof(l) + o.len);
            }
        }
        q->acap = q->alen;
    } else if (kind == COR_KIND_ABSENCE) {
        abs_state *s = absn(g);
        s->first_seen = rd_i64(&r, "");
        s->last_seen = rd_i64(&r, "");
        s->count = (long)rd_i64(&r, "");
        s->order = (uint64_t)rd_i64(&r, "");
        psb_str o = rd_bytes(&r, EVIDENCE_MAX_LEN, "");
        s->olen = s->ocap = (uint32_t)o.len;
        memcpy(s + 1, o.ptr, o.len);
    }
    if (flags & ST_INCIDENT) {
        cor_incident *inc = psb_xcalloc(1, sizeof(*inc));
        inc->rule = rule;
        inc->first_seen = inc->last_seen = inc->detected_at = inc_first;
        inc->suppress_until = inc_until;
        inc->owner = g;
        g->incident = inc;
        g->stub = true;
        ids_note(e, rule, g, ordinal);
    }
    table_add(e, g);
    rs->n_groups++;
    if (kind == COR_KIND_ABSENCE && g->fired)
        fired_insert(rs, g);
    else if (kind == COR_KIND_ABSENCE)
        abs_insert_imported(rs, g);
    else
        list_append(rs, g);
    e->counts.imported++;
    return 0;
}

void cor_engine_checkpoint(cor_engine *e)
{
    e->checkpoint = true;
    e->n_undo = 0;
    e->cp_watermark = e->watermark;
    e->cp_have_watermark = e->have_watermark;
}

void cor_engine_rollback(cor_engine *e)
{
    if (!e->checkpoint)
        return;
    e->checkpoint = false;
    for (size_t i = e->n_undo; i-- > 0;) {
        const id_undo *u = &e->undo[i];
        id_slot *s = id_slot_find(e->ids, e->ids_cap, u->h);
        if (!u->was.h) {
            if (s->h)
                ids_delete(e, (size_t)(s - e->ids));
            continue;
        }
        if (!s->h) {
            if ((e->ids_n + 1) * 2 > e->ids_cap) {
                ids_rebuild(e);
                s = id_slot_find(e->ids, e->ids_cap, u->h);
            }
            e->ids_n++;
        }
        *s = u->was;
    }
    e->n_undo = 0;
    e->watermark = e->cp_watermark;
    e->have_watermark = e->cp_have_watermark;
}

void cor_engine_raise_watermark(cor_engine *e, int64_t t)
{
    if (!e->have_watermark || t > e->watermark) {
        e->watermark = t;
        e->have_watermark = true;
    }
}

bool cor_engine_has_watermark(const cor_engine *e)
{
    return e->have_watermark;
}

size_t cor_engine_drop_sources(cor_engine *e, bool (*drop)(void *arg, int32_t src), void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < e->rs->n_rules; i++)
        for (int f = 0; f < 2; f++)
            for (group *g = f ? e->rules[i].fhead : e->rules[i].head, *next; g; g = next) {
                next = g->next;
                if (drop(arg, g->src)) {
                    group_remove_(e, g, false);
                    n++;
                }
            }
    return n;
}

const cor_state_counts *cor_engine_state_counts(const cor_engine *e)
{
    return &e->counts;
}
