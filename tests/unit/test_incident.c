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
    cor_incident_set_id(&inc, key, key_len, ordinal);
    char old[33];
    memcpy(old, inc.id, 33);
    memset(inc.id, 0, sizeof(inc.id));
    cor_idgen_set_id(gen, &inc, key, key_len, ordinal);
    assert_string_equal(inc.id, old);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_id),
        cmocka_unit_test(test_known_id_with_ordinal),
        cmocka_unit_test(test_known_id_empty_key),
        cmocka_unit_test(test_known_id_long_key),
        cmocka_unit_test(test_ids_in_a_row),
    };
    gen = cor_idgen_new();
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cor_idgen_free(gen);
    return failed;
}
