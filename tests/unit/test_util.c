/* Time and duration helpers: the calendar arithmetic every timestamp goes through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pasban/util.h"

static int64_t rfc3339(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(psb_parse_rfc3339(s, strlen(s), &ms), 0);
    return ms;
}

static void test_rfc3339_examples_of_rfc5424(void **state)
{
    (void)state;
    /* RFC 5424 section 6.2.3.1 examples. */
    assert_int_equal(rfc3339("1985-04-12T23:20:50.52Z"), 482196050520);
    assert_int_equal(rfc3339("1985-04-12T19:20:50.52-04:00"), 482196050520);
    assert_int_equal(rfc3339("2003-10-11T22:14:15.003Z"), 1065910455003);
    assert_int_equal(rfc3339("2003-08-24T05:14:15.000003-07:00"), 1061727255000);
    int64_t ms;
    assert_int_equal(psb_parse_rfc3339("2003-08-24T05:14:15.000000003-07:00", 35, &ms), 0);
}

static void test_rfc3339_rejects_invalid_dates(void **state)
{
    (void)state;
    int64_t ms;
    const char *bad[] = {"1990-1220T14:01:01Z", "2003-09-31T22:14:15Z", "2003-10-11T24:14:15Z",
                         "2003-10-11T22:14:15", "2003-10-11T22:14:15.Z", "2003-10-11 22:14:15Z",
                         "2003-02-29T00:00:00Z", "2003-10-11T22:14:15+25:00"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(psb_parse_rfc3339(bad[i], strlen(bad[i]), &ms), -1);
    assert_int_equal(rfc3339("2004-02-29T00:00:00Z") % 1000, 0);
}

static void test_format_time_round_trip(void **state)
{
    (void)state;
    char buf[PSB_TIME_BUFSZ];
    assert_int_equal(psb_format_time_ms(0, buf), 24);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    psb_format_time_ms(1065910455003, buf);
    assert_string_equal(buf, "2003-10-11T22:14:15.003Z");
    psb_format_time_ms(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    for (int64_t ms = -86400000LL * 800; ms < 86400000LL * 40000; ms += 86400000LL * 37 + 12345)
        assert_int_equal(rfc3339((psb_format_time_ms(ms, buf), buf)), ms);
}

static void test_durations(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(psb_parse_duration_ms("120s", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(psb_parse_duration_ms("15m", &ms), 0);
    assert_int_equal(ms, 900000);
    assert_int_equal(psb_parse_duration_ms("4h", &ms), 0);
    assert_int_equal(ms, 14400000);
    assert_int_equal(psb_parse_duration_ms("2d", &ms), 0);
    assert_int_equal(ms, 172800000);
    assert_int_equal(psb_parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(psb_parse_duration_ms("10 m", &ms), -1);
    assert_int_equal(psb_parse_duration_ms("-5s", &ms), -1);
    assert_int_equal(psb_parse_duration_ms("5w", &ms), -1);
    assert_int_equal(psb_parse_duration_ms("", &ms), -1);
}

static void test_utc_offsets(void **state)
{
    (void)state;
    int32_t s;
    assert_int_equal(psb_parse_utc_offset("UTC", &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(psb_parse_utc_offset("+03:30", &s), 0);
    assert_int_equal(s, 12600);
    assert_int_equal(psb_parse_utc_offset("-0500", &s), 0);
    assert_int_equal(s, -18000);
    assert_int_equal(psb_parse_utc_offset("Asia/Tehran", &s), -1);
    assert_int_equal(psb_parse_utc_offset("+08", &s), 0);
    assert_int_equal(s, 28800);
    assert_int_equal(psb_parse_utc_offset("+08:", &s), -1);
    assert_int_equal(psb_parse_utc_offset("+033", &s), -1);
    assert_int_equal(psb_parse_utc_offset("+24:00", &s), -1);
    /* The slice form reads only what it is given: a zone inside a longer line. */
    assert_int_equal(psb_parse_utc_offset_n("+0330 devname", 5, &s), 0);
    assert_int_equal(s, 12600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339_examples_of_rfc5424),
        cmocka_unit_test(test_rfc3339_rejects_invalid_dates),
        cmocka_unit_test(test_format_time_round_trip),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_utc_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
