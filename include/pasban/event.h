/* event.h -- one normalised event: the ECS fields of design.md's event table.
 *
 * The fields are the contract (design.md, "Events"), so the struct is public.
 * String fields are slices that point either into the raw message the caller
 * passed to the parser (which must stay alive and unchanged while the event is
 * used) or into storage the event owns (unescaped values, error text, the
 * JSON tree of a JSON-origin event). A psb_event is meant to be reused: one per
 * thread, psb_event_reset() between messages, so the hot path allocates nothing.
 */
#ifndef PASBAN_EVENT_H
#define PASBAN_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "pasban/util.h"

/* Limits on what one event may carry. Past them the parser reports an error. */
#define PSB_EVENT_MAX_SD_ELEMENTS 32  /* RFC 5424 SD-ELEMENTs per message */
#define PSB_EVENT_MAX_SD_PARAMS 128   /* SD-PARAMs per message, over all elements */
#define PSB_EVENT_MAX_LABELS 64       /* labels.* a vendor parser may add */
#define PSB_EVENT_ERROR_BUFSZ 160     /* room for error.message */

enum psb_event_kind {
    PSB_EVENT_KIND_EVENT = 0,
    PSB_EVENT_KIND_PIPELINE_ERROR = 1, /* could not be parsed; kept and forwarded anyway */
};

typedef struct psb_kv {
    psb_str key;
    psb_str value;
} psb_kv;

/* One RFC 5424 SD-ELEMENT: its params are sd_params[first_param .. first_param+n_params). */
typedef struct psb_sd_element {
    psb_str id;
    size_t first_param;
    size_t n_params;
} psb_sd_element;

struct yajl_val_s;

typedef struct psb_event {
    int64_t timestamp_ms;   /* @timestamp (ms since epoch, UTC); receive time if the log has none */
    int64_t created_ms;     /* event.created: receive time at the collector */
    psb_str original;       /* event.original: the raw message, always set */
    int kind;               /* enum psb_event_kind */
    psb_str error_message;  /* error.message: why kind is pipeline_error */
    psb_str organization_id; /* organization.id: the operator */
    psb_str observer_ip;    /* observer.ip: the peer that sent it */

    int priority;           /* log.syslog.priority, -1 when absent; facility/severity derive from it */
    int version;            /* log.syslog.version, 0 when absent */
    psb_str hostname;       /* host.hostname */
    psb_str appname;        /* log.syslog.appname and process.name */
    psb_str procid;         /* log.syslog.procid; process.pid when all digits */
    psb_str msgid;          /* log.syslog.msgid */
    psb_str message;        /* message */

    psb_sd_element sd[PSB_EVENT_MAX_SD_ELEMENTS]; /* log.syslog.structured_data */
    size_t n_sd;
    psb_kv sd_params[PSB_EVENT_MAX_SD_PARAMS];
    size_t n_sd_params;

    psb_kv labels[PSB_EVENT_MAX_LABELS]; /* labels.* */
    size_t n_labels;

    /* JSON-origin events: the object as given (owned, freed by reset/free), else NULL.
     * The writer emits it with the fields above merged in. */
    struct yajl_val_s *json;

    /* Event-owned storage. Parsers reserve room for the whole message first, so
     * slices into it stay valid for the rest of the parse. */
    char *scratch;
    size_t scratch_len;
    size_t scratch_cap;
    char error_buf[PSB_EVENT_ERROR_BUFSZ];
} psb_event;

/* A new, empty event. Never NULL (allocation failure aborts). */
psb_event *psb_event_new(void);
/* Frees the event and what it owns. Accepts NULL. */
void psb_event_free(psb_event *ev);
/* Clears every field so the event can take the next message; keeps its buffers. */
void psb_event_reset(psb_event *ev);

/* Make sure scratch can take n more bytes without moving, so slices into it stay valid. */
void psb_event_reserve(psb_event *ev, size_t n);
/* Copy n bytes into scratch (after psb_event_reserve) and return the slice. */
psb_str psb_event_store(psb_event *ev, const char *p, size_t n);

/* Mark the event as pipeline_error with a printf-style reason (kept in error_buf). */
void psb_event_set_error(psb_event *ev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Add a label; returns 0, or -1 when PSB_EVENT_MAX_LABELS is reached. */
int psb_event_add_label(psb_event *ev, psb_str key, psb_str value);

/* Look up a field by its ECS dotted name ("process.name", "labels.mnemonic",
 * "log.syslog.structured_data.origin.ip", or any path into a JSON-origin object).
 * Numbers are rendered into buf (at least 32 bytes). Returns 1 and sets *out
 * when the field is present, 0 when it is absent. */
int psb_event_get(const psb_event *ev, const char *name, size_t name_len, char *buf, psb_str *out);

#endif
