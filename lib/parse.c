/* parse.c -- format detection and the fields every event gets, whatever its format. */
#include "pasban/parse.h"

#include <string.h>

static const char *const format_names[] = {"auto", "rfc5424", "rfc3164", "json"};

const char *psb_format_name(int format)
{
    if (format < 0 || format > PSB_FORMAT_JSON)
        return "unknown";
    return format_names[format];
}

int psb_format_from_name(const char *name)
{
    for (int i = 0; i <= PSB_FORMAT_JSON; i++)
        if (strcmp(name, format_names[i]) == 0)
            return i;
    return -1;
}

/* "<PRI>" then a non-zero digit: RFC 5424 has VERSION there, RFC 3164 a month
 * name or a vendor's sequence number followed by ':'. */
static int looks_rfc5424(const char *m, size_t n)
{
    size_t i = 1;
    if (n < 4 || m[0] != '<')
        return 0;
    while (i < n && i < 5 && m[i] >= '0' && m[i] <= '9')
        i++;
    if (i == 1 || i >= n || m[i] != '>')
        return 0;
    i++;
    size_t v = i;
    while (i < n && i < v + 3 && m[i] >= '0' && m[i] <= '9')
        i++;
    return i > v && m[v] != '0' && i < n && m[i] == ' ';
}

static int detect(const char *m, size_t n)
{
    /* A UTF-8 BOM may open the first line of a JSONL file written on Windows. */
    size_t i = n >= 3 && memcmp(m, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    while (i < n && (m[i] == ' ' || m[i] == '\t'))
        i++;
    if (i < n && m[i] == '{')
        return PSB_FORMAT_JSON;
    if (looks_rfc5424(m, n))
        return PSB_FORMAT_RFC5424;
    return PSB_FORMAT_RFC3164;
}

static void set_common(const psb_parse_opts *opts, const char *msg, size_t len, psb_event *ev)
{
    ev->original = psb_str_make(msg, len);
    ev->created_ms = opts->received_ms;
    ev->timestamp_ms = opts->received_ms;
    ev->organization_id = opts->organization_id;
    ev->observer_ip = opts->observer_ip;
}

int psb_parse(const psb_parse_opts *opts, const char *msg, size_t len, psb_event *ev)
{
    psb_event_reset(ev);
    set_common(opts, msg, len, ev);
    size_t max = opts->max_message ? opts->max_message : PSB_MAX_MESSAGE;
    if (len > max) {
        psb_event_set_error(ev, "message of %zu bytes exceeds the limit of %zu bytes", len, max);
        return -1;
    }
    /* Unescaped values never outgrow the message: reserve once so slices stay put. */
    psb_event_reserve(ev, len + 1);

    int format = opts->format == PSB_FORMAT_AUTO ? detect(msg, len) : opts->format;
    int rc;
    switch (format) {
    case PSB_FORMAT_RFC5424:
        rc = psb_parse_rfc5424(opts, msg, len, ev);
        break;
    case PSB_FORMAT_JSON:
        rc = psb_parse_json(opts, msg, len, ev);
        break;
    default:
        rc = psb_parse_rfc3164(opts, msg, len, ev);
        break;
    }
    if (rc == 0)
        return 0;
    /* Keep nothing half-parsed: the raw text and the reason are the whole event.
     * The reason lives in error_buf, which reset leaves alone. */
    size_t elen = ev->error_message.ptr == ev->error_buf ? ev->error_message.len : 0;
    psb_event_reset(ev);
    set_common(opts, msg, len, ev);
    if (elen) {
        ev->kind = PSB_EVENT_KIND_PIPELINE_ERROR;
        ev->error_message = psb_str_make(ev->error_buf, elen);
    } else {
        psb_event_set_error(ev, "unparseable %s message", psb_format_name(format));
    }
    return -1;
}
