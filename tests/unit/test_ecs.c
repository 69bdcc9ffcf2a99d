/* The ECS writer: the exact line that goes to Kafka and to --parse output. Field
 * names and nesting are the contract of design.md's event table, so these tests
 * compare whole lines. */
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

#define RECEIVED 1795428000000 /* 2026-11-23T10:00:00Z */

static void assert_written(psb_ecs_writer *w, const psb_event *ev, const char *want)
{
    const char *out;
    size_t len;
    assert_int_equal(psb_ecs_write(w, ev, &out, &len), 0);
    char *s = strndup(out, len);
    assert_string_equal(s, want);
    free(s);
}

/* An event as the RFC 5424 parser fills it for RFC 5424's own example 3 (section 6.5). */
static void fill_5424(psb_event *ev, const char *raw)
{
    psb_event_reset(ev);
    ev->original = psb_str_make(raw, strlen(raw));
    ev->created_ms = RECEIVED;
    ev->timestamp_ms = 1065910455003; /* 2003-10-11T22:14:15.003Z */
    ev->organization_id = PSB_STR_LIT("op-a");
    ev->observer_ip = PSB_STR_LIT("192.0.2.7");
    ev->priority = 165;
    ev->version = 1;
    ev->hostname = PSB_STR_LIT("mymachine.example.com");
    ev->appname = PSB_STR_LIT("evntslog");
    ev->procid = PSB_STR_NULL; /* NILVALUE */
    ev->msgid = PSB_STR_LIT("ID47");
    ev->sd[0] = (psb_sd_element){PSB_STR_LIT("exampleSDID@32473"), 0, 3};
    ev->sd_params[0] = (psb_kv){PSB_STR_LIT("iut"), PSB_STR_LIT("3")};
    ev->sd_params[1] = (psb_kv){PSB_STR_LIT("eventSource"), PSB_STR_LIT("Application")};
    ev->sd_params[2] = (psb_kv){PSB_STR_LIT("eventID"), PSB_STR_LIT("1011")};
    ev->n_sd = 1;
    ev->n_sd_params = 3;
    ev->message = PSB_STR_LIT("An application event log entry...");
}

static void test_syslog_event_exact(void **state)
{
    (void)state;
    psb_ecs_writer *w = psb_ecs_writer_new();
    psb_event *ev = psb_event_new();
    const char *raw = "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
                      "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] "
                      "An application event log entry...";
    fill_5424(ev, raw);
    assert_written(
        w, ev,
        "{\"@timestamp\":\"2003-10-11T22:14:15.003Z\",\"event\":{\"created\":"
        "\"2026-11-23T10:00:00.000Z\",\"kind\":\"event\",\"original\":\"<165>1 "
        "2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 "
        "iut=\\\"3\\\" eventSource=\\\"Application\\\" eventID=\\\"1011\\\"] An application event "
        "log entry...\"},\"organization\":{\"id\":\"op-a\"},\"observer\":{\"ip\":\"192.0.2.7\"},"
        "\"host\":{\"hostname\":\"mymachine.example.com\"},\"process\":{\"name\":\"evntslog\"},"
        "\"log\":{\"syslog\":{\"priority\":165,\"facility\":{\"code\":20},\"severity\":{\"code\":5}"
        ","
        "\"version\":1,\"appname\":\"evntslog\",\"msgid\":\"ID47\",\"structured_data\":{"
        "\"exampleSDID@32473\":{\"iut\":\"3\",\"eventSource\":\"Application\",\"eventID\":"
        "\"1011\"}}}},\"message\":\"An application event log entry...\"}");

    /* An RFC 3164 sshd line with a Cisco-style label: pid is a number, procid a string. */
    const char *line = "<38>Dec 10 06:55:46 gw1 sshd[24200]: Failed password for root";
    psb_event_reset(ev);
    ev->original = psb_str_make(line, strlen(line));
    ev->created_ms = RECEIVED;
    ev->timestamp_ms = 1796885746000; /* 2026-12-10T06:55:46Z */
    ev->priority = 38;
    ev->hostname = PSB_STR_LIT("gw1");
    ev->appname = PSB_STR_LIT("sshd");
    ev->procid = PSB_STR_LIT("24200");
    ev->message = PSB_STR_LIT("Failed password for root");
    psb_event_add_label(ev, PSB_STR_LIT("mnemonic"), PSB_STR_LIT("SEC_LOGIN-4-LOGIN_FAILED"));
    assert_written(w, ev,
                   "{\"@timestamp\":\"2026-12-10T06:55:46.000Z\",\"event\":{\"created\":"
                   "\"2026-11-23T10:00:00.000Z\",\"kind\":\"event\",\"original\":\"<38>Dec 10 "
                   "06:55:46 gw1 sshd[24200]: Failed password for root\"},\"host\":{\"hostname\":"
                   "\"gw1\"},\"process\":{\"name\":\"sshd\",\"pid\":24200},\"log\":{\"syslog\":{"
                   "\"priority\":38,\"facility\":{\"code\":4},\"severity\":{\"code\":6},"
                   "\"appname\":\"sshd\",\"procid\":\"24200\"}},\"message\":\"Failed password for "
                   "root\",\"labels\":{\"mnemonic\":\"SEC_LOGIN-4-LOGIN_FAILED\"}}");
    psb_event_free(ev);
    psb_ecs_writer_free(w);
}

static void test_absent_fields_omitted(void **state)
{
    (void)state;
    psb_ecs_writer *w = psb_ecs_writer_new();
    psb_event *ev = psb_event_new();
    /* Only what every event has: a pipeline_error with nothing parsed. */
    ev->original = PSB_STR_LIT("\x01garbage");
    ev->created_ms = RECEIVED;
    ev->timestamp_ms = RECEIVED;
    psb_event_set_error(ev, "rfc3164: %s", "no header");
    assert_written(w, ev,
                   "{\"@timestamp\":\"2026-11-23T10:00:00.000Z\",\"event\":{\"created\":"
                   "\"2026-11-23T10:00:00.000Z\",\"kind\":\"pipeline_error\",\"original\":"
                   "\"\\u0001garbage\"},\"error\":{\"message\":\"rfc3164: no header\"}}");
    /* A non-numeric procid gives log.syslog.procid but no process.pid (nor process). */
    psb_event_reset(ev);
    ev->original = PSB_STR_LIT("x");
    ev->procid = PSB_STR_LIT("worker-3");
    assert_written(w, ev,
                   "{\"@timestamp\":\"1970-01-01T00:00:00.000Z\",\"event\":{\"created\":"
                   "\"1970-01-01T00:00:00.000Z\",\"kind\":\"event\",\"original\":\"x\"},\"log\":{"
                   "\"syslog\":{\"procid\":\"worker-3\"}}}");
    psb_event_free(ev);
    psb_ecs_writer_free(w);
}

static void test_escapes_and_utf8_repair(void **state)
{
    (void)state;
    psb_ecs_writer *w = psb_ecs_writer_new();
    psb_event *ev = psb_event_new();
    /* Control bytes, quotes and backslashes escaped as yajl does; valid UTF-8
     * (2, 3 and 4 bytes) kept; each bad byte (lone continuation, truncated
     * sequence, overlong, surrogate, Latin-1) becomes U+FFFD. */
    static const char raw[] = "a\"b\\c/\t\n\r\b\f\x1f\x7f \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
                              "\x80 \xc3 \xc0\xaf \xed\xa0\x80 caf\xe9";
    ev->original = psb_str_make(raw, sizeof(raw) - 1);
    ev->message = ev->original;
    ev->timestamp_ms = RECEIVED;
    ev->created_ms = RECEIVED;
    const char *want_str = "\"a\\\"b\\\\c/\\t\\n\\r\\b\\f\\u001F\x7f \xc3\xa9 \xe2\x82\xac "
                           "\xf0\x9f\x98\x80 \xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd caf\xef\xbf\xbd\"";
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"@timestamp\":\"2026-11-23T10:00:00.000Z\",\"event\":{\"created\":"
             "\"2026-11-23T10:00:00.000Z\",\"kind\":\"event\",\"original\":%s},\"message\":%s}",
             want_str, want_str);
    assert_written(w, ev, want);
    psb_event_free(ev);
    psb_ecs_writer_free(w);
}

static void test_long_strings_cross_word_boundaries(void **state)
{
    (void)state;
    /* The writer scans eight bytes at a time: put a byte that needs escaping at
     * every offset of a long string and check each comes out right. */
    psb_ecs_writer *w = psb_ecs_writer_new();
    psb_event *ev = psb_event_new();
    char raw[40], want[512];
    for (size_t pos = 0; pos < sizeof(raw); pos++) {
        memset(raw, 'x', sizeof(raw));
        raw[pos] = '"';
        psb_event_reset(ev);
        ev->original = PSB_STR_LIT("o");
        ev->message = psb_str_make(raw, sizeof(raw));
        snprintf(want, sizeof(want),
                 "{\"@timestamp\":\"1970-01-01T00:00:00.000Z\",\"event\":{\"created\":"
                 "\"1970-01-01T00:00:00.000Z\",\"kind\":\"event\",\"original\":\"o\"},"
                 "\"message\":\"%.*s\\\"%.*s\"}",
                 (int)pos, raw, (int)(sizeof(raw) - pos - 1), raw + pos + 1);
        assert_written(w, ev, want);
    }
    psb_event_free(ev);
    psb_ecs_writer_free(w);
}

static void test_json_origin_merge_exact(void **state)
{
    (void)state;
    psb_ecs_writer *w = psb_ecs_writer_new();
    psb_event *ev = psb_event_new();
    psb_parse_opts o = {.format = PSB_FORMAT_JSON,
                        .received_ms = RECEIVED,
                        .organization_id = PSB_STR_LIT("op-c"),
                        .observer_ip = PSB_STR_LIT("203.0.113.9")};
    const char *in = "{\"message\":\"VPN up\",\"@timestamp\":\"2026-11-23T09:59:58.5Z\",\"event\":"
                     "{\"action\":\"tunnel-up\",\"kind\":\"alert\"},\"organization.id\":\"op-x\","
                     "\"tags\":[\"vpn\",1,true,null],\"observer\":\"fw\"}";
    assert_int_equal(psb_parse(&o, in, strlen(in), ev), 0);
    /* @timestamp leads; the body's order is kept; its event object keeps "action"
     * and gets our kind, created and original; the forged organization.id and
     * the non-object "observer" give way to the pipeline's values. */
    assert_written(w, ev,
                   "{\"@timestamp\":\"2026-11-23T09:59:58.500Z\",\"message\":\"VPN up\",\"event\":"
                   "{\"action\":\"tunnel-up\",\"created\":\"2026-11-23T10:00:00.000Z\",\"kind\":"
                   "\"event\",\"original\":\"{\\\"message\\\":\\\"VPN up\\\",\\\"@timestamp\\\":"
                   "\\\"2026-11-23T09:59:58.5Z\\\",\\\"event\\\":{\\\"action\\\":\\\"tunnel-up\\\","
                   "\\\"kind\\\":\\\"alert\\\"},\\\"organization.id\\\":\\\"op-x\\\",\\\"tags\\\":["
                   "\\\"vpn\\\",1,true,null],\\\"observer\\\":\\\"fw\\\"}\"},\"tags\":[\"vpn\",1,"
                   "true,null],\"organization\":{\"id\":\"op-c\"},\"observer\":{\"ip\":"
                   "\"203.0.113.9\"}}");
    psb_event_free(ev);
    psb_ecs_writer_free(w);
}

static void test_writer_reuse_and_growth(void **state)
{
    (void)state;
    /* A 64 KiB message of control bytes (6x on output) after a small one, then a
     * small one again: the reused buffer grows and the next line is not polluted. */
    psb_ecs_writer *w = psb_ecs_writer_new();
    psb_event *ev = psb_event_new();
    size_t n = PSB_MAX_MESSAGE;
    char *big = malloc(n);
    memset(big, 0x01, n);
    ev->original = psb_str_make(big, n);
    const char *out;
    size_t len;
    assert_int_equal(psb_ecs_write(w, ev, &out, &len), 0);
    assert_true(len > n * 6);
    assert_memory_equal(out + len - 9, "\\u0001\"}}", 9);
    psb_event_reset(ev);
    ev->original = PSB_STR_LIT("small");
    assert_written(w, ev,
                   "{\"@timestamp\":\"1970-01-01T00:00:00.000Z\",\"event\":{\"created\":"
                   "\"1970-01-01T00:00:00.000Z\",\"kind\":\"event\",\"original\":\"small\"}}");
    free(big);
    psb_event_free(ev);
    psb_ecs_writer_free(w);
}

static void test_times_across_days(void **state)
{
    (void)state;
    /* The writer caches the date part: changing days, pre-1970 and far-future
     * times must still be right. */
    psb_ecs_writer *w = psb_ecs_writer_new();
    psb_event *ev = psb_event_new();
    const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {1795428000000, "2026-11-23T10:00:00.000Z"}, {1795478399999, "2026-11-23T23:59:59.999Z"},
        {1795478400000, "2026-11-24T00:00:00.000Z"}, {-1, "1969-12-31T23:59:59.999Z"},
        {951782400000, "2000-02-29T00:00:00.000Z"},  {253402300799999, "9999-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        psb_event_reset(ev);
        ev->original = PSB_STR_LIT("t");
        ev->timestamp_ms = cases[i].ms;
        ev->created_ms = cases[i].ms;
        char want[256];
        snprintf(want, sizeof(want),
                 "{\"@timestamp\":\"%s\",\"event\":{\"created\":\"%s\",\"kind\":\"event\","
                 "\"original\":\"t\"}}",
                 cases[i].text, cases[i].text);
        assert_written(w, ev, want);
    }
    psb_event_free(ev);
    psb_ecs_writer_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syslog_event_exact),
        cmocka_unit_test(test_absent_fields_omitted),
        cmocka_unit_test(test_escapes_and_utf8_repair),
        cmocka_unit_test(test_long_strings_cross_word_boundaries),
        cmocka_unit_test(test_json_origin_merge_exact),
        cmocka_unit_test(test_writer_reuse_and_growth),
        cmocka_unit_test(test_times_across_days),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
