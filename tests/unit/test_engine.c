/* Correlation semantics of design.md, one test per point: what an analyst sees
 * in the incidents of a replay. Events are RFC 5424 lines so each has an exact
 * @timestamp; T0 is 2026-11-23T10:00:00Z and offsets are in milliseconds. */
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

#define T0 1795428000000LL /* 2026-11-23T10:00:00Z */
#define S 1000LL

typedef struct fixture {
    cor_ruleset *rs;
    cor_engine *e;
    psb_event *ev;
    cor_buf out;
} fixture;

static void start_opts(fixture *f, const char *rules, const cor_engine_opts *eo, bool prefilter)
{
    memset(f, 0, sizeof(*f));
    cor_load_opts lo = {stderr, !prefilter};
    f->rs = cor_ruleset_load_text("test.rules", rules, strlen(rules), &lo);
    assert_non_null(f->rs);
    assert_int_equal(f->rs->n_errors, 0);
    f->e = cor_engine_new(f->rs, eo);
    f->ev = psb_event_new();
}

static void start(fixture *f, const char *rules)
{
    start_opts(f, rules, NULL, true);
}

static void stop(fixture *f)
{
    psb_event_free(f->ev);
    cor_engine_free(f->e);
    cor_ruleset_free(f->rs);
    cor_buf_free(&f->out);
}

/* One syslog line from host/app at T0 + ms. */
static void feed(fixture *f, int64_t ms, const char *host, const char *app, const char *msg)
{
    char ts[PSB_TIME_BUFSZ];
    psb_format_time_ms(T0 + ms, ts);
    char line[1024];
    int n = snprintf(line, sizeof(line), "<38>1 %s %s %s - - - %s", ts, host, app, msg);
    psb_parse_opts po;
    memset(&po, 0, sizeof(po));
    po.received_ms = T0;
    po.organization_id = PSB_STR_LIT("op-a");
    assert_int_equal(psb_parse(&po, line, (size_t)n, f->ev), 0);
    cor_engine_process(f->e, f->ev);
}

static void fail_from(fixture *f, int64_t ms, const char *src)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "Failed password for root from %s port 22 ssh2", src);
    feed(f, ms, "gw1", "sshd", msg);
}

/* Finish and return the incidents. */
static size_t finish(fixture *f, cor_incident *const **inc)
{
    cor_engine_finish(f->e);
    return cor_engine_incidents(f->e, inc);
}

static const char *render(fixture *f)
{
    cor_incident *const *inc;
    size_t n = finish(f, &inc);
    f->out.len = 0;
    cor_buf_put(&f->out, "", 0);
    for (size_t i = 0; i < n; i++) {
        cor_incident_write(inc[i], &f->out);
        cor_buf_putc(&f->out, '\n');
    }
    return f->out.p;
}

static const char *ssh_rule(const char *extra)
{
    static char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"rules\": [{\"id\": \"SSH-BF\", \"title\": \"brute force\", \"severity\": \"high\","
             " \"category\": \"intrusion-attempts/login-attempts\","
             " \"where\": {\"process.name\": \"^sshd$\","
             "   \"message\": \"^Failed password for (?:invalid user )?(?<user>\\\\S+) from "
             "(?<src>\\\\S+)\"},"
             " %s}]}",
             extra);
    return buf;
}

static void test_threshold_counts_within_window(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 3, \"within\": \"10s\", \"by\": [\"src\"]}"));
    fail_from(&f, 0, "1.2.3.4");
    fail_from(&f, 2 * S, "5.6.7.8"); /* another group */
    fail_from(&f, 4 * S, "1.2.3.4");
    fail_from(&f, 8 * S, "1.2.3.4");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->count, 3);
    assert_int_equal(inc[0]->first_seen, T0);
    assert_int_equal(inc[0]->last_seen, T0 + 8 * S);
    assert_int_equal(inc[0]->detected_at, T0 + 8 * S);
    assert_string_equal(inc[0]->group_json, "{\"src\":\"1.2.3.4\"}");
    assert_string_equal(inc[0]->org, "op-a");
    assert_int_equal(inc[0]->n_evidence, 3);
    assert_non_null(strstr(inc[0]->evidence[0], "Failed password for root from 1.2.3.4"));
    stop(&f);
}

static void test_window_edge_exactly_within_apart_does_not_count(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 2, \"within\": \"10s\", \"by\": [\"src\"]}"));
    fail_from(&f, 0, "1.2.3.4");
    fail_from(&f, 10 * S, "1.2.3.4"); /* exactly within later: the first is out */
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 0);
    stop(&f);

    start(&f, ssh_rule("\"threshold\": {\"count\": 2, \"within\": \"10s\", \"by\": [\"src\"]}"));
    fail_from(&f, 0, "1.2.3.4");
    fail_from(&f, 10 * S - 1, "1.2.3.4"); /* one millisecond inside */
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->count, 2);
    stop(&f);
}

static void test_window_is_emptied_at_the_incident(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 3, \"within\": \"60s\", \"by\": [\"src\"]}"));
    for (int i = 0; i < 7; i++)
        fail_from(&f, i * S, "1.2.3.4");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 2); /* events 1-3 and 4-6; the 7th waits */
    assert_int_equal(inc[1]->first_seen, T0 + 3 * S);
    assert_int_equal(inc[1]->last_seen, T0 + 5 * S);
    assert_string_not_equal(inc[0]->id, inc[1]->id);
    stop(&f);
}

static void test_suppress_counts_on_the_incident(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 2, \"within\": \"60s\", \"by\": [\"src\"]},"
                       " \"suppress\": \"30s\""));
    fail_from(&f, 0, "1.2.3.4");
    fail_from(&f, 1 * S, "1.2.3.4");  /* incident at 1s, suppressed until 31s */
    fail_from(&f, 2 * S, "1.2.3.4");  /* suppressed */
    fail_from(&f, 30 * S, "1.2.3.4"); /* suppressed */
    fail_from(&f, 31 * S, "1.2.3.4"); /* free again: enters a new window */
    fail_from(&f, 32 * S, "1.2.3.4"); /* second incident */
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 2);
    assert_int_equal(inc[0]->suppressed, 2);
    assert_int_equal(inc[1]->suppressed, 0);
    assert_int_equal(inc[1]->first_seen, T0 + 31 * S); /* suppressed events did not enter */
    assert_int_equal(cor_engine_stats(f.e)[0].suppressed, 2);
    stop(&f);
}

static void test_single_with_by_and_suppress(void **state)
{
    (void)state;
    fixture f;
    start(&f,
          "{\"rules\": [{\"id\": \"ROOT\", \"severity\": \"critical\", \"by\": [\"host.hostname\"],"
          " \"where\": {\"message\": \"^Accepted \\\\S+ for root\"}, \"suppress\": \"5m\"}]}");
    feed(&f, 0, "h1", "sshd", "Accepted password for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 1 * S, "h1", "sshd", "Accepted publickey for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 2 * S, "h2", "sshd", "Accepted password for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 3 * S, "h2", "sshd", "Accepted password for alice from 1.2.3.4 port 22 ssh2");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 2);
    assert_string_equal(inc[0]->group_json, "{\"host.hostname\":\"h1\"}");
    assert_int_equal(inc[0]->count, 1);
    assert_int_equal(inc[0]->first_seen, inc[0]->last_seen);
    assert_int_equal(inc[0]->suppressed, 1);
    assert_string_equal(inc[1]->group_json, "{\"host.hostname\":\"h2\"}");
    stop(&f);
}

static void test_distinct_counts_values_not_events(void **state)
{
    (void)state;
    fixture f;
    start(&f, "{\"rules\": [{\"id\": \"SCAN\", \"severity\": \"medium\","
              " \"where\": {\"message\": \"DROP SRC=(?<src>\\\\S+) .*DPT=(?<dport>\\\\d+)\"},"
              " \"threshold\": {\"count\": 3, \"within\": \"60s\", \"by\": [\"src\"],"
              "   \"distinct\": \"dport\"}}]}");
    feed(&f, 0, "fw", "kernel", "DROP SRC=9.9.9.9 DST=10.0.0.1 DPT=22");
    feed(&f, 1 * S, "fw", "kernel", "DROP SRC=9.9.9.9 DST=10.0.0.1 DPT=22");
    feed(&f, 2 * S, "fw", "kernel", "DROP SRC=9.9.9.9 DST=10.0.0.1 DPT=22");
    feed(&f, 3 * S, "fw", "kernel", "DROP SRC=9.9.9.9 DST=10.0.0.1 DPT=23");
    cor_incident *const *inc;
    cor_engine_finish(f.e);
    assert_int_equal(cor_engine_incidents(f.e, &inc), 0); /* two distinct ports so far */
    feed(&f, 4 * S, "fw", "kernel", "DROP SRC=9.9.9.9 DST=10.0.0.1 DPT=80");
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->count, 5); /* events in the window */
    assert_int_equal(inc[0]->first_seen, T0);
    stop(&f);
}

static void test_distinct_value_leaving_the_window(void **state)
{
    (void)state;
    fixture f;
    start(&f, "{\"rules\": [{\"id\": \"SCAN\", \"where\": {\"message\": \"DPT=(?<dport>\\\\d+)\"},"
              " \"threshold\": {\"count\": 3, \"within\": \"10s\", \"distinct\": \"dport\"}}]}");
    feed(&f, 0, "fw", "kernel", "DPT=1");
    feed(&f, 5 * S, "fw", "kernel", "DPT=2");
    feed(&f, 10 * S, "fw", "kernel", "DPT=3"); /* DPT=1 has left: 2 distinct */
    cor_incident *const *inc;
    cor_engine_finish(f.e);
    assert_int_equal(cor_engine_incidents(f.e, &inc), 0);
    feed(&f, 11 * S, "fw", "kernel", "DPT=1");
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->first_seen, T0 + 5 * S);
    stop(&f);
}

static const char seq_rule[] =
    "{\"rules\": [{\"id\": \"SSH-SEQ\", \"severity\": \"critical\", \"within\": \"10m\","
    " \"by\": [\"src\"], \"where\": {\"process.name\": \"^sshd$\"},"
    " \"sequence\": ["
    "   {\"where\": {\"message\": \"^Failed password for \\\\S+ from (?<src>\\\\S+)\"}},"
    "   {\"where\": {\"message\": \"^Accepted password for \\\\S+ from (?<src>\\\\S+)\"}}]}]}";

static void test_sequence_in_order_within(void **state)
{
    (void)state;
    fixture f;
    start(&f, seq_rule);
    feed(&f, 0, "gw1", "sshd", "Failed password for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 60 * S, "gw1", "sshd", "Failed password for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 120 * S, "gw1", "sshd", "Accepted password for root from 5.5.5.5 port 22 ssh2");
    feed(&f, 180 * S, "gw1", "sshd", "Accepted password for root from 1.2.3.4 port 22 ssh2");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_string_equal(inc[0]->group_json, "{\"src\":\"1.2.3.4\"}");
    /* the latest failure starts the sequence that completes */
    assert_int_equal(inc[0]->first_seen, T0 + 60 * S);
    assert_int_equal(inc[0]->last_seen, T0 + 180 * S);
    assert_int_equal(inc[0]->count, 2);
    assert_int_equal(inc[0]->n_evidence, 2);
    stop(&f);
}

static void test_sequence_wrong_order_or_expired(void **state)
{
    (void)state;
    fixture f;
    start(&f, seq_rule);
    feed(&f, 0, "gw1", "sshd", "Accepted password for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 1 * S, "gw1", "sshd", "Failed password for root from 1.2.3.4 port 22 ssh2");
    /* expired: success exactly 10 minutes after the failure */
    feed(&f, 601 * S, "gw1", "sshd", "Accepted password for root from 1.2.3.4 port 22 ssh2");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 0);
    stop(&f);
}

static const char absence_rule[] =
    "{\"rules\": [{\"id\": \"SILENT\", \"severity\": \"medium\","
    " \"category\": \"other/undetermined\", \"where\": {\"host.hostname\": \".\"},"
    " \"absence\": {\"within\": \"15m\", \"by\": [\"host.hostname\"]}}]}";

static void test_absence_fires_when_time_passes(void **state)
{
    (void)state;
    fixture f;
    start(&f, absence_rule);
    feed(&f, 0, "fw1", "app", "hello");
    feed(&f, 0, "fw2", "app", "hello");
    feed(&f, 10 * 60 * S, "fw1", "app", "still here");
    feed(&f, 15 * 60 * S - 1, "fw1", "app", "fw2 not yet silent for 15m");
    cor_incident *const *inc;
    cor_engine_finish(f.e);
    assert_int_equal(cor_engine_incidents(f.e, &inc), 0);
    feed(&f, 15 * 60 * S, "fw1", "app", "now fw2 is");
    assert_int_equal(finish(&f, &inc), 1);
    assert_string_equal(inc[0]->group_json, "{\"host.hostname\":\"fw2\"}");
    assert_int_equal(inc[0]->last_seen, T0);
    assert_int_equal(inc[0]->detected_at, T0 + 15 * 60 * S);
    stop(&f);
}

static void test_absence_not_fired_past_the_end_of_input(void **state)
{
    (void)state;
    fixture f;
    start(&f, absence_rule);
    feed(&f, 0, "fw1", "app", "hello");
    feed(&f, 14 * 60 * S, "fw2", "app", "hello");
    /* the input ends before fw1 has been silent 15 minutes by its own clock */
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 0);
    stop(&f);
}

static void test_absence_fires_once_then_again_after_return(void **state)
{
    (void)state;
    fixture f;
    start(&f, absence_rule);
    feed(&f, 0, "fw1", "app", "a");
    feed(&f, 0, "fw2", "app", "a");
    feed(&f, 10 * 60 * S, "fw2", "app", "a2");
    feed(&f, 20 * 60 * S, "fw2", "app", "b");    /* shows fw1 silent since 0 */
    feed(&f, 40 * 60 * S, "fw2", "app", "c");    /* fw1 still silent: no repeat; fw2 fires */
    feed(&f, 41 * 60 * S, "fw1", "app", "back"); /* fw1 is watched again */
    feed(&f, 60 * 60 * S, "fw2", "app", "d");    /* fw2 (since 40m) and fw1 (since 41m) fire */
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 4);
    assert_int_equal(inc[0]->detected_at, T0 + 20 * 60 * S);
    assert_string_equal(inc[0]->group_json, "{\"host.hostname\":\"fw1\"}");
    assert_int_equal(inc[0]->last_seen, T0);
    assert_int_equal(inc[1]->detected_at, T0 + 40 * 60 * S);
    assert_int_equal(inc[1]->last_seen, T0 + 20 * 60 * S);
    assert_int_equal(inc[2]->detected_at, T0 + 60 * 60 * S);
    assert_string_equal(inc[2]->group_json, "{\"host.hostname\":\"fw2\"}");
    assert_int_equal(inc[3]->detected_at, T0 + 60 * 60 * S);
    assert_string_equal(inc[3]->group_json, "{\"host.hostname\":\"fw1\"}");
    assert_int_equal(inc[3]->first_seen, T0 + 41 * 60 * S);
    stop(&f);
}

static void test_late_events(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 3, \"within\": \"60s\", \"by\": [\"src\"]}"));
    fail_from(&f, 100 * S, "1.2.3.4");
    fail_from(&f, 30 * S, "1.2.3.4"); /* late by 70s > within: dropped, counted */
    fail_from(&f, 90 * S, "1.2.3.4"); /* late by 10s: placed at its time */
    cor_incident *const *inc;
    cor_engine_finish(f.e);
    assert_int_equal(cor_engine_incidents(f.e, &inc), 0);
    assert_int_equal(cor_engine_stats(f.e)[0].late, 1);
    fail_from(&f, 101 * S, "1.2.3.4");
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->first_seen, T0 + 90 * S); /* the late one is the oldest */
    assert_int_equal(inc[0]->last_seen, T0 + 101 * S);
    stop(&f);
}

static void test_unless_allowlist(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"unless\": {\"src\": \"^10\\\\.\", \"host.hostname\": \"^lab\"}"));
    fail_from(&f, 0, "10.1.2.3"); /* capture allowlisted */
    feed(&f, 1 * S, "lab1", "sshd",
         "Failed password for root from 1.2.3.4 port 22"); /* event field */
    fail_from(&f, 2 * S, "1.2.3.4");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_non_null(strstr(inc[0]->evidence[0], "from 1.2.3.4"));
    assert_string_equal(inc[0]->group_json, "{}");
    stop(&f);
}

static void test_redos_pattern_stopped_by_limit(void **state)
{
    (void)state;
    fixture f;
    cor_engine_opts eo;
    memset(&eo, 0, sizeof(eo));
    eo.match.match_limit = 10000;
    start_opts(&f,
               "{\"rules\": ["
               " {\"id\": \"REDOS\", \"where\": {\"message\": \"^(a+)+$\"}},"
               " {\"id\": \"OK\", \"where\": {\"message\": \"^a{10}\"}}]}",
               &eo, false); /* Hyperscan alone would already rule this subject out */
    char msg[80];
    memset(msg, 'a', 40);
    strcpy(msg + 40, "!");
    feed(&f, 0, "h", "app", msg);
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_string_equal(inc[0]->rule->id, "OK"); /* the event went on to the other rule */
    assert_true(cor_engine_stats(f.e)[0].limit_errors >= 1);
    stop(&f);
}

static const char mixed_rules[] =
    "{\"rules\": ["
    " {\"id\": \"A\", \"where\": {\"message\": \"Failed password for (?<user>\\\\S+) from "
    "(?<src>\\\\S+)\"},"
    "  \"threshold\": {\"count\": 2, \"within\": \"30s\", \"by\": [\"src\"]}, \"suppress\": "
    "\"10s\"},"
    " {\"id\": \"B\", \"where\": {\"message\": \"(?i)accepted\"}},"
    " {\"id\": \"C\", \"where\": {\"host.hostname\": \"^gw\"}, \"absence\": {\"within\": \"1m\","
    "   \"by\": [\"host.hostname\"]}},"
    " {\"id\": \"D\", \"within\": \"1m\", \"by\": [\"src\"], \"sequence\": ["
    "   {\"where\": {\"message\": \"Failed password for \\\\S+ from (?<src>\\\\S+)\"}},"
    "   {\"where\": {\"message\": \"Accepted \\\\S+ for \\\\S+ from (?<src>\\\\S+)\"}}]},"
    " {\"id\": \"E\", \"where\": {\"message\": \"(\\\\d+)\\\\1\"}}"
    "]}";

static void run_mixed(fixture *f, bool prefilter)
{
    start_opts(f, mixed_rules, NULL, prefilter);
    static const char *const hosts[] = {"gw1", "gw2", "srv"};
    for (int i = 0; i < 400; i++) {
        char msg[128];
        const char *what = i % 7 == 0 ? "Accepted password" : "Failed password";
        snprintf(msg, sizeof(msg), "%s for u%d from 10.0.0.%d port %d ssh2", what, i % 3, i % 5,
                 1000 + i % 11);
        feed(f, (int64_t)i * 2500, i % 50 < 30 ? hosts[i % 3] : "srv", "sshd", msg);
    }
}

static void test_replay_twice_is_byte_identical_and_prefilter_agrees(void **state)
{
    (void)state;
    fixture a, b, c;
    run_mixed(&a, true);
    run_mixed(&b, true);
    run_mixed(&c, false);
    const char *x = render(&a);
    assert_true(strlen(x) > 1000);
    assert_string_equal(x, render(&b));
    assert_string_equal(x, render(&c));
    for (const char *p = x; (p = strstr(p, "\"rule\":{\"id\":\"")); p++)
        ; /* every kind raised something: */
    assert_non_null(strstr(x, "\"id\":\"A\""));
    assert_non_null(strstr(x, "\"id\":\"B\""));
    assert_non_null(strstr(x, "\"id\":\"C\""));
    assert_non_null(strstr(x, "\"id\":\"D\""));
    assert_non_null(strstr(x, "\"id\":\"E\""));
    /* ordered by detected_at */
    cor_incident *const *inc;
    size_t n = cor_engine_incidents(a.e, &inc);
    for (size_t i = 1; i < n; i++)
        assert_true(inc[i - 1]->detected_at <= inc[i]->detected_at);
    stop(&a);
    stop(&b);
    stop(&c);
}

/* Patterns the required-literal walk must read right (or give up on): optional
 * characters, quantified groups and classes, escapes, alternation, case. A
 * wrong literal would make the prefilter drop a real match. */
static void test_prefilter_never_loses_a_match(void **state)
{
    (void)state;
    static const char *const pats[] = {"colou?r",
                                       "ab{0,2}cde",
                                       "ab{2}cde",
                                       "(?:invalid user )?root from",
                                       "x[abc]+yz0",
                                       "foo|barbaz",
                                       "(?i)ACCEPTED pass",
                                       "DPT=22\\\\b",
                                       "a\\\\.b\\\\.c",
                                       "\\\\d+ms later",
                                       "^Failed (?<m>password|publickey) for",
                                       "error\\\\x3a boom",
                                       "(?i:MiXeD) case",
                                       "tab\\\\there",
                                       "a.*bcd.*efg",
                                       "\\\\Qa.b\\\\E",
                                       "(?=look)lookahead",
                                       "qu+ick",
                                       "zz*top",
                                       "(ab)+c{1,}dd",
                                       "[[]x]yz",
                                       "end$",
                                       "a\\\\/b\\\\/c",
                                       "\\\\101BC",
                                       "(?|user (?<u>\\\\w+) failed|(?<u>\\\\w+) was denied)",
                                       "(?'q'fo+)bar[(?|]"};
    char rules[8192];
    size_t n = (size_t)snprintf(rules, sizeof(rules), "{\"rules\": [");
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
        n += (size_t)snprintf(rules + n, sizeof(rules) - n,
                              "%s{\"id\": \"P%zu\", \"where\": {\"message\": \"%s\"}}",
                              i ? "," : "", i, pats[i]);
    snprintf(rules + n, sizeof(rules) - n, "]}");
    static const char *const msgs[] = {"the color red",
                                       "the colour red",
                                       "acde",
                                       "abbcde",
                                       "abcde",
                                       "root from 1.2.3.4",
                                       "invalid user root from x",
                                       "xaaayz0",
                                       "xyz0",
                                       "foo",
                                       "barbaz",
                                       "bar",
                                       "accepted PASS",
                                       "DPT=22 ",
                                       "DPT=2222",
                                       "a.b.c",
                                       "axbxc",
                                       "12ms later",
                                       "ms later",
                                       "Failed password for x",
                                       "Failed publickey for y",
                                       "error: boom",
                                       "mixed case",
                                       "MIXED case",
                                       "tab\there",
                                       "a bcd efg",
                                       "a.b",
                                       "lookahead",
                                       "quuuick",
                                       "ztop",
                                       "zzzztop",
                                       "ababcccdd",
                                       "[yz",
                                       "]yz",
                                       "xyz",
                                       "the end",
                                       "a/b/c",
                                       "ABC",
                                       "user bob failed",
                                       "alice was denied",
                                       "foobar|",
                                       "fbar"};
    fixture a, b;
    start_opts(&a, rules, NULL, true);
    start_opts(&b, rules, NULL, false);
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        feed(&a, (int64_t)i, "h", "app", msgs[i]);
        feed(&b, (int64_t)i, "h", "app", msgs[i]);
    }
    const char *x = render(&a);
    assert_string_equal(x, render(&b));
    cor_incident *const *inc;
    assert_true(cor_engine_incidents(a.e, &inc) >= 30);
    stop(&a);
    stop(&b);
}

static void test_group_cap_evicts_oldest(void **state)
{
    (void)state;
    fixture f;
    cor_engine_opts eo;
    memset(&eo, 0, sizeof(eo));
    eo.max_groups = 2;
    start_opts(&f,
               ssh_rule("\"threshold\": {\"count\": 2, \"within\": \"60s\", \"by\": [\"src\"]}"),
               &eo, true);
    fail_from(&f, 0, "1.1.1.1");
    fail_from(&f, 1 * S, "2.2.2.2");
    fail_from(&f, 2 * S, "3.3.3.3"); /* 1.1.1.1 evicted */
    fail_from(&f, 3 * S, "1.1.1.1"); /* starts again: no incident; evicts 2.2.2.2 */
    fail_from(&f, 4 * S, "3.3.3.3"); /* incident */
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_string_equal(inc[0]->group_json, "{\"src\":\"3.3.3.3\"}");
    assert_int_equal(cor_engine_stats(f.e)[0].evicted, 2);
    assert_true(cor_engine_groups(f.e) <= 2);
    stop(&f);
}

static void test_expired_groups_are_freed(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 100, \"within\": \"10s\", \"by\": [\"src\"]}"));
    char src[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(src, sizeof(src), "10.%d.%d.1", i / 256, i % 256);
        fail_from(&f, (int64_t)i * S, src);
    }
    /* only groups with an event in the last 10 s (plus one sweep period) remain */
    assert_true(cor_engine_groups(f.e) < 1100);
    stop(&f);
}

static void test_incident_id_is_stable(void **state)
{
    (void)state;
    fixture a, b;
    start(&a, ssh_rule("\"threshold\": {\"count\": 2, \"within\": \"60s\", \"by\": [\"src\"]}"));
    start(&b, ssh_rule("\"threshold\": {\"count\": 2, \"within\": \"60s\", \"by\": [\"src\"]}"));
    fail_from(&a, 0, "1.2.3.4");
    fail_from(&a, 1 * S, "1.2.3.4");
    fail_from(&b, 0, "1.2.3.4");
    fail_from(&b, 5 * S, "1.2.3.4"); /* same rule, group and first_seen */
    fail_from(&b, 100 * S, "1.2.3.5");
    fail_from(&b, 101 * S, "1.2.3.5");
    cor_incident *const *x, *const *y;
    assert_int_equal(finish(&a, &x), 1);
    assert_int_equal(finish(&b, &y), 2);
    assert_string_equal(x[0]->id, y[0]->id);
    assert_string_not_equal(y[0]->id, y[1]->id);
    assert_int_equal(strlen(x[0]->id), 32);
    stop(&a);
    stop(&b);
}

static void test_incident_record_shape(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 1, \"within\": \"60s\", \"by\": [\"src\", "
                       "\"user\"]}"));
    fail_from(&f, 0, "1.2.3.4");
    const char *out = render(&f);
    const char *want_tail =
        "\"rule\":{\"id\":\"SSH-BF\",\"title\":\"brute force\"},\"severity\":\"high\","
        "\"category\":\"intrusion-attempts/login-attempts\",\"organization\":{\"id\":\"op-a\"},"
        "\"group\":{\"src\":\"1.2.3.4\",\"user\":\"root\"},"
        "\"first_seen\":\"2026-11-23T10:00:00.000Z\",\"last_seen\":\"2026-11-23T10:00:00.000Z\","
        "\"detected_at\":\"2026-11-23T10:00:00.000Z\",\"count\":1,\"suppressed\":0,"
        "\"evidence\":[\"<38>1 2026-11-23T10:00:00.000Z gw1 sshd - - - Failed password for root "
        "from 1.2.3.4 port 22 ssh2\"],\"status\":\"new\"}\n";
    assert_non_null(strstr(out, want_tail));
    assert_true(strncmp(out, "{\"id\":\"", 7) == 0);
    stop(&f);
}

static void test_live_take_and_forget(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 2, \"within\": \"60s\", \"by\": [\"src\"]},"
                       " \"suppress\": \"30s\""));
    cor_incident *const *inc;
    fail_from(&f, 0, "1.2.3.4");
    assert_int_equal(cor_engine_take(f.e, &inc), 0);
    fail_from(&f, 1 * S, "1.2.3.4");
    assert_int_equal(cor_engine_take(f.e, &inc), 1); /* raised once ... */
    assert_string_equal(inc[0]->rule->id, "SSH-BF");
    assert_true(inc[0]->detected_at > T0 + 1 * S);   /* live: the wall clock */
    assert_int_equal(cor_engine_take(f.e, &inc), 0); /* ... and handed out once */
    cor_engine_forget(f.e);                          /* still within its suppress time: kept */
    fail_from(&f, 2 * S, "1.2.3.4");
    fail_from(&f, 40 * S, "9.9.9.9"); /* the watermark passes 31 s */
    cor_engine_forget(f.e);
    fail_from(&f, 41 * S, "1.2.3.4");
    fail_from(&f, 42 * S, "1.2.3.4");
    assert_int_equal(cor_engine_take(f.e, &inc), 1);
    assert_int_equal(cor_engine_stats(f.e)[0].suppressed, 1);
    assert_int_equal(cor_engine_stats(f.e)[0].incidents, 2);
    stop(&f);
}

/* A distinct window that slides for minutes: entries leave at the front, a late one
 * lands in the middle, the window's storage is compacted and grown many times over
 * (its events' lines have different lengths); the incident still counts what the
 * window holds and shows the oldest 5 of them, the late one in its time's place. */
static void test_sliding_distinct_window_keeps_the_oldest_as_evidence(void **state)
{
    (void)state;
    fixture f;
    start(&f, "{\"rules\": [{\"id\": \"SCAN\", \"where\": {\"message\": \"DPT=(?<dport>\\\\d+)\"},"
              " \"threshold\": {\"count\": 4, \"within\": \"10s\", \"distinct\": \"dport\"}}]}");
    char msg[256];
    for (int k = 0; k < 200; k++) {
        snprintf(msg, sizeof(msg), "DPT=%d seq %d %.*s", 1 + k % 2, k, (k % 7) * 10,
                 "..................................................................");
        feed(&f, k * S, "fw", "kernel", msg);
    }
    feed(&f, 195 * S + 500, "fw", "kernel", "DPT=1 late"); /* between seq 195 and 196 */
    cor_incident *const *inc;
    cor_engine_finish(f.e);
    assert_int_equal(cor_engine_incidents(f.e, &inc), 0); /* two distinct ports all along */
    feed(&f, 200 * S, "fw", "kernel", "DPT=3 seq 200");
    feed(&f, 201 * S, "fw", "kernel", "DPT=4 seq 201");
    assert_int_equal(finish(&f, &inc), 1);
    /* the window: seq 192..199, the late one, 200 and 201 */
    assert_int_equal(inc[0]->count, 11);
    assert_int_equal(inc[0]->first_seen, T0 + 192 * S);
    assert_int_equal(inc[0]->last_seen, T0 + 201 * S);
    assert_int_equal(inc[0]->n_evidence, 5);
    const char *want[5] = {"DPT=1 seq 192 ", "DPT=2 seq 193 ", "DPT=1 seq 194 ", "DPT=2 seq 195 ",
                           "DPT=1 late"};
    for (int i = 0; i < 5; i++)
        assert_non_null(strstr(inc[0]->evidence[i], want[i]));
    stop(&f);
}

/* Groups move in memory as their windows grow (one block each, realloc): what points
 * at a group -- the hash chain, the touch list, its incident -- must follow it. Many
 * groups, long lines (so an emptied window gives its room back and grows again),
 * incidents taken and forgotten as the daemon does, suppression counted on the right
 * incident. Under ASan a stale pointer is a use after free. */
static void test_groups_that_move_keep_their_links(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 3, \"within\": \"10s\", \"by\": [\"src\"]},"
                       " \"suppress\": \"5s\""));
    char msg[800];
    cor_incident *const *inc;
    size_t taken = 0;
    for (int round = 0; round < 4; round++) {
        for (int k = 0; k < 3; k++) {
            for (int g = 0; g < 200; g++) {
                snprintf(msg, sizeof(msg), "Failed password for root from 10.0.%d.%d port 22 %0600d",
                         g / 100, g % 100, k);
                feed(&f, round * 20 * S + k * S + g, "gw1", "sshd", msg);
            }
            /* after k = 0 the groups have moved while their last incident points at them */
            taken += cor_engine_take(f.e, &inc);
            cor_engine_forget(f.e);
        }
        /* within the suppress time: counted on the incident just raised */
        fail_from(&f, round * 20 * S + 3 * S, "10.0.0.7");
    }
    assert_int_equal(taken, 4 * 200);
    assert_int_equal(cor_engine_stats(f.e)[0].incidents, 4 * 200);
    assert_int_equal(cor_engine_stats(f.e)[0].suppressed, 4);
    assert_int_equal(cor_engine_groups(f.e), 200);
    stop(&f);
}

/* Freed groups' blocks are kept by size and handed to new groups: rounds of new
 * groups, each round's swept before the next, lines of many lengths (windows from a
 * few bytes to past the largest kept size, 4 events of up to 860 bytes), an incident
 * emptying each window. Every incident shows its own group's events, never bytes a
 * freed group left behind; under ASan a kept block is poisoned, so a stale pointer
 * into one is a use after free. */
static void test_reused_group_blocks_hold_only_their_own_events(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 4, \"within\": \"10s\", \"by\": [\"src\"]}"));
    char msg[1000];
    size_t seen = 0;
    for (int r = 0; r < 6; r++) {
        for (int k = 0; k < 4; k++)
            for (int g = 0; g < 300; g++) {
                int pad = ((g + r) % 7) * 130;
                snprintf(msg, sizeof(msg), "Failed password for root from 10.%d.%d.%d port 22 r=%d g=%d k=%d %0*d",
                         r, g / 100, g % 100, r, g, k, pad, 0);
                feed(&f, r * 60 * S + k * S + g, "gw1", "sshd", msg);
            }
        cor_incident *const *inc;
        size_t n = cor_engine_take(f.e, &inc);
        assert_int_equal(n, 300);
        for (size_t i = 0; i < n; i++) {
            unsigned a, b, c;
            assert_int_equal(sscanf(inc[i]->group_json, "{\"src\":\"10.%u.%u.%u\"}", &a, &b, &c), 3);
            assert_int_equal(a, (unsigned)r);
            int g = (int)(b * 100 + c);
            assert_int_equal(inc[i]->n_evidence, 4);
            for (int k = 0; k < 4; k++) {
                char want[64];
                snprintf(want, sizeof(want), " r=%d g=%d k=%d ", r, g, k);
                assert_non_null(strstr(inc[i]->evidence[k], want));
                assert_int_equal(inc[i]->evidence_len[k], strlen(inc[i]->evidence[k]));
            }
        }
        seen += n;
        cor_engine_forget(f.e);
        /* the previous round's groups were swept: only this round's are held */
        assert_true(cor_engine_groups(f.e) <= 300);
    }
    assert_int_equal(seen, 6 * 300);
    stop(&f);
}

/* A chain restarted many times in one group, lines of different lengths, another
 * group in between: prefixes are replaced over and over (what only they held is
 * reclaimed as the chain's storage grows and is compacted); the incident shows the
 * events of the chain that completed, the most recent start. */
static void test_sequence_restarts_keep_the_right_evidence(void **state)
{
    (void)state;
    fixture f;
    start(&f, "{\"rules\": [{\"id\": \"ABC\", \"within\": \"10m\", \"by\": [\"src\"], \"sequence\": ["
              " {\"where\": {\"message\": \"^start (?<src>\\\\S+)\"}},"
              " {\"where\": {\"message\": \"^mid (?<src>\\\\S+)\"}},"
              " {\"where\": {\"message\": \"^end (?<src>\\\\S+)\"}}]}]}");
    char msg[512];
    for (int k = 0; k < 100; k++) {
        int pad = (k % 5) * 60;
        snprintf(msg, sizeof(msg), "start 1.1.1.1 n=%d %0*d", k, pad, 0);
        feed(&f, k * S, "h", "app", msg);
        snprintf(msg, sizeof(msg), "start 2.2.2.2 n=%d %0*d", k, 300 - pad, 0);
        feed(&f, k * S + 1, "h", "app", msg);
        if (k % 3 == 0) {
            snprintf(msg, sizeof(msg), "mid 1.1.1.1 n=%d %0*d", k, 300 - pad, 0);
            feed(&f, k * S + 500, "h", "app", msg);
        }
    }
    feed(&f, 100 * S, "h", "app", "end 1.1.1.1");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_string_equal(inc[0]->group_json, "{\"src\":\"1.1.1.1\"}");
    assert_int_equal(inc[0]->first_seen, T0 + 99 * S);
    assert_int_equal(inc[0]->n_evidence, 3);
    assert_non_null(strstr(inc[0]->evidence[0], "start 1.1.1.1 n=99 "));
    assert_non_null(strstr(inc[0]->evidence[1], "mid 1.1.1.1 n=99 "));
    assert_non_null(strstr(inc[0]->evidence[2], "end 1.1.1.1"));
    stop(&f);
}

/* Absence groups whose last event grows longer (their block moves while out of the
 * time-ordered list): each fires once with its own last line as evidence. */
static void test_absence_longer_last_events(void **state)
{
    (void)state;
    fixture f;
    start(&f, absence_rule);
    char host[32], msg[512];
    for (int h = 0; h < 50; h++) {
        snprintf(host, sizeof(host), "fw%d", h);
        feed(&f, h, host, "app", "short");
    }
    for (int h = 0; h < 50; h++) {
        snprintf(host, sizeof(host), "fw%d", h);
        snprintf(msg, sizeof(msg), "long line of %s %0300d", host, 0);
        feed(&f, S + h, host, "app", msg);
    }
    feed(&f, 20 * 60 * S, "fw-other", "app", "time passes");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 50);
    for (int h = 0; h < 50; h++) {
        snprintf(msg, sizeof(msg), "long line of fw%d 000", h);
        assert_int_equal(inc[h]->n_evidence, 1);
        assert_non_null(strstr(inc[h]->evidence[0], msg));
        assert_int_equal(inc[h]->last_seen, T0 + S + h);
    }
    stop(&f);
}

/* A late event lands in the middle of the window; its value is already there. */
static void test_distinct_late_event_counts_its_value_once(void **state)
{
    (void)state;
    fixture f;
    start(&f, "{\"rules\": [{\"id\": \"SCAN\", \"where\": {\"message\": \"DPT=(?<dport>\\\\d+)\"},"
              " \"threshold\": {\"count\": 3, \"within\": \"10s\", \"distinct\": \"dport\"}}]}");
    feed(&f, 5 * S, "fw", "kernel", "DPT=1");
    feed(&f, 4 * S, "fw", "kernel", "DPT=1"); /* late, same port */
    feed(&f, 6 * S, "fw", "kernel", "DPT=2"); /* two distinct ports, not three */
    cor_incident *const *inc;
    cor_engine_finish(f.e);
    assert_int_equal(cor_engine_incidents(f.e, &inc), 0);
    feed(&f, 7 * S, "fw", "kernel", "DPT=3");
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->count, 4);
    assert_int_equal(inc[0]->first_seen, T0 + 4 * S);
    stop(&f);
}

/* After an incident empties the window, late events (within `within`) fill it again:
 * that incident is detected at its own newest event, not at the group's newest. */
static void test_threshold_late_refill_detected_at_newest_in_window(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 2, \"within\": \"60s\", \"by\": [\"src\"]}"));
    fail_from(&f, 100 * S, "1.2.3.4");
    fail_from(&f, 100 * S, "1.2.3.4");
    fail_from(&f, 95 * S, "1.2.3.4");
    fail_from(&f, 96 * S, "1.2.3.4");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 2);
    /* event-time order: the late pair's incident first */
    assert_int_equal(inc[0]->first_seen, T0 + 95 * S);
    assert_int_equal(inc[0]->last_seen, T0 + 96 * S);
    assert_int_equal(inc[0]->detected_at, T0 + 96 * S);
    assert_int_equal(inc[1]->detected_at, T0 + 100 * S);
    stop(&f);
}

/* A late event of a watched group moves its first_seen back; of two events at the
 * group's last time, the evidence is the one that came last. */
static void test_absence_late_event_and_tie(void **state)
{
    (void)state;
    fixture f;
    start(&f, absence_rule);
    feed(&f, 10 * S, "fw1", "app", "first at 10s");
    feed(&f, 5 * S, "fw1", "app", "late at 5s");
    feed(&f, 10 * S, "fw1", "app", "second at 10s");
    feed(&f, 10 * S + 15 * 60 * S, "fw2", "app", "shows fw1 silent");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->first_seen, T0 + 5 * S);
    assert_int_equal(inc[0]->last_seen, T0 + 10 * S);
    assert_int_equal(inc[0]->count, 3);
    assert_int_equal(inc[0]->n_evidence, 1);
    assert_non_null(strstr(inc[0]->evidence[0], "second at 10s"));
    stop(&f);
}

static const char seq_used_up_rules[] =
    "{\"rules\": ["
    " {\"id\": \"SEQ-S\", \"within\": \"10m\", \"by\": [\"src\"], \"suppress\": \"5m\","
    "  \"sequence\": [{\"where\": {\"message\": \"from (?<src>\\\\S+)\"}},"
    "   {\"where\": {\"message\": \"^Accepted password for \\\\S+ from (?<src>\\\\S+)\"}}]},"
    " {\"id\": \"SEQ-N\", \"within\": \"10m\", \"by\": [\"src\"],"
    "  \"sequence\": [{\"where\": {\"message\": \"from (?<src>\\\\S+)\"}},"
    "   {\"where\": {\"message\": \"^Accepted password for \\\\S+ from (?<src>\\\\S+)\"}}]}]}";

/* An event that completes a chain and also matches the first step is used up by the
 * incident: it is not suppressed by its own incident, and starts no new chain. */
static void test_sequence_completing_event_is_used_up(void **state)
{
    (void)state;
    fixture f;
    start(&f, seq_used_up_rules);
    feed(&f, 0, "gw1", "sshd", "Failed password for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 10 * S, "gw1", "sshd", "Accepted password for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 20 * S, "gw1", "sshd", "Accepted password for root from 1.2.3.4 port 22 ssh2");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 2); /* one per rule */
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(inc[i]->first_seen, T0);
        assert_int_equal(inc[i]->last_seen, T0 + 10 * S);
        /* SEQ-S: only the 20s event is suppressed; SEQ-N: no second chain from 10s */
        assert_int_equal(inc[i]->suppressed, strcmp(inc[i]->rule->id, "SEQ-S") == 0 ? 1 : 0);
    }
    stop(&f);
}

/* Steps are taken in arrival order; a late last step does not make last_seen older than
 * first_seen, and detected_at is the newest step, as for a threshold. */
static void test_sequence_late_step_times(void **state)
{
    (void)state;
    fixture f;
    start(&f, seq_rule);
    feed(&f, 60 * S, "gw1", "sshd", "Failed password for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 30 * S, "gw1", "sshd", "Accepted password for root from 1.2.3.4 port 22 ssh2");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->first_seen, T0 + 60 * S);
    assert_int_equal(inc[0]->last_seen, T0 + 60 * S);
    assert_int_equal(inc[0]->detected_at, T0 + 60 * S);
    stop(&f);
}

/* "For each prefix length the most recent start is kept": a late first step does not
 * replace a more recent one, which is the start that still fits in `within`. */
static void test_sequence_late_first_step_keeps_recent_start(void **state)
{
    (void)state;
    fixture f;
    start(&f, seq_rule);
    feed(&f, 100 * S, "gw1", "sshd", "Failed password for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 50 * S, "gw1", "sshd", "Failed password for root from 1.2.3.4 port 22 ssh2");
    feed(&f, 655 * S, "gw1", "sshd", "Accepted password for root from 1.2.3.4 port 22 ssh2");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->first_seen, T0 + 100 * S);
    stop(&f);
}

/* A step too late for the chain does not throw the chain away: a late step that
 * arrives next and fits in `within` completes it (the group is still live: its
 * newest event is less than `within` behind the watermark). */
static void test_sequence_chain_too_old_for_one_event_kept_for_a_late_one(void **state)
{
    (void)state;
    fixture f;
    start(&f, "{\"rules\": [{\"id\": \"SEQ3\", \"within\": \"10m\", \"by\": [\"src\"],"
              " \"sequence\": [{\"where\": {\"message\": \"^a (?<src>\\\\S+)\"}},"
              " {\"where\": {\"message\": \"^b (?<src>\\\\S+)\"}},"
              " {\"where\": {\"message\": \"^c (?<src>\\\\S+)\"}}]}]}");
    feed(&f, 0, "gw1", "app", "a 1.2.3.4");
    feed(&f, 100 * S, "gw1", "app", "b 1.2.3.4");
    feed(&f, 650 * S, "gw1", "app", "c 1.2.3.4"); /* 650 s after the start: too late */
    feed(&f, 500 * S, "gw1", "app", "c 1.2.3.4"); /* late, and fits */
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->first_seen, T0);
    assert_int_equal(inc[0]->last_seen, T0 + 500 * S);
    stop(&f);
}

/* A new group whose first event is already silent as of the watermark is refused; the
 * groups already watched still fire. */
static void test_absence_late_new_group_keeps_the_others(void **state)
{
    (void)state;
    fixture f;
    start(&f, absence_rule);
    feed(&f, 20 * 60 * S, "fw1", "app", "a");
    feed(&f, 21 * 60 * S, "fw2", "app", "a");
    feed(&f, 1 * 60 * S, "fw3", "app", "late by 20 minutes");
    feed(&f, 40 * 60 * S, "fw4", "app", "shows fw1 and fw2 silent");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 2);
    assert_string_equal(inc[0]->group_json, "{\"host.hostname\":\"fw1\"}");
    assert_string_equal(inc[1]->group_json, "{\"host.hostname\":\"fw2\"}");
    assert_int_equal(cor_engine_stats(f.e)[0].late, 1);
    stop(&f);
}

/* README: absence ignores an event already silent as of the watermark, also when its
 * group is being watched. */
static void test_absence_ignores_late_event_of_a_watched_group(void **state)
{
    (void)state;
    fixture f;
    start(&f, absence_rule);
    feed(&f, 10 * 60 * S, "fw1", "app", "a");
    feed(&f, 20 * 60 * S, "fw2", "app", "a");
    feed(&f, 4 * 60 * S, "fw1", "app", "late: silent as of 20m");
    feed(&f, 25 * 60 * S, "fw2", "app", "shows fw1 silent");
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->first_seen, T0 + 10 * 60 * S);
    assert_int_equal(inc[0]->count, 1);
    stop(&f);
}

/* Two incidents with the same rule, group and first_seen (two root logins from one
 * address in one second, a single rule): the daemon's consumers take a known id for
 * a redelivery, so the second gets its own id; the first keeps the documented one. */
static void test_incidents_sharing_the_id_basis_get_distinct_ids(void **state)
{
    (void)state;
    fixture a, b;
    const char *rules = ssh_rule("\"by\": [\"src\"]");
    start(&a, rules);
    start(&b, rules);
    fail_from(&a, 0, "1.2.3.4");
    fail_from(&b, 0, "1.2.3.4");
    fail_from(&b, 0, "1.2.3.4");
    fail_from(&b, 0, "1.2.3.4");
    cor_incident *const *x, *const *y;
    assert_int_equal(finish(&a, &x), 1);
    assert_int_equal(finish(&b, &y), 3);
    assert_string_equal(x[0]->id, y[0]->id);
    assert_string_not_equal(y[0]->id, y[1]->id);
    assert_string_not_equal(y[0]->id, y[2]->id);
    assert_string_not_equal(y[1]->id, y[2]->id);
    stop(&a);
    stop(&b);
}

/* sweep() frees every 1024 events the groups whose window and suppression the
 * watermark has passed; a late event must meet the same state whether or not a sweep
 * ran, so such state is over for it too: no window to join, no suppression. */
static void test_state_past_the_watermark_is_over_for_late_events(void **state)
{
    (void)state;
    for (int sweep = 0; sweep < 2; sweep++) {
        fixture f;
        start(&f, "{\"rules\": ["
                  "{\"id\": \"T\", \"where\": {\"message\": \"^x (?<src>\\\\S+)\"},"
                  " \"threshold\": {\"count\": 2, \"within\": \"10s\", \"by\": [\"src\"]}},"
                  "{\"id\": \"S\", \"where\": {\"message\": \"^y (?<src>\\\\S+)\"},"
                  " \"by\": [\"src\"], \"suppress\": \"10s\"}]}");
        feed(&f, 10 * S, "h", "app", "x a");
        feed(&f, 10 * S, "h", "app", "y a");
        for (int i = 0; i < (sweep ? 1100 : 1); i++)
            feed(&f, 25 * S, "h", "app", "x filler"); /* the watermark moves on */
        feed(&f, 9 * S, "h", "app", "x a");           /* late: the window of "a" is over */
        feed(&f, 9 * S, "h", "app", "y a");           /* late: so is the suppression */
        cor_incident *const *inc;
        size_t n = finish(&f, &inc);
        size_t t = 0, s = 0;
        for (size_t i = 0; i < n; i++) {
            t += strcmp(inc[i]->rule->id, "T") == 0 &&
                 strcmp(inc[i]->group_json, "{\"src\":\"a\"}") == 0;
            s += strcmp(inc[i]->rule->id, "S") == 0;
        }
        assert_int_equal(t, 0);
        assert_int_equal(s, 2);
        stop(&f);
    }
}

/* design.md: the group's matching events before t + suppress are counted on the
 * incident; one too late for the window (by `within` or more) is one of them. */
static void test_late_event_during_suppression_is_counted_suppressed(void **state)
{
    (void)state;
    fixture f;
    start(&f, ssh_rule("\"threshold\": {\"count\": 2, \"within\": \"10s\", \"by\": [\"src\"]},"
                       " \"suppress\": \"60s\""));
    fail_from(&f, 100 * S, "1.2.3.4");
    fail_from(&f, 100 * S, "1.2.3.4");
    fail_from(&f, 85 * S, "1.2.3.4"); /* 15 s older than the group's newest */
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->suppressed, 1);
    assert_int_equal(cor_engine_stats(f.e)[0].late, 0);
    stop(&f);
}

/* A sequence of more than 5 steps (five failures, then a success): the evidence shows
 * the first 4 steps and the one that completed it. */
static void test_long_sequence_evidence_keeps_the_completing_step(void **state)
{
    (void)state;
    fixture f;
    start(&f, "{\"rules\": [{\"id\": \"SEQ6\", \"within\": \"10m\", \"by\": [\"src\"],"
              " \"sequence\": [{\"where\": {\"message\": \"^f1 (?<src>\\\\S+)\"}},"
              " {\"where\": {\"message\": \"^f2 (?<src>\\\\S+)\"}},"
              " {\"where\": {\"message\": \"^f3 (?<src>\\\\S+)\"}},"
              " {\"where\": {\"message\": \"^f4 (?<src>\\\\S+)\"}},"
              " {\"where\": {\"message\": \"^f5 (?<src>\\\\S+)\"}},"
              " {\"where\": {\"message\": \"^ok (?<src>\\\\S+)\"}}]}]}");
    const char *steps[] = {"f1 a", "f2 a", "f3 a", "f4 a", "f5 a", "ok a"};
    for (int i = 0; i < 6; i++)
        feed(&f, i * S, "gw1", "app", steps[i]);
    cor_incident *const *inc;
    assert_int_equal(finish(&f, &inc), 1);
    assert_int_equal(inc[0]->count, 6);
    assert_int_equal(inc[0]->n_evidence, 5);
    assert_non_null(strstr(inc[0]->evidence[3], "f4 a"));
    assert_non_null(strstr(inc[0]->evidence[4], "ok a"));
    stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_counts_within_window),
        cmocka_unit_test(test_window_edge_exactly_within_apart_does_not_count),
        cmocka_unit_test(test_window_is_emptied_at_the_incident),
        cmocka_unit_test(test_suppress_counts_on_the_incident),
        cmocka_unit_test(test_single_with_by_and_suppress),
        cmocka_unit_test(test_distinct_counts_values_not_events),
        cmocka_unit_test(test_distinct_value_leaving_the_window),
        cmocka_unit_test(test_sequence_in_order_within),
        cmocka_unit_test(test_sequence_wrong_order_or_expired),
        cmocka_unit_test(test_absence_fires_when_time_passes),
        cmocka_unit_test(test_absence_not_fired_past_the_end_of_input),
        cmocka_unit_test(test_absence_fires_once_then_again_after_return),
        cmocka_unit_test(test_late_events),
        cmocka_unit_test(test_unless_allowlist),
        cmocka_unit_test(test_redos_pattern_stopped_by_limit),
        cmocka_unit_test(test_replay_twice_is_byte_identical_and_prefilter_agrees),
        cmocka_unit_test(test_prefilter_never_loses_a_match),
        cmocka_unit_test(test_group_cap_evicts_oldest),
        cmocka_unit_test(test_expired_groups_are_freed),
        cmocka_unit_test(test_incident_id_is_stable),
        cmocka_unit_test(test_incident_record_shape),
        cmocka_unit_test(test_live_take_and_forget),
        cmocka_unit_test(test_incidents_sharing_the_id_basis_get_distinct_ids),
        cmocka_unit_test(test_late_event_during_suppression_is_counted_suppressed),
        cmocka_unit_test(test_long_sequence_evidence_keeps_the_completing_step),
        cmocka_unit_test(test_state_past_the_watermark_is_over_for_late_events),
        cmocka_unit_test(test_absence_ignores_late_event_of_a_watched_group),
        cmocka_unit_test(test_absence_late_new_group_keeps_the_others),
        cmocka_unit_test(test_sequence_chain_too_old_for_one_event_kept_for_a_late_one),
        cmocka_unit_test(test_sequence_late_first_step_keeps_recent_start),
        cmocka_unit_test(test_sequence_late_step_times),
        cmocka_unit_test(test_sequence_completing_event_is_used_up),
        cmocka_unit_test(test_absence_late_event_and_tie),
        cmocka_unit_test(test_threshold_late_refill_detected_at_newest_in_window),
        cmocka_unit_test(test_distinct_late_event_counts_its_value_once),
        cmocka_unit_test(test_sliding_distinct_window_keeps_the_oldest_as_evidence),
        cmocka_unit_test(test_groups_that_move_keep_their_links),
        cmocka_unit_test(test_reused_group_blocks_hold_only_their_own_events),
        cmocka_unit_test(test_sequence_restarts_keep_the_right_evidence),
        cmocka_unit_test(test_absence_longer_last_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
