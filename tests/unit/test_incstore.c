/* Incident store: records in, lifecycle rules with reasons, filters and pages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "cor_incstore.h"
#include "pasban/util.h"

static int64_t T(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(psb_parse_rfc3339(s, strlen(s), &ms), 0);
    return ms;
}

static char *record(const char *id, const char *op, const char *sev, const char *cat,
                    const char *first)
{
    char *b = psb_xmalloc(1024);
    snprintf(b, 1024,
             "{\"id\":\"%s\",\"rule\":{\"id\":\"PSB-SSH-001\",\"title\":\"SSH brute force\"},"
             "\"severity\":\"%s\",\"category\":\"%s\",\"organization\":{\"id\":\"%s\"},"
             "\"group\":{\"src\":\"1.2.3.4\"},\"first_seen\":\"%s\",\"last_seen\":\"%s\","
             "\"detected_at\":\"%s\",\"count\":8,\"suppressed\":0,"
             "\"evidence\":[\"Failed password for root from 1.2.3.4\"],\"status\":\"new\"}",
             id, sev, cat, op, first, first, first);
    return b;
}

static cor_incstore *store3(void)
{
    cor_incstore *s = cor_incstore_new();
    char err[128];
    cor_kpi_incident ki;
    char *r = record("a1", "op-a", "high", "intrusion-attempts/login-attempts",
                     "2026-11-02T10:00:00.000Z");
    assert_int_equal(cor_incstore_add_json(s, r, strlen(r), &ki, err, sizeof(err)), 1);
    assert_string_equal(ki.op, "op-a");
    assert_int_equal(ki.severity, 3);
    assert_true(ki.detected_at == T("2026-11-02T10:00:00Z"));
    assert_int_equal(cor_incstore_add_json(s, r, strlen(r), &ki, err, sizeof(err)), 0);
    free(r);
    r = record("b1", "op-b", "critical", "malicious-code/c2", "2026-11-03T10:00:00.000Z");
    assert_int_equal(cor_incstore_add_json(s, r, strlen(r), NULL, err, sizeof(err)), 1);
    free(r);
    r = record("a2", "op-a", "low", "information-gathering/scanner", "2026-11-01T10:00:00.000Z");
    assert_int_equal(cor_incstore_add_json(s, r, strlen(r), NULL, err, sizeof(err)), 1);
    free(r);
    assert_int_equal(cor_incstore_count(s), 3);
    return s;
}

static int upd(cor_incstore *s, const char *id, const char *status, const char *at, char *err)
{
    cor_inc_update u = {id, cor_inc_status_from_name(status), T(at), NULL, NULL, 0};
    err[0] = '\0';
    return cor_incstore_apply(s, &u, err, 200);
}

static void test_lifecycle_valid_path(void **state)
{
    (void)state;
    cor_incstore *s = store3();
    char err[200];
    assert_int_equal(upd(s, "a1", "acknowledged", "2026-11-02T10:05:00Z", err), 0);
    assert_int_equal(upd(s, "a1", "contained", "2026-11-02T11:00:00Z", err), 0);
    assert_int_equal(upd(s, "a1", "reported", "2026-11-02T12:00:00Z", err), 0);
    assert_int_equal(upd(s, "a1", "resolved", "2026-11-03T09:00:00Z", err), 0);
    assert_int_equal(cor_incstore_status(s, "a1"), COR_INC_RESOLVED);
    /* Skipping steps is fine: resolved straight from new. */
    assert_int_equal(upd(s, "a2", "resolved", "2026-11-01T11:00:00Z", err), 0);
    /* Reporting a new incident acknowledges it. */
    assert_int_equal(upd(s, "b1", "reported", "2026-11-03T11:00:00Z", err), 0);
    assert_int_equal(cor_incstore_status(s, "b1"), COR_INC_ACKNOWLEDGED);

    cor_buf b = {0};
    assert_int_equal(cor_incstore_write_json(s, "a1", &b), 0);
    cor_buf_putc(&b, '\0');
    yajl_val r = yajl_tree_parse(b.p, NULL, 0);
    assert_non_null(r);
    const char *p_st[] = {"status", NULL}, *p_rep[] = {"reported_at", NULL},
               *p_up[] = {"updates", NULL}, *p_ev[] = {"evidence", NULL};
    assert_string_equal(YAJL_GET_STRING(yajl_tree_get(r, p_st, yajl_t_string)), "resolved");
    assert_string_equal(YAJL_GET_STRING(yajl_tree_get(r, p_rep, yajl_t_string)),
                        "2026-11-02T12:00:00.000Z");
    assert_int_equal(yajl_tree_get(r, p_up, yajl_t_array)->u.array.len, 4);
    assert_non_null(yajl_tree_get(r, p_ev, yajl_t_array)); /* the correlator's fields stay */
    assert_null(strstr(b.p, "\"status\":\"new\""));        /* one status, the current one */
    yajl_tree_free(r);
    cor_buf_free(&b);
    cor_incstore_free(s);
}

static void test_invalid_transitions_have_reasons(void **state)
{
    (void)state;
    cor_incstore *s = store3();
    char err[200];
    assert_int_equal(upd(s, "zz", "acknowledged", "2026-11-02T10:05:00Z", err), -1);
    assert_non_null(strstr(err, "no incident"));
    assert_int_equal(upd(s, "a1", "new", "2026-11-02T10:05:00Z", err), -1);
    assert_int_equal(upd(s, "a1", "acknowledged", "2026-11-02T09:00:00Z", err), -1);
    assert_non_null(strstr(err, "before the incident was detected"));
    assert_int_equal(upd(s, "a1", "contained", "2026-11-02T10:30:00Z", err), 0);
    assert_int_equal(upd(s, "a1", "acknowledged", "2026-11-02T10:40:00Z", err), -1);
    assert_non_null(strstr(err, "cannot go back"));
    assert_int_equal(upd(s, "a1", "contained", "2026-11-02T10:40:00Z", err), -1);
    assert_non_null(strstr(err, "already contained"));
    assert_int_equal(upd(s, "a1", "resolved", "2026-11-02T10:20:00Z", err), -1);
    assert_non_null(strstr(err, "before the previous update"));
    assert_int_equal(upd(s, "a1", "resolved", "2026-11-02T11:00:00Z", err), 0);
    assert_int_equal(upd(s, "a1", "contained", "2026-11-02T12:00:00Z", err), -1);
    assert_non_null(strstr(err, "not reopened"));
    assert_int_equal(upd(s, "a1", "false_positive", "2026-11-02T12:00:00Z", err), -1);
    /* Reported once; then never a false positive. */
    assert_int_equal(upd(s, "b1", "reported", "2026-11-03T11:00:00Z", err), 0);
    assert_int_equal(upd(s, "b1", "reported", "2026-11-03T12:00:00Z", err), -1);
    assert_non_null(strstr(err, "already reported"));
    assert_int_equal(upd(s, "b1", "false_positive", "2026-11-03T12:00:00Z", err), -1);
    assert_non_null(strstr(err, "cannot be a false positive"));
    /* A false positive is closed. */
    assert_int_equal(upd(s, "a2", "false_positive", "2026-11-01T11:00:00Z", err), 0);
    assert_int_equal(upd(s, "a2", "resolved", "2026-11-01T12:00:00Z", err), -1);
    assert_non_null(strstr(err, "false positive"));
    assert_int_equal(upd(s, "a2", "reported", "2026-11-01T12:00:00Z", err), -1);
    /* Refusals changed nothing. */
    assert_int_equal(cor_incstore_status(s, "a1"), COR_INC_RESOLVED);
    assert_int_equal(cor_incstore_status(s, "b1"), COR_INC_ACKNOWLEDGED);
    cor_incstore_free(s);
}

static void test_bad_records_refused(void **state)
{
    (void)state;
    cor_incstore *s = cor_incstore_new();
    char err[200];
    const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"id\":\"x\",\"rule\":{\"id\":\"R\"},\"severity\":\"high\",\"first_seen\":"
        "\"2026-11-01T00:00:00Z\",\"detected_at\":\"2026-11-01T00:00:00Z\"}", /* no operator */
        "{\"id\":\"x\",\"rule\":{\"id\":\"R\"},\"severity\":\"urgent\",\"organization\":{\"id\":"
        "\"o\"},\"first_seen\":\"2026-11-01T00:00:00Z\",\"detected_at\":\"2026-11-01T00:00:00Z\"}",
        "{\"id\":\"x\",\"rule\":{\"id\":\"R\"},\"severity\":\"high\",\"organization\":{\"id\":"
        "\"o\"},\"first_seen\":\"yesterday\",\"detected_at\":\"2026-11-01T00:00:00Z\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(cor_incstore_add_json(s, bad[i], strlen(bad[i]), NULL, err, sizeof(err)),
                         -1);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(cor_incstore_count(s), 0);
    cor_incstore_free(s);
}

static void test_update_record_round_trip(void **state)
{
    (void)state;
    cor_inc_update u = {"a1",
                        COR_INC_RESOLVED,
                        T("2026-11-02T11:00:00.250Z"),
                        "re-imaged \"gw1\"",
                        "op-a",
                        T("2026-11-02T11:02:03.500Z")};
    cor_buf b = {0};
    cor_inc_update_write(&u, "op-a", &b);
    /* The documented fields keep their names; the receive time is one more. */
    assert_non_null(strstr(b.p, "\"at\":\"2026-11-02T11:00:00.250Z\""));
    assert_non_null(strstr(b.p, "\"received_at\":\"2026-11-02T11:02:03.500Z\""));
    cor_inc_update_owned o;
    char err[128];
    assert_int_equal(cor_inc_update_parse(b.p, b.len, &o, err, sizeof(err)), 0);
    assert_string_equal(o.u.id, "a1");
    assert_int_equal(o.u.status, COR_INC_RESOLVED);
    assert_true(o.u.at == u.at);
    assert_true(o.u.received_at == u.received_at);
    assert_string_equal(o.u.note, "re-imaged \"gw1\"");
    assert_string_equal(o.u.by, "op-a");
    cor_inc_update_release(&o);
    const char *bad = "{\"id\":\"a1\",\"status\":\"closed\",\"at\":\"2026-11-02T11:00:00Z\"}";
    assert_int_equal(cor_inc_update_parse(bad, strlen(bad), &o, err, sizeof(err)), -1);
    cor_buf_free(&b);
}

/* Records of the updates topic are bounded string by string: past a limit the
 * record is refused, flagged as such (the daemon counts it), and nothing of it
 * is kept; a record at the limits goes through. */
static void test_update_record_limits(void **state)
{
    (void)state;
    char err[256];
    cor_inc_update_owned o;
    char *big = psb_xmalloc(COR_INCSTORE_MAX_UPDATE_RECORD * 2);
    size_t lim[] = {COR_KPI_MAX_ID_LEN, COR_KPI_MAX_ID_LEN, COR_INCSTORE_MAX_NOTE,
                    COR_KPI_MAX_ID_LEN};
    for (size_t f = 0; f < 4; f++) { /* id, by, note, organization.id */
        for (size_t extra = 0; extra <= 1; extra++) {
            size_t n = lim[f] + extra;
            char *v = psb_xmalloc(n + 1);
            memset(v, 'x', n);
            v[n] = '\0';
            snprintf(big, COR_INCSTORE_MAX_UPDATE_RECORD * 2,
                     "{\"id\":\"%s\",\"organization\":{\"id\":\"%s\"},\"status\":\"resolved\","
                     "\"at\":\"2026-11-02T11:00:00Z\",\"note\":\"%s\",\"by\":\"%s\"}",
                     f == 0 ? v : "a1", f == 3 ? v : "op-a", f == 2 ? v : "n", f == 1 ? v : "op-a");
            free(v);
            int rc = cor_inc_update_parse(big, strlen(big), &o, err, sizeof(err));
            if (extra) {
                assert_int_equal(rc, -1);
                assert_true(o.over_limit);
                assert_null(o.id);
                assert_non_null(strstr(err, "longer than"));
            } else {
                assert_int_equal(rc, 0);
                assert_false(o.over_limit);
                cor_inc_update_release(&o);
            }
        }
    }
    /* The whole record, whatever it holds. */
    memset(big, ' ', COR_INCSTORE_MAX_UPDATE_RECORD + 1);
    static const char head[] =
        "{\"id\":\"a1\",\"status\":\"resolved\",\"at\":\"2026-11-02T11:00:00Z\"}";
    memcpy(big, head, sizeof(head) - 1);
    assert_int_equal(
        cor_inc_update_parse(big, COR_INCSTORE_MAX_UPDATE_RECORD + 1, &o, err, sizeof(err)), -1);
    assert_true(o.over_limit);
    /* Invalid UTF-8 (an overlong sequence) would come back as U+FFFD when the
     * record is written again, longer: refused (the fuzzer found it). */
    const char *bad8 = "{\"id\":\"a1\",\"status\":\"resolved\",\"at\":\"2026-11-02T11:00:00Z\","
                       "\"note\":\"ok \xc1\x95\"}";
    assert_int_equal(cor_inc_update_parse(bad8, strlen(bad8), &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "note is not valid UTF-8"));
    /* Malformed is refused, not flagged as past a limit. */
    const char *bad = "{\"id\":\"a1\",\"status\":\"resolved\",\"at\":\"2026-11-02T11:00:00Z\","
                      "\"received_at\":\"yesterday\"}";
    assert_int_equal(cor_inc_update_parse(bad, strlen(bad), &o, err, sizeof(err)), -1);
    assert_false(o.over_limit);
    free(big);
    /* Incident records: rule.id and category are bounded too. */
    cor_incstore *s = cor_incstore_new();
    char cat[COR_KPI_MAX_ID_LEN + 2];
    memset(cat, 'c', sizeof(cat) - 1);
    cat[sizeof(cat) - 1] = '\0';
    char *r = record("z1", "op-a", "high", cat, "2026-11-02T10:00:00.000Z");
    assert_int_equal(cor_incstore_add_json(s, r, strlen(r), NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at most"));
    free(r);
    cat[COR_KPI_MAX_ID_LEN] = '\0';
    r = record("z1", "op-a", "high", cat, "2026-11-02T10:00:00.000Z");
    assert_int_equal(cor_incstore_add_json(s, r, strlen(r), NULL, err, sizeof(err)), 1);
    free(r);
    cor_incstore_free(s);
}

static size_t query(cor_incstore *s, const cor_inc_query *q, char ids[][8], size_t *total)
{
    cor_buf b = {0};
    cor_incstore_query_json(s, q, &b);
    cor_buf_putc(&b, '\0');
    yajl_val r = yajl_tree_parse(b.p, NULL, 0);
    assert_non_null(r);
    const char *p_t[] = {"total", NULL}, *p_i[] = {"incidents", NULL}, *p_id[] = {"id", NULL};
    *total = (size_t)YAJL_GET_INTEGER(yajl_tree_get(r, p_t, yajl_t_number));
    yajl_val a = yajl_tree_get(r, p_i, yajl_t_array);
    size_t n = a->u.array.len;
    for (size_t i = 0; i < n; i++)
        snprintf(ids[i], 8, "%s",
                 YAJL_GET_STRING(yajl_tree_get(a->u.array.values[i], p_id, yajl_t_string)));
    yajl_tree_free(r);
    cor_buf_free(&b);
    return n;
}

static void test_filters_and_pages(void **state)
{
    (void)state;
    cor_incstore *s = store3();
    char err[200], ids[8][8];
    size_t total;
    cor_inc_query q;
    cor_inc_query_init(&q);
    assert_int_equal(query(s, &q, ids, &total), 3);
    /* Newest first_seen first. */
    assert_string_equal(ids[0], "b1");
    assert_string_equal(ids[1], "a1");
    assert_string_equal(ids[2], "a2");
    q.op = "op-a";
    assert_int_equal(query(s, &q, ids, &total), 2);
    q.limit = 1;
    q.offset = 1;
    assert_int_equal(query(s, &q, ids, &total), 1);
    assert_int_equal(total, 2);
    assert_string_equal(ids[0], "a2");
    cor_inc_query_init(&q);
    q.category = "intrusion-attempts";
    assert_int_equal(query(s, &q, ids, &total), 1);
    assert_string_equal(ids[0], "a1");
    q.category = "intrusion"; /* a class is matched whole, not as a prefix */
    assert_int_equal(query(s, &q, ids, &total), 0);
    cor_inc_query_init(&q);
    q.severity = 4;
    assert_int_equal(query(s, &q, ids, &total), 1);
    assert_string_equal(ids[0], "b1");
    cor_inc_query_init(&q);
    q.from = T("2026-11-02T00:00:00Z");
    q.to = T("2026-11-03T00:00:00Z");
    assert_int_equal(query(s, &q, ids, &total), 1);
    assert_string_equal(ids[0], "a1");
    assert_int_equal(upd(s, "a2", "resolved", "2026-11-01T11:00:00Z", err), 0);
    assert_int_equal(upd(s, "b1", "reported", "2026-11-03T11:00:00Z", err), 0);
    cor_inc_query_init(&q);
    q.open_only = true;
    assert_int_equal(query(s, &q, ids, &total), 2);
    q.open_only = false;
    q.status = COR_INC_RESOLVED;
    assert_int_equal(query(s, &q, ids, &total), 1);
    assert_string_equal(ids[0], "a2");
    q.status = COR_INC_REPORTED;
    assert_int_equal(query(s, &q, ids, &total), 1);
    assert_string_equal(ids[0], "b1");
    cor_incstore_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle_valid_path),
        cmocka_unit_test(test_invalid_transitions_have_reasons),
        cmocka_unit_test(test_bad_records_refused),
        cmocka_unit_test(test_update_record_round_trip),
        cmocka_unit_test(test_update_record_limits),
        cmocka_unit_test(test_filters_and_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
