/* daemon.c -- pasban-collector's daemon mode: flags, config, the event loop, signals.
 *
 * One libevent loop runs everything: listeners, connections, HTTP, the Kafka
 * main queue (woken through a pipe) and a slow tick as a safety net. SIGTERM
 * stops accepting, lets Kafka drain for limits.shutdown_timeout, spools what is
 * left and exits 0. SIGHUP reloads the operator maps and tokens.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "col_ctx.h"
#include "col_daemon.h"
#include "pasban/util.h"

#define TICK_MS 100

void col_log(const char *fmt, ...)
{
    char ts[PSB_TIME_BUFSZ];
    va_list ap;
    psb_format_time_ms(psb_now_ms(), ts);
    fprintf(stderr, "%s pasban-collector: ", ts);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void col_log_limited(col_ctx *c, int slot, const char *fmt, ...)
{
    char msg[512];
    int64_t now = psb_now_ms();
    if (now - c->log_last_ms[slot] < 1000) {
        c->log_suppressed[slot]++;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->log_suppressed[slot])
        col_log("%s (and %llu similar messages in the last second)", msg,
                (unsigned long long)c->log_suppressed[slot]);
    else
        col_log("%s", msg);
    c->log_last_ms[slot] = now;
    c->log_suppressed[slot] = 0;
}

col_stats *col_stats_get(col_ctx *c, int input, const char *op)
{
    for (col_stats *s = c->stats; s; s = s->next)
        if (s->input == input && strcmp(s->op, op) == 0)
            return s;
    col_stats *s = psb_xcalloc(1, sizeof *s);
    s->tag = COL_TAG_STATS;
    s->input = input;
    s->op = psb_xstrdup(op);
    s->op_len = strlen(op);
    s->next = c->stats;
    c->stats = s;
    return s;
}

const char *col_op_for_addr(col_ctx *c, const struct sockaddr *sa)
{
    const char *op = col_opmap_by_addr(&c->cfg->opmap, sa);
    return op ? op : c->cfg->default_operator;
}

void col_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    buf[0] = '\0';
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, a->s6_addr + 12, buf, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)len);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: pasban-collector [-c FILE] [options]\n"
            "       pasban-collector --parse [--format auto|rfc5424|rfc3164|json] [--operator ID] "
            "[FILE...]\n"
            "\n"
            "Receives operators' logs (syslog over UDP, TCP and TLS; JSON over HTTP), tags\n"
            "each event with its operator and writes it to Kafka as ECS JSON.\n"
            "\n"
            "  -c, --config FILE    JSON-with-comments configuration (see pasban-collector.conf)\n"
            "      --kafka BROKERS  bootstrap brokers, host:port[,host:port] (default "
            "127.0.0.1:9092)\n"
            "      --topic NAME     Kafka topic (default pasban.events)\n"
            "      --listen URL     input, repeatable: udp://ADDR:PORT, tcp://ADDR:PORT,\n"
            "                       tls://ADDR:PORT, http://ADDR:PORT (replaces the file's list)\n"
            "      --operator ID    default operator for sources no map names\n"
            "      --spool DIR      disk spool for when Kafka cannot take events\n"
            "      --metrics ADDR:PORT  serve /metrics, /healthz and /readyz\n"
            "      --parse          parse framed input to event JSON lines (see above)\n"
            "  -h, --help           this help\n"
            "      --version        print the version\n"
            "\n"
            "Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads operators and tokens.\n");
}

enum { OPT_KAFKA = 256, OPT_TOPIC, OPT_LISTEN, OPT_OPERATOR, OPT_SPOOL, OPT_METRICS };

/* Flags override the file; --listen replaces the file's listeners. */
static int parse_args(int argc, char **argv, col_config *cfg)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"kafka", required_argument, NULL, OPT_KAFKA},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"operator", required_argument, NULL, OPT_OPERATOR},
        {"spool", required_argument, NULL, OPT_SPOOL},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char err[512];
    const char *file = NULL;
    int ch;
    /* First pass: only -c, so the file is read before flags override it. */
    optind = 1;
    opterr = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (ch == 'c')
            file = optarg;
        else if (ch == 'h') {
            usage(stdout);
            return 1;
        } else if (ch == '?')
            goto bad;
    }
    if (optind < argc) {
        fprintf(stderr, "pasban-collector: unexpected argument \"%s\"\n", argv[optind]);
        goto bad;
    }
    if (file && col_config_load(cfg, file, err, sizeof err) != 0) {
        fprintf(stderr, "pasban-collector: %s\n", err);
        return 2;
    }
    int listen_from_flags = 0;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_KAFKA:
            free(cfg->brokers);
            cfg->brokers = psb_xstrdup(optarg);
            break;
        case OPT_TOPIC:
            free(cfg->topic);
            cfg->topic = psb_xstrdup(optarg);
            break;
        case OPT_OPERATOR:
            free(cfg->default_operator);
            cfg->default_operator = psb_xstrdup(optarg);
            break;
        case OPT_SPOOL:
            free(cfg->spool_dir);
            cfg->spool_dir = psb_xstrdup(optarg);
            break;
        case OPT_METRICS:
            free(cfg->metrics_host);
            free(cfg->metrics_port);
            cfg->metrics_host = cfg->metrics_port = NULL;
            if (col_hostport_parse(optarg, &cfg->metrics_host, &cfg->metrics_port) != 0) {
                fprintf(stderr, "pasban-collector: --metrics %s: expected ADDR:PORT\n", optarg);
                goto bad;
            }
            break;
        case OPT_LISTEN:
            if (!listen_from_flags) {
                for (size_t i = 0; i < cfg->n_listen; i++) {
                    free(cfg->listen[i].host);
                    free(cfg->listen[i].port);
                }
                cfg->n_listen = 0;
                listen_from_flags = 1;
            }
            if (cfg->n_listen == COL_MAX_LISTEN) {
                fprintf(stderr, "pasban-collector: at most %d --listen\n", COL_MAX_LISTEN);
                goto bad;
            }
            if (col_listen_parse(optarg, &cfg->listen[cfg->n_listen], err, sizeof err) != 0) {
                fprintf(stderr, "pasban-collector: --listen %s\n", err);
                goto bad;
            }
            cfg->n_listen++;
            break;
        default:
            break;
        }
    }
    if (cfg->n_listen == 0) {
        fprintf(stderr, "pasban-collector: nothing to listen on: give --listen URL or "
                        "\"listen\" in the config\n");
        goto bad;
    }
    if (cfg->conn_buffer < cfg->max_message + 16)
        cfg->conn_buffer = cfg->max_message + 16;
    return 0;
bad:
    fprintf(stderr, "Try 'pasban-collector --help'.\n");
    return 2;
}

/* Stop accepting and give Kafka until the deadline; the tick ends the loop. */
static void begin_stop(col_ctx *c, const char *why)
{
    col_log("%s: no longer accepting; draining for up to %lld ms", why,
            (long long)c->cfg->shutdown_timeout_ms);
    c->stopping = 1;
    c->stop_deadline_ms = psb_now_ms() + c->cfg->shutdown_timeout_ms;
    col_udp_stop(c);
    col_stream_stop(c);
    col_http_stop_accepting(c);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    col_ctx *c = arg;
    (void)fd;
    (void)what;
    col_out_tick(c);
    if (c->kafka_fatal && !c->stopping)
        begin_stop(c, "fatal Kafka producer error");
    if (c->stopping) {
        int idle = rd_kafka_outq_len(c->rk) == 0 && c->http_pending == 0 &&
                   (!c->spool || c->replay_inflight == 0);
        if (idle || psb_now_ms() >= c->stop_deadline_ms)
            event_base_loopexit(c->base, NULL);
    }
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    col_ctx *c = arg;
    (void)what;
    if (c->stopping) {
        col_log("second signal: exiting now");
        c->stop_deadline_ms = 0;
        event_base_loopexit(c->base, NULL);
        return;
    }
    char why[32];
    snprintf(why, sizeof why, "signal %d", (int)sig);
    begin_stop(c, why);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    col_ctx *c = arg;
    char err[512];
    (void)sig;
    (void)what;
    if (!c->cfg->path) {
        col_log("SIGHUP: no config file to reload");
        return;
    }
    col_config *fresh = col_config_new();
    if (col_config_load(fresh, c->cfg->path, err, sizeof err) != 0) {
        col_log("SIGHUP: %s; keeping the running operator maps", err);
    } else {
        /* Connections keep the operator they were given; new ones use the new maps. */
        col_opmap tmp = c->cfg->opmap;
        c->cfg->opmap = fresh->opmap;
        fresh->opmap = tmp;
        col_log("SIGHUP: reloaded %s: %zu operators, %zu networks, %zu tokens, %zu TLS names",
                c->cfg->path, c->cfg->opmap.n_ops, c->cfg->opmap.n_cidrs, c->cfg->opmap.n_tokens,
                c->cfg->opmap.n_tls_names);
    }
    col_config_free(fresh);
}

static int start(col_ctx *c, char *err, size_t errlen)
{
    col_config *cfg = c->cfg;
    if (col_out_start(c, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        const col_listen *l = &cfg->listen[i];
        int rc;
        if (l->input == COL_INPUT_TLS && !c->ssl_ctx && col_tls_setup(c, err, errlen) != 0)
            return -1;
        switch (l->input) {
        case COL_INPUT_UDP:
            rc = col_udp_listen(c, l, err, errlen);
            break;
        case COL_INPUT_HTTP:
            rc = col_http_listen(c, l, err, errlen);
            break;
        default:
            rc = col_stream_listen(c, l, err, errlen);
            break;
        }
        if (rc != 0)
            return -1;
        col_log("listening on %s://%s:%s", col_input_name(l->input), l->host, l->port);
    }
    if (c->http && cfg->opmap.n_tokens == 0)
        col_log("http: no tokens configured: requests without a token are accepted as "
                "operator %s (configure operators.*.tokens to require them)",
                cfg->default_operator);
    if (cfg->metrics_host && col_metrics_listen(c, err, errlen) != 0)
        return -1;
    struct timeval tv = {0, TICK_MS * 1000};
    c->tick_ev = event_new(c->base, -1, EV_PERSIST, on_tick, c);
    event_add(c->tick_ev, &tv);
    c->sig_term = evsignal_new(c->base, SIGTERM, on_term, c);
    c->sig_int = evsignal_new(c->base, SIGINT, on_term, c);
    c->sig_hup = evsignal_new(c->base, SIGHUP, on_hup, c);
    event_add(c->sig_term, NULL);
    event_add(c->sig_int, NULL);
    event_add(c->sig_hup, NULL);
    return 0;
}

static void teardown(col_ctx *c)
{
    if (c->tick_ev)
        event_free(c->tick_ev);
    if (c->sig_term)
        event_free(c->sig_term);
    if (c->sig_int)
        event_free(c->sig_int);
    if (c->sig_hup)
        event_free(c->sig_hup);
    col_udp_stop(c);
    col_stream_stop(c);
    col_http_free(c);
    col_out_stop(c);
    if (c->ssl_ctx)
        SSL_CTX_free(c->ssl_ctx);
    while (c->stats) {
        col_stats *s = c->stats;
        c->stats = s->next;
        free(s->op);
        free(s);
    }
    psb_ecs_writer_free(c->ecs);
    psb_event_free(c->ev);
    if (c->base)
        event_base_free(c->base);
    col_config_free(c->cfg);
}

int col_daemon_main(int argc, char **argv)
{
    char err[512];
    col_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    col_ctx *c = &ctx;
    c->kpipe[0] = c->kpipe[1] = -1;
    c->cfg = col_config_new();
    int rc = parse_args(argc, argv, c->cfg);
    if (rc != 0) {
        col_config_free(c->cfg);
        return rc == 1 ? 0 : rc;
    }
    signal(SIGPIPE, SIG_IGN);
    c->base = event_base_new();
    c->ev = psb_event_new();
    c->ecs = psb_ecs_writer_new();
    if (!c->base) {
        col_log("cannot create the event loop");
        teardown(c);
        return 1;
    }
    if (start(c, err, sizeof err) != 0) {
        col_log("%s", err);
        teardown(c);
        return 1;
    }
    col_log("started: kafka %s, topic %s, default operator %s%s%s", c->cfg->brokers, c->cfg->topic,
            c->cfg->default_operator, c->spool ? ", spool " : "",
            c->spool ? c->cfg->spool_dir : "");
    event_base_dispatch(c->base);
    if (!c->stopping) {
        c->stopping = 1;
        c->stop_deadline_ms = psb_now_ms() + c->cfg->shutdown_timeout_ms;
        col_udp_stop(c);
        col_stream_stop(c);
        col_http_stop_accepting(c);
    }
    /* Whatever Kafka still holds goes to the spool (delivery reports with a
     * purge error land in on_delivery, which spools them). */
    int64_t left = c->stop_deadline_ms - psb_now_ms();
    col_out_drain(c, left > 0 ? left : 0);
    /* Let the HTTP replies that the last delivery reports produced go out. */
    for (int i = 0; i < 10; i++)
        event_base_loop(c->base, EVLOOP_NONBLOCK);
    if (c->spool && col_spool_sync(c->spool) != 0)
        col_log("spool fsync at shutdown failed");
    if (c->spool && col_spool_pending(c->spool))
        col_log("shutdown: %llu events stay in the spool for the next start",
                (unsigned long long)col_spool_pending(c->spool));
    int fatal = c->kafka_fatal;
    col_log("stopped%s", fatal ? " after a fatal Kafka error (exit 1)" : "");
    teardown(c);
    return fatal ? 1 : 0;
}
