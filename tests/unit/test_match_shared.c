/* Rules that share a pattern: it is compiled once per set and run once per event
 * and field, and every rule still fires, captures and counts as if it ran alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cor_match.h"
#include "cor_rule.h"
#include "pasban/parse.h"

static cor_ruleset *load(const char *text, bool prefilter)
{
    cor_load_opts lo = {stderr, !prefilter};
    cor_ruleset *rs = cor_ruleset_load_text("t.rules", text, strlen(text), &lo);
    assert_non_null(rs);
    assert_int_equal(rs->n_errors, 0);
    return rs;
}

#define MAX_SEEN 16

typedef struct seen {
    size_t n;
    char rule[MAX_SEEN][16];
    char src[MAX_SEEN][32]; /* capture "src", or "" */
} seen;

static void on_hit(void *ctx, const psb_event *ev, const cor_rule *r, size_t step,
                   const cor_capture *caps, size_t n_caps)
{
    (void)step;
    seen *s = ctx;
    assert_true(s->n < MAX_SEEN);
    snprintf(s->rule[s->n], sizeof(s->rule[0]), "%s", r->id);
    char buf[32];
    psb_str v;
    if (cor_field_lookup(ev, caps, n_caps, "src", buf, &v))
        snprintf(s->src[s->n], sizeof(s->src[0]), "%.*s", (int)v.len, v.ptr);
    else
        s->src[s->n][0] = '\0';
    s->n++;
}

/* An RFC 5424 line: app-name is process.name, msg is message. */
static void parse(psb_event *ev, char *line, size_t cap, const char *app, const char *msg)
{
    int n = snprintf(line, cap, "<38>1 2026-11-23T10:00:00Z h %s - - - %s", app, msg);
    psb_parse_opts po;
    memset(&po, 0, sizeof(po));
    po.received_ms = 1795428000000LL;
    assert_int_equal(psb_parse(&po, line, (size_t)n, ev), 0);
}

static seen run(cor_matcher *m, psb_event *ev, const char *app, const char *msg)
{
    static char line[512];
    parse(ev, line, sizeof(line), app, msg);
    seen s;
    memset(&s, 0, sizeof(s));
    cor_matcher_run(m, ev, on_hit, &s);
    return s;
}

/* Three rules with the same capturing message pattern, two with an unless on
 * the capture, one on another field with the same text. */
static const char shared_rules[] =
    "{\"rules\": ["
    "{\"id\": \"A\", \"where\": {\"message\": \"^denied (?<src>\\\\S+) port\"}},"
    "{\"id\": \"B\", \"where\": {\"process.name\": \"^fw$\", "
    "                             \"message\": \"^denied (?<src>\\\\S+) port\"},"
    "  \"unless\": {\"src\": \"^10\\\\.\"}},"
    "{\"id\": \"C\", \"where\": {\"message\": \"^denied (?<src>\\\\S+) port\"},"
    "  \"unless\": {\"src\": \"^192\\\\.\"}},"
    "{\"id\": \"D\", \"where\": {\"process.name\": \"^denied (?<src>\\\\S+) port\"}},"
    "{\"id\": \"E\", \"where\": {\"process.name\": \"^fw$\", \"message\": \"port 22$\"}}"
    "]}";

static void check_shared(bool prefilter)
{
    cor_ruleset *rs = load(shared_rules, prefilter);
    /* one code per distinct text: the message pattern, ^fw$, the two unless, "port 22$" */
    assert_int_equal(rs->n_codes, 5);
    cor_matcher *m = cor_matcher_new(rs, NULL);
    psb_event *ev = psb_event_new();

    seen s = run(m, ev, "fw", "denied 10.1.2.3 port 22");
    assert_int_equal(s.n, 3); /* A, C, E; B's unless holds */
    assert_string_equal(s.rule[0], "A");
    assert_string_equal(s.src[0], "10.1.2.3");
    assert_string_equal(s.rule[1], "C");
    assert_string_equal(s.src[1], "10.1.2.3");
    assert_string_equal(s.rule[2], "E");

    /* the next event's verdicts and captures are its own */
    s = run(m, ev, "fw", "denied 192.0.2.7 port 80");
    assert_int_equal(s.n, 2); /* A, B; C's unless holds, E needs port 22 */
    assert_string_equal(s.rule[0], "A");
    assert_string_equal(s.src[0], "192.0.2.7");
    assert_string_equal(s.rule[1], "B");
    assert_string_equal(s.src[1], "192.0.2.7");

    s = run(m, ev, "fw", "allowed 192.0.2.7 port 80");
    assert_int_equal(s.n, 0);

    /* same text on process.name: its own verdict, not message's */
    s = run(m, ev, "sshd", "denied 198.51.100.1 port 443");
    assert_int_equal(s.n, 2); /* A, C */
    assert_string_equal(s.rule[1], "C");
    assert_string_equal(s.src[1], "198.51.100.1");

    const cor_rule_stats *st = cor_matcher_stats(m);
    assert_int_equal(st[0].matches, 3);
    assert_int_equal(st[1].matches, 1);
    assert_int_equal(st[2].matches, 2);
    assert_int_equal(st[3].matches, 0);
    assert_int_equal(st[4].matches, 1);

    psb_event_free(ev);
    cor_matcher_free(m);
    cor_ruleset_free(rs);
}

static void test_shared_pattern_each_rule_fires_and_captures(void **state)
{
    (void)state;
    check_shared(true);
    check_shared(false);
}

/* A pattern that hits the match limit in two rules: each counts its own error
 * (a limit is never kept as a verdict), and neither fires. */
static void test_shared_pattern_limit_counted_per_rule(void **state)
{
    (void)state;
    const char *text = "{\"rules\": ["
                       "{\"id\": \"X\", \"where\": {\"message\": \"^(a+)+$\"}},"
                       "{\"id\": \"Y\", \"where\": {\"message\": \"^(a+)+$\"}}"
                       "]}";
    cor_ruleset *rs = load(text, false);
    assert_int_equal(rs->n_codes, 1);
    cor_match_opts mo = {200, 0, 0, false};
    cor_matcher *m = cor_matcher_new(rs, &mo);
    psb_event *ev = psb_event_new();
    seen s = run(m, ev, "app", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
    assert_int_equal(s.n, 0);
    const cor_rule_stats *st = cor_matcher_stats(m);
    assert_int_equal(st[0].limit_errors, 1);
    assert_int_equal(st[1].limit_errors, 1);
    s = run(m, ev, "app", "aaaa");
    assert_int_equal(s.n, 2);
    psb_event_free(ev);
    cor_matcher_free(m);
    cor_ruleset_free(rs);
}

/* A refused rule's pattern is freed with the set, and a later rule using the
 * same text still gets a working code. */
static void test_refused_rule_shares_code(void **state)
{
    (void)state;
    const char *text = "{\"rules\": ["
                       "{\"id\": \"R1\", \"where\": {\"message\": \"boom\"}, \"bogus\": 1},"
                       "{\"id\": \"R2\", \"where\": {\"message\": \"boom\"}}"
                       "]}";
    cor_load_opts lo = {NULL, false};
    cor_ruleset *rs = cor_ruleset_load_text("t.rules", text, strlen(text), &lo);
    assert_non_null(rs);
    assert_int_equal(rs->n_rules, 1);
    assert_int_equal(rs->n_errors, 1);
    cor_matcher *m = cor_matcher_new(rs, NULL);
    psb_event *ev = psb_event_new();
    seen s = run(m, ev, "app", "a boom here");
    assert_int_equal(s.n, 1);
    assert_string_equal(s.rule[0], "R2");
    psb_event_free(ev);
    cor_matcher_free(m);
    cor_ruleset_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_pattern_each_rule_fires_and_captures),
        cmocka_unit_test(test_shared_pattern_limit_counted_per_rule),
        cmocka_unit_test(test_refused_rule_shares_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
