/* What the daemon's aborted transactions and restores need of the engine.
 *
 * Rollback: a batch processed after cor_engine_checkpoint, then undone as the
 * daemon undoes an aborted transaction (cor_engine_rollback, every group dropped,
 * the committed records imported, the committed watermark raised) and processed
 * again, raises incidents with the ids and contents of a run without the abort:
 * the incident-id ordinals and the watermark go back to the checkpoint.
 *
 * Sources: a group of one rule and key held from one source (events partition)
 * and a record of it from another (an operator whose events span partitions): the
 * one with the newer events is kept, whatever the order, and the other's record
 * gets a tombstone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cor_engine.h"
#include "cor_rule.h"
#include "pasban/parse.h"
#include "pasban/util.h"

#define T0 1795428000000LL /* 2026-11-23T10:00:00Z */

/* S-ONE: a single rule without suppression (it keeps no group: only the id table
 * knows that its basis was used); T-TWO: a threshold of 2 in 10 s that can fill
 * twice within one timestamp; both by src. */
static const char rules[] =
    "{\"rules\": ["
    " {\"id\": \"S-ONE\", \"severity\": \"info\", \"where\": {\"message\": \"^hit "
    "(?<src>\\\\S+)\"},"
    "  \"by\": [\"src\"]},"
    " {\"id\": \"T-TWO\", \"where\": {\"message\": \"^hit (?<src>\\\\S+)\"},"
    "  \"threshold\": {\"count\": 2, \"within\": \"10s\", \"by\": [\"src\"]}}]}";

typedef struct ev_at {
    int64_t ms; /* after T0 */
    const char *msg;
} ev_at;

static cor_ruleset *load(const char *text)
{
    cor_load_opts lo = {stderr, false};
    cor_ruleset *rs = cor_ruleset_load_text("t.rules", text, strlen(text), &lo);
    assert_non_null(rs);
    assert_int_equal(rs->n_errors, 0);
    return rs;
}

static void feed(cor_engine *e, psb_event *ev, const ev_at *x)
{
    char ts[PSB_TIME_BUFSZ], text[256];
    psb_format_time_ms(T0 + x->ms, ts);
    int len = snprintf(text, sizeof(text), "<38>1 %s gw1 app - - - %s", ts, x->msg);
    psb_parse_opts po;
    memset(&po, 0, sizeof(po));
    po.received_ms = T0;
    po.organization_id = PSB_STR_LIT("op-a");
    psb_parse(&po, text, (size_t)len, ev);
    cor_engine_process(e, ev);
}

/* The incidents raised from index `from` on, one JSON line each. */
static void render(cor_engine *e, size_t from, cor_buf *out)
{
    cor_incident *const *inc;
    size_t n = cor_engine_incidents(e, &inc);
    for (size_t i = from; i < n; i++) {
        cor_incident_write(inc[i], out);
        cor_buf_putc(out, '\n');
    }
}

static size_t n_incidents(cor_engine *e)
{
    cor_incident *const *inc;
    return cor_engine_incidents(e, &inc);
}

/* The last record per (source, rule, key), as a compacted state topic keeps them. */
typedef struct rec {
    int32_t src;
    char *rule_key; /* rule id NUL key */
    size_t kl;
    char *v; /* NULL: a tombstone */
    size_t vl;
} rec;

typedef struct recs {
    rec x[64];
    size_t n, tombstones;
} recs;

static void on_record(void *arg, int32_t src, const char *rule_id, const char *key, size_t key_len,
                      const char *v, size_t vl)
{
    recs *t = arg;
    size_t il = strlen(rule_id), kl = il + 1 + key_len;
    char *k = psb_xmalloc(kl);
    memcpy(k, rule_id, il + 1);
    memcpy(k + il + 1, key, key_len);
    if (!v)
        t->tombstones++;
    for (size_t i = 0; i < t->n; i++)
        if (t->x[i].src == src && t->x[i].kl == kl && memcmp(t->x[i].rule_key, k, kl) == 0) {
            free(k);
            free(t->x[i].v);
            t->x[i].v = v ? psb_xstrndup(v, vl) : NULL;
            t->x[i].vl = vl;
            return;
        }
    assert_true(t->n < 64);
    t->x[t->n++] = (rec){src, k, kl, v ? psb_xstrndup(v, vl) : NULL, vl};
}

static void recs_free(recs *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->x[i].rule_key);
        free(t->x[i].v);
    }
    memset(t, 0, sizeof(*t));
}

static bool drop_all(void *arg, int32_t src)
{
    (void)arg;
    (void)src;
    return true;
}

static const ev_at head[] = {
    {0, "hit 192.0.2.1"},    /* S-ONE 192.0.2.1 at T0: ordinal 0 */
    {1000, "hit 192.0.2.9"}, /* S-ONE; T-TWO's window of .9 opens */
};
static const ev_at batch[] = {
    {0, "hit 192.0.2.1"},     /* S-ONE at T0 again: ordinal 1; T-TWO fires (first_seen T0) */
    {5000, "hit 192.0.2.9"},  /* T-TWO of .9 fires with the window opened at 1 s */
    {2000, "hit 192.0.2.2"},  /* S-ONE of a new basis: ordinal 0 */
    {0, "hit 192.0.2.1"},     /* T-TWO's window of .1 refilled at T0 ... */
    {0, "hit 192.0.2.1"},     /* ... fires again with the same basis: ordinal 1 */
    {60000, "hit 192.0.2.7"}, /* the watermark moves a minute on */
};

static void run(cor_engine *e, psb_event *ev, const ev_at *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        feed(e, ev, &x[i]);
}

static void test_replay_after_rollback_gives_the_same_ids(void **state)
{
    (void)state;
    cor_ruleset *rs = load(rules);
    psb_event *ev = psb_event_new();
    const size_t nh = sizeof(head) / sizeof(head[0]), nb = sizeof(batch) / sizeof(batch[0]);

    /* Without an abort. */
    cor_engine *clean = cor_engine_new(rs, NULL);
    run(clean, ev, head, nh);
    size_t from_clean = n_incidents(clean);
    run(clean, ev, batch, nb);
    cor_buf want = {0};
    render(clean, from_clean, &want);

    /* The head committed; the batch processed, aborted, rewound, processed again. */
    cor_engine *e = cor_engine_new(rs, NULL);
    run(e, ev, head, nh);
    recs committed = {0};
    cor_engine_export_dirty(e, on_record, &committed);
    int64_t wm = cor_engine_watermark(e);
    cor_engine_checkpoint(e);
    run(e, ev, batch, nb);
    cor_engine_rollback(e);
    cor_engine_clear_dirty(e);
    cor_engine_drop_sources(e, drop_all, NULL);
    for (size_t i = 0; i < committed.n; i++) {
        char err[256];
        if (committed.x[i].v)
            assert_int_equal(
                cor_engine_import(e, committed.x[i].v, committed.x[i].vl, err, sizeof(err)), 0);
    }
    cor_engine_raise_watermark(e, wm);
    assert_int_equal(cor_engine_watermark(e), wm);
    size_t from = n_incidents(e);
    run(e, ev, batch, nb);
    cor_buf got = {0};
    render(e, from, &got);
    assert_true(want.len > 0);
    /* 6 incidents: S-ONE x3 of .1, .9 ... every one with its clean id */
    assert_int_equal(n_incidents(e) - from, n_incidents(clean) - from_clean);
    if (got.len != want.len || memcmp(got.p, want.p, want.len) != 0)
        fail_msg("after the rollback:\n%.*s\nwithout the abort:\n%.*s", (int)got.len, got.p,
                 (int)want.len, want.p);

    /* A second rollback, or one without a checkpoint, changes nothing. */
    cor_engine_rollback(e);
    assert_int_equal(cor_engine_watermark(e), cor_engine_watermark(clean));

    cor_buf_free(&want);
    cor_buf_free(&got);
    recs_free(&committed);
    cor_engine_free(e);
    cor_engine_free(clean);
    psb_event_free(ev);
    cor_ruleset_free(rs);
}

/* Many bases in one aborted batch (the id table grows and moves slots around):
 * after the rollback every one of them is new again. */
static void test_rollback_of_many_bases(void **state)
{
    (void)state;
    cor_ruleset *rs = load(rules);
    psb_event *ev = psb_event_new();
    cor_engine *e = cor_engine_new(rs, NULL);
    cor_engine *clean = cor_engine_new(rs, NULL);
    char msg[64];
    cor_engine_checkpoint(e);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            cor_engine_rollback(e);
            cor_engine_clear_dirty(e);
            cor_engine_drop_sources(e, drop_all, NULL);
        }
        size_t from = n_incidents(e);
        for (int i = 0; i < 3000; i++) {
            snprintf(msg, sizeof(msg), "hit 10.%d.%d.1", i / 256, i % 256);
            ev_at x = {i / 7, msg};
            feed(e, ev, &x);
            if (pass == 0)
                feed(clean, ev, &x);
        }
        cor_buf a = {0}, b = {0};
        render(e, from, &a);
        render(clean, 0, &b);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
        cor_buf_free(&a);
        cor_buf_free(&b);
    }
    cor_engine_free(e);
    cor_engine_free(clean);
    psb_event_free(ev);
    cor_ruleset_free(rs);
}

/* The state record of T-TWO's group of 192.0.2.5 after `x` on source src. */
static void record_of(cor_ruleset *rs, int32_t src, const ev_at *x, size_t n, recs *out)
{
    psb_event *ev = psb_event_new();
    cor_engine *e = cor_engine_new(rs, NULL);
    cor_engine_set_source(e, src);
    run(e, ev, x, n);
    cor_engine_export_dirty(e, on_record, out);
    cor_engine_free(e);
    psb_event_free(ev);
}

static const char *t_two_record(const recs *t, size_t *len)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->x[i].rule_key, "T-TWO") == 0 && t->x[i].v) {
            *len = t->x[i].vl;
            return t->x[i].v;
        }
    fail_msg("no T-TWO record");
    return NULL;
}

static void test_group_of_another_source_is_kept_when_newer(void **state)
{
    (void)state;
    cor_ruleset *rs = load("{\"rules\": [{\"id\": \"T-TWO\", \"where\": {\"message\": "
                           "\"^hit (?<src>\\\\S+)\"}, \"threshold\": {\"count\": 3, \"within\": "
                           "\"1h\", \"by\": [\"src\"]}}]}");
    const ev_at older[] = {{0, "hit 192.0.2.5"}, {1000, "hit 192.0.2.5"}};
    const ev_at newer[] = {{5000, "hit 192.0.2.5"}};
    recs r1 = {0}, r2 = {0};
    record_of(rs, 1, older, 2, &r1); /* two events, newest at 1 s, partition 1 */
    record_of(rs, 2, newer, 1, &r2); /* one event at 5 s, partition 2 */
    size_t l1, l2;
    const char *v1 = t_two_record(&r1, &l1), *v2 = t_two_record(&r2, &l2);
    char err[256];

    /* Held from partition 2 (newer): the older record of partition 1 is not taken,
     * and its record is to go. */
    psb_event *ev = psb_event_new();
    cor_engine *e = cor_engine_new(rs, NULL);
    cor_engine_set_source(e, 2);
    run(e, ev, newer, 1);
    recs out = {0};
    cor_engine_export_dirty(e, on_record, &out);
    assert_int_equal(cor_engine_import(e, v1, l1, err, sizeof(err)), 2);
    assert_non_null(strstr(err, "source 2"));
    recs after = {0};
    cor_engine_export_dirty(e, on_record, &after);
    assert_int_equal(after.tombstones, 1);
    assert_int_equal(after.x[0].src, 1);
    /* the held window goes on: one more event makes 2 of 3, no incident */
    const ev_at more[] = {{6000, "hit 192.0.2.5"}};
    run(e, ev, more, 1);
    assert_int_equal(n_incidents(e), 0);
    cor_engine_free(e);
    recs_free(&out);
    recs_free(&after);

    /* Held from partition 1 (older): the newer record replaces it; partition 1's
     * record gets a tombstone. */
    e = cor_engine_new(rs, NULL);
    cor_engine_set_source(e, 1);
    run(e, ev, older, 2);
    cor_engine_export_dirty(e, on_record, &out);
    assert_int_equal(cor_engine_import(e, v2, l2, err, sizeof(err)), 0);
    cor_engine_export_dirty(e, on_record, &after);
    assert_int_equal(after.tombstones, 1);
    assert_int_equal(after.x[0].src, 1);
    assert_null(after.x[0].v);
    cor_engine_free(e);
    recs_free(&out);
    recs_free(&after);

    /* Both records read in one restore, in either order: the same group kept. */
    cor_buf a = {0}, b = {0};
    for (int order = 0; order < 2; order++) {
        e = cor_engine_new(rs, NULL);
        assert_int_equal(cor_engine_import(e, order ? v2 : v1, order ? l2 : l1, err, sizeof(err)),
                         0);
        int rc = cor_engine_import(e, order ? v1 : v2, order ? l1 : l2, err, sizeof(err));
        assert_int_equal(rc, order ? 2 : 0);
        assert_int_equal(cor_engine_groups(e), 1);
        recs all = {0};
        cor_engine_export_all(e, on_record, &all);
        assert_int_equal(all.n, 1);
        assert_int_equal(all.x[0].src, 2);
        cor_buf_put(order ? &b : &a, all.x[0].v, all.x[0].vl);
        recs_free(&all);
        cor_engine_free(e);
    }
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.p, b.p, a.len);
    cor_buf_free(&a);
    cor_buf_free(&b);
    recs_free(&r1);
    recs_free(&r2);
    psb_event_free(ev);
    cor_ruleset_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_after_rollback_gives_the_same_ids),
        cmocka_unit_test(test_rollback_of_many_bases),
        cmocka_unit_test(test_group_of_another_source_is_kept_when_newer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
