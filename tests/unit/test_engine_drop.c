/* cor_engine_drop_groups: after a rebalance the daemon drops the groups of the
 * operators whose partition went elsewhere. A dropped operator's window starts
 * afresh (its old events no longer count); the others' windows are untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

static const char rules[] =
    "{\"rules\": [{\"id\": \"T-BF\", \"where\": {\"message\": \"^fail from (?<src>\\\\S+)\"},"
    " \"threshold\": {\"count\": 3, \"within\": \"10m\", \"by\": [\"src\"]}}]}";

static void feed(cor_engine *e, psb_event *ev, const char *op, int64_t ms, const char *src)
{
    char ts[PSB_TIME_BUFSZ], line[256];
    psb_format_time_ms(T0 + ms, ts);
    int n = snprintf(line, sizeof(line), "<38>1 %s gw app - - - fail from %s", ts, src);
    psb_parse_opts po;
    memset(&po, 0, sizeof(po));
    po.received_ms = T0;
    po.organization_id = psb_str_make(op, strlen(op));
    assert_int_equal(psb_parse(&po, line, (size_t)n, ev), 0);
    cor_engine_process(e, ev);
}

static bool drop_op_b(void *arg, const char *org, size_t len)
{
    int *calls = arg;
    (*calls)++;
    return org && len == 4 && memcmp(org, "op-b", 4) == 0;
}

static void test_drop_one_operator(void **state)
{
    (void)state;
    cor_load_opts lo = {stderr, false};
    cor_ruleset *rs = cor_ruleset_load_text("t.rules", rules, strlen(rules), &lo);
    assert_non_null(rs);
    cor_engine *e = cor_engine_new(rs, NULL);
    psb_event *ev = psb_event_new();
    /* Two failures each for op-a and op-b from the same source: one short. */
    feed(e, ev, "op-a", 0, "1.2.3.4");
    feed(e, ev, "op-b", 0, "1.2.3.4");
    feed(e, ev, "op-a", 1000, "1.2.3.4");
    feed(e, ev, "op-b", 1000, "1.2.3.4");
    feed(e, ev, "op-b", 1500, "5.6.7.8");
    assert_int_equal(cor_engine_groups(e), 3);
    int calls = 0;
    assert_int_equal(cor_engine_drop_groups(e, drop_op_b, &calls), 2);
    assert_int_equal(calls, 3);
    assert_int_equal(cor_engine_groups(e), 1);
    /* op-a's window still holds its two: the third raises. op-b's was emptied:
     * its third is only the first of a new window. */
    feed(e, ev, "op-a", 2000, "1.2.3.4");
    feed(e, ev, "op-b", 2000, "1.2.3.4");
    cor_incident *const *inc;
    size_t n = cor_engine_take(e, &inc);
    assert_int_equal(n, 1);
    assert_string_equal(inc[0]->org, "op-a");
    assert_int_equal(inc[0]->count, 3);
    psb_event_free(ev);
    cor_engine_free(e);
    cor_ruleset_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop_one_operator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
