/* Incident ids (correlator/README.md, "Output"): the first 16 bytes of
 * SHA-256("rule id" NUL "group key" NUL "first_seen" [NUL "ordinal"]) in hex.
 * Consumers drop an id they know as a redelivery, so an id must never change
 * between versions: the expected values below were derived outside the
 * correlator, e.g.
 *   printf 'SSH-BF\0op-a\0001.2.3.4\0002026-11-23T10:00:00.000Z' | sha256sum | cut -c1-32
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cor_incident.h"

#define T0 1795428000000LL /* 2026-11-23T10:00:00Z */

/* One generator for the whole program, as an engine keeps one for its life: every
 * test below also checks that a reused digest context starts each id afresh. */
static cor_idgen *gen;

static void id_of(char out[33], const char *rule_id, const char *key, size_t key_len,
                  int64_t first_seen, unsigned ordinal)
{
    cor_rule r;
    memset(&r, 0, sizeof(r));
    r.id = (char *)rule_id;
    cor_incident inc;
    memset(&inc, 0, sizeof(inc));
    inc.rule = &r;
    inc.first_seen = first_seen;
    cor_idgen_set_id(gen, &inc, key, key_len, ordinal);
    memcpy(out, inc.id, 33);
}

#define KEY "op-a\0" "1.2.3.4" /* organization NUL by value, as the engine builds it */

static void test_known_id(void **state)
{
    (void)state;
    char id[33];
    id_of(id, "SSH-BF", KEY, sizeof(KEY) - 1, T0, 0);
    assert_string_equal(id, "3916508a30aa85c5c1072f64d93cc566");
}

/* printf 'SSH-BF\0op-a\0001.2.3.4\0002026-11-23T10:00:00.000Z\0002' | sha256sum */
static void test_known_id_with_ordinal(void **state)
{
    (void)state;
    char id[33];
    id_of(id, "SSH-BF", KEY, sizeof(KEY) - 1, T0, 2);
    assert_string_equal(id, "8d2fa27a70b3083dbd17bc7da01304a7");
}

/* An empty group key (a rule without by fields, no organization). */
static void test_known_id_empty_key(void **state)
{
    (void)state;
    char id[33];
    id_of(id, "SSH-BF", "", 0, T0, 0);
    assert_string_equal(id, "f0cd95005b050469227c0abf572f4162");
}

/* A key longer than the id's stack buffer, and milliseconds in first_seen:
 * printf 'R-LONG\0%s\0002026-11-23T10:00:01.234Z' "$(printf 'k%.0s' $(seq 600))" | sha256sum */
static void test_known_id_long_key(void **state)
{
    (void)state;
    char key[600];
    memset(key, 'k', sizeof(key));
    char id[33];
    id_of(id, "R-LONG", key, sizeof(key), T0 + 1234, 0);
    assert_string_equal(id, "20aa78233fd49e66bafcd3480a2afe12");
}

/* One id after another (the engine computes them in a row): each depends on its
 * own input only. */
static void test_ids_in_a_row(void **state)
{
    (void)state;
    char a[33], b[33], c[33];
    for (int round = 0; round < 3; round++) {
        id_of(a, "SSH-BF", KEY, sizeof(KEY) - 1, T0, 0);
        id_of(b, "SSH-BF", KEY, sizeof(KEY) - 1, T0, 2);
        id_of(c, "SSH-BF", "", 0, T0, 0);
        assert_string_equal(a, "3916508a30aa85c5c1072f64d93cc566");
        assert_string_equal(b, "8d2fa27a70b3083dbd17bc7da01304a7");
        assert_string_equal(c, "f0cd95005b050469227c0abf572f4162");
    }
}

/* The record's three times, each its own (the writer formats a time once when two
 * are equal: every pairing must still print the right one in the right place). */
static void test_record_times(void **state)
{
    (void)state;
    static const struct {
        int64_t first, last, detected;
        const char *want;
    } cases[] = {
        {T0, T0, T0,
         "\"first_seen\":\"2026-11-23T10:00:00.000Z\",\"last_seen\":\"2026-11-23T10:00:00.000Z\","
         "\"detected_at\":\"2026-11-23T10:00:00.000Z\","},
        {T0, T0 + 1500, T0 + 1500,
         "\"first_seen\":\"2026-11-23T10:00:00.000Z\",\"last_seen\":\"2026-11-23T10:00:01.500Z\","
         "\"detected_at\":\"2026-11-23T10:00:01.500Z\","},
        {T0, T0 + 1500, T0 + 61000,
         "\"first_seen\":\"2026-11-23T10:00:00.000Z\",\"last_seen\":\"2026-11-23T10:00:01.500Z\","
         "\"detected_at\":\"2026-11-23T10:01:01.000Z\","},
        {T0, T0, T0 + 7,
         "\"first_seen\":\"2026-11-23T10:00:00.000Z\",\"last_seen\":\"2026-11-23T10:00:00.000Z\","
         "\"detected_at\":\"2026-11-23T10:00:00.007Z\","},
        {T0, T0 + 9, T0, /* detected_at equal to first_seen only */
         "\"first_seen\":\"2026-11-23T10:00:00.000Z\",\"last_seen\":\"2026-11-23T10:00:00.009Z\","
         "\"detected_at\":\"2026-11-23T10:00:00.000Z\","},
    };
    cor_rule r;
    memset(&r, 0, sizeof(r));
    r.id = (char *)"R";
    r.title = (char *)"t";
    r.category = (char *)"c";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cor_incident inc;
        memset(&inc, 0, sizeof(inc));
        inc.rule = &r;
        inc.first_seen = cases[i].first;
        inc.last_seen = cases[i].last;
        inc.detected_at = cases[i].detected;
        cor_idgen_set_id(gen, &inc, "", 0, 0);
        cor_buf b;
        memset(&b, 0, sizeof(b));
        cor_incident_write(&inc, &b);
        if (!strstr(b.p, cases[i].want))
            fail_msg("case %zu: %s", i, b.p);
        cor_buf_free(&b);
    }
}

/* Evidence is written as cor_buf_json_str writes it, whatever the length of the line
 * and wherever a byte needing care sits (plain lines take a faster path, checked 8 or
 * 16 bytes at a time). */
static void test_evidence_escaping(void **state)
{
    (void)state;
    static const char special[] = {'"', '\\', '\n', '\x01', '\x1f', '\x7f', ' ', '~',
                                   (char)0x80, (char)0xc3, (char)0xff};
    cor_rule r;
    memset(&r, 0, sizeof(r));
    r.id = (char *)"R";
    r.title = (char *)"t";
    r.category = (char *)"c";
    char line[48];
    cor_buf got, want;
    memset(&got, 0, sizeof(got));
    memset(&want, 0, sizeof(want));
    for (size_t n = 0; n <= 40; n++)
        for (size_t at = 0; at <= n; at++) /* at == n: no special byte */
            for (size_t k = 0; k < sizeof(special); k++) {
                memset(line, 'a', n);
                if (at < n)
                    line[at] = special[k];
                cor_evidence ev = {line, n};
                cor_incident *inc = cor_incident_new(&r, NULL, 0, NULL, 0, &ev, 1);
                got.len = 0;
                cor_incident_write(inc, &got);
                want.len = 0;
                cor_buf_put(&want, "\"evidence\":[", 12);
                cor_buf_json_str(&want, line, n);
                cor_buf_put(&want, "]", 1);
                if (!strstr(got.p, want.p))
                    fail_msg("length %zu, byte 0x%02x at %zu: %s", n, (unsigned char)special[k],
                             at, got.p);
                cor_incident_free(inc);
                if (at == n)
                    break;
            }
    /* Several of them, and a byte for cor_buf_json_str after quotes already escaped. */
    static const char *const lines[] = {
        "GET /a?q=%22 HTTP/1.1\" 200 \"-\" \"curl/8.4.0\" path=\"C:\\Windows\\x\"",
        "\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\\\\\\\\\\",
        "user=\"bob\" msg=\"a\tb\" end",
        "\"quoted\" then caf\xc3\xa9 and bad \xff byte after \\ a backslash",
        "\"0123456789abcdef0123456789abcdef\"\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        size_t n = strlen(lines[i]);
        cor_evidence ev[2] = {{lines[i], n}, {"x", 1}};
        cor_incident *inc = cor_incident_new(&r, NULL, 0, NULL, 0, ev, 2);
        got.len = 0;
        cor_incident_write(inc, &got);
        want.len = 0;
        cor_buf_put(&want, "\"evidence\":[", 12);
        cor_buf_json_str(&want, lines[i], n);
        cor_buf_put(&want, ",\"x\"]", 5);
        if (!strstr(got.p, want.p))
            fail_msg("line %zu: %s", i, got.p);
        cor_incident_free(inc);
    }
    cor_buf_free(&got);
    cor_buf_free(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_id),
        cmocka_unit_test(test_known_id_with_ordinal),
        cmocka_unit_test(test_known_id_empty_key),
        cmocka_unit_test(test_known_id_long_key),
        cmocka_unit_test(test_ids_in_a_row),
        cmocka_unit_test(test_record_times),
        cmocka_unit_test(test_evidence_escaping),
    };
    gen = cor_idgen_new();
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cor_idgen_free(gen);
    return failed;
}
