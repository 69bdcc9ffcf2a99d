/* KPI engine: numbers recomputed here from a hand-made month of incidents and
 * updates must equal the engine's; outputs are deterministic and well formed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "cor_kpi.h"
#include "pasban/event.h"
#include "pasban/util.h"

static int64_t T(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(psb_parse_rfc3339(s, strlen(s), &ms), 0);
    return ms;
}

static const char config_text[] =
    "// the task force's configuration\n"
    "{\"kpi\": {\"sla\": {\"critical\": \"4h\", \"high\": \"24h\"},\n"
    "  \"report_window\": \"24h\",\n"
    "  \"targets\": {\"resolved_within_sla_pct\": \">= 90\"},\n"
    "  \"operators\": {\n"
    "    \"op-a\": {\"sources\": [\"gw1\", \"FW1\", \"aaa1\", \"vpn1\"],\n"
    "               \"targets\": {\"coverage_pct\": \">= 75\", \"mttd_s\": \"<= 900\"}},\n"
    "    \"op-c\": {\"sources\": [\"core1\"]}}}}\n";

/* The hand-made month. Times in minutes after 2026-11-10T00:00Z. */
typedef struct hinc {
    const char *id, *op, *rule;
    int sev;
    const char *cat;
    int first, detected;                   /* minutes */
    int ack, contain, resolve, fp, report; /* minutes, -1 none */
} hinc;

static const hinc incs[] = {
    {"i01", "op-a", "SSH-1", 3, "intrusion-attempts/login-attempts", 0, 2, 10, 30, 200, -1, 300},
    {"i02", "op-a", "SSH-1", 3, "intrusion-attempts/login-attempts", 60, 75, 80, -1, 2000, -1,
     2000},
    {"i03", "op-a", "SSH-1", 3, "intrusion-attempts/login-attempts", 100, 101, -1, -1, -1, 150, -1},
    {"i04", "op-a", "SCAN-1", 1, "information-gathering/scanner", 500, 530, 600, -1, 700, -1, -1},
    {"i05", "op-a", "MAL-1", 4, "malicious-code/c2", 1000, 1003, 1010, 1020, 1100, -1, 1200},
    {"i06", "op-a", "MAL-1", 4, "malicious-code/c2", 3000, 3060, -1, -1, -1, -1, -1},
    {"i07", "op-a", "DOS-1", 2, "availability/ddos", 5000, 5000, 5005, 5010, 9000, -1, -1},
    {"i08", "op-a", "ODD-1", 0, "weird-class/x", 7000, 7010, -1, -1, -1, 7020, -1},
    {"i09", "op-b", "SSH-1", 3, "intrusion-attempts/login-attempts", 40, 41, 45, -1, 100, -1, 120},
    /* October, for the change since the previous period. */
    {"i10", "op-a", "SSH-1", 3, "intrusion-attempts/login-attempts", -20000, -19990, -19980, -1,
     -19900, -1, -19800},
};
#define N_INCS (sizeof(incs) / sizeof(incs[0]))

static int64_t at(int min)
{
    return T("2026-11-10T00:00:00Z") + (int64_t)min * 60000;
}

static cor_kpi *build(void)
{
    char err[256];
    cor_kpi_config *c =
        cor_kpi_config_parse(config_text, sizeof(config_text) - 1, err, sizeof(err));
    assert_non_null(c);
    cor_kpi *k = cor_kpi_new(c);
    /* October: every designated source of op-a reports on the last day. */
    const char *src[] = {"gw1", "fw1", "aaa1", "vpn1"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(cor_kpi_on_event(k, "op-a", T("2026-10-31T12:00:00Z"), src[i], false), 0);
    /* November. */
    for (int i = 0; i < 100; i++)
        cor_kpi_on_event(k, "op-a", T("2026-11-05T00:00:00Z") + i * 1000, "gw1", i % 10 == 0);
    cor_kpi_on_event(k, "op-a", T("2026-11-28T09:00:00Z"), "vpn1", false);
    cor_kpi_on_event(k, "op-a", T("2026-11-29T19:00:00Z"), "aaa1", false);
    cor_kpi_on_event(k, "op-a", T("2026-11-29T21:00:00Z"), "Fw1", false);
    cor_kpi_on_event(k, "op-a", T("2026-11-30T10:00:00Z"), "gw1", false);
    cor_kpi_on_event(k, "op-a", T("2026-11-30T10:00:00Z"), "not-designated", false);
    cor_kpi_on_event(k, "op-b", T("2026-11-30T20:00:00Z"), "x", true); /* the clock */
    for (size_t i = 0; i < N_INCS; i++) {
        cor_kpi_incident in = {incs[i].id,  incs[i].op,        incs[i].rule,        incs[i].sev,
                               incs[i].cat, at(incs[i].first), at(incs[i].detected)};
        assert_int_equal(cor_kpi_on_incident(k, &in), 0);
        if (incs[i].ack >= 0)
            assert_int_equal(cor_kpi_on_update(k, incs[i].id, "acknowledged", at(incs[i].ack)), 0);
        if (incs[i].contain >= 0)
            cor_kpi_on_update(k, incs[i].id, "contained", at(incs[i].contain));
        if (incs[i].fp >= 0)
            cor_kpi_on_update(k, incs[i].id, "false_positive", at(incs[i].fp));
        if (incs[i].resolve >= 0)
            cor_kpi_on_update(k, incs[i].id, "resolved", at(incs[i].resolve));
        if (incs[i].report >= 0)
            cor_kpi_on_update(k, incs[i].id, "reported", at(incs[i].report));
    }
    cor_kpi_on_latency(k, "op-a", T("2026-11-10T00:00:00Z"), 1000);
    for (int i = 0; i < 98; i++)
        cor_kpi_on_latency(k, "op-a", T("2026-11-10T00:00:00Z"), 2000);
    cor_kpi_on_latency(k, "op-a", T("2026-11-10T00:00:00Z"), 500000);
    cor_kpi_on_latency(k, "op-a", T("2026-11-10T00:00:00Z"), 900000);
    return k;
}

/* The definitions of cor_kpi.h, written out again the obvious way. */
static void recompute(const char *op, int from, int to, cor_kpi_values *v)
{
    static const int64_t sla_min[] = {7 * 1440, 7 * 1440, 3 * 1440, 1440, 240};
    double n = 0, fp = 0, open = 0, d = 0, a = 0, na = 0, c = 0, nc = 0, r = 0, nr = 0;
    double real = 0, sla = 0, rep = 0, rep_ok = 0;
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < N_INCS; i++) {
        const hinc *x = &incs[i];
        if (strcmp(x->op, op) != 0 || x->first < from || x->first >= to)
            continue;
        n++;
        d += x->detected - x->first;
        int first_act = -1;
        int acts[] = {x->ack, x->contain, x->resolve, x->fp, x->report};
        for (int j = 0; j < 5; j++)
            if (acts[j] >= 0 && (first_act < 0 || acts[j] < first_act))
                first_act = acts[j];
        if (first_act >= 0) {
            a += first_act - x->detected;
            na++;
        }
        if (x->fp >= 0) {
            fp++;
            continue;
        }
        real++;
        open += x->resolve < 0;
        if (x->contain >= 0) {
            c += x->contain - x->detected;
            nc++;
        }
        if (x->resolve >= 0) {
            r += x->resolve - x->detected;
            nr++;
            sla += x->resolve - x->detected <= sla_min[x->sev];
        }
        if (x->sev >= 3) {
            rep++;
            rep_ok += x->report >= 0 && x->report - x->detected <= 1440;
        }
    }
    v->incidents.v = n;
    v->false_positives.v = fp;
    v->open_incidents.v = open;
    v->mttd_s = (cor_kpi_val){d * 60 / n, n > 0};
    v->mtta_s = (cor_kpi_val){na ? a * 60 / na : 0, na > 0};
    v->mttc_s = (cor_kpi_val){nc ? c * 60 / nc : 0, nc > 0};
    v->mttr_s = (cor_kpi_val){nr ? r * 60 / nr : 0, nr > 0};
    v->resolved_within_sla_pct = (cor_kpi_val){real ? 100 * sla / real : 0, real > 0};
    v->reportable.v = rep;
    v->reported_in_time_pct = (cor_kpi_val){rep ? 100 * rep_ok / rep : 0, rep > 0};
    v->false_positive_pct = (cor_kpi_val){n ? 100 * fp / n : 0, n > 0};
}

static void assert_val(cor_kpi_val got, cor_kpi_val want, const char *name)
{
    if (got.set != want.set || (want.set && (got.v - want.v > 1e-9 || want.v - got.v > 1e-9))) {
        print_error("%s: got %s%g, want %s%g\n", name, got.set ? "" : "unset ", got.v,
                    want.set ? "" : "unset ", want.v);
        fail();
    }
}

static void test_recomputed_from_incidents_and_updates(void **state)
{
    (void)state;
    cor_kpi *k = build();
    cor_kpi_period nov, oct;
    assert_int_equal(cor_kpi_period_parse("2026-11", &nov), 0);
    assert_int_equal(cor_kpi_period_parse("2026-10", &oct), 0);
    const char *ops[] = {"op-a", "op-b"};
    int nov_from = -9 * 1440, nov_to = 21 * 1440; /* Nov 1 and Dec 1 in minutes after Nov 10 */
    for (int i = 0; i < 2; i++) {
        cor_kpi_values got, want;
        assert_int_equal(cor_kpi_compute(k, ops[i], nov, &got), 0);
        recompute(ops[i], nov_from, nov_to, &want);
#define CHECK(f) assert_val(got.f, want.f, #f)
        CHECK(mttd_s);
        CHECK(mtta_s);
        CHECK(mttc_s);
        CHECK(mttr_s);
        CHECK(resolved_within_sla_pct);
        CHECK(reported_in_time_pct);
        CHECK(false_positive_pct);
        assert_int_equal((int)got.incidents.v, (int)want.incidents.v);
        assert_int_equal((int)got.false_positives.v, (int)want.false_positives.v);
        assert_int_equal((int)got.open_incidents.v, (int)want.open_incidents.v);
        assert_int_equal((int)got.reportable.v, (int)want.reportable.v);
    }
    cor_kpi_values a;
    assert_int_equal(cor_kpi_compute(k, "op-a", nov, &a), 0);
    /* By hand too, so a shared misunderstanding cannot hide: op-a in November has
     * 8 incidents; MTTD = (2+15+1+30+3+60+0+10)/8 min = 15.125 min. */
    assert_int_equal((int)a.incidents.v, 8);
    assert_val(a.mttd_s, (cor_kpi_val){907.5, true}, "mttd by hand");
    assert_int_equal((int)a.incidents_high.v, 3);
    assert_int_equal((int)a.incidents_critical.v, 2);
    assert_int_equal((int)a.incidents_info.v, 1);
    assert_int_equal((int)a.cat_intrusion_attempts.v, 3);
    assert_int_equal((int)a.cat_malicious_code.v, 2);
    assert_int_equal((int)a.cat_other.v, 1); /* "weird-class" is not an RSIT class */
    /* Reportable: i01 (in time), i02 (1925 min: late), i05 (in time), i06 (never). */
    assert_val(a.reported_in_time_pct, (cor_kpi_val){50, true}, "reported by hand");
    /* Events and coverage. */
    assert_int_equal((int)a.events_ingested.v, 105);
    assert_int_equal((int)a.parse_failures.v, 10);
    assert_int_equal((int)a.sources_designated.v, 4);
    /* Clock 2026-11-30T20:00: gw1 (30th 10:00) and fw1 (29th 21:00) are in the last
     * 24 h; aaa1 (29th 19:00) and vpn1 (28th) are not. */
    assert_int_equal((int)a.sources_reporting.v, 2);
    assert_val(a.coverage_pct, (cor_kpi_val){50, true}, "coverage");
    /* Latency: 101 samples; the median is 2 ms, p99 the 100th sample, 0.5 s (within
     * the 6.25 % of the histogram's buckets). */
    assert_true(a.detection_latency_p50_s.v > 0.0019 && a.detection_latency_p50_s.v < 0.0021);
    assert_true(a.detection_latency_p99_s.v > 0.47 && a.detection_latency_p99_s.v < 0.53);

    cor_kpi_values o;
    assert_int_equal(cor_kpi_compute(k, "op-a", oct, &o), 0);
    assert_val(o.coverage_pct, (cor_kpi_val){100, true}, "october coverage");
    assert_int_equal((int)o.incidents.v, 1);
    /* op-c is configured but silent: every source missing. */
    cor_kpi_values c;
    assert_int_equal(cor_kpi_compute(k, "op-c", nov, &c), 0);
    assert_val(c.coverage_pct, (cor_kpi_val){0, true}, "silent operator");
    assert_false(c.mttd_s.set);
    assert_int_equal(cor_kpi_compute(k, "nobody", nov, &c), -1);
    /* December has not begun in event time: no coverage yet, rather than 0 %. */
    cor_kpi_period dec;
    cor_kpi_period_parse("2026-12", &dec);
    assert_int_equal(cor_kpi_compute(k, "op-a", dec, &c), 0);
    assert_false(c.coverage_pct.set);
    cor_kpi_free(k);
}

static void test_daily_periods(void **state)
{
    (void)state;
    cor_kpi *k = build();
    cor_kpi_period day;
    assert_int_equal(cor_kpi_period_parse("2026-11-10", &day), 0);
    cor_kpi_values got, want;
    assert_int_equal(cor_kpi_compute(k, "op-a", day, &got), 0);
    recompute("op-a", 0, 1440, &want);
    assert_int_equal((int)got.incidents.v, (int)want.incidents.v);
    assert_val(got.mttr_s, want.mttr_s, "daily mttr");
    cor_buf b = {0};
    cor_kpi_period nov;
    cor_kpi_period_parse("2026-11", &nov);
    assert_int_equal(cor_kpi_write_days_json(k, "op-a", nov, &b), 0);
    cor_buf_putc(&b, '\0');
    yajl_val root = yajl_tree_parse(b.p, NULL, 0);
    assert_non_null(root);
    const char *p_days[] = {"days", NULL};
    yajl_val days = yajl_tree_get(root, p_days, yajl_t_array);
    assert_non_null(days);
    assert_int_equal(days->u.array.len, 30);
    const char *p_inc[] = {"kpi", "incidents", NULL};
    long total = 0;
    for (size_t i = 0; i < 30; i++)
        total +=
            (long)YAJL_GET_INTEGER(yajl_tree_get(days->u.array.values[i], p_inc, yajl_t_number));
    assert_int_equal(total, 8); /* the days add up to the month */
    yajl_tree_free(root);
    cor_buf_free(&b);
    cor_kpi_free(k);
}

static void test_record_targets_and_change(void **state)
{
    (void)state;
    cor_kpi *k = build();
    cor_kpi_period nov;
    cor_kpi_period_parse("2026-11", &nov);
    cor_buf b = {0};
    assert_int_equal(cor_kpi_write_json(k, "op-a", nov, &b), 0);
    cor_buf_putc(&b, '\0');
    char err[128];
    yajl_val r = yajl_tree_parse(b.p, err, sizeof(err));
    assert_non_null(r);
    const char *p_cov[] = {"targets", "coverage_pct", "met", NULL};
    assert_true(YAJL_IS_FALSE(yajl_tree_get(r, p_cov, yajl_t_any))); /* 50 < 75 */
    const char *p_covch[] = {"targets", "coverage_pct", "change", NULL};
    assert_int_equal((int)YAJL_GET_DOUBLE(yajl_tree_get(r, p_covch, yajl_t_number)), -50);
    const char *p_prev[] = {"targets", "coverage_pct", "previous_met", NULL};
    assert_true(YAJL_IS_TRUE(yajl_tree_get(r, p_prev, yajl_t_any)));
    const char *p_mttd[] = {"targets", "mttd_s", "met", NULL};
    assert_true(YAJL_IS_FALSE(yajl_tree_get(r, p_mttd, yajl_t_any))); /* 907.5 > 900 */
    /* The default target applies to op-a too. */
    const char *p_sla[] = {"targets", "resolved_within_sla_pct", "target", NULL};
    assert_string_equal(YAJL_GET_STRING(yajl_tree_get(r, p_sla, yajl_t_string)), ">= 90");
    const char *p_fp[] = {"false_positives_by_rule", NULL};
    yajl_val fp = yajl_tree_get(r, p_fp, yajl_t_array);
    assert_non_null(fp);
    /* Rules in byte order: DOS-1, MAL-1, ODD-1, SCAN-1, SSH-1; SSH-1 has 1 of 3. */
    assert_int_equal(fp->u.array.len, 5);
    const char *p_rule[] = {"rule", NULL}, *p_rate[] = {"rate_pct", NULL};
    assert_string_equal(
        YAJL_GET_STRING(yajl_tree_get(fp->u.array.values[4], p_rule, yajl_t_string)), "SSH-1");
    double rate = YAJL_GET_DOUBLE(yajl_tree_get(fp->u.array.values[4], p_rate, yajl_t_number));
    assert_true(rate > 33.32 && rate < 33.34);
    const char *p_ch[] = {"change", "incidents", NULL};
    assert_int_equal(YAJL_GET_INTEGER(yajl_tree_get(r, p_ch, yajl_t_number)), 7); /* 8 - 1 */
    const char *p_null[] = {"kpi", "mttc_s", NULL};
    assert_non_null(yajl_tree_get(r, p_null, yajl_t_any));
    yajl_tree_free(r);
    cor_buf_free(&b);
    cor_kpi_free(k);
}

static void test_same_inputs_same_bytes(void **state)
{
    (void)state;
    cor_kpi *k1 = build(), *k2 = build();
    cor_kpi_period nov;
    cor_kpi_period_parse("2026-11", &nov);
    cor_buf a = {0}, b = {0};
    cor_kpi_write_json_all(k1, nov, &a);
    cor_kpi_write_csv(k1, nov, NULL, &a);
    cor_kpi_write_prometheus(k1, &a);
    cor_kpi_write_json_all(k2, nov, &b);
    cor_kpi_write_csv(k2, nov, NULL, &b);
    cor_kpi_write_prometheus(k2, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.p, b.p, a.len);
    /* Replaying an incident twice changes nothing. */
    cor_kpi_incident again = {"i01", "op-a", "SSH-1", 3, "intrusion-attempts/x", at(0), at(2)};
    assert_int_equal(cor_kpi_on_incident(k2, &again), 0);
    b.len = 0;
    cor_kpi_write_json_all(k2, nov, &b);
    assert_memory_equal(a.p, b.p, b.len);
    cor_buf_free(&a);
    cor_buf_free(&b);
    cor_kpi_free(k1);
    cor_kpi_free(k2);
}

/* The sheet: RFC 4180 rows with as many cells as the header, CRLF, quoting. */
static size_t csv_cells(const char *line, size_t len)
{
    size_t cells = 1;
    int q = 0;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '"')
            q = !q;
        else if (line[i] == ',' && !q)
            cells++;
    }
    assert_int_equal(q, 0);
    return cells;
}

static void test_csv_opens_as_a_sheet(void **state)
{
    (void)state;
    cor_kpi *k = build();
    cor_kpi_period nov;
    cor_kpi_period_parse("2026-11", &nov);
    cor_kpi_on_event(k, "op,\"quoted\"", T("2026-11-30T00:00:00Z"), NULL, false);
    cor_buf b = {0};
    cor_kpi_write_csv(k, nov, NULL, &b);
    cor_buf_putc(&b, '\0');
    assert_true(strncmp(b.p, "operator,period,events_ingested,", 32) == 0);
    size_t rows = 0, header = 0;
    for (char *p = b.p; *p;) {
        char *e = strstr(p, "\r\n");
        assert_non_null(e);
        size_t cells = csv_cells(p, (size_t)(e - p));
        if (rows == 0)
            header = cells;
        assert_int_equal(cells, header);
        rows++;
        p = e + 2;
    }
    assert_int_equal(rows, 1 + 4); /* op,"quoted", op-a, op-b, op-c */
    assert_non_null(strstr(b.p, "\r\n\"op,\"\"quoted\"\"\",2026-11,1,"));
    assert_non_null(strstr(b.p, "\r\nop-a,2026-11,105,10,4,2,50.00,8,1,1,1,3,2,"));
    assert_non_null(
        strstr(b.p, ",3,0,coverage_pct >= 75; mttd_s <= 900; resolved_within_sla_pct >= 90,"));
    cor_buf_free(&b);
    cor_kpi_free(k);
}

static void test_prometheus_text(void **state)
{
    (void)state;
    cor_kpi *k = build();
    cor_buf b = {0};
    cor_kpi_write_prometheus(k, &b);
    cor_buf_putc(&b, '\0');
    assert_non_null(
        strstr(b.p, "# TYPE pasban_kpi_coverage_percent gauge\n"
                    "pasban_kpi_coverage_percent{operator=\"op-a\",period=\"2026-11\"} 50.00\n"));
    assert_non_null(strstr(b.p,
                           "pasban_kpi_incidents_by_severity{operator=\"op-a\",period=\"2026-11\","
                           "severity=\"critical\"} 2\n"));
    assert_non_null(strstr(b.p, "pasban_kpi_events_total{operator=\"op-b\"} 1\n"));
    /* promtool, when installed (package prometheus), must accept it. */
    if (access("/usr/bin/promtool", X_OK) == 0) {
        char path[] = "/tmp/test_kpi_metrics_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, b.p, b.len - 1), (ssize_t)(b.len - 1));
        close(fd);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
        int rc = system(cmd);
        unlink(path);
        assert_int_equal(rc, 0);
    }
    cor_buf_free(&b);
    cor_kpi_free(k);
}

static void test_config_errors_and_periods(void **state)
{
    (void)state;
    char err[256];
    const char *bad[] = {
        "{\"targets\": {\"no_such_kpi\": \">= 1\"}}",
        "{\"targets\": {\"coverage_pct\": \"95\"}}",
        "{\"sla\": {\"urgent\": \"4h\"}}",
        "{\"sla\": {\"high\": \"soon\"}}",
        "{\"operators\": {\"a\": {\"sources\": \"gw1\"}}}",
        "{\"report_min_severity\": \"huge\"}",
        "{\"operators\": ",
        /* Found by fuzz_kpi_config: an infinite target was written as `inf` in the
         * KPI record, which is not JSON. */
        "{\"targets\": {\"mttr_s\": \"== 1E4400\"}}",
        "{\"targets\": {\"coverage_pct\": \">= inf\"}}",
        "{\"targets\": {\"coverage_pct\": \">= nan\"}}",
        /* Found by fuzz_kpi_config: seconds * 1000 overflowed int64 (undefined). */
        "{\"sla\": {\"high\": 4444444444444444444}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_null(cor_kpi_config_parse(bad[i], strlen(bad[i]), err, sizeof(err)));
        assert_true(err[0] != '\0');
    }
    cor_kpi_period p;
    char buf[16];
    assert_int_equal(cor_kpi_period_parse("2026-13", &p), -1);
    assert_int_equal(cor_kpi_period_parse("2026-02-29", &p), -1);
    assert_int_equal(cor_kpi_period_parse("2026-1", &p), -1);
    assert_int_equal(cor_kpi_period_parse("2026-01x", &p), -1);
    assert_int_equal(cor_kpi_period_parse("2026-01", &p), 0);
    cor_kpi_period_format(cor_kpi_period_prev(p), buf);
    assert_string_equal(buf, "2025-12");
    assert_int_equal(cor_kpi_period_parse("2024-03-01", &p), 0);
    cor_kpi_period_format(cor_kpi_period_prev(p), buf);
    assert_string_equal(buf, "2024-02-29");
    /* Defaults: critical 4 h. An incident resolved in 4 h 1 min misses it. */
    cor_kpi *k = cor_kpi_new(NULL);
    cor_kpi_incident in = {"x",
                           "op",
                           "R",
                           4,
                           "availability/dos",
                           T("2026-05-01T00:00:00Z"),
                           T("2026-05-01T00:00:00Z")};
    cor_kpi_on_incident(k, &in);
    assert_int_equal(cor_kpi_n_operators(k), 1);
    uint64_t gen = cor_kpi_generation(k, "op");
    cor_kpi_on_update(k, "x", "resolved", T("2026-05-01T04:01:00Z"));
    assert_true(cor_kpi_generation(k, "op") != gen); /* time to publish again */
    assert_int_equal(cor_kpi_on_update(k, "x", "bogus", T("2026-05-01T04:01:00Z")), -1);
    assert_int_equal(cor_kpi_on_update(k, "y", "resolved", T("2026-05-01T04:01:00Z")), -1);
    cor_kpi_values v;
    cor_kpi_period_parse("2026-05", &p);
    cor_kpi_compute(k, "op", p, &v);
    assert_val(v.resolved_within_sla_pct, (cor_kpi_val){0, true}, "default sla");
    assert_int_equal(cor_kpi_on_event(k, "op", -5, "h", false), -1);
    cor_kpi_free(k);
}

/* docker/grafana-dashboard.json queries only metrics that /metrics has. */
static void test_grafana_dashboard_names_exist(void **state)
{
    (void)state;
    FILE *fp = fopen(PASBAN_SOURCE_DIR "/docker/grafana-dashboard.json", "rb");
    assert_non_null(fp);
    static char dash[1 << 17];
    size_t n = fread(dash, 1, sizeof(dash) - 1, fp);
    fclose(fp);
    dash[n] = '\0';
    cor_kpi *k = build();
    cor_buf b = {0};
    cor_kpi_write_prometheus(k, &b);
    cor_buf_putc(&b, '\0');
    size_t names = 0;
    for (const char *p = strstr(dash, "pasban_kpi_"); p; p = strstr(p + 1, "pasban_kpi_")) {
        char name[128], line[136];
        size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        assert_true(len < sizeof(name));
        memcpy(name, p, len);
        name[len] = '\0';
        snprintf(line, sizeof(line), "\n%s{", name);
        if (!strstr(b.p, line))
            print_error("%s is not in /metrics\n", name);
        assert_non_null(strstr(b.p, line));
        names++;
    }
    assert_true(names >= 10);
    cor_buf_free(&b);
    cor_kpi_free(k);
}

/* What --replay --kpi calls: events straight from the parser, the report file. */
static void test_psb_events_and_report(void **state)
{
    (void)state;
    char err[256];
    const char cfg[] = "{\"operators\": {\"op-a\": {\"sources\": [\"gw1\", \"10.0.0.9\"]}}}";
    cor_kpi *k = cor_kpi_new(cor_kpi_config_parse(cfg, sizeof(cfg) - 1, err, sizeof(err)));
    psb_event *ev = psb_event_new();
    ev->organization_id = PSB_STR_LIT("op-a");
    ev->hostname = PSB_STR_LIT("GW1");
    ev->timestamp_ms = T("2026-10-31T23:00:00Z");
    assert_int_equal(cor_kpi_on_psb_event(k, ev), 0);
    psb_event_reset(ev);
    ev->organization_id = PSB_STR_LIT("op-a");
    ev->observer_ip = PSB_STR_LIT("10.0.0.9"); /* no hostname: the peer address */
    ev->kind = PSB_EVENT_KIND_PIPELINE_ERROR;
    ev->timestamp_ms = T("2026-11-01T01:00:00Z");
    assert_int_equal(cor_kpi_on_psb_event(k, ev), 0);
    psb_event_reset(ev);
    ev->timestamp_ms = T("2026-11-01T02:00:00Z"); /* no operator at all */
    assert_int_equal(cor_kpi_on_psb_event(k, ev), 0);
    psb_event_free(ev);

    cor_kpi_values v;
    cor_kpi_period nov;
    cor_kpi_period_parse("2026-11", &nov);
    assert_int_equal(cor_kpi_compute(k, "op-a", nov, &v), 0);
    assert_int_equal((int)v.events_ingested.v, 1);
    assert_int_equal((int)v.parse_failures.v, 1);
    assert_int_equal((int)v.sources_reporting.v, 2); /* gw1 at 23:00 the day before counts */
    assert_int_equal(cor_kpi_compute(k, "unassigned", nov, &v), 0);
    assert_int_equal((int)v.events_ingested.v, 1);

    cor_buf b = {0};
    cor_kpi_write_report(k, &b);
    cor_buf_putc(&b, '\0');
    assert_true(b.len >= 2 && b.p[b.len - 2] == '\n');
    yajl_val r = yajl_tree_parse(b.p, err, sizeof(err));
    assert_non_null(r);
    const char *p_m[] = {"months", NULL};
    yajl_val months = yajl_tree_get(r, p_m, yajl_t_array);
    assert_int_equal(months->u.array.len, 2); /* October and November */
    const char *p_per[] = {"period", NULL}, *p_rec[] = {"records", NULL},
               *p_days[] = {"days", NULL};
    assert_string_equal(
        YAJL_GET_STRING(yajl_tree_get(months->u.array.values[1], p_per, yajl_t_string)), "2026-11");
    assert_int_equal(yajl_tree_get(months->u.array.values[1], p_rec, yajl_t_array)->u.array.len, 2);
    assert_int_equal(yajl_tree_get(months->u.array.values[1], p_days, yajl_t_array)->u.array.len,
                     2);
    yajl_tree_free(r);
    /* The same replay twice: the same bytes. */
    cor_buf b2 = {0};
    cor_kpi_write_report(k, &b2);
    cor_buf_putc(&b2, '\0');
    assert_string_equal(b.p, b2.p);
    cor_buf_free(&b);
    cor_buf_free(&b2);
    cor_kpi_free(k);
}

/* Two instances, each with one operator's events (its partitions) and every
 * incident: after importing each other's pasban.kpi records both answer alike. */
static void test_scale_out_import(void **state)
{
    (void)state;
    cor_kpi *full = build(), *a = cor_kpi_new(NULL), *b = cor_kpi_new(NULL);
    cor_kpi_period nov;
    cor_kpi_period_parse("2026-11", &nov);
    /* a sees op-a's events only, b op-b's; both see the incidents. */
    cor_kpi_on_event(a, "op-a", T("2026-11-05T00:00:00Z"), "gw1", false);
    cor_kpi_on_event(b, "op-b", T("2026-11-30T20:00:00Z"), "x", true);
    cor_kpi_incident in = {"i01", "op-a", "SSH-1", 3, "intrusion-attempts/x", at(0), at(2)};
    cor_kpi_on_incident(a, &in);
    cor_kpi_on_incident(b, &in);
    assert_true(cor_kpi_has_events(full, "op-a", nov));
    assert_true(cor_kpi_has_events(a, "op-a", nov));
    assert_false(cor_kpi_has_events(b, "op-a", nov));

    /* op-a's record as the full instance computes it, published under op-a/2026-11. */
    cor_buf rec = {0}, got = {0}, csv_full = {0}, csv_b = {0};
    assert_int_equal(cor_kpi_write_json(full, "op-a", nov, &rec), 0);
    assert_int_equal(cor_kpi_import_record(b, "op-a/2026-11", 12, rec.p, rec.len), 0);
    assert_int_equal(cor_kpi_write_json(b, "op-a", nov, &got), 0);
    assert_int_equal(got.len, rec.len);
    assert_memory_equal(got.p, rec.p, rec.len);
    cor_kpi_write_csv(full, nov, "op-a", &csv_full);
    cor_kpi_write_csv(b, nov, "op-a", &csv_b);
    cor_buf_putc(&csv_full, '\0');
    cor_buf_putc(&csv_b, '\0');
    assert_string_equal(csv_b.p, csv_full.p);
    cor_buf m = {0};
    cor_kpi_write_prometheus(b, &m);
    cor_buf_putc(&m, '\0');
    assert_non_null(
        strstr(m.p, "pasban_kpi_coverage_percent{operator=\"op-a\",period=\"2026-11\"} 50.00\n"));
    /* An instance with events of its own keeps its own numbers. */
    assert_int_equal(cor_kpi_import_record(a, "op-a/2026-11", 12, rec.p, rec.len), 0);
    got.len = 0;
    cor_kpi_write_json(a, "op-a", nov, &got);
    assert_false(got.len == rec.len && memcmp(got.p, rec.p, rec.len) == 0);
    /* A key that does not name the record is refused. */
    assert_int_equal(cor_kpi_import_record(b, "op-b/2026-11", 12, rec.p, rec.len), -1);
    assert_int_equal(cor_kpi_import_record(b, "op-a/2026-10", 12, rec.p, rec.len), -1);
    assert_int_equal(cor_kpi_import_record(b, "op-a", 4, rec.p, rec.len), -1);
    /* Found by fuzz_kpi_import: a NUL ended the key early and the rest was ignored. */
    assert_int_equal(cor_kpi_import_record(b, "op-a/2026-11\0x", 14, rec.p, rec.len), -1);
    assert_int_equal(cor_kpi_import_record(b, "op-a\0/2026-11", 13, rec.p, rec.len), -1);
    assert_int_equal(cor_kpi_import_record(b, "op-a/2026-11", 12, "{}", 2), -1);
    cor_buf_free(&rec);
    cor_buf_free(&got);
    cor_buf_free(&csv_full);
    cor_buf_free(&csv_b);
    cor_buf_free(&m);
    cor_kpi_free(full);
    cor_kpi_free(a);
    cor_kpi_free(b);
}

/* Found by fuzz_kpi_import: a count of 1.5e22 in an imported record was
 * converted to long long (undefined behaviour) when the record was written out.
 * Such numbers are written as JSON numbers in exponent form. */
static void test_import_huge_numbers(void **state)
{
    (void)state;
    cor_kpi *a = cor_kpi_new(NULL), *b = cor_kpi_new(NULL);
    cor_kpi_period nov;
    cor_kpi_period_parse("2026-11", &nov);
    cor_kpi_on_event(a, "op-a", T("2026-11-05T00:00:00Z"), "gw1", false);
    cor_buf rec = {0}, got = {0};
    assert_int_equal(cor_kpi_write_json(a, "op-a", nov, &rec), 0);
    cor_buf_putc(&rec, '\0');
    char *p = strstr(rec.p, "\"events_ingested\":1,");
    assert_non_null(p);
    char *edited = NULL;
    assert_true(asprintf(&edited, "%.*s\"events_ingested\":1.5e22,%s", (int)(p - rec.p), rec.p,
                         p + strlen("\"events_ingested\":1,")) > 0);
    assert_int_equal(cor_kpi_import_record(b, "op-a/2026-11", 12, edited, strlen(edited)), 0);
    assert_int_equal(cor_kpi_write_json(b, "op-a", nov, &got), 0);
    cor_buf_putc(&got, '\0');
    char *n = strstr(got.p, "\"events_ingested\":");
    assert_non_null(n);
    char *end;
    double v = strtod(n + strlen("\"events_ingested\":"), &end);
    assert_true(v == 1.5e22 && *end == ',');
    free(edited);
    cor_buf_free(&rec);
    cor_buf_free(&got);
    cor_kpi_free(a);
    cor_kpi_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recomputed_from_incidents_and_updates),
        cmocka_unit_test(test_daily_periods),
        cmocka_unit_test(test_record_targets_and_change),
        cmocka_unit_test(test_same_inputs_same_bytes),
        cmocka_unit_test(test_csv_opens_as_a_sheet),
        cmocka_unit_test(test_prometheus_text),
        cmocka_unit_test(test_config_errors_and_periods),
        cmocka_unit_test(test_grafana_dashboard_names_exist),
        cmocka_unit_test(test_psb_events_and_report),
        cmocka_unit_test(test_scale_out_import),
        cmocka_unit_test(test_import_huge_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
