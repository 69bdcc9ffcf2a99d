/* pasban-correlator's -c FILE: every section read, comments allowed, unknown
 * keys and wrong types refused with file:line, librdkafka properties passed
 * through as text, tokens and the KPI section handed to their parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cor_config.h"

static char path[64];

static void write_conf(const char *text)
{
    snprintf(path, sizeof(path), "/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
}

static cor_config *load(const char *text, char *err, size_t errlen)
{
    write_conf(text);
    cor_config *c = cor_config_load(path, err, errlen);
    unlink(path);
    return c;
}

static void test_full_config(void **state)
{
    (void)state;
    char err[512];
    cor_config *c = load("// the daemon\n"
                         "{\"kafka\": {\"brokers\": \"b1:9092,b2:9092\", \"group\": \"g\",\n"
                         "   \"topics\": {\"events\": \"e\", \"incidents\": \"i\", \"updates\": "
                         "\"u\", \"kpi\": \"k\"},\n"
                         "   \"properties\": {\"client.id\": \"x\", \"linger.ms\": 20, "
                         "\"enable.ssl.certificate.verification\": false}},\n"
                         " \"rules\": \"rules/\", \"http\": \"127.0.0.1:9108\", \"web_root\": "
                         "\"/w\",\n"
                         " /* tokens */ \"tokens\": [{\"token\": \"t-a\", \"operator\": "
                         "\"op-a\"}, {\"token\": \"t-r\", \"role\": \"regulator\"}],\n"
                         " \"api\": {\"at_max_future\": \"90s\"},\n"
                         " \"kpi\": {\"sla\": {\"critical\": \"1h\"}, \"operators\": {\"op-a\": "
                         "{\"sources\": [\"gw1\"]}}}}\n",
                         err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c->brokers, "b1:9092,b2:9092");
    assert_string_equal(c->group, "g");
    assert_string_equal(c->topic_events, "e");
    assert_string_equal(c->topic_incidents, "i");
    assert_string_equal(c->topic_updates, "u");
    assert_string_equal(c->topic_kpi, "k");
    assert_string_equal(c->rules, "rules/");
    assert_string_equal(c->http, "127.0.0.1:9108");
    assert_string_equal(c->web_root, "/w");
    assert_true(c->at_max_future_ms == 90000);
    const char *k = NULL, *v = NULL;
    assert_int_equal(cor_config_property(c, 0, &k, &v), 3);
    assert_string_equal(k, "client.id");
    assert_string_equal(v, "x");
    cor_config_property(c, 1, &k, &v);
    assert_string_equal(v, "20"); /* numbers as written */
    cor_config_property(c, 2, &k, &v);
    assert_string_equal(v, "false");
    cor_http_tokens *t = cor_config_tokens(c, err, sizeof(err));
    assert_non_null(t);
    cor_http_tokens_free(t);
    /* the KPI section reaches the engine: op-a is configured with one source */
    cor_kpi_config *kc = cor_config_kpi(c, err, sizeof(err));
    assert_non_null(kc);
    cor_kpi *kpi = cor_kpi_new(kc);
    assert_int_equal(cor_kpi_n_operators(kpi), 1);
    assert_string_equal(cor_kpi_operator(kpi, 0), "op-a");
    cor_kpi_period p;
    assert_int_equal(cor_kpi_period_parse("2026-11", &p), 0);
    cor_kpi_values vals;
    assert_int_equal(cor_kpi_compute(kpi, "op-a", p, &vals), 0);
    assert_true(vals.sources_designated.set);
    assert_true(vals.sources_designated.v == 1);
    cor_kpi_free(kpi);
    cor_config_free(c);
}

static void test_empty_config_defaults(void **state)
{
    (void)state;
    char err[512];
    cor_config *c = load("{}", err, sizeof(err));
    assert_non_null(c);
    assert_null(c->brokers);
    assert_null(c->rules);
    assert_true(c->at_max_future_ms == 0); /* cor_http's default, 5 min */
    const char *k, *v;
    assert_int_equal(cor_config_property(c, 0, &k, &v), 0);
    cor_http_tokens *t = cor_config_tokens(c, err, sizeof(err));
    assert_non_null(t); /* empty: nobody gets in */
    cor_http_tokens_free(t);
    cor_kpi_config *kc = cor_config_kpi(c, err, sizeof(err));
    assert_non_null(kc);
    cor_kpi_config_free(kc);
    cor_config_free(c);
}

static void expect_refused(const char *text, const char *want)
{
    char err[512];
    cor_config *c = load(text, err, sizeof(err));
    if (c) {
        cor_config_free(c);
        fail_msg("accepted: %s", text);
    }
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused("{\n\"kafka\": {},\n\"colour\": 1}", ":3: unknown key colour");
    expect_refused("{\"kafka\": {\n\"broker\": \"x\"}}", ":2: unknown key kafka.broker");
    expect_refused("{\"kafka\": {\"topics\": {\"event\": \"x\"}}}",
                   "unknown key kafka.topics.event");
    expect_refused("{\"rules\": 5}", "rules: expected a non-empty string");
    expect_refused("{\"http\": \"\"}", "http: expected a non-empty string");
    expect_refused("{\"kafka\": {\"properties\": {\"a\": [1]}}}",
                   "kafka.properties.a: expected a string");
    expect_refused("{\"tokens\": {}}", "tokens: expected an array");
    expect_refused("{\"kpi\": []}", "kpi: expected an object");
    expect_refused("[1]", "expected an object");
    expect_refused("{\"api\": {\n\"at_max_future\": \"soon\"}}",
                   ":2: api.at_max_future: a duration of at least 1s");
    expect_refused("{\"api\": {\"at_max_future\": \"0s\"}}", "at least 1s");
    expect_refused("{\"api\": {\"at_future\": \"5m\"}}", "unknown key api.at_future");
    expect_refused("{\"rules\": ", ""); /* syntax error */
    char err[256];
    assert_null(cor_config_load("/nonexistent/pasban.conf", err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/pasban.conf"));
}

static void test_bad_sections_reach_their_parsers(void **state)
{
    (void)state;
    char err[512];
    cor_config *c = load("{\"tokens\": [{\"token\": \"x\"}], \"kpi\": {\"sla\": {\"urgent\": "
                         "\"1h\"}}}",
                         err, sizeof(err));
    assert_non_null(c);
    assert_null(cor_config_tokens(c, err, sizeof(err)));
    assert_non_null(strstr(err, "tokens[0]"));
    assert_null(cor_config_kpi(c, err, sizeof(err)));
    assert_non_null(strstr(err, "sla.urgent"));
    cor_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_empty_config_defaults),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bad_sections_reach_their_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
