/* Limits the READMEs promise that no other test reaches: a rule set stops at
 * COR_MAX_RULES, a rule at COR_MAX_TESTS tests, COR_MAX_STEPS steps, COR_MAX_BY
 * `by` fields and COR_MAX_CAPTURES named captures, a rule file at
 * COR_MAX_FILE_BYTES; the collector takes at most COL_MAX_LISTEN listeners; the
 * API at most COR_HTTP_MAX_TOKENS tokens; a KPI operator at most
 * COR_KPI_MAX_SOURCES designated sources; a threshold window holds at most
 * --max-window events (the oldest dropped and counted). Each is checked at the limit (accepted)
 * and one past it (refused, with a reason a user can act on). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "col_config.h"
#include "cor_engine.h"
#include "cor_http.h"
#include "cor_kpi.h"
#include "cor_rule.h"
#include "pasban/parse.h"
#include "pasban/util.h"

typedef struct text {
    char *p;
    size_t len;
    FILE *f;
} text;

static void text_open(text *t)
{
    t->p = NULL;
    t->len = 0;
    t->f = open_memstream(&t->p, &t->len);
    assert_non_null(t->f);
}

static void text_close(text *t)
{
    fclose(t->f);
}

typedef struct loaded {
    cor_ruleset *rs;
    char *errors;
    size_t errlen;
} loaded;

static void load(loaded *l, const char *rules, size_t len)
{
    FILE *f = open_memstream(&l->errors, &l->errlen);
    cor_load_opts lo = {f, true};
    l->rs = cor_ruleset_load_text("t.rules", rules, len, &lo);
    fclose(f);
    assert_non_null(l->rs);
}

static void unload(loaded *l)
{
    cor_ruleset_free(l->rs);
    free(l->errors);
}

static void test_rules_per_set(void **state)
{
    (void)state;
    text t;
    text_open(&t);
    fputs("{\"rules\": [\n", t.f);
    for (int i = 0; i <= COR_MAX_RULES; i++)
        fprintf(t.f, "%s{\"id\": \"R%05d\", \"where\": {\"message\": \"x\"}}\n", i ? "," : "", i);
    fputs("]}\n", t.f);
    text_close(&t);
    loaded l;
    load(&l, t.p, t.len);
    assert_int_equal(l.rs->n_rules, COR_MAX_RULES);
    assert_int_equal(l.rs->n_errors, 1);
    assert_non_null(strstr(l.errors, "rule R20000: more than 20000 rules in the set"));
    unload(&l);
    free(t.p);
}

/* A rule with n tests, n sequence steps, n `by` fields or n named captures. */
static void rule_with(text *t, const char *id, const char *what, int n)
{
    fprintf(t->f, "{\"id\": \"%s\", ", id);
    if (strcmp(what, "tests") == 0) {
        fputs("\"where\": {\"message\": \"a\"}, \"tests\": [", t->f);
        for (int i = 0; i < n; i++)
            fprintf(t->f, "%s{\"log\": \"a %d\", \"expect\": \"match\"}", i ? "," : "", i);
        fputs("]}", t->f);
    } else if (strcmp(what, "steps") == 0) {
        fputs("\"within\": \"10m\", \"by\": [\"src\"], \"sequence\": [", t->f);
        for (int i = 0; i < n; i++)
            fprintf(t->f, "%s{\"where\": {\"message\": \"s%d\"}}", i ? "," : "", i);
        fputs("]}", t->f);
    } else if (strcmp(what, "by") == 0) {
        fputs("\"where\": {\"message\": \"a\"}, \"threshold\": {\"count\": 2, \"within\": \"1m\", "
              "\"by\": [",
              t->f);
        for (int i = 0; i < n; i++)
            fprintf(t->f, "%s\"labels.f%d\"", i ? "," : "", i);
        fputs("]}}", t->f);
    } else {
        fputs("\"where\": {\"message\": \"", t->f);
        for (int i = 0; i < n; i++)
            fprintf(t->f, "(?<c%d>a)", i);
        fputs("\"}}", t->f);
    }
}

static void check_per_rule(const char *what, int max, const char *reason)
{
    text t;
    text_open(&t);
    fputs("{\"rules\": [", t.f);
    rule_with(&t, "AT", what, max);
    fputs(",\n", t.f);
    rule_with(&t, "PAST", what, max + 1);
    fputs("]}\n", t.f);
    text_close(&t);
    loaded l;
    load(&l, t.p, t.len);
    if (l.rs->n_rules != 1 || strcmp(l.rs->rules[0]->id, "AT") != 0 ||
        !strstr(l.errors, reason))
        fail_msg("%s: %zu rules loaded, errors:\n%s", what, l.rs->n_rules, l.errors);
    assert_int_equal(l.rs->n_errors, 1);
    unload(&l);
    free(t.p);
}

static void test_per_rule_limits(void **state)
{
    (void)state;
    check_per_rule("tests", COR_MAX_TESTS, "rule PAST: more than 64 tests");
    check_per_rule("steps", COR_MAX_STEPS, "rule PAST: sequence has more than 8 steps");
    check_per_rule("by", COR_MAX_BY, "rule PAST: by has more than 8 fields");
    check_per_rule("captures", COR_MAX_CAPTURES, "more than 32 named captures");
}

static void test_rule_file_size(void **state)
{
    (void)state;
    char path[] = "/tmp/test_limits.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    const char *head = "{\"rules\": [{\"id\": \"R\", \"where\": {\"message\": \"x\"}}]}\n";
    fputs(head, f);
    /* Whitespace after the document: valid JSON, but one byte past the limit. */
    for (size_t n = strlen(head); n < (size_t)COR_MAX_FILE_BYTES + 1; n++)
        fputc(' ', f);
    fclose(f);
    char *errors = NULL;
    size_t errlen = 0;
    FILE *ef = open_memstream(&errors, &errlen);
    cor_load_opts lo = {ef, true};
    cor_ruleset *rs = cor_ruleset_load(path, &lo);
    fclose(ef);
    unlink(path);
    if (rs) {
        assert_int_equal(rs->n_rules, 0);
        assert_true(rs->n_errors >= 1);
    }
    assert_non_null(strstr(errors, "file larger than 16777216 bytes"));
    cor_ruleset_free(rs);
    free(errors);
}

static void test_collector_listeners(void **state)
{
    (void)state;
    for (int n = COL_MAX_LISTEN; n <= COL_MAX_LISTEN + 1; n++) {
        char path[] = "/tmp/test_limits.XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fputs("{\"listen\": [\n", f);
        for (int i = 0; i < n; i++)
            fprintf(f, "%s\"tcp://127.0.0.1:%d\"\n", i ? "," : "", 20000 + i);
        fputs("]}\n", f);
        fclose(f);
        col_config *cfg = col_config_new();
        char err[256] = "";
        int rc = col_config_load(cfg, path, err, sizeof err);
        unlink(path);
        if (n == COL_MAX_LISTEN) {
            assert_int_equal(rc, 0);
            assert_int_equal(cfg->n_listen, COL_MAX_LISTEN);
        } else {
            assert_int_equal(rc, -1);
            assert_non_null(strstr(err, "at most 16 listeners"));
        }
        col_config_free(cfg);
    }
}

static char *tokens_json(int n)
{
    text t;
    text_open(&t);
    fputs("{\"tokens\": [", t.f);
    for (int i = 0; i < n; i++)
        fprintf(t.f, "%s{\"token\": \"token-%06d-abcdefghij\", \"operator\": \"op-%d\"}",
                i ? "," : "", i, i % 7);
    fputs("]}", t.f);
    text_close(&t);
    return t.p;
}

static void test_api_tokens(void **state)
{
    (void)state;
    char err[256] = "";
    char *at = tokens_json(COR_HTTP_MAX_TOKENS);
    cor_http_tokens *t = cor_http_tokens_parse(at, strlen(at), err, sizeof err);
    assert_non_null(t);
    cor_http_tokens_free(t);
    char *past = tokens_json(COR_HTTP_MAX_TOKENS + 1);
    err[0] = '\0';
    assert_null(cor_http_tokens_parse(past, strlen(past), err, sizeof err));
    assert_true(err[0] != '\0');
    free(at);
    free(past);
}

static char *sources_json(int n)
{
    text t;
    text_open(&t);
    fputs("{\"operators\": {\"op-a\": {\"sources\": [", t.f);
    for (int i = 0; i < n; i++)
        fprintf(t.f, "%s\"host-%d\"", i ? "," : "", i);
    fputs("]}}}", t.f);
    text_close(&t);
    return t.p;
}

static void test_kpi_sources(void **state)
{
    (void)state;
    char err[256] = "";
    char *at = sources_json(COR_KPI_MAX_SOURCES);
    cor_kpi_config *c = cor_kpi_config_parse(at, strlen(at), err, sizeof err);
    assert_non_null(c);
    cor_kpi_config_free(c);
    char *past = sources_json(COR_KPI_MAX_SOURCES + 1);
    assert_null(cor_kpi_config_parse(past, strlen(past), err, sizeof err));
    assert_non_null(strstr(err, "operators.op-a.sources: expected an array of at most 4096"));
    free(at);
    free(past);
}

/* Threshold rule T: 4 events of one host within an hour. With a window of at
 * most max_window events, n events of gw1 give how many incidents, and how many
 * window entries were dropped (the `evicted` counter of --stats). */
static void window_run(size_t max_window, int n, size_t *incidents, uint64_t *dropped)
{
    const char *rules = "{\"rules\": [{\"id\": \"T\", \"where\": {\"message\": \"boom\"}, "
                        "\"threshold\": {\"count\": 4, \"within\": \"1h\", \"by\": "
                        "[\"host.hostname\"]}}]}";
    loaded l;
    load(&l, rules, strlen(rules));
    assert_int_equal(l.rs->n_rules, 1);
    cor_engine_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.max_window = max_window;
    cor_engine *e = cor_engine_new(l.rs, &eo);
    psb_event *ev = psb_event_new();
    for (int i = 0; i < n; i++) {
        char line[128];
        int len = snprintf(line, sizeof line,
                           "<38>1 2026-11-05T10:00:%02dZ gw1 app - - - boom %d", i, i);
        psb_parse_opts po;
        memset(&po, 0, sizeof po);
        po.organization_id = PSB_STR_LIT("op-a");
        assert_int_equal(psb_parse(&po, line, (size_t)len, ev), 0);
        cor_engine_process(e, ev);
    }
    cor_engine_finish(e);
    cor_incident *const *inc;
    *incidents = cor_engine_incidents(e, &inc);
    *dropped = cor_engine_stats(e)[0].evicted;
    psb_event_free(ev);
    cor_engine_free(e);
    unload(&l);
}

static void test_threshold_window(void **state)
{
    (void)state;
    size_t inc;
    uint64_t dropped;
    window_run(0, 4, &inc, &dropped); /* the default window: the threshold fires */
    assert_int_equal(inc, 1);
    assert_int_equal(dropped, 0);
    window_run(3, 6, &inc, &dropped); /* never more than 3 held: it cannot reach 4 */
    assert_int_equal(inc, 0);
    assert_int_equal(dropped, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_per_set),     cmocka_unit_test(test_per_rule_limits),
        cmocka_unit_test(test_rule_file_size),    cmocka_unit_test(test_collector_listeners),
        cmocka_unit_test(test_api_tokens),        cmocka_unit_test(test_kpi_sources),
        cmocka_unit_test(test_threshold_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
