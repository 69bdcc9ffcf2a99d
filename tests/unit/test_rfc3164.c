/* RFC 3164: the header fields, timestamps and year inference, zones, the odd
 * lines real senders produce, and the JSON an analyst finally sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pasban/ecs.h"
#include "pasban/event.h"
#include "pasban/parse.h"

static psb_event *ev;

static int64_t at(const char *rfc3339)
{
    int64_t ms = 0;
    assert_int_equal(psb_parse_rfc3339(rfc3339, strlen(rfc3339), &ms), 0);
    return ms;
}

static const char *RECV = "2026-11-23T12:00:00Z";

/* Parse line as RFC 3164, received at recv (RFC 3339), source zone tz seconds east. */
static int parse_at(const char *line, const char *recv, int32_t tz)
{
    psb_parse_opts o = {.format = PSB_FORMAT_RFC3164, .received_ms = at(recv), .tz_offset_s = tz};
    return psb_parse(&o, line, strlen(line), ev);
}

static void parse_ok(const char *line)
{
    assert_int_equal(parse_at(line, RECV, 0), 0);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_EVENT);
}

/* The field as psb_event_get renders it, or NULL when absent. */
static const char *field(const char *name)
{
    static char out[4096];
    char buf[32];
    psb_str v;
    if (!psb_event_get(ev, name, strlen(name), buf, &v))
        return NULL;
    assert_true(v.len < sizeof(out));
    memcpy(out, v.ptr, v.len);
    out[v.len] = '\0';
    return out;
}

#define assert_field(name, want) assert_string_equal(field(name), (want))
#define assert_absent(name) assert_null(field(name))

static void assert_time(const char *want)
{
    assert_int_equal(ev->timestamp_ms, at(want));
}

static void test_rfc3164_section_5_4_examples(void **state)
{
    (void)state;
    parse_ok("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8");
    assert_field("log.syslog.priority", "34");
    assert_field("log.syslog.facility.code", "4");
    assert_field("log.syslog.severity.code", "2");
    assert_field("host.hostname", "mymachine");
    assert_field("process.name", "su");
    assert_absent("log.syslog.procid");
    assert_field("message", "'su root' failed for lonvick on /dev/pts/8");
    assert_time("2026-10-11T22:14:15Z");

    /* No TAG in the usual sense: the first word of the content is taken as it. */
    parse_ok("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!");
    assert_field("log.syslog.priority", "13");
    assert_field("host.hostname", "10.0.0.99");
    assert_field("process.name", "Use");
    assert_field("message", "the BFG!");
    assert_time("2026-02-05T17:32:18Z");

    /* The RFC's examples of a header a relay cannot read: still events. */
    parse_ok("<165>Aug 24 05:34:00 CST 1987 mymachine myproc[10]: %% It's time to make the "
             "do-nuts.  %%  Ingredients: Mix=OK, Jelly=OK # Devices: Mixer=OK");
    assert_field("log.syslog.priority", "165");
    assert_non_null(strstr(field("message"), "It's time to make the do-nuts."));
    parse_ok("<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: "
             "That's All Folks!");
    assert_field("log.syslog.priority", "0");
    assert_absent("host.hostname");
    assert_field("message", "1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 "
                            "sched[0]: That's All Folks!");
    assert_int_equal(ev->timestamp_ms, at(RECV));
}

static void test_auth_log_line_without_pri(void **state)
{
    (void)state;
    parse_ok("Nov 23 10:15:42 gw1 sshd[24200]: Failed password for invalid user admin from "
             "203.0.113.45 port 52144 ssh2");
    assert_absent("log.syslog.priority");
    assert_absent("log.syslog.facility.code");
    assert_field("host.hostname", "gw1");
    assert_field("process.name", "sshd");
    assert_field("log.syslog.appname", "sshd");
    assert_field("log.syslog.procid", "24200");
    assert_field("process.pid", "24200");
    assert_field("message",
                 "Failed password for invalid user admin from 203.0.113.45 port 52144 ssh2");
    assert_time("2026-11-23T10:15:42Z");
    assert_int_equal(ev->created_ms, at(RECV));

    /* loghub's files end lines in CRLF: the CR is not part of the message. */
    parse_ok("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown\r\n");
    assert_field("process.name", "sshd(pam_unix)");
    assert_field("process.pid", "19939");
    assert_field("message", "check pass; user unknown");
}

static void test_timestamp_forms(void **state)
{
    (void)state;
    parse_ok("<13>Nov  3 01:02:03 h a: x"); /* space-padded day */
    assert_time("2026-11-03T01:02:03Z");
    parse_ok("<13>Nov 03 01:02:03 h a: x"); /* zero-padded day */
    assert_time("2026-11-03T01:02:03Z");
    parse_ok("<13>Nov 3 01:02:03 h a: x"); /* one space, one digit */
    assert_time("2026-11-03T01:02:03Z");
    parse_ok("<13>NOV 22 00:00:33 192.168.33.8-1 CMDLOGGER[165319912]: logged in");
    assert_time("2026-11-22T00:00:33Z");
    assert_field("host.hostname", "192.168.33.8-1");
    parse_ok("<13>Nov 20 08:09:10.123456 h a: x"); /* fraction, kept to the millisecond */
    assert_time("2026-11-20T08:09:10.123Z");
    parse_ok("<13>Nov 20 2024 08:09:10 h a: x"); /* year before the time */
    assert_time("2024-11-20T08:09:10Z");
    parse_ok("<190>Apr 15 21:28:13 2007 linksys app: msg"); /* year after the time */
    assert_time("2007-04-15T21:28:13Z");
    assert_field("host.hostname", "linksys");
    assert_field("process.name", "app");
    assert_field("message", "msg");
    parse_ok("<167>Mar 7 19:06:53: example tag: testmessage"); /* ':' after the time */
    assert_field("host.hostname", "example");
    assert_field("process.name", "tag");
    assert_field("message", "testmessage");

    /* RFC 3339, as rsyslog writes with high-precision timestamps. */
    parse_ok("2013-10-30T14:51:24.139258+01:00 host prog[42]: msg text");
    assert_time("2013-10-30T13:51:24.139Z");
    assert_field("host.hostname", "host");
    assert_field("process.name", "prog");
    assert_field("process.pid", "42");
    assert_field("message", "msg text");
    parse_ok("<14>2010-08-30T23:00:05Z X4711 app: hello");
    assert_time("2010-08-30T23:00:05Z");
    parse_ok("<7>2006-11-10T10:43:21.15600000000000000000000000000000000000+01:00 bzorp "
             "openvpn[2499]: PTHREAD support initialized");
    assert_time("2006-11-10T09:43:21.156Z");
    assert_field("host.hostname", "bzorp");
    /* Without a zone the source's configured zone applies. */
    assert_int_equal(parse_at("<7>2006-11-10T10:43:21.156 bzorp a: b", RECV, 3600), 0);
    assert_time("2006-11-10T09:43:21.156Z");
    /* A date that does not exist keeps the receive time but still parses the rest. */
    parse_ok("<13>Feb 30 2026 01:02:03 h a: x");
    assert_int_equal(ev->timestamp_ms, at(RECV));
    assert_field("host.hostname", "h");
}

static void test_year_inference_at_year_boundary(void **state)
{
    (void)state;
    /* Dec 31 line that arrives just after New Year belongs to the old year. */
    assert_int_equal(parse_at("<13>Dec 31 23:59:58 h a: x", "2027-01-01T00:00:03Z", 0), 0);
    assert_time("2026-12-31T23:59:58Z");
    /* A Jan 1 line from a clock a little ahead, received on Dec 31: the new year. */
    assert_int_equal(parse_at("<13>Jan  1 00:00:05 h a: x", "2026-12-31T23:59:50Z", 0), 0);
    assert_time("2027-01-01T00:00:05Z");
    /* Up to a day ahead is still this year; more is last year. */
    assert_int_equal(parse_at("<13>Nov 24 11:59:00 h a: x", RECV, 0), 0);
    assert_time("2026-11-24T11:59:00Z");
    assert_int_equal(parse_at("<13>Nov 24 12:00:01 h a: x", RECV, 0), 0);
    assert_time("2025-11-24T12:00:01Z");
    /* Feb 29 goes back to the last leap year. */
    assert_int_equal(parse_at("<13>Feb 29 10:00:00 h a: x", "2026-03-01T00:00:00Z", 0), 0);
    assert_time("2024-02-29T10:00:00Z");
}

static void test_zone_offsets(void **state)
{
    (void)state;
    /* Tehran, +03:30: the device's 10:00 is 06:30 UTC. */
    assert_int_equal(parse_at("<13>Nov 23 10:00:00 h a: x", RECV, 12600), 0);
    assert_time("2026-11-23T06:30:00Z");
    /* West of UTC. */
    assert_int_equal(parse_at("<13>Nov 23 10:00:00 h a: x", RECV, -5 * 3600), 0);
    assert_time("2026-11-23T15:00:00Z");
    /* The year is inferred in the source's zone: 00:30 on Jan 1 in Tehran is
     * still Dec 31 in UTC, and the receive time is 00:45 Jan 1 there. */
    assert_int_equal(parse_at("<13>Jan  1 00:30:00 h a: x", "2026-12-31T21:15:00Z", 12600), 0);
    assert_time("2026-12-31T21:00:00Z");
    /* An explicit offset wins over the configured zone. */
    assert_int_equal(parse_at("2026-11-23T10:00:00+02:00 h a: x", RECV, 12600), 0);
    assert_time("2026-11-23T08:00:00Z");
}

static void test_tag_forms(void **state)
{
    (void)state;
    parse_ok("<7>Aug 29 02:00:00 bzorp ctld/snmpd[2499]: PTHREAD support initialized");
    assert_field("process.name", "ctld/snmpd");
    assert_field("process.pid", "2499");
    parse_ok("<7>Aug 29 02:00:00 bzorp ctld/snmpd[2499]:"); /* no message at all */
    assert_field("process.name", "ctld/snmpd");
    assert_absent("message");
    parse_ok("<175>Oct 16 2009 23:47:31 hostname tag[1234] This is a message"); /* no colon */
    assert_field("process.name", "tag");
    assert_field("process.pid", "1234");
    assert_field("message", "This is a message");
    parse_ok("<189> program[pid]: message"); /* non-numeric procid: no process.pid */
    assert_field("log.syslog.procid", "pid");
    assert_absent("process.pid");
    parse_ok("<13>Nov 23 10:00:00 h su:no space after the colon");
    assert_field("process.name", "su");
    assert_field("message", "no space after the colon");
    parse_ok("<13>Nov 23 10:00:00 h app:  two spaces"); /* only one separator is removed */
    assert_field("message", " two spaces");
    parse_ok("<167>Feb 18 16:01:59 serverX -- MARK --");
    assert_field("host.hostname", "serverX");
    assert_field("process.name", "--");
    assert_field("message", "MARK --");
    parse_ok("<13>Nov 23 10:00:00 h app[12 unclosed: text");
    assert_field("process.name", "app[12");
    assert_absent("log.syslog.procid");
}

static void test_hostname_rules(void **state)
{
    (void)state;
    parse_ok("<14>Aug 30 23:00:05 X4711"); /* one word after the time is the hostname */
    assert_field("host.hostname", "X4711");
    assert_absent("process.name");
    assert_absent("message");
    parse_ok("<0>Jan 10 01:00:00 0002:: prg0: msgtxt"); /* IPv6 ending in "::" */
    assert_field("host.hostname", "0002::");
    assert_field("process.name", "prg0");
    parse_ok("<0>Jan 10 01:00:00 0001:BABA:BA00:DAB::BAB0 prg0");
    assert_field("host.hostname", "0001:BABA:BA00:DAB::BAB0");
    assert_field("process.name", "prg0");
    /* Words that cannot be hostnames: the sender left the hostname out. */
    parse_ok("<7>2006-10-29T02:00:00.156+01:00 %bzorp openvpn[2499]: PTHREAD");
    assert_absent("host.hostname");
    assert_field("process.name", "%bzorp");
    assert_field("message", "openvpn[2499]: PTHREAD");
    parse_ok("<13>Jan 22 18:34:00 filterlog: 65,,,0,vmx1,match,pass");
    assert_absent("host.hostname");
    assert_field("process.name", "filterlog");
    parse_ok("<13>Jan 22 18:34:00 sshd[77]: local message");
    assert_absent("host.hostname");
    assert_field("process.pid", "77");
    /* AIX relays name the origin in the text. */
    parse_ok("<38>Sep 22 10:11:56 Message forwarded from cdaix66: sshd[679960]: Accepted "
             "publickey for nagios from 1.9.1.1 port 42096 ssh2");
    assert_field("host.hostname", "cdaix66");
    assert_field("process.name", "sshd");
    assert_field("message", "Accepted publickey for nagios from 1.9.1.1 port 42096 ssh2");
}

static void test_odd_input_still_gives_an_event(void **state)
{
    (void)state;
    /* Empty input is the only thing that cannot be an event. */
    assert_int_equal(parse_at("", RECV, 0), -1);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_PIPELINE_ERROR);
    assert_field("error.message", "empty message");
    assert_int_equal(parse_at(" \r\n", RECV, 0), -1);

    /* A malformed PRI: the whole line is the message, nothing is guessed. */
    parse_ok("<189 Feb  3 12:34:56 host program[pid]: message");
    assert_absent("log.syslog.priority");
    assert_absent("host.hostname");
    assert_field("message", "<189 Feb  3 12:34:56 host program[pid]: message");
    parse_ok("<999>Feb  3 12:34:56 host program: message");
    assert_absent("log.syslog.priority");
    assert_field("message", "<999>Feb  3 12:34:56 host program: message");

    /* No header at all: the text stays whole unless a TAG is obvious. */
    parse_ok("some message");
    assert_absent("process.name");
    assert_field("message", "some message");
    assert_int_equal(ev->timestamp_ms, at(RECV));
    parse_ok("<15> openvpn[2499]: PTHREAD support initialized");
    assert_field("log.syslog.priority", "15");
    assert_absent("host.hostname");
    assert_field("process.name", "openvpn");
    assert_field("process.pid", "2499");
    parse_ok("<27>xapi: [error|xen3|15] Connection to master died.");
    assert_field("process.name", "xapi");
    assert_field("message", "[error|xen3|15] Connection to master died.");
    parse_ok("<189>65536");
    assert_field("process.name", "65536");
    parse_ok("<14>");
    assert_field("log.syslog.priority", "14");
    assert_absent("message");
    parse_ok("<14>Aug 30 23:00:05 ");
    assert_absent("host.hostname");
    assert_time("2026-08-30T23:00:05Z");

    /* Bytes that are not text at all. */
    static const char bin[] = "\x01\x02\xff\xfe<\x80>]:[";
    assert_int_equal(parse_at(bin, RECV, 0), 0);
    assert_non_null(field("message"));
    /* Truncated in the middle of a timestamp. */
    parse_ok("<13>Nov 23 10:1");
    assert_field("message", "Nov 23 10:1");
    parse_ok("<13>Nov 23 2026 10");
    assert_field("message", "Nov 23 2026 10");
    assert_int_equal(ev->timestamp_ms, at(RECV));
}

static void test_auto_detection_routes_here(void **state)
{
    (void)state;
    psb_parse_opts o = {.format = PSB_FORMAT_AUTO, .received_ms = at(RECV)};
    const char *line = "<38>Nov 23 10:00:00 gw1 sshd[1]: Accepted password for root";
    assert_int_equal(psb_parse(&o, line, strlen(line), ev), 0);
    assert_field("host.hostname", "gw1");
    assert_field("process.name", "sshd");
}

static void test_json_shape(void **state)
{
    (void)state;
    psb_ecs_writer *w = psb_ecs_writer_new();
    const char *out;
    size_t len;
    psb_parse_opts o = {.format = PSB_FORMAT_RFC3164,
                        .received_ms = at(RECV),
                        .organization_id = PSB_STR_LIT("op-alborz"),
                        .observer_ip = PSB_STR_LIT("192.0.2.10")};
    const char *line = "<38>Nov 23 10:15:42 gw1 sshd[24200]: Accepted password for root from "
                       "198.51.100.4 port 50022 ssh2";
    assert_int_equal(psb_parse(&o, line, strlen(line), ev), 0);
    assert_int_equal(psb_ecs_write(w, ev, &out, &len), 0);
    const char *want =
        "{\"@timestamp\":\"2026-11-23T10:15:42.000Z\",\"event\":{\"created\":\"2026-11-23T12:00:"
        "00.000Z\",\"kind\":\"event\",\"original\":\"<38>Nov 23 10:15:42 gw1 sshd[24200]: "
        "Accepted password for root from 198.51.100.4 port 50022 ssh2\"},\"organization\":{\"id\":"
        "\"op-alborz\"},\"observer\":{\"ip\":\"192.0.2.10\"},\"host\":{\"hostname\":\"gw1\"},"
        "\"process\":{\"name\":\"sshd\",\"pid\":24200},\"log\":{\"syslog\":{\"priority\":38,"
        "\"facility\":{\"code\":4},\"severity\":{\"code\":6},\"appname\":\"sshd\",\"procid\":"
        "\"24200\"}},\"message\":\"Accepted password for root from 198.51.100.4 port 50022 ssh2\"}";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);

    /* No PRI, no header: only what is known, nothing null. */
    line = "some message";
    assert_int_equal(psb_parse(&o, line, strlen(line), ev), 0);
    assert_int_equal(psb_ecs_write(w, ev, &out, &len), 0);
    want = "{\"@timestamp\":\"2026-11-23T12:00:00.000Z\",\"event\":{\"created\":\"2026-11-23T12:"
           "00:00.000Z\",\"kind\":\"event\",\"original\":\"some message\"},\"organization\":{"
           "\"id\":\"op-alborz\"},\"observer\":{\"ip\":\"192.0.2.10\"},\"message\":\"some "
           "message\"}";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);

    /* An empty line: a pipeline_error with the reason. */
    assert_int_equal(psb_parse(&o, "", 0, ev), -1);
    assert_int_equal(psb_ecs_write(w, ev, &out, &len), 0);
    assert_non_null(memmem(out, len, "\"kind\":\"pipeline_error\"", 23));
    assert_non_null(memmem(out, len, "\"error\":{\"message\":\"empty message\"}", 35));
    psb_ecs_writer_free(w);
}

static int setup(void **state)
{
    (void)state;
    ev = psb_event_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    psb_event_free(ev);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3164_section_5_4_examples),
        cmocka_unit_test(test_auth_log_line_without_pri),
        cmocka_unit_test(test_timestamp_forms),
        cmocka_unit_test(test_year_inference_at_year_boundary),
        cmocka_unit_test(test_zone_offsets),
        cmocka_unit_test(test_tag_forms),
        cmocka_unit_test(test_hostname_rules),
        cmocka_unit_test(test_odd_input_still_gives_an_event),
        cmocka_unit_test(test_auto_detection_routes_here),
        cmocka_unit_test(test_json_shape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
