/* parse_cmd.c -- `pasban-collector --parse`: framed input to ECS JSON lines.
 *
 * The same framing and parsers as the daemon, over files: each input is read in
 * large blocks and cut into frames in place (RFC 6587 octet counting or LF,
 * detected per frame, exactly as on a TCP connection); every frame becomes one
 * event line on stdout. Nothing is dropped: a framing error becomes a
 * pipeline_error event carrying the bytes that were given up on.
 *
 * It is built for volume (a month of an operator's logs): one event, one writer
 * and one input and one output buffer are reused for every line, so the loop
 * allocates nothing and makes one read and one write per few thousand lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "col_parse_cmd.h"
#include "pasban/ecs.h"
#include "pasban/event.h"
#include "pasban/frame.h"
#include "pasban/parse.h"

#define PARSE_IN_BLOCK (4u << 20)  /* bytes per read(); far above the largest frame */
#define PARSE_OUT_BUFSZ (1u << 20) /* output is written in chunks of about this size */

static const char parse_usage[] =
    "NAME\n"
    "    pasban-collector --parse - convert framed syslog or JSON input to ECS JSON lines\n"
    "\n"
    "SYNOPSIS\n"
    "    pasban-collector --parse [--format auto|rfc5424|rfc3164|json] [--operator ID]\n"
    "                     [--tz OFFSET] [--max-message BYTES] [--received TIME] [--stats]\n"
    "                     [FILE...]\n"
    "\n"
    "DESCRIPTION\n"
    "    Reads each FILE (standard input when no FILE is given, or for \"-\") as a TCP\n"
    "    syslog stream is read: every frame is either RFC 6587 octet-counted\n"
    "    (\"MSG-LEN SP MSG\") or runs to the next LF (a CR before the LF is dropped),\n"
    "    detected frame by frame, so plain log files, JSONL files and captured TCP\n"
    "    streams all work. Each frame is parsed and printed as one event JSON object\n"
    "    per line on standard output, with the fields the collector sends to Kafka.\n"
    "    Nothing is dropped: a message that cannot be parsed, and bytes the framer\n"
    "    gives up on, are printed as events with event.kind \"pipeline_error\",\n"
    "    the raw bytes in event.original and the reason in error.message.\n"
    "\n"
    "    A frame that starts with a non-zero digit run and a space is taken as\n"
    "    octet-counted, as RFC 6587 says; a plain log whose lines start that way\n"
    "    (\"2024 ...\") must be turned into octet-counted frames first.\n"
    "\n"
    "    A JSON object is kept as given, with the pipeline's fields (@timestamp,\n"
    "    event.created/kind/original, organization.id, error.message) merged in and\n"
    "    overriding the body's. Its @timestamp is used when it is RFC 3339; any\n"
    "    other value is kept in labels.invalid_timestamp and the receive time is\n"
    "    used. At most 32 levels of nesting.\n"
    "\n"
    "OPTIONS\n"
    "    --parse\n"
    "        Select this mode (instead of the daemon). Required.\n"
    "    --format auto|rfc5424|rfc3164|json\n"
    "        Message format. auto (the default) decides per message: '{' starts\n"
    "        JSON, \"<PRI>VERSION \" starts RFC 5424, anything else is RFC 3164 or a\n"
    "        vendor dialect (Cisco, Huawei, Juniper, Fortinet, Palo Alto), with or\n"
    "        without PRI.\n"
    "    --operator ID\n"
    "        Tag every event with organization.id ID (the operator). A JSON body\n"
    "        cannot override it.\n"
    "    --tz OFFSET\n"
    "        Zone of RFC 3164 timestamps, which carry none: UTC (the default), Z,\n"
    "        +03:30, -0500.\n"
    "    --max-message BYTES\n"
    "        Largest message (and frame) accepted, 1 to 65536 (the default 65536).\n"
    "        A longer frame becomes a pipeline_error event.\n"
    "    --received TIME\n"
    "        Use TIME (RFC 3339, e.g. 2026-11-23T10:00:00Z) as the receive time\n"
    "        instead of the clock: it is event.created, @timestamp when a message\n"
    "        has no time of its own, and the reference for the RFC 3164 year. With\n"
    "        it the output depends only on the input, for tests and replays.\n"
    "    --stats\n"
    "        At the end, print to standard error: lines written, parse failures,\n"
    "        bytes read, elapsed and CPU seconds, and lines per second.\n"
    "    --help\n"
    "        Print this help and exit.\n"
    "    --version\n"
    "        Print the version and exit.\n"
    "    --\n"
    "        End of options: every later argument is a FILE.\n"
    "\n"
    "EXIT STATUS\n"
    "    0  every input was read and converted (parse failures are events, not errors).\n"
    "    1  an input file could not be opened or read (the others are still\n"
    "       converted), or standard output could not be written.\n"
    "    2  bad usage: unknown option, missing or invalid option value.\n"
    "\n"
    "EXAMPLES\n"
    "    pasban-collector --parse --operator op-a /var/log/auth.log > events.jsonl\n"
    "    pasban-collector --parse --format rfc3164 --tz +03:30 --stats router-*.log\n"
    "    printf '16 <1>1 - - - - - -' | pasban-collector --parse --received 2026-01-01T00:00:00Z\n"
    "    zcat syslog.1.gz | pasban-collector --parse --operator op-b - > events.jsonl\n";

typedef struct parse_stats {
    unsigned long long lines;
    unsigned long long failures;
    unsigned long long bytes;
} parse_stats;

typedef struct parse_ctx {
    psb_parse_opts opts;
    bool fixed_time; /* --received given: never read the clock */
    bool stats;
    size_t max_frame;
    psb_event *ev;
    psb_ecs_writer *writer;
    char *in;
    size_t in_cap;
    char *out;
    size_t out_len;
    bool out_failed;
    parse_stats st;
} parse_ctx;

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void out_flush(parse_ctx *c)
{
    if (c->out_len && !c->out_failed && write_all(STDOUT_FILENO, c->out, c->out_len) < 0) {
        fprintf(stderr, "pasban-collector: writing standard output: %s\n", strerror(errno));
        c->out_failed = true;
    }
    c->out_len = 0;
}

static void out_line(parse_ctx *c, const char *p, size_t n)
{
    if (c->out_len + n + 1 > PARSE_OUT_BUFSZ) {
        out_flush(c);
        if (n + 1 > PARSE_OUT_BUFSZ) { /* cannot happen with 64 KiB messages; stay correct */
            if (!c->out_failed &&
                (write_all(STDOUT_FILENO, p, n) < 0 || write_all(STDOUT_FILENO, "\n", 1) < 0)) {
                fprintf(stderr, "pasban-collector: writing standard output: %s\n", strerror(errno));
                c->out_failed = true;
            }
            return;
        }
    }
    memcpy(c->out + c->out_len, p, n);
    c->out[c->out_len + n] = '\n';
    c->out_len += n + 1;
}

static void emit(parse_ctx *c)
{
    const char *json;
    size_t n;
    if (c->ev->kind == PSB_EVENT_KIND_PIPELINE_ERROR)
        c->st.failures++;
    c->st.lines++;
    if (psb_ecs_write(c->writer, c->ev, &json, &n) < 0) {
        /* The writer only fails on a programming error; say so rather than lose the line. */
        fprintf(stderr, "pasban-collector: internal error writing event %llu\n", c->st.lines);
        return;
    }
    out_line(c, json, n);
}

/* Bytes the framer gave up on still become an event, so a broken sender is visible. */
static void emit_framing_error(parse_ctx *c, const psb_frame *f)
{
    psb_event *ev = c->ev;
    psb_event_reset(ev);
    ev->original = psb_str_make(f->msg, f->len);
    ev->created_ms = c->opts.received_ms;
    ev->timestamp_ms = c->opts.received_ms;
    ev->organization_id = c->opts.organization_id;
    ev->observer_ip = c->opts.observer_ip;
    psb_event_set_error(ev, "framing: %s", f->error ? f->error : "bad frame");
    emit(c);
}

/* Frame and convert one input. Returns 0, or -1 when it could not be read to the end
 * (what was read is still converted). */
static int parse_fd(parse_ctx *c, int fd, const char *name)
{
    size_t len = 0; /* valid bytes in c->in */
    bool at_eof = false;
    int rc = 0;
    while (!at_eof) {
        if (len == c->in_cap) {
            /* Only reachable if a framer asked for more than a full buffer;
             * growing keeps the promise that nothing is dropped. */
            c->in_cap *= 2;
            c->in = psb_xrealloc(c->in, c->in_cap);
        }
        ssize_t r = read(fd, c->in + len, c->in_cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "pasban-collector: %s: %s\n", name, strerror(errno));
            rc = -1;
            at_eof = true; /* frame what we have, as if the stream had closed */
        } else if (r == 0) {
            at_eof = true;
        } else {
            len += (size_t)r;
            c->st.bytes += (size_t)r;
        }
        if (!c->fixed_time)
            c->opts.received_ms = psb_now_ms();

        size_t pos = 0;
        while (pos < len) {
            psb_frame f;
            int fr = psb_frame_next(c->in + pos, len - pos, c->max_frame, at_eof, &f);
            if (fr == 0) {
                if (!at_eof)
                    break;
                if (f.consumed > 0 && f.consumed <= len - pos) { /* trailing empty lines */
                    pos += f.consumed;
                    continue;
                }
                /* The framer promises not to ask for more at EOF; if it does, the
                 * rest still goes out as an error rather than vanish. */
                f = (psb_frame){.msg = c->in + pos,
                                .len = len - pos,
                                .consumed = len - pos,
                                .error = "truncated frame at end of input"};
                fr = -1;
            }
            if (fr == 1) {
                psb_parse(&c->opts, f.msg, f.len, c->ev);
                emit(c);
            } else {
                emit_framing_error(c, &f);
            }
            if (f.consumed == 0 || f.consumed > len - pos) /* never loop in place */
                f.consumed = len - pos;
            pos += f.consumed;
        }
        if (pos < len && pos > 0)
            memmove(c->in, c->in + pos, len - pos); /* the one partial frame per block */
        len -= pos;
    }
    return rc;
}

static int parse_path(parse_ctx *c, const char *path)
{
    if (strcmp(path, "-") == 0)
        return parse_fd(c, STDIN_FILENO, "standard input");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "pasban-collector: %s: %s\n", path, strerror(errno));
        return -1;
    }
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    int rc = parse_fd(c, fd, path);
    close(fd);
    return rc;
}

static double timespec_s(const struct timespec *t)
{
    return (double)t->tv_sec + t->tv_nsec / 1e9;
}

static void print_stats(const parse_ctx *c, double elapsed)
{
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
              ru.ru_stime.tv_usec / 1e6;
    fprintf(stderr,
            "pasban-collector: %llu lines, %llu parse failures, %llu bytes, %.3f s elapsed, "
            "%.3f s CPU, %.0f lines/s\n",
            c->st.lines, c->st.failures, c->st.bytes, elapsed, cpu,
            elapsed > 0 ? (double)c->st.lines / elapsed : 0.0);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pasban-collector: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'pasban-collector --parse --help'.\n");
    return 2;
}

/* "--name VALUE" or "--name=VALUE"; advances *i past a separate value. Returns the
 * value, or NULL if argv[*i] is not this option. Sets *missing when it is but has no value. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

int col_parse_main(int argc, char **argv)
{
    parse_ctx c = {0};
    c.opts.format = PSB_FORMAT_AUTO;
    c.max_frame = PSB_MAX_MESSAGE;
    const char **files = psb_xcalloc((size_t)argc + 1, sizeof(*files));
    size_t n_files = 0;
    bool only_files = false;
    int status = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (only_files || a[0] != '-' || strcmp(a, "-") == 0) {
            files[n_files++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_files = true;
        } else if (strcmp(a, "--parse") == 0) {
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(parse_usage, stdout);
            free(files);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("pasban-collector %s\n", PSB_VERSION);
            free(files);
            return 0;
        } else if (strcmp(a, "--stats") == 0) {
            c.stats = true;
        } else if ((v = opt_value(argc, argv, &i, "--format", &missing))) {
            c.opts.format = psb_format_from_name(v);
            if (c.opts.format < 0) {
                status =
                    usage_error("--format: unknown format '%s' (auto, rfc5424, rfc3164, json)", v);
                goto done;
            }
        } else if ((v = opt_value(argc, argv, &i, "--operator", &missing))) {
            if (!*v) {
                status = usage_error("--operator: empty operator id");
                goto done;
            }
            c.opts.organization_id = psb_str_make(v, strlen(v));
        } else if ((v = opt_value(argc, argv, &i, "--tz", &missing))) {
            if (psb_parse_utc_offset(v, &c.opts.tz_offset_s) < 0) {
                status = usage_error("--tz: '%s' is not an offset such as UTC, +03:30 or -0500", v);
                goto done;
            }
        } else if ((v = opt_value(argc, argv, &i, "--max-message", &missing))) {
            char *end;
            errno = 0;
            unsigned long long m = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-' || m < 1 || m > PSB_MAX_MESSAGE) {
                status = usage_error("--max-message: '%s' is not a size from 1 to "
                                     "65536 bytes",
                                     v);
                goto done;
            }
            c.max_frame = (size_t)m;
        } else if ((v = opt_value(argc, argv, &i, "--received", &missing))) {
            if (psb_parse_rfc3339(v, strlen(v), &c.opts.received_ms) < 0) {
                status = usage_error("--received: '%s' is not an RFC 3339 time such as "
                                     "2026-11-23T10:00:00Z",
                                     v);
                goto done;
            }
            c.fixed_time = true;
        } else if (missing) {
            status = usage_error("%s needs a value", a);
            goto done;
        } else {
            status = usage_error("unknown option '%s'", a);
            goto done;
        }
        if (missing) {
            status = usage_error("%s needs a value", a);
            goto done;
        }
    }
    c.opts.max_message = c.max_frame;
    if (n_files == 0)
        files[n_files++] = "-";

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    c.ev = psb_event_new();
    c.writer = psb_ecs_writer_new();
    if (!c.writer) {
        fprintf(stderr, "pasban-collector: cannot create the JSON writer\n");
        status = 1;
        goto done;
    }
    c.in_cap = PARSE_IN_BLOCK;
    c.in = psb_xmalloc(c.in_cap);
    c.out = psb_xmalloc(PARSE_OUT_BUFSZ);

    for (size_t k = 0; k < n_files && !c.out_failed; k++)
        if (parse_path(&c, files[k]) < 0)
            status = 1;
    out_flush(&c);
    if (c.out_failed)
        status = 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (c.stats)
        print_stats(&c, timespec_s(&t1) - timespec_s(&t0));

done:
    psb_ecs_writer_free(c.writer);
    psb_event_free(c.ev);
    free(c.in);
    free(c.out);
    free(files);
    return status;
}
