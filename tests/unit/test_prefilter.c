/* The prefilter's required literals, where a group's last character is carried into
 * the next run ("(?:[^,]*,){17}80," needs ",80,"): for every pattern and message,
 * the rules --match reports with the prefilter are those without it, and the
 * carried character does keep messages without it from reaching PCRE2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cor_match.h"
#include "cor_prefilter.h"
#include "cor_rule.h"
#include "pasban/parse.h"

/* Patterns as they appear in a JSON rule file (backslashes doubled). */
static const char *const pats[] = {
    "(?:[^,]*,){2}80,",       /* carried ',' */
    "(?:ab|c,)80x",           /* alternation: nothing carried */
    "(?:x,)?80y",             /* optional group: nothing carried */
    "(?:x,)*80z",             /* may repeat zero times */
    "(?:x,){0,3}81z",         /* likewise */
    "(?:(?i)A)bcd",           /* inline option inside: 'A' may be 'a' */
    "(?=a,)a,bcd",            /* lookahead consumes nothing */
    "(?<n>x\\\\,)yzw",        /* escaped last character: not carried */
    "(a+)bcd",                /* quantified last character */
    "(?<src>[\\\\d.]+),tail", /* class last */
    "(?<k>k=)v{2}w",          /* named group: '=' carried */
    "(?:[)]q)rst",            /* ')' in a class */
    "(?i)(?:X)yzq",           /* caseless throughout */
    "(?:y\\\\x2c)80q",        /* last character ends an escape: ',' not 'c' */
    "(?:z\\\\054)80r",        /* octal escape: ',' not '4' */
};

static const char *const msgs[] = {
    "a,b,80,", "80,",  ",80,", "ab80x",   "c,80x", "80y",    "x,80y",        "80z",   "x,x,80z",
    "81z",     "abcd", "Abcd", "a,bcd",   "x,yzw", "aaabcd", "1.2.3.4,tail", "k=vvw", "=vvw",
    ")qrst",   "xyzq", "XYZQ", "a,b,81,", "y,80q", "z,80r",  "c80q",
};

static cor_ruleset *load(bool prefilter)
{
    char rules[4096];
    size_t n = (size_t)snprintf(rules, sizeof(rules), "{\"rules\": [");
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
        n += (size_t)snprintf(rules + n, sizeof(rules) - n,
                              "%s{\"id\": \"P%zu\", \"where\": {\"message\": \"%s\"}}",
                              i ? "," : "", i, pats[i]);
    snprintf(rules + n, sizeof(rules) - n, "]}");
    cor_load_opts lo = {stderr, !prefilter};
    cor_ruleset *rs = cor_ruleset_load_text("test.rules", rules, strlen(rules), &lo);
    assert_non_null(rs);
    assert_int_equal(rs->n_errors, 0);
    return rs;
}

typedef struct hits {
    unsigned long long mask; /* bit i: rule P<i> held */
} hits;

static void on_hit(void *ctx, const psb_event *ev, const cor_rule *r, size_t step,
                   const cor_capture *caps, size_t n_caps)
{
    (void)ev;
    (void)step;
    (void)caps;
    (void)n_caps;
    ((hits *)ctx)->mask |= 1ull << r->index;
}

static unsigned long long run(cor_matcher *m, psb_event *ev, const char *msg)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "<38>1 2026-11-23T10:00:00Z h app - - - %s", msg);
    psb_parse_opts po;
    memset(&po, 0, sizeof(po));
    po.received_ms = 1795428000000LL;
    assert_int_equal(psb_parse(&po, line, (size_t)n, ev), 0);
    hits h = {0};
    cor_matcher_run(m, ev, on_hit, &h);
    return h.mask;
}

static void test_prefilter_agrees_with_pcre2(void **state)
{
    (void)state;
    cor_ruleset *with = load(true), *without = load(false);
    cor_matcher *a = cor_matcher_new(with, NULL), *b = cor_matcher_new(without, NULL);
    psb_event *ev = psb_event_new();
    unsigned long long any = 0;
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        unsigned long long x = run(a, ev, msgs[i]), y = run(b, ev, msgs[i]);
        if (x != y)
            fail_msg("message \"%s\": prefilter %llx, PCRE2 alone %llx", msgs[i], x, y);
        any |= x;
    }
    /* every pattern matched some message: the agreement is not vacuous */
    assert_int_equal(any, (1ull << (sizeof(pats) / sizeof(pats[0]))) - 1);
    psb_event_free(ev);
    cor_matcher_free(a);
    cor_matcher_free(b);
    cor_ruleset_free(with);
    cor_ruleset_free(without);
}

/* "a,b,81," holds "80,"-like text only without the carried comma: with ",80,"
 * required, P0 is not even a candidate for "x80,". */
static void test_carried_character_narrows_candidates(void **state)
{
    (void)state;
    cor_ruleset *rs = load(true);
    if (!rs->prefilter) { /* built without Hyperscan: nothing to narrow */
        cor_ruleset_free(rs);
        skip();
    }
    cor_matcher *m = cor_matcher_new(rs, NULL);
    psb_event *ev = psb_event_new();
    run(m, ev, "x80, and more");
    assert_int_equal(cor_matcher_stats(m)[0].candidates, 0);
    run(m, ev, "y,z,80,");
    assert_int_equal(cor_matcher_stats(m)[0].candidates, 1);
    assert_int_equal(cor_matcher_stats(m)[0].matches, 1);
    psb_event_free(ev);
    cor_matcher_free(m);
    cor_ruleset_free(rs);
}

/* Twelve rules gated by the same literal-free process.name pattern, each with its
 * own message literal: the gate is left out of the prefilter (one database, the
 * message literals), and what fires is what PCRE2 alone says. */
static cor_ruleset *load_gated(bool prefilter)
{
    char rules[4096];
    size_t n = (size_t)snprintf(rules, sizeof(rules), "{\"rules\": [");
    for (int i = 0; i < 12; i++)
        n += (size_t)snprintf(rules + n, sizeof(rules) - n,
                              "%s{\"id\": \"G%d\", \"where\": {\"process.name\": "
                              "\"^(?:ngx|apx)$\", \"message\": \"user u%02d from\"}}",
                              i ? "," : "", i, i);
    snprintf(rules + n, sizeof(rules) - n, "]}");
    cor_load_opts lo = {stderr, !prefilter};
    cor_ruleset *rs = cor_ruleset_load_text("gated.rules", rules, strlen(rules), &lo);
    assert_non_null(rs);
    assert_int_equal(rs->n_errors, 0);
    return rs;
}

static unsigned long long run_app(cor_matcher *m, psb_event *ev, const char *app, const char *msg)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "<38>1 2026-11-23T10:00:00Z h %s - - - %s", app, msg);
    psb_parse_opts po;
    memset(&po, 0, sizeof(po));
    po.received_ms = 1795428000000LL;
    assert_int_equal(psb_parse(&po, line, (size_t)n, ev), 0);
    hits h = {0};
    cor_matcher_run(m, ev, on_hit, &h);
    return h.mask;
}

static void test_shared_gate_left_out(void **state)
{
    (void)state;
    cor_ruleset *with = load_gated(true), *without = load_gated(false);
    if (!with->prefilter) {
        cor_ruleset_free(with);
        cor_ruleset_free(without);
        skip();
    }
    assert_int_equal(cor_prefilter_databases(with->prefilter), 1);
    cor_matcher *a = cor_matcher_new(with, NULL), *b = cor_matcher_new(without, NULL);
    psb_event *ev = psb_event_new();
    static const char *const apps[] = {"ngx", "apx", "sshd", "ngxx"};
    static const char *const texts[] = {"user u03 from x", "user u11 from y", "user u99 from z",
                                        "nothing"};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 4; j++) {
            unsigned long long x = run_app(a, ev, apps[i], texts[j]);
            unsigned long long y = run_app(b, ev, apps[i], texts[j]);
            if (x != y)
                fail_msg("%s / %s: prefilter %llx, PCRE2 alone %llx", apps[i], texts[j], x, y);
        }
    /* G3 fired for ngx and apx only; its literal made it the one candidate */
    assert_int_equal(cor_matcher_stats(a)[3].matches, 2);
    assert_int_equal(cor_matcher_stats(a)[3].candidates, 4);
    assert_int_equal(cor_matcher_stats(a)[4].candidates, 0);
    psb_event_free(ev);
    cor_matcher_free(a);
    cor_matcher_free(b);
    cor_ruleset_free(with);
    cor_ruleset_free(without);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefilter_agrees_with_pcre2),
        cmocka_unit_test(test_carried_character_narrows_candidates),
        cmocka_unit_test(test_shared_gate_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
