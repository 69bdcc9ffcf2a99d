/* bench_ecs.c -- the ECS writer alone: ns per event for a typical RFC 3164 event,
 * an RFC 5424 event with structured data and a JSON-origin event, so bench/parse
 * can tell the writer's share of the --parse cost from the parsers'.
 * Usage: bench_ecs [N] (default 1000000 events per shape). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pasban/ecs.h"
#include "pasban/event.h"
#include "pasban/parse.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fill_3164(psb_event *ev, const char *line)
{
    psb_event_reset(ev);
    ev->original = psb_str_make(line, strlen(line));
    ev->created_ms = 1795000000000;
    ev->timestamp_ms = 1794990000000;
    ev->organization_id = PSB_STR_LIT("op-a");
    ev->priority = 38;
    ev->hostname = psb_str_make(line + 20, 4);
    ev->appname = psb_str_make(line + 25, 4);
    ev->procid = psb_str_make(line + 30, 5);
    ev->message = psb_str_make(line + 38, strlen(line) - 38);
}

static void fill_5424(psb_event *ev, const char *line)
{
    fill_3164(ev, line);
    ev->version = 1;
    ev->msgid = PSB_STR_LIT("ID47");
    ev->sd[0] = (psb_sd_element){PSB_STR_LIT("exampleSDID@32473"), 0, 3};
    ev->sd_params[0] = (psb_kv){PSB_STR_LIT("iut"), PSB_STR_LIT("3")};
    ev->sd_params[1] = (psb_kv){PSB_STR_LIT("eventSource"), PSB_STR_LIT("Application")};
    ev->sd_params[2] = (psb_kv){PSB_STR_LIT("eventID"), PSB_STR_LIT("1011")};
    ev->n_sd = 1;
    ev->n_sd_params = 3;
}

typedef void (*fill_fn)(psb_event *, const char *);

static void run(const char *name, psb_ecs_writer *w, psb_event *ev, long n, fill_fn fill,
                const char *line)
{
    const char *out;
    size_t len, total = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        if (fill)
            fill(ev, line);
        if (psb_ecs_write(w, ev, &out, &len) < 0)
            abort();
        total += len;
    }
    double dt = now_s() - t0;
    printf("%-8s %8.1f ns/event  %6.0f bytes/event\n", name, dt * 1e9 / (double)n,
           (double)total / (double)n);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    const char *line = "<38>Dec 10 06:55:46 gw01 sshd[24200]: Failed password for invalid user "
                       "admin from 203.0.113.7 port 52144 ssh2";
    const char *json =
        "{\"@timestamp\":\"2026-11-23T10:00:00.123Z\",\"message\":\"Failed password "
        "for root from 203.0.113.7 port 22 ssh2\",\"host\":{\"hostname\":\"gw01\"},"
        "\"process\":{\"name\":\"sshd\",\"pid\":24200},\"labels\":{\"site\":\"thr-1\"}}";
    psb_ecs_writer *w = psb_ecs_writer_new();
    psb_event *ev = psb_event_new();
    run("rfc3164", w, ev, n, fill_3164, line);
    run("rfc5424", w, ev, n, fill_5424, line);
    psb_parse_opts opts = {.format = PSB_FORMAT_JSON,
                           .received_ms = 1795000000000,
                           .organization_id = PSB_STR_LIT("op-a")};
    if (psb_parse(&opts, json, strlen(json), ev) < 0) {
        fprintf(stderr, "bench_ecs: JSON sample did not parse\n");
        return 1;
    }
    run("json", w, ev, n, NULL, json);
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        psb_parse(&opts, json, strlen(json), ev);
    printf("%-8s %8.1f ns/event  (psb_parse of the JSON sample)\n", "jsonparse",
           (now_s() - t0) * 1e9 / (double)n);
    psb_event_free(ev);
    psb_ecs_writer_free(w);
    return 0;
}
