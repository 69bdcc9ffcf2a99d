/* Vendor dialects over RFC 3164: Cisco IOS/ASA/FTD, Huawei VRP, Juniper, Fortinet,
 * Palo Alto and generic key=value, in the shapes their documentation shows. */
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

static void parse_tz(const char *line, int32_t tz)
{
    psb_parse_opts o = {.format = PSB_FORMAT_AUTO, .received_ms = at(RECV), .tz_offset_s = tz};
    assert_int_equal(psb_parse(&o, line, strlen(line), ev), 0);
    assert_int_equal(ev->kind, PSB_EVENT_KIND_EVENT);
}

static void parse_ok(const char *line)
{
    parse_tz(line, 0);
}

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

static void test_cisco_ios(void **state)
{
    (void)state;
    /* Counter, '*' clock flag (not authoritative), milliseconds. */
    parse_ok("<189>123: *Mar  1 18:46:11.123: %SYS-5-CONFIG_I: Configured from console by vty0 "
             "(10.1.1.1)");
    assert_field("log.syslog.priority", "189");
    assert_field("process.name", "%SYS-5-CONFIG_I");
    assert_field("message", "Configured from console by vty0 (10.1.1.1)");
    assert_field("labels.vendor", "cisco_ios");
    assert_field("labels.mnemonic", "SYS-5-CONFIG_I");
    assert_field("labels.sequence", "123");
    assert_field("labels.clock_sync", "not_authoritative");
    assert_int_equal(ev->timestamp_ms, at(RECV)); /* an unset router clock is not trusted */

    /* origin-id hostname, '.' flag, year and UTC zone: the device time is used. */
    parse_tz("<189>45: router1: .Nov 20 2026 18:46:11.123 UTC: %SYS-5-CONFIG_I: Configured from "
             "console by vty0 (10.1.1.1)",
             12600);
    assert_field("host.hostname", "router1");
    assert_field("labels.sequence", "45");
    assert_field("labels.clock_sync", "ntp_lost");
    assert_time("2026-11-20T18:46:11.123Z");

    /* service sequence-numbers adds a second number; no flag; configured zone. */
    parse_tz("<188>31: 000029: Nov 23 10:00:00.500: %SEC_LOGIN-4-LOGIN_FAILED: Login failed "
             "[user: admin] [Source: 198.51.100.9] [localport: 22] [Reason: Login Authentication "
             "Failed] at 10:00:00 IRST Mon Nov 23 2026",
             12600);
    assert_field("labels.sequence", "000029");
    assert_field("labels.mnemonic", "SEC_LOGIN-4-LOGIN_FAILED");
    assert_absent("labels.clock_sync");
    assert_time("2026-11-23T06:30:00.500Z");
    assert_field("message", "Login failed [user: admin] [Source: 198.51.100.9] [localport: 22] "
                            "[Reason: Login Authentication Failed] at 10:00:00 IRST Mon Nov 23 "
                            "2026");

    /* A relay's header in front of the device's own: device time, relay's hostname. */
    parse_ok("<189>Nov 23 10:00:01 10.1.1.1 45: Nov 23 10:00:00.250: %LINK-3-UPDOWN: Interface "
             "GigabitEthernet0/1, changed state to down");
    assert_field("host.hostname", "10.1.1.1");
    assert_field("process.name", "%LINK-3-UPDOWN");
    assert_field("labels.sequence", "45");
    assert_time("2026-11-23T10:00:00.250Z");

    /* Uptime instead of a date: the receive time. */
    parse_ok("<187>12: 1w2d: %LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/1, changed "
             "state to up");
    assert_field("labels.mnemonic", "LINEPROTO-5-UPDOWN");
    assert_int_equal(ev->timestamp_ms, at(RECV));
    parse_ok("00:00:46: %LINK-3-UPDOWN: Interface Port-channel1, changed state to up");
    assert_field("process.name", "%LINK-3-UPDOWN");

    /* syslog-ng's test: a hostname between the time and the code. */
    parse_ok("<0>91: *Oct 07 03:10:04: mydevice.com %CRYPTO-4-RECVD_PKT_INV_SPI: decaps: rec'd "
             "IPSEC packet has invalid spi for destaddr=150.1.1.1, prot=50");
    assert_field("host.hostname", "mydevice.com");
    assert_field("process.name", "%CRYPTO-4-RECVD_PKT_INV_SPI");
    assert_field("message", "decaps: rec'd IPSEC packet has invalid spi for destaddr=150.1.1.1, "
                            "prot=50");

    /* A zone or host word where a TAG would be. */
    parse_ok("Oct  6 03:32:02 gmt: %SEC-6-IPACCESSLOGP: list 101 denied udp 10.0.0.1(137) -> "
             "10.0.0.2(137), 1 packet");
    assert_field("process.name", "%SEC-6-IPACCESSLOGP");
    assert_field("labels.vendor", "cisco_ios");
    assert_field("message", "list 101 denied udp 10.0.0.1(137) -> 10.0.0.2(137), 1 packet");
}

/* IOS XR and NX-OS: the same codes, other headers. */
static void test_cisco_iosxr_nxos(void **state)
{
    (void)state;
    /* XR: counter, the card glued to its time, the process before the code, " : ". */
    parse_ok("<189>123: RP/0/RSP0/CPU0:Mar  1 10:11:12.123 UTC: exec[65870]: "
             "%SECURITY-LOGIN-4-AUTHEN_FAILED : Failed authentication attempt by user 'admin' "
             "from '203.0.113.9' on 'vty0'");
    assert_field("process.name", "%SECURITY-LOGIN-4-AUTHEN_FAILED");
    assert_field("labels.mnemonic", "SECURITY-LOGIN-4-AUTHEN_FAILED");
    assert_field("labels.vendor", "cisco_ios");
    assert_field("labels.node", "RP/0/RSP0/CPU0");
    assert_field("labels.process", "exec");
    assert_field("labels.sequence", "123");
    assert_field("message", "Failed authentication attempt by user 'admin' from '203.0.113.9' on "
                            "'vty0'");
    assert_time("2026-03-01T10:11:12.123Z");

    /* Relayed behind a BSD header: the relay's hostname, the device's time. */
    parse_ok("<189>Mar  1 10:11:13 asr9k-1 456: RP/0/RSP0/CPU0:Mar  1 10:11:12.500 UTC: "
             "config[65738]: %MGBL-CONFIG-6-DB_COMMIT : Configuration committed by user 'noc'.");
    assert_field("host.hostname", "asr9k-1");
    assert_field("labels.mnemonic", "MGBL-CONFIG-6-DB_COMMIT");
    assert_field("labels.process", "config");
    assert_field("message", "Configuration committed by user 'noc'.");
    assert_time("2026-03-01T10:11:12.500Z");

    /* NX-OS: ": " after PRI, the year first. */
    parse_ok("<189>: 2025 Mar  1 10:11:12 UTC: %ETHPORT-5-IF_DOWN_LINK_FAILURE: Interface "
             "Ethernet1/1 is down (Link failure)");
    assert_field("labels.mnemonic", "ETHPORT-5-IF_DOWN_LINK_FAILURE");
    assert_field("message", "Interface Ethernet1/1 is down (Link failure)");
    assert_time("2025-03-01T10:11:12.000Z");
    assert_absent("host.hostname");

    /* NX-OS with its origin-id before the year, no BSD header. */
    parse_ok("<189>n9k-1 : 2025 Mar  1 10:11:12 UTC: %VSHD-5-VSHD_SYSLOG_CONFIG_I: Configured "
             "from vty by admin on 10.1.1.1@pts/0");
    assert_field("host.hostname", "n9k-1");
    assert_field("process.name", "%VSHD-5-VSHD_SYSLOG_CONFIG_I");
    assert_field("message", "Configured from vty by admin on 10.1.1.1@pts/0");
    assert_time("2025-03-01T10:11:12.000Z");

    /* Look-alikes stay what they were: a year with no code after it, a path that is
     * no card (no time follows). */
    parse_ok("<13>web1 : 2025 Mar  1 10:11:12 backup finished");
    assert_absent("labels.vendor");
    assert_int_equal(ev->timestamp_ms, at(RECV));
    parse_ok("<13>12: usr/local/bin:started");
    assert_absent("labels.node");
}

static void test_cisco_asa_and_pix(void **state)
{
    (void)state;
    parse_ok("<166>Jan 05 2026 10:20:30 fw1 : %ASA-6-302013: Built inbound TCP connection 4711 "
             "for outside:198.51.100.7/51234 (198.51.100.7/51234) to inside:10.0.0.5/22 "
             "(10.0.0.5/22)");
    assert_field("host.hostname", "fw1");
    assert_field("process.name", "%ASA-6-302013");
    assert_field("labels.vendor", "cisco_asa");
    assert_field("labels.mnemonic", "ASA-6-302013");
    assert_time("2026-01-05T10:20:30Z");
    assert_true(strncmp(field("message"), "Built inbound TCP connection 4711", 33) == 0);

    parse_ok("<164>Nov 23 2026 10:20:30: %ASA-4-106023: Deny tcp src outside:203.0.113.9/40001 "
             "dst inside:10.0.0.5/443 by access-group \"outside_in\" [0x0, 0x0]");
    assert_absent("host.hostname");
    assert_field("labels.mnemonic", "ASA-4-106023");
    assert_time("2026-11-23T10:20:30Z");

    parse_ok("<167>Mar  6 16:57:54 172.20.245.8 %PIX-7-710005: UDP request discarded from "
             "SERVER1/2741 to test_app:255.255.255.255/61601");
    assert_field("host.hostname", "172.20.245.8");
    assert_field("process.name", "%PIX-7-710005");
    assert_absent("log.syslog.procid");
    assert_field("labels.vendor", "cisco_asa");
    assert_field("message", "UDP request discarded from SERVER1/2741 to "
                            "test_app:255.255.255.255/61601");

    parse_ok("%ASA-1-106101: Number of cached deny-flows for ACL log has reached limit (4096)");
    assert_field("process.name", "%ASA-1-106101");
    parse_ok("%FTD-1-101001: (Primary) Failover cable OK.");
    assert_field("labels.vendor", "cisco_ftd");
    assert_field("labels.mnemonic", "FTD-1-101001");
}

static void test_huawei_vrp(void **state)
{
    (void)state;
    parse_ok("<187>Oct 12 2025 10:39:18 HUAWEI %%01SHELL/5/CMDRECORD(s)[0]:Recorded command "
             "information. (Task=VT0, Ip=10.1.1.100, VpnName=, User=admin, "
             "AuthenticationMethod=\"Password\", Command=\"display current-configuration\")");
    assert_field("host.hostname", "HUAWEI");
    assert_field("process.name", "%%01SHELL/5/CMDRECORD(s)");
    assert_absent("log.syslog.procid"); /* "[0]" is a serial number, not a process */
    assert_field("labels.vendor", "huawei_vrp");
    assert_field("labels.mnemonic", "SHELL/5/CMDRECORD");
    assert_field("labels.sequence", "0");
    assert_field("labels.Ip", "10.1.1.100");
    assert_field("labels.User", "admin");
    assert_field("labels.VpnName", "");
    assert_field("labels.AuthenticationMethod", "Password");
    assert_field("labels.Command", "display current-configuration");
    assert_time("2025-10-12T10:39:18Z");
    assert_true(strncmp(field("message"), "Recorded command information. (Task=VT0", 39) == 0);

    /* Offset after the time, and a list value with spaces. */
    parse_ok("<190>Nov 23 2026 10:39:18+08:00 CE6850 %%01SSH/6/SSH_USER_LOGOUT(l)[12]:The SSH "
             "user logged out. (ServiceType=stelnet, LogoutReason=The user quit, UserName=noc1, "
             "Tei=0, TransNo=1, UserAddress=10.20.0.7, LocalAddress=10.20.0.1, VpnInstanceName=)");
    assert_time("2026-11-23T02:39:18Z");
    assert_field("labels.mnemonic", "SSH/6/SSH_USER_LOGOUT");
    assert_field("labels.sequence", "12");
    assert_field("labels.LogoutReason", "The user quit");
    assert_field("labels.UserAddress", "10.20.0.7");
    assert_field("labels.VpnInstanceName", "");

    /* USG policy logs are key=value after the code. */
    parse_ok("Oct  5 2018 10:52:19 USG6300 %%01POLICY/6/POLICYPERMIT(l):vsys=public, "
             "protocol=17, source-ip=1.1.1.1, source-port=2426, destination-ip=2.2.2.2, "
             "destination-port=2234");
    assert_field("labels.mnemonic", "POLICY/6/POLICYPERMIT");
    assert_field("labels.vsys", "public");
    assert_field("labels.source-ip", "1.1.1.1");
    assert_field("labels.destination-port", "2234");
}

static void test_juniper(void **state)
{
    (void)state;
    parse_ok("<28>Mar 18 11:20:34 srx1 RT_FLOW: RT_FLOW_SESSION_DENY: session denied "
             "203.0.113.9/40001->10.0.0.5/22 0x0 junos-ssh 6(0) deny-all untrust trust UNKNOWN "
             "UNKNOWN N/A(N/A) ge-0/0/0.0 UNKNOWN policy deny");
    assert_field("host.hostname", "srx1");
    assert_field("process.name", "RT_FLOW");
    assert_field("labels.vendor", "juniper");
    assert_field("labels.mnemonic", "RT_FLOW_SESSION_DENY");
    assert_true(strncmp(field("message"), "RT_FLOW_SESSION_DENY: session denied", 36) == 0);

    parse_ok("<189>Nov 23 10:00:00 mx1 mgd[3046]: UI_COMMIT: User 'admin' requested 'commit' "
             "operation (comment: none)");
    assert_field("process.name", "mgd");
    assert_field("process.pid", "3046");
    assert_field("labels.vendor", "juniper");
    assert_field("labels.mnemonic", "UI_COMMIT");

    /* Junos structured-data format behind a relay's BSD header. */
    parse_ok("Sep 23 13:54:55 192.168.1.1 junos-flow: 2026-09-23T13:54:54.803Z srx-edge-01 "
             "RT_FLOW - RT_FLOW_SESSION_DENY [junos@2636.1.1.1.2.39 source-address=\"203.0.113.9\" "
             "source-port=\"40001\" destination-address=\"10.0.0.5\" destination-port=\"22\" "
             "policy-name=\"deny-all\" reason=\"policy deny\"] session denied");
    assert_field("process.name", "junos-flow");
    assert_field("labels.vendor", "juniper");
    assert_field("labels.mnemonic", "RT_FLOW_SESSION_DENY");
    assert_field("labels.source-address", "203.0.113.9");
    assert_field("labels.destination-port", "22");
    assert_field("labels.reason", "policy deny");
    assert_time("2026-09-23T13:54:54.803Z");

    /* Upper-case words that are not Junos names get no vendor. */
    parse_ok("<13>Nov 23 10:00:00 h app: MY_EVENT: something");
    assert_field("labels.mnemonic", "MY_EVENT");
    assert_absent("labels.vendor");
    parse_ok("<13>Nov 23 10:00:00 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from x");
    assert_absent("labels.mnemonic");

    /* The code as the TAG: MX firewall-filter "then syslog" records. */
    parse_ok("<14>Mar 10 08:00:00 pe-mx-1 PFE_FW_SYSLOG_IP: FW: ge-0/0/0.0    D  tcp "
             "198.51.100.7 203.0.113.1 44321    22 (1 packets)");
    assert_field("labels.vendor", "juniper");
    assert_field("labels.mnemonic", "PFE_FW_SYSLOG_IP");
    assert_field("process.name", "PFE_FW_SYSLOG_IP");
    assert_field("message", "FW: ge-0/0/0.0    D  tcp 198.51.100.7 203.0.113.1 44321    22 (1 "
                            "packets)");
    /* ... but only with a facility Junos uses. */
    parse_ok("<14>Mar 10 08:00:00 h MY_DAEMON: started");
    assert_absent("labels.vendor");
    assert_absent("labels.mnemonic");
}

static void test_fortinet(void **state)
{
    (void)state;
    parse_ok("<189>date=2026-11-10 time=11:50:48 devname=\"FG100E\" devid=\"FG100E3G16000000\" "
             "logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" "
             "vd=\"root\" srcip=10.1.100.11 srcport=58012 dstip=203.0.113.5 dstport=443 "
             "action=\"deny\" tz=\"+0330\"");
    assert_field("labels.vendor", "fortinet");
    assert_field("host.hostname", "FG100E");
    assert_field("labels.devid", "FG100E3G16000000");
    assert_field("labels.srcip", "10.1.100.11");
    assert_field("labels.dstport", "443");
    assert_field("labels.action", "deny");
    assert_time("2026-11-10T08:20:48Z"); /* 11:50:48 at +03:30 */
    assert_absent("process.name");
    assert_true(strncmp(field("message"), "date=2026-11-10 time=11:50:48", 29) == 0);

    /* Without tz the source's configured zone applies. */
    parse_tz("date=2026-11-10 time=11:50:48 devname=FGT60 devid=FGT60E0000 logid=0100032002 "
             "type=event subtype=system level=alert vd=\"root\" logdesc=\"Admin login failed\" "
             "user=\"admin\" ui=ssh(203.0.113.5) action=login status=failed",
             3600);
    assert_time("2026-11-10T10:50:48Z");
    assert_field("labels.logdesc", "Admin login failed");
    assert_field("labels.ui", "ssh(203.0.113.5)");

    /* Sophos and others: key=value without Fortinet's keys, no vendor claimed. */
    parse_ok("device=\"SFW\" date=2019-10-09 time=17:19:06 timezone=\"+08\" "
             "device_name=\"XG210\" device_id=AAAAAAAA1234567 log_id=010101010101 "
             "log_type=\"Firewall\" status=\"Deny\"");
    assert_absent("labels.vendor");
    assert_field("host.hostname", "XG210");
    assert_time("2019-10-09T09:19:06Z");
}

static void test_paloalto(void **state)
{
    (void)state;
    parse_ok(
        "<14>Nov 10 11:50:48 PA-3220 1,2026/11/10 11:50:48,013201001234,TRAFFIC,deny,2560,"
        "2026/11/10 11:50:48,198.51.100.7,10.0.0.5,0.0.0.0,0.0.0.0,deny-inbound,,,"
        "not-applicable,vsys1,untrust,trust,ethernet1/1,,default,,4711,1,51234,3389,0,0,"
        "0x0,tcp,deny,60,60,0,1,2026/11/10 11:50:48,0,any,0,123,0x0,US,10.0.0.0-10.255.255.255");
    assert_field("host.hostname", "PA-3220");
    assert_absent("process.name");
    assert_field("labels.vendor", "paloalto");
    assert_field("labels.type", "TRAFFIC");
    assert_field("labels.subtype", "deny");
    assert_field("labels.src", "198.51.100.7");
    assert_field("labels.dst", "10.0.0.5");
    assert_field("labels.rule", "deny-inbound");
    assert_field("labels.from", "untrust");
    assert_field("labels.dport", "3389");
    assert_field("labels.proto", "tcp");
    assert_field("labels.action", "deny");
    assert_absent("labels.srcuser"); /* empty fields are left out */

    /* Cut short after the type: no field past the end is read. */
    parse_ok("<14>Nov 10 11:50:48 PA-3220 1,2026/11/10 11:50:48,013201001234,SYSTEM");
    assert_field("labels.vendor", "paloalto");
    assert_field("labels.type", "SYSTEM");
    assert_field("labels.serial", "013201001234");
    assert_absent("labels.subtype");
}

static void test_label_limit_and_duplicates(void **state)
{
    (void)state;
    char line[8192];
    size_t n = (size_t)snprintf(line, sizeof(line),
                                "<189>date=2026-11-10 time=11:50:48 devname=FGX devid=FGX1 "
                                "logid=0000000013");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, " key%d=value%d", i, i);
    n += (size_t)snprintf(line + n, sizeof(line) - n, " devname=OTHER vendor=evil");
    parse_ok(line);
    assert_int_equal(ev->n_labels, PSB_EVENT_MAX_LABELS);
    assert_field("labels.vendor", "fortinet"); /* a device cannot claim our labels */
    assert_field("labels.devname", "FGX");     /* the first of a repeated key */
    assert_field("labels.key0", "value0");
    assert_absent("labels.key99");
    assert_int_equal(field("message")[0], 'd');
    assert_int_equal(strlen(field("message")), n - 5);

    /* The JSON of a full event is valid and has one key per label. */
    psb_ecs_writer *w = psb_ecs_writer_new();
    const char *out;
    size_t len;
    assert_int_equal(psb_ecs_write(w, ev, &out, &len), 0);
    char *copy = strndup(out, len);
    char err[128];
    yajl_val tree = yajl_tree_parse(copy, err, sizeof(err));
    assert_non_null(tree);
    const char *path[] = {"labels", NULL};
    yajl_val labels = yajl_tree_get(tree, path, yajl_t_object);
    assert_non_null(labels);
    assert_int_equal(labels->u.object.len, PSB_EVENT_MAX_LABELS);
    yajl_tree_free(tree);
    free(copy);
    psb_ecs_writer_free(w);
}

static void test_json_shape_of_cisco_event(void **state)
{
    (void)state;
    psb_ecs_writer *w = psb_ecs_writer_new();
    const char *out;
    size_t len;
    parse_ok("<189>45: router1: Nov 20 2026 18:46:11.123 UTC: %SYS-5-CONFIG_I: Configured from "
             "console by vty0 (10.1.1.1)");
    assert_int_equal(psb_ecs_write(w, ev, &out, &len), 0);
    const char *want =
        "{\"@timestamp\":\"2026-11-20T18:46:11.123Z\",\"event\":{\"created\":\"2026-11-23T12:00:"
        "00.000Z\",\"kind\":\"event\",\"original\":\"<189>45: router1: Nov 20 2026 18:46:11.123 "
        "UTC: %SYS-5-CONFIG_I: Configured from console by vty0 (10.1.1.1)\"},\"host\":{"
        "\"hostname\":\"router1\"},\"process\":{\"name\":\"%SYS-5-CONFIG_I\"},\"log\":{\"syslog\":"
        "{\"priority\":189,\"facility\":{\"code\":23},\"severity\":{\"code\":5},\"appname\":\"%SYS-"
        "5-CONFIG_I\"}},\"message\":\"Configured from console by vty0 (10.1.1.1)\",\"labels\":{"
        "\"sequence\":\"45\",\"vendor\":\"cisco_ios\",\"mnemonic\":\"SYS-5-CONFIG_I\"}}";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(out, want, len);
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
        cmocka_unit_test(test_cisco_ios),
        cmocka_unit_test(test_cisco_iosxr_nxos),
        cmocka_unit_test(test_cisco_asa_and_pix),
        cmocka_unit_test(test_huawei_vrp),
        cmocka_unit_test(test_juniper),
        cmocka_unit_test(test_fortinet),
        cmocka_unit_test(test_paloalto),
        cmocka_unit_test(test_label_limit_and_duplicates),
        cmocka_unit_test(test_json_shape_of_cisco_event),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
