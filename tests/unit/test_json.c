/* The JSON parser: HTTP input and JSONL files becoming events. What a user sees:
 * which fields a body's object lands in, that an operator tag cannot be forged
 * from the body, that limits and bad JSON give a kept event with a clear reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "pasban/ecs.h"
#include "pasban/parse.h"

#define RECEIVED 1795428000000 /* 2026-11-23T10:00:00Z */

static psb_parse_opts opts_json(void)
{
    psb_parse_opts o = {.format = PSB_FORMAT_JSON, .received_ms = RECEIVED};
    o.organization_id = PSB_STR_LIT("op-a");
    o.observer_ip = PSB_STR_LIT("192.0.2.10");
    return o;
}

static int parse(const psb_parse_opts *o, const char *s, psb_event *ev)
{
    return psb_parse(o, s, strlen(s), ev);
}

static void assert_str(psb_str s, const char *want)
{
    if (!want) {
        assert_null(s.ptr);
        return;
    }
    assert_non_null(s.ptr);
    char buf[512];
    snprintf(buf, sizeof(buf), "%.*s", (int)s.len, s.ptr);
    assert_string_equal(buf, want);
}

static void assert_get(const psb_event *ev, const char *name, const char *want)
{
    char buf[32];
    psb_str out;
    int rc = psb_event_get(ev, name, strlen(name), buf, &out);
    if (!want) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, 1);
    assert_str(out, want);
}

/* The written event, as a NUL-terminated string owned by the caller. */
static char *render(const psb_event *ev)
{
    psb_ecs_writer *w = psb_ecs_writer_new();
    const char *out;
    size_t len;
    assert_int_equal(psb_ecs_write(w, ev, &out, &len), 0);
    char *s = strndup(out, len);
    psb_ecs_writer_free(w);
    return s;
}

static void test_nested_fields(void **state)
{
    (void)state;
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    const char *in =
        "{\"@timestamp\":\"2026-11-22T08:30:00.250+03:30\",\"message\":\"Failed password"
        " for root\",\"host\":{\"hostname\":\"bras-7\"},\"process\":{\"name\":\"sshd\","
        "\"pid\":4242},\"log\":{\"syslog\":{\"priority\":38,\"version\":1,\"msgid\":"
        "\"AUTH\",\"structured_data\":{\"origin@32473\":{\"ip\":\"10.1.2.3\"}}}},"
        "\"labels\":{\"site\":\"thr-1\",\"rack\":12}}";
    assert_int_equal(parse(&o, in, ev), 0);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_EVENT);
    assert_int_equal(ev->timestamp_ms, 1795323600250); /* 05:00:00.250Z */
    assert_int_equal(ev->created_ms, RECEIVED);
    assert_str(ev->message, "Failed password for root");
    assert_str(ev->hostname, "bras-7");
    assert_str(ev->appname, "sshd");
    assert_str(ev->procid, "4242");
    assert_str(ev->msgid, "AUTH");
    assert_int_equal(ev->priority, 38);
    assert_int_equal(ev->version, 1);
    assert_int_equal(ev->n_sd, 1);
    assert_str(ev->sd[0].id, "origin@32473");
    assert_int_equal(ev->sd[0].n_params, 1);
    assert_str(ev->sd_params[0].value, "10.1.2.3");
    assert_int_equal(ev->n_labels, 2);
    assert_get(ev, "labels.site", "thr-1");
    assert_get(ev, "labels.rack", "12");
    assert_get(ev, "process.pid", "4242");
    assert_get(ev, "log.syslog.structured_data.origin@32473.ip", "10.1.2.3");
    assert_str(ev->original, in);
    assert_str(ev->organization_id, "op-a");
    psb_event_free(ev);
}

static void test_dotted_keys_equal_nested(void **state)
{
    (void)state;
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    const char *in =
        "{\"host.hostname\":\"fw-2\",\"process.name\":\"charon\",\"log.syslog.procid\":"
        "\"77\",\"log.syslog.appname\":\"ipsec\",\"log.syslog.facility.code\":4,"
        "\"log\":{\"syslog.severity.code\":3},\"labels.vendor\":\"strongswan\","
        "\"message\":\"IKE_SA deleted\"}";
    assert_int_equal(parse(&o, in, ev), 0);
    assert_str(ev->hostname, "fw-2");
    assert_str(ev->appname, "charon"); /* process.name wins over log.syslog.appname */
    assert_str(ev->procid, "77");
    assert_int_equal(ev->priority, 4 * 8 + 3); /* from facility and severity */
    assert_int_equal(ev->n_labels, 1);
    assert_str(ev->labels[0].key, "vendor");
    assert_str(ev->labels[0].value, "strongswan");
    assert_get(ev, "host.hostname", "fw-2");
    assert_get(ev, "message", "IKE_SA deleted");
    psb_event_free(ev);
}

static void test_other_shapes_stay_in_the_tree(void **state)
{
    (void)state;
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    /* Wrong types for known fields are not taken into the struct, but kept. */
    const char *in =
        "{\"message\":{\"text\":\"x\"},\"host\":\"not-an-object\",\"process\":{\"pid\":"
        "\"abc\"},\"user\":{\"name\":\"alice\",\"roles\":[\"a\",\"b\"]},\"ok\":true,"
        "\"n\":null,\"f\":1.5e3}";
    assert_int_equal(parse(&o, in, ev), 0);
    assert_null(ev->message.ptr);
    assert_null(ev->hostname.ptr);
    assert_str(ev->procid, "abc");
    assert_get(ev, "process.pid", NULL); /* not numeric: no process.pid */
    assert_get(ev, "user.name", "alice");
    assert_get(ev, "ok", "true");
    assert_get(ev, "f", "1.5e3");
    assert_get(ev, "n", NULL);
    assert_get(ev, "user.roles", NULL);
    char *out = render(ev);
    assert_non_null(strstr(out, "\"user\":{\"name\":\"alice\",\"roles\":[\"a\",\"b\"]}"));
    assert_non_null(strstr(out, "\"f\":1.5e3"));
    assert_non_null(strstr(out, "\"n\":null"));
    assert_non_null(strstr(out, "\"message\":{\"text\":\"x\"}"));
    free(out);
    psb_event_free(ev);
}

static void test_body_cannot_claim_pipeline_fields(void **state)
{
    (void)state;
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    const char *in = "{\"organization\":{\"id\":\"op-evil\"},\"observer.ip\":\"6.6.6.6\",\"event\":"
                     "{\"kind\":\"pipeline_error\",\"original\":\"forged\",\"created\":"
                     "\"2001-01-01T00:00:00Z\",\"dataset\":\"vpn\"},\"error.message\":\"x\"}";
    assert_int_equal(parse(&o, in, ev), 0);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_EVENT);
    assert_str(ev->organization_id, "op-a");
    assert_str(ev->observer_ip, "192.0.2.10");
    assert_str(ev->original, in);
    assert_int_equal(ev->created_ms, RECEIVED);
    assert_null(ev->error_message.ptr);
    char *out = render(ev);
    assert_null(strstr(out, "{\"id\":\"op-evil\"}"));
    assert_null(strstr(out, "6.6.6.6\"}")); /* only inside event.original, escaped */
    assert_non_null(strstr(out, "\"organization\":{\"id\":\"op-a\"}"));
    assert_non_null(strstr(out, "\"observer\":{\"ip\":\"192.0.2.10\"}"));
    /* The body's own event fields that are not ours survive next to ours. */
    assert_non_null(strstr(out, "\"dataset\":\"vpn\""));
    assert_non_null(strstr(out, "\"kind\":\"event\""));
    assert_non_null(strstr(out, "\"created\":\"2026-11-23T10:00:00.000Z\""));
    free(out);
    psb_event_free(ev);
}

static void test_own_events_round_trip(void **state)
{
    (void)state;
    psb_parse_opts o = opts_json();
    o.own_events = true;
    o.organization_id = PSB_STR_NULL;
    o.observer_ip = PSB_STR_NULL;
    psb_event *ev = psb_event_new();
    const char *in = "{\"@timestamp\":\"2026-11-20T01:02:03.004Z\",\"event\":{\"created\":"
                     "\"2026-11-20T01:02:04.000Z\",\"kind\":\"pipeline_error\",\"original\":"
                     "\"<13>garbage\"},\"error\":{\"message\":\"rfc3164: no timestamp\"},"
                     "\"organization\":{\"id\":\"op-b\"},\"observer\":{\"ip\":\"198.51.100.4\"}}";
    assert_int_equal(parse(&o, in, ev), 0);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_PIPELINE_ERROR);
    assert_str(ev->error_message, "rfc3164: no timestamp");
    assert_str(ev->original, "<13>garbage");
    assert_str(ev->organization_id, "op-b");
    assert_str(ev->observer_ip, "198.51.100.4");
    assert_int_equal(ev->created_ms, 1795136524000);
    assert_int_equal(ev->timestamp_ms, 1795136523004);
    /* Written again, the event is what it was. */
    char *out = render(ev);
    assert_string_equal(out, in);
    free(out);

    /* Without own_events, the same body is an ordinary event of the tagged operator. */
    psb_parse_opts plain = opts_json();
    assert_int_equal(parse(&plain, in, ev), 0);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_EVENT);
    assert_str(ev->organization_id, "op-a");
    psb_event_free(ev);
}

static void test_invalid_timestamp_keeps_event(void **state)
{
    (void)state;
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    assert_int_equal(parse(&o, "{\"@timestamp\":\"yesterday\",\"message\":\"m\"}", ev), 0);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_EVENT);
    assert_int_equal(ev->timestamp_ms, RECEIVED);
    assert_get(ev, "labels.invalid_timestamp", "yesterday");
    char *out = render(ev);
    assert_string_equal(out,
                        "{\"@timestamp\":\"2026-11-23T10:00:00.000Z\",\"message\":\"m\","
                        "\"labels\":{\"invalid_timestamp\":\"yesterday\"},\"event\":{"
                        "\"created\":\"2026-11-23T10:00:00.000Z\",\"kind\":\"event\","
                        "\"original\":\"{\\\"@timestamp\\\":\\\"yesterday\\\",\\\"message\\\":"
                        "\\\"m\\\"}\"},\"organization\":{\"id\":\"op-a\"},\"observer\":{\"ip\":"
                        "\"192.0.2.10\"}}");
    free(out);
    /* A number is not an RFC 3339 time either; an existing labels object gets the label. */
    assert_int_equal(parse(&o, "{\"@timestamp\":1700000000,\"labels\":{\"a\":\"b\"}}", ev), 0);
    assert_int_equal(ev->timestamp_ms, RECEIVED);
    assert_get(ev, "labels.invalid_timestamp", "1700000000");
    assert_get(ev, "labels.a", "b");
    out = render(ev);
    assert_non_null(strstr(out, "\"labels\":{\"a\":\"b\",\"invalid_timestamp\":\"1700000000\"}"));
    free(out);
    /* "labels" given as a non-object: no second "labels" key in the output. */
    assert_int_equal(parse(&o, "{\"@timestamp\":true,\"labels\":\"flat\"}", ev), 0);
    out = render(ev);
    assert_non_null(strstr(out, "\"labels\":\"flat\""));
    assert_null(strstr(strstr(out, "\"labels\":") + 1, "\"labels\":"));
    free(out);
    /* No @timestamp at all: receive time, no label. */
    assert_int_equal(parse(&o, "{\"message\":\"m\"}", ev), 0);
    assert_int_equal(ev->timestamp_ms, RECEIVED);
    assert_int_equal(ev->n_labels, 0);
    psb_event_free(ev);
}

static void assert_error(const char *in, const char *want)
{
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    assert_int_equal(psb_parse(&o, in, strlen(in), ev), -1);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_PIPELINE_ERROR);
    assert_null(ev->json);
    assert_str(ev->original, in);
    assert_str(ev->error_message, want);
    assert_str(ev->organization_id, "op-a");
    assert_int_equal(ev->timestamp_ms, RECEIVED);
    psb_event_free(ev);
}

static void test_invalid_json(void **state)
{
    (void)state;
    assert_error("[1,2]", "json: not an object at byte 0");
    assert_error("\"text\"", "json: not an object at byte 0");
    assert_error(" 42", "json: not an object at byte 1");
    assert_error("{\"a\":1} {\"b\":2}", "json: trailing garbage at byte 8");
    assert_error("{\"a\":1}x", "json: trailing garbage at byte 7");
    assert_error("{\"a\" 1}", "json: object key and value must be separated by a colon (':') at "
                              "byte 5");
    assert_error("{\"a\":", "json: premature EOF at byte 5");
    assert_error("", "json: premature EOF at byte 0");
    assert_error("{'a':1}", "json: invalid char in json text at byte 1");
    assert_error("\xEF\xBB\xBF[1]", "json: not an object at byte 3");
    /* Trailing whitespace and CR are not garbage; a leading UTF-8 BOM is skipped. */
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    assert_int_equal(parse(&o, " {\"a\":1} \r\t", ev), 0);
    assert_int_equal(parse(&o, "\xEF\xBB\xBF{\"message\":\"bom\"}", ev), 0);
    assert_str(ev->message, "bom");
    psb_event_free(ev);
}

static char *nested(int depth)
{
    /* {"a":{"a":...{"a":1}...}} with depth objects */
    char *s = malloc((size_t)depth * 6 + 8);
    size_t n = 0;
    for (int i = 0; i < depth; i++) {
        memcpy(s + n, i ? "{\"a\":" : "{\"a\":", 5);
        n += 5;
    }
    s[n++] = '1';
    for (int i = 0; i < depth; i++)
        s[n++] = '}';
    s[n] = '\0';
    return s;
}

static void test_limits(void **state)
{
    (void)state;
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    char *ok = nested(PSB_MAX_JSON_DEPTH);
    assert_int_equal(parse(&o, ok, ev), 0);
    free(ok);
    char *deep = nested(PSB_MAX_JSON_DEPTH + 1);
    assert_int_equal(parse(&o, deep, ev), -1);
    assert_str(ev->error_message, "json: nesting deeper than 32 levels at byte 160");
    free(deep);
    /* Far deeper than any tree should be built for: refused just the same, and quickly. */
    char *huge = nested(10000);
    assert_int_equal(parse(&o, huge, ev), -1);
    free(huge);
    const char *arr = "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}";
    assert_int_equal(parse(&o, arr, ev), -1);

    /* Size: max_message applies to JSON like to everything else. */
    o.max_message = 16;
    assert_int_equal(parse(&o, "{\"message\":\"0123456789\"}", ev), -1);
    assert_str(ev->error_message, "message of 24 bytes exceeds the limit of 16 bytes");
    assert_int_equal(psb_parse_json(&o, "{\"message\":\"0123456789\"}", 24, ev), -1);
    assert_int_equal(parse(&o, "{\"m\":\"0123456\"}", ev), 0);
    psb_event_free(ev);
}

static void test_labels_limit_keeps_everything_in_output(void **state)
{
    (void)state;
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    char in[8192];
    size_t n = (size_t)snprintf(in, sizeof(in), "{\"labels\":{");
    for (int i = 0; i < PSB_EVENT_MAX_LABELS + 10; i++)
        n += (size_t)snprintf(in + n, sizeof(in) - n, "%s\"k%d\":\"v%d\"", i ? "," : "", i, i);
    snprintf(in + n, sizeof(in) - n, "}}");
    assert_int_equal(parse(&o, in, ev), 0);
    assert_int_equal(ev->n_labels, PSB_EVENT_MAX_LABELS);
    assert_get(ev, "labels.k70", "v70"); /* found through the tree */
    char *out = render(ev);
    assert_non_null(strstr(out, "\"k73\":\"v73\"}"));
    free(out);
    psb_event_free(ev);
}

static void test_invalid_utf8_is_kept_and_repaired(void **state)
{
    (void)state;
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    const char in[] = "{\"message\":\"caf\xe9 \xc3\xa9\"}";
    assert_int_equal(psb_parse(&o, in, sizeof(in) - 1, ev), 0);
    char *out = render(ev);
    assert_non_null(strstr(out, "\"message\":\"caf\xef\xbf\xbd \xc3\xa9\""));
    free(out);
    psb_event_free(ev);
}

static void test_event_reuse_frees_the_tree(void **state)
{
    (void)state;
    /* One event per thread, reused: a JSON event followed by another must not
     * leak (ASan checks) or keep old fields. */
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    assert_int_equal(parse(&o, "{\"message\":\"one\",\"host.hostname\":\"a\"}", ev), 0);
    assert_int_equal(parse(&o, "{\"message\":\"two\"}", ev), 0);
    assert_str(ev->message, "two");
    assert_null(ev->hostname.ptr);
    assert_int_equal(parse(&o, "{\"message\":", ev), -1);
    assert_null(ev->message.ptr);
    psb_event_free(ev);
}

/* The densest inputs of the largest size: the tree's room, reserved from the
 * message size, must hold them all. */
static void test_dense_inputs_fit(void **state)
{
    (void)state;
    const char *units[] = {"1,", "\"\",", "[],", "{},", "true,", "null,", "[1],", "[[]],", "-0,"};
    psb_parse_opts o = opts_json();
    psb_event *ev = psb_event_new();
    size_t cap = PSB_MAX_MESSAGE;
    char *in = malloc(cap + 1);
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        for (int as_object = 0; as_object < 2; as_object++) {
            size_t n = 0, ul = strlen(units[u]);
            const char *head = as_object ? "{" : "{\"a\":[";
            memcpy(in, head, strlen(head));
            n = strlen(head);
            while (n + ul + 5 + 3 < cap) {
                if (as_object) {
                    memcpy(in + n, "\"\":", 3);
                    n += 3;
                }
                memcpy(in + n, units[u], ul);
                n += ul;
            }
            n--; /* the last comma */
            memcpy(in + n, as_object ? "}" : "]}", as_object ? 1 : 2);
            n += as_object ? 1 : 2;
            int rc = psb_parse(&o, in, n, ev);
            if (rc != 0)
                fail_msg("%s%s (%zu bytes): %.*s", as_object ? "object of " : "array of ", units[u],
                         n, (int)ev->error_message.len, ev->error_message.ptr);
        }
    }
    free(in);
    psb_event_free(ev);
}

/* A tree from yajl_tree_parse may be hung on an event too: reset frees it. */
static void test_foreign_tree_is_freed(void **state)
{
    (void)state;
    psb_event *ev = psb_event_new();
    char err[64];
    ev->json = yajl_tree_parse("{\"a\":[1,{\"b\":\"c\"}]}", err, sizeof(err));
    assert_non_null(ev->json);
    psb_event_reset(ev);
    assert_null(ev->json);
    ev->json = yajl_tree_parse("{\"x\":1}", err, sizeof(err));
    /* A direct call of the parser replaces it, and freeing the event frees the rest (ASan). */
    psb_parse_opts o = opts_json();
    assert_int_equal(psb_parse_json(&o, "{\"y\":2}", 7, ev), 0);
    ev->json = yajl_tree_parse("{\"z\":3}", err, sizeof(err));
    psb_event_free(ev);
}

/* Records from Kafka are stored as received, so a record must be one JSON value and
 * nothing more: yajl 2.1 alone accepts an unterminated string after the value. */
static void test_record_parse_refuses_trailing_string(void **state)
{
    (void)state;
    char err[128];
    const char *bad[] = {"{}\"", "{\"a\":1}\"  ", "[1,2]\"}", "{} x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(psb_json_tree_parse(bad[i], err, sizeof(err)));
    const char *good[] = {"{}", " {\"a\":\"}\\\"{\"}\n", "[{\"b\":[]}]\r\n",
                          "// it's a config\n{\"a\": 1 /* \" } */} // done\n"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        yajl_val v = psb_json_tree_parse(good[i], err, sizeof(err));
        assert_non_null(v);
        yajl_tree_free(v);
    }
}

/* Records served again as received must be strict JSON: a comment after one would
 * swallow what a writer puts behind it (fuzz_kpi_import found "{...}////"). */
static void test_record_parse_is_strict(void **state)
{
    (void)state;
    char err[128];
    const char *bad[] = {"{}//", "{\"a\":1}/* x */", "{\"a\": /* c */ 1}", "// c\n{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(psb_json_record_parse(bad[i], err, sizeof(err)));
        assert_non_null(strstr(err, "comment"));
    }
    assert_null(psb_json_record_parse("{}\"", err, sizeof(err)));
    const char *good[] = {"{\"url\":\"http://x/y//z\"}", " {\"a\":\"\\\"//\"}\n"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        yajl_val v = psb_json_record_parse(good[i], err, sizeof(err));
        assert_non_null(v);
        yajl_tree_free(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_fields),
        cmocka_unit_test(test_record_parse_is_strict),
        cmocka_unit_test(test_dotted_keys_equal_nested),
        cmocka_unit_test(test_other_shapes_stay_in_the_tree),
        cmocka_unit_test(test_body_cannot_claim_pipeline_fields),
        cmocka_unit_test(test_own_events_round_trip),
        cmocka_unit_test(test_invalid_timestamp_keeps_event),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_labels_limit_keeps_everything_in_output),
        cmocka_unit_test(test_invalid_utf8_is_kept_and_repaired),
        cmocka_unit_test(test_event_reuse_frees_the_tree),
        cmocka_unit_test(test_dense_inputs_fit),
        cmocka_unit_test(test_foreign_tree_is_freed),
        cmocka_unit_test(test_record_parse_refuses_trailing_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
