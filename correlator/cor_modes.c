/* cor_modes.c -- --replay, --match and --check-rules. */
#include "cor_modes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cor_config.h"
#include "cor_json.h"
#include "cor_kpi.h"
#include "cor_prefilter.h"
#include "pasban/parse.h"
#include "pasban/util.h"

struct cor_line_reader {
    FILE *f;
    char *buf;
    size_t start, end, cap;
    bool eof;
    bool error;
    bool skipping;
    /* A regular file is mapped instead: lines are read in place, without the
     * copy read() makes (about a twentieth of a replay's time). The price: a
     * file truncated by someone else during the replay ends the process with
     * SIGBUS (rotate logs by renaming them, as logrotate does by default). */
    const char *map;
    size_t map_len, pos;
};

cor_line_reader *cor_line_reader_new(FILE *f)
{
    cor_line_reader *r = psb_xcalloc(1, sizeof(*r));
    r->f = f;
    int fd = fileno(f);
    struct stat st;
    off_t at = fd >= 0 ? lseek(fd, 0, SEEK_CUR) : -1;
    if (at >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > at) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
            r->map = m;
            r->map_len = (size_t)st.st_size;
            r->pos = (size_t)at;
            return r;
        }
    }
    r->cap = COR_MAX_LINE + 65536;
    r->buf = psb_xmalloc(r->cap);
    return r;
}

void cor_line_reader_free(cor_line_reader *r)
{
    if (!r)
        return;
    if (r->map)
        munmap((void *)r->map, r->map_len);
    free(r->buf);
    free(r);
}

/* The next line of a mapped file; a line longer than COR_MAX_LINE is cut there. */
static int map_next(cor_line_reader *r, const char **line, size_t *len, bool *cut)
{
    if (r->pos >= r->map_len)
        return 0;
    const char *s = r->map + r->pos;
    size_t avail = r->map_len - r->pos;
    const char *nl = memchr(s, '\n', avail);
    size_t n = nl ? (size_t)(nl - s) : avail;
    r->pos += nl ? n + 1 : n;
    *line = s;
    if (n > COR_MAX_LINE) {
        *cut = true;
        *len = COR_MAX_LINE;
        return 1;
    }
    if (n && s[n - 1] == '\r')
        n--;
    *len = n;
    return 1;
}

static void fill(cor_line_reader *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->end -= r->start;
        r->start = 0;
    }
    /* read(), not fread(): a terminal or pipe gives what it has, so an analyst
     * pasting lines into --match sees each answer at once. */
    while (!r->eof && r->end < r->cap) {
        ssize_t got = read(fileno(r->f), r->buf + r->end, r->cap - r->end);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            r->error = got < 0;
            r->eof = true;
            break;
        }
        r->end += (size_t)got;
        break;
    }
}

int cor_line_reader_next(cor_line_reader *r, const char **line, size_t *len, bool *cut)
{
    *cut = false;
    if (r->map)
        return map_next(r, line, len, cut);
    while (r->skipping) {
        /* The rest of a line that was too long. */
        char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
        if (nl) {
            r->start = (size_t)(nl - r->buf) + 1;
            r->skipping = false;
        } else {
            r->start = r->end;
            if (r->eof)
                return r->error ? -1 : 0;
            fill(r);
        }
    }
    for (;;) {
        char *s = r->buf + r->start;
        size_t avail = r->end - r->start;
        char *nl = memchr(s, '\n', avail);
        size_t n;
        if (nl) {
            n = (size_t)(nl - s);
            r->start += n + 1;
        } else if (r->eof) {
            if (avail == 0)
                return r->error ? -1 : 0;
            n = avail;
            r->start = r->end;
        } else if (avail >= COR_MAX_LINE) {
            *cut = true;
            *line = s;
            *len = COR_MAX_LINE;
            r->start = r->end;
            r->skipping = true;
            return 1;
        } else {
            fill(r);
            continue;
        }
        if (n && s[n - 1] == '\r')
            n--;
        *line = s;
        *len = n;
        return 1;
    }
}

/* ---- shared: opening inputs, parsing lines ---- */

typedef struct input {
    const cor_run_opts *o;
    size_t idx;
    FILE *f;
    cor_line_reader *rd;
    const char *name;
    int failed;
} input;

/* Next line over all inputs. 1 line, 0 end. */
static int input_next(input *in, const char **line, size_t *len, bool *cut)
{
    for (;;) {
        if (!in->rd) {
            if (in->o->n_files == 0 && in->idx == 0) {
                in->f = stdin;
                in->name = "-";
            } else if (in->idx < in->o->n_files) {
                in->name = in->o->files[in->idx];
                in->f = strcmp(in->name, "-") == 0 ? stdin : fopen(in->name, "rb");
                if (!in->f) {
                    fprintf(in->o->err, "pasban-correlator: %s: %s\n", in->name, strerror(errno));
                    in->failed = 1;
                    in->idx++;
                    continue;
                }
            } else {
                return 0;
            }
            in->idx++;
            in->rd = cor_line_reader_new(in->f);
        }
        int rc = cor_line_reader_next(in->rd, line, len, cut);
        if (rc == 1)
            return 1;
        if (rc < 0) {
            fprintf(in->o->err, "pasban-correlator: %s: read error\n", in->name);
            in->failed = 1;
        }
        cor_line_reader_free(in->rd);
        in->rd = NULL;
        if (in->f != stdin)
            fclose(in->f);
        in->f = NULL;
        if (in->o->n_files == 0)
            return 0;
    }
}

static bool is_json_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i < n && s[i] == '{';
}

/* Raw lines parse as the collector parses them; event JSONL (Pasban's own
 * events) keeps event.original and the rest from the body. */
/* Does name read a label other than vendor, mnemonic, sequence, clock_sync? */
static bool device_label(const char *name)
{
    static const char *const core[] = {"vendor", "mnemonic", "sequence", "clock_sync"};
    if (!name || strncmp(name, "labels.", 7) != 0)
        return false;
    for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
        if (strcmp(name + 7, core[i]) == 0)
            return false;
    return true;
}

static bool conds_read_device_labels(const cor_cond *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (device_label(c[i].field))
            return true;
    return false;
}

/* Whether any rule reads a device's own labels (in where, unless, by or
 * distinct): when none does, the parser may skip them (core_labels_only). */
static bool rules_read_device_labels(const cor_ruleset *rs)
{
    for (size_t i = 0; i < rs->n_rules; i++) {
        const cor_rule *r = rs->rules[i];
        for (size_t s = 0; s < r->n_steps; s++)
            if (conds_read_device_labels(r->steps[s].where, r->steps[s].n_where) ||
                conds_read_device_labels(r->steps[s].unless, r->steps[s].n_unless))
                return true;
        for (size_t b = 0; b < r->n_by; b++)
            if (device_label(r->by[b]))
                return true;
        if (device_label(r->distinct))
            return true;
    }
    return false;
}

static void parse_opts_init(const cor_run_opts *o, const cor_ruleset *rs, psb_time_cache *tc,
                            psb_parse_opts *po)
{
    memset(po, 0, sizeof(*po));
    memset(tc, 0, sizeof(*tc));
    po->core_labels_only = !rules_read_device_labels(rs);
    po->time_cache = tc;
    po->format = PSB_FORMAT_AUTO;
    po->received_ms = o->received_ms;
    if (o->operator_id)
        po->organization_id = psb_str_make(o->operator_id, strlen(o->operator_id));
}

/* base: from parse_opts_init, the same for every line. */
static int parse_line(const psb_parse_opts *base, const char *s, size_t n, bool cut, psb_event *ev)
{
    psb_parse_opts po = *base;
    po.own_events = is_json_line(s, n);
    po.max_message = cut ? n - 1 : 0; /* a cut line is refused as too long */
    if (cut && n < 2)
        po.max_message = 1;
    return psb_parse(&po, s, n, ev);
}

static cor_ruleset *load_rules(const cor_run_opts *o, size_t *errors)
{
    cor_load_opts lo = {o->err, o->no_prefilter};
    cor_ruleset *rs = cor_ruleset_load(o->rules, &lo);
    if (rs)
        *errors = rs->n_errors;
    return rs;
}

/* ---- --replay ---- */

/* Counters for --stats; the KPIs themselves come from the KPI engine. */
typedef struct tally {
    uint64_t events, parse_failures;
} tally;

static void tally_event(tally *t, const psb_event *ev)
{
    t->events++;
    if (ev->kind == PSB_EVENT_KIND_PIPELINE_ERROR)
        t->parse_failures++;
}

/* The KPI engine for --kpi: defaults, or the "kpi" object of -c FILE. NULL with a
 * message on stderr when the file is unreadable or its KPI section is wrong. */
static cor_kpi *kpi_new(const cor_run_opts *o)
{
    if (!o->config)
        return cor_kpi_new(NULL);
    char err[256];
    cor_config *c = cor_config_load(o->config, err, sizeof(err));
    if (!c) {
        fprintf(o->err, "pasban-correlator: %s\n", err);
        return NULL;
    }
    cor_kpi_config *kc = cor_config_kpi(c, err, sizeof(err));
    cor_config_free(c);
    if (!kc) {
        fprintf(o->err, "pasban-correlator: %s: kpi: %s\n", o->config, err);
        return NULL;
    }
    return cor_kpi_new(kc);
}

/* The incidents go to the KPI engine after the replay, in detected_at order, as
 * a live daemon would have seen them; the report is then the engine's. */
static int write_kpi(const cor_run_opts *o, cor_kpi *kpi, cor_engine *e)
{
    cor_incident *const *inc;
    size_t n = cor_engine_incidents(e, &inc);
    for (size_t i = 0; i < n; i++) {
        const cor_incident *x = inc[i];
        cor_kpi_incident ki = {x->id,
                               x->org ? x->org : "unassigned",
                               x->rule->id,
                               x->rule->severity,
                               x->rule->category,
                               x->first_seen,
                               x->detected_at};
        cor_kpi_on_incident(kpi, &ki);
    }
    cor_buf b = {0};
    cor_kpi_write_report(kpi, &b);
    FILE *f = fopen(o->kpi_file, "w");
    int rc = 0;
    if (!f || fwrite(b.p, 1, b.len, f) != b.len) {
        fprintf(o->err, "pasban-correlator: %s: %s\n", o->kpi_file, strerror(errno));
        rc = -1;
    }
    if (f && fclose(f) != 0)
        rc = -1;
    cor_buf_free(&b);
    return rc;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_stats(const cor_run_opts *o, const cor_ruleset *rs, cor_engine *e, const tally *t,
                        double wall, double cpu)
{
    FILE *f = o->err;
    const cor_rule_stats *st = cor_engine_stats(e);
    fprintf(f, "%-24s %-9s %10s %10s %9s %10s %6s %7s %7s %10s\n", "rule", "kind", "candidates",
            "matches", "incidents", "suppressed", "late", "evicted", "limits", "regex_ms");
    for (size_t i = 0; i < rs->n_rules; i++) {
        const cor_rule *r = rs->rules[i];
        const cor_rule_stats *s = &st[i];
        fprintf(f, "%-24s %-9s %10llu %10llu %9llu %10llu %6llu %7llu %7llu %10.3f\n", r->id,
                cor_kind_name(r->kind), (unsigned long long)s->candidates,
                (unsigned long long)s->matches, (unsigned long long)s->incidents,
                (unsigned long long)s->suppressed, (unsigned long long)s->late,
                (unsigned long long)s->evicted, (unsigned long long)s->limit_errors,
                (double)s->regex_ns / 1e6);
    }
    fprintf(f,
            "events %llu, parse failures %llu, rules %zu, prefilter %s (%zu ids, %zu of them "
            "literals, in %zu databases), groups held %zu\n",
            (unsigned long long)t->events, (unsigned long long)t->parse_failures, rs->n_rules,
            rs->prefilter && !o->no_prefilter ? "hyperscan" : "off",
            cor_prefilter_patterns(rs->prefilter), cor_prefilter_literals(rs->prefilter),
            cor_prefilter_databases(rs->prefilter), cor_engine_groups(e));
    fprintf(f, "wall %.3f s, cpu %.3f s, %.0f events/s, %.0f events per CPU-second\n", wall, cpu,
            wall > 0 ? (double)t->events / wall : 0.0, cpu > 0 ? (double)t->events / cpu : 0.0);
}

int cor_mode_replay(const cor_run_opts *o)
{
    size_t errors = 0;
    cor_ruleset *rs = load_rules(o, &errors);
    if (!rs)
        return 1;
    if (errors)
        fprintf(o->err, "pasban-correlator: %zu rule(s) refused; replaying with the %zu others\n",
                errors, rs->n_rules);
    cor_kpi *kpi = NULL;
    if (o->kpi_file && !(kpi = kpi_new(o))) {
        cor_ruleset_free(rs);
        return 1;
    }
    cor_engine_opts eo = o->engine;
    eo.match.timing = o->stats;
    cor_engine *e = cor_engine_new(rs, &eo);
    psb_event *ev = psb_event_new();
    input in;
    memset(&in, 0, sizeof(in));
    in.o = o;
    tally t;
    memset(&t, 0, sizeof(t));
    psb_time_cache tc;
    psb_parse_opts po;
    parse_opts_init(o, rs, &tc, &po);
    double w0 = wall_seconds(), c0 = cpu_seconds();
    const char *line;
    size_t len;
    bool cut;
    while (input_next(&in, &line, &len, &cut)) {
        if (len == 0)
            continue; /* an empty line is not an event */
        parse_line(&po, line, len, cut, ev);
        tally_event(&t, ev);
        if (kpi)
            cor_kpi_on_psb_event(kpi, ev);
        cor_engine_process(e, ev);
    }
    cor_engine_finish(e);
    double wall = wall_seconds() - w0, cpu = cpu_seconds() - c0;
    cor_incident *const *inc;
    size_t n = cor_engine_incidents(e, &inc);
    cor_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        b.len = 0;
        cor_incident_write(inc[i], &b);
        cor_buf_putc(&b, '\n');
        fwrite(b.p, 1, b.len, o->out);
    }
    cor_buf_free(&b);
    int rc = in.failed ? 1 : 0;
    if (fflush(o->out) != 0)
        rc = 1;
    if (o->stats)
        print_stats(o, rs, e, &t, wall, cpu);
    if (kpi && write_kpi(o, kpi, e) != 0)
        rc = 1;
    cor_kpi_free(kpi);
    psb_event_free(ev);
    cor_engine_free(e);
    cor_ruleset_free(rs);
    return rc;
}

/* ---- --match ---- */

typedef struct match_ctx {
    cor_buf *b;
    const cor_rule *last;
} match_ctx;

static void on_match_hit(void *ctx, const psb_event *ev, const cor_rule *r, size_t step,
                         const cor_capture *caps, size_t n_caps)
{
    (void)ev;
    (void)step;
    (void)caps;
    (void)n_caps;
    match_ctx *m = ctx;
    if (m->last == r)
        return; /* another step of the same sequence */
    if (m->last)
        cor_buf_puts(m->b, ", ");
    m->last = r;
    cor_buf_json_str(m->b, r->id, strlen(r->id));
}

int cor_mode_match(const cor_run_opts *o)
{
    size_t errors = 0;
    cor_ruleset *rs = load_rules(o, &errors);
    if (!rs)
        return 1;
    cor_match_opts mo = o->engine.match;
    cor_matcher *m = cor_matcher_new(rs, &mo);
    psb_event *ev = psb_event_new();
    input in;
    memset(&in, 0, sizeof(in));
    in.o = o;
    const char *line;
    size_t len;
    bool cut;
    unsigned long long lineno = 0;
    psb_time_cache tc;
    psb_parse_opts po;
    parse_opts_init(o, rs, &tc, &po);
    cor_buf b = {0};
    while (input_next(&in, &line, &len, &cut)) {
        lineno++;
        b.len = 0;
        char head[64];
        snprintf(head, sizeof(head), "{\"line\": %llu, \"rules\": [", lineno);
        cor_buf_puts(&b, head);
        if (len) {
            parse_line(&po, line, len, cut, ev);
            match_ctx mc = {&b, NULL};
            cor_matcher_run(m, ev, on_match_hit, &mc);
        }
        cor_buf_puts(&b, "]}\n");
        fwrite(b.p, 1, b.len, o->out);
    }
    cor_buf_free(&b);
    int rc = in.failed ? 1 : 0;
    if (fflush(o->out) != 0)
        rc = 1;
    psb_event_free(ev);
    cor_matcher_free(m);
    cor_ruleset_free(rs);
    return rc;
}

/* ---- --check-rules ---- */

int cor_mode_check(const cor_run_opts *o)
{
    size_t errors = 0;
    cor_ruleset *rs = load_rules(o, &errors);
    if (!rs)
        return 1;
    cor_matcher *m = cor_matcher_new(rs, &o->engine.match);
    psb_event *ev = psb_event_new();
    size_t tests = 0, failed = 0, untested = 0;
    size_t kinds[COR_KIND_ABSENCE + 1] = {0};
    for (size_t i = 0; i < rs->n_rules; i++) {
        const cor_rule *r = rs->rules[i];
        kinds[r->kind]++;
        if (r->n_tests == 0)
            untested++;
        for (size_t k = 0; k < r->n_tests; k++) {
            const cor_test *ts = &r->tests[k];
            tests++;
            psb_parse_opts po;
            memset(&po, 0, sizeof(po));
            po.received_ms = o->received_ms;
            if (o->operator_id)
                po.organization_id = psb_str_make(o->operator_id, strlen(o->operator_id));
            const char *text = ts->log ? ts->log : ts->event;
            size_t tl = strlen(text);
            if (ts->event) {
                po.format = PSB_FORMAT_JSON;
                po.own_events = true;
            } else {
                po.format = PSB_FORMAT_AUTO;
                po.own_events = is_json_line(text, tl);
            }
            psb_parse(&po, text, tl, ev);
            uint64_t lim0 = cor_matcher_stats(m)[i].limit_errors;
            bool hit = cor_matcher_rule(m, ev, r) != 0;
            if (hit == ts->expect_match)
                continue;
            failed++;
            fprintf(o->err, "%s:%d: rule %s: test %zu expects %s, got %s", r->file, ts->line, r->id,
                    k + 1, ts->expect_match ? "match" : "no-match", hit ? "match" : "no-match");
            if (ev->kind == PSB_EVENT_KIND_PIPELINE_ERROR)
                fprintf(o->err, " (the %s did not parse: %.*s)", ts->log ? "log" : "event",
                        (int)ev->error_message.len, ev->error_message.ptr);
            if (cor_matcher_stats(m)[i].limit_errors != lim0)
                fprintf(o->err, " (a pattern hit the PCRE2 match limit)");
            fputc('\n', o->err);
        }
    }
    fprintf(o->out,
            "%zu rules in %zu files (%zu single, %zu threshold, %zu sequence, %zu absence); "
            "%zu refused; %zu tests, %zu failed; %zu rules without tests\n",
            rs->n_rules, rs->n_files, kinds[COR_KIND_SINGLE], kinds[COR_KIND_THRESHOLD],
            kinds[COR_KIND_SEQUENCE], kinds[COR_KIND_ABSENCE], errors, tests, failed, untested);
    psb_event_free(ev);
    cor_matcher_free(m);
    cor_ruleset_free(rs);
    return errors || failed ? 1 : 0;
}
