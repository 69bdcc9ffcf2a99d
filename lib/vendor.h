/* vendor.h -- device dialects on top of RFC 3164, and the timestamp forms they
 * share with it (internal to lib/; only rfc3164.c and vendor.c include it).
 *
 * Vendors put their own codes where RFC 3164 expects a TAG or a message. The
 * 3164 parser finds the header (PRI, TIMESTAMP, HOSTNAME, TAG) and hands the rest
 * here; these functions add labels that point into the message (slices, no
 * copies) and never remove what the 3164 parse found, except where noted.
 *
 * Label vocabulary (labels.<name> in the event JSON):
 *   vendor      cisco_ios (IOS, IOS XE, IOS XR, NX-OS), cisco_asa (ASA, PIX, FWSM),
 *               cisco_ftd, huawei_vrp, juniper, fortinet, paloalto. Set only when the dialect is recognised for sure.
 *   mnemonic    the device's message code without leading '%' signs:
 *               Cisco "SYS-5-CONFIG_I", "ASA-6-302013"; Huawei "SHELL/5/CMDRECORD";
 *               Junos "RT_FLOW_SESSION_DENY", "UI_COMMIT".
 *   node, process  IOS XR: the card ("RP/0/RSP0/CPU0") and the process ("exec")
 *               written before the code.
 *   sequence    Cisco's sequence number (the last of "45: 000012:"), or Huawei's
 *               "[n]" serial after the code (which is therefore not a process id).
 *   clock_sync  Cisco clock flag: "not_authoritative" ('*': the clock was never set
 *               or is not in sync, so @timestamp stays the receive time) or
 *               "ntp_lost" ('.': set, but NTP is unreachable; the time is used).
 *   <key>       key=value devices (Fortinet, Huawei "(Key=Value, ...)" lists and
 *               USG policy logs, Sophos, SonicWall, other generic key=value):
 *               every key as written, quoted values without their quotes, in
 *               order, until PSB_EVENT_MAX_LABELS is reached (the rest are dropped;
 *               the whole text stays in message and event.original).
 *   Junos SD    structured-data logs a relay wrapped in a BSD header ("junos-flow:
 *               <RFC 3339 time> host RT_FLOW - RT_FLOW_SESSION_DENY [junos@... k="v"]"):
 *               mnemonic = MSGID, every SD-PARAM as labels.<name>, the device's time.
 *   Palo Alto   CSV logs: type, subtype, serial and, for TRAFFIC and THREAT, the
 *               PAN-OS field names src, dst, natsrc, natdst, rule, srcuser, dstuser,
 *               app, vsys, from, to, inbound_if, outbound_if, sport, dport, proto,
 *               action (THREAT adds misc, threatid, category, severity, direction).
 *
 * Process name: Cisco and Huawei codes are the TAG, so process.name is the code as
 * written ("%ASA-6-302013", "%%01SHELL/5/CMDRECORD(s)"), as rsyslog reports it for
 * PIX/ASA; the message starts after the code's ':'.
 */
#ifndef PASBAN_VENDOR_H
#define PASBAN_VENDOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pasban/parse.h"

/* Character classes of the hot loops, one table lookup instead of a chain of
 * comparisons (psb_ctype is in vendor.c). */
enum {
    PSB_CT_KEY = 1,     /* key=value key: letter, digit, '_', '.', '-' */
    PSB_CT_HOST = 2,    /* Cisco host name: the same set */
    PSB_CT_HOST3164 = 4, /* RFC 3164 HOSTNAME: letter, digit, '.', '-', '_', ':' */
    PSB_CT_VEND = 8,    /* ends an unquoted key=value value: ' ', '\t', ',' */
    PSB_CT_KEY0 = 16,   /* may start a key: letter, '_' */
    PSB_CT_TAGEND = 32, /* ends a TAG: ' ', '\t', ':', '[' */
    PSB_CT_HEX = 64,    /* hexadecimal digit */
};
extern const unsigned char psb_ctype[256];

static inline bool psb_ct(char c, unsigned cls)
{
    return (psb_ctype[(unsigned char)c] & cls) != 0;
}

/* Character classes of the BSD header, shared by rfc3164.c and vendor.c. */
static inline bool is_sp(char c)
{
    return c == ' ' || c == '\t';
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline const char *skip_sp(const char *p, const char *end)
{
    while (p < end && is_sp(*p))
        p++;
    return p;
}


/* A timestamp as the device wrote it, before year inference and zone. */
typedef struct psb_ts {
    int year; /* 0 when the text has none: inferred from the receive time */
    unsigned mon, day, hour, min, sec, ms;
    bool has_zone;  /* else the source's configured zone applies */
    int32_t zone_s; /* seconds east of UTC */
} psb_ts;

/* "Mmm dd [yyyy] hh:mm:ss[.frac][Z|+hh:mm|+hhmm| ZONE:]" (month in any case, day
 * space- or zero-padded). On success advances *pp past it and returns 0. A zone
 * word ("UTC", "KST") is taken only when a ':' follows it (Cisco); only UTC/GMT
 * are understood, other names leave the configured zone. */
int psb_rfc3164_parse_bsd_time(const char **pp, const char *end, psb_ts *ts);
/* "yyyy-mm-ddThh:mm:ss[.frac][Z|+hh:mm|+hhmm|+hh]" with 'T' or ' ' between date
 * and time, and '/' accepted in the date (Huawei, nginx). */
int psb_rfc3164_parse_iso_time(const char **pp, const char *end, psb_ts *ts);
/* ms since the epoch: explicit year and zone when given, else the year that puts
 * the time no more than a day after opts->received_ms, in opts->tz_offset_s.
 * Returns 0, or -1 for a date that does not exist (Feb 30). */
int psb_rfc3164_resolve_time(const psb_ts *ts, const psb_parse_opts *opts, int64_t *ms_out);

/* What a Cisco IOS prefix ("45: 000012: router1: *Mar  1 18:46:11.123 UTC: ") held. */
typedef struct psb_cisco_hdr {
    psb_str sequence; /* last counter, or unset */
    psb_str hostname; /* origin-id, or the hostname just before the mnemonic */
    psb_str node;     /* IOS XR: the card that logged ("RP/0/RSP0/CPU0"), or unset */
    psb_str process;  /* IOS XR: the process before the code ("exec"), or unset */
    char flag;        /* '*', '.' or 0 */
    bool has_time;
    psb_ts ts;
} psb_cisco_hdr;

/* If p starts a Cisco IOS prefix (counters or a clock flag, then a time or uptime,
 * then ':' and a %MNEMONIC), fill *c and return where the %MNEMONIC starts;
 * otherwise return NULL and p stays as it was. Also IOS XR ("123: RP/0/RSP0/CPU0:
 * Mar  1 10:11:12.123 UTC: exec[65870]: %SECURITY-LOGIN-4-AUTHEN_FAILED : ...")
 * and NX-OS, whose time starts with the year ("2021 Mar  1 10:11:12 UTC: %VSHD-..."). */
const char *psb_vendor_cisco_header(const char *p, const char *end, psb_cisco_hdr *c);

/* 1 if p starts with "key=" (a key=value device line rather than a TAG). */
bool psb_vendor_kv_start(const char *p, const char *end);

/* Labels for a message that is key=value from its start; Fortinet's date/time/tz
 * become @timestamp when ts_free (the header had no time) and devname becomes
 * host.hostname. Returns the number of pairs found. */
size_t psb_vendor_kv_message(const psb_parse_opts *opts, psb_event *ev, const char *p,
                             const char *end, bool ts_free);

/* Palo Alto CSV ("1,2026/11/10 11:50:48,0123456789,TRAFFIC,drop,..."): labels and
 * message (the column labels only when columns). Returns 1 when p was such a line,
 * else 0 and nothing changed. */
int psb_vendor_paloalto(psb_event *ev, const char *p, const char *end, bool columns);

/* After the TAG is known: Cisco and Huawei codes in the TAG, Junos mnemonics at the
 * start of the message, Huawei "(Key=Value, ...)" lists and leading key=value runs
 * (three pairs or more) in the message. */
void psb_vendor_after_tag(const psb_parse_opts *opts, psb_event *ev);

#endif
