/* State records (cor_engine_export_* / cor_engine_import): a restart that
 * restores every group from its records gives the incidents an uninterrupted
 * run gives. For each stream and cut point: run the stream in one engine; run
 * its head in a second, carry the state over (export every group, or the dirty
 * records and tombstones of periodic exports folded by key as a compacted topic
 * keeps them), import into a third engine and run the tail there. The incidents
 * raised (in the order raised, the suppressed count aside: it lands on the
 * engine that saw the suppressed events) must be byte-identical, and the rules'
 * counters must add up. */
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

typedef struct line {
    char *text;
    const char *org;
} line;

typedef struct stream {
    line *l;
    size_t n, cap;
} stream;

static void stream_add(stream *s, const char *text, size_t len, const char *org)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->l = realloc(s->l, s->cap * sizeof(*s->l));
        assert_non_null(s->l);
    }
    s->l[s->n].text = psb_xstrndup(text, len);
    s->l[s->n].org = org;
    s->n++;
}

static void stream_free(stream *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->l[i].text);
    free(s->l);
    memset(s, 0, sizeof(*s));
}

static void feed(cor_engine *e, psb_event *ev, const line *l)
{
    psb_parse_opts po;
    memset(&po, 0, sizeof(po));
    po.received_ms = T0;
    po.organization_id = psb_str_make(l->org, strlen(l->org));
    po.own_events = l->text[0] == '{';
    psb_parse(&po, l->text, strlen(l->text), ev);
    cor_engine_process(e, ev);
}

/* The incidents e raised, in the order raised, suppressed counts left out. */
static void render(cor_engine *e, cor_buf *out)
{
    cor_incident *const *inc;
    size_t n = cor_engine_incidents(e, &inc);
    for (size_t i = 0; i < n; i++) {
        long sup = inc[i]->suppressed;
        inc[i]->suppressed = 0;
        cor_incident_write(inc[i], out);
        inc[i]->suppressed = sup;
        cor_buf_putc(out, '\n');
    }
}

/* A compacted topic in small: the last record per (rule, key); a tombstone removes. */
typedef struct kv {
    char *k;
    size_t kl;
    char *v; /* NULL: tombstone */
    size_t vl;
} kv;

typedef struct topic {
    kv *x;
    size_t n, cap;
    size_t records, tombstones;
} topic;

static void on_record(void *arg, int32_t src, const char *rule_id, const char *key, size_t key_len,
                      const char *rec, size_t rec_len)
{
    (void)src;
    topic *t = arg;
    size_t il = strlen(rule_id);
    size_t kl = il + 1 + key_len;
    char *k = psb_xmalloc(kl);
    memcpy(k, rule_id, il + 1);
    memcpy(k + il + 1, key, key_len);
    rec ? t->records++ : t->tombstones++;
    for (size_t i = 0; i < t->n; i++)
        if (t->x[i].kl == kl && memcmp(t->x[i].k, k, kl) == 0) {
            free(k);
            free(t->x[i].v);
            t->x[i].v = rec ? psb_xstrndup(rec, rec_len) : NULL;
            t->x[i].vl = rec_len;
            return;
        }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->x = realloc(t->x, t->cap * sizeof(*t->x));
        assert_non_null(t->x);
    }
    t->x[t->n++] = (kv){k, kl, rec ? psb_xstrndup(rec, rec_len) : NULL, rec_len};
}

static void topic_free(topic *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->x[i].k);
        free(t->x[i].v);
    }
    free(t->x);
    memset(t, 0, sizeof(*t));
}

static size_t topic_import(topic *t, cor_engine *e)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (!t->x[i].v)
            continue;
        char err[256];
        int rc = cor_engine_import(e, t->x[i].v, t->x[i].vl, err, sizeof(err));
        if (rc != 0)
            fail_msg("import: %s", err);
        n++;
    }
    return n;
}

typedef enum { CARRY_ALL, CARRY_DIRTY } carry;

/* Whole run vs. head, state carried over, tail. */
static void check_cut(const cor_ruleset *rs, const stream *s, size_t cut, carry how,
                      const cor_engine_opts *eo)
{
    psb_event *ev = psb_event_new();
    cor_buf whole = {0}, split = {0};
    cor_engine *a = cor_engine_new(rs, eo);
    for (size_t i = 0; i < s->n; i++)
        feed(a, ev, &s->l[i]);
    render(a, &whole);

    cor_engine *b = cor_engine_new(rs, eo);
    topic t = {0};
    for (size_t i = 0; i < cut; i++) {
        cor_engine_set_source(b, (int32_t)(i % 3));
        feed(b, ev, &s->l[i]);
        if (how == CARRY_DIRTY && i % 37 == 36)
            cor_engine_export_dirty(b, on_record, &t);
    }
    if (how == CARRY_DIRTY)
        cor_engine_export_dirty(b, on_record, &t);
    else
        cor_engine_export_all(b, on_record, &t);
    render(b, &split);
    cor_engine *c = cor_engine_new(rs, eo);
    size_t imported = topic_import(&t, c);
    assert_int_equal(imported, cor_engine_groups(b));
    assert_int_equal(cor_engine_groups(c), cor_engine_groups(b));
    if (cor_engine_has_watermark(b))
        cor_engine_raise_watermark(c, cor_engine_watermark(b));
    for (size_t i = cut; i < s->n; i++)
        feed(c, ev, &s->l[i]);
    render(c, &split);
    cor_buf_putc(&whole, '\0');
    cor_buf_putc(&split, '\0');
    if (strcmp(whole.p, split.p) != 0) {
        fprintf(stderr, "cut at %zu of %zu (%s):\n--- whole\n%s--- split\n%s", cut, s->n,
                how == CARRY_ALL ? "all" : "dirty", whole.p, split.p);
        fail();
    }
    const cor_rule_stats *sa = cor_engine_stats(a), *sb = cor_engine_stats(b),
                         *sc = cor_engine_stats(c);
    for (size_t i = 0; i < rs->n_rules; i++) {
        assert_int_equal(sa[i].matches, sb[i].matches + sc[i].matches);
        assert_int_equal(sa[i].incidents, sb[i].incidents + sc[i].incidents);
        assert_int_equal(sa[i].suppressed, sb[i].suppressed + sc[i].suppressed);
        assert_int_equal(sa[i].late, sb[i].late + sc[i].late);
    }
    topic_free(&t);
    cor_engine_free(a);
    cor_engine_free(b);
    cor_engine_free(c);
    cor_buf_free(&whole);
    cor_buf_free(&split);
    psb_event_free(ev);
}

static void check_stream(const cor_ruleset *rs, const stream *s, const cor_engine_opts *eo)
{
    static const double at[] = {0.0, 0.13, 0.29, 0.5, 0.61, 0.77, 0.93, 1.0};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        size_t cut = (size_t)(at[i] * (double)s->n);
        check_cut(rs, s, cut, CARRY_ALL, eo);
        check_cut(rs, s, cut, CARRY_DIRTY, eo);
    }
}

/* ---- generated streams: every kind, ties, late events, several operators ---- */

static const char gen_rules[] =
    "{\"rules\": ["
    " {\"id\": \"G-THR\", \"where\": {\"message\": \"^fail user=(?<u>\\\\S+) src=(?<k>\\\\S+)\"},"
    "  \"threshold\": {\"count\": 3, \"within\": \"10s\", \"by\": [\"k\"]}, \"suppress\": \"5s\"},"
    " {\"id\": \"G-THR-NOSUP\", \"where\": {\"message\": \"^fail user=(?<u>\\\\S+)\"},"
    "  \"threshold\": {\"count\": 4, \"within\": \"6s\", \"by\": [\"u\"]}},"
    " {\"id\": \"G-DIST\", \"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=(?<p>\\\\d+)\"},"
    "  \"threshold\": {\"count\": 3, \"within\": \"20s\", \"by\": [\"k\"], \"distinct\": \"p\"},"
    "  \"suppress\": \"2s\"},"
    " {\"id\": \"G-SEQ\", \"within\": \"30s\", \"by\": [\"k\"], \"suppress\": \"3s\", "
    "\"sequence\": ["
    "   {\"where\": {\"message\": \"^fail user=\\\\S+ src=(?<k>\\\\S+)\"}},"
    "   {\"where\": {\"message\": \"^fail user=\\\\S+ src=(?<k>\\\\S+)\"}},"
    "   {\"where\": {\"message\": \"^ok user=\\\\S+ src=(?<k>\\\\S+)\"}}]},"
    " {\"id\": \"G-SEQ7\", \"within\": \"60s\", \"by\": [\"k\"], \"sequence\": ["
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=1$\"}},"
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=2$\"}},"
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=3$\"}},"
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=4$\"}},"
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=5$\"}},"
    "   {\"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=6$\"}},"
    "   {\"where\": {\"message\": \"^ok user=\\\\S+ src=(?<k>\\\\S+)\"}}]},"
    " {\"id\": \"G-ABS\", \"where\": {\"message\": \"^beat host=(?<h>\\\\S+)\"},"
    "  \"absence\": {\"within\": \"15s\", \"by\": [\"h\"]}, \"suppress\": \"20s\"},"
    " {\"id\": \"G-ABS-NOSUP\", \"where\": {\"message\": \"^beat host=(?<h>\\\\S+)\"},"
    "  \"absence\": {\"within\": \"8s\", \"by\": [\"h\"]}},"
    " {\"id\": \"G-ONE\", \"where\": {\"message\": \"^ok user=(?<u>\\\\S+)\"}, \"by\": [\"u\"],"
    "  \"suppress\": \"4s\"},"
    " {\"id\": \"G-ANY\", \"where\": {\"message\": \"^port src=(?<k>\\\\S+) p=1$\"}, \"by\": "
    "[\"k\"]}"
    "]}";

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* n events over `keys` sources and users (5: few groups, each seeing many events). */
static void generate_keys(stream *s, uint64_t seed, size_t n, unsigned keys)
{
    static const char *const orgs[] = {"op-a", "op-b", "op-c"};
    uint64_t r = seed;
    int64_t t = T0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = rnd(&r);
        t += (int64_t)(x % 4) * 700; /* ties: a quarter of the events share a time */
        int64_t when = t;
        if (rnd(&r) % 10 == 0)
            when -= (int64_t)(rnd(&r) % 25000); /* late, sometimes past `within` */
        char ts[PSB_TIME_BUFSZ], msg[128], text[256];
        psb_format_time_ms(when, ts);
        unsigned k = (unsigned)(rnd(&r) % keys), u = (unsigned)(rnd(&r) % (keys > 5 ? keys : 4));
        switch (rnd(&r) % 5) {
        case 0:
        case 1:
            snprintf(msg, sizeof(msg), "fail user=u%u src=10.0.%u.%u", u, k / 256, k % 256);
            break;
        case 2:
            snprintf(msg, sizeof(msg), "ok user=u%u src=10.0.%u.%u", u, k / 256, k % 256);
            break;
        case 3:
            snprintf(msg, sizeof(msg), "port src=10.0.%u.%u p=%u", k / 256, k % 256,
                     (unsigned)(rnd(&r) % 7));
            break;
        default:
            snprintf(msg, sizeof(msg), "beat host=h%u", k);
            break;
        }
        int len = snprintf(text, sizeof(text), "<38>1 %s gw1 app - - - %s", ts, msg);
        stream_add(s, text, (size_t)len, orgs[rnd(&r) % 3]);
    }
}

static void generate(stream *s, uint64_t seed, size_t n)
{
    generate_keys(s, seed, n, 5);
}

static cor_ruleset *load_text(const char *text)
{
    cor_load_opts lo = {stderr, false};
    cor_ruleset *rs = cor_ruleset_load_text("gen.rules", text, strlen(text), &lo);
    assert_non_null(rs);
    assert_int_equal(rs->n_errors, 0);
    return rs;
}

static void test_generated_streams_cut_anywhere(void **state)
{
    (void)state;
    cor_ruleset *rs = load_text(gen_rules);
    for (uint64_t seed = 1; seed <= 6; seed++) {
        stream s = {0};
        generate(&s, seed, 400 + 150 * (size_t)seed);
        check_stream(rs, &s, NULL);
        stream_free(&s);
    }
    cor_ruleset_free(rs);
}

/* Small caps: windows that drop their oldest and groups evicted at the cap. */
static void test_generated_streams_small_caps(void **state)
{
    (void)state;
    cor_ruleset *rs = load_text(gen_rules);
    cor_engine_opts eo;
    memset(&eo, 0, sizeof(eo));
    eo.max_window = 2;
    eo.max_groups = 1000;
    stream s = {0};
    generate(&s, 99, 900);
    check_stream(rs, &s, &eo);
    stream_free(&s);
    cor_ruleset_free(rs);
}

/* ---- the sample logs and the starter rule set ---- */

static void read_log(stream *s, const char *path, const char *org)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char buf[8192];
    while (fgets(buf, sizeof(buf), f)) {
        size_t n = strlen(buf);
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        if (n)
            stream_add(s, buf, n, org);
    }
    fclose(f);
}

static void test_sample_logs_with_starter_rules(void **state)
{
    (void)state;
    cor_load_opts lo = {stderr, false};
    cor_ruleset *rs = cor_ruleset_load(PASBAN_SOURCE_DIR "/rules", &lo);
    assert_non_null(rs);
    stream s = {0};
    read_log(&s, PASBAN_SOURCE_DIR "/tests/data/op-alborz.log", "op-alborz");
    read_log(&s, PASBAN_SOURCE_DIR "/tests/data/op-caspian.log", "op-caspian");
    read_log(&s, PASBAN_SOURCE_DIR "/tests/data/op-zagros.log", "op-zagros");
    read_log(&s, PASBAN_SOURCE_DIR "/tests/data/correlator/ssh_small.log", "op-x");
    check_stream(rs, &s, NULL);
    stream_free(&s);
    cor_ruleset_free(rs);
    rs = cor_ruleset_load(PASBAN_SOURCE_DIR "/tests/data/rules/ssh_small.rules", &lo);
    assert_non_null(rs);
    read_log(&s, PASBAN_SOURCE_DIR "/tests/data/correlator/ssh_small.log", "op-x");
    read_log(&s, PASBAN_SOURCE_DIR "/tests/data/op-alborz.log", "op-alborz");
    check_stream(rs, &s, NULL);
    stream_free(&s);
    cor_ruleset_free(rs);
}

/* ---- records that must be refused or ignored ---- */

typedef struct one {
    char *rec;
    size_t len;
    char rule[80];
} one;

static void keep_last(void *arg, int32_t src, const char *rule_id, const char *key, size_t key_len,
                      const char *rec, size_t rec_len)
{
    (void)src, (void)key, (void)key_len;
    one *o = arg;
    if (!rec)
        return;
    free(o->rec);
    o->rec = psb_xstrndup(rec, rec_len);
    o->len = rec_len;
    snprintf(o->rule, sizeof(o->rule), "%s", rule_id);
}

static void test_truncated_and_corrupt_records_refused(void **state)
{
    (void)state;
    cor_ruleset *rs = load_text(gen_rules);
    stream s = {0};
    generate(&s, 7, 300);
    cor_engine *b = cor_engine_new(rs, NULL);
    psb_event *ev = psb_event_new();
    for (size_t i = 0; i < s.n; i++)
        feed(b, ev, &s.l[i]);
    topic t = {0};
    cor_engine_export_all(b, on_record, &t);
    assert_true(t.n > 10);
    char err[256];
    for (size_t i = 0; i < t.n; i++) {
        cor_engine *c = cor_engine_new(rs, NULL);
        const kv *x = &t.x[i];
        /* every strict prefix is refused, with a reason, and leaves nothing behind */
        for (size_t cut = 0; cut < x->vl; cut++) {
            err[0] = '\0';
            assert_int_equal(cor_engine_import(c, x->v, cut, err, sizeof(err)), -1);
            assert_non_null(strstr(err, "state record"));
        }
        assert_int_equal(cor_engine_groups(c), 0);
        /* a byte too many */
        char *more = psb_xmalloc(x->vl + 1);
        memcpy(more, x->v, x->vl);
        more[x->vl] = 0;
        assert_int_equal(cor_engine_import(c, more, x->vl + 1, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "after the end"));
        /* a flipped byte: refused, ignored or imported, never a crash (the fuzz target
         * goes further) */
        for (size_t j = 0; j < x->vl; j++) {
            memcpy(more, x->v, x->vl);
            more[j] ^= 0x5a;
            cor_engine_import(c, more, x->vl, err, sizeof(err));
        }
        free(more);
        assert_int_equal(cor_engine_import(c, x->v, x->vl, err, sizeof(err)), 0);
        /* the same group twice: replaced, not doubled */
        size_t groups = cor_engine_groups(c);
        assert_int_equal(cor_engine_import(c, x->v, x->vl, err, sizeof(err)), 0);
        assert_int_equal(cor_engine_groups(c), groups);
        cor_engine_free(c);
    }
    char bad_version[16] = "PSST\x09";
    cor_engine *c = cor_engine_new(rs, NULL);
    assert_int_equal(cor_engine_import(c, bad_version, 12, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "version"));
    assert_int_equal(cor_engine_import(c, "{\"json\": 1}", 11, err, sizeof(err)), -1);
    assert_true(cor_engine_state_counts(c)->refused >= 2);
    cor_engine_free(c);
    topic_free(&t);
    psb_event_free(ev);
    cor_engine_free(b);
    stream_free(&s);
    cor_ruleset_free(rs);
}

/* After a reload without a rule, its records are ignored and counted; a rule that
 * changed kind under the same id too. */
static void test_records_of_rules_gone_are_ignored(void **state)
{
    (void)state;
    cor_ruleset *rs = load_text(gen_rules);
    stream s = {0};
    generate(&s, 11, 300);
    cor_engine *b = cor_engine_new(rs, NULL);
    psb_event *ev = psb_event_new();
    for (size_t i = 0; i < s.n; i++)
        feed(b, ev, &s.l[i]);
    topic t = {0};
    cor_engine_export_all(b, on_record, &t);
    cor_ruleset *rs2 = load_text(
        "{\"rules\": [{\"id\": \"G-THR\", \"where\": {\"message\": \"^fail src=(?<k>\\\\S+)\"},"
        " \"threshold\": {\"count\": 3, \"within\": \"10s\", \"by\": [\"k\"]}},"
        " {\"id\": \"G-DIST\", \"where\": {\"message\": \"^port\"}}]}");
    cor_engine *c = cor_engine_new(rs2, NULL);
    size_t thr = 0, other = 0;
    for (size_t i = 0; i < t.n; i++) {
        char err[256];
        int rc = cor_engine_import(c, t.x[i].v, t.x[i].vl, err, sizeof(err));
        if (strncmp(t.x[i].k, "G-THR", 6) == 0) {
            assert_int_equal(rc, 0);
            thr++;
        } else {
            assert_int_equal(rc, 1);
            other++;
        }
    }
    assert_true(thr > 0 && other > 0);
    assert_int_equal(cor_engine_state_counts(c)->ignored, other);
    assert_int_equal(cor_engine_state_counts(c)->imported, thr);
    assert_int_equal(cor_engine_groups(c), thr);
    cor_engine_free(c);
    cor_ruleset_free(rs2);
    topic_free(&t);
    psb_event_free(ev);
    cor_engine_free(b);
    stream_free(&s);
    cor_ruleset_free(rs);
}

/* Tombstones: a group that expires after its record went out is reported gone; a
 * dropped source's groups are freed without one (their records stay for the next
 * owner). */
static void test_tombstones_and_drops(void **state)
{
    (void)state;
    cor_ruleset *rs = load_text(gen_rules);
    cor_engine *e = cor_engine_new(rs, NULL);
    psb_event *ev = psb_event_new();
    char ts[PSB_TIME_BUFSZ], text[256];
    psb_format_time_ms(T0, ts);
    snprintf(text, sizeof(text), "<38>1 %s gw1 app - - - fail user=u1 src=10.0.0.1", ts);
    line l = {text, "op-a"};
    cor_engine_set_source(e, 4);
    feed(e, ev, &l);
    topic t = {0};
    cor_engine_export_dirty(e, on_record, &t);
    size_t first = t.records;
    assert_true(first >= 2); /* G-THR, G-THR-NOSUP, G-SEQ */
    assert_int_equal(t.tombstones, 0);
    /* nothing changed: nothing to export */
    assert_int_equal(cor_engine_export_dirty(e, on_record, &t), 0);
    /* a day later, past every window: the sweep frees them, tombstones follow */
    for (int i = 0; i < 1100; i++) {
        psb_format_time_ms(T0 + 86400000LL + i, ts);
        snprintf(text, sizeof(text), "<38>1 %s gw1 app - - - noise", ts);
        feed(e, ev, &l);
    }
    assert_int_equal(cor_engine_groups(e), 0);
    cor_engine_export_dirty(e, on_record, &t);
    assert_int_equal(t.tombstones, first);
    for (size_t i = 0; i < t.n; i++)
        assert_null(t.x[i].v);
    topic_free(&t);
    cor_engine_free(e);
    cor_ruleset_free(rs);
    psb_event_free(ev);
}

static bool drop_src_2(void *arg, int32_t src)
{
    (void)arg;
    return src == 2;
}

static void test_drop_sources_no_tombstones(void **state)
{
    (void)state;
    cor_ruleset *rs = load_text(gen_rules);
    cor_engine *e = cor_engine_new(rs, NULL);
    psb_event *ev = psb_event_new();
    stream s = {0};
    generate(&s, 3, 200);
    for (size_t i = 0; i < s.n; i++) {
        cor_engine_set_source(e, (int32_t)(i % 2 ? 2 : 5));
        feed(e, ev, &s.l[i]);
    }
    topic t = {0};
    cor_engine_export_dirty(e, on_record, &t);
    size_t before = cor_engine_groups(e);
    size_t dropped = cor_engine_drop_sources(e, drop_src_2, NULL);
    assert_true(dropped > 0 && dropped < before);
    assert_int_equal(cor_engine_groups(e), before - dropped);
    size_t tomb = t.tombstones;
    cor_engine_export_dirty(e, on_record, &t);
    assert_int_equal(t.tombstones, tomb);
    topic_free(&t);
    stream_free(&s);
    cor_engine_free(e);
    cor_ruleset_free(rs);
    psb_event_free(ev);
}

/* Every record and tombstone handed out, in the order handed out. */
static void log_record(void *arg, int32_t src, const char *rule_id, const char *key, size_t key_len,
                       const char *rec, size_t rec_len)
{
    cor_buf *b = arg;
    char head[64];
    snprintf(head, sizeof(head), "%d ", (int)src);
    cor_buf_puts(b, head);
    cor_buf_puts(b, rule_id);
    cor_buf_putc(b, ' ');
    cor_buf_json_str(b, key, key_len);
    cor_buf_putc(b, ' ');
    if (rec)
        cor_buf_json_str(b, rec, rec_len);
    else
        cor_buf_puts(b, "tombstone");
    cor_buf_putc(b, '\n');
}

static bool drop_src_1(void *arg, int32_t src)
{
    (void)arg;
    return src == 1;
}

/* Everything an engine hands out over a run with thousands of groups (the table grows,
 * groups are evicted at the cap, swept, dropped): incidents, and the state records and
 * tombstones in the order they go out. */
static void run_logged(const cor_ruleset *rs, const stream *s, const cor_engine_opts *eo,
                       cor_buf *out)
{
    cor_engine *e = cor_engine_new(rs, eo);
    psb_event *ev = psb_event_new();
    for (size_t i = 0; i < s->n; i++) {
        cor_engine_set_source(e, (int32_t)(i % 3));
        feed(e, ev, &s->l[i]);
        if (i % 500 == 499)
            cor_engine_export_dirty(e, log_record, out);
        if (i == s->n / 2) {
            cor_engine_drop_sources(e, drop_src_1, NULL);
            cor_engine_export_dirty(e, log_record, out);
        }
    }
    cor_engine_export_dirty(e, log_record, out);
    cor_engine_export_all(e, log_record, out);
    cor_engine_finish(e);
    cor_incident *const *inc;
    size_t n = cor_engine_incidents(e, &inc);
    for (size_t i = 0; i < n; i++) {
        cor_incident_write(inc[i], out);
        cor_buf_putc(out, '\n');
    }
    cor_buf_putc(out, '\0');
    cor_engine_free(e);
    psb_event_free(ev);
}

/* The group table's hash key (random per engine unless set) changes where groups sit
 * in the table, and nothing else: the output is byte-identical under any key. */
static void test_output_independent_of_hash_key(void **state)
{
    (void)state;
    cor_ruleset *rs = load_text(gen_rules);
    stream s = {0};
    generate_keys(&s, 11, 6000, 3000);
    static const uint64_t keys[][2] = {
        {1, 2}, {0x9e3779b97f4a7c15ULL, 0}, {0, 0} /* random */, {UINT64_MAX, UINT64_MAX}};
    for (int caps = 0; caps < 2; caps++) {
        cor_buf first = {0};
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            cor_engine_opts eo;
            memset(&eo, 0, sizeof(eo));
            eo.hash_key[0] = keys[k][0];
            eo.hash_key[1] = keys[k][1];
            if (caps)
                eo.max_groups = 300; /* evictions */
            cor_buf out = {0};
            run_logged(rs, &s, &eo, &out);
            assert_true(out.len > 10000);
            if (k == 0)
                first = out;
            else {
                assert_int_equal(out.len, first.len);
                assert_memory_equal(out.p, first.p, out.len);
                cor_buf_free(&out);
            }
        }
        cor_buf_free(&first);
    }
    stream_free(&s);
    cor_ruleset_free(rs);
}

/* One group with a long window: its record is cut below the limit, and still imports. */
static void test_big_record_is_cut_to_fit(void **state)
{
    (void)state;
    cor_ruleset *rs = load_text("{\"rules\": [{\"id\": \"BIG\", \"where\": {\"message\": \"^big\"},"
                                " \"threshold\": {\"count\": 1000, \"within\": \"1h\"}}]}");
    cor_engine *e = cor_engine_new(rs, NULL);
    psb_event *ev = psb_event_new();
    char *text = psb_xmalloc(20000);
    for (int i = 0; i < 100; i++) {
        char ts[PSB_TIME_BUFSZ];
        psb_format_time_ms(T0 + i, ts);
        int n = snprintf(text, 20000, "<38>1 %s gw1 app - - - big ", ts);
        memset(text + n, 'x', 15000);
        text[n + 15000] = '\0';
        line l = {text, "op-a"};
        feed(e, ev, &l);
    }
    one o = {0};
    cor_engine_export_all(e, keep_last, &o);
    assert_non_null(o.rec);
    assert_true(o.len <= COR_STATE_MAX_RECORD);
    assert_int_equal(cor_engine_state_counts(e)->cut, 1);
    cor_engine *c = cor_engine_new(rs, NULL);
    char err[256];
    assert_int_equal(cor_engine_import(c, o.rec, o.len, err, sizeof(err)), 0);
    assert_int_equal(cor_engine_groups(c), 1);
    free(o.rec);
    free(text);
    cor_engine_free(c);
    cor_engine_free(e);
    cor_ruleset_free(rs);
    psb_event_free(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_streams_cut_anywhere),
        cmocka_unit_test(test_generated_streams_small_caps),
        cmocka_unit_test(test_sample_logs_with_starter_rules),
        cmocka_unit_test(test_truncated_and_corrupt_records_refused),
        cmocka_unit_test(test_records_of_rules_gone_are_ignored),
        cmocka_unit_test(test_tombstones_and_drops),
        cmocka_unit_test(test_drop_sources_no_tombstones),
        cmocka_unit_test(test_big_record_is_cut_to_fit),
        cmocka_unit_test(test_output_independent_of_hash_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
