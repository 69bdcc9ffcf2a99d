/* serve_fixture -- the correlator's HTTP side over a fixed month of made-up
 * evidence, for the dashboard test and for looking at the page by hand.
 *
 *   serve_fixture WEB_ROOT [PORT]
 *
 * Listens on 127.0.0.1 (PORT 0 or absent: any free port), prints "PORT n" on
 * stdout once it accepts connections, and runs until SIGTERM or SIGINT.
 * Tokens: "e2e-regulator" (regulator), "e2e-op-a", "e2e-op-b", "e2e-op-c".
 * Everything is computed from constants: the same page every run.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cor_http.h"
#include "pasban/util.h"

static const char config_text[] =
    "{\"sla\": {\"critical\": \"4h\", \"high\": \"24h\", \"medium\": \"72h\", \"low\": \"7d\"},"
    " \"report_window\": \"24h\","
    " \"targets\": {\"coverage_pct\": \">= 95\", \"mttd_s\": \"<= 900\"},"
    " \"operators\": {"
    "  \"op-a\": {\"sources\": [\"gw1\", \"fw1\", \"aaa1\", \"vpn1\"],"
    "            \"targets\": {\"resolved_within_sla_pct\": \">= 90\"}},"
    "  \"op-b\": {\"sources\": [\"core1\", \"core2\", \"core3\"]},"
    "  \"op-c\": {\"sources\": [\"edge1\", \"edge2\"]}}}";

static const char *const sources[3][4] = {{"gw1", "fw1", "aaa1", "vpn1"},
                                          {"core1", "core2", "core3", NULL},
                                          {"edge1", "edge2", NULL, NULL}};
static const char *const ops[3] = {"op-a", "op-b", "op-c"};

static const struct {
    const char *id, *title, *category;
    int sev;
} rules[] = {
    {"PSB-SSH-001", "SSH password brute force", "intrusion-attempts/login-attempts", 3},
    {"PSB-SCAN-001", "Port scan from outside", "information-gathering/scanner", 1},
    {"PSB-C2-001", "Known C2 destination", "malicious-code/c2-server", 4},
    {"PSB-DDOS-001", "SYN flood on the edge", "availability/ddos", 2},
    {"PSB-CFG-001", "Config change outside window", "intrusions/system-compromise", 3},
    {"PSB-GAP-001", "Source went silent", "other/other", 0},
};

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void add_incident(cor_kpi *k, cor_incstore *s, int n, int op, int64_t first, int detect_min)
{
    char rec[1024], id[32], t1[PSB_TIME_BUFSZ], t2[PSB_TIME_BUFSZ], err[128];
    int r = n % 6;
    snprintf(id, sizeof(id), "fx%04d%s", n, ops[op] + 3);
    psb_format_time_ms(first, t1);
    psb_format_time_ms(first + (int64_t)detect_min * 60000, t2);
    snprintf(rec, sizeof(rec),
             "{\"id\":\"%s\",\"rule\":{\"id\":\"%s\",\"title\":\"%s\"},\"severity\":\"%s\","
             "\"category\":\"%s\",\"organization\":{\"id\":\"%s\"},\"group\":{\"src\":\"198.51.100."
             "%d\"},"
             "\"first_seen\":\"%s\",\"last_seen\":\"%s\",\"detected_at\":\"%s\",\"count\":%d,"
             "\"suppressed\":0,\"evidence\":[\"fixture event %d\"],\"status\":\"new\"}",
             id, rules[r].id, rules[r].title,
             (const char *[]){"info", "low", "medium", "high", "critical"}[rules[r].sev],
             rules[r].category, ops[op], n % 250, t1, t2, t2, 1 + n % 9, n);
    cor_kpi_incident ki;
    if (cor_incstore_add_json(s, rec, strlen(rec), &ki, err, sizeof(err)) == 1)
        cor_kpi_on_incident(k, &ki);
}

static void update(cor_kpi *k, cor_incstore *s, const char *id, int status, int64_t at)
{
    char err[200];
    cor_inc_update u = {id, status, at, NULL, NULL, 0};
    if (cor_incstore_apply(s, &u, err, sizeof(err)) == 0)
        cor_kpi_on_update(k, id, cor_inc_status_name(status), at);
}

/* October and November 2026 up to the 23rd: events every hour from each source
 * (with gaps), incidents every few hours, most of them handled. */
static void fill(cor_kpi *k, cor_incstore *s)
{
    int64_t start = psb_days_from_civil(2026, 10, 1) * 86400000LL;
    int64_t end = psb_days_from_civil(2026, 11, 23) * 86400000LL + 12 * 3600000LL;
    unsigned lcg = 12345;
    int n = 0;
    for (int64_t t = start; t <= end; t += 3600000LL) {
        for (int o = 0; o < 3; o++)
            for (int i = 0; i < 4 && sources[o][i]; i++) {
                /* op-b's core3 went silent on 20 November; op-c's edge2 never sent. */
                if ((o == 1 && i == 2 && t > end - 3 * 86400000LL) || (o == 2 && i == 1))
                    continue;
                cor_kpi_on_event(k, ops[o], t + i * 1000, sources[o][i],
                                 (t / 3600000LL + i) % 50 == 0);
            }
        lcg = lcg * 1103515245u + 12345u;
        if ((lcg >> 16) % 7 != 0)
            continue;
        int o = (int)((lcg >> 8) % 3);
        int detect = 1 + (int)((lcg >> 4) % (o == 1 ? 40 : 12));
        add_incident(k, s, n, o, t, detect);
        char id[32];
        snprintf(id, sizeof(id), "fx%04d%s", n, ops[o] + 3);
        int64_t det = t + (int64_t)detect * 60000;
        int fate = (int)((lcg >> 20) % 10);
        if (fate < 6 || t < end - 5 * 86400000LL) {
            update(k, s, id, COR_INC_ACKNOWLEDGED, det + (5 + fate * 7) * 60000LL);
            if (fate % 3 == 0)
                update(k, s, id, COR_INC_REPORTED, det + (2 + fate) * 3600000LL);
            if (fate == 9 && o == 2)
                update(k, s, id, COR_INC_FALSE_POSITIVE, det + 2 * 3600000LL);
            else
                update(k, s, id, COR_INC_RESOLVED, det + (3 + fate * (o + 1)) * 3600000LL);
        }
        n++;
    }
    for (int i = 0; i < 100; i++)
        cor_kpi_on_latency(k, ops[i % 3], end - i * 3600000LL,
                           800 + (i * 37) % 2000 + (i == 7 ? 400000 : 0));
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: serve_fixture WEB_ROOT [PORT]\n");
        return 2;
    }
    char err[256];
    cor_kpi_config *cfg =
        cor_kpi_config_parse(config_text, sizeof(config_text) - 1, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "serve_fixture: config: %s\n", err);
        return 1;
    }
    cor_kpi *k = cor_kpi_new(cfg);
    cor_incstore *s = cor_incstore_new();
    cor_http_tokens *tok = cor_http_tokens_new();
    cor_http_tokens_add(tok, "e2e-regulator", NULL);
    cor_http_tokens_add(tok, "e2e-op-a", "op-a");
    cor_http_tokens_add(tok, "e2e-op-b", "op-b");
    cor_http_tokens_add(tok, "e2e-op-c", "op-c");
    fill(k, s);
    struct event_base *base = event_base_new();
    cor_http_config hc = {k, s, tok, argv[1], NULL, NULL, NULL, NULL, 0};
    cor_http *h = cor_http_new(base, "127.0.0.1", (uint16_t)(argc == 3 ? atoi(argv[2]) : 0), &hc);
    int rc = 1;
    if (!h) {
        fprintf(stderr, "serve_fixture: cannot listen\n");
        goto out;
    }
    struct event *sig_term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sig_int = evsignal_new(base, SIGINT, on_signal, base);
    event_add(sig_term, NULL);
    event_add(sig_int, NULL);
    printf("PORT %u\n", cor_http_port(h));
    fflush(stdout);
    event_base_dispatch(base);
    event_free(sig_term);
    event_free(sig_int);
    rc = 0;
out:
    cor_http_free(h);
    event_base_free(base);
    cor_http_tokens_free(tok);
    cor_incstore_free(s);
    cor_kpi_free(k);
    return rc;
}
