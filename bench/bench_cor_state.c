/* bench_cor_state.c -- the correlator engine's memory over a long replay, run as the
 * daemon runs it: events in, incidents taken as they are raised, and taken ones whose
 * suppress time has passed forgotten (cor_engine_take/cor_engine_forget), so what
 * stays is the window state alone. Prints the resident set (VmRSS) and the groups
 * held every hour of event time, and the peak (VmHWM) at the end.
 *
 * Usage: bench_cor_state RULES LOG [RECEIVED_AT]
 *   RECEIVED_AT (default 2026-12-31T00:00:00Z) fixes RFC 3164's missing year. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cor_engine.h"
#include "pasban/event.h"
#include "pasban/parse.h"
#include "pasban/util.h"

/* A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), or -1. */
static long status_kb(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kb = -1;
    size_t n = strlen(name);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_cor_state RULES LOG [RECEIVED_AT]\n");
        return 2;
    }
    int64_t received;
    const char *at = argc > 3 ? argv[3] : "2026-12-31T00:00:00Z";
    if (psb_parse_rfc3339(at, strlen(at), &received) != 0) {
        fprintf(stderr, "bench_cor_state: bad time %s\n", at);
        return 2;
    }
    cor_load_opts lo = {stderr, false};
    cor_ruleset *rs = cor_ruleset_load(argv[1], &lo);
    FILE *in = fopen(argv[2], "r");
    if (!rs || !in) {
        fprintf(stderr, "bench_cor_state: cannot read %s\n", rs ? argv[2] : argv[1]);
        return 1;
    }
    cor_engine_opts eo;
    memset(&eo, 0, sizeof(eo));
    eo.max_groups = 4000000;
    cor_engine *e = cor_engine_new(rs, &eo);
    psb_event *ev = psb_event_new();
    psb_parse_opts po;
    memset(&po, 0, sizeof(po));
    po.format = PSB_FORMAT_AUTO;
    po.received_ms = received;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long long events = 0, incidents = 0;
    int64_t next_report = INT64_MIN;
    long start_kb = status_kb("VmRSS");
    printf("%-22s %12s %10s %10s %11s\n", "event time", "events", "groups", "incidents",
           "VmRSS MiB");
    while ((len = getline(&line, &cap, in)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        psb_parse(&po, line, (size_t)len, ev);
        cor_engine_process(e, ev);
        events++;
        if (events % 1024 == 0) {
            cor_incident *const *inc;
            incidents += cor_engine_take(e, &inc);
            cor_engine_forget(e);
        }
        int64_t w = cor_engine_watermark(e);
        if (next_report == INT64_MIN)
            next_report = w - w % 3600000 + 3600000;
        if (w >= next_report) {
            char t[PSB_TIME_BUFSZ];
            t[psb_format_time_ms(next_report, t)] = '\0';
            printf("%-22s %12llu %10zu %10llu %11.1f\n", t, events, cor_engine_groups(e),
                   incidents, (double)status_kb("VmRSS") / 1024);
            fflush(stdout);
            next_report += 3600000;
        }
    }
    printf("events %llu, incidents %llu; VmRSS at start %.1f MiB, at end %.1f MiB, peak "
           "(VmHWM) %.1f MiB\n",
           events, incidents, (double)start_kb / 1024, (double)status_kb("VmRSS") / 1024,
           (double)status_kb("VmHWM") / 1024);
    free(line);
    fclose(in);
    psb_event_free(ev);
    cor_engine_free(e);
    cor_ruleset_free(rs);
    return 0;
}
