/* The event KPI counters in the state topic (cor_kpi_state_*): what one engine
 * exports another imports to the same KPIs; a partition dropped takes exactly its
 * counts away; a record imported twice is not counted twice; old days become
 * tombstones; a malformed record is refused whole and changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cor_kpi.h"
#include "pasban/event.h"
#include "pasban/util.h"

static const char cfg_text[] =
    "{\"operators\": {\"op-a\": {\"sources\": [\"gw1\", \"fw1\", \"aaa1\", \"vpn1\"]}}}";

static cor_kpi *engine(void)
{
    char err[256];
    cor_kpi *k =
        cor_kpi_new(cor_kpi_config_parse(cfg_text, sizeof(cfg_text) - 1, err, sizeof(err)));
    assert_non_null(k);
    return k;
}

static int64_t T(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(psb_parse_rfc3339(s, strlen(s), &ms), 0);
    return ms;
}

static void ev(cor_kpi *k, int32_t part, const char *op, const char *at, const char *host, bool bad)
{
    psb_event *e = psb_event_new();
    e->organization_id = psb_str_make(op, strlen(op));
    if (host)
        e->hostname = psb_str_make(host, strlen(host));
    if (bad)
        e->kind = PSB_EVENT_KIND_PIPELINE_ERROR;
    e->timestamp_ms = T(at);
    assert_int_equal(cor_kpi_on_psb_event_part(k, part, e), 0);
    psb_event_free(e);
}

/* Exported records, in the order of the calls. */
typedef struct rec {
    int32_t part;
    char key[256];
    size_t key_len;
    char *v; /* NULL: a tombstone */
    size_t len;
} rec;

typedef struct recs {
    rec r[64];
    size_t n;
} recs;

static void collect(void *arg, int32_t part, const char *key, size_t key_len, const char *v,
                    size_t len)
{
    recs *rs = arg;
    assert_true(rs->n < 64 && key_len < sizeof(rs->r[0].key));
    rec *r = &rs->r[rs->n++];
    r->part = part;
    memcpy(r->key, key, key_len);
    r->key[key_len] = '\0';
    r->key_len = key_len;
    r->v = NULL;
    r->len = len;
    if (v) {
        r->v = malloc(len);
        memcpy(r->v, v, len);
    }
}

static void recs_free(recs *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->r[i].v);
    rs->n = 0;
}

/* Export and throw away: how many records. */
static size_t export_n(cor_kpi *k, bool all)
{
    recs rs = {.n = 0};
    size_t n = cor_kpi_state_export(k, all, collect, &rs);
    assert_int_equal(n, rs.n);
    recs_free(&rs);
    return n;
}

/* The month record and the days of op in November, as one string. */
static char *outputs(const cor_kpi *k, const char *op)
{
    cor_kpi_period nov;
    cor_kpi_period_parse("2026-11", &nov);
    cor_buf b = {0};
    assert_int_equal(cor_kpi_write_json(k, op, nov, &b), 0);
    assert_int_equal(cor_kpi_write_days_json(k, op, nov, &b), 0);
    cor_buf_putc(&b, '\0');
    return b.p;
}

static void values(const cor_kpi *k, const char *op, const char *per, cor_kpi_values *v)
{
    cor_kpi_period p;
    assert_int_equal(cor_kpi_period_parse(per, &p), 0);
    assert_int_equal(cor_kpi_compute(k, op, p, v), 0);
}

/* Two partitions of op-a over two days, and op-b. */
static void feed(cor_kpi *k)
{
    ev(k, 0, "op-a", "2026-11-22T10:00:00Z", "gw1", false);
    ev(k, 0, "op-a", "2026-11-22T11:00:00Z", "FW1", true);
    ev(k, 0, "op-a", "2026-11-23T09:00:00Z", "gw1", false);
    ev(k, 1, "op-a", "2026-11-23T08:00:00Z", "aaa1", false);
    ev(k, 1, "op-a", "2026-11-23T08:30:00Z", "not-designated", true);
    ev(k, 1, "op-b", "2026-11-23T08:31:00Z", "x", false);
}

static void test_round_trip(void **state)
{
    (void)state;
    cor_kpi *a = engine();
    feed(a);
    recs rs = {.n = 0};
    assert_int_equal(cor_kpi_state_export(a, false, collect, &rs), 4);
    assert_int_equal(rs.n, 4); /* (0,a,22) (0,a,23) (1,a,23) (1,b,23) */
    for (size_t i = 0; i < rs.n; i++) {
        assert_non_null(rs.r[i].v);
        assert_memory_equal(rs.r[i].key, COR_KPI_STATE_PREFIX, 5);
    }
    /* Nothing changed since: nothing to write. */
    recs again = {.n = 0};
    assert_int_equal(cor_kpi_state_export(a, false, collect, &again), 0);

    cor_kpi *b = engine();
    char why[256];
    for (size_t i = 0; i < rs.n; i++)
        assert_int_equal(cor_kpi_state_import(b, rs.r[i].part, rs.r[i].key, rs.r[i].key_len,
                                              rs.r[i].v, rs.r[i].len, why, sizeof(why)),
                         0);
    char *oa = outputs(a, "op-a"), *ob = outputs(b, "op-a");
    assert_string_equal(oa, ob);
    free(oa);
    free(ob);
    oa = outputs(a, "op-b");
    ob = outputs(b, "op-b");
    assert_string_equal(oa, ob);
    free(oa);
    free(ob);
    cor_kpi_values v;
    values(b, "op-a", "2026-11", &v);
    assert_int_equal((int)v.events_ingested.v, 5);
    assert_int_equal((int)v.parse_failures.v, 2);
    assert_int_equal((int)v.sources_reporting.v, 3); /* gw1, fw1, aaa1 in the 24 h */
    assert_true(cor_kpi_has_events(b, "op-b", (cor_kpi_period){false, 2026 * 12 + 10}));

    /* Imported twice (a replayed state partition): the same, not doubled. */
    for (size_t i = 0; i < rs.n; i++)
        assert_int_equal(cor_kpi_state_import(b, rs.r[i].part, rs.r[i].key, rs.r[i].key_len,
                                              rs.r[i].v, rs.r[i].len, why, sizeof(why)),
                         0);
    values(b, "op-a", "2026-11", &v);
    assert_int_equal((int)v.events_ingested.v, 5);

    /* Exported again in full from b: byte for byte what a wrote. */
    recs rb = {.n = 0};
    assert_int_equal(cor_kpi_state_export(b, true, collect, &rb), 4);
    for (size_t i = 0; i < rs.n; i++) {
        size_t j = 0;
        while (j < rb.n && !(rb.r[j].part == rs.r[i].part && strcmp(rb.r[j].key, rs.r[i].key) == 0))
            j++;
        assert_true(j < rb.n);
        assert_int_equal(rb.r[j].len, rs.r[i].len);
        assert_memory_equal(rb.r[j].v, rs.r[i].v, rs.r[i].len);
    }
    recs_free(&rb);
    recs_free(&rs);
    cor_kpi_free(a);
    cor_kpi_free(b);
}

static void test_drop_and_count_on(void **state)
{
    (void)state;
    cor_kpi *a = engine();
    feed(a);
    cor_kpi_values v;
    /* Partition 1 goes to another instance: only partition 0's counts stay. */
    assert_int_equal(cor_kpi_state_drop(a, 1), 2);
    values(a, "op-a", "2026-11", &v);
    assert_int_equal((int)v.events_ingested.v, 3);
    assert_int_equal((int)v.parse_failures.v, 1);
    assert_int_equal((int)v.sources_reporting.v, 2); /* aaa1 was on partition 1 */
    assert_false(cor_kpi_has_events(a, "op-b", (cor_kpi_period){false, 2026 * 12 + 10}));

    /* It comes back from the state topic, then counts on: one record changes. */
    cor_kpi *src = engine();
    feed(src);
    recs rs = {.n = 0};
    cor_kpi_state_export(src, false, collect, &rs);
    export_n(a, false); /* a's own: written */
    char why[256];
    for (size_t i = 0; i < rs.n; i++)
        if (rs.r[i].part == 1)
            assert_int_equal(cor_kpi_state_import(a, 1, rs.r[i].key, rs.r[i].key_len, rs.r[i].v,
                                                  rs.r[i].len, why, sizeof(why)),
                             0);
    values(a, "op-a", "2026-11", &v);
    assert_int_equal((int)v.events_ingested.v, 5);
    assert_int_equal((int)v.sources_reporting.v, 3);
    ev(a, 1, "op-a", "2026-11-23T10:30:00Z", "vpn1", false); /* fw1 of the 22nd still in the 24 h */
    values(a, "op-a", "2026-11", &v);
    assert_int_equal((int)v.events_ingested.v, 6);
    assert_int_equal((int)v.sources_reporting.v, 4);
    recs d = {.n = 0};
    assert_int_equal(cor_kpi_state_export(a, false, collect, &d), 1);
    assert_int_equal(d.r[0].part, 1);
    assert_string_equal(d.r[0].key, "#kpi/op-a/2026-11-23");

    /* An abort: what changed is forgotten, every partition dropped. */
    ev(a, 0, "op-a", "2026-11-23T13:00:00Z", "gw1", false);
    cor_kpi_state_clear_dirty(a);
    assert_int_equal(export_n(a, false), 0);
    assert_int_equal(cor_kpi_state_drop(a, -1), 4);
    values(a, "op-a", "2026-11", &v);
    assert_int_equal((int)v.events_ingested.v, 0);
    assert_int_equal((int)v.sources_reporting.v, 0);
    recs_free(&d);
    recs_free(&rs);
    cor_kpi_free(src);
    cor_kpi_free(a);
}

static void test_retention(void **state)
{
    (void)state;
    cor_kpi *a = engine();
    ev(a, 0, "op-a", "2026-09-30T10:00:00Z", "gw1", false);
    ev(a, 0, "op-a", "2026-10-01T10:00:00Z", "gw1", false);
    ev(a, 0, "op-a", "2026-11-23T10:00:00Z", "gw1", false);
    recs rs = {.n = 0};
    assert_int_equal(cor_kpi_state_export(a, false, collect, &rs), 3);
    size_t tomb = 0;
    for (size_t i = 0; i < rs.n; i++)
        if (!rs.r[i].v) {
            tomb++;
            assert_string_equal(rs.r[i].key, "#kpi/op-a/2026-09-30"); /* before October */
        }
    assert_int_equal(tomb, 1);
    /* Pruned from the state, the day's totals stay in memory. */
    cor_kpi_values v;
    values(a, "op-a", "2026-09", &v);
    assert_int_equal((int)v.events_ingested.v, 1);
    assert_int_equal(export_n(a, true), 2);
    recs_free(&rs);
    cor_kpi_free(a);
}

static void test_corrupt_refused(void **state)
{
    (void)state;
    cor_kpi *a = engine();
    feed(a);
    recs rs = {.n = 0};
    cor_kpi_state_export(a, false, collect, &rs);
    const rec *r = &rs.r[0];
    for (size_t i = 1; i < rs.n; i++)
        if (rs.r[i].len > r->len)
            r = &rs.r[i]; /* the one with the most sources */
    cor_kpi *b = engine();
    char why[256];
    assert_int_equal(cor_kpi_state_import(b, 0, r->key, r->key_len, r->v, r->len, why, sizeof(why)),
                     0);
    char *before = outputs(b, "op-a");
    /* Every truncation is refused. */
    for (size_t n = 0; n < r->len; n++)
        assert_int_equal(cor_kpi_state_import(b, 0, r->key, r->key_len, r->v, n, why, sizeof(why)),
                         -1);
    /* A byte past the end, another version, negative counts, failures > events. */
    char *x = malloc(r->len + 1);
    memcpy(x, r->v, r->len);
    x[r->len] = 0;
    assert_int_equal(
        cor_kpi_state_import(b, 0, r->key, r->key_len, x, r->len + 1, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "past the end"));
    x[4] = 2;
    assert_int_equal(cor_kpi_state_import(b, 0, r->key, r->key_len, x, r->len, why, sizeof(why)),
                     -1);
    assert_non_null(strstr(why, "version"));
    x[4] = 1;
    x[15] = (char)0x80; /* events < 0 */
    assert_int_equal(cor_kpi_state_import(b, 0, r->key, r->key_len, x, r->len, why, sizeof(why)),
                     -1);
    memcpy(x, r->v, r->len);
    x[16] = 100; /* parse failures > events */
    assert_int_equal(cor_kpi_state_import(b, 0, r->key, r->key_len, x, r->len, why, sizeof(why)),
                     -1);
    /* A record of another day than its key: its times are outside that day. */
    assert_int_equal(
        cor_kpi_state_import(b, 0, "#kpi/op-a/2026-11-01", 20, r->v, r->len, why, sizeof(why)), -1);
    /* Bad keys. */
    static const char *const keys[] = {"#kpi/",
                                       "#kpi//2026-11-23",
                                       "#kpi/op-a/2026-13-01",
                                       "#kpi/op-a2026-11-23",
                                       "#kp/op-a/2026-11-23",
                                       "#kpi/op-a/2026-11-2x"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_int_equal(
            cor_kpi_state_import(b, 0, keys[i], strlen(keys[i]), r->v, r->len, why, sizeof(why)),
            -1);
    assert_int_equal(
        cor_kpi_state_import(b, -1, r->key, r->key_len, r->v, r->len, why, sizeof(why)), -1);
    /* Nothing refused changed anything. */
    char *after = outputs(b, "op-a");
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* Every single byte changed: imported or refused, never a crash (ASan); the
     * partition dropped after, the counts are those of partition 0 again. */
    cor_kpi_values v0, v1;
    values(b, "op-a", "2026-11", &v0);
    for (size_t i = 0; i < r->len; i++) {
        memcpy(x, r->v, r->len);
        x[i] = (char)(x[i] ^ 0xff);
        cor_kpi_state_import(b, 7, r->key, r->key_len, x, r->len, why, sizeof(why));
    }
    cor_kpi_state_drop(b, 7);
    values(b, "op-a", "2026-11", &v1);
    assert_true(v0.events_ingested.v == v1.events_ingested.v);
    assert_true(v0.parse_failures.v == v1.parse_failures.v);
    free(x);
    recs_free(&rs);
    cor_kpi_free(a);
    cor_kpi_free(b);
}

static void le(char **p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        *(*p)++ = (char)(v >> (8 * i));
}

/* A record written by hand from the documented format imports (another
 * implementation could write the topic). */
static void test_documented_format(void **state)
{
    (void)state;
    char r[128], *p = r, why[256];
    int64_t day = T("2026-11-23T00:00:00Z"), h = 3600000;
    memcpy(p, "PSKS\1\0\0\0", 8);
    p += 8;
    le(&p, 7, 8);                       /* events */
    le(&p, 1, 8);                       /* parse failures */
    le(&p, (uint64_t)(day + h), 8);     /* oldest */
    le(&p, (uint64_t)(day + 5 * h), 8); /* newest */
    le(&p, 2, 4);
    *p++ = 3;
    memcpy(p, "vpn", 3); /* not designated: skipped */
    p += 3;
    le(&p, (uint64_t)(day + 2 * h), 8);
    *p++ = 4;
    memcpy(p, "VPN1", 4); /* names match without case */
    p += 4;
    le(&p, (uint64_t)(day + 5 * h), 8);
    cor_kpi *k = engine();
    assert_int_equal(cor_kpi_state_import(k, 2, "#kpi/op-a/2026-11-23", 20, r, (size_t)(p - r), why,
                                          sizeof(why)),
                     0);
    cor_kpi_values v;
    values(k, "op-a", "2026-11", &v);
    assert_int_equal((int)v.events_ingested.v, 7);
    assert_int_equal((int)v.parse_failures.v, 1);
    assert_int_equal((int)v.sources_reporting.v, 1);
    cor_kpi_free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),        cmocka_unit_test(test_drop_and_count_on),
        cmocka_unit_test(test_retention),         cmocka_unit_test(test_corrupt_refused),
        cmocka_unit_test(test_documented_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
