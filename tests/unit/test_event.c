/* The event model: field lookup by ECS name (what rules' "where" clauses see),
 * reset between messages, owned storage and its limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pasban/event.h"
#include "pasban/parse.h"

/* 1 and the value when present; "<absent>" otherwise. */
static const char *get(const psb_event *ev, const char *name)
{
    static char text[256];
    char buf[32];
    psb_str out;
    if (!psb_event_get(ev, name, strlen(name), buf, &out))
        return "<absent>";
    snprintf(text, sizeof(text), "%.*s", (int)out.len, out.ptr);
    return text;
}

static psb_event *syslog_event(void)
{
    psb_event *ev = psb_event_new();
    ev->original = PSB_STR_LIT("<190>1 ... raw");
    ev->organization_id = PSB_STR_LIT("op-a");
    ev->observer_ip = PSB_STR_LIT("192.0.2.1");
    ev->priority = 190; /* local7.info */
    ev->version = 1;
    ev->hostname = PSB_STR_LIT("core-r1");
    ev->appname = PSB_STR_LIT("bgpd");
    ev->procid = PSB_STR_LIT("812");
    ev->msgid = PSB_STR_LIT("ADJCHANGE");
    ev->message = PSB_STR_LIT("neighbor 10.0.0.2 Down");
    ev->sd[0] = (psb_sd_element){PSB_STR_LIT("origin"), 0, 2};
    ev->sd[1] = (psb_sd_element){PSB_STR_LIT("meta@32473.1"), 2, 1};
    ev->sd_params[0] = (psb_kv){PSB_STR_LIT("ip"), PSB_STR_LIT("10.0.0.1")};
    ev->sd_params[1] = (psb_kv){PSB_STR_LIT("software"), PSB_STR_LIT("frr")};
    ev->sd_params[2] = (psb_kv){PSB_STR_LIT("sequenceId"), PSB_STR_LIT("77")};
    ev->n_sd = 2;
    ev->n_sd_params = 3;
    psb_event_add_label(ev, PSB_STR_LIT("mnemonic"), PSB_STR_LIT("BGP-5-ADJCHANGE"));
    return ev;
}

static void test_get_every_syslog_name(void **state)
{
    (void)state;
    psb_event *ev = syslog_event();
    assert_string_equal(get(ev, "message"), "neighbor 10.0.0.2 Down");
    assert_string_equal(get(ev, "host.hostname"), "core-r1");
    assert_string_equal(get(ev, "process.name"), "bgpd");
    assert_string_equal(get(ev, "log.syslog.appname"), "bgpd");
    assert_string_equal(get(ev, "log.syslog.procid"), "812");
    assert_string_equal(get(ev, "process.pid"), "812");
    assert_string_equal(get(ev, "log.syslog.msgid"), "ADJCHANGE");
    assert_string_equal(get(ev, "organization.id"), "op-a");
    assert_string_equal(get(ev, "observer.ip"), "192.0.2.1");
    assert_string_equal(get(ev, "event.original"), "<190>1 ... raw");
    assert_string_equal(get(ev, "event.kind"), "event");
    assert_string_equal(get(ev, "error.message"), "<absent>");
    assert_string_equal(get(ev, "log.syslog.priority"), "190");
    assert_string_equal(get(ev, "log.syslog.facility.code"), "23");
    assert_string_equal(get(ev, "log.syslog.severity.code"), "6");
    assert_string_equal(get(ev, "log.syslog.version"), "1");
    assert_string_equal(get(ev, "labels.mnemonic"), "BGP-5-ADJCHANGE");
    assert_string_equal(get(ev, "labels.other"), "<absent>");
    assert_string_equal(get(ev, "log.syslog.structured_data.origin.ip"), "10.0.0.1");
    assert_string_equal(get(ev, "log.syslog.structured_data.origin.software"), "frr");
    /* An SD-ID that itself contains dots. */
    assert_string_equal(get(ev, "log.syslog.structured_data.meta@32473.1.sequenceId"), "77");
    assert_string_equal(get(ev, "log.syslog.structured_data.origin.nope"), "<absent>");
    assert_string_equal(get(ev, "log.syslog.structured_data.origin"), "<absent>");
    /* Prefixes and near misses are not fields. */
    assert_string_equal(get(ev, "messag"), "<absent>");
    assert_string_equal(get(ev, "message.x"), "<absent>");
    assert_string_equal(get(ev, "labels."), "<absent>");
    assert_string_equal(get(ev, "host"), "<absent>");
    assert_string_equal(get(ev, ""), "<absent>");
    psb_event_free(ev);
}

static void test_get_absent_and_derived(void **state)
{
    (void)state;
    psb_event *ev = psb_event_new();
    ev->original = PSB_STR_LIT("x");
    /* Nothing parsed: only what every event has. */
    assert_string_equal(get(ev, "event.original"), "x");
    assert_string_equal(get(ev, "event.kind"), "event");
    const char *absent[] = {"message",
                            "host.hostname",
                            "process.name",
                            "process.pid",
                            "log.syslog.procid",
                            "log.syslog.msgid",
                            "log.syslog.priority",
                            "log.syslog.facility.code",
                            "log.syslog.severity.code",
                            "log.syslog.version",
                            "organization.id",
                            "observer.ip",
                            "error.message",
                            "labels.a",
                            "anything.else"};
    for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
        assert_string_equal(get(ev, absent[i]), "<absent>");
    /* PRI 0 (kern.emerg) is a value, not absence. */
    ev->priority = 0;
    assert_string_equal(get(ev, "log.syslog.priority"), "0");
    assert_string_equal(get(ev, "log.syslog.facility.code"), "0");
    assert_string_equal(get(ev, "log.syslog.severity.code"), "0");
    /* A non-numeric PROCID is log.syslog.procid only. */
    ev->procid = PSB_STR_LIT("worker-3");
    assert_string_equal(get(ev, "log.syslog.procid"), "worker-3");
    assert_string_equal(get(ev, "process.pid"), "<absent>");
    psb_event_set_error(ev, "rfc5424: bad %s", "VERSION");
    assert_string_equal(get(ev, "event.kind"), "pipeline_error");
    assert_string_equal(get(ev, "error.message"), "rfc5424: bad VERSION");
    psb_event_free(ev);
}

static void test_get_json_paths(void **state)
{
    (void)state;
    psb_parse_opts o = {.format = PSB_FORMAT_JSON, .received_ms = 1};
    psb_event *ev = psb_event_new();
    const char *in = "{\"source\":{\"ip\":\"198.51.100.23\",\"port\":51515},\"user.name\":\"bob\","
                     "\"url\":{\"path\":\"/login\",\"query.raw\":\"a=1\"},\"ok\":false,"
                     "\"nothing\":null,\"list\":[1],\"deep\":{\"a\":{\"b\":{\"c\":\"d\"}}}}";
    assert_int_equal(psb_parse(&o, in, strlen(in), ev), 0);
    assert_string_equal(get(ev, "source.ip"), "198.51.100.23");
    assert_string_equal(get(ev, "source.port"), "51515");
    assert_string_equal(get(ev, "user.name"), "bob");
    assert_string_equal(get(ev, "url.path"), "/login");
    assert_string_equal(get(ev, "url.query.raw"), "a=1");
    assert_string_equal(get(ev, "ok"), "false");
    assert_string_equal(get(ev, "deep.a.b.c"), "d");
    assert_string_equal(get(ev, "nothing"), "<absent>");
    assert_string_equal(get(ev, "list"), "<absent>");
    assert_string_equal(get(ev, "source"), "<absent>");
    assert_string_equal(get(ev, "source.ip.x"), "<absent>");
    assert_string_equal(get(ev, "user"), "<absent>");
    /* The pipeline's own fields answer for a JSON event too. */
    assert_string_equal(get(ev, "event.kind"), "event");
    assert_string_equal(get(ev, "event.original"), in);
    psb_event_free(ev);
}

static void test_reset_clears_everything(void **state)
{
    (void)state;
    psb_event *ev = syslog_event();
    psb_event_set_error(ev, "x");
    psb_event_reset(ev);
    assert_int_equal(ev->priority, -1);
    assert_int_equal(ev->version, 0);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_EVENT);
    assert_null(ev->message.ptr);
    assert_null(ev->error_message.ptr);
    assert_null(ev->organization_id.ptr);
    assert_int_equal(ev->n_sd, 0);
    assert_int_equal(ev->n_labels, 0);
    assert_string_equal(get(ev, "labels.mnemonic"), "<absent>");
    assert_string_equal(get(ev, "log.syslog.structured_data.origin.ip"), "<absent>");
    psb_event_free(ev);
}

static void test_storage_and_limits(void **state)
{
    (void)state;
    psb_event *ev = psb_event_new();
    psb_event_reserve(ev, 10000);
    psb_str a = psb_event_store(ev, "hello", 5);
    char big[9000];
    memset(big, 'z', sizeof(big));
    psb_str b = psb_event_store(ev, big, sizeof(big));
    /* Reserved room: the first slice did not move when the second was stored. */
    assert_memory_equal(a.ptr, "hello", 5);
    assert_ptr_equal(b.ptr, a.ptr + 5);

    for (int i = 0; i < PSB_EVENT_MAX_LABELS; i++)
        assert_int_equal(psb_event_add_label(ev, PSB_STR_LIT("k"), PSB_STR_LIT("v")), 0);
    assert_int_equal(psb_event_add_label(ev, PSB_STR_LIT("k"), PSB_STR_LIT("v")), -1);

    /* An error text longer than its buffer is cut, never overrun. */
    psb_event_set_error(ev, "%.*s", 1000, big + 8000);
    assert_int_equal(ev->error_message.len, PSB_EVENT_ERROR_BUFSZ - 1);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_PIPELINE_ERROR);
    psb_event_free(ev);
    psb_event_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_every_syslog_name),
        cmocka_unit_test(test_get_absent_and_derived),
        cmocka_unit_test(test_get_json_paths),
        cmocka_unit_test(test_reset_clears_everything),
        cmocka_unit_test(test_storage_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
