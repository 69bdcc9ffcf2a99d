/* The correlator's line reader: a regular file (read in place through a mapping)
 * and a pipe (read()) give the same lines; CR before LF is dropped, an empty line
 * is a line, the last line needs no LF, and a line longer than COR_MAX_LINE is
 * cut there and flagged. Also: parsing with a psb_time_cache lent across lines
 * gives the events it gives without one, core_labels_only leaves out only device
 * labels, and the correlator keeps them when a rule reads one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cor_modes.h"
#include "pasban/parse.h"

typedef struct got {
    char *text; /* every line, each followed by '|' ('!' when cut) */
    size_t len;
    size_t lines;
    size_t first_len; /* length of the first line as returned */
} got;

static void read_all(FILE *f, got *g)
{
    memset(g, 0, sizeof(*g));
    cor_line_reader *r = cor_line_reader_new(f);
    const char *line;
    size_t len;
    bool cut;
    int rc;
    while ((rc = cor_line_reader_next(r, &line, &len, &cut)) == 1) {
        if (g->lines == 0)
            g->first_len = len;
        g->text = realloc(g->text, g->len + len + 1);
        assert_non_null(g->text);
        memcpy(g->text + g->len, line, len);
        g->len += len;
        g->text[g->len++] = cut ? '!' : '|';
        g->lines++;
    }
    assert_int_equal(rc, 0);
    cor_line_reader_free(r);
}

/* The lines of data read from a regular file and from a pipe. */
static void both(const char *data, size_t n, got *file, got *pipe_)
{
    char path[] = "/tmp/pasban-line-reader-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    read_all(f, file);
    fclose(f);

    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        for (size_t off = 0; off < n;) {
            ssize_t w = write(p[1], data + off, n - off);
            if (w <= 0)
                _exit(1);
            off += (size_t)w;
        }
        _exit(0);
    }
    close(p[1]);
    FILE *pf = fdopen(p[0], "rb");
    assert_non_null(pf);
    read_all(pf, pipe_);
    fclose(pf);
    unlink(path);
}

static void test_file_and_pipe_agree(void **state)
{
    (void)state;
    static const char data[] = "first\r\n\nthird line\nlast without LF";
    got a, b;
    both(data, sizeof(data) - 1, &a, &b);
    assert_int_equal(a.lines, 4);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.text, b.text, a.len);
    assert_memory_equal(a.text, "first||third line|last without LF|", a.len);
    free(a.text);
    free(b.text);
}

static void test_long_line_cut(void **state)
{
    (void)state;
    size_t n = 2 * (size_t)COR_MAX_LINE + 100;
    char *data = malloc(n);
    assert_non_null(data);
    memset(data, 'x', n);
    memcpy(data + n - 5, "\nok\n", 4);
    data[n - 1] = 'y'; /* "...x\nok\ny": a cut line, then two short ones */
    got a, b;
    both(data, n, &a, &b);
    assert_int_equal(a.lines, 3);
    assert_int_equal(b.lines, 3);
    assert_int_equal(a.first_len, COR_MAX_LINE);
    assert_int_equal(b.first_len, COR_MAX_LINE);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.text, b.text, a.len);
    assert_int_equal(a.text[COR_MAX_LINE], '!');
    assert_memory_equal(a.text + COR_MAX_LINE + 1, "ok|y|", 5);
    free(a.text);
    free(b.text);
    free(data);
}

/* Same event with and without a time cache, line after line (the cache keeps
 * what the previous line left, so the order matters). */
static void test_time_cache_same_events(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "Dec 10 00:00:01 gw1 sshd[1]: Failed password for root from 1.2.3.4 port 1 ssh2",
        "Dec 10 00:00:01 asa1 %ASA-4-106023: Deny tcp src outside:1.2.3.4/1 dst inside:10.0.0.1/22",
        "Dec 10 00:00:01 UTC: host %SYS-5-CONFIG_I: Configured from console",
        "Dec 10 00:00:01 Gw1 sshd[1]: capital host name",
        "Dec 10 00:00:02.250 gw1 app: fraction",
        "Dec 10 00:00:02 2025 gw1 app: year after the time",
        "Dec 10 2026 00:00:02 gw1 app: year before the time",
        "Dec 31 23:59:59 gw1 app: the old year",
        "Jan  1 00:00:00 gw1 app: the new year",
        "Feb 29 12:00:00 gw1 app: a leap day",
        "Feb 30 12:00:00 gw1 app: no such day",
        "Dec 10 00:00:03 fgt0 date=2026-12-10 time=00:00:03 devname=\"F\" devid=\"F1\" logid=\"1\"",
        "Dec 10 00:00:03+02:00 gw1 app: a zone",
        "Dec 10 00:00:03 gw1 app: back to the first form",
    };
    psb_time_cache tc;
    memset(&tc, 0, sizeof(tc));
    psb_parse_opts with = {.format = PSB_FORMAT_AUTO, .received_ms = 1798675200000LL,
                           .time_cache = &tc}; /* 2027-01-01T00:00:00Z */
    psb_parse_opts without = with;
    without.time_cache = NULL;
    psb_event *a = psb_event_new(), *b = psb_event_new();
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
            size_t n = strlen(lines[i]);
            assert_int_equal(psb_parse(&with, lines[i], n, a), psb_parse(&without, lines[i], n, b));
            assert_true(a->timestamp_ms == b->timestamp_ms);
            assert_int_equal(a->hostname.len, b->hostname.len);
            assert_int_equal(a->message.len, b->message.len);
            assert_int_equal(a->n_labels, b->n_labels);
        }
    psb_event_free(a);
    psb_event_free(b);
}

static const char pa_line[] =
    "Dec 10 00:00:01 pa1 1,2026/12/10 00:00:01,001801000001,TRAFFIC,drop,2304,"
    "2026/12/10 00:00:01,45.1.2.3,10.0.0.5,0.0.0.0,0.0.0.0,deny-all,,,not-applicable,vsys1,"
    "untrust,trust,ethernet1/1,,Log,2026/12/10 00:00:01,0,1,4242,22,0,0,0x0,tcp,deny,60";

static psb_str label(const psb_event *ev, const char *key)
{
    for (size_t i = 0; i < ev->n_labels; i++)
        if (ev->labels[i].key.len == strlen(key) &&
            memcmp(ev->labels[i].key.ptr, key, strlen(key)) == 0)
            return ev->labels[i].value;
    return PSB_STR_NULL;
}

/* core_labels_only leaves the Palo Alto columns out and nothing else. */
static void test_core_labels_only(void **state)
{
    (void)state;
    psb_parse_opts full = {.format = PSB_FORMAT_AUTO, .received_ms = 1798675200000LL};
    psb_parse_opts core = full;
    core.core_labels_only = true;
    psb_event *a = psb_event_new(), *b = psb_event_new();
    assert_int_equal(psb_parse(&full, pa_line, strlen(pa_line), a), 0);
    assert_int_equal(psb_parse(&core, pa_line, strlen(pa_line), b), 0);
    assert_non_null(label(a, "action").ptr);
    assert_null(label(b, "action").ptr);
    assert_int_equal(label(b, "vendor").len, 8); /* "paloalto" */
    assert_true(a->timestamp_ms == b->timestamp_ms);
    assert_int_equal(a->message.len, b->message.len);
    assert_ptr_equal(a->message.ptr, b->message.ptr);
    assert_int_equal(a->hostname.len, b->hostname.len);
    psb_event_free(a);
    psb_event_free(b);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* --match with a rule on a Palo Alto column: the correlator must not skip it. */
static void test_rule_on_device_label_still_matches(void **state)
{
    (void)state;
    char rules[] = "/tmp/pasban-dev-rules-XXXXXX", input[] = "/tmp/pasban-dev-input-XXXXXX";
    close(mkstemp(rules));
    close(mkstemp(input));
    write_file(rules, "{\"rules\": [{\"id\": \"PA-DENY\", \"title\": \"t\", \"severity\": \"low\","
                      " \"category\": \"intrusion-attempts/login-attempts\","
                      " \"where\": {\"labels.action\": \"^deny$\"}}]}");
    char text[1024];
    snprintf(text, sizeof(text), "%s\n", pa_line);
    write_file(input, text);
    char *files[] = {input};
    char out[256] = {0};
    FILE *o = fmemopen(out, sizeof(out) - 1, "w");
    assert_non_null(o);
    cor_run_opts ro = {.rules = rules, .files = files, .n_files = 1, .received_ms = 1798675200000LL,
                       .out = o, .err = stderr};
    assert_int_equal(cor_mode_match(&ro), 0);
    fclose(o);
    assert_string_equal(out, "{\"line\": 1, \"rules\": [\"PA-DENY\"]}\n");
    unlink(rules);
    unlink(input);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_and_pipe_agree),
        cmocka_unit_test(test_long_line_cut),
        cmocka_unit_test(test_time_cache_same_events),
        cmocka_unit_test(test_core_labels_only),
        cmocka_unit_test(test_rule_on_device_label_still_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
