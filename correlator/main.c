/* pasban-correlator: command line (design.md, "Command line"). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cor_config.h"
#include "cor_daemon.h"
#include "cor_modes.h"
#include "pasban/util.h"

static const char usage_text[] =
    "Usage:\n"
    "  pasban-correlator --replay --rules PATH [--kpi FILE] [--stats] [OPTIONS] [FILE...]\n"
    "  pasban-correlator --match --rules PATH [OPTIONS] [FILE...]\n"
    "  pasban-correlator --check-rules PATH\n"
    "  pasban-correlator -c FILE [--kafka BROKERS] [--rules PATH] [--http ADDR:PORT]\n"
    "  pasban-correlator --kafka BROKERS --rules PATH [--http ADDR:PORT] [--group ID]\n"
    "                    [--topic-in NAME] [--topic-out NAME] [--topic-updates NAME]\n"
    "                    [--topic-kpi NAME] [--topic-state NAME] [--instance NAME]\n"
    "                    [--kpi-interval S] [--web-root DIR]\n"
    "  pasban-correlator --help | --version\n"
    "\n"
    "Correlates Pasban events with PCRE2 rules into incidents (design.md).\n"
    "\n"
    "Modes:\n"
    "  --replay            Read raw log lines (RFC 5424, RFC 3164, vendor dialects) or\n"
    "                      Pasban event JSONL from FILEs (stdin when none or \"-\"), run\n"
    "                      the rules in event time, and print the incidents as JSONL on\n"
    "                      stdout, ordered by detected_at. The same input and rules give\n"
    "                      byte-identical output.\n"
    "  --match             For each input line print {\"line\": N, \"rules\": [ids]}: the\n"
    "                      rules whose where/unless hold, thresholds ignored. N counts\n"
    "                      every line over all inputs, from 1.\n"
    "  --check-rules PATH  Compile every rule of PATH and run its embedded tests. Prints\n"
    "                      file:line: messages for failures and a summary; exit 1 if any\n"
    "                      rule is refused or any test fails.\n"
    "  -c FILE             The daemon, configured by FILE (JSON with comments; see\n"
    "                      pasban-correlator.conf): \"kafka\" {brokers, group, topics,\n"
    "                      properties (librdkafka, passed through)}, \"rules\", \"http\",\n"
    "                      \"web_root\", \"tokens\" (API bearer tokens: per operator, or\n"
    "                      role regulator), \"kpi\" (SLA per severity, report window,\n"
    "                      designated sources and targets per operator), \"api\"\n"
    "                      {\"at_max_future\": how far past the server's clock an\n"
    "                      update's \"at\" may be, default \"5m\"}. Flags override\n"
    "                      the file. With --replay, only its \"kpi\" section is used.\n"
    "  --kafka BROKERS     The daemon: consume events (Pasban event JSON, or raw lines)\n"
    "                      from pasban.events in consumer group --group (default\n"
    "                      pasban-correlator), produce each incident to pasban.incidents\n"
    "                      (key = incident id, detected_at = wall clock) in Kafka\n"
    "                      transactions that also carry the changed window state (to\n"
    "                      pasban.state) and the consumed offsets: exactly once across\n"
    "                      restarts and rebalances. Reads pasban.incidents,\n"
    "                      pasban.incident-updates and pasban.kpi whole (every instance\n"
    "                      holds every operator's incidents and KPIs) and publishes\n"
    "                      changed KPI records to pasban.kpi (key operator/YYYY-MM).\n"
    "                      SIGHUP reloads the rules: the new set is built aside and\n"
    "                      swapped in whole (the windows of rules kept, by id, carry\n"
    "                      over); a set with a refused rule is not taken and the old\n"
    "                      one stays. SIGTERM or SIGINT: commit, exit 0 (brokers out of\n"
    "                      reach: after ~5 s, the batch left uncommitted and logged;\n"
    "                      its events are read again on the next start).\n"
    "  --http ADDR:PORT    (daemon) Serve the incident and KPI API (/api/incidents,\n"
    "                      /api/kpi, /api/kpi.csv), the dashboard at / and /metrics\n"
    "                      (KPIs per operator; per-rule matches, incidents, suppressed,\n"
    "                      limit errors, late, evicted; events, parse failures, reloads).\n"
    "                      Every /api and /metrics request needs a bearer token of FILE.\n"
    "  --group ID, --topic-in NAME, --topic-out NAME, --topic-updates NAME,\n"
    "  --topic-kpi NAME, --topic-state NAME\n"
    "                      Daemon consumer group and topics (events, incidents, incident\n"
    "                      updates, KPI records, window state).\n"
    "  --instance NAME     (daemon) A name of this instance that stays the same across\n"
    "                      restarts; transactional.id defaults to GROUP/NAME. Default:\n"
    "                      the host name, with the --http port when there is one.\n"
    "  --kpi-interval S    (daemon) Publish changed KPI records at most every S seconds\n"
    "                      (default 10).\n"
    "  --web-root DIR      (daemon) Dashboard files (default: ../share/pasban/web next to\n"
    "                      the program).\n"
    "\n"
    "Options:\n"
    "  --rules PATH        A rule file, or a directory whose *.rules files are loaded in\n"
    "                      byte order of their names.\n"
    "  --kpi FILE          (--replay) Write the KPI report of the replayed period as JSON\n"
    "                      to FILE: every month and day, every operator's KPIs\n"
    "                      (design.md, \"KPIs\"); -c FILE's \"kpi\" section sets SLAs,\n"
    "                      designated sources and targets. Same input, same bytes.\n"
    "  --stats             (--replay) Per-rule counters on stderr: prefilter candidates,\n"
    "                      matches, incidents, suppressed, late, evicted, limit errors,\n"
    "                      regex time; and the events per CPU-second.\n"
    "  --operator ID       organization.id given to raw lines (event JSONL keeps its own).\n"
    "  --received-at TIME  Receive time (RFC 3339) for raw lines: the base of RFC 3164's\n"
    "                      year and of @timestamp when a line has no time. Default: the\n"
    "                      wall clock when the run starts.\n"
    "  --max-groups N      Groups kept per rule (default 100000); past it the oldest is\n"
    "                      evicted and counted.\n"
    "  --max-window N      Events held in one threshold window (default 4096).\n"
    "  --match-limit N     PCRE2 match limit per pattern and subject (default 100000).\n"
    "  --depth-limit N     PCRE2 depth limit (default 5000).\n"
    "  --no-prefilter      Try every rule's patterns on every event (to measure the\n"
    "                      Hyperscan prefilter; results are the same).\n"
    "  -h, --help          This text.\n"
    "  -V, --version       Print the version.\n"
    "\n"
    "Exit status:\n"
    "  0  done (replay/match: every input read; check-rules: every rule loaded and passed)\n"
    "  1  a rule was refused or a test failed (check-rules), the rules or an input could\n"
    "     not be read, or output could not be written\n"
    "  2  bad usage\n";

enum {
    OPT_REPLAY = 256,
    OPT_MATCH,
    OPT_CHECK,
    OPT_RULES,
    OPT_KPI,
    OPT_STATS,
    OPT_OPERATOR,
    OPT_RECEIVED,
    OPT_MAX_GROUPS,
    OPT_MAX_WINDOW,
    OPT_MATCH_LIMIT,
    OPT_DEPTH_LIMIT,
    OPT_NO_PREFILTER,
    OPT_KAFKA,
    OPT_HTTP,
    OPT_GROUP,
    OPT_TOPIC_IN,
    OPT_TOPIC_OUT,
    OPT_TOPIC_UPDATES,
    OPT_TOPIC_KPI,
    OPT_KPI_INTERVAL,
    OPT_WEB_ROOT,
    OPT_TOPIC_STATE,
    OPT_INSTANCE,
};

static int bad_usage(const char *msg, const char *arg)
{
    if (arg)
        fprintf(stderr, "pasban-correlator: %s: %s\n", msg, arg);
    else
        fprintf(stderr, "pasban-correlator: %s\n", msg);
    fprintf(stderr, "Try 'pasban-correlator --help'.\n");
    return 2;
}

static int parse_count(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > max || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static const char *pick(const char *flag, const char *file, const char *dflt)
{
    return flag ? flag : file ? file : dflt;
}

/* Flags override the config file; the file overrides the defaults. */
static int run_daemon(cor_daemon_opts *d, const cor_run_opts *o, const char *config,
                      const char *http)
{
    char err[512];
    cor_config *c = NULL;
    /* First: a SIGHUP while the config, the rules or the brokers are still
     * loading is queued as a reload instead of ending the process. */
    cor_daemon_signals();
    if (config && !(c = cor_config_load(config, err, sizeof(err)))) {
        fprintf(stderr, "pasban-correlator: %s\n", err);
        return 1;
    }
    const cor_config none = {0};
    const cor_config *f = c ? c : &none;
    d->brokers = pick(d->brokers, f->brokers, NULL);
    d->rules = pick(o->rules, f->rules, NULL);
    d->http = pick(http, f->http, NULL);
    d->web_root = pick(d->web_root, f->web_root, NULL);
    d->group_id = pick(d->group_id, f->group, "pasban-correlator");
    d->topic_in = pick(d->topic_in, f->topic_events, "pasban.events");
    d->topic_out = pick(d->topic_out, f->topic_incidents, "pasban.incidents");
    d->topic_updates = pick(d->topic_updates, f->topic_updates, "pasban.incident-updates");
    d->topic_kpi = pick(d->topic_kpi, f->topic_kpi, "pasban.kpi");
    d->topic_state = pick(d->topic_state, f->topic_state, "pasban.state");
    d->instance = pick(d->instance, f->instance, NULL);
    d->config = c;
    d->engine = o->engine;
    d->log = stderr;
    int rc;
    if (!d->brokers || !d->rules)
        rc = bad_usage("the daemon needs Kafka brokers and rules (--kafka BROKERS --rules PATH, "
                       "or -c FILE with \"kafka\": {\"brokers\"} and \"rules\")",
                       NULL);
    else
        rc = cor_daemon_run(d);
    cor_config_free(c);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"replay", no_argument, NULL, OPT_REPLAY},
        {"match", no_argument, NULL, OPT_MATCH},
        {"check-rules", required_argument, NULL, OPT_CHECK},
        {"rules", required_argument, NULL, OPT_RULES},
        {"kpi", required_argument, NULL, OPT_KPI},
        {"stats", no_argument, NULL, OPT_STATS},
        {"operator", required_argument, NULL, OPT_OPERATOR},
        {"received-at", required_argument, NULL, OPT_RECEIVED},
        {"max-groups", required_argument, NULL, OPT_MAX_GROUPS},
        {"max-window", required_argument, NULL, OPT_MAX_WINDOW},
        {"match-limit", required_argument, NULL, OPT_MATCH_LIMIT},
        {"depth-limit", required_argument, NULL, OPT_DEPTH_LIMIT},
        {"no-prefilter", no_argument, NULL, OPT_NO_PREFILTER},
        {"kafka", required_argument, NULL, OPT_KAFKA},
        {"http", required_argument, NULL, OPT_HTTP},
        {"group", required_argument, NULL, OPT_GROUP},
        {"topic-in", required_argument, NULL, OPT_TOPIC_IN},
        {"topic-out", required_argument, NULL, OPT_TOPIC_OUT},
        {"topic-updates", required_argument, NULL, OPT_TOPIC_UPDATES},
        {"topic-kpi", required_argument, NULL, OPT_TOPIC_KPI},
        {"kpi-interval", required_argument, NULL, OPT_KPI_INTERVAL},
        {"web-root", required_argument, NULL, OPT_WEB_ROOT},
        {"topic-state", required_argument, NULL, OPT_TOPIC_STATE},
        {"instance", required_argument, NULL, OPT_INSTANCE},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    cor_run_opts o;
    memset(&o, 0, sizeof(o));
    o.out = stdout;
    o.err = stderr;
    o.received_ms = psb_now_ms();
    int mode = 0, modes = 0;
    bool daemon = false;
    const char *config = NULL, *http = NULL;
    cor_daemon_opts d;
    memset(&d, 0, sizeof(d));
    unsigned long long v;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:hV", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_REPLAY:
        case OPT_MATCH:
            mode = c;
            modes++;
            break;
        case OPT_CHECK:
            mode = c;
            modes++;
            o.rules = optarg;
            break;
        case OPT_RULES:
            if (mode != OPT_CHECK)
                o.rules = optarg;
            break;
        case OPT_KPI:
            o.kpi_file = optarg;
            break;
        case OPT_STATS:
            o.stats = true;
            break;
        case OPT_OPERATOR:
            if (!*optarg || strlen(optarg) > 256)
                return bad_usage("bad operator id", optarg);
            o.operator_id = optarg;
            break;
        case OPT_RECEIVED:
            if (psb_parse_rfc3339(optarg, strlen(optarg), &o.received_ms) != 0)
                return bad_usage("--received-at needs an RFC 3339 time", optarg);
            break;
        case OPT_MAX_GROUPS:
            if (parse_count(optarg, 100000000ULL, &v))
                return bad_usage("bad --max-groups", optarg);
            o.engine.max_groups = (size_t)v;
            break;
        case OPT_MAX_WINDOW:
            if (parse_count(optarg, 10000000ULL, &v))
                return bad_usage("bad --max-window", optarg);
            o.engine.max_window = (size_t)v;
            break;
        case OPT_MATCH_LIMIT:
            if (parse_count(optarg, 4000000000ULL, &v))
                return bad_usage("bad --match-limit", optarg);
            o.engine.match.match_limit = (uint32_t)v;
            break;
        case OPT_DEPTH_LIMIT:
            if (parse_count(optarg, 4000000000ULL, &v))
                return bad_usage("bad --depth-limit", optarg);
            o.engine.match.depth_limit = (uint32_t)v;
            break;
        case OPT_NO_PREFILTER:
            o.no_prefilter = true;
            break;
        case OPT_KAFKA:
            d.brokers = optarg;
            daemon = true;
            break;
        case OPT_HTTP:
            http = optarg;
            daemon = true;
            break;
        case 'c':
            config = optarg;
            break;
        case OPT_GROUP:
            d.group_id = optarg;
            break;
        case OPT_TOPIC_IN:
            d.topic_in = optarg;
            break;
        case OPT_TOPIC_OUT:
            d.topic_out = optarg;
            break;
        case OPT_TOPIC_UPDATES:
            d.topic_updates = optarg;
            break;
        case OPT_TOPIC_KPI:
            d.topic_kpi = optarg;
            break;
        case OPT_KPI_INTERVAL:
            if (parse_count(optarg, 86400, &v))
                return bad_usage("bad --kpi-interval (seconds, 1..86400)", optarg);
            d.kpi_interval_ms = (long)v * 1000;
            break;
        case OPT_WEB_ROOT:
            d.web_root = optarg;
            break;
        case OPT_TOPIC_STATE:
            d.topic_state = optarg;
            break;
        case OPT_INSTANCE:
            d.instance = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            printf("pasban-correlator %s\n", PSB_VERSION);
            return 0;
        case ':':
            return bad_usage("option needs an argument", argv[optind - 1]);
        default:
            return bad_usage("unknown option", argv[optind - 1]);
        }
    }
    if (modes > 1)
        return bad_usage("choose one of --replay, --match, --check-rules", NULL);
    if (modes == 0) {
        if (!daemon && !config)
            return bad_usage("choose a mode: --replay, --match, --check-rules or --kafka", NULL);
        if (optind < argc)
            return bad_usage("the daemon takes no input files", argv[optind]);
        return run_daemon(&d, &o, config, http);
    }
    if (daemon)
        return bad_usage("--kafka and --http belong to the daemon, not to this mode", NULL);
    if (config && (mode != OPT_REPLAY || !o.kpi_file)) /* else it would be ignored */
        return bad_usage("-c FILE goes with the daemon or --replay --kpi", NULL);
    o.config = config;
    if (!o.rules)
        return bad_usage("--rules PATH is required", NULL);
    o.files = argv + optind;
    o.n_files = (size_t)(argc - optind);
    switch (mode) {
    case OPT_REPLAY:
        return cor_mode_replay(&o);
    case OPT_MATCH:
        if (o.kpi_file || o.stats)
            return bad_usage("--kpi and --stats belong to --replay", NULL);
        return cor_mode_match(&o);
    default:
        if (o.n_files)
            return bad_usage("--check-rules takes no input files", argv[optind]);
        if (o.kpi_file || o.stats)
            return bad_usage("--kpi and --stats belong to --replay", NULL);
        return cor_mode_check(&o);
    }
}
