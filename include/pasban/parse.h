/* parse.h -- turn one received message into a psb_event.
 *
 * Every message gives an event: when a message cannot be parsed the event has
 * kind pipeline_error, the raw text in event.original, the reason in
 * error.message, and @timestamp = receive time. Nothing is dropped.
 *
 * Memory: the event's slices point into msg, so msg must outlive the event's use.
 */
#ifndef PASBAN_PARSE_H
#define PASBAN_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pasban/event.h"

enum psb_format {
    PSB_FORMAT_AUTO = 0, /* '{' -> JSON, "<PRI>VERSION SP" -> RFC 5424, else RFC 3164 and dialects */
    PSB_FORMAT_RFC5424,
    PSB_FORMAT_RFC3164,
    PSB_FORMAT_JSON,
};

#define PSB_MAX_MESSAGE 65536   /* default and largest message size, bytes */
#define PSB_MAX_JSON_DEPTH 32   /* nesting of a JSON event */

/* Memory a caller may lend the RFC 3164 parser across lines (one per thread,
 * zero-initialised): consecutive lines share the receive day and mostly the
 * date, so the calendar conversions of the year inference repeat. */
typedef struct psb_time_cache {
    bool have_year;
    int64_t local_day; /* receive day (in the configured zone) of year */
    int64_t year;
    bool have[2];   /* per parity of the year: ymd -> days */
    int64_t ymd[2]; /* year * 512 + month * 32 + day */
    int64_t days[2];
    /* The last BSD timestamp: the bytes its parse looked at, how many it took,
     * and the fields it gave (year, mon, day, hour, min, sec, ms, has_zone, zone). */
    size_t bsd_len; /* 0 = none */
    size_t bsd_used;
    char bsd_text[32];
    int64_t bsd_ts[9];
    /* The last year inference: its input fields, receive time and zone, result. */
    bool res_have;
    int64_t res_ts[9];
    int64_t res_received_ms;
    int32_t res_tz;
    int res_rc;
    int64_t res_ms;
} psb_time_cache;

typedef struct psb_parse_opts {
    int format;                 /* enum psb_format */
    int64_t received_ms;        /* event.created; RFC 3164 year inference */
    int32_t tz_offset_s;        /* zone of RFC 3164 timestamps, seconds east of UTC */
    size_t max_message;         /* 0 = PSB_MAX_MESSAGE */
    psb_str organization_id;    /* tag for organization.id (not copied) */
    psb_str observer_ip;        /* observer.ip (not copied) */
    /* The input is Pasban's own event JSON (the correlator reading pasban.events or
     * an event JSONL file): event.original, event.created, event.kind,
     * organization.id, observer.ip and error.message are taken from the body.
     * Otherwise the pipeline sets them and a body cannot claim them. */
    bool own_events;
    psb_time_cache *time_cache; /* optional (NULL: none); see psb_time_cache */
    /* The caller reads no labels.* but vendor, mnemonic, sequence and clock_sync
     * (the correlator, when no rule names another): the parser may then leave the
     * others out where they cost most (Palo Alto columns, key=value runs and
     * Huawei lists inside a message). Every other field is the same. */
    bool core_labels_only;
} psb_parse_opts;

/* Parse msg according to opts->format into ev (which is reset first).
 * Returns 0 for a parsed event, -1 when ev is a pipeline_error. */
int psb_parse(const psb_parse_opts *opts, const char *msg, size_t len, psb_event *ev);

/* The individual parsers, for tests and fuzzers. psb_parse resets ev, sets the
 * common fields (original, created, organization, observer, @timestamp = receive
 * time) and reserves scratch for len bytes, then calls one of these. They return
 * 0 on success, or -1 after psb_event_set_error() with the reason; psb_parse then
 * keeps only the raw text and that reason. */
int psb_parse_rfc5424(const psb_parse_opts *opts, const char *msg, size_t len, psb_event *ev);
int psb_parse_rfc3164(const psb_parse_opts *opts, const char *msg, size_t len, psb_event *ev);
int psb_parse_json(const psb_parse_opts *opts, const char *msg, size_t len, psb_event *ev);

/* yajl_tree_parse for records read from elsewhere (Kafka records, configs, request
 * bodies), without yajl 2.1's quirk of accepting an unterminated string after the
 * value ('{}"' parses as '{}'): whatever follows the value must be white space.
 * Same contract as yajl_tree_parse; the caller frees the tree with yajl_tree_free. */
struct yajl_val_s *psb_json_tree_parse(const char *text, char *err, size_t errlen);
/* The same for records that are kept and served again as received (incident, update
 * and KPI records read from Kafka): strict JSON, so comments are refused too (a
 * trailing "//" would swallow whatever a writer puts after the record). */
struct yajl_val_s *psb_json_record_parse(const char *text, char *err, size_t errlen);

/* Name of a format ("auto", "rfc5424", "rfc3164", "json") and back; -1 when unknown. */
const char *psb_format_name(int format);
int psb_format_from_name(const char *name);

#endif
