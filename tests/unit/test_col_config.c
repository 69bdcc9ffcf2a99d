/* test_col_config.c -- the collector's config file, listen URLs, operator maps, HTTP body split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "col_config.h"
#include "col_ctx.h"

static char *write_tmp(const char *text)
{
    char tmpl[] = "/tmp/pasban-conf-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return strdup(tmpl);
}

static const char *good =
    "// example\n"
    "{\n"
    "  \"kafka\": { \"brokers\": \"k1:9092\", \"topic\": \"t\", \"linger.ms\": 20,\n"
    "             \"compression.codec\": \"zstd\" },\n"
    "  \"listen\": [\"udp://127.0.0.1:5514\", \"tcp://[::1]:5514\"],\n"
    "  \"default_operator\": \"op-x\",\n"
    "  /* operators */\n"
    "  \"operators\": {\n"
    "    \"op-a\": { \"networks\": [\"10.1.0.0/16\", \"10.1.2.0/24\"],\n"
    "                \"tokens\": \"aaaaaaaaaaaaaaaaaaaa\", \"tls_names\": \"gw.op-a\" },\n"
    "    \"op-b\": { \"networks\": [\"10.1.2.128/25\", \"2001:db8::/32\"] }\n"
    "  },\n"
    "  \"spool\": { \"dir\": \"/tmp/x\", \"fsync\": \"always\", \"max_bytes\": 2000000 },\n"
    "  \"limits\": { \"max_connections\": 10, \"idle_timeout\": \"5s\" }\n"
    "}\n";

static void test_good_file(void **state)
{
    (void)state;
    char err[512];
    char *path = write_tmp(good);
    col_config *cfg = col_config_new();
    assert_int_equal(col_config_load(cfg, path, err, sizeof err), 0);
    assert_string_equal(cfg->brokers, "k1:9092");
    assert_string_equal(cfg->topic, "t");
    assert_int_equal(cfg->n_kafka_props, 2);
    assert_string_equal(cfg->kafka_props[0].key, "linger.ms");
    assert_string_equal(cfg->kafka_props[0].value, "20");
    assert_int_equal(cfg->n_listen, 2);
    assert_int_equal(cfg->listen[1].input, COL_INPUT_TCP);
    assert_string_equal(cfg->listen[1].host, "::1");
    assert_string_equal(cfg->default_operator, "op-x");
    assert_int_equal(cfg->spool_fsync, COL_FSYNC_ALWAYS);
    assert_int_equal(cfg->max_connections, 10);
    assert_int_equal(cfg->idle_timeout_ms, 5000);

    /* Longest prefix wins. */
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.1.2.200", &a.sin_addr);
    assert_string_equal(col_opmap_by_addr(&cfg->opmap, (struct sockaddr *)&a), "op-b");
    inet_pton(AF_INET, "10.1.2.5", &a.sin_addr);
    assert_string_equal(col_opmap_by_addr(&cfg->opmap, (struct sockaddr *)&a), "op-a");
    inet_pton(AF_INET, "10.2.0.1", &a.sin_addr);
    assert_null(col_opmap_by_addr(&cfg->opmap, (struct sockaddr *)&a));
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::1", &a6.sin6_addr);
    assert_string_equal(col_opmap_by_addr(&cfg->opmap, (struct sockaddr *)&a6), "op-b");
    inet_pton(AF_INET6, "::ffff:10.1.0.9", &a6.sin6_addr);
    assert_string_equal(col_opmap_by_addr(&cfg->opmap, (struct sockaddr *)&a6), "op-a");

    assert_string_equal(col_opmap_by_token(&cfg->opmap, "aaaaaaaaaaaaaaaaaaaa", 20), "op-a");
    assert_null(col_opmap_by_token(&cfg->opmap, "aaaaaaaaaaaaaaaaaaab", 20));
    assert_null(col_opmap_by_token(&cfg->opmap, "aaaaaaaaaaaaaaaaaaa", 19));
    assert_string_equal(col_opmap_by_tls_name(&cfg->opmap, "gw.op-a"), "op-a");
    col_config_free(cfg);
    unlink(path);
    free(path);
}

static void expect_error(const char *text, const char *want)
{
    char err[512];
    char *path = write_tmp(text);
    col_config *cfg = col_config_new();
    assert_int_equal(col_config_load(cfg, path, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    assert_non_null(strstr(err, path));
    col_config_free(cfg);
    unlink(path);
    free(path);
}

static void test_errors_name_line_and_key(void **state)
{
    (void)state;
    expect_error("{\n  \"spool\": {\n    \"fsync\": \"sometimes\"\n  }\n}\n",
                 ":3: spool.fsync: expected");
    expect_error("{\n\n \"limits\": { \"max_connections\": -4 }\n}\n",
                 ":3: limits.max_connections: expected an integer");
    expect_error("{ \"listen\": [\n \"ftp://1.2.3.4:21\"\n] }\n", ":2: listen:");
    expect_error("{\n \"operators\": { \"a\": { \"networks\": [\"10.0.0.0/33\"] } }\n}\n",
                 ":2: operators.a.networks:");
    expect_error("{\n \"bogus\": 1\n}\n", ":2: bogus: unknown key");
    expect_error("{\n \"kafka\": {\n  \"topic\": \"x\",,\n }\n}\n", ":3:");
    expect_error("{ \"operators\": { \"a\": { \"tokens\": \"0123456789abcdef\" },\n"
                 "  \"b\": { \"tokens\": \"0123456789abcdef\" } } }\n",
                 ":2: operators.b.tokens: token already given");
}

/* Limits that would let one request or connection take the machine down. */
static void test_limits_bounded(void **state)
{
    (void)state;
    /* A 1 GiB body held in memory (and parsed) is refused at load. */
    expect_error("{\n \"limits\": {\n  \"max_body\": 1073741824\n }\n}\n",
                 ":3: limits.max_body: expected an integer from 1024 to 67108864");
}

/* design.md fixes the producer's guarantees: the config cannot loosen them. */
static void test_kafka_guarantees_fixed(void **state)
{
    (void)state;
    expect_error("{\n \"kafka\": {\n  \"acks\": 1\n }\n}\n", ":3: kafka.acks: fixed by");
    expect_error("{ \"kafka\": {\n \"enable.idempotence\": false } }\n",
                 ":2: kafka.enable.idempotence: fixed by");
    expect_error("{ \"kafka\": {\n \"request.required.acks\": \"1\" } }\n",
                 ":2: kafka.request.required.acks: fixed by");
}

/* An idle timeout of zero would close every connection mid-frame. */
static void test_idle_timeout_zero_refused(void **state)
{
    (void)state;
    expect_error("{ \"limits\": {\n \"idle_timeout\": \"0s\" } }\n",
                 ":2: limits.idle_timeout: expected a duration above zero");
}

static void test_listen_urls(void **state)
{
    (void)state;
    char err[256];
    col_listen l;
    assert_int_equal(col_listen_parse("tls://0.0.0.0:6514", &l, err, sizeof err), 0);
    assert_int_equal(l.input, COL_INPUT_TLS);
    assert_string_equal(l.port, "6514");
    free(l.host);
    free(l.port);
    assert_int_equal(col_listen_parse("http://127.0.0.1", &l, err, sizeof err), -1);
    assert_int_equal(col_listen_parse("tcp://127.0.0.1:99999", &l, err, sizeof err), -1);
}

typedef struct collect {
    char objs[8][64];
    int n;
} collect;

static int collect_one(void *arg, const char *obj, size_t len)
{
    collect *c = arg;
    if (c->n < 8 && len < 64) {
        memcpy(c->objs[c->n], obj, len);
        c->objs[c->n][len] = '\0';
    }
    c->n++;
    return 0;
}

static void test_json_split(void **state)
{
    (void)state;
    char err[256];
    collect c = {0};
    assert_int_equal(col_json_split("{\"a\":1}", 7, 100, collect_one, &c, err, sizeof err), 1);
    assert_string_equal(c.objs[0], "{\"a\":1}");
    memset(&c, 0, sizeof c);
    const char *arr = " [ {\"a\":[1,{\"b\":2}]} , {\"c\":\"}\"} ]\n";
    assert_int_equal(col_json_split(arr, strlen(arr), 100, collect_one, &c, err, sizeof err), 2);
    assert_string_equal(c.objs[0], "{\"a\":[1,{\"b\":2}]}");
    assert_string_equal(c.objs[1], "{\"c\":\"}\"}");
    memset(&c, 0, sizeof c);
    const char *nd = "{\"a\":1}\n{\"b\":2}\r\n{\"c\":3}\n";
    assert_int_equal(col_json_split(nd, strlen(nd), 100, collect_one, &c, err, sizeof err), 3);
    assert_string_equal(c.objs[2], "{\"c\":3}");
    /* Bad bodies: nothing is split out before the error is known by the caller's
     * first (validating) pass. */
    assert_int_equal(col_json_split("{\"a\":1}\n{\"b\":", 13, 100, NULL, NULL, err, sizeof err),
                     -1);
    assert_int_equal(col_json_split("[1,2]", 5, 100, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected JSON objects"));
    assert_int_equal(col_json_split("\"x\"", 3, 100, NULL, NULL, err, sizeof err), -1);
    assert_int_equal(col_json_split("", 0, 100, NULL, NULL, err, sizeof err), -1);
    assert_int_equal(col_json_split("{}{}{}", 6, 2, NULL, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "too many"));
    assert_int_equal(col_json_split("[{}] {}", 7, 100, NULL, NULL, err, sizeof err), -1);
}

static int count_one(void *arg, const char *obj, size_t len)
{
    size_t *n = arg;
    /* Every slice handed out is one whole object. */
    assert_true(len >= 2);
    assert_int_equal(obj[0], '{');
    assert_int_equal(obj[len - 1], '}');
    (*n)++;
    return 0;
}

/* Mutated bodies (a poor man's fuzzer, run under ASan in the test build): never
 * a crash, and a body accepted by the validating pass yields exactly as many
 * objects in the submitting pass. */
static void test_json_split_mutations(void **state)
{
    (void)state;
    static const char *seeds[] = {
        "[{\"a\":1},{\"b\":[1,2,{\"c\":\"}\"}]}]",
        "{\"message\":\"x\"}\n{\"message\":\"y\",\"n\":null}\n",
        "{\"a\":{\"b\":{\"c\":{}}}} {\"d\":true}",
    };
    char buf[256], err[256];
    unsigned seed = 12345;
    for (int iter = 0; iter < 30000; iter++) {
        const char *s = seeds[iter % 3];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int muts = 1 + (int)(seed % 4);
        for (int m = 0; m < muts; m++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            const char pool[] = "{}[]\",:0 \n\\ax";
            buf[at] = pool[(seed >> 20) % (sizeof pool - 1)];
        }
        long v = col_json_split(buf, n, 100, NULL, NULL, err, sizeof err);
        size_t got = 0;
        long w = col_json_split(buf, n, 100, count_one, &got, err, sizeof err);
        assert_int_equal(v, w);
        if (v >= 0)
            assert_int_equal((size_t)v, got);
    }
}

/* The documented example must stay loadable. */
static void test_example_config_loads(void **state)
{
    (void)state;
    char err[512];
    col_config *cfg = col_config_new();
    if (col_config_load(cfg, PASBAN_SOURCE_DIR "/collector/pasban-collector.conf", err,
                        sizeof err) != 0)
        fail_msg("%s", err);
    assert_int_equal(cfg->n_listen, 4);
    assert_int_equal(cfg->opmap.n_ops, 2);
    assert_string_equal(cfg->kafka_props[0].key, "compression.codec");
    col_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_errors_name_line_and_key),
        cmocka_unit_test(test_limits_bounded),
        cmocka_unit_test(test_kafka_guarantees_fixed),
        cmocka_unit_test(test_idle_timeout_zero_refused),
        cmocka_unit_test(test_listen_urls),
        cmocka_unit_test(test_json_split),
        cmocka_unit_test(test_json_split_mutations),
        cmocka_unit_test(test_example_config_loads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
