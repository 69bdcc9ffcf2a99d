/* RFC 5424 parser: the RFC's own examples, every field and its limits, every
 * error path, and the ECS JSON an analyst sees for them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pasban/ecs.h"
#include "pasban/parse.h"

#define RECEIVED_MS 1700000000000LL /* 2023-11-14T22:13:20.000Z */
#define BOM "\xEF\xBB\xBF"

typedef struct fixture {
    psb_event *ev;
    psb_ecs_writer *w;
    int format; /* RFC 5424 forced, or auto-detected as --parse does */
    char json[8192];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->ev = psb_event_new();
    f->w = psb_ecs_writer_new();
    f->format = PSB_FORMAT_RFC5424;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    psb_event_free(f->ev);
    psb_ecs_writer_free(f->w);
    free(f);
    return 0;
}

static int parse_n(fixture *f, const char *msg, size_t len)
{
    psb_parse_opts o = {.format = f->format, .received_ms = RECEIVED_MS};
    return psb_parse(&o, msg, len, f->ev);
}

/* Parse msg and render it; the JSON lands in f->json. */
static int parse(fixture *f, const char *msg)
{
    int rc = parse_n(f, msg, strlen(msg));
    const char *out;
    size_t len;
    assert_int_equal(psb_ecs_write(f->w, f->ev, &out, &len), 0);
    assert_true(len < sizeof(f->json));
    memcpy(f->json, out, len);
    f->json[len] = '\0';
    return rc;
}

static void assert_str(psb_str s, const char *want)
{
    if (!want) {
        assert_null(s.ptr);
        return;
    }
    assert_non_null(s.ptr);
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
}

/* The value of an ECS field by name, or NULL when absent (static buffer). */
static const char *field(fixture *f, const char *name)
{
    static char out[4096];
    char buf[32];
    psb_str v;
    if (!psb_event_get(f->ev, name, strlen(name), buf, &v))
        return NULL;
    assert_true(v.len < sizeof(out));
    memcpy(out, v.ptr, v.len);
    out[v.len] = '\0';
    return out;
}

static void assert_field(fixture *f, const char *name, const char *want)
{
    const char *got = field(f, name);
    if (!want) {
        assert_null(got);
        return;
    }
    assert_non_null(got);
    assert_string_equal(got, want);
}

static void assert_error(fixture *f, const char *msg, const char *want)
{
    assert_int_equal(parse(f, msg), -1);
    assert_int_equal(f->ev->kind, PSB_EVENT_KIND_PIPELINE_ERROR);
    assert_str(f->ev->error_message, want);
    /* Nothing half-parsed survives: the raw text, the reason and the receive time. */
    assert_str(f->ev->original, msg);
    assert_int_equal(f->ev->timestamp_ms, RECEIVED_MS);
    assert_int_equal(f->ev->priority, -1);
    assert_int_equal(f->ev->n_sd, 0);
}

/* RFC 5424 section 6.5, example 1: no STRUCTURED-DATA, a BOM before MSG. */
static void test_rfc_example_1(void **state)
{
    fixture *f = *state;
    f->format = PSB_FORMAT_AUTO;
    const char *m = "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " BOM
                    "'su root' failed for lonvick on /dev/pts/8";
    assert_int_equal(parse(f, m), 0);
    assert_string_equal(
        f->json,
        "{\"@timestamp\":\"2003-10-11T22:14:15.003Z\",\"event\":{\"created\":\"2023-11-14T22:13:"
        "20.000Z\",\"kind\":\"event\",\"original\":\"<34>1 2003-10-11T22:14:15.003Z "
        "mymachine.example.com su - ID47 - " BOM "'su root' failed for lonvick on /dev/pts/8\"},"
        "\"host\":{\"hostname\":\"mymachine.example.com\"},\"process\":{\"name\":\"su\"},"
        "\"log\":{\"syslog\":{\"priority\":34,\"facility\":{\"code\":4},\"severity\":{\"code\":2},"
        "\"version\":1,\"appname\":\"su\",\"msgid\":\"ID47\"}},\"message\":\"" BOM
        "'su root' failed for lonvick on /dev/pts/8\"}");
}

/* Example 2: numeric offset, microseconds, a numeric PROCID, no MSGID. */
static void test_rfc_example_2(void **state)
{
    fixture *f = *state;
    f->format = PSB_FORMAT_AUTO;
    const char *m = "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's "
                    "time to make the do-nuts.";
    assert_int_equal(parse(f, m), 0);
    assert_string_equal(
        f->json,
        "{\"@timestamp\":\"2003-08-24T12:14:15.000Z\",\"event\":{\"created\":\"2023-11-14T22:13:"
        "20.000Z\",\"kind\":\"event\",\"original\":\"<165>1 2003-08-24T05:14:15.000003-07:00 "
        "192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.\"},\"host\":{\"hostname\":"
        "\"192.0.2.1\"},\"process\":{\"name\":\"myproc\",\"pid\":8710},\"log\":{\"syslog\":{"
        "\"priority\":165,\"facility\":{\"code\":20},\"severity\":{\"code\":5},\"version\":1,"
        "\"appname\":\"myproc\",\"procid\":\"8710\"}},\"message\":\"%% It's time to make the "
        "do-nuts.\"}");
}

/* Example 3: one SD-ELEMENT and a MSG. */
static void test_rfc_example_3(void **state)
{
    fixture *f = *state;
    f->format = PSB_FORMAT_AUTO;
    const char *m =
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] " BOM
        "An application event log entry...";
    assert_int_equal(parse(f, m), 0);
    assert_int_equal(f->ev->n_sd, 1);
    assert_int_equal(f->ev->sd[0].n_params, 3);
    assert_field(f, "log.syslog.structured_data.exampleSDID@32473.eventSource", "Application");
    assert_field(f, "message", BOM "An application event log entry...");
    assert_non_null(strstr(f->json, "\"log\":{\"syslog\":{\"priority\":165,\"facility\":{\"code\":"
                                    "20},\"severity\":{\"code\":5},\"version\":1,\"appname\":"
                                    "\"evntslog\",\"msgid\":\"ID47\",\"structured_data\":{"
                                    "\"exampleSDID@32473\":{\"iut\":\"3\",\"eventSource\":"
                                    "\"Application\",\"eventID\":\"1011\"}}}}"));
}

/* Example 4: two SD-ELEMENTs and no MSG at all. */
static void test_rfc_example_4(void **state)
{
    fixture *f = *state;
    f->format = PSB_FORMAT_AUTO;
    const char *m = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
                    "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]"
                    "[examplePriority@32473 class=\"high\"]";
    assert_int_equal(parse(f, m), 0);
    assert_int_equal(f->ev->n_sd, 2);
    assert_field(f, "log.syslog.structured_data.examplePriority@32473.class", "high");
    assert_field(f, "log.syslog.structured_data.exampleSDID@32473.eventID", "1011");
    assert_field(f, "message", NULL);
    assert_null(strstr(f->json, "\"message\""));
    assert_non_null(strstr(f->json, "\"structured_data\":{\"exampleSDID@32473\":{\"iut\":\"3\","
                                    "\"eventSource\":\"Application\",\"eventID\":\"1011\"},"
                                    "\"examplePriority@32473\":{\"class\":\"high\"}}"));
}

static void test_all_nilvalues(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "<13>1 - - - - - -"), 0);
    assert_int_equal(f->ev->timestamp_ms, RECEIVED_MS);
    assert_string_equal(f->json,
                        "{\"@timestamp\":\"2023-11-14T22:13:20.000Z\",\"event\":{\"created\":"
                        "\"2023-11-14T22:13:20.000Z\",\"kind\":\"event\",\"original\":\"<13>1 - - "
                        "- - - -\"},\"log\":{\"syslog\":{\"priority\":13,\"facility\":{\"code\":1},"
                        "\"severity\":{\"code\":5},\"version\":1}}}");
}

/* Each header field on its own, the others NILVALUE: a NILVALUE is absent, never "-". */
static void test_each_header_field_alone(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "<13>1 - h - - - -"), 0);
    assert_field(f, "host.hostname", "h");
    assert_field(f, "process.name", NULL);
    assert_int_equal(parse(f, "<13>1 - - app - - -"), 0);
    assert_field(f, "host.hostname", NULL);
    assert_field(f, "process.name", "app");
    assert_field(f, "log.syslog.appname", "app");
    assert_int_equal(parse(f, "<13>1 - - - p-1 - -"), 0);
    assert_field(f, "log.syslog.procid", "p-1");
    assert_field(f, "process.pid", NULL); /* not numeric */
    assert_null(strstr(f->json, "\"process\""));
    assert_int_equal(parse(f, "<13>1 - - - - M1 -"), 0);
    assert_field(f, "log.syslog.msgid", "M1");
    assert_field(f, "log.syslog.procid", NULL);
    /* A field that merely starts with '-' is a value. */
    assert_int_equal(parse(f, "<13>1 - -h -- -1 -- -"), 0);
    assert_field(f, "host.hostname", "-h");
    assert_field(f, "process.name", "--");
    assert_field(f, "log.syslog.procid", "-1");
    assert_field(f, "log.syslog.msgid", "--");
}

static void test_message_forms(void **state)
{
    fixture *f = *state;
    /* SP then nothing: MSG is empty, which is absent. */
    assert_int_equal(parse(f, "<13>1 - - - - - - "), 0);
    assert_field(f, "message", NULL);
    /* MSG is everything after the SP, spaces and line breaks included. */
    assert_int_equal(parse(f, "<13>1 - - - - - -  two\nlines \t"), 0);
    assert_field(f, "message", " two\nlines \t");
    /* A lone BOM is kept: MSG is what was sent. */
    assert_int_equal(parse(f, "<13>1 - - - - - - " BOM), 0);
    assert_field(f, "message", BOM);
    /* Bytes after a NUL are still MSG: the length, not strlen, bounds it. */
    static const char nul[] = "<13>1 - - - - - - a\0b";
    assert_int_equal(parse_n(f, nul, sizeof(nul) - 1), 0);
    assert_int_equal(f->ev->message.len, 3);
}

/* ISO-8859-1 MSG is accepted; the writer turns each bad byte into U+FFFD. */
static void test_non_utf8_message(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "<13>1 - - - - - - caf\xE9 cr\xE8me"), 0);
    assert_field(f, "message", "caf\xE9 cr\xE8me");
    assert_non_null(strstr(f->json, "\"message\":\"caf\xEF\xBF\xBD cr\xEF\xBF\xBDme\""));
    assert_int_equal(parse(f, "<13>1 - - - - - - " BOM "\x80"), 0);
    assert_non_null(strstr(f->json, "\"message\":\"" BOM "\xEF\xBF\xBD\""));
}

static void test_sd_escapes(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "<13>1 - - - - - [a q=\"say \\\"hi\\\"\" b=\"c:\\\\dir\" "
                              "c=\"x\\]y\" d=\"\\n\\t\" e=\"\" f=\"\\\\\\]\\\"\"] m"),
                     0);
    assert_field(f, "log.syslog.structured_data.a.q", "say \"hi\"");
    assert_field(f, "log.syslog.structured_data.a.b", "c:\\dir");
    assert_field(f, "log.syslog.structured_data.a.c", "x]y");
    /* Any other backslash is a literal backslash (RFC 5424 section 6.3.3). */
    assert_field(f, "log.syslog.structured_data.a.d", "\\n\\t");
    assert_field(f, "log.syslog.structured_data.a.e", "");
    assert_field(f, "log.syslog.structured_data.a.f", "\\]\"");
    assert_field(f, "message", "m");
    assert_non_null(strstr(f->json, "{\"a\":{\"q\":\"say \\\"hi\\\"\",\"b\":\"c:\\\\dir\","
                                    "\"c\":\"x]y\",\"d\":\"\\\\n\\\\t\",\"e\":\"\","
                                    "\"f\":\"\\\\]\\\"\"}}"));
    /* Values are UTF-8 and SP, '=' and '[' are plain characters there. */
    assert_int_equal(parse(f, "<13>1 - - - - - [a k=\"κόσμε = [x] y\"]"), -1);
    assert_int_equal(parse(f, "<13>1 - - - - - [a k=\"κόσμε = [x\\] y\"]"), 0);
    assert_field(f, "log.syslog.structured_data.a.k", "κόσμε = [x] y");
}

/* RFC 5424's example 3 is line-wrapped after "eventSource=" and is widely
 * copied with a space there (rsyslog's test suite has it): tolerated. */
static void test_space_after_equals_tolerated(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - "
                              "ID47 [exampleSDID@32473 iut=\"3\" eventSource= \"Application\" "
                              "eventID=\"1011\"] BOMAn application event log entry..."),
                     0);
    assert_field(f, "log.syslog.structured_data.exampleSDID@32473.eventSource", "Application");
    assert_field(f, "log.syslog.structured_data.exampleSDID@32473.eventID", "1011");
    assert_field(f, "host.hostname", "mymachine.example.com");
    assert_field(f, "message", "BOMAn application event log entry...");
}

/* The parser called directly on a fresh event must reserve scratch itself. */
static void test_direct_call_unescapes_safely(void **state)
{
    (void)state;
    psb_event *ev = psb_event_new();
    char m[3000];
    int n = snprintf(m, sizeof(m), "<13>1 - - - - - [a ");
    for (int i = 0; i < 100; i++)
        n += snprintf(m + n, sizeof(m) - (size_t)n, "p%d=\"v\\\\%d\" ", i, i);
    m[n - 1] = ']';
    psb_parse_opts o = {.format = PSB_FORMAT_RFC5424};
    assert_int_equal(psb_parse_rfc5424(&o, m, (size_t)n, ev), 0);
    assert_int_equal(ev->n_sd_params, 100);
    assert_str(ev->sd_params[0].value, "v\\0");
    assert_str(ev->sd_params[99].value, "v\\99");
    psb_event_free(ev);
}

static void test_sd_element_without_params(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "<78>1 2016-01-15T00:04:01+00:00 host1 CROND 10391 - [sdid] msg"), 0);
    assert_int_equal(f->ev->n_sd, 1);
    assert_int_equal(f->ev->sd[0].n_params, 0);
    assert_non_null(strstr(f->json, "\"structured_data\":{\"sdid\":{}}"));
    assert_non_null(strstr(f->json, "\"process\":{\"name\":\"CROND\",\"pid\":10391}"));
    assert_non_null(strstr(f->json, "\"@timestamp\":\"2016-01-15T00:04:01.000Z\""));
}

static void test_juniper_label(void **state)
{
    fixture *f = *state;
    assert_int_equal(
        parse(f, "<30>1 2024-03-01T10:15:22.415+03:30 mx960-re0 mgd 4242 UI_COMMIT_COMPLETED "
                 "[junos@2636.1.1.1.2.18 username=\"noc\"] commit complete"),
        0);
    assert_field(f, "labels.vendor", "juniper");
    assert_field(f, "log.syslog.structured_data.junos@2636.1.1.1.2.18.username", "noc");
    assert_non_null(strstr(f->json, "\"labels\":{\"vendor\":\"juniper\"}"));
    assert_non_null(strstr(f->json, "\"@timestamp\":\"2024-03-01T06:45:22.415Z\""));
    assert_int_equal(parse(f, "<30>1 - - - - - [x@2636 a=\"1\"][y@2636.1 b=\"2\"]"), 0);
    assert_int_equal(f->ev->n_labels, 1); /* once per message */
    /* Another enterprise whose number merely starts with 2636. */
    assert_int_equal(parse(f, "<30>1 - - - - - [x@26360 a=\"1\"][origin@2636x]"), 0);
    assert_field(f, "labels.vendor", NULL);
}

static void test_pri_and_version_ranges(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "<0>1 - - - - - -"), 0);
    assert_int_equal(f->ev->priority, 0);
    assert_non_null(strstr(f->json, "\"priority\":0,\"facility\":{\"code\":0},\"severity\":{"
                                    "\"code\":0}"));
    assert_int_equal(parse(f, "<191>999 - - - - - -"), 0);
    assert_int_equal(f->ev->priority, 191);
    assert_int_equal(f->ev->version, 999);
    assert_non_null(strstr(f->json, "\"facility\":{\"code\":23},\"severity\":{\"code\":7},"
                                    "\"version\":999"));
}

static void test_timestamps(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *ts;
        int64_t ms;
    } ok[] = {
        {"1985-04-12T23:20:50.52Z", 482196050520},
        {"1985-04-12T19:20:50.52-04:00", 482196050520},
        {"2003-10-11T22:14:15.003Z", 1065910455003},
        {"2003-08-24T05:14:15.000003-07:00", 1061727255000},
        {"2003-08-24T05:14:15.9Z", 1061702055900},
        {"2003-08-24T05:14:15.999999Z", 1061702055999}, /* truncated, not rounded */
        {"2004-02-29T00:00:00Z", 1078012800000},
        {"2018-12-31T23:59:59.999999-23:59", 1546387139999},
        {"2024-03-01T10:15:22+05:30", 1709268322000},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char m[128];
        snprintf(m, sizeof(m), "<13>1 %s - - - - -", ok[i].ts);
        assert_int_equal(parse(f, m), 0);
        assert_int_equal(f->ev->timestamp_ms, ok[i].ms);
        assert_int_equal(f->ev->created_ms, RECEIVED_MS);
    }
    static const char *const bad[] = {
        "2003-02-30T00:00:00Z",         /* no Feb 30 */
        "2003-02-29T00:00:00Z",         /* not a leap year */
        "2003-09-31T22:14:15Z",         /* September has 30 days */
        "2003-10-11T22:14:15.0000003Z", /* 7 fraction digits: TIME-SECFRAC allows 6 */
        "2003-10-11T22:14:15.Z",
        "2003-10-11T22:14:60Z", /* RFC 5424: leap seconds must not be used */
        "2003-10-11t22:14:15Z",
        "2003-10-11T22:14:15z",
        "2003-10-11T22:14:15",
        "2003-10-11T24:00:00Z",
        "2003-10-11T22:14:15+24:00",
        "2003-10-11T22:14:15+0100",
        "2003-10-11T22:14:15Z+01:00",
        "2003-10-11 22:14:15Z",
        "03-10-11T22:14:15Z",
        "Oct 11 22:14:15",
        "--",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char m[128];
        snprintf(m, sizeof(m), "<13>1 %s - - - - -", bad[i]);
        assert_error(f, m, "rfc5424: invalid TIMESTAMP at column 7");
    }
}

/* Each header field at its RFC limit is accepted, one more character is not. */
static void test_header_limits(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *before, *after;
        size_t max;
        const char *name;
        const char *field;
    } lim[] = {
        {"<13>1 - ", " - - - -", 255, "HOSTNAME", "host.hostname"},
        {"<13>1 - - ", " - - -", 48, "APP-NAME", "process.name"},
        {"<13>1 - - - ", " - -", 128, "PROCID", "log.syslog.procid"},
        {"<13>1 - - - - ", " -", 32, "MSGID", "log.syslog.msgid"},
    };
    char val[300], m[400], want[128];
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        memset(val, 'x', lim[i].max);
        val[lim[i].max] = '\0';
        snprintf(m, sizeof(m), "%s%s%s", lim[i].before, val, lim[i].after);
        assert_int_equal(parse(f, m), 0);
        assert_field(f, lim[i].field, val);
        val[lim[i].max] = 'y';
        val[lim[i].max + 1] = '\0';
        snprintf(m, sizeof(m), "%s%s%s", lim[i].before, val, lim[i].after);
        size_t col = (size_t)(strchr(m, 'y') - m) + 1;
        snprintf(want, sizeof(want), "rfc5424: %s longer than %zu characters at column %zu",
                 lim[i].name, lim[i].max, col);
        assert_error(f, m, want);
    }
    /* SD-ID and PARAM-NAME: 32. */
    assert_int_equal(parse(f, "<13>1 - - - - - [abcdefghijklmnopqrstuvwxyz012345 "
                              "abcdefghijklmnopqrstuvwxyz012345=\"v\"]"),
                     0);
    assert_error(f, "<13>1 - - - - - [abcdefghijklmnopqrstuvwxyz0123456]",
                 "rfc5424: SD-ID longer than 32 characters at column 50");
    assert_error(f, "<13>1 - - - - - [a abcdefghijklmnopqrstuvwxyz0123456=\"v\"]",
                 "rfc5424: PARAM-NAME longer than 32 characters at column 52");
}

static void test_sd_limits(void **state)
{
    fixture *f = *state;
    char m[8192];
    int n = snprintf(m, sizeof(m), "<13>1 - - - - - ");
    for (int i = 0; i < PSB_EVENT_MAX_SD_ELEMENTS; i++)
        n += snprintf(m + n, sizeof(m) - (size_t)n, "[e%d]", i);
    assert_int_equal(parse_n(f, m, (size_t)n), 0);
    assert_int_equal(f->ev->n_sd, PSB_EVENT_MAX_SD_ELEMENTS);
    char want[128];
    snprintf(want, sizeof(want), "rfc5424: more than 32 SD-ELEMENTs at column %d", n + 1);
    n += snprintf(m + n, sizeof(m) - (size_t)n, "[last]");
    assert_int_equal(parse_n(f, m, (size_t)n), -1);
    assert_str(f->ev->error_message, want);

    n = snprintf(m, sizeof(m), "<13>1 - - - - - [a");
    for (int i = 0; i < PSB_EVENT_MAX_SD_PARAMS; i++)
        n += snprintf(m + n, sizeof(m) - (size_t)n, " p%d=\"%d\"", i, i);
    n += snprintf(m + n, sizeof(m) - (size_t)n, "] msg");
    assert_int_equal(parse_n(f, m, (size_t)n), 0);
    assert_int_equal(f->ev->n_sd_params, PSB_EVENT_MAX_SD_PARAMS);
    assert_field(f, "log.syslog.structured_data.a.p127", "127");
    n -= 5;
    n += snprintf(m + n, sizeof(m) - (size_t)n, " over=\"1\"] msg");
    assert_int_equal(parse_n(f, m, (size_t)n), -1);
    assert_non_null(strstr(f->ev->error_buf, "rfc5424: more than 128 SD-PARAMs at column "));
}

/* Every error path, with the field and the column an operator is pointed to. */
static void test_errors(void **state)
{
    fixture *f = *state;
    static const char *const cases[][2] = {
        {"", "rfc5424: invalid PRI at column 1"},
        {"<13", "rfc5424: invalid PRI at column 4"},
        {"<>1 - - - - - -", "rfc5424: invalid PRI at column 2"},
        {"<a>1 - - - - - -", "rfc5424: invalid PRI at column 2"},
        {"<01>1 - - - - - -", "rfc5424: invalid PRI at column 2"},
        {"<00>1 - - - - - -", "rfc5424: invalid PRI at column 2"},
        {"<192>1 - - - - - -", "rfc5424: PRI 192 out of range 0..191 at column 2"},
        {"<1000>1 - - - - - -", "rfc5424: invalid PRI at column 5"},
        {"<13]1 - - - - - -", "rfc5424: invalid PRI at column 4"},
        {"<13>", "rfc5424: invalid VERSION at column 5"},
        {"<13>0 - - - - - -", "rfc5424: invalid VERSION at column 5"},
        {"<13>01 - - - - - -", "rfc5424: invalid VERSION at column 5"},
        {"<13>1000 - - - - - -", "rfc5424: invalid VERSION at column 8"},
        {"<13>1a - - - - - -", "rfc5424: invalid VERSION at column 6"},
        {"<13>1", "rfc5424: missing TIMESTAMP at column 6"},
        {"<13>1 ", "rfc5424: invalid TIMESTAMP at column 7"},
        {"<13>1 -", "rfc5424: missing HOSTNAME at column 8"},
        {"<13>1 2003-10-11T22:14:15Z", "rfc5424: missing HOSTNAME at column 27"},
        {"<13>1 - ", "rfc5424: missing HOSTNAME at column 9"},
        {"<13>1 - h", "rfc5424: missing APP-NAME at column 10"},
        {"<13>1 - h a", "rfc5424: missing PROCID at column 12"},
        {"<13>1 - h a p", "rfc5424: missing MSGID at column 14"},
        {"<13>1 - h a p m", "rfc5424: missing STRUCTURED-DATA at column 16"},
        {"<13>1 - h a p m ", "rfc5424: missing STRUCTURED-DATA at column 17"},
        {"<13>1 -  h a p m -", "rfc5424: invalid HOSTNAME at column 9"},
        {"<13>1 - ho\tst a p m -", "rfc5424: invalid HOSTNAME at column 11"},
        {"<13>1 - h a\xC3\xA9 p m -", "rfc5424: invalid APP-NAME at column 12"},
        {"<13>1 - h a p\n m -", "rfc5424: invalid PROCID at column 14"},
        {"<13>1 - h a p m\r -", "rfc5424: invalid MSGID at column 16"},
        {"<13>1 - - - - - x", "rfc5424: invalid STRUCTURED-DATA at column 17"},
        {"<13>1 - - - - - -x", "rfc5424: expected SP before MSG at column 18"},
        {"<13>1 - - - - - -\tmsg", "rfc5424: expected SP before MSG at column 18"},
        {"<13>1 - - - - - [a]x", "rfc5424: expected SP before MSG at column 20"},
        {"<13>1 - - - - - []", "rfc5424: invalid SD-ID at column 18"},
        {"<13>1 - - - - - [ a]", "rfc5424: invalid SD-ID at column 18"},
        {"<13>1 - - - - - [a\"]", "rfc5424: invalid SD-ID at column 19"},
        {"<13>1 - - - - - [a", "rfc5424: unterminated SD-ELEMENT at column 19"},
        {"<13>1 - - - - - [a b=\"c\"", "rfc5424: unterminated SD-ELEMENT at column 25"},
        {"<13>1 - - - - - [a ]", "rfc5424: invalid PARAM-NAME at column 20"},
        {"<13>1 - - - - - [a =\"c\"]", "rfc5424: invalid PARAM-NAME at column 20"},
        {"<13>1 - - - - - [a b]", "rfc5424: expected '=\"' after PARAM-NAME at column 21"},
        {"<13>1 - - - - - [a b=c]", "rfc5424: expected '=\"' after PARAM-NAME at column 22"},
        {"<13>1 - - - - - [a b=  c]", "rfc5424: expected '=\"' after PARAM-NAME at column 24"},
        {"<13>1 - - - - - [a b =\"c\"]", "rfc5424: expected '=\"' after PARAM-NAME at column 21"},
        {"<13>1 - - - - - [a b=\"c]", "rfc5424: unescaped ']' in PARAM-VALUE at column 24"},
        {"<13>1 - - - - - [a b=\"c", "rfc5424: unterminated PARAM-VALUE at column 24"},
        {"<13>1 - - - - - [a b=\"c\\", "rfc5424: unterminated PARAM-VALUE at column 25"},
        {"<13>1 - - - - - [a b=\"c\"\"]", "rfc5424: invalid SD-PARAM at column 25"},
        {"<13>1 - - - - - [a b=\"c\"d=\"e\"]", "rfc5424: invalid SD-PARAM at column 25"},
        {"<13>1 - - - - - [a b=\"1\"][c][a d=\"2\"]", "rfc5424: duplicate SD-ID at column 30"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_error(f, cases[i][0], cases[i][1]);
}

/* psb_parse never drops: a broken message is a pipeline_error event with its raw text. */
static void test_pipeline_error_json(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "<34>1 2003-02-30T22:14:15.003Z host su - - - hi"), -1);
    assert_string_equal(f->json,
                        "{\"@timestamp\":\"2023-11-14T22:13:20.000Z\",\"event\":{\"created\":"
                        "\"2023-11-14T22:13:20.000Z\",\"kind\":\"pipeline_error\",\"original\":"
                        "\"<34>1 2003-02-30T22:14:15.003Z host su - - - hi\"},\"error\":{"
                        "\"message\":\"rfc5424: invalid TIMESTAMP at column 7\"}}");
}

/* The event is reused: a second message leaves nothing of the first behind. */
static void test_event_reuse(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "<165>1 2003-10-11T22:14:15.003Z h a 1 m [x@2636 k=\"v\\\\\"] msg"),
                     0);
    assert_int_equal(parse(f, "<13>1 - - - - - -"), 0);
    assert_int_equal(f->ev->n_sd, 0);
    assert_int_equal(f->ev->n_labels, 0);
    assert_field(f, "host.hostname", NULL);
    assert_field(f, "message", NULL);
    assert_int_equal(f->ev->timestamp_ms, RECEIVED_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rfc_example_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rfc_example_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rfc_example_3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rfc_example_4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_nilvalues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_header_field_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_utf8_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sd_escapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_space_after_equals_tolerated, setup, teardown),
        cmocka_unit_test(test_direct_call_unescapes_safely),
        cmocka_unit_test_setup_teardown(test_sd_element_without_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_juniper_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pri_and_version_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sd_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_error_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_reuse, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
